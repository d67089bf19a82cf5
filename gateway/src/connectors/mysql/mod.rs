//! MySQL and MariaDB: `mysql_async` (sqlx cannot run `LOAD DATA LOCAL INFILE`) for the catalog
//! and loads, and a reader of our own for rows.
//!
//! Reads stream a text-protocol result on a connection of our own ([`wire`]), each row parsed
//! in place into the batch being built ([`decode`]); the schema comes from the result's column
//! metadata, completed for tables by the catalog (JSON columns, VARCHAR lengths, declared
//! types), which is read through mysql_async. The reader does not announce LOCAL INFILE.
//!
//! Loads are `LOAD DATA LOCAL INFILE` fed from the Arrow stream ([`encode`]). The connection
//! serves a local file only to its own load: its handler answers the one generated name this
//! load asked for and refuses, and logs, any other name the server asks for. Where the server
//! has `local_infile` off, loads fall back to multi-row INSERTs with bound values, and the
//! report says so.
//!
//! MySQL commits DDL implicitly, so every load that creates or replaces a table loads a
//! staging table and swaps it in with one `RENAME TABLE`; an append runs in one InnoDB
//! transaction. A failed or cancelled load drops its staging table and leaves the target as
//! it was.

pub mod decode;
pub mod encode;
pub mod options;
pub mod types;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use mover_proto::ExistingTable;
use mysql_async::prelude::{GlobalHandler, Queryable};
use mysql_async::{Conn, Opts, OptsBuilder, SslOpts, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::plan::{self, Plan};
use super::{
    BatchStream, Connector, DatasetInfo, ReadSpec, ReadTarget, WriteReport, WriteSpec, sql_errors,
};
use crate::error::{CellError, Error, ErrorKind, Result};
pub use decode::ZeroDates;
use types::{Declared, Kind};

/// A table as `database.table`; the URL's database when the path names only the table.
#[derive(Debug, Clone)]
struct Table {
    database: String,
    name: String,
}

impl Table {
    fn from_path(path: &[String], default: &str) -> Result<Self> {
        match path {
            [name] if !default.is_empty() => Ok(Self {
                database: default.into(),
                name: name.clone(),
            }),
            [database, name] => Ok(Self {
                database: database.clone(),
                name: name.clone(),
            }),
            _ => Err(Error::invalid(format!(
                "{:?} is not a table name; use source/database/table",
                path.join("/")
            ))),
        }
    }

    fn quoted(&self) -> String {
        format!("{}.{}", quote(&self.database), quote(&self.name))
    }

    fn sibling(&self, name: String) -> Self {
        Self {
            database: self.database.clone(),
            name,
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.database, self.name)
    }
}

/// A MySQL identifier in backquotes with embedded backquotes doubled.
pub fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// A mysql_async error as ours: a server error by its number and SQLSTATE ([`sql_errors`]),
/// a connection that failed or went away as Unavailable, the rest Internal; the original kept
/// as the source.
fn db_error(e: mysql_async::Error, context: &str) -> Error {
    let kind = match &e {
        mysql_async::Error::Server(s) => {
            let kind = sql_errors::kind_of_mysql(s.code, &s.state);
            let message = s.message.clone();
            return sql_errors::server_error(kind, context, &message, e);
        }
        mysql_async::Error::Io(_)
        | mysql_async::Error::Driver(
            mysql_async::DriverError::ConnectionClosed | mysql_async::DriverError::PoolDisconnected,
        ) => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("{context}: {e}")).with_source(e)
}

/// Every value is read and written in UTC and utf8mb4, and the server refuses (rather than
/// adjusts) a value that does not fit.
const SESSION: &str = "SET time_zone = '+00:00', NAMES utf8mb4, \
     sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_ZERO_IN_DATE'";

#[derive(Clone)]
pub struct Mysql {
    name: String,
    opts: Opts,
    /// The same server for the streaming reader ([`wire`]).
    wire: wire::Target,
    database: String,
    batch_rows: usize,
    zero_dates: ZeroDates,
    /// LOAD DATA statements run at once into a staging table.
    load_streams: usize,
    connect_timeout: std::time::Duration,
}

/// What a [`Mysql`] is built with ([`options::Options`], resolved).
pub struct Settings<'a> {
    pub password: Option<&'a str>,
    pub ca: Option<&'a std::path::Path>,
    pub batch_rows: usize,
    pub zero_dates: ZeroDates,
    /// LOAD DATA statements on as many connections at once into the staging table of a create
    /// or overwrite, so the server parses on more than one core. Append stays one stream in
    /// one transaction.
    pub load_streams: usize,
    pub connect_timeout: std::time::Duration,
}

