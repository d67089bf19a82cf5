//! The records format's conformance suite, table-driven.
//!
//! - Every combination of the structural hints (delimiter, terminator, quoting, quote
//!   character, doublequote, escape, header row) writes a table of awkward values and reads it
//!   back value for value, in chunks that cut characters and records anywhere; a value the
//!   hints cannot protect is refused by row and column instead, and only then.
//! - Every date and time format writes and reads its values exactly, or refuses what it cannot
//!   show; zoned formats read every offset form.
//! - Every variant under every encoding and compression is written, sniffed, and read back
//!   with the sniffed hints to the same values; plus TSV, DOS and old-Mac newlines, one column,
//!   and zero bytes.
//! - Bad input is an error naming the file, the line and the column, and a move of it leaves
//!   the target as it was.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    RecordBatch, StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use futures::{StreamExt, TryStreamExt};
use mover_gateway::records::compression::{self, Compressed};
use mover_gateway::records::datetime::{DateFormat, DateTimeFormat, DateTimeTzFormat, TimeFormat};
use mover_gateway::records::hinted::HintedEncoder;
use mover_gateway::records::hints::{Compression, Encoding, Hints, Quoting, Variant};
use mover_gateway::records::lines::Bound;
use mover_gateway::records::{Encoder, sniff, typed};
use mover_tests::{Gateway, fails, sqlite_rows, workdir};

/// Text that tries every way of being mis-split.
const TEXTS: &[Option<&str>] = &[
    Some("plain"),
    Some("comma, here"),
    Some("tab\there"),
    Some("pipe|here"),
    Some("ctl \u{1} and \u{2} here"),
    Some("thorn þ and pilcrow ¶"),
    Some("double \" quote"),
    Some("single ' quote"),
    Some("\""),
    Some("\"\""),
    Some("'"),
    Some("new\nline"),
    Some("cr\rhere"),
    Some("crlf\r\nhere"),
    Some("\n"),
    Some("back\\slash"),
    Some("\\"),
    Some("trailing\\"),
    Some("\\,"),
    Some(""),
    None,
    Some("  spaces  "),
    Some("unicode 日本語 😀"),
    Some("NULL"),
    Some("\\N"),
];

const DELIMITERS: [char; 5] = [',', '\t', '|', '\u{1}', 'þ'];
const TERMINATORS: [&str; 5] = ["\n", "\r\n", "\r", "\u{2}", "¶"];
const QUOTINGS: [Option<Quoting>; 4] = [
    None,
    Some(Quoting::All),
    Some(Quoting::Minimal),
    Some(Quoting::Nonnumeric),
];

/// The dumb variant uncompressed: the base each case changes one thing of.
fn plain() -> Hints {
    let mut h = Hints::of(Variant::Dumb);
    h.compression = None;
    h
}

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

fn datetime(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn days(s: &str) -> i32 {
    (NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap() - NaiveDate::default()).num_days() as i32
}

/// A table of `texts` with a typed column of every kind beside them (values that every
/// variant's formats can show: minutes only, years 1970-2069, days past the 12th).
fn table(texts: &[Option<&str>]) -> RecordBatch {
    let n = texts.len();
    let cycle = |i: usize, of: &[&str]| of[i % of.len()].to_string();
    let ats = [
        "2026-11-28 17:30:00",
        "1999-12-31 23:59:00",
        "1970-01-13 00:00:00",
    ];
    let dates = ["2026-11-28", "1999-12-31", "2069-12-31", "1970-01-13"];
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "id",
            Arc::new(Int64Array::from_iter_values(
                (0..n as i64).map(|i| if i % 3 == 2 { -i } else { i + 1 }),
            )),
        ),
        ("text", Arc::new(StringArray::from(texts.to_vec()))),
        (
            "amount",
            Arc::new(Float64Array::from_iter((0..n).map(|i| {
                (i % 4 != 3).then_some(i as f64 * -0.125 + 1e10 * (i % 2) as f64)
            }))),
        ),
        (
            "price",
            Arc::new(
                Decimal128Array::from_iter((0..n).map(|i| Some(i as i128 * 1_000_001 - 5)))
                    .with_precision_and_scale(12, 3)
                    .unwrap(),
            ),
        ),
        (
            "ok",
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|i| (i % 5 != 4).then_some(i % 2 == 0)),
            )),
        ),
        (
            "day",
            Arc::new(Date32Array::from_iter_values(
                (0..n).map(|i| days(&cycle(i, &dates))),
            )),
        ),
        (
            "at",
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                (0..n).map(|i| micros(datetime(&cycle(i, &ats)))),
            )),
        ),
        (
            "at_utc",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    (0..n).map(|i| micros(datetime(&cycle(i + 1, &ats)))),
                )
                .with_timezone("UTC"),
            ),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

/// The bytes of `batch` written by `hints` (compressed as they say).
fn write(hints: &Hints, batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let plain = HintedEncoder::new(hints.clone(), batch.schema()).map_err(|e| e.message)?;
    let mut encoder: Box<dyn Encoder> = match hints.compression.map(Compression::codec) {
        None => Box::new(plain),
        Some(c) => Box::new(Compressed::new(c, Box::new(plain)).unwrap()),
    };
    let mut bytes = encoder.encode(batch).map_err(|e| e.message)?;
    bytes.extend(encoder.finish().map_err(|e| e.message)?);
    Ok(bytes)
}

