//! The Records Mover gateway: databases and buckets served as Arrow Flight streams.
//!
//! A map of the crate:
//!
//! - [`auth`]: TLS principals, Handshake tokens, access rules, per-principal stream limits.
//! - [`config`]: the TOML configuration and the embedded default (SQLite + a local folder).
//! - [`catalog`]: dataset paths (`["demo", "main", "orders"]`) to the source that holds them.
//! - [`connectors`]: the one seam (a schema and a stream of batches in, or out) and each system
//!   behind it: [`connectors::sqlite`], [`connectors::objects`] (buckets).
//! - [`records`]: file formats read and written as streams: CSV, Parquet, JSON lines, and
//!   delimited text by Records Mover's hints.
//! - [`transfer`]: the pipe between a source and a sink: bounded buffering, metering, limits.
//! - [`flight`]: the Arrow Flight service; it knows streams and names, nothing of SQLite or CSV.
//! - [`server`]: binds a listener and serves; used by the `gateway` binary, by `mvrec --config`
//!   (in-process) and by tests.
//! - [`convert`]: casts that never lose data silently.

pub mod auth;
pub mod catalog;
pub mod config;
pub mod connectors;
pub mod convert;
pub mod error;
pub mod flight;
pub mod records;
pub mod secret;
pub mod server;
pub mod transfer;

pub use error::{Error, ErrorKind, Result};
