//! Something to move in the first five minutes. The embedded default, started where `./data`
//! does not exist yet (a fresh checkout) or is empty, writes a small sample through its own
//! connectors, so that `mvrec ls` shows datasets and every command of the README's quick
//! start works as printed. It never writes over anything: only into a `data` folder with
//! nothing in it.
//!
//! - `files/orders.csv`: 5,000 orders (id, customer, placed_at, amount, status, note);
//! - `files/more.csv`: 100 more orders, for an append;
//! - `files/a.csv`: ten rows of two columns;
//! - `files/export.csv.gz`: 1,000 orders as a Records Mover bluelabs file (gzip, backslash
//!   escapes, no header), to sniff and read by hints;
//! - `demo/main/customers`: a table of 1,000 customers;
//! - `data/gateway.toml`: the embedded default as a config file (paths relative to it), for
//!   `mvrec --config`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use mover_proto::{FileOptions, Path as DatasetPath, RecordsOptions, Write};

use crate::catalog::Catalog;
use crate::error::{Context, Result};

/// The embedded default's data folder, relative to where the gateway runs.
pub const DATA: &str = "data";

/// The embedded default as a config file inside the data folder.
const CONFIG: &str = r#"# The embedded default, as a config file: `mvrec --config data/gateway.toml ...` runs it
# in-process. Paths are relative to this file.
[databases.demo]
url = "sqlite://mover.db"
allow_sql = true

[buckets.files]
url = "file://."
"#;

/// Whether `data` is missing or an empty folder: the only place the sample is written, so
/// that it never writes over anything.
pub fn nothing_in(data: &Path) -> bool {
    match std::fs::read_dir(data) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Write the sample through `catalog` (the embedded default's) and the config file into
/// `data`, which the caller saw was missing or empty.
pub async fn create(catalog: &Catalog, data: &Path) -> Result<()> {
    let first = orders(1, 5_000);
    write(catalog, "files/orders.csv", None, first).await?;
    let more = orders(5_001, 100);
    write(catalog, "files/more.csv", None, more).await?;
    let export = orders(10_001, 1_000);
    let bluelabs = RecordsOptions {
        variant: "bluelabs".into(),
        ..Default::default()
    };
    write(catalog, "files/export.csv.gz", Some(bluelabs), export).await?;
    write(catalog, "files/a.csv", None, small()).await?;
    write(catalog, "demo/main/customers", None, customers(1_000)).await?;
    std::fs::write(data.join("gateway.toml"), CONFIG)
        .internal(format!("writing {}/gateway.toml", data.display()))?;
    tracing::info!(
        "wrote a sample into {} (files/orders.csv, more.csv, a.csv, export.csv.gz, demo/main/customers): see the README's quick start",
        data.display()
    );
    Ok(())
}

async fn write(
    catalog: &Catalog,
    name: &str,
    records: Option<RecordsOptions>,
    batch: RecordBatch,
) -> Result<()> {
    let write = Write {
        path: Some(DatasetPath {
            parts: name.split('/').map(String::from).collect(),
        }),
        file: Some(FileOptions {
            records,
            ..Default::default()
        }),
        ..Default::default()
    };
    let schema = batch.schema();
    let batches = futures::StreamExt::boxed(futures::stream::iter([Ok(batch)]));
    catalog.write(&write, schema, batches).await.map(drop)
}

/// `n` orders from id `first`: the same every time (no randomness), with the values that make
/// text formats work (commas, quotes, a backslash, missing notes).
fn orders(first: i64, n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, false),
        Field::new(
            "placed_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("amount", DataType::Decimal128(10, 2), false),
        Field::new("status", DataType::Utf8, false),
        Field::new("note", DataType::Utf8, true),
    ]));
    let ids: Vec<i64> = (first..first + n).collect();
    const STATUSES: [&str; 4] = ["placed", "paid", "shipped", "returned"];
    const NOTES: [Option<&str>; 5] = [
        None,
        Some("leave at the door, please"),
        Some("gift: \"happy birthday\""),
        Some(r"path C:\orders\new"),
        Some("rush order"),
    ];
    // 2026-01-01 00:00:00 UTC, then every 7 minutes and 13 seconds.
    const START: i64 = 1_767_225_600_000_000;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(Int64Array::from_iter_values(
            ids.iter().map(|i| (i * 37) % 1_000 + 1),
        )),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            ids.iter().map(|i| START + i * 433_000_000),
        )),
        Arc::new(
            Decimal128Array::from_iter_values(
                ids.iter().map(|i| ((i * 7919) % 100_000) as i128 + 99),
            )
            .with_precision_and_scale(10, 2)
            .expect("decimal(10,2)"),
        ),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| STATUSES[(*i % 4) as usize]),
        )),
        Arc::new(StringArray::from_iter(
            ids.iter().map(|i| NOTES[(*i % 5) as usize]),
        )),
    ];
    RecordBatch::try_new(schema, columns).expect("sample orders")
}

fn small() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
    ]));
    let names = [
        "ada", "grace", "edsger", "barbara", "donald", "frances", "john", "margaret", "ken",
        "radia",
    ];
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(1..=10)),
            Arc::new(StringArray::from_iter_values(names)),
        ],
    )
    .expect("sample a.csv")
}

fn customers(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("email", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("since", DataType::Date32, false),
    ]));
    const COUNTRIES: [&str; 6] = ["DE", "FR", "GB", "JP", "US", "BR"];
    let ids: Vec<i64> = (1..=n).collect();
    // Days since 1970-01-01: from 2020-01-01 on.
    const SINCE: i32 = 18_262;
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("Customer {i}")),
            )),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("customer{i}@example.com")),
            )),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| COUNTRIES[(*i % 6) as usize]),
            )),
            Arc::new(Date32Array::from_iter_values(
                ids.iter().map(|i| SINCE + (*i as i32 * 3) % 2_000),
            )),
        ],
    )
    .expect("sample customers")
}
