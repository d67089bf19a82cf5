//! The behaviour every backend must show, written once: each check is a function that takes any
//! [`Backend`], and `tests/contract.rs` calls every check from one test per backend (object_store's
//! `integration.rs` is the model). A backend is a real gateway process serving the store under
//! test as the source `t`, beside a SQLite database `src` that the checks read from, and a way
//! to look at what the store holds without going through the gateway.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use mover_client::Client;
use mover_proto::{ExistingTable, FileFormat, FileOptions, Move, Path, Query, Read, Write};
use tonic::Code;

use crate::count_rows;

use crate::values;
use crate::{Azurite, FakeGcs, Gateway, Mariadb, Pki, Postgres, S3Server, workdir};

/// How to look at the store behind source `t`.
pub enum Store {
    Local(PathBuf),
    S3(S3Server),
    Azure(Azurite),
    Gcs(FakeGcs),
    Sqlite(PathBuf),
    Postgres(Postgres),
    Mariadb(Mariadb),
}

/// One backend under the contract.
pub struct Backend {
    pub label: &'static str,
    pub gw: Gateway,
    pub store: Store,
    config: String,
    envs: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

/// The bucket (or container) the cloud backends write into, below the prefix `under`.
pub const BUCKET: &str = "contract";

impl Backend {
    pub(crate) fn start(
        label: &'static str,
        store: Store,
        target_config: &str,
        envs: &[(&str, &str)],
    ) -> Self {
        Self::start_in(workdir(), label, store, target_config, envs)
    }

    /// As [`Backend::start`], in `dir` (which may hold what the store needs: certificates).
    fn start_in(
        dir: tempfile::TempDir,
        label: &'static str,
        store: Store,
        target_config: &str,
        envs: &[(&str, &str)],
    ) -> Self {
        let config = format!(
            "[databases.src]\nurl = \"sqlite://data/src.db\"\nallow_sql = true\n{target_config}"
        );
        let gw = Gateway::start_with_config_env(dir.path(), &config, envs);
        let envs = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let store = match store {
            Store::Local(rel) => Store::Local(dir.path().join(rel)),
            Store::Sqlite(rel) => Store::Sqlite(dir.path().join(rel)),
            other => other,
        };
        Self {
            label,
            gw,
            store,
            config,
            envs,
            dir,
        }
    }

    /// Kill the gateway (no chance to clean up) and start it again on the same config.
    pub fn restart(&mut self) {
        self.gw.kill();
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.gw = Gateway::start_with_config_env(self.dir.path(), &self.config, &envs);
    }

    /// The database server killed as a crash would, and started again on the same data.
    pub fn crash_database(&mut self) {
        match &mut self.store {
            Store::Postgres(pg) => pg.crash_and_restart(),
            Store::Mariadb(db) => db.crash_and_restart(),
            _ => panic!("{}: no database server of its own to kill", self.label),
        }
    }

    /// A local folder (`file://`), with parts of 1 MiB.
    pub fn local() -> Self {
        Self::local_with("")
    }

    /// [`Backend::local`], with `extra` config after the bucket's.
    pub(crate) fn local_with(extra: &str) -> Self {
        let config = format!("[buckets.t]\nurl = \"file://data/t\"\npart_size_mb = 1\n{extra}");
        let b = Self::start("local folder", Store::Local("data/t".into()), &config, &[]);
        if let Store::Local(dir) = &b.store {
            std::fs::create_dir_all(dir).unwrap();
        }
        b
    }

    /// S3 on moto, with parts of 1 MiB.
    pub fn s3() -> Self {
        let s3 = S3Server::start();
        s3.create_bucket(BUCKET);
        let config = format!(
            "{}part_size_mb = 1\n",
            s3.bucket_config("t", &format!("s3://{BUCKET}/under"))
        );
        Self::start("S3 (moto)", Store::S3(s3), &config, &S3Server::envs())
    }

    /// Azure Blob Storage on Azurite, with parts of 1 MiB.
    pub fn azure() -> Self {
        let azurite = Azurite::start();
        azurite.create_container(BUCKET);
        let config = format!(
            "{}part_size_mb = 1\n",
            azurite.bucket_config("t", BUCKET, "under")
        );
        Self::start(
            "Azure (Azurite)",
            Store::Azure(azurite),
            &config,
            &Azurite::envs(),
        )
    }

