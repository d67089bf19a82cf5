//! Writes in parts (write sessions): many uploads, from many clients at once (the tasks of a
//! Spark job), into one target, published at once.
//!
//! `begin` opens a write bound to its principal, with an expiry. Each part is named by the
//! task's partition and attempt and staged where no reader sees it ([`spool`]). `commit` names
//! exactly the parts that are the write, one attempt a partition: those go into the target in
//! one step, through the target's own single write (one transaction, one table swap, one
//! rename of a prefix's parts), and every other part (a failed, retried or speculative
//! attempt) is dropped. A write neither committed nor aborted by its expiry is aborted by the
//! gateway itself (a driver that crashed). Commits and aborts can be repeated and answer the
//! same: a client that lost the answer asks again.

pub mod spool;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::datatypes::SchemaRef;
use mover_proto::{PartId, Write};

use crate::catalog::Catalog;
use crate::connectors::{Connector, StagedPart, WriteReport, stages, undo};
use crate::error::{Error, ErrorKind, Result};
use crate::transfer::BatchStream;

/// How long a write may stay open, and where its parts wait.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A write's lifetime when `begin` does not say.
    pub default_ttl: Duration,
    /// The longest lifetime `begin` may ask for.
    pub max_ttl: Duration,
    /// How long after its write's expiry a part left behind by a killed gateway is swept.
    pub sweep_grace: Duration,
    /// Whether to sweep at all.
    pub sweep: bool,
    /// Where parts are spooled; each gateway process keeps a folder of its own inside.
    pub spool_dir: PathBuf,
}

/// Open writes one principal may hold, and parts one write may have: bounds what a stranger
/// can make the gateway remember.
const MAX_OPEN_PER_PRINCIPAL: usize = 64;
const MAX_PARTS: usize = 100_000;

/// How often expired writes are looked for.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// How often every target is swept for parts a killed gateway staged (one catalog query a
/// database, one listing a bucket).
const SWEEP_EVERY: Duration = Duration::from_secs(15 * 60);
/// The second sweep comes this soon after the first: a killed gateway's last statements may
/// still be running on a database server when its successor starts (a staging table created
/// after the first sweep looked, seen in the fault suite).
const SWEEP_AGAIN: Duration = Duration::from_secs(5);

/// A write `begin` opened.
#[derive(Debug, Clone)]
pub struct Begun {
    pub id: String,
    pub expires_at: SystemTime,
}

/// The open writes of one gateway.
#[derive(Clone)]
pub struct Writes {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Catalog,
    settings: Settings,
    /// This process's own spool folder: a killed gateway's leftovers are never mistaken for
    /// a live write's parts.
    spool: PathBuf,
    sessions: Mutex<HashMap<String, Session>>,
}

struct Session {
    principal: String,
    write: Write,
    expires_at: SystemTime,
    /// The first part's schema; every other part must have the same columns.
    schema: Option<SchemaRef>,
    parts: BTreeMap<Key, Part>,
    state: State,
}

type Key = (u32, u32);

enum Part {
    Arriving,
    Staged(Staged),
}

/// A part staged, by its target's connector where it stages parts itself, else spooled here.
/// Dropped unpublished, it is removed.
enum Staged {
    Spooled(spool::File),
    Native(NativePart),
}

impl Staged {
    fn rows(&self) -> u64 {
        match self {
            Staged::Spooled(f) => f.rows,
            Staged::Native(n) => n.part.as_ref().map_or(0, |p| p.rows),
        }
    }
}

/// A part its connector staged; dropped while it holds the part, the connector discards it in
/// a task of its own.
struct NativePart {
    connector: Arc<dyn Connector>,
    part: Option<StagedPart>,
}

impl Drop for NativePart {
    fn drop(&mut self) {
        if let Some(part) = self.part.take() {
            let connector = Arc::clone(&self.connector);
            undo::spawn("a staged part of a write in parts", async move {
                if let Err(e) = connector.discard_parts(vec![part]).await {
                    tracing::warn!(error = %e, "cannot remove a staged part");
                }
            });
        }
    }
}

enum State {
    Open,
    Committing,
    Committed(Vec<Key>, WriteReport),
    Aborted(String),
}

