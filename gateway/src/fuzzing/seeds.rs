//! The seeds `fuzz/seeds/` holds (`seeds_are_current` checks them, and writes them anew with
//! `MOVER_WRITE_SEEDS=1`): the test suite's own
//! files for the text targets, and for the binary ones messages made by the gateway's own
//! encoders (a fuzzer finds an 11-byte COPY signature or an IPC flatbuffer slowly by itself).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray,
};
use arrow::datatypes::Int32Type;
use futures::TryStreamExt;
use mover_proto::{Command, ExistingTable, Read, TicketBody, Write, WritePart, command, read};
use prost::Message;

use super::databases::pg_types;
use crate::connectors::postgres::codec;
use crate::connectors::postgres::types::PgType;

type Seeds = Vec<Vec<u8>>;

pub fn all(root: &Path) -> Vec<(&'static str, Seeds)> {
    let corpus = root.join("tests/corpus/files");
    let fixtures = root.join("tests/fixtures/records-mover-1.6.4");
    let files_named = |name: &str| -> Seeds {
        let mut found = vec![];
        for dir in [&corpus, &fixtures] {
            for entry in walk(dir) {
                if entry.file_name().is_some_and(|n| n == name) {
                    found.push(std::fs::read(entry).unwrap());
                }
            }
        }
        found
    };
    vec![
        ("hints", hints(files_named("_format_delimited"))),
        ("records_schema", files_named("_schema.json")),
        ("sniff", text_files(&corpus)),
        ("split", split()),
        ("files", files(&corpus, &fixtures)),
        ("tickets", tickets()),
        ("descriptors", descriptors()),
        ("upload", upload()),
        ("bucket_query", bucket_queries()),
        ("pg_copy", pg_copy()),
        ("mysql_rows", mysql_rows()),
    ]
}

/// The files under `dir`, but those over 64 KiB (libFuzzer takes its inputs' largest size
/// for the most it makes, and large inputs run slowly).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.metadata().unwrap().len() <= 64 * 1024 {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn hints(mut docs: Seeds) -> Seeds {
    for variant in ["bluelabs", "csv", "bigquery", "vertica", "dumb"] {
        docs.push(
            format!(
                r#"{{"type":"delimited","variant":"{variant}","hints":{{"field-delimiter":"\t","quoting":"minimal","escape":"\\","compression":"GZIP","dateformat":"MM/DD/YY","datetimeformattz":"YYYY-MM-DD HH24:MI:SSOF","encoding":"UTF16"}}}}"#
            )
            .into_bytes(),
        );
    }
    docs
}

fn text_files(corpus: &Path) -> Seeds {
    walk(corpus)
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            [".csv", ".tsv", ".jsonl"].iter().any(|e| name.ends_with(e))
        })
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn split() -> Seeds {
    let text = "a,b|c\t\"q\"\n\"x,\"\"y\"\"\",2\r\n\\,q\\\n'z'\u{2}þ,last";
    [0x00u8, 0x50, 0x94, 0x81, 0x26, 0xe3]
        .iter()
        .map(|d| [&[*d, 3][..], text.as_bytes()].concat())
        .collect()
}

/// Each file of the corpus behind the first byte that names it as its kind (`files`'
/// layouts); records directories' three files cut at NUL bytes.
fn files(corpus: &Path, fixtures: &Path) -> Seeds {
    let mut out = vec![];
    for path in walk(corpus) {
        let name = path.to_string_lossy().to_string();
        let pick = match () {
            _ if path.parent() != Some(corpus) => continue,
            _ if name.ends_with(".csv") => 0u8,
            _ if name.ends_with(".jsonl") => 3,
            _ if name.ends_with(".parquet") => 4,
            _ if name.ends_with(".avro") => 5,
            _ if name.ends_with(".tsv") => 6,
            _ if name.ends_with(".gz") || name.ends_with(".bz2") || name.ends_with(".zst") => 9,
            _ => continue,
        };
        out.push([&[pick][..], &std::fs::read(&path).unwrap()].concat());
    }
    let dirs = std::fs::read_dir(corpus)
        .unwrap()
        .chain(std::fs::read_dir(fixtures).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir());
    for dir in dirs {
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_default();
        let data = walk(&dir)
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(".csv"))
            .map(|p| std::fs::read(p).unwrap())
            .unwrap_or_default();
        let seed = [
            &[7][..],
            &read("_format_delimited"),
            &[0],
            &read("_schema.json"),
            &[0],
            &data,
        ];
        out.push(seed.concat());
    }
    out
}

