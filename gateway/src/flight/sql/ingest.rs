//! Bulk ingest (`CommandStatementIngest`: ADBC's `adbc_ingest`, pandas' `to_sql`, polars'
//! `write_database`): the DoPut's batches written into a database table or a bucket dataset as
//! a `mover.v1` write, through the same sink and commit-or-nothing path as any DoPut or
//! `mvrec cp`. The answer is one `DoPutUpdateResult` with the rows committed, sent only once
//! they are.
//!
//! ADBC's modes, as its driver sends them (if it exists / if it does not):
//!
//! | mode | exists | missing |
//! |---|---|---|
//! | create | fail | create |
//! | append | append | fail |
//! | replace | drop and recreate | create |
//! | create_append | append | create |

use arrow_flight::sql::{
    CommandStatementIngest, DoPutUpdateResult, TableDefinitionOptions, TableExistsOption,
    TableNotExistOption,
};
use arrow_flight::{FlightData, PutResult};
use futures::{FutureExt, StreamExt};
use mover_proto::{ExistingTable, Path, Write};
use prost::Message;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::super::service::{MoverService, Stream};
use super::super::status;
use super::statements;
use crate::auth::Caller;
use crate::catalog::SourceKind;

/// DoPut of `CommandStatementIngest`: the batches of `data` into the table it names.
pub async fn do_put(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    command: CommandStatementIngest,
    data: Stream<FlightData>,
) -> Result<Stream<PutResult>, Status> {
    if command.temporary {
        return Err(Status::invalid_argument(
            "temporary tables are not offered: ingest into a table that stays",
        ));
    }
    if command.transaction_id.is_some() {
        return Err(statements::no_transactions());
    }
    if let Some(key) = command.options.keys().next() {
        return Err(Status::invalid_argument(format!(
            "ingest option {key:?} is not known here; ingest takes none"
        )));
    }
    let (existing_table, must_exist) = modes(command.table_definition_options)?;
    let catalog = match &command.catalog {
        Some(catalog) => catalog.clone(),
        None => statements::catalog_for(service, caller, headers)?,
    };
    let parts = target(
        service,
        caller,
        &catalog,
        command.schema.as_deref(),
        &command.table,
    )?;
    let write = Write {
        path: Some(Path { parts }),
        existing_table: existing_table as i32,
        must_exist,
        ..Default::default()
    };
    let (_, work) = service.start_put(caller, write, data).await?;
    // One answer, once the rows are committed; if the client leaves first, the stream (and
    // the work in it) is dropped and the write rolls back.
    let answer = work.map(|report| {
        let committed = DoPutUpdateResult {
            record_count: report.map_err(status)?.rows_committed as i64,
        };
        Ok(PutResult {
            app_metadata: committed.encode_to_vec().into(),
        })
    });
    Ok(futures::stream::once(answer).boxed())
}

/// The existing-table mode and whether the target must exist, from ADBC's two options.
fn modes(options: Option<TableDefinitionOptions>) -> Result<(ExistingTable, bool), Status> {
    let options = options.ok_or_else(|| {
        Status::invalid_argument(
            "the ingest says neither what to do if the table exists nor if not",
        )
    })?;
    let if_exists = match options.if_exists() {
        TableExistsOption::Fail => ExistingTable::Fail,
        TableExistsOption::Append => ExistingTable::Append,
        TableExistsOption::Replace => ExistingTable::DropAndRecreate,
        TableExistsOption::Unspecified => {
            return Err(Status::invalid_argument(
                "the ingest does not say what to do if the table exists (fail, append or replace)",
            ));
        }
    };
    let must_exist = match options.if_not_exist() {
        TableNotExistOption::Create => false,
        TableNotExistOption::Fail => true,
        TableNotExistOption::Unspecified => {
            return Err(Status::invalid_argument(
                "the ingest does not say what to do if the table is missing (create or fail)",
            ));
        }
    };
    Ok((if_exists, must_exist))
}

/// The dataset path an ingest writes: in a database `[catalog, db schema, table]` (the
/// database's default schema when none is named); in a bucket the folders of the db schema,
/// then the table as a file or prefix name (`orders.parquet`, `orders/`).
fn target(
    service: &MoverService,
    caller: &Caller,
    catalog: &str,
    schema: Option<&str>,
    table: &str,
) -> Result<Vec<String>, Status> {
    if table.is_empty() {
        return Err(Status::invalid_argument("the ingest names no table"));
    }
    match statements::catalog_kind(service, caller, catalog)? {
        SourceKind::Database => {
            let mut parts = vec![catalog.to_string()];
            parts.extend(schema.filter(|s| !s.is_empty()).map(str::to_string));
            parts.push(table.to_string());
            Ok(parts)
        }
        SourceKind::Bucket => {
            let folders = schema.unwrap_or("").trim_matches('/');
            let name = match folders {
                "" => format!("{catalog}/{table}"),
                folders => format!("{catalog}/{folders}/{table}"),
            };
            mover_client::names::parse(&name)
                .map_err(|e| Status::invalid_argument(format!("{name:?}: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(
        if_exists: TableExistsOption,
        if_not_exist: TableNotExistOption,
    ) -> TableDefinitionOptions {
        TableDefinitionOptions {
            if_not_exist: if_not_exist as i32,
            if_exists: if_exists as i32,
        }
    }

    #[test]
    fn adbc_modes_map_onto_existing_table_modes() {
        use TableExistsOption as E;
        use TableNotExistOption as N;
        let cases = [
            (E::Fail, N::Create, ExistingTable::Fail, false),
            (E::Append, N::Fail, ExistingTable::Append, true),
            (E::Replace, N::Create, ExistingTable::DropAndRecreate, false),
            (E::Append, N::Create, ExistingTable::Append, false),
        ];
        for (if_exists, if_not_exist, mode, must_exist) in cases {
            let got = modes(Some(options(if_exists, if_not_exist))).unwrap();
            assert_eq!(got, (mode, must_exist), "{if_exists:?} {if_not_exist:?}");
        }
        for unspecified in [
            options(E::Unspecified, N::Create),
            options(E::Fail, N::Unspecified),
        ] {
            let e = modes(Some(unspecified)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
        }
        assert!(modes(None).is_err());
    }
}
