//! `COPY ... TO STDOUT (FORMAT binary)` to record batches, on any chunking of the byte stream.

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Decimal256Builder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder, ListBuilder, RecordBatch,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder, make_builder,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{Decimal128Type, Decimal256Type, IntervalMonthDayNano, SchemaRef};
use bytes::{Buf, BytesMut};

use super::super::types::PgType;
use super::{
    EPOCH_DAYS, EPOCH_MICROS, SIGNATURE, be, format_timetz, numeric_to_i128, numeric_to_string,
};
use crate::error::{CellError, Error, Result};

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

// Long by design: one arm per Postgres type, the decoding half of the type table (`types.rs`).
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

#[cfg(test)]
mod tests {
    use super::super::{TRAILER, encode, header};
    use super::*;

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
