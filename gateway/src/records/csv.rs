//! CSV with a header flag and a delimiter: schema inferred from a sample, decoded as a stream.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::csv::reader::Format as CsvFormat;
use arrow::csv::{ReaderBuilder, WriterBuilder};
use arrow::datatypes::SchemaRef;
use bytes::{Buf, Bytes};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::lines::Bound;
use super::{CsvDialect, Drain, Encoder, whole_lines};
use crate::convert::{DATE, DATETIME, DATETIME_TZ, TIME};
use crate::error::{Context, Error, Result};
use crate::transfer::BatchStream;

/// Records read to infer the schema.
const INFER_RECORDS: usize = 10_000;

pub fn infer_schema(sample: &[u8], whole_file: bool, dialect: CsvDialect) -> Result<SchemaRef> {
    let sample = whole_lines(sample, whole_file)?;
    let (schema, _) = CsvFormat::default()
        .with_header(dialect.header)
        .with_delimiter(dialect.delimiter)
        .infer_schema(Cursor::new(sample), Some(INFER_RECORDS))
        .invalid("cannot read a CSV header and rows")?;
    Ok(std::sync::Arc::new(schema))
}

/// Decode `bytes` as CSV rows of `schema`, `batch_rows` at a time.
pub fn decode(
    bytes: BoxStream<'static, Result<Bytes>>,
    schema: SchemaRef,
    dialect: CsvDialect,
    batch_rows: usize,
    bound: Bound,
) -> Result<BatchStream> {
    let decoder = ReaderBuilder::new(schema)
        .with_header(dialect.header)
        .with_delimiter(dialect.delimiter)
        .with_batch_size(batch_rows)
        .build_decoder();
    Ok(byte_decode(checked(bytes, dialect, bound), decoder))
}

/// `bytes` as they are, checked on the way past (one pass, one count of line ends) for what
/// arrow-csv would take silently:
///
/// - a quoted field still open at the end: csv-core ends it there, so a stray quote once
///   took every row after it into one value;
/// - an open quoted field past `bound`: arrow-csv holds a record whole, and a value of many
///   short lines passed the bound on a line;
/// - with a header, a file of one unended line: all header and no rows, which is how a file
///   whose records end otherwise (Vertica's `\x02`) was once copied as zero rows;
/// - where the dialect says so ([`CsvDialect::no_escape`]), a backslash escape: the file
///   was taken for plain CSV because its sniffed first bytes showed none, and read on as
///   plain CSV its escaped fields would be split or kept wrongly.
fn checked(
    bytes: BoxStream<'static, Result<Bytes>>,
    dialect: CsvDialect,
    bound: Bound,
) -> BoxStream<'static, Result<Bytes>> {
    let checks = Checks {
        quotes: Quotes {
            delimiter: dialect.delimiter,
            ..Quotes::default()
        },
        dialect,
        bound,
        seen: 0,
        backslash_pending: false,
    };
    futures::stream::unfold(Some((bytes, checks)), |s| async move {
        let (mut bytes, mut checks) = s?;
        match bytes.next().await {
            Some(Ok(chunk)) => match checks.take(&chunk) {
                Ok(()) => Some((Ok(chunk), Some((bytes, checks)))),
                Err(e) => Some((Err(e), None)),
            },
            Some(Err(e)) => Some((Err(e), None)),
            None => checks.end().err().map(|e| (Err(e), None)),
        }
    })
    .boxed()
}

/// The hint that reads a file whose fields escape with a backslash.
const ESCAPE_HINT: &str = r#"--from-hints '{"escape": "\\"}'"#;

/// What [`checked`] keeps between chunks.
struct Checks {
    dialect: CsvDialect,
    bound: Bound,
    quotes: Quotes,
    /// Bytes so far.
    seen: u64,
    /// The chunk before ended in a backslash.
    backslash_pending: bool,
}

