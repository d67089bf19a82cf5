//! The Records Mover client: a Flight client that speaks `mover.v1`, dataset names as people
//! write them, an in-process gateway for one-off moves, and the `mvrec` commands.
//!
//! - [`names`]: `demo/main/orders`, `files/out/` to Flight paths.
//! - [`client`]: list, describe, read, write and move through any gateway.
//! - [`embedded`]: the same gateway, started inside this process from a config file.
//! - [`cli`]: one module per `mvrec` subcommand; the binary only parses and dispatches.

pub mod cli;
pub mod client;
pub mod embedded;
pub mod names;

pub use client::{Client, ClientError};
