//! Pulling from other gateways: the source half of a move between gateways.
//!
//! A gateway dials only the peers its config names (no open relay), over TLS verified against
//! the peer's CA, presenting its own certificate: the peer sees this gateway's principal and
//! applies its own rules. The peer's GetFlightInfo may answer with several endpoints (a
//! partitioned read); they are read at once, up to the peer's `parallel`, into one stream, or
//! each as a part of a write in parts (the move decides which), so the target still commits
//! once, and only when every endpoint arrived whole.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::Ticket;
use futures::StreamExt;
use mover_client::{Client, ClientError, Connect};
use mover_proto::Read;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::{Config, PeerTarget};
use crate::error::{Error, ErrorKind, Result};
use crate::transfer::BatchStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateways this one may pull from, by the `host:port` that moves name them with.
#[derive(Debug, Default, Clone)]
pub struct Peers {
    by_authority: Arc<BTreeMap<String, PeerTarget>>,
    max_message_bytes: usize,
}

impl Peers {
    pub fn from_config(config: &Config) -> Result<Self> {
        let mut by_authority = BTreeMap::new();
        for name in config.peers.keys() {
            let peer = config.peer_identity(name)?;
            by_authority.insert(peer.authority.to_ascii_lowercase(), peer);
        }
        Ok(Self {
            by_authority: Arc::new(by_authority),
            max_message_bytes: config.server.max_message_bytes,
        })
    }

    /// The configured peer a move's `source_gateway` URL names; any other is refused.
    pub fn find(&self, url: &str) -> Result<&PeerTarget> {
        authority_of(url)
            .and_then(|a| self.by_authority.get(&a.to_ascii_lowercase()))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "{url} is not a peer of this gateway; it pulls only from the gateways in its [peers]"
                    ),
                )
            })
    }

    /// `read` on `peer`: its schema and the tickets of its endpoints, to be read as one
    /// stream ([`Pulled::merged`]) or each as a part of a write ([`Pulled::endpoint`]).
    pub async fn open(&self, peer: &PeerTarget, read: &Read) -> Result<Pulled> {
        let on_peer = |e: Error| e.within(peer.label());
        let mut client = dial(peer, self.max_message_bytes).await.map_err(on_peer)?;
        let mut read = read.clone();
        if read.partitions == 0 {
            read.partitions = peer.parallel as u32;
        }
        let info = client
            .info(&read)
            .await
            .map_err(|e| on_peer(client_error(e)))?;
        let schema: SchemaRef = Arc::new(info.clone().try_decode_schema().map_err(|e| {
            on_peer(Error::invalid(format!(
                "its FlightInfo has no usable schema: {e}"
            )))
        })?);
        let mut tickets = Vec::new();
        for endpoint in &info.endpoint {
            // Endpoints elsewhere would make this gateway dial a place no config named.
            if let Some(other) = endpoint.location.iter().find(|l| !peer.is_at(&l.uri)) {
                return Err(on_peer(Error::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "it sent an endpoint at {}; this gateway reads only from its peers",
                        other.uri
                    ),
                )));
            }
            let ticket = endpoint
                .ticket
                .clone()
                .ok_or_else(|| on_peer(Error::invalid("it sent an endpoint without a ticket")))?;
            tickets.push(ticket);
        }
        Ok(Pulled {
            client,
            peer: peer.clone(),
            schema,
            tickets,
            shared: (info.endpoint.len() > 1).then_some(info),
        })
    }
}

/// A read opened on a peer: its schema and endpoints, not yet read.
pub struct Pulled {
    client: Client,
    peer: PeerTarget,
    pub schema: SchemaRef,
    tickets: Vec<Ticket>,
    /// The FlightInfo of a read split in parts, whose endpoints may share what the peer holds
    /// for them (a Postgres snapshot) until it is told they are done with.
    shared: Option<arrow_flight::FlightInfo>,
}

impl Pulled {
    /// How many endpoints the peer's answer has.
    pub fn endpoints(&self) -> usize {
        self.tickets.len()
    }

    /// How many endpoints this gateway reads from the peer at once.
    pub fn parallel(&self) -> usize {
        self.peer.parallel.max(1)
    }

    /// Every endpoint read, up to `parallel` at once, into one stream; once all are read the
    /// peer is told it may release what they share.
    pub fn merged(self, in_flight: usize) -> (SchemaRef, BatchStream) {
        let Pulled {
            client,
            peer,
            schema,
            tickets,
            shared,
        } = self;
        let stream = pull_endpoints(&client, &peer, tickets.into(), schema.clone(), in_flight);
        let release = futures::stream::once(release(client, shared))
            .filter_map(|()| futures::future::ready(None::<Result<RecordBatch>>));
        (schema, stream.chain(release).boxed())
    }

    /// Endpoint `i`'s batches alone, each checked against the schema.
    pub fn endpoint(&self, i: usize, in_flight: usize) -> BatchStream {
        let tickets = VecDeque::from([self.tickets[i].clone()]);
        pull_endpoints(
            &self.client,
            &self.peer,
            tickets,
            self.schema.clone(),
            in_flight,
        )
    }

    /// Tell the peer the endpoints are done with (they were all read, or the move failed).
    pub async fn release(self) {
        release(self.client, self.shared).await
    }
}

