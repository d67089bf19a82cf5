//! A move: a source (on this gateway, or pulled from a peer) piped into a sink on this gateway,
//! with its progress metered and its failure blamed on the side that failed. The Flight
//! service's `move` action calls [`Mover::run`]; the stream combinators it uses are
//! [`transfer`]'s.
//!
//! A source read in several parts (a peer's endpoints, or a split read here) goes into a
//! target that publishes staged parts in place (a bucket prefix renames them) as a write in
//! parts ([`crate::writes`]): every part written at once, committed once. Into any other
//! target the parts are read into one stream: spooling them would end in the same single
//! write through the disk, and Postgres's commit would copy every row a second time (not yet
//! measured against the one stream, so not yet chosen).

use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use futures::{StreamExt, TryStreamExt};
use mover_proto::{PartId, Read, Write};

use crate::catalog::Catalog;
use crate::config::PeerTarget;
use crate::connectors::WriteReport;
use crate::error::{Error, Result};
use crate::peers::Peers;
use crate::transfer::{self, BatchStream, Meter};
use crate::writes::Writes;

/// Parts of a split read on this gateway written at once.
const LOCAL_PARTS_AT_ONCE: usize = 8;

/// What a move needs of its gateway.
#[derive(Clone)]
pub struct Mover {
    pub catalog: Catalog,
    pub peers: Peers,
    pub writes: Writes,
    /// Batches buffered between a source (or each part of one) and its sink.
    pub in_flight: usize,
}

impl Mover {
    /// Move `source` (read here, or from `peer`) to `target` for `principal`, counting what
    /// is read in `meter`.
    pub async fn run(
        &self,
        principal: &str,
        peer: Option<&PeerTarget>,
        source: &Read,
        target: &Write,
        meter: Arc<Meter>,
    ) -> Result<WriteReport> {
        let in_parts = self
            .catalog
            .sink(target)
            .is_ok_and(|s| s.connector.publishes_parts_in_place(&s.spec));
        let Some(peer) = peer else {
            return self
                .run_here(principal, source, target, meter, in_parts)
                .await;
        };
        let pulled = self
            .peers
            .open(peer, source)
            .await
            .map_err(|e| e.within("source"))?;
        if !in_parts || pulled.endpoints() <= 1 {
            return self
                .pipe(pulled.merged(self.in_flight), target, meter)
                .await;
        }
        let (n, at_once) = (pulled.endpoints(), pulled.parallel());
        let opened = |i| {
            let part = (pulled.schema.clone(), pulled.endpoint(i, self.in_flight));
            async move { Ok(part) }
        };
        let result = self
            .in_parts(principal, target, n, at_once, meter, opened)
            .await;
        pulled.release().await;
        result
    }

    /// A move from this gateway's own source: split where the target takes parts and the
    /// source was asked for several.
    async fn run_here(
        &self,
        principal: &str,
        source: &Read,
        target: &Write,
        meter: Arc<Meter>,
        in_parts: bool,
    ) -> Result<WriteReport> {
        let within = |e: Error| e.within("source");
        let parts = match in_parts && source.partitions > 1 {
            true => self.catalog.partitions(source).await.map_err(within)?,
            false => vec![],
        };
        // What the parts share (a Postgres snapshot) is let go however the move ends.
        let parts = Held {
            catalog: &self.catalog,
            parts,
        };
        if parts.parts.len() <= 1 {
            let opened = self.catalog.open_read(source).await.map_err(within)?;
            let mut report = self.pipe(opened, target, meter).await?;
            // A file of its header alone is copied as no rows, which is right, but should
            // not pass unremarked: a file whose records end otherwise once looked the same.
            if report.rows_committed == 0 && self.catalog.reads_a_bucket(source) {
                report.notes.push(
                    "the source held no rows (a delimited file of a header line alone, or an \
                     empty file or prefix)"
                        .into(),
                );
            }
            return Ok(report);
        }
        let opened = |i: usize| {
            let (catalog, read) = (self.catalog.clone(), parts.parts[i].clone());
            async move { catalog.open_read(&read).await }
        };
        let at_once = LOCAL_PARTS_AT_ONCE;
        self.in_parts(principal, target, parts.parts.len(), at_once, meter, opened)
            .await
    }

    /// Write `source` (a schema and its batches, from this gateway or a peer) to `target`.
    /// `meter` counts what was read. A failure says which side failed: the source's own error
    /// when the source failed, else the target's.
    pub async fn pipe(
        &self,
        source: (SchemaRef, BatchStream),
        target: &Write,
        meter: Arc<Meter>,
    ) -> Result<WriteReport> {
        let (schema, stream) = source;
        let (stream, blame) = watched(meter.metered(stream));
        let stream = transfer::bounded(stream, self.in_flight);
        self.catalog
            .write(target, schema, stream)
            .await
            .map_err(|e| blame.of(e))
    }

