//! Foreign keys, from `pragma_foreign_key_list`. SQLite names no constraint, and a key that
//! names no columns (`REFERENCES parent`) references the parent's primary key.

use rusqlite::Connection;

use super::Table;
use crate::connectors::{ForeignKey, KeyRule, KeysOf, quote_ident};
use crate::error::{Context, Result};

/// `table`'s foreign keys (`Imported`), or the keys of the tables in its schema that
/// reference it (`Exported`), in key order.
pub fn foreign(conn: &Connection, table: &Table, which: KeysOf) -> Result<Vec<ForeignKey>> {
    // Every table of the schema with its keys; the side asked for picks the rows. The schema
    // is a quoted identifier, the names are bound.
    let side = match which {
        KeysOf::Imported => "m.name = ?2",
        KeysOf::Exported => "f.\"table\" = ?2 COLLATE NOCASE",
    };
    let sql = format!(
        "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete \
         FROM {}.sqlite_schema m, pragma_foreign_key_list(m.name, ?1) f \
         WHERE m.type = 'table' AND {side} ORDER BY m.name, f.id, f.seq",
        quote_ident(&table.schema)
    );
    let mut stmt = conn.prepare(&sql).internal("reading foreign keys")?;
    type Row = (String, i64, String, String, Option<String>, String, String);
    let rows: Vec<Row> = stmt
        .query_map([&table.schema, &table.name], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .internal("reading foreign keys")?;
    let mut keys: Vec<(String, i64, ForeignKey)> = Vec::new();
    for (from_table, id, to_table, from, to, on_update, on_delete) in rows {
        let same = keys
            .last()
            .is_some_and(|(t, i, _)| *t == from_table && *i == id);
        if !same {
            let key = ForeignKey {
                table: vec![table.schema.clone(), from_table.clone()],
                name: None,
                referenced: vec![table.schema.clone(), to_table.clone()],
                referenced_key: None,
                columns: vec![],
                on_update: KeyRule::from_sql(&on_update),
                on_delete: KeyRule::from_sql(&on_delete),
            };
            keys.push((from_table.clone(), id, key));
        }
        let key = &mut keys.last_mut().expect("pushed above").2;
        key.columns.push((from, to.unwrap_or_default()));
    }
    let mut out = Vec::with_capacity(keys.len());
    for (_, _, mut key) in keys {
        if key.columns.iter().any(|(_, to)| to.is_empty()) {
            let parent = primary_key(conn, &table.schema, &key.referenced[1])?;
            for ((_, to), pk) in key.columns.iter_mut().zip(parent) {
                *to = pk;
            }
        }
        out.push(key);
    }
    Ok(out)
}

/// The primary key's columns of `schema`.`table`, in key order.
pub fn primary_key(conn: &Connection, schema: &str, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1, ?2) WHERE pk > 0 ORDER BY pk")
        .internal("reading the primary key")?;
    stmt.query_map([table, schema], |r| r.get(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .internal("reading the primary key")
}
