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