impl Writes {
    /// Writes into `catalog`'s targets; a task aborts expired ones while this lives.
    pub fn new(catalog: Catalog, settings: Settings) -> Self {
        let spool = settings.spool_dir.join(format!(
            "mover-spool-{}-{}",
            std::process::id(),
            spool::hex(&crate::auth::tokens::random_bytes::<4>())
        ));
        let inner = Arc::new(Inner {
            catalog,
            settings,
            spool,
            sessions: Mutex::new(HashMap::new()),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(reap(Arc::downgrade(&inner)));
            if inner.settings.sweep {
                tokio::spawn(sweep(Arc::downgrade(&inner)));
            }
        }
        Self { inner }
    }

    /// Open a write of `write` for `principal`, for `ttl` (the default when `None`).
    pub fn begin(&self, principal: &str, write: Write, ttl: Option<Duration>) -> Result<Begun> {
        let s = &self.inner.settings;
        let ttl = ttl.unwrap_or(s.default_ttl);
        if ttl > s.max_ttl {
            return Err(Error::invalid(format!(
                "a write may stay open at most {} s (server.max_write_ttl_seconds); asked for {} s",
                s.max_ttl.as_secs(),
                ttl.as_secs()
            )));
        }
        if write.path.as_ref().is_none_or(|p| p.parts.is_empty()) {
            return Err(Error::invalid("the write names no target path"));
        }
        let mut sessions = self.inner.lock();
        let open = sessions
            .values()
            .filter(|w| w.principal == principal && matches!(w.state, State::Open))
            .count();
        if open >= MAX_OPEN_PER_PRINCIPAL {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "{principal} has {open} writes open; commit or abort one first (at most {MAX_OPEN_PER_PRINCIPAL})"
                ),
            ));
        }
        let id = spool::hex(&crate::auth::tokens::random_bytes::<16>());
        let expires_at = SystemTime::now() + ttl;
        sessions.insert(
            id.clone(),
            Session {
                principal: principal.into(),
                write,
                expires_at,
                schema: None,
                parts: BTreeMap::new(),
                state: State::Open,
            },
        );
        Ok(Begun { id, expires_at })
    }

    /// The target of `principal`'s write `id` (a part's rights are checked on it).
    pub fn target(&self, principal: &str, id: &str) -> Result<Write> {
        let mut sessions = self.inner.lock();
        Ok(session(&mut sessions, principal, id)?.write.clone())
    }

    /// Stage `batches` as part `key` of write `id`: the rows staged. The part is not seen by
    /// any reader until the write commits with it; if this fails or is dropped, it is gone.
    pub async fn stage(
        &self,
        principal: &str,
        id: &str,
        key: PartId,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<u64> {
        let key = (key.partition, key.attempt);
        let name = part_name(key);
        let (write, expires_at) = {
            let mut sessions = self.inner.lock();
            let w = session(&mut sessions, principal, id)?;
            w.open()?;
            if w.parts.contains_key(&key) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "{name} of this write was sent already; a new attempt takes a new attempt number"
                    ),
                ));
            }
            if w.parts.len() >= MAX_PARTS {
                return Err(Error::new(
                    ErrorKind::ResourceExhausted,
                    format!("a write takes at most {MAX_PARTS} parts"),
                ));
            }
            match &w.schema {
                Some(first) => same_columns(first, &schema).map_err(|e| e.within(&name))?,
                None => w.schema = Some(schema.clone()),
            }
            w.parts.insert(key, Part::Arriving);
            (w.write.clone(), w.expires_at)
        };
        // Until it is staged, a part dropped (the client left) or failed is forgotten.
        let arriving = Arriving {
            inner: &self.inner,
            id,
            key,
            done: false,
        };
        // Named with the write's expiry: a gateway killed now leaves a part any gateway can
        // tell is over.
        let stage = stages::name(expires_at, id, key.0, key.1);
        let staged = self.stage_here(&write, &stage, schema, batches).await;
        arriving.finish(staged.map_err(|e| e.within(&name)))
    }

    /// Part `key` of write `id` staged by the target's connector, or spooled.
    async fn stage_here(
        &self,
        write: &Write,
        stage: &str,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<Staged> {
        let sink = self.inner.catalog.sink(write)?;
        if !sink.connector.stages_parts(&sink.spec) {
            let file = spool::write(&self.inner.spool, schema, batches).await?;
            return Ok(Staged::Spooled(file));
        }
        let part = sink
            .connector
            .stage_part(&sink.spec, stage, schema, batches)
            .await
            .map_err(|e| e.within(&sink.label))?;
        Ok(Staged::Native(NativePart {
            connector: sink.connector,
            part: Some(part),
        }))
    }

    /// Publish exactly `parts` of `principal`'s write `id`, in one step, and drop the rest.
    /// Asked again with the same parts, the same answer.
    pub async fn commit(&self, principal: &str, id: &str, parts: &[PartId]) -> Result<WriteReport> {
        let keys: Vec<Key> = parts.iter().map(|p| (p.partition, p.attempt)).collect();
        let (write, schema, files) = {
            let mut sessions = self.inner.lock();
            let w = session(&mut sessions, principal, id)?;
            match &w.state {
                State::Committed(committed, report) if *committed == keys => {
                    return Ok(report.clone());
                }
                State::Committed(..) => {
                    return Err(Error::new(
                        ErrorKind::FailedPrecondition,
                        "this write was committed already, with other parts",
                    ));
                }
                State::Committing => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "this write is being committed; ask again for its result",
                    ));
                }
                State::Aborted(why) => {
                    return Err(Error::new(
                        ErrorKind::FailedPrecondition,
                        format!("this write was aborted ({why})"),
                    ));
                }
                State::Open => {}
            }
            let files = w.take(&keys)?;
            w.state = State::Committing;
            // The first part's schema, or (no part at all) none: an empty write.
            let schema = w
                .schema
                .clone()
                .unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
            (w.write.clone(), schema, files)
        };
        tracing::info!(
            write = id,
            parts = keys.len(),
            "committing a write in parts"
        );
        // In a task of its own: a client that leaves mid-commit does not stop it half-way, and
        // asking again gives the result.
        let catalog = self.inner.catalog.clone();
        let publishing =
            tokio::spawn(async move { publish(&catalog, &write, schema, files).await });
        let result = publishing
            .await
            .unwrap_or_else(|e| Err(Error::internal(format!("the commit failed: {e}"))));
        let mut sessions = self.inner.lock();
        if let Some(w) = sessions.get_mut(id) {
            w.state = match &result {
                Ok(report) => State::Committed(keys, report.clone()),
                Err(e) => State::Aborted(format!("its commit failed: {}", e.message)),
            };
        }
        result
    }

    /// Drop every part of `principal`'s write `id`; nothing is published. Asked again, the
    /// same answer; a committed write cannot be aborted.
    pub fn abort(&self, principal: &str, id: &str) -> Result<()> {
        let mut sessions = self.inner.lock();
        let w = session(&mut sessions, principal, id)?;
        match &w.state {
            State::Open => {
                w.abort("the client aborted it");
                Ok(())
            }
            State::Aborted(_) => Ok(()),
            State::Committing | State::Committed(..) => Err(Error::new(
                ErrorKind::FailedPrecondition,
                "this write was committed; it cannot be aborted",
            )),
        }
    }

    /// Abort `principal`'s write `id` if it is still open and forget it at once: for a write
    /// the gateway began itself (a move in parts), which no client will ask about again.
    pub fn forget(&self, principal: &str, id: &str) {
        let mut sessions = self.inner.lock();
        if let Ok(w) = session(&mut sessions, principal, id) {
            if matches!(w.state, State::Open) {
                w.abort("its move ended without a commit");
            }
            // A part still arriving drops what it staged when it finds the write gone.
            sessions.remove(id);
        }
    }

    /// Parts staged and waiting, over every open write (tests and `/metrics` count them).
    pub fn staged_parts(&self) -> usize {
        self.inner
            .lock()
            .values()
            .map(|w| {
                w.parts
                    .values()
                    .filter(|p| matches!(p, Part::Staged(_)))
                    .count()
            })
            .sum()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Session {
    fn open(&self) -> Result<()> {
        match &self.state {
            State::Open => Ok(()),
            State::Aborted(why) => Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("this write was aborted ({why})"),
            )),
            State::Committing | State::Committed(..) => Err(Error::new(
                ErrorKind::FailedPrecondition,
                "this write was committed; it takes no more parts",
            )),
        }
    }

    /// The staged parts of `keys`, each a distinct partition's; every other part is dropped
    /// (and so removed).
    fn take(&mut self, keys: &[Key]) -> Result<Vec<Staged>> {
        let mut partitions = std::collections::BTreeSet::new();
        for &key in keys {
            if !partitions.insert(key.0) {
                return Err(Error::invalid(format!(
                    "partition {} is listed twice; a commit takes one attempt of each",
                    key.0
                )));
            }
            match self.parts.get(&key) {
                Some(Part::Staged(_)) => {}
                Some(Part::Arriving) => {
                    return Err(Error::new(
                        ErrorKind::FailedPrecondition,
                        format!("{} is still arriving", part_name(key)),
                    ));
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::FailedPrecondition,
                        format!("{} was never staged (failed, or not sent)", part_name(key)),
                    ));
                }
            }
        }
        let files = keys
            .iter()
            .filter_map(|k| match self.parts.remove(k) {
                Some(Part::Staged(f)) => Some(f),
                _ => None,
            })
            .collect();
        self.parts.retain(|_, p| matches!(p, Part::Arriving));
        Ok(files)
    }

    fn abort(&mut self, why: &str) {
        self.state = State::Aborted(why.into());
        // Dropping a staged part removes it; an arriving one drops itself when it ends.
        self.parts.retain(|_, p| matches!(p, Part::Arriving));
    }
}

