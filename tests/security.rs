//! Security through a real gateway process with certificates made in the test: mutual TLS and
//! principals, refused certificates, access rules, Handshake tokens, the plaintext rule, and
//! secrets that never show in any output.

use std::path::Path;

use futures::TryStreamExt;
use mover_client::Client;
use mover_client::client::{Connect, Result as ClientResult};
use mover_proto::{Query, Read, read::What};
use mover_tests::names::read;
use mover_tests::{Gateway, Pki, fails, hash_password, ok, workdir};
use tonic::Code;

fn with_cert(pki: &Pki, who: &str) -> Connect {
    Connect {
        ca: Some(pki.pem("ca")),
        cert: Some(pki.pem(who)),
        key: Some(pki.key(who)),
        ..Default::default()
    }
}

/// Connect and make one real call: a TLS 1.3 client without a valid certificate "connects",
/// and the refusal arrives at the first RPC.
async fn first_call(url: &str, how: &Connect) -> ClientResult<usize> {
    let mut c = Client::connect_with(url, how).await?;
    Ok(c.list("").await?.len())
}

const RULES: &str = r#"
[[access]]
principal = "alice"
read = ["demo/**", "files/**"]
write = ["files/**", "demo/main/*"]
query = ["demo"]

[[access]]
principal = "bob"
read = ["files/public/**"]
"#;

fn setup_data(dir: &Path) {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("public")).unwrap();
    std::fs::write(data.join("secret.csv"), "id,pay\n1,100\n").unwrap();
    std::fs::write(data.join("public/menu.csv"), "id,dish\n1,soup\n").unwrap();
}

