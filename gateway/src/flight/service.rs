//! `FlightService`, implemented directly (arrow-flight's Flight SQL service answers ListFlights
//! and GetSchema with "unimplemented", so it cannot be the whole server).

use std::sync::Arc;
use std::time::Duration;

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use mover_proto::Read;
use prost::Message;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::actions;
use super::moving_now::MovingNow;
use super::names::{
    part_from_descriptor, prefix_from_criteria, read_from_descriptor, read_path,
    write_from_descriptor,
};
use super::progress::{Done, with_progress};
use super::put::{Upload, read_schema};
use super::running::Running;
use super::{sql, status};
use crate::auth::{Auth, Caller, Right};
use crate::catalog::Catalog;
use crate::connectors::{DatasetInfo, WriteReport};
use crate::error::{Error, Result};
use crate::metrics::Watch;
use crate::peers::Peers;
use crate::transfer::{self, Meter};
use crate::writes::Writes;

/// Encoded FlightData messages stay near this size, well under any client's limit.
const FLIGHT_DATA_BYTES: usize = 2 * 1024 * 1024;

pub(super) type Stream<T> = BoxStream<'static, Result<T, Status>>;

/// How the service paces its streams.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Batches buffered between a source and a sink.
    pub in_flight: usize,
    /// An upload silent for this long is abandoned and rolled back.
    pub put_idle_timeout: Duration,
    /// A download silent for this long gets an empty batch.
    pub keep_alive: Duration,
    /// Rows per batch the gateway's readers make; an upload's larger batches are cut so.
    pub batch_rows: usize,
}

impl Limits {
    pub fn from_config(server: &crate::config::ServerConfig) -> Self {
        Self {
            in_flight: server.in_flight_batches,
            put_idle_timeout: Duration::from_secs(server.put_idle_timeout_seconds),
            keep_alive: Duration::from_secs(server.keep_alive_seconds),
            batch_rows: server.batch_rows,
        }
    }
}

pub struct MoverService {
    pub(super) catalog: Catalog,
    pub(super) limits: Limits,
    pub(super) auth: Arc<Auth>,
    pub(super) peers: Peers,
    pub(super) running: Running,
    pub(super) moving: MovingNow,
    pub(super) writes: Writes,
    /// Cancelled when the gateway stops: calls still running end, rolled back.
    pub(super) stopping: CancellationToken,
}

