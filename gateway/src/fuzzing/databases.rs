//! Targets for what a database server sends: Postgres's binary COPY, MySQL's text rows.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema};

use super::valid;
use crate::connectors::mysql::decode::{Batcher, ZeroDates};
use crate::connectors::mysql::types::Kind;
use crate::connectors::postgres::codec;
use crate::connectors::postgres::types::PgType;

/// The types a fuzzed COPY stream's columns are read as.
pub(super) fn pg_types() -> Vec<PgType> {
    use PgType::*;
    vec![
        Bool,
        Int2,
        Int4,
        Int8,
        Float4,
        Float8,
        Numeric(None),
        Numeric(Some((10, 2))),
        Numeric(Some((50, 5))),
        Text,
        Jsonb,
        Bytea,
        Date,
        Time,
        TimeTz,
        Timestamp,
        TimestampTz,
        Interval,
        Uuid,
        Array(Box::new(Int4), 23),
        Array(Box::new(Text), 25),
        Array(Box::new(Numeric(Some((5, 2)))), 1700),
        AsText,
    ]
}

/// Binary COPY data as a Postgres server sends it, in columns and chunks the first bytes
/// choose; the rows that decode, encoded again, must decode to the same batch.
pub fn pg_copy(data: &[u8]) {
    let [n, rest @ ..] = data else {
        return;
    };
    let n = 1 + usize::from(n % 4);
    if rest.len() < n + 1 {
        return;
    }
    let all = pg_types();
    let types: Vec<PgType> = rest[..n]
        .iter()
        .map(|b| all[usize::from(*b) % all.len()].clone())
        .collect();
    let chunk = 1 + usize::from(rest[n]);
    let mut stream = codec::header();
    stream.extend_from_slice(&rest[n + 1..]);
    let Some(batches) = pg_decode(&types, &stream, chunk) else {
        return;
    };
    let mut again = codec::header();
    for batch in &batches {
        if codec::encode(&types, batch.columns(), &mut again).is_err() {
            return; // a value the encoder refuses (text that is no number, say), by row
        }
    }
    again.extend_from_slice(&codec::TRAILER);
    let back = pg_decode(&types, &again, 1 << 16).expect("COPY data written here reads back");
    let rows = |b: &[RecordBatch]| arrow::compute::concat_batches(&pg_schema(&types), b).unwrap();
    let (went, came) = (rows(&batches), rows(&back));
    for (c, (sent, read)) in went.columns().iter().zip(came.columns()).enumerate() {
        for row in 0..sent.len() {
            let (a, b) = (sent.slice(row, 1), read.slice(row, 1));
            assert!(
                a.as_ref() == b.as_ref(),
                "{:?}, row {row}: {a:?} came back as {b:?}",
                types[c]
            );
        }
    }
}

fn pg_schema(types: &[PgType]) -> Arc<Schema> {
    let fields: Vec<Field> = types
        .iter()
        .enumerate()
        .map(|(i, t)| Field::new(format!("c{i}"), t.arrow(), true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// The batches of a whole COPY stream fed `chunk` bytes at a time, or None if it is refused.
fn pg_decode(types: &[PgType], stream: &[u8], chunk: usize) -> Option<Vec<RecordBatch>> {
    let schema = pg_schema(types);
    let mut decoder = codec::Decoder::new(schema.clone(), types.to_vec(), 4096);
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        while let Some(batch) = decoder.next_batch(3).ok()? {
            valid(&batch, &schema);
            out.push(batch);
        }
    }
    if let Some(batch) = decoder.finish().ok()? {
        valid(&batch, &schema);
        out.push(batch);
    }
    Some(out)
}

/// Text protocol rows as a MySQL or MariaDB server sends them, each behind a one-byte length,
/// in columns of the kinds the first bytes choose.
pub fn mysql_rows(data: &[u8]) {
    use Kind::*;
    let kinds = [
        Int {
            bits: 8,
            unsigned: false,
        },
        Int {
            bits: 16,
            unsigned: true,
        },
        Int {
            bits: 32,
            unsigned: false,
        },
        Int {
            bits: 64,
            unsigned: true,
        },
        TinyBool,
        BitBool,
        Bits,
        Decimal {
            precision: 10,
            scale: 2,
        },
        Decimal {
            precision: 40,
            scale: 5,
        },
        Float,
        Double,
        Text,
        Binary,
        Date,
        Time,
        DateTime,
        Timestamp,
        Year,
    ];
    let [n, rest @ ..] = data else {
        return;
    };
    let n = 1 + usize::from(n % 4);
    if rest.len() < n {
        return;
    }
    let chosen: Vec<Kind> = rest[..n]
        .iter()
        .map(|b| kinds[usize::from(*b) % kinds.len()])
        .collect();
    let fields: Vec<Field> = chosen
        .iter()
        .enumerate()
        .map(|(i, k)| Field::new(format!("c{i}"), k.arrow(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let zero_dates = if data[0] & 0x80 != 0 {
        ZeroDates::Null
    } else {
        ZeroDates::Error
    };
    let mut batcher = Batcher::new(schema.clone(), chosen, "fuzz".into(), zero_dates);
    let mut rows = &rest[n..];
    while let [len, tail @ ..] = rows {
        let len = usize::from(*len).min(tail.len());
        let (row, next) = tail.split_at(len);
        rows = next;
        if batcher.push(row).is_err() {
            return;
        }
        if batcher.len() == 3 {
            let Ok(batch) = batcher.finish() else { return };
            valid(&batch, &schema);
        }
    }
    if let Ok(batch) = batcher.finish() {
        valid(&batch, &schema);
    }
}
