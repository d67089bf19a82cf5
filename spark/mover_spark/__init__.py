"""Apache Spark reads and writes through a Records Mover gateway.

    from mover_spark import register
    register(spark)
    df = spark.read.format("mover").option("gateway", "grpc+tls://gw:50051").load("db/public/t")
"""

from .source import MoverDataSource

__all__ = ["MoverDataSource", "register"]


def register(spark) -> None:
    """Make ``format("mover")`` known to ``spark``."""
    spark.dataSource.register(MoverDataSource)
