//! `COPY ... TO STDOUT (FORMAT binary)` to record batches, on any chunking of the byte stream.

use std::sync::Arc;

use arrow::array::builder::{NullBufferBuilder, OffsetBufferBuilder};
use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Decimal256Builder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder, ListArray, RecordBatch, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, make_builder,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{
    DataType, Decimal128Type, Decimal256Type, FieldRef, IntervalMonthDayNano, SchemaRef,
};
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
    columns: Vec<Column>,
    buf: BytesMut,
    header_done: bool,
    ended: bool,
    rows_in_batch: usize,
    row_no: u64,
}

impl Decoder {
    pub fn new(schema: SchemaRef, types: Vec<PgType>, max_value: usize) -> Self {
        let columns = types
            .iter()
            .zip(schema.fields())
            .map(|(t, f)| Column::new(t, f.data_type()))
            .collect();
        Self {
            max_value,
            schema,
            columns,
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
            if count as usize != self.columns.len() {
                return Err(Error::internal(format!(
                    "row {}: the server sent {count} fields for {} columns",
                    self.row_no,
                    self.columns.len()
                )));
            }
            let mut at = 2;
            for (i, column) in self.columns.iter_mut().enumerate() {
                let n = i32::from_be_bytes(tuple[at..at + 4].try_into().expect("4 bytes"));
                at += 4;
                if n < 0 {
                    column.append_null();
                    continue;
                }
                let value = &tuple[at..at + n as usize];
                at += n as usize;
                column.append(value).map_err(|why| {
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
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect();
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

/// One column's builder, its kind chosen once from the column's type when the read starts: a
/// cell is then one match on this enum, with no downcast and no look at the Postgres type.
enum Column {
    Bool(BooleanBuilder),
    Int2(Int16Builder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Float4(Float32Builder),
    Float8(Float64Builder),
    Decimal128(Decimal128Builder, u8, i8),
    Decimal256(Decimal256Builder, u8, i8),
    /// Unconstrained numeric, kept exact as text.
    NumericText(StringBuilder),
    Text(StringBuilder),
    Jsonb(StringBuilder),
    TimeTz(StringBuilder),
    Bytea(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Interval(IntervalMonthDayNanoBuilder),
    Uuid(FixedSizeBinaryBuilder),
    /// A one-dimensional array: offsets and validity here, the elements in a column of their own.
    List {
        item: FieldRef,
        offsets: OffsetBufferBuilder<i32>,
        nulls: NullBufferBuilder,
        values: Box<Column>,
    },
}

/// The builder `make_builder` makes for `data_type` (so zones, precision and scale are
/// right), as its concrete type.
fn builder<T: ArrayBuilder>(data_type: &DataType) -> T {
    *make_builder(data_type, 1024)
        .into_box_any()
        .downcast::<T>()
        .expect("make_builder builds the builder of the type asked for")
}

impl Column {
    /// The column for values of `t`, building `data_type` (`t.arrow()`).
    fn new(t: &PgType, data_type: &DataType) -> Self {
        let dt = data_type;
        match t {
            PgType::Bool => Column::Bool(builder(dt)),
            PgType::Int2 => Column::Int2(builder(dt)),
            PgType::Int4 => Column::Int4(builder(dt)),
            PgType::Int8 => Column::Int8(builder(dt)),
            PgType::Float4 => Column::Float4(builder(dt)),
            PgType::Float8 => Column::Float8(builder(dt)),
            PgType::Numeric(Some((p, s))) if *p <= 38 => Column::Decimal128(builder(dt), *p, *s),
            PgType::Numeric(Some((p, s))) => Column::Decimal256(builder(dt), *p, *s),
            PgType::Numeric(None) => Column::NumericText(builder(dt)),
            PgType::Text | PgType::AsText => Column::Text(builder(dt)),
            PgType::Jsonb => Column::Jsonb(builder(dt)),
            PgType::TimeTz => Column::TimeTz(builder(dt)),
            PgType::Bytea => Column::Bytea(builder(dt)),
            PgType::Date => Column::Date(builder(dt)),
            PgType::Time => Column::Time(builder(dt)),
            PgType::Timestamp | PgType::TimestampTz => Column::Timestamp(builder(dt)),
            PgType::Interval => Column::Interval(builder(dt)),
            PgType::Uuid => Column::Uuid(builder(dt)),
            PgType::Array(inner, _) => {
                let DataType::List(item) = dt else {
                    unreachable!("an array's Arrow type is a list (PgType::arrow)")
                };
                Column::List {
                    item: item.clone(),
                    offsets: OffsetBufferBuilder::new(1024),
                    nulls: NullBufferBuilder::new(1024),
                    values: Box::new(Column::new(inner, item.data_type())),
                }
            }
        }
    }

    fn append_null(&mut self) {
        match self {
            Column::Bool(b) => b.append_null(),
            Column::Int2(b) => b.append_null(),
            Column::Int4(b) => b.append_null(),
            Column::Int8(b) => b.append_null(),
            Column::Float4(b) => b.append_null(),
            Column::Float8(b) => b.append_null(),
            Column::Decimal128(b, ..) => b.append_null(),
            Column::Decimal256(b, ..) => b.append_null(),
            Column::NumericText(b) | Column::Text(b) | Column::Jsonb(b) | Column::TimeTz(b) => {
                b.append_null()
            }
            Column::Bytea(b) => b.append_null(),
            Column::Date(b) => b.append_null(),
            Column::Time(b) => b.append_null(),
            Column::Timestamp(b) => b.append_null(),
            Column::Interval(b) => b.append_null(),
            Column::Uuid(b) => b.append_null(),
            Column::List { offsets, nulls, .. } => {
                offsets.push_length(0);
                nulls.append_null();
            }
        }
    }

    /// The array of the values appended since the last call.
    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Int2(b) => Arc::new(b.finish()),
            Column::Int4(b) => Arc::new(b.finish()),
            Column::Int8(b) => Arc::new(b.finish()),
            Column::Float4(b) => Arc::new(b.finish()),
            Column::Float8(b) => Arc::new(b.finish()),
            Column::Decimal128(b, ..) => Arc::new(b.finish()),
            Column::Decimal256(b, ..) => Arc::new(b.finish()),
            Column::NumericText(b) | Column::Text(b) | Column::Jsonb(b) | Column::TimeTz(b) => {
                Arc::new(b.finish())
            }
            Column::Bytea(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Time(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish()),
            Column::Interval(b) => Arc::new(b.finish()),
            Column::Uuid(b) => Arc::new(b.finish()),
            Column::List {
                item,
                offsets,
                nulls,
                values,
            } => {
                let offsets = std::mem::replace(offsets, OffsetBufferBuilder::new(1024)).finish();
                Arc::new(ListArray::new(
                    item.clone(),
                    offsets,
                    values.finish(),
                    nulls.finish(),
                ))
            }
        }
    }

    // Long by design: one arm per Postgres type, the decoding half of the type table (`types.rs`).
    fn append(&mut self, v: &[u8]) -> Result<(), String> {
        match self {
            Column::Bool(b) => b.append_value(be::<1>(v)?[0] != 0),
            Column::Int2(b) => b.append_value(i16::from_be_bytes(be(v)?)),
            Column::Int4(b) => b.append_value(i32::from_be_bytes(be(v)?)),
            Column::Int8(b) => b.append_value(i64::from_be_bytes(be(v)?)),
            Column::Float4(b) => b.append_value(f32::from_be_bytes(be(v)?)),
            Column::Float8(b) => b.append_value(f64::from_be_bytes(be(v)?)),
            Column::Decimal128(b, p, s) => {
                let x = match numeric_to_i128(v, *s) {
                    Some(x) => x,
                    None => parse_decimal::<Decimal128Type>(&exact_digits(v, *p, *s)?, *p, *s)
                        .map_err(|e| e.to_string())?,
                };
                if x.unsigned_abs() >= 10u128.pow(*p as u32) {
                    return Err(format!(
                        "{} does not fit numeric({p},{s})",
                        numeric_to_string(v)?
                    ));
                }
                b.append_value(x);
            }
            Column::Decimal256(b, p, s) => {
                let x = parse_decimal::<Decimal256Type>(&exact_digits(v, *p, *s)?, *p, *s)
                    .map_err(|e| e.to_string())?;
                b.append_value(x);
            }
            Column::NumericText(b) => b.append_value(numeric_to_string(v)?),
            Column::Text(b) => b.append_value(text(v)?),
            Column::Jsonb(b) => {
                let body = v.strip_prefix(&[1]).ok_or("an unknown jsonb version")?;
                b.append_value(text(body)?)
            }
            Column::Bytea(b) => b.append_value(v),
            Column::Date(b) => {
                let days = i32::from_be_bytes(be(v)?);
                if days == i32::MAX || days == i32::MIN {
                    return Err("infinity is not a date Arrow can hold".into());
                }
                // Checked: Postgres's own dates end long before, a forged one need not
                // (found by fuzzing).
                let days = days.checked_add(EPOCH_DAYS).ok_or("a date past Arrow's")?;
                b.append_value(days)
            }
            Column::Time(b) => b.append_value(i64::from_be_bytes(be(v)?)),
            Column::TimeTz(b) => {
                let micros = i64::from_be_bytes(be(&v[..8.min(v.len())])?);
                let west = i32::from_be_bytes(be(&v[8.min(v.len())..])?);
                b.append_value(format_timetz(micros, -west))
            }
            Column::Timestamp(b) => {
                let micros = i64::from_be_bytes(be(v)?);
                if micros == i64::MAX || micros == i64::MIN {
                    return Err("infinity is not a timestamp Arrow can hold".into());
                }
                let micros = micros
                    .checked_add(EPOCH_MICROS)
                    .ok_or("a timestamp past Arrow's microseconds")?;
                b.append_value(micros)
            }
            Column::Interval(b) => {
                let micros = i64::from_be_bytes(be(&v[..8.min(v.len())])?);
                let days = i32::from_be_bytes(be(v.get(8..12).unwrap_or(&[]))?);
                let months = i32::from_be_bytes(be(v.get(12..).unwrap_or(&[]))?);
                let nanos = micros
                    .checked_mul(1000)
                    .ok_or("an interval too long for nanoseconds")?;
                b.append_value(IntervalMonthDayNano::new(months, days, nanos))
            }
            Column::Uuid(b) => b.append_value(v).map_err(|e| e.to_string())?,
            Column::List {
                offsets,
                nulls,
                values,
                ..
            } => {
                let count = append_elements(values, v)?;
                offsets.push_length(count);
                nulls.append_non_null();
            }
        }
        Ok(())
    }
}

/// numeric's exact digits for a decimal column; NaN and ±Infinity do not fit one.
fn exact_digits(v: &[u8], p: u8, s: i8) -> Result<String, String> {
    let digits = numeric_to_string(v)?;
    if !digits.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(format!(
            "{digits} does not fit numeric({p},{s}) as an Arrow decimal"
        ));
    }
    Ok(digits)
}

/// A one-dimensional array's elements (its binary form `v`) appended to `values`; how many.
fn append_elements(values: &mut Column, v: &[u8]) -> Result<usize, String> {
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
        n.max(0) as usize
    } else {
        0
    };
    for _ in 0..count {
        let n = int(&mut r)?;
        if n < 0 {
            values.append_null();
        } else {
            if n as usize > r.len() {
                return Err("an array element longer than its array".into());
            }
            let (value, rest) = r.split_at(n as usize);
            values.append(value)?;
            r = rest;
        }
    }
    Ok(count)
}

/// A value's bytes as text, borrowed: appended without an allocation per cell.
fn text(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|_| "text that is not UTF-8".to_string())
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
