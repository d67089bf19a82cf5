//! Targets for the file formats: records hints and schemas, the sniffer, the delimited
//! splitter, and whole files read from a bucket.

use std::sync::OnceLock;

use futures::StreamExt;
use serde_json::Value;

use super::{block_on, not_internal, valid};
use crate::connectors::objects::Bucket;
use crate::connectors::{Connector, ReadSpec, ReadTarget, Setup};
use crate::records::delimited::split::{Dialect, Record, Splitter, Terminator};
use crate::records::lines::Bound;
use crate::records::{encoding, hints::Hints, schema, sniff as sniffer};

/// A `_format_delimited` document: its variant and hints, strictly and leniently; hints that
/// read are written back as Records Mover's JSON and read again the same.
pub fn hints(data: &[u8]) {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let variant = doc.get("variant").and_then(Value::as_str);
    let Some(given) = doc.get("hints").and_then(Value::as_object) else {
        return;
    };
    for strict in [true, false] {
        let Ok((h, _)) = Hints::from_json(variant, given, strict) else {
            continue;
        };
        let written = h.to_json();
        let (again, warnings) =
            Hints::from_json(None, &written, true).expect("hints written here read back");
        assert_eq!(again, h, "hints changed on the way through {written:?}");
        assert!(warnings.is_empty(), "{warnings:?}");
        let _ = Dialect::from_hints(&h);
    }
}

/// A `_schema.json` document, strictly and leniently; a schema that reads is written back as a
/// records schema that reads as the same columns.
pub fn records_schema(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for strict in [true, false] {
        let Ok((read, _)) = schema::to_arrow(&doc, strict) else {
            continue;
        };
        let Ok(written) = schema::from_arrow(&read) else {
            continue;
        };
        let (again, _) = schema::to_arrow(&written, true)
            .unwrap_or_else(|e| panic!("{written} was written here and does not read: {e}"));
        assert_eq!(
            again, read,
            "the schema changed on the way through {written}"
        );
    }
}

/// The sniffer on a file's first bytes (whole or cut, by the first byte), then the schema the
/// hints it tells would infer.
pub fn sniff(data: &[u8]) {
    let whole = data.first().is_some_and(|b| b & 1 == 1);
    for told in [
        sniffer::sniff(data, data, whole),
        sniffer::structure(data, data, whole),
    ] {
        let h = match told {
            Ok(h) => h,
            Err(e) => return not_internal(&e, "a sniffed sample"),
        };
        let text = encoding::decode_sample(h.encoding, data, whole).unwrap_or_else(|b| b.decoded);
        if let Err(e) = sniffer::infer_schema(&text, whole, &h) {
            not_internal(&e, "a sniffed sample");
        }
    }
}

/// The delimited splitter in a dialect the first two bytes choose: the records (or the error)
/// must not depend on where the text was cut into chunks; and bounded, it must not panic.
pub fn split(data: &[u8]) {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let dialect = Dialect {
        delimiter: [',', '\t', '|', 'þ'][usize::from(a & 3)],
        terminator: [
            Terminator::Char('\n'),
            Terminator::CrLf,
            Terminator::Char('\r'),
            Terminator::Char('\u{2}'),
        ][usize::from((a >> 2) & 3)],
        quote: [None, Some('"'), Some('\''), Some('"')][usize::from((a >> 4) & 3)],
        doublequote: a & 0x40 != 0,
        escape: (a & 0x80 != 0).then_some('\\'),
    };
    let text = String::from_utf8_lossy(rest);
    let whole = split_in(dialect, &[&text], Bound::none());
    let step = 1 + usize::from(*b % 16);
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + step).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        chunks.push(&text[at..end]);
        at = end;
    }
    let cut = split_in(dialect, &chunks, Bound::none());
    assert_eq!(
        whole, cut,
        "{dialect:?}: chunks of {step} bytes split otherwise"
    );
    let bound = Bound {
        max: 64,
        setting: "fuzz".into(),
    };
    let _ = split_in(dialect, &chunks, bound);
}

fn split_in(dialect: Dialect, chunks: &[&str], bound: Bound) -> Result<Vec<Record>, String> {
    let mut splitter = Splitter::new(dialect).bounded(bound);
    let mut out = Vec::new();
    for chunk in chunks {
        splitter.push(chunk, &mut out).map_err(|e| e.to_string())?;
    }
    splitter.finish(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// One file (or a records directory) in a local bucket, read as `mvrec cp` reads it: told by
/// its bytes, described, sniffed and read to its end. The first byte chooses its name and
/// how the rest is stored (compressed here, so the fuzzer's bytes are the text inside, or
/// as it is, where the compressed bytes are the input).
pub fn files(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (folder, bucket) = scratch_bucket();
    let _ = std::fs::remove_dir_all(folder);
    std::fs::create_dir_all(folder.join("rd")).expect("a scratch folder");
    let write = |name: &str, bytes: &[u8]| std::fs::write(folder.join(name), bytes).expect(name);
    let name = match pick % 10 {
        0 => "f.csv",
        1 => "f.csv.gz",
        2 => "f.csv.zst",
        3 => "f.jsonl",
        4 => "f.parquet",
        5 => "f.avro",
        6 => "f.txt",
        7 => "rd/",
        8 => "f.csv.bz2",
        _ => "g.csv.gz",
    };
    match pick % 10 {
        1 => write(name, &gzip(rest)),
        2 => write(name, &zstd::encode_all(rest, 1).expect("zstd")),
        8 => write(name, &bzip2(rest)),
        // `_format_delimited`, `_schema.json` and a data file, cut at NUL bytes.
        7 => {
            let files = ["_format_delimited", "_schema.json", "part-0.csv"];
            for (file, bytes) in files.iter().zip(rest.splitn(3, |b| *b == 0)) {
                write(&format!("rd/{file}"), bytes);
            }
        }
        _ => write(name, rest),
    }
    let spec = ReadSpec {
        target: ReadTarget::Dataset(vec![name.to_string()]),
        file: Default::default(),
        columns: vec![],
        part: None,
    };
    block_on(async {
        if let Err(e) = bucket.describe(&spec).await {
            not_internal(&e, name);
        }
        if let Err(e) = bucket.sniff(&spec).await {
            not_internal(&e, name);
        }
        let (schema, mut batches) = match bucket.open_read(&spec).await {
            Ok(read) => read,
            Err(e) => return not_internal(&e, name),
        };
        while let Some(batch) = batches.next().await {
            match batch {
                Ok(batch) => valid(&batch, &schema),
                Err(e) => return not_internal(&e, name),
            }
        }
    });
}

/// A local bucket in a folder of this process's own, with 1 MiB lines.
fn scratch_bucket() -> &'static (std::path::PathBuf, Bucket) {
    static BUCKET: OnceLock<(std::path::PathBuf, Bucket)> = OnceLock::new();
    BUCKET.get_or_init(|| {
        let folder = std::env::temp_dir().join(format!("mover-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("a scratch folder");
        let options = toml::from_str(&format!(
            "url = {:?}\nmax_line_mb = 1",
            format!("file://{}", folder.display())
        ))
        .expect("bucket options");
        let setup = Setup {
            base_dir: folder.clone(),
            batch_rows: 100,
            hold: std::time::Duration::from_secs(60),
            write_ttl: std::time::Duration::from_secs(3600),
        };
        let bucket = Bucket::open("fuzz", &options, &setup).expect("a local bucket");
        (folder, bucket)
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    out.write_all(bytes).expect("gzip");
    out.finish().expect("gzip")
}

fn bzip2(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    out.write_all(bytes).expect("bzip2");
    out.finish().expect("bzip2")
}
