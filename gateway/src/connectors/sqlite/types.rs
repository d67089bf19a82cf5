//! SQLite declared types to Arrow types and back: one table, tested round trip.
//!
//! SQLite stores every value as INTEGER, REAL, TEXT or BLOB; the declared type of a column is
//! where the rest of the type lives. We write declared types that say exactly what Arrow type a
//! column holds, and read both ours and the common ones other tools write.
//!
//! | Arrow                         | declared type (written)   | stored as               |
//! |-------------------------------|---------------------------|-------------------------|
//! | Int8 / Int16 / Int32 / Int64  | TINYINT/SMALLINT/INT/BIGINT | INTEGER               |
//! | UInt8 … UInt64                | same + ` UNSIGNED`        | INTEGER (UInt64 above 2^63-1 is refused) |
//! | Float16 / Float32             | FLOAT4                    | REAL (Float16 widens to Float32) |
//! | Float64                       | DOUBLE                    | REAL                    |
//! | Boolean                       | BOOLEAN                   | INTEGER 0/1             |
//! | Decimal128/256(p, s)          | DECIMAL TEXT(p,s)         | TEXT, exact digits      |
//! | Utf8, LargeUtf8, Utf8View     | TEXT                      | TEXT (reads as Utf8)    |
//! | Binary, LargeBinary, FixedSizeBinary, BinaryView | BLOB   | BLOB (reads as Binary)  |
//! | Date32 / Date64               | DATE                      | TEXT `YYYY-MM-DD` (reads as Date32) |
//! | Time32/Time64(unit)           | TIME(0/3/6/9)             | TEXT `HH:MM:SS[.f]`     |
//! | Timestamp(unit, none)         | TIMESTAMP(0/3/6/9)        | TEXT `YYYY-MM-DD HH:MM:SS[.f]` |
//! | Timestamp(unit, zone)         | TIMESTAMPTZ(0/3/6/9)      | TEXT in UTC with `+00:00`; reads back with zone `UTC`: the instant is kept, the zone's name is not |
//! | Dictionary(_, v)              | as v                      | as v                    |
//!
//! Decimals are declared `DECIMAL TEXT(p,s)` rather than `DECIMAL(p,s)` because SQLite gives
//! `DECIMAL` NUMERIC affinity, which stores a well-formed number as REAL and keeps only 15
//! significant digits; the word TEXT gives the column TEXT affinity, so the digits stay exact.
//! Plain `DECIMAL(p,s)`/`NUMERIC(p,s)` columns written by other tools read as Decimal(p,s).
//! Columns with no declared type (expressions in a query) take the type of their first value.

use arrow::datatypes::{DataType, Field, TimeUnit};

use crate::error::{Error, Result};

/// How SQLite stores a column's values; what a column is read into before the final cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Integer,
    Real,
    Text,
    Blob,
}

impl Storage {
    pub fn arrow(self) -> DataType {
        match self {
            Storage::Integer => DataType::Int64,
            Storage::Real => DataType::Float64,
            Storage::Text => DataType::Utf8,
            Storage::Blob => DataType::Binary,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Storage::Integer => "INTEGER",
            Storage::Real => "REAL",
            Storage::Text => "TEXT",
            Storage::Blob => "BLOB",
        }
    }
}

/// The storage class that holds values of an Arrow type.
pub fn storage_for(t: &DataType) -> Storage {
    use DataType::*;
    match t {
        Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => {
            Storage::Integer
        }
        Float16 | Float32 | Float64 => Storage::Real,
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => Storage::Blob,
        Dictionary(_, v) => storage_for(v),
        _ => Storage::Text,
    }
}

/// The declared type to create a column of `field`'s type with.
pub fn declared_type(field: &Field) -> Result<String> {
    declared(field.data_type()).ok_or_else(|| {
        Error::unsupported(format!(
            "column {:?}: SQLite cannot hold {}; write it to Parquet, or cast it in a query",
            field.name(),
            field.data_type()
        ))
    })
}

