//! Postgres binary COPY to Arrow and back, written here: the format is small and stable, and a
//! decoder that works on any chunking of the byte stream (sqlx hands out one chunk per row) and
//! builds Arrow arrays directly was simpler than adapting a crate to our Arrow version.
//!
//! Format: an 11-byte signature, flags and an extension area; then tuples: a field count
//! (i16, -1 ends the data) and per field a length (i32, -1 is NULL) and the value's binary
//! form. All integers are big-endian.

use std::fmt::Write as _;

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder,
    Decimal128Builder, Decimal256Builder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder, ListBuilder,
    RecordBatch, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
    make_builder,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{
    Date32Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, SchemaRef, Time64MicrosecondType,
    TimestampMicrosecondType,
};
use bytes::{Buf, BytesMut};

use super::types::PgType;
use crate::error::{CellError, Error, Result};

pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Days and microseconds from 1970-01-01 to Postgres's epoch, 2000-01-01.
const EPOCH_DAYS: i32 = 10_957;
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Turns the bytes of `COPY … TO STDOUT (FORMAT binary)` into record batches.
pub struct Decoder {
    /// Largest single value accepted: a bigger one is refused as soon as its length arrives,
    /// before its bytes are buffered.
    max_value: usize,
    schema: SchemaRef,
    types: Vec<PgType>,
    builders: Vec<Box<dyn ArrayBuilder>>,
    buf: BytesMut,
    header_done: bool,
    ended: bool,
    rows_in_batch: usize,
    row_no: u64,
}

impl Decoder {
    pub fn new(schema: SchemaRef, types: Vec<PgType>, max_value: usize) -> Self {
        let builders = schema
            .fields()
            .iter()
            .map(|f| make_builder(f.data_type(), 1024))
            .collect();
        Self {
            max_value,
            schema,
            types,
            builders,
            buf: BytesMut::new(),
            header_done: false,
            ended: false,
            rows_in_batch: 0,
            row_no: 0,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Decode the whole tuples buffered, up to `batch_rows`; a batch when that many are ready.
    pub fn next_batch(&mut self, batch_rows: usize) -> Result<Option<RecordBatch>> {
        if !self.header_done {
            if self.buf.len() < 19 {
                return Ok(None);
            }
            if &self.buf[..11] != SIGNATURE {
                return Err(Error::internal("not binary COPY data"));
            }
            let ext = u32::from_be_bytes(self.buf[15..19].try_into().expect("4 bytes")) as usize;
            if self.buf.len() < 19 + ext {
                return Ok(None);
            }
            self.buf.advance(19 + ext);
            self.header_done = true;
        }
        while !self.ended && self.rows_in_batch < batch_rows {
            let len = match tuple_len(&self.buf, self.max_value) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err((field, size)) => {
                    let name = self
                        .schema
                        .fields()
                        .get(field)
                        .map(|f| f.name().as_str())
                        .unwrap_or("?");
                    return Err(CellError::new(
                        self.row_no + 1,
                        name,
                        format!(
                            "a value of {size} bytes is larger than the {} bytes one value may have here (max_value_mb)",
                            self.max_value
                        ),
                    )
                    .into());
                }
            };
            let tuple = self.buf.split_to(len);
            let count = i16::from_be_bytes([tuple[0], tuple[1]]);
            if count == -1 {
                self.ended = true;
                break;
            }
            self.row_no += 1;
            if count as usize != self.types.len() {
                return Err(Error::internal(format!(
                    "row {}: the server sent {count} fields for {} columns",
                    self.row_no,
                    self.types.len()
                )));
            }
            let mut at = 2;
            for (i, (t, b)) in self.types.iter().zip(self.builders.iter_mut()).enumerate() {
                let n = i32::from_be_bytes(tuple[at..at + 4].try_into().expect("4 bytes"));
                at += 4;
                if n < 0 {
                    append_null(t, b.as_mut());
                    continue;
                }
                let value = &tuple[at..at + n as usize];
                at += n as usize;
                decode(t, b.as_mut(), value).map_err(|why| {
                    Error::from(CellError::new(
                        self.row_no,
                        self.schema.field(i).name(),
                        why,
                    ))
                })?;
            }
            self.rows_in_batch += 1;
        }
        if self.rows_in_batch >= batch_rows {
            return self.flush().map(Some);
        }
        Ok(None)
    }

    /// The rows left after the data ended (or an error if it did not end properly).
    pub fn finish(&mut self) -> Result<Option<RecordBatch>> {
        if !self.ended {
            return Err(Error::internal("the COPY data ended without its trailer"));
        }
        if self.rows_in_batch == 0 {
            return Ok(None);
        }
        self.flush().map(Some)
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    fn flush(&mut self) -> Result<RecordBatch> {
        self.rows_in_batch = 0;
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }
}

/// The length of the first tuple in `buf` if it is all there; a field longer than `max_value`
/// is an error (its index and length) as soon as its length is seen.
fn tuple_len(buf: &[u8], max_value: usize) -> Result<Option<usize>, (usize, usize)> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let count = i16::from_be_bytes([buf[0], buf[1]]);
    if count < 0 {
        return Ok(Some(2));
    }
    let mut at = 2usize;
    for field in 0..count as usize {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let n = i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
        let n = n.max(0) as usize;
        if n > max_value {
            return Err((field, n));
        }
        at += 4 + n;
    }
    Ok((buf.len() >= at).then_some(at))
}

fn b<T: 'static>(builder: &mut dyn ArrayBuilder) -> &mut T {
    builder
        .as_any_mut()
        .downcast_mut::<T>()
        .expect("the builder matches its column's type")
}

