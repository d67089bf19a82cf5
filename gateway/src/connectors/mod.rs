//! The one seam every system meets at: a source gives a schema and a bounded stream of record
//! batches; a sink consumes such a stream and commits only when it ended cleanly.
//!
//! A connector knows its system (SQLite, a bucket) and nothing of Flight, nor of the config
//! file: each folder owns its options (its keys in the config, unknown keys refused) and builds
//! itself from them; [`database_options`] is the one place a URL's scheme picks the folder.

pub mod mysql;
pub mod objects;
pub mod params;
pub mod plan;
pub mod postgres;
pub mod ranges;
pub mod sql_errors;
pub mod sqlite;
pub mod stages;
pub mod undo;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use mover_proto::{FileOptions, Part};

use crate::error::Result;

pub use crate::transfer::BatchStream;

/// What to read from one connector.
#[derive(Debug, Clone)]
pub struct ReadSpec {
    pub target: ReadTarget,
    pub file: FileOptions,
    /// Only these columns, in this order (empty: all). Connectors that can skip the other
    /// columns' bytes do; the catalog narrows what any connector returns.
    pub columns: Vec<String>,
    /// One part of a partitioned read, as [`Connector::partitions`] made it.
    pub part: Option<Part>,
}

#[derive(Debug, Clone)]
pub enum ReadTarget {
    /// A dataset path below the source name: `["main", "orders"]`, `["exports", "a.csv"]`.
    Dataset(Vec<String>),
    /// A free SQL query (databases with `allow_sql` only), with the one row of values bound
    /// to its placeholders, if it has any ([`params`]).
    Query {
        sql: String,
        params: Option<arrow::array::RecordBatch>,
    },
}

/// Where and how to write into one connector.
#[derive(Debug, Clone)]
pub struct WriteSpec {
    /// The dataset path below the source name.
    pub path: Vec<String>,
    pub existing: plan::Existing,
    pub file: FileOptions,
}

/// What a sink reports once it has committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub rows_committed: u64,
    /// What the user should know about how the load ran (a slower fallback, say).
    pub notes: Vec<String>,
}

/// One part of a write in parts, staged by its connector where no reader of the target sees
/// it: the rows, and the names of what holds them (objects, a table), the connector's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagedPart {
    pub rows: u64,
    pub names: Vec<String>,
}

/// A table's primary key, from the database's own catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    /// The constraint's name (SQLite has none).
    pub name: Option<String>,
    /// The key's columns, in key order.
    pub columns: Vec<String>,
}

/// Field metadata on a query's column that the database says is a table's column: that
/// table's db schema and name.
pub const ORIGIN_SCHEMA: &str = "mover.origin_schema";
pub const ORIGIN_TABLE: &str = "mover.origin_table";

/// `field` with the table it comes from, if known.
pub fn with_origin(
    field: arrow::datatypes::Field,
    origin: Option<(&str, &str)>,
) -> arrow::datatypes::Field {
    let Some((schema, table)) = origin.filter(|(_, t)| !t.is_empty()) else {
        return field;
    };
    let mut metadata = field.metadata().clone();
    metadata.insert(ORIGIN_SCHEMA, schema);
    metadata.insert(ORIGIN_TABLE, table);
    field.with_metadata(metadata)
}

/// The type a column has in its database, as the database spells it, where its connector
/// says (Postgres and MySQL keep it in the field's metadata).
pub fn declared_type(field: &arrow::datatypes::Field) -> Option<&str> {
    [postgres::types::PG_TYPE, mysql::types::MYSQL_TYPE]
        .into_iter()
        .find_map(|key| field.metadata().get(key))
        .map(String::as_str)
}

/// A foreign key, from the database's own catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referencing table (its path below the source) and the key's name.
    pub table: Vec<String>,
    pub name: Option<String>,
    /// The referenced table and the name of the key it references, where the database says.
    pub referenced: Vec<String>,
    pub referenced_key: Option<String>,
    /// (referencing column, referenced column), in key order.
    pub columns: Vec<(String, String)>,
    pub on_update: KeyRule,
    pub on_delete: KeyRule,
}