fn declared(t: &DataType) -> Option<String> {
    use DataType::*;
    let s = match t {
        Int8 => "TINYINT".into(),
        Int16 => "SMALLINT".into(),
        Int32 => "INT".into(),
        Int64 => "BIGINT".into(),
        UInt8 => "TINYINT UNSIGNED".into(),
        UInt16 => "SMALLINT UNSIGNED".into(),
        UInt32 => "INT UNSIGNED".into(),
        UInt64 => "BIGINT UNSIGNED".into(),
        Float16 | Float32 => "FLOAT4".into(),
        Float64 => "DOUBLE".into(),
        Boolean => "BOOLEAN".into(),
        Decimal128(p, s) | Decimal256(p, s) => format!("DECIMAL TEXT({p},{s})"),
        Utf8 | LargeUtf8 | Utf8View | Null => "TEXT".into(),
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => "BLOB".into(),
        Date32 | Date64 => "DATE".into(),
        Time32(u) | Time64(u) => format!("TIME({})", digits(u)),
        Timestamp(u, None) => format!("TIMESTAMP({})", digits(u)),
        Timestamp(u, Some(_)) => format!("TIMESTAMPTZ({})", digits(u)),
        Dictionary(_, v) => return declared(v),
        _ => return None,
    };
    Some(s)
}

fn digits(u: &TimeUnit) -> u8 {
    match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

fn unit(digits: Option<u32>) -> TimeUnit {
    match digits {
        Some(0) => TimeUnit::Second,
        Some(1..=3) => TimeUnit::Millisecond,
        Some(7..) => TimeUnit::Nanosecond,
        _ => TimeUnit::Microsecond,
    }
}

/// The Arrow type for a declared type, or None when the declaration says nothing useful and
/// the values must tell.
pub fn arrow_type(declared: &str) -> Option<DataType> {
    use DataType::*;
    let upper = declared.trim().to_ascii_uppercase();
    let (name, args) = match upper.split_once('(') {
        Some((name, rest)) => (name.trim(), parse_args(rest)),
        None => (upper.as_str(), vec![]),
    };
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = match name.as_str() {
        "" => return None,
        "TINYINT" => Int8,
        "SMALLINT" | "INT2" => Int16,
        "INT" | "INT4" | "MEDIUMINT" => Int32,
        "BIGINT" | "INT8" | "INTEGER" => Int64,
        "TINYINT UNSIGNED" => UInt8,
        "SMALLINT UNSIGNED" => UInt16,
        "INT UNSIGNED" | "MEDIUMINT UNSIGNED" => UInt32,
        "BIGINT UNSIGNED" | "UNSIGNED BIG INT" => UInt64,
        "FLOAT4" => Float32,
        "REAL" | "DOUBLE" | "DOUBLE PRECISION" | "FLOAT" | "FLOAT8" => Float64,
        "BOOLEAN" | "BOOL" => Boolean,
        "DECIMAL TEXT" | "DECIMAL" | "NUMERIC" => match args.as_slice() {
            [p] => decimal(*p, 0)?,
            [p, s] => decimal(*p, *s)?,
            _ => Float64,
        },
        "DATE" => Date32,
        "TIME" => match unit(args.first().copied()) {
            u @ (TimeUnit::Second | TimeUnit::Millisecond) => Time32(u),
            u => Time64(u),
        },
        "TIMESTAMP" | "DATETIME" => Timestamp(unit(args.first().copied()), None),
        "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => {
            Timestamp(unit(args.first().copied()), Some("UTC".into()))
        }
        "JSON" => Utf8,
        other => by_affinity(other)?,
    };
    Some(t)
}

fn decimal(p: u32, s: u32) -> Option<DataType> {
    let (p8, s8) = (u8::try_from(p).ok()?, i8::try_from(s).ok()?);
    match p {
        1..=38 if s <= p => Some(DataType::Decimal128(p8, s8)),
        39..=76 if s <= p => Some(DataType::Decimal256(p8, s8)),
        _ => None,
    }
}

