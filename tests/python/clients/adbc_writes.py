"""Writes through the ADBC Flight SQL driver (and pandas and polars on it), against a real gateway.

Run by tests/flight_sql.rs (which starts the gateway, the databases and the S3 server) as

    python adbc_writes.py ingest URL SPEC_JSON
    python adbc_writes.py sql URL SPEC_JSON
    python adbc_writes.py rights URL SPEC_JSON
    python adbc_writes.py cut URL SPEC_JSON

`ingest`: SPEC_JSON's `databases` maps each database catalog to its db schema; `buckets` lists
bucket catalogs. Every ADBC ingest mode is run into each, read back and compared value by value
with what a plain Flight DoPut of the same rows wrote (the path `mvrec cp` takes), and the
modes' refusals are checked with ADBC's status codes. A bad row in the middle of an ingest and
a type the target cannot hold change nothing.

`sql`: DDL and DML through `execute` and `executemany` in each of SPEC_JSON's `catalogs` (each
with its two placeholders), pandas and polars frames into `frames`, and the refusals: on the
database `refused.not_allowed` (no `allow_sql_writes`). `rights`: for SPEC_JSON's `user`, who
may write some tables of `allowed` but not all of it.

`cut`: ingest into SPEC_JSON's `target` (catalog, db schema, table) from a generator that never
ends; the test kills this process while it streams.

Every check asserts; the first failure ends the script with a traceback.
"""

import datetime
import decimal
import json
import sys
import time

import adbc_driver_flightsql as flightsql
import adbc_driver_flightsql.dbapi as fs
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight

HEADER = flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value + "x-mover-catalog"
Status = adbc_driver_manager.AdbcStatusCode


def connect(url, catalog=None):
    kwargs = {HEADER: catalog} if catalog else {}
    return fs.connect(url, db_kwargs=kwargs, autocommit=True)


def fails_with(fn, status, *words):
    """`fn()` raises a driver error of ADBC status `status` whose message holds `words`."""
    try:
        fn()
    except adbc_driver_manager.Error as e:
        allowed = status if isinstance(status, tuple) else (status,)
        assert e.status_code in allowed, (e.status_code, str(e))
        for w in words:
            assert w in str(e), f"{w!r} not in {str(e)!r}"
        return e
    raise AssertionError(f"expected {status} naming {words}")


def rows(n, start=0):
    """`n` rows of the kinds the issue names, edge values among them."""
    ids = list(range(start, start + n))
    utc = datetime.timezone.utc
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array([None if i % 7 == 3 else f"n{i} é ✓" for i in ids], pa.string()),
            "total": pa.array([i * 1.25 for i in ids], pa.float64()),
            "price": pa.array([decimal.Decimal(i) / 100 for i in ids], pa.decimal128(12, 2)),
            "at": pa.array(
                [datetime.datetime(2026, 1, 1, tzinfo=utc) + datetime.timedelta(seconds=i) for i in ids],
                pa.timestamp("us", tz="UTC"),
            ),
            "day": pa.array([datetime.date(2000, 1, 1) + datetime.timedelta(days=i) for i in ids], pa.date32()),
            "small": pa.array([i % 60000 for i in ids], pa.uint16()),
            "blob": pa.array([bytes([i % 256, 0]) for i in ids], pa.binary()),
            "ok": pa.array([i % 2 == 0 for i in ids], pa.bool_()),
        }
    ).append_column(
        # Text with a declared length, as a Postgres read describes a varchar(12) column.
        pa.field("code", pa.string(), metadata={"mover.pg_type": "character varying(12)"}),
        pa.array([f"c{i}" for i in ids], pa.string()),
    )


def read_back(client, path):
    """The dataset at `path` as the gateway's DoGet gives it, sorted by id."""
    info = client.get_flight_info(flight.FlightDescriptor.for_path(*path))
    return pa.concat_tables(client.do_get(e.ticket).read_all() for e in info.endpoints).sort_by("id")


def put(client, path, table):
    """A plain Flight DoPut of `table` to `path` (the path `mvrec cp` writes by)."""
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(*path), table.schema)
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    writer.close()


def same(got, want, where):
    assert got.schema.names == want.schema.names, (where, got.schema, want.schema)
    assert got.schema.types == want.schema.types, (where, got.schema, want.schema)
    assert got.num_rows == want.num_rows, (where, got.num_rows, want.num_rows)
    for name in want.schema.names:
        assert got.column(name).equals(want.column(name)), (
            where,
            name,
            got.column(name).to_pylist()[:5],
            want.column(name).to_pylist()[:5],
        )


