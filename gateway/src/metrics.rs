//! Prometheus metrics, served on their own address (`server.metrics_listen`, off by default)
//! through the `metrics` crate and its Prometheus exporter. Every call that carries rows (a
//! DoGet, a DoPut, a part of a write in parts, a move) is watched: started, then ended as
//! finished, failed or cancelled, with the rows and bytes it carried and its seconds, by the
//! kinds of its source and target (`postgres`, `s3`, `client`, `peer`, …); the streams open
//! now. Every gRPC request, whatever answers it (the Flight layers, tonic itself, the health
//! service), is counted by method and status code, with its seconds until its status was
//! sent ([`Requests`]), and so are errors by code. Until the exporter is installed every
//! record is a no-op.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use metrics::{counter, gauge, histogram};

use crate::error::{Error, Result};
use crate::transfer::Meter;

/// Serve the metrics at `addr` (any path answers), for this process.
pub fn install(addr: SocketAddr) -> Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| Error::internal(format!("cannot serve metrics on {addr}: {e}")))
}

/// The layer round the gRPC server that watches every request: `mover_requests_total` by
/// method and code, `mover_request_seconds` by method (until the status was sent: a stream's
/// end), `mover_errors_total` by code. The status is read where gRPC puts it: the response's
/// headers when it is only a status, else the trailers after the body; a response dropped
/// before its status (the client went away) is counted as `Cancelled`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Requests;

impl<S> tower_layer::Layer<S> for Requests {
    type Service = Watched<S>;

    fn layer(&self, inner: S) -> Watched<S> {
        Watched { inner }
    }
}

/// A service whose requests are watched ([`Requests`]).
#[derive(Debug, Clone)]
pub struct Watched<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for Watched<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<WatchedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let mut request_end = RequestEnd {
            method: method_of(request.uri().path()),
            started: Instant::now(),
            counted: false,
        };
        let answering = self.inner.call(request);
        Box::pin(async move {
            let response = answering.await?;
            if let Some(code) = status_in(response.headers()) {
                request_end.count(code);
            }
            Ok(response.map(|body| WatchedBody {
                body: Box::pin(body),
                end: request_end,
            }))
        })
    }
}

/// A response body, watched for the trailers that carry its status.
pub struct WatchedBody<B> {
    body: Pin<Box<B>>,
    end: RequestEnd,
}

impl<B: http_body::Body> http_body::Body for WatchedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let polled = self.body.as_mut().poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(code) = frame.trailers_ref().and_then(status_in)
        {
            self.end.count(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The end of one request: counted once, when its status is known, or as cancelled when
/// it is dropped with none.
struct RequestEnd {
    method: &'static str,
    started: Instant,
    counted: bool,
}

impl RequestEnd {
    fn count(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.counted, true) {
            return;
        }
        let code = format!("{code:?}");
        let method = self.method;
        histogram!("mover_request_seconds", "method" => method)
            .record(self.started.elapsed().as_secs_f64());
        if code != "Ok" {
            counter!("mover_errors_total", "code" => code.clone()).increment(1);
        }
        counter!("mover_requests_total", "method" => method, "code" => code).increment(1);
    }
}

impl Drop for RequestEnd {
    fn drop(&mut self) {
        self.count(tonic::Code::Cancelled);
    }
}

/// The gRPC status a header map carries, if it does.
fn status_in(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from_i32(value))
}

/// The methods served, so a request's path becomes a label of a known few (a stranger's
/// made-up paths are all `other`).
const METHODS: [&str; 12] = [
    "/arrow.flight.protocol.FlightService/Handshake",
    "/arrow.flight.protocol.FlightService/ListFlights",
    "/arrow.flight.protocol.FlightService/GetFlightInfo",
    "/arrow.flight.protocol.FlightService/PollFlightInfo",
    "/arrow.flight.protocol.FlightService/GetSchema",
    "/arrow.flight.protocol.FlightService/DoGet",
    "/arrow.flight.protocol.FlightService/DoPut",
    "/arrow.flight.protocol.FlightService/DoExchange",
    "/arrow.flight.protocol.FlightService/DoAction",
    "/arrow.flight.protocol.FlightService/ListActions",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
];

/// A request path's method (`DoGet`, `Health/Check`), or `other`.
fn method_of(path: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == path)
        .map(|m| {
            let (service, method) = m.rsplit_once('/').unwrap_or(("", m));
            match service {
                "/grpc.health.v1.Health" => &m["/grpc.health.v1.".len()..],
                _ => method,
            }
        })
        .unwrap_or("other")
}

/// One call that carries rows, watched from its start to its end. Dropped without
/// [`Watch::ended`], it ended cancelled (its client went away).
pub struct Watch {
    labels: [(&'static str, String); 3],
    meter: Arc<Meter>,
    started: Instant,
    outcome: &'static str,
}

impl Watch {
    /// `call` (do_get, do_put, part, move) from a `source` kind to a `target` kind, counted
    /// by `meter`.
    pub fn start(call: &'static str, source: String, target: String, meter: Arc<Meter>) -> Self {
        let labels = [
            ("call", call.to_string()),
            ("source", source),
            ("target", target),
        ];
        counter!("mover_calls_started_total", &labels).increment(1);
        gauge!("mover_streams_open", "call" => call).increment(1.0);
        Self {
            labels,
            meter,
            started: Instant::now(),
            outcome: "cancelled",
        }
    }

    /// What the call has carried so far.
    pub fn meter(&self) -> &Arc<Meter> {
        &self.meter
    }

    /// Whether the call has not been said to have ended yet.
    pub fn outcome_open(&self) -> bool {
        self.outcome == "cancelled"
    }

    /// The call ended, well or not.
    pub fn ended(&mut self, ok: bool) {
        self.outcome = if ok { "finished" } else { "failed" };
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let labels = &self.labels;
        gauge!("mover_streams_open", "call" => labels[0].1.clone()).decrement(1.0);
        let mut ended = labels.to_vec();
        ended.push(("outcome", self.outcome.to_string()));
        counter!("mover_calls_ended_total", &ended).increment(1);
        let carried = self.meter.progress();
        counter!("mover_rows_total", labels).increment(carried.rows_read);
        counter!("mover_bytes_total", labels).increment(carried.bytes_read);
        histogram!("mover_call_seconds", labels).record(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_one_of_the_methods_served_or_other() {
        assert_eq!(
            method_of("/arrow.flight.protocol.FlightService/DoGet"),
            "DoGet"
        );
        assert_eq!(method_of("/grpc.health.v1.Health/Check"), "Health/Check");
        assert_eq!(
            method_of("/arrow.flight.protocol.FlightService/Nope"),
            "other"
        );
        assert_eq!(method_of("/x"), "other");
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_in(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(status_in(&headers), Some(tonic::Code::NotFound));
    }
}
