//! One mapping from a database server's error to an [`ErrorKind`], for every SQL connector:
//! by SQLSTATE class (Postgres and MySQL both send one), with the MySQL error numbers whose
//! SQLSTATE is the catch-all `42000` or `HY000` told apart by number.
//!
//! | what | SQLSTATE | kind |
//! |---|---|---|
//! | connection failures, a server shutting down | `08`, `57P01`-`57P03` | Unavailable |
//! | authentication, privileges | `28`, `42501` | PermissionDenied |
//! | missing relation, schema, database, column | `42P01`, `42S02`, `3F000`, `3D000`, `42703`, `42S22` | NotFound |
//! | too many connections, out of memory or disk, limits | `53`, `54` | ResourceExhausted |
//! | a cancelled statement | `57014` | Cancelled |
//! | serialization failure, deadlock (retry) | `40` | Unavailable |
//! | bad data, constraint violations, bad SQL | `22`, `23`, `42` | InvalidArgument |
//! | anything else | | Internal |

use crate::error::{Error, ErrorKind};

/// The kind of a server error with this SQLSTATE.
pub fn kind_of_sqlstate(state: &str) -> ErrorKind {
    use ErrorKind::*;
    match state {
        "42501" => PermissionDenied,
        "42P01" | "42S02" | "3F000" | "3D000" | "42703" | "42S22" | "42704" => NotFound,
        "57014" => Cancelled,
        "57P01" | "57P02" | "57P03" => Unavailable,
        _ => match state.get(..2).unwrap_or("") {
            "08" | "40" => Unavailable,
            "28" => PermissionDenied,
            "53" | "54" => ResourceExhausted,
            "22" | "23" | "42" | "0A" | "21" | "25" | "44" => InvalidArgument,
            _ => Internal,
        },
    }
}

/// The kind of a MySQL server error: by number where MySQL's SQLSTATE is too coarse, else by
/// its SQLSTATE.
pub fn kind_of_mysql(code: u16, state: &str) -> ErrorKind {
    use ErrorKind::*;
    match code {
        // ER_DBACCESS_DENIED, ER_ACCESS_DENIED, ER_TABLEACCESS_DENIED, ER_COLUMNACCESS_DENIED,
        // ER_SPECIFIC_ACCESS_DENIED, ER_PROCACCESS_DENIED
        1044 | 1045 | 1142 | 1143 | 1227 | 1370 => PermissionDenied,
        // ER_BAD_DB, ER_NO_SUCH_TABLE, ER_BAD_TABLE, ER_BAD_FIELD
        1049 | 1146 | 1051 | 1054 => NotFound,
        // ER_CON_COUNT, ER_TOO_MANY_USER_CONNECTIONS, ER_USER_LIMIT_REACHED, ER_OUTOFMEMORY,
        // ER_OUT_OF_SORTMEMORY, ER_RECORD_FILE_FULL, ER_LOCK_TABLE_FULL
        1040 | 1203 | 1226 | 1037 | 1038 | 1114 | 1206 => ResourceExhausted,
        // ER_QUERY_INTERRUPTED
        1317 => Cancelled,
        // ER_SERVER_SHUTDOWN, ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK
        1053 | 1205 | 1213 => Unavailable,
        // Values the column cannot take, which MySQL gives the catch-all HY000: out of range,
        // truncated, incorrect for the type, too long, NULL in a NOT NULL column.
        1264 | 1265 | 1292 | 1366 | 1406 | 1048 => InvalidArgument,
        _ => kind_of_sqlstate(state),
    }
}

/// A server error as ours: its kind from the SQLSTATE, `context` and the server's message, and
/// the original error kept as the source.
pub fn server_error(
    kind: ErrorKind,
    context: &str,
    message: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::new(kind, format!("{context}: {message}")).with_source(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_what_a_client_can_act_on() {
        use ErrorKind::*;
        for (state, kind) in [
            ("08006", Unavailable),
            ("08001", Unavailable),
            ("57P01", Unavailable),
            ("40P01", Unavailable),
            ("28P01", PermissionDenied),
            ("42501", PermissionDenied),
            ("42P01", NotFound),
            ("3F000", NotFound),
            ("53300", ResourceExhausted),
            ("54000", ResourceExhausted),
            ("57014", Cancelled),
            ("22P02", InvalidArgument),
            ("23505", InvalidArgument),
            ("42601", InvalidArgument),
            ("XX000", Internal),
        ] {
            assert_eq!(kind_of_sqlstate(state), kind, "{state}");
        }
    }

    #[test]
    fn mysql_numbers_refine_its_catch_all_states() {
        use ErrorKind::*;
        assert_eq!(kind_of_mysql(1040, "08004"), ResourceExhausted);
        assert_eq!(kind_of_mysql(1045, "28000"), PermissionDenied);
        assert_eq!(kind_of_mysql(1142, "42000"), PermissionDenied);
        assert_eq!(kind_of_mysql(1146, "42S02"), NotFound);
        assert_eq!(kind_of_mysql(1049, "42000"), NotFound);
        assert_eq!(kind_of_mysql(1064, "42000"), InvalidArgument);
        assert_eq!(kind_of_mysql(1366, "HY000"), InvalidArgument);
        assert_eq!(kind_of_mysql(1030, "HY000"), Internal);
        assert_eq!(kind_of_mysql(1062, "23000"), InvalidArgument);
    }
}
