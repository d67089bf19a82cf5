//! Avro object container files, Records Mover's third records format, through arrow-avro:
//! the header read by ranges (for the schema), the blocks streamed one at a time, written a
//! block per batch.
//!
//! arrow-avro's async reader asks for its whole range in one request (a file read as one
//! range is held whole), and read by ranges smaller than a block it loses its place (seen on
//! 60.1). So the file is streamed into arrow-avro's reader of a `BufRead`, on a blocking
//! thread, through [`Framed`], which follows the blocks' framing and refuses a block over
//! [`MAX_BLOCK_BYTES`] before it is buffered; the header is bounded by [`MAX_HEADER_BYTES`].

use std::io::{BufReader, Read};
use std::ops::Range;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_avro::errors::AvroError;
use arrow_avro::reader::{AsyncAvroFileReader, AsyncFileReader};
use arrow_avro::writer::AvroWriter;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryFutureExt, TryStreamExt};
use object_store::ObjectStoreExt;

use super::{Drain, Encoder};
use crate::error::{Error, Result};
use crate::transfer::BatchStream;

/// Ranged reads of one object: the Parquet reader's, which serves Avro's too.
pub use super::parquet::ObjectReader;

/// The largest block read, as stored (our writer's blocks are one batch each).
const MAX_BLOCK_BYTES: u64 = 64 * 1024 * 1024;
/// The largest header read: the schema and metadata, which the reader holds whole.
const MAX_HEADER_BYTES: u64 = 16 * 1024 * 1024;
/// An Avro sync marker's length.
const SYNC: u64 = 16;

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

/// The schema an Avro file's header gives.
pub async fn describe(reader: ObjectReader) -> Result<SchemaRef> {
    header_len(&reader).await?;
    // An empty range: the header alone is read.
    let size = reader.size;
    let header_only = AsyncAvroFileReader::builder(reader, size, 1)
        .with_range(0..0)
        .try_build()
        .await
        .map_err(bad_avro)?;
    Ok(header_only.schema())
}

/// The length of the file's header, found within its first [`MAX_HEADER_BYTES`]: a reader
/// holds the header whole, so it is looked for there before a reader is built.
async fn header_len(reader: &ObjectReader) -> Result<u64> {
    let size = reader.size.min(MAX_HEADER_BYTES);
    let mut bounded = ObjectReader {
        size,
        ..reader.clone()
    };
    let read = arrow_avro::reader::async_reader::read_header_info(&mut bounded, size, None).await;
    match read {
        Ok(info) => Ok(info.header_len()),
        Err(e) if reader.size > size => Err(bad_avro(format!(
            "no header within the first {} MiB ({e})",
            MAX_HEADER_BYTES >> 20
        ))),
        Err(e) => Err(bad_avro(e)),
    }
}

/// The file's rows, `batch_rows` at a time, its bytes streamed.
pub async fn decode(reader: ObjectReader, batch_rows: usize) -> Result<(SchemaRef, BatchStream)> {
    let header = header_len(&reader).await?;
    let bytes = reader
        .store
        .get(&reader.path)
        .await
        .map_err(|e| Error::internal(format!("reading {}: {e}", reader.path)))?
        .into_stream()
        .map_err(std::io::Error::other);
    let bridge = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(bytes));
    let framed = BufReader::new(Framed::new(bridge, header));
    let (schema_tx, schema_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
    tokio::task::spawn_blocking(move || {
        let built = arrow_avro::reader::ReaderBuilder::new()
            .with_batch_size(batch_rows)
            .build(framed);
        let rows = match built {
            Ok(rows) => rows,
            Err(e) => return drop(schema_tx.send(Err(bad_avro(outer(e))))),
        };
        if schema_tx.send(Ok(rows.schema())).is_err() {
            return;
        }
        for batch in rows {
            // Gone when the reader of the stream is: nothing more to read for.
            if tx
                .blocking_send(batch.map_err(|e| bad_avro(outer(e))))
                .is_err()
            {
                return;
            }
        }
    });
    let schema = schema_rx
        .await
        .map_err(|_| Error::internal("the Avro reader stopped"))??;
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).boxed();
    Ok((schema, stream))
}

/// An error of the byte stream (a block over the bound, say) as itself, not wrapped in the
/// reader's errors.
fn outer(e: arrow::error::ArrowError) -> String {
    let mut deepest: &dyn std::error::Error = &e;
    while let Some(cause) = deepest.source() {
        deepest = cause;
    }
    match e {
        arrow::error::ArrowError::ExternalError(_) | arrow::error::ArrowError::IoError(..) => {
            deepest.to_string()
        }
        other => other.to_string(),
    }
}

/// The bytes of an object container file as they pass, checked against its framing: after
/// the header, blocks of a count and a size (zigzag varints), that many bytes, and a sync
/// marker. A block claiming more than [`MAX_BLOCK_BYTES`] is an error here, before the
/// reader buffers it.
struct Framed<R> {
    inner: R,
    /// Bytes to pass before the next varint: the header, then a block's data and marker.
    skip: u64,
    /// The varint being read, its shift, and whether it is the block's size (else count).
    varint: (u64, u32, bool),
    /// Where in the file the next byte is, for the error.
    at: u64,
}

impl<R: Read> Framed<R> {
    fn new(inner: R, header: u64) -> Self {
        Self {
            inner,
            skip: header,
            varint: (0, 0, false),
            at: 0,
        }
    }

