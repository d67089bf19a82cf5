//! Records Mover's description of a delimited file: the 13 hints, the 5 named variants, and
//! the `_format_delimited` JSON that carries them.
//!
//! A format is a variant's hints with the given hints laid over them, as Records Mover 1.6.4
//! does (`base_hints_from_variant`, then the user's hints). Every value is checked against
//! what the hint allows; an unknown hint, variant or value is an error, or a warning that is
//! returned to the caller with `fail_if_dont_understand = false`. Date and time formats are
//! an allow-list of named shapes ([`super::datetime`]), never format strings passed on.

use serde_json::{Map, Value, json};

use super::datetime::{DateFormat, DateTimeFormat, DateTimeTzFormat, TimeFormat};
use crate::error::{Error, Result};
use crate::records::compression::Codec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Bluelabs,
    Csv,
    Bigquery,
    Vertica,
    Dumb,
}

impl Variant {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "bluelabs" => Variant::Bluelabs,
            "csv" => Variant::Csv,
            "bigquery" => Variant::Bigquery,
            "vertica" => Variant::Vertica,
            "dumb" => Variant::Dumb,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Bluelabs => "bluelabs",
            Variant::Csv => "csv",
            Variant::Bigquery => "bigquery",
            Variant::Vertica => "vertica",
            Variant::Dumb => "dumb",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    All,
    Minimal,
    Nonnumeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16,
    Utf16Le,
    Utf16Be,
    Utf16Bom,
    Latin1,
    Cp1252,
}

impl Encoding {
    pub const ALL: [Encoding; 8] = [
        Encoding::Utf8,
        Encoding::Utf8Bom,
        Encoding::Utf16,
        Encoding::Utf16Le,
        Encoding::Utf16Be,
        Encoding::Utf16Bom,
        Encoding::Latin1,
        Encoding::Cp1252,
    ];

    /// The hint's value for this encoding.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF8",
            Encoding::Utf8Bom => "UTF8BOM",
            Encoding::Utf16 => "UTF16",
            Encoding::Utf16Le => "UTF16LE",
            Encoding::Utf16Be => "UTF16BE",
            Encoding::Utf16Bom => "UTF16BOM",
            Encoding::Latin1 => "LATIN1",
            Encoding::Cp1252 => "CP1252",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Bzip,
    /// Our extension: Records Mover does not know it.
    Zstd,
}

/// An error with `strict`, else one more warning.
fn complain(strict: bool, warnings: &mut Vec<String>, message: String) -> Result<()> {
    if strict {
        return Err(Error::invalid(format!(
            "{message} (set fail_if_dont_understand = false to go on without it)"
        )));
    }
    warnings.push(message);
    Ok(())
}

impl Compression {
    /// The codec that reads and writes it.
    pub fn codec(self) -> Codec {
        match self {
            Compression::Gzip => Codec::Gzip,
            Compression::Bzip => Codec::Bzip2,
            Compression::Zstd => Codec::Zstd,
        }
    }
}

