//! Postgres types to Arrow types and back: one table, read from the catalog before any row.
//!
//! | Postgres | Arrow | notes |
//! |---|---|---|
//! | boolean | Boolean | |
//! | smallint / integer / bigint | Int16 / Int32 / Int64 | |
//! | real / double precision | Float32 / Float64 | NaN and ±Infinity kept |
//! | numeric(p,s) | Decimal128(p,s), Decimal256(p,s) above p = 38 | NaN is an error naming row and column |
//! | numeric (no typmod) | Utf8, the exact text (`1e1000`-sized, NaN, ±Infinity) | lossless; Decimal cannot hold it |
//! | text, varchar(n), char(n), name, citext | Utf8 | `mover.pg_type` metadata keeps the declared type |
//! | bytea | Binary | |
//! | date | Date32 | ±infinity is an error |
//! | time | Time64(µs) | |
//! | timetz | Utf8 `HH:MM:SS.ffffff+HH:MM` | Arrow has no zoned time of day |
//! | timestamp / timestamptz | Timestamp(µs) / Timestamp(µs, "UTC") | ±infinity is an error |
//! | interval | Interval(MonthDayNano) | |
//! | uuid | FixedSizeBinary(16) | |
//! | json / jsonb | Utf8 | metadata says which |
//! | enums | Utf8 (the label) | metadata names the enum |
//! | one-dimensional arrays of the above | List | |
//! | anything else (inet, point, …) | Utf8, read as its text form | written back only into text columns |
//!
//! Creating a table from Arrow (`ddl_type`): integers by declared width (Int8 and UInt8 as
//! smallint, UInt16 as integer, UInt32 as bigint, UInt64 as numeric(20,0)), floats, numeric(p,s)
//! with scale 0 kept, text, bytea, date, time, timestamp vs timestamptz by zone, interval,
//! uuid for FixedSizeBinary(16), arrays for lists, NOT NULL from non-nullable fields.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};

use crate::error::{Error, Result};

/// Field metadata key holding the Postgres type a column came from.
pub const PG_TYPE: &str = "mover.pg_type";

/// A column's Postgres type, as far as the wire format cares.
#[derive(Debug, Clone, PartialEq)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// With precision and scale, or unconstrained.
    Numeric(Option<(u8, i8)>),
    /// text-like: text, varchar, bpchar, name, citext, enums, json; read and written as UTF-8.
    Text,
    Jsonb,
    Bytea,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    /// A one-dimensional array; the element type's oid goes on the wire.
    Array(Box<PgType>, u32),
    /// Read through its text form (the SELECT casts it to text).
    AsText,
}

impl PgType {
    /// From the catalog: the type's name, its kind (`typtype`), its modifier, and for arrays
    /// the element type's name and kind.
    pub fn from_catalog(
        name: &str,
        typtype: &str,
        typmod: i32,
        elem: Option<(&str, &str, u32)>,
    ) -> Self {
        if let Some((ename, ekind, eoid)) = elem
            && name.starts_with('_')
        {
            return match Self::from_catalog(ename, ekind, typmod, None) {
                PgType::AsText | PgType::Array(..) => PgType::AsText,
                inner => PgType::Array(Box::new(inner), eoid),
            };
        }
        match name {
            "bool" => PgType::Bool,
            "int2" => PgType::Int2,
            "int4" => PgType::Int4,
            "int8" => PgType::Int8,
            "float4" => PgType::Float4,
            "float8" => PgType::Float8,
            "numeric" => PgType::Numeric(numeric_typmod(typmod)),
            "text" | "varchar" | "bpchar" | "name" | "citext" | "json" => PgType::Text,
            "jsonb" => PgType::Jsonb,
            "bytea" => PgType::Bytea,
            "date" => PgType::Date,
            "time" => PgType::Time,
            "timetz" => PgType::TimeTz,
            "timestamp" => PgType::Timestamp,
            "timestamptz" => PgType::TimestampTz,
            "interval" => PgType::Interval,
            "uuid" => PgType::Uuid,
            _ if typtype == "e" => PgType::Text,
            _ => PgType::AsText,
        }
    }

    pub fn arrow(&self) -> DataType {
        match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            PgType::Numeric(Some((p, s))) if *p <= 38 => DataType::Decimal128(*p, *s),
            PgType::Numeric(Some((p, s))) => DataType::Decimal256(*p, *s),
            PgType::Numeric(None)
            | PgType::Text
            | PgType::Jsonb
            | PgType::TimeTz
            | PgType::AsText => DataType::Utf8,
            PgType::Bytea => DataType::Binary,
            PgType::Date => DataType::Date32,
            PgType::Time => DataType::Time64(TimeUnit::Microsecond),
            PgType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            PgType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            PgType::Uuid => DataType::FixedSizeBinary(16),
            PgType::Array(inner, _) => {
                DataType::List(Arc::new(Field::new_list_field(inner.arrow(), true)))
            }
        }
    }
}

/// numeric's typmod: ((precision << 16) | scale) + 4, or -1 when unconstrained.
fn numeric_typmod(typmod: i32) -> Option<(u8, i8)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let (p, s) = ((t >> 16) & 0xffff, t & 0xffff);
    // Postgres allows negative scales and scales above precision in recent versions; Arrow
    // decimals need 0 < p <= 76: anything else reads as exact text.
    match (u8::try_from(p), i8::try_from(s)) {
        (Ok(p), Ok(s)) if (1..=76).contains(&p) && s >= 0 && (s as u8) <= p => Some((p, s)),
        _ => None,
    }
}

