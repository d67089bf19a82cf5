//! Records directories, as Records Mover writes them: `_format_delimited` (or
//! `_format_parquet`, `_format_avro`), `_schema.json`, `_manifest` (or `manifest` when `_manifest` is
//! absent), and the data files, read as one stream.
//!
//! The manifest's URLs point wherever the writer was; only their file names are used, and
//! each must be a file of this directory: a manifest cannot make the gateway read elsewhere.
//! Without a manifest, the directory's data files are read in name order. Written, a
//! directory gets one data file, delimited or Parquet (see [`write`]).

use arrow::datatypes::SchemaRef;
use futures::{StreamExt, TryStreamExt};
use object_store::{ListResult, ObjectMeta, ObjectStoreExt};
use serde::Deserialize;
use serde_json::Value;

use super::description::{self, Description};
use super::staged::Staged;
use super::write::{IfAbandoned, Upload};
use super::{Bucket, Key, keys, read};
use crate::connectors::{WriteReport, WriteSpec};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::records::compression::{Codec, Compressed};
use crate::records::hints::{Compression, Hints};
use crate::records::{Encoder, Format, schema, typed};
use crate::transfer::BatchStream;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum DirFormat {
    Delimited(Hints),
    Parquet,
    Avro,
}

impl DirFormat {
    pub(super) fn name(&self) -> &'static str {
        match self {
            DirFormat::Delimited(_) => "delimited text",
            DirFormat::Parquet => "Parquet",
            DirFormat::Avro => "Avro",
        }
    }

    /// The file that names the format: `_format_delimited`, `_format_parquet`, `_format_avro`.
    pub(super) fn file(&self) -> &'static str {
        match self {
            DirFormat::Delimited(_) => description::FORMAT_DELIMITED,
            DirFormat::Parquet => description::FORMAT_PARQUET,
            DirFormat::Avro => description::FORMAT_AVRO,
        }
    }
}

pub(super) enum RecordsDir {
    Delimited(Delimited),
    /// Parquet or Avro files, which carry their own schema: read as any such files are, in
    /// the manifest's order (a `_schema.json` beside them says less than they do).
    SelfDescribing {
        format: mover_proto::FileFormat,
        files: Vec<ObjectMeta>,
    },
}

/// A delimited records directory: every file read with the directory's hints and the types of
/// its `_schema.json`.
pub(super) struct Delimited {
    hints: Hints,
    pub(super) schema: SchemaRef,
    pub(super) files: Vec<ObjectMeta>,
}

/// `_format_delimited` as Records Mover writes it (other keys, such as `type`, are ignored).
#[derive(Debug, Default, Deserialize)]
struct FormatDelimited {
    variant: Option<String>,
    /// Read by [`Hints::from_json`], which knows which hints it understands.
    #[serde(default)]
    hints: serde_json::Map<String, Value>,
}

/// `_manifest`: the data files in their order.
#[derive(Debug, Deserialize)]
struct Manifest {
    entries: Option<Vec<ManifestEntry>>,
}

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    #[serde(default)]
    url: String,
}

/// The records directory `key` names, or None when it is a plain prefix (no `_format_*`).
/// With `strict`, hints in `_format_delimited` that are not understood are an error; else
/// they are skipped and logged.
pub(super) async fn open(bucket: &Bucket, key: &Key, strict: bool) -> Result<Option<RecordsDir>> {
    if !key.is_prefix() {
        return Ok(None);
    }
    let label = bucket.label(key);
    let Some((level, format)) = listed_format(bucket, key, strict).await? else {
        return Ok(None);
    };
    let find = |file: &str| level.objects.iter().find(|m| file_name(m) == file);
    let schema = match (&format, find(description::SCHEMA)) {
        (DirFormat::Parquet | DirFormat::Avro, _) => None,
        (DirFormat::Delimited(_), Some(meta)) => {
            let doc: Value = read_json(bucket, meta).await?.unwrap_or(Value::Null);
            // A type not understood is refused, as a hint is, unless the read is lenient.
            let (schema, skipped) = schema::to_arrow(&doc, strict).map_err(|e| e.within(&label))?;
            crate::records::warn_skipped(&format!("{label}_schema.json"), &skipped);
            Some(schema)
        }
        (DirFormat::Delimited(_), None) => {
            return Err(Error::invalid(format!(
                "{label}: a delimited records directory needs its _schema.json"
            )));
        }
    };
    let files = match find(description::MANIFEST).or_else(|| find("manifest")) {
        Some(meta) => manifest_files(bucket, meta, &level.objects, &label).await?,
        None => {
            let mut files: Vec<ObjectMeta> = level
                .objects
                .iter()
                .filter(|m| keys::is_data_file(&m.location) && file_name(m) != "manifest")
                .cloned()
                .collect();
            files.sort_by(|a, b| a.location.cmp(&b.location));
            files
        }
    };
    if files.is_empty() {
        return Err(Error::not_found(format!(
            "{label}: the records directory has no data files"
        )));
    }
    Ok(Some(match (format, schema) {
        (DirFormat::Delimited(hints), Some(schema)) => RecordsDir::Delimited(Delimited {
            hints,
            schema,
            files,
        }),
        (DirFormat::Avro, _) => RecordsDir::SelfDescribing {
            format: mover_proto::FileFormat::Avro,
            files,
        },
        _ => RecordsDir::SelfDescribing {
            format: mover_proto::FileFormat::Parquet,
            files,
        },
    }))
}

