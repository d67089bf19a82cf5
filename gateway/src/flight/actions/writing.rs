//! `begin_write`, `commit_write`, `abort_write`: a write in parts ([`crate::writes`]), its
//! parts sent by DoPut with a `WritePart` command. Begin needs `write` on the target; the
//! parts, the commit and the abort need the principal that began it.

use bytes::Bytes;
use futures::StreamExt;
use mover_proto::{
    ABORT_WRITE_ACTION, AbortWrite, BEGIN_WRITE_ACTION, BeginWrite, COMMIT_WRITE_ACTION,
    CommitWrite, Progress, WriteSession,
};
use prost::Message;
use tonic::Status;

use crate::auth::Caller;
use crate::flight::service::{MoverService, Stream};
use crate::flight::status;
use crate::writes::unix_seconds;

use super::{decoded, one};

pub(super) const BEGIN: (&str, &str) = (
    BEGIN_WRITE_ACTION,
    "Open a write in parts into one target; the body is a mover.v1.BeginWrite, the result a \
     mover.v1.WriteSession. Parts come by DoPut with a WritePart command.",
);
pub(super) const COMMIT: (&str, &str) = (
    COMMIT_WRITE_ACTION,
    "Publish exactly the listed parts of a write in parts, in one step, and drop the rest; the \
     body is a mover.v1.CommitWrite, the result the final mover.v1.Progress",
);
pub(super) const ABORT: (&str, &str) = (
    ABORT_WRITE_ACTION,
    "Drop every part of a write in parts; the body is a mover.v1.AbortWrite",
);

pub(super) async fn begin(
    service: &MoverService,
    caller: &Caller,
    body: Bytes,
) -> Result<Stream<arrow_flight::Result>, Status> {
    let begin: BeginWrite = decoded(body, "BeginWrite")?;
    let target = begin
        .target
        .ok_or_else(|| Status::invalid_argument("the write names no target"))?;
    service.check_write(caller, &target)?;
    let sink = service.catalog.sink(&target).map_err(status)?;
    let in_place = sink.connector.publishes_parts_in_place(&sink.spec);
    let ttl = match begin.ttl_seconds {
        0 => None,
        s => Some(std::time::Duration::from_secs(s.into())),
    };
    let begun = service
        .writes
        .begin(caller.name(), target, ttl)
        .map_err(status)?;
    tracing::info!(principal = %caller.name(), write = %begun.id, "a write in parts began");
    let session = WriteSession {
        write_id: begun.id,
        expires_at: unix_seconds(begun.expires_at),
        in_place,
    };
    Ok(one(session.encode_to_vec()))
}

pub(super) async fn commit(
    service: &MoverService,
    caller: &Caller,
    body: Bytes,
) -> Result<Stream<arrow_flight::Result>, Status> {
    let commit: CommitWrite = decoded(body, "CommitWrite")?;
    // The rules may have changed since the write began.
    let target = service
        .writes
        .target(caller.name(), &commit.write_id)
        .map_err(status)?;
    service.check_write(caller, &target)?;
    let report = service
        .writes
        .commit(caller.name(), &commit.write_id, &commit.parts)
        .await
        .map_err(status)?;
    let progress = Progress {
        rows_committed: report.rows_committed,
        notes: report.notes,
        done: true,
        ..Default::default()
    };
    Ok(one(progress.encode_to_vec()))
}

pub(super) async fn abort(
    service: &MoverService,
    caller: &Caller,
    body: Bytes,
) -> Result<Stream<arrow_flight::Result>, Status> {
    let abort: AbortWrite = decoded(body, "AbortWrite")?;
    service
        .writes
        .abort(caller.name(), &abort.write_id)
        .map_err(status)?;
    Ok(futures::stream::empty().boxed())
}
