//! The typed values every backend must carry: one table with the values that break things
//! (NULLs, unicode, empty strings, extreme numbers, old and new dates), written through a real
//! gateway and read back value by value. The contract's `typed_values_round_trip` runs it on
//! every backend at the edge rows, 0 rows and 100k rows.
//!
//! SQLite and Parquet keep every type exactly (SQLite's documented conversions are covered by
//! its type-table unit tests). CSV and JSON lines carry no types: read back, a column is
//! inferred, and after a cast to the original type every value must equal the original, with
//! the conversions these formats force, asserted here and documented in README.md:
//! - no binary columns (refused by name),
//! - CSV writes NULL and "" alike, so an empty string reads back as NULL,
//! - decimals are written as numbers and read back as Float64 (compared as such).
//!
//! Postgres widens what it has no type for, and MySQL keeps time of day as a duration and
//! zoned timestamps as naive UTC: [`widened_round_trip`] and [`mysql_round_trip`] check those.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    Time64MicrosecondArray, TimestampMicrosecondArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::util::display::ArrayFormatter;
use arrow_flight::error::FlightError;
use futures::TryStreamExt;
use mover_client::Client;
use mover_proto::{ExistingTable, Path, Read, Write, read::What};

/// Rows 0..EDGE_ROWS of [`table`] are the edge values.
pub const EDGE_ROWS: usize = 6;

pub fn schema() -> SchemaRef {
    let ts = |tz: Option<&str>| DataType::Timestamp(TimeUnit::Microsecond, tz.map(Into::into));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("i64", DataType::Int64, true),
        Field::new("u8", DataType::UInt8, true),
        Field::new("u16", DataType::UInt16, true),
        Field::new("u32", DataType::UInt32, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("amount", DataType::Decimal128(38, 10), true),
        Field::new("text", DataType::Utf8, true),
        Field::new("bytes", DataType::Binary, true),
        Field::new("day", DataType::Date32, true),
        Field::new("at_time", DataType::Time64(TimeUnit::Microsecond), true),
        Field::new("local_ts", ts(None), true),
        Field::new("utc_ts", ts(Some("UTC")), true),
    ]))
}