impl Mysql {
    /// `url` carries no password: it comes by reference. With `ca`, the connection is TLS and
    /// the server's certificate must chain to it and name the host.
    pub fn new(name: &str, url: &str, settings: Settings<'_>) -> Result<Self> {
        let Settings { password, ca, .. } = settings;
        let url = url.replacen("mariadb://", "mysql://", 1);
        let parsed = Opts::from_url(&url)
            .map_err(|e| Error::invalid(format!("database {name}: bad URL: {e}")))?;
        let database = parsed.db_name().unwrap_or_default().to_string();
        let wire = wire::Target {
            host: parsed.ip_or_hostname().to_string(),
            port: parsed.tcp_port(),
            socket: parsed.socket().map(std::path::PathBuf::from),
            user: parsed.user().map(String::from),
            password: password.map(String::from),
            database: parsed.db_name().map(String::from),
            tls: (ca.is_some() || parsed.ssl_opts().is_some()).then(|| wire::Tls {
                ca: ca.map(std::path::Path::to_path_buf),
            }),
            init: vec![SESSION.to_string()],
        };
        let mut builder = OptsBuilder::from_opts(parsed)
            .pass(password)
            .init(vec![SESSION]);
        if let Some(ca) = ca {
            builder =
                builder.ssl_opts(SslOpts::default().with_root_certs(vec![ca.to_path_buf().into()]));
        }
        Ok(Self {
            name: name.into(),
            opts: builder.into(),
            wire,
            database,
            batch_rows: settings.batch_rows,
            zero_dates: settings.zero_dates,
            load_streams: settings.load_streams.max(1),
            connect_timeout: settings.connect_timeout,
        })
    }

    async fn connect(&self) -> Result<Conn> {
        self.connect_with(self.opts.clone()).await
    }

