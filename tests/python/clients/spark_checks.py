"""Apache Spark (pyspark, local mode, Debian's OpenJDK) reading and writing through a real
gateway with mover_spark, run by tests/spark.rs. Each check prints one JSON line of what it
measured for the Rust side to compare with the databases' and the bucket's own answers, and
asserts what only Spark can see (partitions, a failed job).

    spark_checks.py CHECK SPEC_JSON
"""

import json
import os
import sys
import threading
import time

# Spark's Python workers run this interpreter, where mover_spark and pyarrow are installed.
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--driver-memory 1g pyspark-shell")

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mover_spark import register, wire
from mover_spark.gateway import Gateway

check, spec = sys.argv[1], json.loads(sys.argv[2])
options = spec["options"]


def spark(master="local[2]"):
    session = (
        SparkSession.builder.master(master)
        .appName(f"mover-{check}")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    register(session)
    return session


def reader(session, name, partitions=1):
    r = session.read.format("mover").option("partitions", partitions)
    for k, v in options.items():
        r = r.option(k, v)
    return r.load(name)


def writer(df, mode, **extra):
    w = df.write.format("mover").mode(mode)
    for k, v in {**options, **extra}.items():
        w = w.option(k, v)
    return w


def sums(df):
    """Row count and a sum per column, as the Rust side computes them in SQL."""
    row = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum("id").alias("id"),
        F.sum("qty").alias("qty"),
        F.sum("price").alias("price"),
        F.sum(F.unix_timestamp("ts")).alias("ts"),
        F.sum(F.datediff("day", F.lit("1970-01-01"))).alias("day"),
        F.sum(F.length("name")).alias("name"),
    ).collect()[0]
    return {k: str(row[k]) for k in row.asDict()}


def emit(**what):
    print(json.dumps(what), flush=True)


def roundtrip():
    s = spark()
    # Postgres, split into block ranges: one Spark partition per endpoint.
    df = reader(s, spec["table"], 8)
    assert df.rdd.getNumPartitions() == 8, df.rdd.getNumPartitions()
    emit(what="pg", **sums(df))
    # The 10-file prefix: one endpoint per file.
    files = reader(s, spec["prefix"], 10)
    assert files.rdd.getNumPartitions() == 10, files.rdd.getNumPartitions()
    emit(what="prefix", **sums(files))
    # Written back from every task, committed once.
    writer(df, "append").save(spec["append_to"])
    writer(df.repartition(6), "overwrite").save(spec["overwrite_to"])
    emit(what="appended", **sums(reader(s, spec["append_to"], 1)))
    emit(what="overwritten", **sums(reader(s, spec["overwrite_to"], 6)))
    s.stop()
    print("spark roundtrip passed")


def tickets():
    """A ticket redeemed twice gives the same rows; endpoints say when they expire; a renewed
    endpoint outlives the old one, which is refused once expired (a gateway whose tickets live
    four seconds)."""
    gw = Gateway(options)
    info = gw.info(wire.read(spec["table"], 4))
    assert len(info.endpoints) >= 2, len(info.endpoints)
    first = info.endpoints[1]
    once = gw.read(first.ticket.ticket).read_all()
    again = gw.read(first.ticket.ticket).read_all()
    assert once.num_rows > 0 and once.equals(again), (once.num_rows, again.num_rows)
    assert first.expiration_time.as_py().timestamp() > time.time()
    gw.close()

    short = Gateway({**options, "gateway": spec["short_gateway"]})
    info = short.info(wire.read(spec["table"], 1))
    (old,) = info.endpoints
    expires = old.expiration_time.as_py().timestamp()
    assert 0 < expires - time.time() <= 4, expires - time.time()
    time.sleep(2)
    (body,) = short.action("RenewFlightEndpoint", _renew_request(old))
    renewed = _endpoint(body)
    assert renewed["expires"] > expires, (renewed["expires"], expires)
    time.sleep(max(0, expires - time.time()) + 0.5)
    try:
        short.read(old.ticket.ticket).read_all()
        raise AssertionError("an expired ticket was redeemed")
    except flight.FlightError as e:
        assert "expired" in str(e), e
    rows = short.read(renewed["ticket"]).read_all()
    assert rows.num_rows == spec["rows"], (rows.num_rows, spec["rows"])
    short.close()
    print("spark tickets passed")


