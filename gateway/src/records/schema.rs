//! The records schema (`_schema.json`, `bltypes/v1`) to Arrow and back.
//!
//! Read leniently: keys this code does not use (statistics, representations,
//! known_representations, unique) are ignored; an unknown field type is an error, or Utf8 with
//! a warning when not strict. Written strictly: every field has its type, index and
//! constraints, and an Arrow type the records schema cannot say is refused by column name.
//!
//! | records | Arrow |
//! |---|---|
//! | integer with `min`/`max` | the narrowest Int8…Int64 or UInt8…UInt64 holding both; Int64 without them; Decimal128(p,0) beyond 64 bits |
//! | decimal with `fixed_precision`/`fixed_scale` | Decimal128(p,s) (Decimal256 above 38 digits); scale 0 stays decimal |
//! | decimal with `fp_total_bits` 16/32/64 | Float16/Float32/Float64 |
//! | decimal without either | Float64 |
//! | string (`max_length_chars`, `max_length_bytes`) | Utf8, the lengths kept as field metadata |
//! | boolean, date, time, datetime, datetimetz | Boolean, Date32, Time64(µs), Timestamp(µs), Timestamp(µs, "UTC") |
//! | timetz | Utf8 (Arrow has no time of day with a zone), marked `mover.records_type = timetz` |
//!
//! `required: true` is a non-nullable field.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// Field metadata: a string column's length limits, as the records schema states them.
pub const MAX_CHARS: &str = "mover.max_chars";
pub const MAX_BYTES: &str = "mover.max_bytes";
/// Field metadata: the records type when Arrow's type does not say it (timetz).
pub const RECORDS_TYPE: &str = "mover.records_type";

/// The Arrow schema a records schema describes, with warnings for what was skipped.
pub fn to_arrow(doc: &Value, strict: bool) -> Result<(SchemaRef, Vec<String>)> {
    let version = doc.get("schema").and_then(Value::as_str);
    if version != Some("bltypes/v1") {
        return Err(Error::invalid(format!(
            "_schema.json: schema is {:?}, not \"bltypes/v1\"",
            version.unwrap_or("missing")
        )));
    }
    let fields = doc
        .get("fields")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::invalid("_schema.json: no \"fields\" object"))?;
    // Order by `index` where given, else as written.
    let mut ordered: Vec<(usize, &String, &Value)> = fields
        .iter()
        .enumerate()
        .map(|(i, (name, f))| {
            let index = f
                .get("index")
                .and_then(Value::as_u64)
                .map_or(i, |n| n as usize);
            (index, name, f)
        })
        .collect();
    ordered.sort_by_key(|(index, _, _)| *index);
    let mut warnings = Vec::new();
    let mut out = Vec::with_capacity(ordered.len());
    for (_, name, f) in ordered {
        let field = field_to_arrow(name, f).or_else(|e| {
            if strict {
                Err(e)
            } else {
                warnings.push(e.message);
                Ok(Field::new(name, DataType::Utf8, true))
            }
        })?;
        out.push(field);
    }
    Ok((Arc::new(Schema::new(out)), warnings))
}

fn field_to_arrow(name: &str, f: &Value) -> Result<Field> {
    let bad = |why: String| Error::invalid(format!("_schema.json: field {name:?}: {why}"));
    let kind = f
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no type".into()))?;
    let c = f.get("constraints").cloned().unwrap_or(Value::Null);
    let required = c.get("required").and_then(Value::as_bool).unwrap_or(false);
    let number = |key: &str| c.get(key).and_then(Value::as_u64);
    // Integer bounds are strings in Records Mover's files; numbers are taken too.
    let bound = |key: &str| -> Result<Option<i128>> {
        match c.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| bad(format!("{key} {s:?} is not an integer"))),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(|n| Some(i128::from(n)))
                .or_else(|| n.as_u64().map(|n| Some(i128::from(n))))
                .ok_or_else(|| bad(format!("{key} {n} is not an integer"))),
            Some(other) => Err(bad(format!("{key} {other} is not an integer"))),
        }
    };
    let mut metadata = HashMap::new();
    let data_type = match kind {
        "integer" => integer_type(bound("min")?, bound("max")?),
        "decimal" => match (
            number("fixed_precision"),
            number("fixed_scale"),
            number("fp_total_bits"),
        ) {
            (Some(p), s, _) => {
                let s = s.unwrap_or(0);
                if p == 0 || p > 76 || s > p {
                    return Err(bad(format!(
                        "fixed_precision {p} and fixed_scale {s} do not fit a decimal"
                    )));
                }
                if p <= 38 {
                    DataType::Decimal128(p as u8, s as i8)
                } else {
                    DataType::Decimal256(p as u8, s as i8)
                }
            }
            (None, _, Some(16)) => DataType::Float16,
            (None, _, Some(32)) => DataType::Float32,
            (None, _, Some(64) | None) => DataType::Float64,
            (None, _, Some(bits)) => {
                return Err(bad(format!("fp_total_bits {bits} is not 16, 32 or 64")));
            }
        },
        "string" => {
            if let Some(n) = number("max_length_chars") {
                metadata.insert(MAX_CHARS.to_string(), n.to_string());
            }
            if let Some(n) = number("max_length_bytes") {
                metadata.insert(MAX_BYTES.to_string(), n.to_string());
            }
            DataType::Utf8
        }
        "boolean" => DataType::Boolean,
        "date" => DataType::Date32,
        "time" => DataType::Time64(TimeUnit::Microsecond),
        "timetz" => {
            metadata.insert(RECORDS_TYPE.to_string(), "timetz".to_string());
            DataType::Utf8
        }
        "datetime" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "datetimetz" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        other => return Err(bad(format!("unknown type {other:?}"))),
    };
    Ok(Field::new(name, data_type, !required).with_metadata(metadata))
}

