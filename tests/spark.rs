//! Apache Spark (pyspark from PyPI, `local[2]`, Debian's OpenJDK 17) reading and writing
//! through a real gateway over mutual TLS with `mover_spark` (`spark/`), run as
//! `tests/python/clients/spark_checks.py`: partitioned reads from Postgres block ranges and an
//! S3 prefix on moto, writes in parts committed once, retried and failing tasks, a killed
//! driver, a reader watching an overwrite, and tickets redeemed twice, renewed and expired.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mover_tests::{Gateway, Pki, Postgres, S3Server, ok, workdir};

const ROWS: u64 = 2_000_000;

/// `big` in Postgres: every kind of column Spark sums.
const BIG: &str = "CREATE TABLE big AS SELECT i::bigint AS id, (i % 100)::int AS qty, \
    ((i % 10000) / 100.0)::numeric(12,2) AS price, \
    timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' AS ts, \
    date '2000-01-01' + (i % 9000)::int AS day, 'name-' || (i % 977) AS name \
    FROM generate_series(1, 2000000) i";

/// Row count and a sum per column of `table`, as `spark_checks.py`'s `sums` gives them.
fn sums_sql(table: &str) -> String {
    format!(
        "SELECT count(*), sum(id), sum(qty), sum(price), sum(extract(epoch FROM ts))::bigint, \
         sum(day - date '1970-01-01'), sum(length(name)) FROM {table}"
    )
}

struct Served {
    gw: Gateway,
    pg: Postgres,
    s3: S3Server,
    pki: Pki,
    dir: tempfile::TempDir,
}

/// A gateway over mutual TLS: `warehouse` (Postgres, split into block ranges), `warehouse2`
/// (another database of the same server) and `lake` (S3 on moto); alice may do anything.
fn serve() -> Served {
    let dir = workdir();
    let pki = Pki::make(&dir.path().join("pki"));
    let pg = Postgres::start();
    pg.psql("CREATE DATABASE other");
    let s3 = S3Server::start();
    s3.create_bucket("lake");
    let config = format!(
        "[server]\n{tls}\
         [databases.warehouse]\nurl = \"{}\"\npassword_env = \"PG_PASSWORD\"\nsplit_reads = true\n\
         allow_sql = true\n\
         [databases.warehouse2]\nurl = \"{}\"\npassword_env = \"PG_PASSWORD\"\n\
         {}\n\
         [[access]]\nprincipal = \"alice\"\nread = [\"**\"]\nwrite = [\"**\"]\nquery = [\"warehouse\"]\n",
        pg.url(),
        pg.url_of("other"),
        s3.bucket_config("lake", "s3://lake"),
        tls = pki.server_tls(),
    );
    let [key, secret] = S3Server::envs();
    let envs = [("PG_PASSWORD", Postgres::PASSWORD), key, secret];
    let gw = Gateway::start_with_config_env(dir.path(), &config, &envs);
    Served {
        gw,
        pg,
        s3,
        pki,
        dir,
    }
}

impl Served {
    /// The data source's connection options, as a Spark job gives them.
    fn options(&self, gw: &Gateway) -> serde_json::Value {
        serde_json::json!({
            "gateway": gw.tls_url(),
            "tls_root_certs": self.pki.pem("ca"),
            "cert": self.pki.pem("alice"),
            "key": self.pki.key("alice"),
        })
    }

    fn mvrec(&self, args: &[&str]) -> String {
        let url = self.gw.tls_url();
        let (ca, cert, key) = (
            self.pki.pem("ca"),
            self.pki.pem("alice"),
            self.pki.key("alice"),
        );
        let mut all = vec!["--gateway", &url];
        all.extend_from_slice(args);
        let out = Command::new(mover_tests::bin("mvrec"))
            .args(&all)
            .env("MVREC_CA", ca)
            .env("MVREC_CERT", cert)
            .env("MVREC_KEY", key)
            .output()
            .expect("run mvrec");
        ok(out)
    }

