//! Buckets: files and prefixes in an object store, read and written as streams.
//!
//! Everything goes through `object_store`, so a local folder and (later) S3, GCS or Azure take
//! the same path. Writes are multipart uploads fed batch by batch; the object appears only when
//! the upload completes (a local folder stages it under a temporary name and renames it), and
//! any error or a dropped write aborts the upload, so no partial file is ever visible.

mod keys;

use std::path::Path as FsPath;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use mover_proto::ExistingTable;
use object_store::local::LocalFileSystem;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, WriteMultipart};

use super::{BatchStream, Connector, DatasetInfo, ReadSpec, ReadTarget, WriteReport, WriteSpec};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::records::{self, Format, csv, jsonl, parquet};

pub use keys::Key;

/// Bytes read from the head of a CSV or JSON file to infer its schema.
const SAMPLE_BYTES: u64 = 1024 * 1024;
/// Multipart chunk size, and how many chunks may be in flight: bounds upload memory.
const PART_BYTES: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Clone)]
pub struct Bucket {
    name: String,
    store: Arc<dyn ObjectStore>,
    batch_rows: usize,
}

impl Bucket {
    /// A local directory as a bucket (created if missing).
    pub fn local(name: &str, dir: &FsPath, batch_rows: usize) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .internal(format!("bucket {name}: cannot create {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .internal(format!("bucket {name}: cannot open {}", dir.display()))?;
        Ok(Self::new(name, Arc::new(store), batch_rows))
    }

    pub fn new(name: &str, store: Arc<dyn ObjectStore>, batch_rows: usize) -> Self {
        Self {
            name: name.into(),
            store,
            batch_rows,
        }
    }

    fn label(&self, key: &Key) -> String {
        format!("{}/{}", self.name, key)
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.store.head(key.path()).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                Error::not_found(format!("{} not found", self.label(key)))
            }
            other => Error::internal(format!("{}: {other}", self.label(key))),
        })
    }

    /// Data files under a prefix, in name order; hidden and staging files are skipped.
    async fn parts(&self, key: &Key) -> Result<Vec<ObjectMeta>> {
        let mut parts: Vec<ObjectMeta> = self
            .store
            .list(Some(key.path()))
            .try_collect()
            .await
            .internal(format!("listing {}", self.label(key)))?;
        parts.retain(|m| keys::is_data_file(&m.location));
        parts.sort_by(|a, b| a.location.cmp(&b.location));
        if parts.is_empty() {
            return Err(Error::not_found(format!(
                "{} holds no data files",
                self.label(key)
            )));
        }
        Ok(parts)
    }

    /// The schema of one file, its row count where the footer tells it.
    async fn describe_file(
        &self,
        meta: &ObjectMeta,
        format: &Format,
    ) -> Result<(SchemaRef, Option<u64>)> {
        let label = format!("{}/{}", self.name, meta.location);
        let result = match format {
            Format::Parquet => {
                let reader = parquet::ObjectReader::new(
                    self.store.clone(),
                    meta.location.clone(),
                    meta.size,
                );
                parquet::describe(reader).await.map(|(s, n)| (s, Some(n)))
            }
            Format::Csv(dialect) => {
                let (sample, whole) = self.sample(meta).await?;
                csv::infer_schema(&sample, whole, *dialect).map(|s| (s, None))
            }
            Format::Jsonl => {
                let (sample, whole) = self.sample(meta).await?;
                jsonl::infer_schema(&sample, whole).map(|s| (s, None))
            }
        };
        result.map_err(|e| e.within(label))
    }

    async fn sample(&self, meta: &ObjectMeta) -> Result<(bytes::Bytes, bool)> {
        let end = meta.size.min(SAMPLE_BYTES);
        if end == 0 {
            return Ok((bytes::Bytes::new(), true));
        }
        let bytes = self
            .store
            .get_range(&meta.location, 0..end)
            .await
            .internal(format!("reading {}", meta.location))?;
        Ok((bytes, end == meta.size))
    }

    async fn read_file(
        &self,
        meta: &ObjectMeta,
        format: &Format,
        schema: Option<SchemaRef>,
    ) -> Result<(SchemaRef, BatchStream)> {
        let label = format!("{}/{}", self.name, meta.location);
        let with_label = |e: Error| e.within(&label);
        match format {
            Format::Parquet => {
                let reader = parquet::ObjectReader::new(
                    self.store.clone(),
                    meta.location.clone(),
                    meta.size,
                );
                let (schema, stream) = parquet::decode(reader, self.batch_rows)
                    .await
                    .map_err(with_label)?;
                Ok((schema, label_errors(stream, label)))
            }
            Format::Csv(_) | Format::Jsonl => {
                let schema = match schema {
                    Some(s) => s,
                    None => self.describe_file(meta, format).await?.0,
                };
                let bytes = self
                    .store
                    .get(&meta.location)
                    .await
                    .internal(format!("reading {label}"))?
                    .into_stream()
                    .map_err(|e| Error::internal(e.to_string()))
                    .boxed();
                let stream = match format {
                    Format::Csv(dialect) => {
                        csv::decode(bytes, schema.clone(), *dialect, self.batch_rows)?
                    }
                    _ => jsonl::decode(bytes, schema.clone(), self.batch_rows)?,
                };
                Ok((schema, label_errors(stream, label)))
            }
        }
    }
}

