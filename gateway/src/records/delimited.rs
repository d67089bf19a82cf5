//! Splitting delimited text into records and fields by the hints that shape it: delimiter,
//! record terminator, quoting with a quote character and doubled quotes, and a backslash
//! escape that works outside quotes too (Records Mover's bluelabs files escape delimiters and
//! newlines that way; csv-core, under arrow-csv, honours escapes only inside quotes and would
//! split `a\,b` in two).
//!
//! The splitter is fed chunks of UTF-8 text as they arrive and hands out whole records; a
//! record may span any number of chunks. An unterminated quote or an escape at the very end is
//! an error naming the line (from 1: record terminators and newlines inside fields count) and
//! the field. Delimiter, terminator, quote and escape may be any character (`þ` is a common
//! delimiter in legal exports).

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    Char(char),
    CrLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: char,
    pub terminator: Terminator,
    /// None: quote characters are data.
    pub quote: Option<char>,
    /// Inside quotes, two quote characters stand for one.
    pub doublequote: bool,
    pub escape: Option<char>,
}

impl Dialect {
    /// The dialect the hints describe.
    pub fn from_hints(h: &super::hints::Hints) -> Result<Self> {
        let terminator = match h.record_terminator.as_str() {
            "\r\n" => Terminator::CrLf,
            t => Terminator::Char(t.chars().next().unwrap_or('\n')),
        };
        let quote = h.quoting.map(|_| h.quotechar);
        let structure = [Some(h.field_delimiter), quote, h.escape];
        let clash = match terminator {
            Terminator::Char(t) => structure.contains(&Some(t)),
            Terminator::CrLf => false,
        } || structure
            .iter()
            .flatten()
            .enumerate()
            .any(|(i, c)| structure.iter().flatten().skip(i + 1).any(|d| d == c));
        if clash {
            return Err(Error::invalid(format!(
                "the delimiter {:?}, terminator {:?}, quote {:?} and escape {:?} must differ",
                h.field_delimiter, h.record_terminator, quote, h.escape
            )));
        }
        Ok(Self {
            delimiter: h.field_delimiter,
            terminator,
            quote,
            doublequote: h.doublequote,
            escape: h.escape,
        })
    }
}

/// One record: its fields' text, and whether each was quoted (a quoted empty field is an
/// empty string; an unquoted one may stand for NULL, as the variant says).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub fields: Vec<String>,
    pub quoted: Vec<bool>,
    /// The line the record starts on, from 1.
    pub line: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the end of the quotes, or the first of a doubled pair.
    QuoteInQuoted,
    Escaped {
        quoted: bool,
    },
    /// A CR seen where CRLF ends records.
    Cr {
        quoted: bool,
    },
}

pub struct Splitter {
    dialect: Dialect,
    state: State,
    field: String,
    record: Record,
    line: u64,
}

