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
//! The folder: [`options`] (its config keys), `read` (the reader's task and the catalog's
//! word on columns), [`wire`] (our own connection), [`decode`] (rows into Arrow), `load`
//! (LOAD DATA or INSERTs, staging tables), `infile` (the handler that serves a load its own
//! stream), [`encode`] (Arrow to LOAD DATA text), [`types`] (the type table).
//!
//! MySQL commits DDL implicitly, so every load that creates or replaces a table loads a
//! staging table and swaps it in with one `RENAME TABLE`; an append runs in one InnoDB
//! transaction. A failed or cancelled load drops its staging table and leaves the target as
//! it was.

mod bind;
pub mod decode;
pub mod encode;
mod execute;
mod infile;
mod load;
pub mod options;
mod read;
pub mod types;
pub mod wire;

use std::sync::{Arc, RwLock};

use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, SslOpts};

use super::{BatchStream, Connector, DatasetInfo, ReadSpec, WriteReport, WriteSpec, sql_errors};
use crate::error::{Error, ErrorKind, Result};
pub use decode::ZeroDates;
use types::Declared;

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
    /// Shared by every clone, and changed when a refused password is read again.
    opts: Arc<RwLock<Opts>>,
    /// The same server for the streaming reader ([`wire`]).
    wire: Arc<RwLock<wire::Target>>,
    /// Reads the password again from where the config says, when the server refuses it.
    reread: Option<crate::secret::Reread>,
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
    pub reread: Option<crate::secret::Reread>,
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
            opts: Arc::new(RwLock::new(builder.into())),
            wire: Arc::new(RwLock::new(wire)),
            reread: settings.reread,
            database,
            batch_rows: settings.batch_rows,
            zero_dates: settings.zero_dates,
            load_streams: settings.load_streams.max(1),
            connect_timeout: settings.connect_timeout,
        })
    }

    /// The user it logs in as.
    fn user(&self) -> String {
        let opts = self.opts.read().unwrap_or_else(|p| p.into_inner());
        opts.user().unwrap_or_default().to_string()
    }

    async fn connect(&self) -> Result<Conn> {
        self.connect_with(|opts| opts).await
    }

    /// A connection of the streaming reader ([`wire`]), the password read again once if the
    /// server refuses it.
    async fn wire(&self) -> Result<wire::Wire> {
        let target = || self.wire.read().unwrap_or_else(|p| p.into_inner()).clone();
        let connecting = async {
            match wire::Wire::connect(&target()).await {
                Err(e) if e.kind == ErrorKind::PermissionDenied && self.reread_password().await => {
                    wire::Wire::connect(&target()).await
                }
                other => other,
            }
            .map_err(|e| e.within(format!("database {}", self.name)))
        };
        super::connect_within(self.connect_timeout, &self.name, connecting).await
    }

    /// Read the password again from where the config says; whether it could be.
    async fn reread_password(&self) -> bool {
        let Some(reread) = self.reread.clone() else {
            return false;
        };
        match tokio::task::spawn_blocking(move || reread()).await {
            Ok(Ok(password)) => {
                let mut opts = self.opts.write().unwrap_or_else(|p| p.into_inner());
                *opts = OptsBuilder::from_opts(opts.clone())
                    .pass(Some(password.expose()))
                    .into();
                let mut wire = self.wire.write().unwrap_or_else(|p| p.into_inner());
                wire.password = Some(password.expose().to_string());
                tracing::info!(database = %self.name, "the server refused the password; read it again");
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(database = %self.name, error = %e, "the password could not be read again");
                false
            }
            Err(_) => false,
        }
    }

    /// How long opening a connection may take (the reader's and mysql_async's alike).
    pub fn with_connect_timeout(mut self, limit: std::time::Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// A connection with the current options as `tune` changes them; a refused password is
    /// read again (a rotated one) and the login tried once more.
    async fn connect_with(&self, tune: impl Fn(Opts) -> Opts) -> Result<Conn> {
        let opts = || tune(self.opts.read().unwrap_or_else(|p| p.into_inner()).clone());
        match self.connect_once(opts()).await {
            Err(e) if e.kind == ErrorKind::PermissionDenied && self.reread_password().await => {
                self.connect_once(opts()).await
            }
            other => other,
        }
    }

    async fn connect_once(&self, opts: Opts) -> Result<Conn> {
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
}

#[async_trait]
impl Connector for Mysql {
    async fn primary_key(&self, path: &[String]) -> Result<Option<crate::connectors::PrimaryKey>> {
        let table = Table::from_path(path, &self.database)?;
        let mut conn = self.connect().await?;
        let columns: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
                 ORDER BY ORDINAL_POSITION",
                (&table.database, &table.name),
            )
            .await
            .map_err(|e| db_error(e, &format!("reading the primary key of table {table}")))?;
        Ok(
            (!columns.is_empty()).then(|| crate::connectors::PrimaryKey {
                name: Some("PRIMARY".into()),
                columns,
            }),
        )
    }

    async fn foreign_keys(
        &self,
        path: &[String],
        which: crate::connectors::KeysOf,
    ) -> Result<Vec<crate::connectors::ForeignKey>> {
        use crate::connectors::{ForeignKey, KeyRule, KeysOf};
        let table = Table::from_path(path, &self.database)?;
        let mut conn = self.connect().await?;
        let side = match which {
            KeysOf::Imported => "k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ?",
            KeysOf::Exported => "k.REFERENCED_TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME = ?",
        };
        type Row = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            String,
        );
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, \
                            k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, \
                            r.UNIQUE_CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME, \
                            r.UPDATE_RULE, r.DELETE_RULE \
                     FROM information_schema.KEY_COLUMN_USAGE k \
                     JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
                       ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
                      AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
                      AND r.TABLE_NAME = k.TABLE_NAME \
                     WHERE k.REFERENCED_TABLE_NAME IS NOT NULL AND {side} \
                     ORDER BY 1, 2, 3, k.ORDINAL_POSITION"
                ),
                (&table.database, &table.name),
            )
            .await
            .map_err(|e| db_error(e, &format!("reading the foreign keys of table {table}")))?;
        let keys = rows.into_iter().map(
            |(db, name, key, ref_db, ref_name, ref_key, column, ref_column, update, delete)| {
                ForeignKey {
                    table: vec![db, name],
                    name: Some(key),
                    referenced: vec![ref_db, ref_name],
                    referenced_key: ref_key,
                    columns: vec![(column, ref_column)],
                    on_update: KeyRule::from_sql(&update),
                    on_delete: KeyRule::from_sql(&delete),
                }
            },
        );
        Ok(ForeignKey::gather(keys))
    }

    async fn list(&self, prefix: &[String]) -> Result<Vec<DatasetInfo>> {
        let mut conn = self.connect().await?;
        let rows: Vec<(String, String, String)> = conn
            .query(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', \
                   'performance_schema', 'sys') ORDER BY 1, 2",
            )
            .await
            .map_err(|e| db_error(e, "listing tables"))?;
        Ok(rows
            .into_iter()
            .map(|(db, table, kind)| (vec![db, table], kind.ends_with("VIEW")))
            .filter(|(path, _)| super::path_has_prefix(path, prefix))
            .map(|(path, view)| DatasetInfo {
                path,
                schema: std::sync::Arc::new(Schema::empty()),
                total_records: None,
                total_bytes: None,
                view,
            })
            .collect())
    }

    async fn describe(&self, spec: &ReadSpec) -> Result<DatasetInfo> {
        self.describe_read(spec).await
    }

    /// A table with a one-column integer primary key in ranges of it (MariaDB sends one
    /// stream at one thread's pace: parts read at once go faster); others are read whole.
    async fn partitions(
        &self,
        spec: &ReadSpec,
        max: usize,
    ) -> Result<Vec<Option<mover_proto::Part>>> {
        let crate::connectors::ReadTarget::Dataset(path) = &spec.target else {
            return Ok(vec![None]);
        };
        let key = match self.primary_key(path).await? {
            Some(k) if k.columns.len() == 1 => k.columns.into_iter().next().expect("one column"),
            _ => return Ok(vec![None]),
        };
        let table = self.table(path)?;
        let mut conn = self.connect().await?;
        // Plain queries of the catalog (MariaDB can crash on correlated ones).
        let facts: Option<(String, Option<u64>)> = conn
            .exec_first(
                "SELECT c.DATA_TYPE, t.TABLE_ROWS FROM information_schema.COLUMNS c, \
                 information_schema.TABLES t WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? \
                 AND c.COLUMN_NAME = ? AND t.TABLE_SCHEMA = c.TABLE_SCHEMA \
                 AND t.TABLE_NAME = c.TABLE_NAME",
                (&table.database, &table.name, &key),
            )
            .await
            .map_err(|e| db_error(e, &format!("reading the key of table {table}")))?;
        let Some((data_type, rows)) = facts else {
            return Ok(vec![None]);
        };
        let integer = ["tinyint", "smallint", "mediumint", "int", "bigint"];
        if !integer.contains(&data_type.to_ascii_lowercase().as_str()) {
            return Ok(vec![None]);
        }
        let q = quote(&key);
        let span: Option<(Option<i64>, Option<i64>)> = conn
            .query_first(format!("SELECT MIN({q}), MAX({q}) FROM {}", table.quoted()))
            .await
            // An unsigned BIGINT past i64 does not fit a range: read whole.
            .unwrap_or(None);
        Ok(match span {
            Some((Some(low), Some(high))) => {
                crate::connectors::ranges::key_ranges(&key, low, high, rows.unwrap_or(0), max)
            }
            _ => vec![None],
        })
    }

    async fn is_command(&self, sql: &str) -> Result<bool> {
        self.returns_nothing(sql).await
    }

    async fn execute(&self, sql: &str, params: Option<BatchStream>) -> Result<u64> {
        self.run_statement(sql, params).await
    }

    /// One task reads the rows off a [`wire`] connection and parses each straight into the
    /// batch being built; the catalog is read on a mysql_async connection.
    async fn open_read(&self, spec: &ReadSpec) -> Result<(SchemaRef, BatchStream)> {
        self.read(spec).await
    }

    /// The staging tables of loads a killed gateway left (not writes in parts: MySQL's are
    /// spooled on the gateway's disk); they have no expiry, only a connection that is gone.
    async fn sweep_parts(&self, _expired_before: std::time::SystemTime) -> Result<usize> {
        load::sweep_orphans(self).await
    }

    async fn write(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<WriteReport> {
        let table = self.table(&spec.path)?;
        load::Load::new(self, table.clone(), schema, batches)
            .await?
            .run(spec.existing)
            .await
            .map_err(|e| e.within(self.label(&table)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_backquoted() {
        assert_eq!(quote("a`b"), "`a``b`");
        let t = Table::from_path(&["t".into()], "db").unwrap();
        assert_eq!(t.quoted(), "`db`.`t`");
        assert!(Table::from_path(&["t".into()], "").is_err());
    }
}
