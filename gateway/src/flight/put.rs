//! DoPut's framing: the raw messages of an upload to record batches, noting the end-of-upload
//! message (`mover.v1.END_OF_UPLOAD`) and ending in an error when the upload was cut, so the
//! sink rolls back rather than commit a part of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;
use arrow_flight::FlightData;
use arrow_flight::decode::{DecodedFlightData, DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use futures::StreamExt;
use mover_proto::END_OF_UPLOAD;
use tonic::Status;

use crate::error::{Error, ErrorKind, Result};
use crate::transfer::BatchStream;

/// What a DoPut's raw messages said besides data: whether the end-of-upload message came.
#[derive(Clone, Default)]
pub(crate) struct Upload {
    ended: Arc<AtomicBool>,
}

impl Upload {
    /// The upload's messages, decoded ([`Upload::messages`] into arrow-ipc, [`Guarded`]).
    pub(crate) fn decoder(
        &self,
        raw: impl futures::Stream<Item = Result<FlightData, Status>> + Send + 'static,
    ) -> Guarded {
        Guarded(Some(FlightDataDecoder::new(self.messages(raw))))
    }

    /// The IPC messages of the upload, for the decoder. Messages with no IPC header carry only
    /// app_metadata (pyarrow's `write_metadata` sends such): the end-of-upload marker is noted,
    /// others are skipped. A transport error means the client went away.
    fn messages(
        &self,
        raw: impl futures::Stream<Item = Result<FlightData, Status>> + Send + 'static,
    ) -> impl futures::Stream<Item = Result<FlightData, FlightError>> + Send + 'static {
        let ended = self.ended.clone();
        raw.filter_map(move |item| {
            let out = match item {
                Ok(_) if ended.load(Ordering::SeqCst) => Some(Err(FlightError::protocol(
                    "DoPut sent data after its end-of-upload message",
                ))),
                Ok(d) if d.data_header.is_empty() => {
                    if d.app_metadata.as_ref() == END_OF_UPLOAD {
                        ended.store(true, Ordering::SeqCst);
                    }
                    None
                }
                Ok(d) => match unframed(&d) {
                    Some(why) => Some(Err(FlightError::DecodeError(why))),
                    None => Some(Ok(d)),
                },
                Err(s) => Some(Err(FlightError::Tonic(Box::new(s)))),
            };
            futures::future::ready(out)
        })
    }

    /// The record batches, ending in an error when the upload was cut: by a broken connection,
    /// or (with `end_marker`) by an end without the end-of-upload message. The sink then rolls
    /// back.
    pub(crate) fn batches(&self, decoder: Guarded, end_marker: bool) -> BatchStream {
        let cut = |why: String| Error::new(ErrorKind::Cancelled, why);
        let ended = self.ended.clone();
        let batches = decoder.filter_map(move |item| {
            let out = match item {
                Ok(d) => match d.payload {
                    DecodedPayload::RecordBatch(b) => Some(Ok(b)),
                    DecodedPayload::None => None,
                    DecodedPayload::Schema(_) => {
                        Some(Err(Error::invalid("DoPut sent a second schema")))
                    }
                },
                Err(FlightError::Tonic(s)) => Some(Err(cut(format!(
                    "the upload was cut before it ended ({}); nothing was written",
                    s.message()
                )))),
                Err(e) => Some(Err(Error::invalid(format!("bad Flight data: {e}")))),
            };
            futures::future::ready(out)
        });
        let check_end = futures::stream::once(async move {
            (end_marker && !ended.load(Ordering::SeqCst)).then(|| {
                Err(cut(
                    "the upload ended without its end-of-upload message; nothing was written"
                        .into(),
                ))
            })
        })
        .filter_map(futures::future::ready);
        batches.chain(check_end).boxed()
    }
}

/// An upload's decoder that ends in INVALID_ARGUMENT where arrow-ipc panics: some malformed
/// messages still make it panic where its validation should refuse them (an offsets buffer
/// whose length is no multiple of four trips an assertion in arrow-data, found by fuzzing:
/// `fuzz/regressions/upload`). The panic is the upload's fault, not the gateway's, and the
/// decoder (only ever the upload's own state) is not polled again. The panic hook still logs
/// it, as a bug of arrow-ipc's.
pub(crate) struct Guarded(Option<FlightDataDecoder>);

impl futures::Stream for Guarded {
    type Item = Result<DecodedFlightData, FlightError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let Some(decoder) = self.0.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decoder.poll_next_unpin(cx)));
        polled.unwrap_or_else(|panic| {
            self.0 = None;
            std::task::Poll::Ready(Some(Err(FlightError::DecodeError(format!(
                "an IPC message that does not decode ({})",
                super::progress::panic_message(panic.as_ref())
            )))))
        })
    }
}

/// Why an IPC message cannot be decoded safely, if it cannot: its header must be a flatbuffer
/// that verifies, and a record batch's (or a dictionary's) buffers must lie inside the body
/// that came with it. arrow-ipc slices the body by the header's offsets and panicked past its
/// end: an upload with a forged length came back as INTERNAL, "a bug".
pub(in crate::flight) fn unframed(d: &FlightData) -> Option<String> {
    use arrow::ipc::MessageHeader;
    if d.data_header.is_empty() {
        return None; // app_metadata alone
    }
    let message = match arrow::ipc::root_as_message(&d.data_header) {
        Ok(m) => m,
        Err(e) => return Some(format!("an IPC message header that does not verify: {e}")),
    };
    let batch = match message.header_type() {
        MessageHeader::RecordBatch => message.header_as_record_batch(),
        MessageHeader::DictionaryBatch => message.header_as_dictionary_batch()?.data(),
        _ => None,
    };
    let body = d.data_body.len() as u64;
    for buffer in batch?.buffers()? {
        let (offset, length) = (buffer.offset(), buffer.length());
        let end = u64::try_from(offset)
            .ok()
            .zip(u64::try_from(length).ok())
            .and_then(|(o, l)| o.checked_add(l));
        if end.is_none_or(|end| end > body) {
            return Some(format!(
                "a record batch whose header puts a buffer of {length} bytes at {offset}, past the {body} bytes of body that came"
            ));
        }
    }
    None
}

/// Read messages until the schema arrives (it must come before any batch).
pub(super) async fn read_schema(decoder: &mut Guarded) -> Result<SchemaRef> {
    schema_if_any(decoder)
        .await?
        .ok_or_else(|| Error::invalid("DoPut ended before sending a schema"))
}

/// Read messages until the schema arrives; `None` if the upload ends first (it sent no data).
pub(crate) async fn schema_if_any(decoder: &mut Guarded) -> Result<Option<SchemaRef>> {
    while let Some(item) = decoder.next().await {
        let item = item.map_err(|e| Error::invalid(format!("bad Flight data: {e}")))?;
        match item.payload {
            DecodedPayload::Schema(schema) => return Ok(Some(schema)),
            DecodedPayload::None => continue,
            DecodedPayload::RecordBatch(_) => {
                return Err(Error::invalid(
                    "DoPut sent a record batch before its schema",
                ));
            }
        }
    }
    Ok(None)
}
