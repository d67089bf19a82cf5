//! Statements: a query (`CommandStatementQuery`) or a prepared one runs in the database its
//! catalog names, through that connector's own read path. The FlightInfo's ticket is an
//! ordinary signed ticket of a `mover.v1` query read, so its DoGet is the DoGet of any query
//! (same rights, same limits, the query stopped on the server when the reader leaves). In a
//! bucket catalog the one statement accepted ([`bucket_query`]) is the read of a dataset.
//! Prepared statements are stateless: the handle is the catalog, the text and the values bound
//! to its placeholders, signed for the caller like a ticket, and closing one releases nothing.
//! Binding values (DoPut of one row on the handle) answers a new handle holding them.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandStatementUpdate, DoPutPreparedStatementResult,
    DoPutUpdateResult, ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{FlightDescriptor, FlightInfo};
use futures::{StreamExt, TryStreamExt};
use mover_proto::{Query, Read, read::What};
use prost::Message;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::super::put::{Upload, schema_if_any};
use super::super::service::{MoverService, Stream};
use super::super::status;
use super::{
    CATALOG_HEADER, action_result, bucket_query, columns, info_with_ticket, ipc_schema, sessions,
    visible,
};
use crate::auth::Caller;
use crate::catalog::SourceKind;
use crate::connectors::params;

/// The Flight SQL statement actions, as ListActions shows them.
pub const ACTIONS: [(&str, &str); 2] = [
    (
        "CreatePreparedStatement",
        "Flight SQL: prepare a query in the catalog's database; the handle is signed and stateless",
    ),
    (
        "ClosePreparedStatement",
        "Flight SQL: close a prepared statement (a stateless handle holds nothing)",
    ),
];

/// Whether asking of a statement runs it, when it is one that changes the database: a
/// GetFlightInfo does (that is how ADBC's and JDBC's `execute` run DDL and DML), a GetSchema
/// does not.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Yes,
    No,
}

/// GetFlightInfo of a query.
pub async fn query_info(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    descriptor: FlightDescriptor,
    sql: &str,
    run: Run,
) -> Result<FlightInfo, Status> {
    let statement = Query {
        database: catalog_for(service, caller, headers)?,
        sql: sql.to_string(),
        parameters: Default::default(),
    };
    let planned = plan(service, caller, &statement).await?;
    info_for(service, caller, descriptor, &planned, run).await
}

/// GetFlightInfo of a prepared statement, by its handle.
pub async fn prepared_info(
    service: &MoverService,
    caller: &Caller,
    descriptor: FlightDescriptor,
    handle: &[u8],
    run: Run,
) -> Result<FlightInfo, Status> {
    let statement = redeem(service, caller, handle)?;
    // Planned again: the rules may have changed since the statement was prepared.
    let planned = plan(service, caller, &statement).await?;
    info_for(service, caller, descriptor, &planned, run).await
}

/// DoPut of `CommandStatementUpdate`: the statement run once, answered by the rows it
/// changed.
pub async fn update(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    update: CommandStatementUpdate,
) -> Result<Stream<arrow_flight::PutResult>, Status> {
    if update.transaction_id.is_some() {
        return Err(no_transactions());
    }
    let statement = Query {
        database: catalog_for(service, caller, headers)?,
        sql: update.query,
        parameters: Default::default(),
    };
    catalog_kind(service, caller, &statement.database)?;
    service.check_sql_write(caller, &statement.database)?;
    let changed = execute(service, &statement, None).await?;
    Ok(updated(changed))
}

/// DoPut of `CommandPreparedStatementUpdate`: the statement run once for each row of
/// parameters the DoPut sends (`executemany`), or once with the values bound to the handle
/// when it sends none; all in one transaction, answered by the rows changed.
pub async fn prepared_update(
    service: &MoverService,
    caller: &Caller,
    handle: &[u8],
    data: Stream<arrow_flight::FlightData>,
) -> Result<Stream<arrow_flight::PutResult>, Status> {
    let statement = redeem(service, caller, handle)?;
    let planned = plan(service, caller, &statement).await?;
    if !planned.command {
        return Err(Status::unimplemented(
            "a query run as an update (executemany, executeUpdate) is not answered: a query \
             runs with at most one row of parameters",
        ));
    }
    let rows = parameter_rows(data).await?;
    let changed = execute(service, &statement, rows).await?;
    Ok(updated(changed))
}

