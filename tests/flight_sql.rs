//! Flight SQL through real clients against a real gateway serving SQLite, Postgres, MariaDB and
//! a bucket: the ADBC driver from Python (with pandas and polars on it), run as
//! `tests/python/clients/adbc_checks.py`, and arrow-rs's `FlightSqlServiceClient` replaying what
//! the JDBC driver sends when it connects and browses; SQLAlchemy on flightsql-dbapi (the
//! Superset route); logins by password, token and certificate, with the access rules deciding.

use std::path::Path;
use std::process::Command;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo, SqlInfo, XdbcDataType,
};
use futures::TryStreamExt;
use mover_tests::{
    Gateway, Mariadb, Pki, Postgres, S3Server, files_under, hash_password, values, workdir,
};
use tonic::transport::Channel;

/// `orders` (id, name, total) with two rows and a view `big_orders` of it, in each database; a
/// CSV file in the bucket.
struct Served {
    gw: Gateway,
    _pg: Postgres,
    _maria: Mariadb,
    _dir: tempfile::TempDir,
}

const MANY: u64 = 200_000;

fn serve() -> Served {
    let dir = workdir();
    let data = dir.path().join("data");
    let sqlite = rusqlite::Connection::open(data.join("demo.db")).unwrap();
    sqlite
        .execute_batch(
            "CREATE TABLE orders (id INTEGER NOT NULL PRIMARY KEY, name TEXT, total REAL);
             INSERT INTO orders VALUES (1, 'one', 1.5), (2, 'two', 2.5);
             CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 2;
             CREATE TABLE order_lines (line INTEGER PRIMARY KEY, order_id INTEGER
               REFERENCES orders (id) ON UPDATE RESTRICT ON DELETE CASCADE);",
        )
        .unwrap();
    std::fs::write(
        data.join("orders.csv"),
        "id,name,total\n1,one,1.5\n2,two,2.5\n",
    )
    .unwrap();
    // Text and bytes of the wide kinds, as pandas may write them: previews give Utf8 and Binary.
    let wide = RecordBatch::try_from_iter([
        (
            "t",
            std::sync::Arc::new(arrow::array::LargeStringArray::from(vec!["é"])) as _,
        ),
        (
            "b",
            std::sync::Arc::new(arrow::array::LargeBinaryArray::from(vec![b"\0".as_slice()])) as _,
        ),
    ])
    .unwrap();
    let file = std::fs::File::create(data.join("wide.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, wide.schema(), None).unwrap();
    writer.write(&wide).unwrap();
    writer.close().unwrap();
    let pg = Postgres::start();
    pg.psql(
        "CREATE TABLE orders (id bigint NOT NULL PRIMARY KEY, name text, total double precision);
         INSERT INTO orders VALUES (1, 'one', 1.5), (2, 'two', 2.5);
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 2;
         CREATE TABLE order_lines (line bigint PRIMARY KEY, order_id bigint CONSTRAINT lines_order
           REFERENCES orders (id) ON UPDATE RESTRICT ON DELETE CASCADE)",
    );
    let maria = Mariadb::start();
    maria.sql(
        "CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, name TEXT, total DOUBLE);
         INSERT INTO orders VALUES (1, 'one', 1.5), (2, 'two', 2.5);
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 2;
         CREATE TABLE order_lines (line BIGINT PRIMARY KEY, order_id BIGINT,
           CONSTRAINT lines_order FOREIGN KEY (order_id) REFERENCES orders (id)
           ON UPDATE RESTRICT ON DELETE CASCADE);",
    );
    let config = format!(
        "[databases.demo]\nurl = \"sqlite://data/demo.db\"\nallow_sql = true\n\
         [databases.pg]\nurl = \"{}\"\npassword_env = \"PG_PASSWORD\"\nallow_sql = true\n\
         [databases.maria]\nurl = \"{}\"\npassword_env = \"MARIA_PASSWORD\"\nallow_sql = true\n\
         [buckets.files]\nurl = \"file://data\"\n",
        pg.url(),
        maria.url()
    );
    let envs = [
        ("PG_PASSWORD", Postgres::PASSWORD),
        ("MARIA_PASSWORD", Mariadb::PASSWORD),
    ];
    let gw = Gateway::start_with_config_env(dir.path(), &config, &envs);
    Served {
        gw,
        _pg: pg,
        _maria: maria,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn adbc_pandas_and_polars_browse_and_query_every_database() {
    let served = serve();
    // The conformance table of edge values in each database, for the types check.
    let mut client = mover_client::Client::connect(&served.gw.url).await.unwrap();
    let typed = values::table(values::EDGE_ROWS);
    for table in ["demo/main/typed", "pg/public/typed", "maria/test/typed"] {
        values::put(&mut client, table, &typed).await;
    }
    // Each database's own placeholder: `$1` in Postgres (where `?` is a jsonb operator).
    // And the type name its `total` column says it has.
    let catalog = |schema: &str, placeholder: &str, total_type: &str, many_sql: String| {
        serde_json::json!({
            "schema": schema, "placeholder": placeholder, "total_type": total_type,
            "many_sql": many_sql, "many": MANY,
        })
    };
    let spec = serde_json::json!({
        "bucket": "files",
        "catalogs": {
            "demo": catalog("main", "?", "DOUBLE", format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MANY}) SELECT i FROM n"
            )),
            "pg": catalog("public", "$1", "double precision", format!("SELECT i FROM generate_series(1, {MANY}) AS i")),
            "maria": catalog("test", "?", "DOUBLE", format!("SELECT seq AS i FROM seq_1_to_{MANY}")),
        }
    });
    // A known limit: a free query's FLOAT comes from MySQL's text protocol at 6 digits.
    let mut spec = spec;
    spec["catalogs"]["maria"]["query_float32_digits"] = 6.into();
    adbc_checks("browse", &served.gw, &spec, "adbc checks passed");
}

/// Run `tests/python/clients/adbc_checks.py MODE URL SPEC` and see it pass.
fn adbc_checks(mode: &str, gw: &Gateway, spec: &serde_json::Value, passed: &str) {
    let args = [mode.to_string(), gw.url.clone(), spec.to_string()];
    client_checks(".venv", "adbc_checks.py", &args, gw, passed);
}

/// Run the client script `tests/python/clients/SCRIPT ARGS` in the virtualenv `venv` (which
/// scripts/test makes) and see it print `passed`.
fn client_checks(venv: &str, script: &str, args: &[String], gw: &Gateway, passed: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(venv).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test (it makes {venv} with the clients this test runs)",
        python.display()
    );
    let out = Command::new(&python)
        .arg(root.join("tests/python/clients").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(passed),
        "{script} failed:\n{stdout}\n{}\nthe gateway's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
}

/// The Superset route: SQLAlchemy on flightsql-dbapi connects, reflects schemas, tables and
/// columns, and queries.
#[test]
fn sqlalchemy_reflects_and_queries_through_flightsql_dbapi() {
    let dir = workdir();
    rusqlite::Connection::open(dir.path().join("data/demo.db"))
        .unwrap()
        .execute_batch(
            "CREATE TABLE orders (id INTEGER NOT NULL, name TEXT, total REAL);
             INSERT INTO orders VALUES (1, 'one', 1.5), (2, 'two', 2.5);",
        )
        .unwrap();
    let config = "[databases.demo]\nurl = \"sqlite://data/demo.db\"\nallow_sql = true\n\
                  [buckets.files]\nurl = \"file://data\"\n";
    let gw = Gateway::start_with_config(dir.path(), config);
    let addr = gw.addr();
    let args = [addr.ip().to_string(), addr.port().to_string()];
    client_checks(
        ".venv-flightsql",
        "sqlalchemy_checks.py",
        &args,
        &gw,
        "sqlalchemy checks passed",
    );
}

const PASSWORD: &str = "password";

/// Users alice (may read and query `demo`) and bob (may read it); `secret` is neither's.
fn users_and_rules() -> String {
    let hash = hash_password(PASSWORD);
    format!(
        "[databases.demo]\nurl = \"sqlite://data/demo.db\"\nallow_sql = true\n\
         [databases.secret]\nurl = \"sqlite://data/demo.db\"\nallow_sql = true\n\
         [[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n\
         [[users]]\nname = \"bob\"\npassword_hash = \"{hash}\"\n\
         [[access]]\nprincipal = \"alice\"\nread = [\"demo/**\"]\nquery = [\"demo\"]\n\
         [[access]]\nprincipal = \"bob\"\nread = [\"demo/**\"]\n"
    )
}

#[test]
fn adbc_logs_in_by_password_and_certificate_and_the_rules_hold() {
    let dir = workdir();
    let data = dir.path().join("data");
    rusqlite::Connection::open(data.join("demo.db"))
        .unwrap()
        .execute_batch("CREATE TABLE orders (id INTEGER); INSERT INTO orders VALUES (1), (2);")
        .unwrap();
    let gw = Gateway::start_with_config(dir.path(), &users_and_rules());
    let tls_dir = workdir();
    std::fs::copy(data.join("demo.db"), tls_dir.path().join("data/demo.db")).unwrap();
    let pki = Pki::make(&tls_dir.path().join("pki"));
    let tls = Gateway::start_with_config(
        tls_dir.path(),
        &format!("{}{}", pki.server_tls(), users_and_rules()),
    );
    let pem = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
    let spec = serde_json::json!({
        "password": PASSWORD,
        "mtls": {
            "url": tls.tls_url(),
            "ca": pem(pki.pem("ca")),
            "cert": pem(pki.pem("alice")),
            "key": pem(pki.key("alice")),
        }
    });
    adbc_checks("auth", &gw, &spec, "adbc auth checks passed");
}

/// A foreign key is shown only to a caller who may list both of its tables.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_is_shown_only_with_both_its_tables() {
    let dir = workdir();
    rusqlite::Connection::open(dir.path().join("data/demo.db"))
        .unwrap()
        .execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY);
             CREATE TABLE order_lines (line INTEGER PRIMARY KEY,
               order_id INTEGER REFERENCES orders (id));",
        )
        .unwrap();
    let config = format!(
        "{}[[users]]\nname = \"carol\"\npassword_hash = \"{}\"\n\
         [[access]]\nprincipal = \"carol\"\nread = [\"demo/main/order_lines\"]\n",
        users_and_rules(),
        hash_password(PASSWORD)
    );
    let gw = Gateway::start_with_config(dir.path(), &config);
    let imported = || CommandGetImportedKeys {
        catalog: Some("demo".into()),
        db_schema: Some("main".into()),
        table: "order_lines".into(),
    };
    for (user, shown) in [("alice", 1), ("carol", 0)] {
        let mut client = sql_client(&gw).await;
        client.handshake(user, PASSWORD).await.unwrap();
        let info = client.get_imported_keys(imported()).await.unwrap();
        assert_eq!(rows(&mut client, info).await.num_rows(), shown, "{user}");
    }
}

