//! Datasets as the tests name them (`files/a.csv`, `demo/main/t`), as `mover.v1` messages.

use arrow::array::RecordBatch;
use arrow_flight::error::FlightError;
use mover_client::Client;
use mover_proto::{ExistingTable, Move, Path, Read, Write, read::What};

/// `name` as a Flight path.
pub fn path(name: &str) -> Path {
    Path {
        parts: mover_client::names::parse(name).expect("a dataset name"),
    }
}

/// A read of the whole of `name`.
pub fn read(name: &str) -> Read {
    Read {
        what: Some(What::Path(path(name))),
        ..Default::default()
    }
}

/// A write to `name` with this existing-table mode.
pub fn write(name: &str, existing: ExistingTable) -> Write {
    Write {
        path: Some(path(name)),
        existing_table: existing as i32,
        ..Default::default()
    }
}

/// A move of `from` (on the gateway asked) to `to`.
pub fn mv(from: &str, to: Write) -> Move {
    Move {
        source: Some(read(from)),
        target: Some(to),
        ..Default::default()
    }
}

/// DoPut of `batches` to `to`; the rows the gateway committed.
pub async fn put(
    client: &mut Client,
    to: Write,
    batches: Vec<RecordBatch>,
) -> mover_client::client::Result<u64> {
    let schema = batches[0].schema();
    let stream = futures::stream::iter(batches.into_iter().map(Ok::<_, FlightError>));
    Ok(client.put(&to, schema, stream).await?.rows_committed)
}

/// The rows a read returns, or the error it ends with.
pub async fn count_rows(client: &mut Client, read: &Read) -> Result<usize, String> {
    use futures::TryStreamExt;
    let batches = client.read(read).await.map_err(|e| e.to_string())?;
    let all: Vec<RecordBatch> = batches.try_collect().await.map_err(|e| e.to_string())?;
    Ok(all.iter().map(|b| b.num_rows()).sum())
}

/// `name` read as up to `partitions` endpoints, each redeemed on its own: how many endpoints
/// came, and the values of the first column (an integer id) of every row, sorted.
pub async fn ids_in_parts(client: &mut Client, name: &str, partitions: u32) -> (usize, Vec<i64>) {
    let mut r = read(name);
    r.partitions = partitions;
    let info = client.info(&r).await.expect("GetFlightInfo");
    let endpoints = info.endpoint.len();
    let mut ids = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("a ticket");
        let batches: Vec<arrow::array::RecordBatch> =
            futures::TryStreamExt::try_collect(client.redeem(ticket).await.expect("DoGet"))
                .await
                .expect("the endpoint's rows");
        for b in &batches {
            let col = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64)
                .expect("an integer id");
            let col = col
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .expect("Int64");
            ids.extend(col.values().iter().copied());
        }
    }
    ids.sort_unstable();
    (endpoints, ids)
}
