//! Telling a delimited file's hints from its first bytes.
//!
//! Compression comes from the magic number, the encoding from a byte-order mark, from the
//! zero bytes of UTF-16 without one, or from whether the bytes are UTF-8 (else CP1252 when
//! its printable 0x80–0x9F characters appear, else LATIN1). The rest is told from the
//! decoded text. The record terminator is the most common of `\r\n`, `\n`, `\r` and
//! `\u0002`; the delimiter the candidate that splits the most lines into the same number of
//! fields. A backslash before a delimiter, a terminator or another backslash makes `escape` a
//! backslash: such a file is never split at an escaped delimiter. Quoting is `minimal` when
//! fields open with a double quote (with `doublequote` when `""` appears inside them), and the
//! first line is a header when it has no number where the lines below have one. Date and time
//! formats are the allow-listed ones that read every value of the most columns.

use super::datetime::{DateFormat, DateTimeFormat, DateTimeTzFormat, TimeFormat};
use super::encoding::decode_sample;
use super::hints::{Compression, Encoding, Hints, Quoting, Variant};
use super::split::{Dialect, Record, Splitter};
use crate::error::{Error, Result};
use crate::records::compression::Codec;

const DELIMITERS: [char; 5] = [',', '\t', '|', ';', '\u{1}'];

/// Hints for `raw`, the first bytes of a file, and `text`, those bytes decompressed (`whole`
/// when they are the whole file).
pub fn sniff(raw: &[u8], text: &[u8], whole: bool) -> Result<Hints> {
    let mut h = structure(raw, text, whole)?;
    let text = decode_sample(h.encoding, text, whole).unwrap_or_else(|bad| bad.decoded);
    date_formats(&text, whole, &mut h);
    Ok(h)
}

/// The hints [`sniff`] tells but the date and time formats (left as the dumb variant's), which
/// cost the most to tell: enough to choose a reader.
pub fn structure(raw: &[u8], text: &[u8], whole: bool) -> Result<Hints> {
    if raw.is_empty() {
        return Err(Error::invalid(
            "the file is empty (zero bytes): there is nothing to tell its format from",
        ));
    }
    let mut h = Hints::of(Variant::Dumb);
    h.compression = Codec::sniff(raw)?.map(Compression::from);
    if text.is_empty() {
        return Err(Error::invalid(
            "the file holds no text once decompressed: there is nothing to tell its format from",
        ));
    }
    h.encoding = encoding(text);
    // What decodes is sniffed; bad bytes further on are the reader's to report.
    let text = decode_sample(h.encoding, text, whole).unwrap_or_else(|bad| bad.decoded);
    h.record_terminator = terminator(&text).to_string();
    let lines: Vec<&str> = text
        .split(h.record_terminator.as_str())
        .filter(|l| !l.is_empty())
        .take(200)
        .collect();
    // The last line of a sample may be cut short: leave it out when there are others.
    let lines = if lines.len() > 2 && !whole {
        &lines[..lines.len() - 1]
    } else {
        &lines[..]
    };
    h.field_delimiter = delimiter(lines);
    let d = h.field_delimiter;
    let escaped = [
        "\\\\".to_string(),
        format!("\\{d}"),
        "\\\n".into(),
        "\\\r".into(),
    ];
    h.escape = escaped
        .iter()
        .any(|e| text.contains(e.as_str()))
        .then_some('\\');
    let opens_quoted = lines
        .iter()
        .any(|l| l.starts_with('"') || l.contains(&format!("{d}\"")));
    if opens_quoted {
        h.quoting = Some(Quoting::Minimal);
        h.doublequote = text.contains("\"\"");
    }
    h.header_row = header(lines, d);
    Ok(h)
}

