//! Queries with placeholders (`$1`, `$2`, …). COPY takes no parameters, so such a query runs
//! through the extended protocol instead: prepared, so the server gives each placeholder its
//! type; each value cast to that type's Arrow type and encoded as a COPY load encodes it, then
//! bound in binary; the rows fetched in binary and framed as COPY tuples for the decoder every
//! read uses, so a value comes out exactly as a COPY read gives it.
//!
//! A result column's type is the server's; its typmod (a numeric's precision and scale) the
//! table column's it comes straight from. A computed column has none (an unconstrained
//! numeric, read as text), where a query without placeholders would give a cast's typmod.

use arrow::array::{Array, RecordBatch};
use sqlx::encode::IsNull;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgConnection, PgRow, PgTypeInfo};
use sqlx::{Arguments, Column as _, Either, Encode, Postgres, Row, Statement, Type};

use super::{Column, codec, column_of, db_error, types};
use crate::convert::strict_cast;
use crate::error::{Error, Result};

/// The type oids the server gives a prepared statement's placeholders, in order.
pub(super) fn placeholders(statement: &sqlx::postgres::PgStatement) -> Vec<u32> {
    match statement.parameters() {
        Some(Either::Left(types)) => types.iter().map(|t| t.oid().map_or(0, |o| o.0)).collect(),
        Some(Either::Right(n)) => vec![0; n],
        None => vec![],
    }
}

/// A prepared statement's result columns, typed from the catalog.
pub(super) async fn columns(
    conn: &mut PgConnection,
    statement: &sqlx::postgres::PgStatement,
) -> Result<Vec<Column>> {
    let cols = statement.columns();
    let described = cols.iter().map(|c| {
        let oid = c.type_info().oid().map_or(0, |o| o.0);
        let origin = (
            c.relation_id().map_or(0, |o| o.0),
            c.relation_attribute_no().unwrap_or(0),
        );
        (c.name().to_string(), oid, origin)
    });
    let found = catalog(conn, described.collect()).await?;
    if found.len() != cols.len() {
        return Err(Error::internal(format!(
            "the query has {} columns, but the catalog knows the types of {}",
            cols.len(),
            found.len()
        )));
    }
    Ok(found)
}

/// For each of a prepared statement's result columns, the table (schema, name) it is read
/// from, where the server says (a computed column has none).
pub(super) async fn origins(
    conn: &mut PgConnection,
    statement: &sqlx::postgres::PgStatement,
) -> Result<Vec<Option<(String, String)>>> {
    let relations: Vec<i64> = statement
        .columns()
        .iter()
        .map(|c| c.relation_id().map_or(0, |o| o.0.into()))
        .collect();
    if relations.iter().all(|&r| r == 0) {
        return Ok(vec![None; relations.len()]);
    }
    let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text \
         FROM unnest($1::int8[]) WITH ORDINALITY AS r(rel, i) \
         LEFT JOIN pg_class c ON c.oid = r.rel::oid \
         LEFT JOIN pg_namespace n ON n.oid = c.relnamespace \
         ORDER BY r.i",
    )
    .bind(relations)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error(e, "reading the catalog"))?;
    Ok(rows
        .into_iter()
        .map(|(schema, table)| schema.zip(table))
        .collect())
}

/// `params` (one row) as the arguments of placeholders of types `oids`.
pub(super) async fn arguments(
    conn: &mut PgConnection,
    oids: &[u32],
    params: &RecordBatch,
) -> Result<PgArguments> {
    let targets = parameter_columns(conn, oids).await?;
    row_arguments(&targets, oids, params, 0)
}

