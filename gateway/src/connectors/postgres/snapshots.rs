//! The snapshots of Postgres reads split into block ranges. GetFlightInfo exports one from a
//! `REPEATABLE READ` transaction that the gateway holds open (on a connection of its own) until
//! the tickets expire, is renewed, or CancelFlightInfo releases it; every part imports it
//! (`SET TRANSACTION SNAPSHOT`), so the parts of one read are one consistent snapshot however
//! long apart they run, and a part read again returns the same rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use tokio::sync::watch;

use super::db_error;
use crate::error::{Error, ErrorKind, Result};

/// Snapshots one database holds at once: each holds a connection.
const MAX_HELD: usize = 32;

/// The held snapshots of one database, by id; dropping a sender ends its holder.
#[derive(Clone, Default)]
pub(super) struct Held {
    holders: Arc<Mutex<HashMap<String, watch::Sender<Instant>>>>,
}

impl Held {
    /// Export a snapshot on `conn` and hold it for `hold`; its id.
    pub(super) async fn export(&self, mut conn: PgConnection, hold: Duration) -> Result<String> {
        if self.lock().len() >= MAX_HELD {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "{MAX_HELD} split reads of this database hold a snapshot; cancel one (CancelFlightInfo) or wait for its tickets to expire"
                ),
            ));
        }
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(|e| db_error(e, "starting the read's snapshot"))?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| db_error(e, "exporting the read's snapshot"))?;
        let (tx, mut deadline) = watch::channel(Instant::now() + hold);
        self.lock().insert(id.clone(), tx);
        let (holders, key) = (Arc::clone(&self.holders), id.clone());
        tokio::spawn(async move {
            loop {
                let until = *deadline.borrow_and_update();
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => break,
                    changed = deadline.changed() => if changed.is_err() { break },
                }
            }
            holders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            // Ending the transaction ends the snapshot.
            let _ = conn.close().await;
        });
        Ok(id)
    }

    /// Hold snapshot `id` until `until`, or release it now; false if it is not held.
    pub(super) fn hold(&self, id: &str, until: Option<Instant>) -> bool {
        let mut holders = self.lock();
        match until {
            None => holders.remove(id).is_some(),
            Some(until) => holders.get(id).is_some_and(|tx| tx.send(until).is_ok()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Instant>>> {
        self.holders.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Start a part's read on `conn` in snapshot `id`.
pub(super) async fn import(conn: &mut PgConnection, id: &str) -> Result<()> {
    // The id comes from our own signed ticket; it is checked anyway, as it goes into SQL text
    // (SET TRANSACTION SNAPSHOT takes no parameter).
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(Error::invalid(format!("{id:?} is not a snapshot id")));
    }
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| db_error(e, "starting a part's read"))?;
    conn.execute(sqlx::AssertSqlSafe(format!("SET TRANSACTION SNAPSHOT '{id}'")))
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(_) => Error::new(
                ErrorKind::FailedPrecondition,
                "this read's snapshot was released (its tickets expired, or the read was cancelled); call GetFlightInfo again",
            ),
            e => db_error(e, "importing the read's snapshot"),
        })?;
    Ok(())
}
