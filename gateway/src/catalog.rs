//! Names to sources: the first part of every dataset path names a configured database or
//! bucket; the catalog hands the rest of the path to that source's connector.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use mover_proto::{Read, Write, read::What};

use crate::config::Config;
use crate::connectors::objects::Bucket;
use crate::connectors::{
    BatchStream, Connector, DatasetInfo, PrimaryKey, ReadSpec, ReadTarget, WriteSpec,
};
use crate::error::{Error, ErrorKind, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Database,
    Bucket,
}

struct Source {
    kind: SourceKind,
    /// What it is, for metrics: its URL's scheme (`postgres`, `mysql`, `sqlite`, `s3`, `gs`,
    /// `az`, `file`, `https`, `memory`).
    scheme: String,
    allow_sql: bool,
    allow_sql_writes: bool,
    connector: Arc<dyn Connector>,
}

/// Every configured source, each opened or the reason it could not be.
fn opened(config: &Config) -> Vec<(String, SourceKind, Result<Source>)> {
    let setup = config.setup();
    let databases = config.databases.iter().map(|(name, db)| {
        let source = db
            .options
            .open(name, &db.url, &setup)
            .map_err(|e| e.within(format!("databases.{name}")))
            .map(|connector| Source {
                kind: SourceKind::Database,
                scheme: scheme(&db.url),
                allow_sql: db.allow_sql,
                allow_sql_writes: db.allow_sql_writes,
                connector,
            });
        (name.clone(), SourceKind::Database, source)
    });
    let buckets = config.buckets.iter().map(|(name, bucket)| {
        let source = Bucket::open(name, bucket, &setup).map(|b| Source {
            kind: SourceKind::Bucket,
            scheme: scheme(&bucket.url),
            allow_sql: false,
            allow_sql_writes: false,
            connector: Arc::new(b),
        });
        (name.clone(), SourceKind::Bucket, source)
    });
    databases.chain(buckets).collect()
}

/// A URL's scheme, lower-cased; `postgresql` and `mariadb` as `postgres` and `mysql`.
fn scheme(url: &str) -> String {
    let scheme = url
        .split_once("://")
        .map_or("", |(s, _)| s)
        .to_ascii_lowercase();
    match scheme.as_str() {
        "postgresql" => "postgres".into(),
        "mariadb" => "mysql".into(),
        _ => scheme,
    }
}

/// The connector a write goes to, with its spec and the name errors give it.
pub struct Sink {
    pub connector: Arc<dyn Connector>,
    pub spec: WriteSpec,
    pub label: String,
}

/// Every configured source by name.
#[derive(Clone)]
pub struct Catalog {
    sources: Arc<BTreeMap<String, Source>>,
}

/// A dataset in the catalog: its full path (source name first) and what is known of it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub path: Vec<String>,
    pub info: DatasetInfo,
}

/// What a listing found, and each source that could not be listed with why.
#[derive(Debug, Default)]
pub struct Listing {
    pub found: Vec<Listed>,
    pub failed: Vec<(String, Error)>,
}

impl Catalog {
    pub fn from_config(config: &Config) -> Result<Self> {
        let sources = opened(config)
            .into_iter()
            .map(|(name, _, source)| Ok((name, source?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        Ok(Self {
            sources: Arc::new(sources),
        })
    }

    /// Each configured source opened on its own (its secrets resolved) and listed once (a
    /// database's login, a bucket's credentials), all at once: per source, by its config
    /// key, how many datasets it shows at its top, or why it failed.
    pub async fn check(config: &Config) -> Vec<(String, Result<usize>)> {
        let checks = opened(config)
            .into_iter()
            .map(|(name, kind, source)| async move {
                let key = match kind {
                    SourceKind::Database => format!("databases.{name}"),
                    SourceKind::Bucket => format!("buckets.{name}"),
                };
                let listed = match source {
                    Ok(source) => source.connector.list(&[]).await.map(|found| found.len()),
                    Err(e) => Err(e),
                };
                (key, listed)
            });
        futures::future::join_all(checks).await
    }

    fn source(&self, name: &str) -> Result<&Source> {
        self.sources.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.sources.keys().map(String::as_str).collect();
            Error::not_found(format!(
                "no database or bucket named {name:?} (this gateway has: {})",
                known.join(", ")
            ))
        })
    }

    /// The connector for a full path, and the path below the source name.
    fn split<'a>(&self, path: &'a [String]) -> Result<(&Source, &'a [String])> {
        let (first, rest) = path
            .split_first()
            .ok_or_else(|| Error::invalid("an empty path names no dataset"))?;
        Ok((self.source(first)?, rest))
    }