/// A DoPut's rows of parameters, streamed as they arrive (an upload cut short ends them in an
/// error, and the statement's transaction rolls back); `None` when it sends no parameters.
async fn parameter_rows(
    data: Stream<arrow_flight::FlightData>,
) -> Result<Option<crate::connectors::BatchStream>, Status> {
    let upload = Upload::default();
    let mut decoder = upload.decoder(data);
    match schema_if_any(&mut decoder).await.map_err(status)? {
        Some(schema) if !schema.fields().is_empty() => Ok(Some(upload.batches(decoder, false))),
        _ => Ok(None),
    }
}

/// Run a statement that changes its database: with `rows` of parameters, or else the values
/// bound to its handle.
async fn execute(
    service: &MoverService,
    statement: &Query,
    rows: Option<crate::connectors::BatchStream>,
) -> Result<u64, Status> {
    let rows = match rows {
        Some(rows) => Some(rows),
        None => params::from_ipc(&statement.parameters)
            .map_err(|e| status(e.within("the statement")))?
            .map(|row| futures::stream::iter([Ok(row)]).boxed()),
    };
    service
        .catalog
        .execute(&statement.database, &statement.sql, rows)
        .await
        .map_err(status)
}

/// The one answer of a DoPut that ran a statement: the rows it changed.
fn updated(changed: u64) -> Stream<arrow_flight::PutResult> {
    let result = DoPutUpdateResult {
        record_count: changed as i64,
    };
    futures::stream::iter([Ok(arrow_flight::PutResult {
        app_metadata: result.encode_to_vec().into(),
    })])
    .boxed()
}

/// Refusing a transaction id: none is offered (SqlInfo says so).
pub(super) fn no_transactions() -> Status {
    Status::invalid_argument(
        "this server offers no transactions (its SqlInfo says so); send the statement without \
         one: each runs in a transaction of its own, all or nothing",
    )
}

/// DoPut of parameter values on a prepared statement: the one row to bind, answered by a new
/// handle that holds them (the old one stays as it was).
pub async fn bind(
    service: &MoverService,
    caller: &Caller,
    handle: &[u8],
    data: Stream<arrow_flight::FlightData>,
) -> Result<Stream<arrow_flight::PutResult>, Status> {
    let mut statement = redeem(service, caller, handle)?;
    let row = parameter_row(data).await?;
    statement.parameters = params::to_ipc(&row).map_err(status)?;
    // Planned now, so a statement that cannot take the values fails here, at the bind.
    plan(service, caller, &statement).await?;
    let result = DoPutPreparedStatementResult {
        prepared_statement_handle: Some(issue(service, caller, statement).into()),
    };
    Ok(futures::stream::iter([Ok(arrow_flight::PutResult {
        app_metadata: result.encode_to_vec().into(),
    })])
    .boxed())
}

/// The one row of parameters a DoPut sends, read within [`params::MAX_BYTES`].
async fn parameter_row(data: Stream<arrow_flight::FlightData>) -> Result<RecordBatch, Status> {
    let mut sent = 0usize;
    let data = data.map(move |message| {
        let message = message?;
        if let Some(why) = crate::flight::put::unframed(&message) {
            return Err(Status::invalid_argument(format!("the parameters: {why}")));
        }
        sent += message.data_header.len() + message.data_body.len();
        if sent > 2 * params::MAX_BYTES {
            return Err(Status::invalid_argument(format!(
                "the parameters take more than {} bytes; at most {} are accepted",
                2 * params::MAX_BYTES,
                params::MAX_BYTES
            )));
        }
        Ok(message)
    });
    let decoded = FlightRecordBatchStream::new_from_flight_data(data.map_err(FlightError::from));
    let mut schema = None;
    let batches: Vec<RecordBatch> = decoded
        .inspect_ok(|b| schema = Some(b.schema()))
        .try_collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("the parameters do not decode: {e}")))?;
    let Some(schema) = schema else {
        return Err(Status::invalid_argument(
            "the DoPut bound no row of parameters",
        ));
    };
    arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| Status::invalid_argument(format!("the parameters do not decode: {e}")))
}

