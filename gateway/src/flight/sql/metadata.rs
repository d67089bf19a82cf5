//! The metadata commands: catalogs, db schemas, tables and table types (filters applied by
//! arrow-flight's builders, as LIKE patterns), primary keys from each database's catalog, and
//! GetSqlInfo. Every listing shows only what
//! the caller's rules let it list, exactly as ListFlights does.

use std::collections::BTreeSet;

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::{Command, CommandGetPrimaryKeys};
use futures::StreamExt;
use tonic::Status;

use super::super::service::MoverService;
use super::super::status;
use super::{info, types};
use crate::auth::Caller;
use crate::catalog::SourceKind;
use crate::connectors::DatasetInfo;
use crate::error::ErrorKind;

/// A database's table.
pub const TABLE: &str = "TABLE";
/// A database's view (Postgres materialized views too).
pub const VIEW: &str = "VIEW";
/// A file in a bucket.
pub const FILE: &str = "FILE";
/// A prefix of a bucket read as one dataset (its parts, or a records directory).
pub const DIRECTORY: &str = "DIRECTORY";

/// How many table schemas GetTables with `include_schema` reads at once.
const DESCRIBED_AT_ONCE: usize = 8;

/// The result schema of a metadata command.
pub fn schema_of(command: &Command) -> Result<SchemaRef, Status> {
    Ok(match command {
        Command::CommandGetCatalogs(c) => c.into_builder().schema(),
        Command::CommandGetDbSchemas(c) => c.clone().into_builder().schema(),
        Command::CommandGetTables(c) => c.clone().into_builder().schema(),
        Command::CommandGetTableTypes(c) => c.into_builder().schema(),
        Command::CommandGetSqlInfo(c) => c.clone().into_builder(info::data()).schema(),
        Command::CommandGetPrimaryKeys(_) => primary_keys_schema(),
        Command::CommandGetXdbcTypeInfo(c) => c.into_builder(types::data()).schema(),
        other => return Err(unimplemented(other)),
    })
}

/// The rows of a metadata command, for `caller`.
pub async fn rows(
    service: &MoverService,
    caller: &Caller,
    command: Command,
) -> Result<RecordBatch, Status> {
    let built = match command {
        Command::CommandGetCatalogs(c) => {
            let mut out = c.into_builder();
            for (name, _) in visible_sources(service, caller, None) {
                out.append(name);
            }
            out.build()
        }
        Command::CommandGetDbSchemas(c) => {
            let mut out = c.clone().into_builder();
            for (name, kind) in visible_sources(service, caller, c.catalog.as_deref()) {
                for schema in schemas(&tables(service, caller, &name, kind).await?) {
                    out.append(&name, schema);
                }
            }
            out.build()
        }
        Command::CommandGetTables(c) => {
            let include_schema = c.include_schema;
            let mut out = c.clone().into_builder();
            for (name, kind) in visible_sources(service, caller, c.catalog.as_deref()) {
                let found = tables(service, caller, &name, kind).await?;
                let schemas = if include_schema {
                    described(service, &name, &found).await?
                } else {
                    vec![Schema::empty().into(); found.len()]
                };
                for (table, schema) in found.iter().zip(schemas) {
                    out.append(&name, &table.schema, &table.name, table.kind, &schema)
                        .map_err(|e| Status::internal(e.to_string()))?;
                }
            }
            out.build()
        }
        Command::CommandGetTableTypes(c) => {
            let mut out = c.into_builder();
            for kind in [TABLE, VIEW, FILE, DIRECTORY] {
                out.append(kind);
            }
            out.build()
        }
        Command::CommandGetSqlInfo(c) => c.into_builder(info::data()).build(),
        Command::CommandGetPrimaryKeys(c) => return primary_keys(service, caller, c).await,
        Command::CommandGetXdbcTypeInfo(c) => c.into_builder(types::data()).build(),
        other => return Err(unimplemented(&other)),
    };
    built.map_err(|e| Status::internal(e.to_string()))
}

/// What this server does not answer, said as UNIMPLEMENTED (the code clients fall back on).
pub fn unimplemented(command: &Command) -> Status {
    Status::unimplemented(format!(
        "{} is not answered by this gateway",
        super::command_name(command)
    ))
}

/// The sources the caller may list, by name, or only `catalog` when one is given.
fn visible_sources(
    service: &MoverService,
    caller: &Caller,
    catalog: Option<&str>,
) -> Vec<(String, SourceKind)> {
    super::visible(service, caller)
        .into_iter()
        .filter(|(name, _)| catalog.is_none_or(|c| c == *name))
        .map(|(name, kind)| (name.to_string(), kind))
        .collect()
}

