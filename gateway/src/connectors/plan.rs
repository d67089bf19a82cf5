//! The decisions every sink shares, made once: what a write does to a target that exists or
//! not under each existing-table mode ([`plan`]), which table column each incoming column
//! feeds ([`match_columns`]), and how the modes are spelled to the person who must choose one
//! (as `mvrec cp --existing-table` takes them).

use arrow::datatypes::Schema;
use mover_proto::ExistingTable;

use crate::error::{Error, ErrorKind, Result};

/// What a write does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The target does not exist (whatever the mode): create it from the incoming schema.
    Create,
    /// Add to what is there.
    Append,
    /// Empty it and keep its definition, the fastest way the system has (TRUNCATE).
    Truncate,
    /// Delete its rows and keep its definition (DELETE: triggers fire, other sessions wait).
    Delete,
    /// Drop it and create it anew from the incoming schema.
    Recreate,
}

impl Plan {
    /// The rows go into the target's existing columns (its definition is kept).
    pub fn keeps_definition(self) -> bool {
        matches!(self, Plan::Append | Plan::Truncate | Plan::Delete)
    }

    /// The target's old rows are gone once the write commits.
    pub fn replaces_rows(self) -> bool {
        matches!(self, Plan::Truncate | Plan::Delete | Plan::Recreate)
    }
}

/// What a write is told to do with its target: `mode` when it exists, and whether it
/// must exist (else a missing target is created).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    pub mode: ExistingTable,
    pub must_exist: bool,
}

impl From<ExistingTable> for Existing {
    fn from(mode: ExistingTable) -> Self {
        Self {
            mode,
            must_exist: false,
        }
    }
}

/// What a write told `existing` does to `target`, which `exists` or not. A target that exists
/// under `fail` (or no mode) is an error naming it and the modes to choose from; a missing one
/// that must exist is an error naming it.
pub fn plan(
    existing: impl Into<Existing>,
    exists: bool,
    target: &impl std::fmt::Display,
) -> Result<Plan> {
    let Existing { mode, must_exist } = existing.into();
    if !exists {
        return match must_exist {
            true => Err(Error::not_found(format!(
                "{target} does not exist, and this write appends only to a target that does"
            ))),
            false => Ok(Plan::Create),
        };
    }
    match mode {
        ExistingTable::Unspecified | ExistingTable::Fail => Err(already_exists(target)),
        ExistingTable::Append => Ok(Plan::Append),
        ExistingTable::TruncateAndOverwrite => Ok(Plan::Truncate),
        ExistingTable::DeleteAndOverwrite => Ok(Plan::Delete),
        ExistingTable::DropAndRecreate => Ok(Plan::Recreate),
    }
}

/// `target` exists and the write was not told what to do with it.
pub fn already_exists(target: &impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!(
            "{target} already exists; choose an existing-table mode: {}",
            MODES.join(", ")
        ),
    )
}

/// The modes that act on an existing target, as `mvrec cp --existing-table` spells them.
pub const MODES: [&str; 4] = [
    "append",
    "truncate-and-overwrite",
    "delete-and-overwrite",
    "drop-and-recreate",
];

/// A mode as `mvrec cp --existing-table` spells it.
pub fn mode_name(mode: ExistingTable) -> &'static str {
    match mode {
        ExistingTable::Unspecified | ExistingTable::Fail => "fail",
        ExistingTable::Append => "append",
        ExistingTable::TruncateAndOverwrite => "truncate-and-overwrite",
        ExistingTable::DeleteAndOverwrite => "delete-and-overwrite",
        ExistingTable::DropAndRecreate => "drop-and-recreate",
    }
}