/// The allow-listed date and time formats that read every value of the most columns of the
/// sample; the hints keep their formats where no column reads as a date or time.
fn date_formats(text: &str, whole: bool, h: &mut Hints) {
    let Ok(dialect) = Dialect::from_hints(h) else {
        return;
    };
    let mut splitter = Splitter::new(dialect);
    let mut records = Vec::new();
    if splitter.push(text, &mut records).is_err() {
        return;
    }
    if whole {
        let _ = splitter.finish(&mut records);
    }
    let rows = &records[usize::from(h.header_row).min(records.len())..];
    let width = rows.iter().map(Record::len).max().unwrap_or(0);
    let columns: Vec<Vec<&str>> = (0..width).map(|i| values(rows, i)).collect();
    let columns: Vec<&[&str]> = columns
        .iter()
        .filter(|c| !c.is_empty())
        .map(Vec::as_slice)
        .collect();
    if let Some(f) = best(DateFormat::ALL, &columns, |f, v| f.read(v).is_some()) {
        h.dateformat = f;
    }
    if let Some(f) = best(TimeFormat::ALL, &columns, |f, v| f.read(v).is_some()) {
        h.timeonlyformat = f;
    }
    if let Some(f) = best(DateTimeFormat::ALL, &columns, |f, v| f.read(v).is_some()) {
        h.datetimeformat = f;
    }
    // Zoned formats for the columns the naive format does not read; when every column reads
    // as naive, a column typed as zoned elsewhere is UTC without an offset (bigquery's way).
    let naive = h.datetimeformat;
    let zoned: Vec<&[&str]> = columns
        .iter()
        .copied()
        .filter(|c| !c.iter().all(|v| naive.read(v).is_some()))
        .collect();
    let reads = |f: DateTimeTzFormat, v: &str| f.read(v).is_some();
    if let Some(f) = best(DateTimeTzFormat::ALL, &zoned, reads)
        .or_else(|| best(DateTimeTzFormat::ALL, &columns, reads))
    {
        h.datetimeformattz = f;
    }
}

/// The non-empty values of column `i`.
fn values(rows: &[Record], i: usize) -> Vec<&str> {
    rows.iter()
        .filter(|r| i < r.len())
        .map(|r| r.field(i))
        .filter(|v| !v.is_empty())
        .collect()
}

/// The format that reads every value of the most columns (the first listed, on a tie).
fn best<F: Copy>(all: &[F], columns: &[&[&str]], reads: impl Fn(F, &str) -> bool) -> Option<F> {
    all.iter()
        .map(|&f| {
            let n = columns
                .iter()
                .filter(|c| c.iter().all(|v| reads(f, v)))
                .count();
            (n, f)
        })
        .filter(|(n, _)| *n > 0)
        .fold(None, |best: Option<(usize, F)>, (n, f)| match best {
            Some((m, _)) if m >= n => best,
            _ => Some((n, f)),
        })
        .map(|(_, f)| f)
}

/// Column types for delimited `text` (a sample: the last record may be cut short unless
/// `whole`) read with `hints`: per column the first of Int64, Float64, Boolean, Date32 (the
/// hints' date format), Timestamp (the datetime format), Timestamp UTC (the zoned format) and
/// Utf8 that every non-empty value of the sample reads as. Names come from the header row,
/// else `column_1`, `column_2`, ...
pub fn infer_schema(text: &str, whole: bool, hints: &Hints) -> Result<arrow::datatypes::SchemaRef> {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let mut splitter = Splitter::new(Dialect::from_hints(hints)?);
    let mut records = Vec::new();
    splitter.push(text, &mut records)?;
    if whole {
        splitter.finish(&mut records)?;
    }
    let mut records = records.into_iter();
    let names: Vec<String> = match (hints.header_row, records.next()) {
        (true, Some(header)) => header.fields().map(str::to_string).collect(),
        (false, Some(first)) => {
            let names = (1..=first.len()).map(|i| format!("column_{i}")).collect();
            records = std::iter::once(first)
                .chain(records)
                .collect::<Vec<_>>()
                .into_iter();
            names
        }
        (_, None) => {
            return Err(Error::invalid(
                "no records in the sample to tell columns from",
            ));
        }
    };
    let rows: Vec<_> = records.collect();
    let fields = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values = || {
                rows.iter()
                    .filter(move |r| i < r.len())
                    .map(move |r| r.field(i))
                    .filter(|v| !v.is_empty())
            };
            let all = |ok: &dyn Fn(&str) -> bool| values().next().is_some() && values().all(ok);
            let data_type = if all(&|v| v.trim().parse::<i64>().is_ok()) {
                DataType::Int64
            } else if all(&|v| v.trim().parse::<f64>().is_ok()) {
                DataType::Float64
            } else if all(&|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "true" | "false" | "t" | "f"
                )
            }) {
                DataType::Boolean
            } else if all(&|v| hints.dateformat.read(v).is_some()) {
                DataType::Date32
            } else if all(&|v| hints.timeonlyformat.read(v).is_some()) {
                DataType::Time64(TimeUnit::Microsecond)
            } else if all(&|v| hints.datetimeformat.read(v).is_some()) {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            } else if all(&|v| hints.datetimeformattz.read(v).is_some()) {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            } else {
                DataType::Utf8
            };
            Field::new(name, data_type, true)
        })
        .collect::<Vec<_>>();
    Ok(std::sync::Arc::new(Schema::new(fields)))
}