/// A Flight SQL action, if `kind` is one this gateway answers.
pub async fn action(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    kind: &str,
    body: &[u8],
) -> Option<Result<Stream<arrow_flight::Result>, Status>> {
    match kind {
        "CreatePreparedStatement" => Some(create(service, caller, headers, body).await),
        "ClosePreparedStatement" => Some(close(body)),
        _ => None,
    }
}

async fn create(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    body: &[u8],
) -> Result<Stream<arrow_flight::Result>, Status> {
    let request: ActionCreatePreparedStatementRequest = unpack(body)?;
    let statement = Query {
        database: catalog_for(service, caller, headers)?,
        sql: request.query,
        parameters: Default::default(),
    };
    let planned = plan(service, caller, &statement).await?;
    // The dataset schema is known at prepare time: JDBC takes a statement without one for an
    // update. A statement that changes the database returns no rows.
    let schema = match planned.command {
        true => std::sync::Arc::new(arrow::datatypes::Schema::empty()),
        false => described(service, &planned.read).await?,
    };
    // The placeholders' types where the database says (Postgres); else none is said, and
    // values are cast to what the database needs when bound.
    let parameters = match planned.read.what {
        Some(What::Query(_)) => service
            .catalog
            .parameters(&statement.database, &statement.sql)
            .await
            .map_err(status)?,
        _ => None,
    };
    let result = ActionCreatePreparedStatementResult {
        prepared_statement_handle: issue(service, caller, statement).into(),
        dataset_schema: ipc_schema(&schema)?,
        parameter_schema: match parameters {
            Some(parameters) => ipc_schema(&parameters)?,
            None => Default::default(),
        },
    };
    Ok(futures::stream::iter([Ok(action_result(&result))]).boxed())
}

/// A prepared statement's handle: its catalog, text and bound values, signed for the caller
/// like a ticket.
fn issue(service: &MoverService, caller: &Caller, statement: Query) -> Vec<u8> {
    let read = Read {
        what: Some(What::Query(statement)),
        ..Default::default()
    };
    service.auth.issue_ticket(&read, caller)
}

/// A handle's statement, if the handle is genuine, unexpired and the caller's.
fn redeem(service: &MoverService, caller: &Caller, handle: &[u8]) -> Result<Query, Status> {
    let read = service
        .auth
        .redeem_ticket(handle, caller)
        .map_err(|e| status(e.within("the prepared statement handle")))?;
    match read.what {
        Some(What::Query(q)) => Ok(q),
        _ => Err(Status::invalid_argument(
            "that is not a prepared statement's handle",
        )),
    }
}

fn close(body: &[u8]) -> Result<Stream<arrow_flight::Result>, Status> {
    let _: ActionClosePreparedStatementRequest = unpack(body)?;
    Ok(futures::stream::empty().boxed())
}

/// An action body: the request as a protobuf `Any`.
fn unpack<M: arrow_flight::sql::ProstMessageExt>(body: &[u8]) -> Result<M, Status> {
    let any = Any::decode(body)
        .map_err(|e| Status::invalid_argument(format!("the action body is not an Any: {e}")))?;
    any.unpack::<M>()
        .map_err(|e| Status::invalid_argument(e.to_string()))?
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "the action body is a {}, not a {}",
                any.type_url,
                M::type_url()
            ))
        })
}

/// A statement as the read that answers it.
struct Planned {
    read: Read,
    /// `LIMIT 0`: the schema, and no rows to fetch (a read's limit 0 means all rows).
    no_rows: bool,
    /// A statement that changes the database: executed for its count, never read.
    command: bool,
}