/// `parts` as the write `write`, in one step: through the connector that staged them, or, for
/// spooled parts, read back in order into the target's single write.
async fn publish(
    catalog: &Catalog,
    write: &Write,
    schema: SchemaRef,
    parts: Vec<Staged>,
) -> Result<WriteReport> {
    let sink = catalog.sink(write)?;
    let mut native = Vec::new();
    let mut spooled = Vec::new();
    for part in parts {
        match part {
            Staged::Native(mut n) => native.extend(n.part.take()),
            Staged::Spooled(f) => spooled.push(f),
        }
    }
    if native.is_empty() {
        return catalog.write(write, schema, spool::read(spooled)).await;
    }
    let published = sink
        .connector
        .publish_parts(&sink.spec, schema, native.clone())
        .await
        .map_err(|e| e.within(&sink.label));
    if published.is_err()
        && let Err(e) = sink.connector.discard_parts(native).await
    {
        tracing::warn!(error = %e, "cannot remove the staged parts of a failed commit");
    }
    published
}

/// `principal`'s write `id`, if there is one.
fn session<'a>(
    sessions: &'a mut HashMap<String, Session>,
    principal: &str,
    id: &str,
) -> Result<&'a mut Session> {
    match sessions.get_mut(id) {
        Some(w) if w.principal == principal => Ok(w),
        Some(_) => Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("{principal} may not use a write another principal began"),
        )),
        None => Err(Error::not_found(format!(
            "no write {id:?}: it never was, or it expired and was removed"
        ))),
    }
}

