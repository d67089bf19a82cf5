//! MariaDB through a real gateway process, against throwaway MariaDB servers started here:
//! every type round trip (through Arrow and through Parquet), a hostile name, zero dates, the
//! INSERT fallback when local_infile is off, parallel loads failing whole, and moves between
//! Postgres and MariaDB. What every database shows (modes, a killed connection, TLS verified,
//! a dropped read cancelled on the server) is the contract's (tests/contract.rs).

use std::time::{Duration, Instant};

use mover_tests::{Gateway, Mariadb, Postgres, fails, ok, workdir};

fn gateway_for(db: &Mariadb, dir: &std::path::Path, extra: &str) -> Gateway {
    let cfg = format!(
        "[databases.maria]\nurl = \"{}\"\npassword_env = \"MARIA_PASSWORD\"\nallow_sql = true\n{extra}[buckets.files]\nurl = \"file://data\"\n",
        db.url()
    );
    Gateway::start_with_config_env(dir, &cfg, &[("MARIA_PASSWORD", Mariadb::PASSWORD)])
}

/// Every type of the type table, with the values that break things.
const TYPES: &str = r#"
CREATE TABLE types (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT,
  mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  d DECIMAL(38,10), d0 DECIMAL(10,0), d65 DECIMAL(65,30), f FLOAT, dbl DOUBLE,
  b BOOLEAN, bit1 BIT(1), bit12 BIT(12),
  c CHAR(5), vc VARCHAR(20), t TEXT, bin BINARY(3), vb VARBINARY(10), bl BLOB,
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL, y YEAR,
  j JSON, e ENUM('sad','ok','happy'), st SET('a','b','c')
) CHARSET utf8mb4;
SET time_zone = '+00:00';
INSERT INTO types VALUES
 (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
  -9999999999999999999999999999.9999999999, -9999999999,
  -99999999999999999999999999999999999.999999999999999999999999999999, -3.40282e38, -1.7976931348623157e308,
  0, b'0', b'0', '', '', '', x'000000', '', '',
  '1000-01-01', '-838:59:59.000000', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', 1901,
  '[]', 'sad', ''),
 (2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807,
  18446744073709551615, 0.0000000001, 9999999999,
  0.000000000000000000000000000001, 1.2345678, 0.1,
  1, b'1', b'111111111111', 'ab', 'twenty characters!!!', 'Zoë ✓ 日本語 🚚 tab	and \\ back\nnew line "q" ''s',
  x'00ff01', x'5c0a09', x'00',
  '9999-12-31', '838:59:59.000000', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', 2155,
  '{"k": [1, 2, {"x": null}]}', 'happy', 'a,c'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"#;

/// The table's rows as the server prints them, in id order (and in UTC): equal text means
/// equal values.
fn fingerprint(db: &Mariadb, table: &str) -> String {
    db.sql(&format!(
        "SET time_zone = '+00:00'; SELECT * FROM `{}` ORDER BY id",
        table.replace('`', "``")
    ))
}

fn column_types(db: &Mariadb, table: &str) -> String {
    db.sql(&format!(
        "SELECT GROUP_CONCAT(COLUMN_TYPE ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = '{table}'"
    ))
}

#[test]
fn every_type_round_trips_through_arrow_and_parquet() {
    let db = Mariadb::start();
    db.sql(TYPES);
    let dir = workdir();
    let gw = gateway_for(&db, dir.path(), "");
    let schema = ok(gw.mvrec(&["schema", "maria/test/types", "--json"]));
    let fields: serde_json::Value = serde_json::from_str(&schema).unwrap();
    let ty = |name: &str| {
        fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["type"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(ty("mu"), "UInt32");
    assert_eq!(ty("bu"), "UInt64");
    assert_eq!(ty("d0"), "Decimal128(10, 0)");
    assert_eq!(ty("d65"), "Decimal256(65, 30)");
    assert_eq!(ty("f"), "Float32");
    assert_eq!(ty("b"), "Boolean");
    assert_eq!(ty("bit12"), "UInt64");
    assert_eq!(ty("tm"), "Duration(µs)");
    assert_eq!(ty("dtm"), "Timestamp(µs)");
    assert_eq!(ty("ts"), "Timestamp(µs, \"UTC\")");
    assert_eq!(ty("j"), "Utf8");
    assert!(fields[0]["nullable"] == false, "id is NOT NULL: {schema}");

    let want = fingerprint(&db, "types");
    assert!(want.contains("Zoë") && want.contains("838:59:59"), "{want}");
    // MySQL -> Arrow -> MySQL, into a table created from the Arrow schema.
    let out = ok(gw.mvrec(&["cp", "maria/test/types", "maria/test/types_copy"]));
    assert!(out.contains("copied 3 rows"), "{out}");
    assert!(!out.contains("note:"), "LOAD DATA was expected: {out}");
    assert_eq!(fingerprint(&db, "types_copy"), want);
    assert_eq!(column_types(&db, "types_copy"), column_types(&db, "types"));
    // MariaDB keeps JSON as LONGTEXT with a json_valid check; the copy has the check too.
    let check = db.sql(
        "SELECT COUNT(*) FROM information_schema.CHECK_CONSTRAINTS \
         WHERE TABLE_NAME = 'types_copy' AND CHECK_CLAUSE LIKE 'json_valid%'",
    );
    assert_eq!(check, "1");

    // MySQL -> Parquet -> MySQL.
    ok(gw.mvrec(&["cp", "maria/test/types", "files/types.parquet"]));
    ok(gw.mvrec(&["cp", "files/types.parquet", "maria/test/types_pq"]));
    assert_eq!(fingerprint(&db, "types_pq"), want);
    assert_eq!(column_types(&db, "types_pq"), column_types(&db, "types"));

    // Every existing-table mode, and a hostile name: a table and a column that try to end
    // the identifier.
    let hostile = "a`; DROP TABLE types; --";
    db.sql(&format!(
        "CREATE TABLE `{}` (id INT, `x``y` TEXT); INSERT INTO `{}` VALUES (1, 'one'), (2, NULL);",
        hostile.replace('`', "``"),
        hostile.replace('`', "``")
    ));
    let source = format!("maria/test/{hostile}");
    ok(gw.mvrec(&["cp", &source, "maria/test/h2"]));
    for mode in [
        "append",
        "truncate-and-overwrite",
        "delete-and-overwrite",
        "drop-and-recreate",
    ] {
        ok(gw.mvrec(&["cp", &source, "maria/test/h2", "--existing-table", mode]));
    }
    let err = fails(gw.mvrec(&["cp", &source, "maria/test/h2"]));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(db.sql("SELECT COUNT(*) FROM h2"), "2");
    assert_eq!(
        fingerprint(&db, "types"),
        want,
        "the hostile name ran as SQL"
    );
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME LIKE 'mover%'"),
        "0"
    );
}

#[test]
fn zero_dates_are_an_error_or_null_by_choice() {
    let db = Mariadb::start();
    db.sql(
        "SET sql_mode = ''; CREATE TABLE z (id INT, d DATE, t DATETIME); \
         INSERT INTO z VALUES (1, '2026-01-02', '2026-01-02 03:04:05'), (2, '0000-00-00', '0000-00-00 00:00:00');",
    );
    let dir = workdir();
    let gw = gateway_for(&db, dir.path(), "");
    let err = fails(gw.mvrec(&["cat", "maria/test/z"]));
    assert!(
        err.contains("row 2") && err.contains("zero date") && err.contains("zero_dates"),
        "{err}"
    );
    let dir = workdir();
    let gw = gateway_for(&db, dir.path(), "zero_dates = \"null\"\n");
    let out = ok(gw.mvrec(&["cat", "maria/test/z"]));
    assert!(
        out.contains("2026-01-02") && out.lines().count() >= 5,
        "{out}"
    );
    ok(gw.mvrec(&["cp", "maria/test/z", "maria/test/z2"]));
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM z2 WHERE d IS NULL AND t IS NULL AND id = 2"),
        "1"
    );
}

#[test]
fn without_local_infile_loads_fall_back_to_inserts_and_say_so() {
    let db = Mariadb::start_with(&["--local-infile=0"]);
    db.sql(TYPES);
    let dir = workdir();
    let gw = gateway_for(&db, dir.path(), "");
    let out = ok(gw.mvrec(&["cp", "maria/test/types", "maria/test/types_copy"]));
    assert!(
        out.contains("note:") && out.contains("local_infile off"),
        "{out}"
    );
    assert_eq!(fingerprint(&db, "types_copy"), fingerprint(&db, "types"));
}

#[test]
fn free_queries_are_single_read_only_statements() {
    let db = Mariadb::start();
    db.sql("CREATE TABLE t (id INT); INSERT INTO t VALUES (1), (2);");
    let dir = workdir();
    let gw = gateway_for(&db, dir.path(), "");
    let out = ok(gw.mvrec(&["cat", "maria", "--sql", "SELECT SUM(id) AS s FROM t"]));
    assert!(out.contains('3'), "{out}");
    for sql in [
        "SELECT 1; DROP TABLE t",
        "DROP TABLE t",
        "DELETE FROM t",
        "SELECT * FROM t INTO OUTFILE '/tmp/x'",
    ] {
        fails(gw.mvrec(&["cat", "maria", "--sql", sql]));
    }
    assert_eq!(db.sql("SELECT COUNT(*) FROM t"), "2");
}

/// Find a load on the server and kill its connection (a connection that ended between the
/// two statements is looked for again); with several loads at once, the first.
fn kill_a_load(db: &Mariadb) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ids = db.sql(
            "SELECT ID FROM information_schema.PROCESSLIST \
             WHERE INFO LIKE 'LOAD DATA%' AND COMMAND <> 'Killed'",
        );
        if let Some(id) = ids.lines().next()
            && db.try_sql(&format!("KILL {id}")).is_ok()
        {
            return id.to_string();
        }
        assert!(Instant::now() < deadline, "no load seen on the server");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `rows` rows of (id, name, qty) as CSV in `dir/data/big.csv`.
fn big_csv(dir: &std::path::Path, rows: u32) {
    use std::io::Write as _;
    let file = std::fs::File::create(dir.join("data/big.csv")).unwrap();
    let mut f = std::io::BufWriter::new(file);
    writeln!(f, "id,name,qty").unwrap();
    for i in 0..rows {
        writeln!(f, "{i},name {i},{}", i % 97).unwrap();
    }
}

#[test]
fn parallel_loads_keep_every_row_and_fail_whole() {
    let db = Mariadb::start();
    let dir = workdir();
    big_csv(dir.path(), 400_000);
    let gw = gateway_for(&db, dir.path(), "load_streams = 3\n");
    ok(gw.mvrec(&["cp", "files/big.csv", "maria/test/par"]));
    // Every row exactly once, whichever statement carried it.
    assert_eq!(
        db.sql("SELECT COUNT(*), COUNT(DISTINCT id), SUM(id), SUM(qty), MAX(name) FROM par"),
        format!(
            "400000\t400000\t{}\t{}\tname 99999",
            (0..400_000u64).sum::<u64>(),
            (0..400_000u64).map(|i| i % 97).sum::<u64>()
        )
    );
    // A value the server would change fails the whole load, whichever stream met it.
    std::fs::write(
        dir.path().join("data/bad.csv"),
        "id,name,qty\n1,a,1\n2,b,99999999999999999999\n",
    )
    .unwrap();
    db.sql("CREATE TABLE small (id BIGINT, name TEXT, qty INT); INSERT INTO small VALUES (7, 'kept', 7);");
    fails(gw.mvrec(&[
        "cp",
        "files/bad.csv",
        "maria/test/small",
        "--existing-table",
        "truncate-and-overwrite",
    ]));
    assert_eq!(db.sql("SELECT * FROM small"), "7\tkept\t7");
    // One of the statements killed: the move fails, the table is as it was, no staging left.
    db.sql("CREATE TABLE big (id BIGINT, name TEXT, qty BIGINT); INSERT INTO big VALUES (1, 'kept', 1);");
    big_csv(dir.path(), 3_000_000);
    a_killed_load_leaves_big_as_it_was(&db, &gw, "truncate-and-overwrite");
}

/// Move big.csv into table `big` (holding one row) in `mode`, kill a load's connection on the
/// server, and see the move fail with `big` unchanged and no staging table left.
fn a_killed_load_leaves_big_as_it_was(db: &Mariadb, gw: &Gateway, mode: &str) {
    let child = std::process::Command::new(mover_tests::bin("mvrec"))
        .args([
            "--gateway",
            &gw.url,
            "cp",
            "files/big.csv",
            "maria/test/big",
        ])
        .args(["--existing-table", mode, "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = kill_a_load(db);
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "{mode}: the load survived its killed connection {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        db.sql("SELECT id, name, qty FROM big"),
        "1\tkept\t1",
        "{mode}: the table changed"
    );
    // The staging table is dropped (on a new connection) once the load has failed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME LIKE 'mover%'")
        != "0"
    {
        assert!(
            Instant::now() < deadline,
            "{mode}: a staging table was left behind"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A gateway serving both servers, as `pg` and `maria`.
fn pg_and_maria(pg: &Postgres, db: &Mariadb, dir: &std::path::Path) -> Gateway {
    let cfg = format!(
        "[databases.maria]\nurl = \"{}\"\npassword_env = \"MARIA_PASSWORD\"\n\
         [databases.pg]\nurl = \"{}\"\npassword_env = \"PG_TEST_PASSWORD\"\n",
        db.url(),
        pg.url()
    );
    let envs = [
        ("MARIA_PASSWORD", Mariadb::PASSWORD),
        ("PG_TEST_PASSWORD", Postgres::PASSWORD),
    ];
    Gateway::start_with_config_env(dir, &cfg, &envs)
}

#[test]
fn postgres_and_mariadb_trade_every_value_both_can_hold() {
    let pg = Postgres::start();
    pg.psql(
        "CREATE TABLE shared (id int PRIMARY KEY, b boolean, i2 smallint, i8 bigint, \
           n numeric(12,2), n0 numeric(18,0), f8 double precision, t text, vc varchar(20), \
           by bytea, d date, ts timestamp(6), tstz timestamptz(6));
         INSERT INTO shared VALUES
          (1, true, -32768, -9223372036854775808, -9999999999.99, 999999999999999999, 0.1,
           'Zoë ✓ tab\tand \\ back', 'twenty characters!!!', '\\x00ff5c0a', '1000-01-01',
           '1000-01-01 00:00:00', '1970-01-01 00:00:01+00'),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
    );
    let db = Mariadb::start();
    let dir = workdir();
    let gw = pg_and_maria(&pg, &db, dir.path());
    ok(gw.mvrec(&["cp", "pg/public/shared", "maria/test/shared"]));
    assert_eq!(
        column_types(&db, "shared"),
        "int(11),tinyint(1),smallint(6),bigint(20),decimal(12,2),decimal(18,0),double,longtext,\
         varchar(20),longblob,date,datetime(6),datetime(6)"
    );
    ok(gw.mvrec(&["cp", "maria/test/shared", "pg/public/back"]));
    let rows = |table: &str| {
        pg.psql(&format!(
            "SELECT string_agg(x::text, E'\\n' ORDER BY x.id) FROM {table} x"
        ))
    };
    // timestamptz comes back as a naive UTC timestamp: the instant is kept.
    let want = rows("shared");
    let got = rows("back");
    assert_eq!(
        got,
        want.replace("1970-01-01 00:00:01+00", "1970-01-01 00:00:01"),
        "the values changed on the way"
    );
}

/// The reader of our own (`connectors/mysql/wire.rs`) against the real server: values longer
/// than one protocol packet (16 MiB) arrive whole, and an error the server sends after rows
/// fails the move with the server's message and leaves no file.
#[test]
fn the_reader_joins_long_packets_and_fails_on_a_late_error() {
    let db = Mariadb::start_with(&["--max-allowed-packet=256M"]);
    db.sql(
        "CREATE TABLE big (id INT PRIMARY KEY, t LONGTEXT, b LONGBLOB) CHARSET utf8mb4; \
         INSERT INTO big VALUES (1, 'a', x'00'), \
           (2, REPEAT('x', 17000000), NULL), \
           (3, CONCAT(REPEAT('é', 8388607), 'end'), REPEAT(x'5c00ff', 6000000)), \
           (4, '', '');",
    );
    let dir = workdir();
    let gw = gateway_for(&db, dir.path(), "");
    ok(gw.mvrec(&["cp", "maria/test/big", "files/big.parquet"]));
    ok(gw.mvrec(&["cp", "files/big.parquet", "maria/test/big2"]));
    let sums = |t: &str| {
        db.sql(&format!(
            "SELECT id, LENGTH(t), MD5(t), LENGTH(b), MD5(b) FROM {t} ORDER BY id"
        ))
    };
    assert!(sums("big").contains("17000000"), "{}", sums("big"));
    assert_eq!(sums("big"), sums("big2"));

    // "Subquery returns more than 1 row" comes once the first 2000 rows have been sent.
    db.sql("CREATE TABLE n (i INT); INSERT INTO n SELECT seq FROM seq_1_to_3000;");
    let late = "SELECT a.i, (SELECT b.i FROM n b WHERE b.i IN (a.i, a.i - 2000)) AS j \
                FROM n a ORDER BY a.i";
    let err = fails(gw.mvrec(&["cp", "maria", "--sql", late, "files/late.parquet"]));
    assert!(err.contains("Subquery returns more than 1 row"), "{err}");
    assert!(!dir.path().join("data/late.parquet").exists());
}

/// A wrong password is refused with the server's reason, and the password shows nowhere.
/// MariaDB's ed25519 login, reached through an auth switch, works for both of our clients
/// (rows through our own reader, the schema through mysql_async).
#[test]
fn logins_switch_plugins_and_fail_by_reason() {
    let db = Mariadb::start();
    db.sql(
        "INSTALL SONAME 'auth_ed25519'; \
         CREATE USER ed@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-secret-1'); \
         GRANT ALL ON *.* TO ed@'%'; CREATE TABLE t (id INT); INSERT INTO t VALUES (41);",
    );
    let gateway = |user: &str, password: &str| {
        let dir = workdir();
        let cfg = format!(
            "[databases.maria]\nurl = \"{}\"\npassword_env = \"MARIA_PASSWORD\"\n",
            db.url()
                .replacen("mysql://mover@", &format!("mysql://{user}@"), 1)
        );
        let gw = Gateway::start_with_config_env(dir.path(), &cfg, &[("MARIA_PASSWORD", password)]);
        (dir, gw)
    };
    let (_dir, gw) = gateway("ed", "ed-secret-1");
    assert!(ok(gw.mvrec(&["cat", "maria/test/t"])).contains("41"));
    assert!(ok(gw.mvrec(&["schema", "maria/test/t"])).contains("id"));

    let wrong = "not-the-password-9";
    let (_dir, gw) = gateway("mover", wrong);
    for command in ["cat", "schema"] {
        let err = fails(gw.mvrec(&[command, "maria/test/t"]));
        assert!(
            err.contains("cannot connect") && err.contains("Access denied"),
            "{command}: {err}"
        );
        assert!(!err.contains(wrong) && !gw.log().contains(wrong), "{err}");
    }
}

/// A table with an integer primary key is read in ranges of it, every row once; a table
/// without one, whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_is_read_in_primary_key_ranges() {
    let db = Mariadb::start();
    db.sql(
        "CREATE TABLE big (id BIGINT NOT NULL PRIMARY KEY, pad VARCHAR(20));
         INSERT INTO big SELECT seq, CONCAT('x', seq) FROM seq_1_to_100000;
         CREATE TABLE loose (id BIGINT, pad TEXT);
         INSERT INTO loose SELECT seq, 'y' FROM seq_1_to_100000;
         ANALYZE TABLE big, loose;",
    );
    let dir = workdir();
    let gw = gateway_for(&db, dir.path(), "");
    let mut client = mover_client::Client::connect(&gw.url).await.unwrap();
    let (endpoints, ids) = mover_tests::ids_in_parts(&mut client, "maria/test/big", 4).await;
    assert_eq!(endpoints, 4);
    assert_eq!(ids, (1..=100_000).collect::<Vec<i64>>());
    let (endpoints, ids) = mover_tests::ids_in_parts(&mut client, "maria/test/loose", 4).await;
    assert_eq!((endpoints, ids.len()), (1, 100_000));
}

/// `password_command`: the password of each database printed by a program of the config's
/// (here a script standing in for a secrets service's CLI, found relative to the config),
/// used to log in to real Postgres and MariaDB servers, and never shown.
#[test]
fn passwords_from_a_command_log_in_to_postgres_and_mariadb() {
    let pg = Postgres::start();
    pg.psql("CREATE TABLE t AS SELECT 1 AS id");
    let db = Mariadb::start();
    let dir = workdir();
    let vault = dir.path().join("vault");
    std::fs::create_dir_all(&vault).unwrap();
    std::fs::write(vault.join("pg"), Postgres::PASSWORD).unwrap();
    std::fs::write(vault.join("maria"), Mariadb::PASSWORD).unwrap();
    let script = dir.path().join("vault.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nexec cat \"$(dirname \"$0\")/vault/$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cfg = format!(
        "[databases.maria]\nurl = \"{}\"\npassword_command = [\"./vault.sh\", \"maria\"]\n\
         [databases.pg]\nurl = \"{}\"\npassword_command = [\"./vault.sh\", \"pg\"]\n\
         [buckets.files]\nurl = \"file://data\"\n",
        db.url(),
        pg.url()
    );
    let gw = Gateway::start_with_config(dir.path(), &cfg);
    ok(gw.mvrec(&["cp", "pg/public/t", "maria/test/t"]));
    assert_eq!(db.sql("SELECT id FROM t"), "1");
    let check = mover_tests::gateway_check(&dir.path().join("gateway.toml"));
    let said = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(check.status.success(), "{said}");
    assert!(
        said.contains("ok    databases.pg:") && said.contains("ok    databases.maria:"),
        "{said}"
    );
    // A password the server refuses: named by database, the secret nowhere.
    std::fs::write(vault.join("pg"), "not-the-password").unwrap();
    let check = mover_tests::gateway_check(&dir.path().join("gateway.toml"));
    let refused = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(
        !check.status.success() && refused.contains("FAIL  databases.pg:"),
        "{refused}"
    );
    let seen = format!("{said}{refused}{}", gw.log());
    for secret in [Postgres::PASSWORD, Mariadb::PASSWORD, "not-the-password"] {
        assert!(!seen.contains(secret), "a secret leaked: {secret}");
    }
}

/// A Postgres uuid becomes a MariaDB `UUID` (10.7 and later; `CHAR(36)` before) and an array
/// a JSON column; both come back into Postgres uuid and array columns value for value.
#[test]
fn uuids_and_arrays_reach_mariadb_and_come_back() {
    let pg = Postgres::start();
    pg.psql(
        "CREATE TABLE src (id int PRIMARY KEY, u uuid, a int4[], ta text[]);
         INSERT INTO src VALUES
          (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '{\"a\",\"\",NULL}'),
          (2, '00000000-0000-0000-0000-000000000000', '{}', '{}'),
          (3, NULL, NULL, NULL);",
    );
    let db = Mariadb::start();
    let dir = workdir();
    let gw = pg_and_maria(&pg, &db, dir.path());
    ok(gw.mvrec(&["cp", "pg/public/src", "maria/test/src"]));
    assert_eq!(column_types(&db, "src"), "int(11),uuid,longtext,longtext");
    assert_eq!(
        db.sql("SELECT CONCAT_WS('|', u, a, ta) FROM test.src WHERE id = 1"),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|[1,null,3]|[\"a\",\"\",null]"
    );
    pg.psql("CREATE TABLE back (LIKE src)");
    ok(gw.mvrec(&[
        "cp",
        "maria/test/src",
        "pg/public/back",
        "--existing-table",
        "append",
    ]));
    let rows = |table: &str| {
        pg.psql(&format!(
            "SELECT string_agg(x::text, E'\\n' ORDER BY x.id) FROM {table} x"
        ))
    };
    assert_eq!(rows("back"), rows("src"));
}

/// db-facts, as Records Mover's users keep their credentials: `db_facts = "NAME"` gives a
/// database's whole connection, db-facts fetching the password from a secrets service of its
/// own config (here a script standing in for one, through db-facts' `json_script`). A password
/// rotated in the service works without a restart; a name db-facts does not know is refused
/// by name; no secret is ever logged or shown.
#[test]
fn db_facts_gives_the_whole_connection_and_a_rotated_password() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let db_facts = root.join(".venv/bin/db-facts");
    assert!(
        db_facts.exists(),
        "{} is missing: run scripts/test (it installs db-facts into .venv from tests/python/requirements.txt)",
        db_facts.display()
    );
    let pg = Postgres::start();
    pg.psql("CREATE TABLE t AS SELECT 1 AS id; CREATE ROLE app LOGIN PASSWORD 'app-pw-1'; GRANT SELECT ON t TO app");
    let db = Mariadb::start();
    let dir = workdir();
    let vault = dir.path().join("vault");
    std::fs::create_dir_all(&vault).unwrap();
    std::fs::write(vault.join("pg"), "app-pw-1").unwrap();
    std::fs::write(vault.join("maria"), Mariadb::PASSWORD).unwrap();
    let script = dir.path().join("vault.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '%s' \"{\\\"password\\\": \\\"$(cat \"$(dirname \"$0\")/vault/$1\")\\\"}\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let port = |url: String| {
        url.rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let facts = dir.path().join("dbfacts.yml");
    std::fs::write(
        &facts,
        format!(
            "exports_from:\n  vault:\n    json_script: [\"{}\", \"{{{{ vault_entry }}}}\"]\n\
             dbs:\n  warehouse:\n    exports_from: vault\n    vault_entry: pg\n    exports:\n      \
             type: postgres\n      host: 127.0.0.1\n      port: {}\n      database: postgres\n      user: app\n  \
             shop:\n    exports_from: vault\n    vault_entry: maria\n    exports:\n      \
             type: mysql\n      host: 127.0.0.1\n      port: {}\n      database: test\n      user: mover\n",
            script.display(),
            port(pg.url()),
            port(db.url()),
        ),
    )
    .unwrap();
    let command = format!("db_facts_command = [\"{}\"]\n", db_facts.display());
    let cfg = format!(
        "[databases.pg]\ndb_facts = \"warehouse\"\n{command}\
         [databases.maria]\ndb_facts = \"shop\"\n{command}\
         [buckets.files]\nurl = \"file://data\"\n"
    );
    let env = [("DB_FACTS_PATH", facts.to_str().unwrap())];
    let gw = Gateway::start_with_config_env(dir.path(), &cfg, &env);
    ok(gw.mvrec(&["cp", "pg/public/t", "maria/test/t"]));
    assert_eq!(db.sql("SELECT id FROM t"), "1");

    // Rotated in the secrets service: read again when Postgres refuses the old one.
    const ROTATED: &str = "rotated-pw-Z8k2";
    pg.psql(&format!("ALTER ROLE app PASSWORD '{ROTATED}'"));
    std::fs::write(vault.join("pg"), ROTATED).unwrap();
    assert!(ok(gw.mvrec(&["cat", "pg/public/t"])).contains('1'));
    let log = gw.log();
    assert!(
        log.contains("the server refused the password; read it again"),
        "{log}"
    );
    // And in MariaDB: both the streaming reader's login and mysql_async's (the load's).
    const ROTATED_TOO: &str = "rotated-maria-Q1w7";
    db.sql(&format!(
        "ALTER USER mover@'%' IDENTIFIED BY '{ROTATED_TOO}'"
    ));
    std::fs::write(vault.join("maria"), ROTATED_TOO).unwrap();
    assert!(ok(gw.mvrec(&["cat", "maria/test/t"])).contains('1'));
    db.sql("ALTER USER mover@'%' IDENTIFIED BY 'and-again-R5'");
    std::fs::write(vault.join("maria"), "and-again-R5").unwrap();
    ok(gw.mvrec(&["cp", "pg/public/t", "maria/test/t2"]));
    assert_eq!(db.sql("SELECT id FROM t2"), "1");
    let rereads = gw
        .log()
        .matches("the server refused the password; read it again")
        .count();
    assert!(rereads >= 3, "{rereads} re-reads");

    // A name db-facts does not know: the config is refused, naming it and how db-facts failed.
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        format!("[databases.pg]\ndb_facts = \"nothere\"\n{command}"),
    )
    .unwrap();
    let check = std::process::Command::new(mover_tests::bin("gateway"))
        .arg("--config")
        .arg(&unknown)
        .arg("check")
        .env("DB_FACTS_PATH", &facts)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!check.status.success(), "{said}");
    assert!(
        said.contains("db_facts \"nothere\"") && said.contains("failed (exit status: 1)"),
        "{said}"
    );
    let seen = format!("{said}{}", gw.log());
    for secret in [
        "app-pw-1",
        ROTATED,
        Mariadb::PASSWORD,
        ROTATED_TOO,
        "and-again-R5",
    ] {
        assert!(!seen.contains(secret), "a secret leaked: {secret}");
    }
}
