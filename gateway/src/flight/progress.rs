//! Progress of a running DoPut or move: a report every second while the work runs, then the
//! final one (or the error). The work is dropped (cancelled, and so rolled back) when the
//! client stops listening.

use std::sync::Arc;
use std::time::Duration;

use futures::Future;
use mover_proto::Progress;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::status;
use crate::connectors::WriteReport;
use crate::error::Result;
use crate::transfer::Meter;

/// How often a running DoPut or move reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Run `work` while reporting `meter`'s progress every second on the returned stream, then the
/// final report (or the error). If the receiver goes away, `work` is dropped: cancelled.
pub(super) fn with_progress<W>(
    meter: Arc<Meter>,
    work: W,
) -> ReceiverStream<Result<Progress, Status>>
where
    W: Future<Output = Result<WriteReport>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        tokio::pin!(work);
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        ticker.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                result = &mut work => {
                    let last = result.map(|report| {
                        let mut p = meter.progress();
                        p.rows_committed = report.rows_committed;
                        p.notes = report.notes;
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
                _ = ticker.tick() => {
                    // A closed channel is noticed by the branch above on the next turn.
                    let _ = tx.send(Ok(meter.progress())).await;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}
