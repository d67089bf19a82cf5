//! CSV with a header flag and a delimiter: schema inferred from a sample, decoded as a stream.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::csv::reader::Format as CsvFormat;
use arrow::csv::{ReaderBuilder, WriterBuilder};
use arrow::datatypes::SchemaRef;
use bytes::{Buf, Bytes};
use futures::StreamExt;
use futures::stream::BoxStream;

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
) -> Result<BatchStream> {
    let decoder = ReaderBuilder::new(schema)
        .with_header(dialect.header)
        .with_delimiter(dialect.delimiter)
        .with_batch_size(batch_rows)
        .build_decoder();
    let bytes = match dialect.header {
        true => with_a_line_end(bytes),
        false => bytes,
    };
    Ok(byte_decode(bytes, decoder))
}

/// `bytes`, failing at their end if they held no line end at all: a file of one unended line
/// read with a header is all header and no rows, which is how a file whose records end
/// otherwise (Vertica's `\x02`) was once copied as zero rows, successfully.
fn with_a_line_end(bytes: BoxStream<'static, Result<Bytes>>) -> BoxStream<'static, Result<Bytes>> {
    let state = (bytes, 0u64, false, false);
    futures::stream::unfold(state, |(mut bytes, seen, ended_a_line, over)| async move {
        if over {
            return None;
        }
        match bytes.next().await {
            Some(Ok(chunk)) => {
                let ended = ended_a_line || memchr::memchr(b'\n', &chunk).is_some();
                let seen = seen + chunk.len() as u64;
                Some((Ok(chunk), (bytes, seen, ended, false)))
            }
            Some(Err(e)) => Some((Err(e), (bytes, seen, ended_a_line, true))),
            None if seen > 0 && !ended_a_line => Some((
                Err(Error::invalid(format!(
                    "the file is one line with no line end ({seen} bytes): read as a CSV header \
                     it leaves no rows. If its records end otherwise (Vertica's \\x02), read it \
                     with --from-format records and the hints `mvrec sniff` prints"
                ))),
                (bytes, seen, ended_a_line, true),
            )),
            None => None,
        }
    })
    .boxed()
}

/// What arrow's push decoders (CSV, JSON) have in common.
pub(crate) trait PushDecoder: Send + 'static {
    fn decode(&mut self, buf: &[u8]) -> Result<usize>;
    fn flush(&mut self) -> Result<Option<RecordBatch>>;
    fn full(&self) -> bool;
}

impl PushDecoder for arrow::csv::reader::Decoder {
    fn decode(&mut self, buf: &[u8]) -> Result<usize> {
        arrow::csv::reader::Decoder::decode(self, buf).invalid("bad CSV")
    }
    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        arrow::csv::reader::Decoder::flush(self).invalid("bad CSV")
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

    #[test]
    fn a_file_of_no_rows_keeps_its_header() {
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let dialect = CsvDialect {
            header: true,
            delimiter: b',',
        };
        let encoder = Box::new(CsvEncoder::new(dialect, schema));
        assert_eq!(encoder.finish().unwrap(), b"id,name\n");
    }
}