/// `n` rows: the edge rows first, then ordinary generated ones.
pub fn table(n: usize) -> RecordBatch {
    // Each edge row is one kind of trouble: minimums, maximums, zeros/empties, NULLs, unicode
    // and punctuation, small magnitudes.
    fn pick<T: Clone>(
        i: usize,
        edges: [Option<T>; EDGE_ROWS],
        normal: impl Fn(usize) -> T,
    ) -> Option<T> {
        if i < EDGE_ROWS {
            edges[i].clone()
        } else {
            Some(normal(i))
        }
    }
    let rows = 0..n;
    // Coerces each typed array to ArrayRef inside vec![].
    let col = |a: ArrayRef| a;
    let big = 10i128.pow(38) - 1; // 38 nines: the largest Decimal128(38, _)
    let columns: Vec<ArrayRef> = vec![
        col(Arc::new(Int64Array::from_iter_values(
            rows.clone().map(|i| i as i64),
        ))),
        col(Arc::new(Int8Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(i8::MIN),
                    Some(i8::MAX),
                    Some(0),
                    None,
                    Some(-1),
                    Some(1),
                ],
                |i| (i % 100) as i8,
            )
        })))),
        col(Arc::new(Int16Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(i16::MIN),
                    Some(i16::MAX),
                    Some(0),
                    None,
                    Some(-1),
                    Some(1),
                ],
                |i| (i % 30000) as i16,
            )
        })))),
        col(Arc::new(Int32Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(i32::MIN),
                    Some(i32::MAX),
                    Some(0),
                    None,
                    Some(-1),
                    Some(1),
                ],
                |i| i as i32 * 7,
            )
        })))),
        col(Arc::new(Int64Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(i64::MIN),
                    Some(i64::MAX),
                    Some(0),
                    None,
                    Some(-1),
                    Some(1),
                ],
                |i| i as i64 * 1_000_003,
            )
        })))),
        col(Arc::new(UInt8Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [Some(0), Some(u8::MAX), Some(0), None, Some(1), Some(2)],
                |i| (i % 200) as u8,
            )
        })))),
        col(Arc::new(UInt16Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [Some(0), Some(u16::MAX), Some(0), None, Some(1), Some(2)],
                |i| (i % 60000) as u16,
            )
        })))),
        col(Arc::new(UInt32Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [Some(0), Some(u32::MAX), Some(0), None, Some(1), Some(2)],
                |i| i as u32 * 3,
            )
        })))),
        // SQLite integers are signed 64-bit: the largest UInt64 it can hold is 2^63-1.
        col(Arc::new(UInt64Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(0),
                    Some(i64::MAX as u64),
                    Some(0),
                    None,
                    Some(1),
                    Some(2),
                ],
                |i| i as u64 * 11,
            )
        })))),
        col(Arc::new(Float32Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(f32::MIN),
                    Some(f32::MAX),
                    Some(0.0),
                    None,
                    Some(f32::MIN_POSITIVE),
                    Some(1.5),
                ],
                |i| i as f32 / 4.0,
            )
        })))),
        col(Arc::new(Float64Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(f64::MIN),
                    Some(f64::MAX),
                    Some(0.0),
                    None,
                    Some(f64::MIN_POSITIVE),
                    Some(-123.456),
                ],
                |i| i as f64 / 3.0,
            )
        })))),
        col(Arc::new(BooleanArray::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(true),
                    Some(false),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                ],
                |i| i % 3 == 0,
            )
        })))),
        col(Arc::new(
            Decimal128Array::from_iter(rows.clone().map(|i| {
                pick(
                    i,
                    [
                        Some(-big),
                        Some(big),
                        Some(0),
                        None,
                        Some(1),
                        Some(-12_345_000_000_000),
                    ],
                    |i| i as i128 * 1_234_567,
                )
            }))
            .with_precision_and_scale(38, 10)
            .unwrap(),
        )),
        col(Arc::new(StringArray::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some("".to_string()),
                    Some("Zoë ✓ 日本語 🚚".into()),
                    Some("comma, \"quote\"\nnew line\ttab".into()),
                    None,
                    Some(" leading and trailing ".into()),
                    Some("NULL".into()),
                ],
                |i| format!("row {i}"),
            )
        })))),
        col(Arc::new(BinaryArray::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(vec![]),
                    Some(vec![0u8, 255, 1, 0]),
                    Some(b"text".to_vec()),
                    None,
                    Some(vec![0]),
                    Some(vec![7; 40]),
                ],
                |i| (i as u32).to_le_bytes().to_vec(),
            )
        })))),
        // 0001-01-01, 9999-12-31, 1970-01-01, NULL, 1900-02-28, 2000-02-29
        col(Arc::new(Date32Array::from_iter(rows.clone().map(|i| {
            pick(
                i,
                [
                    Some(-719_162),
                    Some(2_932_896),
                    Some(0),
                    None,
                    Some(-25_510),
                    Some(11_016),
                ],
                |i| 18_000 + (i % 5000) as i32,
            )
        })))),
        col(Arc::new(Time64MicrosecondArray::from_iter(
            rows.clone().map(|i| {
                pick(
                    i,
                    [
                        Some(0),
                        Some(86_399_999_999),
                        Some(43_200_000_000),
                        None,
                        Some(1),
                        Some(3_600_000_000),
                    ],
                    |i| (i as i64 * 1_000_013) % 86_400_000_000,
                )
            }),
        ))),
        col(Arc::new(TimestampMicrosecondArray::from_iter(
            rows.clone().map(|i| {
                // 1900-01-01, 2200-12-31 23:59:59.999999, the epoch, NULL, 1969-12-31 23:59:59, now-ish
                pick(
                    i,
                    [
                        Some(-2_208_988_800_000_000),
                        Some(7_289_567_999_999_999),
                        Some(0),
                        None,
                        Some(-1_000_000),
                        Some(1_795_000_000_123_456),
                    ],
                    |i| 1_700_000_000_000_000 + i as i64 * 1_000_001,
                )
            }),
        ))),
        col(Arc::new(
            TimestampMicrosecondArray::from_iter(rows.clone().map(|i| {
                pick(
                    i,
                    [
                        Some(-2_208_988_800_000_000),
                        Some(7_289_567_999_999_999),
                        Some(0),
                        None,
                        Some(-1_000_000),
                        Some(1_795_000_000_123_456),
                    ],
                    |i| 1_700_000_000_000_000 - i as i64 * 999_999,
                )
            }))
            .with_timezone("UTC"),
        )),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

