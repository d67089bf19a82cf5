//! Casts that refuse to lose data, and say which row would have lost it.
//!
//! Arrow's `cast` either errors without naming the row (`safe = false`) or silently turns an
//! unconvertible value into NULL (`safe = true`); float to integer truncates. We cast with
//! `safe = true`, then look for values that became NULL or changed, and report the first one.

use arrow::array::{Array, ArrayRef};
use arrow::compute::kernels::cast::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::DataType;
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
