//! What GetSqlInfo says of this server: who it is, whether it is read-only to the caller, that
//! it takes bulk ingest but has no transactions (so ADBC opens none at connect), and how SQL
//! names are quoted. The SQL grammar itself is each database's own.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel, SqlSupportedCaseSensitivity,
    SqlSupportedGroupBy, SqlSupportedResultSetConcurrency, SqlSupportedResultSetType,
    SqlSupportedSubqueries, SqlSupportedTransaction, SqlSupportedUnions,
    SqlTransactionIsolationLevel, SupportedSqlGrammar,
};

/// Built once for each answer to "read-only?" (a caller the access rules let write nothing is
/// told it is); the rest does not change while the server runs. Every id the Flight SQL spec
/// defines is answered, in its own union arm (a test holds this to the spec's list). The SQL
/// grammar is each database's own, so the grammar ids say what every database here has in
/// common, and lengths say 0 (no limit known), as JDBC reads it.
pub fn data(read_only: bool) -> &'static SqlInfoData {
    static DATA: [OnceLock<SqlInfoData>; 2] = [OnceLock::new(), OnceLock::new()];
    DATA[read_only as usize].get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        // The server.
        b.append(SqlInfo::FlightSqlServerName, "Records Mover gateway");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, ARROW_VERSION);
        b.append(SqlInfo::FlightSqlServerReadOnly, read_only);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        // No Substrait: no version (the spec allows null; the union here has no null arm).
        b.append(SqlInfo::FlightSqlServerSubstraitMinVersion, "");
        b.append(SqlInfo::FlightSqlServerSubstraitMaxVersion, "");
        // No transactions, so ADBC opens none at connect.
        b.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        b.append(SqlInfo::FlightSqlServerCancel, false);
        // CommandStatementIngest, each ingest its own all-or-nothing write.
        b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
        b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
        // Handles are signed tickets: they expire with the ticket TTL, which the server
        // config sets; 0 says no fixed timeout is promised.
        b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
        b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
        // Names and quoting.
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
        for id in [
            SqlInfo::SqlKeywords,
            SqlInfo::SqlNumericFunctions,
            SqlInfo::SqlStringFunctions,
            SqlInfo::SqlSystemFunctions,
            SqlInfo::SqlDatetimeFunctions,
        ] {
            // Each database's own; none is promised across them.
            b.append(id, &[] as &[&str]);
        }
        b.append(SqlInfo::SqlSearchStringEscape, "\\");
        b.append(SqlInfo::SqlExtraNameCharacters, "");
        b.append(SqlInfo::SqlSupportsColumnAliasing, true);
        b.append(SqlInfo::SqlNullPlusNullIsNull, true);
        b.append(
            SqlInfo::SqlSupportsConvert,
            BTreeMap::<i32, Vec<i32>>::new(),
        );
        b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
        b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
        b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
        b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
        b.append(
            SqlInfo::SqlSupportedGroupBy,
            1i32 << SqlSupportedGroupBy::SqlGroupByUnrelated as i32,
        );
        b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
        b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
        b.append(
            SqlInfo::SqlSupportedGrammar,
            1i32 << SupportedSqlGrammar::SqlCoreGrammar as i32,
        );
        b.append(
            SqlInfo::SqlAnsi92SupportedLevel,
            // ANSI92_ENTRY_SQL (0): arrow-flight does not export SupportedAnsi92SqlGrammarLevel.
            1i32 << 0,
        );
        b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
        b.append(
            SqlInfo::SqlOuterJoinsSupportLevel,
            SqlOuterJoinsSupportLevel::SqlLimitedOuterJoins as i32,
        );
        b.append(SqlInfo::SqlSchemaTerm, "schema");
        b.append(SqlInfo::SqlProcedureTerm, "procedure");
        b.append(SqlInfo::SqlCatalogTerm, "catalog");
        b.append(SqlInfo::SqlCatalogAtStart, true);
        b.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
        b.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
        b.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
        b.append(SqlInfo::SqlSelectForUpdateSupported, false);
        b.append(SqlInfo::SqlStoredProceduresSupported, false);
        b.append(
            SqlInfo::SqlSupportedSubqueries,
            (1i32 << SqlSupportedSubqueries::SqlSubqueriesInExists as i32)
                | (1i32 << SqlSupportedSubqueries::SqlSubqueriesInIns as i32),
        );
        b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
        b.append(
            SqlInfo::SqlSupportedUnions,
            (1i32 << SqlSupportedUnions::SqlUnion as i32)
                | (1i32 << SqlSupportedUnions::SqlUnionAll as i32),
        );
        for id in [
            SqlInfo::SqlMaxBinaryLiteralLength,
            SqlInfo::SqlMaxCharLiteralLength,
            SqlInfo::SqlMaxColumnNameLength,
            SqlInfo::SqlMaxColumnsInGroupBy,
            SqlInfo::SqlMaxColumnsInIndex,
            SqlInfo::SqlMaxColumnsInOrderBy,
            SqlInfo::SqlMaxColumnsInSelect,
            SqlInfo::SqlMaxColumnsInTable,
            SqlInfo::SqlMaxConnections,
            SqlInfo::SqlMaxCursorNameLength,
            SqlInfo::SqlMaxIndexLength,
            SqlInfo::SqlDbSchemaNameLength,
            SqlInfo::SqlMaxProcedureNameLength,
            SqlInfo::SqlMaxCatalogNameLength,
            SqlInfo::SqlMaxRowSize,
            SqlInfo::SqlMaxStatementLength,
            SqlInfo::SqlMaxStatements,
            SqlInfo::SqlMaxTableNameLength,
            SqlInfo::SqlMaxTablesInSelect,
            SqlInfo::SqlMaxUsernameLength,
        ] {
            b.append(id, 0i64);
        }
        b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, false);
        b.append(
            SqlInfo::SqlDefaultTransactionIsolation,
            SqlTransactionIsolationLevel::SqlTransactionNone as i32,
        );
        b.append(SqlInfo::SqlTransactionsSupported, false);
        b.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
        b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
        b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
        b.append(
            SqlInfo::SqlSupportedResultSetTypes,
            1i32 << SqlSupportedResultSetType::SqlResultSetTypeForwardOnly as i32,
        );
        for id in [
            SqlInfo::SqlSupportedConcurrenciesForResultSetUnspecified,
            SqlInfo::SqlSupportedConcurrenciesForResultSetForwardOnly,
            SqlInfo::SqlSupportedConcurrenciesForResultSetScrollSensitive,
            SqlInfo::SqlSupportedConcurrenciesForResultSetScrollInsensitive,
        ] {
            b.append(
                id,
                1i32 << SqlSupportedResultSetConcurrency::SqlResultSetConcurrencyReadOnly as i32,
            );
        }
        b.append(SqlInfo::SqlBatchUpdatesSupported, false);
        b.append(SqlInfo::SqlSavepointsSupported, false);
        b.append(SqlInfo::SqlNamedParametersSupported, false);
        b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
        b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
        b.build()
            .expect("the server's SqlInfo values are well-formed")
    })
}

/// The arrow-rs version this server is built with (arrow exports no constant of it; a test
/// holds this to the workspace's Cargo.toml).
const ARROW_VERSION: &str = "60.1.0";

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::UInt32Type;
    use arrow_flight::sql::SqlInfo;

    /// Every id the spec defines (arrow-flight's generated `SqlInfo`, from 0 to the last),
    /// answered once.
    #[test]
    fn every_sql_info_id_is_answered() {
        let batch = super::data(true).record_batch(std::iter::empty()).unwrap();
        let ids: Vec<u32> = batch
            .column(0)
            .as_primitive::<UInt32Type>()
            .values()
            .to_vec();
        let defined: Vec<u32> = (0..1000)
            .filter(|&i| SqlInfo::try_from(i as i32).is_ok())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "an id answered twice");
        assert_eq!(sorted, defined);
        assert_eq!(batch.column(1).null_count(), 0);
    }

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
