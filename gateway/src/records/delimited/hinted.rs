//! Arrow batches to delimited text by the hints: the writer that [`super::typed`] reads back.
//!
//! - NULL is an empty unquoted field. The empty string is `""` where the hints quote; where
//!   they never quote (bluelabs, vertica, dumb) it cannot be told from NULL and is refused by
//!   row and column rather than silently turned into NULL.
//! - Quoting: `all` quotes every non-NULL field, `minimal` the fields that need it (a
//!   delimiter, the quote, a terminator character, or the empty string), `nonnumeric` every
//!   field that is not a number. Inside quotes the quote is doubled (`doublequote`) or escaped.
//! - Unquoted, the escape (bluelabs: `\`) precedes the delimiter, a terminator character, the
//!   quote and itself. A value that needs protecting and has neither quotes nor an escape
//!   available is refused by row and column.
//! - Dates and times are written by the hints' formats ([`super::datetime`]); a value a
//!   format cannot show exactly (seconds in `MM/DD/YY HH24:MI`) is refused.
//! - Booleans are `True`/`False`, as pandas (and so Records Mover) writes them.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveTime};

use super::encoding::TextEncoder;
use super::hints::{Hints, Quoting};
use crate::error::{CellError, Error, Result};
use crate::records::Encoder;

pub struct HintedEncoder {
    hints: Hints,
    schema: SchemaRef,
    header_pending: bool,
    text: TextEncoder,
    rows: u64,
}

impl HintedEncoder {
    pub fn new(hints: Hints, schema: SchemaRef) -> Result<Self> {
        for f in schema.fields() {
            if !writable(f.data_type()) {
                return Err(Error::unsupported(format!(
                    "column {:?}: {} is not written as delimited text",
                    f.name(),
                    f.data_type()
                )));
            }
        }
        Ok(Self {
            header_pending: hints.header_row,
            text: TextEncoder::new(hints.encoding),
            hints,
            schema,
            rows: 0,
        })
    }

    /// One field, protected as the hints say.
    fn field(
        &self,
        text: &str,
        numeric: bool,
        out: &mut String,
    ) -> std::result::Result<(), String> {
        let h = &self.hints;
        if let Some(c) = self.text.unencodable(text) {
            return Err(format!(
                "holds {c:?}, which {} cannot encode",
                h.encoding.name()
            ));
        }
        let special = |c: char| {
            c == h.field_delimiter
                || h.record_terminator.contains(c)
                || Some(c) == h.escape
                || (h.quoting.is_some() && c == h.quotechar)
        };
        let quote = match h.quoting {
            None => false,
            Some(Quoting::All) => true,
            Some(Quoting::Nonnumeric) => !numeric,
            Some(Quoting::Minimal) => text.is_empty() || text.chars().any(special),
        };
        if quote {
            out.push(h.quotechar);
            for c in text.chars() {
                if c == h.quotechar {
                    match (h.doublequote, h.escape) {
                        (true, _) => out.push(h.quotechar),
                        (false, Some(e)) => out.push(e),
                        (false, None) => {
                            return Err("holds the quote character, and the hints neither double nor escape it".into());
                        }
                    }
                } else if Some(c) == h.escape {
                    out.push(c);
                }
                out.push(c);
            }
            out.push(h.quotechar);
            return Ok(());
        }
        if text.is_empty() {
            return Err("is the empty string, which unquoted reads back as NULL; use a variant that quotes (csv, bigquery)".into());
        }
        for c in text.chars() {
            if special(c) {
                match h.escape {
                    Some(e) => out.push(e),
                    None => {
                        return Err(format!(
                            "holds {c:?}, and the hints neither quote nor escape"
                        ));
                    }
                }
            }
            out.push(c);
        }
        Ok(())
    }
}

fn writable(t: &DataType) -> bool {
    use DataType::*;
    matches!(
        t,
        Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Float32
            | Float64
            | Decimal128(..)
            | Decimal256(..)
            | Utf8
            | LargeUtf8
            | Date32
            | Time64(TimeUnit::Microsecond)
            | Timestamp(TimeUnit::Microsecond, _)
    )
}

