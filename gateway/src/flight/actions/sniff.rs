//! `sniff`: the records hints a file's first bytes suggest, as JSON.

use bytes::Bytes;
use futures::StreamExt;
use mover_proto::{Read, SNIFF_ACTION};
use prost::Message;
use tonic::Status;

use crate::auth::Caller;
use crate::flight::service::{MoverService, Stream};
use crate::flight::status;

pub(super) const TYPE: (&str, &str) = (
    SNIFF_ACTION,
    "Tell a file's records hints from its first bytes; the body is a mover.v1.Read naming the \
     file, the result the 13 hints as JSON",
);

pub(super) async fn run(
    service: &MoverService,
    caller: &Caller,
    body: Bytes,
) -> Result<Stream<arrow_flight::Result>, Status> {
    let read = Read::decode(body).map_err(|e| {
        Status::invalid_argument(format!("the sniff body is not a mover.v1.Read: {e}"))
    })?;
    service.check_read(caller, &read)?;
    let hints = service.catalog.sniff(&read).await.map_err(status)?;
    let body = serde_json::to_vec(&hints).expect("JSON");
    let result = arrow_flight::Result { body: body.into() };
    Ok(futures::stream::iter([Ok(result)]).boxed())
}