/// The JDBC driver Handshakes with Basic credentials, and again with the token it holds: the
/// same token comes back; a dead or made-up one is UNAUTHENTICATED.
#[tokio::test(flavor = "multi_thread")]
async fn handshake_takes_basic_credentials_and_a_bearer_token() {
    let dir = workdir();
    let gw = Gateway::start_with_config(dir.path(), &users_and_rules());
    let mut client = sql_client(&gw).await;
    let token = client.handshake("alice", PASSWORD).await.unwrap();
    let token = String::from_utf8(token.to_vec()).unwrap();
    let channel = channel(&gw).await;
    let mut raw = arrow_flight::flight_service_client::FlightServiceClient::new(channel);
    let handshake = |bearer: String| {
        let mut request = tonic::Request::new(futures::stream::iter([
            arrow_flight::HandshakeRequest::default(),
        ]));
        request
            .metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        request
    };
    let answer = raw
        .handshake(handshake(format!("Bearer {token}")))
        .await
        .unwrap();
    assert_eq!(
        answer.metadata().get("authorization").unwrap(),
        &format!("Bearer {token}")
    );
    for bad in ["Bearer None", "Bearer garbage"] {
        let err = raw.handshake(handshake(bad.into())).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{bad}: {err}");
    }
}

async fn channel(gw: &Gateway) -> Channel {
    Channel::from_shared(gw.url.replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn sql_client(gw: &Gateway) -> FlightSqlServiceClient<Channel> {
    FlightSqlServiceClient::new(channel(gw).await)
}

/// A string column's values.
fn strings(batch: &RecordBatch, column: usize) -> Vec<&str> {
    batch
        .column(column)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect()
}

/// A foreign-key result's rows: each one's eight names, the key's and the referenced key's
/// names, and its update and delete rules (every key here has one column).
type KeyRow = (Vec<String>, Option<String>, Option<String>, (u8, u8));

fn foreign_keys(batch: RecordBatch) -> Vec<KeyRow> {
    let text = |i: usize, r: usize| {
        let c = batch.column(i).as_string::<i32>();
        c.is_valid(r).then(|| c.value(r).to_string())
    };
    let rule = |i: usize, r: usize| {
        batch
            .column(i)
            .as_primitive::<arrow::datatypes::UInt8Type>()
            .value(r)
    };
    let sequence = batch
        .column(8)
        .as_primitive::<arrow::datatypes::Int32Type>();
    (0..batch.num_rows())
        .map(|r| {
            assert_eq!(sequence.value(r), 1, "the key's first column");
            let names = (0..8).map(|i| text(i, r).expect("a name")).collect();
            (names, text(9, r), text(10, r), (rule(11, r), rule(12, r)))
        })
        .collect()
}

/// The DoGet of `info`, a statement with a placeholder and no value bound, fails saying so.
async fn refused_unbound(
    client: &mut FlightSqlServiceClient<Channel>,
    info: arrow_flight::FlightInfo,
) {
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let read = match client.do_get(ticket).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
        Err(e) => Err(e),
    };
    let refused = read.unwrap_err().to_string();
    assert!(refused.contains("no parameters are bound"), "{refused}");
}

async fn rows(
    client: &mut FlightSqlServiceClient<Channel>,
    info: arrow_flight::FlightInfo,
) -> RecordBatch {
    let schema = std::sync::Arc::new(info.clone().try_decode_schema().unwrap());
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let stream = client.do_get(endpoint.ticket.unwrap()).await.unwrap();
        let got: Vec<RecordBatch> = stream.try_collect().await.unwrap();
        for b in &got {
            assert_eq!(
                b.schema(),
                schema,
                "FlightInfo and DoGet disagree on the schema"
            );
        }
        batches.extend(got);
    }
    concat_batches(&schema, &batches).unwrap()
}

