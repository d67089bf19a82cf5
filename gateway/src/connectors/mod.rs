//! The one seam every system meets at: a source gives a schema and a bounded stream of record
//! batches; a sink consumes such a stream and commits only when it ended cleanly.
//!
//! A connector knows its system (SQLite, a bucket) and nothing of Flight.

pub mod mysql;
pub mod objects;
pub mod postgres;
pub mod sqlite;
pub mod undo;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use futures::stream::BoxStream;
use mover_proto::{ExistingTable, FileOptions, Part};

use crate::error::Result;

/// Record batches as they flow from a source to a sink. Dropping the stream cancels the source.
pub type BatchStream = BoxStream<'static, Result<arrow::array::RecordBatch>>;

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
    /// A free SQL query (databases with `allow_sql` only).
    Query(String),
}

/// Where and how to write into one connector.
#[derive(Debug, Clone)]
pub struct WriteSpec {
    /// The dataset path below the source name.
    pub path: Vec<String>,
    pub existing: ExistingTable,
    pub file: FileOptions,
}

/// What a sink reports once it has committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub rows_committed: u64,
    /// What the user should know about how the load ran (a slower fallback, say).
    pub notes: Vec<String>,
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

/// An incoming column the target table does not have.
pub fn schema_mismatch(
    column: &str,
    table: &impl std::fmt::Display,
    has: &[&str],
) -> crate::error::Error {
    crate::error::Error::new(
        crate::error::ErrorKind::FailedPrecondition,
        format!(
            "schema mismatch: column {column:?} is not in table {table} (it has: {})",
            has.join(", ")
        ),
    )
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
