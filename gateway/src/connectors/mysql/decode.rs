//! Rows of the text protocol into Arrow arrays: each value is parsed from the exact text the
//! server sent, by the column's [`Kind`]; a value that does not parse is an error naming its
//! row and column.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, PrimitiveBuilder, RecordBatch, StringArray,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Decimal256Type, Int8Type, Int16Type, Int32Type,
    Int64Type, SchemaRef, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use chrono::NaiveDate;

use super::types::Kind;
use super::wire;
use crate::error::{CellError, Error, Result};

/// What a zero date (`0000-00-00`) reads as (`zero_dates = "error"` or `"null"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeroDates {
    #[default]
    Error,
    Null,
}

/// Rows of one result, parsed as they arrive into a batch's column builders.
pub struct Batcher {
    schema: SchemaRef,
    kinds: Vec<Kind>,
    columns: Vec<Box<dyn ColumnBuilder>>,
    label: String,
    zero_dates: ZeroDates,
    /// The 1-based number in the result of the batch's first row.
    first_row: u64,
    rows: usize,
}

impl Batcher {
    pub fn new(schema: SchemaRef, kinds: Vec<Kind>, label: String, zero_dates: ZeroDates) -> Self {
        let columns = builders(&schema, &kinds);
        Self {
            schema,
            kinds,
            columns,
            label,
            zero_dates,
            first_row: 1,
            rows: 0,
        }
    }

