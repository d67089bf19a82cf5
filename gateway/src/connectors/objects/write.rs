//! Writing to a bucket. A file is one multipart upload fed batch by batch: the object appears
//! only when the upload completes, and any error, or a dropped write, aborts it (the upload's
//! own guard), so no partial object is ever visible and no upload is left open.
//!
//! A prefix is written as parts of about `part_size_mb` each, uploaded under hidden names of
//! the write's own (`_staging-RUN-N.ext`, which readers skip) and held in a [`Staged`] guard: if
//! the write fails or is dropped, they are deleted again; if the gateway is killed, readers
//! still see the old parts only. When the stream has ended cleanly, the parts are renamed into
//! place (the commit: a rename is a copy and a delete on S3, GCS and Azure), and an overwrite
//! then removes the old parts; both steps run in tasks that a dropped write does not stop
//! half-way.

use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use mover_proto::FileFormat;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, WriteMultipart};

use std::sync::Arc;

use super::commit::{self, Describe, Record};
use super::description::{self, Description};
use super::staged::{self, Staged};
use super::{Bucket, Key, read, records_dir};
use crate::connectors::plan::{self, Plan};
use crate::connectors::stages::{self, Live};
use crate::connectors::{StagedPart, WriteReport, WriteSpec, undo};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::records::{self, Encoder, Format};
use crate::transfer::BatchStream;

/// Multipart chunk size, and how many chunks may be in flight: bounds upload memory.
const PART_BYTES: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 2;

/// One object being uploaded. Dropped before [`Upload::finish`], it aborts the upload.
pub(super) struct Upload {
    path: Path,
    store: Arc<dyn ObjectStore>,
    upload: OpenUpload,
    encoder: Box<dyn Encoder>,
    bytes: u64,
    /// The object is this process's to write until its upload is done: a sweep leaves its
    /// temporary file (a local folder's) or its open upload (S3's) alone.
    live: Live,
}

/// What becomes of an object whose upload completed after its write was dropped (the step
/// cannot be stopped half-way once the store was asked to complete it).
#[derive(Clone, Copy)]
pub(super) enum IfAbandoned {
    /// The object is the write's result: completing it was the commit.
    Keep,
    /// The object is one piece of a larger result (a part, a records directory's file).
    Delete,
}

impl Upload {
    async fn start(
        bucket: &Bucket,
        path: Path,
        format: &Format,
        schema: SchemaRef,
    ) -> Result<Self> {
        let encoder = records::encoder_for(path.as_ref(), format, schema)?;
        Self::with_encoder(bucket, path, encoder).await
    }

    pub(super) async fn with_encoder(
        bucket: &Bucket,
        path: Path,
        encoder: Box<dyn Encoder>,
    ) -> Result<Self> {
        let live = Live::hold(bucket.located(&path));
        // Started in a task of its own: a write dropped while the store creates the upload
        // would otherwise never learn of it, nor abort it.
        let (store, at) = (Arc::clone(&bucket.store), path.clone());
        let upload = undo::outliving(
            "starting an upload",
            async move { store.put_multipart(&at).await },
            |made| async move {
                if let Ok(mut upload) = made
                    && let Err(e) = upload.abort().await
                {
                    tracing::warn!(error = %e, "aborting an upload failed");
                }
            },
        )
        .await?
        .internal(format!("cannot start writing {}", bucket.label(&path)))?;
        Ok(Self {
            path,
            store: Arc::clone(&bucket.store),
            upload: OpenUpload(Some(WriteMultipart::new_with_chunk_size(
                upload, PART_BYTES,
            ))),
            encoder,
            bytes: 0,
            live,
        })
    }