    /// How long opening a connection may take (the reader's and mysql_async's alike).
    pub fn with_connect_timeout(mut self, limit: std::time::Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    async fn connect_with(&self, opts: Opts) -> Result<Conn> {
        super::connect_within(self.connect_timeout, &self.name, async {
            Conn::new(opts).await.map_err(|e| {
                let e = db_error(e, &format!("database {}: cannot connect", self.name));
                // Refused, unreachable, cut during TLS or login: the server is not there to use.
                match e.kind {
                    ErrorKind::Internal => Error {
                        kind: ErrorKind::Unavailable,
                        ..e
                    },
                    _ => e,
                }
            })
        })
        .await
    }

    fn label(&self, what: &impl std::fmt::Display) -> String {
        format!("{}/{what}", self.name)
    }

    fn table(&self, path: &[String]) -> Result<Table> {
        Table::from_path(path, &self.database)
    }

    /// What the catalog says of a table's columns; None when there is no such table.
    async fn declared(
        &self,
        conn: &mut Conn,
        table: &Table,
    ) -> Result<Option<Vec<(String, Declared)>>> {
        let params = (table.database.as_str(), table.name.as_str());
        type Described = (String, String, Option<u64>, String, i64);
        let rows: Vec<Described> = conn
            .exec(
                "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, DATA_TYPE, \
                   IS_NULLABLE = 'YES' \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 ORDER BY ORDINAL_POSITION",
                params,
            )
            .await
            .map_err(|e| db_error(e, "reading the catalog"))?;
        // MariaDB keeps JSON as LONGTEXT with a json_valid check (MySQL says json, and its
        // CHECK_CONSTRAINTS has no table name: there the query fails and nothing is lost).
        // A separate plain query: MariaDB 10.11 can crash on a correlated subquery over
        // information_schema.
        let checks: Vec<String> = conn
            .exec(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                params,
            )
            .await
            .unwrap_or_default();
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.into_iter()
                .map(|(name, column_type, max_chars, data_type, nullable)| {
                    let chars = matches!(data_type.as_str(), "char" | "varchar");
                    let json = data_type == "json"
                        || checks.contains(&format!("json_valid({})", quote(&name)));
                    let declared = Declared {
                        column_type,
                        max_chars: max_chars.filter(|_| chars),
                        json,
                        data_type,
                        nullable: nullable != 0,
                    };
                    (name, declared)
                })
                .collect(),
        ))
    }

    /// The SELECT for a read, and the catalog's word on a table's columns. A query is checked
    /// to be one statement that returns rows (it is prepared first); the reader runs it in a
    /// READ ONLY transaction.
    async fn prepare_read(
        &self,
        conn: &mut Conn,
        spec: &ReadSpec,
    ) -> Result<(String, Option<Vec<(String, Declared)>>)> {
        if spec.part.is_some() {
            return Err(Error::invalid("MySQL reads are not split into parts"));
        }
        match &spec.target {
            ReadTarget::Dataset(path) => {
                let table = self.table(path)?;
                let declared = self.declared(conn, &table).await?.ok_or_else(|| {
                    Error::not_found(format!("table {table} not found in database {}", self.name))
                })?;
                // The text protocol prints FLOAT to 6 digits; as DOUBLE its value is exact.
                let list: Vec<String> = declared
                    .iter()
                    .map(|(n, d)| match d.data_type.as_str() {
                        "float" => format!("CAST({q} AS DOUBLE) AS {q}", q = quote(n)),
                        _ => quote(n),
                    })
                    .collect();
                let select = format!("SELECT {} FROM {}", list.join(", "), table.quoted());
                Ok((select, Some(declared)))
            }
            ReadTarget::Query(sql) => {
                // Preparing refuses more than one statement; a statement without result
                // columns is not a query.
                let stmt = conn
                    .prep(sql.as_str())
                    .await
                    .map_err(|e| db_error(e, "the query"))?;
                let returns_rows = !stmt.columns().is_empty();
                conn.close(stmt)
                    .await
                    .map_err(|e| db_error(e, "the query"))?;
                if !returns_rows {
                    return Err(Error::invalid(
                        "the query returns no rows; only queries are accepted",
                    ));
                }
                Ok((sql.clone(), None))
            }
        }
    }

    /// Ask the server to stop connection `id`'s query (its reader went away).
    fn cancel(&self, id: u32) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Ok(mut conn) = this.connect().await {
                let _ = conn.query_drop(format!("KILL QUERY {id}")).await;
                tracing::info!(id, "cancelled a MySQL read whose reader went away");
            }
        });
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The schema of a result: kinds from the wire, what the catalog adds for tables.
fn schema_of(
    columns: &[mysql_async::Column],
    declared: Option<&Vec<(String, Declared)>>,
) -> Result<(SchemaRef, Vec<Kind>)> {
    use mysql_async::consts::ColumnFlags;
    let mut fields = Vec::with_capacity(columns.len());
    let mut kinds = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let declared = declared.and_then(|d| d.get(i)).map(|(_, d)| d);
        let kind = match declared {
            Some(d) if d.data_type == "float" => Kind::Float, // read as DOUBLE, see above
            _ => types::kind_of(c)?,
        };
        let nullable = match declared {
            Some(d) => d.nullable,
            None => !c.flags().contains(ColumnFlags::NOT_NULL_FLAG),
        };
        fields.push(types::field(&c.name_str(), kind, nullable, declared));
        kinds.push(kind);
    }
    Ok((std::sync::Arc::new(Schema::new(fields)), kinds))
}

