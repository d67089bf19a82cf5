//! Loads: one blocking thread, one IMMEDIATE transaction. The table is created, emptied or
//! replaced inside the same transaction as the inserts, so until COMMIT nothing is visible and
//! a failed, cut or cancelled load rolls everything back (SQLite DDL is transactional).
//!
//! The async side hands batches over a bounded channel and sends `End` only after the source
//! stream finished cleanly; a channel closed without `End` means the stream was cut.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef};
use rusqlite::{Connection, TransactionBehavior, types::Null};
use tokio::sync::mpsc;

use super::types::{Storage, arrow_type, declared_type, storage_for};
use super::{Table, quote, table_columns};
use crate::connectors::plan::{self, Plan};
use crate::convert::strict_cast;
use crate::error::{Context, Error, ErrorKind, Result};

pub enum Msg {
    Batch(RecordBatch),
    End,
}

pub struct WriteJob {
    pub conn: Connection,
    pub table: Table,
    pub existing: plan::Existing,
    pub incoming: SchemaRef,
}

/// A target column that an incoming column feeds.
struct Target {
    name: String,
    arrow: DataType,
}

pub fn run(job: WriteJob, mut rx: mpsc::Receiver<Msg>) -> Result<u64> {
    let WriteJob {
        mut conn,
        table,
        existing,
        incoming,
    } = job;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .internal("cannot begin a transaction")?;
    let existing_cols = table_columns(&tx, &table)?;
    let plan = plan::plan(existing, existing_cols.is_some(), &format!("table {table}"))?;
    let table_cols = match existing_cols {
        Some(cols) if plan.keeps_definition() => {
            if plan.replaces_rows() {
                // SQLite has no TRUNCATE; an unqualified DELETE uses its truncate optimisation.
                tx.execute(&format!("DELETE FROM {}", table.quoted()), [])
                    .internal("cannot empty the table")?;
            }
            cols
        }
        _ => {
            if plan == Plan::Recreate {
                tx.execute(&format!("DROP TABLE {}", table.quoted()), [])
                    .internal("cannot drop the table")?;
            }
            create(&tx, &table, &incoming)?
        }
    };
    let names: Vec<&str> = table_cols.iter().map(|c| c.name.as_str()).collect();
    let targets = plan::match_columns(&incoming, &names, &table)?
        .into_iter()
        .zip(incoming.fields())
        .map(|(i, f)| {
            let col = &table_cols[i];
            // A column whose declaration says nothing takes values as they come.
            let arrow = arrow_type(&col.declared).unwrap_or_else(|| f.data_type().clone());
            Target {
                name: col.name.clone(),
                arrow,
            }
        })
        .collect::<Vec<_>>();

    let columns: Vec<String> = targets.iter().map(|t| quote(&t.name)).collect();
    let marks = vec!["?"; targets.len()].join(", ");
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        table.quoted(),
        columns.join(", ")
    );
    let mut rows: u64 = 0;
    {
        let mut stmt = tx.prepare(&sql).internal("cannot prepare the insert")?;
        loop {
            let batch = match rx.blocking_recv() {
                Some(Msg::Batch(b)) => b,
                Some(Msg::End) => break,
                None => {
                    return Err(Error::new(
                        ErrorKind::Cancelled,
                        "the stream was cut before it ended; nothing was written",
                    ));
                }
            };
            let stored = targets
                .iter()
                .zip(batch.columns())
                .map(|(t, col)| {
                    let typed = strict_cast(col, &t.arrow, &t.name, rows + 1)?;
                    to_storage(&typed, &t.name, rows + 1)
                })
                .collect::<Result<Vec<_>>>()?;
            for r in 0..batch.num_rows() {
                for (c, col) in stored.iter().enumerate() {
                    bind(&mut stmt, c + 1, col, r)?;
                }
                stmt.raw_execute().map_err(|e| {
                    Error::invalid(format!(
                        "row {}: the insert failed: {e}",
                        rows + r as u64 + 1
                    ))
                })?;
            }
            rows += batch.num_rows() as u64;
        }
    }
    tx.commit().internal("cannot commit")?;
    Ok(rows)
}

fn create(
    tx: &rusqlite::Transaction<'_>,
    table: &Table,
    schema: &SchemaRef,
) -> Result<Vec<super::ColumnInfo>> {
    if schema.fields().is_empty() {
        return Err(Error::invalid("cannot create a table with no columns"));
    }
    let cols = plan::column_definitions(schema, quote, declared_type)?;
    let ddl = format!("CREATE TABLE {} ({cols})", table.quoted());
    tx.execute(&ddl, []).invalid("cannot create the table")?;
    table_columns(tx, table)?.ok_or_else(|| Error::internal("the created table is not there"))
}

/// The array as its SQLite storage class: Int64, Float64, Utf8 or Binary. A value the class
/// cannot hold (a UInt64 above 2^63-1) is an error naming its row and column.
pub(super) fn to_storage(array: &ArrayRef, column: &str, first_row: u64) -> Result<ArrayRef> {
    let storage = storage_for(array.data_type());
    // Zoned timestamps are stored as UTC text with an explicit offset.
    let array = match array.data_type() {
        DataType::Timestamp(unit, Some(_)) => {
            arrow::compute::cast(array, &DataType::Timestamp(*unit, Some("+00:00".into())))?
        }
        _ => array.clone(),
    };
    strict_cast(&array, &storage.arrow(), column, first_row)
}

pub(super) fn bind(
    stmt: &mut rusqlite::Statement<'_>,
    at: usize,
    col: &ArrayRef,
    row: usize,
) -> Result<()> {
    let r = if col.is_null(row) {
        stmt.raw_bind_parameter(at, Null)
    } else {
        match storage_for(col.data_type()) {
            Storage::Integer => {
                stmt.raw_bind_parameter(at, col.as_primitive::<Int64Type>().value(row))
            }
            Storage::Real => {
                stmt.raw_bind_parameter(at, col.as_primitive::<Float64Type>().value(row))
            }
            Storage::Text => stmt.raw_bind_parameter(at, col.as_string::<i32>().value(row)),
            Storage::Blob => stmt.raw_bind_parameter(at, col.as_binary::<i32>().value(row)),
        }
    };
    r.internal("cannot bind a value")
}