impl From<Codec> for Compression {
    fn from(codec: Codec) -> Self {
        match codec {
            Codec::Gzip => Compression::Gzip,
            Codec::Bzip2 => Compression::Bzip,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

/// All 13 hints of a delimited format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hints {
    pub field_delimiter: char,
    /// One character, or `\r\n`.
    pub record_terminator: String,
    pub header_row: bool,
    /// None: fields are never quoted.
    pub quoting: Option<Quoting>,
    pub quotechar: char,
    pub doublequote: bool,
    /// None, or a backslash that escapes the delimiter, the terminator, the quote and itself.
    pub escape: Option<char>,
    pub encoding: Encoding,
    pub compression: Option<Compression>,
    pub dateformat: DateFormat,
    pub timeonlyformat: TimeFormat,
    pub datetimeformat: DateTimeFormat,
    pub datetimeformattz: DateTimeTzFormat,
}

/// The hint names, in Records Mover's order.
pub const HINT_NAMES: [&str; 13] = [
    "header-row",
    "field-delimiter",
    "compression",
    "record-terminator",
    "quoting",
    "quotechar",
    "doublequote",
    "escape",
    "encoding",
    "dateformat",
    "timeonlyformat",
    "datetimeformattz",
    "datetimeformat",
];

impl Hints {
    /// A variant's hints, exactly as Records Mover 1.6.4 defines them.
    pub fn of(variant: Variant) -> Self {
        let mut h = Hints {
            field_delimiter: ',',
            record_terminator: "\n".into(),
            header_row: false,
            quoting: None,
            quotechar: '"',
            doublequote: false,
            escape: None,
            encoding: Encoding::Utf8,
            compression: Some(Compression::Gzip),
            dateformat: DateFormat::YyyyMmDd,
            timeonlyformat: TimeFormat::Hh24MiSs,
            datetimeformat: DateTimeFormat::YyyyMmDdHhMiSs,
            datetimeformattz: DateTimeTzFormat::YyyyMmDdHhMiSsOf,
        };
        match variant {
            Variant::Dumb => {}
            Variant::Csv => {
                h.quoting = Some(Quoting::Minimal);
                h.doublequote = true;
                h.dateformat = DateFormat::MmDdYy;
                h.datetimeformat = DateTimeFormat::MmDdYyHh24Mi;
                h.datetimeformattz = DateTimeTzFormat::MmDdYyHh24Mi;
                h.header_row = true;
            }
            Variant::Bigquery => {
                h.quoting = Some(Quoting::Minimal);
                h.doublequote = true;
                h.header_row = true;
                h.datetimeformat = DateTimeFormat::YyyyMmDdHhMiSs;
                h.datetimeformattz = DateTimeTzFormat::YyyyMmDdHhMiSs;
            }
            Variant::Bluelabs => {
                h.escape = Some('\\');
                h.datetimeformat = DateTimeFormat::YyyyMmDdHh24MiSs;
            }
            Variant::Vertica => {
                h.field_delimiter = '\u{1}';
                h.record_terminator = "\u{2}".into();
                h.compression = None;
            }
        }
        h
    }

    /// The hints a `_format_delimited` document (or a user) gives: `variant`'s, with `hints`
    /// laid over them. With `strict`, anything not understood is an error; otherwise it is
    /// skipped and described in the returned warnings.
    pub fn from_json(
        variant: Option<&str>,
        hints: &Map<String, Value>,
        strict: bool,
    ) -> Result<(Self, Vec<String>)> {
        let mut warnings = Vec::new();
        let variant = match variant {
            None => Variant::Bluelabs,
            Some(name) => Variant::parse(name).map_or_else(
                || {
                    complain(
                        strict,
                        &mut warnings,
                        format!(
                            "unknown delimited variant {name:?}; known: bluelabs, csv, bigquery, vertica, dumb"
                        ),
                    )
                    .map(|()| Variant::Bluelabs)
                },
                Ok,
            )?,
        };
        let mut h = Self::of(variant);
        warnings.extend(h.overlay(hints, strict)?);
        Ok((h, warnings))
    }

    /// These hints with `hints` laid over them (a user's over sniffed ones, say); what is not
    /// understood is an error with `strict`, else a returned warning.
    pub fn overlay(&mut self, hints: &Map<String, Value>, strict: bool) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        for (name, value) in hints {
            if let Err(why) = self.set(name, value) {
                complain(strict, &mut warnings, format!("hint {name:?}: {why}"))?;
            }
        }
        Ok(warnings)
    }

    /// Set one hint from its JSON value. Long by design: one arm per hint of the 13, each
    /// with the values Records Mover allows for it.
    fn set(&mut self, name: &str, value: &Value) -> std::result::Result<(), String> {
        let text = || {
            value
                .as_str()
                .ok_or_else(|| format!("{value} is not a string"))
        };
        let one_char = |s: &str| -> std::result::Result<char, String> {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(c),
                _ => Err(format!("{s:?} is not one character")),
            }
        };
        let flag = || {
            value
                .as_bool()
                .ok_or_else(|| format!("{value} is not true or false"))
        };
        let unknown = |allowed: &str| format!("{value} is not one of {allowed}");
        match name {
            "field-delimiter" => self.field_delimiter = one_char(text()?)?,
            "record-terminator" => {
                let t = text()?;
                if t != "\r\n" {
                    one_char(t)?;
                }
                self.record_terminator = t.to_string();
            }
            "header-row" => self.header_row = flag()?,
            "quoting" => {
                self.quoting = match value.as_str() {
                    None if value.is_null() => None,
                    Some("all") => Some(Quoting::All),
                    Some("minimal") => Some(Quoting::Minimal),
                    Some("nonnumeric") => Some(Quoting::Nonnumeric),
                    _ => return Err(unknown("all, minimal, nonnumeric, null")),
                }
            }
            "quotechar" => self.quotechar = one_char(text()?)?,
            "doublequote" => self.doublequote = flag()?,
            "escape" => {
                self.escape = match value.as_str() {
                    None if value.is_null() => None,
                    Some("\\") => Some('\\'),
                    _ => return Err(unknown("\"\\\\\", null")),
                }
            }
            "encoding" => {
                self.encoding = Encoding::parse(text()?).ok_or_else(|| {
                    unknown("UTF8, UTF8BOM, UTF16, UTF16LE, UTF16BE, UTF16BOM, LATIN1, CP1252")
                })?
            }
            "compression" => {
                self.compression = match value.as_str() {
                    None if value.is_null() => None,
                    Some("GZIP") => Some(Compression::Gzip),
                    Some("BZIP") => Some(Compression::Bzip),
                    Some("ZSTD") => Some(Compression::Zstd),
                    Some("LZO") => return Err("LZO compression is not supported".into()),
                    _ => return Err(unknown("GZIP, BZIP, ZSTD, null")),
                }
            }
            "dateformat" => {
                self.dateformat =
                    DateFormat::parse(text()?).ok_or_else(|| unknown(DateFormat::ALLOWED))?
            }
            "timeonlyformat" => {
                self.timeonlyformat =
                    TimeFormat::parse(text()?).ok_or_else(|| unknown(TimeFormat::ALLOWED))?
            }
            "datetimeformat" => {
                self.datetimeformat = DateTimeFormat::parse(text()?)
                    .ok_or_else(|| unknown(DateTimeFormat::ALLOWED))?
            }
            "datetimeformattz" => {
                self.datetimeformattz = DateTimeTzFormat::parse(text()?)
                    .ok_or_else(|| unknown(DateTimeTzFormat::ALLOWED))?
            }
            other => return Err(format!("{other:?} is not a delimited hint")),
        }
        Ok(())
    }