/// For each incoming column, the index of the table column it feeds. The rule, the same in
/// every database connector: the column of exactly that name; else the one column whose name
/// is the same ignoring ASCII case (`ID` feeds `id`). An incoming column with no such column,
/// or with several that differ only in case, is a schema mismatch naming it. Table columns
/// that nothing feeds take their defaults.
pub fn match_columns(
    incoming: &Schema,
    table_columns: &[&str],
    table: &impl std::fmt::Display,
) -> Result<Vec<usize>> {
    incoming
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().as_str();
            if let Some(i) = table_columns.iter().position(|c| *c == name) {
                return Ok(i);
            }
            let alike: Vec<usize> = (0..table_columns.len())
                .filter(|&i| table_columns[i].eq_ignore_ascii_case(name))
                .collect();
            match alike.as_slice() {
                [one] => Ok(*one),
                [] => Err(schema_mismatch(
                    format!("column {name:?} is not in table {table}"),
                    table_columns,
                )),
                several => {
                    let names: Vec<&str> = several.iter().map(|&i| table_columns[i]).collect();
                    Err(schema_mismatch(
                        format!(
                            "column {name:?} could feed any of {} in table {table}; rename it to one of them",
                            names.join(", ")
                        ),
                        table_columns,
                    ))
                }
            }
        })
        .collect()
}

/// The column definitions of a new table for `schema`: each name quoted by `quote`, its type
/// as `ddl_type` gives it for the system, and `NOT NULL` where the field is not nullable.
pub fn column_definitions(
    schema: &Schema,
    quote: impl Fn(&str) -> String,
    ddl_type: impl Fn(&arrow::datatypes::Field) -> Result<String>,
) -> Result<String> {
    let defs = schema
        .fields()
        .iter()
        .map(|f| {
            let null = if f.is_nullable() { "" } else { " NOT NULL" };
            Ok(format!("{} {}{null}", quote(f.name()), ddl_type(f)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(defs.join(", "))
}

fn schema_mismatch(what: String, has: &[&str]) -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        format!("schema mismatch: {what} (it has: {})", has.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field};

    fn schema(names: &[&str]) -> Schema {
        Schema::new(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Int64, true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn every_mode_on_a_missing_target_creates_it() {
        for mode in [
            ExistingTable::Unspecified,
            ExistingTable::Fail,
            ExistingTable::Append,
            ExistingTable::TruncateAndOverwrite,
            ExistingTable::DeleteAndOverwrite,
            ExistingTable::DropAndRecreate,
        ] {
            assert_eq!(plan(mode, false, &"t").unwrap(), Plan::Create);
        }
    }

    #[test]
    fn a_target_that_must_exist_is_not_created() {
        let append_only = Existing {
            mode: ExistingTable::Append,
            must_exist: true,
        };
        let e = plan(append_only, false, &"table main.t").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.starts_with("table main.t does not exist"), "{e}");
        assert_eq!(plan(append_only, true, &"t").unwrap(), Plan::Append);
    }

    #[test]
    fn an_existing_target_follows_the_mode_or_names_the_modes() {
        assert_eq!(
            plan(ExistingTable::Append, true, &"t").unwrap(),
            Plan::Append
        );
        assert_eq!(
            plan(ExistingTable::TruncateAndOverwrite, true, &"t").unwrap(),
            Plan::Truncate
        );
        assert_eq!(
            plan(ExistingTable::DeleteAndOverwrite, true, &"t").unwrap(),
            Plan::Delete
        );
        assert_eq!(
            plan(ExistingTable::DropAndRecreate, true, &"t").unwrap(),
            Plan::Recreate
        );
        let e = plan(ExistingTable::Fail, true, &"table main.t").unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists);
        assert!(e.message.starts_with("table main.t already exists"), "{e}");
        // Spelled as the CLI takes them, never as the proto's names.
        assert!(e.message.contains("truncate-and-overwrite"), "{e}");
        assert!(!e.message.contains('_'), "{e}");
    }

    #[test]
    fn columns_match_exactly_then_ignoring_case_once() {
        let table = ["id", "Name", "qty", "QTY"];
        assert_eq!(
            match_columns(&schema(&["name", "id"]), &table, &"t").unwrap(),
            [1, 0]
        );
        // Exact names win over the case-insensitive rule.
        assert_eq!(match_columns(&schema(&["QTY"]), &table, &"t").unwrap(), [3]);
        let e = match_columns(&schema(&["Qty"]), &table, &"t").unwrap_err();
        assert!(e.message.contains("qty, QTY"), "{e}");
        let e = match_columns(&schema(&["price"]), &table, &"t").unwrap_err();
        assert_eq!(e.kind, ErrorKind::FailedPrecondition);
        assert!(e.message.contains("\"price\" is not in table t"), "{e}");
        assert!(e.message.contains("it has: id, Name, qty, QTY"), "{e}");
    }
}