/// Once every endpoint is read, the peer may let go of what they share (a Postgres snapshot,
/// otherwise held as long as the tickets live).
async fn release(mut client: Client, shared: Option<arrow_flight::FlightInfo>) {
    if let Some(info) = shared
        && let Err(e) = client.release(info).await
    {
        tracing::warn!(error = %e, "the peer did not release its read");
    }
}

impl PeerTarget {
    fn label(&self) -> String {
        format!("gateway {} (grpc+tls://{})", self.name, self.authority)
    }

    fn is_at(&self, uri: &str) -> bool {
        authority_of(uri).is_some_and(|a| a.eq_ignore_ascii_case(&self.authority))
    }
}

/// `host:port` of a TLS gateway URL.
fn authority_of(url: &str) -> Option<&str> {
    url.strip_prefix("grpc+tls://")
        .or_else(|| url.strip_prefix("https://"))
        .map(|a| a.trim_end_matches('/'))
}

/// A client of `peer` over TLS, verified against its CA, presenting this gateway's certificate.
async fn dial(peer: &PeerTarget, max_message_bytes: usize) -> Result<Client> {
    let how = Connect {
        ca: Some(peer.ca.clone()),
        cert: Some(peer.cert.clone()),
        key: Some(peer.key.clone()),
        connect_timeout: Some(CONNECT_TIMEOUT),
        max_message_bytes: Some(max_message_bytes),
        ..Default::default()
    };
    Client::connect_with(&format!("grpc+tls://{}", peer.authority), &how)
        .await
        .map_err(|e| match e {
            // The files are this gateway's own configuration.
            ClientError::Invalid(why) => Error::internal(format!("peers.{}: {why}", peer.name)),
            other => client_error(other),
        })
}

/// Every ticket's stream, read by up to `peer.parallel` tasks into one bounded channel. The
/// stream fails unless every endpoint ended cleanly: a task that stopped early (cancelled,
/// panicked) is noticed by the count of finished endpoints.
fn pull_endpoints(
    client: &Client,
    peer: &PeerTarget,
    tickets: VecDeque<Ticket>,
    schema: SchemaRef,
    in_flight: usize,
) -> BatchStream {
    let expected = tickets.len();
    let workers = peer.parallel.min(expected).max(1);
    let queue = Arc::new(Mutex::new(tickets));
    let finished = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<Result<RecordBatch>>(in_flight.max(1));
    let label = peer.label();
    for _ in 0..workers {
        let (queue, finished, tx) = (queue.clone(), finished.clone(), tx.clone());
        let (mut client, schema, label) = (client.handle(), schema.clone(), label.clone());
        tokio::spawn(async move {
            loop {
                let Some(ticket) = queue.lock().expect("ticket queue").pop_front() else {
                    return;
                };
                let result = tokio::select! {
                    r = read_endpoint(&mut client, ticket, &schema, &tx) => r,
                    _ = tx.closed() => return, // the move was dropped: stop reading the peer
                };
                match result {
                    Ok(()) => {
                        finished.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.within(&label))).await;
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    let check = futures::stream::once(async move {
        let done = finished.load(Ordering::SeqCst);
        (done != expected).then(|| {
            Err(Error::new(
                ErrorKind::Cancelled,
                format!("{label}: only {done} of {expected} endpoints arrived"),
            ))
        })
    })
    .filter_map(futures::future::ready);
    ReceiverStream::new(rx).chain(check).boxed()
}

/// One endpoint's batches into `tx`, each checked against the announced schema.
async fn read_endpoint(
    client: &mut Client,
    ticket: Ticket,
    schema: &SchemaRef,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let mut stream = client.redeem(ticket).await.map_err(client_error)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| client_error(e.into()))?;
        let batch =
            RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(|e| {
                Error::invalid(format!(
                    "a batch does not fit the schema its FlightInfo announced: {e}"
                ))
            })?;
        if tx.send(Ok(batch)).await.is_err() {
            return Ok(()); // the receiver is gone; the caller notices tx.closed()
        }
    }
    Ok(())
}

/// A peer's answer as an error of this gateway, keeping what the code said.
fn client_error(e: ClientError) -> Error {
    let status = match e {
        ClientError::Status(status) => status,
        ClientError::Connect { reason, .. } => {
            return Error::new(ErrorKind::Unavailable, format!("cannot connect: {reason}"));
        }
        ClientError::Source(inner) => return client_error(*inner),
        other @ (ClientError::Invalid(_) | ClientError::Protocol(_)) => {
            return Error::invalid(format!("bad Flight data: {other}"));
        }
    };
    use tonic::Code;
    // A status with a source is the transport's: a broken connection, a TLS refusal.
    if let Some(source) = std::error::Error::source(&status) {
        return Error::new(
            ErrorKind::Unavailable,
            format!("the connection failed: {}", chain(source)),
        );
    }
    let kind = match status.code() {
        Code::NotFound => ErrorKind::NotFound,
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::Unimplemented => ErrorKind::Unsupported,
        Code::Cancelled => ErrorKind::Cancelled,
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, status.message())
}

/// An error and its sources, each said once (transport errors repeat their sources' text).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        let text = inner.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = inner.source();
    }
    out
}
