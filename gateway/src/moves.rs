//! A move: a source (on this gateway, or pulled from a peer) piped into a sink on this gateway,
//! with its progress metered and its failure blamed on the side that failed. The Flight
//! service's `move` action calls [`run`]; the stream combinators it uses are [`transfer`]'s.

use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use mover_proto::{Read, Write};

use crate::catalog::Catalog;
use crate::config::PeerTarget;
use crate::connectors::WriteReport;
use crate::error::Result;
use crate::peers::Peers;
use crate::transfer::{self, BatchStream, Meter};

/// Move `source` (read here, or from `peer`) to `target`, counting what is read in `meter`.
pub async fn run(
    catalog: &Catalog,
    peers: &Peers,
    peer: Option<&PeerTarget>,
    source: &Read,
    target: &Write,
    meter: Arc<Meter>,
    in_flight: usize,
) -> Result<WriteReport> {
    let opened = match peer {
        None => catalog.open_read(source).await,
        Some(peer) => peers.pull(peer, source, in_flight).await,
    }
    .map_err(|e| e.within("source"))?;
    pipe(catalog, opened, target, meter, in_flight).await
}

/// Write `source` (a schema and its batches, from this gateway or a peer) to `target`.
/// `meter` counts what was read. A failure says which side failed: the source's own error
/// when the source failed, else the target's.
pub async fn pipe(
    catalog: &Catalog,
    source: (SchemaRef, BatchStream),
    target: &Write,
    meter: Arc<Meter>,
    in_flight: usize,
) -> Result<WriteReport> {
    let (schema, stream) = source;
    let source_failed = Arc::new(Mutex::new(None));
    let seen = source_failed.clone();
    let stream = stream
        .inspect(move |item| {
            if let Err(e) = item {
                seen.lock()
                    .expect("source error")
                    .get_or_insert_with(|| e.clone());
            }
        })
        .boxed();
    let stream = transfer::bounded(meter.metered(stream), in_flight);
    catalog.write(target, schema, stream).await.map_err(|e| {
        match source_failed.lock().expect("source error").take() {
            Some(source) => source.within("source"),
            None => e.within("target"),
        }
    })
}

#[cfg(test)]
mod tests {
    //! Moves between in-memory buckets and SQLite: the report, the side that failed, and a
    //! dropped move that leaves nothing behind.
    use super::*;
    use crate::catalog::tests::{catalog, read, rows, write};
    use crate::error::{Error, ErrorKind};

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
        let report = run(
            &catalog,
            &Peers::default(),
            None,
            &read("mem/in.csv"),
            &write("db/main/out"),
            meter.clone(),
            2,
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
        let e = run(
            &catalog,
            &Peers::default(),
            None,
            &read("mem/missing.csv"),
            &write("db/main/out"),
            Arc::new(Meter::default()),
            2,
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
        let e = pipe(
            &catalog,
            (schema, bad),
            &write("mem/out.parquet"),
            Arc::new(Meter::default()),
            2,
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert_eq!(e.message, "source: line 7: a ragged row");
        let e = run(
            &catalog,
            &Peers::default(),
            None,
            &read("mem/out.parquet"),
            &write("db/main/t"),
            Arc::new(Meter::default()),
            2,
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
        let mut to = write("mem/out/");
        to.file = Some(mover_proto::FileOptions {
            format: mover_proto::FileFormat::Csv as i32,
            ..Default::default()
        });
        let moving = pipe(
            &catalog,
            (schema, endless),
            &to,
            Arc::new(Meter::default()),
            2,
        );
        // Long enough for several parts to be published; then the move is dropped.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), moving).await;
        crate::connectors::undo::settled().await;
        let listing = catalog.list(&["mem".into(), "".into()]).await;
        assert!(listing.found.is_empty(), "{:?}", listing.found);
    }
}
