//! Record batches to the tuples of `COPY ... FROM STDIN (FORMAT binary)`.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    Date32Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, IntervalMonthDayNanoType, Time64MicrosecondType, TimestampMicrosecondType,
};

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

// Long by design: one arm per Postgres type, the encoding half of the type table (`types.rs`).
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
