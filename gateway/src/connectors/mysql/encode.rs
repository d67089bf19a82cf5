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
use arrow::datatypes::DataType;
use chrono::{DateTime, Datelike, NaiveDate, Timelike};

use crate::error::{CellError, Error, Result};

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

/// How a column's text goes into a `LOAD DATA` row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Digits, signs, points, dashes and colons: nothing to escape.
    Plain,
    /// Any text: escaped.
    Text,
    /// Bytes: as hex.
    Binary,
}

/// An infallible cell writer as a [`WriteCell`].
fn plain<'a>(write: impl Fn(usize, &mut Vec<u8>) + Send + Sync + 'a) -> WriteCell<'a> {
    Box::new(move |row, out| {
        write(row, out);
        Ok(())
    })
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
fn date(days: i32, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    let date = EPOCH
        .checked_add_signed(chrono::Duration::days(days.into()))
        .ok_or("a date out of range")?;
    ymd(date, out);
    Ok(())
}

/// Microseconds since the epoch as `YYYY-MM-DD HH:MM:SS.ffffff`; zoned values are stored as
/// their UTC instant.
fn datetime(micros: i64, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    let t = DateTime::from_timestamp_micros(micros)
        .ok_or("a timestamp out of range")?
        .naive_utc();
    ymd(t.date(), out);
    let (s, us) = (t.num_seconds_from_midnight(), t.nanosecond() / 1000);
    let two = |n: u32| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    let [h0, h1] = two(s / 3600);
    let [m0, m1] = two(s / 60 % 60);
    let [s0, s1] = two(s % 60);
    out.extend_from_slice(&[b' ', h0, h1, b':', m0, m1, b':', s0, s1, b'.']);
    out.extend(
        (0..6)
            .rev()
            .map(|place| b'0' + (us / 10u32.pow(place) % 10) as u8),
    );
    Ok(())
}

type WriteCell<'a> =
    Box<dyn Fn(usize, &mut Vec<u8>) -> std::result::Result<(), String> + Send + Sync + 'a>;

/// One column's cells as text (or bytes, for binary columns). Its type is matched once, when
/// it is made, not once per cell.
pub struct Cells<'a> {
    array: &'a dyn Array,
    shape: Shape,
    write: WriteCell<'a>,
}

impl<'a> Cells<'a> {
    // Long by design: one arm per Arrow type MySQL takes, the encoder's half of the type table
    // (`types.rs`), read top to bottom like it.
    pub fn new(array: &'a dyn Array) -> std::result::Result<Self, String> {
        use DataType::*;
        use arrow::datatypes as t;
        fn int<'a, T>(array: &'a dyn Array) -> WriteCell<'a>
        where
            T: arrow::datatypes::ArrowPrimitiveType,
            T::Native: itoa::Integer,
        {
            let a = array.as_primitive::<T>();
            Box::new(move |row, out| {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes());
                Ok(())
            })
        }
        let (shape, write): (Shape, WriteCell<'a>) = match array.data_type() {
            Boolean => {
                let a = array.as_boolean();
                let write = plain(move |row, out| out.push(b'0' + a.value(row) as u8));
                (Shape::Plain, write)
            }
            Int8 => (Shape::Plain, int::<t::Int8Type>(array)),
            Int16 => (Shape::Plain, int::<t::Int16Type>(array)),
            Int32 => (Shape::Plain, int::<t::Int32Type>(array)),
            Int64 => (Shape::Plain, int::<t::Int64Type>(array)),
            UInt8 => (Shape::Plain, int::<t::UInt8Type>(array)),
            UInt16 => (Shape::Plain, int::<t::UInt16Type>(array)),
            UInt32 => (Shape::Plain, int::<t::UInt32Type>(array)),
            UInt64 => (Shape::Plain, int::<t::UInt64Type>(array)),
            // As the exact double of the f32: its own shortest text can round past FLT_MAX,
            // which MySQL refuses.
            Float32 => {
                let a = array.as_primitive::<t::Float32Type>();
                (
                    Shape::Plain,
                    Box::new(move |row, out| finite(f64::from(a.value(row)), out)),
                )
            }
            Float64 => {
                let a = array.as_primitive::<t::Float64Type>();
                (
                    Shape::Plain,
                    Box::new(move |row, out| finite(a.value(row), out)),
                )
            }
            Decimal128(_, scale) => {
                let (a, scale) = (array.as_primitive::<t::Decimal128Type>(), *scale);
                let write = plain(move |row, out| decimal(a.value(row), scale, out));
                (Shape::Plain, write)
            }
            Decimal256(..) => {
                let a = array.as_primitive::<t::Decimal256Type>();
                let write =
                    plain(move |row, out| out.extend_from_slice(a.value_as_string(row).as_bytes()));
                (Shape::Plain, write)
            }
            Utf8 => {
                let a = array.as_string::<i32>();
                (Shape::Text, bytes(move |row| a.value(row).as_bytes()))
            }
            LargeUtf8 => {
                let a = array.as_string::<i64>();
                (Shape::Text, bytes(move |row| a.value(row).as_bytes()))
            }
            Utf8View => {
                let a = array.as_string_view();
                (Shape::Text, bytes(move |row| a.value(row).as_bytes()))
            }
            Binary => {
                let a = array.as_binary::<i32>();
                (Shape::Binary, bytes(move |row| a.value(row)))
            }
            LargeBinary => {
                let a = array.as_binary::<i64>();
                (Shape::Binary, bytes(move |row| a.value(row)))
            }
            BinaryView => {
                let a = array.as_binary_view();
                (Shape::Binary, bytes(move |row| a.value(row)))
            }
            FixedSizeBinary(_) => {
                let a = array.as_fixed_size_binary();
                (Shape::Binary, bytes(move |row| a.value(row)))
            }
            Date32 => {
                let a = array.as_primitive::<t::Date32Type>();
                (
                    Shape::Plain,
                    Box::new(move |row, out| date(a.value(row), out)),
                )
            }
            Timestamp(..) => {
                let micros = micros(array);
                (
                    Shape::Plain,
                    Box::new(move |row, out| datetime(micros(row), out)),
                )
            }
            Time32(_) | Time64(_) | Duration(_) => {
                let micros = micros(array);
                (Shape::Plain, plain(move |row, out| clock(micros(row), out)))
            }
            other => return Err(format!("MySQL cannot take {other} values")),
        };
        Ok(Self {
            array,
            shape,
            write,
        })
    }

    /// The raw text (or bytes, for binary columns) of one cell into `out`; false for NULL.
    pub fn write(&self, row: usize, out: &mut Vec<u8>) -> std::result::Result<bool, String> {
        if self.array.is_null(row) {
            return Ok(false);
        }
        (self.write)(row, out)?;
        Ok(true)
    }
}

