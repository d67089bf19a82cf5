//! The Records Mover gateway: databases and buckets served as Arrow Flight streams.
//!
//! A map of the crate, lowest layer first (each imports only those above it in this list;
//! `scripts/imports` checks that no two modules import each other, directly or round about):
//!
//! - [`error`]: one error type: a kind the Flight layer maps to a status code, a message that
//!   names things, the cause kept; [`error::CellError`] places a bad value by row and column.
//! - [`secret`]: secrets by reference (an environment variable, a file), never shown.
//! - [`convert`]: casts that never lose data silently.
//! - [`transfer`]: stream combinators: [`transfer::BatchStream`], bounded buffering,
//!   metering, limits, keep-alive. A leaf: it knows nothing of sources or sinks.
//! - [`records`]: file formats read and written as streams: CSV, Parquet, JSON lines, and
//!   delimited text by Records Mover's hints.
//! - [`connectors`]: the one seam (a schema and a stream of batches in, or out) and each system
//!   behind it, a folder each with its options, constructor, reads, writes and type table:
//!   [`connectors::sqlite`], [`connectors::postgres`], [`connectors::mysql`] (MySQL and
//!   MariaDB), [`connectors::objects`] (buckets: local folders, S3, GCS, Azure, HTTP). Beside
//!   the seam: [`connectors::plan`] (the existing-table plan and column matching every sink
//!   shares), [`connectors::sql_errors`] (SQLSTATE to error kinds), [`connectors::undo`]
//!   (guards that undo what a dropped write staged).
//! - [`auth`]: TLS principals, Handshake tokens, access rules, tickets, stream limits.
//! - [`config`]: the TOML configuration, composed of the connectors' options; the embedded
//!   default (SQLite + a local folder).
//! - [`catalog`]: dataset paths (`["demo", "main", "orders"]`) routed to the source that holds
//!   them; listing every source at once.
//! - [`writes`]: writes in parts (write sessions): parts staged apart, published at once.
//! - [`peers`]: pulling a source from another gateway (through `mover-client`).
//! - [`moves`]: a move's orchestration: a local or peer source piped into a sink, with a report.
//! - [`flight`]: the Arrow Flight service, and Flight SQL beside it (`flight/sql/`: metadata,
//!   statements, sessions); it knows streams, names and status codes, nothing of SQLite or CSV.
//! - [`server`]: binds a listener and serves; used by the `gateway` binary, by `mvrec --config`
//!   (in-process) and by tests.
//! - `fuzzing` (with the `fuzzing` feature): the entry points `fuzz/`'s targets call.

pub mod auth;
pub mod catalog;
pub mod config;
pub mod connectors;
pub mod convert;
pub mod error;
pub mod flight;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod metrics;
pub mod moves;
pub mod peers;
pub mod records;
pub mod sample;
pub mod secret;
pub mod server;
pub mod transfer;
pub mod writes;

pub use error::{CellError, Error, ErrorKind, Result};
