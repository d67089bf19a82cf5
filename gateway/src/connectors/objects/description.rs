//! The files that make a prefix a records directory, as Records Mover reads one:
//! `_format_parquet` or `_format_avro` (empty) or `_format_delimited` (all 13 hints), `_schema.json`, and the
//! `_manifest` naming the data files in order. Every prefix the gateway writes gets them,
//! except JSON lines (a format Records Mover does not have), so Records Mover, Spark and DuckDB
//! (which skip `_` files) all read what it wrote.

use std::sync::Arc;

use arrow::datatypes::Schema;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde_json::{Value, json};

use super::records_dir::DirFormat;
use super::staged::{self, Staged};
use super::{Bucket, Key};
use crate::error::{Context, Error, Result};
use crate::records::datetime::{DateFormat, DateTimeFormat, DateTimeTzFormat, TimeFormat};
use crate::records::hints::{Encoding, Hints, Quoting};
use crate::records::{CsvDialect, Format, schema};

pub(super) const FORMAT_PARQUET: &str = "_format_parquet";
pub(super) const FORMAT_DELIMITED: &str = "_format_delimited";
pub(super) const FORMAT_AVRO: &str = "_format_avro";
/// Every format file, so that writing one removes the others.
const FORMATS: [&str; 3] = [FORMAT_PARQUET, FORMAT_DELIMITED, FORMAT_AVRO];
pub(super) const SCHEMA: &str = "_schema.json";
pub(super) const MANIFEST: &str = "_manifest";

/// How a records directory's data files are described.
#[derive(Debug, Clone)]
pub(super) struct Description {
    pub(super) format: DirFormat,
    /// The variant written beside the hints (all 13 are written, so it decides nothing).
    variant: String,
    /// None where a records schema cannot say a column's type (Parquet and Avro only: a
    /// delimited directory cannot be read without one).
    schema_doc: Option<Value>,
}

impl Description {
    pub(super) fn parquet(schema_doc: Option<Value>) -> Self {
        Self {
            format: DirFormat::Parquet,
            variant: String::new(),
            schema_doc,
        }
    }

    pub(super) fn avro(schema_doc: Option<Value>) -> Self {
        Self {
            format: DirFormat::Avro,
            ..Self::parquet(schema_doc)
        }
    }

    pub(super) fn delimited(variant: &str, hints: Hints, schema_doc: Value) -> Self {
        Self {
            format: DirFormat::Delimited(hints),
            variant: variant.to_string(),
            schema_doc: Some(schema_doc),
        }
    }

    /// How the parts a prefix write of `format` and `schema` makes are described, with a note
    /// for what it leaves out; None for JSON lines. A type a records schema cannot say is
    /// refused for delimited parts (they cannot be read back without their schema) and leaves
    /// `_schema.json` out for Parquet and Avro (whose files carry their own).
    pub(super) fn of_parts(
        format: &Format,
        schema: &Schema,
        notes: &mut Vec<String>,
    ) -> Result<Option<Self>> {
        let delimited = |hints: Hints| -> Result<Self> {
            let written = format.written_schema(&Arc::new(schema.clone()));
            let doc = schema::from_arrow(&written).map_err(|e| {
                e.within("a delimited prefix is written as a records directory, whose _schema.json")
            })?;
            Ok(Self::delimited("bluelabs", hints, doc))
        };
        let own_schema = |notes: &mut Vec<String>, kind: &str| match schema::from_arrow(schema) {
            Ok(doc) => Some(doc),
            Err(e) => {
                notes.push(format!(
                    "the prefix has no _schema.json ({e}); readers take the schema from the {kind} files"
                ));
                None
            }
        };
        Ok(match format {
            Format::Parquet => Some(Self::parquet(own_schema(notes, "Parquet"))),
            Format::Avro => Some(Self::avro(own_schema(notes, "Avro"))),
            Format::Csv(dialect) => Some(delimited(csv_hints(*dialect))?),
            Format::Delimited(hints) => {
                // Parts are never compressed, whatever the hints said.
                let mut hints = (**hints).clone();
                hints.compression = None;
                Some(delimited(hints)?)
            }
            Format::Jsonl => None,
        })
    }

    pub(super) fn format_file(&self) -> &'static str {
        self.format.file()
    }

    /// Write the description of `files` (the directory's data files in order, by name and
    /// size) into `key`, as [`Rendered::write`] does.
    pub(super) async fn write(
        &self,
        bucket: &Bucket,
        key: &Key,
        files: &[(String, u64)],
        staged: Option<&mut Staged>,
    ) -> Result<()> {
        self.render(bucket, key, files)
            .write(bucket, key, staged)
            .await
    }

    /// The files that describe `files` (the directory's data files in order, by name and
    /// size) in `key`.
    pub(super) fn render(&self, bucket: &Bucket, key: &Key, files: &[(String, u64)]) -> Rendered {
        let json = |doc: &Value| serde_json::to_string(doc).expect("JSON");
        let format_doc = match &self.format {
            DirFormat::Parquet | DirFormat::Avro => String::new(),
            DirFormat::Delimited(hints) => json(
                &json!({"type": "delimited", "variant": self.variant, "hints": hints.to_json()}),
            ),
        };
        let manifest = json!({"entries": files.iter().map(|(name, size)| json!({
            "url": format!("{}/{}/{}", bucket.base_url, key.as_str(), name),
            "mandatory": true,
            "meta": {"content_length": size},
        })).collect::<Vec<_>>()});
        Rendered {
            format_file: self.format_file().to_string(),
            format_doc,
            schema: self.schema_doc.as_ref().map(json),
            manifest: json(&manifest),
        }
    }
}

