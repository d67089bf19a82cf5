//! `CancelFlightInfo` (Flight's own action): stop the caller's running DoGets of the
//! FlightInfo's tickets. Nothing runs before a DoGet (tickets are stateless), so a FlightInfo
//! none of whose tickets is being read now is NOT_CANCELLABLE: there is nothing to stop.

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
    let status = if cancelled > 0 {
        CancelStatus::Cancelled
    } else {
        CancelStatus::NotCancellable
    };
    let result = CancelFlightInfoResult::new(status);
    let body = result.encode_to_vec();
    Ok(futures::stream::iter([Ok(arrow_flight::Result { body: body.into() })]).boxed())
}