pub fn path(name: &str) -> Path {
    Path {
        parts: mover_client::names::parse(name).unwrap(),
    }
}

pub async fn put(client: &mut Client, target: &str, batch: &RecordBatch) -> u64 {
    let write = Write {
        path: Some(path(target)),
        existing_table: ExistingTable::Fail as i32,
        ..Default::default()
    };
    // Several batches, so multi-batch paths are exercised.
    let chunks: Vec<Result<RecordBatch, FlightError>> = (0..batch.num_rows().div_ceil(7000).max(1))
        .map(|k| Ok(batch.slice(k * 7000, 7000.min(batch.num_rows() - k * 7000))))
        .collect();
    client
        .put(&write, batch.schema(), futures::stream::iter(chunks))
        .await
        .unwrap()
        .rows_committed
}

pub async fn get(client: &mut Client, name: &str) -> RecordBatch {
    let read = Read {
        what: Some(What::Path(path(name))),
        file: None,
        limit: 0,
        columns: vec![],
        ..Default::default()
    };
    let mut stream = client.read(&read).await.unwrap();
    let mut batches = Vec::new();
    while let Some(b) = stream.try_next().await.unwrap() {
        batches.push(b);
    }
    let schema = stream.schema().clone();
    concat_batches(&schema, &batches).unwrap()
}

/// Value-by-value comparison that names the column and the first differing row.
pub fn assert_same(label: &str, expected: &RecordBatch, got: &RecordBatch) {
    assert_eq!(got.num_rows(), expected.num_rows(), "{label}: row count");
    assert_eq!(
        got.num_columns(),
        expected.num_columns(),
        "{label}: column count"
    );
    for (i, field) in expected.schema().fields().iter().enumerate() {
        let (want, have) = (expected.column(i), got.column(i));
        assert_eq!(
            have.data_type(),
            want.data_type(),
            "{label}: type of {}",
            field.name()
        );
        if want.to_data() != have.to_data() {
            let fmt = |a: &ArrayRef, r: usize| {
                ArrayFormatter::try_new(a.as_ref(), &Default::default())
                    .unwrap()
                    .value(r)
                    .to_string()
            };
            let row = (0..want.len())
                .find(|&r| want.is_null(r) != have.is_null(r) || fmt(want, r) != fmt(have, r))
                .unwrap_or(0);
            panic!(
                "{label}: column {} row {row}: expected {:?}, got {:?}",
                field.name(),
                fmt(want, row),
                fmt(have, row)
            );
        }
    }
}

/// Exact targets: the schema and every value come back unchanged.
/// `keeps_nullability`: the target declares NOT NULL (a table does; a Parquet file written by
/// a reader of other files may not).
pub async fn exact_round_trip(
    client: &mut Client,
    n: usize,
    target: &str,
    keeps_nullability: bool,
) {
    let original = table(n);
    assert_eq!(put(client, target, &original).await, n as u64, "{target}");
    let back = get(client, target).await;
    for (want, have) in original
        .schema()
        .fields()
        .iter()
        .zip(back.schema().fields())
    {
        assert_eq!(want.name(), have.name(), "{target}");
        if keeps_nullability {
            assert_eq!(
                want.is_nullable(),
                have.is_nullable(),
                "{target}: nullability of {}",
                want.name()
            );
        }
    }
    assert_same(target, &original, &back);
}

