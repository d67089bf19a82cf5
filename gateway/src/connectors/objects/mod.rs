//! Buckets: files, prefixes and globs in an object store, read and written as streams.
//!
//! Everything goes through `object_store`, so a local folder, S3 (and compatibles), GCS, Azure
//! and HTTP take the same path: [`stores`] builds the store from the config, [`keys`] confines
//! names to it, [`read`] and [`write`] stream the formats of [`crate::records`] over it.

mod commit;
mod description;
mod keys;
pub mod options;
mod read;
mod records_dir;
mod staged;
mod stores;
mod uploads;
mod write;

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use mover_proto::Part;

use super::Setup;
use super::{
    BatchStream, Connector, DatasetInfo, ReadSpec, ReadTarget, StagedPart, WriteReport, WriteSpec,
};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::records::Format;
use records_dir::RecordsDir;

/// What a dataset key reads ([`Bucket::dataset`]).
enum Dataset {
    Delimited(records_dir::Delimited),
    /// Files read alike, by the spec given.
    Files(Vec<ObjectMeta>, Box<ReadSpec>),
}
use options::{BucketTarget, Options};

pub use keys::Key;

#[derive(Clone)]
pub struct Bucket {
    name: String,
    store: Arc<dyn ObjectStore>,
    batch_rows: usize,
    writable: bool,
    /// Parts of a prefix write are cut at about this many bytes.
    part_bytes: u64,
    /// The longest line a text file may have (`max_line_mb`).
    max_line_bytes: usize,
    /// How far a compressed file may expand (`max_expansion`).
    max_expansion: u64,
    /// The most of one Parquet row group a read holds at once (`max_row_group_mb`).
    max_row_group_bytes: u64,
    /// The bucket's URL (`file:///abs/dir`, `s3://bucket/prefix`): records manifests name
    /// their files by it, as Records Mover does.
    base_url: String,
    /// How long a single write's staged parts are its own ([`Setup::write_ttl`]).
    write_ttl: std::time::Duration,
    /// A local bucket's folder: a sweep looks in it for the temporary files of uploads.
    local_dir: Option<std::path::PathBuf>,
    /// What lists the uploads killed writers left open.
    uploads: Option<Arc<uploads::OpenUploads>>,
}

impl Bucket {
    /// The bucket its options describe: local folder, S3, GCS, Azure or HTTP.
    pub fn open(name: &str, config: &Options, setup: &Setup) -> Result<Self> {
        let target = config
            .target(setup)
            .map_err(|e| e.within(format!("buckets.{name}.url")))?;
        let built =
            stores::build(&target, config).map_err(|e| e.within(format!("bucket {name}")))?;
        let joined = |scheme: &str, bucket: &str, prefix: &str| match prefix {
            "" => format!("{scheme}://{bucket}"),
            p => format!("{scheme}://{bucket}/{p}"),
        };
        let base_url = match &target {
            BucketTarget::Local(dir) => {
                let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                format!("file://{}", abs.display())
            }
            BucketTarget::S3 { bucket, prefix } => joined("s3", bucket, prefix),
            BucketTarget::Gcs { bucket, prefix } => joined("gs", bucket, prefix),
            BucketTarget::Azure { container, prefix } => joined("az", container, prefix),
            BucketTarget::Http { url } => url.trim_end_matches('/').to_string(),
            BucketTarget::Memory => format!("memory://{name}"),
        };
        Ok(Self {
            name: name.into(),
            store: built.store,
            batch_rows: setup.batch_rows,
            writable: built.writable,
            part_bytes: config.part_size_mb.saturating_mul(1024 * 1024),
            max_line_bytes: config.max_line_mb.max(1).saturating_mul(1024 * 1024),
            max_expansion: config.max_expansion.max(1),
            max_row_group_bytes: config.max_row_group_mb.max(1).saturating_mul(1024 * 1024),
            base_url,
            write_ttl: setup.write_ttl,
            local_dir: match &target {
                BucketTarget::Local(dir) => Some(dir.clone()),
                _ => None,
            },
            uploads: built.uploads.map(Arc::new),
        })
    }

    /// Where `path` is, whichever bucket of the config names it: the name an object being
    /// written is held by ([`crate::connectors::stages::Live`]), so that the sweep of another
    /// bucket over the same store (a bucket and one of its prefixes) leaves it too.
    fn located(&self, path: &object_store::path::Path) -> String {
        format!("{}/{path}", self.base_url)
    }

