//! Delimited text to typed Arrow batches, by the hints: the splitter of [`super::split`]
//! finds the fields, and each field is read as its column's type with the hints' date and
//! time formats.
//!
//! NULL and the empty string: an unquoted empty field is NULL; a quoted empty field (`""`,
//! where the variant quotes) is the empty string. Records Mover (through pandas) writes NULL
//! as an empty field in every variant, so its files read back the same way.
//!
//! Text in any encoding the hints name is decoded on the way in ([`super::encoding`]).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, PrimitiveArray, PrimitiveBuilder, RecordBatch, StringArray,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Decimal256Type, Float16Type,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, SchemaRef,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use bytes::Bytes;
use chrono::{Datelike, Timelike};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::encoding::TextDecoder;
use super::hints::Hints;
use super::split::{Dialect, Record, Splitter};
use crate::error::{Error, Result};
use crate::records::lines::Bound;
use crate::transfer::BatchStream;

/// Batches of `schema` from delimited `bytes` (already decompressed) shaped by `hints`.
/// `label` names the file in errors.
pub fn decode(
    bytes: BoxStream<'static, Result<Bytes>>,
    schema: SchemaRef,
    hints: Hints,
    batch_rows: usize,
    label: String,
    bound: Bound,
) -> Result<BatchStream> {
    let splitter = Splitter::new(Dialect::from_hints(&hints)?).bounded(bound);
    let state = State {
        bytes,
        text: TextDecoder::new(hints.encoding),
        splitter: Some(splitter),
        ready: Vec::new(),
        header_skipped: !hints.header_row,
        schema,
        hints,
        batch_rows: batch_rows.max(1),
        label,
        done: false,
    };
    Ok(futures::stream::unfold(state, |mut s| async move {
        match s.next_batch().await {
            Ok(Some(batch)) => Some((Ok(batch), s)),
            Ok(None) => None,
            Err(e) => {
                s.done = true;
                Some((Err(e), s))
            }
        }
    })
    .boxed())
}

struct State {
    bytes: BoxStream<'static, Result<Bytes>>,
    text: TextDecoder,
    splitter: Option<Splitter>,
    ready: Vec<Record>,
    header_skipped: bool,
    schema: SchemaRef,
    hints: Hints,
    batch_rows: usize,
    label: String,
    done: bool,
}

impl State {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        while self.ready.len() < self.batch_rows {
            let Some(splitter) = self.splitter.as_mut() else {
                break;
            };
            let chunk = self.bytes.next().await.transpose()?;
            let last = chunk.is_none();
            let text = self.text.decode(chunk.as_deref().unwrap_or_default(), last);
            let (text, malformed) = match text {
                Ok(text) => (text, None),
                Err(bad) => (bad.decoded, Some(bad.offset)),
            };
            splitter
                .push(&text, &mut self.ready)
                .map_err(|e| e.within(&self.label))?;
            if let Some(offset) = malformed {
                let (line, field) = splitter.position();
                return Err(Error::invalid(format!(
                    "{}: line {line}, field {field}: bytes that are not {} (the declared encoding) at byte {offset} of the text",
                    self.label,
                    self.hints.encoding.name()
                )));
            }
            if last {
                let splitter = self.splitter.take().expect("present");
                splitter
                    .finish(&mut self.ready)
                    .map_err(|e| e.within(&self.label))?;
            }
            if !self.header_skipped && !self.ready.is_empty() {
                self.ready.remove(0);
                self.header_skipped = true;
            }
        }
        if self.ready.is_empty() {
            self.done = true;
            return Ok(None);
        }
        let take = self.ready.len().min(self.batch_rows);
        let records: Vec<Record> = self.ready.drain(..take).collect();
        batch(&self.schema, &self.hints, &records)
            .map(Some)
            .map_err(|e| e.within(&self.label))
    }
}