/// Text targets: what the format can hold comes back equal after a cast to the original type.
pub async fn text_round_trip(client: &mut Client, n: usize, target: &str) {
    let full = table(n);
    // Binary columns are refused, by name.
    let write = Write {
        path: Some(path(target)),
        existing_table: ExistingTable::Fail as i32,
        ..Default::default()
    };
    let err = client
        .put(
            &write,
            full.schema(),
            futures::stream::iter(vec![Ok(full.clone())]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"bytes\""), "{target}: {err}");

    let keep: Vec<usize> = (0..full.num_columns())
        .filter(|&i| full.schema().field(i).name() != "bytes")
        .collect();
    let original = full.project(&keep).unwrap();
    assert_eq!(put(client, target, &original).await, n as u64, "{target}");
    let back = get(client, target).await;
    if n == 0 {
        assert_eq!(back.num_rows(), 0);
        return;
    }
    let csv = target.ends_with(".csv");
    let mut want_cols = Vec::new();
    let mut have_cols = Vec::new();
    for (i, field) in original.schema().fields().iter().enumerate() {
        let mut want = original.column(i).clone();
        let mut to = field.data_type().clone();
        if csv && field.name() == "text" {
            // CSV writes NULL and "" alike.
            let s = want.as_any().downcast_ref::<StringArray>().unwrap();
            want = Arc::new(StringArray::from_iter(
                s.iter().map(|v| v.filter(|v| !v.is_empty())),
            ));
        }
        if matches!(to, DataType::Decimal128(..)) {
            to = DataType::Float64;
            want = cast(&want, &to).unwrap();
        }
        let have = back
            .column_by_name(field.name())
            .unwrap_or_else(|| panic!("{target}: no column {}", field.name()));
        let have =
            cast(have, &to).unwrap_or_else(|e| panic!("{target}: column {}: {e}", field.name()));
        want_cols.push(want);
        have_cols.push(have);
    }
    let fields: Vec<Field> = want_cols
        .iter()
        .zip(original.schema().fields())
        .map(|(c, f)| Field::new(f.name(), c.data_type().clone(), true))
        .collect();
    let s = Arc::new(Schema::new(fields));
    let want = RecordBatch::try_new(s.clone(), want_cols).unwrap();
    let have = RecordBatch::try_new(s, have_cols).unwrap();
    assert_same(target, &want, &have);
}

/// Postgres has no unsigned or one-byte integers: these widen, by the documented table, and
/// every value must come back equal once cast to its original type.
pub async fn widened_round_trip(client: &mut Client, n: usize, target: &str) {
    let original = table(n);
    assert_eq!(put(client, target, &original).await, n as u64, "{target}");
    let back = get(client, target).await;
    let widened = |t: &DataType| match t {
        DataType::Int8 | DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::Decimal128(20, 0),
        other => other.clone(),
    };
    let mut cols = Vec::new();
    for (i, f) in original.schema().fields().iter().enumerate() {
        let have = back.column(i);
        assert_eq!(
            have.data_type(),
            &widened(f.data_type()),
            "{target}: type of {}",
            f.name()
        );
        assert_eq!(
            back.schema().field(i).is_nullable(),
            f.is_nullable(),
            "{target}: nullability of {}",
            f.name()
        );
        cols.push(cast(have, f.data_type()).unwrap());
    }
    let narrowed = RecordBatch::try_new(original.schema(), cols).unwrap();
    assert_same(target, &original, &narrowed);
}

/// MySQL has no time of day (TIME spans ±838 hours: Duration) and keeps zoned timestamps as
/// UTC DATETIMEs (naive): these come back as those types, holding the same numbers.
pub async fn mysql_round_trip(client: &mut Client, n: usize, target: &str) {
    let original = table(n);
    assert_eq!(put(client, target, &original).await, n as u64, "{target}");
    let back = get(client, target).await;
    let mut cols = Vec::new();
    for (i, f) in original.schema().fields().iter().enumerate() {
        let have = back.column(i);
        let expected = match f.data_type() {
            DataType::Time64(TimeUnit::Microsecond) => DataType::Duration(TimeUnit::Microsecond),
            DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, None),
            other => other.clone(),
        };
        assert_eq!(
            have.data_type(),
            &expected,
            "{target}: type of {}",
            f.name()
        );
        assert_eq!(
            back.schema().field(i).is_nullable(),
            f.is_nullable(),
            "{target}: nullability of {}",
            f.name()
        );
        // Same numbers under the other type.
        let data = have
            .to_data()
            .into_builder()
            .data_type(f.data_type().clone());
        cols.push(arrow::array::make_array(data.build().unwrap()));
    }
    let narrowed = RecordBatch::try_new(original.schema(), cols).unwrap();
    assert_same(target, &original, &narrowed);
}
