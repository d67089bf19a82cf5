//! The quick start, as a user types it: a real gateway process on the embedded default, driven
//! by the real `mvrec` binary.

use mover_tests::{Gateway, fails, files_under, mvrec, ok, sqlite_has_table, sqlite_rows, workdir};

const ORDERS: &str = "id,name,qty,price,day\n1,apple,3,1.25,2026-01-02\n2,\"pear, green\",,2.5,2026-02-03\n3,Zoë,7,-0.5,\n";
const MORE: &str = "id,name,qty,price,day\n4,fig,1,9.99,2026-03-04\n";

#[test]
fn quick_start_story() {
    let dir = workdir();
    let data = dir.path().join("data");
    std::fs::write(data.join("orders.csv"), ORDERS).unwrap();
    std::fs::write(data.join("more.csv"), MORE).unwrap();
    let gw = Gateway::start_default(dir.path());

    // ls: every table and file, with what is cheap to know.
    let ls = ok(gw.mvrec(&["ls"]));
    assert!(
        ls.contains("files/orders.csv") && ls.contains("files/more.csv"),
        "{ls}"
    );

    // schema: inferred from the CSV, as a table and as JSON.
    let schema = ok(gw.mvrec(&["schema", "files/orders.csv"]));
    assert!(
        schema.contains("qty") && schema.contains("Int64"),
        "{schema}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(gw.mvrec(&["schema", "files/orders.csv", "--json"]))).unwrap();
    assert_eq!(json[4]["name"], "day");
    assert_eq!(json[4]["type"], "Date32");

    // cp: CSV -> a new SQLite table.
    let out = ok(gw.mvrec(&["cp", "files/orders.csv", "demo/main/orders"]));
    assert!(out.contains("copied 3 rows"), "{out}");
    let db = data.join("mover.db");
    assert_eq!(
        sqlite_rows(&db, "orders"),
        vec![
            vec!["1", "apple", "3", "1.25", "2026-01-02"],
            vec!["2", "pear, green", "NULL", "2.5", "2026-02-03"],
            vec!["3", "Zoë", "7", "-0.5", "NULL"],
        ]
    );

    // cp: the table -> Parquet; cat reads it back.
    ok(gw.mvrec(&["cp", "demo/main/orders", "files/out/orders.parquet"]));
    assert!(data.join("out/orders.parquet").exists());
    let cat = ok(gw.mvrec(&["cat", "files/out/orders.parquet", "--limit", "2"]));
    assert!(cat.contains("pear, green") && !cat.contains("Zoë"), "{cat}");

    // Only some columns, in the asked order; a glob over files.
    let cat = ok(gw.mvrec(&["cat", "files/out/orders.parquet", "--columns", "name,id"]));
    let header = cat.lines().nth(1).unwrap();
    assert!(
        header.find("name").unwrap() < header.find("id").unwrap(),
        "{cat}"
    );
    assert!(!header.contains("qty"), "{cat}");
    let cat = ok(gw.mvrec(&["cat", "files/*.csv", "--columns", "id"]));
    // Rows of both orders.csv (1..3) and more.csv (4).
    assert!(cat.contains("| 1  |") && cat.contains("| 4  |"), "{cat}");
    let err = fails(gw.mvrec(&["cat", "files/orders.csv", "--columns", "nope"]));
    assert!(err.contains("no column \"nope\""), "{err}");

    // cat: a table, pretty-printed.
    let cat = ok(gw.mvrec(&["cat", "demo/main/orders", "--limit", "20"]));
    assert!(cat.contains("Zoë") && cat.contains("2026-02-03"), "{cat}");

    // A second copy to an existing table fails, and says what to do.
    let err = fails(gw.mvrec(&["cp", "files/more.csv", "demo/main/orders"]));
    assert!(
        err.contains("already exists") && err.contains("append"),
        "{err}"
    );
    assert_eq!(sqlite_rows(&db, "orders").len(), 3);

    // Append.
    ok(gw.mvrec(&[
        "cp",
        "files/more.csv",
        "demo/main/orders",
        "--existing-table",
        "append",
    ]));
    let rows = sqlite_rows(&db, "orders");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3], vec!["4", "fig", "1", "9.99", "2026-03-04"]);
    // Append only to a table that is there: a missing one is named, and not made.
    let err = fails(gw.mvrec(&[
        "cp",
        "files/more.csv",
        "demo/main/nowhere",
        "--existing-table",
        "append",
        "--must-exist",
    ]));
    assert!(err.contains("main.nowhere does not exist"), "{err}");
    assert!(!sqlite_has_table(&db, "nowhere"));

    // A query, and ls now showing the table with its count.
    let q = ok(gw.mvrec(&["cat", "demo", "--sql", "SELECT count(*) AS n FROM orders"]));
    assert!(q.contains("| 4 |"), "{q}");
    let ls = ok(gw.mvrec(&["ls", "demo"]));
    assert!(
        ls.contains("demo/main/orders") && ls.contains("| 4 "),
        "{ls}"
    );
    assert!(!ls.contains("files/"), "prefix filter ignored: {ls}");

    // Overwrite modes replace, each in one transaction.
    for mode in [
        "truncate-and-overwrite",
        "delete-and-overwrite",
        "drop-and-recreate",
    ] {
        ok(gw.mvrec(&[
            "cp",
            "files/more.csv",
            "demo/main/orders",
            "--existing-table",
            mode,
        ]));
        assert_eq!(sqlite_rows(&db, "orders").len(), 1, "{mode}");
    }

    // Nothing stray was left in the bucket.
    let files = files_under(&data);
    assert!(files.iter().all(|f| !f.contains('#')), "{files:?}");
}