def _renew_request(endpoint):
    # RenewFlightEndpointRequest { endpoint = 1: FlightEndpoint { ticket = 1: Ticket { ticket = 1 } } }
    ticket = wire.message(1, endpoint.ticket.ticket)
    return wire.message(1, wire.message(1, ticket))


def _endpoint(body):
    got = dict(wire.fields(body))
    ticket = dict(wire.fields(got[1]))[1]
    expiration = dict(wire.fields(got.get(3, b"")))
    return {"ticket": ticket, "expires": expiration.get(1, 0)}


def failures():
    """A task that fails once and is retried; a job whose task always fails; an overwrite that
    a reader watches from another thread."""
    s = spark("local[2,2]")  # two attempts a task
    marker = os.path.join(spec["scratch"], "partition-1-attempt-0-failed")
    df = s.range(0, spec["rows"], numPartitions=4).select(
        F.col("id"), (F.col("id") % 7).cast("int").alias("qty")
    )

    @F.udf("long")
    def fail_first_attempt(i):
        from pyspark import TaskContext

        c = TaskContext.get()
        # The second partition fails half-way through its first attempt, after sending rows.
        if c.partitionId() == 1 and c.attemptNumber() == 0 and i % 1000 == 999 and i > 3 * spec["rows"] // 8:
            open(marker, "w").close()
            raise RuntimeError("the first attempt of partition 1 fails")
        return i

    @F.udf("long")
    def always_fail(i):
        from pyspark import TaskContext

        if TaskContext.get().partitionId() == 2 and i % 1000 == 999:
            raise RuntimeError("partition 2 always fails")
        return i

    retried = df.withColumn("id", fail_first_attempt("id"))
    writer(retried, "append").save(spec["retried"])
    assert os.path.exists(marker), "the first attempt of partition 1 did not fail"
    try:
        writer(df.withColumn("id", always_fail("id")), "overwrite", existing_table="truncate-and-overwrite").save(spec["kept"])
        raise AssertionError("a job whose task always fails succeeded")
    except Exception as e:  # noqa: BLE001: Spark wraps the task's error in its own
        assert "partition 2 always fails" in str(e), str(e)[:2000]

    # A reader polls the table while it is overwritten: it sees the old rows or the new.
    seen, stop = [], threading.Event()

    def watch():
        gw = Gateway(options)
        while not stop.is_set():
            started = time.monotonic()
            info = gw.info(wire.read(spec["watched"]))
            t = gw.read(info.endpoints[0].ticket.ticket).read_all()
            seen.append((started, t.num_rows, pc.sum(t.column("qty")).as_py()))
        gw.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    new = s.range(0, spec["rows"], numPartitions=4).select(F.col("id"), F.lit(2).alias("qty"))
    # DELETE, not TRUNCATE: Postgres's TRUNCATE is not MVCC-safe, and a reader whose snapshot
    # predates it sees the table empty (which this check found).
    writer(new, "overwrite", existing_table="delete-and-overwrite").save(spec["watched"])
    committed = time.monotonic()
    # Until a read that began after the commit has ended.
    deadline = committed + 60
    while not any(start > committed for start, _, _ in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    watcher.join()
    n = spec["rows"]
    results = [(rows, total) for _, rows, total in seen]
    assert set(results) <= {(n, n), (n, 2 * n)}, sorted(set(results))[:10]
    after = [(rows, total) for start, rows, total in seen if start > committed]
    assert after and set(after) == {(n, 2 * n)}, after[:5]
    emit(what="watched", reads=len(seen), old=results.count((n, n)), new=results.count((n, 2 * n)))
    s.stop()
    print("spark failures passed")


def driver():
    """A write whose driver is killed (by the Rust side) once some of its parts are staged:
    two partitions finish at once, two take minutes."""
    s = spark()

    @F.udf("long")
    def slow(i):
        from pyspark import TaskContext

        if TaskContext.get().partitionId() >= 2:
            time.sleep(0.05)
        return i

    df = s.range(0, 4000, numPartitions=4).select(slow("id").alias("id"), F.lit(1).alias("qty"))
    print("writing", flush=True)
    writer(df, "overwrite", existing_table="truncate-and-overwrite", ttl_seconds="20").save(spec["target"])
    raise AssertionError("the driver was meant to be killed before its write finished")


{"roundtrip": roundtrip, "tickets": tickets, "failures": failures, "driver": driver}[check]()
