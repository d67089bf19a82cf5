//! SQLite: tables and views as datasets, read-only queries, transactional loads.
//!
//! rusqlite rather than sqlx: SQLite is a C library called in-process, and rusqlite gives
//! direct stepping, declared column types and read-only connections with limits, which is what
//! streaming with exact types needs. Each read or write runs on its own blocking thread with its
//! own connection; WAL mode lets reads go on while a load is in its transaction.

mod execute;
mod keys;
pub mod options;
mod read;
pub mod types;
mod write;

use std::path::PathBuf;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use futures::StreamExt;
use rusqlite::{Connection, OpenFlags, limits::Limit};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{BatchStream, Connector, DatasetInfo, ReadSpec, ReadTarget, WriteReport, WriteSpec};
use crate::error::{Context, Error, Result};
use mover_proto::Part;

const DEFAULT_SCHEMA: &str = "main";
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Sqlite {
    name: String,
    path: PathBuf,
    batch_rows: usize,
}

pub use super::TableName as Table;
pub use super::quote_ident as quote;

pub struct ColumnInfo {
    pub name: String,
    pub declared: String,
    pub not_null: bool,
}

/// The columns of a table or view, or None when there is no such table (or schema).
fn table_columns(conn: &Connection, table: &Table) -> Result<Option<Vec<ColumnInfo>>> {
    let schema_exists: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM pragma_database_list WHERE name = ?1",
            [&table.schema],
            |r| r.get(0),
        )
        .internal("reading the catalog")?;
    if !schema_exists {
        return Ok(None);
    }
    let mut stmt = conn
        .prepare(r#"SELECT name, type, "notnull" FROM pragma_table_info(?1, ?2)"#)
        .internal("reading the catalog")?;
    let cols = stmt
        .query_map([&table.name, &table.schema], |r| {
            Ok(ColumnInfo {
                name: r.get(0)?,
                declared: r.get(1)?,
                not_null: r.get::<_, i64>(2)? != 0,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .internal("reading the catalog")?;
    Ok(if cols.is_empty() { None } else { Some(cols) })
}

impl Sqlite {
    /// Open (creating if needed) the database file at `path`, known to the catalog as `name`.
    pub fn open(name: &str, path: PathBuf, batch_rows: usize) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).internal(format!("cannot create {}", dir.display()))?;
        }
        let conn = Connection::open(&path)
            .internal(format!("database {name}: cannot open {}", path.display()))?;
        // WAL lets readers go on while a load holds its write transaction.
        conn.pragma_update(None, "journal_mode", "WAL")
            .internal(format!("database {name}: cannot enable WAL"))?;
        Ok(Self {
            name: name.into(),
            path,
            batch_rows,
        })
    }

    fn connect(&self, read_only: bool) -> Result<Connection> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&self.path, flags)
            .internal(format!("database {}: cannot open", self.name))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .internal("cannot set the busy timeout")?;
        // A query may not reach other files through ATTACH.
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)
            .internal("cannot limit ATTACH")?;
        if read_only {
            conn.pragma_update(None, "query_only", true)
                .internal("cannot make the connection query-only")?;
        }
        Ok(conn)
    }

    fn label(&self, what: &impl std::fmt::Display) -> String {
        format!("{}/{what}", self.name)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.connect(true)?;
        tokio::task::spawn_blocking(move || f(conn))
            .await
            .internal("a SQLite task failed")?
    }

    /// The read of `spec`; one only `describing` leaves unbound placeholders NULL (the rows
    /// are never read).
    async fn start(&self, spec: &ReadSpec, describing: bool) -> Result<(SchemaRef, BatchStream)> {
        if spec.part.is_some() && matches!(spec.target, ReadTarget::Query { .. }) {
            return Err(Error::invalid("a query is not read in parts"));
        }
        let (mut job, table) = self.start_read(spec)?;
        job.describing = describing;
        if let Some(table) = &table {
            let cols = table_columns(&job.conn, table)?.ok_or_else(|| {
                Error::not_found(format!("table {table} not found in database {}", self.name))
            })?;
            job.not_null = cols.iter().map(|c| c.not_null).collect();
        }
        let (schema_rx, batch_rx) = read::spawn(job);
        let schema = schema_rx
            .await
            .internal("the SQLite reader stopped early")??;
        Ok((schema, ReceiverStream::new(batch_rx).boxed()))
    }

    fn start_read(&self, spec: &ReadSpec) -> Result<(read::ReadJob, Option<Table>)> {
        let conn = self.connect(true)?;
        Ok(match &spec.target {
            ReadTarget::Dataset(path) => {
                let table = Table::from_path(path, DEFAULT_SCHEMA)?;
                // A part is a range of rowids (the name unquoted: quoted, a column of that
                // name would be read instead).
                let range = super::ranges::filter(spec.part.as_ref(), "rowid");
                let job = read::ReadJob {
                    conn,
                    sql: format!("SELECT * FROM {}{range}", table.quoted()),
                    params: None,
                    describing: false,
                    not_null: vec![],
                    batch_rows: self.batch_rows,
                    label: self.label(&table),
                    is_query: false,
                };
                (job, Some(table))
            }
            ReadTarget::Query { sql, params } => {
                let job = read::ReadJob {
                    conn,
                    sql: sql.clone(),
                    params: params.clone(),
                    describing: false,
                    not_null: vec![],
                    batch_rows: self.batch_rows,
                    label: format!("{} query", self.name),
                    is_query: true,
                };
                (job, None)
            }
        })
    }
}

#[async_trait]
impl Connector for Sqlite {
    async fn primary_key(&self, path: &[String]) -> Result<Option<super::PrimaryKey>> {
        let table = Table::from_path(path, DEFAULT_SCHEMA)?;
        let columns = self
            .blocking(move |conn| keys::primary_key(&conn, &table.schema, &table.name))
            .await?;
        Ok((!columns.is_empty()).then_some(super::PrimaryKey {
            name: None,
            columns,
        }))
    }

