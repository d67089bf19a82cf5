//! Who is calling, and what they may do.
//!
//! - [`tls`]: the server's TLS, and the principal a verified client certificate names.
//! - [`tokens`]: Handshake with Basic credentials, bearer tokens that expire.
//! - [`access`]: per-principal read, write and query rules over dataset names.
//! - [`tickets`]: signed tickets bound to a principal and an expiry.
//!
//! With neither `server.tls.client_ca` nor `[[users]]` configured, every caller may do
//! everything (the gateway then serves only loopback, or an explicitly insecure address).
//! With either, a call must come with a verified certificate or a valid token, and what no
//! access rule allows is denied, naming the principal and the dataset asked for only.

pub mod access;
pub mod tickets;
pub mod tls;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::metadata::MetadataMap;
use tonic::transport::CertificateDer;

pub use access::Right;
use access::Rules;
use mover_proto::Read;
use tickets::Tickets;
use tls::PrincipalFrom;
use tokens::Tokens;
pub use tokens::User;

use crate::error::{Error, ErrorKind, Result};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No authentication is configured: everything is allowed.
    Anyone,
    Principal(String),
}

impl Caller {
    pub fn name(&self) -> &str {
        match self {
            Caller::Anyone => "anyone",
            Caller::Principal(p) => p,
        }
    }
}

pub struct Auth {
    required: bool,
    /// Set when client certificates are required: how they name their principal.
    cert_principal: Option<PrincipalFrom>,
    tokens: Tokens,
    tickets: Tickets,
    rules: Rules,
    max_streams: usize,
    streams: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// What [`Auth`] is built from (the config's `server.tls`, `[[users]]`, `[[access]]` and
/// ticket keys, read by the server at start).
pub struct Settings<'a> {
    /// Set when client certificates are required: how they name their principal.
    pub cert_principal: Option<PrincipalFrom>,
    pub users: Vec<User>,
    pub token_ttl: Duration,
    pub ticket_key: Option<crate::secret::Secret>,
    pub ticket_ttl: Duration,
    pub rules: &'a [access::AccessRule],
    pub max_streams: usize,
}

impl Auth {
    pub fn new(settings: Settings<'_>) -> Result<Self> {
        let Settings {
            cert_principal,
            users,
            ..
        } = settings;
        let tokens = Tokens::new(users, settings.token_ttl)?;
        let required = cert_principal.is_some() || tokens.has_users();
        if !required && !settings.rules.is_empty() {
            return Err(Error::invalid(
                "[[access]] rules need authentication: configure server.tls.client_ca or [[users]]",
            ));
        }
        let ticket_key = match &settings.ticket_key {
            Some(key) => tickets::parse_key(key.expose().as_bytes()),
            None => {
                if required {
                    tracing::info!(
                        "no server.ticket_key_file: tickets are signed with a random key and die with this process"
                    );
                }
                tickets::random_key()
            }
        };
        let tickets = Tickets::new(ticket_key, settings.ticket_ttl)
            .map_err(|e| e.within("server.ticket_key"))?;
        Ok(Self {
            required,
            cert_principal,
            tokens,
            tickets,
            rules: Rules::compile(settings.rules)?,
            max_streams: settings.max_streams,
            streams: Mutex::new(HashMap::new()),
        })
    }

    /// The caller of a request: from its bearer token, else its verified certificate.
    pub fn identify(
        &self,
        metadata: &MetadataMap,
        peer_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    ) -> Result<Caller> {
        if !self.required {
            return Ok(Caller::Anyone);
        }
        if let Some(value) = metadata.get("authorization") {
            let value = value
                .to_str()
                .map_err(|_| unauthenticated("the authorization header is not text"))?;
            let token = value.strip_prefix("Bearer ").ok_or_else(|| {
                unauthenticated(
                    "calls carry `authorization: Bearer <token>`; log in with Handshake",
                )
            })?;
            return self.tokens.principal(token.trim()).map(Caller::Principal);
        }
        match (
            self.cert_principal,
            peer_certs.as_ref().and_then(|c| c.first()),
        ) {
            (Some(from), Some(cert)) => {
                tls::principal_of(cert.as_ref(), from).map(Caller::Principal)
            }
            _ => Err(unauthenticated(
                "this gateway needs a client certificate or a bearer token (Handshake with Basic credentials)",
            )),
        }
    }