    /// GCS on fake-gcs-server, with parts of 1 MiB.
    pub fn gcs() -> Self {
        let gcs = FakeGcs::start();
        gcs.create_bucket(BUCKET);
        let config = format!(
            "{}part_size_mb = 1\n",
            gcs.bucket_config("t", BUCKET, "under")
        );
        Self::start("GCS (fake-gcs-server)", Store::Gcs(gcs), &config, &[])
    }

    pub fn sqlite() -> Self {
        let config = "[databases.t]\nurl = \"sqlite://data/t.db\"\nallow_sql = true\n";
        Self::start("SQLite", Store::Sqlite("data/t.db".into()), config, &[])
    }

    pub fn postgres() -> Self {
        let pg = Postgres::start();
        let config = Self::database_config("t", &pg.url(), "PG_TEST_PASSWORD", "");
        let envs = [("PG_TEST_PASSWORD", Postgres::PASSWORD)];
        Self::start("Postgres", Store::Postgres(pg), &config, &envs)
    }

    pub fn mariadb() -> Self {
        let db = Mariadb::start();
        let config = Self::database_config("t", &db.url(), "MARIA_PASSWORD", "");
        let envs = [("MARIA_PASSWORD", Mariadb::PASSWORD)];
        Self::start("MariaDB", Store::Mariadb(db), &config, &envs)
    }

    /// Postgres that speaks only TLS, with a certificate of the test's CA: `t` trusts that
    /// CA, `wrong` (the same server) trusts another.
    pub fn postgres_over_tls() -> Self {
        let dir = workdir();
        let pki = Pki::make(&dir.path().join("pki"));
        let pg = Postgres::start_with_tls(Some((&pki.pem("gateway"), &pki.key("gateway"))));
        let config = Self::tls_configs(&pki, &pg.url(), "PG_TEST_PASSWORD");
        let envs = [("PG_TEST_PASSWORD", Postgres::PASSWORD)];
        Self::start_in(
            dir,
            "Postgres over TLS",
            Store::Postgres(pg),
            &config,
            &envs,
        )
    }

    /// MariaDB that requires TLS, as [`Backend::postgres_over_tls`].
    pub fn mariadb_over_tls() -> Self {
        let dir = workdir();
        let pki = Pki::make(&dir.path().join("pki"));
        let (cert, key, ca) = (pki.pem("gateway"), pki.key("gateway"), pki.pem("ca"));
        let db = Mariadb::start_with(&[
            &format!("--ssl-cert={}", cert.display()),
            &format!("--ssl-key={}", key.display()),
            &format!("--ssl-ca={}", ca.display()),
            "--require-secure-transport=ON",
        ]);
        let config = Self::tls_configs(&pki, &db.url(), "MARIA_PASSWORD");
        let envs = [("MARIA_PASSWORD", Mariadb::PASSWORD)];
        Self::start_in(dir, "MariaDB over TLS", Store::Mariadb(db), &config, &envs)
    }

    pub(crate) fn database_config(
        name: &str,
        url: &str,
        password_env: &str,
        extra: &str,
    ) -> String {
        format!(
            "[databases.{name}]\nurl = \"{url}\"\npassword_env = \"{password_env}\"\nallow_sql = true\n{extra}"
        )
    }

    fn tls_configs(pki: &Pki, url: &str, password_env: &str) -> String {
        let ca = |name: &str| format!("ca_file = \"{}\"\n", pki.pem(name).display());
        Self::database_config("t", url, password_env, &ca("ca"))
            + &Self::database_config("wrong", url, password_env, &ca("other-ca"))
    }

    pub(crate) fn is_bucket(&self) -> bool {
        matches!(
            self.store,
            Store::Local(_) | Store::S3(_) | Store::Azure(_) | Store::Gcs(_)
        )
    }

