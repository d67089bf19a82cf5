//! File formats, read and written as streams over any object store.
//!
//! Reading: a format turns a stream of bytes (or ranged reads, for Parquet) into record
//! batches, never holding the file. Writing: an [`Encoder`] turns each batch into bytes that
//! the caller uploads at once; only the encoder's own small buffers (a Parquet row group) stay.
//!
//! Plain CSV (a header flag and a delimiter) goes through arrow-csv ([`csv`]). Delimited text
//! described by Records Mover's hints ([`hints`]) has a folder of its own ([`delimited`]): it
//! is split by [`delimited::split`], decoded by [`encoding`], typed by [`typed`] and written
//! by [`hinted`]; [`sniff`] tells the hints of a file from its first bytes. Beside them:
//! [`parquet`], [`jsonl`], [`compression`] (gzip, bzip2, zstd by their bytes) and [`schema`]
//! (Records Mover's `_schema.json`).

pub mod as_text;
pub mod avro;
pub mod compression;
pub mod csv;
pub mod delimited;
pub mod jsonl;
pub mod lines;
pub mod parquet;
pub mod schema;

// The delimited format's modules, by their short names as the rest of the crate uses them.
pub use delimited::{datetime, encoding, hinted, hints, sniff, typed};

use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use mover_proto::{CsvOptions, FileFormat, FileOptions};

use crate::convert;
use crate::error::{Error, Result};

/// A file format with its options, resolved from the command and the file's name.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Csv(CsvDialect),
    Parquet,
    Jsonl,
    /// Avro object container files.
    Avro,
    /// Delimited text described by records hints (escapes, quoting, date formats, ...).
    Delimited(Box<hints::Hints>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    pub header: bool,
    pub delimiter: u8,
    /// Read as plain CSV because the file's first bytes, sniffed, showed no backslash
    /// escape: a read that meets one later fails, naming the line and the hint to give
    /// ([`csv::decode`]), rather than read the file's escaped fields wrongly.
    pub no_escape: bool,
}

impl Default for CsvDialect {
    fn default() -> Self {
        Self {
            header: true,
            delimiter: b',',
            no_escape: false,
        }
    }
}

impl CsvDialect {
    /// `base` with what the options set.
    fn with_options(base: Self, opts: Option<&CsvOptions>) -> Result<Self> {
        let header = opts.and_then(|o| o.header).unwrap_or(base.header);
        let delimiter = match opts.and_then(|o| o.delimiter.as_deref()) {
            None => base.delimiter,
            Some("\\t") | Some("\t") => b'\t',
            Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
            Some(d) => {
                return Err(Error::invalid(format!(
                    "CSV delimiter {d:?}: give one ASCII character"
                )));
            }
        };
        Ok(Self {
            header,
            delimiter,
            ..base
        })
    }
}

impl Format {
    /// The format the options ask for, or the one the key's extension names. Records hints
    /// without a variant lay over bluelabs here; a read lays them over the hints sniffed from
    /// the file instead ([`Format::sniffing`]).
    pub fn resolve(key: &str, options: &FileOptions) -> Result<Self> {
        let csv = |base| CsvDialect::with_options(base, options.csv.as_ref()).map(Format::Csv);
        if let Some(records) = &options.records
            && options.format() != FileFormat::Records
        {
            if records.format_type == "parquet" {
                return Ok(Format::Parquet);
            }
            let variant = Some(records.variant.as_str()).filter(|v| !v.is_empty());
            let (hints, warnings) =
                hints::Hints::from_json(variant, &given_hints(records)?, strict(options))?;
            warn_skipped(key, &warnings);
            return Ok(Format::Delimited(Box::new(hints)));
        }
        match options.format() {
            FileFormat::Csv => csv(CsvDialect::default()),
            FileFormat::Parquet => Ok(Format::Parquet),
            FileFormat::Jsonl => Ok(Format::Jsonl),
            FileFormat::Avro => Ok(Format::Avro),
            FileFormat::Records => Err(Error::invalid(format!(
                "{key}: a records directory is a prefix: name it with a trailing / (records directories are read by their _format_ file)"
            ))),
            FileFormat::Auto => match Self::by_extension(key) {
                Some(Format::Csv(base)) => csv(base),
                Some(f) => Ok(f),
                None => Err(Error::invalid(format!(
                    "cannot tell the format of {key:?} from its name; name it .csv, .tsv, .parquet, .jsonl or .avro, or give the format"
                ))),
            },
        }
    }