#[test]
fn embedded_gateway_with_config_needs_no_server() {
    let dir = workdir();
    let data = dir.path().join("data");
    std::fs::write(data.join("orders.csv"), ORDERS).unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "[databases.wh]\nurl = \"sqlite://data/wh.db\"\n[buckets.lake]\nurl = \"file://data\"\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let out = ok(mvrec(&[
        "--config",
        cfg,
        "cp",
        "lake/orders.csv",
        "wh/main/orders",
        "-q",
    ]));
    assert!(out.contains("copied 3 rows"), "{out}");
    assert_eq!(sqlite_rows(&data.join("wh.db"), "orders").len(), 3);
    let out = ok(mvrec(&[
        "--config",
        cfg,
        "cp",
        "wh/main/orders",
        "lake/o.jsonl",
        "-q",
    ]));
    assert!(out.contains("copied 3 rows"), "{out}");
    let text = std::fs::read_to_string(data.join("o.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.contains("\"name\":\"Zoë\""), "{text}");
}

#[test]
fn help_is_complete_with_examples() {
    let top = ok(mvrec(&["--help"]));
    for word in [
        "ls",
        "schema",
        "cat",
        "cp",
        "--gateway",
        "--config",
        "Examples:",
    ] {
        assert!(top.contains(word), "mvrec --help lacks {word}: {top}");
    }
    for sub in ["ls", "schema", "cat", "cp"] {
        let help = ok(mvrec(&[sub, "--help"]));
        assert!(
            help.contains("Examples:"),
            "mvrec {sub} --help has no examples: {help}"
        );
    }
    let cp = ok(mvrec(&["cp", "--help"]));
    for mode in [
        "append",
        "truncate-and-overwrite",
        "delete-and-overwrite",
        "drop-and-recreate",
    ] {
        assert!(cp.contains(mode), "{cp}");
    }
}

#[test]
fn unreachable_gateway_and_bad_names_are_clear() {
    let err = fails(mvrec(&["--gateway", "grpc://127.0.0.1:1", "ls"]));
    assert!(
        err.contains("cannot reach the gateway at grpc://127.0.0.1:1"),
        "{err}"
    );
    let dir = workdir();
    let gw = Gateway::start_default(dir.path());
    let err = fails(gw.mvrec(&["cat", "nowhere/main/t"]));
    assert!(
        err.contains("not found") && err.contains("nowhere"),
        "{err}"
    );
    let err = fails(gw.mvrec(&["cat", "demo/main/missing"]));
    assert!(err.contains("main.missing"), "{err}");
    let err = fails(gw.mvrec(&["cat", "files//x.csv"]));
    assert!(err.contains("not a dataset name"), "{err}");
    let err = fails(gw.mvrec(&["cat", "files/../etc/passwd.csv"]));
    assert!(err.contains("not allowed"), "{err}");
}

/// The port of a server that takes TCP connections and never says a word.
fn silent_server() -> u16 {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming() {
            held.push(conn);
        }
    });
    port
}

/// A gateway whose databases `pg` and `maria` take the TCP connection and never say a word
/// (connect timeouts of `seconds`), beside `files` holding orders.csv.
fn silent_databases(dir: &std::path::Path, seconds: u64) -> Gateway {
    let port = silent_server();
    std::fs::write(dir.join("data/orders.csv"), ORDERS).unwrap();
    let config = format!(
        "[databases.pg]\nurl = \"postgres://mover@127.0.0.1:{port}/postgres\"\nconnect_timeout_seconds = {seconds}\n\
         [databases.maria]\nurl = \"mysql://mover@127.0.0.1:{port}/test\"\nconnect_timeout_seconds = {seconds}\n\
         [buckets.files]\nurl = \"file://data\"\n"
    );
    Gateway::start_with_config(dir, &config)
}