fn be<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

fn append_null(t: &PgType, builder: &mut dyn ArrayBuilder) {
    match t {
        PgType::Bool => b::<BooleanBuilder>(builder).append_null(),
        PgType::Int2 => b::<Int16Builder>(builder).append_null(),
        PgType::Int4 => b::<Int32Builder>(builder).append_null(),
        PgType::Int8 => b::<Int64Builder>(builder).append_null(),
        PgType::Float4 => b::<Float32Builder>(builder).append_null(),
        PgType::Float8 => b::<Float64Builder>(builder).append_null(),
        PgType::Numeric(Some((p, _))) if *p <= 38 => b::<Decimal128Builder>(builder).append_null(),
        PgType::Numeric(Some(_)) => b::<Decimal256Builder>(builder).append_null(),
        PgType::Numeric(None) | PgType::Text | PgType::Jsonb | PgType::TimeTz | PgType::AsText => {
            b::<StringBuilder>(builder).append_null()
        }
        PgType::Bytea => b::<BinaryBuilder>(builder).append_null(),
        PgType::Date => b::<Date32Builder>(builder).append_null(),
        PgType::Time => b::<Time64MicrosecondBuilder>(builder).append_null(),
        PgType::Timestamp | PgType::TimestampTz => {
            b::<TimestampMicrosecondBuilder>(builder).append_null()
        }
        PgType::Interval => b::<IntervalMonthDayNanoBuilder>(builder).append_null(),
        PgType::Uuid => b::<FixedSizeBinaryBuilder>(builder).append_null(),
        PgType::Array(..) => b::<ListBuilder<Box<dyn ArrayBuilder>>>(builder).append_null(),
    }
}

/// A value's bytes as text, borrowed: appended without an allocation per cell.
fn text(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|_| "text that is not UTF-8".to_string())
}