/// The format of the records directory `key` names, or None when it is a plain prefix.
pub(super) async fn format_of(bucket: &Bucket, key: &Key) -> Result<Option<DirFormat>> {
    Ok(listed_format(bucket, key, false).await?.map(|(_, f)| f))
}

/// The prefix `key` listed (one level), with the format its `_format_` file gives it; None
/// when it has none.
async fn listed_format(
    bucket: &Bucket,
    key: &Key,
    strict: bool,
) -> Result<Option<(ListResult, DirFormat)>> {
    let label = bucket.label(key);
    let level = bucket
        .store
        .list_with_delimiter(Some(key.path()))
        .await
        .internal(format!("listing {label}"))?;
    let formats: Vec<&ObjectMeta> = level
        .objects
        .iter()
        .filter(|m| file_name(m).starts_with("_format_"))
        .collect();
    let format_meta = match formats.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(Error::invalid(format!(
                "{label}: a records directory has one _format_ file, this one has {}",
                formats.len()
            )));
        }
    };
    let format = dir_format(bucket, format_meta, &label, strict).await?;
    Ok(Some((level, format)))
}

fn file_name(meta: &ObjectMeta) -> &str {
    meta.location.filename().unwrap_or_default()
}

/// A JSON file of the directory as `T`; None when it is empty.
async fn read_json<T: serde::de::DeserializeOwned>(
    bucket: &Bucket,
    meta: &ObjectMeta,
) -> Result<Option<T>> {
    let label = bucket.label(&meta.location);
    let bytes = bucket
        .store
        .get(&meta.location)
        .await
        .internal(format!("reading {label}"))?
        .bytes()
        .await
        .internal(format!("reading {label}"))?;
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::invalid(format!("{label}: {e}")))
}

/// The format its `_format_*` file gives the directory.
async fn dir_format(
    bucket: &Bucket,
    meta: &ObjectMeta,
    label: &str,
    strict: bool,
) -> Result<DirFormat> {
    match file_name(meta) {
        description::FORMAT_DELIMITED => {
            let doc: FormatDelimited = read_json(bucket, meta).await?.unwrap_or_default();
            let what = format!("{label}_format_delimited");
            let (hints, skipped) = Hints::from_json(doc.variant.as_deref(), &doc.hints, strict)
                .map_err(|e| e.within(&what))?;
            crate::records::warn_skipped(&what, &skipped);
            Ok(DirFormat::Delimited(hints))
        }
        description::FORMAT_PARQUET => Ok(DirFormat::Parquet),
        description::FORMAT_AVRO => Ok(DirFormat::Avro),
        other => Err(Error::unsupported(format!(
            "{label}: records format {:?} is not read (delimited, parquet and avro are)",
            other.trim_start_matches("_format_")
        ))),
    }
}

/// The data files a manifest names, in its order. Only the file name of each URL is used, and
/// it must be a data file of this directory: a manifest cannot make the gateway read elsewhere.
async fn manifest_files(
    bucket: &Bucket,
    meta: &ObjectMeta,
    objects: &[ObjectMeta],
    label: &str,
) -> Result<Vec<ObjectMeta>> {
    let manifest: Option<Manifest> = read_json(bucket, meta).await?;
    let entries = manifest
        .and_then(|m| m.entries)
        .ok_or_else(|| Error::invalid(format!("{label}: the manifest has no entries")))?;
    entries
        .iter()
        .map(|entry| {
            let file = entry.url.rsplit('/').next().unwrap_or_default();
            objects
                .iter()
                .find(|m| file_name(m) == file && keys::is_data_file(&m.location))
                .cloned()
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{label}: the manifest names {:?}, which is not a data file of this directory",
                        entry.url
                    ))
                })
        })
        .collect()
}

impl Delimited {
    /// The directory with only `files` to read (a partition of it).
    pub(super) fn with_files(self, files: Vec<ObjectMeta>) -> Self {
        Self { files, ..self }
    }