/// A database server that takes the TCP connection and never says a word: every kind of call
/// to it fails by its connect timeout, naming the database, instead of hanging.
#[test]
fn a_database_that_never_answers_fails_in_time() {
    let dir = workdir();
    let gw = silent_databases(dir.path(), 2);
    for args in [
        &["cat", "pg/public/t"][..],
        &["schema", "pg/public/t"],
        &["cp", "files/orders.csv", "pg/public/orders"],
        &["cat", "maria/test/t"],
        &["schema", "maria/test/t"],
        &["cp", "files/orders.csv", "maria/test/orders"],
    ] {
        let started = std::time::Instant::now();
        let err = fails(gw.mvrec(args));
        let database = args
            .iter()
            .find(|a| a.contains('/') && !a.starts_with("files"));
        let database = database.unwrap().split('/').next().unwrap();
        assert!(
            err.contains(&format!(
                "database {database}: cannot connect: no answer within 2 s"
            )),
            "{args:?}: {err}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
}

/// `mvrec ls` with two databases down lists everything else, then names each source that
/// failed and why, and exits non-zero; the sources are asked at once, so the wait is one
/// connect timeout, not one per database.
#[test]
fn ls_with_databases_down_lists_the_rest_and_names_them() {
    let dir = workdir();
    let gw = silent_databases(dir.path(), 3);
    let started = std::time::Instant::now();
    let out = gw.mvrec(&["ls"]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("files/orders.csv"), "{stdout}");
    for db in ["pg", "maria"] {
        assert!(
            stderr.contains(&format!(
                "database {db}: cannot connect: no answer within 3 s"
            )),
            "{stderr}"
        );
    }
    assert!(
        took < std::time::Duration::from_secs(6),
        "two sources down took {took:?}: they were not listed at once"
    );
    // A prefix that leaves the failed sources out lists cleanly.
    assert!(ok(gw.mvrec(&["ls", "files/"])).contains("orders.csv"));
}

#[test]
fn killing_mvrec_mid_move_cancels_the_move() {
    let dir = workdir();
    let data = dir.path().join("data");
    big_csv(&data, 2_000_000);
    let gw = Gateway::start_default(dir.path());
    let mut child = gw.mvrec_spawn(&["cp", "files/big.csv", "demo/main/big", "-q"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the move finished before the kill: the test needs a bigger file"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The gateway notices at its next progress report (every second) and drops the move; the
    // load rolls back and its write lock is released.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gw.log().contains("cancelling") {
        assert!(
            std::time::Instant::now() < deadline,
            "no cancel logged:\n{}",
            gw.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::fs::write(data.join("small.csv"), "a\n1\n").unwrap();
    let started = std::time::Instant::now();
    ok(gw.mvrec(&["cp", "files/small.csv", "demo/main/small", "-q"]));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the cancelled load still held the database"
    );
    assert!(!mover_tests::sqlite_has_table(
        &data.join("mover.db"),
        "big"
    ));
    let ls = ok(gw.mvrec(&["ls", "demo"]));
    assert!(!ls.contains("big") && ls.contains("small"), "{ls}");
}

#[test]
fn compressed_files_are_read_by_their_bytes_and_written_by_their_names() {
    let dir = workdir();
    let data = dir.path().join("data");
    let mut csv = String::from("id,name\n");
    for i in 0..50_000 {
        csv.push_str(&format!("{i},name {i}\n"));
    }
    std::fs::write(data.join("plain.csv"), &csv).unwrap();
    let gw = Gateway::start_default(dir.path());
    ok(gw.mvrec(&["cp", "files/plain.csv", "demo/main/plain"]));
    let want = sqlite_rows(&data.join("mover.db"), "plain");
    for (ext, magic) in [
        ("gz", &[0x1f, 0x8b][..]),
        ("bz2", &b"BZh"[..]),
        ("zst", &[0x28, 0xb5, 0x2f, 0xfd][..]),
    ] {
        let name = format!("files/out.csv.{ext}");
        ok(gw.mvrec(&["cp", "demo/main/plain", &name]));
        let bytes = std::fs::read(data.join(format!("out.csv.{ext}"))).unwrap();
        assert!(bytes.starts_with(magic), "{ext}: not compressed");
        assert!(bytes.len() < csv.len() / 3, "{ext}: barely compressed");
        let table = format!("demo/main/back_{ext}");
        ok(gw.mvrec(&["cp", &name, &table]));
        assert_eq!(
            sqlite_rows(&data.join("mover.db"), &format!("back_{ext}")),
            want,
            "{ext}"
        );
    }
    // The bytes decide, not the name: gzip data named .csv reads.
    std::fs::copy(data.join("out.csv.gz"), data.join("secretly_gzip.csv")).unwrap();
    ok(gw.mvrec(&["cp", "files/secretly_gzip.csv", "demo/main/sneaky"]));
    assert_eq!(sqlite_rows(&data.join("mover.db"), "sneaky"), want);
    let ls = ok(gw.mvrec(&["ls", "files/"]));
    assert!(
        ls.contains("out.csv.gz") && ls.contains("out.csv.zst"),
        "{ls}"
    );
    // A truncated gzip file is an error naming the file; nothing is written.
    let gz = std::fs::read(data.join("out.csv.gz")).unwrap();
    std::fs::write(data.join("cut.csv.gz"), &gz[..gz.len() / 2]).unwrap();
    let err = fails(gw.mvrec(&["cp", "files/cut.csv.gz", "demo/main/cut"]));
    assert!(err.contains("cut.csv.gz"), "{err}");
    assert!(!mover_tests::sqlite_has_table(
        &data.join("mover.db"),
        "cut"
    ));
    let err = fails(gw.mvrec(&["cp", "demo/main/plain", "files/p.parquet.gz"]));
    assert!(err.contains("Parquet compresses"), "{err}");
}

/// Copy a directory tree (a test fixture) into `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn records_directories_written_by_records_mover_are_read() {
    let dir = workdir();
    let data = dir.path().join("data");
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/records-mover-1.6.4");
    copy_dir(&fixtures.join("bluelabs"), &data.join("rm_bluelabs"));
    copy_dir(&fixtures.join("csv"), &data.join("rm_csv"));
    let gw = Gateway::start_default(dir.path());
    let schema = ok(gw.mvrec(&["schema", "files/rm_bluelabs/"]));
    assert!(
        schema.contains("Int64") && schema.contains("Float64") && schema.contains("Date32"),
        "{schema}"
    );
    for (name, at) in [
        ("bluelabs", "2026-01-02 03:04:05"),
        ("csv", "2026-01-02 03:04:00"),
    ] {
        let out = ok(gw.mvrec(&[
            "cp",
            &format!("files/rm_{name}/"),
            &format!("demo/main/rm_{name}"),
        ]));
        assert!(out.contains("copied 3 rows"), "{out}");
        let rows = sqlite_rows(&data.join("mover.db"), &format!("rm_{name}"));
        let text = format!("{rows:?}");
        assert_eq!(rows[0][1], "comma, here", "{name}: {text}");
        assert_eq!(rows[1][1], "NULL", "{name}: {text}");
        assert_eq!(rows[2][1], "tab\there and \\ backslash", "{name}: {text}");
        assert_eq!(rows[2][2], "-0.125", "{name}: {text}");
        assert!(rows[0][5].starts_with(at), "{name}: {text}");
        assert!(text.contains("2000-02-29"), "{name}: {text}");
    }
    // A manifest cannot send the gateway elsewhere: only files of the directory are read.
    copy_dir(&fixtures.join("csv"), &data.join("evil"));
    std::fs::write(
        data.join("evil/_manifest"),
        r#"{"entries": [{"url": "file:///etc/passwd", "mandatory": true}]}"#,
    )
    .unwrap();
    let err = fails(gw.mvrec(&["cp", "files/evil/", "demo/main/evil"]));
    assert!(err.contains("not a data file of this directory"), "{err}");
    // A delimited directory without its schema is refused by name.
    std::fs::remove_file(data.join("rm_csv/_schema.json")).unwrap();
    let err = fails(gw.mvrec(&["cat", "files/rm_csv/"]));
    assert!(err.contains("_schema.json"), "{err}");
}

#[test]
fn records_directories_are_written_whole_and_read_back() {
    let dir = workdir();
    let data = dir.path().join("data");
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/records-mover-1.6.4");
    copy_dir(&fixtures.join("bluelabs"), &data.join("rm"));
    let gw = Gateway::start_default(dir.path());
    ok(gw.mvrec(&["cp", "files/rm/", "demo/main/source"]));
    let want = sqlite_rows(&data.join("mover.db"), "source");
    // The csv variant writes datetimes to the minute: seconds are refused, not rounded, and
    // nothing is left behind.
    let err = fails(gw.mvrec(&[
        "cp",
        "demo/main/source",
        "files/out_csv/",
        "--to-variant",
        "csv",
    ]));
    assert!(
        err.contains("row 1, column \"at\"") && err.contains("MM/DD/YY HH24:MI"),
        "{err}"
    );
    assert!(files_under(&data.join("out_csv")).is_empty());
    let seconds = r#"{"datetimeformat": "YYYY-MM-DD HH24:MI:SS"}"#;
    for (variant, hints, data_file) in [
        ("bluelabs", "{}", "data001.csv.gz"),
        ("csv", seconds, "data001.csv.gz"),
        ("bigquery", "{}", "data001.csv.gz"),
    ] {
        let target = format!("files/out_{variant}/");
        let out = ok(gw.mvrec(&[
            "cp",
            "demo/main/source",
            &target,
            "--to-variant",
            variant,
            "--to-hints",
            hints,
        ]));
        assert!(out.contains("copied 3 rows"), "{out}");
        let written = files_under(&data.join(format!("out_{variant}")));
        assert_eq!(
            written,
            ["_format_delimited", "_manifest", "_schema.json", data_file],
            "{variant}"
        );
        let format: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data.join(format!("out_{variant}/_format_delimited"))).unwrap(),
        )
        .unwrap();
        assert_eq!(format["variant"], variant);
        assert_eq!(format["hints"].as_object().unwrap().len(), 13, "{format}");
        let table = format!("demo/main/back_{variant}");
        ok(gw.mvrec(&["cp", &target, &table]));
        let got = sqlite_rows(&data.join("mover.db"), &format!("back_{variant}"));
        assert_eq!(got, want, "{variant}");
    }
    // Parquet data files: an empty `_format_parquet`, as Records Mover requires.
    ok(gw.mvrec(&[
        "cp",
        "demo/main/source",
        "files/out_parquet/",
        "--to-records-type",
        "parquet",
    ]));
    assert_eq!(
        files_under(&data.join("out_parquet")),
        [
            "_format_parquet",
            "_manifest",
            "_schema.json",
            "data001.parquet"
        ]
    );
    assert!(
        std::fs::read(data.join("out_parquet/_format_parquet"))
            .unwrap()
            .is_empty()
    );
    ok(gw.mvrec(&["cp", "files/out_parquet/", "demo/main/back_parquet"]));
    assert_eq!(sqlite_rows(&data.join("mover.db"), "back_parquet"), want);
    let err = fails(gw.mvrec(&[
        "cp",
        "demo/main/source",
        "files/parquet_hinted/",
        "--to-records-type",
        "parquet",
        "--to-variant",
        "csv",
    ]));
    assert!(err.contains("takes no variant"), "{err}");
    // Hints over the variant; an uncompressed file then.
    ok(gw.mvrec(&[
        "cp",
        "demo/main/source",
        "files/plain/",
        "--to-hints",
        r#"{"compression": null, "field-delimiter": "\t"}"#,
    ]));
    assert!(data.join("plain/data001.csv").exists());
    // A non-empty target directory is refused, and left as it was.
    let err = fails(gw.mvrec(&[
        "cp",
        "demo/main/source",
        "files/plain/",
        "--to-variant",
        "csv",
    ]));
    assert!(err.contains("not empty"), "{err}");
    // Unknown hints are refused before anything is written.
    let err = fails(gw.mvrec(&[
        "cp",
        "demo/main/source",
        "files/odd/",
        "--to-hints",
        r#"{"colour": "blue"}"#,
    ]));
    assert!(err.contains("colour"), "{err}");
    assert!(!data.join("odd").exists());
    // Unless the user says to skip what is not understood: then the report names it.
    let out = ok(gw.mvrec(&[
        "cp",
        "demo/main/source",
        "files/odd/",
        "--to-hints",
        r#"{"colour": "blue"}"#,
        "--skip-unknown-hints",
    ]));
    assert!(out.contains("note: hint \"colour\""), "{out}");
    // A directory whose _format_delimited holds a hint we do not know: refused, or read
    // without it when asked.
    let format_file = data.join("odd/_format_delimited");
    let mut format: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&format_file).unwrap()).unwrap();
    format["hints"]["colour"] = "blue".into();
    std::fs::write(&format_file, format.to_string()).unwrap();
    let err = fails(gw.mvrec(&["cp", "files/odd/", "demo/main/odd"]));
    assert!(
        err.contains("_format_delimited") && err.contains("colour"),
        "{err}"
    );
    ok(gw.mvrec(&["cp", "files/odd/", "demo/main/odd", "--skip-unknown-hints"]));
    assert_eq!(sqlite_rows(&data.join("mover.db"), "odd"), want);
}

