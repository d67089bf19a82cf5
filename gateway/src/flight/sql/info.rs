//! What GetSqlInfo says of this server: who it is, that it reads only (writes are plain Flight
//! DoPut for now), that it has no transactions (so ADBC opens none at connect), and how SQL
//! names are quoted. The SQL grammar itself is each database's own.

use std::sync::OnceLock;

use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity, SqlSupportedTransaction,
};

/// Built once: the answers do not change while the server runs.
pub fn data() -> &'static SqlInfoData {
    static DATA: OnceLock<SqlInfoData> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "Records Mover gateway");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, ARROW_VERSION);
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
        b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
        // 0: no timeout of our own beyond the server's request timeout.
        b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
        b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
        b.append(SqlInfo::SqlDdlCatalog, false);
        b.append(SqlInfo::SqlDdlSchema, false);
        b.append(SqlInfo::SqlDdlTable, false);
        b.append(
            SqlInfo::SqlIdentifierCase,
            SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
        );
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(
            SqlInfo::SqlQuotedIdentifierCase,
            SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
        );
        b.append(SqlInfo::SqlAllTablesAreSelectable, true);
        b.append(
            SqlInfo::SqlNullOrdering,
            SqlNullOrdering::SqlNullsSortedHigh as i32,
        );
        b.append(SqlInfo::SqlKeywords, &[] as &[&str]);
        b.append(SqlInfo::SqlSupportsColumnAliasing, true);
        b.append(SqlInfo::SqlNullPlusNullIsNull, true);
        b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
        b.append(SqlInfo::SqlSchemaTerm, "schema");
        b.append(SqlInfo::SqlProcedureTerm, "procedure");
        b.append(SqlInfo::SqlCatalogTerm, "catalog");
        b.append(SqlInfo::SqlCatalogAtStart, true);
        b.append(SqlInfo::SqlTransactionsSupported, false);
        b.append(SqlInfo::SqlBatchUpdatesSupported, false);
        b.append(SqlInfo::SqlSavepointsSupported, false);
        b.append(SqlInfo::SqlNamedParametersSupported, false);
        b.build()
            .expect("the server's SqlInfo values are well-formed")
    })
}

/// The arrow-rs version this server is built with (arrow exports no constant of it; a test
/// holds this to the workspace's Cargo.toml).
const ARROW_VERSION: &str = "60.1.0";

#[cfg(test)]
mod tests {
    #[test]
    fn the_arrow_version_is_the_workspace_one() {
        let manifest = include_str!("../../../../Cargo.toml");
        let line = manifest
            .lines()
            .find(|l| l.starts_with("arrow ") || l.starts_with("arrow="))
            .expect("the workspace names arrow");
        assert!(
            line.contains(&format!("\"{}\"", super::ARROW_VERSION)),
            "{line}"
        );
    }
}
