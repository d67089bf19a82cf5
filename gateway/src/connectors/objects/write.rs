//! Writing to a bucket. A file is one multipart upload fed batch by batch: the object appears
//! only when the upload completes, and any error (or a dropped write) aborts it, so no partial
//! object is ever visible. A prefix is written as parts of about `part_size_mb` each; if the
//! write fails, the parts already published are deleted again, and an overwrite removes the
//! old parts only after every new one is complete.

use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use mover_proto::{ExistingTable, FileFormat};
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};

use super::{Bucket, Key, read};
use crate::connectors::{BatchStream, WriteReport, WriteSpec};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::records::{self, Encoder, Format};

/// Multipart chunk size, and how many chunks may be in flight: bounds upload memory.
const PART_BYTES: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 2;

/// One object being uploaded.
pub(super) struct Upload {
    path: Path,
    upload: WriteMultipart,
    encoder: Box<dyn Encoder>,
    bytes: u64,
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
        let upload = bucket
            .store
            .put_multipart(&path)
            .await
            .internal(format!("cannot start writing {}", bucket.label(&path)))?;
        Ok(Self {
            path,
            upload: WriteMultipart::new_with_chunk_size(upload, PART_BYTES),
            encoder,
            bytes: 0,
        })
    }

    pub(super) async fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let bytes = self.encoder.encode(batch)?;
        self.upload
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .internal("the upload failed")?;
        self.bytes += bytes.len() as u64;
        self.upload.write(&bytes);
        Ok(())
    }

    /// Every batch of `batches`, then publish the object; the rows written. On any error the
    /// upload is aborted and nothing is published.
    pub(super) async fn write_all(mut self, mut batches: BatchStream, label: &str) -> Result<u64> {
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
        self.finish(label).await?;
        Ok(rows)
    }

    /// Publish the object. On failure the upload is aborted.
    pub(super) async fn finish(mut self, label: &str) -> Result<Path> {
        match self.encoder.finish() {
            Ok(tail) => self.upload.write(&tail),
            Err(e) => {
                abort(self.upload).await;
                return Err(e);
            }
        }
        self.upload
            .finish()
            .await
            .internal(format!("cannot complete {label}"))?;
        Ok(self.path)
    }

    pub(super) async fn abort(self) {
        abort(self.upload).await;
    }
}

async fn abort(upload: WriteMultipart) {
    if let Err(e) = upload.abort().await {
        tracing::warn!(error = %e, "aborting an upload failed");
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
    if exists {
        match spec.existing {
            ExistingTable::Unspecified | ExistingTable::Fail => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "{} already exists; choose an existing-table mode such as truncate_and_overwrite to replace it",
                        bucket.label(key)
                    ),
                ));
            }
            ExistingTable::Append => {
                return Err(Error::unsupported(format!(
                    "{} exists and files cannot be appended to; write a prefix (name/) to add parts, or replace the file",
                    bucket.label(key)
                )));
            }
            // Replacing is atomic: the new object takes the key only when complete.
            _ => {}
        }
    }
    let upload = Upload::start(bucket, key.path().clone(), &format, schema).await?;
    let rows = upload.write_all(batches, &bucket.label(key)).await?;
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
    mut batches: BatchStream,
) -> Result<WriteReport> {
    let format = parts_format(spec)?;
    let old = read::data_files(bucket, key).await?;
    if !old.is_empty() {
        match spec.existing {
            ExistingTable::Unspecified | ExistingTable::Fail => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "{} already holds {} data files; choose append to add parts, or an overwrite mode to replace them",
                        bucket.label(key),
                        old.len()
                    ),
                ));
            }
            _ => {}
        }
    }
    // A run id keeps this write's parts apart from earlier ones (append) and from a
    // concurrent write to the same prefix.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let part_path = |n: usize| {
        Path::parse(format!(
            "{}/part-{run:x}-{n:05}.{}",
            key.as_str(),
            format.extension()
        ))
        .map_err(|e| Error::internal(format!("bad part name: {e}")))
    };
    let mut done: Vec<Path> = Vec::new();
    let mut current: Option<Upload> = None;
    let mut rows = 0u64;
    let result: Result<()> = async {
        while let Some(item) = batches.next().await {
            let batch = item?;
            if current.is_none() {
                current = Some(
                    Upload::start(bucket, part_path(done.len())?, &format, schema.clone()).await?,
                );
            }
            let upload = current.as_mut().expect("set above");
            upload.push(&batch).await?;
            rows += batch.num_rows() as u64;
            if upload.bytes >= bucket.part_bytes {
                let full = current.take().expect("set above");
                let label = bucket.label(&full.path);
                done.push(full.finish(&label).await?);
            }
        }
        // No rows at all still leaves one (empty) part, so the dataset and its schema exist.
        if done.is_empty() && current.is_none() {
            current = Some(Upload::start(bucket, part_path(0)?, &format, schema.clone()).await?);
        }
        if let Some(last) = current.take() {
            let label = bucket.label(&last.path);
            done.push(last.finish(&label).await?);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(upload) = current.take() {
            upload.abort().await;
        }
        for path in &done {
            if let Err(d) = bucket.store.delete(path).await {
                tracing::warn!(error = %d, part = %path, "could not remove a part of a failed write");
            }
        }
        return Err(e);
    }
    if matches!(
        spec.existing,
        ExistingTable::TruncateAndOverwrite
            | ExistingTable::DeleteAndOverwrite
            | ExistingTable::DropAndRecreate
    ) {
        for meta in &old {
            bucket.store.delete(&meta.location).await.internal(format!(
                "cannot remove the old part {}",
                bucket.label(&meta.location)
            ))?;
        }
    }
    Ok(WriteReport {
        rows_committed: rows,
        ..Default::default()
    })
}