/// One batch from whole records, column by column.
pub fn batch(schema: &SchemaRef, hints: &Hints, records: &[Record]) -> Result<RecordBatch> {
    let width = schema.fields().len();
    if let Some(r) = records.iter().find(|r| r.len() != width) {
        let n = r.len();
        return Err(Error::invalid(if n > width {
            format!(
                "line {}, field {}: {n} fields, but the schema has {width} columns",
                r.line,
                width + 1
            )
        } else {
            format!(
                "line {}, column {:?}: missing ({n} fields, but the schema has {width} columns)",
                r.line,
                schema.field(n).name()
            )
        }));
    }
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            column(field.data_type(), hints, records, i).map_err(|(row, why)| {
                Error::invalid(format!(
                    "line {}, column {:?}: {why}",
                    records[row].line,
                    field.name()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

type Failure = (usize, String);

/// The cells of column `i`: None for NULL (an unquoted empty field).
fn cells(records: &[Record], i: usize) -> impl Iterator<Item = Option<&str>> {
    records.iter().map(move |r| {
        let text = r.field(i);
        (!text.is_empty() || r.quoted(i)).then_some(text)
    })
}

/// Column `i` of `records` as an array of type `t`, each value read by the hints' formats; the
/// row (within `records`) and why of the first value that does not read.
fn column(
    t: &DataType,
    hints: &Hints,
    records: &[Record],
    i: usize,
) -> std::result::Result<ArrayRef, Failure> {
    let values = cells(records, i);
    let not = |what: &str, value: &str| format!("{value:?} is not {what}");
    Ok(match t {
        DataType::Utf8 => Arc::new(values.collect::<StringArray>()),
        DataType::Boolean => booleans(values)?,
        DataType::Int8 => parsed::<Int8Type>(values)?,
        DataType::Int16 => parsed::<Int16Type>(values)?,
        DataType::Int32 => parsed::<Int32Type>(values)?,
        DataType::Int64 => parsed::<Int64Type>(values)?,
        DataType::UInt8 => parsed::<UInt8Type>(values)?,
        DataType::UInt16 => parsed::<UInt16Type>(values)?,
        DataType::UInt32 => parsed::<UInt32Type>(values)?,
        DataType::UInt64 => parsed::<UInt64Type>(values)?,
        DataType::Float16 => parsed::<Float16Type>(values)?,
        DataType::Float32 => parsed::<Float32Type>(values)?,
        DataType::Float64 => parsed::<Float64Type>(values)?,
        DataType::Decimal128(p, s) => {
            let read = |v: &str| {
                parse_decimal::<Decimal128Type>(v, *p, *s)
                    .or_else(|_| parse_decimal::<Decimal128Type>(v.trim(), *p, *s))
                    .map_err(|e| format!("{v:?}: {e}"))
            };
            Arc::new(each::<Decimal128Type>(values, read)?.with_data_type(t.clone()))
        }
        DataType::Decimal256(p, s) => {
            let read = |v: &str| {
                parse_decimal::<Decimal256Type>(v.trim(), *p, *s).map_err(|e| format!("{v:?}: {e}"))
            };
            Arc::new(each::<Decimal256Type>(values, read)?.with_data_type(t.clone()))
        }
        DataType::Date32 => {
            let f = hints.dateformat;
            let read = |v: &str| {
                f.read(v)
                    .map(|d| d.num_days_from_ce() - 719_163)
                    .ok_or_else(|| not(&format!("a date in {}", f.name()), v))
            };
            Arc::new(each::<Date32Type>(values, read)?)
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let f = hints.timeonlyformat;
            let read = |v: &str| {
                let t = f
                    .read(v)
                    .ok_or_else(|| not(&format!("a time in {}", f.name()), v))?;
                Ok(i64::from(t.num_seconds_from_midnight()) * 1_000_000
                    + i64::from(t.nanosecond() / 1000))
            };
            Arc::new(each::<Time64MicrosecondType>(values, read)?)
        }
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            let f = hints.datetimeformat;
            let read = |v: &str| {
                f.read(v)
                    .map(|d| d.and_utc().timestamp_micros())
                    .ok_or_else(|| not(&format!("a datetime in {}", f.name()), v))
            };
            Arc::new(each::<TimestampMicrosecondType>(values, read)?.with_data_type(t.clone()))
        }
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {
            let f = hints.datetimeformattz;
            let read = |v: &str| {
                f.read(v)
                    .map(|d| d.timestamp_micros())
                    .ok_or_else(|| not(&format!("a datetime in {}", f.name()), v))
            };
            Arc::new(each::<TimestampMicrosecondType>(values, read)?.with_data_type(t.clone()))
        }
        other => {
            return Err((
                0,
                format!("{other} columns are not read from delimited text"),
            ));
        }
    })
}

/// A column of `T` whose every value `read` reads; the row and why of the first it cannot.
fn each<'a, T: ArrowPrimitiveType>(
    values: impl Iterator<Item = Option<&'a str>>,
    read: impl Fn(&str) -> std::result::Result<T::Native, String>,
) -> std::result::Result<PrimitiveArray<T>, Failure> {
    let mut b = PrimitiveBuilder::<T>::new();
    for (row, v) in values.enumerate() {
        match v {
            None => b.append_null(),
            Some(v) => b.append_value(read(v).map_err(|why| (row, why))?),
        }
    }
    Ok(b.finish())
}

/// Booleans in the spellings Records Mover writes and reads, in any case.
fn booleans<'a>(
    values: impl Iterator<Item = Option<&'a str>>,
) -> std::result::Result<ArrayRef, Failure> {
    let mut b = BooleanBuilder::new();
    for (row, v) in values.enumerate() {
        let parsed = match v.map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("true" | "t" | "1" | "yes" | "y") => Some(true),
            Some("false" | "f" | "0" | "no" | "n") => Some(false),
            Some(_) => {
                let v = v.unwrap_or_default();
                return Err((row, format!("{v:?} is not a boolean")));
            }
        };
        b.append_option(parsed);
    }
    Ok(Arc::new(b.finish()))
}

/// Numbers by their `FromStr`; surrounding blanks are allowed (trimmed only when parsing
/// fails, which keeps the common case one pass).
fn parsed<'a, T>(
    values: impl Iterator<Item = Option<&'a str>>,
) -> std::result::Result<ArrayRef, Failure>
where
    T: ArrowPrimitiveType,
    T::Native: std::str::FromStr,
{
    let read = |v: &str| {
        v.parse::<T::Native>()
            .or_else(|_| v.trim().parse::<T::Native>())
            .map_err(|_| format!("{v:?} is not {}", T::DATA_TYPE))
    };
    Ok(Arc::new(each::<T>(values, read)?))
}

