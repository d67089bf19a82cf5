//! What a statement's result columns say of themselves, as Flight SQL's `ARROW:FLIGHT:SQL:*`
//! field metadata: the catalog; the db schema and table where the column is a table's (a
//! bucket dataset's, or a query's column that its database says it read from a table); the
//! type name as the database spells it, else the portable name it comes through as; a
//! decimal's precision and scale. GetFlightInfo and every DoGet stream carry the same.
//!
//! Text and bytes come as Utf8 and Binary, whatever a file holds (a Parquet file's
//! LargeUtf8, say): BI drivers read no other.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::connectors::{ORIGIN_SCHEMA, ORIGIN_TABLE, declared_type};

pub const CATALOG_NAME: &str = "ARROW:FLIGHT:SQL:CATALOG_NAME";
pub const DB_SCHEMA_NAME: &str = "ARROW:FLIGHT:SQL:DB_SCHEMA_NAME";
pub const TABLE_NAME: &str = "ARROW:FLIGHT:SQL:TABLE_NAME";
pub const TYPE_NAME: &str = "ARROW:FLIGHT:SQL:TYPE_NAME";
pub const PRECISION: &str = "ARROW:FLIGHT:SQL:PRECISION";
pub const SCALE: &str = "ARROW:FLIGHT:SQL:SCALE";
pub const IS_READ_ONLY: &str = "ARROW:FLIGHT:SQL:IS_READ_ONLY";

/// `schema` with each field described, its columns read from `catalog`; `dataset` is the
/// (db schema, table) every column comes from, when the statement reads one dataset.
pub fn annotate(schema: &Schema, catalog: &str, dataset: Option<(&str, &str)>) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut metadata = f.metadata().clone();
            metadata.insert(CATALOG_NAME, catalog);
            let origin = dataset.or_else(|| {
                Some((
                    f.metadata().get(ORIGIN_SCHEMA)?.as_str(),
                    f.metadata().get(ORIGIN_TABLE)?.as_str(),
                ))
            });
            if let Some((schema, table)) = origin {
                metadata.insert(DB_SCHEMA_NAME, schema);
                metadata.insert(TABLE_NAME, table);
            }
            let type_name =
                declared_type(f).map_or_else(|| portable_name(f.data_type()), str::to_string);
            metadata.insert(TYPE_NAME, type_name);
            if let DataType::Decimal128(p, s) | DataType::Decimal256(p, s) = f.data_type() {
                metadata.insert(PRECISION, p.to_string());
                metadata.insert(SCALE, s.to_string());
            }
            // Statements here only read.
            metadata.insert(IS_READ_ONLY, "1");
            let data_type = match f.data_type() {
                DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
                DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
                other => other.clone(),
            };
            f.as_ref()
                .clone()
                .with_data_type(data_type)
                .with_metadata(metadata)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The portable SQL name a column of `data_type` comes through as (GetXdbcTypeInfo's list).
fn portable_name(data_type: &DataType) -> String {
    use DataType::*;
    match data_type {
        Boolean => "BOOLEAN",
        Int8 | UInt8 => "TINYINT",
        Int16 | UInt16 => "SMALLINT",
        Int32 | UInt32 => "INTEGER",
        Int64 | UInt64 => "BIGINT",
        Float16 | Float32 => "REAL",
        Float64 => "DOUBLE",
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => "DECIMAL",
        Utf8 | LargeUtf8 | Utf8View => "VARCHAR",
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => "VARBINARY",
        Date32 | Date64 => "DATE",
        Time32(_) | Time64(_) => "TIME",
        Timestamp(..) => "TIMESTAMP",
        other => return other.to_string(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_say_where_they_come_from_and_what_they_are() {
        let from_table = crate::connectors::with_origin(
            Field::new("total", DataType::Decimal128(15, 2), true),
            Some(("public", "orders")),
        );
        let computed = Field::new("n", DataType::Int64, false);
        let schema = Schema::new(vec![from_table, computed]);
        let got = annotate(&schema, "pg", None);
        let total = got.field(0).metadata();
        assert_eq!(total[CATALOG_NAME], "pg");
        assert_eq!(total[DB_SCHEMA_NAME], "public");
        assert_eq!(total[TABLE_NAME], "orders");
        assert_eq!(total[TYPE_NAME], "DECIMAL");
        assert_eq!(
            (total[PRECISION].as_str(), total[SCALE].as_str()),
            ("15", "2")
        );
        let n = got.field(1).metadata();
        assert_eq!(n[TYPE_NAME], "BIGINT");
        assert!(
            !n.contains_key(TABLE_NAME),
            "a computed column has no table"
        );
        // A bucket dataset names every column's table.
        let got = annotate(&schema, "files", Some(("", "orders.csv")));
        assert_eq!(got.field(1).metadata()[TABLE_NAME], "orders.csv");
        // Types and nullability are untouched, but for text and bytes of other widths.
        assert_eq!(got.field(0).data_type(), schema.field(0).data_type());
        assert!(!got.field(1).is_nullable());
        let wide = Schema::new(vec![
            Field::new("t", DataType::LargeUtf8, true),
            Field::new("b", DataType::BinaryView, true),
        ]);
        let got = annotate(&wide, "files", Some(("", "wide.parquet")));
        assert_eq!(got.field(0).data_type(), &DataType::Utf8);
        assert_eq!(got.field(1).data_type(), &DataType::Binary);
    }
}
