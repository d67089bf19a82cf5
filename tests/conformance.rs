//! Values across connectors inside one gateway: the typed table of edge values
//! (`mover_tests::values`) moved SQLite -> Parquet -> SQLite, on a local folder and on S3, and
//! compared value by value; and what SQLite cannot hold refused by name. Each backend's own
//! round trip of those values is the contract's `typed_values_round_trip` (tests/contract.rs).

use std::sync::Arc;

use arrow::array::{RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use mover_client::Client;
use mover_proto::{ExistingTable, Read, Write, read::What};
use mover_tests::values::{EDGE_ROWS, assert_same, get, path, put, table};
use mover_tests::{Gateway, S3Server, workdir};

/// The table of `n` rows written to SQLite, moved to Parquet and back into SQLite, locally and
/// on S3: every value and type comes back.
async fn across_connectors(n: usize) {
    let s3 = S3Server::start();
    s3.create_bucket("conformance");
    let dir = workdir();
    let config = format!(
        "[databases.demo]\nurl = \"sqlite://data/mover.db\"\n[buckets.files]\nurl = \"file://data\"\n{}",
        s3.bucket_config("lake", "s3://conformance/suite"),
    );
    let gw = Gateway::start_with_config_env(dir.path(), &config, &S3Server::envs());
    let mut client = Client::connect(&gw.url).await.unwrap();
    assert_eq!(
        put(&mut client, "demo/main/conformance", &table(n)).await,
        n as u64
    );
    let mv_as = |from: &str, to: &str, existing: ExistingTable| mover_proto::Move {
        source: Some(Read {
            what: Some(What::Path(path(from))),
            ..Default::default()
        }),
        target: Some(Write {
            path: Some(path(to)),
            existing_table: existing as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mv = |from: &str, to: &str| mv_as(from, to, ExistingTable::Fail);
    for (file, sqlite_table) in [
        ("files/moved.parquet", "demo/main/moved"),
        ("lake/moved.parquet", "demo/main/moved_s3"),
    ] {
        client
            .move_dataset(&mv("demo/main/conformance", file), |_| {})
            .await
            .unwrap();
        client
            .move_dataset(&mv(file, sqlite_table), |_| {})
            .await
            .unwrap();
        assert_same(
            &format!("sqlite -> {file} -> sqlite"),
            &table(n),
            &get(&mut client, sqlite_table).await,
        );
    }
    // Avro has no 8- or 16-bit or unsigned integers, and reads them back wider: its values
    // come back exactly into a table of the original types.
    let (file, sqlite_table) = ("files/moved.avro", "demo/main/moved_avro");
    client
        .move_dataset(&mv("demo/main/conformance", sqlite_table), |_| {})
        .await
        .unwrap();
    client
        .move_dataset(&mv("demo/main/conformance", file), |_| {})
        .await
        .unwrap();
    client
        .move_dataset(
            &mv_as(file, sqlite_table, ExistingTable::TruncateAndOverwrite),
            |_| {},
        )
        .await
        .unwrap();
    assert_same(
        "sqlite -> avro -> sqlite",
        &table(n),
        &get(&mut client, sqlite_table).await,
    );
    assert!(s3.pending_uploads("conformance").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_values_across_connectors() {
    across_connectors(EDGE_ROWS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_thousand_rows_across_connectors() {
    across_connectors(100_000).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_sqlite_cannot_hold_is_refused_and_parquet_keeps() {
    let dir = workdir();
    let gw = Gateway::start_default(dir.path());
    let mut client = Client::connect(&gw.url).await.unwrap();
    let s = Arc::new(Schema::new(vec![Field::new("u", DataType::UInt64, true)]));
    let batch =
        RecordBatch::try_new(s, vec![Arc::new(UInt64Array::from(vec![1, u64::MAX]))]).unwrap();
    let write = |t: &str| Write {
        path: Some(path(t)),
        existing_table: ExistingTable::Fail as i32,
        ..Default::default()
    };
    let err = client
        .put(
            &write("demo/main/big"),
            batch.schema(),
            futures::stream::iter(vec![Ok(batch.clone())]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"u\""), "{err}");
    put(&mut client, "files/big.parquet", &batch).await;
    assert_same(
        "u64::MAX in Parquet",
        &batch,
        &get(&mut client, "files/big.parquet").await,
    );
}
