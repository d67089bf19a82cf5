//! The gateway's configuration: one TOML file, or the embedded default.
//!
//! Every table denies unknown keys, so a typo is an error naming the key, never a silent
//! default. Secrets are accepted only by reference (`password_env`, `password_file`); a URL
//! carrying a password is refused. Relative paths are resolved against the directory of the
//! config file (against the working directory for the embedded default).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use std::sync::Arc;

pub use crate::connectors::objects::options::{BucketTarget, Options as BucketConfig};
use crate::connectors::{self, DatabaseOptions, Setup};
use crate::error::{Error, Result};
use crate::secret;
pub use crate::secret::Secret;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// `server.max_message_bytes` by default: the client library's limit, defined there once.
pub use mover_client::DEFAULT_MAX_MESSAGE_BYTES;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    /// Built from `raw_databases` once the file is read.
    #[serde(skip)]
    pub databases: BTreeMap<String, DatabaseConfig>,
    #[serde(default, rename = "databases")]
    raw_databases: BTreeMap<String, RawDatabase>,
    #[serde(default)]
    pub buckets: BTreeMap<String, BucketConfig>,
    /// People and BI tools who log in with Handshake (Basic credentials).
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Who may read, write and query what (needs authentication configured).
    #[serde(default)]
    pub access: Vec<crate::auth::access::AccessRule>,
    /// Other gateways this one may pull sources from (and only these).
    #[serde(default)]
    pub peers: BTreeMap<String, PeerConfig>,
    /// Where relative paths in this config are resolved from (the config file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// On SIGTERM (or Ctrl-C) no new call is taken, and running ones have this long to finish
    /// before they are cancelled and rolled back; a second signal cancels them at once.
    #[serde(default = "default_drain_seconds")]
    pub drain_seconds: u64,
    /// Where Prometheus metrics are served, over plain HTTP with no authentication (off when
    /// unset): keep it on loopback or a network only scrapers reach.
    pub metrics_listen: Option<SocketAddr>,
    /// Largest gRPC message accepted or sent.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Rows per record batch produced by database and CSV readers.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Batches buffered between a source and a sink: with `batch_rows` this bounds the memory
    /// a move holds, whatever the size of the data.
    #[serde(default = "default_in_flight_batches")]
    pub in_flight_batches: usize,
    /// A DoPut that sends nothing for this long is taken as abandoned and rolled back.
    #[serde(default = "default_put_idle_timeout_seconds")]
    pub put_idle_timeout_seconds: u64,
    /// A DoGet whose source produces nothing for this long sends an empty batch, so proxies and
    /// clients do not take a slow query for a dead stream.
    #[serde(default = "default_keep_alive_seconds")]
    pub keep_alive_seconds: u64,
    /// TLS for every connection; with `client_ca`, client certificates are required.
    pub tls: Option<TlsConfig>,
    /// Allow plaintext on a non-loopback address. Anyone on the network can then read and
    /// change the data and credentials in transit; a warning is logged at start.
    #[serde(default)]
    pub insecure_plaintext: bool,
    /// How long a Handshake token stays valid.
    #[serde(default = "default_token_ttl_seconds")]
    pub token_ttl_seconds: u64,
    /// Streams (DoGet, DoPut, moves) one principal may have running at once.
    #[serde(default = "default_max_streams_per_principal")]
    pub max_streams_per_principal: usize,
    /// Longest time a call may take to start answering (streams then run as long as data flows).
    #[serde(default = "default_request_timeout_seconds")]
    pub request_timeout_seconds: u64,
    /// The key that signs tickets (hex, as `openssl rand -hex 32` writes it, or 32+ raw bytes),
    /// from a file or a variable. With it, tickets survive a restart; without it, a random key
    /// is made at start.
    pub ticket_key_file: Option<PathBuf>,
    pub ticket_key_env: Option<String>,
    /// How long a ticket from GetFlightInfo may be redeemed.
    #[serde(default = "default_ticket_ttl_seconds")]
    pub ticket_ttl_seconds: u64,
    /// How long a write in parts (`begin_write`) stays open when its client does not say;
    /// one neither committed nor aborted by then is aborted by the gateway.
    #[serde(default = "default_write_ttl_seconds")]
    pub write_ttl_seconds: u64,
    /// The longest a client may ask a write in parts to stay open.
    #[serde(default = "default_max_write_ttl_seconds")]
    pub max_write_ttl_seconds: u64,
    /// How long after its write's expiry a staged part that no gateway removed (its own was
    /// killed) is left before any gateway sweeps it: longer than a commit may take, since a
    /// bucket's commit renames parts after the expiry was checked, and than the clocks of
    /// gateways sharing a target may differ.
    #[serde(default = "default_stale_parts_grace_seconds")]
    pub stale_parts_grace_seconds: u64,
    /// Whether this gateway sweeps what killed gateways staged (not a config key: a gateway
    /// run inside mvrec for one command leaves that to the long-running ones).
    #[serde(skip, default = "default_sweep")]
    pub sweep_stale_parts: bool,
    /// Where the parts of writes in parts wait for their commit (default: the system's
    /// temporary folder). Each gateway process keeps a folder of its own inside.
    pub spool_dir: Option<PathBuf>,
}

