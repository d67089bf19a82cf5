//! Values bound to a query's placeholders: one row of Arrow columns, a column per placeholder
//! in order. Each database binds them as values through its own protocol, never as text
//! spliced into the statement: each encodes the Arrow columns as its own writes do.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use crate::error::{Error, Result};

/// The most bytes a query's parameters take (they travel inside signed handles and tickets).
pub const MAX_BYTES: usize = 64 * 1024;

/// The rows of a stream of parameter batches one by one, each a one-row batch (zero-copy)
/// with its number from 1, for a statement run once per row (`executemany`); an error in
/// `batches` ends them.
pub fn each_row(
    batches: crate::transfer::BatchStream,
) -> impl futures::Stream<Item = Result<(u64, RecordBatch)>> + Send {
    use futures::StreamExt;
    batches
        .flat_map(|item| {
            let rows: Vec<Result<RecordBatch>> = match item {
                Ok(batch) => (0..batch.num_rows())
                    .map(|r| Ok(batch.slice(r, 1)))
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(rows)
        })
        .enumerate()
        .map(|(i, row)| row.map(|row| (i as u64 + 1, row)))
}

/// `batch` (one row) as the Arrow IPC stream a [`mover_proto::Query`] carries.
pub fn to_ipc(batch: &RecordBatch) -> Result<Vec<u8>> {
    check_shape(batch)?;
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())
        .map_err(|e| Error::internal(format!("encoding the parameters: {e}")))?;
    writer
        .write(batch)
        .and_then(|_| writer.finish())
        .map_err(|e| Error::internal(format!("encoding the parameters: {e}")))?;
    drop(writer);
    if out.len() > MAX_BYTES {
        return Err(Error::invalid(format!(
            "the parameters take {} bytes; at most {MAX_BYTES} are accepted",
            out.len()
        )));
    }
    Ok(out)
}

/// The one row an IPC stream of parameters holds; `None` for no parameters.
pub fn from_ipc(bytes: &[u8]) -> Result<Option<RecordBatch>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() > MAX_BYTES {
        return Err(Error::invalid(format!(
            "the parameters take {} bytes; at most {MAX_BYTES} are accepted",
            bytes.len()
        )));
    }
    let bad = |e: arrow::error::ArrowError| {
        Error::invalid(format!("the parameters are not an Arrow IPC stream: {e}"))
    };
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(bad)?;
    let batch = reader
        .next()
        .transpose()
        .map_err(bad)?
        .ok_or_else(|| Error::invalid("the parameters hold no row"))?;
    if reader.next().is_some() {
        return Err(Error::invalid("the parameters hold more than one batch"));
    }
    check_shape(&batch)?;
    Ok(Some(batch))
}

/// A query binds exactly one row; several rows are several executions, which a query
/// (unlike an update) does not have.
fn check_shape(batch: &RecordBatch) -> Result<()> {
    match batch.num_rows() {
        1 => Ok(()),
        n => Err(Error::invalid(format!(
            "a query binds one row of parameters, not {n} (running a query once per row, as \
             executemany does, is not supported)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray};

    use super::*;

    #[tokio::test]
    async fn each_row_numbers_the_rows_of_every_batch() {
        use futures::StreamExt;
        let batch = |v: Vec<i32>| {
            RecordBatch::try_from_iter([("a", Arc::new(Int32Array::from(v)) as _)]).unwrap()
        };
        let batches =
            futures::stream::iter([Ok(batch(vec![1, 2])), Ok(batch(vec![])), Ok(batch(vec![3]))]);
        let rows: Vec<(u64, i32)> = each_row(batches.boxed())
            .map(|r| {
                let (n, row) = r.unwrap();
                assert_eq!(row.num_rows(), 1);
                let a = row.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
                (n, a.value(0))
            })
            .collect()
            .await;
        assert_eq!(rows, vec![(1, 1), (2, 2), (3, 3)]);
    }

    #[test]
    fn one_row_goes_there_and_back() {
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Int32Array::from(vec![-7])) as _),
            ("b", Arc::new(StringArray::from(vec![Some("é")])) as _),
        ])
        .unwrap();
        assert_eq!(from_ipc(&to_ipc(&batch).unwrap()).unwrap(), Some(batch));
        assert_eq!(from_ipc(b"").unwrap(), None);
        let e = from_ipc(b"not arrow").unwrap_err();
        assert!(e.message.contains("not an Arrow IPC stream"), "{e}");
    }

    #[test]
    fn a_query_binds_exactly_one_row() {
        let two = RecordBatch::try_from_iter([("a", Arc::new(Int32Array::from(vec![1, 2])) as _)])
            .unwrap();
        let e = to_ipc(&two).unwrap_err();
        assert!(e.message.contains("one row of parameters, not 2"), "{e}");
    }

    #[test]
    fn parameters_are_bounded() {
        let big = RecordBatch::try_from_iter([(
            "a",
            Arc::new(StringArray::from(vec!["x".repeat(MAX_BYTES)])) as _,
        )])
        .unwrap();
        let e = to_ipc(&big).unwrap_err();
        assert!(e.message.contains("at most 65536"), "{e}");
    }
}
