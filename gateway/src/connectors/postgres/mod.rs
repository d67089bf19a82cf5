//! Postgres: tables, views and read-only queries read with `COPY (…) TO STDOUT (FORMAT binary)`
//! decoded straight into Arrow; loads with `COPY … FROM STDIN (FORMAT binary)` in one
//! transaction with the table's create / truncate / delete / drop, so a failed or cut load
//! leaves the table as it was.
//!
//! Each read and each write has its own connection. A read whose consumer goes away cancels its
//! query on the server (`pg_cancel_backend`), rather than leaving a backend copying.

mod bound;
pub mod codec;
pub mod options;
mod parts;
mod snapshots;
pub mod types;

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use futures::StreamExt;
use mover_proto::Part;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, Executor, Row};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::plan::{self, Plan};
use super::{
    BatchStream, Connector, DatasetInfo, ReadSpec, ReadTarget, StagedPart, WriteReport, WriteSpec,
    sql_errors,
};
use crate::convert::strict_cast;
use crate::error::{CellError, Context, Error, ErrorKind, Result};
use types::PgType;

const DEFAULT_SCHEMA: &str = "public";
/// A split read's parts are at least this many heap blocks (8 MiB at the default block size).
const MIN_PART_BLOCKS: u64 = 1024;

#[derive(Clone)]
pub struct Postgres {
    name: String,
    /// Written only when a rotated password is read again; shared by clones.
    options: std::sync::Arc<std::sync::RwLock<PgConnectOptions>>,
    reread: Option<crate::secret::Reread>,
    batch_rows: usize,
    max_value_bytes: usize,
    split_reads: bool,
    connect_timeout: std::time::Duration,
    /// How long a split read's snapshot is held (its tickets' lifetime).
    hold: std::time::Duration,
    snapshots: snapshots::Held,
}

/// How a read's rows are fetched.
enum Select {
    /// By `COPY (…) TO STDOUT (FORMAT binary)` of this SELECT.
    Copy(String),
    /// A query with placeholders, by the extended protocol ([`bound`]); no arguments when
    /// it is only described.
    Bound {
        select: String,
        args: Option<sqlx::postgres::PgArguments>,
        placeholders: usize,
    },
}

async fn begin_read_only(conn: &mut PgConnection) -> Result<()> {
    conn.execute("BEGIN READ ONLY")
        .await
        .map_err(|e| db_error(e, "starting a read-only transaction"))?;
    Ok(())
}

/// A column as the catalog describes it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    pg: PgType,
    declared: String,
    not_null: bool,
    /// The table (schema, name) a query's column is read from, where the server says.
    origin: Option<(String, String)>,
}

use super::TableName as Table;
pub use super::quote_ident as quote;

/// A sqlx error as ours: a server error by its SQLSTATE ([`sql_errors`]), a connection that
/// failed or went away as Unavailable, the rest Internal; the original kept as the source.
fn db_error(e: sqlx::Error, context: &str) -> Error {
    let kind = match &e {
        sqlx::Error::Database(d) => {
            let kind = sql_errors::kind_of_sqlstate(d.code().as_deref().unwrap_or(""));
            let message = d.message().to_string();
            return sql_errors::server_error(kind, context, &message, e);
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("{context}: {e}")).with_source(e)
}

/// A connection that could not be opened: the server's refusal by its SQLSTATE (a wrong
/// password is PermissionDenied, too many connections ResourceExhausted), anything else
/// (refused, unreachable, TLS) Unavailable.
/// Whether the server refused the login's password (SQLSTATE 28P01).
fn refused_password(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "28P01")
}

fn connect_error(e: sqlx::Error, database: &str) -> Error {
    let context = format!("database {database}: cannot connect");
    match db_error(e, &context) {
        e if e.kind == ErrorKind::Internal => Error {
            kind: ErrorKind::Unavailable,
            ..e
        },
        e => e,
    }
}

