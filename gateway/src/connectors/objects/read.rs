//! Reading from a bucket: schemas from a sample (text) or the footer alone (Parquet), and
//! datasets of one or many files as one stream.

use arrow::datatypes::{Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use mover_proto::FileOptions;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::{Bucket, Key, keys};
use crate::connectors::ReadSpec;
use crate::error::{Context, Error, Result};
use crate::records::encoding::decode_sample;
use crate::records::hints::{Encoding, Hints};
use crate::records::lines::Bound;
use crate::records::{CsvDialect, Format, avro, compression, csv, jsonl, parquet};
use crate::transfer::BatchStream;

/// Bytes read from the head of a CSV or JSON file to infer its schema.
const SAMPLE_BYTES: u64 = 1024 * 1024;

/// Data files under a prefix, or matching a glob, in name order; hidden and staging files are
/// skipped. The listing streams page by page; only the matches are kept.
pub(super) async fn data_files(bucket: &Bucket, key: &Key) -> Result<Vec<ObjectMeta>> {
    let listed = bucket.store.list(Some(key.literal()));
    let glob = key.glob().cloned();
    let mut found: Vec<ObjectMeta> = listed
        .try_filter(|m| {
            let keep = keys::is_data_file(&m.location)
                && glob
                    .as_ref()
                    .is_none_or(|g| g.is_match(m.location.as_ref()));
            futures::future::ready(keep)
        })
        .try_collect()
        .await
        .internal(format!("listing {}", bucket.label(key)))?;
    found.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(found)
}

/// The schema of one file, and its row count where the footer tells it.
pub(super) async fn describe_file(
    bucket: &Bucket,
    meta: &ObjectMeta,
    format: &Format,
) -> Result<(SchemaRef, Option<u64>)> {
    let result = match format {
        Format::Parquet => {
            let reader =
                parquet::ObjectReader::new(bucket.store.clone(), meta.location.clone(), meta.size);
            parquet::describe(reader).await.map(|(s, n)| (s, Some(n)))
        }
        Format::Avro => {
            let reader =
                avro::ObjectReader::new(bucket.store.clone(), meta.location.clone(), meta.size);
            avro::describe(reader).await.map(|s| (s, None))
        }
        Format::Csv(dialect) => {
            let (sample, whole) = sample(bucket, meta).await?;
            csv::infer_schema(&sample, whole, *dialect).map(|s| (s, None))
        }
        Format::Jsonl => {
            let (sample, whole) = sample(bucket, meta).await?;
            jsonl::infer_schema(&sample, whole).map(|s| (s, None))
        }
        Format::Delimited(hints) => {
            let (sample, whole) = sample(bucket, meta).await?;
            // Bad bytes past what decodes are the reader's to report, by line and field.
            let text = decode_sample(hints.encoding, &sample, whole).unwrap_or_else(|b| b.decoded);
            crate::records::sniff::infer_schema(&text, whole, hints).map(|s| (s, None))
        }
    };
    result.map_err(|e| e.within(bucket.label(&meta.location)))
}

/// The format `meta` is read with: as [`Format::resolve`] says, or the hints sniffed from the
/// file with the user's laid over them ([`Format::sniffing`]). A file named as CSV, read with
/// no format, CSV options or hints given, is read by what its bytes suggest
/// ([`by_its_bytes`]).
pub(super) async fn read_format(
    bucket: &Bucket,
    meta: &ObjectMeta,
    options: &FileOptions,
) -> Result<Format> {
    let label = || bucket.label(&meta.location);
    let Some(given) = Format::sniffing(options).map_err(|e| e.within(label()))? else {
        let format =
            Format::resolve(meta.location.as_ref(), options).map_err(|e| e.within(label()))?;
        let nothing_given = options.format() == mover_proto::FileFormat::Auto
            && options.csv.is_none()
            && options.records.is_none();
        return match format {
            Format::Csv(dialect) if nothing_given => by_its_bytes(bucket, meta, dialect).await,
            format => Ok(format),
        };
    };
    let mut hints = sniff_file(bucket, meta).await?;
    let skipped = hints
        .overlay(&given, crate::records::strict(options))
        .map_err(|e| e.within(label()))?;
    crate::records::warn_skipped(&label(), &skipped);
    Ok(Format::Delimited(Box::new(hints)))
}

/// A file named as CSV, by the hints its first bytes suggest (what `mvrec sniff` prints): read
/// as plain CSV (arrow-csv, the faster reader) when those hints are what it reads, with the
/// delimiter they found; else by the hints, so a Vertica file (`\x01`, `\x02`), a CP1252 one
/// or a bluelabs one (backslash escapes, no quoting) reads as written. A file the sniffer
/// cannot tell (empty) is left to the plain reader, which says why.
async fn by_its_bytes(bucket: &Bucket, meta: &ObjectMeta, dialect: CsvDialect) -> Result<Format> {
    // The structure first, which is enough to choose the reader; the date formats (most of
    // a sniff's time) only for the hinted reader, which needs them.
    let Ok((raw, text, whole)) = sniff_sample(bucket, meta).await else {
        return Ok(Format::Csv(dialect));
    };
    let Ok(hints) = crate::records::sniff::structure(&raw, &text, whole) else {
        return Ok(Format::Csv(dialect));
    };
    if let Some(delimiter) = plain_csv(&hints) {
        return Ok(Format::Csv(CsvDialect {
            delimiter,
            no_escape: hints.escape.is_none(),
            ..dialect
        }));
    }
    let hints = crate::records::sniff::sniff(&raw, &text, whole)
        .map_err(|e| e.within(bucket.label(&meta.location)))?;
    Ok(Format::Delimited(Box::new(hints)))
}

/// The delimiter, when sniffed hints describe what arrow-csv reads alike: UTF-8, lines ending
/// in `\n` or `\r\n`, an ASCII delimiter, `"` quotes, and no backslash escape; or a backslash
/// seen beside doubled quotes, which is RFC 4180 text holding backslashes, not an escape.
fn plain_csv(h: &Hints) -> Option<u8> {
    let rfc4180_quotes = h.quoting.is_some() && h.doublequote;
    let plain = h.encoding == Encoding::Utf8
        && matches!(h.record_terminator.as_str(), "\n" | "\r\n")
        && h.field_delimiter.is_ascii()
        && h.quotechar == '"'
        && (h.escape.is_none() || rfc4180_quotes);
    plain.then_some(h.field_delimiter as u8)
}

/// The records hints of one file, told from its first bytes.
pub(super) async fn sniff_file(bucket: &Bucket, meta: &ObjectMeta) -> Result<Hints> {
    let (raw, text, whole) = sniff_sample(bucket, meta).await?;
    let label = bucket.label(&meta.location);
    crate::records::sniff::sniff(&raw, &text, whole).map_err(|e| e.within(&label))
}

/// A file's first bytes as stored and decompressed, and whether they are all of it.
async fn sniff_sample(
    bucket: &Bucket,
    meta: &ObjectMeta,
) -> Result<(bytes::Bytes, bytes::Bytes, bool)> {
    let (raw, whole) = sample_raw(bucket, meta).await?;
    let (text, whole) = compression::decompress_sample(raw.clone(), whole)
        .await
        .map_err(|e| e.within(bucket.label(&meta.location)))?;
    Ok((raw, text, whole))
}

/// A text file's bytes as a stream, decompressed when its first bytes say it is compressed,
/// its lines bounded by `max_line_mb`.
pub(super) async fn text_bytes(
    bucket: &Bucket,
    meta: &ObjectMeta,
) -> Result<futures::stream::BoxStream<'static, Result<bytes::Bytes>>> {
    let bytes = bucket
        .store
        .get(&meta.location)
        .await
        .internal(format!("reading {}", bucket.label(&meta.location)))?
        .into_stream()
        .map_err(|e| Error::internal(e.to_string()))
        .boxed();
    let expansion = compression::Expansion {
        ratio: bucket.max_expansion,
        setting: format!("buckets.{}.max_expansion", bucket.name),
    };
    let text = compression::decompress_bounded(bytes, expansion).await?;
    Ok(crate::records::lines::bounded(text, line_bound(bucket)))
}