impl Splitter {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            state: State::FieldStart,
            field: String::new(),
            record: Record {
                line: 1,
                ..Default::default()
            },
            line: 1,
        }
    }

    fn end_field(&mut self, quoted: bool) {
        self.record.fields.push(std::mem::take(&mut self.field));
        self.record.quoted.push(quoted);
    }

    fn end_record(&mut self, quoted: bool, out: &mut Vec<Record>) {
        self.end_field(quoted);
        self.line += 1;
        let next = Record {
            line: self.line,
            ..Default::default()
        };
        out.push(std::mem::replace(&mut self.record, next));
        self.state = State::FieldStart;
    }

    /// Where the input pushed so far ends: its line and field, from 1.
    pub fn position(&self) -> (u64, usize) {
        (self.line, self.record.fields.len() + 1)
    }

    /// Split `text` (any piece of the input), appending the records it completes to `out`.
    pub fn push(&mut self, text: &str, out: &mut Vec<Record>) -> Result<()> {
        let d = self.dialect;
        for c in text.chars() {
            let is = |x: char| c == x;
            let ends_record = |state_quoted: bool| match d.terminator {
                Terminator::Char(t) => is(t) && !state_quoted,
                Terminator::CrLf => false,
            };
            match self.state {
                State::FieldStart | State::Unquoted => {
                    let start = self.state == State::FieldStart;
                    if d.escape.is_some_and(is) {
                        self.state = State::Escaped { quoted: false };
                    } else if start && d.quote.is_some_and(is) {
                        self.state = State::Quoted;
                    } else if is(d.delimiter) {
                        self.end_field(false);
                        self.state = State::FieldStart;
                    } else if ends_record(false) {
                        self.end_record(false, out);
                    } else if d.terminator == Terminator::CrLf && is('\r') {
                        self.state = State::Cr { quoted: false };
                    } else {
                        self.field.push(c);
                        self.state = State::Unquoted;
                    }
                }
                State::Quoted => {
                    if d.escape.is_some_and(is) {
                        self.state = State::Escaped { quoted: true };
                    } else if d.quote.is_some_and(is) {
                        self.state = State::QuoteInQuoted;
                    } else {
                        // Terminators inside quotes are data; lines still count.
                        if c == '\n' {
                            self.line += 1;
                        }
                        self.field.push(c);
                    }
                }
                State::QuoteInQuoted => {
                    if d.doublequote && d.quote.is_some_and(is) {
                        self.field.push(c);
                        self.state = State::Quoted;
                    } else if is(d.delimiter) {
                        self.end_field(true);
                        self.state = State::FieldStart;
                    } else if ends_record(false) {
                        self.end_record(true, out);
                    } else if d.terminator == Terminator::CrLf && is('\r') {
                        self.state = State::Cr { quoted: true };
                    } else {
                        return Err(Error::invalid(format!(
                            "line {}, field {}: {c:?} after a closing quote; expected a delimiter or the end of the record",
                            self.line,
                            self.record.fields.len() + 1
                        )));
                    }
                }
                State::Escaped { quoted } => {
                    // The escape makes the next character data: a delimiter, a terminator, a
                    // quote, the escape itself. `\N`-style codes are the variant's business.
                    if c == '\n' {
                        self.line += 1;
                    }
                    self.field.push(c);
                    self.state = if quoted {
                        State::Quoted
                    } else {
                        State::Unquoted
                    };
                }
                State::Cr { quoted } => {
                    if c == '\n' {
                        self.end_record(quoted, out);
                    } else {
                        self.field.push('\r');
                        self.state = if quoted {
                            State::QuoteInQuoted
                        } else {
                            State::Unquoted
                        };
                        // Look at this character again in the restored state.
                        let mut one = [0u8; 4];
                        self.push(c.encode_utf8(&mut one), out)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The input ended: the last record, if it was not terminated, or an error for a quote or
    /// an escape left open.
    pub fn finish(mut self, out: &mut Vec<Record>) -> Result<()> {
        match self.state {
            State::Quoted => Err(Error::invalid(format!(
                "line {}, field {}: a quoted field is never closed",
                self.record.line,
                self.record.fields.len() + 1
            ))),
            State::Escaped { .. } => Err(Error::invalid(format!(
                "line {}, field {}: the input ends in an escape character",
                self.line,
                self.record.fields.len() + 1
            ))),
            State::FieldStart if self.record.fields.is_empty() => Ok(()),
            State::QuoteInQuoted => {
                self.end_record(true, out);
                Ok(())
            }
            State::Cr { quoted } => {
                self.field.push('\r');
                self.end_record(quoted, out);
                Ok(())
            }
            _ => {
                self.end_record(false, out);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::hints::{Hints, Variant};
    use super::*;

    fn split_in_pieces(dialect: Dialect, text: &str, piece: usize) -> Result<Vec<Vec<String>>> {
        let mut s = Splitter::new(dialect);
        let mut out = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        for chunk in chars.chunks(piece.max(1)) {
            s.push(&chunk.iter().collect::<String>(), &mut out)?;
        }
        s.finish(&mut out)?;
        Ok(out.into_iter().map(|r| r.fields).collect())
    }

    /// The same records whatever the chunking.
    fn split(dialect: Dialect, text: &str) -> Result<Vec<Vec<String>>> {
        let whole = split_in_pieces(dialect, text, usize::MAX)?;
        for piece in [1, 2, 3, 7] {
            assert_eq!(
                split_in_pieces(dialect, text, piece)?,
                whole,
                "pieces of {piece}"
            );
        }
        Ok(whole)
    }

    fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn bluelabs_escapes_delimiters_newlines_and_itself_outside_quotes() {
        let d = Dialect::from_hints(&Hints::of(Variant::Bluelabs)).unwrap();
        let got = split(d, "a\\,b,c\\\nd,e\\\\\nx,y\n").unwrap();
        assert_eq!(got, rows(&[&["a,b", "c\nd", "e\\"], &["x", "y"]]));
    }

    #[test]
    fn csv_quotes_with_doubled_quotes_and_crlf() {
        let mut h = Hints::of(Variant::Csv);
        h.record_terminator = "\r\n".into();
        let d = Dialect::from_hints(&h).unwrap();
        let got = split(
            d,
            "id,text\r\n1,\"say \"\"hi\"\", then\r\nleave\"\r\n2,\r\n",
        )
        .unwrap();
        assert_eq!(
            got,
            rows(&[
                &["id", "text"],
                &["1", "say \"hi\", then\r\nleave"],
                &["2", ""]
            ])
        );
    }

    #[test]
    fn vertica_controls_and_a_last_record_without_terminator() {
        let d = Dialect::from_hints(&Hints::of(Variant::Vertica)).unwrap();
        let got = split(d, "a\u{1}b,c\"\u{2}\u{1}\u{2}x\u{1}y").unwrap();
        assert_eq!(got, rows(&[&["a", "b,c\""], &["", ""], &["x", "y"]]));
    }

    #[test]
    fn quoted_and_unquoted_empties_are_told_apart() {
        let d = Dialect::from_hints(&Hints::of(Variant::Csv)).unwrap();
        let mut s = Splitter::new(d);
        let mut out = Vec::new();
        s.push("\"\",\n", &mut out).unwrap();
        s.finish(&mut out).unwrap();
        assert_eq!(out[0].quoted, vec![true, false]);
    }

    #[test]
    fn bad_input_names_line_and_field() {
        let d = Dialect::from_hints(&Hints::of(Variant::Csv)).unwrap();
        let e = split_in_pieces(d, "a,b\n1,\"open\n2,3\n", 1).unwrap_err();
        assert!(
            e.message.contains("line 2, field 2") && e.message.contains("never closed"),
            "{e}"
        );
        let e = split_in_pieces(d, "a,b\n1,\"x\"y\n", 1).unwrap_err();
        assert!(e.message.contains("line 2, field 2"), "{e}");
        let b = Dialect::from_hints(&Hints::of(Variant::Bluelabs)).unwrap();
        let e = split_in_pieces(b, "a,b\\", 1).unwrap_err();
        assert!(e.message.contains("escape"), "{e}");
        let mut h = Hints::of(Variant::Csv);
        h.field_delimiter = '"';
        let e = Dialect::from_hints(&h).unwrap_err();
        assert!(e.message.contains("must differ"), "{e}");
    }

    #[test]
    fn any_character_delimits() {
        let mut h = Hints::of(Variant::Csv);
        h.field_delimiter = 'þ';
        h.record_terminator = "¶".into();
        let d = Dialect::from_hints(&h).unwrap();
        let records = split_in_pieces(d, "aþ\"bþ¶\"¶1þ2¶", 1).unwrap();
        assert_eq!(records[0], ["a", "bþ¶"]);
        assert_eq!(records[1], ["1", "2"]);
    }
}
