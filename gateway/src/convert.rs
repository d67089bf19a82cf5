//! Casts that refuse to lose data, and say which row would have lost it.
//!
//! Arrow's `cast` either errors without naming the row (`safe = false`) or silently turns an
//! unconvertible value into NULL (`safe = true`); float to integer truncates. We cast with
//! `safe = true`, then look for values that became NULL or changed, and report the first one.
//! Text that holds what Arrow cannot cast from text (a uuid, a JSON array or object, as text
//! files write them) is parsed here, by row too.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeBinaryBuilder, StringArray};
use arrow::compute::kernels::cast::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{CellError, Error, Result};

/// Formats used when temporal values become text (SQLite storage, CSV): ISO 8601 with a space,
/// fractional seconds only when present, numeric UTC offset when zoned.
pub const TEXT_FORMATS: FormatOptions<'static> = FormatOptions::new()
    .with_date_format(Some(DATE))
    .with_datetime_format(Some(DATETIME))
    .with_timestamp_format(Some(DATETIME))
    .with_timestamp_tz_format(Some(DATETIME_TZ))
    .with_time_format(Some(TIME));

pub const DATE: &str = "%Y-%m-%d";
pub const TIME: &str = "%H:%M:%S%.f";
pub const DATETIME: &str = "%Y-%m-%d %H:%M:%S%.f";
pub const DATETIME_TZ: &str = "%Y-%m-%d %H:%M:%S%.f%:z";

/// Cast `array` to `to`, failing on the first value that cannot be represented exactly.
/// `column` names the column in the error; `first_row` is the row number of `array[0]`
/// (1-based, as a person counts).
pub fn strict_cast(
    array: &ArrayRef,
    to: &DataType,
    column: &str,
    first_row: u64,
) -> Result<ArrayRef> {
    let from = array.data_type();
    if from == to {
        return Ok(array.clone());
    }
    // Text files hold uuids as text and arrays and structs as JSON text (records::as_text).
    if matches!(
        from,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        if to == &DataType::FixedSizeBinary(16) {
            return text_to_uuids(array, column, first_row);
        }
        if to.is_nested() {
            return json_to_nested(array, to, column, first_row);
        }
    }
    if !can_cast_types(from, to) {
        return Err(Error::invalid(format!(
            "column {column:?}: cannot convert {from} to {to}"
        )));
    }
    let options = CastOptions {
        safe: true,
        format_options: TEXT_FORMATS,
    };
    let out = cast_with_options(array, to, &options)?;
    let lost = (0..array.len()).find(|&i| array.is_valid(i) && out.is_null(i));
    let lost = lost.or_else(|| changed_row(array, &out, to));
    match lost {
        None => Ok(out),
        Some(i) => {
            let value = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
                .map(|f| f.value(i).to_string())
                .unwrap_or_default();
            let why = format!("value {value:?} does not fit {to}");
            Err(CellError::new(first_row + i as u64, column, why).into())
        }
    }
}

/// For numeric casts into an exact type: the first row whose value did not survive the round
/// trip (1.5 cast to an integer, a decimal rounded to a smaller scale).
fn changed_row(from: &ArrayRef, out: &ArrayRef, to: &DataType) -> Option<usize> {
    if !(from.data_type().is_numeric() && is_exact_numeric(to)) {
        return None;
    }
    let back = cast_with_options(out, from.data_type(), &CastOptions::default()).ok()?;
    let same = arrow::compute::kernels::cmp::not_distinct(from, &back).ok()?;
    (0..same.len()).find(|&i| !same.value(i))
}

fn is_exact_numeric(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// Positions of `columns` in `schema`, in the order asked; an unknown name is an error.
pub fn column_indices(schema: &arrow::datatypes::Schema, columns: &[String]) -> Result<Vec<usize>> {
    columns
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                Error::invalid(format!(
                    "no column {c:?} (the columns are: {})",
                    names.join(", ")
                ))
            })
        })
        .collect()
}

/// Arrow's field metadata key for an extension type, and the canonical uuid extension.
pub const EXTENSION_NAME: &str = "ARROW:extension:name";
pub const UUID_EXTENSION: &str = "arrow.uuid";

/// Whether a field holds uuids: 16 bytes marked with Arrow's `arrow.uuid` extension.
pub fn is_uuid(field: &Field) -> bool {
    field.data_type() == &DataType::FixedSizeBinary(16)
        && field.metadata().get(EXTENSION_NAME).map(String::as_str) == Some(UUID_EXTENSION)
}

