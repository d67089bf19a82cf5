"""Talking to a gateway from the driver and from each executor: a Flight client built from the
data source's options, and the calls the reader and writer make."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.flight as flight

from . import wire

# Options that name a file, or hold PEM text itself.
_PEM_OPTIONS = ("tls_root_certs", "cert", "key")


def _pem(value: str | None) -> bytes | None:
    if not value:
        return None
    if "-----BEGIN" in value:
        return value.encode()
    return Path(value).read_bytes()


class Gateway:
    """A Flight client for ``options`` (``gateway``, and for TLS ``tls_root_certs``, ``cert``
    and ``key`` as files or PEM text; or ``token`` for a bearer token)."""

    def __init__(self, options: dict, location: str | None = None):
        url = location or options.get("gateway")
        if not url:
            raise ValueError('option "gateway" is missing: grpc+tls://host:port or grpc://host:port')
        kwargs = {}
        roots = _pem(options.get("tls_root_certs"))
        if roots:
            kwargs["tls_root_certs"] = roots
        cert, key = _pem(options.get("cert")), _pem(options.get("key"))
        if bool(cert) != bool(key):
            raise ValueError('options "cert" and "key" go together')
        if cert:
            kwargs["cert_chain"], kwargs["private_key"] = cert, key
        self.client = flight.FlightClient(url, **kwargs)
        headers = []
        if options.get("token"):
            headers.append((b"authorization", f"Bearer {options['token']}".encode()))
        self.call = flight.FlightCallOptions(headers=headers)

    def close(self):
        self.client.close()

    def info(self, read: bytes) -> flight.FlightInfo:
        descriptor = flight.FlightDescriptor.for_command(wire.command_read(read))
        return self.client.get_flight_info(descriptor, self.call)

    def schema(self, read: bytes):
        descriptor = flight.FlightDescriptor.for_command(wire.command_read(read))
        return self.client.get_schema(descriptor, self.call).schema

    def read(self, ticket: bytes):
        return self.client.do_get(flight.Ticket(ticket), self.call)

    def action(self, kind: str, body: bytes) -> list[bytes]:
        results = self.client.do_action(flight.Action(kind, body), self.call)
        return [r.body.to_pybytes() for r in results]

    def begin_write(self, write: bytes, ttl_seconds: int = 0) -> tuple[str, int]:
        (answer,) = self.action("begin_write", wire.begin_write(write, ttl_seconds))
        return wire.write_session(answer)

    def commit_write(self, write_id: str, parts: list[tuple[int, int]]) -> dict:
        body = wire.commit_write(write_id, parts)
        # A commit the gateway is still running answers UNAVAILABLE: it is asked again, and a
        # commit asked again answers what the first one did.
        for delay in (0.5, 1, 2, 4, 8, 16, 32):
            try:
                (answer,) = self.action("commit_write", body)
                return wire.progress(answer)
            except flight.FlightUnavailableError:
                time.sleep(delay)
        (answer,) = self.action("commit_write", body)
        return wire.progress(answer)

    def abort_write(self, write_id: str) -> None:
        self.action("abort_write", wire.abort_write(write_id))

    def write_part(self, write_id: str, partition: int, attempt: int, schema, batches) -> dict:
        """Send one part; the gateway's final Progress (``rows_staged``)."""
        descriptor = flight.FlightDescriptor.for_command(
            wire.command_part(write_id, partition, attempt)
        )
        writer, reader = self.client.do_put(descriptor, schema, self.call)
        last = None
        try:
            for batch in batches:
                writer.write_batch(batch)
            # The end marker: a part whose stream stops short (this task failed) is not staged.
            writer.write_metadata(wire.END_OF_UPLOAD)
            writer.done_writing()
            while True:
                buf = reader.read()
                if buf is None:
                    break
                last = wire.progress(buf.to_pybytes())
        finally:
            writer.close()
        if last is None or not last["done"]:
            raise RuntimeError(f"the gateway ended part {partition} without a final report")
        return last
