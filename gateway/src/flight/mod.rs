//! The Arrow Flight service. It knows names, streams and status codes; what is behind a name
//! is the catalog's business.

mod names;
mod service;

pub use names::{prefix_from_criteria, read_from_descriptor, read_path, write_from_descriptor};
pub use service::{Limits, MoverService};

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
    tonic::Status::new(code, e.message)
}
