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
    from records_mover.records import DelimitedRecordsFormat
    rows, variant, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    df = pd.DataFrame(rows)
    df["day"] = pd.to_datetime(df["day"]).dt.date
    df["at"] = pd.to_datetime(df["at"])
    records = Session().records
    # Its own csv variant writes datetimes to the minute; the gateway reads that as written.
    records.move(records.sources.dataframe(df=df),
                 records.targets.directory_from_url(output_url=f"file://{out}/",
                     records_format=DelimitedRecordsFormat(variant=variant)))
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


@pytest.mark.parametrize("variant", ["bluelabs", "csv", "bigquery"])
def test_the_gateway_reads_what_records_mover_writes(tmp_path, variant):
    with start_gateway(tmp_path) as gw:
        # Records Mover writes only into a directory that exists and is empty.
        (gw["dir"] / "data" / "rm").mkdir()
        records_mover(WRITE, json.dumps(ROWS), variant, str(gw["dir"] / "data" / "rm"))
        mvrec(gw, "cp", "files/rm/", "demo/main/t")
        got = sqlite_rows(gw["dir"] / "data" / "mover.db", "t")
    assert [r[0] for r in got] == [1, 2, 3]
    assert [r[1] for r in got] == [r["name"] for r in ROWS]
    assert [r[2] for r in got] == [r["price"] for r in ROWS]
    assert [bool(r[3]) for r in got] == [r["ok"] for r in ROWS]


@pytest.mark.parametrize("variant", ["bluelabs", "csv", "bigquery"])
def test_records_mover_reads_what_the_gateway_writes(tmp_path, variant):
    with start_gateway(tmp_path) as gw:
        data = gw["dir"] / "data"
        (data / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
        hints = '{"datetimeformat": "YYYY-MM-DD HH24:MI:SS"}' if variant == "csv" else "{}"
        mvrec(gw, "cp", "files/in.jsonl", "files/ours/", "--to-variant", variant, "--to-hints", hints)
        got = json.loads(records_mover(READ, str(data / "ours")))
    assert [int(r[0]) for r in got] == [1, 2, 3]
    assert [r[1] for r in got] == [r["name"] for r in ROWS]
    assert [float(r[2]) for r in got] == [r["price"] for r in ROWS]
    assert [r[3] for r in got] == [str(r["ok"]) for r in ROWS]