    pub(super) async fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let bytes = self.encoder.encode(batch)?;
        let upload = self.upload.open();
        upload
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .internal("the upload failed")?;
        upload.write(&bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Every batch of `batches`, then publish the object; the rows written. On any error the
    /// upload is aborted and nothing is published.
    pub(super) async fn write_all(
        mut self,
        mut batches: BatchStream,
        label: &str,
        if_abandoned: IfAbandoned,
    ) -> Result<u64> {
        let mut rows = 0u64;
        while let Some(item) = batches.next().await {
            let pushed = match item {
                Ok(batch) => self.push(&batch).await.map(|()| batch.num_rows() as u64),
                Err(e) => Err(e),
            };
            match pushed {
                Ok(n) => rows += n,
                Err(e) => {
                    self.abort().await;
                    return Err(e);
                }
            }
        }
        self.finish(label, if_abandoned).await?;
        Ok(rows)
    }

    /// Publish the object. On failure the upload is aborted.
    pub(super) async fn finish(mut self, label: &str, if_abandoned: IfAbandoned) -> Result<Path> {
        match self.encoder.finish() {
            Ok(tail) => self.upload.open().write(&tail),
            Err(e) => {
                self.upload.abort().await;
                return Err(e);
            }
        }
        // Completed in a task of its own: once asked, the store may publish the object
        // whether or not the write is still there to hear it.
        let upload = self.upload.take();
        let (store, path, live) = (self.store, self.path.clone(), self.live);
        undo::outliving(
            "completing an upload",
            // A failed completion aborts the upload itself (WriteMultipart::finish).
            async move {
                let done = upload.finish().await;
                drop(live);
                done
            },
            move |done| async move {
                if done.is_ok() && matches!(if_abandoned, IfAbandoned::Delete) {
                    staged::delete_all(&*store, vec![path]).await;
                }
            },
        )
        .await?
        .internal(format!("cannot complete {label}"))?;
        Ok(self.path)
    }

    pub(super) async fn abort(mut self) {
        self.upload.abort().await;
    }
}

/// A multipart upload that is aborted unless it was finished: dropped while open (the write's
/// future dropped mid-stream), it aborts in a task of its own, so no upload stays open.
struct OpenUpload(Option<WriteMultipart>);

impl OpenUpload {
    fn open(&mut self) -> &mut WriteMultipart {
        self.0
            .as_mut()
            .expect("an upload is open until finished or aborted")
    }

    fn take(&mut self) -> WriteMultipart {
        self.0
            .take()
            .expect("an upload is open until finished or aborted")
    }

    async fn abort(&mut self) {
        if let Some(upload) = self.0.take() {
            abort(upload).await;
        }
    }
}

impl Drop for OpenUpload {
    fn drop(&mut self) {
        if let Some(upload) = self.0.take() {
            undo::spawn("an upload of a dropped write", abort(upload));
        }
    }
}

async fn abort(upload: WriteMultipart) {
    match upload.abort().await {
        Ok(()) => tracing::info!("aborted an upload"),
        Err(e) => tracing::warn!(error = %e, "aborting an upload failed"),
    }
}

pub(super) async fn write_file(
    bucket: &Bucket,
    key: &Key,
    spec: &WriteSpec,
    schema: SchemaRef,
    batches: BatchStream,
) -> Result<WriteReport> {
    let format = Format::resolve(key.as_str(), &spec.file)?;
    let exists = match bucket.store.head(key.path()).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => return Err(Error::internal(format!("{}: {e}", bucket.label(key)))),
    };
    let label = bucket.label(key);
    // Replacing is atomic: the new object takes the key only when complete.
    if plan::plan(spec.existing, exists, &label)? == Plan::Append {
        return Err(Error::unsupported(format!(
            "{label} exists and files cannot be appended to; write a prefix (name/) to add parts, or replace the file"
        )));
    }
    let upload = Upload::start(bucket, key.path().clone(), &format, schema).await?;
    let rows = upload
        .write_all(batches, &bucket.label(key), IfAbandoned::Keep)
        .await?;
    Ok(WriteReport {
        rows_committed: rows,
        ..Default::default()
    })
}

/// The format of a prefix write: as asked, or Parquet.
fn parts_format(spec: &WriteSpec) -> Result<Format> {
    match spec.file.format() {
        FileFormat::Auto => Ok(Format::Parquet),
        _ => Format::resolve("", &spec.file),
    }
}

