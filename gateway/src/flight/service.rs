//! `FlightService`, implemented directly (arrow-flight's Flight SQL service answers ListFlights
//! and GetSchema with "unimplemented", so it cannot be the whole server).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use futures::stream::BoxStream;
use futures::{Future, StreamExt, TryStreamExt};
use mover_proto::{END_OF_UPLOAD, MOVE_ACTION, Move, Progress, Read, SNIFF_ACTION};
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::names::{prefix_from_criteria, read_from_descriptor, read_path, write_from_descriptor};
use super::status;
use crate::auth::{Auth, Caller, Right};
use crate::catalog::Catalog;
use crate::connectors::{DatasetInfo, WriteReport};
use crate::error::{Error, ErrorKind, Result};
use crate::moves;
use crate::peers::Peers;
use crate::transfer::{self, Meter};

/// Encoded FlightData messages stay near this size, well under any client's limit.
const FLIGHT_DATA_BYTES: usize = 2 * 1024 * 1024;
/// How often a running DoPut or move reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

type Stream<T> = BoxStream<'static, Result<T, Status>>;

/// How the service paces its streams.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Batches buffered between a source and a sink.
    pub in_flight: usize,
    /// An upload silent for this long is abandoned and rolled back.
    pub put_idle_timeout: Duration,
    /// A download silent for this long gets an empty batch.
    pub keep_alive: Duration,
}

impl Limits {
    pub fn from_config(server: &crate::config::ServerConfig) -> Self {
        Self {
            in_flight: server.in_flight_batches,
            put_idle_timeout: Duration::from_secs(server.put_idle_timeout_seconds),
            keep_alive: Duration::from_secs(server.keep_alive_seconds),
        }
    }
}

pub struct MoverService {
    catalog: Catalog,
    limits: Limits,
    auth: Arc<Auth>,
    peers: Peers,
}

impl MoverService {
    pub fn new(catalog: Catalog, limits: Limits, auth: Arc<Auth>, peers: Peers) -> Self {
        Self {
            catalog,
            limits,
            auth,
            peers,
        }
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.auth
            .identify(request.metadata(), request.peer_certs())
            .map_err(status)
    }

    fn check_read(&self, caller: &Caller, read: &Read) -> Result<(), Status> {
        let (right, name) = read_right(read)?;
        self.auth.check(caller, right, &name).map_err(status)
    }

    /// A caller may have this gateway pull from a peer only what its rules give it there, as
    /// `@peer/name`: else anyone who may write here could read whatever the peer lets this
    /// gateway read (the confused deputy).
    fn check_pull(&self, caller: &Caller, peer: &str, read: &Read) -> Result<(), Status> {
        let (right, name) = read_right(read)?;
        self.auth
            .check(caller, right, &format!("@{peer}/{name}"))
            .map_err(status)
    }

    fn check_write(&self, caller: &Caller, write: &mover_proto::Write) -> Result<(), Status> {
        let name = write
            .path
            .as_ref()
            .map(|p| p.parts.join("/"))
            .unwrap_or_default();
        self.auth.check(caller, Right::Write, &name).map_err(status)
    }

    fn slot(&self, caller: &Caller) -> Result<Option<OwnedSemaphorePermit>, Status> {
        self.auth.stream_slot(caller).map_err(status)
    }
}

/// A FlightInfo with one endpoint per ticket; a single endpoint's rows come in order.
fn flight_info(
    descriptor: FlightDescriptor,
    tickets: Vec<Vec<u8>>,
    info: &DatasetInfo,
) -> Result<FlightInfo> {
    let ordered = tickets.len() == 1;
    let mut out = FlightInfo::new()
        .try_with_schema(&info.schema)?
        .with_descriptor(descriptor)
        .with_ordered(ordered);
    for ticket in tickets {
        out = out.with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)));
    }
    if let Some(n) = info.total_records {
        out = out.with_total_records(n as i64);
    }
    if let Some(n) = info.total_bytes {
        out = out.with_total_bytes(n as i64);
    }
    Ok(out)
}

