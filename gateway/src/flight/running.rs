//! The DoGets running now, by ticket and principal, so CancelFlightInfo can stop them. A
//! ticket is stateless, so this is the only place a running read can be found: a DoGet
//! registers when it starts and is gone when its stream ends or is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::service::Stream;

struct Entry {
    ticket: Vec<u8>,
    principal: String,
    cancel: oneshot::Sender<()>,
}

#[derive(Clone, Default)]
pub struct Running {
    entries: Arc<Mutex<HashMap<u64, Entry>>>,
    next: Arc<AtomicU64>,
}

/// A running DoGet's place in [`Running`]; dropping it takes the DoGet off.
pub struct Registered {
    running: Running,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.running.lock().remove(&self.id);
    }
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().expect("the running reads' lock")
    }

    /// `data`, the stream of a DoGet of `ticket` by `principal`, registered until it ends; if
    /// it is cancelled it ends with CANCELLED (never as if it were complete).
    pub fn track(
        &self,
        ticket: &[u8],
        principal: &str,
        stopping: CancellationToken,
        data: Stream<arrow_flight::FlightData>,
    ) -> Stream<arrow_flight::FlightData> {
        let (cancel, cancelled) = oneshot::channel();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Entry {
                ticket: ticket.to_vec(),
                principal: principal.to_string(),
                cancel,
            },
        );
        let registered = Registered {
            running: self.clone(),
            id,
        };
        let state = (data, Some(cancelled), registered);
        futures::stream::unfold(state, move |(mut data, cancelled, registered)| {
            let stopping = stopping.clone();
            async move {
                let mut cancelled = cancelled?;
                let stopped = tokio::select! {
                    item = data.next() => {
                        return item.map(|item| (item, (data, Some(cancelled), registered)));
                    }
                    _ = &mut cancelled => {
                        Status::cancelled("the read was cancelled (CancelFlightInfo)")
                    }
                    _ = stopping.cancelled() => super::progress::stopped(),
                };
                // Dropping the source stops the read at the database.
                drop(data);
                Some((
                    Err(stopped),
                    (futures::stream::empty().boxed(), None, registered),
                ))
            }
        })
        .boxed()
    }

    /// Cancel `principal`'s running DoGets of any of `tickets`; how many were cancelled.
    pub fn cancel(&self, tickets: &[&[u8]], principal: &str) -> usize {
        let mut entries = self.lock();
        let ids: Vec<u64> = entries
            .iter()
            .filter(|(_, e)| e.principal == principal && tickets.contains(&e.ticket.as_slice()))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(entry) = entries.remove(id) {
                let _ = entry.cancel.send(());
            }
        }
        ids.len()
    }
}
