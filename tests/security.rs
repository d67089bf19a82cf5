//! Security through a real gateway process with certificates made in the test: mutual TLS and
//! principals, refused certificates, access rules, Handshake tokens, the plaintext rule, and
//! secrets that never show in any output.

use std::path::Path;

use futures::TryStreamExt;
use mover_client::Client;
use mover_client::client::{Connect, Result as ClientResult};
use mover_proto::{Query, Read, read::What};
use mover_tests::{Gateway, Pki, fails, hash_password, ok, workdir};
use tonic::Code;

fn read(name: &str) -> Read {
    Read {
        what: Some(What::Path(mover_proto::Path {
            parts: mover_client::names::parse(name).unwrap(),
        })),
        ..Default::default()
    }
}

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
    for bad in ["expired", "future", "stranger", "selfsigned"] {
        let err = first_call(&url, &with_cert(&pki, bad)).await.unwrap_err();
        assert!(err.code() != Some(Code::Ok), "{bad}: {err}");
    }
    // The client refuses a gateway whose certificate its CA did not sign.
    let wrong_ca = Connect {
        ca: Some(pki.pem("other-ca")),
        ..with_cert(&pki, "alice")
    };
    let err = first_call(&url, &wrong_ca).await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
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
    seen.push_str(&std::fs::read_to_string(&log).unwrap());
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