/// Columns of the relation named by `regclass` (a quoted name, passed as a value).
async fn columns(conn: &mut PgConnection, regclass: &str) -> Result<Option<Vec<Column>>> {
    let rows = sqlx::query(
        "SELECT a.attname::text, t.typname::text, t.typtype::text, a.atttypmod, a.attnotnull, \
                et.typname::text, et.typtype::text, t.typelem::int8, format_type(a.atttypid, a.atttypmod) \
         FROM pg_attribute a \
         JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(regclass)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error(e, "reading the catalog"))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let cols = rows.iter().map(column_of).collect::<Result<Vec<_>>>()?;
    Ok(Some(cols))
}

/// A column from a catalog row of name, typname, typtype, typmod, NOT NULL, element typname,
/// element typtype, element oid and the declared type, as [`columns`] and
/// [`bound::columns`] read them.
fn column_of(r: &sqlx::postgres::PgRow) -> Result<Column> {
    let get = |e: sqlx::Error| Error::internal(format!("reading the catalog: {e}"));
    let name: String = r.try_get(0).map_err(get)?;
    let typname: String = r.try_get(1).map_err(get)?;
    let typtype: String = r.try_get(2).map_err(get)?;
    let typmod: i32 = r.try_get(3).map_err(get)?;
    let not_null: bool = r.try_get(4).map_err(get)?;
    let ename: Option<String> = r.try_get(5).map_err(get)?;
    let ekind: Option<String> = r.try_get(6).map_err(get)?;
    let eoid: i64 = r.try_get(7).map_err(get)?;
    let declared: String = r.try_get(8).map_err(get)?;
    let elem = match (&ename, &ekind) {
        (Some(n), Some(k)) => Some((n.as_str(), k.as_str(), eoid as u32)),
        _ => None,
    };
    Ok(Column {
        pg: PgType::from_catalog(&typname, &typtype, typmod, elem),
        name,
        declared,
        not_null,
        origin: None,
    })
}

fn schema_of(cols: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|c| {
                let field = types::field(&c.name, &c.pg, &c.declared, !c.not_null);
                let origin = c.origin.as_ref().map(|(s, t)| (s.as_str(), t.as_str()));
                super::with_origin(field, origin)
            })
            .collect::<Vec<_>>(),
    ))
}

