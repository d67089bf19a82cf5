//! The behaviour every backend must show, written once: each check is a function that takes any
//! [`Backend`], and `tests/contract.rs` calls every check from one test per backend (object_store's
//! `integration.rs` is the model). A backend is a real gateway process serving the store under
//! test as the source `t`, beside a SQLite database `src` that the checks read from, and a way
//! to look at what the store holds without going through the gateway.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mover_client::Client;
use mover_proto::{ExistingTable, FileFormat, FileOptions, Move, Path, Query, Read, Write};

use crate::{Azurite, FakeGcs, Gateway, Mariadb, Postgres, S3Server, workdir};

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
    _dir: tempfile::TempDir,
}

/// The bucket (or container) the cloud backends write into, below the prefix `under`.
pub const BUCKET: &str = "contract";

impl Backend {
    fn start(
        label: &'static str,
        store: Store,
        target_config: &str,
        envs: &[(&str, &str)],
    ) -> Self {
        let dir = workdir();
        let config = format!(
            "[databases.src]\nurl = \"sqlite://data/src.db\"\nallow_sql = true\n{target_config}"
        );
        let gw = Gateway::start_with_config_env(dir.path(), &config, envs);
        let store = match store {
            Store::Local(rel) => Store::Local(dir.path().join(rel)),
            Store::Sqlite(rel) => Store::Sqlite(dir.path().join(rel)),
            other => other,
        };
        Self {
            label,
            gw,
            store,
            _dir: dir,
        }
    }

    /// A local folder (`file://`), with parts of 1 MiB.
    pub fn local() -> Self {
        let config = "[buckets.t]\nurl = \"file://data/t\"\npart_size_mb = 1\n";
        let b = Self::start("local folder", Store::Local("data/t".into()), config, &[]);
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
        let config = "[databases.t]\nurl = \"sqlite://data/t.db\"\n";
        Self::start("SQLite", Store::Sqlite("data/t.db".into()), config, &[])
    }

    pub fn postgres() -> Self {
        let pg = Postgres::start();
        let config = format!(
            "[databases.t]\nurl = \"{}\"\npassword_env = \"PG_TEST_PASSWORD\"\n",
            pg.url()
        );
        let envs = [("PG_TEST_PASSWORD", Postgres::PASSWORD)];
        Self::start("Postgres", Store::Postgres(pg), &config, &envs)
    }

    pub fn mariadb() -> Self {
        let db = Mariadb::start();
        let config = format!(
            "[databases.t]\nurl = \"{}\"\npassword_env = \"MARIA_PASSWORD\"\n",
            db.url()
        );
        let envs = [("MARIA_PASSWORD", Mariadb::PASSWORD)];
        Self::start("MariaDB", Store::Mariadb(db), &config, &envs)
    }

    /// The datasets a write can make in this backend: a table, or a file, a prefix and a
    /// records directory.
    fn targets(&self) -> Vec<Target> {
        let table = |name: &str| Target {
            name: name.into(),
            format: None,
        };
        match &self.store {
            Store::Local(_) | Store::S3(_) | Store::Azure(_) | Store::Gcs(_) => vec![
                table("t/big.csv"),
                // CSV parts: their bytes reach the store as they are encoded, so parts are
                // published while the write runs (Parquet holds a row group first).
                Target {
                    name: "t/big/".into(),
                    format: Some(FileFormat::Csv),
                },
                Target {
                    name: "t/big_dir/".into(),
                    format: Some(FileFormat::Records),
                },
            ],
            Store::Sqlite(_) => vec![table("t/main/big")],
            Store::Postgres(_) => vec![table("t/public/big")],
            Store::Mariadb(_) => vec![table("t/test/big")],
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
                lines.extend(
                    s3.pending_uploads(BUCKET)
                        .into_iter()
                        .map(|u| format!("open multipart upload {u}")),
                );
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
    async fn settles_to(&self, expected: &[String], within: Duration) -> Vec<String> {
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

struct Target {
    name: String,
    /// Written in this format rather than the one its name implies.
    format: Option<FileFormat>,
}

impl Target {
    fn is_records_dir(&self) -> bool {
        self.format == Some(FileFormat::Records)
    }

    fn write(&self, existing: ExistingTable) -> Write {
        Write {
            path: Some(path(&self.name)),
            existing_table: existing as i32,
            file: self.format.map(|format| FileOptions {
                format: format as i32,
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
fn generated(rows: u64) -> Read {
    Read {
        what: Some(mover_proto::read::What::Query(Query {
            database: "src".into(),
            sql: format!(
                "WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < {rows}) \
                 SELECT id, printf('%0200d', id) AS text FROM n"
            ),
        })),
        ..Default::default()
    }
}

async fn move_into(
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
    for target in b.targets() {
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
        let after = b.settles_to(&before, Duration::from_secs(20)).await;
        assert_eq!(
            after, before,
            "{}: {}: a dropped write changed the store",
            b.label, target.name
        );
        // And the dataset still reads as before: 1000 rows, or nothing at all.
        let read = Read {
            what: Some(mover_proto::read::What::Path(path(&target.name))),
            ..Default::default()
        };
        let got = crate::count_rows(&mut client, &read).await;
        if target.is_records_dir() {
            assert!(got.is_err(), "{}: {}: {got:?}", b.label, target.name);
        } else {
            assert_eq!(got.unwrap(), 1000, "{}: {}", b.label, target.name);
        }
    }
}
