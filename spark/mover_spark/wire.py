"""The few ``mover.v1`` messages Spark needs, in protobuf's wire format.

Written here rather than generated: the package needs eight small messages, and generated code
would tie it to a protobuf runtime and a protoc at build time. Field numbers are those of
``proto/proto/mover.proto``; ``tests/python/clients/spark_checks.py`` drives every message
through a real gateway.
"""

from __future__ import annotations

import struct


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def uint(field: int, n: int) -> bytes:
    """A varint field (integers, bools, enums); zero is left out, as proto3 does."""
    return _key(field, 0) + _varint(n) if n else b""


def message(field: int, body: bytes) -> bytes:
    """A length-delimited field: a string, bytes or an embedded message."""
    return _key(field, 2) + _varint(len(body)) + body


def string(field: int, text: str) -> bytes:
    return message(field, text.encode()) if text else b""


def fields(data: bytes) -> list[tuple[int, object]]:
    """Every (field, value) of a message: ints for varints, bytes for length-delimited,
    floats for doubles."""
    out, i = [], 0
    while i < len(data):
        key, i = _read_varint(data, i)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, i = _read_varint(data, i)
        elif wire_type == 1:
            (value,) = struct.unpack_from("<d", data, i)
            i += 8
        elif wire_type == 2:
            n, i = _read_varint(data, i)
            value, i = data[i : i + n], i + n
        elif wire_type == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type}")
        out.append((field, value))
    return out


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = data[i]
        i += 1
        n |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return n, i
        shift += 7


# mover.v1.ExistingTable
EXISTING = {
    "fail": 1,
    "append": 2,
    "truncate-and-overwrite": 3,
    "delete-and-overwrite": 4,
    "drop-and-recreate": 5,
}


def path_parts(name: str) -> list[str]:
    """A dataset name as the gateway takes it: ``lake/exports/t/`` (a prefix keeps its slash
    on its last part) -> ``["lake", "exports", "t/"]``."""
    parts = [p for p in name.strip("/").split("/") if p]
    if not parts:
        raise ValueError(f"{name!r} names no dataset")
    if name.endswith("/"):
        parts[-1] += "/"
    return parts


def read(name: str, partitions: int = 0, columns: list[str] | None = None) -> bytes:
    path = b"".join(string(1, p) for p in path_parts(name))
    body = message(1, path)
    body += b"".join(string(5, c) for c in columns or [])
    body += uint(7, partitions)
    return body


def write(name: str, existing: str, must_exist: bool = False) -> bytes:
    if existing not in EXISTING:
        raise ValueError(f"existing_table {existing!r}: expected one of {', '.join(EXISTING)}")
    path = b"".join(string(1, p) for p in path_parts(name))
    return message(1, path) + uint(2, EXISTING[existing]) + uint(5, must_exist)


def command_read(read_body: bytes) -> bytes:
    return message(1, read_body)


def command_part(write_id: str, partition: int, attempt: int) -> bytes:
    part = string(1, write_id) + uint(2, partition) + uint(3, attempt) + uint(4, True)
    return message(3, part)


def begin_write(write_body: bytes, ttl_seconds: int = 0) -> bytes:
    return message(1, write_body) + uint(2, ttl_seconds)


def commit_write(write_id: str, parts: list[tuple[int, int]]) -> bytes:
    body = string(1, write_id)
    for partition, attempt in parts:
        body += message(2, uint(1, partition) + uint(2, attempt))
    return body


def abort_write(write_id: str) -> bytes:
    return string(1, write_id)


def write_session(data: bytes) -> tuple[str, int]:
    """A WriteSession: (write_id, expires_at)."""
    got = dict(fields(data))
    return got.get(1, b"").decode(), int(got.get(2, 0))


def progress(data: bytes) -> dict:
    """A Progress, as a dict of the fields Spark reports."""
    names = {1: "rows_read", 2: "bytes_read", 3: "rows_committed", 5: "done", 7: "rows_staged"}
    out = {v: 0 for v in names.values()}
    out["notes"] = []
    for field, value in fields(data):
        if field in names:
            out[names[field]] = value
        elif field == 6:
            out["notes"].append(value.decode())
    return out


# The app_metadata of the message that ends an upload with an end marker.
END_OF_UPLOAD = b"mover.v1.end"
