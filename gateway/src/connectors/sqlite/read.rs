//! Streaming reads: a blocking thread steps the statement and sends batches of `batch_rows`
//! rows through a bounded channel. When the receiver goes away (the client hung up, a limit was
//! reached) the next send fails and the thread stops stepping: the read is cancelled.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, BinaryBuilder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use tokio::sync::{mpsc, oneshot};

use super::types::{Storage, arrow_type, storage_for};
use crate::convert::strict_cast;
use crate::error::{CellError, Context, Error, ErrorKind, Result};

/// What to read and how to describe it.
pub struct ReadJob {
    pub conn: Connection,
    pub sql: String,
    /// The values bound to the query's placeholders.
    pub params: Option<RecordBatch>,
    /// Only the schema is wanted: placeholders may be left unbound (NULL).
    pub describing: bool,
    /// Columns known NOT NULL (from the table's declaration), by position.
    pub not_null: Vec<bool>,
    pub batch_rows: usize,
    /// Names the dataset in errors: "demo/main/orders".
    pub label: String,
    /// A caller's query: a failure while it runs is the query's fault, not the gateway's.
    pub is_query: bool,
}

pub type Opened = (
    oneshot::Receiver<Result<SchemaRef>>,
    mpsc::Receiver<Result<RecordBatch>>,
);

/// Start reading on a blocking thread; the schema arrives first, then the batches.
pub fn spawn(job: ReadJob) -> Opened {
    let (schema_tx, schema_rx) = oneshot::channel();
    let (batch_tx, batch_rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let label = job.label.clone();
        let mut schema_tx = Some(schema_tx);
        let result = run(job, &mut schema_tx, &batch_tx);
        if let Err(e) = result {
            let e = e.within(&label);
            match schema_tx.take() {
                Some(tx) => {
                    let _ = tx.send(Err(e));
                }
                None => {
                    let _ = batch_tx.blocking_send(Err(e));
                }
            }
        }
    });
    (schema_rx, batch_rx)
}

/// `params` bound to the statement's placeholders in order, each encoded as a write stores it.
pub(super) fn bind_params(stmt: &mut rusqlite::Statement<'_>, params: &RecordBatch) -> Result<()> {
    let expected = stmt.parameter_count();
    if params.num_columns() != expected {
        return Err(Error::invalid(format!(
            "the query has {expected} placeholders, but {} parameters are bound",
            params.num_columns()
        )));
    }
    for (i, column) in params.columns().iter().enumerate() {
        if column.logical_nulls().is_some_and(|n| n.is_null(0)) {
            // Of any type, even Arrow's Null, which has no storage class.
            stmt.raw_bind_parameter(i + 1, rusqlite::types::Null)
                .internal("cannot bind a value")?;
            continue;
        }
        let name = format!("parameter {}", i + 1);
        let stored = super::write::to_storage(column, &name, 1)?;
        super::write::bind(stmt, i + 1, &stored, 0)?;
    }
    Ok(())
}

struct Column {
    name: String,
    declared: Option<String>,
    /// The table (schema, name) a query's column is read from, where SQLite says.
    origin: Option<(String, String)>,
    /// Known once declared, or once the first row has been seen.
    arrow: Option<DataType>,
    storage: Storage,
    builder: Builder,
}

impl Column {
    fn new(name: &str, declared: Option<&str>) -> Self {
        let arrow = declared.and_then(arrow_type);
        let storage = arrow.as_ref().map(storage_for).unwrap_or(Storage::Text);
        Column {
            name: name.to_string(),
            declared: declared.map(str::to_string),
            origin: None,
            arrow,
            storage,
            builder: Builder::new(storage),
        }
    }

    /// A column with no declared type takes the type of its first value (see types.rs).
    fn type_from_first(&mut self, value: ValueRef) {
        if self.arrow.is_some() {
            return;
        }
        let storage = match value {
            ValueRef::Integer(_) => Storage::Integer,
            ValueRef::Real(_) => Storage::Real,
            ValueRef::Blob(_) => Storage::Blob,
            ValueRef::Text(_) | ValueRef::Null => Storage::Text,
        };
        self.storage = storage;
        self.arrow = Some(storage.arrow());
        self.builder = Builder::new(storage);
    }

    /// Row `row_no`'s value; a value of another storage class is an error naming the cell.
    fn append(&mut self, value: ValueRef, row_no: u64) -> Result<()> {
        self.builder.append(value).map_err(|held| {
            let why = format!(
                "holds {held} where {} is expected{}",
                self.storage.name(),
                match &self.declared {
                    Some(d) => format!(" (declared {d})"),
                    None => " (the column has no declared type, so its first value chose; CAST it in the query)".into(),
                }
            );
            Error::from(CellError::new(row_no, &self.name, why))
        })
    }
}

