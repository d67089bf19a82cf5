//! The pipe between a source and a sink.
//!
//! Memory is bounded by construction: a source produces batches of a configured number of rows,
//! and [`bounded`] lets at most `capacity` of them wait between source and sink. When the sink
//! is slower, the channel fills and the source's task waits (backpressure); when the sink goes
//! away (a failed write, a client that hung up), the receiver is dropped, the pump task ends,
//! and dropping the source stream cancels the read (a SQLite reader thread stops at its next
//! send). Nothing here knows what the source or sink is: this module imports nothing of the
//! crate but its error type.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use futures::StreamExt;
use futures::stream::BoxStream;
use mover_proto::Progress;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::Result;

/// Record batches as they flow from a source to a sink. Dropping the stream cancels the source.
pub type BatchStream = BoxStream<'static, Result<RecordBatch>>;

/// Rows and bytes that have passed a point of the pipe, readable while it runs.
#[derive(Debug)]
pub struct Meter {
    rows: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
}

impl Default for Meter {
    fn default() -> Self {
        Self {
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl Meter {
    /// A progress report of what has passed so far; `rows_committed` is left for the sink.
    pub fn progress(&self) -> Progress {
        Progress {
            rows_read: self.rows.load(Ordering::Relaxed),
            bytes_read: self.bytes.load(Ordering::Relaxed),
            rows_committed: 0,
            seconds: self.started.elapsed().as_secs_f64(),
            done: false,
            notes: vec![],
            rows_staged: 0,
        }
    }

    /// Count every batch of `stream` as it passes. Bytes are what the batch's values occupy in
    /// Arrow's memory layout (not buffer capacity, not the size of a file).
    pub fn metered(self: &Arc<Self>, stream: BatchStream) -> BatchStream {
        let meter = Arc::clone(self);
        stream
            .inspect(move |item| {
                if let Ok(batch) = item {
                    meter
                        .rows
                        .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    meter.bytes.fetch_add(value_bytes(batch), Ordering::Relaxed);
                }
            })
            .boxed()
    }
}

fn value_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64)
        .sum()
}

/// Read `stream` ahead in its own task, holding at most `capacity` batches.
pub fn bounded(mut stream: BatchStream, capacity: usize) -> BatchStream {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    tokio::spawn(async move {
        loop {
            // A closed channel means the sink is gone: stop reading and drop the source at
            // once, even while the source is slow to produce its next batch.
            let item = tokio::select! {
                item = stream.next() => item,
                _ = tx.closed() => return,
            };
            let Some(item) = item else { return };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    ReceiverStream::new(rx).boxed()
}

/// `stream` with every batch over `max_rows` cut into slices of at most that many (zero-copy):
/// a client's batch of any size then costs a sink no more than one of the gateway's own, in
/// the casts and encoded rows it makes of it.
pub fn rechunked(stream: BatchStream, max_rows: usize) -> BatchStream {
    let max_rows = max_rows.max(1);
    stream
        .flat_map(move |item| {
            let slices: Vec<Result<RecordBatch>> = match item {
                Ok(batch) if batch.num_rows() > max_rows => (0..batch.num_rows())
                    .step_by(max_rows)
                    .map(|at| Ok(batch.slice(at, max_rows.min(batch.num_rows() - at))))
                    .collect(),
                other => vec![other],
            };
            futures::stream::iter(slices)
        })
        .boxed()
}

/// The first `limit` rows of `stream`; the source is dropped (cancelled) once they are out.
pub fn limited(stream: BatchStream, limit: u64) -> BatchStream {
    stream
        .scan(limit, |left, item| {
            let out = match item {
                _ if *left == 0 => None,
                Ok(batch) => {
                    let n = (batch.num_rows() as u64).min(*left);
                    *left -= n;
                    Some(Ok(batch.slice(0, n as usize)))
                }
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(out)
        })
        .boxed()
}

/// `batch` as a batch of `schema`: the same columns, each cast where `schema` gives it
/// another type (LargeUtf8 as Utf8, say), the schema's metadata in place of the batch's.
pub fn fit(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let fitting = |e: arrow::error::ArrowError| {
        crate::error::Error::internal(format!("a batch does not fit its stream's schema: {e}"))
    };
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(
            |(column, field)| match column.data_type() == field.data_type() {
                true => Ok(column.clone()),
                false => arrow::compute::cast(column, field.data_type()).map_err(fitting),
            },
        )
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(fitting)
}

/// `stream`, with an empty batch of `schema` whenever the source has produced nothing for
/// `every`: a slow query's DoGet keeps showing life to clients and proxies.
pub fn keep_alive(stream: BatchStream, schema: SchemaRef, every: Duration) -> BatchStream {
    futures::stream::unfold(stream, move |mut s| {
        let schema = schema.clone();
        async move {
            // `next()` is cancel-safe: a timed-out wait loses nothing.
            match tokio::time::timeout(every, s.next()).await {
                Ok(Some(item)) => Some((item, s)),
                Ok(None) => None,
                Err(_) => Some((Ok(RecordBatch::new_empty(schema)), s)),
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn batches(sizes: &[usize]) -> BatchStream {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let items: Vec<Result<RecordBatch>> = sizes
            .iter()
            .map(|&n| {
                let col = Int64Array::from_iter_values(0..n as i64);
                Ok(RecordBatch::try_new(schema.clone(), vec![Arc::new(col)]).unwrap())
            })
            .collect();
        futures::stream::iter(items).boxed()
    }

    #[tokio::test]
    async fn limited_cuts_inside_a_batch_and_stops() {
        let out: Vec<_> = limited(batches(&[3, 3, 3]), 4).collect().await;
        let rows: Vec<usize> = out.iter().map(|b| b.as_ref().unwrap().num_rows()).collect();
        assert_eq!(rows, vec![3, 1]);
    }

    #[tokio::test]
    async fn rechunked_cuts_only_batches_over_the_limit() {
        let out: Vec<_> = rechunked(batches(&[10, 4, 0, 9]), 4).collect().await;
        let rows: Vec<usize> = out.iter().map(|b| b.as_ref().unwrap().num_rows()).collect();
        assert_eq!(rows, vec![4, 4, 2, 4, 0, 4, 4, 1]);
        // In order, every row once.
        let values: Vec<i64> = out[..3]
            .iter()
            .flat_map(|b| {
                let b = b.as_ref().unwrap();
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, (0..10).collect::<Vec<i64>>());
    }

    #[tokio::test]
    async fn metered_counts_rows_through_a_bounded_pipe() {
        let meter = Arc::new(Meter::default());
        let out: Vec<_> = bounded(meter.metered(batches(&[5, 7])), 1).collect().await;
        assert_eq!(out.len(), 2);
        assert_eq!(meter.progress().rows_read, 12);
        // 12 non-null Int64 values.
        assert_eq!(meter.progress().bytes_read, 12 * 8);
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_fills_silences_with_empty_batches() {
        let (tx, rx) = mpsc::channel(1);
        let slow = ReceiverStream::new(rx).boxed();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let mut out = keep_alive(slow, schema, Duration::from_secs(30));
        // Nothing for 30 s: an empty batch.
        let first = out.next().await.unwrap().unwrap();
        assert_eq!(first.num_rows(), 0);
        let mut real = batches(&[2]);
        tx.send(real.next().await.unwrap()).await.unwrap();
        assert_eq!(out.next().await.unwrap().unwrap().num_rows(), 2);
        drop(tx);
        assert!(out.next().await.is_none());
    }

    #[tokio::test]
    async fn bounded_stops_after_an_error() {
        let bad = futures::stream::iter(vec![
            Err(Error::invalid("boom")),
            Err(Error::invalid("never seen")),
        ])
        .boxed();
        let out: Vec<_> = bounded(bad, 2).collect().await;
        assert_eq!(out.len(), 1);
    }
}
