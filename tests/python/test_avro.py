"""Avro object container files both ways with fastavro (Python's Avro library):
a file fastavro writes, with every logical type Records Mover's schemas map to, is read by the
gateway value for value; a file the gateway writes is read by fastavro, types and values."""

import datetime
import decimal
import json
import sqlite3
import subprocess

import fastavro
import pytest

from conftest import _bin, start_gateway

SCHEMA = {
    "type": "record",
    "name": "orders",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": ["null", "string"]},
        {"name": "qty", "type": ["null", "int"]},
        {"name": "price", "type": "double"},
        {"name": "ok", "type": "boolean"},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    ],
}

UTC = datetime.timezone.utc
ROWS = [
    {"id": 1, "name": "comma, here", "qty": 3, "price": 1.5, "ok": True, "day": datetime.date(2026, 1, 2),
     "at": datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "amount": decimal.Decimal("12345678.90")},
    {"id": 2, "name": None, "qty": None, "price": -0.125, "ok": False, "day": datetime.date(1999, 12, 31),
     "at": datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), "amount": decimal.Decimal("-0.01")},
    {"id": 3, "name": "Zoë ✓ \"quote\"\nnew line", "qty": -2147483648, "price": 1e300, "ok": True,
     "day": datetime.date(1, 1, 1), "at": datetime.datetime(1970, 1, 1, tzinfo=UTC), "amount": decimal.Decimal("0.00")},
]


def mvrec(gw, *args):
    done = subprocess.run([_bin("mvrec"), "--gateway", gw["url"], *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_the_gateway_reads_what_fastavro_writes(tmp_path, codec):
    with start_gateway(tmp_path) as gw:
        data = gw["dir"] / "data"
        with open(data / "fa.avro", "wb") as out:
            fastavro.writer(out, fastavro.parse_schema(SCHEMA), ROWS, codec=codec)
        schema = json.loads(mvrec(gw, "schema", "files/fa.avro", "--json"))
        # The gateway writes Avro back out, and fastavro reads what it wrote: the same rows.
        mvrec(gw, "cp", "files/fa.avro", "files/back.avro")
        with open(data / "back.avro", "rb") as f:
            back = list(fastavro.reader(f))
        mvrec(gw, "cp", "files/fa.avro", "demo/main/fa")
        with sqlite3.connect(data / "mover.db") as db:
            table = db.execute("SELECT id, name, qty, price, ok, day, at, amount FROM fa ORDER BY id").fetchall()
    types = {f["name"]: f["type"] for f in schema}
    assert types == {
        "id": "Int64", "name": "Utf8", "qty": "Int32", "price": "Float64", "ok": "Boolean",
        "day": "Date32", "at": 'Timestamp(µs, "+00:00")', "amount": "Decimal128(10, 2)",
    }, schema
    assert back == ROWS
    assert [r[0] for r in table] == [1, 2, 3]
    assert [r[1] for r in table] == [r["name"] for r in ROWS]
    assert [r[2] for r in table] == [r["qty"] for r in ROWS]
    assert [r[3] for r in table] == [r["price"] for r in ROWS]
    assert [r[5] for r in table] == [r["day"].isoformat() for r in ROWS]
    assert [r[7] for r in table] == [str(r["amount"]) for r in ROWS]


def test_fastavro_reads_what_the_gateway_writes(tmp_path):
    with start_gateway(tmp_path) as gw:
        data = gw["dir"] / "data"
        with sqlite3.connect(data / "mover.db") as db:
            db.execute("CREATE TABLE src (id INTEGER NOT NULL, name TEXT, price REAL, ok BOOLEAN, day DATE, at TIMESTAMP)")
            db.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?, ?)", [
                (1, "a, b", 1.5, True, "2026-01-02", "2026-01-02 03:04:05.5"),
                (2, None, None, False, None, None),
            ])
        mvrec(gw, "cp", "demo/main/src", "files/ours.avro")
        with open(data / "ours.avro", "rb") as f:
            reader = fastavro.reader(f)
            schema = reader.writer_schema
            rows = list(reader)
        # Unreadable-to-Avro names and types are refused by column, the target left unmade.
        bad = subprocess.run([_bin("mvrec"), "--gateway", gw["url"], "cp", "files/ours.avro", "files/x.avro.gz"],
                             capture_output=True, text=True)
        assert bad.returncode != 0 and "Avro compresses its own blocks" in bad.stderr, bad.stderr
        assert not (data / "x.avro.gz").exists()
    fields = {f["name"]: f["type"] for f in schema["fields"]}
    assert fields["id"] == "long"
    assert fields["day"] == ["null", {"type": "int", "logicalType": "date"}] or fields["day"] == [{"type": "int", "logicalType": "date"}, "null"], fields
    assert rows[0]["id"] == 1 and rows[0]["name"] == "a, b" and rows[0]["price"] == 1.5 and rows[0]["ok"] is True
    assert rows[0]["day"] == datetime.date(2026, 1, 2)
    assert rows[0]["at"].replace(tzinfo=None) == datetime.datetime(2026, 1, 2, 3, 4, 5, 500000)
    assert rows[1] == {"id": 2, "name": None, "price": None, "ok": False, "day": None, "at": None}