/// A gateway this one pulls from. Calls to it are TLS, verified against `ca`, and present this
/// gateway's own certificate (`server.tls`, or `cert`/`key` here).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// `grpc+tls://host:port`: the URL moves name the peer by.
    pub url: String,
    /// The CA the peer's certificate must chain to.
    pub ca: PathBuf,
    /// The client certificate and key to present (default: `server.tls.cert` and `key`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Endpoints of a partitioned read pulled at once.
    #[serde(default = "default_parallel")]
    pub parallel: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The gateway's certificate chain and key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA that client certificates must chain to; setting it requires them.
    pub client_ca: Option<PathBuf>,
    /// Which part of a client certificate names the principal: "cn" (default) or "san".
    #[serde(default)]
    pub principal: crate::auth::tls::PrincipalFrom,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// An argon2 PHC string (`gateway hash-password`), inline: it is a hash, not the password.
    pub password_hash: Option<String>,
    /// Or by reference.
    pub password_hash_env: Option<String>,
    pub password_hash_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            metrics_listen: None,
            drain_seconds: default_drain_seconds(),
            max_message_bytes: default_max_message_bytes(),
            batch_rows: default_batch_rows(),
            in_flight_batches: default_in_flight_batches(),
            put_idle_timeout_seconds: default_put_idle_timeout_seconds(),
            keep_alive_seconds: default_keep_alive_seconds(),
            tls: None,
            insecure_plaintext: false,
            token_ttl_seconds: default_token_ttl_seconds(),
            max_streams_per_principal: default_max_streams_per_principal(),
            request_timeout_seconds: default_request_timeout_seconds(),
            ticket_key_file: None,
            ticket_key_env: None,
            ticket_ttl_seconds: default_ticket_ttl_seconds(),
            write_ttl_seconds: default_write_ttl_seconds(),
            max_write_ttl_seconds: default_max_write_ttl_seconds(),
            stale_parts_grace_seconds: default_stale_parts_grace_seconds(),
            sweep_stale_parts: default_sweep(),
            spool_dir: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("constant address parses")
}
fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}
fn default_batch_rows() -> usize {
    8192
}
fn default_in_flight_batches() -> usize {
    4
}
fn default_put_idle_timeout_seconds() -> u64 {
    300
}
fn default_keep_alive_seconds() -> u64 {
    30
}
fn default_token_ttl_seconds() -> u64 {
    3600
}
fn default_max_streams_per_principal() -> usize {
    16
}
fn default_request_timeout_seconds() -> u64 {
    300
}
fn default_ticket_ttl_seconds() -> u64 {
    3600
}
fn default_write_ttl_seconds() -> u64 {
    3600
}
fn default_max_write_ttl_seconds() -> u64 {
    86400
}
fn default_sweep() -> bool {
    true
}
fn default_drain_seconds() -> u64 {
    30
}
fn default_stale_parts_grace_seconds() -> u64 {
    3600
}
fn default_parallel() -> usize {
    4
}

