//! The Arrow Flight service. It knows names, streams and status codes; what is behind a name
//! is the catalog's business.
//!
//! - [`service`]: `FlightService` itself: listings, FlightInfo, DoGet, DoPut.
//! - `actions/`: the `mover.v1` actions, one file each (`sniff`, `move`).
//! - `put`: DoPut's framing (the end-of-upload message, a cut upload as an error).
//! - `progress`: progress reports of a running DoPut or move; the work is dropped when the
//!   client stops listening.
//! - `names`: descriptors and tickets to `mover.v1` reads and writes.
//! - `running`: the DoGets running now, for CancelFlightInfo.
//! - `sql/`: Flight SQL commands and actions (metadata, statements), answered by the same
//!   service; it knows the catalog, no connector.

mod actions;
mod moving_now;
mod names;
mod progress;
pub(crate) mod put;
mod running;
mod service;
pub(crate) mod sql;

pub use names::{
    part_from_descriptor, prefix_from_criteria, read_from_descriptor, read_path,
    write_from_descriptor,
};
pub use service::{Limits, MoverService};
pub use sql::CATALOG_HEADER;

use crate::error::{Error, ErrorKind};

/// gRPC status codes that clients (pyarrow, ADBC) act on.
pub fn status(e: Error) -> tonic::Status {
    use tonic::Code;
    let code = match e.kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Unsupported => Code::Unimplemented,
        ErrorKind::Cancelled => Code::Cancelled,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    };
    tonic::Status::new(code, bounded(e.message))
}

/// The longest status message sent: gRPC carries it in a header, and a client refuses a
/// header over 16 KiB (percent-encoded, so up to three bytes a character), which turned an
/// error naming a 100 KB name into RESOURCE_EXHAUSTED "Stream removed".
const MAX_MESSAGE_BYTES: usize = 4096;

/// `message` within [`MAX_MESSAGE_BYTES`]: its start and its end (where the reason usually
/// is, after the name it quotes), cut at character boundaries, saying how much was left out.
fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let keep = MAX_MESSAGE_BYTES / 2;
    let head = (0..=keep)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    let tail = (message.len() - keep..message.len())
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(message.len());
    format!(
        "{} … ({} bytes left out) … {}",
        &message[..head],
        tail - head,
        &message[tail..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_keeps_its_start_and_its_reason() {
        let long = format!("key part \"{}é\" is not allowed", "x".repeat(100_000));
        let said = bounded(long);
        assert!(said.len() < MAX_MESSAGE_BYTES + 64, "{}", said.len());
        assert!(said.starts_with("key part \"xxx") && said.ends_with("é\" is not allowed"));
        assert!(said.contains("bytes left out"));
        assert_eq!(bounded("short".into()), "short");
    }
}
