//! Serving: bind the configured address and run the Flight service until told to stop.

use std::net::SocketAddr;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::auth::{Auth, tls};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::flight::{Limits, MoverService};
use crate::peers::Peers;
use crate::writes::Writes;

/// The HTTP/2 flow-control window of one stream, in bytes.
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;

/// A gateway serving in this process.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    /// Cancels the calls still running.
    stopping: CancellationToken,
    task: JoinHandle<Result<()>>,
}

/// How long cancelled calls have to send their last answer before the server is dropped
/// under them, and how long their rollbacks then have.
const CANCELLED_CALLS_END: Duration = Duration::from_secs(5);
const ROLLBACKS_END: Duration = Duration::from_secs(30);

impl Running {
    /// Stop accepting calls, let running ones finish, and wait for the server to end.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.internal("the server task failed")?
    }

    /// Drain: take no new call, give the running ones `grace` to finish (or until `now`
    /// resolves: a second signal), then cancel what still runs, each rolled back, and wait
    /// for the rollbacks.
    pub async fn drain(mut self, grace: Duration, now: impl std::future::Future) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::select! {
            ended = &mut self.task => return ended.internal("the server task failed")?,
            _ = tokio::time::sleep(grace) => {
                tracing::warn!(seconds = grace.as_secs(), "calls still running after the drain grace; cancelling them");
            }
            _ = now => tracing::warn!("told again to stop; cancelling the calls still running"),
        }
        self.stopping.cancel();
        if tokio::time::timeout(CANCELLED_CALLS_END, &mut self.task)
            .await
            .is_err()
        {
            // Calls that do not watch the cancel (a Flight SQL statement) are dropped here:
            // their guards roll them back.
            self.task.abort();
        }
        if tokio::time::timeout(ROLLBACKS_END, crate::connectors::undo::settled())
            .await
            .is_err()
        {
            tracing::warn!("some rollbacks did not finish in time; what they staged may remain");
        }
        Ok(())
    }

    /// Wait until the server ends by itself (it does not, unless it fails).
    pub async fn wait(mut self) -> Result<()> {
        (&mut self.task).await.internal("the server task failed")?
    }
}

/// Start serving `config`. The listen address may be overridden (port 0 picks a free port).
pub async fn start(config: &Config, listen: Option<SocketAddr>) -> Result<Running> {
    // One crypto provider for every TLS user in the process (tonic, object_store).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let addr = listen.unwrap_or(config.server.listen);
    let tls = server_tls(config)?;
    // Plaintext only on loopback, unless the operator says so loudly.
    if tls.is_none() && !addr.ip().is_loopback() {
        if !config.server.insecure_plaintext {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "refusing to listen on {addr} without TLS: configure [server.tls], or set server.insecure_plaintext = true"
                ),
            ));
        }
        tracing::warn!(%addr, "INSECURE: serving plaintext on a non-loopback address; anyone on the network can read and change the data in transit");
    }
    let auth = Arc::new(auth_from(config)?);
    if let Some(addr) = config.server.metrics_listen {
        crate::metrics::install(addr)?;
        tracing::info!(%addr, "serving metrics");
    }
    let catalog = Catalog::from_config(config)?;
    let peers = Peers::from_config(config)?;
    let listener = TcpListener::bind(addr)
        .await
        .internal(format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr().internal("no local address")?;
    let writes = Writes::new(catalog.clone(), writes_settings(config));
    let stopping = CancellationToken::new();
    let service = FlightServiceServer::new(MoverService::new(
        catalog,
        Limits::from_config(&config.server),
        auth,
        peers,
        writes,
        stopping.clone(),
    ))
    .max_decoding_message_size(config.server.max_message_bytes)
    .max_encoding_message_size(config.server.max_message_bytes);
    let config_timeout = config.server.request_timeout_seconds;
    // The standard gRPC health service beside Flight: SERVING while the server runs, for load
    // balancers and orchestrators.
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<FlightServiceServer<MoverService>>()
        .await;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // HTTP/2 windows wide enough that a client can send its next batch while the sink
        // loads the last one (at the default 1 MiB window an upload of large batches moves in
        // lock step with the load); they bound what one stream and one connection may have
        // in flight.
        let mut builder = tonic::transport::Server::builder()
            .timeout(std::time::Duration::from_secs(config_timeout))
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(2 * STREAM_WINDOW);
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).internal("bad TLS configuration")?;
        }
        builder
            .layer(crate::metrics::Requests)
            .add_service(health_service)
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
                // Told to stop: new calls are refused from here, and checks say so.
                health
                    .set_not_serving::<FlightServiceServer<MoverService>>()
                    .await;
            })
            .await
            .internal("the server failed")
    });
    Ok(Running {
        addr,
        shutdown: Some(tx),
        stopping,
        task,
    })
}

/// The server's TLS, when the config has `[server.tls]`.
fn server_tls(config: &Config) -> Result<Option<tonic::transport::ServerTlsConfig>> {
    config
        .server
        .tls
        .as_ref()
        .map(|t| {
            tls::server_config(
                &config.path(&t.cert),
                &config.path(&t.key),
                t.client_ca.as_ref().map(|p| config.path(p)).as_deref(),
            )
        })
        .transpose()
}

/// What `gateway check` reports, a line each: the server's own settings (its TLS files, users,
/// ticket key and peers' certificates), then every database and bucket, opened with its
/// secrets and listed once. Nothing is served.
pub async fn check(config: &Config) -> Vec<(String, Result<String>)> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let own = server_tls(config)
        .and_then(|_| auth_from(config))
        .and_then(|_| Peers::from_config(config))
        .map(|_| "TLS, users, ticket key and peers load".to_string());
    let mut lines = vec![("server".to_string(), own)];
    for (key, listed) in Catalog::check(config).await {
        lines.push((
            key,
            listed.map(|n| format!("reached; {n} datasets at its top")),
        ));
    }
    lines
}

/// How long writes in parts stay open, and where their parts wait.
fn writes_settings(config: &Config) -> crate::writes::Settings {
    let s = &config.server;
    crate::writes::Settings {
        default_ttl: Duration::from_secs(s.write_ttl_seconds),
        max_ttl: Duration::from_secs(s.max_write_ttl_seconds),
        sweep_grace: Duration::from_secs(s.stale_parts_grace_seconds),
        sweep: s.sweep_stale_parts,
        spool_dir: s
            .spool_dir
            .as_ref()
            .map(|d| config.path(d))
            .unwrap_or_else(std::env::temp_dir),
    }
}

/// The caller checks a config describes: certificates, users, tokens, tickets, rules.
fn auth_from(config: &Config) -> Result<Auth> {
    let users = config
        .users
        .iter()
        .map(|u| {
            Ok(crate::auth::User {
                name: u.name.clone(),
                password_hash: config.user_password_hash(u)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let s = &config.server;
    Auth::new(crate::auth::Settings {
        cert_principal: s
            .tls
            .as_ref()
            .filter(|t| t.client_ca.is_some())
            .map(|t| t.principal),
        users,
        token_ttl: Duration::from_secs(s.token_ttl_seconds),
        ticket_key: config.ticket_key()?,
        ticket_ttl: Duration::from_secs(s.ticket_ttl_seconds),
        rules: &config.access,
        max_streams: s.max_streams_per_principal,
    })
}