    /// Every dataset under `prefix` (a full path whose last part may be partial). The sources
    /// are asked at once, and one that fails (a database that is down) is named in
    /// [`Listing::failed`] while the others are listed.
    pub async fn list(&self, prefix: &[String]) -> Listing {
        let asked = self.sources.iter().filter_map(|(name, source)| {
            let below: &[String] = match prefix.split_first() {
                None => &[],
                Some((first, rest)) if name == first => rest,
                Some((first, rest)) if rest.is_empty() && name.starts_with(first.as_str()) => &[],
                Some(_) => return None,
            };
            Some(async move { (name, source, source.connector.list(below).await) })
        });
        let mut listing = Listing::default();
        for (name, source, result) in futures::future::join_all(asked).await {
            match result {
                Ok(infos) => listing.found.extend(infos.into_iter().map(|info| {
                    let mut path = vec![name.clone()];
                    path.extend(info.path.iter().cloned());
                    Listed { path, info }
                })),
                Err(e) => {
                    let what = match source.kind {
                        SourceKind::Database => "database",
                        SourceKind::Bucket => "bucket",
                    };
                    listing
                        .failed
                        .push((name.clone(), e.within(format!("{what} {name}"))));
                }
            }
        }
        listing
    }

    /// What kind of source a read reads (its source's URL scheme), for metrics; `unknown`
    /// for a name this catalog does not have.
    pub fn kind_of_read(&self, read: &Read) -> String {
        let name = match &read.what {
            Some(mover_proto::read::What::Path(p)) => p.parts.first().map(String::as_str),
            Some(mover_proto::read::What::Query(q)) => Some(q.database.as_str()),
            None => None,
        };
        self.kind_of(name)
    }

    /// What kind of source a write writes, for metrics.
    pub fn kind_of_write(&self, write: &Write) -> String {
        self.kind_of(
            write
                .path
                .as_ref()
                .and_then(|p| p.parts.first())
                .map(String::as_str),
        )
    }

    /// Whether a read reads a bucket (files), not a database.
    pub fn reads_a_bucket(&self, read: &Read) -> bool {
        let Some(mover_proto::read::What::Path(p)) = &read.what else {
            return false;
        };
        p.parts
            .first()
            .and_then(|n| self.sources.get(n))
            .is_some_and(|s| s.kind == SourceKind::Bucket)
    }

    fn kind_of(&self, name: Option<&str>) -> String {
        name.and_then(|n| self.sources.get(n))
            .map_or_else(|| "unknown".into(), |s| s.scheme.clone())
    }

    /// Every configured source's name and kind, in name order.
    pub fn sources(&self) -> Vec<(&str, SourceKind)> {
        self.sources
            .iter()
            .map(|(name, source)| (name.as_str(), source.kind))
            .collect()
    }

    /// Every source swept of the parts that writes in parts left behind
    /// ([`Connector::sweep_parts`]): each source that removed some, or failed, with how many.
    pub async fn sweep_parts(
        &self,
        expired_before: std::time::SystemTime,
    ) -> Vec<(String, Result<usize>)> {
        let mut swept = Vec::new();
        for (name, source) in self.sources.iter() {
            let result = source
                .connector
                .sweep_parts(expired_before)
                .await
                .map_err(|e| e.within(name));
            if !matches!(result, Ok(0)) {
                swept.push((name.clone(), result));
            }
        }
        swept
    }

    /// The datasets of one source, named below it: a database's every table and view, a
    /// bucket's top level (one listing, not a walk of the bucket).
    pub async fn list_source(&self, name: &str) -> Result<Vec<DatasetInfo>> {
        self.source(name)?.connector.list(&[]).await
    }