    /// The datasets a check named `stem` writes in this backend: a table, or a file, a prefix
    /// and a records directory.
    pub(crate) fn targets_named(&self, stem: &str) -> Vec<Target> {
        let table = |name: &str| Target {
            name: name.into(),
            format: None,
        };
        match &self.store {
            Store::Local(_) | Store::S3(_) | Store::Azure(_) | Store::Gcs(_) => vec![
                table(&format!("t/{stem}.csv")),
                // CSV parts: their bytes reach the store as they are encoded, so parts are
                // published while the write runs (Parquet holds a row group first).
                Target {
                    name: format!("t/{stem}/"),
                    format: Some(FileFormat::Csv),
                },
                Target {
                    name: format!("t/{stem}_dir/"),
                    format: Some(FileFormat::Records),
                },
            ],
            Store::Sqlite(_) => vec![table(&format!("t/main/{stem}"))],
            Store::Postgres(_) => vec![table(&format!("t/public/{stem}"))],
            Store::Mariadb(_) => vec![table(&format!("t/test/{stem}"))],
        }
    }

    /// Everything the store holds, one line each: objects with their sizes (staging files and
    /// open multipart uploads included), or tables with their row counts (staging tables
    /// included). Equal before and after means the store is as it was.
    pub fn state(&self) -> Vec<String> {
        let mut lines = match &self.store {
            Store::Local(dir) => crate::files_under(dir)
                .into_iter()
                .map(|f| {
                    let size = std::fs::metadata(dir.join(&f)).map_or(0, |m| m.len());
                    format!("{f} {size}")
                })
                .collect(),
            Store::S3(s3) => {
                // An object listed and removed before its HEAD is gone: left out.
                let mut lines: Vec<String> = s3
                    .keys(BUCKET)
                    .into_iter()
                    .filter_map(|k| {
                        let head = s3.http("HEAD", &format!("/{BUCKET}/{k}"));
                        let etag = head.lines().find_map(|l| {
                            l.strip_prefix("ETag: ")
                                .or_else(|| l.strip_prefix("etag: "))
                        })?;
                        Some(format!("{k} {}", etag.trim()))
                    })
                    .collect();
                // An upload that holds no part holds no data. object_store retries
                // CreateMultipartUpload (it marks it idempotent) after a timeout or a reset
                // connection, so on a loaded machine moto can be left an empty upload that no
                // client knows the id of, and so none can abort (S3 lifecycle rules clear
                // them). Those are said, not counted; an upload with parts is a leak.
                for (key, id, parts) in s3.pending_uploads_with_parts(BUCKET) {
                    if parts == 0 {
                        eprintln!(
                            "{}: an empty open upload of {key} ({id}), not counted",
                            self.label
                        );
                    } else {
                        lines.push(format!("open multipart upload of {key} with {parts} parts"));
                    }
                }
                lines
            }
            Store::Azure(azurite) => azurite.blobs(BUCKET),
            Store::Gcs(gcs) => gcs.objects(BUCKET),
            Store::Sqlite(db) => {
                let conn = rusqlite::Connection::open(db).unwrap();
                let mut stmt = conn
                    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
                    .unwrap();
                let tables: Vec<String> = stmt
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                tables
                    .into_iter()
                    .map(|t| {
                        let sql = format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\""));
                        let n: i64 = conn.query_row(&sql, [], |r| r.get(0)).unwrap();
                        format!("{t} {n}")
                    })
                    .collect()
            }
            Store::Postgres(pg) => {
                let tables = pg.psql(
                    "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                     WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
                );
                // A table a write holds locked is said to be so, not waited for.
                tables
                    .lines()
                    .map(|t| {
                        let sql = format!("SET lock_timeout = '200ms'; SELECT count(*) FROM {t}");
                        match pg.try_psql(&sql) {
                            Ok(n) => format!("{t} {n}"),
                            Err(_) => format!("{t} locked"),
                        }
                    })
                    .collect()
            }
            Store::Mariadb(db) => {
                let tables = db.sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'test'",
                );
                // A staging table listed and dropped before its count is gone: left out.
                tables
                    .lines()
                    .filter_map(|t| {
                        let n = db.try_sql(&format!("SELECT count(*) FROM `{t}`")).ok()?;
                        Some(format!("{t} {n}"))
                    })
                    .collect()
            }
        };
        lines.sort();
        lines
    }

    /// Poll until the store is `expected` again, for at most `within`.
    pub(crate) async fn settles_to(&self, expected: &[String], within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let now = self.state();
            if now == expected || Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.gw.url)
            .await
            .expect("connect to the gateway")
    }
}