    /// For a read: the hints to lay over those sniffed from the file itself, when the options
    /// ask for records hints without naming a variant (or for the records format on a file),
    /// as Records Mover does. None when the format is known without looking.
    pub fn sniffing(
        options: &FileOptions,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
        let records = options.records.as_ref();
        let sniff = records.is_none_or(|r| r.format_type != "parquet")
            && (options.format() == FileFormat::Records
                || records.is_some_and(|r| r.variant.is_empty()));
        if !sniff {
            return Ok(None);
        }
        records
            .map_or_else(|| Ok(Default::default()), given_hints)
            .map(Some)
    }

    /// The format a file name suggests, if any (`.csv.gz` is CSV: compression is told apart
    /// by [`compression`]).
    pub fn by_extension(key: &str) -> Option<Self> {
        let key = compression::Codec::by_extension(key).1;
        let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
        let ext = name.rsplit_once('.').map(|(_, e)| e)?;
        Some(match ext {
            "csv" => Format::Csv(CsvDialect::default()),
            "tsv" => Format::Csv(CsvDialect {
                delimiter: b'\t',
                ..CsvDialect::default()
            }),
            "parquet" | "pq" => Format::Parquet,
            "jsonl" | "ndjson" => Format::Jsonl,
            "avro" => Format::Avro,
            _ => return None,
        })
    }

    /// The extension files of this format are written with.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Csv(d) if d.delimiter == b'\t' => "tsv",
            Format::Csv(_) | Format::Delimited(_) => "csv",
            Format::Parquet => "parquet",
            Format::Jsonl => "jsonl",
            Format::Avro => "avro",
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Format::Csv(_) => "CSV",
            Format::Parquet => "Parquet",
            Format::Jsonl => "JSON lines",
            Format::Avro => "Avro",
            Format::Delimited(_) => "delimited text",
        }
    }

    /// Refuse, by column, types this format cannot hold, before any byte is written.
    pub fn check_schema(&self, schema: &Schema) -> Result<()> {
        // Avro's writer says by itself what it cannot hold, before a block is written.
        if matches!(self, Format::Avro) {
            return Ok(());
        }
        if matches!(self, Format::Parquet) {
            // parquet-rs does not write these yet; say so by column before any byte is written.
            if let Some(f) = schema.fields().iter().find(|f| {
                matches!(
                    f.data_type(),
                    DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano)
                )
            }) {
                return Err(Error::unsupported(format!(
                    "column {:?}: Parquet cannot hold an interval with nanoseconds (not yet in parquet-rs); cast it in a query, such as {}::text, or leave it out with --columns",
                    f.name(),
                    f.name()
                )));
            }
            return Ok(());
        }
        for f in schema.fields() {
            if !convert::is_uuid(f) && !as_text::can_hold(f.data_type()) {
                return Err(Error::unsupported(format!(
                    "column {:?}: {} cannot hold {}; write Parquet instead",
                    f.name(),
                    self.name(),
                    f.data_type()
                )));
            }
        }
        Ok(())
    }

    /// The schema this format writes `schema` as: a text format's uuids as text, and CSV's
    /// and delimited text's lists, structs and maps as JSON text ([`as_text`]).
    pub fn written_schema(&self, schema: &SchemaRef) -> SchemaRef {
        self.as_text(schema).unwrap_or_else(|| schema.clone())
    }

    fn as_text(&self, schema: &Schema) -> Option<SchemaRef> {
        match self {
            Format::Parquet | Format::Avro => None,
            Format::Jsonl => as_text::schema(schema, false),
            Format::Csv(_) | Format::Delimited(_) => as_text::schema(schema, true),
        }
    }
}

/// Whether records hints that are not understood are errors (Records Mover's
/// `fail_if_dont_understand`, true unless the options say false).
pub fn strict(options: &FileOptions) -> bool {
    options.fail_if_dont_understand.unwrap_or(true)
}

/// Hints skipped because they were not understood (with `fail_if_dont_understand = false`)
/// are logged where no report carries them.
pub(crate) fn warn_skipped(what: &str, warnings: &[String]) {
    for w in warnings {
        tracing::warn!("{what}: skipped, not understood: {w}");
    }
}

/// The hints a user gave, as a JSON object.
pub(crate) fn given_hints(
    records: &mover_proto::RecordsOptions,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    match records.hints_json.trim() {
        "" => Ok(serde_json::Map::new()),
        text => serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("the records hints are not a JSON object: {e}"))),
    }
}

