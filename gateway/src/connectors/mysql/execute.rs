//! SQL writes: one statement that changes the database, run once, or once for each row of
//! parameters (bound by the binary protocol, as [`bind`] gives them), in one transaction. A
//! connection dropped before COMMIT is rolled back by the server. DDL commits on its own in
//! MySQL, whatever the transaction.

use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Statement};

use super::{Mysql, bind, db_error};
use crate::connectors::params;
use crate::error::{Error, Result};
use crate::transfer::BatchStream;

/// ER_UNSUPPORTED_PS: a statement the binary protocol cannot prepare (none returns rows).
const UNPREPARABLE: u16 = 1295;

impl Mysql {
    /// A statement that returns no columns is executed, not read.
    pub(super) async fn returns_nothing(&self, sql: &str) -> Result<bool> {
        let mut conn = self.connect().await?;
        Ok(match prepared(&mut conn, sql).await? {
            Some(stmt) => {
                let command = stmt.columns().is_empty();
                conn.close(stmt)
                    .await
                    .map_err(|e| db_error(e, "the statement"))?;
                command
            }
            None => true,
        })
    }

    pub(super) async fn run_statement(
        &self,
        sql: &str,
        params: Option<BatchStream>,
    ) -> Result<u64> {
        let mut conn = self.connect().await?;
        let statement = prepared(&mut conn, sql).await?;
        conn.query_drop("START TRANSACTION")
            .await
            .map_err(|e| db_error(e, "START TRANSACTION"))?;
        let mut changed = 0;
        match (statement, params) {
            (Some(stmt), None) if stmt.num_params() > 0 => {
                return Err(Error::invalid(format!(
                    "the statement has {} placeholders and no parameters are bound",
                    stmt.num_params()
                )));
            }
            (Some(stmt), None) => {
                conn.exec_drop(&stmt, Params::Empty)
                    .await
                    .map_err(|e| db_error(e, "the statement"))?;
                changed = conn.affected_rows();
            }
            // Run as text: it cannot be prepared, and preparing it has refused a second
            // statement already.
            (None, None) => {
                conn.query_drop(sql)
                    .await
                    .map_err(|e| db_error(e, "the statement"))?;
                changed = conn.affected_rows();
            }
            (None, Some(_)) => {
                return Err(Error::unsupported(
                    "MySQL cannot bind parameters to this statement (it cannot be prepared)",
                ));
            }
            (Some(stmt), Some(rows)) => {
                let mut rows = std::pin::pin!(params::each_row(rows));
                while let Some(item) = rows.next().await {
                    let (row_no, row) = item?;
                    let at = |e: Error| e.within(format!("parameter row {row_no}"));
                    let values = bind::values(&row).map_err(at)?;
                    if values.len() != usize::from(stmt.num_params()) {
                        return Err(at(Error::invalid(format!(
                            "the statement has {} placeholders, but {} parameters are bound",
                            stmt.num_params(),
                            values.len()
                        ))));
                    }
                    conn.exec_drop(&stmt, Params::Positional(values))
                        .await
                        .map_err(|e| at(db_error(e, "the statement")))?;
                    changed += conn.affected_rows();
                }
            }
        }
        conn.query_drop("COMMIT")
            .await
            .map_err(|e| db_error(e, "COMMIT"))?;
        Ok(changed)
    }
}

/// `sql` prepared, which checks it is one statement; `None` for one the binary protocol does
/// not prepare.
async fn prepared(conn: &mut Conn, sql: &str) -> Result<Option<Statement>> {
    match conn.prep(sql).await {
        Ok(stmt) => Ok(Some(stmt)),
        Err(mysql_async::Error::Server(e)) if e.code == UNPREPARABLE => Ok(None),
        Err(e) => Err(db_error(e, "the statement")),
    }
}
