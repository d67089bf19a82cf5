//! Rows of the text protocol into Arrow arrays: each value is parsed from the exact text the
//! server sent, by the column's [`Kind`]; a value that does not parse is an error naming its
//! row and column.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, DurationMicrosecondBuilder,
    PrimitiveBuilder, RecordBatch, StringArray, TimestampMicrosecondBuilder,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{
    ArrowPrimitiveType, Decimal128Type, Decimal256Type, Int8Type, Int16Type, Int32Type, Int64Type,
    SchemaRef, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use chrono::NaiveDate;
use mysql_async::{Row, Value};

use super::types::Kind;
use crate::error::{Error, Result};

/// What a zero date (`0000-00-00`) reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroDates {
    Error,
    Null,
}

/// Where a batch's rows come from, for error messages.
pub struct Origin<'a> {
    pub label: &'a str,
    /// The 1-based number of the batch's first row in the result.
    pub first_row: u64,
    pub zero_dates: ZeroDates,
}

/// One batch of `rows`, column by column.
pub fn batch(
    schema: &SchemaRef,
    kinds: &[Kind],
    rows: &[Row],
    origin: &Origin,
) -> Result<RecordBatch> {
    let columns = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let values = rows.iter().map(move |r| match r.as_ref(i) {
                Some(Value::Bytes(b)) => Some(b.as_slice()),
                _ => None,
            });
            column(*kind, schema.field(i).data_type(), values)
                .map_err(|(row, why)| {
                    Error::invalid(format!(
                        "{}: row {}, column {:?}: {why}",
                        origin.label,
                        origin.first_row + row as u64,
                        schema.field(i).name()
                    ))
                })
                .and_then(|array| zero_dates(array, *kind, origin, schema.field(i).name()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// A parse failure: the row's index in the batch and why.
type Failure = (usize, String);

/// The zero-date marker: dates and datetimes that read as zero are built as this value, then
/// either turned into NULL or reported.
const ZERO_DAY: i32 = i32::MIN;
const ZERO_MICROS: i64 = i64::MIN;

fn zero_dates(array: ArrayRef, kind: Kind, origin: &Origin, name: &str) -> Result<ArrayRef> {
    use arrow::array::{Date32Array, TimestampMicrosecondArray};
    let zeros: Vec<usize> = match kind {
        Kind::Date => {
            let a = array.as_any().downcast_ref::<Date32Array>().expect("dates");
            (0..a.len())
                .filter(|&i| a.is_valid(i) && a.value(i) == ZERO_DAY)
                .collect()
        }
        Kind::DateTime | Kind::Timestamp => {
            let a = array
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .expect("timestamps");
            (0..a.len())
                .filter(|&i| a.is_valid(i) && a.value(i) == ZERO_MICROS)
                .collect()
        }
        _ => return Ok(array),
    };
    let Some(&first) = zeros.first() else {
        return Ok(array);
    };
    if origin.zero_dates == ZeroDates::Error {
        return Err(Error::invalid(format!(
            "{}: row {}, column {name:?}: a zero date (0000-00-00) has no calendar value; \
             configure the database with zero_dates = \"null\" to read such dates as NULL",
            origin.label,
            origin.first_row + first as u64
        )));
    }
    let mut keep = arrow::array::BooleanBufferBuilder::new(array.len());
    for i in 0..array.len() {
        keep.append(array.is_valid(i) && !zeros.contains(&i));
    }
    let nulls = arrow::buffer::NullBuffer::new(keep.finish());
    let data = array.to_data().into_builder().nulls(Some(nulls)).build()?;
    Ok(arrow::array::make_array(data))
}

fn column<'a>(
    kind: Kind,
    data_type: &arrow::datatypes::DataType,
    values: impl Iterator<Item = Option<&'a [u8]>>,
) -> std::result::Result<ArrayRef, Failure> {
    let text = |i: usize, b: &'a [u8]| -> std::result::Result<&'a str, Failure> {
        std::str::from_utf8(b).map_err(|_| (i, "not valid UTF-8".to_string()))
    };
    let bad = |i: usize, what: &str, value: &str| (i, format!("{value:?} is not {what}"));
    Ok(match kind {
        Kind::Int { bits, unsigned } => match (bits, unsigned) {
            (8, false) => integers::<Int8Type>(values)?,
            (16, false) => integers::<Int16Type>(values)?,
            (32, false) => integers::<Int32Type>(values)?,
            (_, false) => integers::<Int64Type>(values)?,
            (8, true) => integers::<UInt8Type>(values)?,
            (16, true) => integers::<UInt16Type>(values)?,
            (32, true) => integers::<UInt32Type>(values)?,
            (_, true) => integers::<UInt64Type>(values)?,
        },
        Kind::Year => integers::<Int16Type>(values)?,
        Kind::TinyBool => {
            let mut b = BooleanBuilder::new();
            for (i, v) in values.enumerate() {
                match v {
                    None => b.append_null(),
                    Some(b"0") => b.append_value(false),
                    Some(b"1") => b.append_value(true),
                    Some(other) => {
                        return Err(bad(
                            i,
                            "a boolean (TINYINT(1) holds 0 or 1)",
                            text(i, other)?,
                        ));
                    }
                }
            }
            Arc::new(b.finish())
        }
        Kind::BitBool => {
            let mut b = BooleanBuilder::new();
            for v in values {
                b.append_option(v.map(|bytes| bytes.iter().any(|&x| x != 0)));
            }
            Arc::new(b.finish())
        }
        Kind::Bits => {
            let mut b = PrimitiveBuilder::<UInt64Type>::new();
            for v in values {
                b.append_option(
                    v.map(|bytes| bytes.iter().fold(0u64, |n, &x| n << 8 | u64::from(x))),
                );
            }
            Arc::new(b.finish())
        }
        Kind::Decimal { precision, scale } if precision <= 38 => {
            let mut b = PrimitiveBuilder::<Decimal128Type>::new();
            for (i, v) in values.enumerate() {
                match v {
                    None => b.append_null(),
                    Some(bytes) => {
                        let s = text(i, bytes)?;
                        let n = match decimal(s, precision, scale) {
                            Some(n) => n,
                            // Anything unusual (an exponent) takes arrow's general parser.
                            None => parse_decimal::<Decimal128Type>(s, precision, scale)
                                .map_err(|e| (i, format!("{s:?}: {e}")))?,
                        };
                        b.append_value(n);
                    }
                }
            }
            Arc::new(b.finish().with_data_type(data_type.clone()))
        }
        Kind::Decimal { precision, scale } => {
            let mut b = PrimitiveBuilder::<Decimal256Type>::new();
            for (i, v) in values.enumerate() {
                match v {
                    None => b.append_null(),
                    Some(bytes) => {
                        let s = text(i, bytes)?;
                        let n = parse_decimal::<Decimal256Type>(s, precision, scale)
                            .map_err(|e| (i, format!("{s:?}: {e}")))?;
                        b.append_value(n);
                    }
                }
            }
            Arc::new(b.finish().with_data_type(data_type.clone()))
        }
        Kind::Float => parsed::<arrow::datatypes::Float32Type>(values, &text)?,
        Kind::Double => parsed::<arrow::datatypes::Float64Type>(values, &text)?,
        Kind::Text => {
            // One UTF-8 check over the whole column; the row is looked for only on failure.
            let mut b = BinaryBuilder::new();
            for v in values {
                b.append_option(v);
            }
            let binary = b.finish();
            match StringArray::try_from_binary(binary.clone()) {
                Ok(strings) => Arc::new(strings),
                Err(_) => {
                    let row = (0..binary.len())
                        .find(|&i| {
                            binary.is_valid(i) && std::str::from_utf8(binary.value(i)).is_err()
                        })
                        .unwrap_or(0);
                    return Err((row, "not valid UTF-8".to_string()));
                }
            }
        }
        Kind::Binary => {
            let mut b = BinaryBuilder::new();
            for v in values {
                b.append_option(v);
            }
            Arc::new(b.finish())
        }
        Kind::Date => {
            let mut b = Date32Builder::new();
            for (i, v) in values.enumerate() {
                match v {
                    None => b.append_null(),
                    Some(bytes) => match parse_date(bytes) {
                        Some(day) => b.append_value(day),
                        None => return Err(bad(i, "a date", text(i, bytes)?)),
                    },
                }
            }
            Arc::new(b.finish())
        }
        Kind::DateTime | Kind::Timestamp => {
            let mut b = TimestampMicrosecondBuilder::new();
            for (i, v) in values.enumerate() {
                match v {
                    None => b.append_null(),
                    Some(bytes) => match parse_datetime(bytes) {
                        Some(t) => b.append_value(t),
                        None => return Err(bad(i, "a datetime", text(i, bytes)?)),
                    },
                }
            }
            Arc::new(b.finish().with_data_type(data_type.clone()))
        }
        Kind::Time => {
            let mut b = DurationMicrosecondBuilder::new();
            for (i, v) in values.enumerate() {
                match v {
                    None => b.append_null(),
                    Some(bytes) => {
                        let s = text(i, bytes)?;
                        b.append_value(parse_time(s).ok_or_else(|| bad(i, "a time", s))?);
                    }
                }
            }
            Arc::new(b.finish())
        }
    })
}

/// Numbers parsed by Rust's own `FromStr` for the Arrow type (for floats, the nearest value).
fn parsed<'a, T>(
    values: impl Iterator<Item = Option<&'a [u8]>>,
    text: &impl Fn(usize, &'a [u8]) -> std::result::Result<&'a str, Failure>,
) -> std::result::Result<ArrayRef, Failure>
where
    T: ArrowPrimitiveType,
    T::Native: std::str::FromStr,
{
    let mut b = PrimitiveBuilder::<T>::new();
    for (i, v) in values.enumerate() {
        match v {
            None => b.append_null(),
            Some(bytes) => {
                let s = text(i, bytes)?;
                let n = s
                    .parse::<T::Native>()
                    .map_err(|_| (i, format!("{s:?} does not fit {}", T::DATA_TYPE)))?;
                b.append_value(n);
            }
        }
    }
    Ok(Arc::new(b.finish()))
}

/// An optional minus and digits, as a number (wide enough for every MySQL integer).
fn integer(b: &[u8]) -> Option<i128> {
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut n: i128 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i128::from(c - b'0');
    }
    Some(if negative { -n } else { n })
}

/// Integers read from their bytes, each checked to fit the Arrow type.
fn integers<'a, T>(
    values: impl Iterator<Item = Option<&'a [u8]>>,
) -> std::result::Result<ArrayRef, Failure>
where
    T: ArrowPrimitiveType,
    T::Native: TryFrom<i128>,
{
    let mut b = PrimitiveBuilder::<T>::new();
    for (i, v) in values.enumerate() {
        match v {
            None => b.append_null(),
            Some(bytes) => {
                let n = integer(bytes)
                    .and_then(|n| T::Native::try_from(n).ok())
                    .ok_or_else(|| {
                        let shown = String::from_utf8_lossy(bytes);
                        (i, format!("{shown:?} does not fit {}", T::DATA_TYPE))
                    })?;
                b.append_value(n);
            }
        }
    }
    Ok(Arc::new(b.finish()))
}