/// The text of one non-NULL cell, and whether it is a number.
fn text(array: &dyn Array, row: usize, h: &Hints) -> std::result::Result<(String, bool), String> {
    use arrow::datatypes::*;
    let number = |s: String| Ok((s, true));
    match array.data_type() {
        DataType::Boolean => Ok((
            if array.as_boolean().value(row) {
                "True"
            } else {
                "False"
            }
            .into(),
            false,
        )),
        DataType::Int8 => number(array.as_primitive::<Int8Type>().value(row).to_string()),
        DataType::Int16 => number(array.as_primitive::<Int16Type>().value(row).to_string()),
        DataType::Int32 => number(array.as_primitive::<Int32Type>().value(row).to_string()),
        DataType::Int64 => number(array.as_primitive::<Int64Type>().value(row).to_string()),
        DataType::UInt8 => number(array.as_primitive::<UInt8Type>().value(row).to_string()),
        DataType::UInt16 => number(array.as_primitive::<UInt16Type>().value(row).to_string()),
        DataType::UInt32 => number(array.as_primitive::<UInt32Type>().value(row).to_string()),
        DataType::UInt64 => number(array.as_primitive::<UInt64Type>().value(row).to_string()),
        DataType::Float32 => number(array.as_primitive::<Float32Type>().value(row).to_string()),
        DataType::Float64 => number(array.as_primitive::<Float64Type>().value(row).to_string()),
        DataType::Decimal128(..) => {
            number(array.as_primitive::<Decimal128Type>().value_as_string(row))
        }
        DataType::Decimal256(..) => {
            number(array.as_primitive::<Decimal256Type>().value_as_string(row))
        }
        DataType::Utf8 => Ok((array.as_string::<i32>().value(row).to_string(), false)),
        DataType::LargeUtf8 => Ok((array.as_string::<i64>().value(row).to_string(), false)),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let date = NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                .ok_or("a date out of range")?;
            let f = h.dateformat;
            f.write(date)
                .map(|s| (s, false))
                .ok_or_else(|| format!("{date} cannot be written as {}", f.name()))
        }
        DataType::Time64(_) => {
            let micros = array.as_primitive::<Time64MicrosecondType>().value(row);
            let t = NaiveTime::from_num_seconds_from_midnight_opt(
                (micros / 1_000_000) as u32,
                ((micros % 1_000_000) * 1000) as u32,
            )
            .ok_or("a time out of range")?;
            let f = h.timeonlyformat;
            f.write(t)
                .map(|s| (s, false))
                .ok_or_else(|| format!("{t} cannot be written as {}", f.name()))
        }
        DataType::Timestamp(_, zone) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            let t = DateTime::from_timestamp_micros(micros).ok_or("a timestamp out of range")?;
            match zone {
                None => {
                    let f = h.datetimeformat;
                    f.write(t.naive_utc()).ok_or_else(|| {
                        format!("{} cannot be written as {}", t.naive_utc(), f.name())
                    })
                }
                Some(_) => {
                    let f = h.datetimeformattz;
                    f.write(t)
                        .ok_or_else(|| format!("{t} cannot be written as {}", f.name()))
                }
            }
            .map(|s| (s, false))
        }
        other => Err(format!("{other} is not written as delimited text")),
    }
}

impl Encoder for HintedEncoder {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut out = String::new();
        let h = self.hints.clone();
        if std::mem::take(&mut self.header_pending) {
            for (i, f) in self.schema.fields().iter().enumerate() {
                if i > 0 {
                    out.push(h.field_delimiter);
                }
                self.field(f.name(), false, &mut out)
                    .map_err(|why| Error::invalid(format!("column name {:?} {why}", f.name())))?;
            }
            out.push_str(&h.record_terminator);
        }
        for row in 0..batch.num_rows() {
            for (i, column) in batch.columns().iter().enumerate() {
                if i > 0 {
                    out.push(h.field_delimiter);
                }
                if column.is_null(row) {
                    continue;
                }
                let located = |why: String| {
                    Error::from(CellError::new(
                        self.rows + row as u64 + 1,
                        self.schema.field(i).name(),
                        why,
                    ))
                };
                let (value, numeric) = text(column.as_ref(), row, &h).map_err(located)?;
                self.field(&value, numeric, &mut out)
                    .map_err(|why| located(format!("{value:?} {why}")))?;
            }
            out.push_str(&h.record_terminator);
        }
        self.rows += batch.num_rows() as u64;
        Ok(self.text.encode(&out))
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        // A file of no rows still has its header.
        let mut this = *self;
        let empty = RecordBatch::new_empty(this.schema.clone());
        this.encode(&empty)
    }
}

