//! SQL writes: one statement that changes the database, run once, or once for each row of
//! parameters (bound as a query's are), in one IMMEDIATE transaction on a writable connection.

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::mpsc;

use super::read::bind_params;
use super::write::Msg;
use crate::error::{Context, Error, ErrorKind, Result};

/// A statement that would change the database (SQLite's own word on it) is executed, not read.
pub fn is_command(conn: &Connection, sql: &str) -> Result<bool> {
    let stmt = conn.prepare(sql).invalid("cannot prepare the statement")?;
    Ok(!stmt.readonly())
}

/// Run `sql` once (`with_params` false), or for each row of the batches `rows` brings; the rows
/// changed. Commits only at `Msg::End`; a channel closed before it rolls back.
pub fn run(
    mut conn: Connection,
    sql: &str,
    with_params: bool,
    mut rows: mpsc::Receiver<Msg>,
) -> Result<u64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .internal("cannot begin a transaction")?;
    let mut changed = 0;
    {
        let mut stmt = tx.prepare(sql).invalid("cannot prepare the statement")?;
        if !with_params && stmt.parameter_count() > 0 {
            return Err(Error::invalid(format!(
                "the statement has {} placeholders and no parameters are bound",
                stmt.parameter_count()
            )));
        }
        let mut row_no = 0u64;
        loop {
            match rows.blocking_recv() {
                Some(Msg::Batch(batch)) => {
                    for row in 0..batch.num_rows() {
                        row_no += 1;
                        let at = |e: Error| e.within(format!("parameter row {row_no}"));
                        bind_params(&mut stmt, &batch.slice(row, 1)).map_err(at)?;
                        changed += stmt
                            .raw_execute()
                            .invalid("the statement failed")
                            .map_err(at)?;
                    }
                }
                Some(Msg::End) => break,
                None => {
                    return Err(Error::new(
                        ErrorKind::Cancelled,
                        "the parameters stopped before their end; nothing was changed",
                    ));
                }
            }
        }
        if !with_params {
            changed = stmt.raw_execute().invalid("the statement failed")?;
        }
    }
    tx.commit().internal("cannot commit")?;
    Ok(changed as u64)
}