#[test]
fn sniff_tells_the_hints_from_the_bytes() {
    let dir = workdir();
    let data = dir.path().join("data");
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/records-mover-1.6.4");
    // A bluelabs file Records Mover wrote: gzip, no header, backslash escapes.
    std::fs::copy(
        fixtures.join("bluelabs/data001.csv.gz"),
        data.join("rm.csv.gz"),
    )
    .unwrap();
    std::fs::write(data.join("tabs.tsv"), "id\tname\r\n1\tx\r\n2\ty\r\n").unwrap();
    std::fs::write(data.join("empty.csv"), "").unwrap();
    let gw = Gateway::start_default(dir.path());
    let hints: serde_json::Value =
        serde_json::from_str(&ok(gw.mvrec(&["sniff", "files/rm.csv.gz"]))).unwrap();
    assert_eq!(hints["compression"], "GZIP", "{hints}");
    assert_eq!(hints["escape"], "\\", "{hints}");
    assert_eq!(hints["header-row"], false, "{hints}");
    assert_eq!(hints["field-delimiter"], ",", "{hints}");
    let hints: serde_json::Value =
        serde_json::from_str(&ok(gw.mvrec(&["sniff", "files/tabs.tsv"]))).unwrap();
    assert_eq!(hints["field-delimiter"], "\t", "{hints}");
    assert_eq!(hints["record-terminator"], "\r\n", "{hints}");
    assert_eq!(hints["header-row"], true, "{hints}");
    let err = fails(gw.mvrec(&["sniff", "files/empty.csv"]));
    assert!(err.contains("empty"), "{err}");
    let err = fails(gw.mvrec(&["sniff", "demo/main/x"]));
    assert!(err.contains("only files"), "{err}");
}

