//! A Postgres database's keys in the config, and the connector built from them.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::Postgres;
use crate::connectors::{Connector, DatabaseOptions, Setup, connect_timeout};
use crate::error::Result;
use crate::secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Name of an environment variable holding the password.
    pub password_env: Option<String>,
    /// Path of a file holding the password.
    pub password_file: Option<PathBuf>,
    /// A program that prints the password (`["vault", "read", "-field=pw", "db/x"]`), run
    /// without a shell each time the gateway opens the database's config.
    pub password_command: Option<Vec<String>>,
    /// How long `password_command` (or the db-facts program) may take.
    #[serde(default = "crate::secret::default_command_timeout_seconds")]
    pub password_command_timeout_seconds: u64,
    /// The db-facts name the whole connection comes from (`db-facts json NAME`), in place of
    /// `url` and a password key: the config's URL is built from its answer, and the password
    /// read from it each time the database is opened or refuses a login.
    pub db_facts: Option<String>,
    /// The db-facts program and its first arguments; `["db-facts"]` unless given.
    #[serde(default)]
    pub db_facts_command: Vec<String>,
    /// The CA the server's certificate must chain to; the connection is then verify-full (TLS
    /// required, certificate and host name verified).
    pub ca_file: Option<PathBuf>,
    /// Largest single value (a bytea, a text) a read accepts; a larger one is refused by row
    /// and column before it is held in memory.
    #[serde(default = "default_max_value_mb")]
    pub max_value_mb: usize,
    /// A read asking for partitions may be split into block ranges of the table, read at once,
    /// each in its own transaction. Faster for big tables, but the parts are not one snapshot:
    /// for tables that are not written while they are moved.
    #[serde(default)]
    pub split_reads: bool,
    /// How long opening a connection (TCP, TLS and login) may take.
    #[serde(default = "crate::connectors::default_connect_timeout_seconds")]
    pub connect_timeout_seconds: u64,
}

fn default_max_value_mb() -> usize {
    256
}

impl DatabaseOptions for Options {
    fn open(&self, name: &str, url: &str, setup: &Setup) -> Result<Arc<dyn Connector>> {
        secret::refuse_inline_password(url)?;
        let from = secret::PasswordFrom {
            env: self.password_env.as_deref(),
            file: self.password_file.as_deref(),
            command: self.password_command.as_deref(),
            db_facts: self
                .db_facts
                .as_deref()
                .map(|n| (n, self.db_facts_command.as_slice())),
            timeout: std::time::Duration::from_secs(self.password_command_timeout_seconds),
        };
        let password = secret::password(from, &setup.base_dir)?;
        let connect_timeout = connect_timeout(self.connect_timeout_seconds)?;
        let ca = self.ca_file.as_ref().map(|p| setup.path(p));
        Ok(Arc::new(Postgres::new(
            name,
            url,
            super::Settings {
                password: password.as_ref().map(|p| p.expose()),
                reread: secret::reread(from, &setup.base_dir),
                ca: ca.as_deref(),
                batch_rows: setup.batch_rows,
                max_value_bytes: self.max_value_mb.saturating_mul(1024 * 1024),
                split_reads: self.split_reads,
                connect_timeout,
                hold: setup.hold,
            },
        )?))
    }
}
