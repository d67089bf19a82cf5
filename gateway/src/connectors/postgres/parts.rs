//! A write in parts into a Postgres table: each part is loaded by binary COPY into a staging
//! table of its own beside the target (`_mover_stage_…`, which listings leave out; unlogged,
//! so a part is written once to the WAL, by the commit, and a crash empties it), and the
//! commit is one transaction that prepares the target as a single write would (create,
//! truncate, delete or drop and create), copies in every listed part with `INSERT … SELECT`
//! and drops the staging tables. A failed commit rolls back whole; a dropped or failed part
//! drops its own staging table with its transaction. A killed gateway's staging tables are
//! dropped by the next gateway to sweep the database, once their write's expiry (in their
//! name, [`stages`]) has passed.

use std::time::SystemTime;

use arrow::datatypes::SchemaRef;
use sqlx::{AssertSqlSafe, Connection, Executor};

use super::{
    DEFAULT_SCHEMA, Postgres, Table, columns, copy_in, db_error, prepare_table, quote,
    target_columns,
};
use crate::connectors::{BatchStream, StagedPart, WriteReport, WriteSpec};
use crate::connectors::{plan, stages};
use crate::error::{Error, Result};

/// The name staging tables start with.
pub(super) const STAGE_PREFIX: &str = "_mover_stage_";

/// The staging table of part `stage` of a write into `target`: in the target's schema, so the
/// same rights and the same search path apply.
fn staging_table(target: &Table, stage: &str) -> Table {
    Table {
        schema: target.schema.clone(),
        name: format!("{STAGE_PREFIX}{}", stage.replace('-', "_")),
    }
}

impl Postgres {
    pub(super) async fn stage(
        &self,
        spec: &WriteSpec,
        stage: &str,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<StagedPart> {
        let target = Table::from_path(&spec.path, DEFAULT_SCHEMA)?;
        let staging = staging_table(&target, stage);
        let mut conn = self.connect().await?;
        let mut tx = conn.begin().await.map_err(|e| db_error(e, "BEGIN"))?;
        // A target the write may not touch fails its first part, not only its commit.
        let found = columns(&mut tx, &target.quoted()).await?;
        let label = format!("table {target}");
        let plan = plan::plan(spec.existing, found.is_some(), &label)?;
        let create = match (plan.keeps_definition(), found) {
            // The rows go into the target's columns: staged as those columns' types, so a
            // value the target cannot hold fails this part.
            (true, Some(cols)) => {
                let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
                let chosen: Vec<String> = plan::match_columns(&schema, &names, &target)?
                    .into_iter()
                    .map(|i| quote(&cols[i].name))
                    .collect();
                format!(
                    "CREATE UNLOGGED TABLE {} AS SELECT {} FROM {} WITH NO DATA",
                    staging.quoted(),
                    chosen.join(", "),
                    target.quoted()
                )
            }
            _ => {
                let defs = plan::column_definitions(&schema, quote, super::types::ddl_type)?;
                format!("CREATE UNLOGGED TABLE {} ({defs})", staging.quoted())
            }
        };
        tx.execute(AssertSqlSafe(create))
            .await
            .map_err(|e| db_error(e, &format!("staging a part of {label}")))?;
        let targets = target_columns(&mut tx, &staging, &schema).await?;
        let rows = copy_in(&mut tx, &staging, &targets, batches).await?;
        tx.commit().await.map_err(|e| db_error(e, "COMMIT"))?;
        Ok(StagedPart {
            rows,
            names: vec![staging.schema, staging.name],
        })
    }

    pub(super) async fn publish(
        &self,
        spec: &WriteSpec,
        schema: SchemaRef,
        parts: Vec<StagedPart>,
    ) -> Result<WriteReport> {
        let target = Table::from_path(&spec.path, DEFAULT_SCHEMA)?;
        let staged = parts.iter().map(staged_table).collect::<Result<Vec<_>>>()?;
        let mut conn = self.connect().await?;
        // One transaction: the target changes with every part, or not at all.
        let mut tx = conn.begin().await.map_err(|e| db_error(e, "BEGIN"))?;
        prepare_table(&mut tx, &target, spec.existing, &schema).await?;
        let targets = target_columns(&mut tx, &target, &schema).await?;
        let into: Vec<String> = targets.iter().map(|c| quote(&c.name)).collect();
        let mut rows = 0;
        for table in &staged {
            let insert = format!(
                "INSERT INTO {} ({}) SELECT * FROM {}",
                target.quoted(),
                into.join(", "),
                table.quoted()
            );
            let done = tx
                .execute(AssertSqlSafe(insert))
                .await
                .map_err(|e| db_error(e, &format!("publishing the parts of table {target}")))?;
            rows += done.rows_affected();
        }
        for table in &staged {
            drop_table(&mut tx, table).await?;
        }
        tx.commit().await.map_err(|e| db_error(e, "COMMIT"))?;
        Ok(WriteReport {
            rows_committed: rows,
            ..Default::default()
        })
    }

    pub(super) async fn discard(&self, parts: Vec<StagedPart>) -> Result<()> {
        let mut conn = self.connect().await?;
        for part in &parts {
            drop_table(&mut conn, &staged_table(part)?).await?;
        }
        Ok(())
    }
}

impl Postgres {
    /// Drop every staging table, in any schema, whose write expired before `expired_before`;
    /// one the gateway's login may not drop is left, with a warning.
    pub(super) async fn sweep(&self, expired_before: SystemTime) -> Result<usize> {
        let mut conn = self.connect().await?;
        let found: Vec<(String, String)> = sqlx::query_as(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND strpos(c.relname, $1) = 1",
        )
        .bind(STAGE_PREFIX)
        .fetch_all(&mut conn)
        .await
        .map_err(|e| db_error(e, "listing staging tables"))?;
        let mut dropped = 0;
        for (schema, name) in found {
            if !stages::is_stale(&name[STAGE_PREFIX.len()..], '_', expired_before) {
                continue;
            }
            let table = Table { schema, name };
            match drop_table(&mut conn, &table).await {
                Ok(()) => dropped += 1,
                Err(e) => tracing::warn!(error = %e, "cannot drop a stale staging table"),
            }
        }
        Ok(dropped)
    }
}

/// The staging table a part names; only our own names are taken, so a forged part cannot
/// drop another table.
fn staged_table(part: &StagedPart) -> Result<Table> {
    match part.names.as_slice() {
        [schema, name] if name.starts_with(STAGE_PREFIX) => Ok(Table {
            schema: schema.clone(),
            name: name.clone(),
        }),
        _ => Err(Error::internal(format!(
            "not a staged part of a Postgres table: {:?}",
            part.names
        ))),
    }
}

async fn drop_table(conn: &mut sqlx::PgConnection, table: &Table) -> Result<()> {
    conn.execute(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {}",
        table.quoted()
    )))
    .await
    .map_err(|e| db_error(e, &format!("dropping the staged part {table}")))?;
    Ok(())
}
