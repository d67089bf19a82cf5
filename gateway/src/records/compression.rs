//! Compressed text files. Reading tells the codec from the file's first bytes (its magic
//! number), never from its name, so `orders.csv` that is really gzip reads, and `orders.csv.gz`
//! that is not compressed reads too. Writing compresses when the name ends in `.gz`, `.bz2` or
//! `.zst`. LZO is refused by name.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_compression::tokio::bufread::{BzDecoder, GzipDecoder, ZstdDecoder};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio_util::io::{ReaderStream, StreamReader};

use super::{Drain, Encoder};
use crate::error::{Error, Result};
use arrow::array::RecordBatch;

/// Decompressed text is handed on in chunks of about this size.
const CHUNK_BYTES: usize = 256 * 1024;

/// The most a compressed sample is expanded to: what a file of typical ratio gives from its
/// first MiB, but bounded whatever the ratio.
const SAMPLE_TEXT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Bzip2,
    Zstd,
}

impl Codec {
    /// The codec whose magic number `head` starts with; LZO is an error.
    pub fn sniff(head: &[u8]) -> Result<Option<Self>> {
        Ok(match head {
            [0x1f, 0x8b, ..] => Some(Codec::Gzip),
            [b'B', b'Z', b'h', ..] => Some(Codec::Bzip2),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Codec::Zstd),
            [0x89, b'L', b'Z', b'O', ..] => {
                return Err(Error::unsupported(
                    "the file is LZO-compressed; LZO is not supported (gzip, bzip2 and zstd are)",
                ));
            }
            _ => None,
        })
    }

    /// The extension files compressed by this codec are named with.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Bzip2 => ".bz2",
            Codec::Zstd => ".zst",
        }
    }

    /// The codec a file name asks for, and the name without its compression extension.
    pub fn by_extension(name: &str) -> (Option<Self>, &str) {
        let lower = name.to_ascii_lowercase();
        for codec in [Codec::Gzip, Codec::Bzip2, Codec::Zstd] {
            let ext = codec.extension();
            if lower.ends_with(ext) {
                return (Some(codec), &name[..name.len() - ext.len()]);
            }
        }
        (None, name)
    }
}

/// `input` decompressed when its first bytes say it is compressed, else as it is.
pub async fn decompress(
    mut input: BoxStream<'static, Result<Bytes>>,
) -> Result<BoxStream<'static, Result<Bytes>>> {
    // Enough leading bytes to tell the codec, however the store chunks them.
    let mut head = Vec::new();
    while head.len() < 4 {
        match input.next().await {
            Some(chunk) => head.extend_from_slice(&chunk?),
            None => break,
        }
    }
    let codec = Codec::sniff(&head)?;
    let whole = futures::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(input)
        .boxed();
    let Some(codec) = codec else {
        return Ok(whole);
    };
    let reader = StreamReader::new(whole.map_err(|e| std::io::Error::other(e.message)));
    let decoded: BoxStream<'static, std::io::Result<Bytes>> = match codec {
        Codec::Gzip => {
            let mut d = GzipDecoder::new(reader);
            // `cat a.gz b.gz` is a valid gzip file.
            d.multiple_members(true);
            ReaderStream::with_capacity(d, CHUNK_BYTES).boxed()
        }
        Codec::Bzip2 => {
            let mut d = BzDecoder::new(reader);
            d.multiple_members(true);
            ReaderStream::with_capacity(d, CHUNK_BYTES).boxed()
        }
        Codec::Zstd => {
            let mut d = ZstdDecoder::new(reader);
            d.multiple_members(true);
            ReaderStream::with_capacity(d, CHUNK_BYTES).boxed()
        }
    };
    let name = format!("{codec:?}").to_lowercase();
    Ok(decoded
        .map_err(move |e| Error::invalid(format!("bad {name} data: {e}")))
        .boxed())
}

/// How far a compressed file may expand: `ratio` bytes for each compressed byte read, once
/// past its first [`EXPANSION_SLACK`] bytes; `setting` names the option.
pub struct Expansion {
    pub ratio: u64,
    pub setting: String,
}

/// What a compressed file may expand to whatever its ratio (a small file of very regular text
/// may compress far better than the ratio allows).
const EXPANSION_SLACK: u64 = 64 * 1024 * 1024;

/// [`decompress`], refusing to expand further than `expansion` allows: a small file that
/// decompresses into gigabytes of short lines (no line over the bound) is a bomb of another
/// shape, which costs the time and the target's space to write it all.
pub async fn decompress_bounded(
    input: BoxStream<'static, Result<Bytes>>,
    expansion: Expansion,
) -> Result<BoxStream<'static, Result<Bytes>>> {
    let read = Arc::new(AtomicU64::new(0));
    let counted = {
        let read = read.clone();
        input
            .inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    read.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            })
            .boxed()
    };
    let mut produced = 0u64;
    let mut failed = false;
    Ok(decompress(counted)
        .await?
        .map(move |chunk| {
            let chunk = chunk?;
            produced += chunk.len() as u64;
            let allowed = read.load(Ordering::Relaxed).saturating_mul(expansion.ratio);
            if produced > EXPANSION_SLACK && produced > allowed {
                return Err(Error::invalid(format!(
                    "it expands more than {} times its compressed size ({}): taken for a decompression bomb and refused",
                    expansion.ratio, expansion.setting
                )));
            }
            Ok(chunk)
        })
        .take_while(move |r| {
            let go = !failed;
            failed |= r.is_err();
            futures::future::ready(go)
        })
        .boxed())
}