impl ForeignKey {
    /// Keys from a catalog's rows of one key column each, in key order: a row of the same
    /// table and key name as the key before it is that key's next column.
    pub fn gather(rows: impl IntoIterator<Item = ForeignKey>) -> Vec<ForeignKey> {
        let mut keys: Vec<ForeignKey> = Vec::new();
        for row in rows {
            match keys.last_mut() {
                Some(k) if k.table == row.table && k.name == row.name => {
                    k.columns.extend(row.columns)
                }
                _ => keys.push(row),
            }
        }
        keys
    }
}

/// What a foreign key does when its referenced row changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    Cascade,
    Restrict,
    SetNull,
    NoAction,
    SetDefault,
}

impl KeyRule {
    /// The rule as SQL spells it (`ON DELETE SET NULL`), in any case; unknown is NO ACTION.
    pub fn from_sql(rule: &str) -> Self {
        match rule.to_ascii_uppercase().as_str() {
            "CASCADE" => Self::Cascade,
            "RESTRICT" => Self::Restrict,
            "SET NULL" => Self::SetNull,
            "SET DEFAULT" => Self::SetDefault,
            _ => Self::NoAction,
        }
    }
}

/// Which of a table's foreign keys: its own (referencing others), or others' referencing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysOf {
    Imported,
    Exported,
}

/// One dataset as the catalog shows it.
#[derive(Debug, Clone)]
pub struct DatasetInfo {
    /// The dataset path below the source name.
    pub path: Vec<String>,
    pub schema: SchemaRef,
    /// Known when cheap to know (a table count, a Parquet footer).
    pub total_records: Option<u64>,
    /// Size in storage, where known.
    pub total_bytes: Option<u64>,
    /// A database view (listings say so; Flight SQL calls it a VIEW).
    pub view: bool,
}

#[async_trait]
pub trait Connector: Send + Sync {
    /// Every dataset whose path starts with `prefix` (parts compared whole, the last as a
    /// string prefix).
    async fn list(&self, prefix: &[String]) -> Result<Vec<DatasetInfo>>;

    /// Schema and, where cheap, counts, without reading the data.
    async fn describe(&self, spec: &ReadSpec) -> Result<DatasetInfo>;

    /// The read cut into at most `max` parts that can be read independently and at once;
    /// `None` is the whole. Sources that cannot split give one part.
    async fn partitions(&self, _spec: &ReadSpec, _max: usize) -> Result<Vec<Option<Part>>> {
        Ok(vec![None])
    }

    /// Hold what `part` shares with the other parts of its read (a Postgres snapshot) until
    /// `until`, or release it now (`None`): a renewed or cancelled FlightInfo. False when the
    /// part holds nothing.
    fn hold_part(&self, _part: &Part, _until: Option<std::time::Instant>) -> bool {
        false
    }

    /// A table's primary key: its name where the database names it, and its columns in key
    /// order; `None` for a table without one. Only database tables have keys.
    async fn primary_key(&self, _path: &[String]) -> Result<Option<PrimaryKey>> {
        Ok(None)
    }

    /// A table's foreign keys, `which` side of them, from the database's own catalog. Only
    /// database tables have keys.
    async fn foreign_keys(&self, _path: &[String], _which: KeysOf) -> Result<Vec<ForeignKey>> {
        Ok(vec![])
    }

    /// The values a query's placeholders take, in order, as the types they are bound as;
    /// `None` where the database does not say (no placeholders is an empty schema).
    async fn parameters(&self, _sql: &str) -> Result<Option<SchemaRef>> {
        Ok(None)
    }

    /// Whether `sql` is one statement to execute for what it changes (DDL, DML with nothing
    /// returned) rather than to read: the database decides, by preparing it. Only databases
    /// run SQL.
    async fn is_command(&self, _sql: &str) -> Result<bool> {
        Err(crate::error::Error::unsupported("only databases run SQL"))
    }

    /// Run `sql`, a statement that changes the database: once with no values (`params`
    /// `None`), or once for each row of `params`, bound to its placeholders as values. All
    /// in one transaction, committed only if every run succeeded and `params` ended cleanly;
    /// on any error, or if this future is dropped, nothing changes (as far as the database
    /// keeps DDL in a transaction). The rows the database says were changed.
    async fn execute(&self, _sql: &str, _params: Option<BatchStream>) -> Result<u64> {
        Err(crate::error::Error::unsupported("only databases run SQL"))
    }

