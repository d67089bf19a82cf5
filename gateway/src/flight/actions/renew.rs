//! `RenewFlightEndpoint` (Flight's own action): the same endpoint with a fresh ticket for the
//! same read, expiring a ticket lifetime from now. Only a live ticket of the caller's own is
//! renewed: an expired one is refused as it would be at DoGet.

use arrow_flight::{FlightEndpoint, RenewFlightEndpointRequest};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use tonic::Status;

use crate::auth::Caller;
use crate::flight::service::{MoverService, Stream, endpoint};
use crate::flight::status;

pub(super) const TYPE: (&str, &str) = (
    "RenewFlightEndpoint",
    "Extend an endpoint's expiration: the body is a RenewFlightEndpointRequest, the result the \
     FlightEndpoint with a new ticket for the same rows",
);

pub(super) async fn run(
    service: &MoverService,
    caller: &Caller,
    body: Bytes,
) -> Result<Stream<arrow_flight::Result>, Status> {
    let request = RenewFlightEndpointRequest::decode(body).map_err(|e| {
        Status::invalid_argument(format!("the body is not a RenewFlightEndpointRequest: {e}"))
    })?;
    let old = request
        .endpoint
        .ok_or_else(|| Status::invalid_argument("the request names no endpoint"))?;
    let ticket = old
        .ticket
        .as_ref()
        .map(|t| t.ticket.as_ref())
        .unwrap_or(&[]);
    let read = service.auth.redeem_ticket(ticket, caller).map_err(status)?;
    // The rules may have changed since the ticket was issued.
    service.check_read(caller, &read)?;
    let (ticket, expires_at) = service.auth.issue_ticket_until(&read, caller);
    // What the part shares with the others (a Postgres snapshot) lives as long as the ticket.
    service.catalog.hold(
        &read,
        Some(std::time::Instant::now() + service.auth.ticket_ttl()),
    );
    let renewed = FlightEndpoint {
        location: old.location,
        app_metadata: old.app_metadata,
        ..endpoint(ticket, expires_at)
    };
    let body = renewed.encode_to_vec();
    Ok(futures::stream::iter([Ok(arrow_flight::Result { body: body.into() })]).boxed())
}
