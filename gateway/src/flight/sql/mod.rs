//! Flight SQL: the commands of arrow-flight's `sql` module (protobuf `Any` in command
//! descriptors and tickets, and the well-known actions), answered inside our own
//! `FlightService`. Like the path-descriptor layer beside it, this knows streams, names and the
//! [`Catalog`](crate::catalog::Catalog); it knows no connector.
//!
//! The namespace: a **catalog** is a configured database or bucket; a **db schema** is the
//! Postgres schema, the MySQL database, SQLite's `main`, or `""` for a bucket's top level; a
//! **table** is a table or view, or a bucket dataset.
//!
//! - [`metadata`]: catalogs, db schemas, tables and table types, filtered by the access rules.
//! - [`info`]: what GetSqlInfo says of this server; [`types`]: what GetXdbcTypeInfo says.
//! - [`statements`]: queries and prepared statements, run by the database the catalog names;
//!   [`bucket_query`]: the one statement a bucket catalog answers.
//! - [`sessions`]: session options (the catalog statements run in), carried in a cookie.

pub(crate) mod bucket_query;
mod columns;
mod info;
mod ingest;
mod keys;
mod metadata;
mod sessions;
mod statements;
mod types;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::{Any, Command, ProstMessageExt};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::service::{MoverService, Stream};
use crate::auth::Caller;
use crate::catalog::SourceKind;

pub use statements::Run;

/// The Flight SQL and session actions this gateway answers, as ListActions shows them.
pub fn actions() -> impl Iterator<Item = (&'static str, &'static str)> {
    statements::ACTIONS.into_iter().chain(sessions::ACTIONS)
}

/// What an action answers: its results, and a session cookie to set.
pub struct Answer {
    pub results: Stream<arrow_flight::Result>,
    pub set_cookie: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

/// Every Flight SQL message's type URL starts so.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/arrow.flight.protocol.sql.";

/// The call header that names the catalog a statement runs in, when the statement does not.
pub const CATALOG_HEADER: &str = "x-mover-catalog";

/// The Flight SQL command in a descriptor's `cmd` or a ticket, if the bytes are one (a
/// `mover.v1` command or ticket is not).
pub fn command(bytes: &[u8]) -> Option<Result<Command, Status>> {
    let any = Any::decode(bytes).ok()?;
    if !any.type_url.starts_with(TYPE_URL_PREFIX) {
        return None;
    }
    Some(Command::try_from(any).map_err(|e| {
        Status::invalid_argument(format!("a Flight SQL command that does not decode: {e}"))
    }))
}

/// A command's message name (`CommandStatementIngest`), for what is said of it.
pub fn command_name(command: &Command) -> &str {
    let url = command.type_url();
    url.rsplit('.').next().unwrap_or(url)
}

/// GetFlightInfo of a Flight SQL command (a statement that changes the database is run
/// now, when `run` says so).
pub async fn flight_info(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    descriptor: FlightDescriptor,
    command: Command,
    run: Run,
) -> Result<FlightInfo, Status> {
    match command {
        Command::CommandStatementQuery(q) => {
            statements::query_info(service, caller, headers, descriptor, &q.query, run).await
        }
        Command::CommandPreparedStatementQuery(p) => {
            let handle = &p.prepared_statement_handle;
            statements::prepared_info(service, caller, descriptor, handle, run).await
        }
        other => {
            let schema = metadata::schema_of(&other)?;
            // A metadata command's ticket is the command itself: its rows are made (and
            // filtered by the caller's rules) when the ticket is redeemed.
            let ticket = other.into_any().encode_to_vec();
            info_with_ticket(descriptor, &schema, ticket)
        }
    }
}

/// GetSchema of a Flight SQL command.
pub async fn schema(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    descriptor: FlightDescriptor,
    command: Command,
) -> Result<SchemaRef, Status> {
    let info = flight_info(service, caller, headers, descriptor, command, Run::No).await?;
    let schema = info
        .try_decode_schema()
        .map_err(|e| Status::internal(format!("the schema does not decode: {e}")))?;
    Ok(std::sync::Arc::new(schema))
}

/// DoGet of a ticket that is a Flight SQL command: a statement's (its signed read inside), or
/// a metadata command's.
pub async fn do_get(
    service: &MoverService,
    caller: &Caller,
    ticket: &[u8],
    command: Command,
) -> Result<Stream<arrow_flight::FlightData>, Status> {
    if let Command::TicketStatementQuery(statement) = command {
        return statements::do_get(service, caller, ticket, statement).await;
    }
    let batch = metadata::rows(service, caller, command).await?;
    Ok(one_batch(batch))
}

/// DoPut of a Flight SQL command: parameters bound to a prepared statement, or a bulk ingest.
pub async fn do_put(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    command: Command,
    data: Stream<arrow_flight::FlightData>,
) -> Result<Stream<arrow_flight::PutResult>, Status> {
    match command {
        Command::CommandStatementIngest(ingest) => {
            ingest::do_put(service, caller, headers, ingest, data).await
        }
        Command::CommandPreparedStatementQuery(p) => {
            statements::bind(service, caller, &p.prepared_statement_handle, data).await
        }
        Command::CommandStatementUpdate(update) => {
            statements::update(service, caller, headers, update).await
        }
        Command::CommandPreparedStatementUpdate(p) => {
            statements::prepared_update(service, caller, &p.prepared_statement_handle, data).await
        }
        other => Err(Status::unimplemented(format!(
            "{} by DoPut is not answered by this gateway",
            command_name(&other)
        ))),
    }
}

/// A DoAction of a Flight SQL or session action, if `kind` is one.
pub async fn do_action(
    service: &MoverService,
    caller: &Caller,
    headers: &MetadataMap,
    kind: &str,
    body: &[u8],
) -> Option<Result<Answer, Status>> {
    if let Some(answer) = sessions::action(service, caller, headers, kind, body) {
        return Some(answer);
    }
    let results = statements::action(service, caller, headers, kind, body).await?;
    Some(results.map(|results| Answer {
        results,
        set_cookie: None,
    }))
}

/// The sources the caller may list, with their kinds, in name order: every listing, and
/// every catalog a statement or session may name, is one of these.
fn visible<'a>(service: &'a MoverService, caller: &Caller) -> Vec<(&'a str, SourceKind)> {
    service
        .catalog
        .sources()
        .into_iter()
        .filter(|(name, _)| service.auth.may_list(caller, &format!("{name}/")))
        .collect()
}

fn info_with_ticket(
    descriptor: FlightDescriptor,
    schema: &SchemaRef,
    ticket: Vec<u8>,
) -> Result<FlightInfo, Status> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_descriptor(descriptor)
        .with_ordered(true)
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket))))
}

fn one_batch(batch: RecordBatch) -> Stream<arrow_flight::FlightData> {
    let schema = batch.schema();
    FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::iter([Ok(batch)]))
        .map_err(Status::from)
        .boxed()
}

/// A schema as the IPC message Flight SQL results carry (`dataset_schema`, `table_schema`).
fn ipc_schema(schema: &SchemaRef) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// One action result holding `message` as an `Any`.
fn action_result(message: &impl ProstMessageExt) -> arrow_flight::Result {
    arrow_flight::Result {
        body: message.as_any().encode_to_vec().into(),
    }
}