/// What the JDBC driver does when it connects and browses (it is on Maven only, so its
/// sequence is replayed here): GetSqlInfo with no ids, catalogs, schemas of a catalog, tables
/// with their schemas, a prepared SELECT carrying its dataset schema, close.
#[tokio::test(flavor = "multi_thread")]
async fn the_jdbc_drivers_connect_and_browse_sequence() {
    let served = serve();
    let mut client = sql_client(&served.gw).await;

    let info = client.get_sql_info(vec![]).await.unwrap();
    let batch = rows(&mut client, info).await;
    let ids: Vec<u32> = batch
        .column(0)
        .as_primitive::<arrow::datatypes::UInt32Type>()
        .values()
        .to_vec();
    for id in [
        SqlInfo::FlightSqlServerName,
        SqlInfo::FlightSqlServerVersion,
        SqlInfo::FlightSqlServerArrowVersion,
        SqlInfo::FlightSqlServerReadOnly,
        SqlInfo::FlightSqlServerTransaction,
        SqlInfo::SqlIdentifierQuoteChar,
    ] {
        assert!(
            ids.contains(&(id as u32)),
            "SqlInfo {id:?} missing from {ids:?}"
        );
    }
    // Each in its own arm of the union: 0 string, 1 bool, 2 int64, 3 int32 bitmask, 4 string
    // list, 5 map of int32 to int32 lists.
    let values = batch.column(1).as_union();
    let arm = |id: SqlInfo| {
        let row = ids.iter().position(|&i| i == id as u32).unwrap();
        values.type_id(row)
    };
    for (id, want) in [
        (SqlInfo::FlightSqlServerName, 0),
        (SqlInfo::FlightSqlServerReadOnly, 1),
        (SqlInfo::SqlMaxColumnNameLength, 2),
        (SqlInfo::FlightSqlServerTransaction, 3),
        (SqlInfo::SqlSupportedGroupBy, 3),
        (SqlInfo::SqlKeywords, 4),
        (SqlInfo::SqlSupportsConvert, 5),
    ] {
        assert_eq!(arm(id), want, "{id:?}");
    }
    // Asked for one id, exactly that one.
    let info = client
        .get_sql_info(vec![SqlInfo::FlightSqlServerReadOnly])
        .await
        .unwrap();
    assert_eq!(rows(&mut client, info).await.num_rows(), 1);

    let catalogs = client.get_catalogs().await.unwrap();
    let catalogs = rows(&mut client, catalogs).await;
    let names = strings(&catalogs, 0);
    assert_eq!(names, ["demo", "files", "maria", "pg"]);

    let schemas = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: Some("pg".into()),
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas = rows(&mut client, schemas).await;
    assert_eq!(schemas.num_rows(), 1);
    assert_eq!(schemas.column(1).as_string::<i32>().value(0), "public");

    let tables = client
        .get_tables(CommandGetTables {
            catalog: Some("maria".into()),
            db_schema_filter_pattern: Some("te%".into()),
            table_name_filter_pattern: Some("orde_s".into()),
            table_types: vec!["TABLE".into()],
            include_schema: true,
        })
        .await
        .unwrap();
    let tables = rows(&mut client, tables).await;
    assert_eq!(tables.num_rows(), 1);
    assert_eq!(tables.column(2).as_string::<i32>().value(0), "orders");
    let schema = arrow::ipc::convert::try_schema_from_ipc_buffer(
        tables.column(4).as_binary::<i32>().value(0),
    )
    .unwrap();
    let fields: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(fields, ["id", "name", "total"]);

    // The types rows come in, all of them, or those of one XDBC type.
    let types = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .unwrap();
    let types = rows(&mut client, types).await;
    let names = strings(&types, 0);
    for name in [
        "BOOLEAN",
        "BIGINT",
        "DECIMAL",
        "VARCHAR",
        "VARBINARY",
        "TIMESTAMP",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let bigint = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo {
            data_type: Some(XdbcDataType::XdbcBigint as i32),
        })
        .await
        .unwrap();
    let bigint = rows(&mut client, bigint).await;
    assert_eq!(bigint.num_rows(), 1);
    assert_eq!(bigint.column(0).as_string::<i32>().value(0), "BIGINT");

    // Primary keys from each database's own catalog; a view has none.
    for (catalog, schema, key_name) in [
        ("demo", "main", None),
        ("pg", "public", Some("orders_pkey")),
        ("maria", "test", Some("PRIMARY")),
    ] {
        let keys = |table: &str| CommandGetPrimaryKeys {
            catalog: Some(catalog.into()),
            db_schema: Some(schema.into()),
            table: table.into(),
        };
        let info = client.get_primary_keys(keys("orders")).await.unwrap();
        let got = rows(&mut client, info).await;
        assert_eq!(got.num_rows(), 1, "{catalog}");
        assert_eq!(got.column(3).as_string::<i32>().value(0), "id", "{catalog}");
        let name = got.column(4).as_string::<i32>();
        assert_eq!(
            name.is_valid(0).then(|| name.value(0)),
            key_name,
            "{catalog}"
        );
        let info = client.get_primary_keys(keys("big_orders")).await.unwrap();
        assert_eq!(rows(&mut client, info).await.num_rows(), 0, "{catalog}");

        // Foreign keys, from either end and across; the rules in the spec's numbering
        // (RESTRICT 1, CASCADE 0).
        let fk_name = key_name.map(|_| "lines_order");
        let pk_key = match catalog {
            "pg" => Some("orders_pkey"),
            "maria" => Some("PRIMARY"),
            _ => None,
        };
        let names = [
            catalog,
            schema,
            "orders",
            "id",
            catalog,
            schema,
            "order_lines",
            "order_id",
        ];
        let want: KeyRow = (
            names.map(String::from).to_vec(),
            fk_name.map(String::from),
            pk_key.map(String::from),
            (1, 0),
        );
        let table = |t: &str| {
            (
                Some(catalog.to_string()),
                Some(schema.to_string()),
                t.to_string(),
            )
        };
        let (c, s, t) = table("order_lines");
        let imported = CommandGetImportedKeys {
            catalog: c,
            db_schema: s,
            table: t,
        };
        let info = client.get_imported_keys(imported).await.unwrap();
        assert_eq!(
            foreign_keys(rows(&mut client, info).await),
            vec![want.clone()],
            "{catalog}"
        );
        let (c, s, t) = table("orders");
        let exported = CommandGetExportedKeys {
            catalog: c,
            db_schema: s,
            table: t,
        };
        let info = client.get_exported_keys(exported).await.unwrap();
        assert_eq!(
            foreign_keys(rows(&mut client, info).await),
            vec![want.clone()],
            "{catalog}"
        );
        let across = |pk: &str, fk: &str| CommandGetCrossReference {
            pk_catalog: Some(catalog.into()),
            pk_db_schema: Some(schema.into()),
            pk_table: pk.into(),
            fk_catalog: Some(catalog.into()),
            fk_db_schema: Some(schema.into()),
            fk_table: fk.into(),
        };
        let info = client
            .get_cross_reference(across("orders", "order_lines"))
            .await
            .unwrap();
        assert_eq!(
            foreign_keys(rows(&mut client, info).await),
            vec![want],
            "{catalog}"
        );
        let info = client
            .get_cross_reference(across("order_lines", "orders"))
            .await
            .unwrap();
        assert_eq!(rows(&mut client, info).await.num_rows(), 0, "{catalog}");
    }
    // A bucket has no keys.
    let files = CommandGetImportedKeys {
        catalog: Some("files".into()),
        db_schema: None,
        table: "orders.csv".into(),
    };
    let info = client.get_imported_keys(files).await.unwrap();
    assert_eq!(rows(&mut client, info).await.num_rows(), 0);

    let mut client = sql_client(&served.gw).await;
    client.set_header("x-mover-catalog", "pg");
    let mut prepared = client
        .prepare("SELECT id, name FROM orders ORDER BY id".into(), None)
        .await
        .unwrap();
    let dataset = prepared.dataset_schema().unwrap().clone();
    assert_eq!(
        dataset.fields().len(),
        2,
        "a prepared SELECT says its schema"
    );
    let info = prepared.execute().await.unwrap();
    let got = rows(&mut client, info).await;
    assert_eq!(got.schema().as_ref(), &dataset);
    assert_eq!(got.num_rows(), 2);
    prepared.close().await.unwrap();

    // A placeholder's value bound by DoPut, as the JDBC driver's setObject sends it.
    let mut prepared = client
        .prepare("SELECT id, name FROM orders WHERE id = $1".into(), None)
        .await
        .unwrap();
    assert_eq!(prepared.dataset_schema().unwrap().fields().len(), 2);
    // Postgres says the placeholder's type: the id's bigint, bound as Int64.
    let parameters = prepared.parameter_schema().unwrap();
    assert_eq!(parameters.fields().len(), 1);
    assert_eq!(
        parameters.field(0).data_type(),
        &arrow::datatypes::DataType::Int64
    );
    // Run without its value, the read says so (and does not run with NULL in its place), in
    // every database.
    let info = prepared.execute().await.unwrap();
    refused_unbound(&mut client, info).await;
    for catalog in ["demo", "maria"] {
        let mut client = sql_client(&served.gw).await;
        client.set_header("x-mover-catalog", catalog);
        let mut unbound = client
            .prepare("SELECT id FROM orders WHERE id = ?".into(), None)
            .await
            .unwrap();
        let info = unbound.execute().await.unwrap();
        refused_unbound(&mut client, info).await;
    }
    let one = RecordBatch::try_from_iter([(
        "p",
        std::sync::Arc::new(arrow::array::Int64Array::from(vec![2])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    prepared.set_parameters(one).unwrap();
    let info = prepared.execute().await.unwrap();
    let got = rows(&mut client, info).await;
    assert_eq!(got.num_rows(), 1, "the row whose id is the bound 2");
    let id = arrow::compute::cast(got.column(0), &arrow::datatypes::DataType::Int64).unwrap();
    assert_eq!(id.as_primitive::<arrow::datatypes::Int64Type>().value(0), 2);
    prepared.close().await.unwrap();
}

/// CancelFlightInfo stops the caller's running read of a query: its stream ends with
/// CANCELLED (never as if it were complete); with nothing running it is NOT_CANCELLABLE.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_flight_info_stops_a_running_query() {
    use arrow_flight::{CancelFlightInfoRequest, CancelStatus, FlightClient};
    use futures::StreamExt;
    let dir = workdir();
    let config = "[databases.demo]\nurl = \"sqlite://data/demo.db\"\nallow_sql = true\n";
    let gw = Gateway::start_with_config(dir.path(), config);
    let mut client = sql_client(&gw).await;
    let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                   WHERE i < 100000000) SELECT i FROM n";
    let info = client.execute(endless.into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = client.do_get(ticket).await.unwrap();
    assert!(stream.next().await.unwrap().is_ok(), "the first batch");
    let channel = channel(&gw).await;
    let mut flight = FlightClient::new(channel);
    let cancelled = flight
        .cancel_flight_info(CancelFlightInfoRequest::new(info.clone()))
        .await
        .unwrap();
    assert_eq!(cancelled.status, CancelStatus::Cancelled as i32);
    let mut ended = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            ended = Some(e.to_string());
            break;
        }
    }
    let ended = ended.expect("the stream ended as if it were complete");
    assert!(ended.contains("cancelled"), "{ended}");
    let again = flight
        .cancel_flight_info(CancelFlightInfoRequest::new(info))
        .await
        .unwrap();
    assert_eq!(again.status, CancelStatus::NotCancellable as i32);
}

/// A gateway over SQLite, Postgres, MariaDB, a local folder and S3 on moto, each database with
/// `keyed (id NOT NULL)` holding one row, for the write checks.
struct Writable {
    gw: Gateway,
    pg: Postgres,
    maria: Mariadb,
    s3: S3Server,
    dir: tempfile::TempDir,
}

fn serve_writable() -> Writable {
    let dir = workdir();
    let keyed = "CREATE TABLE keyed (id BIGINT NOT NULL); INSERT INTO keyed VALUES (1);";
    rusqlite::Connection::open(dir.path().join("data/demo.db"))
        .unwrap()
        .execute_batch(keyed)
        .unwrap();
    let pg = Postgres::start();
    pg.psql(keyed);
    let maria = Mariadb::start();
    maria.sql(keyed);
    let s3 = S3Server::start();
    s3.create_bucket("lake");
    let config = format!(
        "[databases.demo]\nurl = \"sqlite://data/demo.db\"\nallow_sql = true\n\
         [databases.pg]\nurl = \"{}\"\npassword_env = \"PG_PASSWORD\"\nallow_sql = true\n\
         [databases.maria]\nurl = \"{}\"\npassword_env = \"MARIA_PASSWORD\"\nallow_sql = true\n\
         [buckets.files]\nurl = \"file://data\"\n{}",
        pg.url(),
        maria.url(),
        s3.bucket_config("lake", "s3://lake")
    );
    let [key, secret] = S3Server::envs();
    let envs = [
        ("PG_PASSWORD", Postgres::PASSWORD),
        ("MARIA_PASSWORD", Mariadb::PASSWORD),
        key,
        secret,
    ];
    let gw = Gateway::start_with_config_env(dir.path(), &config, &envs);
    Writable {
        gw,
        pg,
        maria,
        s3,
        dir,
    }
}

/// ADBC's `adbc_ingest` in all four modes into every database and bucket, compared value by
/// value with a plain DoPut of the same rows; the modes' refusals, a bad row in the middle and a
/// type the target cannot hold (see `adbc_writes.py`).
#[test]
fn adbc_ingests_in_every_mode_into_every_database_and_bucket() {
    let served = serve_writable();
    let spec = serde_json::json!({
        "databases": {
            "demo": {"schema": "main"},
            "pg": {"schema": "public", "length_sql": "SELECT character_maximum_length FROM \
                   information_schema.columns WHERE table_name = 't' AND column_name = 'code'"},
            "maria": {"schema": "test"},
        },
        "buckets": ["files", "lake"],
    });
    let args = [
        "ingest".to_string(),
        served.gw.url.clone(),
        spec.to_string(),
    ];
    client_checks(
        ".venv",
        "adbc_writes.py",
        &args,
        &served.gw,
        "adbc ingest checks passed",
    );
    // Nothing staged is left in either bucket, nor any open multipart upload.
    let staged: Vec<String> = files_under(&served.dir.path().join("data"))
        .into_iter()
        .filter(|p| p.contains("_staging"))
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
    let keys = served.s3.keys("lake");
    assert!(
        keys.iter().any(|k| k == "exports/2026/t.parquet"),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.contains("_staging")), "{keys:?}");
    assert!(served.s3.pending_uploads("lake").is_empty());
}