/// The bound on one line, and on one record, of the bucket's text files.
pub(super) fn line_bound(bucket: &Bucket) -> Bound {
    Bound {
        max: bucket.max_line_bytes,
        setting: format!("buckets.{}.max_line_mb", bucket.name),
    }
}

/// The first bytes of a file as stored, and whether they are the whole file.
pub(super) async fn sample_raw(bucket: &Bucket, meta: &ObjectMeta) -> Result<(bytes::Bytes, bool)> {
    let end = meta.size.min(SAMPLE_BYTES);
    if end == 0 {
        return Ok((bytes::Bytes::new(), true));
    }
    let bytes = bucket
        .store
        .get_range(&meta.location, 0..end)
        .await
        .internal(format!("reading {}", bucket.label(&meta.location)))?;
    Ok((bytes, end == meta.size))
}

async fn sample(bucket: &Bucket, meta: &ObjectMeta) -> Result<(bytes::Bytes, bool)> {
    let (bytes, whole) = sample_raw(bucket, meta).await?;
    if bytes.is_empty() {
        return Ok((bytes, whole));
    }
    compression::decompress_sample(bytes, whole)
        .await
        .map_err(|e| e.within(bucket.label(&meta.location)))
}

/// One file as a stream. Text formats are decoded with `schema` when given (the first part's,
/// for a multi-part dataset); Parquet reads only the `columns` asked for.
async fn read_file(
    bucket: &Bucket,
    meta: &ObjectMeta,
    format: &Format,
    schema: Option<SchemaRef>,
    columns: &[String],
) -> Result<(SchemaRef, BatchStream)> {
    let label = bucket.label(&meta.location);
    let (schema, stream) = match format {
        Format::Parquet => {
            let reader =
                parquet::ObjectReader::new(bucket.store.clone(), meta.location.clone(), meta.size)
                    .holding_at_most(bucket.max_row_group_bytes);
            parquet::decode(reader, bucket.batch_rows, columns)
                .await
                .map_err(|e| e.within(&label))?
        }
        Format::Avro => {
            let reader =
                avro::ObjectReader::new(bucket.store.clone(), meta.location.clone(), meta.size);
            // Every column: the catalog narrows the batches to those asked for.
            avro::decode(reader, bucket.batch_rows)
                .await
                .map_err(|e| e.within(&label))?
        }
        Format::Csv(_) | Format::Jsonl | Format::Delimited(_) => {
            let schema = match schema {
                Some(s) => s,
                None => describe_file(bucket, meta, format).await?.0,
            };
            let bytes = text_bytes(bucket, meta).await?;
            let stream = match format {
                Format::Csv(dialect) => csv::decode(
                    bytes,
                    schema.clone(),
                    *dialect,
                    bucket.batch_rows,
                    line_bound(bucket),
                )?,
                Format::Delimited(hints) => crate::records::typed::decode(
                    bytes,
                    schema.clone(),
                    (**hints).clone(),
                    bucket.batch_rows,
                    label.clone(),
                    line_bound(bucket),
                )?,
                _ => jsonl::decode(bytes, schema.clone(), bucket.batch_rows)?,
            };
            (schema, stream)
        }
    };
    let labelled = stream.map_err(move |e| e.within(&label)).boxed();
    Ok((schema, labelled))
}