    /// Whether this connector stages the parts of a write in parts into `spec` itself
    /// ([`Connector::stage_part`]); where it does not, the gateway keeps them until the commit.
    fn stages_parts(&self, _spec: &WriteSpec) -> bool {
        false
    }

    /// Whether the commit of staged parts into `spec` moves them into place (a rename) rather
    /// than copying them again (Postgres's `INSERT … SELECT`): where it does, a move split in
    /// parts writes every part at once for nothing; where it copies, one stream is cheaper.
    fn publishes_parts_in_place(&self, _spec: &WriteSpec) -> bool {
        false
    }

    /// Write `batches` as one part of a write in parts into `spec`, where no reader of the
    /// target sees it; `stage` names the part uniquely (letters, digits and `-`). On any error,
    /// or if this future is dropped, nothing of it stays.
    async fn stage_part(
        &self,
        _spec: &WriteSpec,
        _stage: &str,
        _schema: SchemaRef,
        _batches: BatchStream,
    ) -> Result<StagedPart> {
        Err(crate::error::Error::unsupported(
            "this target does not stage parts",
        ))
    }

    /// Make `parts` (staged by [`Connector::stage_part`], rows of `schema`) the write into
    /// `spec`, in one step: as a single write does with its rows, or nothing changes. What was
    /// staged is gone afterwards either way.
    async fn publish_parts(
        &self,
        _spec: &WriteSpec,
        _schema: SchemaRef,
        _parts: Vec<StagedPart>,
    ) -> Result<WriteReport> {
        Err(crate::error::Error::unsupported(
            "this target does not stage parts",
        ))
    }

    /// Remove staged parts that will not be published.
    async fn discard_parts(&self, _parts: Vec<StagedPart>) -> Result<()> {
        Ok(())
    }

    /// Remove what writes in parts staged here and left behind, by this gateway or another
    /// (one killed before its write's commit or abort): every part whose stage name
    /// ([`stages`]) says its write expired before `expired_before`. How many were removed.
    async fn sweep_parts(&self, _expired_before: std::time::SystemTime) -> Result<usize> {
        Ok(0)
    }

    /// The records hints a file's first bytes suggest. Only files have them.
    async fn sniff(&self, _spec: &ReadSpec) -> Result<crate::records::hints::Hints> {
        Err(crate::error::Error::unsupported(
            "only files are sniffed; name a file in a bucket",
        ))
    }

    /// The schema, then a stream of batches that holds at most a few batches in memory.
    async fn open_read(&self, spec: &ReadSpec) -> Result<(SchemaRef, BatchStream)>;

    /// Consume `batches` and commit only if the stream ended without error; on any error or
    /// if this future is dropped, the target is left exactly as it was.
    async fn write(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<WriteReport>;
}

/// What every connector is built with besides its own options.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Where relative paths in the config resolve from (the config file's directory).
    pub base_dir: PathBuf,
    /// Rows per batch that readers produce.
    pub batch_rows: usize,
    /// How long what a partitioned read's parts share (a Postgres snapshot) is held: as long
    /// as the tickets that name the parts live.
    pub hold: std::time::Duration,
    /// The longest a write may stay open (`server.max_write_ttl_seconds`): what a single
    /// write stages is named to expire then, and an upload open longer (and the sweep grace)
    /// is taken for a killed gateway's.
    pub write_ttl: std::time::Duration,
}

impl Setup {
    /// A path from the config, resolved against its directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        crate::secret::resolve(&self.base_dir, p)
    }
}

/// A database's options as its backend reads them from the config: everything under
/// `[databases.NAME]` but `url`, `allow_sql` and `allow_sql_writes`.
pub trait DatabaseOptions: std::fmt::Debug + Send + Sync {
    /// What can be known without reaching the database (a secret that is not where the config
    /// says, a value out of range), checked when the config loads.
    fn check(&self, url: &str, setup: &Setup) -> Result<()> {
        self.open("check", url, setup).map(drop)
    }

    /// The connector; it connects only when first used.
    fn open(&self, name: &str, url: &str, setup: &Setup) -> Result<Arc<dyn Connector>>;
}