/// Turns batches into the bytes of one file.
pub trait Encoder: Send {
    /// The bytes this batch adds (possibly none: encoders may buffer a little).
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>>;
    /// The remaining bytes: buffered rows, footers.
    fn finish(self: Box<Self>) -> Result<Vec<u8>>;
}

/// The encoder for a file named `key`: compressed when the name ends in `.gz`, `.bz2` or
/// `.zst`.
pub fn encoder_for(key: &str, format: &Format, schema: Arc<Schema>) -> Result<Box<dyn Encoder>> {
    let plain = encoder(format, schema)?;
    match compression::Codec::by_extension(key).0 {
        None => Ok(plain),
        Some(_) if *format == Format::Parquet => Err(Error::invalid(format!(
            "{key}: Parquet compresses its own pages; name the file .parquet"
        ))),
        Some(_) if *format == Format::Avro => Err(Error::invalid(format!(
            "{key}: Avro compresses its own blocks; name the file .avro"
        ))),
        Some(codec) => Ok(Box::new(compression::Compressed::new(codec, plain)?)),
    }
}

pub fn encoder(format: &Format, schema: Arc<Schema>) -> Result<Box<dyn Encoder>> {
    format.check_schema(&schema)?;
    let view = format.as_text(&schema);
    let schema = view.clone().unwrap_or(schema);
    let plain: Box<dyn Encoder> = match format {
        Format::Csv(dialect) => Box::new(csv::CsvEncoder::new(*dialect, schema)),
        Format::Delimited(h) => Box::new(hinted::HintedEncoder::new((**h).clone(), schema)?),
        Format::Parquet => Box::new(parquet::ParquetEncoder::new(schema)?),
        Format::Jsonl => Box::new(jsonl::JsonlEncoder::new()),
        Format::Avro => Box::new(avro::AvroEncoder::new(&schema)?),
    };
    Ok(match view {
        Some(view) => Box::new(as_text::AsText::new(
            plain,
            view,
            !matches!(format, Format::Jsonl),
        )),
        None => plain,
    })
}

/// A `Write` whose contents the encoder's owner drains after each batch.
#[derive(Clone, Default)]
pub(crate) struct Drain(Arc<Mutex<Vec<u8>>>);

impl Drain {
    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("drain lock"))
    }
}

impl Write for Drain {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("drain lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Cut a sample at its last complete line, so inference never sees half a record.
pub(crate) fn whole_lines(sample: &[u8], whole_file: bool) -> Result<&[u8]> {
    if whole_file {
        return Ok(sample);
    }
    match memchr::memrchr(b'\n', sample) {
        Some(i) => Ok(&sample[..=i]),
        None => Err(crate::error::Error::invalid(format!(
            "line 1 is longer than the {} bytes read to infer the schema",
            sample.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_by_extension_and_override() {
        let auto = FileOptions::default();
        assert_eq!(
            Format::resolve("a/b.parquet", &auto).unwrap(),
            Format::Parquet
        );
        assert_eq!(Format::resolve("B.JSONL", &auto).unwrap(), Format::Jsonl);
        let tsv = Format::resolve("x.tsv", &auto).unwrap();
        assert_eq!(
            tsv,
            Format::Csv(CsvDialect {
                delimiter: b'\t',
                ..CsvDialect::default()
            })
        );
        let e = Format::resolve("x.dat", &auto).unwrap_err();
        assert!(e.message.contains("x.dat"), "{e}");
        let forced = FileOptions {
            format: FileFormat::Csv as i32,
            csv: Some(CsvOptions {
                header: Some(false),
                delimiter: Some("|".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            Format::resolve("x.dat", &forced).unwrap(),
            Format::Csv(CsvDialect {
                header: false,
                delimiter: b'|',
                no_escape: false,
            })
        );
    }

    #[test]
    fn whole_lines_cuts_a_partial_record() {
        assert_eq!(whole_lines(b"a,b\n1,2\n3,", false).unwrap(), b"a,b\n1,2\n");
        assert_eq!(whole_lines(b"a,b\n1,2\n3,", true).unwrap(), b"a,b\n1,2\n3,");
        let err = whole_lines(b"a,b,c", false).unwrap_err();
        assert!(
            err.message.contains("line 1 is longer than the 5 bytes"),
            "{}",
            err.message
        );
    }
}