/// The schema a dataset's parts are read with, taken from `meta` (its first file): what
/// [`read_file`] gives for it, without reading its data.
async fn schema_of(
    bucket: &Bucket,
    meta: &ObjectMeta,
    format: &Format,
    columns: &[String],
) -> Result<SchemaRef> {
    match format {
        Format::Parquet => Ok(read_file(bucket, meta, format, None, columns).await?.0),
        _ => Ok(describe_file(bucket, meta, format).await?.0),
    }
}

/// Files as one dataset: read in the order given, every part with the columns of `schema_from`
/// (a partition of a larger dataset names that dataset's first file), else of the first part.
pub(super) async fn read_dataset(
    bucket: &Bucket,
    metas: Vec<ObjectMeta>,
    spec: &ReadSpec,
    schema_from: Option<ObjectMeta>,
) -> Result<(SchemaRef, BatchStream)> {
    // One format for every part: the one the dataset's first file is read with.
    let format = read_format(
        bucket,
        schema_from.as_ref().unwrap_or(&metas[0]),
        &spec.file,
    )
    .await?;
    let columns = spec.columns.clone();
    let (schema, first, rest) = match schema_from {
        Some(from) => {
            let schema = schema_of(bucket, &from, &format, &columns).await?;
            let none: BatchStream = futures::stream::empty().boxed();
            (schema, none, metas)
        }
        None => {
            let (schema, first) = read_file(bucket, &metas[0], &format, None, &columns).await?;
            (schema, first, metas.into_iter().skip(1).collect())
        }
    };
    let bucket = bucket.clone();
    let expected = schema.clone();
    let following = futures::stream::iter(rest)
        .then(move |meta| {
            let (bucket, format, expected, columns) = (
                bucket.clone(),
                format.clone(),
                expected.clone(),
                columns.clone(),
            );
            async move {
                // Parquet parts carry their schema, compared whole. Text parts are decoded with
                // the first part's types (inference may differ on a sample) once their column
                // names are seen to match.
                let known = match format {
                    Format::Parquet | Format::Avro => None,
                    _ => {
                        let (own, _) = describe_file(&bucket, &meta, &format).await?;
                        if names(&own) != names(&expected) {
                            return Err(mismatch(&bucket, &meta, &own, &expected));
                        }
                        Some(expected.clone())
                    }
                };
                let (schema, stream) = read_file(&bucket, &meta, &format, known, &columns).await?;
                if !same_columns(&schema, &expected) {
                    return Err(mismatch(&bucket, &meta, &schema, &expected));
                }
                Ok(stream)
            }
        })
        .try_flatten();
    Ok((schema, first.chain(following).boxed()))
}

fn names(s: &Schema) -> Vec<String> {
    s.fields().iter().map(|f| f.name().clone()).collect()
}

fn mismatch(bucket: &Bucket, meta: &ObjectMeta, got: &Schema, expected: &Schema) -> Error {
    Error::invalid(format!(
        "{}: its columns ({}) differ from the first part's ({}); every part of a dataset must share one schema",
        bucket.label(&meta.location),
        describe_columns(got),
        describe_columns(expected)
    ))
}

fn describe_columns(s: &Schema) -> String {
    s.fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Two schemas that hold the same columns, ignoring metadata and nullability.
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

/// `schema` narrowed to `columns` (all when empty); an unknown name is an error naming it.
pub(super) fn project_schema(schema: &SchemaRef, columns: &[String]) -> Result<SchemaRef> {
    if columns.is_empty() {
        return Ok(schema.clone());
    }
    let indices = crate::convert::column_indices(schema, columns)?;
    Ok(std::sync::Arc::new(schema.project(&indices)?))
}
