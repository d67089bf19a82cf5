//! Records directories, as Records Mover writes them: `_format_delimited` (or
//! `_format_parquet`), `_schema.json`, `_manifest` (or `manifest` when `_manifest` is
//! absent), and the data files, read as one stream.
//!
//! The manifest's URLs point wherever the writer was; only their file names are used, and
//! each must be a file of this directory: a manifest cannot make the gateway read elsewhere.
//! Without a manifest, the directory's data files are read in name order. Written, a
//! directory gets one data file, delimited or Parquet (see [`write`]).

use arrow::datatypes::SchemaRef;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde_json::{Value, json};

use super::staged::Staged;
use super::write::{IfAbandoned, Upload};
use super::{Bucket, Key, keys, read};
use crate::connectors::{ReadSpec, WriteReport, WriteSpec};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::records::compression::{Codec, Compressed};
use crate::records::hinted::HintedEncoder;
use crate::records::hints::{Compression, Hints};
use crate::records::{Encoder, Format, schema, typed};
use crate::transfer::BatchStream;

pub(super) enum DirFormat {
    Delimited(Hints),
    Parquet,
}

pub(super) struct RecordsDir {
    format: DirFormat,
    /// From `_schema.json`, when there is one.
    schema: Option<SchemaRef>,
    files: Vec<ObjectMeta>,
}

/// The records directory `key` names, or None when it is a plain prefix (no `_format_*`).
/// With `strict`, hints in `_format_delimited` that are not understood are an error; else
/// they are skipped and logged.
pub(super) async fn open(bucket: &Bucket, key: &Key, strict: bool) -> Result<Option<RecordsDir>> {
    if !key.is_prefix() {
        return Ok(None);
    }
    let label = bucket.label(key);
    let level = bucket
        .store
        .list_with_delimiter(Some(key.path()))
        .await
        .internal(format!("listing {label}"))?;
    let name = |m: &ObjectMeta| m.location.filename().unwrap_or_default().to_string();
    let formats: Vec<&ObjectMeta> = level
        .objects
        .iter()
        .filter(|m| name(m).starts_with("_format_"))
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
    let json = |meta: &ObjectMeta| {
        let (bucket, location, label) = (bucket.clone(), meta.location.clone(), label.clone());
        async move {
            let bytes = bucket
                .store
                .get(&location)
                .await
                .internal(format!("reading {label}{location}"))?
                .bytes()
                .await
                .internal(format!("reading {location}"))?;
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| Error::invalid(format!("{}: not JSON: {e}", bucket.label(&location))))
        }
    };
    let format = match name(format_meta).as_str() {
        "_format_delimited" => {
            let doc = json(format_meta).await?;
            let variant = doc.get("variant").and_then(Value::as_str);
            let hints = doc
                .get("hints")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let what = format!("{label}_format_delimited");
            let (hints, skipped) =
                Hints::from_json(variant, &hints, strict).map_err(|e| e.within(&what))?;
            crate::records::warn_skipped(&what, &skipped);
            DirFormat::Delimited(hints)
        }
        "_format_parquet" => DirFormat::Parquet,
        other => {
            return Err(Error::unsupported(format!(
                "{label}: records format {:?} is not read (delimited and parquet are)",
                other.trim_start_matches("_format_")
            )));
        }
    };
    let find = |file: &str| level.objects.iter().find(|m| name(m) == file);
    let schema = match find("_schema.json") {
        Some(meta) => Some(
            schema::to_arrow(&json(meta).await?, false)
                .map_err(|e| e.within(&label))?
                .0,
        ),
        None if matches!(format, DirFormat::Delimited(_)) => {
            return Err(Error::invalid(format!(
                "{label}: a delimited records directory needs its _schema.json"
            )));
        }
        None => None,
    };
    let files = match find("_manifest").or_else(|| find("manifest")) {
        Some(meta) => {
            let doc = json(meta).await?;
            let entries = doc
                .get("entries")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::invalid(format!("{label}: the manifest has no entries")))?;
            let mut files = Vec::with_capacity(entries.len());
            for entry in entries {
                let url = entry.get("url").and_then(Value::as_str).unwrap_or_default();
                let file = url.rsplit('/').next().unwrap_or_default();
                let meta = find(file).filter(|m| keys::is_data_file(&m.location)).ok_or_else(|| {
                    Error::invalid(format!(
                        "{label}: the manifest names {url:?}, which is not a data file of this directory"
                    ))
                })?;
                files.push(meta.clone());
            }
            files
        }
        None => {
            let mut files: Vec<ObjectMeta> = level
                .objects
                .iter()
                .filter(|m| keys::is_data_file(&m.location) && name(m) != "manifest")
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
    Ok(Some(RecordsDir {
        format,
        schema,
        files,
    }))
}