impl MoverService {
    /// The DoGet stream of a redeemed ticket's read, its schema as `reshape` makes it (each
    /// batch fitted to it, a column cast where its type changed): rights checked again, a
    /// slot held, tracked for CancelFlightInfo.
    pub(super) async fn serve_read(
        &self,
        caller: &Caller,
        ticket: &[u8],
        read: &Read,
        reshape: impl FnOnce(arrow::datatypes::SchemaRef) -> arrow::datatypes::SchemaRef,
    ) -> Result<Stream<FlightData>, Status> {
        // The rules may have changed since the ticket was issued.
        self.check_read(caller, read)?;
        let slot = self.slot(caller)?;
        let (schema, batches) = self.catalog.open_read(read).await.map_err(status)?;
        let meter = Arc::new(Meter::default());
        let batches = meter.metered(batches);
        let watch = Watch::start(
            "do_get",
            self.catalog.kind_of_read(read),
            "client".into(),
            meter,
        );
        let schema = reshape(schema);
        let batches = {
            let schema = schema.clone();
            batches
                .map(move |batch| transfer::fit(batch?, &schema))
                .boxed()
        };
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
            watch,
        };
        let data = futures::stream::unfold((data, guard), |(mut data, mut guard)| async move {
            match data.next().await {
                Some(item) => {
                    if item.is_err() {
                        guard.watch.ended(false);
                    }
                    Some((item, (data, guard)))
                }
                None => {
                    guard.finish();
                    None
                }
            }
        });
        Ok(self
            .running
            .track(ticket, caller.name(), self.stopping.clone(), data.boxed()))
    }

    /// The write of a DoPut's `data` (its first message carries the descriptor) as `write`
    /// says: the right checked, a slot held, the schema read. The work it returns commits when
    /// run to its end and rolls back if it fails or is dropped; the meter counts what arrived.
    pub(super) async fn start_put(
        &self,
        caller: &Caller,
        write: mover_proto::Write,
        data: Stream<FlightData>,
    ) -> Result<(Arc<Meter>, BoxFuture<'static, Result<WriteReport>>), Status> {
        self.check_write(caller, &write)?;
        let catalog = self.catalog.clone();
        let end_marker = write.end_marker;
        self.start_upload(caller, data, end_marker, move |schema, batches| {
            async move { catalog.write(&write, schema, batches).await }.boxed()
        })
        .await
    }

    /// A DoPut of one part of a write in parts: staged, not committed; the work's result is
    /// the rows staged.
    pub(super) async fn start_part(
        &self,
        caller: &Caller,
        part: mover_proto::WritePart,
        data: Stream<FlightData>,
    ) -> Result<(Arc<Meter>, BoxFuture<'static, Result<u64>>), Status> {
        let principal = caller.name().to_string();
        let target = self
            .writes
            .target(&principal, &part.write_id)
            .map_err(status)?;
        // The rules may have changed since the write began.
        self.check_write(caller, &target)?;
        let writes = self.writes.clone();
        self.start_upload(caller, data, part.end_marker, move |schema, batches| {
            async move {
                let key = mover_proto::PartId {
                    partition: part.partition,
                    attempt: part.attempt,
                };
                writes
                    .stage(&principal, &part.write_id, key, schema, batches)
                    .await
            }
            .boxed()
        })
        .await
    }

    /// An upload's framing, once its rights are checked: a slot held, the schema read, the
    /// batches cut to `batch_rows` and metered into what `sink` makes of them.
    async fn start_upload<T>(
        &self,
        caller: &Caller,
        data: Stream<FlightData>,
        end_marker: bool,
        sink: impl FnOnce(
            arrow::datatypes::SchemaRef,
            transfer::BatchStream,
        ) -> BoxFuture<'static, Result<T>>,
    ) -> Result<(Arc<Meter>, BoxFuture<'static, Result<T>>), Status>
    where
        T: Send + 'static,
    {
        let slot = self.slot(caller)?;
        let upload = Upload::default();
        let mut decoder = upload.decoder(data);
        let schema = read_schema(&mut decoder).await.map_err(status)?;
        let batches = upload.batches(decoder, end_marker);
        let batches = transfer::rechunked(batches, self.limits.batch_rows);
        let meter = Arc::new(Meter::default());
        let batches = meter.metered(batches);
        let writing = sink(schema, batches);
        let work = async move {
            let _slot = slot;
            writing.await
        };
        Ok((meter, work.boxed()))
    }

    pub fn new(
        catalog: Catalog,
        limits: Limits,
        auth: Arc<Auth>,
        peers: Peers,
        writes: Writes,
        stopping: CancellationToken,
    ) -> Self {
        Self {
            catalog,
            limits,
            auth,
            peers,
            running: Running::default(),
            moving: MovingNow::default(),
            stopping,
            writes,
        }
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.auth
            .identify(request.metadata(), request.peer_certs())
            .map_err(status)
    }

    pub(super) fn check_read(&self, caller: &Caller, read: &Read) -> Result<(), Status> {
        let (right, name) = read_right(read)?;
        self.auth.check(caller, right, &name).map_err(status)
    }

    /// A caller may have this gateway pull from a peer only what its rules give it there, as
    /// `@peer/name`: else anyone who may write here could read whatever the peer lets this
    /// gateway read (the confused deputy).
    pub(super) fn check_pull(
        &self,
        caller: &Caller,
        peer: &str,
        read: &Read,
    ) -> Result<(), Status> {
        let (right, name) = read_right(read)?;
        self.auth
            .check(caller, right, &format!("@{peer}/{name}"))
            .map_err(status)
    }

    pub(super) fn check_write(
        &self,
        caller: &Caller,
        write: &mover_proto::Write,
    ) -> Result<(), Status> {
        let name = write
            .path
            .as_ref()
            .map(|p| p.parts.join("/"))
            .unwrap_or_default();
        self.auth.check(caller, Right::Write, &name).map_err(status)
    }

    /// SQL that changes a database needs `write` on all of it: it may touch any table.
    pub(super) fn check_sql_write(&self, caller: &Caller, database: &str) -> Result<(), Status> {
        self.auth
            .check(caller, Right::Write, &format!("{database}/"))
            .map_err(|e| {
                let why = format!(
                    "{} (SQL that changes a database needs write on all of it, {database}/**)",
                    e.message
                );
                status(Error::new(e.kind, why))
            })
    }

    pub(super) fn slot(&self, caller: &Caller) -> Result<Option<OwnedSemaphorePermit>, Status> {
        self.auth.stream_slot(caller).map_err(status)
    }
}

/// A FlightInfo with one endpoint per ticket (with the second it expires); a single
/// endpoint's rows come in order.
fn flight_info(
    descriptor: FlightDescriptor,
    tickets: Vec<(Vec<u8>, u64)>,
    info: &DatasetInfo,
) -> Result<FlightInfo> {
    let ordered = tickets.len() == 1;
    let mut out = FlightInfo::new()
        .try_with_schema(&info.schema)?
        .with_descriptor(descriptor)
        .with_ordered(ordered);
    for (ticket, expires_at) in tickets {
        out = out.with_endpoint(endpoint(ticket, expires_at));
    }
    if let Some(n) = info.total_records {
        out = out.with_total_records(n as i64);
    }
    if let Some(n) = info.total_bytes {
        out = out.with_total_bytes(n as i64);
    }
    Ok(out)
}