/// The options of a database at `url`, read by the backend its scheme names; a key that
/// backend does not take is an error naming the key and the backend.
pub fn database_options(url: &str, keys: toml::Table) -> Result<Arc<dyn DatabaseOptions>> {
    let (scheme, _) = url.split_once("://").ok_or_else(|| {
        crate::error::Error::invalid(format!("url: {url:?} is not a URL (scheme://...)"))
    })?;
    match scheme {
        "sqlite" => parsed::<sqlite::options::Options>("sqlite", keys),
        "postgres" | "postgresql" => parsed::<postgres::options::Options>("postgres", keys),
        "mysql" | "mariadb" => parsed::<mysql::options::Options>("mysql", keys),
        other => Err(crate::error::Error::invalid(format!(
            "url: unknown database scheme {other:?}; expected sqlite://, postgres:// or mysql://"
        ))),
    }
}

fn parsed<T>(backend: &str, keys: toml::Table) -> Result<Arc<dyn DatabaseOptions>>
where
    T: DatabaseOptions + serde::de::DeserializeOwned + 'static,
{
    let options: T = toml::Value::Table(keys).try_into().map_err(|e| {
        crate::error::Error::invalid(format!(
            "{} (the keys of a {backend} database)",
            e.message()
        ))
    })?;
    Ok(Arc::new(options))
}

/// A table named by schema and name, as the database connectors take it from a path below the
/// source name: `[table]` (the default schema) or `[schema, table]`.
#[derive(Debug, Clone)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn from_path(path: &[String], default_schema: &str) -> Result<Self> {
        match path {
            [table] => Ok(Self {
                schema: default_schema.into(),
                name: table.clone(),
            }),
            [schema, table] => Ok(Self {
                schema: schema.clone(),
                name: table.clone(),
            }),
            _ => Err(crate::error::Error::invalid(format!(
                "{:?} is not a table name; use database/schema/table",
                path.join("/")
            ))),
        }
    }

    /// `"schema"."table"`, safe in SQL text whatever the names hold.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// What `connect_timeout_seconds` is when the config does not say.
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) fn default_connect_timeout_seconds() -> u64 {
    DEFAULT_CONNECT_TIMEOUT.as_secs()
}

/// `connect_timeout_seconds` as a duration; 0 is refused.
pub(crate) fn connect_timeout(seconds: u64) -> Result<std::time::Duration> {
    if seconds == 0 {
        return Err(crate::error::Error::invalid(
            "connect_timeout_seconds must be at least 1",
        ));
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// A connection attempt to database `name`, bounded by `limit`: a server that takes the TCP
/// connection and never answers would otherwise hold the request until the client gives up.
pub async fn connect_within<T>(
    limit: std::time::Duration,
    name: &str,
    connecting: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, connecting)
        .await
        .unwrap_or_else(|_| {
            Err(crate::error::Error::new(
                crate::error::ErrorKind::Unavailable,
                format!(
                    "database {name}: cannot connect: no answer within {} s (connect_timeout_seconds)",
                    limit.as_secs()
                ),
            ))
        })
}

/// An SQL identifier in double quotes with embedded quotes doubled (SQLite and Postgres alike).
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// True when `path` lies under `prefix`: all but the last prefix part match whole, the last
/// as a string prefix, so "demo/main/ord" finds "demo/main/orders".
pub fn path_has_prefix(path: &[String], prefix: &[String]) -> bool {
    let Some((last, whole)) = prefix.split_last() else {
        return true;
    };
    path.len() >= prefix.len()
        && path.iter().zip(whole).all(|(a, b)| a == b)
        && path[whole.len()].starts_with(last.as_str())
}

#[cfg(test)]
mod tests {
    use super::path_has_prefix;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefix_matches_whole_parts_then_a_string_prefix() {
        let p = v(&["main", "orders"]);
        assert!(path_has_prefix(&p, &[]));
        assert!(path_has_prefix(&p, &v(&["main"])));
        assert!(path_has_prefix(&p, &v(&["main", "ord"])));
        assert!(path_has_prefix(&p, &v(&["ma"])));
        assert!(!path_has_prefix(&p, &v(&["main", "x"])));
        assert!(!path_has_prefix(&p, &v(&["mai", "orders"])));
        assert!(!path_has_prefix(&p, &v(&["main", "orders", "x"])));
    }
}
