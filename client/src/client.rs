//! A Flight client for any Records Mover gateway.

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_flight::{Action, FlightClient, FlightData, FlightDescriptor, FlightInfo};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use mover_proto::{
    ABORT_WRITE_ACTION, AbortWrite, BEGIN_WRITE_ACTION, BeginWrite, CANCEL_MOVE_ACTION,
    COMMIT_WRITE_ACTION, Command, CommitWrite, END_OF_UPLOAD, LIST_MOVES_ACTION, MOVE_ACTION, Move,
    PartId, Progress, Read, Write, WritePart, WriteSession, command::Kind,
};
use prost::Message;
use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Default gateway: the embedded default's loopback address.
pub const DEFAULT_GATEWAY: &str = "grpc://127.0.0.1:50051";
/// The largest gRPC message sent or accepted, both ways, unless told otherwise: tonic's 4 MiB
/// is too small for wide batches; 64 MiB is bounded but roomy. The gateway's
/// `server.max_message_bytes` defaults to this too.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Parts of a write in parts sent at once by [`Client::copy_from`].
pub const PARTS_AT_ONCE: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the gateway at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{}: {}{}", code_name(.0.code()), .0.message(), transport_detail(.0))]
    Status(tonic::Status),
    #[error("{0}")]
    Invalid(String),
    #[error("bad data from the gateway: {0}")]
    Protocol(String),
    #[error("the source failed: {0}")]
    Source(Box<ClientError>),
}

/// What lies under a transport failure (a TLS alert, a refused certificate), with a hint
/// saying which certificate to look at.
fn transport_detail(status: &tonic::Status) -> String {
    let Some(source) = std::error::Error::source(status) else {
        return String::new();
    };
    let chain = source_chain(source);
    // Only transport-level failures carry a source. With TLS 1.3 the gateway refuses a client
    // certificate after the handshake, so the client sees the alert, or (racing it) just a
    // closed connection.
    let hint = if chain.contains("invalid peer certificate") {
        " (the gateway's certificate did not verify against --ca)"
    } else if chain.contains("fatal alert") {
        " (the gateway refused this client's TLS handshake: check --cert and --key; the certificate must be signed by the gateway's client CA and valid now)"
    } else {
        " (the connection failed: if the gateway requires client certificates, give --cert and --key, signed by its client CA and valid now)"
    };
    format!(": {chain}{hint}")
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        NotFound => "not found",
        InvalidArgument => "invalid",
        AlreadyExists => "already exists",
        FailedPrecondition => "failed precondition",
        PermissionDenied => "permission denied",
        Unauthenticated => "unauthenticated",
        Unimplemented => "not supported",
        Cancelled => "cancelled",
        Unavailable => "unavailable",
        DeadlineExceeded => "deadline exceeded",
        _ => "gateway error",
    }
}

impl From<FlightError> for ClientError {
    fn from(e: FlightError) -> Self {
        match e {
            FlightError::Tonic(status) => ClientError::Status(*status),
            other => ClientError::Protocol(other.to_string()),
        }
    }
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Status(s)
    }
}

impl ClientError {
    /// The gRPC code, when the gateway answered with one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Status(s) => Some(s.code()),
            ClientError::Source(e) => e.code(),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

pub struct Client {
    flight: FlightClient,
}

/// How to reach a gateway: TLS material and credentials. All optional.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// CA certificate (PEM) that the gateway's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM), for gateways that require one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A bearer token from an earlier login.
    pub token: Option<String>,
    /// Log in with Handshake as this user and password.
    pub login: Option<(String, String)>,
    /// How long opening the connection (TCP and TLS) may take; unbounded when not given.
    pub connect_timeout: Option<std::time::Duration>,
    /// The largest gRPC message, both ways (default [`DEFAULT_MAX_MESSAGE_BYTES`]).
    pub max_message_bytes: Option<usize>,
}