#[async_trait]
impl Connector for Mysql {
    async fn list(&self, prefix: &[String]) -> Result<Vec<DatasetInfo>> {
        let mut conn = self.connect().await?;
        let rows: Vec<(String, String)> = conn
            .query(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', \
                   'performance_schema', 'sys') ORDER BY 1, 2",
            )
            .await
            .map_err(|e| db_error(e, "listing tables"))?;
        Ok(rows
            .into_iter()
            .map(|(db, table)| vec![db, table])
            .filter(|path| super::path_has_prefix(path, prefix))
            .map(|path| DatasetInfo {
                path,
                schema: std::sync::Arc::new(Schema::empty()),
                total_records: None,
                total_bytes: None,
            })
            .collect())
    }

    async fn describe(&self, spec: &ReadSpec) -> Result<DatasetInfo> {
        let mut conn = self.connect().await?;
        let (select, declared) = self.prepare_read(&mut conn, spec).await?;
        // Preparing gives the result's columns without running it.
        let stmt = conn
            .prep(select.as_str())
            .await
            .map_err(|e| db_error(e, "describing"))?;
        let (schema, _) = schema_of(&stmt.columns(), declared.as_ref())?;
        Ok(DatasetInfo {
            path: match &spec.target {
                ReadTarget::Dataset(p) => p.clone(),
                ReadTarget::Query(_) => vec![],
            },
            schema,
            total_records: None,
            total_bytes: None,
        })
    }

    /// One task reads the rows off a [`wire`] connection and parses each straight into the
    /// batch being built; the catalog is read on a mysql_async connection.
    async fn open_read(&self, spec: &ReadSpec) -> Result<(SchemaRef, BatchStream)> {
        let (schema_tx, schema_rx) = oneshot::channel::<Result<SchemaRef>>();
        let (tx, rx) = mpsc::channel::<Result<arrow::array::RecordBatch>>(2);
        let this = self.clone();
        let spec = spec.clone();
        let label = match &spec.target {
            ReadTarget::Dataset(p) => self.label(&p.join("/")),
            ReadTarget::Query(_) => format!("{} query", self.name),
        };
        tokio::spawn(async move {
            let mut schema_tx = Some(schema_tx);
            let mut conn_id = None;
            let result: Result<bool> = async {
                let connecting = async {
                    wire::Wire::connect(&this.wire)
                        .await
                        .map_err(|e| e.within(format!("database {}", this.name)))
                };
                let mut wire =
                    super::connect_within(this.connect_timeout, &this.name, connecting).await?;
                conn_id = Some(wire.id());
                let (select, declared) = {
                    let mut conn = this.connect().await?;
                    this.prepare_read(&mut conn, &spec).await?
                };
                if matches!(spec.target, ReadTarget::Query(_)) {
                    wire.execute("START TRANSACTION READ ONLY").await?;
                }
                let columns = wire.query(&select).await?;
                let (schema, kinds) = schema_of(&columns, declared.as_ref())?;
                if let Some(s) = schema_tx.take() {
                    let _ = s.send(Ok(schema.clone()));
                }
                // A reader that goes away while the query is slow to produce is noticed by a
                // watcher, which stops the query (and so this loop): waiting on both for every
                // row would cost more than the row.
                let watcher = {
                    let (this, tx) = (this.clone(), tx.clone());
                    let id = wire.id();
                    tokio::spawn(async move {
                        tx.closed().await;
                        this.cancel(id);
                    })
                };
                let _stop_watching = AbortOnDrop(watcher);
                let mut batcher = decode::Batcher::new(schema, kinds, label, this.zero_dates);
                loop {
                    if tx.is_closed() {
                        return Ok(false);
                    }
                    let row = wire.row().await?;
                    let end = row.is_none();
                    if let Some(row) = row {
                        batcher.push(row)?;
                    }
                    if batcher.len() == this.batch_rows || (end && !batcher.is_empty()) {
                        let batch = batcher.finish()?;
                        if tx.send(Ok(batch)).await.is_err() {
                            return Ok(false);
                        }
                    }
                    if end {
                        return Ok(true);
                    }
                }
            }
            .await;
            match result {
                Ok(true) => {}
                Ok(false) => conn_id.into_iter().for_each(|id| this.cancel(id)),
                Err(e) => match schema_tx.take() {
                    Some(s) => {
                        let _ = s.send(Err(e));
                    }
                    None => {
                        if tx.send(Err(e)).await.is_err() {
                            conn_id.into_iter().for_each(|id| this.cancel(id));
                        }
                    }
                },
            }
        });
        let schema = schema_rx
            .await
            .map_err(|_| Error::internal("the MySQL reader ended before its schema"))??;
        Ok((schema, ReceiverStream::new(rx).boxed()))
    }

