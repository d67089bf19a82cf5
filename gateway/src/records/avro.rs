//! Avro object container files, Records Mover's third records format, through arrow-avro:
//! read block by block with ranged requests (the header first, for the schema), written a
//! block per batch.

use std::ops::Range;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_avro::errors::AvroError;
use arrow_avro::reader::{AsyncAvroFileReader, AsyncFileReader};
use arrow_avro::writer::AvroWriter;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryFutureExt};
use object_store::ObjectStoreExt;

use super::{Drain, Encoder};
use crate::error::{Error, Result};
use crate::transfer::BatchStream;

/// Ranged reads of one object: the Parquet reader's, which serves Avro's too.
pub use super::parquet::ObjectReader;

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes, AvroError>> {
        self.store
            .get_range(&self.path, range)
            .map_err(|e| AvroError::General(e.to_string()))
            .boxed()
    }
}

fn bad_avro(e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("bad Avro: {e}"))
}

async fn open(
    reader: ObjectReader,
    batch_rows: usize,
) -> Result<AsyncAvroFileReader<ObjectReader>> {
    let size = reader.size;
    AsyncAvroFileReader::builder(reader, size, batch_rows)
        .try_build()
        .await
        .map_err(bad_avro)
}

/// The schema an Avro file's header gives.
pub async fn describe(reader: ObjectReader) -> Result<SchemaRef> {
    Ok(open(reader, 1).await?.schema())
}

/// The file's rows, `batch_rows` at a time.
pub async fn decode(reader: ObjectReader, batch_rows: usize) -> Result<(SchemaRef, BatchStream)> {
    let reader = open(reader, batch_rows).await?;
    let schema = reader.schema();
    let stream = reader.map(|b| b.map_err(bad_avro)).boxed();
    Ok((schema, stream))
}

/// An object container file, written a block per batch (no block compression: every Avro
/// reader reads that).
pub struct AvroEncoder {
    writer: AvroWriter<Drain>,
    out: Drain,
}

impl AvroEncoder {
    pub fn new(schema: &Schema) -> Result<Self> {
        let out = Drain::default();
        let writer = AvroWriter::new(out.clone(), schema.clone())
            .map_err(|e| Error::unsupported(format!("Avro cannot hold this schema: {e}")))?;
        Ok(Self { writer, out })
    }
}

impl Encoder for AvroEncoder {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        self.writer
            .write(batch)
            .map_err(|e| Error::unsupported(format!("cannot write Avro: {e}")))?;
        Ok(self.out.take())
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>> {
        self.writer
            .finish()
            .map_err(|e| Error::internal(format!("cannot finish Avro: {e}")))?;
        Ok(self.out.take())
    }
}
