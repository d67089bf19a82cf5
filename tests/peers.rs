//! Moves between gateways: three real gateway processes on loopback with certificates from one
//! test CA (east, west) and another (third). West pulls from east over mutual TLS; the client
//! that asked carries no data.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mover_client::Client;
use mover_client::client::Connect;
use mover_proto::{ExistingTable, Move, Query, Read, SignedTicket, TicketBody, read::What};
use mover_tests::names::{read, write};
use mover_tests::{
    CountingProxy, Gateway, Pki, bin, fails, ok, sqlite_has_table, sqlite_rows, workdir,
};
use prost::Message;
use tempfile::TempDir;
use tonic::Code;

const ORDERS: usize = 200_000;
const PART_FILES: usize = 8;
const PART_ROWS: usize = 1_000;
/// A query on east that runs far longer than any test waits.
const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT x, 'row ' || x AS label FROM c LIMIT 500000000";

fn as_who(pki: &Pki, who: &str, ca: &str) -> Connect {
    Connect {
        ca: Some(pki.pem(ca)),
        cert: Some(pki.pem(who)),
        key: Some(pki.key(who)),
        ..Default::default()
    }
}

/// mvrec with a certificate, against no default gateway: every name carries its gateway.
fn mvrec_as(pki: &Pki, who: &str, args: &[&str]) -> std::process::Output {
    let (ca, cert, key) = (pki.pem("ca"), pki.pem(who), pki.key(who));
    let mut all = vec![
        "--ca",
        ca.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    mover_tests::mvrec(&all)
}

/// East's data: `orders` (200k rows) and `secret` in SQLite; 8 CSV files under `parts/`.
fn east_data(dir: &Path) {
    let data = dir.join("data");
    let db = rusqlite::Connection::open(data.join("mover.db")).unwrap();
    db.execute_batch(&format!(
        "CREATE TABLE orders (id INTEGER NOT NULL, customer TEXT, qty INTEGER);
         INSERT INTO orders
           WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c LIMIT {ORDERS})
           SELECT x, 'customer number ' || x || ' of the eastern region', x % 97 FROM c;
         CREATE TABLE secret (pay INTEGER);
         INSERT INTO secret VALUES (100);"
    ))
    .unwrap();
    std::fs::create_dir_all(data.join("parts")).unwrap();
    for f in 0..PART_FILES {
        let mut text = String::from("id,name\n");
        for r in 0..PART_ROWS {
            let id = f * PART_ROWS + r;
            text.push_str(&format!("{id},name {id}\n"));
        }
        std::fs::write(data.join(format!("parts/part-{f}.csv")), text).unwrap();
    }
}

fn east_config(pki: &Pki, extra: &str) -> String {
    format!(
        r#"[server]
ticket_key_file = "ticket.key"
{extra}
{tls}
[databases.demo]
url = "sqlite://data/mover.db"
allow_sql = true

[buckets.files]
url = "file://data"

[[access]]
principal = "west"
read = ["demo/main/orders", "files/**"]
query = ["demo"]

[[access]]
principal = "alice"
read = ["files/**"]
"#,
        tls = pki.server_tls_as("east", "ca"),
    )
}

fn start_east(dir: &Path, pki: &Pki, extra: &str) -> Gateway {
    std::fs::write(
        dir.join("ticket.key"),
        "5f1d0c6e2b7a4f3e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddcc\n",
    )
    .unwrap();
    Gateway::start_with_config(dir, &east_config(pki, extra))
}

fn west_config(pki: &Pki, east: &Gateway) -> String {
    format!(
        r#"{tls}
[databases.demo]
url = "sqlite://data/mover.db"

[buckets.files]
url = "file://data"

[peers.east]
url = "{east}"
ca = "{ca}"
parallel = 3

[[access]]
principal = "alice"
read = ["@east/**", "demo/**", "files/**"]
query = ["@east/demo"]
write = ["demo/**", "files/**"]

[[access]]
principal = "bob"
write = ["demo/**", "files/**"]
"#,
        tls = pki.server_tls_as("west", "ca"),
        east = east.tls_url(),
        ca = pki.pem("ca").display(),
    )
}