pub(super) async fn write_parts(
    bucket: &Bucket,
    key: &Key,
    spec: &WriteSpec,
    schema: SchemaRef,
    batches: BatchStream,
) -> Result<WriteReport> {
    let format = parts_format(spec)?;
    let old = read::data_files(bucket, key).await?;
    let plan = plan_parts(bucket, key, spec, &format, &schema, &old).await?;
    let names = PartNames::new(key, &format, bucket.write_ttl);
    let (rows, staged) = upload_staged(bucket, &names, &format, schema, batches).await?;
    let notes = commit_parts(bucket, key, &names, plan, old, staged).await?;
    Ok(WriteReport {
        rows_committed: rows,
        notes,
    })
}

/// What a prefix write does to the data files `old` of `key`, and how it describes the
/// prefix as a records directory once committed.
struct PartsPlan {
    plan: Plan,
    description: Option<Description>,
    notes: Vec<String>,
}

/// The plan of a prefix write of `format` and `schema` onto the data files `old` of `key`.
/// Parts appended to a records directory must be of its format (and hints): its description
/// is rewritten for them all.
async fn plan_parts(
    bucket: &Bucket,
    key: &Key,
    spec: &WriteSpec,
    format: &Format,
    schema: &Schema,
    old: &[ObjectMeta],
) -> Result<PartsPlan> {
    let label = bucket.label(key);
    let plan = plan::plan(
        spec.existing,
        !old.is_empty(),
        &format!("{label} ({} data files)", old.len()),
    )?;
    let mut notes = Vec::new();
    let mut description = Description::of_parts(format, schema, &mut notes)?;
    if plan == Plan::Append
        && let Some(existing) = records_dir::format_of(bucket, key).await?
        && description.as_ref().is_none_or(|d| d.format != existing)
    {
        let new = match &description {
            None => "JSON lines",
            Some(d) if d.format.name() == existing.name() => "delimited text with other hints",
            Some(d) => d.format.name(),
        };
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "{label} is a records directory of {}; parts appended to it are written as it is, not as {new}: give its format and hints, or overwrite it",
                existing.name(),
            ),
        ));
    }
    // A records directory's files are its own level's: folders below it cannot be described.
    let depth = key.path().parts().count() + 1;
    if plan == Plan::Append && old.iter().any(|m| m.location.parts().count() > depth) {
        notes.push(format!(
            "{label} holds data files in folders below it, so it is left a plain prefix, not described as a records directory"
        ));
        description = None;
    }
    Ok(PartsPlan {
        plan,
        description,
        notes,
    })
}

/// One part of a write in parts into the prefix `key`: its data files uploaded under hidden
/// names of the part's own (`_staging-STAGE-N.ext`), published only by [`publish_parts`].
pub(super) async fn stage_part(
    bucket: &Bucket,
    key: &Key,
    spec: &WriteSpec,
    stage: &str,
    schema: SchemaRef,
    batches: BatchStream,
) -> Result<StagedPart> {
    let format = parts_format(spec)?;
    // A target the write may not touch fails its first part, not only its commit.
    let old = read::data_files(bucket, key).await?;
    plan_parts(bucket, key, spec, &format, &schema, &old).await?;
    let names = PartNames::staging(key, &format, stage);
    let (rows, staged) = upload_staged(bucket, &names, &format, schema, batches).await?;
    let names = staged.commit().iter().map(|p| p.to_string()).collect();
    Ok(StagedPart { rows, names })
}

/// The staged `parts` of a write in parts as the prefix `key`'s new data files, as a single
/// prefix write commits its own.
pub(super) async fn publish_parts(
    bucket: &Bucket,
    key: &Key,
    spec: &WriteSpec,
    schema: &Schema,
    parts: Vec<StagedPart>,
) -> Result<WriteReport> {
    let mut staged = Staged::new(&bucket.store);
    let mut rows = 0;
    for part in parts {
        rows += part.rows;
        for name in part.names {
            staged.add(Path::from(name));
        }
    }
    let format = parts_format(spec)?;
    let old = read::data_files(bucket, key).await?;
    let plan = match plan_parts(bucket, key, spec, &format, schema, &old).await {
        Ok(plan) => plan,
        Err(e) => {
            staged.undo().await;
            return Err(e);
        }
    };
    let names = PartNames::for_commit(key, &format);
    let notes = commit_parts(bucket, key, &names, plan, old, staged).await?;
    Ok(WriteReport {
        rows_committed: rows,
        notes,
    })
}

