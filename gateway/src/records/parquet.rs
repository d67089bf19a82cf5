//! Parquet: footers read alone for schemas and counts, row groups read by ranged requests,
//! files written a row group at a time.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryFutureExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{
    AsyncFileReader, MetadataFetch, ParquetRecordBatchStreamBuilder,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;

use super::{Drain, Encoder};
use crate::error::{Context, Error, Result};
use crate::transfer::BatchStream;

/// Rows per row group written: bounds the writer's memory (a row group is buffered whole).
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Ranged reads of one object, as parquet's async reader wants them (and Avro's: [`super::avro`]).
#[derive(Clone)]
pub struct ObjectReader {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) path: Path,
    pub(super) size: u64,
    /// The most one fetch may bring in (parquet's reader fetches a row group's column chunks,
    /// as large as the footer claims, at once).
    pub(super) most: u64,
}

impl ObjectReader {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64) -> Self {
        Self {
            store,
            path,
            size,
            most: u64::MAX,
        }
    }

    /// Refusing any fetch of more than `bytes` at once: a row group bigger than that (of the
    /// columns read) is refused before it is held.
    pub fn holding_at_most(mut self, bytes: u64) -> Self {
        self.most = bytes;
        self
    }

    fn within_bound(&self, ranges: &[Range<u64>]) -> parquet::errors::Result<()> {
        let asked: u64 = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        if asked <= self.most {
            return Ok(());
        }
        Err(ParquetError::General(format!(
            "{}: a row group claims {} MiB of the columns read; row groups over {} MiB are refused (the bucket's max_row_group_mb)",
            self.path,
            asked.div_ceil(1 << 20),
            self.most >> 20
        )))
    }
}

fn to_parquet_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        if let Err(e) = self.within_bound(std::slice::from_ref(&range)) {
            return futures::future::ready(Err(e)).boxed();
        }
        self.store
            .get_range(&self.path, range)
            .map_err(to_parquet_err)
            .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.within_bound(&ranges)?;
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(to_parquet_err)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(FooterFetch(self), size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// The largest footer (or page index) read: its length is the file's own claim, and the
/// reader holds it whole.
const MAX_FOOTER_BYTES: u64 = 64 * 1024 * 1024;

/// The file's reader, refusing to fetch a footer or page index over [`MAX_FOOTER_BYTES`].
struct FooterFetch<'a>(&'a mut ObjectReader);

impl MetadataFetch for FooterFetch<'_> {
    fn fetch(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        let asked = range.end.saturating_sub(range.start);
        if asked > MAX_FOOTER_BYTES {
            let e = ParquetError::General(format!(
                "the footer claims {asked} bytes; footers over {} MiB are refused",
                MAX_FOOTER_BYTES >> 20
            ));
            return futures::future::ready(Err(e)).boxed();
        }
        self.0.get_bytes(range)
    }
}

/// Schema and row count from the footer alone.
pub async fn describe(reader: ObjectReader) -> Result<(SchemaRef, u64)> {
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .invalid("not a readable Parquet file")?;
    let rows = builder.metadata().file_metadata().num_rows();
    Ok((builder.schema().clone(), rows.max(0) as u64))
}

/// Batches of the file; with `columns`, only those columns' chunks are fetched and decoded.
pub async fn decode(
    reader: ObjectReader,
    batch_rows: usize,
    columns: &[String],
) -> Result<(SchemaRef, BatchStream)> {
    let mut builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .invalid("not a readable Parquet file")?
        .with_batch_size(batch_rows);
    let mut schema = builder.schema().clone();
    if !columns.is_empty() {
        let mut indices = crate::convert::column_indices(&schema, columns)?;
        // The mask selects columns in file order; the catalog puts them in the asked order.
        indices.sort_unstable();
        indices.dedup();
        schema = Arc::new(schema.project(&indices)?);
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        builder = builder.with_projection(mask);
    }
    let stream = builder
        .build()
        .invalid("cannot read the Parquet file")?
        .map(|item| item.invalid("bad Parquet data"));
    Ok((schema, stream.boxed()))
}

pub struct ParquetEncoder {
    writer: Option<ArrowWriter<Drain>>,
    out: Drain,
}

impl ParquetEncoder {
    pub fn new(schema: SchemaRef) -> Result<Self> {
        let out = Drain::default();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(out.clone(), schema, Some(props))
            .invalid("cannot write Parquet with this schema")?;
        Ok(Self {
            writer: Some(writer),
            out,
        })
    }
}

impl Encoder for ParquetEncoder {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::internal("Parquet encoder used after finish"))?;
        writer.write(batch).invalid("cannot write Parquet")?;
        Ok(self.out.take())
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>> {
        if let Some(writer) = self.writer.take() {
            writer.close().invalid("cannot finish the Parquet file")?;
        }
        Ok(self.out.take())
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test]
    async fn a_footer_over_the_bound_is_refused_before_it_is_fetched() {
        // A file that could hold its footer's claim: magic, 65 MiB, the claim, magic.
        let claim = (MAX_FOOTER_BYTES + (1 << 20)) as u32;
        let mut file = b"PAR1".to_vec();
        file.resize(4 + claim as usize, 0);
        file.extend(claim.to_le_bytes());
        file.extend(b"PAR1");
        let store = Arc::new(InMemory::new());
        let path = Path::from("f.parquet");
        let size = file.len() as u64;
        store.put(&path, file.into()).await.unwrap();
        let e = describe(ObjectReader::new(store, path, size))
            .await
            .unwrap_err();
        assert!(
            e.message.contains(&format!(
                "the footer claims {claim} bytes; footers over 64 MiB are refused"
            )),
            "{e}"
        );
    }
}