fn run(
    job: ReadJob,
    schema_tx: &mut Option<oneshot::Sender<Result<SchemaRef>>>,
    batch_tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let mut stmt = job
        .conn
        .prepare(&job.sql)
        .invalid("cannot prepare the query")?;
    if !stmt.readonly() {
        return Err(Error::invalid(
            "the query would change the database; only reading queries are accepted",
        ));
    }
    match &job.params {
        Some(params) => bind_params(&mut stmt, params)?,
        None if !job.describing && stmt.parameter_count() > 0 => {
            return Err(Error::invalid(format!(
                "the query has {} placeholders and no parameters are bound",
                stmt.parameter_count()
            )));
        }
        None => {}
    }
    let mut columns: Vec<Column> = stmt
        .columns()
        .map(|c| Column::new(c.name(), c.decl_type()))
        .collect();
    if job.is_query {
        // A query's column read straight from a table: that table.
        for (i, column) in columns.iter_mut().enumerate() {
            if let Ok(Some((schema, table, ..))) = stmt.column_metadata(i) {
                column.origin = Some((
                    schema.to_string_lossy().into_owned(),
                    table.to_string_lossy().into_owned(),
                ));
            }
        }
    }
    let mut rows = stmt.raw_query();
    let mut schema: Option<SchemaRef> = None;
    let mut row_no: u64 = 0;
    let mut batch_first_row: u64 = 1;
    let step_fails = if job.is_query {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Internal
    };
    loop {
        let row = rows.next().context(step_fails, "reading a row")?;
        let Some(row) = row else { break };
        row_no += 1;
        if schema.is_none() {
            for (i, col) in columns.iter_mut().enumerate() {
                col.type_from_first(row.get_ref(i).internal("reading a value")?);
            }
            let s = make_schema(&columns, &job.not_null);
            send_schema(schema_tx, &s);
            schema = Some(s);
        }
        for (i, col) in columns.iter_mut().enumerate() {
            col.append(row.get_ref(i).internal("reading a value")?, row_no)?;
        }
        if row_no - batch_first_row + 1 == job.batch_rows as u64 {
            let batch = finish(
                &mut columns,
                schema.as_ref().expect("set above"),
                batch_first_row,
            )?;
            if batch_tx.blocking_send(Ok(batch)).is_err() {
                return Ok(()); // the reader went away: stop stepping
            }
            batch_first_row = row_no + 1;
        }
    }
    let schema = match schema {
        Some(s) => s,
        None => {
            for col in columns.iter_mut().filter(|c| c.arrow.is_none()) {
                col.arrow = Some(DataType::Utf8);
            }
            let s = make_schema(&columns, &job.not_null);
            send_schema(schema_tx, &s);
            s
        }
    };
    if row_no >= batch_first_row {
        let batch = finish(&mut columns, &schema, batch_first_row)?;
        let _ = batch_tx.blocking_send(Ok(batch));
    }
    Ok(())
}

fn send_schema(tx: &mut Option<oneshot::Sender<Result<SchemaRef>>>, schema: &SchemaRef) {
    if let Some(tx) = tx.take() {
        let _ = tx.send(Ok(schema.clone()));
    }
}

fn make_schema(columns: &[Column], not_null: &[bool]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let nullable = !not_null.get(i).copied().unwrap_or(false);
            let field = Field::new(&c.name, c.arrow.clone().expect("type known"), nullable);
            let origin = c.origin.as_ref().map(|(s, t)| (s.as_str(), t.as_str()));
            crate::connectors::with_origin(field, origin)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn finish(columns: &mut [Column], schema: &SchemaRef, first_row: u64) -> Result<RecordBatch> {
    let arrays = columns
        .iter_mut()
        .map(|c| {
            let raw = c.builder.finish();
            strict_cast(
                &raw,
                c.arrow.as_ref().expect("type known"),
                &c.name,
                first_row,
            )
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

/// Collects values of one storage class; returns the class it found when a value does not fit.
enum Builder {
    Integer(Int64Builder),
    Real(Float64Builder),
    Text(StringBuilder),
    Blob(BinaryBuilder),
}

impl Builder {
    fn new(storage: Storage) -> Self {
        match storage {
            Storage::Integer => Builder::Integer(Int64Builder::new()),
            Storage::Real => Builder::Real(Float64Builder::new()),
            Storage::Text => Builder::Text(StringBuilder::new()),
            Storage::Blob => Builder::Blob(BinaryBuilder::new()),
        }
    }

    fn append(&mut self, v: ValueRef<'_>) -> Result<(), String> {
        match (self, v) {
            (Builder::Integer(b), ValueRef::Null) => b.append_null(),
            (Builder::Real(b), ValueRef::Null) => b.append_null(),
            (Builder::Text(b), ValueRef::Null) => b.append_null(),
            (Builder::Blob(b), ValueRef::Null) => b.append_null(),
            (Builder::Integer(b), ValueRef::Integer(i)) => b.append_value(i),
            (Builder::Real(b), ValueRef::Real(f)) => b.append_value(f),
            (Builder::Real(b), ValueRef::Integer(i)) => b.append_value(i as f64),
            (Builder::Text(b), ValueRef::Text(t)) => {
                let s = std::str::from_utf8(t).map_err(|_| "TEXT that is not UTF-8".to_string())?;
                b.append_value(s)
            }
            // NUMERIC affinity stores numbers it can: decimals written by other tools arrive so.
            (Builder::Text(b), ValueRef::Integer(i)) => b.append_value(i.to_string()),
            (Builder::Text(b), ValueRef::Real(f)) => b.append_value(f.to_string()),
            (Builder::Blob(b), ValueRef::Blob(x)) => b.append_value(x),
            (Builder::Blob(b), ValueRef::Text(x)) => b.append_value(x),
            (_, other) => return Err(describe(other)),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Integer(b) => ArrayBuilder::finish(b),
            Builder::Real(b) => ArrayBuilder::finish(b),
            Builder::Text(b) => ArrayBuilder::finish(b),
            Builder::Blob(b) => ArrayBuilder::finish(b),
        }
    }
}

fn describe(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("INTEGER {i}"),
        ValueRef::Real(f) => format!("REAL {f}"),
        ValueRef::Text(t) => {
            let s = String::from_utf8_lossy(t);
            let short: String = s.chars().take(40).collect();
            format!("TEXT {short:?}")
        }
        ValueRef::Blob(b) => format!("a BLOB of {} bytes", b.len()),
    }
}