    /// Its files in order, as one stream of its schema's rows.
    pub(super) fn read(self, bucket: &Bucket) -> (SchemaRef, BatchStream) {
        let Self {
            hints,
            schema,
            files,
        } = self;
        let bucket = bucket.clone();
        let file_schema = schema.clone();
        let stream = futures::stream::iter(files)
            .then(move |meta| {
                let (bucket, schema, hints) = (bucket.clone(), file_schema.clone(), hints.clone());
                async move {
                    let label = bucket.label(&meta.location);
                    let bytes = read::text_bytes(&bucket, &meta)
                        .await
                        .map_err(|e| e.within(&label))?;
                    let bound = read::line_bound(&bucket);
                    typed::decode(bytes, schema, hints, bucket.batch_rows, label, bound)
                }
            })
            .try_flatten()
            .boxed();
        (schema, stream)
    }
}

/// Write a records directory into the empty prefix `key`: the data file (`data001.parquet`,
/// `data001.avro`, or `data001.csv` by the hints, compressed as they say), `_format_parquet`
/// or `_format_avro` (empty, as Records Mover requires) or `_format_delimited` with all 13
/// hints, a strict `_schema.json`,
/// and the manifest last, so a reader never sees a manifest before its files
/// ([`Description::write`]). On any failure, or if the write is dropped, what was
/// written is removed (a [`Staged`] guard).
pub(super) async fn write(
    bucket: &Bucket,
    key: &Key,
    spec: &WriteSpec,
    schema: SchemaRef,
    batches: BatchStream,
) -> Result<WriteReport> {
    let label = bucket.label(key);
    if bucket.store.list(Some(key.path())).next().await.is_some() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{label} is not empty; a records directory is written only into an empty one"),
        ));
    }
    let layout = Layout::of(spec, schema)?;
    let data_path = description::in_dir(key, &layout.data_name)?;
    let upload = Upload::with_encoder(bucket, data_path.clone(), layout.encoder).await?;
    let rows = upload
        .write_all(batches, &label, IfAbandoned::Delete)
        .await?;
    let mut staged = Staged::new(&bucket.store);
    staged.add(data_path.clone());
    let described = async {
        let files = description::sizes(bucket, &[data_path]).await?;
        layout
            .description
            .write(bucket, key, &files, Some(&mut staged))
            .await
    };
    if let Err(e) = described.await {
        staged.undo().await;
        return Err(e);
    }
    staged.commit();
    Ok(WriteReport {
        rows_committed: rows,
        notes: layout.notes,
    })
}

/// What a records directory is written as, from the write's records options.
struct Layout {
    description: Description,
    data_name: String,
    encoder: Box<dyn Encoder>,
    /// Hints that were not understood and skipped.
    notes: Vec<String>,
}

impl Layout {
    fn of(spec: &WriteSpec, schema: SchemaRef) -> Result<Self> {
        let options = spec.file.records.clone().unwrap_or_default();
        match options.format_type.as_str() {
            kind @ ("parquet" | "avro") => {
                if !options.variant.is_empty() || !options.hints_json.trim().is_empty() {
                    return Err(Error::invalid(format!(
                        "a {kind} records directory takes no variant or hints; they describe delimited files"
                    )));
                }
                // Types the records schema cannot say are refused before a byte is written.
                let schema_doc = Some(schema::from_arrow(&schema)?);
                let (format, description) = match kind {
                    "parquet" => (Format::Parquet, Description::parquet(schema_doc)),
                    _ => (Format::Avro, Description::avro(schema_doc)),
                };
                Ok(Self {
                    description,
                    data_name: format!("data001.{kind}"),
                    encoder: crate::records::encoder(&format, schema)?,
                    notes: vec![],
                })
            }
            "" | "delimited" => {
                let given = crate::records::given_hints(&options)?;
                let variant = match options.variant.as_str() {
                    "" => "bluelabs",
                    v => v,
                };
                let strict = crate::records::strict(&spec.file);
                let (hints, notes) = Hints::from_json(Some(variant), &given, strict)?;
                let codec = hints.compression.map(Compression::codec);
                let extension = codec.map_or("", Codec::extension);
                let format = Format::Delimited(Box::new(hints.clone()));
                // What the file holds: uuids and arrays as text (records::as_text).
                let schema_doc = schema::from_arrow(&format.written_schema(&schema))?;
                let mut encoder = crate::records::encoder(&format, schema)?;
                if let Some(codec) = codec {
                    encoder = Box::new(Compressed::new(codec, encoder)?);
                }
                Ok(Self {
                    description: Description::delimited(variant, hints, schema_doc),
                    data_name: format!("data001.csv{extension}"),
                    encoder,
                    notes,
                })
            }
            other => Err(Error::invalid(format!(
                "records format type {other:?}: delimited, parquet and avro are written"
            ))),
        }
    }
}
