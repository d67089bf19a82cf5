//! MySQL/MariaDB types to Arrow and back, and the text forms values travel in.
//!
//! | MySQL / MariaDB | Arrow | notes |
//! |---|---|---|
//! | TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT | Int8, Int16, Int32, Int32, Int64 | UNSIGNED: UInt8 … UInt64 |
//! | TINYINT(1) (BOOLEAN), BIT(1) | Boolean | a TINYINT(1) holding anything but 0/1 is an error naming row and column |
//! | BIT(n), n > 1 | UInt64 | |
//! | DECIMAL(p,s) | Decimal128(p,s); Decimal256 above 38 digits | scale 0 stays decimal |
//! | FLOAT, DOUBLE | Float32, Float64 | |
//! | CHAR, VARCHAR, TEXT types, ENUM, SET | Utf8 | `mover.max_chars` keeps VARCHAR(n)/CHAR(n) |
//! | JSON (MariaDB: LONGTEXT with a `json_valid` check) | Utf8 | metadata `ARROW:extension:name = arrow.json` |
//! | BINARY, VARBINARY, BLOB types | Binary | |
//! | DATE | Date32 | |
//! | TIME(fsp) | Duration(µs) | TIME spans -838:59:59 … 838:59:59, more than a day: not a time of day |
//! | DATETIME(fsp) | Timestamp(µs) | naive |
//! | TIMESTAMP(fsp) | Timestamp(µs, "UTC") | read with the session in UTC |
//! | YEAR | Int16 | |
//!
//! Zero dates (`0000-00-00`, and `0000-00-00 00:00:00`) are an error by default; a database
//! configured with `zero_dates = "null"` reads them as NULL.
//!
//! Creating a table from Arrow: the smallest integer type of the Arrow width, UNSIGNED for
//! unsigned types, DECIMAL(p,s) as given (scale 0 kept), VARCHAR(n) when the field says
//! `mover.max_chars` (else LONGTEXT), LONGBLOB, DATE, TIME(6) for durations and times of day,
//! and DATETIME(6) for timestamps with and without a zone (zoned values are stored in UTC):
//! TIMESTAMP cannot hold dates before 1970 or after 2038. A column that came from MySQL keeps
//! its declared type when that type is on a short allow-list (`mover.mysql_type`).

use std::collections::HashMap;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};

/// Field metadata: the declared MySQL type a column came from.
pub const MYSQL_TYPE: &str = "mover.mysql_type";
/// Field metadata: the character length of a VARCHAR(n)/CHAR(n) column.
pub const MAX_CHARS: &str = "mover.max_chars";
/// Arrow's canonical extension name for JSON text.
const EXTENSION: &str = "ARROW:extension:name";
const JSON: &str = "arrow.json";

/// How the values of a column are read from their text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int {
        bits: u8,
        unsigned: bool,
    },
    /// TINYINT(1): the digits 0 and 1.
    TinyBool,
    /// BIT(1): one byte, 0 or 1.
    BitBool,
    /// BIT(n): big-endian bytes.
    Bits,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Float,
    Double,
    Text,
    Binary,
    Date,
    Time,
    DateTime,
    Timestamp,
    Year,
}

impl Kind {
    pub fn arrow(self) -> DataType {
        use DataType::*;
        match self {
            Kind::Int { bits, unsigned } => match (bits, unsigned) {
                (8, false) => Int8,
                (16, false) => Int16,
                (32, false) => Int32,
                (_, false) => Int64,
                (8, true) => UInt8,
                (16, true) => UInt16,
                (32, true) => UInt32,
                (_, true) => UInt64,
            },
            Kind::TinyBool | Kind::BitBool => Boolean,
            Kind::Bits => UInt64,
            Kind::Decimal { precision, scale } if precision <= 38 => Decimal128(precision, scale),
            Kind::Decimal { precision, scale } => Decimal256(precision, scale),
            Kind::Float => Float32,
            Kind::Double => Float64,
            Kind::Text => Utf8,
            Kind::Binary => Binary,
            Kind::Date => Date32,
            Kind::Time => Duration(TimeUnit::Microsecond),
            Kind::DateTime => Timestamp(TimeUnit::Microsecond, None),
            Kind::Timestamp => Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Year => Int16,
        }
    }
}

