//! Record batches to the tuples of `COPY ... FROM STDIN (FORMAT binary)`.

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Decimal256Array, FixedSizeBinaryArray, Float32Array, Float64Array, Int16Array, Int32Array,
    Int64Array, IntervalMonthDayNanoArray, ListArray, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow::buffer::NullBuffer;

use super::super::types::PgType;
use super::{
    EPOCH_DAYS, EPOCH_MICROS, SIGNATURE, numeric_from_i128, numeric_from_str, parse_timetz,
};
use crate::error::Result;

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
    // Each column's codec is chosen (and its array downcast) once per batch, not per cell.
    let values: Vec<(Option<&NullBuffer>, Values)> = types
        .iter()
        .zip(columns)
        .map(|(t, col)| (col.nulls(), Values::new(t, col.as_ref())))
        .collect();
    let rows = columns.first().map_or(0, |c| c.len());
    for r in 0..rows {
        out.extend_from_slice(&(columns.len() as i16).to_be_bytes());
        for (c, (nulls, values)) in values.iter().enumerate() {
            if nulls.is_some_and(|n| n.is_null(r)) {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            length_prefixed(out, |out| values.write(r, out)).map_err(|e| (r, c, e))?;
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

/// One column's array as the concrete type its Postgres type is written from.
enum Values<'a> {
    Bool(&'a BooleanArray),
    Int2(&'a Int16Array),
    Int4(&'a Int32Array),
    Int8(&'a Int64Array),
    Float4(&'a Float32Array),
    Float8(&'a Float64Array),
    Decimal128(&'a Decimal128Array, i8),
    Decimal256(&'a Decimal256Array),
    NumericText(&'a StringArray),
    Text(&'a StringArray),
    Jsonb(&'a StringArray),
    TimeTz(&'a StringArray),
    Bytea(&'a BinaryArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray),
    Interval(&'a IntervalMonthDayNanoArray),
    Uuid(&'a FixedSizeBinaryArray),
    /// A one-dimensional array: its offsets, its elements' array and their codec.
    List {
        list: &'a ListArray,
        elem_oid: u32,
        items: &'a dyn Array,
        values: Box<Values<'a>>,
    },
    Unwritable,
}

impl<'a> Values<'a> {
    fn new(t: &PgType, col: &'a dyn Array) -> Self {
        match t {
            PgType::Bool => Values::Bool(col.as_boolean()),
            PgType::Int2 => Values::Int2(col.as_primitive()),
            PgType::Int4 => Values::Int4(col.as_primitive()),
            PgType::Int8 => Values::Int8(col.as_primitive()),
            PgType::Float4 => Values::Float4(col.as_primitive()),
            PgType::Float8 => Values::Float8(col.as_primitive()),
            PgType::Numeric(Some((p, s))) if *p <= 38 => Values::Decimal128(col.as_primitive(), *s),
            PgType::Numeric(Some(_)) => Values::Decimal256(col.as_primitive()),
            PgType::Numeric(None) => Values::NumericText(col.as_string()),
            PgType::Text => Values::Text(col.as_string()),
            PgType::Jsonb => Values::Jsonb(col.as_string()),
            PgType::TimeTz => Values::TimeTz(col.as_string()),
            PgType::Bytea => Values::Bytea(col.as_binary()),
            PgType::Date => Values::Date(col.as_primitive()),
            PgType::Time => Values::Time(col.as_primitive()),
            PgType::Timestamp | PgType::TimestampTz => Values::Timestamp(col.as_primitive()),
            PgType::Interval => Values::Interval(col.as_primitive()),
            PgType::Uuid => Values::Uuid(col.as_fixed_size_binary()),
            PgType::Array(inner, elem_oid) => {
                let list = col.as_list::<i32>();
                let items = list.values().as_ref();
                Values::List {
                    list,
                    elem_oid: *elem_oid,
                    items,
                    values: Box::new(Values::new(inner, items)),
                }
            }
            PgType::AsText => Values::Unwritable,
        }
    }

    // Long by design: one arm per Postgres type, the encoding half of the type table (`types.rs`).
    fn write(&self, r: usize, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Values::Bool(a) => out.push(a.value(r) as u8),
            Values::Int2(a) => out.extend_from_slice(&a.value(r).to_be_bytes()),
            Values::Int4(a) => out.extend_from_slice(&a.value(r).to_be_bytes()),
            Values::Int8(a) => out.extend_from_slice(&a.value(r).to_be_bytes()),
            Values::Float4(a) => out.extend_from_slice(&a.value(r).to_be_bytes()),
            Values::Float8(a) => out.extend_from_slice(&a.value(r).to_be_bytes()),
            Values::Decimal128(a, s) => {
                if !numeric_from_i128(a.value(r), *s, out) {
                    out.extend_from_slice(&numeric_from_str(&a.value_as_string(r))?);
                }
            }
            Values::Decimal256(a) => {
                out.extend_from_slice(&numeric_from_str(&a.value_as_string(r))?)
            }
            Values::NumericText(a) => out.extend_from_slice(&numeric_from_str(a.value(r))?),
            Values::Text(a) => out.extend_from_slice(a.value(r).as_bytes()),
            Values::Jsonb(a) => {
                out.push(1);
                out.extend_from_slice(a.value(r).as_bytes());
            }
            Values::Bytea(a) => out.extend_from_slice(a.value(r)),
            Values::Date(a) => out.extend_from_slice(&(a.value(r) - EPOCH_DAYS).to_be_bytes()),
            Values::Time(a) => out.extend_from_slice(&a.value(r).to_be_bytes()),
            Values::TimeTz(a) => {
                let (micros, offset) = parse_timetz(a.value(r))?;
                out.extend_from_slice(&micros.to_be_bytes());
                out.extend_from_slice(&(-offset).to_be_bytes());
            }
            Values::Timestamp(a) => {
                out.extend_from_slice(&(a.value(r) - EPOCH_MICROS).to_be_bytes())
            }
            Values::Interval(a) => {
                let v = a.value(r);
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
            Values::Uuid(a) => {
                let v = a.value(r);
                if v.len() != 16 {
                    return Err("a uuid must be 16 bytes".into());
                }
                out.extend_from_slice(v);
            }
            Values::List {
                list,
                elem_oid,
                items,
                values,
            } => {
                let offsets = list.value_offsets();
                let (start, end) = (offsets[r] as usize, offsets[r + 1] as usize);
                let n = (end - start) as i32;
                let has_null = (start..end).any(|i| items.is_null(i));
                for w in [(n > 0) as i32, has_null as i32, *elem_oid as i32] {
                    out.extend_from_slice(&w.to_be_bytes());
                }
                if n > 0 {
                    out.extend_from_slice(&n.to_be_bytes());
                    out.extend_from_slice(&1i32.to_be_bytes());
                }
                for i in start..end {
                    if items.is_null(i) {
                        out.extend_from_slice(&(-1i32).to_be_bytes());
                        continue;
                    }
                    length_prefixed(out, |out| values.write(i, out))?;
                }
            }
            Values::Unwritable => {
                return Err("this column's type cannot be written by binary COPY".into());
            }
        }
        Ok(())
    }
}
