//! The key commands: GetPrimaryKeys, GetImportedKeys, GetExportedKeys and GetCrossReference,
//! from each database's own catalog (buckets have no keys). A key is shown only when the
//! caller may list every table it names.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::{
    CommandGetCrossReference, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
};
use tonic::Status;

use super::super::service::MoverService;
use super::super::status;
use super::metadata::{tables, visible_sources};
use crate::auth::Caller;
use crate::catalog::SourceKind;
use crate::connectors::{ForeignKey, KeyRule, KeysOf};
use crate::error::ErrorKind;

/// GetPrimaryKeys' result schema, as the spec declares it.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The result schema of GetImportedKeys, GetExportedKeys and GetCrossReference, as the spec
/// declares it.
pub fn foreign_keys_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("pk_catalog_name", true),
        text("pk_db_schema_name", true),
        text("pk_table_name", false),
        text("pk_column_name", false),
        text("fk_catalog_name", true),
        text("fk_db_schema_name", true),
        text("fk_table_name", false),
        text("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        text("fk_key_name", true),
        text("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

/// The primary keys of the tables the command names (a table name, in one catalog and db
/// schema or in any).
pub async fn primary_keys(
    service: &MoverService,
    caller: &Caller,
    command: CommandGetPrimaryKeys,
) -> Result<RecordBatch, Status> {
    let named = (command.catalog.as_deref(), command.db_schema.as_deref());
    let mut rows: Vec<[Option<String>; 5]> = Vec::new();
    let mut sequence: Vec<i32> = Vec::new();
    for path in named_tables(service, caller, named, &command.table).await? {
        let key = match service.catalog.primary_key(&path).await {
            Ok(Some(key)) => key,
            Ok(None) => continue,
            // No such table: no key to show, as for a table without one.
            Err(e) if e.kind == ErrorKind::NotFound => continue,
            Err(e) => return Err(status(e)),
        };
        for (i, column) in key.columns.iter().enumerate() {
            let [source, schema, table] = path.clone().try_into().expect("three parts");
            rows.push([
                Some(source),
                Some(schema),
                Some(table),
                Some(column.clone()),
                key.name.clone(),
            ]);
            sequence.push(i as i32 + 1);
        }
    }
    let columns: Vec<ArrayRef> = (0..5)
        .map(|i| text_column(&rows, i))
        .chain([Arc::new(Int32Array::from(sequence)) as ArrayRef])
        .collect();
    RecordBatch::try_new(primary_keys_schema(), columns)
        .map_err(|e| Status::internal(e.to_string()))
}

/// The foreign keys of the table the command names: those referencing other tables, ordered
/// by the referenced table.
pub async fn imported(
    service: &MoverService,
    caller: &Caller,
    c: CommandGetImportedKeys,
) -> Result<RecordBatch, Status> {
    let named = (c.catalog.as_deref(), c.db_schema.as_deref());
    let mut keys = foreign_keys(service, caller, named, &c.table, KeysOf::Imported).await?;
    keys.sort_by(|a, b| (&a.0, &a.1.referenced).cmp(&(&b.0, &b.1.referenced)));
    rows_of(&keys)
}

/// The foreign keys of other tables that reference the table the command names, ordered by
/// the referencing table.
pub async fn exported(
    service: &MoverService,
    caller: &Caller,
    c: CommandGetExportedKeys,
) -> Result<RecordBatch, Status> {
    let named = (c.catalog.as_deref(), c.db_schema.as_deref());
    let mut keys = foreign_keys(service, caller, named, &c.table, KeysOf::Exported).await?;
    keys.sort_by(|a, b| (&a.0, &a.1.table, &a.1.name).cmp(&(&b.0, &b.1.table, &b.1.name)));
    rows_of(&keys)
}

/// The foreign keys of the command's foreign-key table that reference its primary-key table.
pub async fn cross_reference(
    service: &MoverService,
    caller: &Caller,
    c: CommandGetCrossReference,
) -> Result<RecordBatch, Status> {
    let named = (c.fk_catalog.as_deref(), c.fk_db_schema.as_deref());
    let mut keys = foreign_keys(service, caller, named, &c.fk_table, KeysOf::Imported).await?;
    keys.retain(|(source, key)| {
        c.pk_catalog.as_deref().is_none_or(|pc| pc == source)
            && c.pk_db_schema
                .as_deref()
                .is_none_or(|ps| ps == key.referenced[0])
            && key.referenced[1] == c.pk_table
    });
    keys.sort_by(|a, b| (&a.0, &a.1.table, &a.1.name).cmp(&(&b.0, &b.1.table, &b.1.name)));
    rows_of(&keys)
}

/// The tables (source, db schema, table) that a command's catalog, db schema and table name:
/// in every database the caller may see, or the one named; the caller may list each.
async fn named_tables(
    service: &MoverService,
    caller: &Caller,
    (catalog, db_schema): (Option<&str>, Option<&str>),
    table: &str,
) -> Result<Vec<Vec<String>>, Status> {
    let mut out = Vec::new();
    for (name, kind) in visible_sources(service, caller, catalog) {
        if kind != SourceKind::Database {
            continue;
        }
        // With its db schema named, the table is asked for directly (BI tools ask table by
        // table); without, the database's listing says which schemas hold one of that name.
        let schemas: Vec<String> = match db_schema {
            Some(schema) => vec![schema.to_string()],
            None => tables(service, caller, &name, kind)
                .await?
                .into_iter()
                .filter(|t| t.name == table)
                .map(|t| t.schema)
                .collect(),
        };
        for schema in schemas {
            let path = vec![name.clone(), schema, table.to_string()];
            if service.auth.may_list(caller, &path.join("/")) {
                out.push(path);
            }
        }
    }
    Ok(out)
}

/// The `which` foreign keys of the named tables, each with its source, keeping only keys
/// whose every table the caller may list.
async fn foreign_keys(
    service: &MoverService,
    caller: &Caller,
    named: (Option<&str>, Option<&str>),
    table: &str,
    which: KeysOf,
) -> Result<Vec<(String, ForeignKey)>, Status> {
    let mut out = Vec::new();
    for path in named_tables(service, caller, named, table).await? {
        let keys = match service.catalog.foreign_keys(&path, which).await {
            Ok(keys) => keys,
            Err(e) if e.kind == ErrorKind::NotFound => continue,
            Err(e) => return Err(status(e)),
        };
        let source = &path[0];
        let listable = |t: &[String]| {
            service
                .auth
                .may_list(caller, &format!("{source}/{}", t.join("/")))
        };
        out.extend(
            keys.into_iter()
                .filter(|k| listable(&k.table) && listable(&k.referenced))
                .map(|k| (source.clone(), k)),
        );
    }
    Ok(out)
}

/// One row per key column, as [`foreign_keys_schema`] lays them out.
fn rows_of(keys: &[(String, ForeignKey)]) -> Result<RecordBatch, Status> {
    let mut text: Vec<[Option<String>; 10]> = Vec::new();
    let (mut sequence, mut update, mut delete) = (Vec::new(), Vec::new(), Vec::new());
    for (source, key) in keys {
        for (i, (column, referenced)) in key.columns.iter().enumerate() {
            text.push([
                Some(source.clone()),
                Some(key.referenced[0].clone()),
                Some(key.referenced[1].clone()),
                Some(referenced.clone()),
                Some(source.clone()),
                Some(key.table[0].clone()),
                Some(key.table[1].clone()),
                Some(column.clone()),
                key.name.clone(),
                key.referenced_key.clone(),
            ]);
            sequence.push(i as i32 + 1);
            update.push(rule_code(key.on_update));
            delete.push(rule_code(key.on_delete));
        }
    }
    let mut columns: Vec<ArrayRef> = (0..8).map(|i| text_column(&text, i)).collect();
    columns.push(Arc::new(Int32Array::from(sequence)));
    columns.extend((8..10).map(|i| text_column(&text, i)));
    columns.push(Arc::new(UInt8Array::from(update)));
    columns.push(Arc::new(UInt8Array::from(delete)));
    RecordBatch::try_new(foreign_keys_schema(), columns)
        .map_err(|e| Status::internal(e.to_string()))
}

/// The spec's numbering of key rules.
fn rule_code(rule: KeyRule) -> u8 {
    match rule {
        KeyRule::Cascade => 0,
        KeyRule::Restrict => 1,
        KeyRule::SetNull => 2,
        KeyRule::NoAction => 3,
        KeyRule::SetDefault => 4,
    }
}

fn text_column<const N: usize>(rows: &[[Option<String>; N]], i: usize) -> ArrayRef {
    Arc::new(
        rows.iter()
            .map(|r| r[i].as_deref())
            .collect::<StringArray>(),
    )
}