/// One table of a catalog, as Flight SQL names it.
struct Table {
    schema: String,
    name: String,
    kind: &'static str,
    /// The dataset path below the source.
    path: Vec<String>,
}

/// The tables of source `name` the caller may list: a database's every table and view, a
/// bucket's top level (one listing, never a walk of the bucket).
async fn tables(
    service: &MoverService,
    caller: &Caller,
    name: &str,
    kind: SourceKind,
) -> Result<Vec<Table>, Status> {
    let listed = service.catalog.list_source(name).await.map_err(status)?;
    Ok(listed
        .into_iter()
        .filter(|info| service.auth.may_list(caller, &full_name(name, info)))
        .filter_map(|info| table_of(kind, info))
        .collect())
}

fn full_name(source: &str, info: &DatasetInfo) -> String {
    format!("{source}/{}", info.path.join("/"))
}

fn table_of(kind: SourceKind, info: DatasetInfo) -> Option<Table> {
    match kind {
        SourceKind::Database => match info.path.as_slice() {
            [schema, table] => Some(Table {
                schema: schema.clone(),
                name: table.clone(),
                kind: if info.view { VIEW } else { TABLE },
                path: info.path.clone(),
            }),
            _ => None,
        },
        SourceKind::Bucket => {
            let name = info.path.join("/");
            Some(Table {
                schema: String::new(),
                kind: if name.ends_with('/') { DIRECTORY } else { FILE },
                name,
                path: info.path,
            })
        }
    }
}

/// The distinct db schemas of `tables`, in order.
fn schemas(tables: &[Table]) -> BTreeSet<&str> {
    tables.iter().map(|t| t.schema.as_str()).collect()
}

/// Each table's Arrow schema, as a DoGet of it would stream it.
async fn described(
    service: &MoverService,
    source: &str,
    tables: &[Table],
) -> Result<Vec<SchemaRef>, Status> {
    let reads: Vec<_> = tables
        .iter()
        .map(|t| {
            let mut path = vec![source.to_string()];
            path.extend(t.path.iter().cloned());
            super::super::names::read_path(path)
        })
        .collect();
    let catalog = service.catalog.clone();
    let described: Vec<_> = futures::stream::iter(reads)
        .map(move |read| {
            let catalog = catalog.clone();
            async move { catalog.describe(&read).await }
        })
        .buffered(DESCRIBED_AT_ONCE)
        .collect()
        .await;
    described
        .into_iter()
        .map(|d| d.map(|info| info.schema).map_err(status))
        .collect()
}

/// GetPrimaryKeys' result schema, as the spec declares it.
fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The primary keys of the tables the command names (a table name, in one catalog and db
/// schema or in any), from each database's own catalog; buckets have none.
async fn primary_keys(
    service: &MoverService,
    caller: &Caller,
    command: CommandGetPrimaryKeys,
) -> Result<RecordBatch, Status> {
    let mut rows: Vec<[Option<String>; 5]> = Vec::new();
    let mut sequence = Int32Builder::new();
    for (name, kind) in visible_sources(service, caller, command.catalog.as_deref()) {
        if kind != SourceKind::Database {
            continue;
        }
        // With its db schema named, the table is asked for directly (BI tools ask table by
        // table); without, the database's listing says which schemas hold one of that name.
        let candidates: Vec<String> = match &command.db_schema {
            Some(schema) => vec![schema.clone()],
            None => tables(service, caller, &name, kind)
                .await?
                .into_iter()
                .filter(|t| t.name == command.table)
                .map(|t| t.schema)
                .collect(),
        };
        for schema in candidates {
            let path = vec![name.clone(), schema.clone(), command.table.clone()];
            if !service.auth.may_list(caller, &path.join("/")) {
                continue;
            }
            let key = match service.catalog.primary_key(&path).await {
                Ok(Some(key)) => key,
                // No such table: no key to show, as for a table without one.
                Ok(None) => continue,
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) => return Err(status(e)),
            };
            for (i, column) in key.columns.iter().enumerate() {
                rows.push([
                    Some(name.clone()),
                    Some(schema.clone()),
                    Some(command.table.clone()),
                    Some(column.clone()),
                    key.name.clone(),
                ]);
                sequence.append_value(i as i32 + 1);
            }
        }
    }
    let column = |i: usize| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(|r| r[i].as_deref())
                .collect::<StringArray>(),
        )
    };
    let columns: Vec<ArrayRef> = (0..5)
        .map(column)
        .chain([Arc::new(sequence.finish()) as ArrayRef])
        .collect();
    RecordBatch::try_new(primary_keys_schema(), columns)
        .map_err(|e| Status::internal(e.to_string()))
}