/// A database: its URL, whether it takes free SQL, and the keys its backend reads (parsed by
/// the backend the URL's scheme names, [`connectors::database_options`]).
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `sqlite://path.db`, `postgres://user@host/db`, `mysql://user@host:3306/db`.
    pub url: String,
    /// Accept free SQL queries against this database.
    pub allow_sql: bool,
    /// Accept SQL that changes it (DML, DDL) from principals with `write` on all of it.
    pub allow_sql_writes: bool,
    pub options: Arc<dyn DatabaseOptions>,
}

/// `[databases.NAME]` as TOML gives it: the keys every database has, and the rest for its
/// backend.
#[derive(Debug, Clone, Deserialize)]
struct RawDatabase {
    /// None when `db_facts` gives it.
    url: Option<String>,
    #[serde(default)]
    allow_sql: bool,
    #[serde(default)]
    allow_sql_writes: bool,
    #[serde(flatten)]
    keys: toml::Table,
}

/// A peer gateway, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTarget {
    pub name: String,
    /// `host:port`, as moves name the peer (`grpc+tls://host:port`).
    pub authority: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub parallel: usize,
}

/// A database's URL: as the config gives it, or built from what db-facts says of its
/// `db_facts` name (the password is read from db-facts again when the database opens).
fn database_url(url: Option<String>, keys: &toml::Table, base: &Path) -> Result<String> {
    let facts = keys.get("db_facts").and_then(toml::Value::as_str);
    match (url, facts) {
        (Some(url), None) => Ok(url),
        (None, Some(name)) => {
            let command: Vec<String> = match keys.get("db_facts_command") {
                Some(v) => v.clone().try_into().map_err(|_| {
                    Error::invalid("db_facts_command: give the program and its arguments, as a list of strings")
                })?,
                None => vec![],
            };
            let timeout = keys
                .get("password_command_timeout_seconds")
                .and_then(toml::Value::as_integer)
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or_else(secret::default_command_timeout_seconds);
            let timeout = std::time::Duration::from_secs(timeout);
            Ok(secret::db_facts::read(name, &command, base, timeout)?.url)
        }
        (Some(_), Some(_)) => Err(Error::invalid(
            "give url or db_facts, not both: db-facts gives the whole connection",
        )),
        (None, None) => Err(Error::invalid(
            "give the database's url (or a db_facts name)",
        )),
    }
}