fn encoding(text: &[u8]) -> Encoding {
    match text {
        [0xEF, 0xBB, 0xBF, ..] => Encoding::Utf8Bom,
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] => Encoding::Utf16,
        _ => {
            if let Some(order) = utf16_without_mark(text) {
                return order;
            }
            match std::str::from_utf8(text) {
                Ok(_) => Encoding::Utf8,
                Err(e) if e.error_len().is_none() => Encoding::Utf8,
                // CP1252 prints 0x80-0x9F (€, “, ”, …); in LATIN1 they are control codes.
                Err(_) if text.iter().any(|&b| (0x80..=0x9F).contains(&b)) => Encoding::Cp1252,
                Err(_) => Encoding::Latin1,
            }
        }
    }
}

/// UTF-16 text without a byte-order mark has a zero byte in most of its units (every ASCII
/// or LATIN1 character): on the odd side when little-endian, the even side when big-endian,
/// and rarely on the other side.
fn utf16_without_mark(text: &[u8]) -> Option<Encoding> {
    let units = text.len().min(4096) / 2;
    if units < 2 {
        return None;
    }
    let zeros = |side: usize| (0..units).filter(|u| text[2 * u + side] == 0).count();
    let (even, odd) = (zeros(0), zeros(1));
    if odd * 2 >= units && even * 20 <= units {
        Some(Encoding::Utf16Le)
    } else if even * 2 >= units && odd * 20 <= units {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

fn terminator(text: &str) -> &'static str {
    let crlf = text.matches("\r\n").count();
    let lf = text.matches('\n').count() - crlf;
    let cr = text.matches('\r').count() - crlf;
    let stx = text.matches('\u{2}').count();
    [(crlf, "\r\n"), (lf, "\n"), (cr, "\r"), (stx, "\u{2}")]
        .into_iter()
        .max_by_key(|(n, _)| *n)
        .filter(|(n, _)| *n > 0)
        .map_or("\n", |(_, t)| t)
}

/// The candidate found the same (non-zero) number of times on the most lines.
fn delimiter(lines: &[&str]) -> char {
    DELIMITERS
        .into_iter()
        .map(|d| {
            let counts: Vec<usize> = lines.iter().map(|l| l.matches(d).count()).collect();
            let mode = counts
                .iter()
                .copied()
                .filter(|&n| n > 0)
                .max_by_key(|n| counts.iter().filter(|&&m| m == *n).count());
            let agree = mode.map_or(0, |m| counts.iter().filter(|&&n| n == m).count());
            (agree, d)
        })
        .filter(|(agree, _)| *agree > 0)
        .max_by_key(|(agree, d)| (*agree, usize::from(*d == ',')))
        .map_or(',', |(_, d)| d)
}

/// A header has no numeric field where the next lines have one.
fn header(lines: &[&str], d: char) -> bool {
    let numeric = |f: &str| {
        let f = f.trim().trim_matches('"');
        !f.is_empty() && f.parse::<f64>().is_ok()
    };
    let Some((first, rest)) = lines.split_first() else {
        return false;
    };
    let first: Vec<&str> = first.split(d).collect();
    if first.iter().any(|f| numeric(f)) {
        return false;
    }
    (0..first.len()).any(|i| {
        rest.iter()
            .take(20)
            .any(|l| l.split(d).nth(i).is_some_and(numeric))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Hints {
        sniff(text.as_bytes(), text.as_bytes(), true).unwrap()
    }

    #[test]
    fn delimiters_terminators_and_headers() {
        let h = of("id,name\n1,a\n2,b\n3,c\n");
        assert_eq!(
            (
                h.field_delimiter,
                h.record_terminator.as_str(),
                h.header_row
            ),
            (',', "\n", true)
        );
        let h = of("1\ta\tx\r\n2\tb\ty\r\n3\tc\tz\r\n");
        assert_eq!(
            (
                h.field_delimiter,
                h.record_terminator.as_str(),
                h.header_row
            ),
            ('\t', "\r\n", false)
        );
        let h = of("a,b\rc,d\re,f\r");
        assert_eq!(h.record_terminator, "\r");
        let h = of("1\u{1}a\u{2}2\u{1}b\u{2}3\u{1}c\u{2}");
        assert_eq!(
            (h.field_delimiter, h.record_terminator.as_str()),
            ('\u{1}', "\u{2}")
        );
        let h = of("one\ntwo\nthree\n");
        assert_eq!((h.field_delimiter, h.header_row), (',', false));
    }

    #[test]
    fn backslash_escapes_are_recognised_so_nothing_is_mis_split() {
        let h = of("1,a\\, b,x\n2,c,y\n3,d\\\\e,z\n");
        assert_eq!(h.escape, Some('\\'));
        assert_eq!(h.quoting, None);
        let h = of("id,text\n1,\"say \"\"hi\"\"\"\n2,plain\n");
        assert_eq!(
            (h.quoting, h.doublequote, h.escape),
            (Some(Quoting::Minimal), true, None)
        );
    }

    #[test]
    fn column_types_come_from_the_sample_in_the_hints_formats() {
        let h = Hints::of(Variant::Csv);
        let text = "id,price,ok,day,at,name\n1,1.5,True,11/28/26,11/28/26 17:30,x\n2,,False,01/01/70,01/01/70 00:00,y\n";
        let schema = infer_schema(text, true, &h).unwrap();
        let types: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        assert_eq!(
            types,
            [
                "Int64",
                "Float64",
                "Boolean",
                "Date32",
                "Timestamp(µs)",
                "Utf8"
            ]
        );
        let b = Hints::of(Variant::Bluelabs);
        let schema = infer_schema("1,a\\,b\n2,c\n", true, &b).unwrap();
        assert_eq!(schema.field(0).name(), "column_1");
        assert_eq!(schema.fields().len(), 2);
    }

    #[test]
    fn encodings_and_compression_come_from_the_bytes() {
        assert_eq!(of("\u{feff}a,b\n1,2\n").encoding, Encoding::Utf8Bom);
        let latin = b"caf\xe9,1\nna\xefve,2\n";
        assert_eq!(
            sniff(latin, latin, true).unwrap().encoding,
            Encoding::Latin1
        );
        let cp = b"\x93quoted\x94,1\nx,2\n";
        assert_eq!(sniff(cp, cp, true).unwrap().encoding, Encoding::Cp1252);
        let gz = [0x1f, 0x8b, 8, 0];
        assert_eq!(
            sniff(&gz, b"a,b\n", false).unwrap().compression,
            Some(Compression::Gzip)
        );
        assert!(sniff(b"", b"", true).unwrap_err().message.contains("empty"));
        let utf16: Vec<u8> = "a,b\n1,2\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let h = sniff(&utf16, &utf16, true).unwrap();
        assert_eq!(
            (h.encoding, h.field_delimiter, h.header_row),
            (Encoding::Utf16Be, ',', true)
        );
    }
}