async fn info_for(
    service: &MoverService,
    caller: &Caller,
    descriptor: FlightDescriptor,
    planned: &Planned,
    run: Run,
) -> Result<FlightInfo, Status> {
    if planned.command {
        // Run now, as ADBC's and JDBC's `execute` expect: no rows to fetch, and the count
        // of the rows changed as the FlightInfo's total.
        let empty = arrow::datatypes::Schema::empty();
        let info = FlightInfo::new()
            .try_with_schema(&empty)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_descriptor(descriptor);
        let Some(What::Query(statement)) = &planned.read.what else {
            return Err(Status::internal("a command that is not a query"));
        };
        return Ok(match run {
            Run::Yes => info.with_total_records(execute(service, statement, None).await? as i64),
            Run::No => info,
        });
    }
    let schema = described(service, &planned.read).await?;
    if planned.no_rows {
        return FlightInfo::new()
            .try_with_schema(&schema)
            .map(|i| i.with_descriptor(descriptor))
            .map_err(|e| Status::internal(e.to_string()));
    }
    // The signed read, as Flight SQL's statement ticket: its DoGet describes the columns as
    // this FlightInfo does.
    let ticket = TicketStatementQuery {
        statement_handle: service.auth.issue_ticket(&planned.read, caller).into(),
    };
    info_with_ticket(descriptor, &schema, ticket.as_any().encode_to_vec())
}

/// DoGet of a statement's ticket: the read it holds, its columns described as its FlightInfo
/// described them.
pub async fn do_get(
    service: &MoverService,
    caller: &Caller,
    ticket: &[u8],
    statement: TicketStatementQuery,
) -> Result<Stream<arrow_flight::FlightData>, Status> {
    let read = service
        .auth
        .redeem_ticket(&statement.statement_handle, caller)
        .map_err(status)?;
    let (catalog, dataset) = origin(&read);
    service
        .serve_read(caller, ticket, &read, |schema| {
            columns::annotate(&schema, &catalog, as_strs(&dataset))
        })
        .await
}

/// The schema a read's rows come in, its columns described for Flight SQL.
async fn described(service: &MoverService, read: &Read) -> Result<SchemaRef, Status> {
    let info = service.catalog.describe(read).await.map_err(status)?;
    let (catalog, dataset) = origin(read);
    Ok(columns::annotate(&info.schema, &catalog, as_strs(&dataset)))
}

/// The catalog a read is in, and the (db schema, table) of the one dataset it reads, if it
/// reads one (a bucket dataset; a query's columns say their own tables).
fn origin(read: &Read) -> (String, Option<(String, String)>) {
    match &read.what {
        Some(What::Path(path)) => match path.parts.split_first() {
            Some((source, [folders @ .., name])) => {
                (source.clone(), Some((folders.join("/"), name.clone())))
            }
            _ => (path.parts.join("/"), None),
        },
        Some(What::Query(q)) => (q.database.clone(), None),
        None => (String::new(), None),
    }
}

fn as_strs(pair: &Option<(String, String)>) -> Option<(&str, &str)> {
    pair.as_ref().map(|(a, b)| (a.as_str(), b.as_str()))
}