fn part_name((partition, attempt): Key) -> String {
    format!("part (partition {partition}, attempt {attempt})")
}

/// The parts of one write hold the same columns: same names, same types, in the same order.
fn same_columns(first: &SchemaRef, other: &SchemaRef) -> Result<()> {
    let mismatch = |why: String| {
        Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!("its columns differ from the write's first part: {why}"),
        ))
    };
    if first.fields().len() != other.fields().len() {
        return mismatch(format!(
            "{} columns, not {}",
            other.fields().len(),
            first.fields().len()
        ));
    }
    for (a, b) in first.fields().iter().zip(other.fields()) {
        if a.name() != b.name() || a.data_type() != b.data_type() {
            return mismatch(format!(
                "column {:?} {} where the first part has {:?} {}",
                b.name(),
                b.data_type(),
                a.name(),
                a.data_type()
            ));
        }
    }
    Ok(())
}

/// A part being staged: if it fails or is dropped, its entry goes (the partition may be sent
/// again); if its write was committed or aborted meanwhile, what it staged is dropped.
struct Arriving<'a> {
    inner: &'a Inner,
    id: &'a str,
    key: Key,
    done: bool,
}

impl Arriving<'_> {
    fn finish(mut self, staged: Result<Staged>) -> Result<u64> {
        self.done = true;
        let mut sessions = self.inner.lock();
        let Some(w) = sessions.get_mut(self.id) else {
            return staged.map(|_| 0).and(Err(gone()));
        };
        match staged {
            Err(e) => {
                w.parts.remove(&self.key);
                Err(e)
            }
            Ok(file) if matches!(w.state, State::Open) => {
                let rows = file.rows();
                w.parts.insert(self.key, Part::Staged(file));
                Ok(rows)
            }
            Ok(_) => {
                w.parts.remove(&self.key);
                w.open().map(|()| 0)
            }
        }
    }
}