/// `field` marked as holding uuids.
pub fn uuid_field(field: Field) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(EXTENSION_NAME.to_string(), UUID_EXTENSION.to_string());
    field.with_metadata(metadata)
}

/// 16-byte uuids as their canonical text (8-4-4-4-12, lower case).
pub fn uuids_to_text(array: &ArrayRef) -> ArrayRef {
    let bytes = array.as_fixed_size_binary();
    let text: StringArray = bytes
        .iter()
        .map(|v| {
            v.and_then(|b| uuid::Uuid::from_slice(b).ok())
                .map(|u| u.hyphenated().to_string())
        })
        .collect();
    Arc::new(text)
}

/// Text uuids (hyphenated, braced, URN or bare hex, as the uuid crate reads them) as 16 bytes;
/// a value that is not one is an error by row.
fn text_to_uuids(array: &ArrayRef, column: &str, first_row: u64) -> Result<ArrayRef> {
    let text = cast_with_options(array, &DataType::Utf8, &CastOptions::default())?;
    let mut out = FixedSizeBinaryBuilder::with_capacity(text.len(), 16);
    for (i, v) in text.as_string::<i32>().iter().enumerate() {
        match v {
            None => out.append_null(),
            Some(t) => match uuid::Uuid::parse_str(t.trim()) {
                Ok(u) => out.append_value(u.as_bytes())?,
                Err(_) => {
                    let why = format!("value {t:?} is not a uuid");
                    return Err(CellError::new(first_row + i as u64, column, why).into());
                }
            },
        }
    }
    Ok(Arc::new(out.finish()))
}

/// JSON text (an array or object in a CSV field) as a nested column of type `to`, read by
/// arrow's JSON reader; a value that is not JSON of that shape is an error by row.
fn json_to_nested(
    array: &ArrayRef,
    to: &DataType,
    column: &str,
    first_row: u64,
) -> Result<ArrayRef> {
    let text = cast_with_options(array, &DataType::Utf8, &CastOptions::default())?;
    let text = text.as_string::<i32>();
    let schema = Arc::new(Schema::new(vec![Field::new("v", to.clone(), true)]));
    let decode = |values: &[Option<&str>]| -> std::result::Result<ArrayRef, String> {
        let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(values.len().max(1))
            .build_decoder()
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        for v in values {
            line.clear();
            // Each value inside an object of its own, so its shape is the column's.
            line.push_str("{\"v\":");
            line.push_str(v.unwrap_or("null"));
            line.push_str("}\n");
            decoder.decode(line.as_bytes()).map_err(|e| e.to_string())?;
        }
        let batch = decoder.flush().map_err(|e| e.to_string())?;
        match batch {
            Some(b) if b.num_rows() == values.len() => Ok(b.column(0).clone()),
            None if values.is_empty() => Ok(arrow::array::new_empty_array(to)),
            _ => Err("not one JSON value".into()),
        }
    };
    let values: Vec<Option<&str>> = text.iter().collect();
    match decode(&values) {
        Ok(out) => Ok(out),
        Err(e) => {
            // Found again value by value, to name the row.
            let (i, why) = values
                .iter()
                .enumerate()
                .find_map(|(i, v)| decode(&[*v]).err().map(|why| (i, why)))
                .unwrap_or((0, e));
            let value = values[i].unwrap_or_default();
            let why = format!("value {value:?} is not JSON of {to}: {why}");
            Err(CellError::new(first_row + i as u64, column, why).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn overflow_names_the_row() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(300)]));
        let e = strict_cast(&a, &DataType::Int8, "n", 10).unwrap_err();
        assert!(e.message.contains("row 12"), "{e}");
        assert!(e.message.contains("\"n\""), "{e}");
    }

    #[test]
    fn fractions_do_not_truncate_into_integers() {
        let a: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 2.5]));
        let e = strict_cast(&a, &DataType::Int32, "x", 1).unwrap_err();
        assert!(e.message.contains("row 2"), "{e}");
        let ok: ArrayRef = Arc::new(Float64Array::from(vec![1.0, -2.0]));
        assert_eq!(strict_cast(&ok, &DataType::Int32, "x", 1).unwrap().len(), 2);
    }

    #[test]
    fn unparsable_text_is_an_error_not_a_null() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("4"), None, Some("four")]));
        let e = strict_cast(&a, &DataType::Int64, "qty", 1).unwrap_err();
        assert!(
            e.message.contains("row 3") && e.message.contains("four"),
            "{e}"
        );
    }
}