/// SQLite's own affinity rules (section 3.1 of its datatype documentation), for declared
/// types we do not know by name.
fn by_affinity(name: &str) -> Option<DataType> {
    if name.contains("INT") {
        Some(DataType::Int64)
    } else if name.contains("CHAR") || name.contains("CLOB") || name.contains("TEXT") {
        Some(DataType::Utf8)
    } else if name.contains("BLOB") {
        Some(DataType::Binary)
    } else if name.contains("REAL") || name.contains("FLOA") || name.contains("DOUB") {
        Some(DataType::Float64)
    } else {
        None
    }
}

fn parse_args(rest: &str) -> Vec<u32> {
    rest.trim_end_matches(|c: char| c == ')' || c.is_whitespace())
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

/// The type a column of Arrow type `t` reads back as from SQLite (see the table above).
pub fn round_trip_type(t: &DataType) -> Option<DataType> {
    arrow_type(&declared(t)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType::*;

    #[test]
    fn exact_types_round_trip() {
        let exact = [
            Int8,
            Int16,
            Int32,
            Int64,
            UInt8,
            UInt16,
            UInt32,
            UInt64,
            Float32,
            Float64,
            Boolean,
            Decimal128(38, 10),
            Decimal128(10, 0),
            Decimal256(76, 20),
            Utf8,
            Binary,
            Date32,
            Time32(TimeUnit::Second),
            Time32(TimeUnit::Millisecond),
            Time64(TimeUnit::Microsecond),
            Time64(TimeUnit::Nanosecond),
            Timestamp(TimeUnit::Second, None),
            Timestamp(TimeUnit::Microsecond, None),
            Timestamp(TimeUnit::Nanosecond, None),
            Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        ];
        for t in exact {
            assert_eq!(round_trip_type(&t), Some(t.clone()), "{t}");
        }
    }

    #[test]
    fn documented_conversions() {
        assert_eq!(round_trip_type(&Float16), Some(Float32));
        assert_eq!(round_trip_type(&LargeUtf8), Some(Utf8));
        assert_eq!(round_trip_type(&Date64), Some(Date32));
        assert_eq!(round_trip_type(&FixedSizeBinary(16)), Some(Binary));
        assert_eq!(
            round_trip_type(&Timestamp(
                TimeUnit::Microsecond,
                Some("Europe/Paris".into())
            )),
            Some(Timestamp(TimeUnit::Microsecond, Some("UTC".into())))
        );
    }

    #[test]
    fn other_tools_declared_types() {
        assert_eq!(arrow_type("varchar(255)"), Some(Utf8));
        assert_eq!(arrow_type("NUMERIC(10, 2)"), Some(Decimal128(10, 2)));
        assert_eq!(arrow_type("numeric"), Some(Float64));
        assert_eq!(arrow_type("integer"), Some(Int64));
        assert_eq!(
            arrow_type("datetime"),
            Some(Timestamp(TimeUnit::Microsecond, None))
        );
        assert_eq!(arrow_type("NVARCHAR(10)"), Some(Utf8));
        assert_eq!(arrow_type(""), None);
        assert_eq!(arrow_type("WHATEVER"), None);
    }

    #[test]
    fn decimal_text_has_text_affinity_not_int() {
        // SQLite's affinity rule 1 looks for "INT" first; our declared names must not contain it
        // unless the column is an integer.
        for t in [
            Decimal128(38, 10),
            Date32,
            Timestamp(TimeUnit::Second, Some("UTC".into())),
        ] {
            assert!(!declared(&t).unwrap().contains("INT"), "{t}");
        }
        assert!(declared(&Decimal128(5, 2)).unwrap().contains("TEXT"));
    }

    #[test]
    fn nested_types_are_refused_by_name() {
        let f = Field::new("tags", List(Field::new_list_field(Utf8, true).into()), true);
        let e = declared_type(&f).unwrap_err();
        assert!(e.message.contains("tags"), "{e}");
    }
}