/// Remove staged parts.
pub(super) async fn discard_parts(bucket: &Bucket, parts: Vec<StagedPart>) {
    let paths = parts
        .into_iter()
        .flat_map(|p| p.names)
        .map(Path::from)
        .collect();
    staged::delete_all(&*bucket.store, paths).await;
}

/// Remove what gateways killed while they wrote left in the bucket: every staged part whose
/// write expired before `expired_before` ([`stages`]), a single prefix write's or a write in
/// parts'; in a local folder, the temporary files of uploads last written to before then; in
/// S3, the uploads still open that such a part began, or that began a whole write's time
/// (the longest a write may stay open) before then. Never what this process is writing.
pub(super) async fn sweep_parts(bucket: &Bucket, expired_before: SystemTime) -> Result<usize> {
    let mut n = sweep_staged(bucket, expired_before).await?;
    if let Some(dir) = bucket.local_dir.clone() {
        let base = bucket.base_url.clone();
        n +=
            tokio::task::spawn_blocking(move || sweep_temporary_files(&dir, &base, expired_before))
                .await
                .internal("sweeping temporary files")?;
    }
    if let Some(uploads) = &bucket.uploads {
        let began_before = expired_before
            .checked_sub(bucket.write_ttl)
            .unwrap_or(UNIX_EPOCH);
        for open in uploads.list().await? {
            let stale = is_stale_part(&open.key, expired_before)
                || (open.initiated < began_before && !Live::holds(&open.location));
            if !stale {
                continue;
            }
            match uploads.abort(&open).await {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!(error = %e, "cannot abort a killed writer's upload"),
            }
        }
    }
    Ok(n)
}

/// The staged parts and the commit records of [`sweep_parts`]: each record whose deadline
/// passed is finished first ([`commit`]); the parts a record publishes are left to it.
/// One listing of the whole bucket.
async fn sweep_staged(bucket: &Bucket, expired_before: SystemTime) -> Result<usize> {
    let listed: Vec<Path> = bucket
        .store
        .list(None)
        .try_filter(|m| {
            let ours = commit::is_record(&m.location) || is_stale_part(&m.location, expired_before);
            futures::future::ready(ours)
        })
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .internal(format!(
            "listing bucket {} for stale staged parts",
            bucket.name
        ))?;
    let (records, parts): (Vec<Path>, Vec<Path>) = listed.into_iter().partition(commit::is_record);
    let now = SystemTime::now();
    let mut n = 0;
    let mut left_to_records = std::collections::HashSet::new();
    for record in &records {
        match commit::staged_by(bucket, record).await {
            Ok(staged) => left_to_records.extend(staged),
            Err(e) => {
                tracing::warn!(error = %e, "a commit record cannot be read; its parts are left");
                continue;
            }
        }
        if commit::is_due(record, now) {
            match commit::finish(bucket, record).await {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!(error = %e, "cannot finish a killed gateway's commit"),
            }
        }
    }
    let stale: Vec<Path> = parts
        .into_iter()
        .filter(|p| !left_to_records.contains(p))
        .collect();
    n += stale.len();
    staged::delete_all(&*bucket.store, stale).await;
    Ok(n)
}

/// Remove the temporary files of uploads (object_store's `NAME#N`, which its listings skip)
/// below the local folder `dir` (whose URL is `base`) last written to before `written_before`,
/// but those of this process's own uploads. Symbolic links are not followed.
fn sweep_temporary_files(dir: &std::path::Path, base: &str, written_before: SystemTime) -> usize {
    let mut removed = 0;
    let mut folders = vec![(dir.to_path_buf(), Vec::<String>::new())];
    while let Some((folder, parts)) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let (Ok(kind), Some(name)) = (
                entry.file_type(),
                entry.file_name().to_str().map(String::from),
            ) else {
                continue;
            };
            if kind.is_dir() {
                let mut below = parts.clone();
                below.push(name);
                folders.push((entry.path(), below));
                continue;
            }
            let Some((object, n)) = name.rsplit_once('#') else {
                continue;
            };
            if !kind.is_file() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let of = Path::from_iter(parts.iter().map(String::as_str).chain([object]));
            let of = format!("{base}/{of}");
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|at| at < written_before);
            if !old || Live::holds(&of) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(error = %e, file = %entry.path().display(), "cannot remove a killed writer's temporary file")
                }
            }
        }
    }
    removed
}