/// An endpoint of this gateway: its ticket, redeemable (again and again, for the same rows)
/// until `expires_at` (seconds since the Unix epoch).
pub(super) fn endpoint(ticket: Vec<u8>, expires_at: u64) -> FlightEndpoint {
    let expiration = prost_types::Timestamp {
        seconds: i64::try_from(expires_at).unwrap_or(i64::MAX),
        nanos: 0,
    };
    FlightEndpoint::new()
        .with_ticket(Ticket::new(ticket))
        .with_expiration_time(expiration)
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
                let ticket = self.auth.issue_ticket_until(&read_path(l.path), &caller);
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
        let headers = request.metadata().clone();
        let descriptor = request.into_inner();
        if let Some(command) = sql::command(&descriptor.cmd) {
            let run = sql::Run::Yes;
            let info = sql::flight_info(self, &caller, &headers, descriptor, command?, run).await?;
            return Ok(Response::new(info));
        }
        let read = read_from_descriptor(&descriptor).map_err(status)?;
        self.check_read(&caller, &read)?;
        let info = self.catalog.describe(&read).await.map_err(status)?;
        let tickets = self
            .catalog
            .partitions(&read)
            .await
            .map_err(status)?
            .iter()
            .map(|part| self.auth.issue_ticket_until(part, &caller))
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
        let schema = match sql::command(&request.get_ref().cmd) {
            Some(command) => {
                let headers = request.metadata().clone();
                let descriptor = request.into_inner();
                sql::schema(self, &caller, &headers, descriptor, command?).await?
            }
            None => {
                let read = read_from_descriptor(request.get_ref()).map_err(status)?;
                self.check_read(&caller, &read)?;
                self.catalog.describe(&read).await.map_err(status)?.schema
            }
        };
        let result = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let ticket = &request.get_ref().ticket;
        // A Flight SQL ticket is a command (a statement's holds a signed read); every other
        // ticket is signed.
        if let Some(command) = sql::command(ticket) {
            return Ok(Response::new(
                sql::do_get(self, &caller, ticket, command?).await?,
            ));
        }
        let read = self.auth.redeem_ticket(ticket, &caller).map_err(status)?;
        let data = self
            .serve_read(&caller, ticket, &read, |schema| schema)
            .await?;
        Ok(Response::new(data))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let caller = self.caller(&request)?;
        let headers = request.metadata().clone();
        let mut input = request.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("DoPut sent no messages"))?;
        let descriptor = first.flight_descriptor.clone().ok_or_else(|| {
            Status::invalid_argument("the first DoPut message must carry the target's descriptor")
        })?;
        let idle = self.limits.put_idle_timeout;
        let input = tokio_stream::StreamExt::timeout(input, idle).map(move |item| {
            item.unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "the client sent nothing for {}s",
                    idle.as_secs()
                )))
            })
        });
        if let Some(command) = sql::command(&descriptor.cmd) {
            let data = futures::stream::once(async { Ok(first) }).chain(input);
            let results = sql::do_put(self, &caller, &headers, command?, data.boxed()).await?;
            return Ok(Response::new(results));
        }
        let data = futures::stream::once(async { Ok(first) })
            .chain(input)
            .boxed();
        let progress = match part_from_descriptor(&descriptor).map_err(status)? {
            Some(part) => {
                let target = self.writes.target(caller.name(), &part.write_id);
                let kind =
                    target.map_or_else(|_| "unknown".into(), |t| self.catalog.kind_of_write(&t));
                let (meter, work) = self.start_part(&caller, part, data).await?;
                let watch = Watch::start("part", "client".into(), kind, meter);
                let work = futures::TryFutureExt::map_ok(work, Done::Staged);
                with_progress("this part".into(), watch, self.stopping.clone(), work)
            }
            None => {
                let write = write_from_descriptor(&descriptor).map_err(status)?;
                let kind = self.catalog.kind_of_write(&write);
                let (meter, work) = self.start_put(&caller, write, data).await?;
                let watch = Watch::start("do_put", "client".into(), kind, meter);
                with_progress("this upload".into(), watch, self.stopping.clone(), work)
            }
        };
        let results = progress.map_ok(|p| PutResult {
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
        let headers = request.metadata().clone();
        let action = request.into_inner();
        if let Some(answered) =
            sql::do_action(self, &caller, &headers, &action.r#type, &action.body).await
        {
            let answer = answered?;
            let mut response = Response::new(answer.results);
            if let Some(cookie) = answer.set_cookie {
                response.metadata_mut().insert("set-cookie", cookie);
            }
            return Ok(response);
        }
        let stream = actions::run(self, &caller, action).await?;
        Ok(Response::new(stream))
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        self.caller(&request)?;
        let listed = actions::list().into_iter().map(Ok);
        Ok(Response::new(futures::stream::iter(listed).boxed()))
    }
}

/// Held by a DoGet's stream: its slot among the caller's streams, and a note in the log when
/// the stream is dropped before its end (the reader went away, and the read was cancelled).
struct ReadGuard {
    _slot: Option<OwnedSemaphorePermit>,
    principal: String,
    ended: bool,
    watch: Watch,
}

impl ReadGuard {
    fn finish(&mut self) {
        self.ended = true;
        if self.watch.outcome_open() {
            self.watch.ended(true);
        }
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        if !self.ended {
            tracing::info!(principal = %self.principal, "a DoGet ended early: the reader went away, the read is cancelled");
        }
    }
}