/// What the catalog says of a table's column beyond the result metadata.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// COLUMN_TYPE, e.g. `int(10) unsigned`, `varchar(20)`, `enum('a','b')`.
    pub column_type: String,
    /// DATA_TYPE, e.g. `int`, `float`.
    pub data_type: String,
    pub nullable: bool,
    pub max_chars: Option<u64>,
    pub json: bool,
}

/// The kind of a result column from its wire metadata.
pub fn kind_of(column: &mysql_async::Column) -> Result<Kind> {
    use mysql_async::consts::{ColumnFlags, ColumnType as T};
    let flags = column.flags();
    let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = column.character_set() == 63;
    let int = |bits| Kind::Int { bits, unsigned };
    Ok(match column.column_type() {
        T::MYSQL_TYPE_TINY if column.column_length() == 1 && !unsigned => Kind::TinyBool,
        T::MYSQL_TYPE_TINY => int(8),
        T::MYSQL_TYPE_SHORT => int(16),
        T::MYSQL_TYPE_INT24 | T::MYSQL_TYPE_LONG => int(32),
        T::MYSQL_TYPE_LONGLONG => int(64),
        T::MYSQL_TYPE_BIT if column.column_length() == 1 => Kind::BitBool,
        T::MYSQL_TYPE_BIT => Kind::Bits,
        T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL => {
            let scale = column.decimals();
            // The display length counts the digits, a point when there is a scale, and a
            // sign unless unsigned.
            let length = column.column_length() as i64;
            let precision = length - i64::from(scale > 0) - i64::from(!unsigned);
            let precision = u8::try_from(precision.clamp(1, 76)).unwrap_or(76);
            Kind::Decimal {
                precision: precision.max(scale),
                scale: scale as i8,
            }
        }
        T::MYSQL_TYPE_FLOAT => Kind::Float,
        T::MYSQL_TYPE_DOUBLE => Kind::Double,
        T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE => Kind::Date,
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => Kind::Time,
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2 => Kind::DateTime,
        T::MYSQL_TYPE_TIMESTAMP | T::MYSQL_TYPE_TIMESTAMP2 => Kind::Timestamp,
        T::MYSQL_TYPE_YEAR => Kind::Year,
        T::MYSQL_TYPE_VARCHAR
        | T::MYSQL_TYPE_VAR_STRING
        | T::MYSQL_TYPE_STRING
        | T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_BLOB
        | T::MYSQL_TYPE_ENUM
        | T::MYSQL_TYPE_SET
        | T::MYSQL_TYPE_JSON => {
            if binary {
                Kind::Binary
            } else {
                Kind::Text
            }
        }
        other => {
            return Err(Error::unsupported(format!(
                "column {:?}: MySQL type {other:?} is not supported",
                column.name_str()
            )));
        }
    })
}

/// The Arrow field of a column; `declared` (tables only) adds what the catalog knows.
pub fn field(name: &str, kind: Kind, nullable: bool, declared: Option<&Declared>) -> Field {
    let mut metadata = HashMap::new();
    if let Some(d) = declared {
        metadata.insert(MYSQL_TYPE.to_string(), d.column_type.clone());
        if let Some(n) = d.max_chars {
            metadata.insert(MAX_CHARS.to_string(), n.to_string());
        }
        if d.json {
            metadata.insert(EXTENSION.to_string(), JSON.to_string());
        }
    }
    Field::new(name, kind.arrow(), nullable).with_metadata(metadata)
}