impl Config {
    /// Read and check a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(format!("cannot read config {}: {e}", path.display())))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, base).map_err(|e| e.within(path.display()))
    }

    /// Parse and check config text; relative paths resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: PathBuf) -> Result<Self> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| Error::invalid(e.to_string().trim().to_string()))?;
        config.base_dir = base_dir;
        for (name, raw) in std::mem::take(&mut config.raw_databases) {
            let within = |e: Error| e.within(format!("databases.{name}"));
            let url = database_url(raw.url, &raw.keys, &config.base_dir).map_err(within)?;
            let options = connectors::database_options(&url, raw.keys).map_err(within)?;
            let db = DatabaseConfig {
                url,
                allow_sql: raw.allow_sql,
                allow_sql_writes: raw.allow_sql_writes,
                options,
            };
            config.databases.insert(name, db);
        }
        config.validate()?;
        Ok(config)
    }

    /// The embedded default: SQLite `data/mover.db` as database `demo`, the folder `data` as
    /// bucket `files`, on loopback.
    pub fn embedded_default(base_dir: PathBuf) -> Self {
        let text = r#"
            [databases.demo]
            url = "sqlite://data/mover.db"
            allow_sql = true

            [buckets.files]
            url = "file://data"
        "#;
        Self::parse(text, base_dir).expect("the embedded default config is valid")
    }

    fn validate(&self) -> Result<()> {
        let mut names = BTreeMap::new();
        for name in self.databases.keys() {
            names.insert(name.as_str(), "databases");
        }
        for name in self.buckets.keys() {
            if let Some(other) = names.insert(name.as_str(), "buckets") {
                return Err(Error::invalid(format!(
                    "buckets.{name}: the name is already used in [{other}]; a source name must be unique"
                )));
            }
        }
        for name in names.keys() {
            check_source_name(name)?;
        }
        let setup = self.setup();
        for (name, db) in &self.databases {
            db.options
                .check(&db.url, &setup)
                .map_err(|e| e.within(format!("databases.{name}")))?;
        }
        for (name, bucket) in &self.buckets {
            bucket
                .target(&setup)
                .map_err(|e| e.within(format!("buckets.{name}.url")))?;
        }
        for name in self.peers.keys() {
            self.peer_identity(name)?;
        }
        let s = &self.server;
        if s.max_streams_per_principal == 0
            || s.token_ttl_seconds == 0
            || s.request_timeout_seconds == 0
            || s.ticket_ttl_seconds == 0
            || s.write_ttl_seconds == 0
        {
            return Err(Error::invalid(
                "server.max_streams_per_principal, token_ttl_seconds, ticket_ttl_seconds, write_ttl_seconds and request_timeout_seconds must be at least 1",
            ));
        }
        if s.max_write_ttl_seconds < s.write_ttl_seconds {
            return Err(Error::invalid(
                "server.max_write_ttl_seconds must be at least write_ttl_seconds",
            ));
        }
        if s.ticket_key_file.is_some() && s.ticket_key_env.is_some() {
            return Err(Error::invalid(
                "server: give ticket_key_file or ticket_key_env, not both",
            ));
        }
        if s.batch_rows == 0
            || s.in_flight_batches == 0
            || s.put_idle_timeout_seconds == 0
            || s.keep_alive_seconds == 0
        {
            return Err(Error::invalid(
                "server.batch_rows, in_flight_batches, put_idle_timeout_seconds and keep_alive_seconds must be at least 1",
            ));
        }
        Ok(())
    }

    /// A user's password hash, from the config or where it refers to.
    pub fn user_password_hash(&self, u: &UserConfig) -> Result<String> {
        let key = |k: &str| format!("users.{}.{k}", u.name);
        match (
            &u.password_hash,
            &u.password_hash_env,
            &u.password_hash_file,
        ) {
            (Some(h), None, None) => Ok(h.clone()),
            (None, Some(var), None) => std::env::var(var).map_err(|_| {
                Error::invalid(format!(
                    "{}: the variable {var} is not set",
                    key("password_hash_env")
                ))
            }),
            (None, None, Some(file)) => {
                let path = self.path(file);
                std::fs::read_to_string(&path)
                    .map(|s| s.trim().to_string())
                    .map_err(|e| {
                        Error::invalid(format!(
                            "{}: {}: {e}",
                            key("password_hash_file"),
                            path.display()
                        ))
                    })
            }
            _ => Err(Error::invalid(format!(
                "users.{}: give exactly one of password_hash, password_hash_env, password_hash_file",
                u.name
            ))),
        }
    }

    /// The ticket key the config refers to, if it names one.
    pub fn ticket_key(&self) -> Result<Option<Secret>> {
        let s = &self.server;
        if let Some(var) = &s.ticket_key_env {
            return std::env::var(var)
                .map(|v| Some(Secret::new(v)))
                .map_err(|_| {
                    Error::invalid(format!(
                        "server.ticket_key_env: the variable {var} is not set"
                    ))
                });
        }
        match &s.ticket_key_file {
            Some(file) => {
                let path = self.path(file);
                std::fs::read_to_string(&path)
                    .map(|v| Some(Secret::new(v)))
                    .map_err(|e| {
                        Error::invalid(format!("server.ticket_key_file: {}: {e}", path.display()))
                    })
            }
            None => Ok(None),
        }
    }

    /// A peer's checked URL, CA, and the certificate and key this gateway presents to it.
    pub fn peer_identity(&self, name: &str) -> Result<PeerTarget> {
        let peer = self
            .peers
            .get(name)
            .ok_or_else(|| Error::not_found(format!("no peer named {name:?}")))?;
        let key = |k: &str| format!("peers.{name}.{k}");
        let tls = peer
            .url
            .strip_prefix("grpc+tls://")
            .or_else(|| peer.url.strip_prefix("https://"));
        let Some(authority) = tls else {
            return Err(Error::invalid(format!(
                "{}: {:?} is not grpc+tls://host:port; gateways talk to each other over TLS only",
                key("url"),
                peer.url
            )));
        };
        let authority = authority.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || authority.contains('@') {
            return Err(Error::invalid(format!(
                "{}: write grpc+tls://host:port, nothing more",
                key("url")
            )));
        }
        let (cert, client_key) = match (&peer.cert, &peer.key, &self.server.tls) {
            (Some(c), Some(k), _) => (c.clone(), k.clone()),
            (None, None, Some(tls)) => (tls.cert.clone(), tls.key.clone()),
            (None, None, None) => {
                return Err(Error::invalid(format!(
                    "peers.{name}: this gateway needs a certificate to present to its peers: configure [server.tls], or give peers.{name}.cert and key"
                )));
            }
            _ => {
                return Err(Error::invalid(format!(
                    "peers.{name}: give both cert and key, or neither"
                )));
            }
        };
        if peer.parallel == 0 {
            return Err(Error::invalid(format!(
                "{} must be at least 1",
                key("parallel")
            )));
        }
        Ok(PeerTarget {
            name: name.to_string(),
            authority: authority.to_string(),
            ca: self.path(&peer.ca),
            cert: self.path(&cert),
            key: self.path(&client_key),
            parallel: peer.parallel,
        })
    }

    /// A path from the config, resolved against its directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        secret::resolve(&self.base_dir, p)
    }

    /// What every connector is built with besides its own options.
    pub fn setup(&self) -> Setup {
        Setup {
            base_dir: self.base_dir.clone(),
            batch_rows: self.server.batch_rows,
            hold: std::time::Duration::from_secs(self.server.ticket_ttl_seconds),
            write_ttl: std::time::Duration::from_secs(self.server.max_write_ttl_seconds),
        }
    }
}