/// Whether `path` is a part a write staged (`_staging-STAGE-N.ext`), its write expired before
/// `expired_before`, and it is not this process's still.
pub(super) fn is_stale_part(path: &Path, expired_before: SystemTime) -> bool {
    let stage = path
        .filename()
        .and_then(|f| f.strip_prefix("_staging-"))
        .and_then(|f| f.rsplit_once('.'))
        .and_then(|(stem, _)| stem.rsplit_once('-'))
        .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|(stage, _)| stage);
    stage.is_some_and(|s| stages::is_stale(s, '-', expired_before) && !Live::holds(s))
}

/// The commit of a prefix write whose new parts are all `staged`, in a task of its own so that
/// a write dropped now does not stop half-way, as a [`Record`] any gateway can finish: the
/// parts are renamed into place (as `names` publishes them); the prefix is described as a
/// records directory of the kept `old` parts and the new ones, the manifest last; then, if
/// the write replaces the rows, the `old` parts are removed. The plan's notes.
async fn commit_parts(
    bucket: &Bucket,
    key: &Key,
    names: &PartNames,
    plan: PartsPlan,
    old: Vec<ObjectMeta>,
    staged: Staged,
) -> Result<Vec<String>> {
    let published = (0..staged.len())
        .map(|n| names.published(n))
        .collect::<Result<Vec<_>>>();
    let published = match published {
        Ok(p) => p,
        Err(e) => {
            staged.undo().await;
            return Err(e);
        }
    };
    let moves: Vec<(Path, Path)> = staged.commit().into_iter().zip(published).collect();
    // The staged parts stay this process's until they are renamed, if this write is dropped.
    let live = names.live.clone();
    let run = names.run.clone();
    let (bucket, key) = (bucket.clone(), key.clone());
    let PartsPlan {
        plan,
        description,
        notes,
    } = plan;
    let committing = async move {
        let _live = live;
        let replaces = plan.replaces_rows();
        let describe = match &description {
            Some(description) => {
                let kept = old.iter().filter(|_| !replaces);
                let mut files: Vec<(String, u64)> = kept
                    .map(|m| (m.location.filename().unwrap_or_default().into(), m.size))
                    .collect();
                let staged: Vec<Path> = moves.iter().map(|(from, _)| from.clone()).collect();
                let sizes = match description::sizes(&bucket, &staged).await {
                    Ok(sizes) => sizes,
                    Err(e) => {
                        staged::delete_all(&*bucket.store, staged).await;
                        return Err(e);
                    }
                };
                let named = moves.iter().zip(sizes);
                files.extend(named.map(|((_, to), (_, size))| {
                    (to.filename().unwrap_or_default().to_string(), size)
                }));
                Describe::Write(description.render(&bucket, &key, &files))
            }
            // Parts no records format holds (JSON lines) replace a directory's description.
            None if replaces => Describe::Remove,
            None => Describe::Keep,
        };
        let old: Vec<Path> = match replaces {
            true => old.into_iter().map(|m| m.location).collect(),
            false => Vec::new(),
        };
        Record::new(&key, &moves, describe, &old)
            .commit(&bucket, &key, &run)
            .await
    };
    undo::outliving("committing the parts", committing, |_| async {}).await??;
    Ok(notes)
}

/// The names of one prefix write's parts. A run id keeps them apart from earlier writes'
/// (append) and from a concurrent write to the same prefix. They are uploaded under hidden
/// names of the run (readers skip `_x`), so until the write commits even a killed gateway
/// leaves nothing a reader sees; committing renames them into place. The run is a stage name
/// ([`stages`]): once its expiry has passed, any gateway sweeps what a killed one staged.
struct PartNames {
    prefix: String,
    /// Published parts are `part-RUN-N`: a run is the time the write began, in nanoseconds.
    run: String,
    /// Staged parts are `_staging-STAGE-N`.
    stage: String,
    extension: &'static str,
    /// The stage is this process's while it writes and commits, past its expiry too.
    live: Option<Live>,
}