/// A statement as the read that answers it, checked against the caller's rights: in a
/// database, a query (the `query` right) or a statement that changes it (`write` on all of
/// it); in a bucket, the read of one dataset (`read`).
async fn plan(
    service: &MoverService,
    caller: &Caller,
    statement: &Query,
) -> Result<Planned, Status> {
    let catalog = statement.database.as_str();
    let kind = catalog_kind(service, caller, catalog)?;
    let planned = match kind {
        SourceKind::Database => {
            let read = Read {
                what: Some(What::Query(statement.clone())),
                ..Default::default()
            };
            // The database is asked what the statement is only for a caller who may run
            // one kind or the other there.
            let may_query = service.check_read(caller, &read);
            let may_write = service.check_sql_write(caller, catalog);
            if let (Err(refused), Err(_)) = (&may_query, &may_write) {
                return Err(refused.clone());
            }
            let command = service
                .catalog
                .is_command(catalog, &statement.sql)
                .await
                .map_err(status)?;
            match command {
                true => may_write?,
                false => may_query?,
            }
            return Ok(Planned {
                read,
                no_rows: false,
                command,
            });
        }
        SourceKind::Bucket if !statement.parameters.is_empty() => {
            return Err(Status::invalid_argument(format!(
                "{catalog:?} is a bucket: its one statement ({}) takes no parameters",
                bucket_query::ACCEPTED
            )));
        }
        SourceKind::Bucket => bucket_read(catalog, &statement.sql)?,
    };
    service.check_read(caller, &planned.read)?;
    Ok(planned)
}

/// The kind of the catalog a statement or ingest names, if the caller may see it (one it may
/// not see is not there for it).
pub(super) fn catalog_kind(
    service: &MoverService,
    caller: &Caller,
    catalog: &str,
) -> Result<SourceKind, Status> {
    visible(service, caller)
        .into_iter()
        .find(|(name, _)| *name == catalog)
        .map(|(_, kind)| kind)
        .ok_or_else(|| Status::not_found(format!("no catalog {catalog:?}")))
}

/// A bucket query (see [`bucket_query`]) as the read of its dataset. Its name is `dataset`,
/// `folder.dataset` or `bucket.folder.dataset`, the folder `""` for the top level.
fn bucket_read(bucket: &str, sql: &str) -> Result<Planned, Status> {
    let query = bucket_query::parse(sql).map_err(Status::unimplemented)?;
    let (named_catalog, folder, dataset) = match query.name.as_slice() {
        [dataset] => (None, "", dataset),
        [folder, dataset] => (None, folder.as_str(), dataset),
        [catalog, folder, dataset] => (Some(catalog), folder.as_str(), dataset),
        _ => return Err(Status::unimplemented(bucket_query::ACCEPTED)),
    };
    if let Some(named) = named_catalog
        && named != bucket
    {
        return Err(Status::invalid_argument(format!(
            "the statement reads catalog {named:?}, but runs in {bucket:?}"
        )));
    }
    let mut name = bucket.to_string();
    for part in [folder, dataset] {
        if !part.is_empty() {
            name = format!("{name}/{}", part.trim_start_matches('/'));
        }
    }
    let parts = mover_client::names::parse(&name)
        .map_err(|e| Status::invalid_argument(format!("{name:?}: {e}")))?;
    Ok(Planned {
        read: Read {
            what: Some(What::Path(mover_proto::Path { parts })),
            columns: query.columns,
            limit: query.limit.unwrap_or(0),
            ..Default::default()
        },
        no_rows: query.limit == Some(0),
        command: false,
    })
}

/// The catalog a statement runs in: the session's (SetSessionOptions `catalog`), else the one
/// the call header names, else the only database the caller can see; else the caller must
/// name one.
pub(super) fn catalog_for(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
) -> Result<String, Status> {
    if let Some(catalog) = sessions::catalog(headers)? {
        return Ok(catalog);
    }
    if let Some(value) = headers.get(CATALOG_HEADER) {
        return value.to_str().map(str::to_string).map_err(|_| {
            Status::invalid_argument(format!("the {CATALOG_HEADER} header is not text"))
        });
    }
    let databases: Vec<&str> = visible(service, caller)
        .into_iter()
        .filter(|(_, kind)| *kind == SourceKind::Database)
        .map(|(name, _)| name)
        .collect();
    match databases.as_slice() {
        [only] => Ok(only.to_string()),
        [] => Err(Status::not_found(
            "this gateway has no database to run SQL in",
        )),
        several => Err(Status::invalid_argument(format!(
            "name the catalog the statement runs in with the {CATALOG_HEADER} call header \
             (one of: {})",
            several.join(", ")
        ))),
    }
}