impl Drop for Arriving<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut sessions = self.inner.lock();
            if let Some(w) = sessions.get_mut(self.id) {
                w.parts.remove(&self.key);
            }
        }
    }
}

fn gone() -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        "the write expired while this part arrived; nothing of it was kept",
    )
}

/// Abort what has expired, and forget finished writes a lifetime after they expired (until
/// then a repeated commit or abort gets its answer).
async fn reap(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = SystemTime::now();
        let mut sessions = inner.lock();
        for (id, w) in sessions.iter_mut() {
            if matches!(w.state, State::Open) && w.expires_at <= now {
                tracing::info!(write = %id, "a write expired before its commit; its parts are dropped");
                w.abort("it expired before it was committed");
            }
        }
        let keep = inner.settings.default_ttl;
        sessions.retain(|_, w| {
            let finished = matches!(w.state, State::Committed(..) | State::Aborted(_));
            let busy = w.parts.values().any(|p| matches!(p, Part::Arriving));
            !finished || busy || w.expires_at + keep > now
        });
    }
}

/// What killed gateways left, removed at start, [`SWEEP_AGAIN`] later, and every
/// [`SWEEP_EVERY`] while this lives:
/// their spool folders on this machine, and in every target the parts their writes staged
/// there, once those writes are over ([`stages`]).
async fn sweep(inner: Weak<Inner>) {
    let mut pause = SWEEP_AGAIN;
    loop {
        let Some(live) = inner.upgrade() else {
            return;
        };
        spool::sweep(&live.settings.spool_dir, &live.spool);
        let (catalog, grace) = (live.catalog.clone(), live.settings.sweep_grace);
        drop(live);
        let before = SystemTime::now().checked_sub(grace).unwrap_or(UNIX_EPOCH);
        for (source, swept) in catalog.sweep_parts(before).await {
            match swept {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    source,
                    parts = n,
                    "removed parts staged by writes that ended without a commit or abort"
                ),
                Err(e) => tracing::warn!(source, error = %e, "cannot sweep stale staged parts"),
            }
        }
        tokio::time::sleep(pause).await;
        pause = SWEEP_EVERY;
    }
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.spool);
    }
}

#[cfg(test)]
mod tests {
    //! Writes in parts over a SQLite file and an in-memory bucket, without a server.
    use super::*;
    use crate::catalog::tests::{catalog, count, read, rows, write};
    use mover_proto::ExistingTable;

    fn writes(dir: &std::path::Path, ttl: Duration) -> Writes {
        let settings = Settings {
            default_ttl: ttl,
            max_ttl: Duration::from_secs(60),
            sweep_grace: Duration::from_secs(3600),
            sweep: false,
            spool_dir: dir.join("spool"),
        };
        Writes::new(catalog(dir), settings)
    }

    fn prefix(bucket: &str, name: &str) -> Write {
        let mut w = write(bucket);
        w.path.as_mut().unwrap().parts.push(name.into());
        w
    }

    fn part(partition: u32, attempt: u32) -> PartId {
        PartId { partition, attempt }
    }

    async fn stage(w: &Writes, id: &str, key: PartId, n: i64) -> Result<u64> {
        let (schema, batches) = rows(n);
        w.stage("alice", id, key, schema, batches).await
    }