struct Pair {
    pki: Pki,
    east_dir: TempDir,
    west_dir: TempDir,
    east: Gateway,
    west: Gateway,
}

impl Pair {
    fn start() -> Self {
        let (east_dir, west_dir) = (workdir(), workdir());
        let pki = Pki::make(&east_dir.path().join("pki"));
        east_data(east_dir.path());
        let east = start_east(east_dir.path(), &pki, "");
        let west = Gateway::start_with_config(west_dir.path(), &west_config(&pki, &east));
        Pair {
            pki,
            east_dir,
            west_dir,
            east,
            west,
        }
    }

    fn east_db(&self) -> std::path::PathBuf {
        self.east_dir.path().join("data/mover.db")
    }

    fn west_db(&self) -> std::path::PathBuf {
        self.west_dir.path().join("data/mover.db")
    }

    /// `name` on east, as mvrec writes it.
    fn on_east(&self, name: &str) -> String {
        format!("{}/{name}", self.east.tls_url())
    }

    /// `mvrec cp --partitions 8` as alice, of `from` on east to `to` on west.
    fn cp_in_parts(&self, from: &str, to: &str) -> std::process::Output {
        let (from, to) = (self.on_east(from), format!("{}/{to}", self.west.tls_url()));
        mvrec_as(
            &self.pki,
            "alice",
            &["cp", "--partitions", "8", &from, &to, "-q"],
        )
    }