/// The right a read needs, and the name it is checked on.
fn read_right(read: &Read) -> Result<(Right, String), Status> {
    match &read.what {
        Some(mover_proto::read::What::Path(p)) => Ok((Right::Read, p.parts.join("/"))),
        Some(mover_proto::read::What::Query(q)) => Ok((Right::Query, q.database.clone())),
        None => Err(Status::invalid_argument(
            "the read names neither a path nor a query",
        )),
    }
}

fn flight_error(e: Error) -> FlightError {
    FlightError::Tonic(Box::new(status(e)))
}

/// Run `work` while reporting `meter`'s progress every second on the returned stream, then the
/// final report (or the error). If the receiver goes away, `work` is dropped: cancelled.
fn with_progress<W>(meter: Arc<Meter>, work: W) -> ReceiverStream<Result<Progress, Status>>
where
    W: Future<Output = Result<WriteReport>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        tokio::pin!(work);
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        ticker.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                result = &mut work => {
                    let last = result.map(|report| {
                        let mut p = meter.progress();
                        p.rows_committed = report.rows_committed;
                        p.notes = report.notes;
                        p.done = true;
                        p
                    });
                    let _ = tx.send(last.map_err(status)).await;
                    return;
                }
                _ = tx.closed() => {
                    tracing::info!("the client went away; cancelling");
                    return; // drops `work`: the sink rolls back
                }
                _ = ticker.tick() => {
                    // A closed channel is noticed by the branch above on the next turn.
                    let _ = tx.send(Ok(meter.progress())).await;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

#[tonic::async_trait]
impl FlightService for MoverService {
    type HandshakeStream = Stream<HandshakeResponse>;
    type ListFlightsStream = Stream<FlightInfo>;
    type DoGetStream = Stream<FlightData>;
    type DoPutStream = Stream<PutResult>;
    type DoExchangeStream = Stream<FlightData>;
    type DoActionStream = Stream<arrow_flight::Result>;
    type ListActionsStream = Stream<ActionType>;

    /// Basic credentials in the `authorization` header; the token comes back both as a
    /// `authorization: Bearer` header (what pyarrow and ADBC read) and as the payload.
    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        let token = self.auth.login(request.metadata()).map_err(status)?;
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("token is not a header value"))?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response = Response::new(futures::stream::once(async { Ok(reply) }).boxed());
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let caller = self.caller(&request)?;
        let prefix = prefix_from_criteria(&request.get_ref().expression).map_err(status)?;
        let listing = self.catalog.list(&prefix).await;
        // Only what the caller may read: a listing never shows what exists elsewhere, nor
        // that a source it may not see has failed.
        let mut infos: Vec<Result<FlightInfo, Status>> = listing
            .found
            .into_iter()
            .filter(|l| self.auth.may_list(&caller, &l.path.join("/")))
            .map(|l| {
                let descriptor = FlightDescriptor::new_path(l.path.clone());
                let ticket = self.auth.issue_ticket(&read_path(l.path), &caller);
                flight_info(descriptor, vec![ticket], &l.info).map_err(status)
            })
            .collect();
        let failed: Vec<Error> = listing
            .failed
            .into_iter()
            .filter(|(name, _)| self.auth.may_list(&caller, &format!("{name}/")))
            .map(|(_, e)| e)
            .collect();
        // What could be listed comes first; the stream then ends with an error naming every
        // source that could not be (a client sees both, as `ls` prints what it can).
        if let Some(first) = failed.first() {
            let messages: Vec<&str> = failed.iter().map(|e| e.message.as_str()).collect();
            let message = format!("could not list everything: {}", messages.join("; "));
            infos.push(Err(status(Error::new(first.kind, message))));
        }
        Ok(Response::new(futures::stream::iter(infos).boxed()))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let descriptor = request.into_inner();
        let read = read_from_descriptor(&descriptor).map_err(status)?;
        self.check_read(&caller, &read)?;
        let info = self.catalog.describe(&read).await.map_err(status)?;
        let tickets = self
            .catalog
            .partitions(&read)
            .await
            .map_err(status)?
            .iter()
            .map(|part| self.auth.issue_ticket(part, &caller))
            .collect();
        let info = flight_info(descriptor, tickets, &info).map_err(status)?;
        Ok(Response::new(info))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented(
            "PollFlightInfo: every dataset here is ready at once; call GetFlightInfo",
        ))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let caller = self.caller(&request)?;
        let read = read_from_descriptor(request.get_ref()).map_err(status)?;
        self.check_read(&caller, &read)?;
        let info = self.catalog.describe(&read).await.map_err(status)?;
        let result = SchemaAsIpc::new(&info.schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let read = self
            .auth
            .redeem_ticket(&request.get_ref().ticket, &caller)
            .map_err(status)?;
        // The rules may have changed since the ticket was issued.
        self.check_read(&caller, &read)?;
        let slot = self.slot(&caller)?;
        let (schema, batches) = self.catalog.open_read(&read).await.map_err(status)?;
        let batches = transfer::bounded(batches, self.limits.in_flight);
        let batches = transfer::keep_alive(batches, schema.clone(), self.limits.keep_alive)
            .map_err(flight_error);
        let data = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_max_flight_data_size(FLIGHT_DATA_BYTES)
            .build(batches)
            .map_err(Status::from)
            .boxed();
        let guard = ReadGuard {
            _slot: slot,
            principal: caller.name().to_string(),
            ended: false,
        };
        let data = futures::stream::unfold((data, guard), |(mut data, mut guard)| async move {
            match data.next().await {
                Some(item) => Some((item, (data, guard))),
                None => {
                    guard.finish();
                    None
                }
            }
        });
        Ok(Response::new(data.boxed()))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let caller = self.caller(&request)?;
        let mut input = request.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("DoPut sent no messages"))?;
        let descriptor = first.flight_descriptor.clone().ok_or_else(|| {
            Status::invalid_argument("the first DoPut message must carry the target's descriptor")
        })?;
        let write = write_from_descriptor(&descriptor).map_err(status)?;
        self.check_write(&caller, &write)?;
        let slot = self.slot(&caller)?;
        let upload = Upload::default();
        let idle = self.limits.put_idle_timeout;
        let input = tokio_stream::StreamExt::timeout(input, idle).map(move |item| {
            item.unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "the client sent nothing for {}s",
                    idle.as_secs()
                )))
            })
        });
        let data = upload.messages(futures::stream::once(async { Ok(first) }).chain(input));
        let mut decoder = FlightDataDecoder::new(data);
        let schema = read_schema(&mut decoder).await.map_err(status)?;
        let batches = upload.batches(decoder, write.end_marker);
        let meter = Arc::new(Meter::default());
        let batches = meter.metered(batches);
        let catalog = self.catalog.clone();
        let work = async move {
            let _slot = slot;
            catalog.write(&write, schema, batches).await
        };
        let results = with_progress(meter, work).map_ok(|p| PutResult {
            app_metadata: p.encode_to_vec().into(),
        });
        Ok(Response::new(results.boxed()))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented(
            "DoExchange: use DoGet to read, DoPut to write, or the move action",
        ))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let caller = self.caller(&request)?;
        let action = request.into_inner();
        if action.r#type == SNIFF_ACTION {
            let read = Read::decode(action.body).map_err(|e| {
                Status::invalid_argument(format!("the sniff body is not a mover.v1.Read: {e}"))
            })?;
            self.check_read(&caller, &read)?;
            let hints = self.catalog.sniff(&read).await.map_err(status)?;
            let body = serde_json::to_vec(&hints).expect("JSON");
            let result = arrow_flight::Result { body: body.into() };
            return Ok(Response::new(futures::stream::iter([Ok(result)]).boxed()));
        }
        if action.r#type != MOVE_ACTION {
            return Err(Status::invalid_argument(format!(
                "unknown action {:?}; ListActions tells what this gateway does",
                action.r#type
            )));
        }
        let mv = Move::decode(action.body).map_err(|e| {
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
            url => Some(self.peers.find(url).map_err(status)?.clone()),
        };
        match &peer {
            None => self.check_read(&caller, source)?,
            Some(peer) => self.check_pull(&caller, &peer.name, source)?,
        }
        self.check_write(&caller, target)?;
        if source.part.is_some() {
            return Err(Status::invalid_argument(
                "a move's source may not name a part; parts come in GetFlightInfo's tickets",
            ));
        }
        let slot = self.slot(&caller)?;
        if let Some(peer) = &peer {
            tracing::info!(principal = %caller.name(), peer = %peer.name, "pulling from a peer");
        }

        let meter = Arc::new(Meter::default());
        let (catalog, peers) = (self.catalog.clone(), self.peers.clone());
        let in_flight = self.limits.in_flight;
        let work_meter = meter.clone();
        let (source, target) = (source.clone(), target.clone());
        let work = async move {
            let _slot = slot;
            let peer = peer.as_ref();
            moves::run(
                &catalog, &peers, peer, &source, &target, work_meter, in_flight,
            )
            .await
        };
        let results = with_progress(meter, work).map_ok(|p| arrow_flight::Result {
            body: p.encode_to_vec().into(),
        });
        Ok(Response::new(results.boxed()))
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        self.caller(&request)?;
        let actions = vec![
            Ok(ActionType {
                r#type: SNIFF_ACTION.into(),
                description: "Tell a file's records hints from its first bytes; the body is a \
                              mover.v1.Read naming the file, the result the 13 hints as JSON"
                    .into(),
            }),
            Ok(ActionType {
                r#type: MOVE_ACTION.into(),
                description: "Move a source (on this gateway, or on a peer it pulls from) to a \
                          target on this gateway; the body is a mover.v1.Move, each result a \
                          mover.v1.Progress (the last has done set)"
                    .into(),
            }),
        ];
        Ok(Response::new(futures::stream::iter(actions).boxed()))
    }
}

