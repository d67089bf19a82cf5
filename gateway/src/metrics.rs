//! Prometheus metrics, served on their own address (`server.metrics_listen`, off by default)
//! through the `metrics` crate and its Prometheus exporter. Every call that carries rows (a
//! DoGet, a DoPut, a part of a write in parts, a move) is watched: started, then ended as
//! finished, failed or cancelled, with the rows and bytes it carried and its seconds, by the
//! kinds of its source and target (`postgres`, `s3`, `client`, `peer`, …); the streams open
//! now; errors by gRPC status code. Until the exporter is installed every record is a no-op.

use std::net::SocketAddr;
use std::sync::Arc;
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

/// An error answered with `code`.
pub fn error(code: tonic::Code) {
    counter!("mover_errors_total", "code" => format!("{code:?}")).increment(1);
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