    /// The primary key of the table at `path` (source name first), if it has one.
    pub async fn primary_key(&self, path: &[String]) -> Result<Option<PrimaryKey>> {
        let (source, rest) = self.split(path)?;
        source.connector.primary_key(rest).await
    }

    /// The foreign keys of the table at `path` (source name first), `which` side of them; the
    /// tables they name are paths below the same source.
    pub async fn foreign_keys(
        &self,
        path: &[String],
        which: crate::connectors::KeysOf,
    ) -> Result<Vec<crate::connectors::ForeignKey>> {
        let (source, rest) = self.split(path)?;
        source.connector.foreign_keys(rest, which).await
    }

    /// The parameters a query's placeholders take, where its database says.
    pub async fn parameters(&self, database: &str, sql: &str) -> Result<Option<SchemaRef>> {
        self.source(database)?.connector.parameters(sql).await
    }

    /// Whether `sql` is a statement that changes `database` (executed for its count) rather
    /// than a query (read): the database's own word, asked only of one that takes SQL.
    pub async fn is_command(&self, database: &str, sql: &str) -> Result<bool> {
        let source = self.database(database)?;
        if !source.allow_sql && !source.allow_sql_writes {
            return Err(no_sql(database));
        }
        source.connector.is_command(sql).await
    }

