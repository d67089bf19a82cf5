//! Undoing what a write staged, however the write ends.
//!
//! A sink's future can be dropped at any `.await` (a client that hung up, a Ctrl-C on a move),
//! and a dropped future runs no more of its own code: cleanup written after an `.await` never
//! happens. So every sink holds what it has staged (open uploads, objects already published,
//! staging tables) in a guard whose `Drop` undoes it, and committing disarms the guard.
//!
//! `Drop` cannot await, so a guard's undo runs as a task of its own, started by [`spawn`]. The
//! tasks are counted here so that a gateway shutting down, and a test, can wait for every undo
//! to finish ([`settled`]) instead of guessing how long cleanup takes.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

static PENDING: AtomicUsize = AtomicUsize::new(0);
static IDLE: Notify = Notify::const_new();

/// Run `undo` to its end as a task of its own, even if whoever started it is dropped.
pub fn spawn(what: &str, undo: impl Future<Output = ()> + Send + 'static) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            what,
            "no runtime left to undo a staged write on; it may remain"
        );
        return;
    };
    PENDING.fetch_add(1, Ordering::SeqCst);
    runtime.spawn(async move {
        undo.await;
        if PENDING.fetch_sub(1, Ordering::SeqCst) == 1 {
            IDLE.notify_waiters();
        }
    });
}

/// Run `work` to its end in a task of its own and return its output; if the caller is dropped
/// while waiting (a step that cannot be left half-done: starting or completing an upload), the
/// output nobody took goes to `orphaned`, which undoes it.
pub async fn outliving<T, W, O, F>(what: &str, work: W, orphaned: O) -> crate::error::Result<T>
where
    T: Send + 'static,
    W: Future<Output = T> + Send + 'static,
    O: FnOnce(T) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let label = what.to_string();
    spawn(what, async move {
        let delivery = Delivery {
            value: Some(work.await),
            orphaned: Some(Box::new(move |out| Box::pin(orphaned(out)))),
            what: label,
        };
        if let Err(mut delivery) = tx.send(delivery) {
            delivery.orphan().await;
        }
    });
    // The task ends without sending only when the runtime stops under it.
    let mut delivery = rx.await.map_err(|_| {
        crate::error::Error::internal(format!("{what}: the gateway is shutting down"))
    })?;
    Ok(delivery.take())
}

type Orphaned<T> = Box<dyn FnOnce(T) -> futures::future::BoxFuture<'static, ()> + Send>;

/// A step's output on its way to the caller. Sent, it may still be dropped unread (the caller
/// was dropped after the send and before it looked), so it is a guard too: dropped untaken,
/// it hands the output to its undo.
struct Delivery<T: Send + 'static> {
    value: Option<T>,
    orphaned: Option<Orphaned<T>>,
    what: String,
}

impl<T: Send + 'static> Delivery<T> {
    fn take(&mut self) -> T {
        self.value.take().expect("a delivery is taken once")
    }

    async fn orphan(&mut self) {
        if let (Some(value), Some(orphaned)) = (self.value.take(), self.orphaned.take()) {
            orphaned(value).await;
        }
    }
}

impl<T: Send + 'static> Drop for Delivery<T> {
    fn drop(&mut self) {
        if let (Some(value), Some(orphaned)) = (self.value.take(), self.orphaned.take()) {
            spawn(&self.what, orphaned(value));
        }
    }
}

/// Every undo [`spawn`]ed so far has finished.
pub async fn settled() {
    loop {
        let idle = IDLE.notified();
        tokio::pin!(idle);
        // Registered before the count is read, so a wake-up between the two is not lost.
        idle.as_mut().enable();
        if PENDING.load(Ordering::SeqCst) == 0 {
            return;
        }
        idle.await;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_step_whose_caller_left_is_undone() {
        let undone = Arc::new(AtomicBool::new(false));
        let flag = undone.clone();
        let step = outliving(
            "test",
            async {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                7
            },
            move |n| async move { flag.store(n == 7, Ordering::SeqCst) },
        );
        let _ = tokio::time::timeout(std::time::Duration::from_millis(1), step).await;
        settled().await;
        assert!(undone.load(Ordering::SeqCst));
        // Delivered, then dropped unread (the caller left between the send and its look):
        // undone all the same.
        let undone = Arc::new(AtomicBool::new(false));
        let flag = undone.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<Delivery<u8>>();
        tx.send(Delivery {
            value: Some(9),
            orphaned: Some(Box::new(move |n| {
                Box::pin(async move { flag.store(n == 9, Ordering::SeqCst) })
            })),
            what: "test".into(),
        })
        .ok()
        .expect("the receiver is there");
        drop(rx);
        settled().await;
        assert!(undone.load(Ordering::SeqCst));
        // A caller that waits gets the output, and nothing is undone.
        let kept = outliving("test", async { 8 }, |_| async { panic!("undone") }).await;
        assert_eq!(kept.unwrap(), 8);
    }

    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[tokio::test]
    async fn an_undo_outlives_the_future_that_started_it() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let write = async move {
            spawn("test", async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                flag.store(true, Ordering::SeqCst);
            });
            futures::future::pending::<()>().await;
        };
        // The write is dropped mid-way, as a cancelled request's future is.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(1), write).await;
        settled().await;
        assert!(done.load(Ordering::SeqCst));
    }
}