    async fn client(&self, url: &str, who: &str) -> Client {
        Client::connect_with(url, &as_who(&self.pki, who, "ca"))
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_pulls_and_the_client_carries_no_data() {
    let pair = Pair::start();
    let proxy = CountingProxy::start(pair.west.addr());
    let west_via_proxy = format!("grpc+tls://{}", proxy.addr);

    let out = ok(mvrec_as(
        &pair.pki,
        "alice",
        &[
            "cp",
            &pair.on_east("demo/main/orders"),
            &format!("{west_via_proxy}/demo/main/orders"),
            "-q",
        ],
    ));
    assert!(out.contains(&format!("copied {ORDERS} rows")), "{out}");
    // The table came in rowid ranges read at once: the same rows, in another order.
    let mut source = sqlite_rows(&pair.east_db(), "orders");
    let mut pulled = sqlite_rows(&pair.west_db(), "orders");
    source.sort();
    pulled.sort();
    assert_eq!(pulled, source);
    assert!(
        pair.west.log().contains("pulling from a peer"),
        "{}",
        pair.west.log()
    );

    // What went through mvrec's connection: TLS, the request, progress reports; not the rows.
    let data_bytes: usize = source.iter().flatten().map(String::len).sum();
    let carried = proxy.down.load(Ordering::Relaxed) + proxy.up.load(Ordering::Relaxed);
    assert!(data_bytes > 5_000_000, "too little data to show anything");
    assert!(
        carried * 100 < data_bytes as u64,
        "mvrec's connection carried {carried} bytes for {data_bytes} bytes of data"
    );

    // --via-client pipes the same kind of move through mvrec, endpoint after endpoint, and
    // the bytes do pass through it.
    let before = proxy.up.load(Ordering::Relaxed);
    let out = ok(mvrec_as(
        &pair.pki,
        "alice",
        &[
            "cp",
            "--via-client",
            "--partitions",
            "8",
            &pair.on_east("files/parts/"),
            &format!("{west_via_proxy}/files/copy.parquet"),
            "-q",
        ],
    ));
    let n = PART_FILES * PART_ROWS;
    assert!(out.contains(&format!("copied {n} rows")), "{out}");
    assert!(proxy.up.load(Ordering::Relaxed) - before > (n * 8) as u64);
    let mut west = pair.client(&pair.west.tls_url(), "alice").await;
    let batches: Vec<_> = west
        .read(&read("files/copy.parquet"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), n);

    // A source that fails mid-way through --via-client: the upload is cut, the target
    // rolls back, and mvrec says the source failed.
    let bad = pair.east_dir.path().join("data/bad");
    std::fs::create_dir_all(&bad).unwrap();
    let mut text = String::from("id,name\n");
    for i in 0..50_000 {
        text.push_str(&format!("{i},name {i}\n"));
    }
    std::fs::write(bad.join("part-0.csv"), &text).unwrap();
    text.push_str("1,too,many,fields\n");
    std::fs::write(bad.join("part-1.csv"), &text).unwrap();
    let err = fails(mvrec_as(
        &pair.pki,
        "alice",
        &[
            "cp",
            "--via-client",
            &pair.on_east("files/bad/"),
            &format!("{west_via_proxy}/files/bad.parquet"),
        ],
    ));
    assert!(
        err.contains("the source failed") && err.contains("part-1.csv"),
        "{err}"
    );
    assert!(!pair.west_dir.path().join("data/bad.parquet").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_move_of_eight_endpoints_matches_the_source() {
    let pair = Pair::start();
    // East answers west with one endpoint per file when asked for 8.
    let mut as_west = pair.client(&pair.east.tls_url(), "west").await;
    let mut parts = read("files/parts/");
    parts.partitions = 8;
    let info = as_west.info(&parts).await.unwrap();
    assert_eq!(info.endpoint.len(), PART_FILES);
    assert!(!info.ordered);

    let out = ok(pair.cp_in_parts("files/parts/", "demo/main/parts"));
    let n = PART_FILES * PART_ROWS;
    assert!(out.contains(&format!("copied {n} rows")), "{out}");
    let mut got = sqlite_rows(&pair.west_db(), "parts");
    got.sort_by_key(|row| row[0].parse::<usize>().unwrap());
    let expected: Vec<Vec<String>> = (0..n)
        .map(|id| vec![id.to_string(), format!("name {id}")])
        .collect();
    assert_eq!(got, expected);
    // Eight DoGets on east, every one to its end.
    assert!(
        !pair.east.log().contains("ended early"),
        "{}",
        pair.east.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_move_into_a_prefix_stages_a_part_an_endpoint_and_commits_once() {
    let pair = Pair::start();
    let out = ok(pair.cp_in_parts("files/parts/", "files/out/"));
    let n = PART_FILES * PART_ROWS;
    assert!(out.contains(&format!("copied {n} rows")), "{out}");
    // Each of east's eight endpoints was its own part on west (a staged file or more each),
    // published at once: every id once, nothing staged left.
    assert!(
        pair.west.log().contains("moving in parts"),
        "{}",
        pair.west.log()
    );
    let files = mover_tests::files_under(&pair.west_dir.path().join("data/out"));
    assert!(files.len() >= PART_FILES, "{files:?}");
    assert!(files.iter().all(|f| !f.contains("_staging")), "{files:?}");
    let mut west = pair.client(&pair.west.tls_url(), "alice").await;
    let (_, ids) = mover_tests::names::ids_in_parts(&mut west, "files/out/", 1).await;
    assert_eq!(ids, (0..n as i64).collect::<Vec<_>>());

    // One endpoint of eight fails (its file has a ragged row): nothing is published, and
    // what the other parts staged is removed.
    let bad = pair.east_dir.path().join("data/bad");
    std::fs::create_dir_all(&bad).unwrap();
    for f in 0..PART_FILES {
        let mut text = String::from("id,name\n");
        for r in 0..PART_ROWS {
            text.push_str(&format!("{r},name {r}\n"));
        }
        if f == 5 {
            text.push_str("7,a,ragged row\n");
        }
        std::fs::write(bad.join(format!("part-{f}.csv")), text).unwrap();
    }
    let err = fails(pair.cp_in_parts("files/bad/", "files/out2/"));
    assert!(
        err.contains("source: gateway east") && err.contains("part-5.csv"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(300)); // removals run in tasks of their own
    let left = mover_tests::files_under(&pair.west_dir.path().join("data"));
    assert!(left.iter().all(|f| !f.starts_with("out2")), "{left:?}");

    // Through mvrec (--via-client) the same: a write in parts of eight DoPuts at once,
    // committed once; and a bad endpoint aborts it.
    let via_client = |from: &str, to: &str| {
        let (from, to) = (pair.on_east(from), format!("{}/{to}", pair.west.tls_url()));
        let args = ["cp", "--via-client", "--partitions", "8", &from, &to, "-q"];
        mvrec_as(&pair.pki, "alice", &args)
    };
    let out = ok(via_client("files/parts/", "files/out3/"));
    assert!(out.contains(&format!("copied {n} rows")), "{out}");
    let log = pair.west.log();
    assert_eq!(log.matches("a write in parts began").count(), 1, "{log}");
    assert!(log.contains("committing a write in parts"), "{log}");
    let files = mover_tests::files_under(&pair.west_dir.path().join("data/out3"));
    assert!(files.len() >= PART_FILES, "{files:?}");
    assert!(files.iter().all(|f| !f.contains("_staging")), "{files:?}");
    let (_, ids) = mover_tests::names::ids_in_parts(&mut west, "files/out3/", 1).await;
    assert_eq!(ids, (0..n as i64).collect::<Vec<_>>());
    let err = fails(via_client("files/bad/", "files/out4/"));
    assert!(
        err.contains("the source failed") && err.contains("part-5.csv"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let left = mover_tests::files_under(&pair.west_dir.path().join("data"));
    assert!(left.iter().all(|f| !f.starts_with("out4")), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_name_who_and_what() {
    let pair = Pair::start();
    let west = pair.west.tls_url();
    let target = format!("{west}/demo/main/copy");

    // bob may write on west, but may not have west read east for him (the confused deputy).
    let err = fails(mvrec_as(
        &pair.pki,
        "bob",
        &["cp", &pair.on_east("demo/main/orders"), &target],
    ));
    assert!(
        err.contains("permission denied")
            && err.contains("bob may not read @east/demo/main/orders"),
        "{err}"
    );

    // West reads on east only what east's rules give west.
    let err = fails(mvrec_as(
        &pair.pki,
        "alice",
        &["cp", &pair.on_east("demo/main/secret"), &target],
    ));
    assert!(
        err.contains("source: gateway east") && err.contains("west may not read demo/main/secret"),
        "{err}"
    );

    // No open relay: a gateway that is not a configured peer is refused before any call.
    let third_dir = workdir();
    let third_config = format!(
        "{}[buckets.files]\nurl = \"file://data\"\n\
         [peers.east]\nurl = \"{east}\"\nca = \"{ca}\"\n\
         [peers.east_by_name]\nurl = \"{east_by_name}\"\nca = \"{other_ca}\"\n\
         [[access]]\nprincipal = \"alice\"\nread = [\"@east/**\", \"@east_by_name/**\"]\nwrite = [\"files/**\"]\n",
        pair.pki.server_tls_as("third", "other-ca"),
        east = pair.east.tls_url(),
        east_by_name = pair.east.tls_url().replace("127.0.0.1", "localhost"),
        ca = pair.pki.pem("ca").display(),
        other_ca = pair.pki.pem("other-ca").display(),
    );
    let third = Gateway::start_with_config(third_dir.path(), &third_config);
    let err = fails(mvrec_as(
        &pair.pki,
        "alice",
        &[
            "cp",
            &format!("{}/files/x.csv", third.tls_url()),
            &format!("{west}/files/x.csv"),
        ],
    ));
    assert!(err.contains("is not a peer of this gateway"), "{err}");

    // Peers from another CA: east refuses third's certificate, and third, told the wrong CA
    // for east, refuses east's.
    let mut to_third =
        Client::connect_with(&third.tls_url(), &as_who(&pair.pki, "stranger", "other-ca"))
            .await
            .unwrap();
    let pull = |gateway: String| Move {
        source: Some(read("files/parts/part-0.csv")),
        target: Some(write("files/p0.csv", ExistingTable::Fail)),
        source_gateway: gateway,
    };
    let err = to_third
        .move_dataset(&pull(pair.east.tls_url()), |_| {})
        .await
        .unwrap_err();
    // With TLS 1.3 the refusal comes after the handshake: east's UnknownCA alert, or (racing
    // it) just the closed connection.
    assert_eq!(err.code(), Some(Code::Unavailable), "{err}");
    assert!(err.to_string().contains("source: gateway east ("), "{err}");
    let err = to_third
        .move_dataset(
            &pull(pair.east.tls_url().replace("127.0.0.1", "localhost")),
            |_| {},
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("source: gateway east_by_name") && text.contains("UnknownIssuer"),
        "{text}"
    );
    assert!(!third_dir.path().join("data/p0.csv").exists());

    // A type mismatch at the target says it is the target, and changes nothing there.
    let db = rusqlite::Connection::open(pair.west_db()).unwrap();
    db.execute_batch("CREATE TABLE small (other TEXT); INSERT INTO small VALUES ('kept');")
        .unwrap();
    let err = fails(mvrec_as(
        &pair.pki,
        "alice",
        &[
            "cp",
            &pair.on_east("files/parts/part-0.csv"),
            &format!("{west}/demo/main/small"),
            "--existing-table",
            "append",
        ],
    ));
    assert!(
        err.contains("target") && err.contains("schema mismatch"),
        "{err}"
    );
    assert_eq!(sqlite_rows(&pair.west_db(), "small"), vec![vec!["kept"]]);
    assert!(!sqlite_has_table(&pair.west_db(), "copy"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_are_bound_to_principal_and_expiry_and_survive_a_restart() {
    let dir = workdir();
    let pki = Pki::make(&dir.path().join("pki"));
    east_data(dir.path());
    let ttl = 6;
    let mut east = start_east(dir.path(), &pki, &format!("ticket_ttl_seconds = {ttl}"));
    let connect = |url: String, who: &'static str| {
        let how = as_who(&pki, who, "ca");
        async move { Client::connect_with(&url, &how).await.unwrap() }
    };
    let mut west = connect(east.tls_url(), "west").await;
    let issued = Instant::now();
    let info = west.info(&read("demo/main/orders")).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let rows = |batches: Vec<arrow::array::RecordBatch>| -> usize {
        batches.iter().map(|b| b.num_rows()).sum()
    };
    let got = west
        .redeem(ticket.clone())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows(got), ORDERS);

    // Altered: the same signature over a body that names another table.
    let mut signed = SignedTicket::decode(ticket.ticket.clone()).unwrap();
    let mut body = TicketBody::decode(signed.body.as_slice()).unwrap();
    body.read = Some(read("demo/main/secret"));
    signed.body = body.encode_to_vec();
    let forged = arrow_flight::Ticket::new(signed.encode_to_vec());
    let err = west.redeem(forged).await.err().unwrap();
    assert_eq!(err.code(), Some(Code::Unauthenticated), "{err}");
    assert!(err.to_string().contains("signature"), "{err}");
    // Made up: a bare read is no ticket on a gateway that authenticates.
    let bare = arrow_flight::Ticket::new(read("demo/main/orders").encode_to_vec());
    let err = west.redeem(bare).await.err().unwrap();
    assert!(err.to_string().contains("not a signed ticket"), "{err}");
    // Another principal: alice holds west's ticket.
    let mut alice = connect(east.tls_url(), "alice").await;
    let err = alice.redeem(ticket.clone()).await.err().unwrap();
    assert!(err.to_string().contains("another principal"), "{err}");

    // Restarted with the same key, east redeems what it issued before.
    east.kill();
    let east = start_east(dir.path(), &pki, &format!("ticket_ttl_seconds = {ttl}"));
    let mut west = connect(east.tls_url(), "west").await;
    let got = west
        .redeem(ticket.clone())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows(got), ORDERS);

    // Expired.
    let expiry = Duration::from_secs(ttl + 1);
    if let Some(left) = expiry.checked_sub(issued.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let err = west.redeem(ticket).await.err().unwrap();
    assert!(err.to_string().contains("expired"), "{err}");
}

/// West's `target` table with three rows, which a failed move must leave as they are.
fn west_target(pair: &Pair) -> Vec<Vec<String>> {
    let db = rusqlite::Connection::open(pair.west_db()).unwrap();
    db.execute_batch(
        "CREATE TABLE target (x INTEGER, label TEXT);
         INSERT INTO target VALUES (1, 'one'), (2, 'two'), (3, 'three');",
    )
    .unwrap();
    sqlite_rows(&pair.west_db(), "target")
}

fn endless_pull(pair: &Pair) -> Move {
    Move {
        source: Some(Read {
            what: Some(What::Query(Query {
                database: "demo".into(),
                sql: ENDLESS.into(),
                ..Default::default()
            })),
            ..Default::default()
        }),
        target: Some(write(
            "demo/main/target",
            ExistingTable::TruncateAndOverwrite,
        )),
        source_gateway: pair.east.tls_url(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn east_killed_mid_move_leaves_the_target_unchanged() {
    let mut pair = Pair::start();
    let before = west_target(&pair);
    let mut west = pair.client(&pair.west.tls_url(), "alice").await;
    let mv = endless_pull(&pair);
    let east = &mut pair.east;
    let mut killed = false;
    let err = west
        .move_dataset(&mv, |p| {
            if p.rows_read > 0 && !killed {
                east.kill();
                killed = true;
            }
        })
        .await
        .unwrap_err();
    assert!(killed, "the move failed before east was killed: {err}");
    assert_eq!(err.code(), Some(Code::Unavailable), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("source: gateway east") && text.contains("connection failed"),
        "{text}"
    );
    assert_eq!(sqlite_rows(&pair.west_db(), "target"), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_in_mvrec_cancels_the_move_on_both_gateways() {
    let pair = Pair::start();
    let before = west_target(&pair);
    let (ca, cert, key) = (
        pair.pki.pem("ca"),
        pair.pki.pem("alice"),
        pair.pki.key("alice"),
    );
    let mut child = Command::new(bin("mvrec"))
        .args(["--ca", ca.to_str().unwrap()])
        .args(["--cert", cert.to_str().unwrap()])
        .args(["--key", key.to_str().unwrap()])
        .args([
            "cp",
            &pair.on_east("demo"),
            &format!("{}/demo/main/target", pair.west.tls_url()),
            "--sql",
            ENDLESS,
            "--existing-table",
            "truncate-and-overwrite",
            "-q",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    pair.west.wait_for_log("pulling from a peer", 10);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the move ended by itself"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    // West drops the move at its next progress report; that drops its DoGet on east, which
    // stops the query there.
    pair.west.wait_for_log("cancelling", 10);
    pair.east.wait_for_log("a DoGet ended early", 10);
    assert_eq!(sqlite_rows(&pair.west_db(), "target"), before);
}

/// What a pull from east left in one of west's targets: its rows and the sum of their ids.
fn pulled(pair: &Pair, target: &str) -> (u64, i64) {
    if target.starts_with("demo/") {
        let db = rusqlite::Connection::open(pair.west_db()).unwrap();
        return db
            .query_row(
                "SELECT count(*), coalesce(sum(id), 0) FROM pulled",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .unwrap();
    }
    let text = std::fs::read_to_string(pair.west_dir.path().join("data/pulled.csv")).unwrap();
    let ids = text.lines().skip(1).map(|l| {
        let id = l.split(',').next().unwrap_or_default();
        id.parse::<i64>()
            .unwrap_or_else(|_| panic!("not an id: {l:?}"))
    });
    ids.fold((0, 0), |(n, sum), id| (n + 1, sum + id))
}

/// West's `target` holding its old rows again: ids 1 to 1,000.
fn old_rows(pair: &Pair, target: &str) {
    if target.starts_with("demo/") {
        let db = rusqlite::Connection::open(pair.west_db()).unwrap();
        db.execute_batch(
            "DROP TABLE IF EXISTS pulled;
             CREATE TABLE pulled (id INTEGER NOT NULL, customer TEXT, qty INTEGER);
             INSERT INTO pulled WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000)
               SELECT x, 'old', 0 FROM c;",
        )
        .unwrap();
        return;
    }
    let mut text = String::from("id,customer,qty\n");
    for id in 1..=1000 {
        text.push_str(&format!("{id},old,0\n"));
    }
    std::fs::write(pair.west_dir.path().join("data/pulled.csv"), text).unwrap();
}

/// Files in west's data folder that a write stages: object_store's temporary `NAME#N` files.
fn staged_in_west(pair: &Pair) -> Vec<String> {
    mover_tests::files_under(&pair.west_dir.path().join("data"))
        .into_iter()
        .filter(|f| f.contains('#') || f.contains("_staging-"))
        .collect()
}

/// East, the source, killed with SIGKILL at 20 random points of a pull ([`faults::runs`]) and
/// started again on its address, as a supervisor would: west's target (a table, a CSV file)
/// holds exactly its old rows or all of east's, nothing staged stays, and west serves the next
/// pull without a restart of its own.
#[tokio::test(flavor = "multi_thread")]
async fn east_killed_at_random_points_leaves_west_old_or_new() {
    use mover_tests::faults;
    let mut pair = Pair::start();
    let mut points = faults::Points::new("a peer killed");
    let old = (1000u64, 500_500i64);
    let new = (ORDERS as u64, (ORDERS as i64 - 1) * ORDERS as i64 / 2);
    let pull = |pair: &Pair, target: &str| Move {
        source: Some(read("demo/main/orders")),
        target: Some(write(target, ExistingTable::DropAndRecreate)),
        source_gateway: pair.east.tls_url(),
    };
    let (mut landed, mut kept_old, mut got_new) = (0, 0, 0);
    for target in ["demo/main/pulled", "files/pulled.csv"] {
        let mut west = pair.client(&pair.west.tls_url(), "alice").await;
        let started = Instant::now();
        west.move_dataset(&pull(&pair, target), |_| {})
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(pulled(&pair, target), new);
        for run in 0..faults::runs() {
            old_rows(&pair, target);
            let at = Duration::from_micros(points.below(took.as_micros() as u64 * 3 / 2));
            let mut west = pair.client(&pair.west.tls_url(), "alice").await;
            let mv = pull(&pair, target);
            let moving = tokio::spawn(async move { west.move_dataset(&mv, |_| {}).await });
            tokio::time::sleep(at).await;
            landed += usize::from(!moving.is_finished());
            tokio::task::block_in_place(|| pair.east.restart());
            let done = moving.await.unwrap();
            let what = format!("{target}: run {run}, east killed after {at:?}: {done:?}");
            if let Err(e) = &done {
                assert_eq!(e.code(), Some(Code::Unavailable), "{what}");
            }
            // A failed write rolls back on its own time: settled within 30 s.
            let deadline = Instant::now() + Duration::from_secs(30);
            let is_new = loop {
                let (rows, staged) = (pulled(&pair, target), staged_in_west(&pair));
                if staged.is_empty() && (rows == old || rows == new) {
                    break rows == new;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: {rows:?}, staged {staged:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert!(done.is_err() || is_new, "{what}: said it committed");
            kept_old += usize::from(!is_new);
            got_new += usize::from(is_new);
        }
    }
    eprintln!(
        "faults: gateway to gateway: a peer killed: {landed} faults landed; {kept_old} left the old rows, {got_new} the new"
    );
    assert!(landed > 0, "no kill landed inside a pull");
}
