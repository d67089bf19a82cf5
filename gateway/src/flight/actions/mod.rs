//! The `mover.v1` actions and Flight's CancelFlightInfo, one file each (mini-redis's `cmd/` is the model): each decodes its
//! body, checks the caller's rights, and runs.

mod cancel;
mod moving;
mod renew;
mod running_moves;
mod sniff;
mod writing;

use arrow_flight::{Action, ActionType};
use tonic::Status;

use super::service::{MoverService, Stream};
use crate::auth::Caller;

/// An action's body as the mover.v1 message `what`, or INVALID_ARGUMENT.
fn decoded<M: prost::Message + Default>(body: bytes::Bytes, what: &str) -> Result<M, Status> {
    M::decode(body)
        .map_err(|e| Status::invalid_argument(format!("the body is not a mover.v1.{what}: {e}")))
}

/// An action's one result.
fn one(body: Vec<u8>) -> Stream<arrow_flight::Result> {
    use futures::StreamExt;
    futures::stream::iter([Ok(arrow_flight::Result { body: body.into() })]).boxed()
}

/// What ListActions says this gateway does.
pub(super) fn list() -> Vec<ActionType> {
    [
        sniff::TYPE,
        moving::TYPE,
        running_moves::LIST,
        running_moves::CANCEL,
        cancel::TYPE,
        renew::TYPE,
        writing::BEGIN,
        writing::COMMIT,
        writing::ABORT,
    ]
    .into_iter()
    .chain(super::sql::actions())
    .map(|(name, description)| ActionType {
        r#type: name.into(),
        description: description.into(),
    })
    .collect()
}

/// Run `action` for `caller`.
pub(super) async fn run(
    service: &MoverService,
    caller: &Caller,
    action: Action,
) -> Result<Stream<arrow_flight::Result>, Status> {
    match action.r#type.as_str() {
        t if t == sniff::TYPE.0 => sniff::run(service, caller, action.body).await,
        t if t == moving::TYPE.0 => moving::run(service, caller, action.body).await,
        t if t == running_moves::LIST.0 => Ok(running_moves::list(service, caller)),
        t if t == running_moves::CANCEL.0 => running_moves::cancel(service, caller, action.body),
        t if t == cancel::TYPE.0 => cancel::run(service, caller, action.body).await,
        t if t == renew::TYPE.0 => renew::run(service, caller, action.body).await,
        t if t == writing::BEGIN.0 => writing::begin(service, caller, action.body).await,
        t if t == writing::COMMIT.0 => writing::commit(service, caller, action.body).await,
        t if t == writing::ABORT.0 => writing::abort(service, caller, action.body).await,
        // UNIMPLEMENTED, not INVALID_ARGUMENT: clients (ADBC) fall back only on that code.
        other => Err(Status::unimplemented(format!(
            "unknown action {other:?}; ListActions tells what this gateway does"
        ))),
    }
}