fn decode(t: &PgType, builder: &mut dyn ArrayBuilder, v: &[u8]) -> Result<(), String> {
    match t {
        PgType::Bool => b::<BooleanBuilder>(builder).append_value(be::<1>(v)?[0] != 0),
        PgType::Int2 => b::<Int16Builder>(builder).append_value(i16::from_be_bytes(be(v)?)),
        PgType::Int4 => b::<Int32Builder>(builder).append_value(i32::from_be_bytes(be(v)?)),
        PgType::Int8 => b::<Int64Builder>(builder).append_value(i64::from_be_bytes(be(v)?)),
        PgType::Float4 => b::<Float32Builder>(builder).append_value(f32::from_be_bytes(be(v)?)),
        PgType::Float8 => b::<Float64Builder>(builder).append_value(f64::from_be_bytes(be(v)?)),
        PgType::Numeric(Some((p, s))) if *p <= 38 && numeric_to_i128(v, *s).is_some() => {
            let x = numeric_to_i128(v, *s).expect("checked");
            if x.unsigned_abs() >= 10u128.pow(*p as u32) {
                return Err(format!(
                    "{} does not fit numeric({p},{s})",
                    numeric_to_string(v)?
                ));
            }
            b::<Decimal128Builder>(builder).append_value(x);
        }
        PgType::Numeric(Some((p, s))) => {
            let digits = numeric_to_string(v)?;
            if !digits.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                return Err(format!(
                    "{digits} does not fit numeric({p},{s}) as an Arrow decimal"
                ));
            }
            if *p <= 38 {
                let x =
                    parse_decimal::<Decimal128Type>(&digits, *p, *s).map_err(|e| e.to_string())?;
                b::<Decimal128Builder>(builder).append_value(x);
            } else {
                let x =
                    parse_decimal::<Decimal256Type>(&digits, *p, *s).map_err(|e| e.to_string())?;
                b::<Decimal256Builder>(builder).append_value(x);
            }
        }
        PgType::Numeric(None) => b::<StringBuilder>(builder).append_value(numeric_to_string(v)?),
        PgType::Text | PgType::AsText => b::<StringBuilder>(builder).append_value(text(v)?),
        PgType::Jsonb => {
            let body = v.strip_prefix(&[1]).ok_or("an unknown jsonb version")?;
            b::<StringBuilder>(builder).append_value(text(body)?)
        }
        PgType::Bytea => b::<BinaryBuilder>(builder).append_value(v),
        PgType::Date => {
            let days = i32::from_be_bytes(be(v)?);
            if days == i32::MAX || days == i32::MIN {
                return Err("infinity is not a date Arrow can hold".into());
            }
            b::<Date32Builder>(builder).append_value(days + EPOCH_DAYS)
        }
        PgType::Time => {
            b::<Time64MicrosecondBuilder>(builder).append_value(i64::from_be_bytes(be(v)?))
        }
        PgType::TimeTz => {
            let micros = i64::from_be_bytes(be(&v[..8.min(v.len())])?);
            let west = i32::from_be_bytes(be(&v[8.min(v.len())..])?);
            b::<StringBuilder>(builder).append_value(format_timetz(micros, -west))
        }
        PgType::Timestamp | PgType::TimestampTz => {
            let micros = i64::from_be_bytes(be(v)?);
            if micros == i64::MAX || micros == i64::MIN {
                return Err("infinity is not a timestamp Arrow can hold".into());
            }
            b::<TimestampMicrosecondBuilder>(builder).append_value(micros + EPOCH_MICROS)
        }
        PgType::Interval => {
            let micros = i64::from_be_bytes(be(&v[..8.min(v.len())])?);
            let days = i32::from_be_bytes(be(v.get(8..12).unwrap_or(&[]))?);
            let months = i32::from_be_bytes(be(v.get(12..).unwrap_or(&[]))?);
            let nanos = micros
                .checked_mul(1000)
                .ok_or("an interval too long for nanoseconds")?;
            b::<IntervalMonthDayNanoBuilder>(builder)
                .append_value(IntervalMonthDayNano::new(months, days, nanos))
        }
        PgType::Uuid => b::<FixedSizeBinaryBuilder>(builder)
            .append_value(v)
            .map_err(|e| e.to_string())?,
        PgType::Array(inner, _) => {
            let list = b::<ListBuilder<Box<dyn ArrayBuilder>>>(builder);
            let mut r = v;
            let int = |r: &mut &[u8]| -> Result<i32, String> {
                let x = i32::from_be_bytes(be(r.get(..4).ok_or("a short array")?)?);
                *r = &r[4..];
                Ok(x)
            };
            let ndim = int(&mut r)?;
            let _has_null = int(&mut r)?;
            let _elem = int(&mut r)?;
            if ndim > 1 {
                return Err("multi-dimensional arrays are not supported".into());
            }
            let count = if ndim == 1 {
                let n = int(&mut r)?;
                let _lower = int(&mut r)?;
                n
            } else {
                0
            };
            for _ in 0..count {
                let n = int(&mut r)?;
                if n < 0 {
                    append_null(inner, list.values().as_mut());
                } else {
                    if n as usize > r.len() {
                        return Err("an array element longer than its array".into());
                    }
                    let (value, rest) = r.split_at(n as usize);
                    decode(inner, list.values().as_mut(), value)?;
                    r = rest;
                }
            }
            list.append(true);
        }
    }
    Ok(())
}

