"""The ``mover`` data source: ``spark.read.format("mover").load("db/schema/table")`` reads
through a gateway, one Spark partition per Flight endpoint; ``df.write.format("mover")`` writes
through it from every task as one write in parts, committed once by the driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.types import StructType

from . import types, wire
from .gateway import Gateway


def _name(options) -> str:
    name = options.get("path")
    if not name:
        raise ValueError("name a dataset: .load(\"db/schema/table\") or .save(\"bucket/prefix/\")")
    return name


def _int(options, key: str, default: int) -> int:
    value = options.get(key)
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"option {key!r} must be a whole number, not {value!r}") from None
    if n < 0:
        raise ValueError(f"option {key!r} must not be negative")
    return n


class MoverDataSource(DataSource):
    """Options: ``gateway`` (``grpc+tls://host:port``), ``tls_root_certs``, ``cert``, ``key``
    (files or PEM text) or ``token``; reads: ``partitions`` (endpoints asked for, default 1),
    ``columns`` (comma-separated); writes: ``existing_table`` (default: ``append`` for mode
    append, ``drop-and-recreate`` for mode overwrite), ``must_exist``, ``ttl_seconds``."""

    @classmethod
    def name(cls) -> str:
        return "mover"

    def _read(self) -> bytes:
        columns = [c.strip() for c in self.options.get("columns", "").split(",") if c.strip()]
        return wire.read(_name(self.options), _int(self.options, "partitions", 1), columns)

    def schema(self) -> StructType:
        gateway = Gateway(self.options)
        try:
            return types.spark_schema(gateway.schema(self._read()))
        finally:
            gateway.close()

    def reader(self, schema: StructType) -> DataSourceReader:
        return MoverReader(dict(self.options), self._read(), schema)

    def writer(self, schema: StructType, overwrite: bool) -> DataSourceArrowWriter:
        return MoverWriter(dict(self.options), schema, overwrite)


@dataclass
class Endpoint(InputPartition):
    """One Flight endpoint: its ticket, and where to redeem it (empty: the gateway asked)."""

    value: int
    ticket: bytes
    locations: list


class MoverReader(DataSourceReader):
    def __init__(self, options: dict, read: bytes, schema: StructType):
        self.options = options
        self.read_body = read
        self.target = types.arrow_schema(schema)

    def partitions(self) -> list[Endpoint]:
        gateway = Gateway(self.options)
        try:
            info = gateway.info(self.read_body)
        finally:
            gateway.close()
        return [
            Endpoint(i, e.ticket.ticket, [loc.uri.decode() for loc in e.locations])
            for i, e in enumerate(info.endpoints)
        ]

    def read(self, partition: Endpoint) -> Iterator[pa.RecordBatch]:
        # The endpoint's own location when it names one (mover:// and arrow-flight-reuse-
        # connection:// mean the gateway asked).
        here = [u for u in partition.locations if u.startswith("grpc")]
        gateway = Gateway(self.options, here[0] if here else None)
        try:
            stream = gateway.read(partition.ticket)
            for chunk in stream:
                if chunk.data.num_rows:
                    yield types.fit(chunk.data, self.target)
        finally:
            gateway.close()


@dataclass
class Staged(WriterCommitMessage):
    """What a task tells the driver: which attempt of which partition it staged, and how many
    rows."""

    partition: int
    attempt: int
    rows: int


class MoverWriter(DataSourceArrowWriter):
    """Made on the driver, which begins the write; pickled to each task, which sends its
    rows as one part; the driver then commits exactly the parts of the tasks that succeeded."""

    def __init__(self, options: dict, schema: StructType, overwrite: bool):
        self.options = options
        self.schema = types.arrow_schema(schema)
        existing = options.get("existing_table") or (
            "drop-and-recreate" if overwrite else "append"
        )
        must_exist = options.get("must_exist", "false").lower() == "true"
        write = wire.write(_name(options), existing, must_exist)
        gateway = Gateway(options)
        try:
            self.write_id, self.expires_at = gateway.begin_write(
                write, _int(options, "ttl_seconds", 0)
            )
        finally:
            gateway.close()

    def write(self, iterator: Iterator[pa.RecordBatch]) -> Staged:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition, attempt = context.partitionId(), context.attemptNumber()
        gateway = Gateway(self.options)
        try:
            batches = (types.fit(b, self.schema) for b in iterator)
            done = gateway.write_part(self.write_id, partition, attempt, self.schema, batches)
        finally:
            gateway.close()
        return Staged(partition, attempt, done["rows_staged"])

    def commit(self, messages: list[Staged]) -> None:
        parts = sorted((m.partition, m.attempt) for m in messages if m is not None)
        gateway = Gateway(self.options)
        try:
            gateway.commit_write(self.write_id, parts)
        finally:
            gateway.close()

    def abort(self, messages: list[Staged]) -> None:
        gateway = Gateway(self.options)
        try:
            gateway.abort_write(self.write_id)
        finally:
            gateway.close()
