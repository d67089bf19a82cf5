//! `list_moves` and `cancel_move`: the caller's moves running now, and stopping one
//! ([`crate::flight::moving_now`] keeps them).

use bytes::Bytes;
use futures::StreamExt;
use mover_proto::{CANCEL_MOVE_ACTION, CancelMove, LIST_MOVES_ACTION, MoveList};
use prost::Message;
use tonic::Status;

use crate::auth::Caller;
use crate::flight::service::{MoverService, Stream};
use crate::flight::status;

pub(super) const LIST: (&str, &str) = (
    LIST_MOVES_ACTION,
    "The caller's moves running now (id, source, target, rows and bytes so far); no body, the \
     one result a mover.v1.MoveList",
);
pub(super) const CANCEL: (&str, &str) = (
    CANCEL_MOVE_ACTION,
    "Cancel one of the caller's running moves; its target rolls back. The body is a \
     mover.v1.CancelMove",
);

pub(super) fn list(service: &MoverService, caller: &Caller) -> Stream<arrow_flight::Result> {
    let listed = MoveList {
        moves: service
            .moving
            .list(caller.name(), service.auth.is_admin(caller)),
    };
    super::one(listed.encode_to_vec())
}

pub(super) fn cancel(
    service: &MoverService,
    caller: &Caller,
    body: Bytes,
) -> Result<Stream<arrow_flight::Result>, Status> {
    let cancel: CancelMove = super::decoded(body, "CancelMove")?;
    service
        .moving
        .cancel(caller.name(), service.auth.is_admin(caller), &cancel.id)
        .map_err(status)?;
    tracing::info!(principal = %caller.name(), id = %cancel.id, "a move was cancelled");
    Ok(futures::stream::empty().boxed())
}
