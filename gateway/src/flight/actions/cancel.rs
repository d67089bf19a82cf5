//! `CancelFlightInfo` (Flight's own action): stop the caller's running DoGets of the
//! FlightInfo's tickets, and release what its parts hold (a split Postgres read's snapshot).
//! A FlightInfo none of whose tickets is being read or holds anything is NOT_CANCELLABLE:
//! there is nothing to stop.

use arrow_flight::{CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use tonic::Status;

use crate::auth::Caller;
use crate::flight::service::{MoverService, Stream};

pub(super) const TYPE: (&str, &str) = (
    "CancelFlightInfo",
    "Stop the running reads of a FlightInfo's endpoints; the body is a CancelFlightInfoRequest",
);

pub(super) async fn run(
    service: &MoverService,
    caller: &Caller,
    body: Bytes,
) -> Result<Stream<arrow_flight::Result>, Status> {
    let request = CancelFlightInfoRequest::decode(body).map_err(|e| {
        Status::invalid_argument(format!("the body is not a CancelFlightInfoRequest: {e}"))
    })?;
    let info = request
        .info
        .ok_or_else(|| Status::invalid_argument("the CancelFlightInfoRequest has no FlightInfo"))?;
    let tickets: Vec<&[u8]> = info
        .endpoint
        .iter()
        .filter_map(|e| e.ticket.as_ref().map(|t| t.ticket.as_ref()))
        .collect();
    let cancelled = service.running.cancel(&tickets, caller.name());
    // What the parts share (a Postgres snapshot) is released: the FlightInfo is done with.
    let released = tickets
        .iter()
        .filter_map(|t| service.auth.redeem_ticket(t, caller).ok())
        .filter(|read| service.catalog.hold(read, None))
        .count();
    let status = if cancelled + released > 0 {
        CancelStatus::Cancelled
    } else {
        CancelStatus::NotCancellable
    };
    let result = CancelFlightInfoResult::new(status);
    let body = result.encode_to_vec();
    Ok(futures::stream::iter([Ok(arrow_flight::Result { body: body.into() })]).boxed())
}
