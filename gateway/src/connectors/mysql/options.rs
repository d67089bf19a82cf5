//! A MySQL or MariaDB database's keys in the config, and the connector built from them.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{Mysql, ZeroDates};
use crate::connectors::{Connector, DatabaseOptions, Setup, connect_timeout};
use crate::error::{Error, Result};
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
    /// TLS, the server's certificate verified against this CA (and its host name).
    pub ca_file: Option<PathBuf>,
    /// What a zero date (`0000-00-00`) reads as: "error" (the default) or "null".
    #[serde(default)]
    pub zero_dates: ZeroDates,
    /// LOAD DATA statements run at once (each on its own connection) into the staging table of
    /// a create or overwrite, so the server parses on more cores (1 to 16). Rows then land in
    /// no particular order. Appends are one statement in one transaction.
    #[serde(default = "default_load_streams")]
    pub load_streams: usize,
    /// How long opening a connection (TCP, TLS and login) may take.
    #[serde(default = "crate::connectors::default_connect_timeout_seconds")]
    pub connect_timeout_seconds: u64,
}

fn default_load_streams() -> usize {
    1
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
        if !(1..=16).contains(&self.load_streams) {
            return Err(Error::invalid(format!(
                "load_streams = {}: give 1 to 16",
                self.load_streams
            )));
        }
        let connect_timeout = connect_timeout(self.connect_timeout_seconds)?;
        let ca = self.ca_file.as_ref().map(|p| setup.path(p));
        Ok(Arc::new(Mysql::new(
            name,
            url,
            super::Settings {
                password: password.as_ref().map(|p| p.expose()),
                reread: secret::reread(from, &setup.base_dir),
                ca: ca.as_deref(),
                batch_rows: setup.batch_rows,
                zero_dates: self.zero_dates,
                load_streams: self.load_streams,
                connect_timeout,
            },
        )?))
    }
}