    /// Run `sql`, a statement that changes `database`, once or for each row of `params`,
    /// all or nothing: on a database whose config allows SQL writes only.
    pub async fn execute(
        &self,
        database: &str,
        sql: &str,
        params: Option<BatchStream>,
    ) -> Result<u64> {
        let source = self.database(database)?;
        if !source.allow_sql_writes {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "database {database:?} does not accept SQL that changes it (set \
                     allow_sql_writes = true in its config); write rows with a DoPut or an ingest"
                ),
            ));
        }
        source
            .connector
            .execute(sql, params)
            .await
            .map_err(|e| e.within(database))
    }

    /// The source `name`, which must be a database.
    fn database(&self, name: &str) -> Result<&Source> {
        let source = self.source(name)?;
        if source.kind != SourceKind::Database {
            return Err(Error::invalid(format!(
                "{name:?} is a bucket; SQL needs a database"
            )));
        }
        Ok(source)
    }

    pub async fn describe(&self, read: &Read) -> Result<DatasetInfo> {
        let (source, spec) = self.read_spec(read)?;
        let mut info = source.connector.describe(&spec).await?;
        info.schema = project(&info.schema, &read.columns)?.0;
        Ok(info)
    }

    /// `read` as the reads of its endpoints: one, or at most `read.partitions` parts to read at
    /// once, each `read` with its part set.
    pub async fn partitions(&self, read: &Read) -> Result<Vec<Read>> {
        let max = read.partitions as usize;
        if max <= 1 {
            return Ok(vec![read.clone()]);
        }
        let (source, spec) = self.read_spec(read)?;
        let parts = source.connector.partitions(&spec, max).await?;
        Ok(parts
            .into_iter()
            .map(|part| Read {
                part,
                partitions: 0,
                ..read.clone()
            })
            .collect())
    }

    /// Hold what a part of a partitioned read shares with the others (a Postgres snapshot)
    /// until `until`, or release it (`None`); false when it holds nothing.
    pub fn hold(&self, read: &Read, until: Option<std::time::Instant>) -> bool {
        let Some(part) = &read.part else {
            return false;
        };
        self.read_spec(read)
            .is_ok_and(|(source, _)| source.connector.hold_part(part, until))
    }

    /// The records hints of a file, as `_format_delimited` would hold them.
    pub async fn sniff(&self, read: &Read) -> Result<serde_json::Value> {
        let (source, spec) = self.read_spec(read)?;
        let hints = source.connector.sniff(&spec).await?;
        Ok(serde_json::Value::Object(hints.to_json()))
    }

    pub async fn open_read(&self, read: &Read) -> Result<(SchemaRef, BatchStream)> {
        let (source, spec) = self.read_spec(read)?;
        let (schema, stream) = source.connector.open_read(&spec).await?;
        let (schema, indices) = project(&schema, &read.columns)?;
        let stream = match indices {
            None => stream,
            Some(indices) => {
                let schema = schema.clone();
                stream
                    .map(move |item| {
                        let batch = item?.project(&indices)?;
                        // The projected batch takes the projected schema's nullability and order.
                        Ok(RecordBatch::try_new(
                            schema.clone(),
                            batch.columns().to_vec(),
                        )?)
                    })
                    .boxed()
            }
        };
        let stream = match read.limit {
            0 => stream,
            n => crate::transfer::limited(stream, n),
        };
        Ok((schema, stream))
    }

    pub async fn write(
        &self,
        write: &Write,
        schema: arrow::datatypes::SchemaRef,
        batches: crate::connectors::BatchStream,
    ) -> Result<crate::connectors::WriteReport> {
        let sink = self.sink(write)?;
        sink.connector
            .write(&sink.spec, schema, batches)
            .await
            .map_err(|e| e.within(&sink.label))
    }

    /// Where `write` goes: its connector, what to tell it, and the name errors give.
    pub fn sink(&self, write: &Write) -> Result<Sink> {
        let path = write
            .path
            .as_ref()
            .ok_or_else(|| Error::invalid("the write names no target path"))?;
        let (source, rest) = self.split(&path.parts)?;
        let spec = WriteSpec {
            path: rest.to_vec(),
            existing: crate::connectors::plan::Existing {
                mode: write.existing_table(),
                must_exist: write.must_exist,
            },
            file: write.file.clone().unwrap_or_default(),
        };
        Ok(Sink {
            connector: source.connector.clone(),
            spec,
            label: path.parts.join("/"),
        })
    }

    fn read_spec(&self, read: &Read) -> Result<(&Source, ReadSpec)> {
        let (source, target) = match &read.what {
            Some(What::Path(path)) => {
                let (source, rest) = self.split(&path.parts)?;
                if rest.is_empty() {
                    return Err(Error::invalid(format!(
                        "{:?} names a whole source; name a table or file inside it",
                        path.parts[0]
                    )));
                }
                (source, ReadTarget::Dataset(rest.to_vec()))
            }
            Some(What::Query(query)) => {
                let source = self.database(&query.database)?;
                if !source.allow_sql {
                    return Err(no_sql(&query.database));
                }
                let params = crate::connectors::params::from_ipc(&query.parameters)
                    .map_err(|e| e.within("the query"))?;
                (
                    source,
                    ReadTarget::Query {
                        sql: query.sql.clone(),
                        params,
                    },
                )
            }
            None => return Err(Error::invalid("the read names neither a path nor a query")),
        };
        let spec = ReadSpec {
            target,
            file: read.file.clone().unwrap_or_default(),
            columns: read.columns.clone(),
            part: read.part.clone(),
        };
        Ok((source, spec))
    }
}

/// `schema` narrowed to `columns` in their order, and the indices to take from each batch;
/// None when the schema already is that.
fn project(schema: &SchemaRef, columns: &[String]) -> Result<(SchemaRef, Option<Vec<usize>>)> {
    if columns.is_empty() {
        return Ok((schema.clone(), None));
    }
    let indices = crate::convert::column_indices(schema, columns)?;
    if indices.iter().copied().eq(0..schema.fields().len()) {
        return Ok((schema.clone(), None));
    }
    Ok((Arc::new(schema.project(&indices)?), Some(indices)))
}