    /// Tables whose name says they are a staged part, in either database.
    fn staging_tables(&self) -> String {
        let sql = "SELECT string_agg(relname, ',') FROM pg_class WHERE relname LIKE '\\_mover\\_stage\\_%'";
        format!("{}{}", self.pg.psql(sql), self.pg.psql_in("other", sql))
    }

    fn assert_nothing_staged(&self) {
        assert_eq!(self.staging_tables(), "", "staging tables are left");
        let keys = self.s3.keys("lake");
        assert!(!keys.iter().any(|k| k.contains("_staging")), "{keys:?}");
        assert!(self.s3.pending_uploads("lake").is_empty());
    }
}

/// Run a check of `spark_checks.py`; the JSON lines it printed.
fn spark_check(check: &str, spec: &serde_json::Value, gw: &Gateway) -> Vec<serde_json::Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test (it makes .venv with pyspark and mover_spark)",
        python.display()
    );
    let out = Command::new(&python)
        .arg(root.join("tests/python/clients/spark_checks.py"))
        .args([check, &spec.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("run spark_checks.py: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("spark {check} passed")),
        "spark_checks.py {check} failed:\n{stdout}\n{}\nthe gateway's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The sums of one JSON line, in `sums_sql`'s order, as psql prints them.
fn sums_line(line: &serde_json::Value) -> String {
    ["rows", "id", "qty", "price", "ts", "day", "name"]
        .iter()
        .map(|k| line[k].as_str().expect("a sum").to_string())
        .collect::<Vec<_>>()
        .join("|")
}

fn line<'a>(lines: &'a [serde_json::Value], what: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["what"] == what)
        .unwrap_or_else(|| panic!("no {what} line in {lines:?}"))
}

/// 2M Postgres rows read as 8 Spark partitions and a 10-file S3 prefix as 10, with the row
/// count and every column's sum equal to Postgres's own; written back from every task (append
/// into another database, overwrite of a prefix), committed once, with nothing staged left.
#[test]
fn spark_reads_every_endpoint_and_writes_back_once() {
    let served = serve();
    served.pg.psql(BIG);
    served.pg.psql("ANALYZE big");
    // The prefix: ten Parquet files, a tenth of the table each.
    for n in 0..10 {
        let sql = format!("SELECT * FROM big WHERE id % 10 = {n}");
        let target = format!("lake/src/f{n}.parquet");
        served.mvrec(&["cp", "warehouse", &target, "--sql", &sql]);
    }
    // An old part the overwrite must replace.
    served.mvrec(&[
        "cp",
        "warehouse",
        "lake/exports/big/",
        "--sql",
        "SELECT * FROM big LIMIT 5",
    ]);
    let spec = serde_json::json!({
        "options": served.options(&served.gw),
        "table": "warehouse/public/big",
        "prefix": "lake/src/",
        "append_to": "warehouse2/public/big",
        "overwrite_to": "lake/exports/big/",
    });
    let lines = spark_check("roundtrip", &spec, &served.gw);
    let expected = served.pg.psql(&sums_sql("big"));
    assert!(expected.starts_with(&format!("{ROWS}|")), "{expected}");
    for what in ["pg", "prefix", "appended", "overwritten"] {
        assert_eq!(sums_line(line(&lines, what)), expected, "{what}");
    }
    // Postgres's own count of the other database's table, and the prefix's parts.
    assert_eq!(served.pg.psql_in("other", &sums_sql("big")), expected);
    let parts: Vec<String> = served
        .s3
        .keys("lake")
        .into_iter()
        .filter(|k| k.starts_with("exports/big/"))
        .collect();
    assert!(parts.len() >= 6, "one part a task at least: {parts:?}");
    served.assert_nothing_staged();
}

/// A ticket redeemed twice gives the same rows; endpoints carry their expiration; a renewed
/// endpoint outlives the old, which is then refused (a gateway whose tickets live 4 s).
#[test]
fn tickets_are_redeemed_again_renewed_and_expire() {
    let served = serve();
    served.pg.psql(&BIG.replace("2000000", "600000"));
    let short_dir = workdir();
    let config = std::fs::read_to_string(served.dir.path().join("gateway.toml"))
        .unwrap()
        .replace("[server]\n", "[server]\nticket_ttl_seconds = 4\n");
    let [key, secret] = S3Server::envs();
    let envs = [("PG_PASSWORD", Postgres::PASSWORD), key, secret];
    let short = Gateway::start_with_config_env(short_dir.path(), &config, &envs);
    let spec = serde_json::json!({
        "options": served.options(&served.gw),
        "short_gateway": short.tls_url(),
        "table": "warehouse/public/big",
        "rows": 600000,
    });
    spark_check("tickets", &spec, &served.gw);
}

/// A task that fails once and is retried gives exactly the rows; a job whose task always
/// fails leaves its target exactly as it was; a reader watching an overwrite sees the old rows
/// or the new, never a mix; nothing staged is left.
#[test]
fn spark_retries_and_failures_leave_exactly_the_write_or_nothing() {
    let served = serve();
    let rows = 200_000;
    served.pg.psql_in(
        "other",
        "CREATE TABLE kept (id bigint, qty int); INSERT INTO kept VALUES (1, 1), (2, 2), (3, 3)",
    );
    served.pg.psql_in(
        "other",
        &format!("CREATE TABLE watched AS SELECT i::bigint AS id, 1 AS qty FROM generate_series(0, {rows} - 1) i"),
    );
    let spec = serde_json::json!({
        "options": served.options(&served.gw),
        "scratch": served.dir.path(),
        "rows": rows,
        "retried": "warehouse2/public/retried",
        "kept": "warehouse2/public/kept",
        "watched": "warehouse2/public/watched",
    });
    let lines = spark_check("failures", &spec, &served.gw);
    let retried = served.pg.psql_in(
        "other",
        "SELECT count(*), count(DISTINCT id), sum(id) FROM retried",
    );
    let n = rows as u64;
    assert_eq!(retried, format!("{n}|{n}|{}", n * (n - 1) / 2));
    assert_eq!(
        served.pg.psql_in(
            "other",
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM kept"
        ),
        "1,2,3"
    );
    let watched = line(&lines, "watched");
    assert!(watched["reads"].as_u64().unwrap() >= 2, "{watched}");
    served.assert_nothing_staged();
}

/// A driver killed mid-write: its target never shows part of the write, and once the write's
/// expiry has passed the gateway has removed what the finished tasks staged.
#[test]
fn a_killed_driver_leaves_nothing_once_its_write_expires() {
    let served = serve();
    served.pg.psql_in(
        "other",
        "CREATE TABLE target (id bigint, qty int); INSERT INTO target VALUES (7, 7)",
    );
    let spec = serde_json::json!({
        "options": served.options(&served.gw),
        "target": "warehouse2/public/target",
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut driver = {
        use std::os::unix::process::CommandExt;
        Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/python/clients/spark_checks.py"))
            .args(["driver", &spec.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the Spark driver")
    };
    // Kill the driver (and its JVM and workers) once the quick tasks have staged their parts.
    let started = Instant::now();
    while served.staging_tables().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no part was staged: {}",
            served.gw.log()
        );
        assert!(
            driver.try_wait().unwrap().is_none(),
            "the driver ended first"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", driver.id())])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let _ = driver.wait();
    assert_eq!(
        served
            .pg
            .psql_in("other", "SELECT string_agg(id::text, ',') FROM target"),
        "7"
    );
    // The write lives 20 s from its start; the gateway reaps every second.
    let killed = Instant::now();
    while !served.staging_tables().is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(45),
            "the expired write's parts are still staged: {}",
            served.staging_tables()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        served
            .pg
            .psql_in("other", "SELECT string_agg(id::text, ',') FROM target"),
        "7"
    );
    assert!(
        served
            .gw
            .log()
            .contains("a write expired before its commit")
    );
}