fn format_timetz(micros: i64, offset_secs: i32) -> String {
    let (h, m, s, us) = (
        micros / 3_600_000_000,
        micros / 60_000_000 % 60,
        micros / 1_000_000 % 60,
        micros % 1_000_000,
    );
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let off = offset_secs.abs();
    let mut out = format!("{h:02}:{m:02}:{s:02}");
    if us != 0 {
        let _ = write!(out, ".{us:06}");
    }
    let _ = write!(out, "{sign}{:02}:{:02}", off / 3600, off / 60 % 60);
    out
}

/// numeric's binary form as an integer scaled by 10^`scale`, without going through text; None
/// for NaN/±Infinity, for digits beyond `scale`, or when it does not fit an i128 (callers then
/// take the text path, which reports the exact problem).
fn numeric_to_i128(v: &[u8], scale: i8) -> Option<i128> {
    let word = |i: usize| -> Option<i16> {
        Some(i16::from_be_bytes(
            v.get(i * 2..i * 2 + 2)?.try_into().ok()?,
        ))
    };
    let (ndigits, weight, sign) = (word(0)? as usize, word(1)? as i32, word(2)? as u16);
    if sign != 0x0000 && sign != 0x4000 {
        return None;
    }
    let mut acc: i128 = 0;
    for i in 0..ndigits {
        acc = acc.checked_mul(10_000)?.checked_add(word(4 + i)? as i128)?;
    }
    // acc = value × 10000^(ndigits - 1 - weight); we want value × 10^scale.
    let exp = scale as i32 - 4 * (ndigits as i32 - 1 - weight);
    let scaled = if exp >= 0 {
        acc.checked_mul(10i128.checked_pow(exp as u32)?)?
    } else {
        let div = 10i128.checked_pow((-exp) as u32)?;
        if acc % div != 0 {
            return None;
        }
        acc / div
    };
    Some(if sign == 0x4000 { -scaled } else { scaled })
}

/// An integer scaled by 10^`scale` as numeric's binary form (dscale = `scale`); false (and
/// nothing written) when aligning it overflows, for the caller to take the text path.
fn numeric_from_i128(value: i128, scale: i8, out: &mut Vec<u8>) -> bool {
    let scale = scale.max(0) as u32;
    // Align the fraction to whole base-10000 groups.
    let pad = (4 - scale % 4) % 4;
    let frac_groups = (scale + pad) / 4;
    let Some(mut mag) = value.unsigned_abs().checked_mul(10u128.pow(pad)) else {
        return false;
    };
    let mut groups: Vec<i16> = Vec::with_capacity(10);
    while mag > 0 {
        groups.push((mag % 10_000) as i16);
        mag /= 10_000;
    }
    // Least significant first: drop trailing zero groups (they are implied), keep the weight.
    let total = groups.len() as i32;
    let mut skip = 0;
    while skip < groups.len() && groups[skip] == 0 {
        skip += 1;
    }
    let weight = if groups.is_empty() {
        0
    } else {
        total - 1 - frac_groups as i32
    };
    let digits: Vec<i16> = groups[skip..].iter().rev().copied().collect();
    let sign: u16 = if value < 0 { 0x4000 } else { 0 };
    write_numeric(out, &digits, weight, sign, scale as i16);
    true
}