    /// Follow the framing through `bytes`, which were just read.
    fn follow(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = (self.skip as usize).min(bytes.len());
                self.skip -= n as u64;
                self.at += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let b = bytes[0];
            bytes = &bytes[1..];
            self.at += 1;
            let (value, shift, is_size) = &mut self.varint;
            if *shift > 63 {
                return Err(std::io::Error::other(format!(
                    "a block header with an overlong varint at byte {}",
                    self.at
                )));
            }
            *value |= u64::from(b & 0x7f) << *shift;
            *shift += 7;
            if b & 0x80 != 0 {
                continue;
            }
            // Zigzag: the sign in the low bit.
            let n = (*value >> 1) as i64 ^ -((*value & 1) as i64);
            let was_size = *is_size;
            self.varint = (0, 0, !was_size);
            if !was_size {
                continue;
            }
            if n < 0 || n as u64 > MAX_BLOCK_BYTES {
                return Err(std::io::Error::other(format!(
                    "a block of {n} bytes at byte {}: blocks over {} MiB are refused",
                    self.at,
                    MAX_BLOCK_BYTES >> 20
                )));
            }
            self.skip = n as u64 + SYNC;
        }
        Ok(())
    }
}

impl<R: Read> Read for Framed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        // arrow-avro's reader takes a file that ends inside a block for one that ended.
        if n == 0 && !buf.is_empty() && (self.skip > 0 || self.varint.1 > 0 || self.varint.2) {
            return Err(std::io::Error::other(format!(
                "the file ends inside a block, at byte {}: it was cut short",
                self.at
            )));
        }
        self.follow(&buf[..n])?;
        Ok(n)
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use object_store::memory::InMemory;
    use object_store::path::Path;

    use super::*;

    /// An Avro file of `batches` (of 1 to 40 rows each), its ids counting from 0, as our
    /// encoder writes it: a block per batch.
    fn file(batches: usize) -> (Vec<u8>, i64) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let mut encoder = Box::new(AvroEncoder::new(&schema).unwrap());
        let (mut bytes, mut next) = (Vec::new(), 0i64);
        for b in 0..batches {
            let n = 1 + (b * 7) % 40;
            let ids: Vec<i64> = (next..next + n as i64).collect();
            let names: Vec<String> = ids.iter().map(|i| format!("name {i}")).collect();
            next += n as i64;
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(names)),
                ],
            )
            .unwrap();
            bytes.extend(encoder.encode(&batch).unwrap());
        }
        bytes.extend(encoder.finish().unwrap());
        (bytes, next)
    }

    async fn reader_of(bytes: Vec<u8>) -> ObjectReader {
        let store = Arc::new(InMemory::new());
        let path = Path::from("f.avro");
        let size = bytes.len() as u64;
        store.put(&path, bytes.into()).await.unwrap();
        ObjectReader::new(store, path, size)
    }

    async fn ids(bytes: &[u8]) -> Result<Vec<i64>> {
        let (_, stream) = decode(reader_of(bytes.to_vec()).await, 16).await?;
        let batches: Vec<RecordBatch> = stream.try_collect().await?;
        Ok(batches
            .iter()
            .flat_map(|b| {
                let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                ids.values().to_vec()
            })
            .collect())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn every_block_is_read_in_order_and_the_schema_from_the_header() {
        let (bytes, rows) = file(60);
        assert_eq!(ids(&bytes).await.unwrap(), (0..rows).collect::<Vec<_>>());
        let schema = describe(reader_of(bytes).await).await.unwrap();
        assert_eq!(schema.field(1).name(), "name");
        // A file of no rows: the header alone.
        let (empty, none) = file(0);
        assert_eq!(none, 0);
        assert!(ids(&empty).await.unwrap().is_empty());
    }

    /// The header of a one-row file, then a block claiming `size` bytes and 64 bytes of it.
    async fn forged(size: u64) -> Vec<u8> {
        let (bytes, _) = file(1);
        let header = header_len(&reader_of(bytes.clone()).await).await.unwrap() as usize;
        let mut forged = bytes[..header].to_vec();
        forged.push(2); // a count of one
        let mut zigzag = size << 1;
        while zigzag >= 0x80 {
            forged.push((zigzag as u8 & 0x7f) | 0x80);
            zigzag >>= 7;
        }
        forged.push(zigzag as u8);
        forged.extend_from_slice(&[0; 64]);
        forged
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_forged_block_size_is_an_error_not_an_allocation() {
        for size in [1 << 40, MAX_BLOCK_BYTES + 1] {
            let e = ids(&forged(size).await).await.unwrap_err();
            assert_eq!(
                e.message,
                format!(
                    "bad Avro: a block of {size} bytes at byte {}: blocks over 64 MiB are refused",
                    forged(size).await.len() - 64
                ),
            );
        }
        // A size under the bound that the file does not hold, or a file cut short: an error,
        // not fewer rows.
        let e = ids(&forged(1024).await).await.unwrap_err();
        assert!(e.message.contains("the file ends inside a block"), "{e}");
        let (bytes, _) = file(60);
        for cut in [bytes.len() - 1, bytes.len() - 17, bytes.len() / 2] {
            let e = ids(&bytes[..cut]).await.unwrap_err();
            assert!(
                e.message.contains("the file ends inside a block"),
                "{cut}: {e}"
            );
        }
    }
}