    fn label(&self, key: &impl std::fmt::Display) -> String {
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

    /// The objects a key names: one file, or the data files of a prefix or glob, in name order.
    /// What `key` reads: a delimited records directory, or files read alike (a Parquet or
    /// Avro directory's in its manifest's order, read as its format whatever the options say;
    /// a plain prefix's or a pattern's in name order; a file).
    async fn dataset(&self, key: &Key, spec: &ReadSpec) -> Result<Dataset> {
        let dir = records_dir::open(self, key, crate::records::strict(&spec.file)).await?;
        Ok(match dir {
            Some(RecordsDir::Delimited(dir)) => Dataset::Delimited(dir),
            Some(RecordsDir::SelfDescribing { format, files }) => {
                let mut spec = spec.clone();
                spec.file.format = format as i32;
                spec.file.records = None;
                Dataset::Files(files, Box::new(spec))
            }
            None => Dataset::Files(self.objects(key).await?, Box::new(spec.clone())),
        })
    }

    async fn objects(&self, key: &Key) -> Result<Vec<ObjectMeta>> {
        if !key.is_prefix() && key.glob().is_none() {
            return Ok(vec![self.head(key).await?]);
        }
        let found = read::data_files(self, key).await?;
        if found.is_empty() {
            return Err(Error::not_found(format!(
                "{} names no data files",
                self.label(key)
            )));
        }
        Ok(found)
    }
}

/// `metas` cut into at most `max` contiguous runs of about equal bytes, none empty: a file a
/// run when they are no more than `max`. Each file weighs a byte more than its size, so empty
/// files still spread.
fn split_by_size(metas: &[ObjectMeta], max: usize) -> Vec<&[ObjectMeta]> {
    if metas.len() <= max {
        return metas.chunks(1).collect();
    }
    let weight = |m: &ObjectMeta| m.size + 1;
    let total: u64 = metas.iter().map(weight).sum();
    let share = total.div_ceil(max as u64);
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, meta) in metas.iter().enumerate() {
        bytes += weight(meta);
        let files_left = metas.len() - i - 1;
        let groups_left = max - groups.len() - 1;
        // Close a run at its share of bytes, or when each remaining file needs its own run.
        if groups_left > 0 && (bytes >= share || files_left < groups_left) {
            groups.push(&metas[start..=i]);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < metas.len() {
        groups.push(&metas[start..]);
    }
    groups
}

fn dataset_key(spec: &ReadSpec, bucket: &str) -> Result<Key> {
    match &spec.target {
        ReadTarget::Dataset(path) => Key::parse(path),
        ReadTarget::Query { .. } => Err(Error::invalid(format!(
            "{bucket} is a bucket; SQL queries need a database"
        ))),
    }
}

#[async_trait]
impl Connector for Bucket {
    /// One level, as `ls` shows a folder: the data files and the prefixes directly under the
    /// prefix's whole parts, whose names start with its last part. Nothing is read from the
    /// files: a listing costs one paginated LIST request, whatever the bucket holds.
    async fn list(&self, prefix: &[String]) -> Result<Vec<DatasetInfo>> {
        let (last, dir) = match prefix.split_last() {
            Some((last, dir)) => (last.as_str(), dir),
            None => ("", &[][..]),
        };
        let dir = if dir.is_empty() {
            None
        } else {
            Some(Key::parse(dir)?)
        };
        let level = self
            .store
            .list_with_delimiter(dir.as_ref().map(Key::path))
            .await
            .internal(format!("listing bucket {}", self.name))?;
        let parts = |p: &object_store::path::Path| -> Vec<String> {
            p.parts().map(|p| p.as_ref().to_string()).collect()
        };
        let visible = |p: &object_store::path::Path| {
            keys::is_data_file(p) && p.filename().is_some_and(|name| name.starts_with(last))
        };
        let mut out: Vec<DatasetInfo> = level
            .common_prefixes
            .iter()
            .filter(|p| visible(p))
            .map(|p| {
                let mut path = parts(p);
                if let Some(last) = path.last_mut() {
                    last.push('/');
                }
                DatasetInfo {
                    path,
                    schema: Arc::new(Schema::empty()),
                    total_records: None,
                    total_bytes: None,
                    view: false,
                }
            })
            .chain(
                level
                    .objects
                    .iter()
                    .filter(|m| visible(&m.location))
                    .filter(|m| Format::by_extension(m.location.as_ref()).is_some())
                    .map(|m| DatasetInfo {
                        path: parts(&m.location),
                        schema: Arc::new(Schema::empty()),
                        total_records: None,
                        total_bytes: Some(m.size),
                        view: false,
                    }),
            )
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn describe(&self, spec: &ReadSpec) -> Result<DatasetInfo> {
        let key = dataset_key(spec, &self.name)?;
        let path = match &spec.target {
            ReadTarget::Dataset(p) => p.clone(),
            ReadTarget::Query { .. } => vec![],
        };
        let (metas, spec) = match self.dataset(&key, spec).await? {
            Dataset::Delimited(dir) => {
                return Ok(DatasetInfo {
                    path,
                    schema: dir.schema,
                    total_records: None,
                    total_bytes: None,
                    view: false,
                });
            }
            Dataset::Files(metas, spec) => (metas, spec),
        };
        let format = read::read_format(self, &metas[0], &spec.file).await?;
        let (schema, mut total) = read::describe_file(self, &metas[0], &format).await?;
        // Row counts of Parquet parts come from their footers; text formats have none.
        if matches!(format, Format::Parquet) {
            for meta in &metas[1..] {
                let (_, rows) = read::describe_file(self, meta, &format).await?;
                total = total.zip(rows).map(|(a, b)| a + b);
            }
        } else if metas.len() > 1 {
            total = None;
        }
        Ok(DatasetInfo {
            path,
            schema: read::project_schema(&schema, &spec.columns)?,
            total_records: total,
            total_bytes: Some(metas.iter().map(|m| m.size).sum()),
            view: false,
        })
    }

    /// Contiguous runs of the files in name order, about the same number of bytes each.
    async fn partitions(&self, spec: &ReadSpec, max: usize) -> Result<Vec<Option<Part>>> {
        let key = dataset_key(spec, &self.name)?;
        if max <= 1 || !(key.is_prefix() || key.glob().is_some()) {
            return Ok(vec![None]);
        }
        let metas = match self.dataset(&key, spec).await? {
            Dataset::Delimited(dir) => dir.files,
            Dataset::Files(metas, _) => metas,
        };
        let groups = split_by_size(&metas, max);
        if groups.len() <= 1 {
            return Ok(vec![None]);
        }
        let schema_file = metas[0].location.to_string();
        Ok(groups
            .into_iter()
            .map(|group| {
                Some(Part {
                    files: group.iter().map(|m| m.location.to_string()).collect(),
                    etags: group
                        .iter()
                        .map(|m| m.e_tag.clone().unwrap_or_default())
                        .collect(),
                    schema_file: schema_file.clone(),
                    ..Default::default()
                })
            })
            .collect())
    }

    async fn sniff(&self, spec: &ReadSpec) -> Result<crate::records::hints::Hints> {
        let key = dataset_key(spec, &self.name)?;
        if key.is_prefix() || key.glob().is_some() {
            return Err(Error::invalid(format!(
                "{}: sniffing reads one file; name it",
                self.label(&key)
            )));
        }
        let meta = self.head(&key).await?;
        read::sniff_file(self, &meta).await
    }

    async fn open_read(&self, spec: &ReadSpec) -> Result<(SchemaRef, BatchStream)> {
        let key = dataset_key(spec, &self.name)?;
        let Some(part) = &spec.part else {
            return match self.dataset(&key, spec).await? {
                Dataset::Delimited(dir) => Ok(dir.read(self)),
                Dataset::Files(metas, spec) => read::read_dataset(self, metas, &spec, None).await,
            };
        };
        // Parts come inside signed tickets; still, a part reads only files its key names.
        let mut metas = Vec::with_capacity(part.files.len());
        let pinned = part.etags.iter().map(Some).chain(std::iter::repeat(None));
        for (file, etag) in part
            .files
            .iter()
            .zip(pinned)
            .chain([(&part.schema_file, None)])
        {
            let location = object_store::path::Path::parse(file)
                .map_err(|e| Error::invalid(format!("bad part file {file:?}: {e}")))?;
            if !key.covers(&location) {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{} does not name {file}", self.label(&key)),
                ));
            }
            let meta = self.store.head(&location).await.map_err(|e| {
                Error::new(
                    ErrorKind::FailedPrecondition,
                    format!(
                        "{} is gone since GetFlightInfo listed it ({e}); call GetFlightInfo again",
                        self.label(&location)
                    ),
                )
            })?;
            // The ticket's rows are the file's as listed: a file replaced since is refused.
            if let Some(etag) = etag.filter(|e| !e.is_empty())
                && meta.e_tag.as_deref() != Some(etag.as_str())
            {
                return Err(Error::new(
                    ErrorKind::FailedPrecondition,
                    format!(
                        "{} changed since GetFlightInfo listed it (ETag {etag}, now {}); call GetFlightInfo again",
                        self.label(&location),
                        meta.e_tag.as_deref().unwrap_or("none")
                    ),
                ));
            }
            metas.push(meta);
        }
        let schema_from = metas.pop();
        if metas.is_empty() {
            return Err(Error::invalid("a part names no files"));
        }
        // A delimited records directory's files are read by its hints and schema.
        if let Some(RecordsDir::Delimited(dir)) =
            records_dir::open(self, &key, crate::records::strict(&spec.file)).await?
        {
            return Ok(dir.with_files(metas).read(self));
        }
        read::read_dataset(self, metas, spec, schema_from).await
    }

    async fn write(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<WriteReport> {
        let key = Key::parse(&spec.path)?;
        if !self.writable {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("bucket {} is read-only (an HTTP source)", self.name),
            ));
        }
        if key.glob().is_some() {
            return Err(Error::invalid(format!(
                "{}: a pattern cannot be written; name a file or a prefix",
                self.label(&key)
            )));
        }
        if spec.file.format() == mover_proto::FileFormat::Records {
            if !key.is_prefix() {
                return Err(Error::invalid(format!(
                    "{}: a records directory is a prefix: end the name with /",
                    self.label(&key)
                )));
            }
            records_dir::write(self, &key, spec, schema, batches).await
        } else if key.is_prefix() {
            write::write_parts(self, &key, spec, schema, batches).await
        } else {
            write::write_file(self, &key, spec, schema, batches).await
        }
    }