/// A description's files, as they are written: kept in a commit record
/// ([`super::commit`]) until they are.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Rendered {
    format_file: String,
    format_doc: String,
    schema: Option<String>,
    manifest: String,
}

impl Rendered {
    /// Write the description into `key`: the format and schema files first, a `_format_` of
    /// the other kind or a schema this one lacks removed, and the manifest last, so a reader
    /// never finds a manifest before the files it names. Each file is one put, which every
    /// store makes visible whole or not at all. Each file written is added to `staged` when
    /// one is given (a new directory's, removed if the write fails); otherwise what it
    /// replaced is gone.
    pub(super) async fn write(
        &self,
        bucket: &Bucket,
        key: &Key,
        mut staged: Option<&mut Staged>,
    ) -> Result<()> {
        let format_file = FORMATS
            .into_iter()
            .find(|f| *f == self.format_file)
            .ok_or_else(|| Error::internal(format!("no format file {}", self.format_file)))?;
        let mut written = |path: Path| {
            if let Some(staged) = staged.as_deref_mut() {
                staged.add(path);
            }
        };
        written(
            put(
                bucket,
                key,
                format_file,
                self.format_doc.clone().into_bytes(),
            )
            .await?,
        );
        match &self.schema {
            Some(doc) => written(put(bucket, key, SCHEMA, doc.clone().into_bytes()).await?),
            None => remove(bucket, key, &[SCHEMA]).await,
        }
        let others: Vec<&str> = FORMATS.into_iter().filter(|f| *f != format_file).collect();
        remove(bucket, key, &others).await;
        written(put(bucket, key, MANIFEST, self.manifest.clone().into_bytes()).await?);
        Ok(())
    }
}

/// Put `bytes` as the file `name` of the directory `key`.
async fn put(bucket: &Bucket, key: &Key, name: &str, bytes: Vec<u8>) -> Result<Path> {
    let path = in_dir(key, name)?;
    // A local folder's put writes a temporary file first: a sweep must leave it.
    let _live = crate::connectors::stages::Live::hold(bucket.located(&path));
    bucket
        .store
        .put(&path, bytes.into())
        .await
        .internal(format!("writing {}{name}", bucket.label(key)))?;
    Ok(path)
}

/// Remove a prefix's description, `_format_` first: from then on it reads as a plain prefix,
/// its data files in name order, whatever the manifest said.
pub(super) async fn remove_all(bucket: &Bucket, key: &Key) {
    let mut all = FORMATS.to_vec();
    all.extend([MANIFEST, SCHEMA]);
    remove(bucket, key, &all).await;
}

async fn remove(bucket: &Bucket, key: &Key, names: &[&str]) {
    let paths = names.iter().filter_map(|n| in_dir(key, n).ok()).collect();
    staged::delete_all(&*bucket.store, paths).await;
}

/// `name` inside the directory `key`.
pub(super) fn in_dir(key: &Key, name: &str) -> Result<Path> {
    Path::parse(format!("{}/{name}", key.as_str()))
        .map_err(|e| Error::internal(format!("bad name {name}: {e}")))
}

/// The size of each of `paths`, as the store has it now.
pub(super) async fn sizes(bucket: &Bucket, paths: &[Path]) -> Result<Vec<(String, u64)>> {
    futures::stream::iter(paths.iter().map(Ok::<_, Error>))
        .and_then(|p| async move {
            let meta = bucket
                .store
                .head(p)
                .await
                .internal(format!("reading back {}", bucket.label(p)))?;
            Ok((p.filename().unwrap_or_default().to_string(), meta.size))
        })
        .try_collect()
        .await
}

/// The hints that describe what the CSV encoder writes (arrow-csv, with the date and time
/// formats of [`crate::convert`]): RFC 4180 quoting, `\n` between records, UTF-8, ISO dates;
/// fractions of a second and `+HH:MM` offsets are read by these formats too.
fn csv_hints(dialect: CsvDialect) -> Hints {
    Hints {
        field_delimiter: char::from(dialect.delimiter),
        record_terminator: "\n".into(),
        header_row: dialect.header,
        quoting: Some(Quoting::Minimal),
        quotechar: '"',
        doublequote: true,
        escape: None,
        encoding: Encoding::Utf8,
        compression: None,
        dateformat: DateFormat::YyyyMmDd,
        timeonlyformat: TimeFormat::Hh24MiSs,
        datetimeformat: DateTimeFormat::YyyyMmDdHh24MiSs,
        datetimeformattz: DateTimeTzFormat::YyyyMmDdHhMiSsOf,
    }
}
