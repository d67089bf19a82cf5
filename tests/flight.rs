//! The Flight surface through the client library against a real gateway process: catalog,
//! reads, writes with progress, status codes, and targets left exactly as they were whenever a
//! load fails, however it fails.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::error::FlightError;
use arrow_flight::{FlightDescriptor, Ticket};
use futures::{StreamExt, TryStreamExt};
use mover_client::Client;
use mover_proto::{ExistingTable, FileOptions, Path, Read, Write, read::What};
use mover_tests::{Gateway, files_under, sqlite_has_table, sqlite_rows, workdir};
use tonic::Code;

fn path(name: &str) -> Vec<String> {
    mover_client::names::parse(name).unwrap()
}

fn read(name: &str) -> Read {
    Read {
        what: Some(What::Path(Path { parts: path(name) })),
        file: None,
        limit: 0,
        columns: vec![],
        ..Default::default()
    }
}

fn write(name: &str, existing: ExistingTable) -> Write {
    Write {
        path: Some(Path { parts: path(name) }),
        existing_table: existing as i32,
        ..Default::default()
    }
}

fn people(ids: std::ops::Range<i64>) -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let names: Vec<String> = ids.clone().map(|i| format!("person {i}")).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap();
    (schema, batch)
}

async fn put(
    client: &mut Client,
    target: &str,
    existing: ExistingTable,
    batches: Vec<RecordBatch>,
) -> mover_client::client::Result<u64> {
    let schema = batches[0].schema();
    let stream = futures::stream::iter(batches.into_iter().map(Ok::<_, FlightError>));
    let done = client.put(&write(target, existing), schema, stream).await?;
    Ok(done.rows_committed)
}