/// `grpc://`, `grpc+tcp://`, `http://` (plaintext) or `grpc+tls://`, `https://` (TLS), as tonic
/// wants it, and whether it is TLS.
fn endpoint_url(url: &str) -> Result<(String, bool)> {
    if let Some(rest) = url
        .strip_prefix("grpc://")
        .or_else(|| url.strip_prefix("grpc+tcp://"))
        .or_else(|| url.strip_prefix("http://"))
    {
        return Ok((format!("http://{rest}"), false));
    }
    if let Some(rest) = url
        .strip_prefix("grpc+tls://")
        .or_else(|| url.strip_prefix("https://"))
    {
        return Ok((format!("https://{rest}"), true));
    }
    Err(ClientError::Invalid(format!(
        "{url:?} is not a gateway URL; write grpc+tls://host:port (or grpc://host:port on loopback)"
    )))
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        ClientError::Invalid(format!("cannot read the {what} {}: {e}", path.display()))
    })
}

impl Client {
    /// A plaintext connection with no credentials (a loopback gateway).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &Connect::default()).await
    }

    pub async fn connect_with(url: &str, how: &Connect) -> Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let (endpoint_url, tls) = endpoint_url(url)?;
        let mut endpoint = Endpoint::from_shared(endpoint_url)
            .map_err(|e| ClientError::Invalid(format!("{url}: {e}")))?;
        let wants_tls = how.ca.is_some() || how.cert.is_some();
        if wants_tls && !tls {
            return Err(ClientError::Invalid(format!(
                "{url} is plaintext, but TLS options were given; write grpc+tls://"
            )));
        }
        if let Some(limit) = how.connect_timeout {
            endpoint = endpoint.connect_timeout(limit);
        }
        if tls {
            let mut config = ClientTlsConfig::new();
            let ca = how.ca.as_ref().ok_or_else(|| {
                ClientError::Invalid(format!(
                    "{url}: give --ca, the CA certificate that signed the gateway's certificate"
                ))
            })?;
            config = config.ca_certificate(Certificate::from_pem(read_pem(ca, "CA certificate")?));
            match (&how.cert, &how.key) {
                (Some(cert), Some(key)) => {
                    config = config.identity(Identity::from_pem(
                        read_pem(cert, "client certificate")?,
                        read_pem(key, "client key")?,
                    ));
                }
                (None, None) => {}
                _ => {
                    return Err(ClientError::Invalid(
                        "give both a client certificate (--cert) and its key (--key)".into(),
                    ));
                }
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| ClientError::Invalid(format!("TLS: {}", source_chain(&e))))?;
        }
        let channel: Channel = endpoint.connect().await.map_err(|e| {
            let reason = source_chain(&e);
            let hint = if reason.contains("invalid peer certificate") {
                " (the gateway's certificate did not verify against --ca)"
            } else {
                ""
            };
            ClientError::Connect {
                url: url.to_string(),
                reason: format!("{reason}{hint}"),
            }
        })?;
        let inner = FlightServiceClient::new(channel)
            .max_decoding_message_size(how.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES))
            .max_encoding_message_size(how.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES));
        let mut client = Self {
            flight: FlightClient::new_from_inner(inner),
        };
        if let Some((user, password)) = &how.login {
            let token = client.login(user, password).await?;
            client.use_token(&token)?;
        } else if let Some(token) = &how.token {
            client.use_token(token)?;
        }
        Ok(client)
    }

    /// Another handle on the same connection, with the same credentials: for reading several
    /// endpoints at once.
    pub fn handle(&self) -> Client {
        let mut flight = FlightClient::new_from_inner(self.flight.inner().clone());
        *flight.metadata_mut() = self.flight.metadata().clone();
        Client { flight }
    }

    /// Handshake with Basic credentials; returns the bearer token.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<String> {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.flight
            .add_header("authorization", &format!("Basic {basic}"))
            .map_err(ClientError::from)?;
        let payload = self.flight.handshake(Vec::<u8>::new()).await?;
        String::from_utf8(payload.to_vec())
            .map_err(|_| ClientError::Protocol("the token is not text".into()))
    }

    /// Carry `token` on every later call.
    pub fn use_token(&mut self, token: &str) -> Result<()> {
        self.flight
            .add_header("authorization", &format!("Bearer {token}"))
            .map_err(ClientError::from)
    }

    /// Every dataset whose name starts with `prefix` ("" for all); an error if any source
    /// could not be listed.
    pub async fn list(&mut self, prefix: &str) -> Result<Vec<FlightInfo>> {
        match self.list_what_can_be(prefix).await? {
            (infos, None) => Ok(infos),
            (_, Some(e)) => Err(e),
        }
    }

    /// The same, keeping what was listed when some sources could not be: the gateway lists
    /// them first, then ends the stream with an error naming the sources that failed.
    pub async fn list_what_can_be(
        &mut self,
        prefix: &str,
    ) -> Result<(Vec<FlightInfo>, Option<ClientError>)> {
        let mut stream = self.flight.list_flights(prefix.as_bytes().to_vec()).await?;
        let mut infos = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => infos.push(info),
                Err(e) => return Ok((infos, Some(e.into()))),
            }
        }
        Ok((infos, None))
    }

    pub async fn info(&mut self, read: &Read) -> Result<FlightInfo> {
        Ok(self.flight.get_flight_info(descriptor(read)).await?)
    }

    /// Tell the gateway a FlightInfo is done with: running reads of its tickets stop, and what
    /// its endpoints hold (a Postgres read's snapshot) is released.
    pub async fn release(&mut self, info: FlightInfo) -> Result<()> {
        let request = arrow_flight::CancelFlightInfoRequest::new(info);
        self.flight.cancel_flight_info(request).await?;
        Ok(())
    }

    pub async fn schema(&mut self, read: &Read) -> Result<Schema> {
        Ok(self.flight.get_schema(descriptor(read)).await?)
    }

    /// Batches of a read, streamed from every endpoint of its FlightInfo in turn. The first
    /// endpoint is opened here, so a refusal is an error of this call.
    pub async fn read(&mut self, read: &Read) -> Result<Batches> {
        let info = self.info(read).await?;
        let schema = Arc::new(
            info.clone()
                .try_decode_schema()
                .map_err(|e| ClientError::Protocol(format!("the FlightInfo's schema: {e}")))?,
        );
        let mut tickets = tickets(info)?.into_iter();
        let Some(first) = tickets.next() else {
            return Ok(Batches {
                schema,
                stream: futures::stream::empty().boxed(),
            });
        };
        let first = self.flight.do_get(first).await?;
        let (inner, metadata) = (self.flight.inner().clone(), self.flight.metadata().clone());
        let rest = futures::stream::iter(tickets)
            .then(move |ticket| {
                let mut client = FlightClient::new_from_inner(inner.clone());
                *client.metadata_mut() = metadata.clone();
                async move { client.do_get(ticket).await }
            })
            .try_flatten();
        Ok(Batches {
            schema,
            stream: first.chain(rest).boxed(),
        })
    }

    /// The batches of one ticket (an endpoint of a FlightInfo), as any Flight client reads it.
    pub async fn redeem(
        &mut self,
        ticket: arrow_flight::Ticket,
    ) -> Result<arrow_flight::decode::FlightRecordBatchStream> {
        Ok(self.flight.do_get(ticket).await?)
    }

    /// Write `batches` to `write`'s target; returns the gateway's final report.
    ///
    /// The upload ends with the end-of-upload message only if `batches` ended without error, so
    /// a failing source makes the gateway roll back rather than commit what it had.
    pub async fn put<S>(&mut self, write: &Write, schema: SchemaRef, batches: S) -> Result<Progress>
    where
        S: Stream<Item = std::result::Result<RecordBatch, FlightError>> + Send + 'static,
    {
        self.upload(write_descriptor(write), schema, batches).await
    }

    /// Send `batches` as `part` of the write in parts `write_id`: staged, not yet published;
    /// the report counts the rows staged.
    pub async fn put_part<S>(
        &mut self,
        write_id: &str,
        part: &PartId,
        schema: SchemaRef,
        batches: S,
    ) -> Result<Progress>
    where
        S: Stream<Item = std::result::Result<RecordBatch, FlightError>> + Send + 'static,
    {
        self.upload(part_descriptor(write_id, part), schema, batches)
            .await
    }

    async fn upload<S>(
        &mut self,
        descriptor: FlightDescriptor,
        schema: SchemaRef,
        batches: S,
    ) -> Result<Progress>
    where
        S: Stream<Item = std::result::Result<RecordBatch, FlightError>> + Send + 'static,
    {
        let failed = Arc::new(AtomicBool::new(false));
        let seen = failed.clone();
        let batches = batches.inspect(move |item| {
            if item.is_err() {
                seen.store(true, Ordering::SeqCst);
            }
        });
        let data = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_flight_descriptor(Some(descriptor))
            .build(batches)
            .chain(end_of_upload())
            .take_while(move |_| futures::future::ready(!failed.load(Ordering::SeqCst)));
        let results = self.flight.do_put(data).await?;
        last_progress(results.map(|r| r.map(|r| r.app_metadata)), |_| {}).await
    }

    /// Copy `source` from the gateway `from` to `write` on this gateway, the data passing
    /// through this process: for gateways that cannot reach each other. Flight data is
    /// forwarded as it arrives, never decoded. A source of several endpoints goes up as a
    /// write in parts, an endpoint a part at once, where the target publishes parts in place
    /// (a bucket prefix); else as one upload. Either way the target changes only if every
    /// endpoint arrived whole, and then at once.
    pub async fn copy_from(
        &mut self,
        from: &mut Client,
        source: &Read,
        write: &Write,
        on_progress: impl FnMut(&Progress),
    ) -> Result<Progress> {
        let info = from.info(source).await?;
        let tickets = tickets(info)?;
        if tickets.len() > 1 {
            let session = self.begin_write(write, 0).await?;
            if session.in_place {
                return self
                    .copy_in_parts(from, tickets, &session.write_id, on_progress)
                    .await;
            }
            // Here the commit would copy every part again: one stream is cheaper.
            self.abort_write(&session.write_id).await?;
        }
        self.forward(from, tickets, write_descriptor(write), on_progress)
            .await
    }

    /// Every endpoint of `tickets` as one upload under `descriptor`.
    async fn forward(
        &mut self,
        from: &mut Client,
        tickets: Vec<arrow_flight::Ticket>,
        descriptor: FlightDescriptor,
        on_progress: impl FnMut(&Progress),
    ) -> Result<Progress> {
        let (tx, rx) = futures::channel::mpsc::channel::<FlightData>(4);
        let forward = forward_endpoints(from, tickets, descriptor, tx);
        let put = async {
            let results = self.flight.do_put(rx.map(Ok)).await?;
            last_progress(results.map(|r| r.map(|r| r.app_metadata)), on_progress).await
        };
        // A source that failed cut the upload short (no end-of-upload message), so the target
        // rolled back; its own error is the one to report.
        match futures::join!(forward, put) {
            (Err(source), _) => Err(ClientError::Source(Box::new(source))),
            (Ok(()), put) => put,
        }
    }

    /// Each endpoint of `tickets` as part of the write `id`, up to [`PARTS_AT_ONCE`] at once,
    /// then the commit of every part; the first failure aborts the write.
    async fn copy_in_parts(
        &mut self,
        from: &Client,
        tickets: Vec<arrow_flight::Ticket>,
        id: &str,
        on_progress: impl FnMut(&Progress),
    ) -> Result<Progress> {
        let started = std::time::Instant::now();
        let n = tickets.len();
        let sent = std::sync::Mutex::new((vec![Progress::default(); n], on_progress));
        let report = |i: usize, p: &Progress| {
            let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
            let (parts, on_progress) = &mut *sent;
            parts[i] = p.clone();
            on_progress(&sum(parts, started));
        };
        let parts: Vec<PartId> = (0..n as u32)
            .map(|partition| PartId {
                partition,
                attempt: 0,
            })
            .collect();
        let uploads = futures::stream::iter(tickets.into_iter().zip(&parts).enumerate())
            .map(|(i, (ticket, part))| {
                let (mut to, mut from) = (self.handle(), from.handle());
                let descriptor = part_descriptor(id, part);
                let report = &report;
                async move {
                    to.forward(&mut from, vec![ticket], descriptor, |p| report(i, p))
                        .await
                }
            })
            .buffer_unordered(PARTS_AT_ONCE);
        let staged: Result<Vec<Progress>> = uploads.try_collect().await;
        if let Err(e) = staged {
            // Nothing is published; the gateway also drops the write at its expiry.
            if let Err(abort) = self.abort_write(id).await {
                tracing::warn!(error = %abort, "cannot abort the write in parts");
            }
            return Err(e);
        }
        let mut done = self.commit_write(id, parts).await?;
        let (parts, _) = sent.into_inner().unwrap_or_else(|e| e.into_inner());
        let read = sum(&parts, started);
        (done.rows_read, done.bytes_read, done.seconds) =
            (read.rows_read, read.bytes_read, read.seconds);
        Ok(done)
    }

    /// Open a write in parts into `write`'s target, for `ttl_seconds` (0: the gateway's
    /// default).
    pub async fn begin_write(&mut self, write: &Write, ttl_seconds: u32) -> Result<WriteSession> {
        let begin = BeginWrite {
            target: Some(write.clone()),
            ttl_seconds,
        };
        let body = self
            .one_result(BEGIN_WRITE_ACTION, begin.encode_to_vec())
            .await?;
        WriteSession::decode(body)
            .map_err(|e| ClientError::Protocol(format!("bad write session: {e}")))
    }

    /// Publish exactly `parts` of the write `id`; the final report.
    pub async fn commit_write(&mut self, id: &str, parts: Vec<PartId>) -> Result<Progress> {
        let commit = CommitWrite {
            write_id: id.into(),
            parts,
        };
        let body = self
            .one_result(COMMIT_WRITE_ACTION, commit.encode_to_vec())
            .await?;
        decode_progress(&body)
    }

    /// Drop every part of the write `id`.
    pub async fn abort_write(&mut self, id: &str) -> Result<()> {
        let abort = AbortWrite {
            write_id: id.into(),
        };
        self.no_result(ABORT_WRITE_ACTION, abort.encode_to_vec())
            .await
    }

    /// Run the action `name`, which answers nothing.
    async fn no_result(&mut self, name: &str, body: Vec<u8>) -> Result<()> {
        let mut results = self.flight.do_action(Action::new(name, body)).await?;
        while results.next().await.transpose()?.is_some() {}
        Ok(())
    }

    /// The one result of the action `name`.
    async fn one_result(&mut self, name: &str, body: Vec<u8>) -> Result<bytes::Bytes> {
        let mut results = self.flight.do_action(Action::new(name, body)).await?;
        results
            .next()
            .await
            .ok_or_else(|| ClientError::Protocol(format!("{name} gave no result")))?
            .map_err(ClientError::from)
    }

    /// The moves this caller began that are running on the gateway now.
    pub async fn list_moves(&mut self) -> Result<Vec<mover_proto::MoveInfo>> {
        let body = self.one_result(LIST_MOVES_ACTION, vec![]).await?;
        let list = mover_proto::MoveList::decode(body)
            .map_err(|e| ClientError::Protocol(format!("bad move list: {e}")))?;
        Ok(list.moves)
    }

    /// Cancel this caller's running move `id`.
    pub async fn cancel_move(&mut self, id: &str) -> Result<()> {
        let cancel = mover_proto::CancelMove { id: id.into() };
        self.no_result(CANCEL_MOVE_ACTION, cancel.encode_to_vec())
            .await
    }

    /// The records hints the gateway tells from a file's first bytes, as JSON.
    pub async fn sniff(&mut self, read: &Read) -> Result<serde_json::Value> {
        let action = Action::new(mover_proto::SNIFF_ACTION, read.encode_to_vec());
        let mut results = self.flight.do_action(action).await?;
        let body = results
            .next()
            .await
            .ok_or_else(|| ClientError::Protocol("sniff gave no result".into()))??;
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Protocol(format!("sniff's result is not JSON: {e}")))
    }

    /// Ask the gateway to move `mv.source` to `mv.target` itself (pulling the source from the
    /// peer `mv.source_gateway` when set); `on_progress` sees each report.
    pub async fn move_dataset(
        &mut self,
        mv: &Move,
        on_progress: impl FnMut(&Progress),
    ) -> Result<Progress> {
        let action = Action::new(MOVE_ACTION, mv.encode_to_vec());
        let results = self.flight.do_action(action).await?;
        last_progress(results, on_progress).await
    }
}