impl Checks {
    fn take(&mut self, chunk: &[u8]) -> Result<()> {
        if self.dialect.no_escape
            && let Some(at) = self.escape_in(chunk)
        {
            let line = self.quotes.lines + newlines(&chunk[..at]) + 1;
            return Err(Error::invalid(format!(
                "line {line}: a backslash escape, where the file's first bytes showed none and \
                 it was being read as plain CSV: if backslashes escape in this file, read it \
                 with {ESCAPE_HINT}; if they are data, with --from-format csv"
            )));
        }
        self.quotes.follow(chunk);
        self.seen += chunk.len() as u64;
        if self.quotes.open && self.quotes.open_bytes > self.bound.max {
            return Err(self.bound.record_too_long(self.quotes.opened_on_line));
        }
        Ok(())
    }

    /// Where in `chunk` a backslash escape (`\\`, or `\` before the delimiter or a line
    /// end) begins, if one does.
    fn escape_in(&mut self, chunk: &[u8]) -> Option<usize> {
        let d = self.dialect.delimiter;
        let escapes = |b: u8| matches!(b, b'\\' | b'\n' | b'\r') || b == d;
        let pending = std::mem::replace(&mut self.backslash_pending, chunk.last() == Some(&b'\\'));
        (pending && chunk.first().is_some_and(|&b| escapes(b)))
            .then_some(0)
            .or_else(|| {
                memchr::memchr_iter(b'\\', chunk)
                    .find(|&i| chunk.get(i + 1).is_some_and(|&b| escapes(b)))
            })
    }

    fn end(&self) -> Result<()> {
        if self.quotes.open {
            return Err(Error::invalid(format!(
                "line {}: a quoted field opened there is never closed (the file ends inside it)",
                self.quotes.opened_on_line
            )));
        }
        if self.dialect.header && self.seen > 0 && self.quotes.lines == 0 {
            return Err(Error::invalid(format!(
                "the file is one line with no line end ({} bytes): read as a CSV header it \
                 leaves no rows. If its records end otherwise (Vertica's \\x02), read it with \
                 --from-format records and the hints `mvrec sniff` prints",
                self.seen
            )));
        }
        Ok(())
    }
}

/// The line ends in `bytes` (a loop the compiler vectorises).
fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// arrow-csv's error, with the hint that reads the file where it can tell one.
fn bad_csv(e: arrow::error::ArrowError) -> Error {
    let said = e.to_string();
    let hint = if said.contains("incorrect number of fields") {
        format!(
            ": a row with more or fewer fields than the first; if fields escape the delimiter \
             with a backslash, read it with {ESCAPE_HINT}"
        )
    } else if said.contains("invalid UTF-8") {
        r#": the file is not UTF-8 there; give its encoding, say --from-hints '{"encoding": "CP1252"}'"#
            .into()
    } else {
        String::new()
    };
    Error::invalid(format!("bad CSV: {said}{hint}")).with_source(e)
}

/// Where the quotes of a CSV stream leave it.
#[derive(Default)]
struct Quotes {
    delimiter: u8,
    /// Inside a quoted field.
    open: bool,
    /// A quote ended the last chunk inside a quoted field: closing, or the first of `""`.
    quote_pending: bool,
    /// The last byte of the chunk before, which says whether a quote at the start of this one
    /// opens a field (none yet: the start of the file is a field's start).
    last: Option<u8>,
    /// Line ends before this chunk, and the line the open field began on.
    lines: u64,
    opened_on_line: u64,
    /// The bytes of the open field so far.
    open_bytes: usize,
}