    fn spooled(dir: &std::path::Path) -> usize {
        walk(&dir.join("spool"))
    }

    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| match e.path().is_dir() {
                    true => walk(&e.path()),
                    false => 1,
                })
                .sum()
        })
    }

    #[tokio::test]
    async fn a_commit_publishes_exactly_the_listed_attempts_and_can_be_asked_again() {
        // SQLite's parts are spooled; a bucket prefix stages its own.
        let dir = tempfile::tempdir().unwrap();
        let w = writes(dir.path(), Duration::from_secs(30));
        commits_exactly(&w, dir.path(), write("db/main/t"), read("db/main/t"), 5).await;
        let mut prefix_read = read("mem");
        match prefix_read.what.as_mut() {
            Some(mover_proto::read::What::Path(p)) => p.parts.push("t/".into()),
            _ => unreachable!(),
        }
        commits_exactly(&w, dir.path(), prefix("mem", "t/"), prefix_read, 0).await;
    }

    async fn commits_exactly(
        w: &Writes,
        dir: &std::path::Path,
        target: Write,
        read: mover_proto::Read,
        spool_files: usize,
    ) {
        let id = w.begin("alice", target.clone(), None).unwrap().id;
        assert_eq!(stage(w, &id, part(0, 0), 10).await.unwrap(), 10);
        // Partition 1 failed once and was retried; a speculative copy of partition 2 ran too.
        stage(w, &id, part(1, 0), 7).await.unwrap();
        stage(w, &id, part(1, 1), 20).await.unwrap();
        stage(w, &id, part(2, 0), 5).await.unwrap();
        stage(w, &id, part(2, 1), 5).await.unwrap();
        let again = stage(w, &id, part(2, 1), 5).await.unwrap_err();
        assert_eq!(again.kind, ErrorKind::AlreadyExists, "{again}");
        assert_eq!(spooled(dir), spool_files);
        assert_eq!(w.staged_parts(), 5);
        // Nothing is visible before the commit.
        assert!(w.inner.catalog.describe(&read).await.is_err());

        let listed = [part(0, 0), part(1, 1), part(2, 0)];
        let twice = w.commit("alice", &id, &[part(1, 0), part(1, 1)]).await;
        assert_eq!(twice.unwrap_err().kind, ErrorKind::InvalidArgument);
        let report = w.commit("alice", &id, &listed).await.unwrap();
        assert_eq!(report.rows_committed, 35);
        assert_eq!(count(&w.inner.catalog, &read).await, 35);
        assert_eq!(spooled(dir), 0, "every part is gone, listed or not");
        assert_eq!(w.staged_parts(), 0);
        // Asked again: the same answer, and nothing written twice.
        assert_eq!(w.commit("alice", &id, &listed).await.unwrap(), report);
        assert_eq!(count(&w.inner.catalog, &read).await, 35);
        let other = w.commit("alice", &id, &listed[..1]).await.unwrap_err();
        assert_eq!(other.kind, ErrorKind::FailedPrecondition, "{other}");
        assert_eq!(
            w.abort("alice", &id).unwrap_err().kind,
            ErrorKind::FailedPrecondition
        );
        let late = stage(w, &id, part(3, 0), 1).await.unwrap_err();
        assert_eq!(late.kind, ErrorKind::FailedPrecondition, "{late}");
    }

    #[tokio::test]
    async fn parts_are_checked_against_the_write_and_its_principal() {
        let dir = tempfile::tempdir().unwrap();
        let w = writes(dir.path(), Duration::from_secs(30));
        let id = w.begin("alice", prefix("mem", "t/"), None).unwrap().id;
        let (schema, batches) = rows(1);
        let bob = w.stage("bob", &id, part(0, 0), schema, batches).await;
        assert_eq!(bob.unwrap_err().kind, ErrorKind::PermissionDenied);
        let unknown = stage(&w, "nope", part(0, 0), 1).await.unwrap_err();
        assert_eq!(unknown.kind, ErrorKind::NotFound);
        stage(&w, &id, part(0, 0), 1).await.unwrap();
        let other = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Utf8, false),
            arrow::datatypes::Field::new("name", arrow::datatypes::DataType::Utf8, false),
        ]));
        let (_, batches) = rows(0);
        let mismatch = w.stage("alice", &id, part(1, 0), other, batches).await;
        let e = mismatch.unwrap_err();
        assert_eq!(e.kind, ErrorKind::FailedPrecondition);
        assert!(e.message.contains("\"id\""), "{e}");
        let missing = w.commit("alice", &id, &[part(0, 0), part(5, 0)]).await;
        assert!(missing.unwrap_err().message.contains("partition 5"));
        let long = w.begin("alice", prefix("mem", "u/"), Some(Duration::from_secs(61)));
        assert_eq!(long.unwrap_err().kind, ErrorKind::InvalidArgument);
    }

    #[tokio::test]
    async fn an_aborted_or_expired_write_publishes_nothing_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let w = writes(dir.path(), Duration::from_secs(30));
        let mut target = write("db/main/t");
        target.existing_table = ExistingTable::Append as i32;
        let id = w.begin("alice", target.clone(), None).unwrap().id;
        stage(&w, &id, part(0, 0), 3).await.unwrap();
        w.abort("alice", &id).unwrap();
        w.abort("alice", &id).unwrap();
        assert_eq!(spooled(dir.path()), 0);
        let after = w.commit("alice", &id, &[part(0, 0)]).await.unwrap_err();
        assert_eq!(after.kind, ErrorKind::FailedPrecondition);

        let id = w
            .begin("alice", target, Some(Duration::from_secs(1)))
            .unwrap()
            .id;
        stage(&w, &id, part(0, 0), 3).await.unwrap();
        assert_eq!(w.staged_parts(), 1);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(w.staged_parts(), 0, "the gateway aborted the expired write");
        assert_eq!(spooled(dir.path()), 0);
        let expired = w.commit("alice", &id, &[part(0, 0)]).await.unwrap_err();
        assert!(expired.message.contains("expired"), "{expired}");
        assert!(w.inner.catalog.describe(&read("db/main/t")).await.is_err());
    }

    #[tokio::test]
    async fn a_part_dropped_mid_stream_leaves_nothing_and_may_be_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let w = writes(dir.path(), Duration::from_secs(30));
        let id = w.begin("alice", prefix("mem", "t/"), None).unwrap().id;
        let (schema, _) = rows(0);
        let (batches, _tx) = {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<arrow::array::RecordBatch>>(1);
            let (_, first) = rows(5);
            let rest = tokio_stream::wrappers::ReceiverStream::new(rx);
            (
                futures::StreamExt::boxed(futures::StreamExt::chain(first, rest)),
                tx,
            )
        };
        let staging = w.stage("alice", &id, part(0, 0), schema, batches);
        let cut = tokio::time::timeout(Duration::from_millis(300), staging).await;
        assert!(cut.is_err(), "the part waits for more rows");
        assert_eq!(spooled(dir.path()), 0, "the dropped part's file is gone");
        stage(&w, &id, part(0, 0), 5).await.unwrap();
        let report = w.commit("alice", &id, &[part(0, 0)]).await.unwrap();
        assert_eq!(report.rows_committed, 5);
    }

    #[tokio::test]
    async fn what_a_killed_gateway_staged_is_swept_once_its_write_is_over() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(dir.path());
        let sink = catalog.sink(&prefix("mem", "t/")).unwrap();
        let now = SystemTime::now();
        let stage_as = |expires_at: SystemTime, n: i64| {
            let (schema, batches) = rows(n);
            let stage = stages::name(expires_at, "0123456789abcdef", 0, 0);
            let sink = &sink;
            async move {
                sink.connector
                    .stage_part(&sink.spec, &stage, schema, batches)
                    .await
                    .unwrap()
            }
        };
        // Parts no gateway will commit or discard: one whose write is over, one still open.
        let over = stage_as(now - Duration::from_secs(5), 3).await;
        let open = stage_as(now + Duration::from_secs(60), 7).await;
        let swept = catalog.sweep_parts(now).await;
        assert_eq!(swept.len(), 1, "{swept:?}");
        assert_eq!(
            (swept[0].0.as_str(), swept[0].1.as_ref().ok()),
            ("mem", Some(&1))
        );
        // The open write's part is still there to publish; the other is gone.
        let (schema, _) = rows(0);
        let gone = sink
            .connector
            .publish_parts(&sink.spec, schema.clone(), vec![over])
            .await;
        assert!(gone.is_err());
        let published = sink
            .connector
            .publish_parts(&sink.spec, schema, vec![open])
            .await
            .unwrap();
        assert_eq!(published.rows_committed, 7);
        assert!(catalog.sweep_parts(now).await.is_empty());

        // A spool folder of a process that is gone is removed; a running one's stays.
        let spool = dir.path().join("spool");
        let dead = spool.join("mover-spool-4000000000-ab");
        let live = spool.join(format!("mover-spool-{}-cd", std::process::id()));
        for folder in [&dead, &live] {
            std::fs::create_dir_all(folder).unwrap();
            std::fs::write(folder.join("part-1.arrows"), b"x").unwrap();
        }
        spool::sweep(&spool, &spool.join("mover-spool-1-own"));
        assert!(!dead.exists());
        assert!(live.join("part-1.arrows").exists());
    }
}