/// Source names are the first element of every path: keep them plain.
fn check_source_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "source name {name:?}: use letters, digits, '_' and '-' only"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, PathBuf::from("/etc/mover"))
    }

    #[test]
    fn embedded_default_names_demo_and_files_on_loopback() {
        let c = Config::embedded_default(PathBuf::from("/srv"));
        assert!(c.server.listen.ip().is_loopback());
        assert_eq!(c.databases["demo"].url, "sqlite://data/mover.db");
        assert!(c.databases["demo"].allow_sql);
        assert_eq!(
            c.buckets["files"].target(&c.setup()).unwrap(),
            BucketTarget::Local(PathBuf::from("/srv/data"))
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse("[server]\nlisen = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(e.message.contains("lisen"), "{e}");
        let e = parse("[databases.d]\nurl = \"sqlite://x.db\"\npasword_env = \"X\"\n").unwrap_err();
        assert!(e.message.contains("pasword_env"), "{e}");
    }

    #[test]
    fn a_key_of_another_backend_is_named_with_the_backend() {
        let e = parse("[databases.pg]\nurl = \"postgres://u@h/db\"\nzero_dates = \"null\"\n")
            .unwrap_err();
        assert!(e.message.starts_with("databases.pg"), "{e}");
        assert!(e.message.contains("zero_dates"), "{e}");
        assert!(e.message.contains("postgres database"), "{e}");
        let e = parse("[databases.m]\nurl = \"mysql://u@h/db\"\nsplit_reads = true\n").unwrap_err();
        assert!(
            e.message.contains("split_reads") && e.message.contains("mysql"),
            "{e}"
        );
        let e = parse("[databases.s]\nurl = \"sqlite://a.db\"\nmax_value_mb = 1\n").unwrap_err();
        assert!(
            e.message.contains("max_value_mb") && e.message.contains("sqlite"),
            "{e}"
        );
        let e =
            parse("[databases.m]\nurl = \"mysql://u@h/db\"\nzero_dates = \"maybe\"\n").unwrap_err();
        assert!(
            e.message.contains("maybe") && e.message.contains("null"),
            "{e}"
        );
        let e = parse("[databases.m]\nurl = \"mysql://u@h/db\"\nload_streams = 17\n").unwrap_err();
        assert!(e.message.contains("load_streams"), "{e}");
        let e = parse(
            "[databases.p]\nurl = \"postgres://u@h/db\"\npassword_env = \"MOVER_UNSET_VARIABLE\"\n",
        )
        .unwrap_err();
        assert!(e.message.contains("MOVER_UNSET_VARIABLE"), "{e}");
    }

    #[test]
    fn a_database_has_a_url_or_a_db_facts_name() {
        let e = parse("[databases.d]\nallow_sql = true\n").unwrap_err();
        assert!(
            e.message.contains("databases.d: give the database's url"),
            "{e}"
        );
        let e =
            parse("[databases.d]\nurl = \"postgres://u@h/db\"\ndb_facts = \"w\"\n").unwrap_err();
        assert!(e.message.contains("not both"), "{e}");
        let e = parse(
            "[databases.d]\ndb_facts = \"w\"\ndb_facts_command = [\"/nonexistent/db-facts\"]\n",
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("db_facts \"w\": /nonexistent/db-facts cannot be run"),
            "{e}"
        );
    }

    #[test]
    fn inline_password_is_refused() {
        let e = parse("[databases.w]\nurl = \"postgres://u:hunter2@h/db\"\n").unwrap_err();
        assert!(e.message.contains("password_env"), "{e}");
        assert!(!e.message.contains("hunter2"), "secret leaked: {e}");
    }

    #[test]
    fn bad_urls_name_the_key() {
        let e = parse("[buckets.b]\nurl = \"ftp://x\"\n").unwrap_err();
        assert!(e.message.starts_with("buckets.b.url"), "{e}");
        let e = parse("[databases.d]\nurl = \"nourl\"\n").unwrap_err();
        assert!(e.message.starts_with("databases.d: url"), "{e}");
        let e = parse("[databases.d]\nurl = \"oracle://h/db\"\n").unwrap_err();
        assert!(e.message.starts_with("databases.d: url"), "{e}");
        assert!(e.message.contains("postgres://"), "{e}");
    }

    #[test]
    fn connect_timeouts_default_to_thirty_seconds_and_zero_is_refused() {
        let c = parse("[databases.d]\nurl = \"postgres://u@h/db\"\n").unwrap();
        assert!(format!("{:?}", c.databases["d"].options).contains("connect_timeout_seconds: 30"));
        let e = parse("[databases.d]\nurl = \"mysql://u@h/db\"\nconnect_timeout_seconds = 0\n")
            .unwrap_err();
        assert!(e.message.contains("connect_timeout_seconds"), "{e}");
    }

    #[test]
    fn cloud_buckets_parse_with_their_prefix() {
        let c = parse("[buckets.lake]\nurl = \"s3://analytics-lake/exports/\"\nregion = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:9000\"\naccess_key_id_env = \"K\"\nsecret_access_key_env = \"S\"\n").unwrap();
        assert_eq!(
            c.buckets["lake"].target(&c.setup()).unwrap(),
            BucketTarget::S3 {
                bucket: "analytics-lake".into(),
                prefix: "exports".into()
            }
        );
        let c = parse("[buckets.g]\nurl = \"gs://b\"\n[buckets.a]\nurl = \"az://c/p/q\"\naccount = \"acct\"\n[buckets.w]\nurl = \"https://example.org/data\"\n").unwrap();
        assert_eq!(
            c.buckets["g"].target(&c.setup()).unwrap(),
            BucketTarget::Gcs {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            c.buckets["a"].target(&c.setup()).unwrap(),
            BucketTarget::Azure {
                container: "c".into(),
                prefix: "p/q".into()
            }
        );
        assert!(matches!(
            c.buckets["w"].target(&c.setup()).unwrap(),
            BucketTarget::Http { .. }
        ));
    }

    #[test]
    fn bucket_key_mistakes_are_named() {
        let e = parse("[buckets.l]\nurl = \"file://d\"\nregion = \"x\"\n").unwrap_err();
        assert!(e.message.starts_with("buckets.l.url"), "{e}");
        let e = parse("[buckets.l]\nurl = \"s3://b\"\naccess_key_id_env = \"K\"\n").unwrap_err();
        assert!(e.message.contains("secret_access_key_env"), "{e}");
        let e = parse("[buckets.l]\nurl = \"az://c\"\n").unwrap_err();
        assert!(e.message.contains("account"), "{e}");
        let e = parse("[buckets.l]\nurl = \"s3://\"\n").unwrap_err();
        assert!(e.message.contains("no bucket"), "{e}");
        let e = parse("[buckets.l]\nurl = \"https://u:pw@example.org/x\"\n").unwrap_err();
        assert!(
            e.message.contains("password") && !e.message.contains("pw@"),
            "{e}"
        );
        let e = parse("[buckets.l]\nurl = \"s3://b\"\nsecret_key = \"inline\"\n").unwrap_err();
        assert!(e.message.contains("secret_key"), "{e}");
    }

    #[test]
    fn peers_need_tls_and_an_identity() {
        let c = parse("[server.tls]\ncert = \"gw.pem\"\nkey = \"gw.key\"\n[peers.east]\nurl = \"grpc+tls://east:50051\"\nca = \"ca.pem\"\n").unwrap();
        let east = c.peer_identity("east").unwrap();
        assert_eq!(east.authority, "east:50051");
        assert_eq!(east.cert, PathBuf::from("/etc/mover/gw.pem"));
        assert_eq!(east.parallel, 4);
        let e =
            parse("[peers.east]\nurl = \"grpc+tls://east:50051\"\nca = \"ca.pem\"\n").unwrap_err();
        assert!(e.message.contains("server.tls"), "{e}");
        let e = parse("[peers.east]\nurl = \"grpc://east:50051\"\nca = \"ca.pem\"\ncert = \"c\"\nkey = \"k\"\n").unwrap_err();
        assert!(e.message.contains("TLS only"), "{e}");
        let e = parse("[server]\nticket_key_env = \"A\"\nticket_key_file = \"b\"\n").unwrap_err();
        assert!(e.message.contains("not both"), "{e}");
    }

    #[test]
    fn duplicate_and_odd_source_names_are_refused() {
        let e = parse("[databases.x]\nurl = \"sqlite://a.db\"\n[buckets.x]\nurl = \"file://d\"\n")
            .unwrap_err();
        assert!(e.message.contains("already used"), "{e}");
        let e = parse("[buckets.\"a/b\"]\nurl = \"file://d\"\n").unwrap_err();
        assert!(e.message.contains("a/b"), "{e}");
    }
}
