//! Progress of a running DoPut or move: a report every second while the work runs, then the
//! final one (or the error). The work is dropped (cancelled, and so rolled back) when the
//! client stops listening.

use std::time::Duration;

use futures::Future;
use mover_proto::Progress;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::status;
use crate::connectors::WriteReport;
use crate::error::Result;
use crate::metrics::Watch;
use tokio_util::sync::CancellationToken;

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

/// Run `work` while reporting what `watch` has counted every second on the returned stream,
/// then the final report (or the error). If the receiver goes away, `work` is dropped:
/// cancelled.
pub(super) fn with_progress<W, R>(
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
        let mut work = Box::pin(work);
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        ticker.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                result = &mut work => {
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