impl PartNames {
    /// A single prefix write's, staged under a stage of its own that expires in `ttl`.
    fn new(key: &Key, format: &Format, ttl: std::time::Duration) -> Self {
        let now = SystemTime::now();
        let run = run_at(now);
        let stage = stages::name(now + ttl, &run, 0, 0);
        Self {
            prefix: key.as_str().to_string(),
            live: Some(Live::hold(&stage)),
            run,
            stage,
            extension: format.extension(),
        }
    }

    /// The names a commit of a write in parts publishes its staged parts under.
    fn for_commit(key: &Key, format: &Format) -> Self {
        let run = run_at(SystemTime::now());
        Self {
            prefix: key.as_str().to_string(),
            stage: run.clone(),
            run,
            extension: format.extension(),
            live: None,
        }
    }

    /// The names of one part of a write in parts, staged under the part's own stage (the
    /// write's expiry keeps it from sweeps).
    fn staging(key: &Key, format: &Format, stage: &str) -> Self {
        Self {
            prefix: key.as_str().to_string(),
            run: stage.to_string(),
            stage: stage.to_string(),
            extension: format.extension(),
            live: None,
        }
    }

    fn name(&self, stem: &str, run: &str, n: usize) -> Result<Path> {
        let (prefix, ext) = (&self.prefix, self.extension);
        Path::parse(format!("{prefix}/{stem}-{run}-{n:05}.{ext}"))
            .map_err(|e| Error::internal(format!("bad part name: {e}")))
    }

    /// Beside the published parts, not in a folder of their own: a local folder would keep
    /// that folder, empty, after the parts are renamed out of it.
    fn staged(&self, n: usize) -> Result<Path> {
        self.name("_staging", &self.stage, n)
    }

    fn published(&self, n: usize) -> Result<Path> {
        self.name("part", &self.run, n)
    }
}

/// A run id: `at` in nanoseconds since the Unix epoch, in hex.
fn run_at(at: SystemTime) -> String {
    let nanos = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{nanos:x}")
}

/// Every batch uploaded as parts named by `names`, held in a [`Staged`] guard; on an error
/// the parts already uploaded are removed before it returns.
async fn upload_staged(
    bucket: &Bucket,
    names: &PartNames,
    format: &Format,
    schema: SchemaRef,
    batches: BatchStream,
) -> Result<(u64, Staged)> {
    let mut staged = Staged::new(&bucket.store);
    match upload_parts(bucket, names, format, schema, batches, &mut staged).await {
        Ok(rows) => Ok((rows, staged)),
        Err(e) => {
            staged.undo().await;
            Err(e)
        }
    }
}

/// Every batch into parts of about `part_size_mb`, each completed into `staged`; the rows.
/// An error aborts the part being written (the caller removes the staged ones).
async fn upload_parts(
    bucket: &Bucket,
    names: &PartNames,
    format: &Format,
    schema: SchemaRef,
    mut batches: BatchStream,
    staged: &mut Staged,
) -> Result<u64> {
    let mut current: Option<Upload> = None;
    let mut rows = 0u64;
    let result: Result<()> = async {
        while let Some(item) = batches.next().await {
            let batch = item?;
            if current.is_none() {
                let path = names.staged(staged.len())?;
                current = Some(Upload::start(bucket, path, format, schema.clone()).await?);
            }
            let upload = current.as_mut().expect("set above");
            upload.push(&batch).await?;
            rows += batch.num_rows() as u64;
            if upload.bytes >= bucket.part_bytes {
                let full = current.take().expect("set above");
                let label = bucket.label(&full.path);
                staged.add(full.finish(&label, IfAbandoned::Delete).await?);
            }
        }
        // No rows at all still leaves one (empty) part, so the dataset and its schema exist.
        if staged.len() == 0 && current.is_none() {
            let path = names.staged(0)?;
            current = Some(Upload::start(bucket, path, format, schema.clone()).await?);
        }
        if let Some(last) = current.take() {
            let label = bucket.label(&last.path);
            staged.add(last.finish(&label, IfAbandoned::Delete).await?);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(upload) = current.take() {
            upload.abort().await;
        }
        return Err(e);
    }
    Ok(rows)
}