#[cfg(test)]
mod tests {
    use super::super::hints::Variant;
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Field, Schema};
    use futures::TryStreamExt;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new("day", DataType::Date32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("ok", DataType::Boolean, true),
        ]))
    }

    async fn read(text: &'static [u8], hints: Hints, chunk: usize) -> Result<Vec<RecordBatch>> {
        let chunks: Vec<Result<Bytes>> = text
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        decode(
            futures::stream::iter(chunks).boxed(),
            schema(),
            hints,
            2,
            "f.csv".into(),
            Bound::none(),
        )?
        .try_collect()
        .await
    }

    #[tokio::test]
    async fn a_csv_variant_file_reads_typed_with_its_formats() {
        let text = "id,name,amount,day,at,ok\n\
                    1,\"Zoë, \"\"the\"\" ✓\",12.50,11/28/26,11/28/26 17:30,True\n\
                    2,,,,,\n\
                    3,\"\",-0.01,01/01/70,01/01/70 00:00,false\n";
        for chunk in [1, 5, 4096] {
            let batches = read(text.as_bytes(), Hints::of(Variant::Csv), chunk)
                .await
                .unwrap();
            let all = arrow::compute::concat_batches(&schema(), &batches).unwrap();
            assert_eq!(all.num_rows(), 3, "chunks of {chunk}");
            let names = all.column(1).as_string::<i32>();
            assert_eq!(names.value(0), "Zoë, \"the\" ✓");
            // Unquoted empty is NULL; quoted empty is "".
            assert!(names.is_null(1));
            assert_eq!((names.is_null(2), names.value(2)), (false, ""));
            let amounts = all.column(2).as_primitive::<Decimal128Type>();
            assert_eq!((amounts.value(0), amounts.value(2)), (1250, -1));
            let days = all.column(3).as_primitive::<arrow::datatypes::Date32Type>();
            assert_eq!(days.value(2), 0);
            let at = all
                .column(4)
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            assert_eq!(at.value(2), 0);
            let ok = all.column(5).as_boolean();
            assert!(ok.value(0) && !ok.value(2) && ok.is_null(1));
        }
    }

    #[tokio::test]
    async fn bluelabs_escapes_and_errors_name_line_and_column() {
        let text =
            "7,comma\\, tab\\\tand newline\\\nhere,1.5,2026-11-28,2026-11-28 17:30:00+05:30,t\n";
        let batches = read(text.as_bytes(), Hints::of(Variant::Bluelabs), 3)
            .await
            .unwrap();
        let names = batches[0].column(1).as_string::<i32>();
        assert_eq!(names.value(0), "comma, tab\tand newline\nhere");
        let at = batches[0]
            .column(4)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        // 17:30 at +05:30 is noon UTC.
        assert_eq!(at.value(0), 1_795_867_200_000_000);

        let bad = read(b"1,a,1.0,2026-13-01,,\n", Hints::of(Variant::Bluelabs), 64)
            .await
            .unwrap_err();
        assert!(
            bad.message.starts_with("f.csv: line 1, column \"day\"")
                && bad.message.contains("YYYY-MM-DD"),
            "{bad}"
        );
        let ragged = read(b"1,a\n", Hints::of(Variant::Bluelabs), 64)
            .await
            .unwrap_err();
        assert!(
            ragged
                .message
                .contains("line 1, column \"amount\": missing"),
            "{ragged}"
        );
        let latin = read(b"1,caf\xe9,,,,\n", Hints::of(Variant::Bluelabs), 64)
            .await
            .unwrap_err();
        assert!(
            latin
                .message
                .contains("line 1, field 2: bytes that are not UTF8"),
            "{latin}"
        );
        let mut utf16 = Hints::of(Variant::Bluelabs);
        utf16.encoding = super::super::hints::Encoding::Utf16Le;
        let cut = read(b"1\0,", utf16, 1).await.unwrap_err();
        assert!(cut.message.contains("not UTF16LE"), "{cut}");
    }
}