/// The columns MySQL takes as text, as text: a uuid (`arrow.uuid`) as its canonical form into
/// a `uuid_type` column (MariaDB's `UUID` from 10.7, else `CHAR(36)`), and a list, struct or
/// map as JSON text into a JSON column. None when there are none.
pub fn text_view(schema: &Schema, uuid_type: &str) -> Option<SchemaRef> {
    let view = crate::records::as_text::schema(schema, true)?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(view.fields())
        .map(|(from, to)| {
            let mut metadata = to.metadata().clone();
            if crate::convert::is_uuid(from) {
                metadata.insert(MYSQL_TYPE.to_string(), uuid_type.to_string());
            } else if from.data_type().is_nested() {
                metadata.insert(EXTENSION.to_string(), JSON.to_string());
            }
            to.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// The type a uuid column is created with on a server of this `VERSION()`.
pub fn uuid_type(version: &str) -> &'static str {
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let mut numbers = version
        .split(['.', '-'])
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if mariadb && (major, minor) >= (10, 7) {
        "UUID"
    } else {
        "CHAR(36)"
    }
}

/// The MySQL type to create a column of this Arrow field with.
pub fn ddl_type(field: &Field) -> Result<String> {
    if field.metadata().get(EXTENSION).map(String::as_str) == Some(JSON) {
        return Ok("JSON".into());
    }
    if let Some(declared) = field.metadata().get(MYSQL_TYPE)
        && declared_is_safe(declared)
        && kind_matches(declared, field.data_type())
    {
        return Ok(declared.clone());
    }
    use DataType::*;
    let unsupported = || {
        Error::unsupported(format!(
            "column {:?}: MySQL has no type for {}",
            field.name(),
            field.data_type()
        ))
    };
    Ok(match field.data_type() {
        Boolean => "BOOLEAN".into(),
        Int8 => "TINYINT".into(),
        Int16 => "SMALLINT".into(),
        Int32 => "INT".into(),
        Int64 => "BIGINT".into(),
        UInt8 => "TINYINT UNSIGNED".into(),
        UInt16 => "SMALLINT UNSIGNED".into(),
        UInt32 => "INT UNSIGNED".into(),
        UInt64 => "BIGINT UNSIGNED".into(),
        Float16 | Float32 => "FLOAT".into(),
        Float64 => "DOUBLE".into(),
        Decimal128(p, s) | Decimal256(p, s) if *s >= 0 && *p <= 65 && (*s as u8) <= 38 => {
            format!("DECIMAL({p},{s})")
        }
        Utf8 | LargeUtf8 | Utf8View => match max_chars(field) {
            Some(n) if n <= 16_383 => format!("VARCHAR({n})"),
            _ => "LONGTEXT".into(),
        },
        Binary | LargeBinary | BinaryView => "LONGBLOB".into(),
        FixedSizeBinary(n) if *n <= 255 => format!("BINARY({n})"),
        Date32 | Date64 => "DATE".into(),
        Time32(_) | Time64(_) | Duration(_) => "TIME(6)".into(),
        Timestamp(_, _) => "DATETIME(6)".into(),
        _ => return Err(unsupported()),
    })
}

/// The character length a text field carries: ours, or a Postgres varchar(n)/char(n).
fn max_chars(field: &Field) -> Option<u64> {
    if let Some(n) = field.metadata().get(MAX_CHARS) {
        return n.parse().ok();
    }
    let pg = field.metadata().get("mover.pg_type")?;
    let inner = pg
        .strip_prefix("character varying(")
        .or_else(|| pg.strip_prefix("character("))?;
    inner.strip_suffix(')')?.parse().ok()
}

/// A declared type is copied into DDL only when it is one of a few shapes whose every
/// character is checked: a name, optional digits in parentheses, `unsigned`, or an ENUM/SET of
/// quoted labels without backslashes (a doubled quote is the only escape).
fn declared_is_safe(declared: &str) -> bool {
    let lower = declared.to_ascii_lowercase();
    for list in ["enum(", "set("] {
        if let Some(rest) = lower.strip_prefix(list) {
            return labels_are_safe(&declared[list.len()..]) && rest.ends_with(')');
        }
    }
    let (base, rest) = lower.split_once('(').unwrap_or((&lower, ""));
    let known = [
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "bigint",
        "decimal",
        "float",
        "double",
        "char",
        "varchar",
        "tinytext",
        "text",
        "mediumtext",
        "longtext",
        "binary",
        "varbinary",
        "tinyblob",
        "blob",
        "mediumblob",
        "longblob",
        "date",
        "time",
        "datetime",
        "timestamp",
        "year",
        "bit",
        "uuid",
    ];
    if !known.contains(&base.trim()) {
        return false;
    }
    let rest = rest
        .trim_end_matches(" unsigned")
        .trim_end_matches(" zerofill");
    rest.is_empty()
        || rest
            .strip_suffix(')')
            .is_some_and(|digits| digits.chars().all(|c| c.is_ascii_digit() || c == ','))
}

/// `'a','b''c')` — labels in single quotes, separated by commas, then the closing parenthesis.
fn labels_are_safe(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    loop {
        if chars.next() != Some('\'') {
            return false;
        }
        loop {
            match chars.next() {
                Some('\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                }
                Some('\'') => break,
                Some('\\') | None => return false,
                Some(_) => {}
            }
        }
        match chars.next() {
            Some(',') => continue,
            Some(')') => return chars.next().is_none(),
            _ => return false,
        }
    }
}

/// A declared type is kept only for the Arrow type it was read as (a column cast on the way
/// gets a type of its new kind).
fn kind_matches(declared: &str, data_type: &DataType) -> bool {
    let lower = declared.to_ascii_lowercase();
    let base = lower.split(['(', ' ']).next().unwrap_or("");
    let unsigned = lower.contains("unsigned");
    use DataType::*;
    match data_type {
        Boolean => base == "tinyint" || base == "bit",
        Int8 | Int16 | Int32 | Int64 => {
            !unsigned
                && matches!(
                    base,
                    "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "year"
                )
        }
        UInt8 | UInt16 | UInt32 | UInt64 => {
            (unsigned
                && matches!(
                    base,
                    "tinyint" | "smallint" | "mediumint" | "int" | "bigint"
                ))
                || base == "bit"
        }
        Decimal128(..) | Decimal256(..) => base == "decimal",
        Float32 => base == "float",
        Float64 => base == "double",
        Utf8 => matches!(
            base,
            "char"
                | "varchar"
                | "tinytext"
                | "text"
                | "mediumtext"
                | "longtext"
                | "enum"
                | "set"
                | "uuid"
        ),
        Binary => matches!(
            base,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
        ),
        Date32 => base == "date",
        Duration(_) => base == "time",
        Timestamp(_, None) => base == "datetime",
        Timestamp(_, Some(_)) => base == "timestamp",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(declared: &str, t: DataType) -> Field {
        Field::new("c", t, true).with_metadata(HashMap::from([(
            MYSQL_TYPE.to_string(),
            declared.to_string(),
        )]))
    }

    #[test]
    fn ddl_from_arrow_is_the_smallest_faithful_type() {
        let plain = |t: DataType| ddl_type(&Field::new("c", t, true)).unwrap();
        assert_eq!(plain(DataType::UInt16), "SMALLINT UNSIGNED");
        assert_eq!(plain(DataType::Int8), "TINYINT");
        assert_eq!(plain(DataType::Decimal128(10, 0)), "DECIMAL(10,0)");
        assert_eq!(
            plain(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            )),
            "DATETIME(6)"
        );
        assert_eq!(plain(DataType::Utf8), "LONGTEXT");
        let pg = Field::new("c", DataType::Utf8, true).with_metadata(HashMap::from([(
            "mover.pg_type".to_string(),
            "character varying(20)".to_string(),
        )]));
        assert_eq!(ddl_type(&pg).unwrap(), "VARCHAR(20)");
        assert!(ddl_type(&Field::new("c", DataType::Decimal128(10, -2), true)).is_err());
    }

    #[test]
    fn declared_types_are_kept_only_when_safe_and_fitting() {
        let keep = |d: &str, t: DataType| ddl_type(&with(d, t)).unwrap();
        assert_eq!(
            keep("mediumint(8) unsigned", DataType::UInt32),
            "mediumint(8) unsigned"
        );
        assert_eq!(keep("enum('a','b''c')", DataType::Utf8), "enum('a','b''c')");
        assert_eq!(keep("year(4)", DataType::Int16), "year(4)");
        // Not safe: an injection attempt, a backslash; not fitting: a cast column.
        assert_eq!(keep("int); DROP TABLE x; --", DataType::Int32), "INT");
        assert_eq!(keep("enum('a\\'', 'b')", DataType::Utf8), "LONGTEXT");
        assert_eq!(keep("enum('a'),'b')", DataType::Utf8), "LONGTEXT");
        assert_eq!(keep("varchar(10)", DataType::Int64), "BIGINT");
    }

    #[test]
    fn uuids_are_mariadbs_uuid_from_10_7() {
        assert_eq!(uuid_type("10.11.19-MariaDB-0+deb12u1"), "UUID");
        assert_eq!(uuid_type("10.7.0-MariaDB"), "UUID");
        assert_eq!(uuid_type("10.6.12-MariaDB-log"), "CHAR(36)");
        assert_eq!(uuid_type("8.0.36"), "CHAR(36)");
    }
}