fn config(pki: &Pki, extra: &str) -> String {
    format!(
        "[databases.demo]\nurl = \"sqlite://data/mover.db\"\nallow_sql = true\n[buckets.files]\nurl = \"file://data\"\n{}{extra}{RULES}",
        pki.server_tls()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_names_principals_and_refuses_bad_certificates() {
    let dir = workdir();
    setup_data(dir.path());
    let pki = Pki::make(&dir.path().join("pki"));
    let gw = Gateway::start_with_config(dir.path(), &config(&pki, ""));
    let url = gw.tls_url();

    // alice, with her certificate: lists and reads.
    assert_eq!(
        first_call(&url, &with_cert(&pki, "alice")).await.unwrap(),
        2
    );

    // Refused: no certificate, expired, not yet valid, from another CA, self-signed.
    let no_cert = Connect {
        ca: Some(pki.pem("ca")),
        ..Default::default()
    };
    assert!(
        first_call(&url, &no_cert).await.is_err(),
        "no client certificate"
    );
    // Each refusal says why, and which certificate to look at.
    for (bad, why) in [
        ("expired", "CertificateExpired"),
        ("future", "CertificateExpired"),
        ("stranger", "UnknownCA"),
        ("selfsigned", "UnknownCA"),
    ] {
        let err = first_call(&url, &with_cert(&pki, bad))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("--cert"), "{bad}: {err}");
        // The alert races the closed connection: when it arrives first, it is the right one.
        if err.contains("fatal alert") {
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
    let err = first_call(&url, &no_cert).await.unwrap_err().to_string();
    assert!(err.contains("--cert"), "{err}");
    // The client refuses a gateway whose certificate its CA did not sign.
    let wrong_ca = Connect {
        ca: Some(pki.pem("other-ca")),
        ..with_cert(&pki, "alice")
    };
    let err = first_call(&url, &wrong_ca).await.unwrap_err();
    assert!(
        err.to_string().contains("did not verify against --ca"),
        "{err}"
    );
    // Plaintext to the TLS port fails.
    assert!(first_call(&gw.url, &Connect::default()).await.is_err());
    // TLS options with a plaintext URL are a mistake, said so.
    let err = first_call(&gw.url, &with_cert(&pki, "alice"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("grpc+tls://"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn access_rules_decide_and_listings_show_only_what_may_be_read() {
    let dir = workdir();
    setup_data(dir.path());
    let pki = Pki::make(&dir.path().join("pki"));
    let gw = Gateway::start_with_config(dir.path(), &config(&pki, ""));
    let url = gw.tls_url();
    let mut alice = Client::connect_with(&url, &with_cert(&pki, "alice"))
        .await
        .unwrap();
    let mut bob = Client::connect_with(&url, &with_cert(&pki, "bob"))
        .await
        .unwrap();

    // alice writes a table; bob may not read it, nor learn what else exists.
    let mv = mover_proto::Move {
        source: Some(read("files/secret.csv")),
        target: Some(mover_proto::Write {
            path: Some(mover_proto::Path {
                parts: vec!["demo".into(), "main".into(), "pay".into()],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    alice.move_dataset(&mv, |_| {}).await.unwrap();
    let names = |infos: Vec<arrow_flight::FlightInfo>| -> Vec<String> {
        infos
            .iter()
            .map(|i| i.flight_descriptor.as_ref().unwrap().path.join("/"))
            .collect()
    };
    let seen = names(bob.list("").await.unwrap());
    assert_eq!(seen, ["files/public/"], "bob sees: {seen:?}");
    assert_eq!(
        names(bob.list("files/public/").await.unwrap()),
        ["files/public/menu.csv"]
    );
    assert!(names(alice.list("").await.unwrap()).contains(&"demo/main/pay".to_string()));

    for (what, err) in [
        (
            "read a table",
            bob.info(&read("demo/main/pay")).await.unwrap_err(),
        ),
        (
            "read a file",
            bob.info(&read("files/secret.csv")).await.unwrap_err(),
        ),
        (
            "read a prefix",
            bob.info(&read("files/")).await.unwrap_err(),
        ),
        (
            "read a glob",
            bob.info(&read("files/*.csv")).await.unwrap_err(),
        ),
    ] {
        assert_eq!(err.code(), Some(Code::PermissionDenied), "{what}: {err}");
        assert!(
            err.to_string().contains("bob may not read"),
            "{what}: {err}"
        );
    }
    // A ticket is checked like a descriptor.
    let err = bob.read(&read("files/secret.csv")).await.err().unwrap();
    assert_eq!(err.code(), Some(Code::PermissionDenied), "{err}");
    // What bob may read, he reads; a prefix he may read is covered by his ** rule.
    let got: Vec<_> = bob
        .read(&read("files/public/"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got[0].num_rows(), 1);
    // Moves need read on the source and write on the target.
    let mv = mover_proto::Move {
        source: Some(read("files/public/menu.csv")),
        target: Some(mover_proto::Write {
            path: Some(mover_proto::Path {
                parts: vec!["files".into(), "public".into(), "copy.csv".into()],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = bob.move_dataset(&mv, |_| {}).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("bob may not write files/public/copy.csv"),
        "{err}"
    );
    // SQL needs `query`.
    let q = Read {
        what: Some(What::Query(Query {
            database: "demo".into(),
            sql: "SELECT * FROM pay".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let err = bob.info(&q).await.unwrap_err();
    assert!(err.to_string().contains("bob may not query demo"), "{err}");
    assert_eq!(
        alice
            .info(&q)
            .await
            .unwrap()
            .try_decode_schema()
            .unwrap()
            .fields()
            .len(),
        2
    );
    // Traversal is refused before any rule is consulted.
    let err = alice.info(&read("files/../x.csv")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_handshake_and_the_mvrec_flags() {
    let dir = workdir();
    setup_data(dir.path());
    let pki = Pki::make(&dir.path().join("pki"));
    let hash = hash_password("correct horse");
    // TLS without client certificates; people log in.
    let tls = format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        pki.pem("gateway").display(),
        pki.key("gateway").display()
    );
    let cfg = format!(
        "[server]\ntoken_ttl_seconds = 60\n{tls}[databases.demo]\nurl = \"sqlite://data/mover.db\"\n[buckets.files]\nurl = \"file://data\"\n[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n{RULES}"
    );
    let gw = Gateway::start_with_config(dir.path(), &cfg);
    let url = gw.tls_url();
    let ca = Connect {
        ca: Some(pki.pem("ca")),
        ..Default::default()
    };

    let login = |user: &str, pass: &str| Connect {
        login: Some((user.into(), pass.into())),
        ..ca.clone()
    };
    assert_eq!(
        first_call(&url, &login("alice", "correct horse"))
            .await
            .unwrap(),
        2
    );
    let err = first_call(&url, &login("alice", "wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Unauthenticated), "{err}");
    let err = first_call(&url, &ca).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Unauthenticated), "{err}");
    let err = first_call(
        &url,
        &Connect {
            token: Some("forged".into()),
            ..ca.clone()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(Code::Unauthenticated), "{err}");

    // mvrec: --ca, --user with the password from the environment.
    let out = std::process::Command::new(mover_tests::bin("mvrec"))
        .args([
            "--gateway",
            &url,
            "--ca",
            pki.pem("ca").to_str().unwrap(),
            "--user",
            "alice",
            "ls",
        ])
        .env("MVREC_PASSWORD", "correct horse")
        .output()
        .unwrap();
    assert!(ok(out).contains("files/secret.csv"));
    let out = std::process::Command::new(mover_tests::bin("mvrec"))
        .args([
            "--gateway",
            &url,
            "--ca",
            pki.pem("ca").to_str().unwrap(),
            "--user",
            "alice",
            "ls",
        ])
        .env("MVREC_PASSWORD", "nope")
        .output()
        .unwrap();
    let err = fails(out);
    assert!(
        err.contains("unauthenticated") && err.contains("wrong user name or password"),
        "{err}"
    );
    assert!(!err.contains("nope"), "the password was echoed: {err}");
    // A token from a login, given to mvrec through MVREC_TOKEN.
    let mut c = Client::connect_with(&url, &ca).await.unwrap();
    let token = c.login("alice", "correct horse").await.unwrap();
    let out = std::process::Command::new(mover_tests::bin("mvrec"))
        .args([
            "--gateway",
            &url,
            "--ca",
            pki.pem("ca").to_str().unwrap(),
            "ls",
        ])
        .env("MVREC_TOKEN", &token)
        .output()
        .unwrap();
    assert!(ok(out).contains("files/secret.csv"));
    // Without --ca, mvrec says what it needs.
    let err = fails(mover_tests::mvrec(&["--gateway", &url, "ls"]));
    assert!(err.contains("--ca"), "{err}");
}

#[test]
fn plaintext_off_loopback_needs_the_loud_setting() {
    let dir = workdir();
    let cfg = "[server]\nlisten = \"0.0.0.0:0\"\n[buckets.files]\nurl = \"file://data\"\n";
    std::fs::write(dir.path().join("gateway.toml"), cfg).unwrap();
    let out = std::process::Command::new(mover_tests::bin("gateway"))
        .args([
            "--config",
            dir.path().join("gateway.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = fails(out);
    assert!(
        err.contains("refusing to listen on 0.0.0.0") && err.contains("insecure_plaintext"),
        "{err}"
    );
    // With it, the gateway starts and warns.
    std::fs::write(
        dir.path().join("gateway.toml"),
        cfg.replace("[server]\n", "[server]\ninsecure_plaintext = true\n"),
    )
    .unwrap();
    let mut child = std::process::Command::new(mover_tests::bin("gateway"))
        .args([
            "--config",
            dir.path().join("gateway.toml").to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("gateway listening on 0.0.0.0:"), "{line}");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("INSECURE"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_appear_in_any_output() {
    for log_format in ["text", "json"] {
        secrets_never_appear_with(log_format).await;
    }
}

/// Every failure we can cause, with the gateway logging at debug in `log_format`, and
/// `gateway check` of the same config: no secret in any of it.
async fn secrets_never_appear_with(log_format: &str) {
    const S3_SECRET: &str = "s3-secret-Zq8vX2mN4p";
    const S3_KEY_ID: &str = "AKIA-KEYID-Yt7rW1";
    const PASSWORD: &str = "pw-Hj3kL9sQ";
    let dir = workdir();
    setup_data(dir.path());
    let pki = Pki::make(&dir.path().join("pki"));
    let hash = hash_password(PASSWORD);
    let cfg = format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n[databases.demo]\nurl = \"sqlite://data/mover.db\"\n[buckets.files]\nurl = \"file://data\"\n\
         [buckets.lake]\nurl = \"s3://nowhere/x\"\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:1\"\naccess_key_id_env = \"T_KEY\"\nsecret_access_key_env = \"T_SECRET\"\n\
         [[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n[[access]]\nprincipal = \"alice\"\nread = [\"**\"]\nwrite = [\"**\"]\n",
        pki.pem("gateway").display(),
        pki.key("gateway").display()
    );
    std::fs::write(dir.path().join("gateway.toml"), &cfg).unwrap();
    let log = dir.path().join("gateway.log");
    let mut child = std::process::Command::new(mover_tests::bin("gateway"))
        .args([
            "--config",
            dir.path().join("gateway.toml").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            log_format,
        ])
        .env("T_KEY", S3_KEY_ID)
        .env("T_SECRET", S3_SECRET)
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = format!(
        "grpc+tls://{}",
        line.trim().strip_prefix("gateway listening on ").unwrap()
    );
    let ca = pki.pem("ca");
    let mvrec = |args: &[&str], password: &str| {
        let out = std::process::Command::new(mover_tests::bin("mvrec"))
            .args([
                "--gateway",
                &url,
                "--ca",
                ca.to_str().unwrap(),
                "--user",
                "alice",
            ])
            .args(args)
            .env("MVREC_PASSWORD", password)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let mut seen = String::new();
    // Everything that can fail: S3 unreachable both ways, bad names, bad SQL, denied and
    // unauthenticated calls, a wrong password, and a token echoed nowhere.
    for args in [
        vec!["cp", "files/secret.csv", "lake/out.parquet"],
        vec!["cp", "lake/in.csv", "demo/main/t"],
        vec!["ls", "lake/"],
        vec!["schema", "lake/x.parquet"],
        vec!["cat", "demo", "--sql", "SELECT * FROM nowhere"],
        vec!["cp", "files/../x.csv", "demo/main/t"],
        vec!["cat", "files/secret.csv"],
    ] {
        seen.push_str(&mvrec(&args, PASSWORD));
        seen.push_str(&mvrec(&args, "wrong"));
    }
    let mut client = Client::connect_with(
        &url,
        &Connect {
            ca: Some(ca.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let token = client.login("alice", PASSWORD).await.unwrap();
    seen.push_str(&format!("{:?}", client.info(&read("lake/a.parquet")).await));
    child.kill().unwrap();
    child.wait().unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    if log_format == "json" {
        for line in logged.lines() {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
            assert!(
                event["level"].is_string() && event["fields"].is_object(),
                "{line}"
            );
        }
    }
    seen.push_str(&logged);
    // `gateway check` reaches the unreachable bucket with the same keys, and says so.
    let check = std::process::Command::new(mover_tests::bin("gateway"))
        .args([
            "--config",
            dir.path().join("gateway.toml").to_str().unwrap(),
            "check",
        ])
        .env("T_KEY", S3_KEY_ID)
        .env("T_SECRET", S3_SECRET)
        .output()
        .unwrap();
    let checked = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(
        !check.status.success() && checked.contains("FAIL  buckets.lake"),
        "{checked}"
    );
    seen.push_str(&checked);
    seen.push_str(&String::from_utf8_lossy(&check.stderr));
    assert!(
        seen.contains("lake"),
        "the failures were not exercised: {seen}"
    );
    for secret in [
        S3_SECRET,
        S3_KEY_ID,
        PASSWORD,
        token.as_str(),
        hash.as_str(),
    ] {
        assert!(!seen.contains(secret), "a secret leaked: {secret}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_round_trip_as_names() {
    let dir = workdir();
    let gw = Gateway::start_default(dir.path());
    std::fs::write(
        dir.path().join("data/a.csv"),
        "id,\"x\"\"; DROP TABLE y; --\"\n1,2\n",
    )
    .unwrap();
    let hostile = "a\"; DROP TABLE x; --";
    let target = format!("demo/main/{hostile}");
    ok(gw.mvrec(&["cp", "files/a.csv", &target]));
    ok(gw.mvrec(&["cp", "files/a.csv", &target, "--existing-table", "append"]));
    let conn = rusqlite::Connection::open(dir.path().join("data/mover.db")).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM \"a\"\"; DROP TABLE x; --\"",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2);
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .unwrap()
        .query_map([hostile], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(cols, ["id", "x\"; DROP TABLE y; --"]);
    let cat = ok(gw.mvrec(&["cat", &target]));
    assert!(cat.contains("DROP TABLE y"), "{cat}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_principal_has_a_bounded_number_of_streams() {
    let dir = workdir();
    setup_data(dir.path());
    let mut big = String::from("id\n");
    for i in 0..200_000 {
        big.push_str(&format!("{i}\n"));
    }
    std::fs::write(dir.path().join("data/big.csv"), big).unwrap();
    let pki = Pki::make(&dir.path().join("pki"));
    let gw = Gateway::start_with_config(
        dir.path(),
        &config(&pki, "[server]\nmax_streams_per_principal = 1\n"),
    );
    let url = gw.tls_url();
    let mut alice = Client::connect_with(&url, &with_cert(&pki, "alice"))
        .await
        .unwrap();
    let mut bob = Client::connect_with(&url, &with_cert(&pki, "bob"))
        .await
        .unwrap();

    // alice holds one stream open without reading it to the end.
    let mut first = alice.read(&read("files/big.csv")).await.unwrap();
    assert!(first.try_next().await.unwrap().is_some());
    let err = alice.read(&read("files/secret.csv")).await.err().unwrap();
    assert_eq!(err.code(), Some(Code::ResourceExhausted), "{err}");
    assert!(
        err.to_string()
            .contains("alice already has 1 streams running"),
        "{err}"
    );
    // Another principal is not held up by alice.
    let got: Vec<_> = bob
        .read(&read("files/public/menu.csv"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    // When her stream ends, alice may start another.
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let got: Vec<_> = alice
        .read(&read("files/secret.csv"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got[0].num_rows(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn traversal_and_injection_attempts_are_refused_or_harmless() {
    let dir = workdir();
    let data = dir.path().join("data");
    std::fs::write(data.join("keep.csv"), "id,v\n1,a\n2,b\n").unwrap();
    let cfg = "[databases.demo]\nurl = \"sqlite://data/mover.db\"\nallow_sql = true\n\
               [databases.nosql]\nurl = \"sqlite://data/other.db\"\n[buckets.files]\nurl = \"file://data\"\n";
    let gw = Gateway::start_with_config(dir.path(), cfg);
    ok(gw.mvrec(&["cp", "files/keep.csv", "demo/main/keep"]));
    let db = data.join("mover.db");
    let before = mover_tests::sqlite_rows(&db, "keep");
    let files_before = mover_tests::files_under(&data);
    let mut raw = arrow_flight::FlightClient::new(
        tonic::transport::Endpoint::from_shared(gw.url.replace("grpc://", "http://"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let path = |parts: &[&str]| {
        arrow_flight::FlightDescriptor::new_path(parts.iter().map(|s| s.to_string()).collect())
    };
    let query = |db: &str, sql: &str| {
        let read = Read {
            what: Some(What::Query(Query {
                database: db.into(),
                sql: sql.into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let cmd = mover_proto::Command {
            kind: Some(mover_proto::command::Kind::Read(read)),
        };
        arrow_flight::FlightDescriptor::new_cmd(prost::Message::encode_to_vec(&cmd))
    };
    let mut csv_opts = read("files/keep.csv");
    csv_opts.file = Some(mover_proto::FileOptions {
        format: mover_proto::FileFormat::Csv as i32,
        csv: Some(mover_proto::CsvOptions {
            header: None,
            delimiter: Some("||".into()),
        }),
        ..Default::default()
    });
    let csv_opts = arrow_flight::FlightDescriptor::new_cmd(prost::Message::encode_to_vec(
        &mover_proto::Command {
            kind: Some(mover_proto::command::Kind::Read(csv_opts)),
        },
    ));
    let attempts: Vec<(&str, arrow_flight::FlightDescriptor)> = vec![
        ("dot-dot part", path(&["files", "..", "x.csv"])),
        (
            "percent-encoded dot-dot",
            path(&["files", "%2e%2e", "x.csv"]),
        ),
        ("percent-encoded slash", path(&["files", "..%2fx.csv"])),
        ("backslashes", path(&["files", "a\\..\\..\\x.csv"])),
        ("absolute path in a part", path(&["files", "/etc/passwd"])),
        ("empty part", path(&["files", "", "x.csv"])),
        ("dot part", path(&["files", ".", "keep.csv"])),
        ("NUL byte", path(&["files", "keep.csv\u{0}.parquet"])),
        ("newline", path(&["files", "keep\n.csv"])),
        ("glob then dot-dot", path(&["files", "*", "..", "x.csv"])),
        ("source name traversal", path(&["../files", "keep.csv"])),
        (
            "quote in a table name",
            path(&["demo", "main", "x\"; DROP TABLE keep; --"]),
        ),
        (
            "quote in a schema name",
            path(&["demo", "main'; DROP TABLE keep; --", "t"]),
        ),
        ("SQL that deletes", query("demo", "DELETE FROM keep")),
        (
            "ATTACH another file",
            query("demo", "ATTACH DATABASE '/tmp/evil.db' AS evil"),
        ),
        (
            "PRAGMA that writes the file",
            query("demo", "PRAGMA user_version = 42"),
        ),
        (
            "loading an extension",
            query("demo", "SELECT load_extension('/tmp/evil')"),
        ),
        (
            "stacked statements",
            query("demo", "SELECT * FROM keep; DROP TABLE keep"),
        ),
        (
            "SQL on a database without allow_sql",
            query("nosql", "SELECT 1"),
        ),
        ("SQL on a bucket", query("files", "SELECT 1")),
        ("a multi-character delimiter", csv_opts),
        (
            "a command that is not protobuf",
            arrow_flight::FlightDescriptor::new_cmd(b"\xff\xfe DROP TABLE keep".to_vec()),
        ),
    ];
    assert!(attempts.len() >= 20);
    for (what, descriptor) in attempts {
        let err = raw.get_flight_info(descriptor).await.expect_err(what);
        let arrow_flight::error::FlightError::Tonic(status) = &err else {
            panic!("{what}: {err}")
        };
        assert!(
            matches!(
                status.code(),
                Code::InvalidArgument | Code::NotFound | Code::PermissionDenied
            ),
            "{what}: {status:?}"
        );
    }
    // A forged ticket, and writes that try to escape, are refused too.
    let err = raw
        .do_get(arrow_flight::Ticket::new(b"not a ticket".to_vec()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, arrow_flight::error::FlightError::Tonic(s) if s.code() == Code::InvalidArgument),
        "{err}"
    );
    let err = fails(gw.mvrec(&["cp", "files/keep.csv", "files/*.csv"]));
    assert!(err.contains("pattern cannot be written"), "{err}");
    let err = fails(gw.mvrec(&["cp", "files/keep.csv", "files/../escape.csv"]));
    assert!(err.contains("not allowed"), "{err}");
    // A hostile name as a write target is a table of that name, nothing more.
    ok(gw.mvrec(&[
        "cp",
        "files/keep.csv",
        "demo/main/t\"); DROP TABLE keep; --",
    ]));
    assert!(mover_tests::sqlite_has_table(
        &db,
        "t\"); DROP TABLE keep; --"
    ));
    assert_eq!(mover_tests::sqlite_rows(&db, "keep"), before);
    assert_eq!(
        mover_tests::files_under(&data)
            .into_iter()
            .filter(|f| !f.starts_with("mover.db") && !f.starts_with("other.db"))
            .collect::<Vec<_>>(),
        files_before
            .into_iter()
            .filter(|f| !f.starts_with("mover.db") && !f.starts_with("other.db"))
            .collect::<Vec<_>>()
    );
    assert!(!Path::new("/tmp/evil.db").exists());
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_takes_too_long_to_answer_is_cut() {
    let dir = workdir();
    let cfg = "[server]\nrequest_timeout_seconds = 1\n[databases.demo]\nurl = \"sqlite://data/mover.db\"\nallow_sql = true\n";
    let gw = Gateway::start_with_config(dir.path(), cfg);
    let mut client = Client::connect(&gw.url).await.unwrap();
    // The schema of this query is known only after its one row, which takes seconds.
    let slow = Read {
        what: Some(What::Query(Query {
            database: "demo".into(),
            sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) SELECT max(x) FROM c".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = client.info(&slow).await.unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "not cut: {err}"
    );
    assert!(err.to_string().to_lowercase().contains("timeout"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_principal_can_come_from_a_subject_alternative_name() {
    let dir = workdir();
    setup_data(dir.path());
    let pki = Pki::make(&dir.path().join("pki"));
    let cfg = format!(
        "{}principal = \"san\"\n[buckets.files]\nurl = \"file://data\"\n[[access]]\nprincipal = \"alice.example.org\"\nread = [\"files/**\"]\n",
        pki.server_tls()
    );
    let gw = Gateway::start_with_config(dir.path(), &cfg);
    let url = gw.tls_url();
    // alice's certificate carries the DNS name alice.example.org; the rule names that.
    assert_eq!(
        first_call(&url, &with_cert(&pki, "alice")).await.unwrap(),
        2
    );
    // bob's has no SAN: he is not anyone.
    let err = first_call(&url, &with_cert(&pki, "bob")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Unauthenticated), "{err}");
    assert!(err.to_string().contains("San"), "{err}");
}
