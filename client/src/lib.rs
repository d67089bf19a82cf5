//! The Records Mover client: a Flight client that speaks `mover.v1`, and dataset names as people
//! write them. It is a Flight client and nothing more: it links no database driver or object
//! store (the `mvrec` binary, in `cli/`, adds the command line and an in-process gateway).
//!
//! - [`names`]: `demo/main/orders`, `files/out/` to Flight paths.
//! - [`client`]: list, describe, read, write and move through any gateway.

pub mod client;
pub mod names;

pub use client::{Client, ClientError, Connect, DEFAULT_MAX_MESSAGE_BYTES};
