//! A query's parameters ([`crate::connectors::params`]) as the values MySQL's binary protocol
//! binds: integers and floats as themselves, text and decimals (exact) as strings, dates and
//! times as the protocol's own, timestamps with a zone at their UTC time.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, Time64MicrosecondType, TimeUnit,
    TimestampMicrosecondType, UInt64Type,
};
use chrono::{Datelike, NaiveDate, Timelike};
use mysql_async::Value;

use crate::error::{Error, Result};

/// The row's values in placeholder order.
pub fn values(batch: &RecordBatch) -> Result<Vec<Value>> {
    (0..batch.num_columns())
        .map(|i| {
            value(batch.column(i).as_ref()).map_err(|e| e.within(format!("parameter {}", i + 1)))
        })
        .collect()
}

/// The first value of `array`, cast to the widest type of its kind (so one arm serves every
/// width).
fn value(array: &dyn Array) -> Result<Value> {
    if array.is_null(0) {
        return Ok(Value::NULL);
    }
    let as_type = |to: &DataType| {
        cast(array, to).map_err(|e| Error::invalid(format!("{}: {e}", array.data_type())))
    };
    use DataType::*;
    Ok(match array.data_type() {
        Null => Value::NULL,
        Boolean => Value::Int(array.as_boolean().value(0).into()),
        Int8 | Int16 | Int32 | Int64 => {
            Value::Int(as_type(&Int64)?.as_primitive::<Int64Type>().value(0))
        }
        UInt8 | UInt16 | UInt32 | UInt64 => {
            Value::UInt(as_type(&UInt64)?.as_primitive::<UInt64Type>().value(0))
        }
        Float16 | Float32 | Float64 => {
            Value::Double(as_type(&Float64)?.as_primitive::<Float64Type>().value(0))
        }
        // A decimal is bound as its exact text, which MySQL reads as a number.
        Utf8 | LargeUtf8 | Utf8View | Decimal32(..) | Decimal64(..) | Decimal128(..)
        | Decimal256(..) => Value::Bytes(as_type(&Utf8)?.as_string::<i32>().value(0).into()),
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => {
            Value::Bytes(as_type(&Binary)?.as_binary::<i32>().value(0).to_vec())
        }
        Date32 | Date64 => {
            let days = as_type(&Date32)?.as_primitive::<Date32Type>().value(0);
            let d = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days.into())))
                .filter(|d| (0..=9999).contains(&d.year()))
                .ok_or_else(|| {
                    Error::invalid(format!("date {days} days from 1970 is out of range"))
                })?;
            Value::Date(d.year() as u16, d.month() as u8, d.day() as u8, 0, 0, 0, 0)
        }
        Time32(_) | Time64(_) => {
            let micros = as_type(&Time64(TimeUnit::Microsecond))?
                .as_primitive::<Time64MicrosecondType>()
                .value(0);
            let (neg, m) = (micros < 0, micros.unsigned_abs());
            let secs = m / 1_000_000;
            Value::Time(
                neg,
                (secs / 86_400) as u32,
                (secs / 3600 % 24) as u8,
                (secs / 60 % 60) as u8,
                (secs % 60) as u8,
                (m % 1_000_000) as u32,
            )
        }
        Timestamp(_, _) => {
            let micros = as_type(&Timestamp(TimeUnit::Microsecond, None))?
                .as_primitive::<TimestampMicrosecondType>()
                .value(0);
            let t = chrono::DateTime::from_timestamp_micros(micros)
                .filter(|t| (0..=9999).contains(&t.year()))
                .ok_or_else(|| Error::invalid(format!("timestamp {micros} µs is out of range")))?
                .naive_utc();
            Value::Date(
                t.year() as u16,
                t.month() as u8,
                t.day() as u8,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
                t.nanosecond() / 1000,
            )
        }
        other => {
            return Err(Error::unsupported(format!(
                "a {other} value cannot be bound; bind a number, text, bytes, a date, a time \
                 or a timestamp"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, StringArray,
        Time64MicrosecondArray, TimestampMillisecondArray, UInt8Array,
    };

    use super::*;

    #[test]
    fn every_kind_is_bound_as_its_value() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![-7])),
            Arc::new(UInt8Array::from(vec![200])),
            Arc::new(BooleanArray::from(vec![true])),
            Arc::new(StringArray::from(vec!["é"])),
            Arc::new(Date32Array::from(vec![19000])),
            Arc::new(
                Decimal128Array::from(vec![12345])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(TimestampMillisecondArray::from(vec![1_500]).with_timezone("+02:00")),
            Arc::new(Time64MicrosecondArray::from(vec![-(90_061_000_001)])),
            Arc::new(Int32Array::from(vec![None])),
        ];
        let batch = RecordBatch::try_from_iter(
            columns
                .into_iter()
                .enumerate()
                .map(|(i, c)| (format!("p{i}"), c)),
        )
        .unwrap();
        assert_eq!(
            values(&batch).unwrap(),
            vec![
                Value::Int(-7),
                Value::UInt(200),
                Value::Int(1),
                Value::Bytes("é".into()),
                Value::Date(2022, 1, 8, 0, 0, 0, 0),
                Value::Bytes("123.45".into()),
                Value::Date(1970, 1, 1, 0, 0, 1, 500_000),
                Value::Time(true, 1, 1, 1, 1, 1),
                Value::NULL,
            ]
        );
    }
}
