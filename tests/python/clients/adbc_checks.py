"""What a BI tool or notebook does through the ADBC Flight SQL driver, against a real gateway.

Run by tests/flight_sql.rs (which starts the gateways and the databases) as

    python adbc_checks.py browse URL SPEC_JSON
    python adbc_checks.py auth URL SPEC_JSON

`browse`: SPEC_JSON names each catalog to check: its db schema, a table `orders` (id, name,
total) it holds with rows 1 'one' 1.5 and 2 'two' 2.5 and a view `big_orders` of it, and a
query of that database's dialect that yields `many` rows. `auth`: a gateway with users alice and bob (password `password`),
alice may read and query `demo`, bob may only read it, and `secret` is neither's; `mtls` gives
a second gateway's URL and alice's certificate, key and CA (PEM text). Every check asserts;
the first failure ends the script with a traceback.
"""

import json
import sys

import adbc_driver_flightsql as flightsql
import adbc_driver_flightsql.dbapi as fs
import adbc_driver_manager
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.flight as flight

HEADER = flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value + "x-mover-catalog"


def connect(url, catalog=None):
    kwargs = {HEADER: catalog} if catalog else {}
    return fs.connect(url, db_kwargs=kwargs, autocommit=True)


def fails_with(fn, *words):
    """`fn()` raises a driver error whose message holds every one of `words`."""
    try:
        fn()
    except adbc_driver_manager.Error as e:
        text = str(e)
        for w in words:
            assert w in text, f"{w!r} not in {text!r}"
        return e
    raise AssertionError(f"expected an error naming {words}")


def check_browsing(url, spec):
    with connect(url) as conn:
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "Records Mover gateway", info
        assert conn.adbc_get_table_types() == ["DIRECTORY", "FILE", "TABLE", "VIEW"]

        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        catalogs = {c["catalog_name"]: c for c in objects}
        for name, want in spec["catalogs"].items():
            assert name in catalogs, f"{name} not among {list(catalogs)}"
            schemas = {s["db_schema_name"]: s for s in catalogs[name]["catalog_db_schemas"]}
            assert want["schema"] in schemas, f"{name}: {list(schemas)}"
            tables = {t["table_name"]: t for t in schemas[want["schema"]]["db_schema_tables"]}
            assert "orders" in tables, f"{name}: {list(tables)}"
            assert tables["orders"]["table_type"] == "TABLE"
            assert tables["big_orders"]["table_type"] == "VIEW", tables.keys()
            columns = [c["column_name"] for c in tables["orders"]["table_columns"]]
            assert columns == ["id", "name", "total"], columns

            schema = conn.adbc_get_table_schema(
                "orders", catalog_filter=name, db_schema_filter=want["schema"]
            )
            assert schema.names == ["id", "name", "total"], schema

        # Each depth answers, and filters narrow.
        for depth in ["catalogs", "db_schemas", "tables", "columns"]:
            got = conn.adbc_get_objects(depth=depth).read_all()
            assert got.num_rows == len(objects), (depth, got.num_rows)
        only = conn.adbc_get_objects(depth="tables", catalog_filter="pg%").read_all().to_pylist()
        assert [c["catalog_name"] for c in only] == ["pg"], only
        buckets = [c for c in objects if c["catalog_name"] == spec["bucket"]]
        files = [
            (t["table_name"], t["table_type"])
            for s in buckets[0]["catalog_db_schemas"]
            for t in s["db_schema_tables"]
        ]
        assert ("orders.csv", "FILE") in files, files

        # With several databases, a statement must name its catalog.
        with conn.cursor() as cur:
            fails_with(lambda: cur.execute("SELECT 1"), "x-mover-catalog", "pg")


