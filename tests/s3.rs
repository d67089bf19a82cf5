//! Buckets on a real S3-compatible server (moto on 127.0.0.1): the same code path as a local
//! folder, multipart uploads, aborts that leave nothing, prefixes, globs, parts, confinement,
//! and a read-only HTTP bucket. The conformance suite's typed rows go through S3 in
//! `conformance.rs`.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::error::FlightError;
use futures::TryStreamExt;
use mover_client::Client;
use mover_proto::{ExistingTable, FileFormat, FileOptions, Path, Write};
use mover_tests::names::{mv, put, read, write};
use mover_tests::{Gateway, S3Server, workdir};
use tonic::Code;

/// Rows with a 200-character text column: 40k rows are about 8 MB of CSV.
fn wide(ids: std::ops::Range<i64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("text", DataType::Utf8, false),
    ]));
    let text: Vec<String> = ids.clone().map(|i| format!("{i:0>200}")).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(ids)),
            Arc::new(StringArray::from(text)),
        ],
    )
    .unwrap()
}

async fn rows_of(client: &mut Client, name: &str) -> usize {
    let batches: Vec<RecordBatch> = client
        .read(&read(name))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

struct Setup {
    s3: S3Server,
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    gw: Gateway,
    client: Client,
}

/// moto with bucket `lake-test`, and a gateway serving `lake` = s3://lake-test/exports,
/// `raw` = the whole bucket, the default `demo` and `files`; `extra` TOML goes into `lake`.
async fn setup(extra: &str) -> Setup {
    let s3 = S3Server::start();
    s3.create_bucket("lake-test");
    let dir = workdir();
    let data = dir.path().join("data");
    let config = format!(
        "[databases.demo]\nurl = \"sqlite://data/mover.db\"\n[buckets.files]\nurl = \"file://data\"\n{}{extra}{}",
        s3.bucket_config("lake", "s3://lake-test/exports"),
        s3.bucket_config("raw", "s3://lake-test"),
    );
    let gw = Gateway::start_with_config_env(dir.path(), &config, &S3Server::envs());
    let client = Client::connect(&gw.url).await.unwrap();
    Setup {
        s3,
        _dir: dir,
        data,
        gw,
        client,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_uploads_land_under_the_configured_prefix() {
    let mut t = setup("").await;
    let (s3, data, gw_url, client) = (&t.s3, t.data.clone(), t.gw.url.clone(), &mut t.client);
    let _ = (&s3, &data, &gw_url);
    // ~20 MB of CSV: three multipart parts of 8 MB.
    let batches: Vec<RecordBatch> = (0..5).map(|k| wide(k * 20_000..(k + 1) * 20_000)).collect();
    let rows = put(client, write("lake/big.csv", ExistingTable::Fail), batches)
        .await
        .unwrap();
    assert_eq!(rows, 100_000);
    assert_eq!(s3.keys("lake-test"), ["exports/big.csv"]);
    let etag = s3.etag("lake-test", "exports/big.csv");
    let parts: u32 = etag.rsplit('-').next().unwrap().parse().unwrap_or(1);
    assert!(parts >= 2, "not a multipart upload: ETag {etag}");
    assert_eq!(rows_of(client, "lake/big.csv").await, 100_000);
    // The same object through the bucket configured at the root.
    assert_eq!(rows_of(client, "raw/exports/big.csv").await, 100_000);
    assert!(s3.pending_uploads("lake-test").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_error_mid_upload_leaves_no_object_and_no_upload() {
    let mut t = setup("").await;
    let (s3, data, gw_url, client) = (&t.s3, t.data.clone(), t.gw.url.clone(), &mut t.client);
    let _ = (&s3, &data, &gw_url);
    // 12 MB of good rows (so a part is already uploaded), then a ragged one.
    let mut csv = String::from("id,text\n");
    for i in 0..60_000 {
        csv.push_str(&format!("{i},{i:0>200}\n"));
    }
    csv.push_str("60000,x,EXTRA\n");
    std::fs::write(data.join("ragged.csv"), csv).unwrap();
    for target in ["lake/out.parquet", "lake/out.csv", "lake/parts/"] {
        let mut to = write(target, ExistingTable::Fail);
        if target.ends_with('/') {
            to.file = Some(FileOptions {
                format: FileFormat::Csv as i32,
                csv: None,
                ..Default::default()
            });
        }
        let err = client
            .move_dataset(&mv("files/ragged.csv", to), |_| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ragged.csv"), "{err}");
        assert!(
            s3.keys("lake-test").is_empty(),
            "{target}: {:?}",
            s3.keys("lake-test")
        );
        assert!(
            s3.pending_uploads("lake-test").is_empty(),
            "{target}: an upload was left open"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_of_ten_parts_reads_as_one_dataset_and_globs_pick_parts() {
    let mut t = setup("").await;
    let (s3, data, gw_url, client) = (&t.s3, t.data.clone(), t.gw.url.clone(), &mut t.client);
    let _ = (&s3, &data, &gw_url);
    for p in 0..10 {
        let b = wide(p * 100..(p + 1) * 100);
        put(
            client,
            write(&format!("lake/orders/part-{p}.csv"), ExistingTable::Fail),
            vec![b],
        )
        .await
        .unwrap();
    }
    assert_eq!(rows_of(client, "lake/orders/").await, 1000);
    let info = client.info(&read("lake/orders/")).await.unwrap();
    assert_eq!(info.try_decode_schema().unwrap().field(0).name(), "id");
    assert_eq!(rows_of(client, "lake/orders/part-[0-4].csv").await, 500);
    assert_eq!(rows_of(client, "lake/*/part-9.csv").await, 100);

    // Listing shows one level: the prefix, then its files.
    let top: Vec<String> = client
        .list("lake/")
        .await
        .unwrap()
        .iter()
        .map(|i| i.flight_descriptor.as_ref().unwrap().path.join("/"))
        .collect();
    assert_eq!(top, ["lake/orders/"]);
    let level = client.list("lake/orders/part-1").await.unwrap();
    assert_eq!(level.len(), 1);

    // A part with other columns is named.
    let other = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("oops", DataType::Utf8, false),
    ]));
    let b = RecordBatch::try_new(
        other,
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(StringArray::from(vec!["x"])),
        ],
    )
    .unwrap();
    put(
        client,
        write("lake/orders/part-5b.csv", ExistingTable::Fail),
        vec![b],
    )
    .await
    .unwrap();
    let err = client
        .read(&read("lake/orders/"))
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("part-5b.csv") && err.to_string().contains("oops"),
        "{err}"
    );

    // Column projection: only the asked columns, in the asked order.
    let mut r = read("lake/orders/part-[0-4].csv");
    r.columns = vec!["text".into()];
    let got: Vec<RecordBatch> = client.read(&r).await.unwrap().try_collect().await.unwrap();
    assert_eq!(got[0].num_columns(), 1);
    assert_eq!(got[0].schema().field(0).name(), "text");
}

#[tokio::test(flavor = "multi_thread")]
async fn writing_to_a_prefix_splits_into_parts_and_replaces_them_whole() {
    let mut t = setup("part_size_mb = 1\n").await;
    let (s3, data, gw_url, client) = (&t.s3, t.data.clone(), t.gw.url.clone(), &mut t.client);
    let _ = (&s3, &data, &gw_url);
    let csv = FileOptions {
        format: FileFormat::Csv as i32,
        csv: None,
        ..Default::default()
    };
    let batches: Vec<RecordBatch> = (0..10).map(|k| wide(k * 2000..(k + 1) * 2000)).collect();
    let mut to = write("lake/split/", ExistingTable::Fail);
    to.file = Some(csv.clone());
    assert_eq!(
        put(client, to.clone(), batches.clone()).await.unwrap(),
        20_000
    );
    // The parts, and the files that make the prefix a records directory.
    let (first, described): (Vec<String>, Vec<String>) = s3
        .keys("lake-test")
        .into_iter()
        .partition(|k| !k.starts_with("exports/split/_"));
    assert!(first.len() >= 3, "expected several ~1 MB parts: {first:?}");
    assert!(
        first
            .iter()
            .all(|k| k.starts_with("exports/split/part-") && k.ends_with(".csv")),
        "{first:?}"
    );
    let description = [
        "exports/split/_format_delimited",
        "exports/split/_manifest",
        "exports/split/_schema.json",
    ];
    assert_eq!(described, description);
    assert_eq!(rows_of(client, "lake/split/").await, 20_000);

    // Writing again without a mode is refused; append adds parts; overwrite replaces them all.
    let err = put(client, to.clone(), vec![wide(0..10)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::AlreadyExists), "{err}");
    to.existing_table = ExistingTable::Append as i32;
    put(client, to.clone(), vec![wide(0..10)]).await.unwrap();
    assert_eq!(rows_of(client, "lake/split/").await, 20_010);
    to.existing_table = ExistingTable::TruncateAndOverwrite as i32;
    put(client, to.clone(), vec![wide(0..7)]).await.unwrap();
    assert_eq!(rows_of(client, "lake/split/").await, 7);
    assert_eq!(s3.keys("lake-test").len(), 1 + description.len());

    // Parquet is the default format of a prefix write.
    put(
        client,
        write("lake/pq/", ExistingTable::Fail),
        vec![wide(0..5)],
    )
    .await
    .unwrap();
    assert!(
        s3.keys("lake-test")
            .iter()
            .any(|k| k.starts_with("exports/pq/part-") && k.ends_with(".parquet"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_stay_inside_the_bucket_prefix() {
    let mut t = setup("").await;
    let (s3, data, gw_url, client) = (&t.s3, t.data.clone(), t.gw.url.clone(), &mut t.client);
    let _ = (&s3, &data, &gw_url);
    put(
        client,
        write("raw/outside.csv", ExistingTable::Fail),
        vec![wide(0..3)],
    )
    .await
    .unwrap();
    let before = s3.keys("lake-test");
    let attempts: &[&[&str]] = &[
        &["lake", "..", "outside.csv"],
        &["lake", "%2e%2e", "outside.csv"],
        &["lake", "..%2foutside.csv"],
        &["lake", "a\\..\\..\\outside.csv"],
        &["lake", ".", "x.csv"],
        &["lake", "", "x.csv"],
        &["lake", "x\u{0}.csv"],
    ];
    let mut raw = arrow_flight::FlightClient::new(
        tonic::transport::Endpoint::from_shared(gw_url.replace("grpc://", "http://"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    for parts in attempts {
        let d =
            arrow_flight::FlightDescriptor::new_path(parts.iter().map(|s| s.to_string()).collect());
        let err = raw.get_flight_info(d).await.unwrap_err();
        assert!(
            matches!(&err, FlightError::Tonic(s) if s.code() == Code::InvalidArgument),
            "{parts:?}: {err}"
        );
        let target = Write {
            path: Some(Path {
                parts: parts.iter().map(|s| s.to_string()).collect(),
            }),
            ..Default::default()
        };
        let err = put(client, target, vec![wide(0..1)]).await.unwrap_err();
        assert_eq!(err.code(), Some(Code::InvalidArgument), "{parts:?}: {err}");
    }
    assert_eq!(s3.keys("lake-test"), before);
    // Inside the prefix, "outside.csv" is another object.
    let err = client.info(&read("lake/outside.csv")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_bucket_reads_and_refuses_writes() {
    let s3 = S3Server::start();
    s3.create_bucket("web");
    let dir = workdir();
    let config = format!(
        "{}[buckets.site]\nurl = \"{}/web/pub\"\n",
        s3.bucket_config("lake", "s3://web/pub"),
        s3.endpoint
    );
    let gw = Gateway::start_with_config_env(dir.path(), &config, &S3Server::envs());
    let client = &mut Client::connect(&gw.url).await.unwrap();
    put(
        client,
        write("lake/table.parquet", ExistingTable::Fail),
        vec![wide(0..50)],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rows_of(client, "site/table.parquet").await, 50);
    let info = client.info(&read("site/table.parquet")).await.unwrap();
    assert_eq!(info.total_records, 50);
    let err = put(
        client,
        write("site/new.parquet", ExistingTable::Fail),
        vec![wide(0..1)],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(Code::PermissionDenied), "{err}");
}

/// A partitioned read's tickets pin each object's ETag: redeemed again they give the same
/// rows; once a file is replaced, its ticket is refused as changed, never read as other rows.
#[tokio::test(flavor = "multi_thread")]
async fn tickets_of_a_prefix_pin_the_objects_they_read() {
    let mut t = setup("").await;
    let client = &mut t.client;
    for p in 0..3 {
        let name = format!("lake/pinned/part-{p}.parquet");
        put(
            client,
            write(&name, ExistingTable::Fail),
            vec![wide(p * 10..(p + 1) * 10)],
        )
        .await
        .unwrap();
    }
    let mut split = read("lake/pinned/");
    split.partitions = 3;
    let info = client.info(&split).await.unwrap();
    assert_eq!(info.endpoint.len(), 3);
    let rows = |batches: Vec<RecordBatch>| batches.iter().map(|b| b.num_rows()).sum::<usize>();
    let ticket = |i: usize| info.endpoint[i].ticket.clone().unwrap();
    let once: Vec<RecordBatch> = client
        .redeem(ticket(0))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let again: Vec<RecordBatch> = client
        .redeem(ticket(0))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(once, again);
    assert_eq!(rows(once), 10);
    // part-1 replaced by other rows.
    put(
        client,
        write("lake/pinned/part-1.parquet", ExistingTable::DropAndRecreate),
        vec![wide(500..520)],
    )
    .await
    .unwrap();
    let changed = match client.redeem(ticket(1)).await {
        Err(e) => e.to_string(),
        Ok(stream) => stream
            .try_collect::<Vec<RecordBatch>>()
            .await
            .map(|b| format!("read {} rows", rows(b)))
            .unwrap_or_else(|e| e.to_string()),
    };
    assert!(changed.contains("changed since GetFlightInfo"), "{changed}");
    let other: Vec<RecordBatch> = client
        .redeem(ticket(2))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows(other), 10);
}
