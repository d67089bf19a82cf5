//! The `mover.v1` protobuf messages shared by the gateway, `mvrec` and any other client.
//!
//! See `proto/mover.proto` for what each message means on the wire.

/// Generated from `proto/mover.proto`. A `Command` holds a `Read` or a `Write` by value, as
/// prost generates oneofs; one command per call, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mover.v1.rs"));
}

pub use v1::*;

/// Arrow Flight's session messages, generated from `proto/flight_sessions.proto` (arrow-flight
/// does not generate them).
pub mod flight_sessions {
    include!(concat!(env!("OUT_DIR"), "/arrow.flight.protocol.rs"));
}

/// The name of the DoAction that moves a source to a target inside one gateway.
pub const MOVE_ACTION: &str = "move";

/// The DoActions that list the caller's running moves (a `MoveList`) and cancel one.
pub const LIST_MOVES_ACTION: &str = "list_moves";
pub const CANCEL_MOVE_ACTION: &str = "cancel_move";

/// The name of the DoAction that tells a file's records hints: the body is a `Read` naming the
/// file, the one result the 13 hints as a JSON object.
pub const SNIFF_ACTION: &str = "sniff";

/// The DoActions of a write in parts: `BeginWrite` answers a `WriteSession`, `CommitWrite` the
/// final `Progress`, `AbortWrite` nothing.
pub const BEGIN_WRITE_ACTION: &str = "begin_write";
pub const COMMIT_WRITE_ACTION: &str = "commit_write";
pub const ABORT_WRITE_ACTION: &str = "abort_write";

/// The app_metadata of the message that ends an upload whose `Write.end_marker` is set.
pub const END_OF_UPLOAD: &[u8] = b"mover.v1.end";