def check_queries(url, name, want):
    with connect(url, name) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT id, name, total FROM orders ORDER BY id")
            table = cur.fetch_arrow_table()
            assert table.to_pylist() == [
                {"id": 1, "name": "one", "total": 1.5},
                {"id": 2, "name": "two", "total": 2.5},
            ], (name, table.to_pylist())
            # The schema said at prepare time is the schema the rows came in.
            assert table.schema.names == ["id", "name", "total"]
            # Each column says where it comes from and what it is (Flight SQL's metadata).
            said = {k.decode(): v.decode() for k, v in table.schema.field("total").metadata.items()}
            sql_key = lambda k: "ARROW:FLIGHT:SQL:" + k
            assert said[sql_key("CATALOG_NAME")] == name, said
            assert said[sql_key("DB_SCHEMA_NAME")] == want["schema"], said
            assert said[sql_key("TABLE_NAME")] == "orders", said
            assert said[sql_key("TYPE_NAME")] == want["total_type"], said
            cur.execute("SELECT count(*) AS n FROM orders")
            said = cur.fetch_arrow_table().schema.field("n").metadata
            assert sql_key("TABLE_NAME").encode() not in said, said

            # Large results arrive in several batches, and whole.
            cur.execute(want["many_sql"])
            reader = cur.fetch_record_batch()
            batches = list(reader)
            rows = sum(b.num_rows for b in batches)
            assert rows == want["many"], (name, rows)
            assert len(batches) > 1, (name, len(batches))

            # SQL that changes the database needs allow_sql_writes in its config: refused,
            # naming the setting, the table untouched.
            fails_with(lambda: cur.execute("DELETE FROM orders"), "allow_sql_writes = true")
            cur.execute("SELECT count(*) AS n FROM orders")
            assert cur.fetchone()[0] == 2

            # Parameters are bound by the database, as values: never spliced into the text.
            p = want["placeholder"]
            sql = f"SELECT id, name FROM orders WHERE total > {p} ORDER BY id"
            cur.execute(sql, parameters=(2.0,))
            assert cur.fetchall() == [(2, "two")], name
            cur.execute(sql, parameters=(0,))
            assert cur.fetchall() == [(1, "one"), (2, "two")], name
            cur.execute(f"SELECT id FROM orders WHERE name = {p}", parameters=("one' OR 'x'='x",))
            assert cur.fetchall() == [], name
            cur.execute(f"SELECT id FROM orders WHERE name = {p}", parameters=(None,))
            assert cur.fetchall() == [], name
            # A query runs once: many rows of parameters (an update's way) are refused, saying
            # why.
            fails_with(
                lambda: cur.executemany(f"SELECT id FROM orders WHERE id = {p}", [(1,), (2,)]),
                "executemany",
                "at most one row of parameters",
            )
            # Parameters are bounded, whether the row or the stream sending it is too big.
            for size in [100_000, 1_000_000]:
                fails_with(
                    lambda: cur.execute(f"SELECT id FROM orders WHERE name = {p}", parameters=("x" * size,)),
                    "at most 65536",
                )
            # As many values as placeholders.
            fails_with(
                lambda: cur.execute(f"SELECT id FROM orders WHERE id = {p}", parameters=(1, 2)),
                "placeholders",
            )

        frame = pd.read_sql("SELECT id, name FROM orders ORDER BY id", conn)
        assert frame["name"].tolist() == ["one", "two"], frame
        polars_frame = pl.read_database("SELECT id, total FROM orders ORDER BY id", conn)
        assert polars_frame["total"].to_list() == [1.5, 2.5], polars_frame


def check_types(url, catalogs):
    """Every type of the conformance table (`typed`, edge values) comes back from a Flight SQL
    query with the types and values the connector's own DoGet of the table gives."""
    client = flight.FlightClient(url)
    for name, want in catalogs.items():
        path = flight.FlightDescriptor.for_path(name, want["schema"], "typed")
        info = client.get_flight_info(path)
        table = client.do_get(info.endpoints[0].ticket).read_all().sort_by("id")
        with connect(url, name) as conn, conn.cursor() as cur:
            cur.execute("SELECT * FROM typed ORDER BY id")
            got = cur.fetch_arrow_table()
            # With a placeholder the query takes the database's other path (no COPY in
            # Postgres, MySQL's binary protocol): the same types and values, and MySQL's
            # FLOAT exact.
            p = want["placeholder"]
            cur.execute(f"SELECT * FROM typed WHERE id >= {p} ORDER BY id", parameters=(-(2**62),))
            bound = cur.fetch_arrow_table()
        check_same(name, bound, table)
        check_same(name, got, table, want.get("query_float32_digits"))


def check_same(name, got, table, float32_digits=None):
    """`got` has `table`'s column names, types and values (a FLOAT to `float32_digits`)."""
    assert got.schema.names == table.schema.names, (name, got.schema.names)
    for have, field in zip(got.schema, table.schema):
        assert have.type == field.type, (name, field.name, have.type, field.type)
    assert got.num_rows == table.num_rows > 0
    for column in table.schema.names:
        if float32_digits and table.schema.field(column).type == pa.float32():
            # A known limit (ROADMAP.md): MySQL's text protocol prints a FLOAT result of a
            # free query to 6 significant digits; a table read casts it to DOUBLE.
            digits = float32_digits
            rounded = lambda col: [None if v is None else float(f"{v:.{digits}g}") for v in col.to_pylist()]
            assert rounded(got.column(column)) == rounded(table.column(column)), (name, column)
            continue
        assert got.column(column).equals(table.column(column)), (
            name,
            column,
            got.column(column).to_pylist(),
            table.column(column).to_pylist(),
        )