def check_database(url, client, catalog, spec):
    schema = spec["schema"]
    first, second = rows(5), rows(4, start=100)
    table = lambda name: [catalog, schema, name]
    with connect(url, catalog) as conn, conn.cursor() as cur:
        # What a plain DoPut writes of the same rows is what an ingest must write.
        put(client, table("by_put"), first)
        reference = read_back(client, table("by_put"))
        # The original's values come back where the type table keeps the type.
        assert reference.column("id").equals(first.column("id")), catalog
        assert reference.column("name").equals(first.column("name")), catalog

        # create: into the session's catalog and the database's default schema.
        assert cur.adbc_ingest("t", first, mode="create") == 5
        same(read_back(client, table("t")), reference, (catalog, "create"))
        fails_with(lambda: cur.adbc_ingest("t", first, mode="create"), Status.ALREADY_EXISTS, "already exists")

        # append: adds to what is there; a missing table is not created.
        assert cur.adbc_ingest("t", second, mode="append", db_schema_name=schema) == 4
        got = read_back(client, table("t"))
        assert got.num_rows == 9 and got.column("id").to_pylist() == list(range(5)) + list(range(100, 104))
        fails_with(
            lambda: cur.adbc_ingest("missing", first, mode="append", db_schema_name=schema),
            Status.NOT_FOUND,
            "does not exist",
        )
        listed = conn.adbc_get_objects(depth="tables", catalog_filter=catalog).read_all().to_pylist()
        names = [t["table_name"] for c in listed for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]]
        assert "missing" not in names, names

        # replace: the new rows only, in a table made anew.
        assert cur.adbc_ingest("t", first, mode="replace", catalog_name=catalog) == 5
        same(read_back(client, table("t")), reference, (catalog, "replace"))

        if "length_sql" in spec:
            cur.execute(spec["length_sql"])
            # (information_schema's cardinal_number is a domain Postgres reads out as text.)
            assert int(cur.fetchone()[0]) == 12, catalog

        # create_append: creates when missing, appends when there.
        assert cur.adbc_ingest("ca", first, mode="create_append") == 5
        assert cur.adbc_ingest("ca", second, mode="create_append") == 4
        assert read_back(client, table("ca")).num_rows == 9

        # A streamed reader of many batches arrives whole.
        batches = [rows(1000, start=i * 1000).to_batches()[0] for i in range(20)]
        reader = pa.RecordBatchReader.from_batches(first.schema, batches)
        assert cur.adbc_ingest("streamed", reader, mode="create") == 20_000
        assert read_back(client, table("streamed")).num_rows == 20_000

        # A bad row in the middle (NULL into the NOT NULL key): nothing changes, and the error
        # names the column.
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone()[0] == 5
        bad = pa.table({"id": pa.array([9, None], pa.int64())})
        keyed = conn.adbc_get_table_schema("keyed", catalog_filter=catalog, db_schema_filter=schema)
        assert keyed.field("id").nullable is False, keyed
        ok = pa.table({"id": pa.array([7, 8], pa.int64())}).to_batches()[0]
        reader = pa.RecordBatchReader.from_batches(ok.schema, [ok, bad.to_batches()[0], ok])
        e = fails_with(lambda: cur.adbc_ingest("keyed", reader, mode="append"), Status.INVALID_ARGUMENT)
        assert "id" in str(e), str(e)
        cur.execute("SELECT count(*) FROM keyed")
        assert cur.fetchone()[0] == 1, catalog

        # A type the target cannot hold is refused by column, before any table is made.
        # (Postgres takes arrays of one dimension: a deeper one is an invalid value there;
        # MySQL and MariaDB hold any list as a JSON column.)
        odd = pa.table({"id": [1], "spans": pa.array([[[1]]], pa.list_(pa.list_(pa.int64())))})
        if catalog == "maria":
            cur.adbc_ingest("odd", odd, mode="create")
            assert read_back(client, table("odd")).column("spans").to_pylist() == ["[[1]]"], catalog
        else:
            refused = (Status.NOT_IMPLEMENTED, Status.INVALID_ARGUMENT)
            e = fails_with(lambda: cur.adbc_ingest("odd", odd, mode="create"), refused)
            assert "spans" in str(e), str(e)
            try:
                read_back(client, table("odd"))
                raise AssertionError(f"{catalog}: odd was made")
            except pa.ArrowKeyError as e:
                assert "not found" in str(e), str(e)

        # Refused clearly: a temporary table, an unknown catalog.
        fails_with(lambda: cur.adbc_ingest("tmp", first, mode="create", temporary=True), Status.INVALID_ARGUMENT, "temporary")
        fails_with(lambda: cur.adbc_ingest("t", first, mode="create", catalog_name="nowhere"), Status.NOT_FOUND, "nowhere")


