//! `move`: a source (on this gateway, or on a peer it pulls from) to a target on this
//! gateway, reporting progress as it runs ([`crate::moves`] does the moving).

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use mover_proto::{MOVE_ACTION, Move};
use prost::Message;
use tonic::Status;

use crate::auth::Caller;
use crate::flight::progress::with_progress;
use crate::flight::service::{MoverService, Stream};
use crate::flight::status;
use crate::metrics::Watch;
use crate::moves::Mover;
use crate::transfer::Meter;
use tracing::Instrument;

pub(super) const TYPE: (&str, &str) = (
    MOVE_ACTION,
    "Move a source (on this gateway, or on a peer it pulls from) to a target on this gateway; \
     the body is a mover.v1.Move, each result a mover.v1.Progress (the last has done set)",
);

pub(super) async fn run(
    service: &MoverService,
    caller: &Caller,
    body: Bytes,
) -> Result<Stream<arrow_flight::Result>, Status> {
    let mv = Move::decode(body).map_err(|e| {
        Status::invalid_argument(format!("the move body is not a mover.v1.Move: {e}"))
    })?;
    let source = mv
        .source
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("the move names no source"))?;
    let target = mv
        .target
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("the move names no target"))?;
    let peer = match mv.source_gateway.as_str() {
        "" => None,
        url => Some(service.peers.find(url).map_err(status)?.clone()),
    };
    match &peer {
        None => service.check_read(caller, source)?,
        Some(peer) => service.check_pull(caller, &peer.name, source)?,
    }
    service.check_write(caller, target)?;
    if source.part.is_some() {
        return Err(Status::invalid_argument(
            "a move's source may not name a part; parts come in GetFlightInfo's tickets",
        ));
    }
    let slot = service.slot(caller)?;
    if let Some(peer) = &peer {
        tracing::info!(principal = %caller.name(), peer = %peer.name, "pulling from a peer");
    }

    let meter = Arc::new(Meter::default());
    let source_kind = match &peer {
        Some(_) => "peer".to_string(),
        None => service.catalog.kind_of_read(source),
    };
    let watch = Watch::start(
        "move",
        source_kind,
        service.catalog.kind_of_write(target),
        meter.clone(),
    );
    let mover = Mover {
        catalog: service.catalog.clone(),
        peers: service.peers.clone(),
        writes: service.writes.clone(),
        in_flight: service.limits.in_flight,
    };
    let work_meter = meter.clone();
    let (source, target) = (source.clone(), target.clone());
    let principal = caller.name().to_string();
    let id = crate::writes::spool::hex(&crate::auth::tokens::random_bytes::<8>());
    let names = (
        match &mv.source_gateway.as_str() {
            &"" => name_of_read(&source),
            url => format!("@{url}/{}", name_of_read(&source)),
        },
        name_of_write(&target),
    );
    // Every log line of the move carries its id, principal, source and target.
    let span = tracing::info_span!("move", id = %id, principal = %principal, source = %names.0, target = %names.1);
    let work = async move {
        let _slot = slot;
        let peer = peer.as_ref();
        mover
            .run(&principal, peer, &source, &target, work_meter)
            .await
    };
    let what = format!("move {id}");
    let work = service
        .moving
        .track(id, caller.name(), names, meter.clone(), work)
        .instrument(span);
    let results = with_progress(what, watch, service.stopping.clone(), work).map_ok(|p| {
        arrow_flight::Result {
            body: p.encode_to_vec().into(),
        }
    });
    Ok(results.boxed())
}

/// A read as mvrec names it: its path (`files/exports/orders/`), or its database and SQL.
fn name_of_read(read: &mover_proto::Read) -> String {
    match &read.what {
        Some(mover_proto::read::What::Path(p)) => p.parts.join("/"),
        Some(mover_proto::read::What::Query(q)) => format!("{} --sql {:?}", q.database, q.sql),
        None => String::new(),
    }
}

fn name_of_write(write: &mover_proto::Write) -> String {
    write
        .path
        .as_ref()
        .map(|p| p.parts.join("/"))
        .unwrap_or_default()
}
