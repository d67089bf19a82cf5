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
use crate::connectors::{BatchStream, Connector, DatasetInfo, ReadSpec, ReadTarget, WriteSpec};
use crate::error::{Error, ErrorKind, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Database,
    Bucket,
}

struct Source {
    kind: SourceKind,
    allow_sql: bool,
    connector: Arc<dyn Connector>,
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
        let mut sources = BTreeMap::new();
        let setup = config.setup();
        for (name, db) in &config.databases {
            let connector = db
                .options
                .open(name, &db.url, &setup)
                .map_err(|e| e.within(format!("databases.{name}")))?;
            let source = Source {
                kind: SourceKind::Database,
                allow_sql: db.allow_sql,
                connector,
            };
            sources.insert(name.clone(), source);
        }
        for (name, bucket) in &config.buckets {
            let source = Source {
                kind: SourceKind::Bucket,
                allow_sql: false,
                connector: Arc::new(Bucket::open(name, bucket, &setup)?),
            };
            sources.insert(name.clone(), source);
        }
        Ok(Self {
            sources: Arc::new(sources),
        })
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
        let path = write
            .path
            .as_ref()
            .ok_or_else(|| Error::invalid("the write names no target path"))?;
        let (source, rest) = self.split(&path.parts)?;
        let spec = WriteSpec {
            path: rest.to_vec(),
            existing: write.existing_table(),
            file: write.file.clone().unwrap_or_default(),
        };
        source
            .connector
            .write(&spec, schema, batches)
            .await
            .map_err(|e| e.within(path.parts.join("/")))
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
                let source = self.source(&query.database)?;
                if source.kind != SourceKind::Database {
                    return Err(Error::invalid(format!(
                        "{:?} is a bucket; SQL queries need a database",
                        query.database
                    )));
                }
                if !source.allow_sql {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "database {:?} does not accept SQL queries (set allow_sql = true in its config)",
                            query.database
                        ),
                    ));
                }
                (source, ReadTarget::Query(query.sql.clone()))
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