/// numeric's binary form (base-10000 digits) as exact decimal text, NaN and ±Infinity included.
pub fn numeric_to_string(v: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<i16, String> {
        Ok(i16::from_be_bytes(be(v
            .get(i * 2..i * 2 + 2)
            .ok_or("a short numeric")?)?))
    };
    let (ndigits, weight, sign, dscale) = (
        word(0)? as usize,
        word(1)? as i32,
        word(2)? as u16,
        word(3)? as usize,
    );
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digit = |d: i32| -> Result<i16, String> {
        if d >= 0 && (d as usize) < ndigits {
            word(4 + d as usize)
        } else {
            Ok(0)
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for d in 0..=weight {
            let x = digit(d)?;
            let _ = if d == 0 {
                write!(s, "{x}")
            } else {
                write!(s, "{x:04}")
            };
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut d = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(d)?);
            d += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Ok(s)
}

/// Exact decimal text (or NaN, ±Infinity) as numeric's binary form.
pub fn numeric_from_str(text: &str) -> Result<Vec<u8>, String> {
    let special = |sign: u16| {
        [0i16, 0, sign as i16, 0]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect()
    };
    match text {
        "NaN" => return Ok(special(0xC000)),
        "Infinity" | "inf" => return Ok(special(0xD000)),
        "-Infinity" | "-inf" => return Ok(special(0xF000)),
        _ => {}
    }
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|c| c.is_ascii_digit())
        || !frac.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(format!("{text:?} is not a number"));
    }
    let int = int.trim_start_matches('0');
    let dscale = frac.len();
    // Align to groups of four digits around the decimal point.
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let digits: String = "0".repeat(int_pad) + int + frac + &"0".repeat(frac_pad);
    let mut groups: Vec<i16> = digits
        .as_bytes()
        .chunks(4)
        .map(|c| {
            std::str::from_utf8(c)
                .expect("ascii")
                .parse()
                .expect("digits")
        })
        .collect();
    let mut weight = ((int.len() + int_pad) / 4) as i32 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if neg && !groups.is_empty() { 0x4000 } else { 0 };
    let mut out = Vec::with_capacity(8 + groups.len() * 2);
    write_numeric(&mut out, &groups, weight, sign, dscale as i16);
    Ok(out)
}

/// numeric's binary form: digit count, weight, sign, display scale, then base-10000 digits.
fn write_numeric(out: &mut Vec<u8>, digits: &[i16], weight: i32, sign: u16, dscale: i16) {
    for w in [digits.len() as i16, weight as i16, sign as i16, dscale] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// The binary COPY header.
pub fn header() -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out
}

/// The end-of-data marker.
pub const TRAILER: [u8; 2] = (-1i16).to_be_bytes();

