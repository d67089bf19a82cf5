//! Looking at what the embedded default's SQLite file and folders hold, without the gateway.

use std::path::Path;

/// Rows of a SQLite table, each row's values as text ("NULL" for null), in rowid order.
pub fn sqlite_rows(db: &Path, table: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(db).expect("open sqlite");
    let sql = format!(
        "SELECT * FROM \"{}\" ORDER BY rowid",
        table.replace('"', "\"\"")
    );
    let mut stmt = match conn.prepare(&sql) {
        Ok(s) => s,
        Err(_) => return vec![],
    };
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                let v: rusqlite::types::Value = r.get(i)?;
                Ok(match v {
                    rusqlite::types::Value::Null => "NULL".into(),
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(b) => format!("{b:?}"),
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// True when the SQLite database has a table of this name.
pub fn sqlite_has_table(db: &Path, table: &str) -> bool {
    let conn = rusqlite::Connection::open(db).expect("open sqlite");
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .expect("query")
        > 0
}

/// Every file under `dir`, relative, sorted: to assert that nothing partial was left.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = entry.path();
            // The harness's own marker ([`crate::workdir`]), not something a test left.
            if entry.file_name() == ".keep" {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