/// Row `row` of `params` as the arguments of placeholders `targets` (of types `oids`), each
/// value cast to its placeholder's type and encoded as COPY encodes it.
pub(super) fn row_arguments(
    targets: &[Column],
    oids: &[u32],
    params: &RecordBatch,
    row: usize,
) -> Result<PgArguments> {
    if params.num_columns() != oids.len() {
        return Err(Error::invalid(format!(
            "the statement has {} placeholders, but {} parameters are bound",
            oids.len(),
            params.num_columns()
        )));
    }
    let params = params.slice(row, 1);
    let mut args = PgArguments::default();
    for ((target, column), &oid) in targets.iter().zip(params.columns()).zip(oids) {
        if column.logical_nulls().is_some_and(|n| n.is_null(0)) {
            // Of any type, even Arrow's Null, which casts to nothing.
            args.add(Binary { oid, value: None })
                .map_err(|e| Error::internal(format!("binding {}: {e}", target.name)))?;
            continue;
        }
        let arrow = types::write_arrow_type(&target.pg).map_err(|e| e.within(&target.name))?;
        let cast = strict_cast(column, &arrow, &target.name, 1)?;
        let mut tuple = Vec::new();
        codec::encode(std::slice::from_ref(&target.pg), &[cast], &mut tuple)
            .map_err(|(_, _, why)| Error::invalid(format!("{}: {why}", target.name)))?;
        // The tuple is the field count (2 bytes), the value's length (4) and its bytes.
        let value = match i32::from_be_bytes([tuple[2], tuple[3], tuple[4], tuple[5]]) {
            -1 => None,
            _ => Some(tuple[6..].to_vec()),
        };
        args.add(Binary { oid, value })
            .map_err(|e| Error::internal(format!("binding {}: {e}", target.name)))?;
    }
    Ok(args)
}

/// Placeholders of types `oids` as columns named `parameter 1`, `parameter 2`, ….
pub(super) async fn parameter_columns(
    conn: &mut PgConnection,
    oids: &[u32],
) -> Result<Vec<Column>> {
    let described = oids
        .iter()
        .enumerate()
        .map(|(i, &oid)| (format!("parameter {}", i + 1), oid, (0, 0)));
    catalog(conn, described.collect()).await
}

/// One row fetched in binary, appended as a binary COPY tuple.
pub(super) fn copy_tuple(row: &PgRow, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&(row.len() as i16).to_be_bytes());
    for i in 0..row.len() {
        let value = row
            .try_get_raw(i)
            .map_err(|e| Error::internal(format!("reading column {i}: {e}")))?;
        if sqlx::ValueRef::is_null(&value) {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        }
        let bytes = value
            .as_bytes()
            .map_err(|e| Error::internal(format!("reading column {i}: {e}")))?;
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    Ok(())
}

/// Columns named `described` (name, type oid, and the table column it comes from or (0, 0)),
/// typed from the catalog as a table's columns are.
async fn catalog(
    conn: &mut PgConnection,
    described: Vec<(String, u32, (u32, i16))>,
) -> Result<Vec<Column>> {
    let names: Vec<String> = described.iter().map(|d| d.0.clone()).collect();
    let oids: Vec<i64> = described.iter().map(|d| d.1.into()).collect();
    let rels: Vec<i64> = described.iter().map(|d| d.2.0.into()).collect();
    let atts: Vec<i32> = described.iter().map(|d| d.2.1.into()).collect();
    let rows = sqlx::query(
        "SELECT c.name, t.typname::text, t.typtype::text, COALESCE(a.atttypmod, -1), false, \
                et.typname::text, et.typtype::text, t.typelem::int8, \
                format_type(t.oid, COALESCE(a.atttypmod, -1)) \
         FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int4[]) \
              WITH ORDINALITY AS c(name, typ, rel, att, n) \
         JOIN pg_type t ON t.oid = c.typ::oid \
         LEFT JOIN pg_attribute a \
                ON a.attrelid = c.rel::oid AND a.attnum = c.att AND a.atttypid = t.oid \
         LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
         ORDER BY c.n",
    )
    .bind(names)
    .bind(oids)
    .bind(rels)
    .bind(atts)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error(e, "reading the catalog"))?;
    rows.iter().map(column_of).collect()
}

/// A value already in its type's binary form, bound with that type's oid.
struct Binary {
    oid: u32,
    value: Option<Vec<u8>>,
}

impl Type<Postgres> for Binary {
    fn type_info() -> PgTypeInfo {
        // Each value says its own type (`produces`); this is never the one sent.
        PgTypeInfo::with_name("unknown")
    }

    fn compatible(_: &PgTypeInfo) -> bool {
        true
    }
}

impl Encode<'_, Postgres> for Binary {
    fn encode_by_ref(
        &self,
        buf: &mut PgArgumentBuffer,
    ) -> std::result::Result<IsNull, sqlx::error::BoxDynError> {
        Ok(match &self.value {
            Some(bytes) => {
                buf.extend_from_slice(bytes);
                IsNull::No
            }
            None => IsNull::Yes,
        })
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(PgTypeInfo::with_oid(Oid(self.oid)))
    }
}
