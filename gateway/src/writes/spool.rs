//! Parts of a write in parts kept on the gateway's disk until the commit, for targets that do
//! not stage parts themselves: each part is an Arrow IPC stream file, exact for every type, and
//! read back in order at the commit as one stream into the target's own single write (which
//! commits or changes nothing).
//!
//! A [`File`] is removed when dropped, so a part that fails, is dropped mid-stream, is left out
//! of the commit or outlives its write's expiry leaves nothing behind.

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{Context, Error, Result};
use crate::transfer::BatchStream;

/// One spooled part: its rows, and the file, removed when this is dropped.
#[derive(Debug)]
pub struct File {
    path: PathBuf,
    pub rows: u64,
}

impl Drop for File {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, file = %self.path.display(), "cannot remove a spooled part")
            }
        }
    }
}

/// Remove the spool folders in `dir` of gateway processes that no longer run (killed with
/// parts spooled), never `own`. Each folder is named by its process id
/// (`mover-spool-PID-…`); where the system cannot tell which processes run (no `/proc`),
/// nothing is removed.
pub fn sweep(dir: &Path, own: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("mover-spool-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if path == own || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(folder = %path.display(), "removed a stopped gateway's spooled parts")
            }
            Err(e) => {
                tracing::warn!(error = %e, folder = %path.display(), "cannot remove a stopped gateway's spool folder")
            }
        }
    }
}

/// `batches` into a new file in `dir`; removed again if the stream fails or this is dropped.
pub async fn write(dir: &Path, schema: SchemaRef, mut batches: BatchStream) -> Result<File> {
    tokio::fs::create_dir_all(dir)
        .await
        .internal(format!("cannot make the spool folder {}", dir.display()))?;
    let name = hex(&crate::auth::tokens::random_bytes::<12>());
    let mut file = File {
        path: dir.join(format!("part-{name}.arrows")),
        rows: 0,
    };
    let path = file.path.clone();
    let opened = tokio::task::spawn_blocking(move || -> Result<_> {
        let out = std::fs::File::create_new(&path)
            .internal(format!("cannot spool to {}", path.display()))?;
        StreamWriter::try_new(BufWriter::new(out), &schema).map_err(Error::from)
    });
    let mut writer = joined(opened.await)?;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        file.rows += batch.num_rows() as u64;
        let written = tokio::task::spawn_blocking(move || -> Result<_> {
            writer.write(&batch)?;
            Ok(writer)
        });
        writer = joined(written.await)?;
    }
    let finished = tokio::task::spawn_blocking(move || -> Result<()> {
        writer.finish()?;
        let out = writer.into_inner()?;
        out.into_inner()
            .map_err(|e| Error::internal(format!("cannot spool a part: {}", e.error())))?
            .sync_all()
            .internal("cannot spool a part")
    });
    joined(finished.await)?;
    Ok(file)
}

/// The batches of `files`, one file after another, read on a thread of their own; each file is
/// removed once read (and all of them if the stream is dropped).
pub fn read(files: Vec<File>) -> BatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        for file in files {
            let opened = std::fs::File::open(&file.path)
                .internal(format!(
                    "cannot read the spooled part {}",
                    file.path.display()
                ))
                .and_then(|f| StreamReader::try_new(BufReader::new(f), None).map_err(Error::from));
            let reader = match opened {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            for batch in reader {
                if tx.blocking_send(batch.map_err(Error::from)).is_err() {
                    return; // the commit was dropped: the files go with `files`
                }
            }
        }
    });
    ReceiverStream::new(rx).boxed()
}

fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| Error::internal(format!("the spool task failed: {e}")))?
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
