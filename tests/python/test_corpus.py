"""The corpus of bad inputs (tests/corpus/cases.toml) through a real gateway: each gives its
status code (never INTERNAL or UNKNOWN), names its input, leaves the target as it was, and the
gateway goes on serving. Files go through pyarrow's Flight client and through `mvrec cp`
into a file and into a table; Flight requests go raw through pyarrow; config files through
`gateway --config F check`."""

import pathlib
import re
import shutil
import sqlite3
import subprocess
import tomllib

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import _bin, start_gateway

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "corpus"
CASES = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]

# How pyarrow and mvrec each say a status code.
SAID = {
    "INVALID_ARGUMENT": ("invalid argument", "invalid"),
    "NOT_FOUND": ("not found", "not found"),
    "UNIMPLEMENTED": ("unimplemented", "not supported"),
    "UNAUTHENTICATED": ("unauthenticated", "unauthenticated"),
    "OUT_OF_RANGE": ("out-of-range", "gateway error"),
    "ALREADY_EXISTS": ("already exists", "already exists"),
}


def case_id(case):
    for key in ("file", "config", "action", "any", "command", "ticket", "flip"):
        if key in case:
            return f"{key}:{case[key]}" + (f" {case['args']}" if "args" in case else "")
    if "path" in case:
        return "path:" + "/".join(case["path"])
    return next(f"{k}:{v}" for k, v in case.items() if k not in ("code", "says"))


def raw(case, key):
    value = case[key]
    return bytes.fromhex(value) if case.get("hex") else value.encode()


def length_delimited(tag, b):
    n, out = len(b), bytearray([tag])
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + b


def packed(case, key):
    """The case's bytes, inside a protobuf Any of its `any` type when it names one."""
    value = raw(case, key)
    if "any" not in case:
        return value
    url = f"type.googleapis.com/{case['any']}".encode()
    return length_delimited(0x0A, url) + length_delimited(0x12, value)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    shutil.copytree(CORPUS / "files", d / "data")
    with start_gateway(d) as g:
        yield g


def status_of(error):
    """The status pyarrow reports: "Flight returned invalid argument error, with message: ..."."""
    said = str(error)
    m = re.search(r"(?:Flight|gRPC) returned (.+?) error, with message: (.*)", said, re.S)
    assert m, f"not a Flight status: {said}"
    return m.group(1), m.group(2).split(". gRPC client debug context")[0]


def expect_status(case, call):
    with pytest.raises((flight.FlightError, pa.ArrowException)) as e:
        call()
    code, message = status_of(e.value)
    assert code not in ("internal", "unknown"), f"{case_id(case)}: {code}: {message}"
    assert code == SAID[case["code"]][0], f"{case_id(case)}: {code}: {message}"
    for s in case["says"]:
        assert s in message, f"{case_id(case)}: {message!r} does not say {s!r}"


def still_serving(gw):
    c = flight.FlightClient(gw["url"])
    info = c.get_flight_info(flight.FlightDescriptor.for_path("files", "good.csv"))
    assert c.do_get(info.endpoints[0].ticket).read_all().num_rows == 2


def tables(gw):
    db = gw["dir"] / "data" / "mover.db"
    if not db.exists():
        return set()
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def mvrec(gw, *args):
    return subprocess.run(
        [_bin("mvrec"), "--gateway", gw["url"], *args], capture_output=True, text=True, timeout=120
    )


def test_the_corpus_is_at_least_sixty_distinct_inputs():
    ids = [case_id(c) for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids), ids
    for c in CASES:
        assert c.get("code", "config") != "INTERNAL" and c["says"], case_id(c)


@pytest.mark.parametrize("case", [c for c in CASES if "file" in c], ids=case_id)
def test_a_bad_file_is_refused_by_name_and_changes_nothing(gw, case):
    name = re.sub(r"\W", "_", case["file"]).strip("_")
    args = case.get("args", [])
    c = flight.FlightClient(gw["url"])
    if not args:
        # Raw Flight: the error may come with the FlightInfo or with the rows.
        def read():
            info = c.get_flight_info(flight.FlightDescriptor.for_path("files", case["file"]))
            c.do_get(info.endpoints[0].ticket).read_all()

        expect_status(case, read)
    before = tables(gw)
    for target in (f"files/out/{name}.parquet", f"demo/main/{name}"):
        done = mvrec(gw, "cp", f"files/{case['file']}", target, *args)
        assert done.returncode == 1, f"{case_id(case)} -> {target}: {done.stdout}"
        said = done.stderr.strip()
        assert said.startswith(f"mvrec: {SAID[case['code']][1]}: "), f"{case_id(case)}: {said}"
        for s in case["says"]:
            assert s in said, f"{case_id(case)} -> {target}: {said!r} does not say {s!r}"
    assert not (gw["dir"] / "data" / "out" / f"{name}.parquet").exists()
    assert not [p for p in (gw["dir"] / "data").rglob("*") if "_staging" in p.name or "#" in p.name]
    assert tables(gw) == before
    still_serving(gw)


@pytest.mark.parametrize("case", [c for c in CASES if "file" not in c and "config" not in c], ids=case_id)
def test_a_bad_request_gets_its_status_and_the_gateway_serves_on(gw, case):
    c = flight.FlightClient(gw["url"])
    if "path" in case:
        call = lambda: c.get_flight_info(flight.FlightDescriptor.for_path(*case["path"]))
    elif "long_path" in case:
        part = "x" * case["long_path"] + "/.csv"
        call = lambda: c.get_flight_info(flight.FlightDescriptor.for_path("files", part))
    elif "oversize" in case:
        body = b"\x00" * (case["oversize"] << 20)
        call = lambda: c.get_flight_info(flight.FlightDescriptor.for_command(body))
    elif "action" in case:
        body = raw(case, "body") if "body" in case else b""
        call = lambda: list(c.do_action(flight.Action(case["action"], body)))
    elif "flip" in case:
        info = c.get_flight_info(flight.FlightDescriptor.for_path("files", case["flip"]))
        ticket = bytearray(info.endpoints[0].ticket.ticket)
        ticket[-3] ^= 1
        call = lambda: c.do_get(flight.Ticket(bytes(ticket))).read_all()
    elif "ticket" in case:
        call = lambda: c.do_get(flight.Ticket(packed(case, "ticket"))).read_all()
    else:
        call = lambda: c.get_flight_info(flight.FlightDescriptor.for_command(packed(case, "command")))
    expect_status(case, call)
    still_serving(gw)


@pytest.mark.parametrize("case", [c for c in CASES if "config" in c], ids=case_id)
def test_a_bad_config_fails_the_check_naming_what_is_wrong(tmp_path, case):
    config = tmp_path / case["config"]
    for f in (CORPUS / "configs").iterdir():
        shutil.copy(f, tmp_path / f.name)
    done = subprocess.run(
        [_bin("gateway"), "--config", str(config), "check"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1, f"{case['config']}: {said}"
    for s in case["says"]:
        assert s in said, f"{case['config']}: {said!r} does not say {s!r}"
    assert "panicked" not in said