/// Held by a DoGet's stream: its slot among the caller's streams, and a note in the log when
/// the stream is dropped before its end (the reader went away, and the read was cancelled).
struct ReadGuard {
    _slot: Option<OwnedSemaphorePermit>,
    principal: String,
    ended: bool,
}

impl ReadGuard {
    fn finish(&mut self) {
        self.ended = true;
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        if !self.ended {
            tracing::info!(principal = %self.principal, "a DoGet ended early: the reader went away, the read is cancelled");
        }
    }
}

/// What a DoPut's raw messages said besides data: whether the end-of-upload message came.
#[derive(Clone, Default)]
struct Upload {
    ended: Arc<AtomicBool>,
}

impl Upload {
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
                Ok(d) => Some(Ok(d)),
                Err(s) => Some(Err(FlightError::Tonic(Box::new(s)))),
            };
            futures::future::ready(out)
        })
    }

    /// The record batches, ending in an error when the upload was cut: by a broken connection,
    /// or (with `end_marker`) by an end without the end-of-upload message. The sink then rolls
    /// back.
    fn batches(
        &self,
        decoder: FlightDataDecoder,
        end_marker: bool,
    ) -> crate::connectors::BatchStream {
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

/// Read messages until the schema arrives (it must come before any batch).
async fn read_schema(decoder: &mut FlightDataDecoder) -> Result<SchemaRef> {
    while let Some(item) = decoder.next().await {
        let item = item.map_err(|e| Error::invalid(format!("bad Flight data: {e}")))?;
        match item.payload {
            DecodedPayload::Schema(schema) => return Ok(schema),
            DecodedPayload::None => continue,
            DecodedPayload::RecordBatch(_) => {
                return Err(Error::invalid(
                    "DoPut sent a record batch before its schema",
                ));
            }
        }
    }
    Err(Error::invalid("DoPut ended before sending a schema"))
}
