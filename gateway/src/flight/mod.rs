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
mod put;
mod running;
mod service;
mod sql;

pub use names::{prefix_from_criteria, read_from_descriptor, read_path, write_from_descriptor};
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
    crate::metrics::error(code);
    tonic::Status::new(code, e.message)
}
