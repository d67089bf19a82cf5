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

use super::description::{self, Description};
use super::staged::{self, Staged};
use super::{Bucket, Key, read, records_dir};
use crate::connectors::plan::{self, Plan};
use crate::connectors::{StagedPart, WriteReport, WriteSpec, stages, undo};
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
        let (store, path) = (self.store, self.path.clone());
        undo::outliving(
            "completing an upload",
            // A failed completion aborts the upload itself (WriteMultipart::finish).
            upload.finish(),
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

/// Rename every staged part to its place; if one fails, the parts already renamed and those
/// still staged are removed, and the dataset is as it was.
async fn publish(
    store: Arc<dyn ObjectStore>,
    moves: Vec<(Path, Path)>,
    label: String,
) -> Result<()> {
    for (done, (from, to)) in moves.iter().enumerate() {
        if let Err(e) = store.rename(from, to).await {
            let published = moves[..done].iter().map(|(_, to)| to.clone());
            let staged = moves[done..].iter().map(|(from, _)| from.clone());
            staged::delete_all(&*store, published.chain(staged).collect()).await;
            return Err(Error::internal(format!(
                "cannot publish the parts of {label}: {e}"
            )));
        }
    }
    Ok(())
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
    let names = PartNames::new(key, &format);
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
    let names = PartNames::new(key, &format);
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

/// Remove every staged part in the bucket whose write expired before `expired_before`
/// ([`stages`]): a killed gateway's. One listing of the whole bucket. A single prefix write's hidden parts
/// (`_staging-RUN-N`) carry no expiry and are not taken.
pub(super) async fn sweep_parts(bucket: &Bucket, expired_before: SystemTime) -> Result<usize> {
    let stale: Vec<Path> = bucket
        .store
        .list(None)
        .try_filter(|m| futures::future::ready(is_stale_part(&m.location, expired_before)))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .internal(format!(
            "listing bucket {} for stale staged parts",
            bucket.name
        ))?;
    let n = stale.len();
    staged::delete_all(&*bucket.store, stale).await;
    Ok(n)
}

/// Whether `path` is a part a write in parts staged (`_staging-STAGE-N.ext`) and its write
/// expired before `expired_before`.
fn is_stale_part(path: &Path, expired_before: SystemTime) -> bool {
    let stage = path
        .filename()
        .and_then(|f| f.strip_prefix("_staging-"))
        .and_then(|f| f.rsplit_once('.'))
        .and_then(|(stem, _)| stem.rsplit_once('-'))
        .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|(stage, _)| stage);
    stage.is_some_and(|s| stages::is_stale(s, '-', expired_before))
}

/// The commit of a prefix write whose new parts are all `staged`, in a task of its own so that
/// a write dropped now does not stop half-way: the parts are renamed into place (as `names`
/// publishes them); the prefix is described as a records directory of the kept `old` parts
/// and the new ones, the manifest last (if that fails, the new parts are removed again and
/// the prefix is as it was); then, if the write replaces the rows, the `old` parts are
/// removed. The plan's notes.
async fn commit_parts(
    bucket: &Bucket,
    key: &Key,
    names: &PartNames,
    plan: PartsPlan,
    old: Vec<ObjectMeta>,
    staged: Staged,
) -> Result<Vec<String>> {
    let moves = (0..staged.len())
        .map(|n| names.published(n))
        .collect::<Result<Vec<_>>>()?;
    let moves: Vec<(Path, Path)> = staged.commit().into_iter().zip(moves).collect();
    let new: Vec<Path> = moves.iter().map(|(_, to)| to.clone()).collect();
    let (bucket, key) = (bucket.clone(), key.clone());
    let PartsPlan {
        plan,
        description,
        notes,
    } = plan;
    let committing = async move {
        publish(bucket.store.clone(), moves, bucket.label(&key)).await?;
        let replaces = plan.replaces_rows();
        match &description {
            Some(description) => {
                let described = async {
                    let kept = old.iter().filter(|_| !replaces);
                    let mut files: Vec<(String, u64)> = kept
                        .map(|m| (m.location.filename().unwrap_or_default().into(), m.size))
                        .collect();
                    files.extend(description::sizes(&bucket, &new).await?);
                    description.write(&bucket, &key, &files, None).await
                };
                if let Err(e) = described.await {
                    staged::delete_all(&*bucket.store, new).await;
                    return Err(e);
                }
            }
            // Parts no records format holds (JSON lines) replace a directory's description.
            None if replaces => description::remove_all(&bucket, &key).await,
            None => {}
        }
        if replaces {
            for meta in &old {
                bucket.store.delete(&meta.location).await.internal(format!(
                    "cannot remove the old part {}",
                    bucket.label(&meta.location)
                ))?;
            }
        }
        Ok::<_, Error>(())
    };
    undo::outliving("committing the parts", committing, |_| async {}).await??;
    Ok(notes)
}

/// The names of one prefix write's parts. A run id keeps them apart from earlier writes'
/// (append) and from a concurrent write to the same prefix. They are uploaded under a hidden
/// folder of the run (readers skip `_x`), so until the write commits even a killed gateway
/// leaves nothing a reader sees; committing renames them into place.
struct PartNames {
    prefix: String,
    run: String,
    extension: &'static str,
}

impl PartNames {
    fn new(key: &Key, format: &Format) -> Self {
        let run = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Self {
            prefix: key.as_str().to_string(),
            run: format!("{run:x}"),
            extension: format.extension(),
        }
    }

    /// The names of one part of a write in parts, staged under the part's own name.
    fn staging(key: &Key, format: &Format, stage: &str) -> Self {
        Self {
            prefix: key.as_str().to_string(),
            run: stage.to_string(),
            extension: format.extension(),
        }
    }

    fn name(&self, stem: &str, n: usize) -> Result<Path> {
        let (prefix, run, ext) = (&self.prefix, &self.run, self.extension);
        Path::parse(format!("{prefix}/{stem}-{run}-{n:05}.{ext}"))
            .map_err(|e| Error::internal(format!("bad part name: {e}")))
    }

    /// Beside the published parts, not in a folder of their own: a local folder would keep
    /// that folder, empty, after the parts are renamed out of it.
    fn staged(&self, n: usize) -> Result<Path> {
        self.name("_staging", n)
    }

    fn published(&self, n: usize) -> Result<Path> {
        self.name("part", n)
    }
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