    async fn write(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<WriteReport> {
        let table = self.table(&spec.path)?;
        Load::new(self, table.clone(), schema, batches)
            .await?
            .run(spec.existing)
            .await
            .map_err(|e| e.within(self.label(&table)))
    }
}

/// Serves `LOAD DATA LOCAL INFILE` the stream of one load, under one generated name. Any other
/// name the server asks for is refused and logged: a server cannot read the gateway's files.
pub struct StreamHandler {
    name: String,
    data: Mutex<Option<mysql_async::InfileData>>,
}

impl StreamHandler {
    pub fn new(name: String) -> Arc<Self> {
        Arc::new(Self {
            name,
            data: Mutex::new(None),
        })
    }

    fn offer(&self, data: mysql_async::InfileData) {
        *self.data.lock().expect("infile slot") = Some(data);
    }
}

/// The handler as the connection options hold it.
#[derive(Clone)]
pub struct SharedHandler(pub Arc<StreamHandler>);

impl GlobalHandler for SharedHandler {
    fn handle(
        &self,
        file_name: &[u8],
    ) -> futures::future::BoxFuture<
        'static,
        std::result::Result<mysql_async::InfileData, mysql_async::LocalInfileError>,
    > {
        let handler = &self.0;
        let served = (file_name == handler.name.as_bytes())
            .then(|| handler.data.lock().expect("infile slot").take())
            .flatten();
        match served {
            Some(data) => Box::pin(async move { Ok(data) }),
            None => {
                let asked = String::from_utf8_lossy(file_name).into_owned();
                tracing::warn!(
                    asked = %asked,
                    "refused a LOCAL INFILE request: this connection serves only its own load's stream"
                );
                Box::pin(async move {
                    Err(mysql_async::LocalInfileError::PathIsNotInTheWhiteList(
                        asked,
                    ))
                })
            }
        }
    }
}

/// A connection whose LOCAL INFILE requests are served by its own handler.
async fn infile_connection(mysql: &Mysql) -> Result<(Conn, Arc<StreamHandler>)> {
    let handler = StreamHandler::new(random_name("mover-stream-"));
    let opts: Opts = OptsBuilder::from_opts(mysql.opts.clone())
        .local_infile_handler(Some(SharedHandler(handler.clone())))
        .into();
    Ok((mysql.connect_with(opts).await?, handler))
}

/// One load into one table.
struct Load<'a> {
    mysql: &'a Mysql,
    conn: Conn,
    handler: Arc<StreamHandler>,
    local_infile: bool,
    table: Table,
    schema: SchemaRef,
    batches: Option<BatchStream>,
    /// Per incoming column: whether the target column is a BIT, which takes numbers, not text.
    bits: Vec<bool>,
}

/// A staging table, dropped unless it was swapped in, even if the load is cancelled.
struct Staging {
    mysql: Mysql,
    table: Table,
    kept: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let (mysql, table) = (self.mysql.clone(), self.table.clone());
        tokio::spawn(async move {
            if let Ok(mut conn) = mysql.connect().await {
                let _ = conn
                    .query_drop(format!("DROP TABLE IF EXISTS {}", table.quoted()))
                    .await;
            }
        });
    }
}