/// The narrowest integer type holding `min..=max`.
fn integer_type(min: Option<i128>, max: Option<i128>) -> DataType {
    let (Some(min), Some(max)) = (min, max) else {
        return DataType::Int64;
    };
    use DataType::*;
    let fits = |lo: i128, hi: i128| min >= lo && max <= hi;
    if min >= 0 {
        for (t, hi) in [
            (UInt8, u8::MAX as i128),
            (UInt16, u16::MAX as i128),
            (UInt32, u32::MAX as i128),
            (UInt64, u64::MAX as i128),
        ] {
            if max <= hi {
                return t;
            }
        }
    }
    for (t, lo, hi) in [
        (Int8, i8::MIN as i128, i8::MAX as i128),
        (Int16, i16::MIN as i128, i16::MAX as i128),
        (Int32, i32::MIN as i128, i32::MAX as i128),
        (Int64, i64::MIN as i128, i64::MAX as i128),
    ] {
        if fits(lo, hi) {
            return t;
        }
    }
    let digits = min.unsigned_abs().max(max.unsigned_abs()).to_string().len();
    Decimal128(digits.clamp(1, 38) as u8, 0)
}

/// The records schema of an Arrow schema; a type it cannot say is refused by column name.
pub fn from_arrow(schema: &Schema) -> Result<Value> {
    let mut fields = Map::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let mut constraints = serde_json::Map::new();
        constraints.insert("required".into(), json!(!f.is_nullable()));
        let integer = |min: i128, max: i128, c: &mut serde_json::Map<String, Value>| {
            c.insert("min".into(), json!(min.to_string()));
            c.insert("max".into(), json!(max.to_string()));
            "integer"
        };
        let float = |total: u32, significand: u32, c: &mut serde_json::Map<String, Value>| {
            c.insert("fp_total_bits".into(), json!(total));
            c.insert("fp_significand_bits".into(), json!(significand));
            "decimal"
        };
        use DataType::*;
        let c = &mut constraints;
        let kind = match f.data_type() {
            Int8 => integer(i8::MIN.into(), i8::MAX.into(), c),
            Int16 => integer(i16::MIN.into(), i16::MAX.into(), c),
            Int32 => integer(i32::MIN.into(), i32::MAX.into(), c),
            Int64 => integer(i64::MIN.into(), i64::MAX.into(), c),
            UInt8 => integer(0, u8::MAX.into(), c),
            UInt16 => integer(0, u16::MAX.into(), c),
            UInt32 => integer(0, u32::MAX.into(), c),
            UInt64 => integer(0, u64::MAX.into(), c),
            Float16 => float(16, 11, c),
            Float32 => float(32, 24, c),
            Float64 => float(64, 53, c),
            Decimal128(p, s) | Decimal256(p, s) if *s >= 0 => {
                c.insert("fixed_precision".into(), json!(p));
                c.insert("fixed_scale".into(), json!(s));
                "decimal"
            }
            Utf8 | LargeUtf8 | Utf8View => {
                for (key, name) in [
                    (MAX_CHARS, "max_length_chars"),
                    (MAX_BYTES, "max_length_bytes"),
                ] {
                    if let Some(n) = f.metadata().get(key).and_then(|n| n.parse::<u64>().ok()) {
                        c.insert(name.into(), json!(n));
                    }
                }
                if f.metadata().get(RECORDS_TYPE).map(String::as_str) == Some("timetz") {
                    "timetz"
                } else {
                    "string"
                }
            }
            Boolean => "boolean",
            Date32 | Date64 => "date",
            Time32(_) | Time64(_) => "time",
            Timestamp(_, None) => "datetime",
            Timestamp(_, Some(_)) => "datetimetz",
            other => {
                return Err(Error::unsupported(format!(
                    "column {:?}: a records schema has no type for {other}",
                    f.name()
                )));
            }
        };
        fields.insert(
            f.name().clone(),
            json!({"type": kind, "index": i + 1, "constraints": constraints}),
        );
    }
    Ok(json!({"schema": "bltypes/v1", "fields": fields}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Records Mover 1.6.4 writes it for a pandas frame (copied from its output).
    const FROM_RECORDS_MOVER: &str = r#"{"schema": "bltypes/v1", "fields": {"id": {"type": "integer", "constraints": {"required": false, "unique": false, "min": "-2147483648", "max": "2147483647"}, "representations": {"origin": {"rep_type": "dataframe/pandas", "pd_df_dtype": "int32", "pd_df_coltype": "series"}}, "index": 1}, "name": {"type": "string", "constraints": {"required": false, "unique": false}, "representations": {"origin": {"rep_type": "dataframe/pandas", "pd_df_dtype": "object", "pd_df_coltype": "series"}}, "index": 2}, "price": {"type": "decimal", "constraints": {"required": false, "unique": false, "fp_total_bits": 64, "fp_significand_bits": 53}, "representations": {"origin": {"rep_type": "dataframe/pandas", "pd_df_dtype": "float64", "pd_df_coltype": "series"}}, "index": 3}, "ok": {"type": "boolean", "constraints": {"required": false, "unique": false}, "representations": {"origin": {"rep_type": "dataframe/pandas", "pd_df_dtype": "bool", "pd_df_coltype": "series"}}, "index": 4}, "day": {"type": "datetime", "constraints": {"required": false, "unique": false}, "representations": {"origin": {"rep_type": "dataframe/pandas", "pd_df_dtype": "datetime64[ns]", "pd_df_coltype": "series"}}, "index": 5}}, "known_representations": {"origin": {"type": "dataframe/pandas", "pd_df_dtypes": {"id": "int32", "name": "object", "price": "float64", "ok": "bool", "day": "datetime64[ns]"}}}}"#;

    #[test]
    fn a_records_mover_schema_reads_leniently() {
        let doc: Value = serde_json::from_str(FROM_RECORDS_MOVER).unwrap();
        let (schema, warnings) = to_arrow(&doc, true).unwrap();
        assert!(warnings.is_empty());
        let types: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect();
        assert_eq!(
            types,
            [
                "id Int32",
                "name Utf8",
                "price Float64",
                "ok Boolean",
                "day Timestamp(µs)"
            ]
        );
    }

    #[test]
    fn integers_take_the_narrowest_type_and_decimals_keep_scale_zero() {
        assert_eq!(integer_type(Some(0), Some(255)), DataType::UInt8);
        assert_eq!(integer_type(Some(-1), Some(255)), DataType::Int16);
        assert_eq!(
            integer_type(Some(0), Some(u64::MAX as i128)),
            DataType::UInt64
        );
        assert_eq!(
            integer_type(Some(-1), Some(u64::MAX as i128)),
            DataType::Decimal128(20, 0)
        );
        assert_eq!(integer_type(None, Some(1)), DataType::Int64);
        let doc = json!({"schema": "bltypes/v1", "fields": {
            "n": {"type": "decimal", "constraints": {"fixed_precision": 18, "fixed_scale": 0, "required": true}},
            "w": {"type": "decimal", "constraints": {"fixed_precision": 60, "fixed_scale": 20}},
            "f": {"type": "decimal", "constraints": {"fp_total_bits": 32}}}});
        let (schema, _) = to_arrow(&doc, true).unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Decimal128(18, 0));
        assert!(!schema.field(0).is_nullable());
        assert_eq!(schema.field(1).data_type(), &DataType::Decimal256(60, 20));
        assert_eq!(schema.field(2).data_type(), &DataType::Float32);
    }

    #[test]
    fn arrow_round_trips_through_a_records_schema() {
        let tz = Some("UTC".into());
        let original = Schema::new(vec![
            Field::new("i8", DataType::Int8, false),
            Field::new("u64", DataType::UInt64, true),
            Field::new("d", DataType::Decimal128(12, 2), true),
            Field::new("f", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true)
                .with_metadata(HashMap::from([(MAX_CHARS.to_string(), "20".to_string())])),
            Field::new("b", DataType::Boolean, true),
            Field::new("day", DataType::Date32, true),
            Field::new("t", DataType::Time64(TimeUnit::Microsecond), true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("tz", DataType::Timestamp(TimeUnit::Microsecond, tz), true),
        ]);
        let doc = from_arrow(&original).unwrap();
        assert_eq!(
            doc["fields"]["s"]["constraints"]["max_length_chars"],
            json!(20)
        );
        assert_eq!(
            doc["fields"]["u64"]["constraints"]["max"],
            json!("18446744073709551615")
        );
        let (back, _) = to_arrow(&doc, true).unwrap();
        assert_eq!(back.as_ref(), &original);
        let e = from_arrow(&Schema::new(vec![Field::new(
            "bin",
            DataType::Binary,
            true,
        )]))
        .unwrap_err();
        assert!(e.message.contains("\"bin\""), "{e}");
    }

    #[test]
    fn unknown_types_and_versions_are_named() {
        let doc = json!({"schema": "bltypes/v1", "fields": {"g": {"type": "geometry"}}});
        let e = to_arrow(&doc, true).unwrap_err();
        assert!(e.message.contains("geometry"), "{e}");
        let (schema, warnings) = to_arrow(&doc, false).unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
        assert_eq!(warnings.len(), 1);
        let e = to_arrow(&json!({"schema": "bltypes/v2", "fields": {}}), true).unwrap_err();
        assert!(e.message.contains("bltypes/v2"), "{e}");
    }
}