/// The SELECT list: types without a binary mapping are read through their output function
/// (what psql prints; `::text` differs for some, such as inet's netmask), NULL kept NULL.
fn select_list(cols: &[Column]) -> String {
    cols.iter()
        .map(|c| {
            let q = quote(&c.name);
            match c.pg {
                PgType::AsText => {
                    format!("CASE WHEN {q} IS NULL THEN NULL ELSE format('%s', {q}) END AS {q}")
                }
                _ => q,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a [`Postgres`] is built with ([`options::Options`], resolved).
pub struct Settings<'a> {
    pub password: Option<&'a str>,
    /// Reads the password again when the server refuses it (it was rotated).
    pub reread: Option<crate::secret::Reread>,
    pub ca: Option<&'a std::path::Path>,
    pub batch_rows: usize,
    pub max_value_bytes: usize,
    pub split_reads: bool,
    pub connect_timeout: std::time::Duration,
    pub hold: std::time::Duration,
}

impl Postgres {
    /// `url` carries no password: it comes by reference. With `ca`, the server's certificate
    /// must chain to it and name the host (verify-full).
    pub fn new(name: &str, url: &str, settings: Settings<'_>) -> Result<Self> {
        let mut options: PgConnectOptions = url
            .parse()
            .map_err(|e| Error::invalid(format!("database {name}: bad URL: {e}")))?;
        if let Some(p) = settings.password {
            options = options.password(p);
        }
        if let Some(ca) = settings.ca {
            options = options.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert(ca);
        }
        Ok(Self {
            name: name.into(),
            options: std::sync::Arc::new(std::sync::RwLock::new(options)),
            reread: settings.reread,
            batch_rows: settings.batch_rows,
            max_value_bytes: settings.max_value_bytes,
            split_reads: settings.split_reads,
            connect_timeout: settings.connect_timeout,
            hold: settings.hold,
            snapshots: snapshots::Held::default(),
        })
    }

    async fn connect(&self) -> Result<PgConnection> {
        super::connect_within(self.connect_timeout, &self.name, async {
            let connected = match PgConnection::connect_with(&self.options()).await {
                // A refused password may have been rotated: read it again, try once more.
                Err(e) if refused_password(&e) && self.reread_password().await => {
                    PgConnection::connect_with(&self.options()).await
                }
                other => other,
            };
            connected.map_err(|e| connect_error(e, &self.name))
        })
        .await
    }

    fn options(&self) -> PgConnectOptions {
        self.options
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Read the password again from where the config says; whether it could be.
    async fn reread_password(&self) -> bool {
        let Some(reread) = self.reread.clone() else {
            return false;
        };
        match tokio::task::spawn_blocking(move || reread()).await {
            Ok(Ok(password)) => {
                let mut options = self.options.write().unwrap_or_else(|p| p.into_inner());
                *options = options.clone().password(password.expose());
                tracing::info!(database = %self.name, "the server refused the password; read it again");
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(database = %self.name, error = %e, "cannot read the password again");
                false
            }
            Err(_) => false,
        }
    }

    fn label(&self, what: &impl std::fmt::Display) -> String {
        format!("{}/{what}", self.name)
    }

    /// Columns and the statement that reads them, on `conn`.
    async fn prepare_read(
        &self,
        conn: &mut PgConnection,
        spec: &ReadSpec,
    ) -> Result<(Vec<Column>, Select)> {
        match &spec.target {
            ReadTarget::Dataset(path) => {
                let table = Table::from_path(path, DEFAULT_SCHEMA)?;
                let cols = columns(conn, &table.quoted()).await?.ok_or_else(|| {
                    Error::not_found(format!("table {table} not found in database {}", self.name))
                })?;
                let mut select = format!("SELECT {} FROM {}", select_list(&cols), table.quoted());
                if let Some(part) = &spec.part {
                    // Numbers formatted here, never text from outside: a TID range scan.
                    select.push_str(&format!(" WHERE ctid >= '({},0)'::tid", part.first_block));
                    if part.end_block > 0 {
                        select.push_str(&format!(" AND ctid < '({},0)'::tid", part.end_block));
                    }
                }
                Ok((cols, Select::Copy(select)))
            }
            ReadTarget::Query { .. } if spec.part.is_some() => {
                Err(Error::invalid("a query is not read in parts"))
            }
            ReadTarget::Query { sql, params } => {
                // Preparing tells whether the query has placeholders (and refuses more than
                // one statement).
                let statement = prepare(conn, sql).await?;
                let placeholders = bound::placeholders(&statement);
                let origins = bound::origins(conn, &statement).await?;
                let with_origins = |cols: Vec<Column>| -> Vec<Column> {
                    cols.into_iter()
                        .zip(origins.iter().cloned().chain(std::iter::repeat(None)))
                        .map(|(c, origin)| Column { origin, ..c })
                        .collect()
                };
                if placeholders.is_empty() {
                    if let Some(params) = params {
                        return Err(Error::invalid(format!(
                            "the query has no placeholders ($1, $2, …), but {} parameters are \
                             bound",
                            params.num_columns()
                        )));
                    }
                    // A view gives the query's exact column types (typmods included) and
                    // accepts only a query; the read then runs in a READ ONLY transaction.
                    conn.execute(AssertSqlSafe(format!(
                        "CREATE TEMP VIEW mover_query AS {sql}"
                    )))
                    .await
                    .map_err(|e| db_error(e, "the query"))?;
                    let cols = columns(conn, "pg_temp.mover_query")
                        .await?
                        .ok_or_else(|| Error::invalid("the query has no columns"))?;
                    let cols = with_origins(cols);
                    begin_read_only(conn).await?;
                    let select = format!("SELECT {} FROM pg_temp.mover_query", select_list(&cols));
                    return Ok((cols, Select::Copy(select)));
                }
                let cols = with_origins(bound::columns(conn, &statement).await?);
                if cols.is_empty() {
                    return Err(Error::invalid(
                        "the query returns no rows; only queries are accepted",
                    ));
                }
                let args = match params {
                    Some(params) => Some(
                        bound::arguments(conn, &placeholders, params)
                            .await
                            .map_err(|e| e.within("the query"))?,
                    ),
                    None => None,
                };
                begin_read_only(conn).await?;
                // As a subquery, so the columns are read as a table's are (select_list).
                let select = format!("SELECT {} FROM ({sql}) AS mover_query", select_list(&cols));
                Ok((
                    cols,
                    Select::Bound {
                        select,
                        args,
                        placeholders: placeholders.len(),
                    },
                ))
            }
        }
    }

    /// Ask the server to stop the query of backend `pid` (its reader went away).
    fn cancel(&self, pid: i32) {
        let (options, limit) = (self.options(), self.connect_timeout);
        tokio::spawn(async move {
            let connecting = tokio::time::timeout(limit, PgConnection::connect_with(&options));
            if let Ok(Ok(mut conn)) = connecting.await {
                let _ = sqlx::query("SELECT pg_cancel_backend($1)")
                    .bind(pid)
                    .execute(&mut conn)
                    .await;
                tracing::info!(pid, "cancelled a Postgres read whose reader went away");
            }
        });
    }
}

#[async_trait]
impl Connector for Postgres {
    async fn primary_key(&self, path: &[String]) -> Result<Option<super::PrimaryKey>> {
        let table = Table::from_path(path, DEFAULT_SCHEMA)?;
        let mut conn = self.connect().await?;
        // The key's columns in index order; the table named by a bound, quoted regclass.
        let rows = sqlx::query(
            "SELECT c.relname::text, a.attname::text FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1::regclass AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
        )
        .bind(table.quoted())
        .fetch_all(&mut conn)
        .await
        .map_err(|e| db_error(e, &format!("reading the primary key of table {table}")))?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(super::PrimaryKey {
            name: Some(first.try_get(0).internal("reading the primary key")?),
            columns: rows
                .iter()
                .map(|r| r.try_get(1).internal("reading the primary key"))
                .collect::<Result<_>>()?,
        }))
    }

    /// The types the server gives the placeholders, as the Arrow types their values are
    /// cast to when bound.
    async fn parameters(&self, sql: &str) -> Result<Option<SchemaRef>> {
        let mut conn = self.connect().await?;
        let statement = prepare(&mut conn, sql).await?;
        let placeholders = bound::placeholders(&statement);
        let fields = bound::parameter_columns(&mut conn, &placeholders)
            .await?
            .into_iter()
            .map(|c| {
                Ok(arrow::datatypes::Field::new(
                    c.name,
                    types::write_arrow_type(&c.pg)?,
                    true,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Arc::new(Schema::new(fields))))
    }

    /// A statement that returns no columns is executed, not read.
    async fn is_command(&self, sql: &str) -> Result<bool> {
        let mut conn = self.connect().await?;
        let statement = prepare(&mut conn, sql).await?;
        Ok(sqlx::Statement::columns(&statement).is_empty())
    }

    async fn execute(&self, sql: &str, params: Option<BatchStream>) -> Result<u64> {
        let mut conn = self.connect().await?;
        // One transaction: a run that fails, or a future dropped, rolls back with it.
        let mut tx = conn.begin().await.map_err(|e| db_error(e, "BEGIN"))?;
        let statement = prepare(&mut tx, sql).await?;
        let placeholders = bound::placeholders(&statement);
        let run = |args: sqlx::postgres::PgArguments| {
            sqlx::query_with(AssertSqlSafe(sql.to_string()), args)
        };
        let mut changed = 0;
        match params {
            None if !placeholders.is_empty() => {
                return Err(Error::invalid(format!(
                    "the statement has {} placeholders and no parameters are bound",
                    placeholders.len()
                )));
            }
            None => {
                let done = run(Default::default())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db_error(e, "the statement"))?;
                changed = done.rows_affected();
            }
            Some(rows) => {
                let targets = bound::parameter_columns(&mut tx, &placeholders).await?;
                let mut rows = std::pin::pin!(super::params::each_row(rows));
                while let Some(item) = rows.next().await {
                    let (row_no, row) = item?;
                    let at = |e: Error| e.within(format!("parameter row {row_no}"));
                    let args =
                        bound::row_arguments(&targets, &placeholders, &row, 0).map_err(at)?;
                    let done = run(args)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| at(db_error(e, "the statement")))?;
                    changed += done.rows_affected();
                }
            }
        }
        tx.commit().await.map_err(|e| db_error(e, "COMMIT"))?;
        Ok(changed)
    }

    async fn foreign_keys(
        &self,
        path: &[String],
        which: super::KeysOf,
    ) -> Result<Vec<super::ForeignKey>> {
        let table = Table::from_path(path, DEFAULT_SCHEMA)?;
        let mut conn = self.connect().await?;
        // One row per key column, in key order; the table named by a bound, quoted regclass.
        let side = match which {
            super::KeysOf::Imported => "c.conrelid",
            super::KeysOf::Exported => "c.confrelid",
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT fn.nspname::text, fc.relname::text, c.conname::text, \
                    pn.nspname::text, pc.relname::text, ic.relname::text, \
                    fa.attname::text, pa.attname::text, c.confupdtype::text, c.confdeltype::text \
             FROM pg_constraint c \
             JOIN pg_class fc ON fc.oid = c.conrelid \
             JOIN pg_namespace fn ON fn.oid = fc.relnamespace \
             JOIN pg_class pc ON pc.oid = c.confrelid \
             JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             LEFT JOIN pg_class ic ON ic.oid = c.conindid \
             CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(f, p, n) \
             JOIN pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = k.f \
             JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.p \
             WHERE c.contype = 'f' AND {side} = to_regclass($1) \
             ORDER BY 1, 2, 3, k.n"
        )))
        .bind(table.quoted())
        .fetch_all(&mut conn)
        .await
        .map_err(|e| db_error(e, &format!("reading the foreign keys of table {table}")))?;
        let rule = |code: &str| match code {
            "c" => super::KeyRule::Cascade,
            "r" => super::KeyRule::Restrict,
            "n" => super::KeyRule::SetNull,
            "d" => super::KeyRule::SetDefault,
            _ => super::KeyRule::NoAction,
        };
        let keys = rows
            .iter()
            .map(|r| {
                let get =
                    |i: usize| -> Result<String> { r.try_get(i).internal("reading foreign keys") };
                Ok(super::ForeignKey {
                    table: vec![get(0)?, get(1)?],
                    name: Some(get(2)?),
                    referenced: vec![get(3)?, get(4)?],
                    referenced_key: r.try_get(5).internal("reading foreign keys")?,
                    columns: vec![(get(6)?, get(7)?)],
                    on_update: rule(&get(8)?),
                    on_delete: rule(&get(9)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(super::ForeignKey::gather(keys))
    }

    async fn list(&self, prefix: &[String]) -> Result<Vec<DatasetInfo>> {
        let mut conn = self.connect().await?;
        let rows = sqlx::query(
            "SELECT n.nspname::text, c.relname::text, c.relkind IN ('v', 'm') FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_%' \
             ORDER BY 1, 2",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(|e| db_error(e, "listing tables"))?;
        let mut out = Vec::new();
        for r in rows {
            let path = vec![
                r.try_get::<String, _>(0).internal("listing")?,
                r.try_get::<String, _>(1).internal("listing")?,
            ];
            // A staged part of a write in parts is no dataset of its own.
            if super::path_has_prefix(&path, prefix) && !path[1].starts_with(parts::STAGE_PREFIX) {
                // Listing reads no columns; GetFlightInfo and GetSchema do.
                out.push(DatasetInfo {
                    path,
                    schema: Arc::new(Schema::empty()),
                    total_records: None,
                    total_bytes: None,
                    view: r.try_get::<bool, _>(2).internal("listing")?,
                });
            }
        }
        Ok(out)
    }

    /// With `split_reads`, a plain table in ranges of heap blocks (by its size now; the last
    /// range is open, so blocks added since are read too).
    async fn partitions(&self, spec: &ReadSpec, max: usize) -> Result<Vec<Option<Part>>> {
        let ReadTarget::Dataset(path) = &spec.target else {
            return Ok(vec![None]);
        };
        if !self.split_reads || max <= 1 {
            return Ok(vec![None]);
        }
        let table = Table::from_path(path, DEFAULT_SCHEMA)?;
        let mut conn = self.connect().await?;
        let found: Option<(String, i64)> = sqlx::query_as(
            "SELECT c.relkind::text, \
                    pg_relation_size(c.oid) / current_setting('block_size')::bigint \
             FROM pg_class c WHERE c.oid = to_regclass($1)",
        )
        .bind(table.quoted())
        .fetch_optional(&mut conn)
        .await
        .map_err(|e| db_error(e, "sizing the table"))?;
        // Views and the like have no blocks; a missing table is the read's to report.
        let Some(("r", blocks)) = found.as_ref().map(|(k, b)| (k.as_str(), *b as u64)) else {
            return Ok(vec![None]);
        };
        let parts = (blocks / MIN_PART_BLOCKS).min(max as u64);
        if parts <= 1 {
            return Ok(vec![None]);
        }
        let step = blocks / parts;
        // Every part reads in one snapshot, held while the tickets live.
        let snapshot = self
            .snapshots
            .export(self.connect().await?, self.hold)
            .await?;
        Ok((0..parts)
            .map(|i| {
                Some(Part {
                    first_block: i * step,
                    end_block: if i + 1 == parts { 0 } else { (i + 1) * step },
                    snapshot: snapshot.clone(),
                    ..Default::default()
                })
            })
            .collect())
    }

    fn hold_part(&self, part: &Part, until: Option<std::time::Instant>) -> bool {
        !part.snapshot.is_empty() && self.snapshots.hold(&part.snapshot, until)
    }

    async fn describe(&self, spec: &ReadSpec) -> Result<DatasetInfo> {
        let mut conn = self.connect().await?;
        let (cols, _) = self.prepare_read(&mut conn, spec).await?;
        Ok(DatasetInfo {
            path: match &spec.target {
                ReadTarget::Dataset(p) => p.clone(),
                ReadTarget::Query { .. } => vec![],
            },
            schema: schema_of(&cols),
            // count(*) is not cheap in Postgres, and reltuples is only an estimate.
            total_records: None,
            total_bytes: None,
            view: false,
        })
    }

    async fn open_read(&self, spec: &ReadSpec) -> Result<(SchemaRef, BatchStream)> {
        let mut conn = self.connect().await?;
        if let Some(part) = spec.part.as_ref().filter(|p| !p.snapshot.is_empty()) {
            snapshots::import(&mut conn, &part.snapshot).await?;
        }
        let (cols, select) = self.prepare_read(&mut conn, spec).await?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| db_error(e, "reading the backend pid"))?;
        let schema = schema_of(&cols);
        let types: Vec<PgType> = cols.iter().map(|c| c.pg.clone()).collect();
        let label = match &spec.target {
            ReadTarget::Dataset(p) => self.label(&p.join("/")),
            ReadTarget::Query { .. } => format!("{} query", self.name),
        };
        let (tx, rx) = mpsc::channel::<Result<arrow::array::RecordBatch>>(2);
        let batch_rows = self.batch_rows;
        let this_schema = schema.clone();
        let canceller = self.clone();
        let max_value = self.max_value_bytes;
        if let Select::Bound {
            args: None,
            placeholders,
            ..
        } = &select
        {
            return Err(Error::invalid(format!(
                "the query has {placeholders} placeholders ($1, $2, …) and no parameters are bound"
            )));
        }
        tokio::spawn(async move {
            let mut decoder = codec::Decoder::new(this_schema, types, max_value);
            let result: Result<bool> = async {
                let mut bytes = match select {
                    Select::Copy(select) => conn
                        .copy_out_raw(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
                        .await
                        .map_err(|e| db_error(e, "starting the read"))?
                        .map(|chunk| chunk.map_err(|e| db_error(e, "reading")))
                        .boxed(),
                    // Rows fetched in binary, framed as the COPY data the decoder reads.
                    Select::Bound { select, args, .. } => {
                        let rows =
                            sqlx::query_with(AssertSqlSafe(select), args.unwrap_or_default())
                                .fetch(&mut conn)
                                .map(|row| {
                                    let mut tuple = Vec::new();
                                    bound::copy_tuple(
                                        &row.map_err(|e| db_error(e, "reading"))?,
                                        &mut tuple,
                                    )?;
                                    Ok(bytes::Bytes::from(tuple))
                                });
                        futures::stream::once(async { Ok(codec::header().into()) })
                            .chain(rows)
                            .chain(futures::stream::once(async {
                                Ok(bytes::Bytes::from_static(&codec::TRAILER))
                            }))
                            .boxed()
                    }
                };
                loop {
                    // Notice a reader that went away while the query is slow to produce.
                    let chunk = tokio::select! {
                        chunk = bytes.next() => chunk,
                        _ = tx.closed() => return Ok(false),
                    };
                    let Some(chunk) = chunk else { break };
                    decoder.push(&chunk?);
                    while let Some(batch) = decoder.next_batch(batch_rows)? {
                        if tx.send(Ok(batch)).await.is_err() {
                            return Ok(false); // the reader went away
                        }
                    }
                }
                while let Some(batch) = decoder.next_batch(batch_rows)? {
                    if tx.send(Ok(batch)).await.is_err() {
                        return Ok(false);
                    }
                }
                if let Some(batch) = decoder.finish()? {
                    let _ = tx.send(Ok(batch)).await;
                }
                Ok(true)
            }
            .await;
            match result {
                Ok(true) => {}
                Ok(false) => canceller.cancel(pid),
                Err(e) => {
                    if tx.send(Err(e.within(&label))).await.is_err() {
                        canceller.cancel(pid);
                    }
                }
            }
        });
        Ok((schema, ReceiverStream::new(rx).boxed()))
    }

    fn stages_parts(&self, _spec: &WriteSpec) -> bool {
        true
    }

    async fn stage_part(
        &self,
        spec: &WriteSpec,
        stage: &str,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<StagedPart> {
        self.stage(spec, stage, schema, batches).await
    }

    async fn publish_parts(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        parts: Vec<StagedPart>,
    ) -> Result<WriteReport> {
        self.publish(spec, schema, parts).await
    }

    async fn discard_parts(&self, parts: Vec<StagedPart>) -> Result<()> {
        self.discard(parts).await
    }

    async fn sweep_parts(&self, expired_before: std::time::SystemTime) -> Result<usize> {
        self.sweep(expired_before).await
    }

    async fn write(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<WriteReport> {
        let table = Table::from_path(&spec.path, DEFAULT_SCHEMA)?;
        let mut conn = self.connect().await?;
        // One transaction: a write that fails or is dropped rolls back with it.
        let mut tx = conn.begin().await.map_err(|e| db_error(e, "BEGIN"))?;
        prepare_table(&mut tx, &table, spec.existing, &schema).await?;
        let targets = target_columns(&mut tx, &table, &schema).await?;
        let rows = copy_in(&mut tx, &table, &targets, batches).await?;
        tx.commit().await.map_err(|e| db_error(e, "COMMIT"))?;
        Ok(WriteReport {
            rows_committed: rows,
            ..Default::default()
        })
    }
}

/// `sql` prepared on `conn`: the server checks it is one statement, and types its
/// placeholders and columns.
async fn prepare(conn: &mut PgConnection, sql: &str) -> Result<sqlx::postgres::PgStatement> {
    conn.prepare(sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(
        sql.to_string(),
    )))
    .await
    .map_err(|e| db_error(e, "the statement"))
}

/// Create, empty or replace `table` as `existing` says, for rows of `schema`.
async fn prepare_table(
    conn: &mut PgConnection,
    table: &Table,
    existing: plan::Existing,
    schema: &SchemaRef,
) -> Result<()> {
    let found = columns(conn, &table.quoted()).await?;
    let create = || -> Result<String> {
        let defs = plan::column_definitions(schema, quote, types::ddl_type)?;
        Ok(format!("CREATE TABLE {} ({defs})", table.quoted()))
    };
    let ddl: Vec<String> = match plan::plan(existing, found.is_some(), &format!("table {table}"))? {
        Plan::Create => vec![create()?],
        Plan::Append => vec![],
        Plan::Truncate => vec![format!("TRUNCATE {}", table.quoted())],
        Plan::Delete => vec![format!("DELETE FROM {}", table.quoted())],
        Plan::Recreate => vec![format!("DROP TABLE {}", table.quoted()), create()?],
    };
    for statement in ddl {
        conn.execute(AssertSqlSafe(statement))
            .await
            .map_err(|e| db_error(e, &format!("preparing table {table}")))?;
    }
    Ok(())
}

/// The table's columns the incoming ones go to, in the incoming order; table columns not
/// given take their defaults.
async fn target_columns(
    conn: &mut PgConnection,
    table: &Table,
    schema: &SchemaRef,
) -> Result<Vec<Column>> {
    let cols = columns(conn, &table.quoted())
        .await?
        .ok_or_else(|| Error::internal("the table is not there after creating it"))?;
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    Ok(plan::match_columns(schema, &names, table)?
        .into_iter()
        .map(|i| cols[i].clone())
        .collect())
}

/// Stream `batches` into `targets` of `table` by binary COPY; the rows loaded. On an error the
/// COPY is aborted (the caller's transaction then rolls back).
async fn copy_in(
    conn: &mut PgConnection,
    table: &Table,
    targets: &[Column],
    mut batches: BatchStream,
) -> Result<u64> {
    let arrow_types = targets
        .iter()
        .map(|c| {
            types::write_arrow_type(&c.pg).map_err(|e| e.within(format!("column {:?}", c.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let pg_types: Vec<PgType> = targets.iter().map(|c| c.pg.clone()).collect();
    let names: Vec<String> = targets.iter().map(|c| quote(&c.name)).collect();
    let statement = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        table.quoted(),
        names.join(", ")
    );
    let mut copy = conn
        .copy_in_raw(&statement)
        .await
        .map_err(|e| db_error(e, "starting the load"))?;
    let mut rows = 0u64;
    let mut buf = codec::header();
    let loaded: Result<()> = async {
        while let Some(item) = batches.next().await {
            let batch = item?;
            let cast = targets
                .iter()
                .zip(batch.columns())
                .zip(&arrow_types)
                .map(|((c, col), t)| strict_cast(col, t, &c.name, rows + 1))
                .collect::<Result<Vec<ArrayRef>>>()?;
            codec::encode(&pg_types, &cast, &mut buf).map_err(|(r, c, why)| {
                Error::from(CellError::new(rows + r as u64 + 1, &targets[c].name, why))
            })?;
            copy.send(std::mem::take(&mut buf))
                .await
                .map_err(|e| db_error(e, "loading"))?;
            rows += batch.num_rows() as u64;
        }
        Ok(())
    }
    .await;
    if let Err(e) = loaded {
        let _ = copy.abort("the source failed").await;
        return Err(e);
    }
    buf.extend_from_slice(&codec::TRAILER);
    copy.send(buf).await.map_err(|e| db_error(e, "loading"))?;
    copy.finish().await.map_err(|e| db_error(e, "loading"))?;
    Ok(rows)
}
