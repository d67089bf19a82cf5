//! Signed tickets: what GetFlightInfo hands out and DoGet redeems.
//!
//! A ticket holds the whole read (self-contained: no state on the gateway) plus the principal
//! it was issued to and an expiry, MACed with HMAC-SHA256 under the gateway's ticket key. So a
//! ticket cannot be altered (a part of a partitioned read, a column list) or made up, cannot be
//! redeemed by another principal, and stops working when it expires. With the key from the
//! config (`server.ticket_key_file` or `ticket_key_env`), a restarted gateway redeems the
//! tickets it issued before.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use mover_proto::{Read, SignedTicket, TicketBody};
use prost::Message;

use super::Caller;
use crate::error::{Error, ErrorKind, Result};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Shorter keys are refused: the key is all that stands between a caller and a forged ticket.
pub const MIN_KEY_BYTES: usize = 32;

pub struct Tickets {
    key: Vec<u8>,
    ttl: Duration,
}

fn refused(why: &str) -> Error {
    Error::new(ErrorKind::Unauthenticated, format!("ticket refused: {why}"))
}

impl Tickets {
    pub fn new(key: Vec<u8>, ttl: Duration) -> Result<Self> {
        if key.len() < MIN_KEY_BYTES {
            return Err(Error::invalid(format!(
                "the ticket key has {} bytes; it needs at least {MIN_KEY_BYTES} (make one with `openssl rand -hex 32`)",
                key.len()
            )));
        }
        Ok(Self { key, ttl })
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// A ticket for `read`, redeemable by `caller` until the ticket TTL has passed.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, read: &Read, caller: &Caller) -> Vec<u8> {
        self.issue_until(read, caller).0
    }

    /// A ticket, and when it expires (seconds since the Unix epoch).
    pub fn issue_until(&self, read: &Read, caller: &Caller) -> (Vec<u8>, u64) {
        let expires_at = (SystemTime::now() + self.ttl)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let body = TicketBody {
            read: Some(read.clone()),
            principal: caller.name().to_string(),
            expires_at,
        }
        .encode_to_vec();
        let mut mac = self.mac();
        mac.update(&body);
        let ticket = SignedTicket {
            mac: mac.finalize().into_bytes().to_vec(),
            body,
        }
        .encode_to_vec();
        (ticket, expires_at)
    }

    /// The read a ticket stands for, if it is genuine, unexpired and `caller`'s. A gateway
    /// without authentication (every caller is `Anyone`) also takes a bare `Read`.
    pub fn redeem(&self, ticket: &[u8], caller: &Caller) -> Result<Read> {
        let signed = SignedTicket::decode(ticket)
            .ok()
            .filter(|s| !s.mac.is_empty());
        let Some(signed) = signed else {
            if *caller == Caller::Anyone {
                return Read::decode(ticket).map_err(|e| {
                    Error::invalid(format!("the ticket is not a mover.v1 ticket: {e}"))
                });
            }
            return Err(refused(
                "it is not a signed ticket; take tickets from GetFlightInfo",
            ));
        };
        let mut mac = self.mac();
        mac.update(&signed.body);
        mac.verify_slice(&signed.mac)
            .map_err(|_| refused("its signature does not verify (altered, or not issued here)"))?;
        let body = TicketBody::decode(signed.body.as_slice())
            .map_err(|_| refused("its body does not decode"))?;
        if body.principal != caller.name() {
            return Err(refused(&format!(
                "it was issued to another principal, not {}",
                caller.name()
            )));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if body.expires_at <= now {
            return Err(refused("it has expired; call GetFlightInfo again"));
        }
        body.read.ok_or_else(|| refused("it names no read"))
    }
}

/// A key for a gateway whose config names none: random, so its tickets die with the process.
pub fn random_key() -> Vec<u8> {
    super::tokens::random_bytes::<32>().to_vec()
}

/// A key from a file or variable: hex (as `openssl rand -hex 32` writes it) or raw bytes.
pub fn parse_key(text: &[u8]) -> Vec<u8> {
    let trimmed = std::str::from_utf8(text).map(str::trim).unwrap_or("");
    let is_hex = !trimmed.is_empty()
        && trimmed.len().is_multiple_of(2)
        && trimmed.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        (0..trimmed.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&trimmed[i..i + 2], 16).expect("checked hex"))
            .collect()
    } else {
        text.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mover_proto::{Path, read::What};

    fn read(name: &str) -> Read {
        Read {
            what: Some(What::Path(Path {
                parts: name.split('/').map(str::to_string).collect(),
            })),
            ..Default::default()
        }
    }

    fn alice() -> Caller {
        Caller::Principal("alice".into())
    }

    fn tickets(ttl: Duration) -> Tickets {
        Tickets::new(vec![7; 32], ttl).unwrap()
    }

    #[test]
    fn a_ticket_redeems_for_its_principal_only() {
        let t = tickets(Duration::from_secs(60));
        let ticket = t.issue(&read("demo/main/t"), &alice());
        assert_eq!(t.redeem(&ticket, &alice()).unwrap(), read("demo/main/t"));
        let e = t
            .redeem(&ticket, &Caller::Principal("bob".into()))
            .unwrap_err();
        assert!(e.message.contains("another principal"), "{e}");
        // A gateway restarted with the same key redeems it.
        let again = Tickets::new(vec![7; 32], Duration::from_secs(60)).unwrap();
        assert!(again.redeem(&ticket, &alice()).is_ok());
        // Another key does not.
        let other = Tickets::new(vec![8; 32], Duration::from_secs(60)).unwrap();
        assert!(other.redeem(&ticket, &alice()).is_err());
    }

    #[test]
    fn altered_made_up_and_expired_tickets_are_refused() {
        let t = tickets(Duration::from_secs(60));
        let ticket = t.issue(&read("demo/main/t"), &alice());
        let mut signed = SignedTicket::decode(ticket.as_slice()).unwrap();
        let mut body = TicketBody::decode(signed.body.as_slice()).unwrap();
        body.read = Some(read("demo/main/secret"));
        signed.body = body.encode_to_vec();
        let e = t.redeem(&signed.encode_to_vec(), &alice()).unwrap_err();
        assert!(e.message.contains("signature"), "{e}");
        assert_eq!(e.kind, ErrorKind::Unauthenticated);
        // A bare read is no ticket when callers are authenticated...
        let bare = read("demo/main/t").encode_to_vec();
        assert!(t.redeem(&bare, &alice()).is_err());
        // ...but is on a gateway that authenticates nobody.
        assert!(t.redeem(&bare, &Caller::Anyone).is_ok());
        let short = tickets(Duration::ZERO);
        let ticket = short.issue(&read("demo/main/t"), &alice());
        let e = short.redeem(&ticket, &alice()).unwrap_err();
        assert!(e.message.contains("expired"), "{e}");
    }

    #[test]
    fn keys_are_hex_or_raw_and_long_enough() {
        assert_eq!(parse_key(b"00ff10\n"), vec![0, 255, 16]);
        assert_eq!(parse_key(b"not hex at all"), b"not hex at all".to_vec());
        let e = Tickets::new(vec![1; 16], Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(e.message.contains("openssl rand"), "{e}");
    }
}
