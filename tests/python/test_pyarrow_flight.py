"""pyarrow's Flight client, a third-party client, against a real gateway: it lists, gets
schemas, reads and writes with plain Flight calls, and a client killed mid-upload changes
nothing."""

import sqlite3
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest


def client(gw):
    return flight.FlightClient(gw["url"])


def rows(gw, table):
    con = sqlite3.connect(gw["dir"] / "data" / "mover.db")
    try:
        return con.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()


PEOPLE = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("name", pa.string()),
    pa.field("score", pa.float64()),
])


def people(n, start=0):
    return pa.table({
        "id": pa.array(range(start, start + n), pa.int64()),
        "name": pa.array([f"person {i}" for i in range(start, start + n)], pa.string()),
        "score": pa.array([i / 4 for i in range(n)], pa.float64()),
    }, schema=PEOPLE)


def put(c, path, table):
    writer, reader = c.do_put(flight.FlightDescriptor.for_path(*path), table.schema)
    writer.write_table(table, max_chunksize=1000)
    writer.done_writing()
    last = None
    while True:
        try:
            last = reader.read()
        except StopIteration:
            break
        if last is None:
            break
    writer.close()
    return last


def test_list_schema_get_put(gateway):
    (gateway["dir"] / "data" / "orders.csv").write_text("id,item\n1,apple\n2,Zoë\n")
    c = client(gateway)

    put(c, ["demo", "main", "people"], people(2500))

    listed = {"/".join(p.decode() if isinstance(p, bytes) else p for p in f.descriptor.path): f for f in c.list_flights()}
    assert set(listed) == {"demo/main/people", "files/orders.csv"}
    assert listed["demo/main/people"].total_records == 2500
    only = list(c.list_flights(b"files/"))
    assert len(only) == 1

    info = c.get_flight_info(flight.FlightDescriptor.for_path("demo", "main", "people"))
    assert info.total_records == 2500
    assert info.schema.field("id").type == pa.int64()
    assert not info.schema.field("id").nullable

    schema = c.get_schema(flight.FlightDescriptor.for_path("files", "orders.csv")).schema
    assert schema.names == ["id", "item"]

    got = c.do_get(info.endpoints[0].ticket).read_all()
    assert got.num_rows == 2500
    assert got.column("id").to_pylist() == list(range(2500))
    assert got.column("name")[2499].as_py() == "person 2499"

    csv = c.do_get(c.get_flight_info(flight.FlightDescriptor.for_path("files", "orders.csv")).endpoints[0].ticket).read_all()
    assert csv.column("item").to_pylist() == ["apple", "Zoë"]

    # A Parquet file written by pyarrow's DoPut reads back identically.
    t = people(10)
    put(c, ["files", "out", "p.parquet"], t)
    back = c.do_get(c.get_flight_info(flight.FlightDescriptor.for_path("files", "out", "p.parquet")).endpoints[0].ticket).read_all()
    assert back.equals(t)

    actions = [a.type for a in c.list_actions()]
    assert sorted(actions) == [
        "CancelFlightInfo", "ClosePreparedStatement", "CloseSession", "CreatePreparedStatement",
        "GetSessionOptions", "RenewFlightEndpoint", "SetSessionOptions", "abort_write",
        "begin_write", "cancel_move", "commit_write", "list_moves", "move", "sniff",
    ]


def test_errors_have_meaningful_codes(gateway):
    c = client(gateway)
    # NOT_FOUND and INVALID_ARGUMENT arrive as pyarrow's own KeyError and Invalid.
    with pytest.raises(pa.ArrowKeyError) as e:
        c.get_flight_info(flight.FlightDescriptor.for_path("nowhere", "t"))
    assert '"nowhere"' in str(e.value)
    with pytest.raises(pa.ArrowInvalid) as e:
        c.get_flight_info(flight.FlightDescriptor.for_command(b"\xff\x01"))
    assert "mover.v1.Command" in str(e.value)

    put(c, ["demo", "main", "t"], people(3))
    with pytest.raises(pa.ArrowException) as e:
        put(c, ["demo", "main", "t"], people(3))
    assert "already exists" in str(e.value)
    assert len(rows(gateway, "t")) == 3


KILLED_CLIENT = textwrap.dedent("""
    import sys, time
    import pyarrow as pa, pyarrow.flight as flight
    c = flight.FlightClient(sys.argv[1])
    t = pa.table({"id": pa.array(range(50000), pa.int64()), "name": pa.array(["x"] * 50000)})
    parts = sys.argv[2].split("/")
    if sys.argv[3] == "append":
        # A mover.v1 Command{write: Write{path, existing_table: APPEND}}, encoded by hand: an
        # existing table takes the rows (a plain path would refuse it before any data).
        ld = lambda tag, b: bytes([tag, len(b)]) + b
        path = b"".join(ld(0x0A, p.encode()) for p in parts)
        descriptor = flight.FlightDescriptor.for_command(ld(0x12, ld(0x0A, path) + b"\x10\x02"))
    else:
        descriptor = flight.FlightDescriptor.for_path(*parts)
    writer, reader = c.do_put(descriptor, t.schema)
    writer.write_table(t, max_chunksize=5000)
    print("sent", flush=True)
    time.sleep(60)
""")


def test_a_killed_client_mid_put_changes_nothing(gateway):
    c = client(gateway)
    put(c, ["demo", "main", "keep"], people(5))
    before = rows(gateway, "keep")
    for target, mode in [("demo/main/keep", "append"), ("demo/main/fresh", "create"), ("files/out.parquet", "create")]:
        proc = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, gateway["url"], target, mode], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "sent"
        time.sleep(0.5)
        proc.kill()
        proc.wait()
        time.sleep(0.7)
        assert rows(gateway, "keep") == before, target
        assert rows(gateway, "fresh") is None, target
        assert not (gateway["dir"] / "data" / "out.parquet").exists()
        assert not [p for p in (gateway["dir"] / "data").rglob("*#*")]
    # The gateway still serves.
    assert c.get_flight_info(flight.FlightDescriptor.for_path("demo", "main", "keep")).total_records == 5