/// A gateway whose `demo` database holds `people` with 5 rows; those rows as they stand.
async fn with_people(dir: &std::path::Path, gw: Gateway) -> (Gateway, Client, Vec<Vec<String>>) {
    let mut client = Client::connect(&gw.url).await.unwrap();
    let (_, batch) = people(0..5);
    put(
        &mut client,
        "demo/main/people",
        ExistingTable::Fail,
        vec![batch],
    )
    .await
    .unwrap();
    let before = sqlite_rows(&dir.join("data/mover.db"), "people");
    (gw, client, before)
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_read_and_write_through_flight() {
    let dir = workdir();
    let data = dir.path().join("data");
    std::fs::write(data.join("a.csv"), "x,y\n1,one\n2,two\n").unwrap();
    let gw = Gateway::start_default(dir.path());
    let mut client = Client::connect(&gw.url).await.unwrap();

    // DoPut: a new table, with a final report of rows committed.
    let (_, batch) = people(0..1000);
    let rows = put(
        &mut client,
        "demo/main/people",
        ExistingTable::Fail,
        vec![batch.slice(0, 600), batch.slice(600, 400)],
    )
    .await
    .unwrap();
    assert_eq!(rows, 1000);

    // ListFlights: everything, then a prefix.
    let all = client.list("").await.unwrap();
    let names: Vec<String> = all
        .iter()
        .map(|i| i.flight_descriptor.as_ref().unwrap().path.join("/"))
        .collect();
    assert_eq!(names, ["demo/main/people", "files/a.csv"]);
    let only = client.list("files/").await.unwrap();
    assert_eq!(only.len(), 1);
    assert!(client.list("nothing-here").await.unwrap().is_empty());

    // GetFlightInfo: schema and count without reading the rows; the ticket reads them.
    let info = client.info(&read("demo/main/people")).await.unwrap();
    assert_eq!(info.total_records, 1000);
    let schema = info.clone().try_decode_schema().unwrap();
    assert_eq!(schema.field(0).name(), "id");
    assert!(!schema.field(0).is_nullable(), "NOT NULL was lost");

    // GetSchema for a file.
    let s = client.schema(&read("files/a.csv")).await.unwrap();
    assert_eq!(s.field(1).data_type(), &DataType::Utf8);

    // DoGet: all rows, in order; and a limit the gateway applies.
    let got: Vec<RecordBatch> = client
        .read(&read("demo/main/people"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<i64> = got
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, (0..1000).collect::<Vec<_>>());
    let mut limited = read("demo/main/people");
    limited.limit = 7;
    let got: Vec<RecordBatch> = client
        .read(&limited)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 7);

    // A path descriptor with DoPut creates; a second time it refuses (ALREADY_EXISTS).
    let err = put(
        &mut client,
        "demo/main/people",
        ExistingTable::Fail,
        vec![people(0..1).1],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(Code::AlreadyExists), "{err}");
    assert_eq!(sqlite_rows(&data.join("mover.db"), "people").len(), 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_codes_name_what_is_wrong() {
    let dir = workdir();
    let gw = Gateway::start_default(dir.path());
    let mut client = Client::connect(&gw.url).await.unwrap();

    let err = client.info(&read("nowhere/main/t")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound));
    assert!(err.to_string().contains("\"nowhere\""), "{err}");

    let err = client.info(&read("demo/main/absent")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound));
    assert!(err.to_string().contains("main.absent"), "{err}");

    let err = client.info(&read("files/absent.csv")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound));

    // Malformed descriptors and tickets: INVALID_ARGUMENT, never INTERNAL.
    let mut raw = raw_client(&gw).await;
    let err = raw
        .get_flight_info(FlightDescriptor::new_cmd(vec![0xff, 0x01]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FlightError::Tonic(s) if s.code() == Code::InvalidArgument),
        "{err}"
    );
    let err = raw.do_get(Ticket::new(vec![0xff, 0x01])).await.unwrap_err();
    assert!(
        matches!(&err, FlightError::Tonic(s) if s.code() == Code::InvalidArgument),
        "{err}"
    );
    let err = raw
        .get_flight_info(FlightDescriptor::new_path(vec![]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FlightError::Tonic(s) if s.code() == Code::InvalidArgument),
        "{err}"
    );

    // Keys that try to leave the bucket.
    for bad in [
        vec!["files", "..", "x.csv"],
        vec!["files", "%2e%2e", "x.csv"],
        vec!["files", "a\\..\\b.csv"],
    ] {
        let d = FlightDescriptor::new_path(bad.iter().map(|s| s.to_string()).collect());
        let err = raw.get_flight_info(d).await.unwrap_err();
        assert!(
            matches!(&err, FlightError::Tonic(s) if s.code() == Code::InvalidArgument),
            "{bad:?}: {err}"
        );
    }

    // SQL that writes is refused; SQL on a bucket is refused.
    let q = |db: &str, sql: &str| Read {
        what: Some(What::Query(mover_proto::Query {
            database: db.into(),
            sql: sql.into(),
            ..Default::default()
        })),
        file: None,
        limit: 0,
        columns: vec![],
        ..Default::default()
    };
    let err = client
        .info(&q("demo", "CREATE TABLE x (a INT)"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    let err = client.info(&q("files", "SELECT 1")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    assert!(!sqlite_has_table(&dir.path().join("data/mover.db"), "x"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_loads_leave_targets_as_they_were() {
    let dir = workdir();
    let data = dir.path().join("data");
    let db = data.join("mover.db");
    let (_gw, mut client, before) =
        with_people(dir.path(), Gateway::start_default(dir.path())).await;

    // Schema mismatch on append: a column the table lacks.
    let other = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("shoe_size", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        other,
        vec![
            Arc::new(Int64Array::from(vec![9])),
            Arc::new(Int64Array::from(vec![44])),
        ],
    )
    .unwrap();
    let err = put(
        &mut client,
        "demo/main/people",
        ExistingTable::Append,
        vec![batch],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    assert!(err.to_string().contains("shoe_size"), "{err}");
    assert_eq!(sqlite_rows(&db, "people"), before);

    // A ragged CSV row, after the first batch has already been inserted: the overwrite (its
    // DELETE included) rolls back. The error names the file and the line.
    let mut csv = String::from("id,name\n");
    for i in 0..20_000 {
        csv.push_str(&format!("{i},n{i}\n"));
    }
    csv.push_str("20000,n,EXTRA\n");
    std::fs::write(data.join("ragged.csv"), &csv).unwrap();
    let mv = mover_proto::Move {
        source: Some(read("files/ragged.csv")),
        target: Some(write(
            "demo/main/people",
            ExistingTable::TruncateAndOverwrite,
        )),
        ..Default::default()
    };
    let err = client.move_dataset(&mv, |_| {}).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("files/ragged.csv") && msg.contains("20002"),
        "{msg}"
    );
    assert_eq!(sqlite_rows(&db, "people"), before);

    // The same into a new table: the table is not created.
    let mv = mover_proto::Move {
        source: Some(read("files/ragged.csv")),
        target: Some(write("demo/main/fresh", ExistingTable::Fail)),
        ..Default::default()
    };
    client.move_dataset(&mv, |_| {}).await.unwrap_err();
    assert!(!sqlite_has_table(&db, "fresh"));

    // ...and into a Parquet file: no file, no staged part.
    let mv = mover_proto::Move {
        source: Some(read("files/ragged.csv")),
        target: Some(write("files/out/people.parquet", ExistingTable::Fail)),
        ..Default::default()
    };
    client.move_dataset(&mv, |_| {}).await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        files_under(&data)
            .iter()
            .filter(|f| f.starts_with("out"))
            .count(),
        0,
        "{:?}",
        files_under(&data)
    );

    // A corrupt Parquet file: INVALID_ARGUMENT naming it; nothing created.
    std::fs::write(
        data.join("corrupt.parquet"),
        b"PAR1 this is not parquet at all PAR1",
    )
    .unwrap();
    let err = client
        .info(&read("files/corrupt.parquet"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    assert!(err.to_string().contains("corrupt.parquet"), "{err}");
    let mv = mover_proto::Move {
        source: Some(read("files/corrupt.parquet")),
        target: Some(write("demo/main/c", ExistingTable::Fail)),
        ..Default::default()
    };
    client.move_dataset(&mv, |_| {}).await.unwrap_err();
    assert!(!sqlite_has_table(&db, "c"));

    // A value that does not fit the existing column names the row and column.
    let text = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
    let batch =
        RecordBatch::try_new(text, vec![Arc::new(StringArray::from(vec!["7", "eight"]))]).unwrap();
    let err = put(
        &mut client,
        "demo/main/people",
        ExistingTable::Append,
        vec![batch],
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("row 2") && err.to_string().contains("\"id\""),
        "{err}"
    );
    assert_eq!(sqlite_rows(&db, "people"), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_vanishes_mid_put_changes_nothing() {
    let dir = workdir();
    let db = dir.path().join("data/mover.db");
    let (gw, mut client, before) =
        with_people(dir.path(), Gateway::start_default(dir.path())).await;

    for (target, existing) in [
        ("demo/main/people", ExistingTable::TruncateAndOverwrite),
        ("demo/main/people", ExistingTable::Append),
        ("demo/main/newone", ExistingTable::Fail),
        ("files/out.parquet", ExistingTable::Fail),
    ] {
        // Send some batches, then hang up without ending the stream.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch, FlightError>>(4);
        let url = gw.url.clone();
        let task = tokio::spawn(async move {
            let mut c = Client::connect(&url).await.unwrap();
            let (schema, _) = people(0..1);
            let stream = tokio_stream_from(rx);
            c.put(&write(target, existing), schema, stream).await
        });
        for k in 0..3 {
            tx.send(Ok(people(k * 100..(k + 1) * 100).1)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The caller gives up and its source ends: a Flight client reports that to the server
        // as a normal end of the upload, so only the missing end-of-upload message tells.
        task.abort();
        let _ = task.await;
        drop(tx);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(sqlite_rows(&db, "people"), before, "{target} {existing:?}");
        assert!(!sqlite_has_table(&db, "newone"));
        assert!(!dir.path().join("data/out.parquet").exists());
    }
    assert!(
        files_under(&dir.path().join("data"))
            .iter()
            .all(|f| !f.contains('#'))
    );
    // The gateway still serves.
    assert_eq!(
        client
            .info(&read("demo/main/people"))
            .await
            .unwrap()
            .total_records,
        5
    );
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<RecordBatch, FlightError>>,
) -> impl futures::Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

#[tokio::test(flavor = "multi_thread")]
async fn file_formats_and_prefixes() {
    let dir = workdir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("parts")).unwrap();
    for p in 0..3 {
        std::fs::write(
            data.join(format!("parts/part-{p}.csv")),
            format!("a,b\n{p},x{p}\n{p},y{p}\n"),
        )
        .unwrap();
    }
    std::fs::write(data.join("pipes.txt"), "a|b\n1|one\n").unwrap();
    let gw = Gateway::start_default(dir.path());
    let mut client = Client::connect(&gw.url).await.unwrap();

    // A prefix reads as one dataset, parts in name order.
    let got: Vec<RecordBatch> = client
        .read(&read("files/parts/"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 6);
    let info = client.info(&read("files/parts/")).await.unwrap();
    assert_eq!(info.total_bytes, 3 * 14);

    // A part with other columns is named in the error.
    std::fs::write(data.join("parts/part-3.csv"), "a,c\n1,z\n").unwrap();
    let err = client
        .read(&read("files/parts/"))
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("part-3.csv"), "{err}");

    // A file whose extension says nothing: the format and delimiter are given.
    let mut r = read("files/pipes.txt");
    let err = client.info(&r).await.unwrap_err();
    assert!(
        err.to_string().contains("pipes.txt") && err.to_string().contains("format"),
        "{err}"
    );
    r.file = Some(FileOptions {
        format: mover_proto::FileFormat::Csv as i32,
        csv: Some(mover_proto::CsvOptions {
            header: Some(true),
            delimiter: Some("|".into()),
        }),
        ..Default::default()
    });
    let got: Vec<RecordBatch> = client.read(&r).await.unwrap().try_collect().await.unwrap();
    assert_eq!(got[0].num_columns(), 2);
    assert_eq!(
        got[0]
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0),
        "one"
    );

    // Files are replaced atomically or not at all, never appended to.
    let (_, batch) = people(0..3);
    put(
        &mut client,
        "files/p.parquet",
        ExistingTable::Fail,
        vec![batch.clone()],
    )
    .await
    .unwrap();
    let err = put(
        &mut client,
        "files/p.parquet",
        ExistingTable::Append,
        vec![batch.clone()],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(Code::Unimplemented), "{err}");
    let rows = put(
        &mut client,
        "files/p.parquet",
        ExistingTable::TruncateAndOverwrite,
        vec![people(0..2).1],
    )
    .await
    .unwrap();
    assert_eq!(rows, 2);
    assert_eq!(
        client
            .info(&read("files/p.parquet"))
            .await
            .unwrap()
            .total_records,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_upload_times_out_and_changes_nothing() {
    let dir = workdir();
    let db = dir.path().join("data/mover.db");
    let gw = Gateway::start_with_config(
        dir.path(),
        "[server]\nput_idle_timeout_seconds = 1\n[databases.demo]\nurl = \"sqlite://data/mover.db\"\n[buckets.files]\nurl = \"file://data\"\n",
    );
    let (_gw, mut client, before) = with_people(dir.path(), gw).await;

    // One batch, then silence with the connection held open.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch, FlightError>>(4);
    tx.send(Ok(people(100..200).1)).await.unwrap();
    let started = std::time::Instant::now();
    let result = client
        .put(
            &write("demo/main/people", ExistingTable::TruncateAndOverwrite),
            people(0..1).0,
            tokio_stream_from(rx),
        )
        .await;
    let err = result.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout did not fire"
    );
    assert!(err.to_string().contains("sent nothing for 1s"), "{err}");
    assert_eq!(sqlite_rows(&db, "people"), before);
    drop(tx);
}

#[tokio::test(flavor = "multi_thread")]
async fn flight_info_for_parquet_reads_only_the_footer() {
    let dir = workdir();
    let gw = Gateway::start_default(dir.path());
    let mut client = Client::connect(&gw.url).await.unwrap();
    let (_, batch) = people(0..50_000);
    put(
        &mut client,
        "files/p.parquet",
        ExistingTable::Fail,
        vec![batch],
    )
    .await
    .unwrap();

    // Overwrite every byte between the leading magic and the footer: the data pages are gone.
    let file = dir.path().join("data/p.parquet");
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    let footer = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    let data_end = n - 8 - footer;
    assert!(data_end > 1000, "the file should hold data pages");
    bytes[4..data_end].fill(0xAB);
    std::fs::write(&file, bytes).unwrap();

    let info = client.info(&read("files/p.parquet")).await.unwrap();
    assert_eq!(info.total_records, 50_000);
    assert_eq!(info.try_decode_schema().unwrap().field(1).name(), "name");
    let err = client
        .read(&read("files/p.parquet"))
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("p.parquet"), "{err}");
}

/// A SQLite table is read in ranges of its rowids, every row once (holes in the rowids
/// included); a view and a WITHOUT ROWID table, whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_table_is_read_in_rowid_ranges() {
    let dir = workdir();
    rusqlite::Connection::open(dir.path().join("data/mover.db"))
        .unwrap()
        .execute_batch(
            "CREATE TABLE big (id INTEGER NOT NULL, pad TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
             INSERT INTO big SELECT i, 'x' || i FROM n;
             DELETE FROM big WHERE id BETWEEN 20000 AND 30000;
             CREATE VIEW big_view AS SELECT * FROM big;
             CREATE TABLE keyed (id INTEGER PRIMARY KEY, pad TEXT) WITHOUT ROWID;
             INSERT INTO keyed SELECT id, pad FROM big;",
        )
        .unwrap();
    let gw = Gateway::start_default(dir.path());
    let mut client = Client::connect(&gw.url).await.unwrap();
    let expected: Vec<i64> = (1..20000).chain(30001..=100_000).collect();
    let (endpoints, ids) = mover_tests::ids_in_parts(&mut client, "demo/main/big", 4).await;
    assert_eq!(endpoints, 4);
    assert_eq!(ids, expected);
    for whole in ["demo/main/big_view", "demo/main/keyed"] {
        let (endpoints, ids) = mover_tests::ids_in_parts(&mut client, whole, 4).await;
        assert_eq!((endpoints, ids.len()), (1, expected.len()), "{whole}");
    }
}

/// Load: 200 small DoGets at once, then 32 moves at once of three kinds (CSV -> Parquet,
/// SQLite -> CSV, CSV -> SQLite): every result exact, and the gateway holds no more file
/// descriptors afterwards than before.
#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_reads_and_thirty_two_moves_at_once_leak_nothing() {
    let dir = workdir();
    let data = dir.path().join("data");
    let mut csv = String::from("id,name\n");
    for i in 0..5000 {
        csv.push_str(&format!("{i},name {i}\n"));
    }
    std::fs::write(data.join("in.csv"), &csv).unwrap();
    let config = "[server]\nmax_streams_per_principal = 512\n\
                  [databases.demo]\nurl = \"sqlite://data/mover.db\"\n[buckets.files]\nurl = \"file://data\"\n";
    let gw = Gateway::start_with_config(dir.path(), config);
    let mv = |from: &str, to: &str| mover_proto::Move {
        source: Some(read(from)),
        target: Some(write(to, ExistingTable::Fail)),
        source_gateway: String::new(),
    };
    {
        let mut setup = Client::connect(&gw.url).await.unwrap();
        let small = mv("files/in.csv", "demo/main/small");
        setup.move_dataset(&small, |_| {}).await.unwrap();
    }
    // Counted with no client connected: the load's connections must all close again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = gw.open_fds();
    let mut client = Client::connect(&gw.url).await.unwrap();
    let ids_sum: i64 = (0..5000).sum();

    let sum_of = |batches: Vec<RecordBatch>| -> (usize, i64) {
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let sum = batches
            .iter()
            .map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .iter()
                    .sum::<i64>()
            })
            .sum();
        (rows, sum)
    };
    let reads = (0..200).map(|_| {
        let mut c = client.handle();
        async move {
            let batches: Vec<RecordBatch> = c
                .read(&read("demo/main/small"))
                .await?
                .try_collect()
                .await?;
            Ok::<_, mover_client::ClientError>(batches)
        }
    });
    for got in futures::future::join_all(reads).await {
        assert_eq!(sum_of(got.unwrap()), (5000, ids_sum));
    }

    let moves = (0..32).map(|i| {
        let mut c = client.handle();
        let (from, to) = match i % 3 {
            0 => (
                "files/in.csv".to_string(),
                format!("files/out/p{i}.parquet"),
            ),
            1 => ("demo/main/small".to_string(), format!("files/out/c{i}.csv")),
            _ => ("files/in.csv".to_string(), format!("demo/main/t{i}")),
        };
        let mv = mv(&from, &to);
        async move { (to, c.move_dataset(&mv, |_| {}).await) }
    });
    for (to, done) in futures::future::join_all(moves).await {
        let done = done.unwrap_or_else(|e| panic!("{to}: {e}"));
        assert_eq!(done.rows_committed, 5000, "{to}");
        let batches: Vec<RecordBatch> = client
            .read(&read(&to))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(sum_of(batches), (5000, ids_sum), "{to}");
    }
    drop(client);
    // Connections close as their clients go; give the server a moment to see it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gw.open_fds() > before {
        assert!(
            std::time::Instant::now() < deadline,
            "{} file descriptors open after the load, {before} before",
            gw.open_fds()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "after the load: {} open fds ({before} before), peak RSS {} MiB",
        gw.open_fds(),
        gw.peak_rss_mb()
    );
}

/// An upload whose IPC messages lie about their bodies (a record batch header claiming more
/// bytes than came, or not a flatbuffer at all) is refused as the caller's mistake, with no
/// table made, and the gateway serves on.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_with_forged_ipc_lengths_is_refused_and_changes_nothing() {
    use arrow_flight::encode::FlightDataEncoderBuilder;
    let dir = workdir();
    let db = dir.path().join("data/mover.db");
    let gw = Gateway::start_default(dir.path());
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(
            (0..10_000).collect::<Vec<i64>>(),
        ))],
    )
    .unwrap();
    let honest: Vec<arrow_flight::FlightData> = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_path(vec![
            "demo".into(),
            "main".into(),
            "forged".into(),
        ])))
        .build(futures::stream::iter([Ok(batch)]))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(honest.len(), 2, "a schema message and a batch");
    let mut cut = honest.clone();
    cut[1].data_body = cut[1].data_body.slice(..100);
    let mut garbage = honest.clone();
    garbage[1].data_header = bytes::Bytes::from_static(b"\xff\xff\xff\xffnot a flatbuffer");
    // Found by fuzzing: messages on which arrow-ipc panics (an offsets buffer whose length is
    // no multiple of four), in the fuzz target's framing.
    let path = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/upload"),
    )
    .unwrap()
    .next()
    .unwrap()
    .unwrap()
    .path();
    let mut panicking = fuzzed_upload(&std::fs::read(path).unwrap());
    panicking[0].flight_descriptor = honest[0].flight_descriptor.clone();
    for (name, forged, why) in [
        ("a body cut short", cut, "past the"),
        ("a header of garbage", garbage, "does not verify"),
        ("messages arrow-ipc panics on", panicking, "does not decode"),
    ] {
        let mut raw = raw_client(&gw).await;
        let result = match raw
            .do_put(futures::stream::iter(forged.into_iter().map(Ok)))
            .await
        {
            Ok(answers) => answers.try_collect::<Vec<_>>().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let err = result.expect_err(name);
        assert!(
            matches!(&err, FlightError::Tonic(s) if s.code() == Code::InvalidArgument && s.message().contains(why)),
            "{name}: {err}"
        );
        assert!(!sqlite_has_table(&db, "forged"), "{name}");
    }
    // Still serving: the honest upload lands.
    let mut client = Client::connect(&gw.url).await.unwrap();
    let mut raw = raw_client(&gw).await;
    let answers = raw
        .do_put(futures::stream::iter(honest.into_iter().map(Ok)))
        .await
        .unwrap();
    answers.try_collect::<Vec<_>>().await.unwrap();
    assert_eq!(sqlite_rows(&db, "forged").len(), 10_000);
    client.info(&read("demo/main/forged")).await.unwrap();
}