#[test]
fn single_files_read_and_write_by_records_hints() {
    let dir = workdir();
    let data = dir.path().join("data");
    // Backslash-escaped, no header, no quoting: bluelabs. Read as plain CSV, `\,` would be split.
    std::fs::write(
        data.join("escaped.csv"),
        "1,a\\, b,2026-11-28 17:30:00\n2,back\\\\slash,1999-12-31 23:59:59\n3,,2000-02-29 12:00:00\n",
    )
    .unwrap();
    let gw = Gateway::start_default(dir.path());
    let schema = ok(gw.mvrec(&["schema", "files/escaped.csv", "--from-variant", "bluelabs"]));
    assert!(
        schema.contains("column_1") && schema.contains("Timestamp"),
        "{schema}"
    );
    ok(gw.mvrec(&[
        "cp",
        "files/escaped.csv",
        "demo/main/esc",
        "--from-variant",
        "bluelabs",
    ]));
    let rows = sqlite_rows(&data.join("mover.db"), "esc");
    assert_eq!(rows[0][1], "a, b");
    assert_eq!(rows[1][1], "back\\slash");
    assert_eq!(rows[2][1], "NULL");
    // The same table out as one csv-variant file (header, quotes), and back in.
    ok(gw.mvrec(&[
        "cp",
        "demo/main/esc",
        "files/out.csv",
        "--to-variant",
        "csv",
        "--to-hints",
        r#"{"datetimeformat": "YYYY-MM-DD HH24:MI:SS"}"#,
    ]));
    let text = std::fs::read_to_string(data.join("out.csv")).unwrap();
    assert!(
        text.starts_with("column_1,column_2,column_3\n") && text.contains("\"a, b\""),
        "{text}"
    );
    ok(gw.mvrec(&[
        "cp",
        "files/out.csv",
        "demo/main/back",
        "--from-variant",
        "csv",
        "--from-hints",
        r#"{"datetimeformat": "YYYY-MM-DD HH24:MI:SS"}"#,
    ]));
    assert_eq!(sqlite_rows(&data.join("mover.db"), "back"), rows);
}