impl RecordsDir {
    /// The directory's schema: `_schema.json`, else the first Parquet file's.
    pub(super) async fn schema(&self, bucket: &Bucket) -> Result<SchemaRef> {
        match &self.schema {
            Some(s) => Ok(s.clone()),
            None => Ok(
                read::describe_file(bucket, &self.files[0], &Format::Parquet)
                    .await?
                    .0,
            ),
        }
    }

    /// Every data file in order, as one stream.
    pub(super) async fn read(
        self,
        bucket: &Bucket,
        spec: &ReadSpec,
    ) -> Result<(SchemaRef, BatchStream)> {
        let (hints, schema) = match (self.format, self.schema) {
            (DirFormat::Delimited(hints), Some(schema)) => (hints, schema),
            _ => {
                let mut spec = spec.clone();
                spec.file.format = mover_proto::FileFormat::Parquet as i32;
                return read::read_dataset(bucket, self.files, &spec, None).await;
            }
        };
        let bucket = bucket.clone();
        let file_schema = schema.clone();
        let stream = futures::stream::iter(self.files)
            .then(move |meta| {
                let (bucket, schema, hints) = (bucket.clone(), file_schema.clone(), hints.clone());
                async move {
                    let label = bucket.label(&meta.location);
                    let bytes = read::text_bytes(&bucket, &meta)
                        .await
                        .map_err(|e| e.within(&label))?;
                    typed::decode(bytes, schema, hints, bucket.batch_rows, label)
                }
            })
            .try_flatten()
            .boxed();
        Ok((schema, stream))
    }
}

/// Write a records directory into the empty prefix `key`: the data file (`data001.parquet`,
/// or `data001.csv` by the hints, compressed as they say), `_format_parquet` (empty, as
/// Records Mover requires) or `_format_delimited` with all 13 hints, a strict `_schema.json`,
/// and the manifest last, written as `manifest` and renamed `_manifest`, so a reader never
/// sees a manifest before its files. On any failure, or if the write is dropped, what was
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
    let options = spec.file.records.clone().unwrap_or_default();
    // Types the records schema cannot say are refused before a byte is written.
    let schema_doc = schema::from_arrow(&schema)?;
    let path = |name: &str| {
        Path::parse(format!("{}/{name}", key.as_str()))
            .map_err(|e| Error::internal(format!("bad name {name}: {e}")))
    };
    let (format_file, format_doc, data_name, encoder, notes) = match options.format_type.as_str() {
        "parquet" => {
            if !options.variant.is_empty() || !options.hints_json.trim().is_empty() {
                return Err(Error::invalid(
                    "a parquet records directory takes no variant or hints; they describe delimited files",
                ));
            }
            let encoder = crate::records::encoder(&Format::Parquet, schema)?;
            let name = "data001.parquet".to_string();
            ("_format_parquet", None, name, encoder, vec![])
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
            let mut encoder: Box<dyn Encoder> =
                Box::new(HintedEncoder::new(hints.clone(), schema)?);
            if let Some(codec) = codec {
                encoder = Box::new(Compressed::new(codec, encoder)?);
            }
            let doc = json!({"type": "delimited", "variant": variant, "hints": hints.to_json()});
            let name = format!("data001.csv{extension}");
            ("_format_delimited", Some(doc), name, encoder, notes)
        }
        other => {
            return Err(Error::invalid(format!(
                "records format type {other:?}: delimited and parquet are written"
            )));
        }
    };
    let data_path = path(&data_name)?;
    let upload = Upload::with_encoder(bucket, data_path.clone(), encoder).await?;
    let rows = upload
        .write_all(batches, &label, IfAbandoned::Delete)
        .await?;

    let mut staged = Staged::new(&bucket.store);
    staged.add(data_path.clone());
    let result: Result<()> = async {
        let size = bucket
            .store
            .head(&data_path)
            .await
            .internal(format!("reading back {label}{data_name}"))?
            .size;
        let manifest = json!({"entries": [{
            "url": format!("{}/{}/{data_name}", bucket.base_url, key.as_str()),
            "mandatory": true,
            "meta": {"content_length": size},
        }]});
        let json = |doc: &Value| serde_json::to_vec(doc).expect("JSON");
        for (name, bytes) in [
            (
                format_file,
                format_doc.as_ref().map(json).unwrap_or_default(),
            ),
            ("_schema.json", json(&schema_doc)),
            ("manifest", json(&manifest)),
        ] {
            let p = path(name)?;
            bucket
                .store
                .put(&p, bytes.into())
                .await
                .internal(format!("writing {label}{name}"))?;
            staged.add(p);
        }
        // Staged before the rename: a drop during it finds `_manifest` or `manifest` to remove.
        staged.add(path("_manifest")?);
        let (from, to) = (path("manifest")?, path("_manifest")?);
        bucket
            .store
            .rename(&from, &to)
            .await
            .internal(format!("renaming {label}manifest"))?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        staged.undo().await;
        return Err(e);
    }
    staged.commit();
    Ok(WriteReport {
        rows_committed: rows,
        notes,
    })
}