impl Quotes {
    fn follow(&mut self, chunk: &[u8]) {
        let mut i = 0;
        let mut opened_at = None;
        if self.quote_pending {
            self.quote_pending = false;
            match chunk.first() {
                Some(b'"') => i = 1,          // `""`: a quote inside the field
                Some(_) => self.open = false, // it closed the field
                None => self.quote_pending = true,
            }
        }
        while i < chunk.len() {
            let Some(at) = memchr::memchr(b'"', &chunk[i..]).map(|at| i + at) else {
                break;
            };
            if self.open {
                match chunk.get(at + 1) {
                    Some(b'"') => i = at + 2,
                    Some(_) => {
                        self.open = false;
                        i = at + 1;
                    }
                    None => {
                        self.quote_pending = true;
                        i = at + 1;
                    }
                }
                continue;
            }
            let before = if at == 0 {
                self.last
            } else {
                Some(chunk[at - 1])
            };
            if before.is_none_or(|b| b == self.delimiter || b == b'\n' || b == b'\r') {
                self.open = true;
                opened_at = Some(at);
            }
            i = at + 1;
        }
        // Lines are counted only for a field still open at the chunk's end.
        match (self.open, opened_at) {
            (true, Some(at)) => {
                self.opened_on_line = self.lines + newlines(&chunk[..at]) + 1;
                self.open_bytes = chunk.len() - at;
            }
            (true, None) => self.open_bytes += chunk.len(),
            (false, _) => self.open_bytes = 0,
        }
        self.lines += newlines(chunk);
        if let Some(&b) = chunk.last() {
            self.last = Some(b);
        }
    }
}

/// What arrow's push decoders (CSV, JSON) have in common.
pub(crate) trait PushDecoder: Send + 'static {
    fn decode(&mut self, buf: &[u8]) -> Result<usize>;
    fn flush(&mut self) -> Result<Option<RecordBatch>>;
    fn full(&self) -> bool;
}

impl PushDecoder for arrow::csv::reader::Decoder {
    fn decode(&mut self, buf: &[u8]) -> Result<usize> {
        arrow::csv::reader::Decoder::decode(self, buf).map_err(bad_csv)
    }
    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        arrow::csv::reader::Decoder::flush(self).map_err(bad_csv)
    }
    fn full(&self) -> bool {
        self.capacity() == 0
    }
}

struct State<D> {
    decoder: D,
    input: BoxStream<'static, Result<Bytes>>,
    buf: Bytes,
    eof: bool,
    failed: bool,
}

/// Feed a byte stream to a push decoder, yielding a batch whenever it is full, and the rest at
/// the end of the input. An empty slice tells the decoder the input ended.
pub(crate) fn byte_decode<D: PushDecoder>(
    input: BoxStream<'static, Result<Bytes>>,
    decoder: D,
) -> BatchStream {
    let state = State {
        decoder,
        input,
        buf: Bytes::new(),
        eof: false,
        failed: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        if s.failed {
            return None;
        }
        let step = async {
            loop {
                while s.buf.is_empty() && !s.eof {
                    match s.input.next().await {
                        Some(chunk) => s.buf = chunk?,
                        None => s.eof = true,
                    }
                }
                let used = s.decoder.decode(&s.buf)?;
                s.buf.advance(used);
                if used == 0 || s.decoder.full() {
                    match s.decoder.flush()? {
                        Some(batch) if batch.num_rows() > 0 => return Ok(Some(batch)),
                        _ if s.eof && s.buf.is_empty() => return Ok(None),
                        _ => continue,
                    }
                }
            }
        };
        match step.await {
            Ok(Some(batch)) => Some((Ok(batch), s)),
            Ok(None) => None,
            Err(e) => {
                s.failed = true;
                Some((Err(e), s))
            }
        }
    })
    .boxed()
}

pub struct CsvEncoder {
    writer: Option<arrow::csv::Writer<Drain>>,
    out: Drain,
    schema: SchemaRef,
    wrote: bool,
}

impl CsvEncoder {
    pub fn new(dialect: CsvDialect, schema: SchemaRef) -> Self {
        let out = Drain::default();
        let writer = WriterBuilder::new()
            .with_header(dialect.header)
            .with_delimiter(dialect.delimiter)
            .with_date_format(DATE.into())
            .with_datetime_format(DATETIME.into())
            .with_timestamp_format(DATETIME.into())
            .with_timestamp_tz_format(DATETIME_TZ.into())
            .with_time_format(TIME.into())
            .build(out.clone());
        Self {
            writer: Some(writer),
            out,
            schema,
            wrote: false,
        }
    }
}