    /// Rows in the batch being built.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn at(&self, column: usize, why: impl std::fmt::Display) -> Error {
        let cell = CellError::new(
            self.first_row + self.rows as u64,
            self.schema.field(column).name(),
            why,
        );
        Error::from(cell).within(&self.label)
    }

    /// One row as the text protocol sends it: a length-encoded text or NULL per column.
    pub fn push(&mut self, row: &[u8]) -> Result<()> {
        let mut at = 0;
        for i in 0..self.columns.len() {
            let value = match wire::lenenc(row, &mut at) {
                Some(None) => None,
                Some(Some(len)) => {
                    // A length past the packet (up to 2^64) is a malformed row, not an overflow.
                    let Some(value) = row.get(at..).and_then(|rest| rest.get(..len)) else {
                        return Err(self.at(i, "a malformed row packet"));
                    };
                    at += len;
                    Some(value)
                }
                None => return Err(self.at(i, "a malformed row packet")),
            };
            if let Err(why) = self.columns[i].push(value) {
                return Err(self.at(i, why));
            }
        }
        if at != row.len() {
            return Err(Error::internal(format!(
                "{}: row {}: the row packet holds more than {} columns",
                self.label,
                self.first_row + self.rows as u64,
                self.columns.len()
            )));
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows pushed so far as a batch; the builders start afresh.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let mut arrays = Vec::with_capacity(self.columns.len());
        for i in 0..self.columns.len() {
            let array = match self.columns[i].finish() {
                Ok(array) => array,
                Err((row, why)) => {
                    self.rows = row;
                    return Err(self.at(i, why));
                }
            };
            arrays.push(self.zero_dates(array, i)?);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.first_row += self.rows as u64;
        self.rows = 0;
        Ok(batch)
    }

    fn zero_dates(&mut self, array: ArrayRef, i: usize) -> Result<ArrayRef> {
        use arrow::array::{Date32Array, TimestampMicrosecondArray};
        let zeros: Vec<usize> = match self.kinds[i] {
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
        if self.zero_dates == ZeroDates::Error {
            self.rows = first;
            return Err(self.at(
                i,
                "a zero date (0000-00-00) has no calendar value; configure the database \
                 with zero_dates = \"null\" to read such dates as NULL",
            ));
        }
        let mut keep = arrow::array::BooleanBufferBuilder::new(array.len());
        let mut zeros = zeros.iter().peekable();
        for row in 0..array.len() {
            let zero = zeros.next_if(|&&z| z == row).is_some();
            keep.append(array.is_valid(row) && !zero);
        }
        let nulls = arrow::buffer::NullBuffer::new(keep.finish());
        let data = array.to_data().into_builder().nulls(Some(nulls)).build()?;
        Ok(arrow::array::make_array(data))
    }
}

/// The zero-date marker: dates and datetimes that read as zero are built as this value, then
/// either turned into NULL or reported.
const ZERO_DAY: i32 = i32::MIN;
const ZERO_MICROS: i64 = i64::MIN;

/// One column of a batch being built from the values' text.
trait ColumnBuilder: Send {
    /// Append a value (None is NULL), or say why it cannot be one of this column's.
    fn push(&mut self, value: Option<&[u8]>) -> std::result::Result<(), String>;
    /// The column so far; a failure found only now names the row (index in the batch).
    fn finish(&mut self) -> std::result::Result<ArrayRef, (usize, String)>;
}

fn builders(schema: &SchemaRef, kinds: &[Kind]) -> Vec<Box<dyn ColumnBuilder>> {
    kinds
        .iter()
        .zip(schema.fields())
        .map(|(kind, field)| builder(*kind, field.data_type()))
        .collect()
}

fn builder(kind: Kind, data_type: &DataType) -> Box<dyn ColumnBuilder> {
    use arrow::datatypes::{
        Date32Type, DurationMicrosecondType, Float32Type, Float64Type, TimestampMicrosecondType,
    };
    let t = data_type.clone();
    match kind {
        Kind::Int { bits, unsigned } => match (bits, unsigned) {
            (8, false) => primitive::<Int8Type>(t, int::<Int8Type>),
            (16, false) => primitive::<Int16Type>(t, int::<Int16Type>),
            (32, false) => primitive::<Int32Type>(t, int::<Int32Type>),
            (_, false) => primitive::<Int64Type>(t, int::<Int64Type>),
            (8, true) => primitive::<UInt8Type>(t, int::<UInt8Type>),
            (16, true) => primitive::<UInt16Type>(t, int::<UInt16Type>),
            (32, true) => primitive::<UInt32Type>(t, int::<UInt32Type>),
            (_, true) => primitive::<UInt64Type>(t, int::<UInt64Type>),
        },
        Kind::Year => primitive::<Int16Type>(t, int::<Int16Type>),
        Kind::Float => primitive::<Float32Type>(t, float::<Float32Type>),
        Kind::Double => primitive::<Float64Type>(t, float::<Float64Type>),
        // BIT(n): big-endian bytes.
        Kind::Bits => primitive::<UInt64Type>(t, |b| {
            Ok(b.iter().fold(0u64, |n, &x| n << 8 | u64::from(x)))
        }),
        Kind::Decimal { precision, scale } if precision <= 38 => {
            primitive::<Decimal128Type>(t, move |b| match decimal(b, precision, scale) {
                Some(n) => Ok(n),
                // Anything unusual (an exponent) takes arrow's general parser.
                None => {
                    let s = text(b)?;
                    parse_decimal::<Decimal128Type>(s, precision, scale)
                        .map_err(|e| format!("{s:?}: {e}"))
                }
            })
        }
        Kind::Decimal { precision, scale } => primitive::<Decimal256Type>(t, move |b| {
            let s = text(b)?;
            parse_decimal::<Decimal256Type>(s, precision, scale).map_err(|e| format!("{s:?}: {e}"))
        }),
        Kind::Date => primitive::<Date32Type>(t, |b| parse_date(b).ok_or_else(|| bad("a date", b))),
        Kind::DateTime | Kind::Timestamp => primitive::<TimestampMicrosecondType>(t, |b| {
            parse_datetime(b).ok_or_else(|| bad("a datetime", b))
        }),
        // TIME as a duration: its range (±838 hours) exceeds a day.
        Kind::Time => primitive::<DurationMicrosecondType>(t, |b| {
            parse_time(text(b)?).ok_or_else(|| bad("a time", b))
        }),
        Kind::TinyBool => Box::new(Booleans(BooleanBuilder::new())),
        Kind::BitBool => Box::new(BitBooleans(BooleanBuilder::new())),
        Kind::Text => Box::new(Texts(BinaryBuilder::new())),
        Kind::Binary => Box::new(Binaries(BinaryBuilder::new())),
    }
}

fn text(b: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(b).map_err(|_| "not valid UTF-8".to_string())
}

fn bad(what: &str, value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(s) => format!("{s:?} is not {what}"),
        Err(_) => "not valid UTF-8".to_string(),
    }
}

/// An integer, checked to fit the Arrow type.
fn int<T: ArrowPrimitiveType>(b: &[u8]) -> std::result::Result<T::Native, String>
where
    T::Native: TryFrom<i128>,
{
    integer(b)
        .and_then(|n| T::Native::try_from(n).ok())
        .ok_or_else(|| {
            format!(
                "{:?} does not fit {}",
                String::from_utf8_lossy(b),
                T::DATA_TYPE
            )
        })
}

/// The nearest float, by Rust's own `FromStr`.
fn float<T: ArrowPrimitiveType>(b: &[u8]) -> std::result::Result<T::Native, String>
where
    T::Native: std::str::FromStr,
{
    let s = text(b)?;
    s.parse()
        .map_err(|_| format!("{s:?} does not fit {}", T::DATA_TYPE))
}

/// A column of fixed-width values, each parsed from its text by `parse`.
struct Primitive<T: ArrowPrimitiveType, F> {
    b: PrimitiveBuilder<T>,
    data_type: DataType,
    parse: F,
}

fn primitive<T>(
    data_type: DataType,
    parse: impl Fn(&[u8]) -> std::result::Result<T::Native, String> + Send + 'static,
) -> Box<dyn ColumnBuilder>
where
    T: ArrowPrimitiveType,
{
    Box::new(Primitive {
        b: PrimitiveBuilder::<T>::new(),
        data_type,
        parse,
    })
}

impl<T, F> ColumnBuilder for Primitive<T, F>
where
    T: ArrowPrimitiveType,
    F: Fn(&[u8]) -> std::result::Result<T::Native, String> + Send,
{
    fn push(&mut self, value: Option<&[u8]>) -> std::result::Result<(), String> {
        match value {
            None => self.b.append_null(),
            Some(bytes) => self.b.append_value((self.parse)(bytes)?),
        }
        Ok(())
    }

    fn finish(&mut self) -> std::result::Result<ArrayRef, (usize, String)> {
        Ok(Arc::new(
            self.b.finish().with_data_type(self.data_type.clone()),
        ))
    }
}

/// TINYINT(1): 0 or 1, anything else an error.
struct Booleans(BooleanBuilder);

impl ColumnBuilder for Booleans {
    fn push(&mut self, value: Option<&[u8]>) -> std::result::Result<(), String> {
        match value {
            None => self.0.append_null(),
            Some(b"0") => self.0.append_value(false),
            Some(b"1") => self.0.append_value(true),
            Some(other) => return Err(bad("a boolean (TINYINT(1) holds 0 or 1)", other)),
        }
        Ok(())
    }

    fn finish(&mut self) -> std::result::Result<ArrayRef, (usize, String)> {
        Ok(Arc::new(self.0.finish()))
    }
}

/// BIT(1): the server sends the bit as a byte.
struct BitBooleans(BooleanBuilder);

impl ColumnBuilder for BitBooleans {
    fn push(&mut self, value: Option<&[u8]>) -> std::result::Result<(), String> {
        self.0
            .append_option(value.map(|bytes| bytes.iter().any(|&x| x != 0)));
        Ok(())
    }

    fn finish(&mut self) -> std::result::Result<ArrayRef, (usize, String)> {
        Ok(Arc::new(self.0.finish()))
    }
}

/// Text: one UTF-8 check over the whole column; the row is looked for only on failure.
struct Texts(BinaryBuilder);

impl ColumnBuilder for Texts {
    fn push(&mut self, value: Option<&[u8]>) -> std::result::Result<(), String> {
        self.0.append_option(value);
        Ok(())
    }

    fn finish(&mut self) -> std::result::Result<ArrayRef, (usize, String)> {
        let binary = self.0.finish();
        match StringArray::try_from_binary(binary.clone()) {
            Ok(strings) => Ok(Arc::new(strings)),
            Err(_) => {
                let row = (0..binary.len())
                    .find(|&i| binary.is_valid(i) && std::str::from_utf8(binary.value(i)).is_err())
                    .unwrap_or(0);
                Err((row, "not valid UTF-8".to_string()))
            }
        }
    }
}

struct Binaries(BinaryBuilder);

impl ColumnBuilder for Binaries {
    fn push(&mut self, value: Option<&[u8]>) -> std::result::Result<(), String> {
        self.0.append_option(value);
        Ok(())
    }

    fn finish(&mut self) -> std::result::Result<ArrayRef, (usize, String)> {
        Ok(Arc::new(self.0.finish()))
    }
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
    // Nineteen digits always fit a u64, whose arithmetic is cheaper than i128's.
    let (head, tail) = digits.split_at(digits.len().min(19));
    let mut n: u64 = 0;
    for &c in head {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    let mut n = i128::from(n);
    for &c in tail {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i128::from(c - b'0');
    }
    Some(if negative { -n } else { n })
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
fn decimal(b: &[u8], precision: u8, scale: i8) -> Option<i128> {
    let (negative, body) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let scale = usize::try_from(scale).ok()?;
    // At most 38 digits (and a point): the sum cannot overflow, so it needs no checks.
    let digits = body.len() - usize::from(body.contains(&b'.'));
    if digits == 0 || digits > 38 {
        return None;
    }
    let (mut n, mut places) = (0i128, None::<usize>);
    for &c in body {
        match c {
            b'0'..=b'9' => {
                n = n * 10 + i128::from(c - b'0');
                places = places.map(|p| p + 1);
            }
            b'.' if places.is_none() => places = Some(0),
            _ => return None,
        }
    }
    let places = places.unwrap_or(0);
    if places > scale {
        return None;
    }
    n = n.checked_mul(10i128.checked_pow((scale - places) as u32)?)?;
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
    // Digits only: `parse` takes a sign, and "-9…" minutes overflowed (found by fuzzing).
    if ![h, m, sec]
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (h, m, sec): (i64, i64, i64) = (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?);
    if m > 59 || sec > 59 {
        return None;
    }
    let micros: i64 = format!("{fraction:0<6}").parse().ok()?;
    // Checked: the hours are whatever digits the text holds (found by fuzzing).
    let total = h
        .checked_mul(3600)?
        .checked_add(m * 60 + sec)?
        .checked_mul(1_000_000)?
        .checked_add(micros)?;
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (fuzz/regressions/mysql_rows): a length of 2^64 - 1 overflowed.
    #[test]
    fn a_row_whose_length_passes_the_packet_is_malformed() {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("t", DataType::Utf8, true),
        ]));
        let mut b = Batcher::new(schema, vec![Kind::Text], "t".into(), ZeroDates::Error);
        let row = [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, b'a'];
        let e = b.push(&row).unwrap_err().to_string();
        assert!(e.contains("malformed row packet"), "{e}");
        b.push(&[1, b'a']).unwrap();
        assert_eq!(b.finish().unwrap().num_rows(), 1);
    }

    #[test]
    fn times_beyond_a_day_and_negative() {
        assert_eq!(parse_time("838:59:59"), Some(3_020_399_000_000));
        assert_eq!(parse_time("-00:00:01.5"), Some(-1_500_000));
        assert_eq!(parse_time("12:00:00.000001"), Some(43_200_000_001));
        assert_eq!(parse_time("12:60:00"), None);
        assert_eq!(parse_time("1:2"), None);
        assert_eq!(parse_time("99999999999999:00:00"), None);
        assert_eq!(parse_time("1:-9999999999999999:00"), None);
        assert_eq!(parse_time("1:+5:00"), None);
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
        assert_eq!(decimal(b"-12.5", 10, 2), Some(-1250));
        assert_eq!(decimal(b"0.0000000001", 38, 10), Some(1));
        assert_eq!(decimal(b"99999", 5, 0), Some(99999));
        assert_eq!(decimal(b"100000", 5, 0), None);
        assert_eq!(decimal(b"1.234", 10, 2), None);
        assert_eq!(decimal(b"1e5", 10, 2), None);
        assert_eq!(decimal(b"1.2.3", 10, 2), None);
        assert_eq!(decimal(b"-", 10, 2), None);
        let max = "9".repeat(38);
        assert_eq!(decimal(max.as_bytes(), 38, 0), Some(10i128.pow(38) - 1));
        assert_eq!(decimal(format!("{max}9").as_bytes(), 38, 0), None);
    }

    #[test]
    fn integers_of_every_width() {
        assert_eq!(integer(b"18446744073709551615"), Some(i128::from(u64::MAX)));
        assert_eq!(integer(b"-9223372036854775808"), Some(i128::from(i64::MIN)));
        assert_eq!(integer(b"0"), Some(0));
        assert_eq!(integer(b""), None);
        assert_eq!(integer(b"-"), None);
        assert_eq!(integer(b"12a"), None);
        assert_eq!(integer(b"123456789012345678901"), None);
    }
}
