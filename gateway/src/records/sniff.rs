//! Telling a delimited file's hints from its first bytes.
//!
//! Compression comes from the magic number, the encoding from a byte-order mark or from
//! whether the bytes are UTF-8 (else CP1252 when its printable 0x80–0x9F characters appear,
//! else LATIN1). The record terminator is the most common of `\r\n`, `\n`, `\r` and `\u0002`;
//! the delimiter the candidate that splits the most lines into the same number of fields.
//! A backslash before a delimiter, a terminator or another backslash makes `escape` a
//! backslash: such a file is never split at an escaped delimiter. Quoting is `minimal` when
//! fields open with a double quote (with `doublequote` when `""` appears inside them), and the
//! first line is a header when it has no number where the lines below have one.

use super::compression::Codec;
use super::hints::{Compression, Encoding, Hints, Quoting, Variant};
use crate::error::{Error, Result};

const DELIMITERS: [char; 5] = [',', '\t', '|', ';', '\u{1}'];

/// Hints for `raw`, the first bytes of a file, and `text`, those bytes decompressed.
pub fn sniff(raw: &[u8], text: &[u8]) -> Result<Hints> {
    if raw.is_empty() {
        return Err(Error::invalid(
            "the file is empty: there is nothing to tell its format from",
        ));
    }
    let mut h = Hints::of(Variant::Dumb);
    h.compression = match Codec::sniff(raw)? {
        None => None,
        Some(Codec::Gzip) => Some(Compression::Gzip),
        Some(Codec::Bzip2) => Some(Compression::Bzip),
        Some(Codec::Zstd) => Some(Compression::Zstd),
    };
    let (encoding, body) = encoding(text);
    h.encoding = encoding;
    if matches!(
        encoding,
        Encoding::Utf16Le | Encoding::Utf16Be | Encoding::Utf16Bom
    ) {
        return Ok(h); // the structure is told after decoding, which is not done yet
    }
    let text: String = match std::str::from_utf8(body) {
        Ok(s) => s.to_string(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&body[..e.valid_up_to()]).into()
        }
        // Single-byte encodings: every byte is one character.
        Err(_) => body.iter().map(|&b| b as char).collect(),
    };
    h.record_terminator = terminator(&text).to_string();
    let lines: Vec<&str> = text
        .split(h.record_terminator.as_str())
        .filter(|l| !l.is_empty())
        .take(200)
        .collect();
    // The last line of a sample may be cut short: leave it out when there are others.
    let lines = if lines.len() > 2 {
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

/// Column types for delimited `text` (a sample: the last record may be cut short unless
/// `whole`) read with `hints`: per column the first of Int64, Float64, Boolean, Date32 (the
/// hints' date format), Timestamp (the datetime format), Timestamp UTC (the zoned format) and
/// Utf8 that every non-empty value of the sample reads as. Names come from the header row,
/// else `column_1`, `column_2`, ...
pub fn infer_schema(text: &str, whole: bool, hints: &Hints) -> Result<arrow::datatypes::SchemaRef> {
    use super::delimited::{Dialect, Splitter};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let mut splitter = Splitter::new(Dialect::from_hints(hints)?);
    let mut records = Vec::new();
    splitter.push(text, &mut records)?;
    if whole {
        splitter.finish(&mut records)?;
    }
    let mut records = records.into_iter();
    let names: Vec<String> = match (hints.header_row, records.next()) {
        (true, Some(header)) => header.fields,
        (false, Some(first)) => {
            let names = (1..=first.fields.len())
                .map(|i| format!("column_{i}"))
                .collect();
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
                    .filter_map(move |r| r.fields.get(i))
                    .map(String::as_str)
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

fn encoding(text: &[u8]) -> (Encoding, &[u8]) {
    match text {
        [0xEF, 0xBB, 0xBF, rest @ ..] => (Encoding::Utf8Bom, rest),
        [0xFF, 0xFE, ..] => (Encoding::Utf16Le, text),
        [0xFE, 0xFF, ..] => (Encoding::Utf16Be, text),
        _ => match std::str::from_utf8(text) {
            Ok(_) => (Encoding::Utf8, text),
            Err(e) if e.error_len().is_none() => (Encoding::Utf8, text),
            Err(_) => {
                // CP1252 prints 0x80-0x9F (€, “, ”, …); in LATIN1 they are control codes.
                let cp1252 = text.iter().any(|&b| (0x80..=0x9F).contains(&b));
                (
                    if cp1252 {
                        Encoding::Cp1252
                    } else {
                        Encoding::Latin1
                    },
                    text,
                )
            }
        },
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
        sniff(text.as_bytes(), text.as_bytes()).unwrap()
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
        assert_eq!(sniff(latin, latin).unwrap().encoding, Encoding::Latin1);
        let cp = b"\x93quoted\x94,1\nx,2\n";
        assert_eq!(sniff(cp, cp).unwrap().encoding, Encoding::Cp1252);
        let gz = [0x1f, 0x8b, 8, 0];
        assert_eq!(
            sniff(&gz, b"a,b\n").unwrap().compression,
            Some(Compression::Gzip)
        );
        assert!(sniff(b"", b"").unwrap_err().message.contains("empty"));
    }
}