/// Prefix every error of a file's stream with the file's name.
fn label_errors(stream: BatchStream, label: String) -> BatchStream {
    stream.map_err(move |e| e.within(&label)).boxed()
}

/// Two schemas that hold the same columns, ignoring metadata.
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

#[async_trait]
impl Connector for Bucket {
    async fn list(&self, prefix: &[String]) -> Result<Vec<DatasetInfo>> {
        // List below the whole parts of the prefix, then match the last part as a string.
        let dir = match prefix.split_last() {
            Some((_, whole)) if !whole.is_empty() => Some(Key::parse(whole)?),
            _ => None,
        };
        let metas: Vec<ObjectMeta> = self
            .store
            .list(dir.as_ref().map(Key::path))
            .try_collect()
            .await
            .internal(format!("listing bucket {}", self.name))?;
        let mut out = Vec::new();
        for meta in metas {
            if !keys::is_data_file(&meta.location) {
                continue;
            }
            let path: Vec<String> = meta
                .location
                .parts()
                .map(|p| p.as_ref().to_string())
                .collect();
            if !super::path_has_prefix(&path, prefix) {
                continue;
            }
            let Some(format) = Format::by_extension(meta.location.as_ref()) else {
                continue;
            };
            // A file that cannot be read is still listed (with no columns): listing must not
            // fail because one file in the bucket is bad.
            let (schema, rows) = match self.describe_file(&meta, &format).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "listing: cannot describe a file");
                    (Arc::new(Schema::empty()), None)
                }
            };
            out.push(DatasetInfo {
                path,
                schema,
                total_records: rows,
                total_bytes: Some(meta.size),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn describe(&self, spec: &ReadSpec) -> Result<DatasetInfo> {
        let ReadTarget::Dataset(path) = &spec.target else {
            return Err(Error::invalid(format!(
                "{} is a bucket; SQL queries need a database",
                self.name
            )));
        };
        let key = Key::parse(path)?;
        let metas = if key.is_prefix() {
            self.parts(&key).await?
        } else {
            vec![self.head(&key).await?]
        };
        let format = Format::resolve(metas[0].location.as_ref(), &spec.file)?;
        let (schema, mut total) = self.describe_file(&metas[0], &format).await?;
        for meta in &metas[1..] {
            let (_, rows) = match format {
                Format::Parquet => self.describe_file(meta, &format).await?,
                _ => (schema.clone(), None),
            };
            total = total.zip(rows).map(|(a, b)| a + b);
        }
        Ok(DatasetInfo {
            path: path.clone(),
            schema,
            total_records: total,
            total_bytes: Some(metas.iter().map(|m| m.size).sum()),
        })
    }

    async fn open_read(&self, spec: &ReadSpec) -> Result<(SchemaRef, BatchStream)> {
        let ReadTarget::Dataset(path) = &spec.target else {
            return Err(Error::invalid(format!(
                "{} is a bucket; SQL queries need a database",
                self.name
            )));
        };
        let key = Key::parse(path)?;
        if !key.is_prefix() {
            let meta = self.head(&key).await?;
            let format = Format::resolve(key.as_str(), &spec.file)
                .map_err(|e| e.within(self.label(&key)))?;
            return self.read_file(&meta, &format, None).await;
        }
        // A prefix is one dataset: its parts are read in name order and must share a schema.
        let parts = self.parts(&key).await?;
        let format = Format::resolve(parts[0].location.as_ref(), &spec.file)?;
        let (schema, first) = self.read_file(&parts[0], &format, None).await?;
        let rest: Vec<ObjectMeta> = parts[1..].to_vec();
        let bucket = self.clone();
        let expected = schema.clone();
        let following = futures::stream::iter(rest)
            .then(move |meta| {
                let (bucket, format, expected) = (bucket.clone(), format.clone(), expected.clone());
                async move {
                    // Parquet parts carry their schema, compared whole. Text parts are decoded
                    // with the first part's types (inference may differ on a sample) once their
                    // column names are seen to match.
                    let (schema, stream) = match format {
                        Format::Parquet => bucket.read_file(&meta, &format, None).await?,
                        _ => {
                            let (own, _) = bucket.describe_file(&meta, &format).await?;
                            let names = |s: &Schema| s.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
                            if names(&own) != names(&expected) {
                                return Err(Error::invalid(format!(
                                    "{}/{}: its columns ({}) differ from the first part's ({}); every part of a prefix must share one schema",
                                    bucket.name, meta.location, names(&own).join(", "), names(&expected).join(", ")
                                )));
                            }
                            bucket.read_file(&meta, &format, Some(expected.clone())).await?
                        }
                    };
                    if !same_columns(&schema, &expected) {
                        return Err(Error::invalid(format!(
                            "{}/{}: its columns differ from the first part's; every part of a prefix must share one schema",
                            bucket.name, meta.location
                        )));
                    }
                    Ok(stream)
                }
            })
            .try_flatten();
        Ok((schema, first.chain(following).boxed()))
    }

    async fn write(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        mut batches: BatchStream,
    ) -> Result<WriteReport> {
        let key = Key::parse(&spec.path)?;
        if key.is_prefix() {
            return Err(Error::invalid(format!(
                "{} is a prefix; name a file to write (such as {}part-0.parquet)",
                self.label(&key),
                key
            )));
        }
        let format = Format::resolve(key.as_str(), &spec.file)?;
        let exists = match self.store.head(key.path()).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => return Err(Error::internal(format!("{}: {e}", self.label(&key)))),
        };
        match (exists, spec.existing) {
            (false, _) => {}
            (true, ExistingTable::Unspecified | ExistingTable::Fail) => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "{} already exists; choose an existing-table mode such as truncate_and_overwrite to replace it",
                        self.label(&key)
                    ),
                ));
            }
            (true, ExistingTable::Append) => {
                return Err(Error::unsupported(format!(
                    "{} exists and files cannot be appended to; write another file under the same prefix, or replace it",
                    self.label(&key)
                )));
            }
            // Replacing is atomic: the new object takes the key only when complete.
            (true, _) => {}
        }
        let mut encoder = records::encoder(&format, schema)?;
        let upload = self
            .store
            .put_multipart(key.path())
            .await
            .internal(format!("cannot start writing {}", self.label(&key)))?;
        let mut upload = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut rows = 0u64;
        let result: Result<()> = async {
            while let Some(batch) = batches.next().await {
                let batch = batch?;
                let bytes = encoder.encode(&batch)?;
                upload
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .internal("upload failed")?;
                upload.write(&bytes);
                rows += batch.num_rows() as u64;
            }
            Ok(())
        }
        .await;
        let result = result.and_then(|()| encoder.finish());
        match result {
            Ok(tail) => {
                upload.write(&tail);
                upload
                    .finish()
                    .await
                    .internal(format!("cannot complete {}", self.label(&key)))?;
                Ok(WriteReport {
                    rows_committed: rows,
                })
            }
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(error = %abort, "aborting an upload failed");
                }
                Err(e)
            }
        }
    }
}