def check_bucket(url, client, bucket):
    with connect(url) as conn, conn.cursor() as cur:
        for name in ["t.parquet", "t.csv.gz"]:
            first, second = rows(5), rows(4, start=100)
            if name.endswith(".csv.gz"):
                # CSV holds no binary column (the type table refuses it by name).
                e = fails_with(
                    lambda: cur.adbc_ingest(name, first, mode="create", catalog_name=bucket),
                    Status.NOT_IMPLEMENTED,
                    '"blob"',
                )
                first, second = first.drop_columns(["blob"]), second.drop_columns(["blob"])
            put(client, [bucket, "ref", name], first)
            reference = read_back(client, [bucket, "ref", name])
            where = [bucket, "exports", "2026", name]
            assert cur.adbc_ingest(name, first, mode="create", catalog_name=bucket, db_schema_name="exports/2026") == 5
            same(read_back(client, where), reference, (bucket, name, "create"))
            fails_with(
                lambda: cur.adbc_ingest(name, first, mode="create", catalog_name=bucket, db_schema_name="exports/2026"),
                Status.ALREADY_EXISTS,
            )
            assert cur.adbc_ingest(name, second, mode="replace", catalog_name=bucket, db_schema_name="exports/2026") == 4
            assert read_back(client, where).column("id").to_pylist() == list(range(100, 104))
            # A file cannot be appended to, and says what to do instead.
            fails_with(
                lambda: cur.adbc_ingest(name, first, mode="create_append", catalog_name=bucket, db_schema_name="exports/2026"),
                Status.NOT_IMPLEMENTED,
                "write a prefix",
            )
        # A prefix takes every mode: parts are added or replaced.
        first, second = rows(5), rows(4, start=100)
        fails_with(
            lambda: cur.adbc_ingest("parts/", first, mode="append", catalog_name=bucket, db_schema_name="exports"),
            Status.NOT_FOUND,
        )
        assert cur.adbc_ingest("parts/", first, mode="create_append", catalog_name=bucket, db_schema_name="exports") == 5
        assert cur.adbc_ingest("parts/", second, mode="append", catalog_name=bucket, db_schema_name="exports") == 4
        assert read_back(client, [bucket, "exports", "parts/"]).num_rows == 9
        assert cur.adbc_ingest("parts/", second, mode="replace", catalog_name=bucket, db_schema_name="exports") == 4
        assert read_back(client, [bucket, "exports", "parts/"]).num_rows == 4
        # At the top level of the bucket, with no db schema.
        assert cur.adbc_ingest("top.parquet", first, mode="create", catalog_name=bucket, db_schema_name="") == 5
        assert read_back(client, [bucket, "top.parquet"]).num_rows == 5


def check_sql(url, catalog, want):
    """DDL and DML through `execute` and `executemany`, on a database that allows them."""
    p1, p2 = want["placeholders"]
    insert = f"INSERT INTO w (id, status) VALUES ({p1}, {p2})"
    with connect(url, catalog) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE w (id BIGINT NOT NULL, status VARCHAR(20))")
        cur.executemany(insert, [(1, "new"), (2, "new"), (3, "new")])
        assert cur.rowcount == 3, (catalog, cur.rowcount)
        cur.execute(f"UPDATE w SET status = 'late' WHERE id >= {p1}", parameters=(2,))
        assert cur.rowcount == 2, (catalog, cur.rowcount)
        cur.execute("SELECT id, status FROM w ORDER BY id")
        assert cur.fetchall() == [(1, "new"), (2, "late"), (3, "late")], catalog
        # executeUpdate without preparing (CommandStatementUpdate): the count it changed.
        statement = cur.adbc_statement
        statement.set_sql_query("UPDATE w SET status = 'seen' WHERE status = 'late'")
        assert statement.execute_update() == 2, catalog
        # Values are bound, never spliced into the text.
        cur.execute(f"DELETE FROM w WHERE status = {p1}", parameters=("x' OR 'a'='a",))
        assert cur.rowcount == 0, (catalog, cur.rowcount)
        # A bad row in the middle of executemany: no row of it stays.
        fails_with(
            lambda: cur.executemany(insert, [(4, "a"), (None, "b"), (5, "c")]),
            (Status.INVALID_ARGUMENT, Status.INTEGRITY),
            "parameter row 2",
        )
        cur.execute("SELECT count(*) FROM w")
        assert cur.fetchone()[0] == 3, catalog
        cur.execute("SELECT status FROM w ORDER BY id")
        assert cur.fetchall() == [("new",), ("seen",), ("seen",)], catalog
        cur.execute("DROP TABLE w")
        fails_with(lambda: cur.execute("SELECT * FROM w"), (Status.NOT_FOUND, Status.INVALID_ARGUMENT))