/// An upload in the `upload` fuzz target's framing: per message a flags byte, then a header
/// and a body behind two-byte big-endian lengths (gateway/src/fuzzing/flight.rs).
fn fuzzed_upload(mut data: &[u8]) -> Vec<arrow_flight::FlightData> {
    let sized = |data: &mut &[u8]| {
        let len = match *data {
            [a, b, rest @ ..] => {
                *data = rest;
                usize::from(u16::from_be_bytes([*a, *b]))
            }
            _ => {
                *data = &[];
                0
            }
        };
        let (part, rest) = data.split_at(len.min(data.len()));
        *data = rest;
        bytes::Bytes::copy_from_slice(part)
    };
    let mut messages = vec![];
    while let [_flags, rest @ ..] = data {
        data = rest;
        let header = sized(&mut data);
        let body = sized(&mut data);
        messages.push(
            arrow_flight::FlightData::new()
                .with_data_header(header)
                .with_data_body(body),
        );
    }
    messages
}

/// A plain arrow-flight client of `gw`, for requests the mover client would not send.
async fn raw_client(gw: &Gateway) -> arrow_flight::FlightClient {
    let endpoint = tonic::transport::Endpoint::from_shared(gw.url.replace("grpc://", "http://"));
    arrow_flight::FlightClient::new(endpoint.unwrap().connect().await.unwrap())
}
