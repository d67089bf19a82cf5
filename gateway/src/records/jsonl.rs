//! JSON lines: one object per line, schema inferred from a sample, decoded as a stream.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::reader::infer_json_schema;
use arrow::json::{LineDelimitedWriter, ReaderBuilder};
use bytes::Bytes;
use futures::stream::BoxStream;

use super::csv::{PushDecoder, byte_decode};
use super::{Drain, Encoder, whole_lines};
use crate::error::{Context, Error, Result};
use crate::transfer::BatchStream;

const INFER_RECORDS: usize = 10_000;

pub fn infer_schema(sample: &[u8], whole_file: bool) -> Result<SchemaRef> {
    let sample = whole_lines(sample, whole_file)?;
    let (schema, _) = infer_json_schema(Cursor::new(sample), Some(INFER_RECORDS))
        .invalid("cannot read JSON lines")?;
    Ok(Arc::new(schema))
}

pub fn decode(
    bytes: BoxStream<'static, Result<Bytes>>,
    schema: SchemaRef,
    batch_rows: usize,
) -> Result<BatchStream> {
    // A column of numbers and strings is inferred as text; its numbers are read as their text
    // (they once failed the read: "expected string got 0").
    let decoder = ReaderBuilder::new(schema)
        .with_batch_size(batch_rows)
        .with_coerce_primitive(true)
        .build_decoder()
        .invalid("cannot read JSON lines with this schema")?;
    Ok(byte_decode(bytes, JsonDecoder(decoder)))
}

/// The JSON decoder stops taking input once it holds a batch; `decode` then returns 0 and the
/// caller flushes.
struct JsonDecoder(arrow::json::reader::Decoder);

impl PushDecoder for JsonDecoder {
    fn decode(&mut self, buf: &[u8]) -> Result<usize> {
        self.0.decode(buf).invalid("bad JSON")
    }
    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        self.0.flush().invalid("bad JSON")
    }
    fn full(&self) -> bool {
        false
    }
}

pub struct JsonlEncoder {
    writer: Option<LineDelimitedWriter<Drain>>,
    out: Drain,
}

impl JsonlEncoder {
    pub fn new() -> Self {
        let out = Drain::default();
        Self {
            writer: Some(LineDelimitedWriter::new(out.clone())),
            out,
        }
    }
}

impl Default for JsonlEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder for JsonlEncoder {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::internal("JSON encoder used after finish"))?;
        writer.write(batch).invalid("cannot write JSON")?;
        Ok(self.out.take())
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>> {
        if let Some(mut writer) = self.writer.take() {
            writer.finish().invalid("cannot finish JSON")?;
        }
        Ok(self.out.take())
    }
}
