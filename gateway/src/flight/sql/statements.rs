//! Statements: a query (`CommandStatementQuery`) or a prepared one runs in the database its
//! catalog names, through that connector's own read path. The FlightInfo's ticket is an
//! ordinary signed ticket of a `mover.v1` query read, so its DoGet is the DoGet of any query
//! (same rights, same limits, the query stopped on the server when the reader leaves).
//! Prepared statements are stateless: the handle is a signed ticket of the same read, bound
//! to the caller, and closing one releases nothing.

use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any,
};
use arrow_flight::{FlightDescriptor, FlightInfo};
use futures::StreamExt;
use mover_proto::{Query, Read, read::What};
use prost::Message;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::super::service::{MoverService, Stream};
use super::super::status;
use super::{CATALOG_HEADER, action_result, info_with_ticket, ipc_schema};
use crate::auth::Caller;
use crate::catalog::SourceKind;

/// The Flight SQL actions this gateway answers, as ListActions shows them.
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

/// GetFlightInfo of a query.
pub async fn query_info(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    descriptor: FlightDescriptor,
    sql: &str,
) -> Result<FlightInfo, Status> {
    let read = query_read(service, caller, headers, sql)?;
    info_for(service, caller, descriptor, &read).await
}

/// GetFlightInfo of a prepared statement, by its handle.
pub async fn prepared_info(
    service: &MoverService,
    caller: &Caller,
    descriptor: FlightDescriptor,
    handle: &[u8],
) -> Result<FlightInfo, Status> {
    let read = service
        .auth
        .redeem_ticket(handle, caller)
        .map_err(|e| status(e.within("the prepared statement handle")))?;
    // The rules may have changed since the statement was prepared.
    service.check_read(caller, &read)?;
    info_for(service, caller, descriptor, &read).await
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
    let read = query_read(service, caller, headers, &request.query)?;
    // The dataset schema is known at prepare time: JDBC takes a statement without one for an
    // update.
    let info = service.catalog.describe(&read).await.map_err(status)?;
    let result = ActionCreatePreparedStatementResult {
        prepared_statement_handle: service.auth.issue_ticket(&read, caller).into(),
        dataset_schema: ipc_schema(&info.schema)?,
        // No parameters are bound yet: the statement is run as prepared.
        parameter_schema: Default::default(),
    };
    Ok(futures::stream::iter([Ok(action_result(&result))]).boxed())
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

async fn info_for(
    service: &MoverService,
    caller: &Caller,
    descriptor: FlightDescriptor,
    read: &Read,
) -> Result<FlightInfo, Status> {
    let info = service.catalog.describe(read).await.map_err(status)?;
    let ticket = service.auth.issue_ticket(read, caller);
    info_with_ticket(descriptor, &info.schema, ticket)
}

/// `sql` as a query read of the database the statement runs in, checked against the caller's
/// `query` right.
fn query_read(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    sql: &str,
) -> Result<Read, Status> {
    let database = database_for(service, caller, headers)?;
    let read = Read {
        what: Some(What::Query(Query {
            database,
            sql: sql.to_string(),
        })),
        ..Default::default()
    };
    service.check_read(caller, &read)?;
    Ok(read)
}

/// The database a statement runs in: the catalog the call header names, else the only
/// database the caller can see; else the caller must name one.
fn database_for(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
) -> Result<String, Status> {
    let visible: Vec<(&str, SourceKind)> = service
        .catalog
        .sources()
        .into_iter()
        .filter(|(name, _)| service.auth.may_list(caller, &format!("{name}/")))
        .collect();
    if let Some(value) = headers.get(CATALOG_HEADER) {
        let name = value.to_str().map_err(|_| {
            Status::invalid_argument(format!("the {CATALOG_HEADER} header is not text"))
        })?;
        return match visible.iter().find(|(n, _)| *n == name) {
            Some((_, SourceKind::Database)) => Ok(name.to_string()),
            Some((_, SourceKind::Bucket)) => Err(Status::unimplemented(format!(
                "catalog {name:?} is a bucket: a bucket has no SQL engine behind it, and this \
                 gateway does not yet answer queries of one; read its datasets with DoGet"
            ))),
            // A catalog the caller may not see is not there for it.
            None => Err(Status::not_found(format!("no catalog {name:?}"))),
        };
    }
    let databases: Vec<&str> = visible
        .iter()
        .filter(|(_, kind)| *kind == SourceKind::Database)
        .map(|(name, _)| *name)
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