    /// The `n` parts `open` gives written at once (up to `at_once`) as one write in parts into
    /// `target`, committed when every part is staged; on any failure, or if this is dropped,
    /// nothing is published and every staged part is removed.
    async fn in_parts<F, O>(
        &self,
        principal: &str,
        target: &Write,
        n: usize,
        at_once: usize,
        meter: Arc<Meter>,
        open: F,
    ) -> Result<WriteReport>
    where
        F: Fn(usize) -> O,
        O: Future<Output = Result<(SchemaRef, BatchStream)>>,
    {
        let within = |e: Error| e.within("target");
        let begun = self
            .writes
            .begin(principal, target.clone(), None)
            .map_err(within)?;
        let _forget = Forget {
            writes: &self.writes,
            principal,
            id: &begun.id,
        };
        tracing::info!(write = %begun.id, parts = n, "moving in parts");
        let stage = |i: usize| {
            let (opening, meter, id) = (open(i), meter.clone(), begun.id.as_str());
            async move {
                let (schema, stream) = opening.await.map_err(|e| e.within("source"))?;
                let (stream, blame) = watched(meter.metered(stream));
                let stream = transfer::bounded(stream, self.in_flight);
                let key = PartId {
                    partition: i as u32,
                    attempt: 0,
                };
                self.writes
                    .stage(principal, id, key, schema, stream)
                    .await
                    .map_err(|e| blame.of(e))?;
                Ok::<_, Error>(key)
            }
        };
        let mut staged: Vec<PartId> = futures::stream::iter(0..n)
            .map(stage)
            .buffer_unordered(at_once.max(1))
            .try_collect()
            .await?;
        staged.sort_by_key(|k| k.partition);
        self.writes
            .commit(principal, &begun.id, &staged)
            .await
            .map_err(within)
    }
}

/// The first error a source stream gave, kept so that a sink's failure can be blamed on it.
#[derive(Clone, Default)]
struct Blame(Arc<Mutex<Option<Error>>>);

impl Blame {
    /// `sink_error` said of the side that failed: the source's own error when the source
    /// failed (the sink only saw its stream end), else the target's.
    fn of(&self, sink_error: Error) -> Error {
        match self.0.lock().expect("source error").take() {
            Some(source) => source.within("source"),
            None => sink_error.within("target"),
        }
    }
}

/// `stream`, watched for its first error.
fn watched(stream: BatchStream) -> (BatchStream, Blame) {
    let blame = Blame::default();
    let seen = blame.clone();
    let stream = stream
        .inspect(move |item| {
            if let Err(e) = item {
                seen.0
                    .lock()
                    .expect("source error")
                    .get_or_insert_with(|| e.clone());
            }
        })
        .boxed();
    (stream, blame)
}

/// The parts of a split read here; dropped, what they share is released.
struct Held<'a> {
    catalog: &'a Catalog,
    parts: Vec<Read>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        for part in &self.parts {
            self.catalog.hold(part, None);
        }
    }
}

/// A write in parts a move began: forgotten when the move ends, and aborted (its staged parts
/// removed) unless it was committed.
struct Forget<'a> {
    writes: &'a Writes,
    principal: &'a str,
    id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.writes.forget(self.principal, self.id);
    }
}

#[cfg(test)]
mod tests {
    //! Moves between in-memory buckets and SQLite: the report, the side that failed, and a
    //! dropped move that leaves nothing behind.
    use super::*;
    use crate::catalog::tests::{catalog, read, rows, write};
    use crate::error::{Error, ErrorKind};
    use std::time::Duration;

    /// A mover over `catalog`, with no peers.
    fn mover(catalog: &Catalog, dir: &std::path::Path) -> Mover {
        let settings = crate::writes::Settings {
            default_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(60),
            sweep_grace: Duration::from_secs(3600),
            sweep: false,
            spool_dir: dir.join("spool"),
        };
        Mover {
            catalog: catalog.clone(),
            peers: Peers::default(),
            writes: Writes::new(catalog.clone(), settings),
            in_flight: 2,
        }
    }