    /// Handshake: Basic credentials in, a bearer token out; or a live bearer token in, the same out.
    pub fn login(&self, metadata: &MetadataMap) -> Result<String> {
        if !self.tokens.has_users() {
            return Err(Error::unsupported(
                "this gateway has no [[users]]: authenticate with a client certificate, or call without Handshake",
            ));
        }
        let value = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthenticated("Handshake needs `authorization: Basic ...`"))?;
        // A client holding a token may Handshake with it (the Flight SQL JDBC driver does):
        // the same token comes back if it is live.
        if let Some(token) = value.strip_prefix("Bearer ") {
            let token = token.trim();
            self.tokens.principal(token)?;
            return Ok(token.to_string());
        }
        let (token, user) = self.tokens.login(value)?;
        tracing::info!(principal = %user, "logged in");
        Ok(token)
    }

    /// A signed ticket for `read`, redeemable by `caller` only.
    pub fn issue_ticket(&self, read: &Read, caller: &Caller) -> Vec<u8> {
        self.tickets.issue(read, caller)
    }

    /// How long a ticket lives.
    pub fn ticket_ttl(&self) -> std::time::Duration {
        self.tickets.ttl()
    }

    /// A ticket, and when it expires (seconds since the Unix epoch).
    pub fn issue_ticket_until(&self, read: &Read, caller: &Caller) -> (Vec<u8>, u64) {
        self.tickets.issue_until(read, caller)
    }

    /// The read a ticket stands for, if it is genuine, unexpired and `caller`'s.
    pub fn redeem_ticket(&self, ticket: &[u8], caller: &Caller) -> Result<Read> {
        self.tickets.redeem(ticket, caller)
    }

    /// Deny what no rule allows; the error names the principal and the name asked for only.
    pub fn check(&self, caller: &Caller, right: Right, name: &str) -> Result<()> {
        match caller {
            Caller::Anyone => Ok(()),
            Caller::Principal(p) if self.rules.allows(p, right, name) => Ok(()),
            Caller::Principal(p) => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("{p} may not {} {name}", right.verb()),
            )),
        }
    }

    /// Whether the rules let the caller write anything at all (anyone may, where no rules
    /// apply).
    /// May `caller` see and cancel every principal's moves? Without authentication there is
    /// one caller, who may.
    pub fn is_admin(&self, caller: &Caller) -> bool {
        match caller {
            Caller::Anyone => true,
            Caller::Principal(p) => self.rules.is_admin(p),
        }
    }

    pub fn may_write_anything(&self, caller: &Caller) -> bool {
        match caller {
            Caller::Anyone => true,
            Caller::Principal(p) => self.rules.writes_anything(p),
        }
    }

    /// Whether a listing shows `name` to the caller (prefixes end in `/`).
    pub fn may_list(&self, caller: &Caller, name: &str) -> bool {
        match caller {
            Caller::Anyone => true,
            Caller::Principal(p) if name.ends_with('/') => self.rules.may_see_under(p, name),
            Caller::Principal(p) => self.rules.allows(p, Right::Read, name),
        }
    }

    /// A slot among the caller's concurrent streams; held until the stream ends.
    pub fn stream_slot(&self, caller: &Caller) -> Result<Option<OwnedSemaphorePermit>> {
        let Caller::Principal(p) = caller else {
            return Ok(None);
        };
        let sem = self
            .streams
            .lock()
            .expect("streams lock")
            .entry(p.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.max_streams)))
            .clone();
        sem.try_acquire_owned().map(Some).map_err(|_| {
            Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "{p} already has {} streams running (server.max_streams_per_principal)",
                    self.max_streams
                ),
            )
        })
    }
}

fn unauthenticated(message: &str) -> Error {
    Error::new(ErrorKind::Unauthenticated, message)
}