pub(crate) struct Target {
    pub(crate) name: String,
    /// Written in this format rather than the one its name implies.
    format: Option<FileFormat>,
}

impl Target {
    pub(crate) fn is_records_dir(&self) -> bool {
        self.format == Some(FileFormat::Records)
    }

    pub(crate) fn write(&self, existing: ExistingTable) -> Write {
        Write {
            path: Some(path(&self.name)),
            existing_table: existing as i32,
            file: self.format.map(|format| FileOptions {
                format: format as i32,
                // Uncompressed, so that a write cut after a second has uploaded parts.
                records: (format == FileFormat::Records).then(|| mover_proto::RecordsOptions {
                    hints_json: r#"{"compression": null}"#.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn path(name: &str) -> Path {
    Path {
        parts: mover_client::names::parse(name).expect("a dataset name"),
    }
}

/// `rows` rows of (id, a 200-character text) from SQLite, made as they are read: a source as
/// big as a check needs that costs no disk. 100 million rows is a source that outlasts any
/// check that cancels it.
pub(crate) fn generated(rows: u64) -> Read {
    Read {
        what: Some(mover_proto::read::What::Query(Query {
            database: "src".into(),
            sql: format!(
                "WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < {rows}) \
                 SELECT id, printf('%0200d', id) AS text FROM n"
            ),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub(crate) async fn move_into(
    client: &mut Client,
    source: Read,
    target: Write,
) -> mover_client::client::Result<u64> {
    let mv = Move {
        source: Some(source),
        target: Some(target),
        ..Default::default()
    };
    Ok(client.move_dataset(&mv, |_| {}).await?.rows_committed)
}

/// A write whose future is dropped mid-stream (a Ctrl-C on `mvrec cp`: the move's client goes
/// away, and the gateway drops the move) leaves the target exactly as it was: no new part,
/// object or table, no open multipart upload, no staging file or table, the old data whole.
pub async fn a_dropped_write_leaves_the_target_as_it_was(b: &Backend) {
    let mut client = b.client().await;
    for target in b.targets_named("dropped") {
        // An existing dataset to replace (a records directory is written only into an empty
        // prefix, so that one starts absent).
        if !target.is_records_dir() {
            let rows = move_into(
                &mut client,
                generated(1000),
                target.write(ExistingTable::Fail),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: seeding {}: {e}", b.label, target.name));
            assert_eq!(rows, 1000);
        }
        let before = b.state();
        let mode = if target.is_records_dir() {
            ExistingTable::Fail
        } else {
            ExistingTable::DropAndRecreate
        };
        let endless = move_into(&mut client, generated(100_000_000), target.write(mode));
        // Cancel a second after the write has staged something the store shows (an open
        // upload, a staging table), by when parts of a prefix are published; a write that
        // stages out of sight (a transaction) is cancelled after two seconds.
        let staged = async {
            let started = Instant::now();
            while b.state() == before && started.elapsed() < Duration::from_secs(2) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        tokio::select! {
            done = endless => panic!("{}: {}: the write ended before it was dropped: {done:?}", b.label, target.name),
            () = staged => {}
        }
        let after = b.settles_to(&before, Duration::from_secs(30)).await;
        assert_eq!(
            after,
            before,
            "{}: {}: a dropped write changed the store; the gateway's log:\n{}",
            b.label,
            target.name,
            b.gw.log()
        );
        // And the dataset still reads as before: 1000 rows, or nothing at all.
        let read = Read {
            what: Some(mover_proto::read::What::Path(path(&target.name))),
            ..Default::default()
        };
        let got = count_rows(&mut client, &read).await;
        if target.is_records_dir() {
            assert!(got.is_err(), "{}: {}: {got:?}", b.label, target.name);
        } else {
            assert_eq!(got.unwrap(), 1000, "{}: {}", b.label, target.name);
        }
    }
}

/// Rows of (id, name[, extra]) as one batch.
fn batch(ids: std::ops::Range<i64>, extra: bool) -> RecordBatch {
    let mut fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ];
    let names: Vec<Option<String>> = ids.clone().map(|i| Some(format!("name {i}"))).collect();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(ids.clone())),
        Arc::new(StringArray::from(names)),
    ];
    if extra {
        fields.push(Field::new("extra", DataType::Int64, true));
        columns.push(Arc::new(Int64Array::from_iter_values(ids)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("a batch")
}

async fn put_rows(
    client: &mut Client,
    target: &Target,
    mode: ExistingTable,
    rows: RecordBatch,
) -> mover_client::client::Result<u64> {
    crate::names::put(client, target.write(mode), vec![rows]).await
}

pub(crate) fn read_of(target: &Target) -> Read {
    crate::names::read(&target.name)
}

/// The targets a mode applies to the way it does to a table: a records directory is written
/// only into an empty prefix, so it has no modes to check.
fn with_modes(b: &Backend) -> Vec<Target> {
    b.targets_named("modes")
        .into_iter()
        .filter(|t| !t.is_records_dir())
        .collect()
}

/// Every existing-table mode, the same in every backend: `fail` refuses a target that exists
/// (ALREADY_EXISTS, naming the modes as the CLI spells them), `append` adds (a single file
/// cannot: UNIMPLEMENTED), the two overwrites replace the rows, `drop-and-recreate` replaces
/// the definition too.
pub async fn every_existing_table_mode(b: &Backend) {
    let mut client = b.client().await;
    for target in with_modes(b) {
        let at = |what: &str| format!("{}: {}: {what}", b.label, target.name);
        let put = put_rows(
            &mut client,
            &target,
            ExistingTable::Fail,
            batch(0..3, false),
        );
        assert_eq!(put.await.unwrap(), 3, "{}", at("a new target"));
        let err = put_rows(
            &mut client,
            &target,
            ExistingTable::Fail,
            batch(0..3, false),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Some(Code::AlreadyExists), "{}", at("fail"));
        assert!(
            err.to_string().contains("truncate-and-overwrite"),
            "{}: {err}",
            at("fail")
        );
        let appended = put_rows(
            &mut client,
            &target,
            ExistingTable::Append,
            batch(3..6, false),
        )
        .await;
        let single_file = !target.name.ends_with('/') && b.is_bucket();
        if single_file {
            let err = appended.unwrap_err();
            assert_eq!(
                err.code(),
                Some(Code::Unimplemented),
                "{}: {err}",
                at("append")
            );
        } else {
            assert_eq!(appended.unwrap(), 3, "{}", at("append"));
            assert_eq!(count_rows(&mut client, &read_of(&target)).await, Ok(6));
        }
        for (mode, rows) in [
            (ExistingTable::TruncateAndOverwrite, 0..2),
            (ExistingTable::DeleteAndOverwrite, 0..4),
        ] {
            let n = rows.end as usize;
            let put = put_rows(&mut client, &target, mode, batch(rows, false)).await;
            assert_eq!(put.unwrap(), n as u64, "{}", at(&format!("{mode:?}")));
            assert_eq!(
                count_rows(&mut client, &read_of(&target)).await,
                Ok(n),
                "{}",
                at(&format!("{mode:?}"))
            );
        }
        let put = put_rows(
            &mut client,
            &target,
            ExistingTable::DropAndRecreate,
            batch(0..1, true),
        );
        assert_eq!(put.await.unwrap(), 1, "{}", at("drop-and-recreate"));
        let schema = client.schema(&read_of(&target)).await.unwrap();
        assert_eq!(schema.fields().len(), 3, "{}", at("drop-and-recreate"));
        assert_eq!(count_rows(&mut client, &read_of(&target)).await, Ok(1));
    }
}

/// A write of no rows makes a dataset that reads as no rows (with its columns), and 100,000
/// rows in batches of 8,192 read back as 100,000.
pub async fn zero_rows_and_many(b: &Backend) {
    let mut client = b.client().await;
    for target in b.targets_named("zero") {
        let at = format!("{}: {}", b.label, target.name);
        let put = put_rows(
            &mut client,
            &target,
            ExistingTable::Fail,
            batch(0..0, false),
        );
        assert_eq!(put.await.unwrap(), 0, "{at}: no rows");
        assert_eq!(
            count_rows(&mut client, &read_of(&target)).await,
            Ok(0),
            "{at}"
        );
        let schema = client.schema(&read_of(&target)).await.unwrap();
        assert_eq!(schema.fields().len(), 2, "{at}: no rows keep their columns");
        let mode = if target.is_records_dir() {
            // A records directory is written only into an empty prefix: a new one.
            ExistingTable::Fail
        } else {
            ExistingTable::DropAndRecreate
        };
        let many: Vec<RecordBatch> = (0..100_000i64)
            .step_by(8192)
            .map(|start| batch(start..(start + 8192).min(100_000), false))
            .collect();
        let target = if target.is_records_dir() {
            Target {
                name: target.name.replace("_dir/", "_many_dir/"),
                format: target.format,
            }
        } else {
            target
        };
        let put = crate::names::put(&mut client, target.write(mode), many).await;
        assert_eq!(put.unwrap(), 100_000, "{at}: many rows");
        assert_eq!(
            count_rows(&mut client, &read_of(&target)).await,
            Ok(100_000),
            "{at}"
        );
    }
}

/// A read narrowed to some columns, in the order asked, and cut at a limit; a column that is
/// not there is an error naming it.
pub async fn projection_and_limits(b: &Backend) {
    let mut client = b.client().await;
    let target = &b.targets_named("proj")[0];
    put_rows(&mut client, target, ExistingTable::Fail, batch(0..50, true))
        .await
        .unwrap();
    let mut narrowed = read_of(target);
    narrowed.columns = vec!["extra".into(), "id".into()];
    narrowed.limit = 7;
    let schema = client.schema(&narrowed).await.unwrap();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["extra", "id"], "{}", b.label);
    assert_eq!(
        count_rows(&mut client, &narrowed).await,
        Ok(7),
        "{}",
        b.label
    );
    narrowed.columns = vec!["nope".into()];
    let err = count_rows(&mut client, &narrowed).await.unwrap_err();
    assert!(err.contains("nope"), "{}: {err}", b.label);
}

/// A listing by prefix shows what was written under it, and a prefix that names nothing
/// lists nothing.
pub async fn listing_by_prefix(b: &Backend) {
    let mut client = b.client().await;
    let targets = b.targets_named("listed");
    for target in &targets {
        put_rows(&mut client, target, ExistingTable::Fail, batch(0..2, false))
            .await
            .unwrap();
    }
    let prefix = match &b.store {
        Store::Sqlite(_) => "t/main/",
        Store::Postgres(_) => "t/public/",
        Store::Mariadb(_) => "t/test/",
        _ => "t/",
    };
    let names = |infos: Vec<arrow_flight::FlightInfo>| -> Vec<String> {
        infos
            .iter()
            .filter_map(|i| i.flight_descriptor.as_ref().map(|d| d.path.join("/")))
            .collect()
    };
    let listed = names(client.list(prefix).await.unwrap());
    for target in &targets {
        assert!(listed.contains(&target.name), "{}: {listed:?}", b.label);
    }
    let nothing = names(client.list(&format!("{prefix}no_such_")).await.unwrap());
    assert!(nothing.is_empty(), "{}: {nothing:?}", b.label);
}

/// A gateway killed mid-write (no chance to clean up) leaves the dataset as readers saw it:
/// the old rows, or no dataset. What a killed process staged may remain (an open S3 upload,
/// a local staging file, a MySQL staging table) for the store's own clean-up; it is never
/// visible as data.
pub async fn a_killed_gateway_leaves_the_dataset_as_it_was(b: &mut Backend) {
    for target in b.targets_named("killed") {
        let mut client = b.client().await;
        if !target.is_records_dir() {
            let seeded = move_into(
                &mut client,
                generated(1000),
                target.write(ExistingTable::Fail),
            );
            assert_eq!(seeded.await.unwrap(), 1000, "{}: {}", b.label, target.name);
        }
        let mode = if target.is_records_dir() {
            ExistingTable::Fail
        } else {
            ExistingTable::DropAndRecreate
        };
        let endless = move_into(&mut client, generated(100_000_000), target.write(mode));
        tokio::select! {
            done = endless => panic!("{}: {}: the write ended before the kill: {done:?}", b.label, target.name),
            () = tokio::time::sleep(Duration::from_millis(1500)) => {}
        }
        b.restart();
        let mut client = b.client().await;
        let got = count_rows(&mut client, &read_of(&target)).await;
        if target.is_records_dir() {
            assert!(got.is_err(), "{}: {}: {got:?}", b.label, target.name);
        } else {
            assert_eq!(got, Ok(1000), "{}: {}", b.label, target.name);
        }
    }
}

/// A read whose reader goes away after its first batch stops its source: the gateway notes the
/// early end, and a database's query stops on the server (its query is no longer active).
pub async fn a_dropped_read_stops_the_source(b: &Backend) {
    use futures::TryStreamExt;
    let mut client = b.client().await;
    let target = &b.targets_named("dropped_read")[0];
    let seeded = move_into(
        &mut client,
        generated(300_000),
        target.write(ExistingTable::Fail),
    );
    assert_eq!(seeded.await.unwrap(), 300_000, "{}", b.label);
    // The table, then (for a database) a query of 90 billion rows over it.
    let mut reads = vec![read_of(target)];
    if !b.is_bucket() {
        reads.push(Read {
            what: Some(mover_proto::read::What::Query(Query {
                database: "t".into(),
                sql: "SELECT a.id, b.id AS j FROM dropped_read a, dropped_read b".into(),
                ..Default::default()
            })),
            ..Default::default()
        });
    }
    for (ended, read) in reads.iter().enumerate() {
        let mut stream = client.read(read).await.unwrap();
        assert!(stream.try_next().await.unwrap().is_some(), "{}", b.label);
        drop(stream);
        stops(b, ended + 1).await;
    }
}

/// Wait until no read is running on the backend's server and the gateway has noted `ended`
/// early ends.
async fn stops(b: &Backend, ended: usize) {
    // Backpressure keeps a database's query running until its reader is gone.
    let running = || {
        match &b.store {
        Store::Postgres(pg) => pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT%' AND state = 'active'",
        ) != "0",
        Store::Mariadb(db) => !db
            // The reader's queries start with a column list; this one, with COUNT.
            .sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                  WHERE INFO LIKE 'SELECT `id`%' OR INFO LIKE 'SELECT a.id%'")
            .starts_with('0'),
        _ => false,
    }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while running() || b.gw.log().matches("a DoGet ended early").count() < ended {
        assert!(
            Instant::now() < deadline,
            "{}: the read did not stop:\n{}",
            b.label,
            b.gw.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The typed table of edge values ([`values`]) written into the backend and read back value by
/// value, at its edge rows, at 0 rows and at 100k rows; a bucket in Parquet, CSV and JSON
/// lines. Each backend's documented conversions are the only differences allowed.
pub async fn typed_values_round_trip(b: &Backend) {
    let mut client = b.client().await;
    for n in [values::EDGE_ROWS, 0, 100_000] {
        let stem = format!("typed_{n}");
        let table = &b.targets_named(&stem)[0].name;
        match &b.store {
            Store::Sqlite(_) => values::exact_round_trip(&mut client, n, table, true).await,
            Store::Postgres(_) => values::widened_round_trip(&mut client, n, table).await,
            Store::Mariadb(_) => values::mysql_round_trip(&mut client, n, table).await,
            Store::Local(_) | Store::S3(_) | Store::Azure(_) | Store::Gcs(_) => {
                let file = |ext: &str| format!("t/{stem}.{ext}");
                values::exact_round_trip(&mut client, n, &file("parquet"), false).await;
                values::text_round_trip(&mut client, n, &file("csv")).await;
                values::text_round_trip(&mut client, n, &file("jsonl")).await;
            }
        }
    }
}

/// A database connection killed on the server mid-load (an operator's KILL, a failover) fails
/// the write with an error naming the target, and leaves the table as it was in every mode
/// that changes a table, with no staging table left. Buckets and SQLite have no connection of
/// their own to kill: for them the killed load is the killed gateway
/// ([`a_killed_gateway_leaves_the_dataset_as_it_was`]).
pub async fn a_killed_connection_leaves_the_table_as_it_was(b: &Backend) {
    if !matches!(b.store, Store::Postgres(_) | Store::Mariadb(_)) {
        return;
    }
    // The server's ids of the connections loading now.
    let loading = || -> BTreeSet<String> {
        let ids = match &b.store {
            Store::Postgres(pg) => pg.psql(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE 'COPY%FROM STDIN%' AND state = 'active'",
            ),
            Store::Mariadb(db) => db.sql(
                "SELECT ID FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'LOAD DATA%' AND COMMAND <> 'Killed' AND STATE <> 'Rollback'",
            ),
            _ => unreachable!("only a database server has connections to kill"),
        };
        ids.lines().map(str::to_string).collect()
    };
    // Kill a connection that is loading and is not in `earlier`; whether one was. (A load an
    // earlier check dropped may still be rolling back on the server: not this one.)
    let kill = |earlier: &BTreeSet<String>| {
        loading()
            .difference(earlier)
            .next()
            .is_some_and(|id| match &b.store {
                Store::Postgres(pg) => {
                    pg.psql(&format!("SELECT pg_terminate_backend({id})")) == "t"
                }
                Store::Mariadb(db) => db.try_sql(&format!("KILL {id}")).is_ok(),
                _ => false,
            })
    };
    let mut client = b.client().await;
    for mode in [
        ExistingTable::Append,
        ExistingTable::TruncateAndOverwrite,
        ExistingTable::DeleteAndOverwrite,
        ExistingTable::DropAndRecreate,
    ] {
        let stem = format!("killed_connection_{}", mode as i32);
        let target = &b.targets_named(&stem)[0];
        let seeded = move_into(
            &mut client,
            generated(1000),
            target.write(ExistingTable::Fail),
        );
        assert_eq!(seeded.await.unwrap(), 1000, "{}: {}", b.label, target.name);
        let before = b.state();
        let earlier = loading();
        let write = move_into(&mut client, generated(100_000_000), target.write(mode));
        tokio::pin!(write);
        let killed = async {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !kill(&earlier) {
                assert!(
                    Instant::now() < deadline,
                    "{}: no load seen on the server",
                    b.label
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            done = &mut write => panic!("{}: {mode:?}: the write ended before the kill: {done:?}", b.label),
            () = killed => {}
        }
        let err = write
            .await
            .expect_err("the write survived its killed connection");
        assert!(
            err.to_string().contains(&stem),
            "{}: {mode:?}: the error does not name the target: {err}",
            b.label
        );
        let after = b.settles_to(&before, Duration::from_secs(30)).await;
        assert_eq!(
            after, before,
            "{}: {mode:?}: a killed load changed the database",
            b.label
        );
    }
}

/// A database reached over TLS is verified against the CA its config names: through `t`
/// (which trusts the server's CA) a table is written and read; through `wrong` (the same
/// server, another CA) nothing connects, the error says so, and no password reaches the error
/// or the gateway's log.
pub async fn tls_to_the_database_is_verified(b: &Backend) {
    let mut client = b.client().await;
    let target = &b.targets_named("over_tls")[0];
    let seeded = move_into(
        &mut client,
        generated(10),
        target.write(ExistingTable::Fail),
    );
    assert_eq!(seeded.await.unwrap(), 10, "{}", b.label);
    assert_eq!(count_rows(&mut client, &read_of(target)).await, Ok(10));
    let wrong = target.name.replacen("t/", "wrong/", 1);
    for command in ["cat", "schema"] {
        let out = b.gw.mvrec(&[command, &wrong]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: {command} {wrong}", b.label);
        assert!(
            err.contains("cannot connect") && err.to_lowercase().contains("certificate"),
            "{}: {command}: {err}",
            b.label
        );
        for (_, secret) in &b.envs {
            assert!(!err.contains(secret.as_str()), "{}: {err}", b.label);
            assert!(
                !b.gw.log().contains(secret.as_str()),
                "{}: the log",
                b.label
            );
        }
    }
}