fn bytes<'a>(value: impl Fn(usize) -> &'a [u8] + Send + Sync + 'a) -> WriteCell<'a> {
    Box::new(move |row, out| {
        out.extend_from_slice(value(row));
        Ok(())
    })
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch");

/// `YYYY-MM-DD` written by hand (chrono's formatter interprets its pattern for every value);
/// years outside 0-9999, which MySQL cannot hold anyway, in chrono's own form.
fn ymd(date: NaiveDate, out: &mut Vec<u8>) {
    let (y, m, d) = (date.year(), date.month(), date.day());
    if !(0..=9999).contains(&y) {
        let _ = write!(out, "{}", date.format("%Y-%m-%d"));
        return;
    }
    let y = y as u32;
    out.extend_from_slice(&[
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b'-',
        b'0' + (d / 10) as u8,
        b'0' + (d % 10) as u8,
    ]);
}

/// A Decimal128 of `scale` places as MySQL reads it: `[-]digits[.digits]`.
fn decimal(v: i128, scale: i8, out: &mut Vec<u8>) {
    if v < 0 {
        out.push(b'-');
    }
    let n = v.unsigned_abs();
    let mut buf = itoa::Buffer::new();
    if scale <= 0 {
        out.extend_from_slice(buf.format(n).as_bytes());
        out.extend(std::iter::repeat_n(b'0', usize::from(scale.unsigned_abs())));
        return;
    }
    let scale = scale as u32;
    let unit = 10u128.pow(scale);
    out.extend_from_slice(buf.format(n / unit).as_bytes());
    out.push(b'.');
    let fraction = buf.format(n % unit).as_bytes();
    out.extend(std::iter::repeat_n(b'0', scale as usize - fraction.len()));
    out.extend_from_slice(fraction);
}

fn finite<T: std::fmt::Display + Into<f64> + Copy>(
    v: T,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    if !v.into().is_finite() {
        return Err(format!(
            "{v} cannot be stored: MySQL has no NaN or infinity"
        ));
    }
    // Rust prints the shortest text that reads back as the same value.
    let _ = write!(out, "{v}");
    Ok(())
}

type Micros<'a> = Box<dyn Fn(usize) -> i64 + Send + Sync + 'a>;

/// A time, duration or timestamp column's values as whole microseconds, its unit resolved
/// once (nanoseconds are cut: MySQL keeps six digits).
fn micros(array: &dyn Array) -> Micros<'_> {
    use arrow::datatypes::*;
    fn of<'a, T: ArrowPrimitiveType>(
        array: &'a dyn Array,
        to_micros: impl Fn(T::Native) -> i64 + Send + Sync + 'a,
    ) -> Micros<'a> {
        let a = array.as_primitive::<T>();
        Box::new(move |row| to_micros(a.value(row)))
    }
    let seconds = |v: i64| v * 1_000_000;
    let millis = |v: i64| v * 1000;
    let nanos = |v: i64| v.div_euclid(1000);
    match array.data_type() {
        DataType::Time32(TimeUnit::Second) => {
            of::<Time32SecondType>(array, move |v| seconds(v.into()))
        }
        DataType::Time32(_) => of::<Time32MillisecondType>(array, move |v| millis(v.into())),
        DataType::Time64(TimeUnit::Microsecond) => of::<Time64MicrosecondType>(array, |v| v),
        DataType::Time64(_) => of::<Time64NanosecondType>(array, |v| v / 1000),
        DataType::Duration(TimeUnit::Second) => of::<DurationSecondType>(array, seconds),
        DataType::Duration(TimeUnit::Millisecond) => of::<DurationMillisecondType>(array, millis),
        DataType::Duration(TimeUnit::Microsecond) => of::<DurationMicrosecondType>(array, |v| v),
        DataType::Duration(TimeUnit::Nanosecond) => of::<DurationNanosecondType>(array, nanos),
        DataType::Timestamp(TimeUnit::Second, _) => of::<TimestampSecondType>(array, seconds),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            of::<TimestampMillisecondType>(array, millis)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            of::<TimestampMicrosecondType>(array, |v| v)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => of::<TimestampNanosecondType>(array, nanos),
        other => unreachable!("micros() is called for temporal columns only, not {other}"),
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

/// A printer for each column of `batch`; a type MySQL cannot take is refused by column name.
pub fn batch_cells(batch: &RecordBatch) -> Result<Vec<Cells<'_>>> {
    batch
        .columns()
        .iter()
        .zip(batch.schema_ref().fields())
        .map(|(c, f)| {
            Cells::new(c.as_ref())
                .map_err(|why| Error::invalid(format!("column {:?}: {why}", f.name())))
        })
        .collect()
}

