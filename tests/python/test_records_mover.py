"""Records directories between this gateway and Records Mover 1.6.4 itself, both ways: a
directory Records Mover writes is read by the gateway, and one the gateway writes is read by
Records Mover, with the same values. Records Mover runs from its own virtualenv (.venv-rm,
made by scripts/test), since it needs pandas < 2."""

import json
import pathlib
import subprocess
import textwrap

import pytest

from conftest import _bin, start_gateway

ROOT = pathlib.Path(__file__).resolve().parents[2]
RM_PYTHON = ROOT / ".venv-rm" / "bin" / "python"

ROWS = [
    {"id": 1, "name": "comma, here", "price": 1.5, "ok": True, "day": "2026-01-02", "at": "2026-01-02 03:04:05"},
    {"id": 2, "name": None, "price": 2.25, "ok": False, "day": "1999-12-31", "at": "1999-12-31 23:59:59"},
    {"id": 3, "name": "tab\there, \"quote\" and \\ backslash\nnew line", "price": -0.125, "ok": True, "day": "2000-02-29", "at": "2000-02-29 12:00:00"},
]


def minutes(at):
    """A datetime as Records Mover's csv variant writes it: to the minute."""
    return at[:-2] + "00"


def records_mover(script, *args):
    if not RM_PYTHON.exists():
        pytest.fail(f"{RM_PYTHON} is missing: run scripts/test, which makes it from tests/python/requirements-records-mover.txt")
    done = subprocess.run([str(RM_PYTHON), "-c", textwrap.dedent(script), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


WRITE = """
    import json, sys
    import pandas as pd
    from records_mover import Session
    from records_mover.records import DelimitedRecordsFormat, ParquetRecordsFormat
    rows, variant, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    df = pd.DataFrame(rows)
    df["day"] = pd.to_datetime(df["day"]).dt.date
    df["at"] = pd.to_datetime(df["at"])
    df["at_utc"] = df["at"].dt.tz_localize("UTC")
    records = Session().records
    # Its own csv variant writes datetimes to the minute; the gateway reads that as written.
    fmt = ParquetRecordsFormat() if variant == "parquet" else DelimitedRecordsFormat(variant=variant)
    records.move(records.sources.dataframe(df=df),
                 records.targets.directory_from_url(output_url=f"file://{out}/", records_format=fmt))
"""

READ = """
    import json, sys
    from records_mover import Session
    from records_mover.records.processing_instructions import ProcessingInstructions
    records = Session().records
    source = records.sources.directory_from_url(f"file://{sys.argv[1]}/")
    pi = ProcessingInstructions()
    out = []
    with source.to_fileobjs_source(pi, None) as fos:
        with fos.to_dataframes_source(pi) as dfs:
            for df in dfs.dfs:
                for row in df.astype(object).where(df.notna(), None).itertuples(index=False):
                    out.append([None if v is None else str(v) for v in row])
    print(json.dumps(out))
"""


def mvrec(gw, *args):
    done = subprocess.run([_bin("mvrec"), "--gateway", gw["url"], *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def sqlite_rows(path, table):
    import sqlite3
    with sqlite3.connect(path) as db:
        return db.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()


@pytest.mark.parametrize("variant", ["bluelabs", "csv", "bigquery", "parquet"])
def test_the_gateway_reads_what_records_mover_writes(tmp_path, variant):
    with start_gateway(tmp_path) as gw:
        # Records Mover writes only into a directory that exists and is empty.
        (gw["dir"] / "data" / "rm").mkdir()
        records_mover(WRITE, json.dumps(ROWS), variant, str(gw["dir"] / "data" / "rm"))
        mvrec(gw, "cp", "files/rm/", "demo/main/t")
        got = sqlite_rows(gw["dir"] / "data" / "mover.db", "t")
        schema = mvrec(gw, "schema", "demo/main/t")
    assert [r[0] for r in got] == [1, 2, 3]
    assert [r[1] for r in got] == [r["name"] for r in ROWS]
    assert [r[2] for r in got] == [r["price"] for r in ROWS]
    assert [bool(r[3]) for r in got] == [r["ok"] for r in ROWS]
    # Dates and times arrive typed (SQLite keeps them as ISO text) with their values.
    types = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in schema.splitlines() if line.startswith("| ")}
    # Parquet keeps pandas' nanoseconds; the records schema says no unit, and reads as µs.
    unit = "ns" if variant == "parquet" else "µs"
    assert (types["day"], types["at"], types["at_utc"]) == ("Date32", f"Timestamp({unit})", f'Timestamp({unit}, "UTC")'), schema
    assert [r[4] for r in got] == [r["day"] for r in ROWS]
    at = [minutes(r["at"]) if variant == "csv" else r["at"] for r in ROWS]
    assert [r[5] for r in got] == at
    assert [r[6] for r in got] == [a + "+00:00" for a in at]


TYPED = """
    CREATE TABLE src (id INTEGER, name TEXT, price REAL, ok BOOLEAN, day DATE, at TIMESTAMP,
                      at_utc TIMESTAMPTZ)
"""


def typed_source(db):
    """The rows in a SQLite table whose declared types the gateway reads as Date32,
    Timestamp and Timestamp UTC."""
    import sqlite3
    with sqlite3.connect(db) as conn:
        conn.execute(TYPED)
        conn.executemany(
            "INSERT INTO src VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r["id"], r["name"], r["price"], r["ok"], r["day"], r["at"], r["at"] + "+00:00") for r in ROWS],
        )


@pytest.mark.parametrize("variant", ["bluelabs", "csv", "bigquery"])
def test_records_mover_reads_what_the_gateway_writes(tmp_path, variant):
    with start_gateway(tmp_path) as gw:
        data = gw["dir"] / "data"
        typed_source(data / "mover.db")
        # The csv variant's formats hold minutes only: ask for seconds.
        seconds = '{"datetimeformat": "YYYY-MM-DD HH24:MI:SS", "datetimeformattz": "YYYY-MM-DD HH:MI:SSOF"}'
        hints = seconds if variant == "csv" else "{}"
        mvrec(gw, "cp", "demo/main/src", "files/ours/", "--to-variant", variant, "--to-hints", hints)
        got = json.loads(records_mover(READ, str(data / "ours")))
    assert [int(r[0]) for r in got] == [1, 2, 3]
    assert [r[1] for r in got] == [r["name"] for r in ROWS]
    assert [float(r[2]) for r in got] == [r["price"] for r in ROWS]
    assert [r[3] for r in got] == [str(r["ok"]) for r in ROWS]
    # Records Mover parses the date and datetime columns by our _schema.json and hints.
    assert [r[4][:10] for r in got] == [r["day"] for r in ROWS]
    assert [r[5] for r in got] == [r["at"] for r in ROWS]
    # bigquery writes zoned times without an offset (meaning UTC), so pandas reads them naive.
    offset = "" if variant == "bigquery" else "+00:00"
    assert [r[6] for r in got] == [r["at"] + offset for r in ROWS]


READ_PARQUET = """
    import json, sys
    import pyarrow.parquet as pq
    from records_mover import Session
    records = Session().records
    source = records.sources.directory_from_url(f"file://{sys.argv[1]}/")
    directory = source.records_directory()
    fields = {f.name: f.field_type for f in directory.load_schema_json_obj().fields}
    rows = []
    for url in directory.manifest_entry_urls():
        path = url.replace("file://", "", 1)
        rows += [[None if v is None else str(v) for v in r.values()] for r in pq.read_table(path).to_pylist()]
    print(json.dumps({"format": source.records_format.format_type, "fields": fields, "rows": rows}))
"""


def test_records_mover_opens_a_parquet_directory_the_gateway_writes(tmp_path):
    with start_gateway(tmp_path) as gw:
        data = gw["dir"] / "data"
        typed_source(data / "mover.db")
        mvrec(gw, "cp", "demo/main/src", "files/ours/", "--to-records-type", "parquet")
        got = json.loads(records_mover(READ_PARQUET, str(data / "ours")))
    assert got["format"] == "parquet"
    assert got["fields"] == {
        "id": "integer", "name": "string", "price": "decimal", "ok": "boolean",
        "day": "date", "at": "datetime", "at_utc": "datetimetz",
    }
    rows = got["rows"]
    assert [r[1] for r in rows] == [r["name"] for r in ROWS]
    assert [r[4] for r in rows] == [r["day"] for r in ROWS]
    assert [r[5] for r in rows] == [r["at"] for r in ROWS]
    assert [r[6] for r in rows] == [r["at"] + "+00:00" for r in ROWS]


@pytest.mark.parametrize("to_format", ["parquet", "csv"])
def test_records_mover_reads_a_prefix_written_with_no_records_options(tmp_path, to_format):
    """A prefix is written as a records directory whatever the format, and appending to it keeps
    its manifest true. Records Mover reads a Parquet directory's files one by one, but joins a
    delimited directory's into one stream, taking a second part's header for a row: so it reads
    the delimited directory before the append (one part), and the gateway after it."""
    with start_gateway(tmp_path) as gw:
        data = gw["dir"] / "data"
        typed_source(data / "mover.db")
        fmt = [] if to_format == "parquet" else ["--to-format", "csv"]
        mvrec(gw, "cp", "demo/main/src", "files/plain/", *fmt)
        if to_format == "csv":
            rows = json.loads(records_mover(READ, str(data / "plain")))
        mvrec(gw, "cp", "demo/main/src", "files/plain/", *fmt, "--existing-table", "append")
        described = sorted(p.name for p in (data / "plain").iterdir() if p.name.startswith("_"))
        manifest = json.loads((data / "plain" / "_manifest").read_text())
        if to_format == "parquet":
            got = json.loads(records_mover(READ_PARQUET, str(data / "plain")))
            assert got["format"] == "parquet"
            assert got["fields"]["at_utc"] == "datetimetz"
            rows = got["rows"]
        # What the gateway reads back is every row of both writes.
        mvrec(gw, "cp", "files/plain/", "files/back.jsonl")
        back = [json.loads(line) for line in (data / "back.jsonl").read_text().splitlines()]
    assert described == ["_format_" + ("parquet" if to_format == "parquet" else "delimited"), "_manifest", "_schema.json"]
    parts = sorted(p.name for p in (data / "plain").iterdir() if not p.name.startswith("_"))
    assert [e["url"].rsplit("/", 1)[1] for e in manifest["entries"]] == parts
    assert len(parts) == 2
    writes = 2 if to_format == "parquet" else 1
    assert [int(r[0]) for r in rows] == [1, 2, 3] * writes, rows
    assert [r[1] for r in rows] == [r["name"] for r in ROWS] * writes
    assert [r[4][:10] for r in rows] == [r["day"] for r in ROWS] * writes
    assert [r[5] for r in rows] == [r["at"] for r in ROWS] * writes
    assert [r[6] for r in rows] == [r["at"] + "+00:00" for r in ROWS] * writes
    assert [r["id"] for r in back] == [1, 2, 3] * 2
    assert [r.get("name") for r in back] == [r["name"] for r in ROWS] * 2
    assert [r["at_utc"] for r in back] == [r["at"].replace(" ", "T") + "Z" for r in ROWS] * 2
