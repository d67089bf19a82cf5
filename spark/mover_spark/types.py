"""Arrow types as the gateway sends them, to Spark's, and the Arrow each column is cast to on
the way in. The table in README.md says the same in words; a type with no faithful Spark type
is refused by column, never narrowed silently."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T

# Spark's decimals hold at most 38 digits.
MAX_SPARK_DIGITS = 38


class UnsupportedType(ValueError):
    pass


def spark_type(t: pa.DataType, column: str) -> T.DataType:
    """The Spark type a column of Arrow type ``t`` is read as."""
    if pa.types.is_dictionary(t):
        return spark_type(t.value_type, column)
    if pa.types.is_null(t):
        return T.NullType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    signed = {8: T.ByteType(), 16: T.ShortType(), 32: T.IntegerType(), 64: T.LongType()}
    if pa.types.is_signed_integer(t):
        return signed[t.bit_width]
    if pa.types.is_unsigned_integer(t):
        # The next wider signed type holds every value; a uint64 needs 20 digits.
        wider = {8: T.ShortType(), 16: T.IntegerType(), 32: T.LongType()}
        return wider.get(t.bit_width, T.DecimalType(20, 0))
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return T.FloatType()
    if pa.types.is_float64(t):
        return T.DoubleType()
    if pa.types.is_decimal(t):
        if t.precision <= MAX_SPARK_DIGITS:
            return T.DecimalType(t.precision, t.scale)
        # Wider than Spark's decimals: its exact text.
        return T.StringType()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return T.StringType()
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        return T.BinaryType()
    if pa.types.is_date(t):
        return T.DateType()
    if pa.types.is_timestamp(t):
        return T.TimestampType() if t.tz else T.TimestampNTZType()
    if pa.types.is_time(t):
        # Spark has no time of day a DataFrame can carry everywhere: its text (HH:MM:SS.ffffff).
        return T.StringType()
    if pa.types.is_duration(t):
        return T.DayTimeIntervalType()
    if pa.types.is_interval(t):
        raise UnsupportedType(
            f"column {column!r}: an Arrow {t} interval has months and days that no Spark "
            "type a DataFrame reads from Arrow holds; cast it to text in a query"
        )
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return T.ArrayType(spark_type(t.value_type, column), True)
    if pa.types.is_struct(t):
        return T.StructType(
            [T.StructField(f.name, spark_type(f.type, f"{column}.{f.name}"), True) for f in t]
        )
    if pa.types.is_map(t):
        return T.MapType(spark_type(t.key_type, column), spark_type(t.item_type, column), True)
    raise UnsupportedType(f"column {column!r}: Arrow type {t} has no Spark type")


def spark_schema(schema: pa.Schema) -> T.StructType:
    return T.StructType(
        [T.StructField(f.name, spark_type(f.type, f.name), f.nullable) for f in schema]
    )


def arrow_schema(schema: T.StructType) -> pa.Schema:
    """The Arrow schema Spark reads ``schema`` from (and writes it as)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema, timezone="UTC")


def fit(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """``batch`` as ``target``'s types, column by column. Casts are safe: a value the target
    type cannot hold exactly (a nanosecond a microsecond timestamp drops) is an error naming
    the column, never a different value."""
    if batch.schema.equals(target):
        return batch
    columns = []
    for field, column in zip(target, batch.columns):
        if column.type.equals(field.type):
            columns.append(column)
            continue
        try:
            columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise UnsupportedType(
                f"column {field.name!r}: {column.type} cannot be read exactly as Spark's "
                f"{field.type}: {e}"
            ) from e
    return pa.RecordBatch.from_arrays(columns, schema=target)