fn random_name(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .expect("the system random source works");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

impl<'a> Load<'a> {
    async fn new(
        mysql: &'a Mysql,
        table: Table,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<Self> {
        let (mut conn, handler) = infile_connection(mysql).await?;
        let local_infile: Option<i64> = conn
            .query_first("SELECT @@local_infile")
            .await
            .map_err(|e| db_error(e, "reading local_infile"))?;
        Ok(Self {
            mysql,
            conn,
            handler,
            local_infile: local_infile == Some(1),
            table,
            schema,
            batches: Some(batches),
            bits: vec![],
        })
    }

    async fn run(mut self, existing: ExistingTable) -> Result<WriteReport> {
        let declared = self.mysql.declared(&mut self.conn, &self.table).await?;
        let into_existing = matches!(
            existing,
            ExistingTable::Append
                | ExistingTable::TruncateAndOverwrite
                | ExistingTable::DeleteAndOverwrite
        );
        self.bits = self
            .schema
            .fields()
            .iter()
            .map(|f| match (&declared, into_existing) {
                (Some(columns), true) => columns
                    .iter()
                    .any(|(n, d)| n == f.name() && d.data_type == "bit"),
                _ => types::ddl_type(f).is_ok_and(|t| t.to_ascii_lowercase().starts_with("bit")),
            })
            .collect();
        let plan = plan::plan(
            existing,
            declared.is_some(),
            &format!("table {}", self.table),
        )?;
        match (plan, declared) {
            (Plan::Append, Some(columns)) => {
                self.check_columns(&columns)?;
                self.exec("START TRANSACTION").await?;
                let report = self.load_into(&self.table.clone(), 1).await;
                match report {
                    Ok(report) => {
                        self.exec("COMMIT").await?;
                        Ok(report)
                    }
                    Err(e) => {
                        let _ = self.conn.query_drop("ROLLBACK").await;
                        Err(e)
                    }
                }
            }
            (Plan::Truncate | Plan::Delete, Some(columns)) => {
                self.check_columns(&columns)?;
                let like = format!("LIKE {}", self.table.quoted());
                self.through_staging(&like, true).await
            }
            (plan, _) => {
                let ddl = self.ddl()?;
                self.through_staging(&ddl, plan == Plan::Recreate).await
            }
        }
    }

    /// Every incoming column must feed one of the table's ([`plan::match_columns`]).
    fn check_columns(&self, columns: &[(String, Declared)]) -> Result<()> {
        let have: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        plan::match_columns(&self.schema, &have, &self.table).map(drop)
    }

    async fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn
            .query_drop(sql)
            .await
            .map_err(|e| db_error(e, sql))
    }

    /// `(columns...) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4` for a new table.
    fn ddl(&self) -> Result<String> {
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                let null = if f.is_nullable() { "" } else { " NOT NULL" };
                Ok(format!("{} {}{null}", quote(f.name()), types::ddl_type(f)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(format!(
            "({}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            columns.join(", ")
        ))
    }

    /// Create a staging table (`definition`: column list or `LIKE target`), load it, and swap
    /// it in with one RENAME TABLE (`replace`: the target exists and is dropped after).
    async fn through_staging(mut self, definition: &str, replace: bool) -> Result<WriteReport> {
        let stage = self.table.sibling(random_name("mover_stage_"));
        self.exec(&format!("CREATE TABLE {} {definition}", stage.quoted()))
            .await?;
        let mut guard = Staging {
            mysql: self.mysql.clone(),
            table: stage.clone(),
            kept: false,
        };
        let streams = self.mysql.load_streams;
        let report = match self.load_into(&stage, streams).await {
            Ok(report) => report,
            Err(e) => {
                // On this connection if it still works, else the guard's new one.
                let dropped = self
                    .conn
                    .query_drop(format!("DROP TABLE IF EXISTS {}", stage.quoted()))
                    .await;
                guard.kept = dropped.is_ok();
                return Err(e);
            }
        };
        let swap = if replace {
            let old = self.table.sibling(random_name("mover_old_"));
            let sql = format!(
                "RENAME TABLE {t} TO {old}, {s} TO {t}",
                t = self.table.quoted(),
                old = old.quoted(),
                s = stage.quoted()
            );
            self.exec(&sql).await.map(|()| Some(old))
        } else {
            let sql = format!("RENAME TABLE {} TO {}", stage.quoted(), self.table.quoted());
            self.exec(&sql).await.map(|()| None)
        };
        let old = swap?;
        guard.kept = true;
        if let Some(old) = old
            && let Err(e) = self.exec(&format!("DROP TABLE {}", old.quoted())).await
        {
            tracing::warn!(table = %old, "the replaced table was not dropped: {e}");
        }
        Ok(report)
    }

    /// Load every batch into `into`: LOAD DATA LOCAL INFILE, or INSERTs where the server has
    /// local_infile off. Fails on any warning: a value the server changed is not the value sent.
    async fn load_into(&mut self, into: &Table, streams: usize) -> Result<WriteReport> {
        let batches = self.batches.take().expect("one load per Load");
        let sent = Arc::new(AtomicU64::new(0));
        let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let result = if self.local_infile {
            self.load_data(into, batches, sent.clone(), failure.clone(), streams)
                .await
                .map(|()| vec![])
        } else {
            self.insert(into, batches, sent.clone())
                .await
                .map(|()| vec![format!(
                    "the server has local_infile off: loaded with multi-row INSERTs (slower than LOAD DATA)"
                )])
        };
        // The source's own error is the one to report, not the load's reaction to it.
        if let Some(e) = failure.lock().expect("failure slot").take() {
            return Err(e);
        }
        let notes = result?;
        no_warnings(&mut self.conn).await?;
        Ok(WriteReport {
            rows_committed: sent.load(Ordering::SeqCst),
            notes,
        })
    }

    /// LOAD DATA of every batch into `into`, through `streams` statements at once (each on its
    /// own connection, taking the next batch when it is ready for one).
    async fn load_data(
        &mut self,
        into: &Table,
        batches: BatchStream,
        sent: Arc<AtomicU64>,
        failure: Arc<Mutex<Option<Error>>>,
        streams: usize,
    ) -> Result<()> {
        let shared = Arc::new(tokio::sync::Mutex::new(batches));
        // Each statement's stream: the next batch, numbered, then encoded outside the lock.
        let feed = || {
            let (sent, failure) = (sent.clone(), failure.clone());
            futures::stream::unfold(shared.clone(), |shared| async move {
                let next = shared.lock().await.next().await;
                next.map(|item| (item, shared))
            })
            .map(move |item| {
                let encoded = item.and_then(|batch| {
                    let first = sent.fetch_add(batch.num_rows() as u64, Ordering::SeqCst) + 1;
                    let mut out = Vec::with_capacity(batch.get_array_memory_size());
                    encode::load_data(&batch, first, &mut out)?;
                    Ok(Bytes::from(out))
                });
                encoded.map_err(|e| {
                    let io = std::io::Error::other(e.message.clone());
                    failure.lock().expect("failure slot").get_or_insert(e);
                    io
                })
            })
            .boxed()
        };
        let mut others = Vec::with_capacity(streams.saturating_sub(1));
        for _ in 1..streams {
            others.push(infile_connection(self.mysql).await?);
        }
        let (columns, set) = load_columns(&self.schema, &self.bits);
        let sql = |handler: &StreamHandler| {
            format!(
                "LOAD DATA LOCAL INFILE '{}' INTO TABLE {} CHARACTER SET utf8mb4 \
                 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({}){}",
                handler.name,
                into.quoted(),
                columns.join(", "),
                set
            )
        };
        self.handler.offer(feed());
        let first = sql(&self.handler);
        let own = async {
            self.conn
                .query_drop(&first)
                .await
                .map_err(|e| db_error(e, &first))
        };
        let rest = others.iter_mut().map(|(conn, handler)| {
            handler.offer(feed());
            let statement = sql(handler);
            async move {
                conn.query_drop(&statement)
                    .await
                    .map_err(|e| db_error(e, &statement))?;
                no_warnings(conn).await
            }
        });
        futures::future::try_join(own, futures::future::try_join_all(rest))
            .await
            .map(|_| ())
    }

    async fn insert(
        &mut self,
        into: &Table,
        mut batches: BatchStream,
        sent: Arc<AtomicU64>,
    ) -> Result<()> {
        let names: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| quote(f.name()))
            .collect();
        let width = names.len().max(1);
        // Within MySQL's 65,535 placeholders per statement.
        let per_statement = (60_000 / width).clamp(1, 1000);
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            let columns = encode::batch_cells(&batch)?;
            for start in (0..batch.num_rows()).step_by(per_statement) {
                let n = per_statement.min(batch.num_rows() - start);
                let mut params = Vec::with_capacity(n * width);
                for row in start..start + n {
                    for (i, cells) in columns.iter().enumerate() {
                        let mut value = Vec::new();
                        let present = cells.write(row, &mut value).map_err(|why| {
                            Error::from(CellError::new(
                                sent.load(Ordering::SeqCst) + (row - start) as u64 + 1,
                                self.schema.field(i).name(),
                                why,
                            ))
                        })?;
                        params.push(if present {
                            Value::Bytes(value)
                        } else {
                            Value::NULL
                        });
                    }
                }
                let placeholders: Vec<&str> = self
                    .bits
                    .iter()
                    .map(|&bit| if bit { "CAST(? AS UNSIGNED)" } else { "?" })
                    .collect();
                let row = format!("({})", placeholders.join(", "));
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES {}",
                    into.quoted(),
                    names.join(", "),
                    vec![row; n].join(", ")
                );
                self.conn
                    .exec_drop(sql, params)
                    .await
                    .map_err(|e| db_error(e, "inserting"))?;
                sent.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// An error if the last statement on `conn` left warnings: a value the server changed is not
/// the value sent.
async fn no_warnings(conn: &mut Conn) -> Result<()> {
    let warnings = conn.get_warnings();
    if warnings == 0 {
        return Ok(());
    }
    let shown: Vec<(String, u32, String)> = conn
        .query("SHOW WARNINGS LIMIT 3")
        .await
        .unwrap_or_default();
    let text: Vec<String> = shown.into_iter().map(|(_, _, m)| m).collect();
    Err(Error::invalid(format!(
        "MySQL changed {warnings} value(s) while loading, so nothing was kept: {}",
        text.join("; ")
    )))
}

/// The column list of a load, and its SET clause: binary columns arrive as hex, and BIT
/// columns as numbers.
fn load_columns(schema: &Schema, bits: &[bool]) -> (Vec<String>, String) {
    let mut columns = Vec::new();
    let mut set = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if encode::is_binary(f.data_type()) {
            columns.push(format!("@h{i}"));
            set.push(format!("{} = UNHEX(@h{i})", quote(f.name())));
        } else if bits.get(i).copied().unwrap_or(false) {
            columns.push(format!("@b{i}"));
            set.push(format!("{} = CAST(@b{i} AS UNSIGNED)", quote(f.name())));
        } else {
            columns.push(quote(f.name()));
        }
    }
    let set = if set.is_empty() {
        String::new()
    } else {
        format!(" SET {}", set.join(", "))
    };
    (columns, set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_handler_serves_its_own_stream_once_and_refuses_other_files() {
        let handler = StreamHandler::new("mover-stream-abc".into());
        let shared = SharedHandler(handler.clone());
        // A forged request from the server, before and after the load offered its stream.
        assert!(shared.handle(b"/etc/passwd").await.is_err());
        handler.offer(futures::stream::iter(vec![Ok(Bytes::from_static(b"1\n"))]).boxed());
        assert!(shared.handle(b"/etc/passwd").await.is_err());
        assert!(shared.handle(b"mover-stream-ab").await.is_err());
        let mut data = shared.handle(b"mover-stream-abc").await.unwrap();
        assert_eq!(
            data.next().await.unwrap().unwrap(),
            Bytes::from_static(b"1\n")
        );
        // Served once: a second request for the same name gets nothing.
        assert!(shared.handle(b"mover-stream-abc").await.is_err());
    }

    #[test]
    fn identifiers_are_backquoted() {
        assert_eq!(quote("a`b"), "`a``b`");
        let t = Table::from_path(&["t".into()], "db").unwrap();
        assert_eq!(t.quoted(), "`db`.`t`");
        assert!(Table::from_path(&["t".into()], "").is_err());
    }
}
