//! Arrow values into the text MySQL reads them from, for `LOAD DATA` (escaped, tab-separated
//! rows) and for the INSERT fallback (one bound value per cell).
//!
//! The load statement names every clause, so nothing depends on server defaults:
//! `CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'`.
//! NULL is `\N`; a backslash, tab, newline, carriage return and NUL inside a value are
//! escaped; binary columns travel as hex and are decoded by `UNHEX` in the statement's SET
//! clause, so no byte is ever reinterpreted by a character set.

use std::io::Write as _;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate};

use crate::error::{Error, Result};

/// Whether a column is written as hex (binary) or as text.
pub fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

/// The raw text (or bytes, for binary columns) of one cell into `out`; false for NULL.
pub fn cell(array: &dyn Array, row: usize, out: &mut Vec<u8>) -> std::result::Result<bool, String> {
    if array.is_null(row) {
        return Ok(false);
    }
    use DataType::*;
    match array.data_type() {
        Boolean => {
            out.push(if array.as_boolean().value(row) {
                b'1'
            } else {
                b'0'
            });
            Ok(())
        }
        Int8 => write!(
            out,
            "{}",
            array
                .as_primitive::<arrow::datatypes::Int8Type>()
                .value(row)
        ),
        Int16 => write!(
            out,
            "{}",
            array
                .as_primitive::<arrow::datatypes::Int16Type>()
                .value(row)
        ),
        Int32 => write!(
            out,
            "{}",
            array
                .as_primitive::<arrow::datatypes::Int32Type>()
                .value(row)
        ),
        Int64 => write!(
            out,
            "{}",
            array
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(row)
        ),
        UInt8 => write!(
            out,
            "{}",
            array
                .as_primitive::<arrow::datatypes::UInt8Type>()
                .value(row)
        ),
        UInt16 => write!(
            out,
            "{}",
            array
                .as_primitive::<arrow::datatypes::UInt16Type>()
                .value(row)
        ),
        UInt32 => write!(
            out,
            "{}",
            array
                .as_primitive::<arrow::datatypes::UInt32Type>()
                .value(row)
        ),
        UInt64 => write!(
            out,
            "{}",
            array
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .value(row)
        ),
        // As the exact double of the f32: its own shortest text can round past FLT_MAX,
        // which MySQL refuses.
        Float32 => finite(
            f64::from(
                array
                    .as_primitive::<arrow::datatypes::Float32Type>()
                    .value(row),
            ),
            out,
        ),
        Float64 => finite(
            array
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(row),
            out,
        ),
        Decimal128(..) => {
            let text = array
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .value_as_string(row);
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
        Decimal256(..) => {
            let text = array
                .as_primitive::<arrow::datatypes::Decimal256Type>()
                .value_as_string(row);
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
        Utf8 => {
            out.extend_from_slice(array.as_string::<i32>().value(row).as_bytes());
            Ok(())
        }
        LargeUtf8 => {
            out.extend_from_slice(array.as_string::<i64>().value(row).as_bytes());
            Ok(())
        }
        Utf8View => {
            out.extend_from_slice(array.as_string_view().value(row).as_bytes());
            Ok(())
        }
        Binary => {
            out.extend_from_slice(array.as_binary::<i32>().value(row));
            Ok(())
        }
        LargeBinary => {
            out.extend_from_slice(array.as_binary::<i64>().value(row));
            Ok(())
        }
        BinaryView => {
            out.extend_from_slice(array.as_binary_view().value(row));
            Ok(())
        }
        FixedSizeBinary(_) => {
            out.extend_from_slice(array.as_fixed_size_binary().value(row));
            Ok(())
        }
        Date32 => {
            let days = array
                .as_primitive::<arrow::datatypes::Date32Type>()
                .value(row);
            let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::Duration::days(days.into())))
                .ok_or("a date out of range")?;
            write!(out, "{}", date.format("%Y-%m-%d"))
        }
        Timestamp(unit, _) => {
            let micros = to_micros(*unit, timestamp_value(array, *unit, row));
            let t = DateTime::from_timestamp_micros(micros).ok_or("a timestamp out of range")?;
            // Zoned values are stored as their UTC instant.
            write!(out, "{}", t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f"))
        }
        Time64(unit) => {
            let v = match unit {
                TimeUnit::Microsecond => array
                    .as_primitive::<arrow::datatypes::Time64MicrosecondType>()
                    .value(row),
                _ => {
                    array
                        .as_primitive::<arrow::datatypes::Time64NanosecondType>()
                        .value(row)
                        / 1000
                }
            };
            clock(v, out);
            Ok(())
        }
        Time32(unit) => {
            let v = match unit {
                TimeUnit::Second => {
                    i64::from(
                        array
                            .as_primitive::<arrow::datatypes::Time32SecondType>()
                            .value(row),
                    ) * 1_000_000
                }
                _ => {
                    i64::from(
                        array
                            .as_primitive::<arrow::datatypes::Time32MillisecondType>()
                            .value(row),
                    ) * 1000
                }
            };
            clock(v, out);
            Ok(())
        }
        Duration(unit) => {
            let v = match unit {
                TimeUnit::Second => array
                    .as_primitive::<arrow::datatypes::DurationSecondType>()
                    .value(row),
                TimeUnit::Millisecond => array
                    .as_primitive::<arrow::datatypes::DurationMillisecondType>()
                    .value(row),
                TimeUnit::Microsecond => array
                    .as_primitive::<arrow::datatypes::DurationMicrosecondType>()
                    .value(row),
                TimeUnit::Nanosecond => array
                    .as_primitive::<arrow::datatypes::DurationNanosecondType>()
                    .value(row),
            };
            clock(to_micros(*unit, v), out);
            Ok(())
        }
        other => return Err(format!("MySQL cannot take {other} values")),
    }
    .map_err(|e| e.to_string())?;
    Ok(true)
}

fn finite<T: std::fmt::Display + Into<f64> + Copy>(v: T, out: &mut Vec<u8>) -> std::io::Result<()> {
    if !v.into().is_finite() {
        return Err(std::io::Error::other(format!(
            "{v} cannot be stored: MySQL has no NaN or infinity"
        )));
    }
    // Rust prints the shortest text that reads back as the same value.
    write!(out, "{v}")
}

fn timestamp_value(array: &dyn Array, unit: TimeUnit, row: usize) -> i64 {
    use arrow::datatypes::*;
    match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
    }
}

