//! What GetXdbcTypeInfo says: the SQL types rows arrive in here. Each database keeps its own
//! type names; these are the portable types its columns come through as (the connectors'
//! type tables map every database type onto them), so a JDBC or ODBC client sees one list
//! for every catalog.

use std::sync::OnceLock;

use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};

/// Built once.
pub fn data() -> &'static XdbcTypeInfoData {
    static DATA: OnceLock<XdbcTypeInfoData> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut b = XdbcTypeInfoDataBuilder::new();
        let plain = |name: &str, data_type: XdbcDataType| XdbcTypeInfo {
            type_name: name.into(),
            data_type,
            nullable: Nullable::NullabilityNullable,
            searchable: Searchable::Full,
            local_type_name: Some(name.into()),
            sql_data_type: data_type,
            ..Default::default()
        };
        let number =
            |name: &str, data_type: XdbcDataType, digits: i32, unsigned: bool| XdbcTypeInfo {
                column_size: Some(digits),
                unsigned_attribute: Some(unsigned),
                fixed_prec_scale: true,
                num_prec_radix: Some(10),
                ..plain(name, data_type)
            };
        let quoted = |name: &str, data_type: XdbcDataType| XdbcTypeInfo {
            literal_prefix: Some("'".into()),
            literal_suffix: Some("'".into()),
            case_sensitive: true,
            ..plain(name, data_type)
        };
        b.append(plain("BOOLEAN", XdbcDataType::XdbcBit));
        b.append(number("TINYINT", XdbcDataType::XdbcTinyint, 3, false));
        b.append(number("SMALLINT", XdbcDataType::XdbcSmallint, 5, false));
        b.append(number("INTEGER", XdbcDataType::XdbcInteger, 10, false));
        b.append(number("BIGINT", XdbcDataType::XdbcBigint, 19, false));
        b.append(XdbcTypeInfo {
            fixed_prec_scale: false,
            num_prec_radix: Some(2),
            column_size: Some(24),
            ..plain("REAL", XdbcDataType::XdbcReal)
        });
        b.append(XdbcTypeInfo {
            num_prec_radix: Some(2),
            column_size: Some(53),
            ..plain("DOUBLE", XdbcDataType::XdbcDouble)
        });
        b.append(XdbcTypeInfo {
            create_params: Some(vec!["precision".into(), "scale".into()]),
            minimum_scale: Some(0),
            maximum_scale: Some(76),
            ..number("DECIMAL", XdbcDataType::XdbcDecimal, 76, false)
        });
        b.append(XdbcTypeInfo {
            create_params: Some(vec!["length".into()]),
            ..quoted("VARCHAR", XdbcDataType::XdbcVarchar)
        });
        b.append(XdbcTypeInfo {
            literal_prefix: Some("X'".into()),
            literal_suffix: Some("'".into()),
            searchable: Searchable::None,
            ..plain("VARBINARY", XdbcDataType::XdbcVarbinary)
        });
        // ODBC's way: the concise type, then SQL_DATETIME with a subcode. The subcode of a
        // date is 1, which arrow-flight names XdbcSubcodeYear (the proto's alias
        // XDBC_SUBCODE_DATE is not generated).
        let datetime =
            |name: &str, data_type: XdbcDataType, code: XdbcDatetimeSubcode| XdbcTypeInfo {
                sql_data_type: XdbcDataType::XdbcDatetime,
                datetime_subcode: Some(code),
                ..quoted(name, data_type)
            };
        b.append(datetime(
            "DATE",
            XdbcDataType::XdbcDate,
            XdbcDatetimeSubcode::XdbcSubcodeYear,
        ));
        b.append(datetime(
            "TIME",
            XdbcDataType::XdbcTime,
            XdbcDatetimeSubcode::XdbcSubcodeTime,
        ));
        b.append(datetime(
            "TIMESTAMP",
            XdbcDataType::XdbcTimestamp,
            XdbcDatetimeSubcode::XdbcSubcodeTimestamp,
        ));
        b.build().expect("the server's type list is well-formed")
    })
}
