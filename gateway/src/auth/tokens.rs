//! Bearer tokens for people and BI tools: Handshake with Basic credentials returns a token
//! (the Flight convention pyarrow, ADBC and JDBC follow), later calls carry it.
//!
//! Passwords are stored only as argon2 hashes (PHC strings, made by `gateway hash-password`),
//! given inline or by reference. Tokens are random, held in memory, and expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;

use crate::error::{Error, ErrorKind, Result};

/// A user who may log in: a name and the argon2 hash of their password.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password_hash: String,
}

pub struct Tokens {
    users: HashMap<String, String>,
    ttl: Duration,
    live: Mutex<HashMap<String, (String, Instant)>>,
}

fn unauthenticated(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unauthenticated, message)
}

/// A hash to verify against when the user is unknown, so timing does not tell who exists.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Wm5kQ0JmQkVxN2dHc0ZqS1FjVkZ5dw";

impl Tokens {
    pub fn new(users: Vec<User>, ttl: Duration) -> Result<Self> {
        let mut map = HashMap::new();
        for u in users {
            PasswordHash::new(&u.password_hash).map_err(|e| {
                Error::invalid(format!(
                    "users.{}: password_hash is not an argon2 PHC string ({e}); make one with `gateway hash-password`",
                    u.name
                ))
            })?;
            map.insert(u.name, u.password_hash);
        }
        Ok(Self {
            users: map,
            ttl,
            live: Mutex::new(HashMap::new()),
        })
    }

    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// Check `Basic base64(user:password)` and return a fresh token for the user.
    pub fn login(&self, authorization: &str) -> Result<(String, String)> {
        let encoded = authorization
            .strip_prefix("Basic ")
            .ok_or_else(|| unauthenticated("Handshake needs Basic credentials"))?;
        // Some clients (ADBC) send base64 without padding: decode leniently.
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded.trim().trim_end_matches('='))
            .map_err(|_| unauthenticated("the Basic credentials are not base64"))?;
        let text = String::from_utf8(raw).map_err(|_| unauthenticated("bad Basic credentials"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| unauthenticated("bad Basic credentials"))?;
        let hash = self.users.get(user).map(String::as_str);
        let parsed = PasswordHash::new(hash.unwrap_or(DUMMY_HASH))
            .map_err(|_| Error::internal("a stored password hash does not parse"))?;
        let good = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        if !(good && hash.is_some()) {
            // Never say which of the two was wrong.
            return Err(unauthenticated("wrong user name or password"));
        }
        let token = random_token();
        let mut live = self.live.lock().expect("token lock");
        let now = Instant::now();
        live.retain(|_, (_, expires)| *expires > now);
        live.insert(token.clone(), (user.to_string(), now + self.ttl));
        Ok((token, user.to_string()))
    }

    /// The principal a bearer token stands for.
    pub fn principal(&self, token: &str) -> Result<String> {
        let live = self.live.lock().expect("token lock");
        match live.get(token) {
            Some((who, expires)) if *expires > Instant::now() => Ok(who.clone()),
            Some(_) => Err(unauthenticated("the token has expired; log in again")),
            None => Err(unauthenticated("unknown token; log in with Handshake")),
        }
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes
}

fn random_token() -> String {
    random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An argon2id PHC string for `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|e| Error::internal(format!("cannot make a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("cannot hash: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[test]
    fn login_gives_a_token_that_names_the_user_then_expires() {
        let hash = hash_password("s3cret").unwrap();
        let t = Tokens::new(
            vec![User {
                name: "alice".into(),
                password_hash: hash,
            }],
            Duration::from_millis(200),
        )
        .unwrap();
        let (token, who) = t.login(&basic("alice", "s3cret")).unwrap();
        assert_eq!(who, "alice");
        assert_eq!(t.principal(&token).unwrap(), "alice");
        std::thread::sleep(Duration::from_millis(300));
        assert!(t.principal(&token).unwrap_err().message.contains("expired"));
    }

    #[test]
    fn wrong_password_and_unknown_user_look_alike() {
        let t = Tokens::new(
            vec![User {
                name: "alice".into(),
                password_hash: hash_password("s3cret").unwrap(),
            }],
            Duration::from_secs(60),
        )
        .unwrap();
        let a = t.login(&basic("alice", "nope")).unwrap_err();
        let b = t.login(&basic("mallory", "s3cret")).unwrap_err();
        assert_eq!(a.message, b.message);
        assert_eq!(a.kind, ErrorKind::Unauthenticated);
        // Unpadded base64, as ADBC sends it.
        let unpadded = basic("alice", "s3cret").trim_end_matches('=').to_string();
        assert!(t.login(&unpadded).is_ok());
        assert!(t.principal("made-up").is_err());
    }

    #[test]
    fn a_bad_hash_in_config_is_named() {
        let e = Tokens::new(
            vec![User {
                name: "bob".into(),
                password_hash: "plaintext!".into(),
            }],
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert!(
            e.message.contains("users.bob") && e.message.contains("hash-password"),
            "{e}"
        );
    }
}