/// An ingest whose client is killed mid-stream changes nothing: a Postgres table keeps its
/// rows, a bucket prefix its parts, and nothing staged stays.
#[test]
fn a_killed_ingest_changes_nothing() {
    let served = serve_writable();
    for (target, mode) in [
        (serde_json::json!(["pg", "public", "keyed"]), "append"),
        (
            serde_json::json!(["files", "exports", "parts/"]),
            "create_append",
        ),
    ] {
        let spec = serde_json::json!({"target": target, "mode": mode});
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/python/clients/adbc_writes.py"))
            .args(["cut", &served.gw.url, &spec.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Killed once rows are flowing.
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("streaming 30") {
            line.clear();
            let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
            assert!(
                n > 0,
                "the ingest ended early; the gateway's log:\n{}",
                served.gw.log()
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // The gateway notices, and rolls back: no load left running, no part left staged.
        let settled = || {
            let loading = served.pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY%' AND state <> 'idle'",
            );
            let files = files_under(&served.dir.path().join("data/exports"));
            loading.trim() == "0" && files.is_empty()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !settled() {
            assert!(
                std::time::Instant::now() < deadline,
                "{mode}: the cut ingest was not rolled back: {:?}\n{}",
                files_under(&served.dir.path().join("data")),
                served.gw.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert_eq!(served.pg.psql("SELECT count(*) FROM keyed").trim(), "1");
    }
    // The gateway still serves.
    let listed = served.gw.mvrec(&["ls", "pg/public/"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("keyed"),
        "{listed:?}"
    );
}

/// DDL and DML through ADBC's `execute` and `executemany` on SQLite, Postgres and MariaDB with
/// `allow_sql_writes`; pandas' `to_sql` and polars' `write_database` into Postgres; refused
/// where the config does not allow SQL writes, or the principal may not write all of the
/// database. SqlInfo says read-only to a principal the rules let write nothing.
#[tokio::test(flavor = "multi_thread")]
async fn sql_writes_run_only_where_allowed() {
    let served = serve_writable();
    let (pg, maria) = (served.pg.url(), served.maria.url());
    let databases = format!(
        "[databases.demo]\nurl = \"sqlite://data/demo.db\"\nallow_sql = true\nallow_sql_writes = true\n\
         [databases.pg]\nurl = \"{pg}\"\npassword_env = \"PG_PASSWORD\"\nallow_sql = true\nallow_sql_writes = true\n\
         [databases.maria]\nurl = \"{maria}\"\npassword_env = \"MARIA_PASSWORD\"\nallow_sql = true\nallow_sql_writes = true\n\
         [databases.pg_ro]\nurl = \"{pg}\"\npassword_env = \"PG_PASSWORD\"\nallow_sql = true\n"
    );
    let envs = [
        ("PG_PASSWORD", Postgres::PASSWORD),
        ("MARIA_PASSWORD", Mariadb::PASSWORD),
    ];
    let dir = served.dir.path();
    let open = Gateway::start_with_config_env(dir, &databases, &envs);
    // carol may write the tables of pg's public schema, but not all of pg; dave only reads.
    let hash = hash_password(PASSWORD);
    let ruled = format!(
        "{databases}[[users]]\nname = \"carol\"\npassword_hash = \"{hash}\"\n\
         [[users]]\nname = \"dave\"\npassword_hash = \"{hash}\"\n\
         [[access]]\nprincipal = \"carol\"\nread = [\"pg/**\"]\nquery = [\"pg\"]\nwrite = [\"pg/public/*\"]\n\
         [[access]]\nprincipal = \"dave\"\nread = [\"pg/**\"]\nquery = [\"pg\"]\n"
    );
    let ruled = Gateway::start_with_config_env(dir, &ruled, &envs);
    let spec = serde_json::json!({
        "catalogs": {
            "demo": {"placeholders": ["?", "?"]},
            "pg": {"placeholders": ["$1", "$2"]},
            "maria": {"placeholders": ["?", "?"]},
        },
        "frames": "pg",
        "frames_schema": "public",
        "refused": {"not_allowed": "pg_ro", "placeholders": ["$1", "$2"], "allowed": "pg",
                    "schema": "public", "user": "carol", "password": PASSWORD},
    });
    let args = ["sql".to_string(), open.url.clone(), spec.to_string()];
    client_checks(
        ".venv",
        "adbc_writes.py",
        &args,
        &open,
        "adbc sql checks passed",
    );
    // The refusal of a principal without `write` on all of the database.
    let args = [
        "rights".to_string(),
        ruled.url.clone(),
        spec["refused"].to_string(),
    ];
    client_checks(
        ".venv",
        "adbc_writes.py",
        &args,
        &ruled,
        "adbc refusal checks passed",
    );

    // Read-only, as SqlInfo says it, is each principal's: dave writes nothing, carol may.
    // Bulk ingest is offered to both, ingest transactions to neither.
    for (user, read_only) in [("dave", true), ("carol", false)] {
        let mut client = sql_client(&ruled).await;
        client.handshake(user, PASSWORD).await.unwrap();
        for (id, want) in [
            (SqlInfo::FlightSqlServerReadOnly, read_only),
            (SqlInfo::FlightSqlServerBulkIngestion, true),
            (SqlInfo::FlightSqlServerIngestTransactionsSupported, false),
        ] {
            let info = client.get_sql_info(vec![id]).await.unwrap();
            let batch = rows(&mut client, info).await;
            let values = batch.column(1).as_union();
            let said = values.child(1).as_boolean().value(values.value_offset(0));
            assert_eq!(said, want, "{user}: {id:?}");
        }
    }
}