/// `n` ASCII digits as a number.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// The date of `YYYY-MM-DD` (the server's fixed form; read by hand: a general date parser is
/// the slowest step of a wide read).
fn ymd(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(&b[..4])? as i32, digits(&b[5..7])?, digits(&b[8..])?)
}

const EPOCH_DAYS_CE: i32 = 719_163;

/// `YYYY-MM-DD` as days since the epoch; a zero date as [`ZERO_DAY`].
fn parse_date(b: &[u8]) -> Option<i32> {
    if b.starts_with(b"0000-00-00") {
        return Some(ZERO_DAY);
    }
    use chrono::Datelike;
    Some(ymd(b)?.num_days_from_ce() - EPOCH_DAYS_CE)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` as microseconds since the epoch; a zero as [`ZERO_MICROS`].
fn parse_datetime(b: &[u8]) -> Option<i64> {
    if b.starts_with(b"0000-00-00") {
        return Some(ZERO_MICROS);
    }
    if b.len() < 19 || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, sec) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let micros = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=6).contains(&frac.len()) => {
            digits(frac)? * 10u32.pow(6 - frac.len() as u32)
        }
        _ => return None,
    };
    let t = ymd(&b[..10])?.and_hms_micro_opt(h, m, sec, micros)?;
    Some(t.and_utc().timestamp_micros())
}

/// `[-]digits[.digits]` as an integer of `scale` decimal places, or None when it has more
/// places or more than `precision` digits.
fn decimal(s: &str, precision: u8, scale: i8) -> Option<i128> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    let scale = usize::try_from(scale).ok()?;
    if frac.len() > scale {
        return None;
    }
    let mut n: i128 = 0;
    for c in whole.bytes().chain(frac.bytes()) {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
    }
    n = n.checked_mul(10i128.checked_pow((scale - frac.len()) as u32)?)?;
    let limit = 10i128.checked_pow(u32::from(precision))?;
    (n < limit).then_some(if negative { -n } else { n })
}

/// `[-]H…H:MM:SS[.ffffff]` as microseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (clock, fraction) = body.split_once('.').unwrap_or((body, ""));
    let mut parts = clock.split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let (h, m, sec): (i64, i64, i64) = (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?);
    if m > 59 || sec > 59 {
        return None;
    }
    let micros: i64 = format!("{fraction:0<6}").parse().ok()?;
    let total = ((h * 60 + m) * 60 + sec) * 1_000_000 + micros;
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_beyond_a_day_and_negative() {
        assert_eq!(parse_time("838:59:59"), Some(3_020_399_000_000));
        assert_eq!(parse_time("-00:00:01.5"), Some(-1_500_000));
        assert_eq!(parse_time("12:00:00.000001"), Some(43_200_000_001));
        assert_eq!(parse_time("12:60:00"), None);
        assert_eq!(parse_time("1:2"), None);
    }

    #[test]
    fn dates_and_the_zero_date() {
        assert_eq!(parse_date(b"1970-01-02"), Some(1));
        assert_eq!(parse_date(b"0001-01-01"), Some(-719_162));
        assert_eq!(parse_date(b"0000-00-00"), Some(ZERO_DAY));
        assert_eq!(parse_datetime(b"1970-01-01 00:00:01.25"), Some(1_250_000));
        assert_eq!(parse_datetime(b"0000-00-00 00:00:00"), Some(ZERO_MICROS));
        assert_eq!(parse_date(b"2026-02-30"), None);
        assert_eq!(
            parse_datetime(b"2026-01-01 00:00:00.5"),
            Some(1_767_225_600_500_000)
        );
        assert_eq!(parse_datetime(b"2026-01-01T00:00:00"), None);
    }

    #[test]
    fn decimals_by_hand_match_their_scale() {
        assert_eq!(decimal("-12.5", 10, 2), Some(-1250));
        assert_eq!(decimal("0.0000000001", 38, 10), Some(1));
        assert_eq!(decimal("99999", 5, 0), Some(99999));
        assert_eq!(decimal("100000", 5, 0), None);
        assert_eq!(decimal("1.234", 10, 2), None);
        assert_eq!(decimal("1e5", 10, 2), None);
    }
}
