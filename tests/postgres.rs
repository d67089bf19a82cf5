//! Postgres through a real gateway process, against throwaway Postgres servers started here:
//! every type round trip, a hostile name, the value limit, split reads. What every database
//! shows (modes, a killed connection, TLS verified, a dropped read cancelled on the server) is
//! the contract's (tests/contract.rs).

use futures::TryStreamExt;
use mover_client::Client;
use mover_proto::{Read, read::What};
use mover_tests::{Gateway, Postgres, fails, ok, workdir};

fn gateway_for(pg: &Postgres, dir: &std::path::Path, extra: &str) -> Gateway {
    let cfg = format!(
        "[databases.pg]\nurl = \"{}\"\npassword_env = \"PG_TEST_PASSWORD\"\nallow_sql = true\n{extra}[buckets.files]\nurl = \"file://data\"\n",
        pg.url()
    );
    Gateway::start_with_config_env(dir, &cfg, &[("PG_TEST_PASSWORD", Postgres::PASSWORD)])
}

/// Every type of the type table, with the values that break things.
const TYPES: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE types (
  id int PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
  n numeric(38,10), n0 numeric(10,0), nu numeric, t text, vc varchar(20), ch char(5), by bytea,
  d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, iv interval, u uuid,
  j jsonb, js json, e mood, a int4[], ta text[], other inet
);
INSERT INTO types VALUES
 (1, true, -32768, -2147483648, -9223372036854775808, 'NaN', 'Infinity',
  -9999999999999999999999999999.9999999999, 9999999999, repeat('9', 1000)::numeric + 0.5,
  'Zoë ✓ 日本語 🚚', '', 'ab', '\x00ff01', '0001-01-01', '00:00:00', '13:45:01.25+05:30',
  '1900-01-01 00:00:00', '1969-12-31 23:59:59.999999+00', '1 year 2 mons 3 days 04:05:06.789',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2, {"x": null}]}', '{"raw":  "kept as is"}',
  'happy', '{1,NULL,3}', '{"a","",NULL}', '192.168.0.1/24'),
 (2, false, 32767, 2147483647, 9223372036854775807, '-Infinity', -1.5e308,
  0.0000000001, 0, 'NaN', 'comma, "quote"
new line', 'twenty characters!!!', 'abcde', '', '9999-12-31', '23:59:59.999999', '00:00:00-08:00',
  '2262-04-11 23:47:16', '2026-11-27 12:34:56.123456+02', '-3 days', '00000000-0000-0000-0000-000000000000',
  '[]', '{}', 'sad', '{}', '{}', '::1'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"#;

/// The table's rows as Postgres prints them, in id order: equal text means equal values.
fn fingerprint(pg: &Postgres, table: &str) -> String {
    pg.psql(&format!(
        "SELECT string_agg(x::text, E'\\n' ORDER BY x.id) FROM {table} x"
    ))
}

#[test]
fn every_type_round_trips_through_arrow_and_parquet() {
    let pg = Postgres::start();
    pg.psql(TYPES);
    let dir = workdir();
    let gw = gateway_for(&pg, dir.path(), "");
    let schema = ok(gw.mvrec(&["schema", "pg/public/types", "--json"]));
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
    assert_eq!(ty("n"), "Decimal128(38, 10)");
    assert_eq!(ty("nu"), "Utf8");
    assert_eq!(ty("tstz"), "Timestamp(µs, \"UTC\")");
    assert_eq!(ty("a"), "List(Int32)");
    assert!(fields[0]["nullable"] == false, "id is NOT NULL: {schema}");

    // PG -> Arrow -> PG: a new table created from the Arrow schema, then compared by Postgres.
    ok(gw.mvrec(&["cp", "pg/public/types", "pg/public/types_copy"]));
    let want = fingerprint(&pg, "types");
    assert!(want.contains("Zoë") && want.contains("NaN"), "{want}");
    assert_eq!(fingerprint(&pg, "types_copy"), want);
    // The declared types came along where they are built in.
    let declared = pg.psql("SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'types_copy'::regclass AND attnum > 0");
    assert!(
        declared.contains("character varying(20)")
            && declared.contains("numeric(38,10)")
            && declared.contains("time with time zone")
            && declared.contains("integer[]"),
        "{declared}"
    );

    // PG -> Parquet -> PG. Parquet cannot hold a MonthDayNano interval (refused by name), so
    // that column is left out.
    let err = fails(gw.mvrec(&["cp", "pg/public/types", "files/types.parquet"]));
    assert!(err.contains("\"iv\"") && err.contains("--columns"), "{err}");
    let all_but_iv = "id,b,i2,i4,i8,f4,f8,n,n0,nu,t,vc,ch,by,d,tm,ttz,ts,tstz,u,j,js,e,a,ta,other";
    ok(gw.mvrec(&[
        "cp",
        "pg/public/types",
        "files/types.parquet",
        "--columns",
        all_but_iv,
    ]));
    ok(gw.mvrec(&["cp", "files/types.parquet", "pg/public/types_pq"]));
    let without_iv = |t: &str| {
        pg.psql(&format!(
            "SELECT string_agg(({all_but_iv})::text, E'\\n' ORDER BY id) FROM {t}"
        ))
    };
    assert_eq!(without_iv("types_pq"), without_iv("types"));
    assert!(without_iv("types").contains("Zoë"));

    // A NaN cannot enter numeric(p,s) as an Arrow decimal: the error names row and column.
    pg.psql("CREATE TABLE bad (n numeric(5,2)); INSERT INTO bad VALUES (1.5), ('NaN')");
    let err = fails(gw.mvrec(&["cat", "pg/public/bad"]));
    assert!(err.contains("row 2") && err.contains("\"n\""), "{err}");
    // A query reads through a read-only transaction; one that writes is refused.
    let q = ok(gw.mvrec(&[
        "cat",
        "pg",
        "--sql",
        "SELECT id, nu FROM types WHERE id = 2",
    ]));
    assert!(q.contains("NaN"), "{q}");
    let err = fails(gw.mvrec(&["cat", "pg", "--sql", "DELETE FROM types RETURNING id"]));
    assert!(err.contains("invalid"), "{err}");
    assert_eq!(pg.psql("SELECT count(*) FROM types"), "3");
}

#[test]
fn existing_table_modes_and_a_hostile_name() {
    let pg = Postgres::start();
    let dir = workdir();
    std::fs::write(
        dir.path().join("data/a.csv"),
        "id,\"x\"\"; DROP TABLE y; --\"\n1,2\n3,4\n",
    )
    .unwrap();
    let gw = gateway_for(&pg, dir.path(), "");
    let hostile = "pg/public/a\"; DROP TABLE x; --";
    ok(gw.mvrec(&["cp", "files/a.csv", hostile]));
    let t = "\"a\"\"; DROP TABLE x; --\"";
    assert_eq!(pg.psql(&format!("SELECT count(*) FROM {t}")), "2");
    let err = fails(gw.mvrec(&["cp", "files/a.csv", hostile]));
    assert!(err.contains("already exists"), "{err}");
    ok(gw.mvrec(&["cp", "files/a.csv", hostile, "--existing-table", "append"]));
    assert_eq!(pg.psql(&format!("SELECT count(*) FROM {t}")), "4");
    for mode in [
        "truncate-and-overwrite",
        "delete-and-overwrite",
        "drop-and-recreate",
    ] {
        ok(gw.mvrec(&["cp", "files/a.csv", hostile, "--existing-table", mode]));
        assert_eq!(pg.psql(&format!("SELECT count(*) FROM {t}")), "2", "{mode}");
    }
    let cat = ok(gw.mvrec(&["cat", hostile]));
    assert!(cat.contains("DROP TABLE y"), "{cat}");
}

#[test]
fn a_value_over_the_limit_is_refused_clearly() {
    let pg = Postgres::start();
    // A 2 MB bytea against a 1 MB limit (the default is 256 MB; Postgres allows 1 GB).
    pg.psql("CREATE TABLE blobs (id int, b bytea); INSERT INTO blobs VALUES (1, 'small'), (2, decode(repeat('ab', 2 * 1024 * 1024), 'hex'))");
    let dir = workdir();
    let gw = gateway_for(&pg, dir.path(), "max_value_mb = 1\n");
    let err = fails(gw.mvrec(&["cat", "pg/public/blobs"]));
    assert!(
        err.contains("row 2")
            && err.contains("\"b\"")
            && err.contains("2097152 bytes")
            && err.contains("max_value_mb"),
        "{err}"
    );
    let out = ok(gw.mvrec(&["cat", "pg", "--sql", "SELECT id, length(b) AS n FROM blobs"]));
    assert!(out.contains("2097152"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_split_into_block_ranges_reads_whole() {
    let pg = Postgres::start();
    pg.psql(
        "CREATE TABLE big AS SELECT g AS id, repeat('x', 150) || g AS pad \
         FROM generate_series(1, 200000) g; \
         CREATE VIEW big_view AS SELECT * FROM big;",
    );
    let dir = workdir();
    let gw = gateway_for(&pg, dir.path(), "split_reads = true\n");
    let mut client = Client::connect(&gw.url).await.unwrap();
    let split = |name: &str| Read {
        what: Some(What::Path(mover_proto::Path {
            parts: name.split('/').map(str::to_string).collect(),
        })),
        partitions: 4,
        ..Default::default()
    };
    let info = client.info(&split("pg/public/big")).await.unwrap();
    assert_eq!(info.endpoint.len(), 4);
    assert!(info.endpoint.iter().all(|e| e.expiration_time.is_some()));
    // Rows added and removed after GetFlightInfo are not seen: every part reads in the
    // snapshot the FlightInfo exported.
    pg.psql("INSERT INTO big SELECT g, 'new' FROM generate_series(200001, 201000) g; DELETE FROM big WHERE id <= 10");
    let parts_client = client.handle();
    let read_part = |ticket: arrow_flight::Ticket| {
        let mut client = parts_client.handle();
        async move {
            let batches: Vec<arrow::array::RecordBatch> =
                client.redeem(ticket).await?.try_collect().await?;
            Ok::<_, mover_client::ClientError>(batches.iter().map(|b| b.num_rows()).sum::<usize>())
        }
    };
    let first = info.endpoint[0].ticket.clone().unwrap();
    let first_rows = read_part(first.clone()).await.unwrap();
    // Each endpoint a block range; together every row once.
    let mut ids = Vec::new();
    for endpoint in info.endpoint.clone() {
        let batches: Vec<_> = client
            .redeem(endpoint.ticket.unwrap())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let before = ids.len();
        for b in &batches {
            let col = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int32Array>()
                .unwrap();
            ids.extend(col.values().iter().copied());
        }
        assert!(ids.len() > before, "an empty block range");
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=200_000).collect::<Vec<i32>>());
    // Read again, a part gives the same rows; released, its snapshot is gone, and so is the
    // transaction that held it.
    assert_eq!(read_part(first.clone()).await.unwrap(), first_rows);
    client.release(info).await.unwrap();
    let refused = read_part(first).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(tonic::Code::FailedPrecondition),
        "{refused}"
    );
    let held = "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'";
    let started = std::time::Instant::now();
    while pg.psql(held) != "0" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the snapshot is still held"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A view has no blocks to split; a database without split_reads does not split.
    let info = client.info(&split("pg/public/big_view")).await.unwrap();
    assert_eq!(info.endpoint.len(), 1);
    let plain_dir = workdir();
    let plain = gateway_for(&pg, plain_dir.path(), "");
    let mut client = Client::connect(&plain.url).await.unwrap();
    let info = client.info(&split("pg/public/big")).await.unwrap();
    assert_eq!(info.endpoint.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_gateways_staged_parts_are_swept_once_their_write_is_over() {
    use mover_proto::{ExistingTable, PartId, Write};
    let pg = Postgres::start();
    let dir = workdir();
    let extra = "[server]\nspool_dir = \"spool\"\nstale_parts_grace_seconds = 0\n";
    let mut gw = gateway_for(&pg, dir.path(), extra);
    let mut client = Client::connect(&gw.url).await.unwrap();
    let target = |name: &str| Write {
        path: Some(mover_proto::Path {
            parts: mover_client::names::parse(name).unwrap(),
        }),
        existing_table: ExistingTable::Append as i32,
        ..Default::default()
    };
    let batch = arrow::array::RecordBatch::try_from_iter([(
        "id",
        std::sync::Arc::new(arrow::array::Int64Array::from_iter_values(0..1000)) as _,
    )])
    .unwrap();
    // One part each of three writes in parts, staged three ways: a Postgres staging table, a
    // bucket prefix's hidden file, a spooled file (a single-file target). Then the gateway
    // dies before any commit or abort.
    let mut expires = 0;
    for name in ["pg/public/landed", "files/out/", "files/one.csv"] {
        let session = client.begin_write(&target(name), 1).await.unwrap();
        expires = expires.max(session.expires_at);
        let part = PartId {
            partition: 0,
            attempt: 0,
        };
        let batches = futures::stream::iter([Ok(batch.clone())]);
        let staged = client
            .put_part(&session.write_id, &part, batch.schema(), batches)
            .await
            .unwrap();
        assert_eq!(staged.rows_read, 1000, "{name}");
    }
    gw.kill();
    let stage_tables = "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_mover\\_stage\\_%'";
    assert_eq!(pg.psql(stage_tables), "1");
    let staged_files = || {
        let mut files = mover_tests::files_under(&dir.path().join("data"));
        files.extend(mover_tests::files_under(&dir.path().join("spool")));
        files
    };
    let left = staged_files();
    assert!(left.iter().any(|f| f.contains("_staging-")), "{left:?}");
    assert!(left.iter().any(|f| f.ends_with(".arrows")), "{left:?}");

    // A gateway started after the writes' expiry (and the grace, here none) removes all of
    // it, and no reader ever saw any of it.
    let over = std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires + 2);
    if let Ok(wait) = over.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(wait);
    }
    let gw = gateway_for(&pg, dir.path(), extra);
    gw.wait_for_log("removed a stopped gateway's spooled parts", 30);
    gw.wait_for_log("removed parts staged by writes that ended", 30);
    assert_eq!(pg.psql(stage_tables), "0");
    assert_eq!(pg.psql("SELECT to_regclass('public.landed') IS NULL"), "t");
    let left = staged_files();
    assert!(left.is_empty(), "{left:?}");
}

/// A password rotated under a running gateway: the server refuses the old one, the gateway
/// runs its `password_command` again and logs in with the new one, no restart.
#[test]
fn a_rotated_password_is_read_again_without_a_restart() {
    let pg = Postgres::start();
    // The gateway logs in as a role of its own, whose password the test rotates.
    pg.psql("CREATE TABLE t AS SELECT 1 AS id; CREATE ROLE app LOGIN PASSWORD 'app-pw-1'; GRANT SELECT ON t TO app");
    let dir = workdir();
    let vault = dir.path().join("vault.txt");
    std::fs::write(&vault, "app-pw-1").unwrap();
    let cfg = format!(
        "[databases.pg]\nurl = \"{}\"\npassword_command = [\"cat\", \"{}\"]\n[buckets.files]\nurl = \"file://data\"\n",
        pg.url().replace("mover@", "app@"),
        vault.display()
    );
    let gw = Gateway::start_with_config(dir.path(), &cfg);
    assert!(ok(gw.mvrec(&["cat", "pg/public/t"])).contains('1'));
    const ROTATED: &str = "rotated-pw-Q4v9";
    pg.psql(&format!("ALTER ROLE app PASSWORD '{ROTATED}'"));
    std::fs::write(&vault, ROTATED).unwrap();
    assert!(ok(gw.mvrec(&["cat", "pg/public/t"])).contains('1'));
    let log = gw.log();
    assert!(
        log.contains("the server refused the password; read it again"),
        "{log}"
    );
    assert!(!log.contains(ROTATED) && !log.contains("app-pw-1"), "{log}");
    // A password that stays wrong fails as before, naming the database.
    std::fs::write(&vault, "still-wrong").unwrap();
    pg.psql("ALTER ROLE app PASSWORD 'another-one'");
    let err = fails(gw.mvrec(&["cat", "pg/public/t"]));
    assert!(err.contains("database pg"), "{err}");
}

/// A uuid travels as Arrow's `arrow.uuid` and an array as a list; text formats write the uuid's
/// canonical text and, in CSV and records files, an array as JSON text (JSON lines: a JSON
/// array). Appended to a table with uuid and array columns, each file comes back value for
/// value.
#[test]
fn uuids_and_arrays_reach_every_text_format_and_come_back() {
    let pg = Postgres::start();
    pg.psql(
        "CREATE TABLE src (id int PRIMARY KEY, u uuid, a int4[], ta text[]);
         INSERT INTO src VALUES
          (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '{\"a\",\"\",NULL,\"q\\\"uote, comma\"}'),
          (2, '00000000-0000-0000-0000-000000000000', '{}', '{}'),
          (3, NULL, NULL, NULL);",
    );
    let dir = workdir();
    let gw = gateway_for(&pg, dir.path(), "");
    let want = fingerprint(&pg, "src");
    let data = dir.path().join("data");
    for (name, extra) in [
        ("src.csv", &[][..]),
        ("src.jsonl", &[][..]),
        ("src_rm/", &["--to-variant", "bluelabs"][..]),
        ("src_csv/", &["--to-format", "csv"][..]),
    ] {
        let file = format!("files/{name}");
        let mut args = vec!["cp", "pg/public/src", file.as_str()];
        args.extend_from_slice(extra);
        ok(gw.mvrec(&args));
        let table = format!("back_{}", name.replace(['.', '/'], "_"));
        pg.psql(&format!("CREATE TABLE {table} (LIKE src)"));
        ok(gw.mvrec(&[
            "cp",
            &file,
            &format!("pg/public/{table}"),
            "--existing-table",
            "append",
        ]));
        assert_eq!(fingerprint(&pg, &table), want, "{name}");
    }
    let csv = std::fs::read_to_string(data.join("src.csv")).unwrap();
    assert!(
        csv.contains("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,\"[1,null,3]\""),
        "{csv}"
    );
    let jsonl = std::fs::read_to_string(data.join("src.jsonl")).unwrap();
    assert!(
        jsonl.contains(r#""u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","a":[1,null,3]"#),
        "{jsonl}"
    );
    // A value that is not a uuid is refused by row and column, and the table is as it was.
    std::fs::write(data.join("bad.csv"), "id,u,a,ta\n9,not-a-uuid,,\n").unwrap();
    let err = fails(gw.mvrec(&[
        "cp",
        "files/bad.csv",
        "pg/public/back_src_csv",
        "--existing-table",
        "append",
    ]));
    assert!(
        err.contains("row 1") && err.contains("\"u\"") && err.contains("not a uuid"),
        "{err}"
    );
    assert_eq!(fingerprint(&pg, "back_src_csv"), want);
}