/// Append `columns` (already cast to each type's Arrow type) as tuples. On a value that
/// cannot be encoded: its row within the batch, its column and why.
pub fn encode(
    types: &[PgType],
    columns: &[ArrayRef],
    out: &mut Vec<u8>,
) -> Result<(), (usize, usize, String)> {
    let rows = columns.first().map_or(0, |c| c.len());
    for r in 0..rows {
        out.extend_from_slice(&(columns.len() as i16).to_be_bytes());
        for (c, (t, col)) in types.iter().zip(columns).enumerate() {
            if col.is_null(r) {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            length_prefixed(out, |out| encode_value(t, col.as_ref(), r, out))
                .map_err(|e| (r, c, e))?;
        }
    }
    Ok(())
}

/// A value written by `write`, preceded by its length (i32), as fields and array elements are.
fn length_prefixed(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out)?;
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn encode_value(t: &PgType, col: &dyn Array, r: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match t {
        PgType::Bool => out.push(col.as_boolean().value(r) as u8),
        PgType::Int2 => {
            out.extend_from_slice(&col.as_primitive::<Int16Type>().value(r).to_be_bytes())
        }
        PgType::Int4 => {
            out.extend_from_slice(&col.as_primitive::<Int32Type>().value(r).to_be_bytes())
        }
        PgType::Int8 => {
            out.extend_from_slice(&col.as_primitive::<Int64Type>().value(r).to_be_bytes())
        }
        PgType::Float4 => {
            out.extend_from_slice(&col.as_primitive::<Float32Type>().value(r).to_be_bytes())
        }
        PgType::Float8 => {
            out.extend_from_slice(&col.as_primitive::<Float64Type>().value(r).to_be_bytes())
        }
        PgType::Numeric(Some((p, s))) if *p <= 38 => {
            let value = col.as_primitive::<Decimal128Type>().value(r);
            if !numeric_from_i128(value, *s, out) {
                let text = col.as_primitive::<Decimal128Type>().value_as_string(r);
                out.extend_from_slice(&numeric_from_str(&text)?);
            }
        }
        PgType::Numeric(Some(_)) => {
            let text = col.as_primitive::<Decimal256Type>().value_as_string(r);
            out.extend_from_slice(&numeric_from_str(&text)?);
        }
        PgType::Numeric(None) => {
            out.extend_from_slice(&numeric_from_str(col.as_string::<i32>().value(r))?)
        }
        PgType::Text => out.extend_from_slice(col.as_string::<i32>().value(r).as_bytes()),
        PgType::Jsonb => {
            out.push(1);
            out.extend_from_slice(col.as_string::<i32>().value(r).as_bytes());
        }
        PgType::Bytea => out.extend_from_slice(col.as_binary::<i32>().value(r)),
        PgType::Date => {
            let days = col.as_primitive::<Date32Type>().value(r) - EPOCH_DAYS;
            out.extend_from_slice(&days.to_be_bytes());
        }
        PgType::Time => out.extend_from_slice(
            &col.as_primitive::<Time64MicrosecondType>()
                .value(r)
                .to_be_bytes(),
        ),
        PgType::TimeTz => {
            let (micros, offset) = parse_timetz(col.as_string::<i32>().value(r))?;
            out.extend_from_slice(&micros.to_be_bytes());
            out.extend_from_slice(&(-offset).to_be_bytes());
        }
        PgType::Timestamp | PgType::TimestampTz => {
            let micros = col.as_primitive::<TimestampMicrosecondType>().value(r) - EPOCH_MICROS;
            out.extend_from_slice(&micros.to_be_bytes());
        }
        PgType::Interval => {
            let v = col.as_primitive::<IntervalMonthDayNanoType>().value(r);
            if v.nanoseconds % 1000 != 0 {
                return Err(
                    "an interval with sub-microsecond nanoseconds (Postgres keeps microseconds)"
                        .into(),
                );
            }
            out.extend_from_slice(&(v.nanoseconds / 1000).to_be_bytes());
            out.extend_from_slice(&v.days.to_be_bytes());
            out.extend_from_slice(&v.months.to_be_bytes());
        }
        PgType::Uuid => {
            let v = col.as_fixed_size_binary().value(r);
            if v.len() != 16 {
                return Err("a uuid must be 16 bytes".into());
            }
            out.extend_from_slice(v);
        }
        PgType::Array(inner, elem_oid) => {
            let values = col.as_list::<i32>().value(r);
            let n = values.len() as i32;
            let has_null = values.null_count() > 0;
            for w in [
                if n == 0 { 0 } else { 1 },
                has_null as i32,
                *elem_oid as i32,
            ] {
                out.extend_from_slice(&w.to_be_bytes());
            }
            if n > 0 {
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
            }
            for i in 0..values.len() {
                if values.is_null(i) {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                    continue;
                }
                length_prefixed(out, |out| encode_value(inner, values.as_ref(), i, out))?;
            }
        }
        PgType::AsText => return Err("this column's type cannot be written by binary COPY".into()),
    }
    Ok(())
}

/// `HH:MM:SS[.ffffff]±HH[:MM]` to microseconds and the offset east of UTC in seconds.
fn parse_timetz(text: &str) -> Result<(i64, i32), String> {
    let bad = || format!("{text:?} is not a time with zone (HH:MM:SS+HH:MM)");
    let split = text.rfind(['+', '-']).ok_or_else(bad)?;
    let (time, zone) = text.split_at(split);
    let t = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S%.f").map_err(|_| bad())?;
    use chrono::Timelike;
    let micros = t.num_seconds_from_midnight() as i64 * 1_000_000 + (t.nanosecond() / 1000) as i64;
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let mut parts = zone[1..].split(':');
    let h: i32 = parts.next().and_then(|h| h.parse().ok()).ok_or_else(bad)?;
    let m: i32 = parts
        .next()
        .map(|m| m.parse().map_err(|_| bad()))
        .transpose()?
        .unwrap_or(0);
    Ok((micros, sign * (h * 3600 + m * 60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_text_round_trips() {
        for s in [
            "0",
            "1",
            "-1",
            "10000",
            "12345.678",
            "-0.0001",
            "0.5",
            "100000000.00000001",
            "99999999999999999999999999999999999999",
            "NaN",
            "Infinity",
            "-Infinity",
            "123.4500",
        ] {
            let bin = numeric_from_str(s).unwrap();
            assert_eq!(numeric_to_string(&bin).unwrap(), s, "{s}");
        }
        let big = format!("{}.{}", "9".repeat(1000), "1".repeat(50));
        assert_eq!(
            numeric_to_string(&numeric_from_str(&big).unwrap()).unwrap(),
            big
        );
        assert!(numeric_from_str("12a").is_err());
    }

    #[test]
    fn numeric_integers_agree_with_the_text_path() {
        let cases: &[(&str, i8)] = &[
            ("0", 2),
            ("1.5", 2),
            ("-1.5", 2),
            ("24710.35", 2),
            ("0.04", 2),
            ("12345678.9012", 4),
            ("10000", 0),
            ("-99999.99999", 5),
            ("0.0000000001", 10),
            ("9999999999", 0),
            ("123456789012345678901234567.89", 2),
            ("-0.5", 1),
            ("100000000", 3),
            ("7", 9),
        ];
        for (text, scale) in cases {
            let bin = numeric_from_str(text).unwrap();
            let want = parse_decimal::<Decimal128Type>(text, 38, *scale).unwrap();
            assert_eq!(
                numeric_to_i128(&bin, *scale),
                Some(want),
                "{text} as scale {scale}"
            );
            let mut out = Vec::new();
            assert!(numeric_from_i128(want, *scale, &mut out));
            let back = numeric_to_string(&out).unwrap();
            let again = parse_decimal::<Decimal128Type>(&back, 38, *scale).unwrap();
            assert_eq!(again, want, "{text}: {back}");
            assert_eq!(numeric_to_i128(&out, *scale), Some(want), "{text}");
        }
        // 38 nines with scale 10 overflow the alignment: the text path takes them.
        let mut out = Vec::new();
        assert!(!numeric_from_i128(10i128.pow(38) - 1, 10, &mut out));
        assert!(out.is_empty());
        // Digits beyond the scale, NaN: the text path decides.
        assert_eq!(
            numeric_to_i128(&numeric_from_str("1.234").unwrap(), 2),
            None
        );
        assert_eq!(numeric_to_i128(&numeric_from_str("NaN").unwrap(), 2), None);
    }

    #[test]
    fn timetz_text_round_trips() {
        let (us, off) = parse_timetz("13:45:01.250000+05:30").unwrap();
        assert_eq!(format_timetz(us, off), "13:45:01.250000+05:30");
        let (us, off) = parse_timetz("00:00:00-08:00").unwrap();
        assert_eq!(format_timetz(us, off), "00:00:00-08:00");
    }

    #[test]
    fn tuples_split_anywhere_decode_the_same() {
        use arrow::datatypes::{Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("a", arrow::datatypes::DataType::Int32, true),
            Field::new("b", arrow::datatypes::DataType::Utf8, true),
        ]));
        let types = vec![PgType::Int4, PgType::Text];
        let cols: Vec<ArrayRef> = vec![
            std::sync::Arc::new(arrow::array::Int32Array::from(vec![Some(1), None, Some(3)])),
            std::sync::Arc::new(arrow::array::StringArray::from(vec![
                Some("x"),
                Some("Zoë"),
                None,
            ])),
        ];
        let mut data = header();
        encode(&types, &cols, &mut data).unwrap();
        data.extend_from_slice(&TRAILER);
        for chunk in [1, 2, 3, 7, data.len()] {
            let mut d = Decoder::new(schema.clone(), types.clone(), 1 << 20);
            let mut got = Vec::new();
            for part in data.chunks(chunk) {
                d.push(part);
                while let Some(b) = d.next_batch(2).unwrap() {
                    got.push(b);
                }
            }
            got.extend(d.finish().unwrap());
            let all = arrow::compute::concat_batches(&schema, &got).unwrap();
            assert_eq!(all.columns(), &cols[..], "chunk {chunk}");
        }
    }
}
