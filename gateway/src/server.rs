//! Serving: bind the configured address and run the Flight service until told to stop.

use std::net::SocketAddr;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::flight::{Limits, MoverService};

/// A gateway serving in this process.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl Running {
    /// Stop accepting calls, let running ones finish, and wait for the server to end.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.internal("the server task failed")?
    }

    /// Wait until the server ends by itself (it does not, unless it fails).
    pub async fn wait(mut self) -> Result<()> {
        (&mut self.task).await.internal("the server task failed")?
    }
}

/// Start serving `config`. The listen address may be overridden (port 0 picks a free port).
pub async fn start(config: &Config, listen: Option<SocketAddr>) -> Result<Running> {
    let addr = listen.unwrap_or(config.server.listen);
    // No TLS yet: plaintext is allowed on loopback only, so nothing leaves the machine unencrypted.
    if !addr.ip().is_loopback() {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "refusing to listen on {addr}: without TLS this gateway serves loopback addresses only (127.0.0.1, ::1)"
            ),
        ));
    }
    let catalog = Catalog::from_config(config)?;
    let listener = TcpListener::bind(addr)
        .await
        .internal(format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr().internal("no local address")?;
    let service = FlightServiceServer::new(MoverService::new(
        catalog,
        Limits::from_config(&config.server),
    ))
    .max_decoding_message_size(config.server.max_message_bytes)
    .max_encoding_message_size(config.server.max_message_bytes);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await
            .internal("the server failed")
    });
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task,
    })
}
