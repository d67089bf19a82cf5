//! Progress of a running DoPut or move: a report every second while the work runs, then the
//! final one (or the error). The work is dropped (cancelled, and so rolled back) when the
//! client stops listening.

use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures::{Future, FutureExt};
use mover_proto::Progress;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::status;
use crate::connectors::WriteReport;
use crate::error::Result;
use crate::metrics::Watch;
use tokio_util::sync::CancellationToken;

/// The error of a call whose work panicked: the panic itself is logged, with its backtrace, by
/// the gateway's panic hook.
fn panicked(what: &str, panic: &(dyn std::any::Any + Send)) -> crate::error::Error {
    let message = panic_message(panic);
    crate::error::Error::internal(format!(
        "{what} failed inside the gateway (a bug, logged with its backtrace): {message}; what it wrote was rolled back"
    ))
}

/// What a panic said.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// What a call the gateway's shutdown cancelled ends with.
pub(super) fn stopped() -> Status {
    Status::unavailable(
        "the gateway is shutting down: this call was cancelled and what it wrote rolled back; try again",
    )
}

/// How often a running DoPut or move reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// How a DoPut or move ended: committed, or (a part of a write in parts) staged.
pub(super) enum Done {
    Committed(WriteReport),
    Staged(u64),
}

impl From<WriteReport> for Done {
    fn from(report: WriteReport) -> Self {
        Done::Committed(report)
    }
}

/// Run `work` (`what`: "move 3f9c…", "this upload") while reporting what `watch` has counted
/// every second on the returned stream, then the final report (or the error). If the receiver
/// goes away, `work` is dropped: cancelled. A panic inside `work` (a bug) drops it too, so what
/// it wrote rolls back, and ends the call with INTERNAL naming `what`.
pub(super) fn with_progress<W, R>(
    what: String,
    mut watch: Watch,
    stopping: CancellationToken,
    work: W,
) -> ReceiverStream<Result<Progress, Status>>
where
    W: Future<Output = Result<R>> + Send + 'static,
    R: Into<Done> + Send,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let meter = watch.meter().clone();
        // Boxed, not pinned on the stack, so that it can be dropped before the last answer.
        let mut work = Box::pin(AssertUnwindSafe(work).catch_unwind());
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        ticker.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                result = &mut work => {
                    drop(work); // a panicked future's guards roll back before the client hears
                    let result = result.unwrap_or_else(|panic| Err(panicked(&what, panic.as_ref())));
                    watch.ended(result.is_ok());
                    let last = result.map(|done| {
                        let mut p = meter.progress();
                        match done.into() {
                            Done::Committed(report) => {
                                p.rows_committed = report.rows_committed;
                                p.notes = report.notes;
                            }
                            Done::Staged(rows) => p.rows_staged = rows,
                        }
                        p.done = true;
                        p
                    });
                    let _ = tx.send(last.map_err(status)).await;
                    return;
                }
                _ = tx.closed() => {
                    tracing::info!("the client went away; cancelling");
                    return; // drops `work`: the sink rolls back
                }
                _ = stopping.cancelled() => {
                    tracing::info!("the gateway is stopping; cancelling");
                    drop(work); // the sink rolls back before the client hears
                    let _ = tx.send(Err(stopped())).await;
                    return;
                }
                _ = ticker.tick() => {
                    // A closed channel is noticed by the branch above on the next turn.
                    let _ = tx.send(Ok(meter.progress())).await;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::{catalog, read, rows, write};
    use futures::StreamExt;

    /// A bug that panics mid-write (here, in the source's stream, after one batch has gone
    /// into the table) ends the call with INTERNAL naming it, and the table never appears.
    #[tokio::test]
    async fn a_panic_mid_write_is_internal_named_and_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path());
        let (schema, first) = rows(100);
        let panicking = first.chain(futures::stream::poll_fn(
            |_| -> std::task::Poll<Option<_>> { panic!("an injected bug") },
        ));
        let target = write("db/main/t");
        let writing = {
            let catalog = catalog.clone();
            async move { catalog.write(&target, schema, panicking.boxed()).await }
        };
        let watch = Watch::start("move", "test".into(), "sqlite".into(), Default::default());
        let answers: Vec<_> = with_progress(
            "move 0123abcd".into(),
            watch,
            CancellationToken::new(),
            writing,
        )
        .collect()
        .await;
        let last = answers.last().unwrap().as_ref().unwrap_err();
        assert_eq!(last.code(), tonic::Code::Internal);
        assert!(
            last.message()
                .contains("move 0123abcd failed inside the gateway")
                && last.message().contains("an injected bug"),
            "{}",
            last.message()
        );
        let gone = catalog.open_read(&read("db/main/t")).await.err().unwrap();
        assert_eq!(
            gone.kind,
            crate::error::ErrorKind::NotFound,
            "{}",
            gone.message
        );
    }
}
