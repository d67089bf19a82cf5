//! The moves running now (the `move` action's), by id, for `list_moves` and `cancel_move`:
//! a move registers when it starts and is gone when it ends, however it ends. A principal sees
//! and cancels only the moves it began, unless an access rule makes it an admin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::Future;
use mover_proto::MoveInfo;
use tokio::sync::oneshot;

use crate::error::{Error, ErrorKind, Result};
use crate::transfer::Meter;

struct Entry {
    principal: String,
    source: String,
    target: String,
    meter: Arc<Meter>,
    cancel: Option<oneshot::Sender<()>>,
}

#[derive(Clone, Default)]
pub struct MovingNow {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

/// A move's place in [`MovingNow`]; dropped, the move is off the list.
struct Registered {
    moving: MovingNow,
    id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.moving.lock().remove(&self.id);
    }
}

impl MovingNow {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `work`, the move `id` of `source` to `target` by `principal`, listed while it runs; if
    /// it is cancelled it is dropped (its target rolls back) and fails with CANCELLED.
    pub fn track<T>(
        &self,
        id: String,
        principal: &str,
        (source, target): (String, String),
        meter: Arc<Meter>,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
    {
        let (cancel, cancelled) = oneshot::channel();
        let entry = Entry {
            principal: principal.into(),
            source,
            target,
            meter,
            cancel: Some(cancel),
        };
        self.lock().insert(id.clone(), entry);
        let registered = Registered {
            moving: self.clone(),
            id,
        };
        async move {
            let _registered = registered;
            tokio::select! {
                done = work => done,
                Ok(()) = cancelled => Err(Error::new(
                    ErrorKind::Cancelled,
                    "the move was cancelled (cancel_move); its target is as it was",
                )),
            }
        }
    }

    /// `principal`'s moves running now (every principal's for an `admin`), oldest first.
    pub fn list(&self, principal: &str, admin: bool) -> Vec<MoveInfo> {
        let mut moves: Vec<MoveInfo> = self
            .lock()
            .iter()
            .filter(|(_, e)| admin || e.principal == principal)
            .map(|(id, e)| {
                let p = e.meter.progress();
                MoveInfo {
                    id: id.clone(),
                    principal: e.principal.clone(),
                    source: e.source.clone(),
                    target: e.target.clone(),
                    rows_read: p.rows_read,
                    bytes_read: p.bytes_read,
                    seconds: p.seconds,
                }
            })
            .collect();
        moves.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        moves
    }

    /// Cancel `principal`'s move `id` (any principal's for an `admin`).
    pub fn cancel(&self, principal: &str, admin: bool, id: &str) -> Result<()> {
        let mut entries = self.lock();
        match entries.get_mut(id) {
            Some(e) if admin || e.principal == principal => {
                if let Some(cancel) = e.cancel.take() {
                    let _ = cancel.send(());
                }
                Ok(())
            }
            // Another principal's move is as unknown as one that never was.
            _ => Err(Error::not_found(format!(
                "no move {id:?} of {principal} is running (list_moves tells which are)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_principal_sees_and_cancels_only_its_own_moves() {
        let moving = MovingNow::default();
        let forever = || async {
            futures::future::pending::<()>().await;
            Ok::<(), Error>(())
        };
        let names = || ("files/a.csv".to_string(), "db/main/a".to_string());
        let alice =
            tokio::spawn(moving.track("m1".into(), "alice", names(), Arc::default(), forever()));
        let bob = moving.track("m2".into(), "bob", names(), Arc::default(), forever());
        let listed = moving.list("alice", false);
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].id.as_str(), listed[0].source.as_str()),
            ("m1", "files/a.csv")
        );
        let refused = moving.cancel("bob", false, "m1").unwrap_err();
        assert_eq!(refused.kind, ErrorKind::NotFound);
        // An admin sees both, and may cancel either.
        assert_eq!(moving.list("carol", true).len(), 2);
        moving.cancel("alice", false, "m1").unwrap();
        let ended = alice.await.unwrap().unwrap_err();
        assert_eq!(ended.kind, ErrorKind::Cancelled);
        assert!(moving.list("alice", false).is_empty());
        let bob = tokio::spawn(bob);
        moving.cancel("carol", true, "m2").unwrap();
        assert_eq!(bob.await.unwrap().unwrap_err().kind, ErrorKind::Cancelled);
        assert!(moving.list("carol", true).is_empty());
    }
}
