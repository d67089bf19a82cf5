//! The metadata commands: catalogs, db schemas, tables and table types (filters applied by
//! arrow-flight's builders, as LIKE patterns), keys ([`keys`]), GetSqlInfo and
//! GetXdbcTypeInfo. Every listing shows only what the caller's rules let it list, exactly as
//! ListFlights does.

use std::collections::BTreeSet;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::sql::Command;
use futures::StreamExt;
use tonic::Status;

use super::super::service::MoverService;
use super::super::status;
use super::{info, keys, types};
use crate::auth::Caller;
use crate::catalog::SourceKind;
use crate::connectors::DatasetInfo;

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
        Command::CommandGetSqlInfo(c) => c.clone().into_builder(info::data(true)).schema(),
        Command::CommandGetPrimaryKeys(_) => keys::primary_keys_schema(),
        Command::CommandGetImportedKeys(_)
        | Command::CommandGetExportedKeys(_)
        | Command::CommandGetCrossReference(_) => keys::foreign_keys_schema(),
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
        Command::CommandGetSqlInfo(c) => {
            let read_only = !service.auth.may_write_anything(caller);
            c.into_builder(info::data(read_only)).build()
        }
        Command::CommandGetPrimaryKeys(c) => return keys::primary_keys(service, caller, c).await,
        Command::CommandGetImportedKeys(c) => return keys::imported(service, caller, c).await,
        Command::CommandGetExportedKeys(c) => return keys::exported(service, caller, c).await,
        Command::CommandGetCrossReference(c) => {
            return keys::cross_reference(service, caller, c).await;
        }
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
pub(super) fn visible_sources(
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
pub(super) struct Table {
    pub(super) schema: String,
    pub(super) name: String,
    kind: &'static str,
    /// The dataset path below the source.
    path: Vec<String>,
}

/// The tables of source `name` the caller may list: a database's every table and view, a
/// bucket's top level (one listing, never a walk of the bucket).
pub(super) async fn tables(
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