/// The decompressed start of a file from its first `sample` bytes: as much as decodes (the
/// sample usually ends mid-stream), and whether that is the whole file.
pub async fn decompress_sample(sample: Bytes, is_whole_file: bool) -> Result<(Bytes, bool)> {
    if Codec::sniff(&sample)?.is_none() {
        return Ok((sample, is_whole_file));
    }
    let input = futures::stream::once(async move { Ok(sample) }).boxed();
    let mut decoded = decompress(input).await?;
    let mut out = Vec::new();
    let mut clean_end = true;
    while let Some(chunk) = decoded.next().await {
        match chunk {
            // A sample that expands past the bound (a decompression bomb) is cut there.
            Ok(_) if out.len() >= SAMPLE_TEXT_BYTES => {
                clean_end = false;
                break;
            }
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(e) if is_whole_file => return Err(e),
            // A cut-off stream: what decoded so far is the sample.
            Err(_) => {
                clean_end = false;
                break;
            }
        }
    }
    Ok((Bytes::from(out), is_whole_file && clean_end))
}

/// An encoder whose output is compressed with `codec`.
pub struct Compressed {
    inner: Box<dyn Encoder>,
    writer: Box<dyn Finish>,
    out: Drain,
}

/// A compressing writer that can be finished from a box.
trait Finish: Write + Send {
    fn finish_box(self: Box<Self>) -> std::io::Result<()>;
}

impl Finish for flate2::write::GzEncoder<Drain> {
    fn finish_box(self: Box<Self>) -> std::io::Result<()> {
        self.finish().map(drop)
    }
}

impl Finish for bzip2::write::BzEncoder<Drain> {
    fn finish_box(self: Box<Self>) -> std::io::Result<()> {
        self.finish().map(drop)
    }
}

impl Finish for zstd::stream::write::Encoder<'static, Drain> {
    fn finish_box(self: Box<Self>) -> std::io::Result<()> {
        self.finish().map(drop)
    }
}

impl Compressed {
    pub fn new(codec: Codec, inner: Box<dyn Encoder>) -> Result<Self> {
        let out = Drain::default();
        let writer: Box<dyn Finish> = match codec {
            Codec::Gzip => Box::new(flate2::write::GzEncoder::new(
                out.clone(),
                flate2::Compression::default(),
            )),
            Codec::Bzip2 => Box::new(bzip2::write::BzEncoder::new(
                out.clone(),
                bzip2::Compression::default(),
            )),
            Codec::Zstd => Box::new(
                zstd::stream::write::Encoder::new(out.clone(), 3)
                    .map_err(|e| Error::internal(format!("zstd: {e}")))?,
            ),
        };
        Ok(Self { inner, writer, out })
    }
}

impl Encoder for Compressed {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let plain = self.inner.encode(batch)?;
        self.writer
            .write_all(&plain)
            .map_err(|e| Error::internal(format!("compressing: {e}")))?;
        Ok(self.out.take())
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        let Compressed {
            inner,
            mut writer,
            out,
        } = *self;
        let tail = inner.finish()?;
        writer
            .write_all(&tail)
            .map_err(|e| Error::internal(format!("compressing: {e}")))?;
        writer
            .finish_box()
            .map_err(|e| Error::internal(format!("compressing: {e}")))?;
        Ok(out.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
        struct Raw(Vec<u8>);
        impl Encoder for Raw {
            fn encode(&mut self, _: &RecordBatch) -> Result<Vec<u8>> {
                Ok(vec![])
            }
            fn finish(self: Box<Self>) -> Result<Vec<u8>> {
                Ok(self.0)
            }
        }
        Box::new(Compressed::new(codec, Box::new(Raw(data.to_vec()))).unwrap())
            .finish()
            .unwrap()
    }

    async fn read_back(bytes: Vec<u8>, chunk: usize) -> Vec<u8> {
        let chunks: Vec<Result<Bytes>> = bytes
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let out: Vec<Bytes> = decompress(futures::stream::iter(chunks).boxed())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        out.concat()
    }

    #[tokio::test]
    async fn every_codec_round_trips_and_is_told_by_its_bytes() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{i},row {i}\n").into_bytes())
            .collect();
        for codec in [Codec::Gzip, Codec::Bzip2, Codec::Zstd] {
            let packed = compress(codec, &data);
            assert_eq!(Codec::sniff(&packed).unwrap(), Some(codec));
            assert!(packed.len() < data.len() / 3, "{codec:?} did not compress");
            // Chunks smaller than the magic number, too.
            assert_eq!(read_back(packed.clone(), 3).await, data, "{codec:?}");
            assert_eq!(
                read_back(packed.clone(), 64 * 1024).await,
                data,
                "{codec:?}"
            );
            // A sample cut mid-stream gives the start of the data.
            let (sample, whole) =
                decompress_sample(Bytes::from(packed[..packed.len() / 2].to_vec()), false)
                    .await
                    .unwrap();
            assert!(
                !whole && !sample.is_empty() && data.starts_with(&sample),
                "{codec:?}"
            );
        }
        // Plain text passes through.
        assert_eq!(read_back(b"a,b\n".to_vec(), 1).await, b"a,b\n");
        assert!(Codec::sniff(b"\x89LZO\x00").is_err());
        assert_eq!(
            Codec::by_extension("x/orders.csv.GZ"),
            (Some(Codec::Gzip), "x/orders.csv")
        );
        assert_eq!(Codec::by_extension("orders.csv"), (None, "orders.csv"));
    }
}