    #[tokio::test]
    async fn a_move_reports_what_it_committed() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path());
        let (schema, stream) = rows(50);
        catalog
            .write(&write("mem/in.csv"), schema, stream)
            .await
            .unwrap();
        let meter = Arc::new(Meter::default());
        let report = mover(&catalog, dir.path())
            .run(
                "me",
                None,
                &read("mem/in.csv"),
                &write("db/main/out"),
                meter.clone(),
            )
            .await
            .unwrap();
        assert_eq!(report.rows_committed, 50);
        assert_eq!(meter.progress().rows_read, 50);
    }

    #[tokio::test]
    async fn a_failure_says_which_side_failed() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path());
        let e = mover(&catalog, dir.path())
            .run(
                "me",
                None,
                &read("mem/missing.csv"),
                &write("db/main/out"),
                Arc::new(Meter::default()),
            )
            .await
            .unwrap_err();
        assert!(e.message.starts_with("source: "), "{e}");
        // A source that fails mid-stream is blamed, not the target that saw the stream end.
        let (schema, good) = rows(5);
        let bad = good
            .chain(futures::stream::once(async {
                Err(Error::invalid("line 7: a ragged row"))
            }))
            .boxed();
        let e = mover(&catalog, dir.path())
            .pipe(
                (schema, bad),
                &write("mem/out.parquet"),
                Arc::new(Meter::default()),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert_eq!(e.message, "source: line 7: a ragged row");
        let e = mover(&catalog, dir.path())
            .run(
                "me",
                None,
                &read("mem/out.parquet"),
                &write("db/main/t"),
                Arc::new(Meter::default()),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "nothing was written: {e}");
    }

    #[tokio::test]
    async fn a_dropped_move_into_a_prefix_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[buckets.mem]\nurl = \"memory://\"\npart_size_mb = 1\n";
        let config = crate::config::Config::parse(text, dir.path().to_path_buf()).unwrap();
        let catalog = Catalog::from_config(&config).unwrap();
        // An endless source: batches of about 1 MB of text, forever.
        let (schema, _) = rows(1);
        let batch = {
            let (_, mut s) = rows(40_000);
            s.next().await.unwrap().unwrap()
        };
        let endless = futures::stream::repeat_with(move || Ok(batch.clone())).boxed();
        let to = prefix("mem/out/");
        let mover = mover(&catalog, dir.path());
        let moving = mover.pipe((schema, endless), &to, Arc::new(Meter::default()));
        // Long enough for several parts to be published; then the move is dropped.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), moving).await;
        crate::connectors::undo::settled().await;
        let listing = catalog.list(&["mem".into(), "".into()]).await;
        assert!(listing.found.is_empty(), "{:?}", listing.found);
    }

    /// A CSV target in a memory bucket prefix, which stages parts.
    fn prefix(path: &str) -> Write {
        let mut to = write(path);
        to.file = Some(mover_proto::FileOptions {
            format: mover_proto::FileFormat::Csv as i32,
            ..Default::default()
        });
        to
    }

    #[tokio::test]
    async fn a_split_read_into_a_prefix_is_written_in_parts_and_committed_once() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path());
        let (schema, stream) = rows(50_000);
        catalog
            .write(&write("db/main/big"), schema, stream)
            .await
            .unwrap();
        let mover = mover(&catalog, dir.path());
        let mut source = read("db/main/big");
        source.partitions = 3;
        assert_eq!(catalog.partitions(&source).await.unwrap().len(), 3);
        let meter = Arc::new(Meter::default());
        let to = prefix("mem/split/");
        let report = mover
            .run("me", None, &source, &to, meter.clone())
            .await
            .unwrap();
        assert_eq!(report.rows_committed, 50_000);
        assert_eq!(meter.progress().rows_read, 50_000);
        // One file a part or more: a split read of the prefix has an endpoint a file.
        let mut files = read("mem/split/");
        files.partitions = 100;
        let files = catalog.partitions(&files).await.unwrap().len();
        assert!(files >= 3, "{files} files");
        assert_eq!(mover.writes.staged_parts(), 0);
        let back = catalog.open_read(&read("mem/split/")).await.unwrap().1;
        let rows: usize = back
            .map(|b| b.unwrap().num_rows())
            .collect::<Vec<_>>()
            .await
            .iter()
            .sum();
        assert_eq!(rows, 50_000);
    }

    #[tokio::test]
    async fn a_part_that_fails_publishes_nothing_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path());
        let mover = mover(&catalog, dir.path());
        let opened = |i: usize| async move {
            let (schema, good) = rows(20_000);
            let stream = match i {
                2 => good
                    .chain(futures::stream::once(async {
                        Err(Error::invalid("line 9: a ragged row"))
                    }))
                    .boxed(),
                _ => good,
            };
            Ok((schema, stream))
        };
        let to = prefix("mem/failed/");
        let e = mover
            .in_parts("me", &to, 4, 2, Arc::new(Meter::default()), opened)
            .await
            .unwrap_err();
        assert_eq!(e.message, "source: line 9: a ragged row");
        crate::connectors::undo::settled().await;
        let listing = catalog.list(&["mem".into(), "".into()]).await;
        assert!(listing.found.is_empty(), "{:?}", listing.found);
        assert_eq!(mover.writes.staged_parts(), 0);
        assert!(mover.writes.target("me", "any").is_err());
    }
}