#[test]
fn moves_read_files_by_sniffed_hints_and_given_hints_win() {
    let dir = workdir();
    let data = dir.path().join("data");
    // Backslash escapes, no header, timestamps: every hint told from the bytes.
    std::fs::write(
        data.join("escaped.dat"),
        "1,a\\, b,2026-11-28 17:30:00\n2,back\\\\slash,1999-12-31 23:59:59\n",
    )
    .unwrap();
    std::fs::write(data.join("latin1.csv"), b"id,name\n1,caf\xe9\n2,na\xefve\n").unwrap();
    std::fs::write(
        data.join("cp1252.csv"),
        b"id,name\n1,\x93quoted\x94 \x80\n2,plain\n",
    )
    .unwrap();
    let utf16: Vec<u8> = "\u{feff}id,name\r\n1,日本\r\n2,x\r\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    std::fs::write(data.join("utf16.csv"), utf16).unwrap();
    // All text: nothing tells a header, so the sniffer says there is none.
    std::fs::write(data.join("names.csv"), "name,city\nann,paris\nbob,oslo\n").unwrap();
    let gw = Gateway::start_default(dir.path());
    let db = data.join("mover.db");

    let schema = ok(gw.mvrec(&["schema", "files/escaped.dat", "--from-format", "records"]));
    assert!(
        schema.contains("column_3") && schema.contains("Timestamp"),
        "{schema}"
    );
    ok(gw.mvrec(&[
        "cp",
        "files/escaped.dat",
        "demo/main/esc",
        "--from-format",
        "records",
    ]));
    let rows = sqlite_rows(&db, "esc");
    assert_eq!(rows[0][1], "a, b");
    assert_eq!(rows[1][1], "back\\slash");

    for (file, table, second) in [
        ("latin1.csv", "latin", "café"),
        ("cp1252.csv", "cp", "“quoted” €"),
        ("utf16.csv", "wide", "日本"),
    ] {
        ok(gw.mvrec(&[
            "cp",
            &format!("files/{file}"),
            &format!("demo/main/{table}"),
            "--from-format",
            "records",
        ]));
        let rows = sqlite_rows(&db, table);
        assert_eq!(rows[0], ["1", second], "{file}");
    }

    // Given hints win over sniffed ones.
    ok(gw.mvrec(&[
        "cp",
        "files/names.csv",
        "demo/main/guessed",
        "--from-format",
        "records",
    ]));
    assert_eq!(sqlite_rows(&db, "guessed").len(), 3);
    ok(gw.mvrec(&[
        "cp",
        "files/names.csv",
        "demo/main/told",
        "--from-hints",
        r#"{"header-row": true}"#,
    ]));
    assert_eq!(sqlite_rows(&db, "told").len(), 2);
    let schema = ok(gw.mvrec(&["schema", "demo/main/told"]));
    assert!(schema.contains("city"), "{schema}");

    // Written in UTF-16 (with its byte-order mark, as Records Mover writes it) and read back.
    ok(gw.mvrec(&[
        "cp",
        "demo/main/wide",
        "files/out16.csv",
        "--to-variant",
        "csv",
        "--to-hints",
        r#"{"encoding": "UTF16"}"#,
    ]));
    let bytes = std::fs::read(data.join("out16.csv")).unwrap();
    assert_eq!(&bytes[..4], [0xFF, 0xFE, b'i', 0]);
    ok(gw.mvrec(&[
        "cp",
        "files/out16.csv",
        "demo/main/wide_back",
        "--from-format",
        "records",
    ]));
    assert_eq!(sqlite_rows(&db, "wide_back"), sqlite_rows(&db, "wide"));
    // What LATIN1 cannot hold is refused by row and column, and no file is left.
    let err = fails(gw.mvrec(&[
        "cp",
        "demo/main/wide",
        "files/out1.csv",
        "--to-variant",
        "csv",
        "--to-hints",
        r#"{"encoding": "LATIN1"}"#,
    ]));
    assert!(
        err.contains("row 1, column \"name\"") && err.contains("LATIN1 cannot encode"),
        "{err}"
    );
    assert!(!data.join("out1.csv").exists());
    // Bytes that are not the declared encoding are named by file, line and field.
    let err = fails(gw.mvrec(&[
        "cp",
        "files/latin1.csv",
        "demo/main/wrong",
        "--from-format",
        "records",
        "--from-hints",
        r#"{"encoding": "UTF8"}"#,
    ]));
    assert!(
        err.contains("latin1.csv") && err.contains("line 2, field 2") && err.contains("not UTF8"),
        "{err}"
    );
    let err = fails(gw.mvrec(&["schema", "demo/main/wrong"]));
    assert!(err.contains("wrong"), "{err}");
}

/// `gateway check`: a line for the server's own settings and one for every database and bucket,
/// each reached at once; exit 1 naming what failed, 0 when all is well.
#[test]
fn gateway_check_reaches_every_source_and_names_what_failed() {
    let port = silent_server();
    let dir = workdir();
    let good = "[databases.demo]\nurl = \"sqlite://data/mover.db\"\n[buckets.files]\nurl = \"file://data\"\n";
    let silent_pg = |name: &str| {
        format!(
            "[databases.{name}]\nurl = \"postgres://mover@127.0.0.1:{port}/postgres\"\nconnect_timeout_seconds = 2\n"
        )
    };
    let check = |config: &str| {
        let file = dir.path().join("check.toml");
        std::fs::write(&file, config).unwrap();
        let out = mover_tests::gateway_check(&file);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (passed, said, _) = check(good);
    assert!(passed, "{said}");
    for line in [
        "ok    server:",
        "ok    databases.demo:",
        "ok    buckets.files:",
    ] {
        assert!(said.contains(line), "{line}: {said}");
    }
    // Two databases that never answer are waited for at once: one connect timeout in all.
    let started = std::time::Instant::now();
    let (passed, said, _) = check(&format!("{good}{}{}", silent_pg("pg"), silent_pg("pg2")));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!passed, "{said}");
    assert!(said.contains("ok    databases.demo:"), "{said}");
    for name in ["pg", "pg2"] {
        assert!(
            said.lines()
                .any(|l| l.starts_with(&format!("FAIL  databases.{name}:"))
                    && l.contains("no answer within 2 s")),
            "{said}"
        );
    }
    // A secret that cannot be resolved fails the config itself, naming its key.
    let unset = format!(
        "{good}{}password_env = \"CHECK_UNSET_PASSWORD\"\n",
        silent_pg("nopass")
    );
    let (passed, said, err) = check(&unset);
    assert!(!passed, "{said}");
    assert!(
        err.contains("databases.nopass") && err.contains("CHECK_UNSET_PASSWORD"),
        "{err}"
    );
}