    /// A prefix of data files stages its parts as hidden files beside them; a file, a pattern
    /// or a records directory (whose files describe every part) is spooled by the gateway.
    fn stages_parts(&self, spec: &WriteSpec) -> bool {
        self.writable
            && spec.file.format() != mover_proto::FileFormat::Records
            && Key::parse(&spec.path).is_ok_and(|k| k.is_prefix() && k.glob().is_none())
    }

    /// Staged parts are renamed into place.
    fn publishes_parts_in_place(&self, spec: &WriteSpec) -> bool {
        self.stages_parts(spec)
    }

    async fn stage_part(
        &self,
        spec: &WriteSpec,
        stage: &str,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<StagedPart> {
        let key = Key::parse(&spec.path)?;
        write::stage_part(self, &key, spec, stage, schema, batches).await
    }

    async fn publish_parts(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        parts: Vec<StagedPart>,
    ) -> Result<WriteReport> {
        let key = Key::parse(&spec.path)?;
        write::publish_parts(self, &key, spec, &schema, parts).await
    }

    async fn discard_parts(&self, parts: Vec<StagedPart>) -> Result<()> {
        write::discard_parts(self, parts).await;
        Ok(())
    }

    async fn sweep_parts(&self, expired_before: std::time::SystemTime) -> Result<usize> {
        if !self.writable {
            return Ok(0);
        }
        write::sweep_parts(self, expired_before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metas(sizes: &[u64]) -> Vec<ObjectMeta> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| ObjectMeta {
                location: format!("p/{i}").into(),
                last_modified: chrono::Utc::now(),
                size,
                e_tag: None,
                version: None,
            })
            .collect()
    }

    fn lens(groups: Vec<&[ObjectMeta]>) -> Vec<usize> {
        groups.iter().map(|g| g.len()).collect()
    }

    #[test]
    fn files_split_into_runs_of_similar_size() {
        assert_eq!(lens(split_by_size(&metas(&[10; 8]), 8)), [1; 8]);
        assert_eq!(lens(split_by_size(&metas(&[10; 8]), 3)), [3, 3, 2]);
        assert_eq!(lens(split_by_size(&metas(&[10; 2]), 8)), [1, 1]);
        assert_eq!(lens(split_by_size(&metas(&[100, 1, 1, 1]), 2)), [1, 3]);
        assert_eq!(lens(split_by_size(&metas(&[0, 0, 0]), 2)), [2, 1]);
        assert_eq!(
            lens(split_by_size(&metas(&[1, 1, 1, 1, 1, 1, 1, 900]), 8)),
            [1; 8]
        );
        assert_eq!(lens(split_by_size(&metas(&[5]), 4)), [1]);
    }
}