def check_bucket(url, bucket):
    """A bucket catalog answers the preview BI tools send, and refuses more, saying so."""
    with connect(url, bucket) as conn, conn.cursor() as cur:
        cur.execute('SELECT * FROM "orders.csv" LIMIT 1')
        assert cur.fetch_arrow_table().to_pylist() == [{"id": 1, "name": "one", "total": 1.5}]
        cur.execute(f'SELECT name, id FROM "{bucket}".""."orders.csv"')
        table = cur.fetch_arrow_table()
        assert table.schema.names == ["name", "id"], table.schema
        assert table.num_rows == 2
        # A Parquet file's LargeUtf8 and LargeBinary come as the Utf8 and Binary drivers read.
        cur.execute('SELECT * FROM "wide.parquet"')
        table = cur.fetch_arrow_table()
        assert table.schema.types == [pa.string(), pa.binary()], table.schema
        assert table.to_pylist() == [{"t": "é", "b": b"\0"}], table
        cur.execute('SELECT * FROM "orders.csv" LIMIT 0')
        table = cur.fetch_arrow_table()
        assert table.num_rows == 0 and table.schema.names == ["id", "name", "total"], table
        e = fails_with(
            lambda: cur.execute('SELECT * FROM "orders.csv" WHERE id = 1'),
            "a bucket catalog answers only SELECT",
        )
        assert "NOT_IMPLEMENTED" in str(e) or "Unimplemented" in str(e), e


def check_sessions(url, catalogs):
    """ADBC's current catalog is a session option (SetSessionOptions), carried by a cookie."""
    cookies = {"adbc.flight.sql.rpc.with_cookie_middleware": "true"}
    with fs.connect(url, db_kwargs=cookies, autocommit=True) as conn:
        for name in catalogs:
            conn.adbc_current_catalog = name
            assert conn.adbc_current_catalog == name
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM orders ORDER BY id")
                assert [r[0] for r in cur.fetchall()] == [1, 2], name

        def unknown():
            conn.adbc_current_catalog = "nowhere"

        fails_with(unknown, "catalog", "invalid value")


def check_refusals(url):
    with connect(url, "nowhere") as conn, conn.cursor() as cur:
        fails_with(lambda: cur.execute("SELECT 1"), "NOT_FOUND", "nowhere")


def login(url, user, password, catalog=None):
    kwargs = {"username": user, "password": password}
    if catalog:
        kwargs[HEADER] = catalog
    return fs.connect(url, db_kwargs=kwargs, autocommit=True)


def query(conn, sql="SELECT id FROM orders ORDER BY id"):
    with conn.cursor() as cur:
        cur.execute(sql)
        return [r[0] for r in cur.fetchall()]


def check_auth(url, spec):
    password = spec["password"]
    # Basic credentials in a Handshake give a bearer token, carried on every call after.
    with login(url, "alice", password) as conn:
        listed = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        assert [c["catalog_name"] for c in listed] == ["demo"], listed
        # The only database alice can see runs her statements without a header.
        assert query(conn) == [1, 2]
    with login(url, "alice", password, "secret") as conn:
        fails_with(lambda: query(conn), "NOT_FOUND", "no catalog")
    with login(url, "bob", password, "demo") as conn:
        fails_with(lambda: query(conn), "PermissionDenied", "bob may not query demo")
        # An ingest needs `write` on its target, as any DoPut does: refused, nothing changed.
        with conn.cursor() as cur:
            one = pa.table({"id": [3]})
            for mode in ["append", "replace", "create"]:
                fails_with(
                    lambda: cur.adbc_ingest("orders", one, mode=mode),
                    "PermissionDenied",
                    "bob may not write demo/orders",
                )
    with login(url, "alice", password) as conn:
        assert query(conn) == [1, 2]
    fails_with(lambda: query(login(url, "alice", "wrong", "demo")), "UNAUTHENTICATED")
    for token in ["Bearer None", "Bearer garbage", "Basic nonsense"]:
        kwargs = {flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: token}
        with fs.connect(url, db_kwargs=kwargs, autocommit=True) as conn:
            fails_with(lambda: conn.adbc_get_objects(depth="catalogs").read_all(), "UNAUTHENTICATED")

    # Mutual TLS: the principal is the certificate's, with alice's rules.
    mtls = spec["mtls"]
    options = {
        flightsql.DatabaseOptions.TLS_ROOT_CERTS.value: mtls["ca"],
        flightsql.DatabaseOptions.MTLS_CERT_CHAIN.value: mtls["cert"],
        flightsql.DatabaseOptions.MTLS_PRIVATE_KEY.value: mtls["key"],
    }
    with fs.connect(mtls["url"], db_kwargs=options, autocommit=True) as conn:
        assert query(conn) == [1, 2]
        listed = conn.adbc_get_objects(depth="catalogs").read_all().to_pylist()
        assert [c["catalog_name"] for c in listed] == ["demo"], listed
    without = {flightsql.DatabaseOptions.TLS_ROOT_CERTS.value: mtls["ca"]}
    fails_with(lambda: query(fs.connect(mtls["url"], db_kwargs=without, autocommit=True)))


def main():
    mode, url, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if mode == "auth":
        check_auth(url, spec)
        print("adbc auth checks passed")
        return
    check_browsing(url, spec)
    for name, want in spec["catalogs"].items():
        check_queries(url, name, want)
    check_types(url, spec["catalogs"])
    check_bucket(url, spec["bucket"])
    check_sessions(url, list(spec["catalogs"]))
    check_refusals(url)
    print("adbc checks passed")


if __name__ == "__main__":
    main()