#[cfg(test)]
mod tests {
    use super::super::hints::Variant;
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Schema};
    use bytes::Bytes;
    use futures::{StreamExt, TryStreamExt};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("text", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new("day", DataType::Date32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("ok", DataType::Boolean, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![
                    Some("comma, \"quote\" back\\slash\nnew line"),
                    None,
                    Some("Zoë ✓"),
                ])),
                Arc::new(
                    Decimal128Array::from(vec![Some(1250), None, Some(-1)])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
                Arc::new(Date32Array::from(vec![Some(20_000), None, Some(0)])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_795_867_200_000_000),
                        None,
                        Some(0),
                    ])
                    .with_timezone("UTC"),
                ),
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ],
        )
        .unwrap()
    }

    async fn round_trip(hints: Hints) -> RecordBatch {
        let original = batch();
        let mut enc: Box<dyn Encoder> =
            Box::new(HintedEncoder::new(hints.clone(), original.schema()).unwrap());
        let mut bytes = enc.encode(&original).unwrap();
        bytes.extend(enc.finish().unwrap());
        let stream = futures::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed();
        let bound = crate::records::lines::Bound::none();
        let batches: Vec<RecordBatch> =
            super::super::typed::decode(stream, original.schema(), hints, 100, "t".into(), bound)
                .unwrap()
                .try_collect()
                .await
                .unwrap();
        arrow::compute::concat_batches(&original.schema(), &batches).unwrap()
    }

    #[tokio::test]
    async fn every_variant_reads_back_what_it_wrote() {
        for variant in [Variant::Bluelabs, Variant::Csv, Variant::Bigquery] {
            let mut hints = Hints::of(variant);
            // The csv variant writes minutes only: keep these values on whole minutes there.
            hints.datetimeformattz = super::super::datetime::DateTimeTzFormat::YyyyMmDdHhMiSsOf;
            hints.dateformat = super::super::datetime::DateFormat::YyyyMmDd;
            assert_eq!(round_trip(hints).await, batch(), "{variant:?}");
        }
    }

    #[test]
    fn what_a_format_cannot_hold_is_refused_by_row_and_column() {
        let b = batch();
        // Vertica neither quotes nor escapes: its delimiter inside a value cannot be written.
        let mut v = Hints::of(Variant::Vertica);
        v.field_delimiter = ',';
        let e = HintedEncoder::new(v, b.schema())
            .unwrap()
            .encode(&b)
            .unwrap_err();
        assert!(e.message.contains("row 1, column \"text\""), "{e}");
        // Its own controls leave newlines alone.
        assert!(
            HintedEncoder::new(Hints::of(Variant::Vertica), b.schema())
                .unwrap()
                .encode(&b)
                .is_ok()
        );
        // An empty string in a variant that never quotes.
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let empty =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec![""]))])
                .unwrap();
        let e = HintedEncoder::new(Hints::of(Variant::Bluelabs), schema)
            .unwrap()
            .encode(&empty)
            .unwrap_err();
        assert!(e.message.contains("empty string"), "{e}");
        // Seconds the csv variant's datetimes cannot show.
        let schema = Arc::new(Schema::new(vec![Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )]));
        let at = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(TimestampMicrosecondArray::from(vec![1_000_000]))],
        )
        .unwrap();
        let e = HintedEncoder::new(Hints::of(Variant::Csv), schema)
            .unwrap()
            .encode(&at)
            .unwrap_err();
        assert!(e.message.contains("MM/DD/YY HH24:MI"), "{e}");
    }
}