/// `bytes` read by `hints` as `schema`, fed in chunks of `chunk` bytes.
async fn read(
    hints: &Hints,
    schema: &SchemaRef,
    bytes: &[u8],
    chunk: usize,
) -> Result<RecordBatch, String> {
    let chunks: Vec<mover_gateway::Result<Bytes>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let text = compression::decompress(futures::stream::iter(chunks).boxed())
        .await
        .map_err(|e| e.message)?;
    let batches: Vec<RecordBatch> = typed::decode(
        text,
        schema.clone(),
        hints.clone(),
        7,
        "t.csv".into(),
        Bound::none(),
    )
    .map_err(|e| e.message)?
    .try_collect()
    .await
    .map_err(|e: mover_gateway::Error| e.message)?;
    Ok(concat_batches(schema, &batches).unwrap())
}

/// Whether the hints can write `v` so that it reads back as itself: quotes (with the quote
/// character doubled or escaped inside), or a backslash escape outside them. The empty string
/// needs quotes, since unquoted it reads as NULL.
fn protectable(h: &Hints, v: Option<&str>) -> bool {
    let Some(v) = v else { return true };
    let special = |c: char| {
        c == h.field_delimiter
            || h.record_terminator.contains(c)
            || Some(c) == h.escape
            || (h.quoting.is_some() && c == h.quotechar)
    };
    match h.quoting {
        Some(_) => !(v.contains(h.quotechar) && !h.doublequote && h.escape.is_none()),
        None => !v.is_empty() && (h.escape.is_some() || !v.chars().any(special)),
    }
}