/// A read's schema and its batches.
pub struct Batches {
    schema: SchemaRef,
    stream: BoxStream<'static, std::result::Result<RecordBatch, FlightError>>,
}

impl Batches {
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

impl Stream for Batches {
    type Item = std::result::Result<RecordBatch, FlightError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.stream.poll_next_unpin(cx)
    }
}

fn tickets(info: FlightInfo) -> Result<Vec<arrow_flight::Ticket>> {
    info.endpoint
        .into_iter()
        .map(|e| {
            e.ticket
                .ok_or_else(|| ClientError::Protocol("an endpoint has no ticket".into()))
        })
        .collect()
}

fn write_descriptor(write: &Write) -> FlightDescriptor {
    let mut write = write.clone();
    write.end_marker = true;
    let command = Command {
        kind: Some(Kind::Write(write)),
    };
    FlightDescriptor::new_cmd(command.encode_to_vec())
}

/// The descriptor of one part of the write `id`.
fn part_descriptor(id: &str, part: &PartId) -> FlightDescriptor {
    let command = Command {
        kind: Some(Kind::Part(WritePart {
            write_id: id.into(),
            partition: part.partition,
            attempt: part.attempt,
            end_marker: true,
        })),
    };
    FlightDescriptor::new_cmd(command.encode_to_vec())
}