fn path_read(parts: &[&str]) -> Read {
    Read {
        what: Some(read::What::Path(mover_proto::Path {
            parts: parts.iter().map(|p| p.to_string()).collect(),
        })),
        part: Some(mover_proto::Part {
            files: vec!["a.csv".into()],
            first_key: Some(10),
            end_key: Some(20),
            key: "id".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tickets() -> Seeds {
    let read = path_read(&["demo", "main", "orders"]);
    // Expiring long after any run, so that the seeds stay the same.
    let body = TicketBody {
        read: Some(read.clone()),
        principal: "fuzzer".into(),
        expires_at: u64::MAX / 2,
    }
    .encode_to_vec();
    vec![super::flight::signed(&body), read.encode_to_vec(), body]
}

fn descriptors() -> Seeds {
    let commands = [
        command::Kind::Read(path_read(&["files", "exports", "a.csv"])),
        command::Kind::Write(Write {
            path: Some(mover_proto::Path {
                parts: vec!["demo".into(), "main".into(), "t".into()],
            }),
            existing_table: ExistingTable::Append as i32,
            ..Default::default()
        }),
        command::Kind::Part(WritePart {
            write_id: "w1".into(),
            partition: 3,
            attempt: 1,
            end_marker: true,
        }),
    ];
    let mut out: Seeds = commands
        .into_iter()
        .map(|k| Command { kind: Some(k) }.encode_to_vec())
        .collect();
    out.extend(
        [
            "demo/main/orders",
            "files/rd/",
            "files/2024/*.csv",
            "db/\"we\"\"ird\"/x",
        ]
        .map(|p| p.as_bytes().to_vec()),
    );
    out
}

/// An upload of two batches (a dictionary column among them), framed as `upload` reads it.
fn upload() -> Seeds {
    let list = ListArray::from_iter_primitive::<Int32Type, _, _>([
        Some(vec![Some(1), None]),
        None,
        Some(vec![]),
    ]);
    let dict: DictionaryArray<Int32Type> = ["a", "b", "a"].into_iter().collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
        Arc::new(StringArray::from(vec![Some("x"), Some(""), None])),
        Arc::new(Float64Array::from(vec![1.5, f64::NAN, -0.0])),
        Arc::new(list),
        Arc::new(dict),
        Arc::new(Int32Array::from(vec![7, 8, 9])),
    ];
    let names = ["i", "s", "f", "l", "d", "n"];
    let batch = RecordBatch::try_from_iter(names.into_iter().zip(columns)).unwrap();
    let encoded = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_dictionary_handling(arrow_flight::encode::DictionaryHandling::Resend)
        .build(futures::stream::iter([Ok(batch.clone()), Ok(batch)]));
    let messages: Vec<_> = super::block_on(encoded.try_collect()).unwrap();
    let mut framed = vec![];
    for m in &messages {
        framed.push(0u8);
        for part in [&m.data_header, &m.data_body] {
            framed.extend_from_slice(&(part.len() as u16).to_be_bytes());
            framed.extend_from_slice(part);
        }
    }
    let mut ended = framed.clone();
    ended.extend_from_slice(&[1, 0, 0, 0, 0]);
    vec![framed, ended]
}

fn bucket_queries() -> Seeds {
    [
        r#"SELECT * FROM "files"."exports"."a.csv""#,
        r#"SELECT id, "na""me" FROM files.rd LIMIT 10"#,
        "select a from b where c = 1",
    ]
    .map(|q| q.as_bytes().to_vec())
    .into()
}

/// A value of each type as Postgres sends it in binary.
fn pg_value(t: &PgType) -> Vec<u8> {
    let array = |oid: u32, elements: &[Vec<u8>]| {
        let mut v = vec![];
        for n in [1i32, 0, oid as i32, elements.len() as i32, 1] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        for e in elements {
            v.extend_from_slice(&(e.len() as i32).to_be_bytes());
            v.extend_from_slice(e);
        }
        v
    };
    let num = |s: &str| codec::numeric_from_str(s).unwrap();
    match t {
        PgType::Bool => vec![1],
        PgType::Int2 => (-2i16).to_be_bytes().to_vec(),
        PgType::Int4 => 40_000i32.to_be_bytes().to_vec(),
        PgType::Int8 => i64::MIN.to_be_bytes().to_vec(),
        PgType::Float4 => 1.5f32.to_be_bytes().to_vec(),
        PgType::Float8 => (-2.25e300f64).to_be_bytes().to_vec(),
        PgType::Numeric(None) => num("-12345.678"),
        PgType::Numeric(Some((p, _))) if *p <= 38 => num("12.34"),
        PgType::Numeric(Some(_)) => num("1234567890123456789012345678901234567890.12345"),
        PgType::Text | PgType::AsText => "héllo".as_bytes().to_vec(),
        PgType::Jsonb => [&[1][..], br#"{"a": [1, 2]}"#].concat(),
        PgType::Bytea => vec![0, 255, 10],
        PgType::Date => (-1000i32).to_be_bytes().to_vec(),
        PgType::Time => 45_296_000_001i64.to_be_bytes().to_vec(),
        PgType::TimeTz => [
            &45_296_000_001i64.to_be_bytes()[..],
            &(-3600i32).to_be_bytes(),
        ]
        .concat(),
        PgType::Timestamp | PgType::TimestampTz => 1_000_000i64.to_be_bytes().to_vec(),
        PgType::Interval => [
            &5i64.to_be_bytes()[..],
            &3i32.to_be_bytes(),
            &2i32.to_be_bytes(),
        ]
        .concat(),
        PgType::Uuid => (0..16).collect(),
        PgType::Array(inner, oid) => {
            let e = pg_value(inner);
            array(*oid, &[e.clone(), e])
        }
    }
}

/// One column of each type: a value, a NULL, the value again, the trailer.
fn pg_copy() -> Seeds {
    pg_types()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut seed = vec![0, i as u8, 40];
            let value = pg_value(t);
            for v in [Some(&value), None, Some(&value)] {
                seed.extend_from_slice(&1i16.to_be_bytes());
                match v {
                    Some(v) => {
                        seed.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        seed.extend_from_slice(v);
                    }
                    None => seed.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
            seed.extend_from_slice(&codec::TRAILER);
            seed
        })
        .collect()
}

/// One column of each kind (in `mysql_rows`' order): a value and a NULL.
fn mysql_rows() -> Seeds {
    let values: [&[u8]; 18] = [
        b"-12",
        b"65535",
        b"-2147483648",
        b"18446744073709551615",
        b"1",
        b"\x01",
        b"\x01\x02",
        b"12.34",
        b"1234567890123456789012345678901234.12345",
        b"1.5",
        b"2.25e10",
        "héllo".as_bytes(),
        b"\x00\xff",
        b"2024-02-29",
        b"-838:59:59.000001",
        b"2024-02-29 12:34:56.123456",
        b"0000-00-00 00:00:00",
        b"2024",
    ];
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let row = [&[v.len() as u8][..], v].concat();
            [&[0, i as u8, row.len() as u8][..], &row, &[1, 0xfb]].concat()
        })
        .collect()
}