#[tokio::test]
async fn every_structural_hint_combination_round_trips_or_refuses_by_row_and_column() {
    let mut combinations = 0;
    let mut refusals = 0;
    for delimiter in DELIMITERS {
        for terminator in TERMINATORS {
            for quoting in QUOTINGS {
                for quotechar in ['"', '\''] {
                    for doublequote in [true, false] {
                        for escape in [None, Some('\\')] {
                            for header_row in [true, false] {
                                let mut h = plain();
                                h.field_delimiter = delimiter;
                                h.record_terminator = terminator.into();
                                h.quoting = quoting;
                                h.quotechar = quotechar;
                                h.doublequote = doublequote;
                                h.escape = escape;
                                h.header_row = header_row;
                                refusals += check_combination(&h).await;
                                combinations += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(combinations, 1600);
    // Hints without quotes or escapes cannot hold some values: they were refused, not mangled.
    assert!(refusals > 1000, "{refusals}");
}

/// Write what `h` can protect and read it back; write each value it cannot, alone, and see it
/// refused by row and column. Returns the number of refusals.
async fn check_combination(h: &Hints) -> usize {
    let (safe, unsafe_): (Vec<_>, Vec<_>) = TEXTS.iter().partition(|v| protectable(h, **v));
    let want = table(&safe);
    let bytes = write(h, &want).unwrap_or_else(|e| panic!("{h:?}: {e}"));
    for chunk in [1, 3, 64 * 1024] {
        let got = read(h, &want.schema(), &bytes, chunk)
            .await
            .unwrap_or_else(|e| panic!("{h:?} in chunks of {chunk}: {e}"));
        assert_eq!(got, want, "{h:?} in chunks of {chunk}");
    }
    for v in &unsafe_ {
        let e = write(h, &table(&[*v])).expect_err(&format!("{h:?} wrote {v:?}"));
        assert!(e.contains("row 1, column \"text\""), "{h:?}: {e}");
    }
    unsafe_.len()
}

/// One column of `values` written and read back by `h`: Ok when the format can show every
/// value exactly (then it read back equal), else the writer's refusal.
async fn one_column(h: &Hints, values: ArrayRef) -> Result<(), String> {
    let batch = RecordBatch::try_from_iter([("v", values)]).unwrap();
    let bytes = write(h, &batch)?;
    let got = read(h, &batch.schema(), &bytes, 5).await?;
    assert_eq!(got, batch, "{h:?}");
    Ok(())
}

#[tokio::test]
async fn every_date_format_writes_and_reads_exactly_or_refuses() {
    let dates = [
        "1970-01-01",
        "2000-02-29",
        "2026-11-28",
        "2069-12-31",
        "1969-12-31",
        "0001-01-01",
        "9999-12-31",
    ];
    for &f in DateFormat::ALL {
        let mut h = plain();
        h.dateformat = f;
        for d in dates {
            let year: i32 = d[..4].parse().unwrap();
            let two_digits = f.name().ends_with("YY") && !f.name().ends_with("YYYY");
            let showable = !two_digits || (1970..=2069).contains(&year);
            let result = one_column(&h, Arc::new(Date32Array::from(vec![days(d)]))).await;
            assert_eq!(result.is_ok(), showable, "{} {d}: {result:?}", f.name());
        }
    }
}

#[tokio::test]
async fn every_time_format_writes_and_reads_exactly_or_refuses() {
    let times = [
        "00:00:00",
        "09:05:00",
        "12:00:00",
        "23:59:00",
        "23:59:59",
        "12:34:56.789012",
    ];
    for &f in TimeFormat::ALL {
        let mut h = plain();
        h.timeonlyformat = f;
        for t in times {
            let time = NaiveTime::parse_from_str(t, "%H:%M:%S%.f").unwrap();
            let us = (time - NaiveTime::MIN).num_microseconds().unwrap();
            let minutes_only = t.ends_with(":00");
            let showable = minutes_only || f.name().contains("SS");
            let result = one_column(&h, Arc::new(Time64MicrosecondArray::from(vec![us]))).await;
            assert_eq!(result.is_ok(), showable, "{} {t}: {result:?}", f.name());
        }
    }
}

#[tokio::test]
async fn every_datetime_format_writes_and_reads_exactly_or_refuses() {
    let values = [
        "1970-01-01 00:00:00",
        "2026-11-28 17:30:00",
        "2000-02-29 23:59:59.5",
        "1999-12-31 23:59:59.999999",
        "2069-12-31 12:00:00",
        "1900-01-01 00:00:00",
    ];
    // Each format by name, naive and zoned, for the same instants.
    let naive = DateTimeFormat::ALL
        .iter()
        .map(|&f| (f.name(), Some(f), None));
    let zoned = DateTimeTzFormat::ALL
        .iter()
        .map(|&f| (f.name(), None, Some(f)));
    for (name, naive, zoned) in naive.chain(zoned) {
        let mut h = plain();
        if let Some(f) = naive {
            h.datetimeformat = f;
        }
        if let Some(f) = zoned {
            h.datetimeformattz = f;
        }
        for v in values {
            let minutes_only = v.ends_with(":00") && !v.contains('.');
            let year: i32 = v[..4].parse().unwrap();
            let two_digits = name.starts_with("MM/DD/YY");
            let showable = (minutes_only || name.contains("SS"))
                && (!two_digits || (1970..=2069).contains(&year));
            let array = TimestampMicrosecondArray::from(vec![micros(datetime(v))]);
            let array: ArrayRef = match zoned {
                Some(_) => Arc::new(array.with_timezone("UTC")),
                None => Arc::new(array),
            };
            let result = one_column(&h, array).await;
            assert_eq!(result.is_ok(), showable, "{name} {v}: {result:?}");
        }
    }
}

#[tokio::test]
async fn zoned_formats_read_every_offset_form() {
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new(
        "at",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    )]));
    let utc = |s: &str| micros(datetime(s));
    for (format, text, want) in [
        (
            "YYYY-MM-DD HH:MI:SSOF",
            "2026-11-28 10:00:00-05",
            "2026-11-28 15:00:00",
        ),
        (
            "YYYY-MM-DD HH:MI:SSOF",
            "2026-11-28 10:00:00+0000",
            "2026-11-28 10:00:00",
        ),
        (
            "YYYY-MM-DD HH24:MI:SSOF",
            "2026-11-28 10:00:00+05:30",
            "2026-11-28 04:30:00",
        ),
        (
            "YYYY-MM-DD HH24:MI:SSOF",
            "2026-11-28 10:00:00.25+01",
            "2026-11-28 09:00:00.25",
        ),
        (
            "YYYY-MM-DD HH:MI:SS",
            "2026-11-28 10:00:00",
            "2026-11-28 10:00:00",
        ),
        ("MM/DD/YY HH24:MI", "11/28/26 10:00", "2026-11-28 10:00:00"),
    ] {
        let mut h = plain();
        h.datetimeformattz = DateTimeTzFormat::parse(format).unwrap();
        let got = read(&h, &schema, format!("{text}\n").as_bytes(), 4)
            .await
            .unwrap_or_else(|e| panic!("{format} {text}: {e}"));
        let got = got
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>();
        assert_eq!(got.unwrap().value(0), utc(want), "{format} {text}");
    }
}

/// Text values an encoding can hold, to write and sniff under it.
fn texts_for(encoding: Encoding) -> Vec<Option<&'static str>> {
    let mut texts = vec![
        Some("plain"),
        Some("café"),
        Some("comma, here"),
        Some("new\nline"),
        Some("back\\slash"),
        Some("quote \" here"),
        None,
    ];
    texts.push(match encoding {
        Encoding::Latin1 => Some("naïve ÿ"),
        Encoding::Cp1252 => Some("“quoted” €5"),
        _ => Some("日本語 😀"),
    });
    texts
}

/// What the sniffer can tell of an encoding from bytes alone: UTF16 and UTF16BOM are the same
/// bytes.
fn sniffable(e: Encoding) -> Encoding {
    match e {
        Encoding::Utf16Bom => Encoding::Utf16,
        other => other,
    }
}

/// Write `want` by `h`, sniff the bytes, check the sniffed hints, and read the bytes back by
/// them to the same values.
async fn sniff_and_read(case: &str, h: &Hints, want: &RecordBatch) {
    let bytes = write(h, want).unwrap_or_else(|e| panic!("{case}: {e}"));
    let (text, whole) = compression::decompress_sample(Bytes::from(bytes.clone()), true)
        .await
        .unwrap();
    let s = sniff::sniff(&bytes, &text, whole).unwrap_or_else(|e| panic!("{case}: {e}"));
    let told = |s: &Hints| {
        (
            s.field_delimiter,
            s.record_terminator.clone(),
            s.header_row,
            s.compression,
            sniffable(s.encoding),
            s.escape,
            s.quoting.is_some(),
            s.dateformat,
        )
    };
    assert_eq!(told(&s), told(h), "{case}: sniffed {s:?}");
    let got = read(&s, &want.schema(), &bytes, 100)
        .await
        .unwrap_or_else(|e| panic!("{case}: read by sniffed hints: {e}"));
    assert_eq!(&got, want, "{case}");
    let inferred = sniff::infer_schema(&String::from_utf8_lossy(&text), true, &s);
    if h.encoding == Encoding::Utf8 {
        let inferred = inferred.unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(inferred.fields().len(), want.num_columns(), "{case}");
    }
}

#[tokio::test]
async fn every_variant_encoding_and_compression_is_sniffed_and_read_back() {
    let variants = [
        Variant::Bluelabs,
        Variant::Csv,
        Variant::Bigquery,
        Variant::Vertica,
        Variant::Dumb,
    ];
    let compressions = [
        None,
        Some(Compression::Gzip),
        Some(Compression::Bzip),
        Some(Compression::Zstd),
    ];
    let mut cases = 0;
    for variant in variants {
        for encoding in Encoding::ALL {
            for compression in compressions {
                let mut h = Hints::of(variant);
                h.encoding = encoding;
                h.compression = compression;
                let texts: Vec<_> = texts_for(encoding)
                    .into_iter()
                    .filter(|v| protectable(&h, *v))
                    .collect();
                // Only a file whose data needs an escape shows one.
                let escapes = texts
                    .iter()
                    .flatten()
                    .any(|v| v.contains('\\') || v.contains(h.field_delimiter) || v.contains('\n'));
                if h.escape.is_some() && !escapes {
                    h.escape = None;
                }
                let case = format!("{} {} {compression:?}", variant.name(), encoding.name());
                sniff_and_read(&case, &h, &table(&texts)).await;
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 160);
    // What a single-byte encoding cannot hold is refused by row and column.
    for encoding in [Encoding::Latin1, Encoding::Cp1252] {
        let mut h = Hints::of(Variant::Csv);
        h.encoding = encoding;
        let e = write(&h, &table(&[Some("ok"), Some("日本")])).unwrap_err();
        assert!(
            e.contains("row 2, column \"text\"") && e.contains("cannot encode"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn sniffing_cases_tsv_newlines_one_column_and_zero_bytes() {
    let texts = [
        Some("plain"),
        Some("comma, here"),
        Some("quote \" here"),
        None,
    ];
    let with = |variant, f: &dyn Fn(&mut Hints)| {
        let mut h = Hints::of(variant);
        h.compression = None;
        f(&mut h);
        h
    };
    let cases: Vec<(&str, Hints, RecordBatch)> = vec![
        ("header", with(Variant::Csv, &|_| {}), table(&texts)),
        (
            "no header",
            with(Variant::Csv, &|h| h.header_row = false),
            table(&texts),
        ),
        (
            "tsv",
            with(Variant::Csv, &|h| h.field_delimiter = '\t'),
            table(&texts),
        ),
        (
            "dos",
            with(Variant::Csv, &|h| h.record_terminator = "\r\n".into()),
            table(&texts),
        ),
        (
            "old mac",
            with(Variant::Csv, &|h| h.record_terminator = "\r".into()),
            table(&texts),
        ),
        (
            "vertica controls",
            with(Variant::Vertica, &|_| {}),
            table(&[Some("comma, here"), Some("new\nline"), Some("x")]),
        ),
        (
            "bluelabs escapes",
            with(Variant::Bluelabs, &|_| {}),
            table(&[Some("a\\, b"), Some("new\nline"), Some("comma, here")]),
        ),
        (
            // Nothing quoted and no dates: what is sniffed is what the data shows.
            "one column",
            with(Variant::Dumb, &|h| h.header_row = true),
            RecordBatch::try_from_iter([(
                "id",
                Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
            )])
            .unwrap(),
        ),
    ];
    for (case, h, want) in &cases {
        sniff_and_read(case, h, want).await;
    }
    let e = sniff::sniff(b"", b"", true).unwrap_err();
    assert!(e.message.contains("zero bytes"), "{e}");
}

const ROWS: u32 = 100_000;

/// Bad input: the file, hints, schema, bytes, and what the error must say.
type BadInput = (&'static str, Hints, SchemaRef, Vec<u8>, [&'static str; 2]);

fn bad_inputs() -> Vec<BadInput> {
    let csv = Hints::of(Variant::Csv);
    let mut csv_plain = csv.clone();
    csv_plain.compression = None;
    let text = |names: &[(&str, DataType)]| -> SchemaRef {
        Arc::new(Schema::new(
            names
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    };
    let id_name = text(&[("id", DataType::Int64), ("name", DataType::Utf8)]);
    let id_day = text(&[("id", DataType::Int64), ("day", DataType::Date32)]);
    let mut utf16 = csv_plain.clone();
    utf16.encoding = Encoding::Utf16Le;
    let utf16_bytes: Vec<u8> = "id,name\n1,x\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .chain([b'2'])
        .collect();
    // Good rows first, so the bad one arrives after the target has been written to.
    // Past the 1 MiB sample a gateway infers column types from.
    let good: String = (1..=ROWS).map(|i| format!("{i},row {i}\n")).collect();
    let bad = |tail: &str| format!("id,name\n{good}{tail}").into_bytes();
    vec![
        (
            "unterminated_quote",
            csv_plain.clone(),
            id_name.clone(),
            bad("100001,\"open\n100002,x\n"),
            ["line 100002, field 2", "never closed"],
        ),
        (
            "ragged_short",
            csv_plain.clone(),
            id_name.clone(),
            bad("100001\n"),
            ["line 100002, column \"name\"", "missing"],
        ),
        (
            "ragged_long",
            csv_plain.clone(),
            id_name.clone(),
            bad("100001,a,b\n"),
            ["line 100002, field 3", "3 fields"],
        ),
        (
            "after_quote",
            csv_plain.clone(),
            id_name.clone(),
            bad("100001,\"x\"y\n"),
            ["line 100002, field 2", "after a closing quote"],
        ),
        (
            "not_utf8",
            csv_plain.clone(),
            id_name.clone(),
            [bad("100001,caf").as_slice(), b"\xe9\n"].concat(),
            ["line 100002, field 2", "not UTF8"],
        ),
        (
            "cut_utf16",
            utf16,
            id_name.clone(),
            utf16_bytes,
            ["line 3, field 1", "not UTF16LE"],
        ),
        (
            "not_a_number",
            csv_plain.clone(),
            id_name.clone(),
            bad("x100001,a\n"),
            ["line 100002, column \"id\"", "x100001"],
        ),
        (
            "wrong_date",
            csv_plain.clone(),
            id_day.clone(),
            format!(
                "id,day\n{}100001,2026-11-28\n",
                (1..=ROWS)
                    .map(|i| format!("{i},11/28/26\n"))
                    .collect::<String>()
            )
            .into_bytes(),
            ["line 100002, column \"day\"", "MM/DD/YY"],
        ),
    ]
}

#[tokio::test]
async fn bad_input_names_the_file_line_and_column() {
    for (name, hints, schema, bytes, says) in bad_inputs() {
        let e = read(&hints, &schema, &bytes, 4096).await.unwrap_err();
        assert!(e.starts_with("t.csv: "), "{name}: {e}");
        for s in says {
            assert!(e.contains(s), "{name}: {e:?} does not say {s:?}");
        }
    }
}

#[test]
fn a_move_of_bad_input_leaves_the_target_as_it_was() {
    let dir = workdir();
    let data = dir.path().join("data");
    for (name, _, _, bytes, _) in bad_inputs() {
        std::fs::write(data.join(format!("{name}.csv")), bytes).unwrap();
    }
    let gw = Gateway::start_default(dir.path());
    for (name, hints, _, _, says) in bad_inputs() {
        let hints_json = serde_json::to_string(&hints.to_json()).unwrap();
        let file = format!("files/{name}.csv");
        let table = format!("demo/main/{name}");
        let err = fails(gw.mvrec(&[
            "cp",
            &file,
            &table,
            "--from-variant",
            "dumb",
            "--from-hints",
            &hints_json,
        ]));
        assert!(err.contains(&format!("{name}.csv")), "{name}: {err}");
        for s in says {
            assert!(err.contains(s), "{name}: {err:?} does not say {s:?}");
        }
        let listed = gw.mvrec(&["ls", "demo/main"]);
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(!listed.contains(name), "{name} was created: {listed}");
        let out = format!("files/out_{name}.parquet");
        fails(gw.mvrec(&[
            "cp",
            &file,
            &out,
            "--from-variant",
            "dumb",
            "--from-hints",
            &hints_json,
        ]));
        assert!(!data.join(format!("out_{name}.parquet")).exists(), "{name}");
    }
    // A table that exists keeps its rows when an append of bad input fails.
    std::fs::write(data.join("good.csv"), "id,name\n1,a\n2,b\n").unwrap();
    mover_tests::ok(gw.mvrec(&["cp", "files/good.csv", "demo/main/kept"]));
    let before = sqlite_rows(&data.join("mover.db"), "kept");
    let hints = serde_json::to_string(&Hints::of(Variant::Csv).to_json()).unwrap();
    fails(gw.mvrec(&[
        "cp",
        "files/ragged_short.csv",
        "demo/main/kept",
        "--existing-table",
        "append",
        "--from-variant",
        "dumb",
        "--from-hints",
        &hints,
    ]));
    assert_eq!(sqlite_rows(&data.join("mover.db"), "kept"), before);
}

#[test]
fn an_endless_line_is_refused_before_it_is_held() {
    // The shape of a decompression bomb: a small gzip file that expands into one line of
    // 512 MiB (a header, then no newline), as CSV and as JSON lines.
    let dir = workdir();
    let data = dir.path().join("data");
    let line = 512 * 1024 * 1024;
    for (name, head) in [("bomb.csv.gz", "a,b\\n"), ("bomb.jsonl.gz", "{\"a\": \"")] {
        let made = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{{ printf '{head}'; head -c {line} /dev/zero | tr '\\0' x; }} | gzip -1 > {name}"
            ))
            .current_dir(&data)
            .status()
            .expect("sh, head, tr and gzip");
        assert!(made.success());
        assert!(std::fs::metadata(data.join(name)).unwrap().len() < 4 * 1024 * 1024);
    }
    let gw = Gateway::start_default(dir.path());
    // The CSV's header is read, and its second line refused at the bound as it streams; the
    // JSON lines file has no whole line in the (bounded) sample its schema is inferred from.
    for (name, says) in [
        (
            "bomb.csv.gz",
            "line 2 is longer than 64 MiB (buckets.files.max_line_mb)",
        ),
        ("bomb.jsonl.gz", "line 1 is longer than the 16"),
    ] {
        let err = fails(gw.mvrec(&["cp", &format!("files/{name}"), "files/out/bomb.parquet"]));
        assert!(
            err.contains(&format!("mvrec: invalid: source: files/{name}: {says}")),
            "{err}"
        );
    }
    // A record of many short lines: a quoted value (plain CSV) or escaped line ends (by
    // hints) of 80 MiB in 2-byte lines, each line far under the bound, the record over it.
    // (An escaped line end is one byte of the value, so that file has twice the lines.)
    let mib = 1024 * 1024;
    for (name, head, line, lines) in [
        ("quoted.csv.gz", r"a,b\n1,\042", "x", 40 * mib),
        ("escaped.csv.gz", r"a,b\n1,", "\\", 80 * mib),
    ] {
        let made = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{{ printf '{head}'; yes '{line}' | head -n {lines}; }} | gzip -1 > {name}"
            ))
            .current_dir(&data)
            .status()
            .expect("sh, yes, head and gzip");
        assert!(made.success());
    }
    for (name, args) in [
        ("quoted.csv.gz", vec![]),
        (
            "escaped.csv.gz",
            vec![
                "--from-variant",
                "bluelabs",
                "--from-hints",
                r#"{"header-row": true}"#,
            ],
        ),
    ] {
        let mut cp = vec![
            "cp".to_string(),
            format!("files/{name}"),
            "files/out/rec.parquet".into(),
        ];
        cp.extend(args.iter().map(|a| a.to_string()));
        let cp: Vec<&str> = cp.iter().map(String::as_str).collect();
        let err = fails(gw.mvrec(&cp));
        assert!(
            err.contains(&format!("files/{name}: line 2: a record"))
                && err.contains("longer than 64 MiB (buckets.files.max_line_mb)"),
            "{name}: {err}"
        );
    }
    let left = mover_tests::files_under(&data.join("out"));
    assert!(left.is_empty(), "{left:?}");
    let peak = gw.peak_rss_mb();
    eprintln!("gateway peak RSS after the bombs: {peak} MiB");
    assert!(peak < 256, "the gateway held {peak} MiB");
    // Still serving.
    std::fs::write(data.join("fine.csv"), "a,b\n1,2\n").unwrap();
    mover_tests::ok(gw.mvrec(&["cp", "files/fine.csv", "files/out/fine.parquet"]));
}

/// A small compressed file that expands into many short lines (no line over the bound) is
/// refused once it expands past `max_expansion` times its compressed size, by name.
#[test]
fn a_file_that_expands_past_its_bound_is_refused() {
    let dir = workdir();
    let data = dir.path().join("data");
    // 96 MiB of "1,2" lines in under 0.5 MiB of gzip (206:1).
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg("{ echo a,b; yes 1,2 | head -c 100663296; } | gzip -1 > many.csv.gz")
        .current_dir(&data)
        .status()
        .expect("sh, yes, head and gzip");
    assert!(made.success());
    let config = "[databases.demo]\nurl = \"sqlite://data/mover.db\"\n\
                  [buckets.files]\nurl = \"file://data\"\nmax_expansion = 100\n";
    let gw = Gateway::start_with_config(dir.path(), config);
    let err = fails(gw.mvrec(&["cp", "files/many.csv.gz", "demo/main/many"]));
    assert!(
        err.contains(
            "files/many.csv.gz: it expands more than 100 times its compressed size (buckets.files.max_expansion)"
        ),
        "{err}"
    );
    assert!(sqlite_rows(&data.join("mover.db"), "many").is_empty());
}

/// A Parquet row group bigger than the bucket's `max_row_group_mb` (its column chunks as the
/// footer claims them) is refused naming the file before it is fetched; the same file reads
/// whole through a bucket with the default bound.
#[test]
fn a_parquet_row_group_past_its_bound_is_refused_by_name() {
    let dir = workdir();
    let data = dir.path().join("data");
    // 150k rows of 32 hex digits no two alike: one row group of about 3 MiB.
    let mut csv = String::from("id,digest\n");
    for i in 0..150_000u64 {
        let (a, b) = (
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            i.wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
        );
        csv.push_str(&format!("{i},{a:016x}{b:016x}\n"));
    }
    std::fs::write(data.join("in.csv"), csv).unwrap();
    let config = "[databases.demo]\nurl = \"sqlite://data/mover.db\"\n\
                  [buckets.files]\nurl = \"file://data\"\n\
                  [buckets.tight]\nurl = \"file://data\"\nmax_row_group_mb = 1\n";
    let gw = Gateway::start_with_config(dir.path(), config);
    mover_tests::ok(gw.mvrec(&["cp", "files/in.csv", "files/digests.parquet"]));
    let err = fails(gw.mvrec(&["cp", "tight/digests.parquet", "demo/main/digests"]));
    assert!(
        err.contains("digests.parquet")
            && err.contains("row groups over 1 MiB are refused (the bucket's max_row_group_mb)"),
        "{err}"
    );
    assert!(sqlite_rows(&data.join("mover.db"), "digests").is_empty());
    mover_tests::ok(gw.mvrec(&["cp", "files/digests.parquet", "demo/main/digests"]));
    assert_eq!(
        sqlite_rows(&data.join("mover.db"), "digests").len(),
        150_000
    );
}

/// An Avro file cut short, or one whose block claims 2^40 bytes, is refused naming the file,
/// before anything is buffered or written; the gateway goes on serving.
#[test]
fn a_cut_or_forged_avro_file_is_refused_by_name() {
    let dir = workdir();
    let data = dir.path().join("data");
    let mut csv = String::from("id,name\n");
    for i in 0..20_000 {
        csv.push_str(&format!("{i},name {i}\n"));
    }
    std::fs::write(data.join("in.csv"), csv).unwrap();
    let gw = Gateway::start_default(dir.path());
    mover_tests::ok(gw.mvrec(&["cp", "files/in.csv", "files/whole.avro"]));
    let whole = std::fs::read(data.join("whole.avro")).unwrap();
    // The file ends with the sync marker its header ends with: the first one ends the header.
    let sync = &whole[whole.len() - 16..];
    let header = whole.windows(16).position(|w| w == sync).unwrap() + 16;
    let mut forged = whole[..header].to_vec();
    forged.extend([2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]); // one row, 2^40 bytes (zigzag)
    forged.extend([0; 64]);
    std::fs::write(data.join("forged.avro"), &forged).unwrap();
    std::fs::write(data.join("cut.avro"), &whole[..whole.len() / 2]).unwrap();
    for (name, says) in [
        ("forged.avro", "a block of 1099511627776 bytes"),
        ("cut.avro", "the file ends inside a block"),
    ] {
        let err = fails(gw.mvrec(&["cp", &format!("files/{name}"), "files/out/x.parquet"]));
        assert!(
            err.contains(&format!("invalid: source: files/{name}: bad Avro: {says}")),
            "{err}"
        );
    }
    assert!(mover_tests::files_under(&data.join("out")).is_empty());
    let out = mover_tests::ok(gw.mvrec(&["cp", "files/whole.avro", "demo/main/whole"]));
    assert!(out.contains("copied 20000 rows"), "{out}");
}

/// Files a user was handed, read with no hint at all, through `mvrec cp`: each by what its
/// bytes say (what `mvrec sniff` prints), as Records Mover sniffs. A Vertica file (`\x01`
/// between fields, `\x02` between records) was once all header, zero rows and exit 0; a
/// CP1252 file failed on UTF-8 and a bluelabs one (backslash escapes) on ragged rows.
#[test]
fn files_read_without_hints_are_read_by_what_their_bytes_say() {
    let dir = workdir();
    let data = dir.path().join("data");
    let mut vertica = b"id\x01name\x02".to_vec();
    for i in 0..1000 {
        vertica.extend_from_slice(format!("{i}\x01name {i}\x02").as_bytes());
    }
    std::fs::write(data.join("vertica.csv"), &vertica).unwrap();
    std::fs::write(
        data.join("cp1252.csv"),
        b"id,name\n1,caf\xe9\n2,\x93quoted\x94\n",
    )
    .unwrap();
    std::fs::write(
        data.join("bluelabs.csv"),
        "id,name\n1,a\\,b\n2,back\\\\slash\n3,\n",
    )
    .unwrap();
    let gw = Gateway::start_default(dir.path());
    let db = data.join("mover.db");
    let copied = |file: &str, table: &str, rows: usize| {
        let out = mover_tests::ok(gw.mvrec(&["cp", file, &format!("demo/main/{table}")]));
        assert!(
            out.contains(&format!("copied {rows} rows")),
            "{file}: {out}"
        );
        sqlite_rows(&db, table)
    };
    let got = copied("files/vertica.csv", "vertica", 1000);
    assert_eq!(got[0], ["0", "name 0"]);
    assert_eq!(got[999], ["999", "name 999"]);
    assert_eq!(
        copied("files/cp1252.csv", "cp1252", 2),
        [["1", "café"], ["2", "“quoted”"]]
    );
    assert_eq!(
        copied("files/bluelabs.csv", "bluelabs", 3),
        [["1", "a,b"], ["2", "back\\slash"], ["3", "NULL"]]
    );
    // Given, the format still decides: read as plain CSV, the Vertica file is one unended
    // line, refused rather than read as zero rows.
    let err = fails(gw.mvrec(&[
        "cp",
        "files/vertica.csv",
        "files/out/v.parquet",
        "--from-format",
        "csv",
    ]));
    assert!(
        err.contains("files/vertica.csv")
            && err.contains("one line with no line end")
            && err.contains("--from-format records"),
        "{err}"
    );
    assert!(mover_tests::files_under(&data.join("out")).is_empty());
}

/// Plain CSV (the faster reader) is chosen from the file's first MiB; an escape first met
/// later fails naming the line and the hint to give, the target unchanged, and the hint
/// reads it. A non-empty file never copies as zero rows unremarked: one unended line is
/// refused, a header alone is a note.
#[test]
fn an_escape_past_the_sniffed_bytes_is_refused_by_line_with_the_hint_to_give() {
    let dir = workdir();
    let data = dir.path().join("data");
    let mut late = String::from("id,name\n");
    let plain_rows = 100_000; // about 1.6 MiB: past the bytes sniffed
    for i in 0..plain_rows {
        late.push_str(&format!("{i},plain text {i}\n"));
    }
    late.push_str(&format!("{plain_rows},escaped\\, late\n"));
    std::fs::write(data.join("late.csv"), &late).unwrap();
    let ragged = format!(
        "{}{plain_rows},one,too many\n",
        &late[..late.rfind("100000,").unwrap()]
    );
    std::fs::write(data.join("ragged.csv"), ragged).unwrap();
    std::fs::write(data.join("unended.csv"), "id,name\n1,a\n2,b").unwrap();
    std::fs::write(data.join("oneline.csv"), "id,name").unwrap();
    std::fs::write(data.join("header.csv"), "id,name\n").unwrap();
    let gw = Gateway::start_default(dir.path());
    let line = plain_rows + 2;
    for target in ["files/out/late.parquet", "demo/main/late"] {
        let err = fails(gw.mvrec(&["cp", "files/late.csv", target]));
        assert!(
            err.contains("files/late.csv")
                && err.contains(&format!("line {line}: a backslash escape"))
                && err.contains(r#"--from-hints '{"escape": "\\"}'"#),
            "{err}"
        );
    }
    assert!(mover_tests::files_under(&data.join("out")).is_empty());
    assert!(sqlite_rows(&data.join("mover.db"), "late").is_empty());
    let out = mover_tests::ok(gw.mvrec(&[
        "cp",
        "files/late.csv",
        "demo/main/late",
        "--from-hints",
        r#"{"escape": "\\"}"#,
    ]));
    assert!(
        out.contains(&format!("copied {} rows", plain_rows + 1)),
        "{out}"
    );
    let rows = sqlite_rows(&data.join("mover.db"), "late");
    assert_eq!(
        rows.last().unwrap(),
        &[plain_rows.to_string(), "escaped, late".into()]
    );
    // A ragged row past the sniffed bytes: named by line, with the same hint.
    let err = fails(gw.mvrec(&["cp", "files/ragged.csv", "files/out/ragged.parquet"]));
    assert!(
        err.contains("files/ragged.csv")
            && err.contains(&format!("incorrect number of fields for line {line}"))
            && err.contains(r#"--from-hints '{"escape": "\\"}'"#),
        "{err}"
    );
    assert!(mover_tests::files_under(&data.join("out")).is_empty());
    let err = fails(gw.mvrec(&["cp", "files/oneline.csv", "files/out/one.parquet"]));
    assert!(err.contains("one line with no line end"), "{err}");
    let out = mover_tests::ok(gw.mvrec(&["cp", "files/unended.csv", "demo/main/unended"]));
    assert!(out.contains("copied 2 rows"), "{out}");
    let out = mover_tests::ok(gw.mvrec(&["cp", "files/header.csv", "demo/main/header"]));
    assert!(
        out.contains("copied 0 rows") && out.contains("note: the source held no rows"),
        "{out}"
    );
}

/// The names under `dir`, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A prefix written is a records directory, whatever wrote it: the parts, `_format_parquet`,
/// `_schema.json` and a `_manifest` naming every part. Appending keeps the manifest true;
/// appending another format is refused with the prefix as it was; overwriting with JSON lines
/// (which no records format holds) leaves a plain prefix.
#[test]
fn a_prefix_written_is_a_records_directory_and_stays_a_true_one() {
    let dir = workdir();
    let data = dir.path().join("data");
    std::fs::write(data.join("in.csv"), "id,name\n1,a\n2,b\n3,c\n").unwrap();
    let gw = Gateway::start_default(dir.path());
    mover_tests::ok(gw.mvrec(&["cp", "files/in.csv", "files/ours/"]));
    let out = data.join("ours");
    let names = names_in(&out);
    assert_eq!(names[..3], ["_format_parquet", "_manifest", "_schema.json"]);
    assert_eq!(names.len(), 4, "{names:?}");
    let manifest = |out: &std::path::Path| -> Vec<String> {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("_manifest")).unwrap()).unwrap();
        doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["url"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(manifest(&out), names[3..]);
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_schema.json")).unwrap()).unwrap();
    assert_eq!(schema["fields"]["id"]["type"], "integer");
    assert_eq!(std::fs::read(out.join("_format_parquet")).unwrap(), b"");

    // An append of another format is refused, and nothing changes.
    let err = fails(gw.mvrec(&[
        "cp",
        "files/in.csv",
        "files/ours/",
        "--to-format",
        "csv",
        "--existing-table",
        "append",
    ]));
    assert!(
        err.contains("files/ours/ is a records directory of Parquet")
            && err.contains("not as delimited text"),
        "{err}"
    );
    assert_eq!(names_in(&out), names);

    // An append of Parquet adds a part to the manifest, and every row reads back.
    mover_tests::ok(gw.mvrec(&[
        "cp",
        "files/in.csv",
        "files/ours/",
        "--existing-table",
        "append",
    ]));
    let parts: Vec<String> = names_in(&out)
        .into_iter()
        .filter(|n| !n.starts_with('_'))
        .collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(manifest(&out), parts);
    let copied = mover_tests::ok(gw.mvrec(&["cp", "files/ours/", "demo/main/back"]));
    assert!(copied.contains("copied 6 rows"), "{copied}");

    // Overwritten with JSON lines, it is a plain prefix of one part.
    mover_tests::ok(gw.mvrec(&[
        "cp",
        "files/in.csv",
        "files/ours/",
        "--to-format",
        "jsonl",
        "--existing-table",
        "truncate-and-overwrite",
    ]));
    let left = names_in(&out);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with(".jsonl"), "{left:?}");
    let copied = mover_tests::ok(gw.mvrec(&["cp", "files/ours/", "demo/main/again"]));
    assert!(copied.contains("copied 3 rows"), "{copied}");

    // Overwritten with Avro, it is an Avro records directory (`_format_avro`, empty, as
    // Records Mover has it); an append of Avro keeps it one, and it reads back as Avro.
    for existing in ["truncate-and-overwrite", "append"] {
        mover_tests::ok(gw.mvrec(&[
            "cp",
            "files/in.csv",
            "files/ours/",
            "--to-format",
            "avro",
            "--existing-table",
            existing,
        ]));
    }
    let names = names_in(&out);
    assert_eq!(names[..3], ["_format_avro", "_manifest", "_schema.json"]);
    assert_eq!(std::fs::read(out.join("_format_avro")).unwrap(), b"");
    let parts = &names[3..];
    assert!(
        parts.len() == 2 && parts.iter().all(|p| p.ends_with(".avro")),
        "{names:?}"
    );
    assert_eq!(manifest(&out), parts);
    let err = fails(gw.mvrec(&[
        "cp",
        "files/in.csv",
        "files/ours/",
        "--existing-table",
        "append",
    ]));
    assert!(
        err.contains("a records directory of Avro") && err.contains("not as Parquet"),
        "{err}"
    );
    let copied = mover_tests::ok(gw.mvrec(&["cp", "files/ours/", "demo/main/avro"]));
    assert!(copied.contains("copied 6 rows"), "{copied}");
    assert_eq!(sqlite_rows(&data.join("mover.db"), "avro")[5], ["3", "c"]);
    // A records directory asked for by type: one data file.
    mover_tests::ok(gw.mvrec(&[
        "cp",
        "files/in.csv",
        "files/rd/",
        "--to-records-type",
        "avro",
    ]));
    assert_eq!(
        names_in(&data.join("rd")),
        ["_format_avro", "_manifest", "_schema.json", "data001.avro"]
    );
}