/// `database` takes no free SQL queries.
fn no_sql(database: &str) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "database {database:?} does not accept SQL queries (set allow_sql = true in its config)"
        ),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    //! The catalog over in-memory buckets and a SQLite file: routing, listing every source at
    //! once, projection and limits, without a server.
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::TryStreamExt;
    use mover_proto::{ExistingTable, Path, Query};

    pub(crate) fn catalog(dir: &std::path::Path) -> Catalog {
        let text = "[databases.db]\nurl = \"sqlite://db.sqlite\"\nallow_sql = true\n\
                    [buckets.mem]\nurl = \"memory://\"\n[buckets.scratch]\nurl = \"memory://\"\n";
        let config = Config::parse(text, dir.to_path_buf()).unwrap();
        Catalog::from_config(&config).unwrap()
    }

    pub(crate) fn rows(n: i64) -> (SchemaRef, BatchStream) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap();
        (schema, futures::stream::iter([Ok(batch)]).boxed())
    }

    pub(crate) fn write(name: &str) -> Write {
        Write {
            path: Some(Path {
                parts: mover_client::names::parse(name).expect("a dataset name"),
            }),
            existing_table: ExistingTable::Fail as i32,
            ..Default::default()
        }
    }

    pub(crate) fn read(name: &str) -> Read {
        Read {
            what: Some(What::Path(Path {
                parts: mover_client::names::parse(name).expect("a dataset name"),
            })),
            ..Default::default()
        }
    }

    pub(crate) async fn count(catalog: &Catalog, read: &Read) -> usize {
        let (_, stream) = catalog.open_read(read).await.unwrap();
        let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
        batches.iter().map(|b| b.num_rows()).sum()
    }

    #[tokio::test]
    async fn names_route_to_their_source_and_list_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path());
        for name in ["mem/a.parquet", "mem/sub/b.csv", "db/main/t"] {
            let (schema, stream) = rows(10);
            let report = catalog.write(&write(name), schema, stream).await.unwrap();
            assert_eq!(report.rows_committed, 10, "{name}");
        }
        let listing = catalog.list(&[]).await;
        assert!(listing.failed.is_empty());
        let names: Vec<String> = listing.found.iter().map(|l| l.path.join("/")).collect();
        assert_eq!(names, ["db/main/t", "mem/a.parquet", "mem/sub/"]);
        let under: Vec<String> = catalog
            .list(&["mem".into(), "sub".into(), "".into()])
            .await
            .found
            .iter()
            .map(|l| l.path.join("/"))
            .collect();
        assert_eq!(under, ["mem/sub/b.csv"]);
        let e = catalog.open_read(&read("nowhere/x")).await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.contains("db, mem, scratch"), "{e}");
    }

    #[tokio::test]
    async fn reads_are_narrowed_to_columns_and_cut_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path());
        let (schema, stream) = rows(100);
        catalog
            .write(&write("mem/t.parquet"), schema, stream)
            .await
            .unwrap();
        let mut narrowed = read("mem/t.parquet");
        narrowed.columns = vec!["name".into()];
        narrowed.limit = 7;
        let (schema, stream) = catalog.open_read(&narrowed).await.unwrap();
        assert_eq!(schema.fields().len(), 1);
        assert_eq!(schema.field(0).name(), "name");
        let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 7);
        let query = Read {
            what: Some(What::Query(Query {
                database: "mem".into(),
                sql: "SELECT 1".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let e = catalog.open_read(&query).await.err().unwrap();
        assert!(e.message.contains("is a bucket"), "{e}");
        assert_eq!(count(&catalog, &read("mem/t.parquet")).await, 100);
    }

    #[tokio::test]
    async fn a_failing_source_is_named_and_the_rest_listed() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens on port 1: the connection is refused at once.
        let text = "[databases.down]\nurl = \"postgres://u@127.0.0.1:1/db\"\n\
                    [buckets.mem]\nurl = \"memory://\"\n";
        let config = Config::parse(text, dir.path().to_path_buf()).unwrap();
        let catalog = Catalog::from_config(&config).unwrap();
        let (schema, stream) = rows(1);
        catalog
            .write(&write("mem/a.csv"), schema, stream)
            .await
            .unwrap();
        let listing = catalog.list(&[]).await;
        let names: Vec<String> = listing.found.iter().map(|l| l.path.join("/")).collect();
        assert_eq!(names, ["mem/a.csv"]);
        assert_eq!(listing.failed.len(), 1);
        let (name, e) = &listing.failed[0];
        assert_eq!(name, "down");
        assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
        assert!(
            e.message.starts_with("database down: cannot connect"),
            "{e}"
        );
    }
}