    /// All 13 hints as Records Mover writes them in `_format_delimited`.
    pub fn to_json(&self) -> Map<String, Value> {
        let quoting = match self.quoting {
            None => Value::Null,
            Some(Quoting::All) => json!("all"),
            Some(Quoting::Minimal) => json!("minimal"),
            Some(Quoting::Nonnumeric) => json!("nonnumeric"),
        };
        let compression = match self.compression {
            None => Value::Null,
            Some(Compression::Gzip) => json!("GZIP"),
            Some(Compression::Bzip) => json!("BZIP"),
            Some(Compression::Zstd) => json!("ZSTD"),
        };
        let mut m = Map::new();
        m.insert("header-row".into(), json!(self.header_row));
        m.insert(
            "field-delimiter".into(),
            json!(self.field_delimiter.to_string()),
        );
        m.insert("compression".into(), compression);
        m.insert("record-terminator".into(), json!(self.record_terminator));
        m.insert("quoting".into(), quoting);
        m.insert("quotechar".into(), json!(self.quotechar.to_string()));
        m.insert("doublequote".into(), json!(self.doublequote));
        m.insert(
            "escape".into(),
            self.escape.map_or(Value::Null, |c| json!(c.to_string())),
        );
        m.insert("encoding".into(), json!(self.encoding.name()));
        m.insert("dateformat".into(), json!(self.dateformat.name()));
        m.insert("timeonlyformat".into(), json!(self.timeonlyformat.name()));
        m.insert(
            "datetimeformattz".into(),
            json!(self.datetimeformattz.name()),
        );
        m.insert("datetimeformat".into(), json!(self.datetimeformat.name()));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn variants_are_records_movers() {
        let b = Hints::of(Variant::Bluelabs);
        assert_eq!(b.escape, Some('\\'));
        assert_eq!(b.compression, Some(Compression::Gzip));
        assert!(!b.header_row && b.quoting.is_none());
        assert_eq!(b.datetimeformat, DateTimeFormat::YyyyMmDdHh24MiSs);
        let c = Hints::of(Variant::Csv);
        assert!(c.header_row && c.doublequote && c.escape.is_none());
        assert_eq!(c.dateformat, DateFormat::MmDdYy);
        let q = Hints::of(Variant::Bigquery);
        assert_eq!(q.datetimeformattz, DateTimeTzFormat::YyyyMmDdHhMiSs);
        let v = Hints::of(Variant::Vertica);
        assert_eq!(
            (v.field_delimiter, v.record_terminator.as_str()),
            ('\u{1}', "\u{2}")
        );
        assert_eq!(v.compression, None);
        let d = Hints::of(Variant::Dumb);
        assert_eq!(d.datetimeformat, DateTimeFormat::YyyyMmDdHhMiSs);
    }

    #[test]
    fn hints_override_the_variant_and_round_trip_as_json() {
        let given = map(json!({"field-delimiter": "\t", "compression": null, "header-row": true}));
        let (h, warnings) = Hints::from_json(Some("csv"), &given, true).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(h.field_delimiter, '\t');
        assert_eq!(h.compression, None);
        assert_eq!(h.quoting, Some(Quoting::Minimal));
        let json = h.to_json();
        assert_eq!(json.len(), 13);
        for name in HINT_NAMES {
            assert!(json.contains_key(name), "{name}");
        }
        let (again, _) = Hints::from_json(Some("dumb"), &json, true).unwrap();
        assert_eq!(again, h);
    }

    #[test]
    fn what_is_not_understood_is_an_error_or_a_warning() {
        let odd = map(json!({"colour": "blue", "quoting": "sometimes", "compression": "LZO"}));
        let e = Hints::from_json(None, &odd, true).unwrap_err();
        assert!(e.message.contains("fail_if_dont_understand"), "{e}");
        let (h, warnings) = Hints::from_json(Some("bluelabs"), &odd, false).unwrap();
        assert_eq!(h, Hints::of(Variant::Bluelabs));
        assert_eq!(warnings.len(), 3);
        assert!(warnings.iter().any(|w| w.contains("LZO")), "{warnings:?}");
        let e = Hints::from_json(Some("excel"), &Map::new(), true).unwrap_err();
        assert!(e.message.contains("excel"), "{e}");
        let e = Hints::from_json(None, &map(json!({"dateformat": "%Y"})), true).unwrap_err();
        assert!(e.message.contains("YYYY-MM-DD"), "{e}");
        let e = Hints::from_json(None, &map(json!({"field-delimiter": ",,"})), true).unwrap_err();
        assert!(e.message.contains("one character"), "{e}");
    }
}
