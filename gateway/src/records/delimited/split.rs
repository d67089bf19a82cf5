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
use crate::records::lines::Bound;

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
/// empty string; an unquoted one may stand for NULL, as the variant says). The fields share
/// one buffer: a record costs three allocations, not one per field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    text: String,
    /// Where each field ends in `text`.
    ends: Vec<usize>,
    quoted: Vec<bool>,
    /// The line the record starts on, from 1.
    pub line: u64,
}

impl Record {
    fn starting(line: u64, capacity: (usize, usize)) -> Self {
        Self {
            text: String::with_capacity(capacity.0),
            ends: Vec::with_capacity(capacity.1),
            quoted: Vec::with_capacity(capacity.1),
            line,
        }
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The text of field `i`.
    pub fn field(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// Whether field `i` was quoted.
    pub fn quoted(&self, i: usize) -> bool {
        self.quoted[i]
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.field(i))
    }
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
    record: Record,
    line: u64,
    /// The most one record may hold as it grows (across quoted or escaped line ends).
    bound: Bound,
}

impl Splitter {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            state: State::FieldStart,
            record: Record::starting(1, (0, 0)),
            line: 1,
            bound: Bound::none(),
        }
    }

    /// The splitter, refusing a record that grows past `bound`.
    pub fn bounded(self, bound: Bound) -> Self {
        Self { bound, ..self }
    }

    fn end_field(&mut self, quoted: bool) {
        self.record.ends.push(self.record.text.len());
        self.record.quoted.push(quoted);
    }

    fn end_record(&mut self, quoted: bool, out: &mut Vec<Record>) {
        self.end_field(quoted);
        self.line += 1;
        // The next record is likely the size of this one.
        let sizes = (self.record.text.len(), self.record.ends.len());
        let next = Record::starting(self.line, sizes);
        out.push(std::mem::replace(&mut self.record, next));
        self.state = State::FieldStart;
    }

    /// Where the input pushed so far ends: its line and field, from 1.
    pub fn position(&self) -> (u64, usize) {
        (self.line, self.record.len() + 1)
    }

    /// Split `text` (any piece of the input), appending the records it completes to `out`.
    pub fn push(&mut self, text: &str, out: &mut Vec<Record>) -> Result<()> {
        let bytes = text.as_bytes();
        let stops = self.stops();
        let mut i = 0;
        while i < bytes.len() {
            // A run of characters that change nothing is copied whole. The stops are ASCII,
            // so a run always ends on a character boundary.
            let stop = match (self.state, stops) {
                (State::Unquoted, Some((unquoted, _))) => Some(unquoted),
                (State::Quoted, Some((_, quoted))) => Some(quoted),
                _ => None,
            };
            if let Some([a, b, c]) = stop {
                let run = bytes[i..]
                    .iter()
                    .position(|&x| x == a || x == b || x == c)
                    .unwrap_or(bytes.len() - i);
                if run > 0 {
                    self.record.text.push_str(&text[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let c = text[i..].chars().next().expect("a character at a boundary");
            self.step(c, out)?;
            i += c.len_utf8();
        }
        // Checked once a piece: a record passes the bound by at most one piece.
        if self.record.text.len() > self.bound.max {
            return Err(self.bound.record_too_long(self.record.line));
        }
        Ok(())
    }

    /// The bytes that end a run of plain characters, unquoted and quoted; None when a
    /// structure character is not ASCII (every character then goes through [`Self::step`]).
    fn stops(&self) -> Option<([u8; 3], [u8; 3])> {
        let d = self.dialect;
        let ascii = |c: char| u8::try_from(c).ok().filter(u8::is_ascii);
        let delimiter = ascii(d.delimiter)?;
        let terminator = match d.terminator {
            Terminator::Char(t) => ascii(t)?,
            Terminator::CrLf => b'\r',
        };
        let escape = match d.escape {
            Some(e) => ascii(e)?,
            None => delimiter,
        };
        // Inside quotes: the quote, the escape, and newlines (which are counted).
        let quote = match d.quote {
            Some(q) => ascii(q)?,
            None => b'\n',
        };
        let quoted_escape = if d.escape.is_some() { escape } else { b'\n' };
        Some((
            [delimiter, terminator, escape],
            [quote, quoted_escape, b'\n'],
        ))
    }

    /// One character of input. Long by design: the splitter's whole state machine (in a
    /// field, in quotes, after an escape, after a quote, at a terminator), kept in one match
    /// so every transition is seen together.
    fn step(&mut self, c: char, out: &mut Vec<Record>) -> Result<()> {
        let d = self.dialect;
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
                    self.record.text.push(c);
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
                    self.record.text.push(c);
                }
            }
            State::QuoteInQuoted => {
                if d.doublequote && d.quote.is_some_and(is) {
                    self.record.text.push(c);
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
                        self.record.len() + 1
                    )));
                }
            }
            State::Escaped { quoted } => {
                // The escape makes the next character data: a delimiter, a terminator, a
                // quote, the escape itself. `\N`-style codes are the variant's business.
                if c == '\n' {
                    self.line += 1;
                }
                self.record.text.push(c);
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
                    self.record.text.push('\r');
                    self.state = if quoted {
                        State::QuoteInQuoted
                    } else {
                        State::Unquoted
                    };
                    // Look at this character again in the restored state.
                    self.step(c, out)?;
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
                self.record.len() + 1
            ))),
            State::Escaped { .. } => Err(Error::invalid(format!(
                "line {}, field {}: the input ends in an escape character",
                self.line,
                self.record.len() + 1
            ))),
            State::FieldStart if self.record.is_empty() => Ok(()),
            State::QuoteInQuoted => {
                self.end_record(true, out);
                Ok(())
            }
            State::Cr { quoted } => {
                self.record.text.push('\r');
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
        Ok(out
            .into_iter()
            .map(|r| r.fields().map(str::to_string).collect())
            .collect())
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
        assert_eq!((out[0].quoted(0), out[0].quoted(1)), (true, false));
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