/// Rows of `batch` as `LOAD DATA` text, appended to `out`. `first_row` (1-based) numbers rows
/// in errors.
pub fn load_data(batch: &RecordBatch, first_row: u64, out: &mut Vec<u8>) -> Result<()> {
    let at = |row: usize, i: usize, why: &dyn std::fmt::Display| {
        Error::from(CellError::new(
            first_row + row as u64,
            batch.schema().field(i).name(),
            why,
        ))
    };
    let columns = batch_cells(batch)?;
    let mut value = Vec::new();
    for row in 0..batch.num_rows() {
        for (i, cells) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            let target = if cells.shape == Shape::Plain {
                &mut *out
            } else {
                value.clear();
                &mut value
            };
            let present = cells.write(row, target).map_err(|why| at(row, i, &why))?;
            if !present {
                out.extend_from_slice(b"\\N");
            } else if cells.shape == Shape::Binary {
                hex(&value, out);
            } else if cells.shape == Shape::Text {
                escape(&value, out);
            }
        }
        out.push(b'\n');
    }
    Ok(())
}

fn hex(value: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in value {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
    }
}

fn escape(value: &[u8], out: &mut Vec<u8>) {
    let special = |b: &u8| matches!(b, b'\\' | b'\t' | b'\n' | b'\r' | 0);
    if !value.iter().any(special) {
        out.extend_from_slice(value);
        return;
    }
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
    use arrow::datatypes::{Field, Schema, TimeUnit};
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

    /// The hand-written printers say what arrow's and chrono's general ones say.
    #[test]
    fn hand_printed_decimals_dates_and_times_match_the_general_printers() {
        use arrow::array::{Date32Array, Decimal128Array, TimestampMicrosecondArray};
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let text = |array: &dyn Array, row: usize| {
            let mut out = Vec::new();
            Cells::new(array).unwrap().write(row, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        for scale in [0i8, 2, 10, 38] {
            let mut values = vec![0i128, 5, -5, 99_999, -10i128.pow(37), 10i128.pow(38) - 1];
            values.extend((0..200).map(|_| i128::from(next() as i64) * i128::from(next() % 1000)));
            let a = Decimal128Array::from(values.clone())
                .with_precision_and_scale(38, scale)
                .unwrap();
            for row in 0..values.len() {
                assert_eq!(text(&a, row), a.value_as_string(row), "scale {scale}");
            }
        }
        let days: Vec<i32> = [-719_162, -1, 0, 1, 2_932_896]
            .into_iter()
            .chain((0..200).map(|_| (next() % 3_652_059) as i32 - 719_162))
            .collect();
        let a = Date32Array::from(days.clone());
        for (row, &d) in days.iter().enumerate() {
            let date = EPOCH + chrono::Duration::days(d.into());
            assert_eq!(text(&a, row), date.format("%Y-%m-%d").to_string());
        }
        let micros: Vec<i64> = [-62_135_596_800_000_000, 0, 1, 253_402_300_799_999_999]
            .into_iter()
            .chain((0..200).map(|_| (next() % 253_402_300_799_999_999) as i64))
            .collect();
        let a = TimestampMicrosecondArray::from(micros.clone());
        for (row, &us) in micros.iter().enumerate() {
            let t = DateTime::from_timestamp_micros(us).unwrap().naive_utc();
            assert_eq!(text(&a, row), t.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        }
    }
}
