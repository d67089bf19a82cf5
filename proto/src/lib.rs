//! The `mover.v1` protobuf messages shared by the gateway, `mvrec` and any other client.
//!
//! See `proto/mover.proto` for what each message means on the wire.

/// Generated from `proto/mover.proto`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mover.v1.rs"));
}

pub use v1::*;

/// The name of the DoAction that moves a source to a target inside one gateway.
pub const MOVE_ACTION: &str = "move";

/// The app_metadata of the message that ends an upload whose `Write.end_marker` is set.
pub const END_OF_UPLOAD: &[u8] = b"mover.v1.end";