/// What the parts of a write sent, as one report.
fn sum(parts: &[Progress], started: std::time::Instant) -> Progress {
    Progress {
        rows_read: parts.iter().map(|p| p.rows_read).sum(),
        bytes_read: parts.iter().map(|p| p.bytes_read).sum(),
        seconds: started.elapsed().as_secs_f64(),
        ..Default::default()
    }
}

fn end_of_upload() -> impl Stream<Item = std::result::Result<FlightData, FlightError>> {
    futures::stream::once(async { Ok(FlightData::new().with_app_metadata(END_OF_UPLOAD.to_vec())) })
}

/// Every endpoint's raw messages into `tx`, as one upload: the first schema message carries
/// `descriptor`; later endpoints' schema messages must repeat it and are dropped. The
/// end-of-upload message follows only when every endpoint ended cleanly.
async fn forward_endpoints(
    from: &mut Client,
    tickets: Vec<arrow_flight::Ticket>,
    descriptor: FlightDescriptor,
    mut tx: futures::channel::mpsc::Sender<FlightData>,
) -> Result<()> {
    use futures::SinkExt;
    let mut schema_header: Option<bytes::Bytes> = None;
    for ticket in tickets {
        let mut request = tonic::Request::new(ticket);
        *request.metadata_mut() = from.flight.metadata().clone();
        let mut stream = from.flight.inner_mut().do_get(request).await?.into_inner();
        while let Some(mut data) = stream.message().await? {
            if is_schema(&data) {
                match &schema_header {
                    Some(seen) if *seen == data.data_header => continue,
                    Some(_) => {
                        return Err(ClientError::Protocol(
                            "the source's endpoints disagree on the schema".into(),
                        ));
                    }
                    None => {
                        schema_header = Some(data.data_header.clone());
                        data.flight_descriptor = Some(descriptor.clone());
                    }
                }
            }
            if tx.send(data).await.is_err() {
                return Ok(()); // the upload ended first; its result says why
            }
        }
    }
    if schema_header.is_none() {
        return Err(ClientError::Protocol("the source sent no schema".into()));
    }
    let end = FlightData::new().with_app_metadata(END_OF_UPLOAD.to_vec());
    let _ = tx.send(end).await;
    Ok(())
}