/// Whole microseconds (nanoseconds are cut: MySQL keeps six digits).
fn to_micros(unit: TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v * 1_000_000,
        TimeUnit::Millisecond => v * 1000,
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v.div_euclid(1000),
    }
}

/// `[-]H:MM:SS.ffffff`, hours unbounded (TIME reaches 838 hours).
fn clock(micros: i64, out: &mut Vec<u8>) {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let (secs, frac) = (m / 1_000_000, m % 1_000_000);
    let _ = write!(
        out,
        "{sign}{}:{:02}:{:02}.{frac:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
}

/// Rows of `batch` as `LOAD DATA` text, appended to `out`. `first_row` (1-based) numbers rows
/// in errors.
pub fn load_data(batch: &RecordBatch, first_row: u64, out: &mut Vec<u8>) -> Result<()> {
    let mut value = Vec::new();
    for row in 0..batch.num_rows() {
        for (i, column) in batch.columns().iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            value.clear();
            let present = cell(column.as_ref(), row, &mut value).map_err(|why| {
                Error::invalid(format!(
                    "row {}, column {:?}: {why}",
                    first_row + row as u64,
                    batch.schema().field(i).name()
                ))
            })?;
            if !present {
                out.extend_from_slice(b"\\N");
            } else if is_binary(column.data_type()) {
                for b in &value {
                    let _ = write!(out, "{b:02x}");
                }
            } else {
                escape(&value, out);
            }
        }
        out.push(b'\n');
    }
    Ok(())
}

fn escape(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BinaryArray, DurationMicrosecondArray, Float64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn rows_are_escaped_and_nulls_marked() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Binary, true),
            Field::new("t", DataType::Duration(TimeUnit::Microsecond), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("a\tb\\c\nd"), None])),
                Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None])),
                Arc::new(DurationMicrosecondArray::from(vec![
                    Some(-3_020_399_000_000),
                    None,
                ])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        load_data(&batch, 1, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\tb\\\\c\\nd\t00ff\t-838:59:59.000000\n\\N\t\\N\t\\N\n"
        );
    }

    #[test]
    fn nan_is_refused_by_row_and_column() {
        let schema = Arc::new(Schema::new(vec![Field::new("f", DataType::Float64, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Float64Array::from(vec![1.5, f64::NAN]))],
        )
        .unwrap();
        let e = load_data(&batch, 10, &mut Vec::new()).unwrap_err();
        assert!(
            e.message.contains("row 11") && e.message.contains("NaN"),
            "{e}"
        );
    }
}
