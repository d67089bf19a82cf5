//! Support for the integration tests: real gateway processes on free ports, the real `mvrec`
//! binary, real servers (Postgres, MariaDB, moto, Azurite, a GCS emulator) in throwaway
//! directories, and certificates made in the test. Each test reads as a story of what a user
//! does; each harness is a module of its own:
//!
//! - [`gateway`]: the binaries, a gateway process, `mvrec`, work directories.
//! - [`names`]: datasets as `mover.v1` reads, writes and moves; DoPut and row counts.
//! - [`files`]: looking at SQLite files and folders without the gateway.
//! - [`postgres`], [`mariadb`], [`moto`] (S3), [`azurite`] (Azure), [`gcs`]: servers.
//! - [`pki`]: a CA and the certificates the security tests present.
//! - [`net`]: free ports and a byte-counting relay.
//! - [`contract`]: the behaviour every backend must show, run by `tests/contract.rs`.
//! - [`values`]: the typed table of edge values the contract round-trips.

pub mod azurite;
pub mod contract;
pub mod faults;
pub mod files;
pub mod gateway;
pub mod gcs;
pub mod mariadb;
pub mod moto;
pub mod names;
pub mod net;
pub mod pki;
pub mod postgres;
pub mod values;

pub use azurite::Azurite;
pub use files::{files_under, sqlite_has_table, sqlite_rows};
pub use gateway::{Gateway, bin, bin_dir, fails, gateway_check, hash_password, mvrec, ok, workdir};
pub use gcs::FakeGcs;
pub use mariadb::Mariadb;
pub use moto::S3Server;
pub use names::{count_rows, ids_in_parts};
pub use net::{CountingProxy, CuttingProxy, free_port};
pub use pki::Pki;
pub use postgres::Postgres;
