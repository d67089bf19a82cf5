//! Loads: `LOAD DATA LOCAL INFILE` fed from the Arrow stream (several statements at once into
//! a staging table with `load_streams`), or multi-row INSERTs where the server has
//! `local_infile` off. A create or overwrite loads a staging table and swaps it in with one
//! `RENAME TABLE`; an append is one InnoDB transaction. The staging table is a guard: dropped
//! with the load unless it was swapped in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arrow::datatypes::{Schema, SchemaRef};
use bytes::Bytes;
use futures::StreamExt;
use mover_proto::ExistingTable;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use super::infile::{self, StreamHandler};
use super::types::{self, Declared};
use super::{Mysql, Table, db_error, encode, quote};
use crate::connectors::plan::{self, Plan};
use crate::connectors::{WriteReport, undo};
use crate::error::{CellError, Error, Result};
use crate::transfer::BatchStream;

/// One load into one table.
pub(super) struct Load<'a> {
    mysql: &'a Mysql,
    conn: Conn,
    handler: Arc<StreamHandler>,
    local_infile: bool,
    table: Table,
    schema: SchemaRef,
    batches: Option<BatchStream>,
    /// Per incoming column: whether the target column is a BIT, which takes numbers, not text.
    bits: Vec<bool>,
}

/// A table a load made, dropped unless kept, even if the load is cancelled: its staging table
/// (kept once swapped in), and the table a swap replaced (dropped once the swap is done).
///
/// Armed before the statement that makes the table runs: a load cancelled while the server
/// still runs that statement (a CREATE or a RENAME whose answer never came) must not leave the
/// table behind, so the guard first ends the load's connection (`on`) and waits until the
/// server has let it go, and only then drops the table if it is there (the fault suite found
/// both leaks).
struct Staging {
    mysql: Mysql,
    table: Table,
    on: u32,
    /// When the guard was armed: a server started since has lost `on`.
    armed_at: SystemTime,
    kept: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let (mysql, table, on, armed_at) = (
            self.mysql.clone(),
            self.table.clone(),
            self.on,
            self.armed_at,
        );
        undo::spawn("the staging table of a dropped load", async move {
            // The server may be down (a load fails when its server dies, and it may be
            // restarting): it is tried again for a while; past that, a sweep drops the table.
            let deadline = Instant::now() + UNDO_TRIED_FOR;
            let mut pause = Duration::from_millis(200);
            loop {
                let Err(e) = drop_staging(&mysql, &table, on, armed_at).await else {
                    return;
                };
                if Instant::now() + pause > deadline {
                    tracing::warn!(error = %e, %table, "cannot drop a failed load's staging table; a sweep will");
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        });
    }
}

/// How long a failed load's staging table is tried to be dropped while its server does not
/// answer.
const UNDO_TRIED_FOR: Duration = Duration::from_secs(120);

/// End the load's connection `on` (if it still runs, its statement would go on using the
/// table), wait until the server lets it go, and drop `table`. Once the server has restarted
/// since the guard was armed at `armed_at`, `on` is gone, and may be another's: it is left.
async fn drop_staging(mysql: &Mysql, table: &Table, on: u32, armed_at: SystemTime) -> Result<()> {
    let mut conn = mysql.connect().await?;
    let sql = "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'";
    let uptime: Option<String> = conn.query_first(sql).await.map_err(|e| db_error(e, sql))?;
    let uptime = uptime
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    // A second of slack for the clocks' rounding: a restart that close to the arming would
    // have ended the load's connection anyway.
    let restarted = SystemTime::now()
        .checked_sub(Duration::from_secs(uptime))
        .is_some_and(|started| started + Duration::from_secs(1) > armed_at);
    if !restarted {
        let _ = conn.query_drop(format!("KILL {on}")).await;
        let gone = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {on}");
        for _ in 0..100 {
            match conn.query_first::<u64, _>(gone.as_str()).await {
                Ok(Some(0)) | Err(_) => break,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    let sql = format!("DROP TABLE IF EXISTS {}", table.quoted());
    conn.query_drop(&sql).await.map_err(|e| db_error(e, &sql))
}

/// A staging (or replaced) table's name: `PREFIX<connection>_<user tag>_<random>`, the server's
/// id of the connection that loads it and a tag of the user that connection logged in as. A
/// gateway killed mid-load leaves the table behind and no record of it; the name alone lets
/// any gateway of that user tell, from the server's process list, that its load is over
/// ([`sweep_orphans`]).
fn stage_name(prefix: &str, connection: u32, user: &str) -> String {
    random_name(&format!("{prefix}{connection}_{}_", user_tag(user)))
}

/// Four hex digits of the user's name: a user sees only its own connections in the process
/// list (without the PROCESS privilege), so it judges only its own tables.
fn user_tag(user: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(user.as_bytes());
    format!("{:02x}{:02x}", hash[0], hash[1])
}

/// Drop the staging and replaced tables of loads that are over: tables named by
/// [`stage_name`] for this user whose connection the server no longer lists. How many.
pub(super) async fn sweep_orphans(mysql: &Mysql) -> Result<usize> {
    let mut conn = mysql.connect().await?;
    let tag = user_tag(&mysql.user());
    let sql = "SELECT table_schema, table_name FROM information_schema.tables \
               WHERE table_name LIKE 'mover\\_stage\\_%' OR table_name LIKE 'mover\\_old\\_%'";
    let tables: Vec<(String, String)> = conn.query(sql).await.map_err(|e| db_error(e, sql))?;
    let sql = "SELECT ID FROM information_schema.PROCESSLIST";
    let live: std::collections::HashSet<u64> = conn
        .query(sql)
        .await
        .map_err(|e| db_error(e, sql))?
        .into_iter()
        .collect();
    let mut dropped = 0;
    for (database, name) in tables {
        if stage_connection(&name, &tag).is_none_or(|id| live.contains(&id)) {
            continue;
        }
        let table = Table { database, name };
        let sql = format!("DROP TABLE IF EXISTS {}", table.quoted());
        conn.query_drop(&sql).await.map_err(|e| db_error(e, &sql))?;
        tracing::info!(%table, "dropped the staging table of a load whose connection is gone");
        dropped += 1;
    }
    Ok(dropped)
}

/// The connection a table named by [`stage_name`] for the user tagged `tag` was made by;
/// `None` for any other name (not ours to judge).
fn stage_connection(name: &str, tag: &str) -> Option<u64> {
    let rest = name
        .strip_prefix("mover_stage_")
        .or_else(|| name.strip_prefix("mover_old_"))?;
    let fields: Vec<&str> = rest.split('_').collect();
    match fields.as_slice() {
        [id, user, random] if *user == tag && !random.is_empty() => id.parse().ok(),
        _ => None,
    }
}

pub(super) fn random_name(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .expect("the system random source works");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

impl<'a> Load<'a> {
    pub(super) async fn new(
        mysql: &'a Mysql,
        table: Table,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<Self> {
        let (mut conn, handler) = infile::connection(mysql).await?;
        let local_infile: Option<i64> = conn
            .query_first("SELECT @@local_infile")
            .await
            .map_err(|e| db_error(e, "reading local_infile"))?;
        let (schema, batches) = Self::with_text_columns(&mut conn, schema, batches).await?;
        Ok(Self {
            mysql,
            conn,
            handler,
            local_infile: local_infile == Some(1),
            table,
            schema,
            batches: Some(batches),
            bits: vec![],
        })
    }

    /// Uuids, lists and structs as the text MySQL takes them in ([`types::text_view`]).
    async fn with_text_columns(
        conn: &mut Conn,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<(SchemaRef, BatchStream)> {
        if !schema
            .fields()
            .iter()
            .any(|f| crate::convert::is_uuid(f) || f.data_type().is_nested())
        {
            return Ok((schema, batches));
        }
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| db_error(e, "reading the server's version"))?;
        let uuid_type = types::uuid_type(version.as_deref().unwrap_or_default());
        let Some(view) = types::text_view(&schema, uuid_type) else {
            return Ok((schema, batches));
        };
        let to = view.clone();
        let batches = batches
            .map(move |b| b.and_then(|b| crate::records::as_text::batch_as_text(&b, &to, true)))
            .boxed();
        Ok((view, batches))
    }

    pub(super) async fn run(mut self, existing: plan::Existing) -> Result<WriteReport> {
        let declared = self.mysql.declared(&mut self.conn, &self.table).await?;
        let into_existing = matches!(
            existing.mode,
            ExistingTable::Append
                | ExistingTable::TruncateAndOverwrite
                | ExistingTable::DeleteAndOverwrite
        );
        self.bits = self
            .schema
            .fields()
            .iter()
            .map(|f| match (&declared, into_existing) {
                (Some(columns), true) => columns
                    .iter()
                    .any(|(n, d)| n == f.name() && d.data_type == "bit"),
                _ => types::ddl_type(f).is_ok_and(|t| t.to_ascii_lowercase().starts_with("bit")),
            })
            .collect();
        let plan = plan::plan(
            existing,
            declared.is_some(),
            &format!("table {}", self.table),
        )?;
        match (plan, declared) {
            (Plan::Append, Some(columns)) => {
                self.check_columns(&columns)?;
                self.exec("START TRANSACTION").await?;
                let report = self.load_into(&self.table.clone(), 1).await;
                match report {
                    Ok(report) => {
                        self.exec("COMMIT").await?;
                        Ok(report)
                    }
                    Err(e) => {
                        let _ = self.conn.query_drop("ROLLBACK").await;
                        Err(e)
                    }
                }
            }
            (Plan::Truncate | Plan::Delete, Some(columns)) => {
                self.check_columns(&columns)?;
                let like = format!("LIKE {}", self.table.quoted());
                self.through_staging(&like, true).await
            }
            (plan, _) => {
                let ddl = self.ddl()?;
                self.through_staging(&ddl, plan == Plan::Recreate).await
            }
        }
    }

    /// Every incoming column must feed one of the table's ([`plan::match_columns`]).
    fn check_columns(&self, columns: &[(String, Declared)]) -> Result<()> {
        let have: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        plan::match_columns(&self.schema, &have, &self.table).map(drop)
    }

    async fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn
            .query_drop(sql)
            .await
            .map_err(|e| db_error(e, sql))
    }

    /// `(columns...) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4` for a new table.
    fn ddl(&self) -> Result<String> {
        let columns = plan::column_definitions(&self.schema, quote, types::ddl_type)?;
        Ok(format!(
            "({columns}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        ))
    }

    /// Create a staging table (`definition`: column list or `LIKE target`), load it, and swap
    /// it in with one RENAME TABLE (`replace`: the target exists and is dropped after).
    async fn through_staging(mut self, definition: &str, replace: bool) -> Result<WriteReport> {
        let user = self.mysql.user();
        let stage = self
            .table
            .sibling(stage_name("mover_stage_", self.conn.id(), &user));
        let mut guard = Staging {
            mysql: self.mysql.clone(),
            table: stage.clone(),
            on: self.conn.id(),
            armed_at: SystemTime::now(),
            kept: false,
        };
        self.exec(&format!("CREATE TABLE {} {definition}", stage.quoted()))
            .await?;
        let streams = self.mysql.load_streams;
        let report = match self.load_into(&stage, streams).await {
            Ok(report) => report,
            Err(e) => {
                // On this connection if it still works, else the guard's new one.
                let dropped = self
                    .conn
                    .query_drop(format!("DROP TABLE IF EXISTS {}", stage.quoted()))
                    .await;
                guard.kept = dropped.is_ok();
                return Err(e);
            }
        };
        let swap = if replace {
            let old = self
                .table
                .sibling(stage_name("mover_old_", self.conn.id(), &user));
            // Guarded before the swap runs: a load cancelled once the server has swapped
            // (before or after its answer) left the replaced table behind (the fault suite).
            let replaced = Staging {
                mysql: self.mysql.clone(),
                table: old.clone(),
                on: self.conn.id(),
                armed_at: SystemTime::now(),
                kept: false,
            };
            let sql = format!(
                "RENAME TABLE {t} TO {old}, {s} TO {t}",
                t = self.table.quoted(),
                old = old.quoted(),
                s = stage.quoted()
            );
            self.exec(&sql).await.map(|()| Some(replaced))
        } else {
            let sql = format!("RENAME TABLE {} TO {}", stage.quoted(), self.table.quoted());
            self.exec(&sql).await.map(|()| None)
        };
        let replaced = swap?;
        guard.kept = true;
        if let Some(mut replaced) = replaced {
            let sql = format!("DROP TABLE {}", replaced.table.quoted());
            match self.exec(&sql).await {
                Ok(()) => replaced.kept = true,
                // The guard tries once more, on a new connection.
                Err(e) => {
                    tracing::warn!(table = %replaced.table, "the replaced table was not dropped: {e}")
                }
            }
        }
        Ok(report)
    }

    /// Load every batch into `into`: LOAD DATA LOCAL INFILE, or INSERTs where the server has
    /// local_infile off. Fails on any warning: a value the server changed is not the value sent.
    async fn load_into(&mut self, into: &Table, streams: usize) -> Result<WriteReport> {
        let batches = self.batches.take().expect("one load per Load");
        let sent = Arc::new(AtomicU64::new(0));
        let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let result = if self.local_infile {
            self.load_data(into, batches, sent.clone(), failure.clone(), streams)
                .await
                .map(|()| vec![])
        } else {
            self.insert(into, batches, sent.clone())
                .await
                .map(|()| vec![format!(
                    "the server has local_infile off: loaded with multi-row INSERTs (slower than LOAD DATA)"
                )])
        };
        // The source's own error is the one to report, not the load's reaction to it.
        if let Some(e) = failure.lock().expect("failure slot").take() {
            return Err(e);
        }
        let notes = result?;
        no_warnings(&mut self.conn).await?;
        Ok(WriteReport {
            rows_committed: sent.load(Ordering::SeqCst),
            notes,
        })
    }

    /// LOAD DATA of every batch into `into`, through `streams` statements at once (each on its
    /// own connection, taking the next batch when it is ready for one).
    async fn load_data(
        &mut self,
        into: &Table,
        batches: BatchStream,
        sent: Arc<AtomicU64>,
        failure: Arc<Mutex<Option<Error>>>,
        streams: usize,
    ) -> Result<()> {
        let shared = Arc::new(tokio::sync::Mutex::new(batches));
        // Each statement's stream: the next batch, numbered, then encoded outside the lock.
        let feed = || {
            let (sent, failure) = (sent.clone(), failure.clone());
            futures::stream::unfold(shared.clone(), |shared| async move {
                let next = shared.lock().await.next().await;
                next.map(|item| (item, shared))
            })
            .map(move |item| {
                let encoded = item.and_then(|batch| {
                    let first = sent.fetch_add(batch.num_rows() as u64, Ordering::SeqCst) + 1;
                    let mut out = Vec::with_capacity(batch.get_array_memory_size());
                    encode::load_data(&batch, first, &mut out)?;
                    Ok(Bytes::from(out))
                });
                encoded.map_err(|e| {
                    let io = std::io::Error::other(e.message.clone());
                    failure.lock().expect("failure slot").get_or_insert(e);
                    io
                })
            })
            .boxed()
        };
        let mut others = Vec::with_capacity(streams.saturating_sub(1));
        for _ in 1..streams {
            others.push(infile::connection(self.mysql).await?);
        }
        let (columns, set) = load_columns(&self.schema, &self.bits);
        let sql = |handler: &StreamHandler| {
            format!(
                "LOAD DATA LOCAL INFILE '{}' INTO TABLE {} CHARACTER SET utf8mb4 \
                 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({}){}",
                handler.name,
                into.quoted(),
                columns.join(", "),
                set
            )
        };
        self.handler.offer(feed());
        let first = sql(&self.handler);
        let own = async {
            self.conn
                .query_drop(&first)
                .await
                .map_err(|e| db_error(e, &first))
        };
        let rest = others.iter_mut().map(|(conn, handler)| {
            handler.offer(feed());
            let statement = sql(handler);
            async move {
                conn.query_drop(&statement)
                    .await
                    .map_err(|e| db_error(e, &statement))?;
                no_warnings(conn).await
            }
        });
        futures::future::try_join(own, futures::future::try_join_all(rest))
            .await
            .map(|_| ())
    }

    async fn insert(
        &mut self,
        into: &Table,
        mut batches: BatchStream,
        sent: Arc<AtomicU64>,
    ) -> Result<()> {
        let names: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| quote(f.name()))
            .collect();
        let width = names.len().max(1);
        // Within MySQL's 65,535 placeholders per statement.
        let per_statement = (60_000 / width).clamp(1, 1000);
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            let columns = encode::batch_cells(&batch)?;
            for start in (0..batch.num_rows()).step_by(per_statement) {
                let n = per_statement.min(batch.num_rows() - start);
                let mut params = Vec::with_capacity(n * width);
                for row in start..start + n {
                    for (i, cells) in columns.iter().enumerate() {
                        let mut value = Vec::new();
                        let present = cells.write(row, &mut value).map_err(|why| {
                            Error::from(CellError::new(
                                sent.load(Ordering::SeqCst) + (row - start) as u64 + 1,
                                self.schema.field(i).name(),
                                why,
                            ))
                        })?;
                        params.push(if present {
                            Value::Bytes(value)
                        } else {
                            Value::NULL
                        });
                    }
                }
                let placeholders: Vec<&str> = self
                    .bits
                    .iter()
                    .map(|&bit| if bit { "CAST(? AS UNSIGNED)" } else { "?" })
                    .collect();
                let row = format!("({})", placeholders.join(", "));
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES {}",
                    into.quoted(),
                    names.join(", "),
                    vec![row; n].join(", ")
                );
                self.conn
                    .exec_drop(sql, params)
                    .await
                    .map_err(|e| db_error(e, "inserting"))?;
                sent.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// An error if the last statement on `conn` left warnings: a value the server changed is not
/// the value sent.
async fn no_warnings(conn: &mut Conn) -> Result<()> {
    let warnings = conn.get_warnings();
    if warnings == 0 {
        return Ok(());
    }
    let shown: Vec<(String, u32, String)> = conn
        .query("SHOW WARNINGS LIMIT 3")
        .await
        .unwrap_or_default();
    let text: Vec<String> = shown.into_iter().map(|(_, _, m)| m).collect();
    Err(Error::invalid(format!(
        "MySQL changed {warnings} value(s) while loading, so nothing was kept: {}",
        text.join("; ")
    )))
}

/// The column list of a load, and its SET clause: binary columns arrive as hex, and BIT
/// columns as numbers.
fn load_columns(schema: &Schema, bits: &[bool]) -> (Vec<String>, String) {
    let mut columns = Vec::new();
    let mut set = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if encode::is_binary(f.data_type()) {
            columns.push(format!("@h{i}"));
            set.push(format!("{} = UNHEX(@h{i})", quote(f.name())));
        } else if bits.get(i).copied().unwrap_or(false) {
            columns.push(format!("@b{i}"));
            set.push(format!("{} = CAST(@b{i} AS UNSIGNED)", quote(f.name())));
        } else {
            columns.push(quote(f.name()));
        }
    }
    let set = if set.is_empty() {
        String::new()
    } else {
        format!(" SET {}", set.join(", "))
    };
    (columns, set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_name_tells_its_connection_to_its_user_only() {
        let tag = user_tag("mover");
        let name = stage_name("mover_stage_", 651, "mover");
        assert_eq!(stage_connection(&name, &tag), Some(651));
        let old = stage_name("mover_old_", 7, "mover");
        assert_eq!(stage_connection(&old, &tag), Some(7));
        // Another user's, an older name without a connection, someone else's table.
        assert_eq!(
            stage_connection(&stage_name("mover_stage_", 651, "other"), &tag),
            None
        );
        assert_eq!(stage_connection("mover_stage_0ec0fbf1165ddd7e", &tag), None);
        assert_eq!(stage_connection("orders", &tag), None);
        assert!(name.len() <= 64, "a MySQL identifier: {name}");
    }
}