fn is_schema(data: &FlightData) -> bool {
    arrow::ipc::root_as_message(&data.data_header)
        .is_ok_and(|m| m.header_type() == arrow::ipc::MessageHeader::Schema)
}

/// Read progress reports to the end; the last must say done.
async fn last_progress(
    mut results: impl Stream<Item = std::result::Result<bytes::Bytes, FlightError>> + Unpin,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Progress> {
    let mut last = None;
    while let Some(body) = results.next().await {
        let progress = decode_progress(&body?)?;
        on_progress(&progress);
        last = Some(progress);
    }
    finished(last)
}

fn finished(last: Option<Progress>) -> Result<Progress> {
    match last {
        Some(p) if p.done => Ok(p),
        _ => Err(ClientError::Protocol(
            "the gateway ended without a final report".into(),
        )),
    }
}

fn decode_progress(bytes: &[u8]) -> Result<Progress> {
    Progress::decode(bytes).map_err(|e| ClientError::Protocol(format!("bad progress report: {e}")))
}

/// The descriptor for a read: a path descriptor when it is a plain path with no options, else
/// a command.
pub fn descriptor(read: &Read) -> FlightDescriptor {
    match &read.what {
        Some(mover_proto::read::What::Path(p))
            if *read
                == (Read {
                    what: read.what.clone(),
                    ..Default::default()
                }) =>
        {
            FlightDescriptor::new_path(p.parts.clone())
        }
        _ => FlightDescriptor::new_cmd(
            Command {
                kind: Some(Kind::Read(read.clone())),
            }
            .encode_to_vec(),
        ),
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        next = inner.source();
    }
    out
}
