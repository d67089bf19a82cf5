//! The fault suite's cases (`tests/faults.rs` runs them): each injects one fault at a random
//! point of a move, [`runs`] times, and checks after each that the target holds exactly its
//! old rows or exactly the new ones (row count and the sum of the ids), that nothing the
//! write staged stays (the store's listing is the old one, name for name), and that the
//! gateway still serves. The random points come from a seed printed first: `FAULT_SEED=N`
//! replays a run, `FAULT_RUNS=N` changes how many.

use std::time::Duration;

use futures::TryStreamExt;
use mover_client::Client;
use mover_proto::ExistingTable;

use crate::contract::{Backend, Store, Target, generated, move_into, read_of};
use crate::{CuttingProxy, Mariadb, Postgres};

/// Rows the old dataset holds, and the rows a faulted move writes.
const OLD: u64 = 1000;
const NEW: u64 = 20_000;

/// Faults a case injects: 20 unless `FAULT_RUNS` says otherwise.
pub fn runs() -> usize {
    std::env::var("FAULT_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

/// Where the faults fall: xorshift64*, from `FAULT_SEED` or the clock, printed so a failing
/// run can be replayed. (A dozen lines; the points need no better randomness than this.)
pub struct Points(u64);

impl Points {
    pub fn new(case: &str) -> Self {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("{case}: FAULT_SEED={seed}");
        Points(seed)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// What the faults of a case left: the old rows, or the new (a fault after the commit, or one
/// the gateway rode out: a request retried after a reset). `landed`: faults that hit a
/// connection the move used (the cut case; else those that left the old rows).
#[derive(Debug, Default)]
pub struct Tally {
    pub old: usize,
    pub new: usize,
    pub landed: usize,
}

/// Rows and the sum of their ids: the dataset's checksum.
async fn checksum(client: &mut Client, target: &Target) -> Result<(u64, i64), String> {
    let batches: Vec<arrow::array::RecordBatch> = client
        .read(&read_of(target))
        .await
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    let mut sum = 0i64;
    let mut rows = 0u64;
    for b in &batches {
        let ids = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64).unwrap();
        let ids = ids
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        sum += ids.iter().flatten().sum::<i64>();
        rows += b.num_rows() as u64;
    }
    Ok((rows, sum))
}

fn sum_to(n: u64) -> (u64, i64) {
    (n, (n * (n + 1) / 2) as i64)
}

/// What a store's state lists that a write stages: staging tables, hidden parts, spool and
/// temporary files, open multipart uploads.
fn staged(state: &[String]) -> Vec<String> {
    const MARKS: [&str; 7] = [
        "_staging-",
        "_committing-",
        "mover_stage",
        "mover_old",
        "#",
        "open multipart",
        "mover-spool",
    ];
    state
        .iter()
        .filter(|l| MARKS.iter().any(|m| l.contains(m)))
        .cloned()
        .collect()
}

/// The targets a fault case writes: a table, or a file and a prefix of parts (a records
/// directory is written only into an empty prefix, so it has no old rows to keep).
fn targets(b: &Backend, stem: &str) -> Vec<Target> {
    b.targets_named(stem)
        .into_iter()
        .filter(|t| !t.is_records_dir())
        .collect()
}

/// The target replaced, whole and with no fault, by `rows` generated rows.
async fn replace(client: &mut Client, target: &Target, rows: u64) {
    let moved = move_into(
        client,
        generated(rows),
        target.write(ExistingTable::DropAndRecreate),
    )
    .await
    .unwrap_or_else(|e| panic!("{}: a move of {rows} rows with no fault: {e}", target.name));
    assert_eq!(moved, rows);
}

/// The target holds its `OLD` rows again.
async fn reset(client: &mut Client, target: &Target) {
    replace(client, target, OLD).await;
}

/// After a fault, once it settles (a dropped write rolls back on its own time): exactly the
/// old rows and the old listing (what was staged is gone), or exactly the new rows and nothing
/// staged; whether the new rows. A fault may land after the gateway committed but before the
/// client heard, so what the client saw does not decide which.
async fn old_or_new(
    b: &Backend,
    client: &mut Client,
    target: &Target,
    before: &[String],
    what: &str,
) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = b.state();
        let sum = checksum(client, target).await;
        if state == before && sum == Ok(sum_to(OLD)) {
            return false;
        }
        if sum == Ok(sum_to(NEW)) && staged(&state).is_empty() {
            return true;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: {}: {what}: neither the old rows nor the new: {sum:?}, {state:?} (before: {before:?})",
            b.label,
            target.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Tally {
    fn add_outcome(&mut self, landed: bool, new: bool) {
        self.old += usize::from(!new);
        self.new += usize::from(new);
        self.landed += usize::from(landed);
    }

    /// A fault that left the old rows landed inside the move; one after it left the new.
    fn add(&mut self, new: bool) {
        self.add_outcome(!new, new);
    }
}

/// The time a move of `NEW` rows takes here: the quicker of two moves done whole (the first
/// pays for warming up). Faults fall in 0..1.5 times it, so some land after the end.
async fn move_time(client: &mut Client, target: &Target) -> Duration {
    let mut quickest = Duration::MAX;
    for _ in 0..2 {
        let started = std::time::Instant::now();
        replace(client, target, NEW).await;
        quickest = quickest.min(started.elapsed());
    }
    quickest
}

/// S3 holds no open upload, not even one with no part yet (which [`old_or_new`] lets pass:
/// see [`Backend::state`]): the killed gateway's successor aborted it (within its second
/// sweep, 5 s after its start).
async fn no_upload_left_open(b: &Backend, what: &str) {
    let Store::S3(s3) = &b.store else {
        return;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let open = s3.pending_uploads_with_parts(crate::contract::BUCKET);
        if open.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: {what}: uploads left open: {open:?}",
            b.label
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The client goes away (its move call dropped: a Ctrl-C) at a random point of the move.
pub async fn a_client_leaving(b: &Backend) -> Tally {
    let mut points = Points::new(&format!("{}: a client leaving", b.label));
    let mut tally = Tally::default();
    let mut client = b.client().await;
    for target in targets(b, "client_leaving") {
        let took = move_time(&mut client, &target).await;
        for run in 0..runs() {
            reset(&mut client, &target).await;
            let before = b.state();
            let at = Duration::from_micros(points.below(took.as_micros() as u64 * 3 / 2));
            let mut mover = b.client().await;
            let write = move_into(
                &mut mover,
                generated(NEW),
                target.write(ExistingTable::DropAndRecreate),
            );
            tokio::select! {
                done = write => { done.unwrap_or_else(|e| panic!("{}: {e}", target.name)); }
                () = tokio::time::sleep(at) => {}
            };
            drop(mover);
            let what = format!("run {run}, left after {at:?}");
            tally.add(old_or_new(b, &mut client, &target, &before, &what).await);
        }
    }
    tally
}

/// The gateway is killed (SIGKILL: no chance to clean up) at a random point of the move, and
/// started again: what it staged is swept at its start.
pub async fn a_gateway_killed(b: &mut Backend) -> Tally {
    let mut points = Points::new(&format!("{}: a gateway killed", b.label));
    let mut tally = Tally::default();
    for target in targets(b, "gateway_killed") {
        let mut client = b.client().await;
        let took = move_time(&mut client, &target).await;
        for run in 0..runs() {
            let mut client = b.client().await;
            reset(&mut client, &target).await;
            let before = b.state();
            let at = Duration::from_micros(points.below(took.as_micros() as u64 * 3 / 2));
            let write = move_into(
                &mut client,
                generated(NEW),
                target.write(ExistingTable::DropAndRecreate),
            );
            // Killed at `at`, or at once if the move ended first: a kill after the commit
            // must leave the new rows.
            tokio::select! {
                _ = write => {}
                () = tokio::time::sleep(at) => {}
            };
            b.restart();
            let mut client = b.client().await;
            let what = format!("run {run}, killed after {at:?}");
            tally.add(old_or_new(b, &mut client, &target, &before, &what).await);
            no_upload_left_open(b, &what).await;
        }
    }
    tally
}

/// The database server is killed as a crash would kill it (SIGKILL to every process of it)
/// at a random point of the move, and started again on the same data: the move fails (or had
/// committed), the server's recovery leaves the old rows or the new, and the gateway serves
/// the next move though every connection it held to the old server is dead.
pub async fn a_database_killed(b: &mut Backend) -> Tally {
    let mut points = Points::new(&format!("{}: the database killed", b.label));
    let mut tally = Tally::default();
    for target in targets(b, "database_killed") {
        let mut client = b.client().await;
        let took = move_time(&mut client, &target).await;
        for run in 0..runs() {
            let at = Duration::from_micros(points.below(took.as_micros() as u64 * 3 / 2));
            let what = format!("run {run}, the database killed after {at:?}");
            let (landed, _, new) =
                fault_while_moving(b, &target, at, &what, |b| b.crash_database()).await;
            tally.add_outcome(landed, new);
        }
    }
    tally
}

/// One run of a fault that the move meets while it runs on (its client stays): the target
/// reset to its old rows, a move of the new ones begun, `fault` at `at`, then the move's end
/// awaited, what `fault` returned dropped (a fault that lasts until then), and the target
/// checked ([`old_or_new`]; a move that said it committed must have left the new rows).
/// Whether the fault landed inside the move, the move's answer, whether the new rows.
async fn fault_while_moving<R>(
    b: &mut Backend,
    target: &Target,
    at: Duration,
    what: &str,
    fault: impl FnOnce(&mut Backend) -> R,
) -> (bool, mover_client::client::Result<u64>, bool) {
    let mut client = b.client().await;
    reset(&mut client, target).await;
    let before = b.state();
    let mut mover = b.client().await;
    let write = target.write(ExistingTable::DropAndRecreate);
    let moving = tokio::spawn(async move { move_into(&mut mover, generated(NEW), write).await });
    tokio::time::sleep(at).await;
    let landed = !moving.is_finished();
    let lasting = tokio::task::block_in_place(|| fault(b));
    let done = moving.await.expect("the move's task");
    drop(lasting);
    let new = old_or_new(b, &mut client, target, &before, what).await;
    if done.is_ok() {
        assert!(new, "{}: {what}: the move said it committed", b.label);
    }
    (landed, done, new)
}

/// A file system of its own (tmpfs) mounted over a folder while this lives.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Self {
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "the full-disk case mounts a small tmpfs, which needs root (or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A hidden file (`.ballast`, which bucket reads skip) that fills the file system it is on
/// until it is removed, when dropped.
struct Ballast(std::path::PathBuf);

impl Ballast {
    fn fill(dir: &std::path::Path) -> Self {
        use std::io::Write;
        let path = dir.join(".ballast");
        let mut file = std::fs::File::create(&path).expect("create the ballast");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        Self(path)
    }
}

impl Drop for Ballast {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).expect("remove the ballast");
    }
}

/// The disk under a local folder fills up (another writer takes what is left) at a random
/// point of a move, and is freed again once the move has ended: the move fails (or had
/// committed) with RESOURCE_EXHAUSTED naming the full disk, leaves the old rows or the new,
/// and nothing it staged; the gateway serves the next move.
pub async fn a_full_disk(b: &mut Backend) -> Tally {
    let Store::Local(dir) = &b.store else {
        panic!("{}: a full disk is a local folder's", b.label);
    };
    let dir = dir.clone();
    let _tmpfs = Tmpfs::mount(&dir, "16m");
    let mut points = Points::new(&format!("{}: a full disk", b.label));
    let mut tally = Tally::default();
    for target in targets(b, "full_disk") {
        let mut client = b.client().await;
        let took = move_time(&mut client, &target).await;
        for run in 0..runs() {
            let at = Duration::from_micros(points.below(took.as_micros() as u64 * 3 / 2));
            let what = format!("run {run}, the disk full after {at:?}");
            let full = |_: &mut Backend| Ballast::fill(&dir);
            let (landed, done, new) = fault_while_moving(b, &target, at, &what, full).await;
            if let Err(e) = &done {
                assert_eq!(
                    e.code(),
                    Some(tonic::Code::ResourceExhausted),
                    "{what}: {e}"
                );
                assert!(e.to_string().contains("the disk is full"), "{what}: {e}");
            }
            tally.add_outcome(landed, new);
        }
    }
    tally
}

/// A connection between the gateway and the store (a database, an S3 server) is cut, as a
/// network failure or a server's reset would, after a random number of the bytes a move sends
/// and receives. A database write fails and rolls back; an S3 request may be retried.
pub async fn a_connection_cut(b: &Backend, proxy: &CuttingProxy) -> Tally {
    let mut points = Points::new(&format!("{}: a connection cut", b.label));
    let mut tally = Tally::default();
    let mut client = b.client().await;
    for target in targets(b, "connection_cut") {
        // A move of NEW rows of about 210 bytes each: cuts fall in 0..1.5 times its bytes.
        move_time(&mut client, &target).await;
        for run in 0..runs() {
            reset(&mut client, &target).await;
            let before = b.state();
            let cuts = proxy.cuts();
            let at = points.below(NEW * 210 * 3 / 2);
            proxy.arm(at);
            let done = move_into(
                &mut client,
                generated(NEW),
                target.write(ExistingTable::DropAndRecreate),
            )
            .await;
            proxy.disarm();
            let landed = proxy.cuts() > cuts;
            assert!(
                done.is_ok() || landed,
                "{}: run {run}: failed with no cut: {done:?}",
                b.label
            );
            let what = format!("run {run}, cut after {at} bytes");
            let new = old_or_new(b, &mut client, &target, &before, &what).await;
            assert_eq!(new, done.is_ok(), "{}: {what}: {done:?}", b.label);
            tally.old += usize::from(!new);
            tally.new += usize::from(new);
            tally.landed += usize::from(landed);
        }
    }
    tally
}

/// Writes whose staged parts and open uploads expire at once, and are swept once expired: what
/// a killed gateway left is gone at its successor's second sweep, 5 s after its start.
const SWEPT_AT_ONCE: &str =
    "[server]\nwrite_ttl_seconds = 1\nmax_write_ttl_seconds = 1\nstale_parts_grace_seconds = 0\n";

/// A local folder whose killed writers' leftovers are swept at once.
pub fn local_folder() -> Backend {
    Backend::local_with(SWEPT_AT_ONCE)
}

/// S3 (moto) behind a [`CuttingProxy`], as [`through_a_proxy`]; what killed writers left is
/// swept at once.
pub fn s3_through_a_proxy() -> (Backend, CuttingProxy) {
    let s3 = crate::S3Server::start();
    s3.create_bucket(crate::contract::BUCKET);
    let port: u16 = s3.endpoint.rsplit_once(':').unwrap().1.parse().unwrap();
    let proxy = CuttingProxy::start(([127, 0, 0, 1], port).into());
    let config = s3
        .bucket_config("t", &format!("s3://{}/under", crate::contract::BUCKET))
        .replace(&s3.endpoint, &format!("http://{}", proxy.addr))
        + "part_size_mb = 1\n"
        + SWEPT_AT_ONCE;
    let envs = crate::S3Server::envs();
    let b = Backend::start("S3 (moto) through a proxy", Store::S3(s3), &config, &envs);
    (b, proxy)
}

/// Postgres or MariaDB behind a [`CuttingProxy`]: the gateway reaches it only through the
/// proxy; the checks look at it directly.
pub fn through_a_proxy(postgres: bool) -> (Backend, CuttingProxy) {
    let (url, store, label, password) = if postgres {
        let pg = Postgres::start();
        let url = pg.url();
        let password = ("PG_TEST_PASSWORD", Postgres::PASSWORD);
        (
            url,
            Store::Postgres(pg),
            "Postgres through a proxy",
            password,
        )
    } else {
        // Each commit written to the system as it is made (the harness's default writes the
        // redo log once a second), so that a killed server keeps what it said it committed.
        let db = Mariadb::start_with(&["--innodb-flush-log-at-trx-commit=2"]);
        // mysql_async would leave 127.0.0.1 for the server's socket, round the proxy.
        let url = db.url() + "?prefer_socket=false";
        let password = ("MARIA_PASSWORD", Mariadb::PASSWORD);
        (url, Store::Mariadb(db), "MariaDB through a proxy", password)
    };
    let (host_port, _) = url.split_once('@').unwrap().1.split_once('/').unwrap();
    let port: u16 = host_port.rsplit_once(':').unwrap().1.parse().unwrap();
    let proxy = CuttingProxy::start(([127, 0, 0, 1], port).into());
    let proxied = url.replace(host_port, &proxy.addr.to_string());
    let config = Backend::database_config("t", &proxied, password.0, "");
    let b = Backend::start(label, store, &config, &[password]);
    (b, proxy)
}