impl Encoder for CsvEncoder {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::internal("CSV encoder used after finish"))?;
        writer.write(batch).invalid("cannot write CSV")?;
        self.wrote = true;
        Ok(self.out.take())
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        if !self.wrote {
            // A file of no rows still has its header (the bytes the writer gave up for it
            // are part of the file, and were once dropped here).
            let empty = RecordBatch::new_empty(self.schema.clone());
            bytes = self.encode(&empty)?;
        }
        if let Some(writer) = self.writer.take() {
            // Dropping the writer flushes its buffer into `out`.
            drop(writer.into_inner());
        }
        bytes.extend(self.out.take());
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};

    async fn unescaped(chunks: &[&'static str]) -> Result<String> {
        let chunks: Vec<Result<Bytes>> = chunks.iter().map(|c| Ok(Bytes::from(*c))).collect();
        let input = futures::stream::iter(chunks).boxed();
        let dialect = CsvDialect {
            header: false,
            no_escape: true,
            ..CsvDialect::default()
        };
        let checked = checked(input, dialect, Bound::none());
        let out: Vec<Bytes> = futures::TryStreamExt::try_collect(checked).await?;
        Ok(out.iter().map(|b| String::from_utf8_lossy(b)).collect())
    }

    #[tokio::test]
    async fn an_escape_is_found_by_line_wherever_the_chunks_cut_it() {
        let plain = ["a,b\n", "1,C:\\dir\n2,", "x\\y\n"];
        assert_eq!(unescaped(&plain).await.unwrap(), plain.concat());
        for (chunks, line) in [
            (&["a,b\n1,x\\", ",y\n"][..], 2),
            (&["a,b\n1,x\n2,back\\\\slash\n"][..], 3),
            (&["a,b\n", "\n", "1,end\\", "\n"][..], 3),
        ] {
            let e = unescaped(chunks).await.unwrap_err();
            assert!(
                e.message
                    .starts_with(&format!("line {line}: a backslash escape")),
                "{chunks:?}: {e}"
            );
            assert!(e.message.contains(ESCAPE_HINT), "{e}");
        }
    }

    /// The line a quoted field is left open on, or None, for `text` cut into chunks of
    /// every size from 1 byte.
    fn left_open(text: &str) -> Vec<Option<u64>> {
        (1..=text.len().max(1))
            .map(|size| {
                let mut q = Quotes {
                    delimiter: b',',
                    ..Quotes::default()
                };
                for chunk in text.as_bytes().chunks(size) {
                    q.follow(chunk);
                }
                q.open.then_some(q.opened_on_line)
            })
            .collect()
    }

    #[test]
    fn a_quote_left_open_is_found_by_line_wherever_the_chunks_cut() {
        for closed in [
            "a,b\n1,\"x\"\n",
            "a,b\n1,\"x, \"\"y\"\" z\"\n2,\"\"\n",
            "a,b\n1,5 \"inch\n2,he said \"hi\n",
            "a,b\r\n1,\"two\r\nlines\"\r\n",
            "\"a\",b\n",
        ] {
            assert!(left_open(closed).iter().all(Option::is_none), "{closed:?}");
        }
        for (open, line) in [
            ("a,b\n1,\"never closed\n2,x\n", 2),
            ("a,b\n1,\"x\"\n2,\"\"\"\n3,y\n", 3),
            ("\"a,b\n", 1),
        ] {
            assert!(
                left_open(open).iter().all(|l| *l == Some(line)),
                "{open:?}: {:?}",
                left_open(open)
            );
        }
    }

    #[test]
    fn a_file_of_no_rows_keeps_its_header() {
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let encoder = Box::new(CsvEncoder::new(CsvDialect::default(), schema));
        assert_eq!(encoder.finish().unwrap(), b"id,name\n");
    }
}
