//! The one statement a bucket catalog answers: `SELECT <columns or *> FROM <dataset> [LIMIT n]`,
//! which BI tools send to preview every table they list. A bucket has no SQL engine behind it;
//! this statement is an ordinary read with its columns projected and its rows limited.
//!
//! The statement is parsed with sqlparser; it is accepted only if it is exactly that form:
//! the pieces taken from it are written back as that form, parsed again, and the two trees
//! must be equal, so no clause (WHERE, ORDER BY, a join, OFFSET...) slips through unread.

use sqlparser::ast::{
    Expr, LimitClause, ObjectName, ObjectNamePart, SelectItem, SetExpr, Statement, TableFactor,
    Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

/// What a bucket catalog accepts, said in every refusal.
pub const ACCEPTED: &str =
    "a bucket catalog answers only SELECT <columns or *> FROM \"<dataset>\" [LIMIT n]";

/// A bucket query's pieces.
#[derive(Debug, PartialEq, Eq)]
pub struct BucketQuery {
    /// The name after FROM, by parts: `dataset`, `schema.dataset` or `catalog.schema.dataset`.
    pub name: Vec<String>,
    /// The columns asked for; empty for `*`.
    pub columns: Vec<String>,
    pub limit: Option<u64>,
}

/// `sql` as a bucket query, or why it is not one.
pub fn parse(sql: &str) -> Result<BucketQuery, String> {
    let dialect = GenericDialect {};
    let parsed = Parser::parse_sql(&dialect, sql).map_err(|e| format!("{ACCEPTED}: {e}"))?;
    let refused = || format!("{ACCEPTED}; this statement is not of that form");
    let [Statement::Query(query)] = parsed.as_slice() else {
        return Err(refused());
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(refused());
    };
    let [from] = select.from.as_slice() else {
        return Err(refused());
    };
    let TableFactor::Table { name, .. } = &from.relation else {
        return Err(refused());
    };
    let parts = name_parts(name).ok_or_else(refused)?;
    let (columns, projection) = projection(&select.projection).ok_or_else(refused)?;
    let limit = match &query.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset {
            limit: Some(Expr::Value(v)),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => match &v.value {
            Value::Number(n, false) => Some(n.parse::<u64>().map_err(|_| refused())?),
            _ => return Err(refused()),
        },
        Some(_) => return Err(refused()),
    };
    let mut canonical = format!("SELECT {projection} FROM {name}");
    if let Some(n) = limit {
        canonical.push_str(&format!(" LIMIT {n}"));
    }
    let again = Parser::parse_sql(&dialect, &canonical).map_err(|_| refused())?;
    if again != parsed {
        return Err(refused());
    }
    Ok(BucketQuery {
        name: parts,
        columns,
        limit,
    })
}

fn name_parts(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Some(ident.value.clone()),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

/// The column names (empty for a lone `*`) and the projection as written.
fn projection(items: &[SelectItem]) -> Option<(Vec<String>, String)> {
    // A bare `*`: written back without its options, so EXCLUDE, REPLACE and the like differ.
    if let [SelectItem::Wildcard(_)] = items {
        return Some((vec![], "*".into()));
    }
    let idents = items
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Some(ident),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let written: Vec<String> = idents.iter().map(|i| i.to_string()).collect();
    Some((
        idents.iter().map(|i| i.value.clone()).collect(),
        written.join(", "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_form_is_accepted() {
        let q = parse(r#"SELECT * FROM "orders.csv" LIMIT 100"#).unwrap();
        assert_eq!(
            q,
            BucketQuery {
                name: vec!["orders.csv".into()],
                columns: vec![],
                limit: Some(100),
            }
        );
        let q = parse(r#"select id, "Name" from files."parts/""#).unwrap();
        assert_eq!(q.name, ["files", "parts/"]);
        assert_eq!(q.columns, ["id", "Name"]);
        assert_eq!(q.limit, None);
        let q = parse(r#"SELECT * FROM "files"."folder"."a.parquet";"#).unwrap();
        assert_eq!(q.name, ["files", "folder", "a.parquet"]);
    }

    #[test]
    fn anything_more_is_refused_naming_the_accepted_form() {
        for sql in [
            r#"SELECT * FROM "a.csv" WHERE id = 1"#,
            r#"SELECT * FROM "a.csv" ORDER BY id"#,
            r#"SELECT * FROM "a.csv" LIMIT 10 OFFSET 5"#,
            r#"SELECT DISTINCT id FROM "a.csv""#,
            r#"SELECT count(*) FROM "a.csv""#,
            r#"SELECT id AS x FROM "a.csv""#,
            r#"SELECT * FROM "a.csv", "b.csv""#,
            r#"SELECT * FROM "a.csv" JOIN "b.csv" ON true"#,
            r#"SELECT * FROM "a.csv" GROUP BY id"#,
            r#"WITH x AS (SELECT 1) SELECT * FROM x"#,
            r#"SELECT * FROM "a.csv" UNION SELECT * FROM "b.csv""#,
            r#"SELECT * FROM "a.csv"; SELECT 1"#,
            r#"DELETE FROM "a.csv""#,
            r#"SELECT * FROM (SELECT 1)"#,
            r#"SELECT * FROM "a.csv" LIMIT -1"#,
            r#"SELECT * EXCLUDE (id) FROM "a.csv""#,
            "not sql at all",
        ] {
            let err = parse(sql).expect_err(sql);
            assert!(err.starts_with(ACCEPTED), "{sql}: {err}");
        }
    }
}