    async fn foreign_keys(
        &self,
        path: &[String],
        which: super::KeysOf,
    ) -> Result<Vec<super::ForeignKey>> {
        let table = Table::from_path(path, DEFAULT_SCHEMA)?;
        self.blocking(move |conn| keys::foreign(&conn, &table, which))
            .await
    }

    /// A table with rowids in ranges of them; views and WITHOUT ROWID tables are read whole.
    async fn partitions(&self, spec: &ReadSpec, max: usize) -> Result<Vec<Option<Part>>> {
        let ReadTarget::Dataset(path) = &spec.target else {
            return Ok(vec![None]);
        };
        let table = Table::from_path(path, DEFAULT_SCHEMA)?;
        let sql = format!(
            "SELECT min(rowid), max(rowid), count(*) FROM {}",
            table.quoted()
        );
        let span = self
            .blocking(move |conn| {
                let is_table: bool = conn
                    .query_row(
                        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                        [&table.name],
                        |r| r.get(0),
                    )
                    .internal("reading the catalog")?;
                if !is_table {
                    return Ok(None);
                }
                // A WITHOUT ROWID table has no rowid: it is read whole.
                Ok(conn
                    .query_row(&sql, [], |r| {
                        Ok((
                            r.get::<_, Option<i64>>(0)?,
                            r.get::<_, Option<i64>>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })
                    .ok())
            })
            .await?;
        Ok(match span {
            Some((Some(low), Some(high), rows)) => {
                super::ranges::key_ranges("rowid", low, high, rows as u64, max)
            }
            _ => vec![None],
        })
    }

    async fn list(&self, prefix: &[String]) -> Result<Vec<DatasetInfo>> {
        let prefix = prefix.to_vec();
        let tables: Vec<(String, bool)> = self
            .blocking(|conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT name, type = 'view' FROM sqlite_schema WHERE type IN ('table', 'view') \
                         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                    )
                    .internal("listing tables")?;
                let names = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(String, bool)>>>())
                    .internal("listing tables")?;
                Ok(names)
            })
            .await?;
        let mut out = Vec::new();
        for (table, view) in tables {
            let path = vec![DEFAULT_SCHEMA.to_string(), table];
            if !super::path_has_prefix(&path, &prefix) {
                continue;
            }
            let spec = ReadSpec {
                target: ReadTarget::Dataset(path),
                file: Default::default(),
                columns: vec![],
                part: None,
            };
            let mut info = self.describe(&spec).await?;
            info.view = view;
            out.push(info);
        }
        Ok(out)
    }

    async fn describe(&self, spec: &ReadSpec) -> Result<DatasetInfo> {
        let (schema, stream) = self.start(spec, true).await?;
        drop(stream); // stops the reader thread at its first send
        let (path, total_records) = match &spec.target {
            ReadTarget::Dataset(path) => {
                let table = Table::from_path(path, DEFAULT_SCHEMA)?;
                let sql = format!("SELECT count(*) FROM {}", table.quoted());
                let count = self
                    .blocking(move |conn| {
                        conn.query_row(&sql, [], |r| r.get::<_, i64>(0))
                            .internal("counting rows")
                    })
                    .await?;
                (vec![table.schema, table.name], Some(count as u64))
            }
            ReadTarget::Query { .. } => (vec![], None),
        };
        Ok(DatasetInfo {
            path,
            schema,
            total_records,
            total_bytes: None,
            view: false,
        })
    }

    async fn open_read(&self, spec: &ReadSpec) -> Result<(SchemaRef, BatchStream)> {
        self.start(spec, false).await
    }

    async fn is_command(&self, sql: &str) -> Result<bool> {
        let sql = sql.to_string();
        self.blocking(move |conn| execute::is_command(&conn, &sql))
            .await
    }

    async fn execute(&self, sql: &str, params: Option<BatchStream>) -> Result<u64> {
        let (sql, with_params) = (sql.to_string(), params.is_some());
        let conn = self.connect(false)?;
        let batches = params.unwrap_or_else(|| futures::stream::empty().boxed());
        feed(batches, move |rx| execute::run(conn, &sql, with_params, rx)).await
    }

    async fn write(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<WriteReport> {
        let table = Table::from_path(&spec.path, DEFAULT_SCHEMA)?;
        let job = write::WriteJob {
            conn: self.connect(false)?,
            table,
            existing: spec.existing,
            incoming: schema,
        };
        let rows_committed = feed(batches, move |rx| write::run(job, rx)).await?;
        Ok(WriteReport {
            rows_committed,
            ..Default::default()
        })
    }
}

/// Run `work` on a blocking thread, sending it `batches` and then `End` only if they ended
/// cleanly (a stream's error, or this future dropped, closes the channel first: `work` rolls
/// back). Waits for `work` to commit or roll back; the stream's error comes first.
async fn feed<T: Send + 'static>(
    mut batches: BatchStream,
    work: impl FnOnce(mpsc::Receiver<write::Msg>) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = mpsc::channel(2);
    let thread = tokio::task::spawn_blocking(move || work(rx));
    let mut failure = None;
    while let Some(item) = batches.next().await {
        match item {
            Ok(batch) => {
                if tx.send(write::Msg::Batch(batch)).await.is_err() {
                    break; // the writer stopped with an error: it reports it below
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_none() {
        let _ = tx.send(write::Msg::End).await;
    }
    drop(tx);
    // Wait for the rollback or commit to finish before answering.
    let result = thread.await.internal("the SQLite writer failed")?;
    match failure {
        Some(e) => Err(e),
        None => result,
    }
}