/// The standard gRPC health service answers on the Flight port.
#[tokio::test]
async fn the_gateway_answers_grpc_health_checks() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let dir = workdir();
    let gw = Gateway::start_default(dir.path());
    let channel = tonic::transport::Endpoint::from_shared(gw.url.replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "arrow.flight.protocol.FlightService"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

/// `/metrics`: calls by kind of source and target and how they ended, rows and bytes, streams
/// open, errors by code, durations; in Prometheus text, on an address of its own.
#[test]
fn metrics_count_calls_rows_and_errors_by_kind() {
    let dir = workdir();
    std::fs::write(dir.path().join("data/orders.csv"), ORDERS).unwrap();
    let port = mover_tests::free_port();
    let config = format!(
        "[server]\nmetrics_listen = \"127.0.0.1:{port}\"\n\
         [databases.demo]\nurl = \"sqlite://data/mover.db\"\n[buckets.files]\nurl = \"file://data\"\n"
    );
    let gw = Gateway::start_with_config(dir.path(), &config);
    ok(gw.mvrec(&["cp", "files/orders.csv", "demo/main/orders"]));
    ok(gw.mvrec(&["cat", "demo/main/orders"]));
    fails(gw.mvrec(&["cp", "files/orders.csv", "demo/main/orders"])); // exists: refused
    fails(gw.mvrec(&["cat", "files/nowhere.csv"]));
    // Requests refused before any move begins (a ticket that is no ticket, DoExchange, which
    // the gateway does not serve), and a health check: counted by method and code too.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let endpoint =
            tonic::transport::Endpoint::from_shared(gw.url.replace("grpc://", "http://"));
        let channel = endpoint.unwrap().connect().await.unwrap();
        let mut raw =
            arrow_flight::flight_service_client::FlightServiceClient::new(channel.clone());
        let ticket = arrow_flight::Ticket::new("no ticket at all");
        let err = raw.do_get(ticket).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let request = tonic_health::pb::HealthCheckRequest::default();
        health.check(request).await.unwrap();
        let none = futures::stream::iter(Vec::<arrow_flight::FlightData>::new());
        let err = raw.do_exchange(none).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented, "{err}");
    });
    let scrape = || {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        text
    };
    let text = scrape();
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    let mv = r#"call="move",source="file",target="sqlite""#;
    assert_eq!(value(&format!("mover_calls_started_total{{{mv}}}")), 2.0);
    assert_eq!(
        value(&format!(
            "mover_calls_ended_total{{{mv},outcome=\"finished\"}}"
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "mover_calls_ended_total{{{mv},outcome=\"failed\"}}"
        )),
        1.0
    );
    // The rows read: the move that was refused may have read some before the refusal.
    let moved = value(&format!("mover_rows_total{{{mv}}}"));
    assert!((3.0..=6.0).contains(&moved), "{moved}");
    assert!(value(&format!("mover_bytes_total{{{mv}}}")) > 0.0);
    let get = r#"call="do_get",source="sqlite",target="client""#;
    assert_eq!(
        value(&format!(
            "mover_calls_ended_total{{{get},outcome=\"finished\"}}"
        )),
        1.0
    );
    assert_eq!(value(&format!("mover_rows_total{{{get}}}")), 3.0);
    assert_eq!(value(&format!("mover_call_seconds_count{{{get}}}")), 1.0);
    assert_eq!(value(r#"mover_streams_open{call="move"}"#), 0.0);
    assert!(value(r#"mover_errors_total{code="AlreadyExists"}"#) >= 1.0);
    assert!(value(r#"mover_errors_total{code="NotFound"}"#) >= 1.0);
    assert!(value(r#"mover_errors_total{code="InvalidArgument"}"#) >= 1.0);
    assert!(value(r#"mover_errors_total{code="Unimplemented"}"#) >= 1.0);
    assert!(value(r#"mover_requests_total{method="DoGet",code="InvalidArgument"}"#) >= 1.0);
    assert!(value(r#"mover_requests_total{method="DoExchange",code="Unimplemented"}"#) >= 1.0);
    assert!(value(r#"mover_requests_total{method="DoGet",code="Ok"}"#) >= 1.0);
    assert!(value(r#"mover_requests_total{method="DoAction",code="AlreadyExists"}"#) >= 1.0);
    assert!(value(r#"mover_requests_total{method="Health/Check",code="Ok"}"#) >= 1.0);
    // Every request that ended has its seconds: as many as were counted for the method.
    let counted = |method: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("mover_requests_total{{method=\"{method}\",")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    for method in ["DoGet", "DoAction", "Health/Check"] {
        let timed = value(&format!(
            "mover_request_seconds_count{{method=\"{method}\"}}"
        ));
        assert_eq!(timed, counted(method), "{method}");
    }
}

/// `mvrec moves` lists a running move with its rows so far; `mvrec moves cancel ID` stops it,
/// its target rolls back, and the move's log lines carry its id.
#[test]
fn mvrec_moves_lists_and_cancels_a_running_move() {
    let dir = workdir();
    let data = dir.path().join("data");
    big_csv(&data, 3_000_000);
    let gw = Gateway::start_default(dir.path());
    assert!(ok(gw.mvrec(&["moves"])).contains("no moves of yours are running"));
    let child = gw.mvrec_spawn(&["cp", "files/big.csv", "demo/main/big", "-q"]);
    // Listed once it has read some rows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let id = loop {
        let listed = ok(gw.mvrec(&["moves"]));
        let row = listed
            .lines()
            .find(|l| l.contains("files/big.csv -> demo/main/big"));
        if let Some(row) = row {
            let fields: Vec<&str> = row.split_whitespace().collect();
            if fields[2] != "0" {
                break fields[0].to_string();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never listed: {listed}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let err = fails(gw.mvrec(&["moves", "cancel", "no-such-move"]));
    assert!(
        err.contains("not found") && err.contains("no-such-move"),
        "{err}"
    );
    assert!(ok(gw.mvrec(&["moves", "cancel", &id])).contains(&format!("cancelled move {id}")));
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "the move finished despite the cancel"
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("cancelled"), "{said}");
    assert!(!mover_tests::sqlite_has_table(
        &data.join("mover.db"),
        "big"
    ));
    assert!(ok(gw.mvrec(&["moves"])).contains("no moves of yours are running"));
    let log = gw.log();
    assert!(
        log.contains(&id) && log.contains("a move was cancelled"),
        "{log}"
    );
}

/// A CSV of `rows` rows in `data/big.csv`: a move of it takes seconds.
fn big_csv(data: &std::path::Path, rows: u32) {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(data.join("big.csv")).unwrap());
    writeln!(f, "id,name,qty").unwrap();
    for i in 0..rows {
        writeln!(f, "{i},name {i},{}", i % 97).unwrap();
    }
}

/// SIGTERM drains: no new calls, a running move finishes within the grace and the gateway
/// exits 0; a move that outlasts the grace, or a second signal, is cancelled and rolled back,
/// and the gateway still exits 0.
#[test]
fn sigterm_drains_then_cancels_what_outlasts_the_grace() {
    let dir = workdir();
    let data = dir.path().join("data");
    big_csv(&data, 2_000_000);
    let with_grace = |seconds: u64| {
        format!(
            "[server]\ndrain_seconds = {seconds}\n[databases.demo]\nurl = \"sqlite://data/mover.db\"\n\
             [buckets.files]\nurl = \"file://data\"\n"
        )
    };
    let start_move = |gw: &Gateway, table: &str| {
        let child = gw.mvrec_spawn(&["cp", "files/big.csv", &format!("demo/main/{table}"), "-q"]);
        // Under way once the gateway lists it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !ok(gw.mvrec(&["moves"])).contains("files/big.csv") {
            assert!(
                std::time::Instant::now() < deadline,
                "the move never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child
    };
    let db = data.join("mover.db");

    // Within the grace: the move finishes, new calls are refused meanwhile, exit 0.
    let mut gw = Gateway::start_with_config(dir.path(), &with_grace(120));
    let mv = start_move(&gw, "whole");
    gw.terminate();
    gw.wait_for_log("draining", 10);
    fails(gw.mvrec(&["ls"]));
    let out = mv.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gw.wait_exit(60).success());
    assert_eq!(mover_tests::sqlite_rows(&db, "whole").len(), 2_000_000);

    // Past a grace of 1 s: cancelled, rolled back, exit 0.
    let mut gw = Gateway::start_with_config(dir.path(), &with_grace(1));
    let mv = start_move(&gw, "late");
    gw.terminate();
    let out = mv.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("shutting down"),
        "{said}"
    );
    assert!(gw.wait_exit(60).success());
    assert!(!mover_tests::sqlite_has_table(&db, "late"));

    // A second signal stops at once, still rolling back.
    let mut gw = Gateway::start_with_config(dir.path(), &with_grace(600));
    let mv = start_move(&gw, "twice");
    gw.terminate();
    gw.wait_for_log("draining", 10);
    let signalled = std::time::Instant::now();
    gw.terminate();
    let out = mv.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(gw.wait_exit(60).success());
    assert!(signalled.elapsed() < std::time::Duration::from_secs(20));
    assert!(!mover_tests::sqlite_has_table(&db, "twice"));
}

/// The README's quick start, read from the README itself and run line by line through a shell,
/// as a user on a fresh machine would: the embedded default, started where `./data` does not
/// exist, writes the sample the commands use. Started again, it leaves what is there alone.
#[test]
fn the_readme_quick_start_works_as_printed_on_a_fresh_machine() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let after = readme
        .split_once("Then, in another shell")
        .expect("the quick start's second block")
        .1;
    let block = after
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let commands: Vec<String> = block
        .lines()
        .map(|l| l.split("  #").next().unwrap().trim().to_string())
        .filter(|l| l.starts_with("mvrec "))
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");

    let dir = tempfile::tempdir().unwrap();
    assert!(!dir.path().join("data").exists());
    let gw = Gateway::start_default(dir.path());
    let path = format!(
        "{}:{}",
        mover_tests::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut said = String::new();
    for command in &commands {
        let mut sh = std::process::Command::new("sh");
        sh.args(["-c", command])
            .current_dir(dir.path())
            .env("PATH", &path);
        // `--config` runs a gateway inside mvrec; every other line talks to the server.
        if !command.contains("--config") {
            sh.env("MVREC_GATEWAY", &gw.url);
        }
        let out = sh.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if command.starts_with("mvrec moves cancel") {
            // An example id: no such move runs.
            assert!(
                !out.status.success() && text.contains("not found"),
                "{command}: {text}"
            );
        } else {
            assert!(out.status.success(), "{command}: {text}");
        }
        said.push_str(&text);
    }
    assert!(
        said.contains("demo/main/customers") && said.contains("files/export.csv.gz"),
        "{said}"
    );
    assert!(
        said.contains("copied 5000 rows") && said.contains("| 5100"),
        "{said}"
    );
    assert!(
        said.contains("from files/export.csv.gz to demo/main/t"),
        "{said}"
    );
    assert!(dir.path().join("data/out/orders.parquet").exists());
    drop(gw);

    // Started again, with data there: nothing is written over.
    let a = dir.path().join("data/a.csv");
    std::fs::write(&a, "id\n42\n").unwrap();
    let gw = Gateway::start_default(dir.path());
    ok(gw.mvrec(&["ls"]));
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "id\n42\n");
    drop(gw);

    // An empty data folder is as good as none: the sample is written into it.
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("data")).unwrap();
    let gw = Gateway::start_default(empty.path());
    let listed = ok(gw.mvrec(&["ls", "files"]));
    assert!(listed.contains("files/orders.csv"), "{listed}");
}