/// The Arrow field for a column, with its declared Postgres type in the metadata.
/// A uuid is marked as Arrow's canonical `arrow.uuid`, so that text formats write its text.
pub fn field(name: &str, pg: &PgType, declared: &str, nullable: bool) -> Field {
    let field = Field::new(name, pg.arrow(), nullable)
        .with_metadata(HashMap::from([(PG_TYPE.to_string(), declared.to_string())]));
    match pg {
        PgType::Uuid => crate::convert::uuid_field(field),
        _ => field,
    }
}

/// The Postgres type to create a column of this Arrow type with.
pub fn ddl_type(field: &Field) -> Result<String> {
    // A column that came from Postgres keeps its declared type (varchar(20), jsonb, an enum...).
    if let Some(declared) = field.metadata().get(PG_TYPE)
        && declared_is_portable(declared)
    {
        return Ok(declared.clone());
    }
    ddl_of(field.data_type()).ok_or_else(|| {
        Error::unsupported(format!(
            "column {:?}: Postgres has no type for {}",
            field.name(),
            field.data_type()
        ))
    })
}

/// Built-in types only: an enum or domain of another database may not exist here.
fn declared_is_portable(declared: &str) -> bool {
    let base = declared.split(['(', '[']).next().unwrap_or("").trim();
    matches!(
        base,
        "character varying"
            | "character"
            | "text"
            | "json"
            | "jsonb"
            | "numeric"
            | "time with time zone"
            | "name"
    )
}

fn ddl_of(t: &DataType) -> Option<String> {
    use DataType::*;
    Some(match t {
        Boolean => "boolean".into(),
        Int8 | Int16 | UInt8 => "smallint".into(),
        Int32 | UInt16 => "integer".into(),
        Int64 | UInt32 => "bigint".into(),
        UInt64 => "numeric(20,0)".into(),
        Float16 | Float32 => "real".into(),
        Float64 => "double precision".into(),
        Decimal128(p, s) | Decimal256(p, s) if *s >= 0 => format!("numeric({p},{s})"),
        Utf8 | LargeUtf8 | Utf8View => "text".into(),
        Binary | LargeBinary | BinaryView => "bytea".into(),
        FixedSizeBinary(16) => "uuid".into(),
        FixedSizeBinary(_) => "bytea".into(),
        Date32 | Date64 => "date".into(),
        Time32(_) | Time64(_) => "time".into(),
        Timestamp(_, None) => "timestamp".into(),
        Timestamp(_, Some(_)) => "timestamptz".into(),
        Interval(_) | Duration(_) => "interval".into(),
        List(f) | LargeList(f) => format!("{}[]", ddl_of(f.data_type())?),
        Dictionary(_, v) => ddl_of(v)?,
        _ => return None,
    })
}

/// How a Postgres column of type `pg` takes an Arrow value: the Arrow type to cast to first.
pub fn write_arrow_type(pg: &PgType) -> Result<DataType> {
    match pg {
        PgType::AsText => Err(Error::unsupported(
            "this column's type can be read (as text) but not written by binary COPY",
        )),
        other => Ok(other.arrow()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_types_map_to_arrow() {
        let t = |n: &str, m: i32| PgType::from_catalog(n, "b", m, None).arrow();
        assert_eq!(t("int2", -1), DataType::Int16);
        assert_eq!(
            t("numeric", ((12 << 16) | 3) + 4),
            DataType::Decimal128(12, 3)
        );
        assert_eq!(t("numeric", (50 << 16) + 4), DataType::Decimal256(50, 0));
        assert_eq!(t("numeric", -1), DataType::Utf8);
        assert_eq!(
            t("timestamptz", -1),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(t("inet", -1), DataType::Utf8);
        assert_eq!(PgType::from_catalog("mood", "e", -1, None), PgType::Text);
        let arr = PgType::from_catalog("_int4", "b", -1, Some(("int4", "b", 23)));
        assert_eq!(arr, PgType::Array(Box::new(PgType::Int4), 23));
    }

    #[test]
    fn ddl_keeps_widths_scale_and_zones() {
        let d = |t: DataType| ddl_type(&Field::new("c", t, true)).unwrap();
        assert_eq!(d(DataType::Int8), "smallint");
        assert_eq!(d(DataType::UInt32), "bigint");
        assert_eq!(d(DataType::UInt64), "numeric(20,0)");
        assert_eq!(d(DataType::Decimal128(10, 0)), "numeric(10,0)");
        assert_eq!(
            d(DataType::Timestamp(TimeUnit::Second, Some("+01:00".into()))),
            "timestamptz"
        );
        assert_eq!(d(DataType::FixedSizeBinary(16)), "uuid");
        let varchar = field("v", &PgType::Text, "character varying(20)", true);
        assert_eq!(ddl_type(&varchar).unwrap(), "character varying(20)");
        let enumed = field("e", &PgType::Text, "mood", true);
        assert_eq!(ddl_type(&enumed).unwrap(), "text");
    }
}