def check_frames(url, catalog, schema):
    """pandas `to_sql` (create, append, replace) and polars `write_database` on ADBC."""
    import pandas as pd
    import polars as pl

    frame = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None], "total": [1.5, 2.5, 3.5]})
    with connect(url, catalog) as conn:
        assert frame.to_sql("frames", conn, if_exists="fail", index=False) == 3
        assert frame.to_sql("frames", conn, if_exists="append", index=False) == 3
        back = pd.read_sql("SELECT id, name, total FROM frames ORDER BY id, name", conn)
        assert len(back) == 6 and back["total"].tolist() == [1.5, 1.5, 2.5, 2.5, 3.5, 3.5], back
        # replace: pandas drops the table through `execute`, then ingests anew.
        assert frame.to_sql("frames", conn, if_exists="replace", index=False) == 3
        back = pd.read_sql("SELECT id, name, total FROM frames ORDER BY id", conn)
        assert back["name"].tolist()[:2] == ["a", "b"] and len(back) == 3, back

        polars = pl.DataFrame({"id": [10, 20], "label": ["x", "y"]})
        for _ in range(2):
            polars.write_database(f"{catalog}.{schema}.polars", conn, engine="adbc", if_table_exists="replace")
        got = pl.read_database("SELECT id, label FROM polars ORDER BY id", conn)
        assert got.to_dicts() == [{"id": 10, "label": "x"}, {"id": 20, "label": "y"}], got
        polars.write_database(f"{catalog}.{schema}.polars", conn, engine="adbc", if_table_exists="append")
        assert pl.read_database("SELECT count(*) AS n FROM polars", conn)["n"][0] == 4


def check_sql_refused(url, spec):
    """Where the config does not allow SQL writes: PERMISSION_DENIED naming the setting, and
    nothing changed."""
    p1 = spec["placeholders"][0]
    with connect(url, spec["not_allowed"]) as conn, conn.cursor() as cur:
        for attempt in [
            lambda: cur.execute("CREATE TABLE nope (id BIGINT)"),
            lambda: cur.execute("DELETE FROM keyed"),
            lambda: cur.executemany(f"INSERT INTO keyed (id) VALUES ({p1})", [(5,), (6,)]),
        ]:
            fails_with(attempt, Status.UNAUTHORIZED, "allow_sql_writes = true")
        cur.execute("SELECT count(*) FROM keyed")
        assert cur.fetchone()[0] == 1


def check_sql_rights(url, spec):
    """A principal that may write some of a database's tables, not all: SQL that changes the
    database is refused naming the right; an ingest its rules allow still runs."""
    p1 = spec["placeholders"][0]
    login = {"username": spec["user"], "password": spec["password"], HEADER: spec["allowed"]}
    with fs.connect(url, db_kwargs=login, autocommit=True) as conn, conn.cursor() as cur:
        fails_with(lambda: cur.execute("DELETE FROM keyed"), Status.UNAUTHORIZED, "write on all of it")
        fails_with(
            lambda: cur.executemany(f"INSERT INTO keyed (id) VALUES ({p1})", [(5,)]),
            Status.UNAUTHORIZED,
            "write on all of it",
        )
        # The same principal may still ingest where its rules let it write.
        assert cur.adbc_ingest("mine", pa.table({"id": [1]}), mode="create", db_schema_name=spec["schema"]) == 1
        cur.execute("SELECT count(*) FROM keyed")
        assert cur.fetchone()[0] == 1


def cut(url, spec):
    """Stream batches forever into the target; the test kills this process meanwhile."""
    catalog, schema, name = spec["target"]

    def forever():
        i = 0
        while True:
            yield pa.record_batch({"id": pa.array(range(i * 1000, (i + 1) * 1000), pa.int64())})
            i += 1
            if i % 10 == 0:
                print("streaming", i, flush=True)
                time.sleep(0.2)

    reader = pa.RecordBatchReader.from_batches(pa.schema({"id": pa.int64()}), forever())
    with connect(url, catalog) as conn, conn.cursor() as cur:
        cur.adbc_ingest(name, reader, mode=spec["mode"], db_schema_name=schema)
    raise AssertionError("an endless ingest ended")


def main():
    mode, url, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if mode == "cut":
        cut(url, spec)
        return
    if mode == "sql":
        for catalog, want in spec["catalogs"].items():
            check_sql(url, catalog, want)
        check_frames(url, spec["frames"], spec["frames_schema"])
        check_sql_refused(url, spec["refused"])
        print("adbc sql checks passed")
        return
    if mode == "rights":
        check_sql_rights(url, spec)
        print("adbc refusal checks passed")
        return
    client = flight.FlightClient(url)
    for catalog, want in spec["databases"].items():
        check_database(url, client, catalog, want)
    for bucket in spec["buckets"]:
        check_bucket(url, client, bucket)
    print("adbc ingest checks passed")


if __name__ == "__main__":
    main()
