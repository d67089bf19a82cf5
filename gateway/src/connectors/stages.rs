//! The names connectors give the parts of writes in parts they stage:
//! `EXPIRY-WRITE-PARTITION-ATTEMPT`, the write's expiry first (seconds since the Unix epoch,
//! in hex). A gateway killed before a write's commit or abort leaves its staged parts behind,
//! and no record of them; the name alone tells any gateway that comes upon one that its write
//! is over, so it can be removed ([`crate::connectors::Connector::sweep_parts`]).
//!
//! A sweep may come upon what this process is still writing (a single write outliving the
//! expiry it named, an upload's temporary file): [`Live`] holds those names, and sweeps here
//! leave them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The stage name of `attempt` of `partition` of the write `write`, which expires at
/// `expires_at`: letters, digits and `-` only.
pub fn name(expires_at: SystemTime, write: &str, partition: u32, attempt: u32) -> String {
    let expiry = expires_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let write: String = write
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    format!("{expiry:x}-{write}-{partition}-{attempt}")
}

/// When the write of the stage `stage` (as [`name`] made it, with `-` or `separator` between
/// its fields) expires; `None` for any other name, which is never swept.
pub fn expiry(stage: &str, separator: char) -> Option<SystemTime> {
    let fields: Vec<&str> = stage.split(['-', separator]).collect();
    let [expiry, write, partition, attempt] = fields.as_slice() else {
        return None;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    let ours = (1..=16).contains(&expiry.len())
        && !write.is_empty()
        && write.bytes().all(|b| b.is_ascii_alphanumeric())
        && digits(partition)
        && digits(attempt);
    if !ours {
        return None;
    }
    let seconds = u64::from_str_radix(expiry, 16).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Whether the stage `stage` belongs to a write that expired before `expired_before`.
pub fn is_stale(stage: &str, separator: char, expired_before: SystemTime) -> bool {
    expiry(stage, separator).is_some_and(|at| at < expired_before)
}

/// The names (stages, objects being uploaded) this process is writing now, each with how many
/// holders it has.
static LIVE: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

/// A name held as this process's own while the guard lives: clones hold it too.
#[derive(Clone)]
pub struct Live {
    _held: Arc<LiveName>,
}

struct LiveName(String);

impl Live {
    pub fn hold(name: impl Into<String>) -> Self {
        let name = name.into();
        let mut live = LIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *live
            .get_or_insert_default()
            .entry(name.clone())
            .or_default() += 1;
        Self {
            _held: Arc::new(LiveName(name)),
        }
    }

    /// Whether this process is writing `name` now.
    pub fn holds(name: &str) -> bool {
        let live = LIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        live.as_ref().is_some_and(|m| m.contains_key(name))
    }
}

impl Drop for LiveName {
    fn drop(&mut self) {
        let mut live = LIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(map) = live.as_mut()
            && let Some(n) = map.get_mut(&self.0)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_carries_its_write_expiry_and_nothing_else_is_taken_for_one() {
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let stage = name(at, "0123456789abcdef0123456789abcdef", 7, 2);
        assert_eq!(stage, "6b49d200-0123456789abcdef-7-2");
        assert_eq!(expiry(&stage, '-'), Some(at));
        assert_eq!(expiry(&stage.replace('-', "_"), '_'), Some(at));
        assert!(is_stale(&stage, '-', at + Duration::from_secs(1)));
        assert!(!is_stale(&stage, '-', at));
        // A single prefix write's run, a user's own table, a forged expiry: never swept.
        for other in [
            "18a2b3c4d5e6f708",
            "orders",
            "zz-ab-1-0",
            "6b49d200-ab-1",
            "6b49d200-a b-1-0",
            "",
        ] {
            assert_eq!(expiry(other, '_'), None, "{other}");
        }
    }

    #[test]
    fn a_live_name_is_held_while_any_of_its_guards_lives() {
        let name = "live-test-7f3a";
        assert!(!Live::holds(name));
        let first = Live::hold(name);
        let again = Live::hold(name);
        let clone = first.clone();
        drop(first);
        drop(again);
        assert!(Live::holds(name));
        drop(clone);
        assert!(!Live::holds(name));
    }
}
