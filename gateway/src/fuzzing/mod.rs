//! Entry points for coverage-guided fuzzing (`fuzz/`, run by `cargo fuzz`): each takes bytes
//! as a stranger could send them to one parser of outside input and returns normally on
//! anything that parser may refuse. It panics only on a bug: a panic inside the parser, an
//! error a user's mistake must not get (INTERNAL), or a broken property (a splitter whose
//! records depend on how its input was chunked, a binary COPY value that does not come back
//! as it went in).
//!
//! Built with the `fuzzing` feature (the fuzz crate's) and in this crate's own tests, which
//! run every target over its seeds and over every input a fuzzer once found (`fuzz/seeds`,
//! `fuzz/regressions`), so a fixed crash stays fixed on the stable toolchain.

use std::sync::OnceLock;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;

use crate::error::{Error, ErrorKind};

mod databases;
mod flight;
mod records;

pub use databases::{mysql_rows, pg_copy};
pub use flight::{bucket_query, descriptors, tickets, upload};
pub use records::{files, hints, records_schema, sniff, split};

/// A target: it takes any bytes and panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target by the name `fuzz/fuzz_targets/` gives it.
pub const TARGETS: [(&str, Target); 11] = [
    ("hints", hints),
    ("records_schema", records_schema),
    ("sniff", sniff),
    ("split", split),
    ("files", files),
    ("tickets", tickets),
    ("descriptors", descriptors),
    ("upload", upload),
    ("bucket_query", bucket_query),
    ("pg_copy", pg_copy),
    ("mysql_rows", mysql_rows),
];

/// A user's bad input is refused as their mistake, never as the gateway's fault.
fn not_internal(e: &Error, input: &str) {
    assert!(
        e.kind != ErrorKind::Internal,
        "{input} was refused as INTERNAL: {e}"
    );
}

/// A current-thread runtime, one per fuzzing process.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
        })
        .block_on(f)
}

/// A batch a reader handed out: of the schema it announced, every array sound.
fn valid(batch: &RecordBatch, schema: &Schema) {
    assert_eq!(
        batch.schema().fields().len(),
        schema.fields().len(),
        "a batch of another width than its schema"
    );
    for column in batch.columns() {
        column
            .to_data()
            .validate_full()
            .expect("a reader handed out an array that is not sound");
    }
}

#[cfg(test)]
mod seeds;

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(kind: &str, target: &str) -> Vec<std::path::PathBuf> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz")
            .join(kind)
            .join(target);
        match std::fs::read_dir(&dir) {
            Ok(entries) => entries.map(|e| e.expect("an entry").path()).collect(),
            Err(_) => vec![],
        }
    }

    /// Every target over its seeds and over what a fuzzer once found: none panics.
    #[test]
    fn every_target_takes_its_seeds_and_past_findings() {
        for (target, run) in TARGETS {
            let seeds = inputs("seeds", target);
            assert!(!seeds.is_empty(), "fuzz/seeds/{target} holds no seeds");
            for input in seeds.iter().chain(&inputs("regressions", target)) {
                let bytes = std::fs::read(input).expect("an input");
                if std::panic::catch_unwind(|| run(&bytes)).is_err() {
                    panic!("fuzz target {target} panicked on {}", input.display());
                }
            }
        }
    }

    /// `fuzz/seeds/` is what [`seeds::all`] makes: text targets start from the test suite's
    /// own files, binary ones from messages the gateway's own encoders made, so the fuzzer
    /// starts past the framing. `MOVER_WRITE_SEEDS=1 cargo test -p mover-gateway --lib
    /// seeds_are_current` writes them anew.
    #[test]
    fn seeds_are_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let write = std::env::var_os("MOVER_WRITE_SEEDS").is_some();
        for (target, seeds) in seeds::all(&root) {
            let dir = root.join("fuzz/seeds").join(target);
            if write {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                for (i, seed) in seeds.iter().enumerate() {
                    std::fs::write(dir.join(format!("{i:03}")), seed).unwrap();
                }
            }
            let mut kept = inputs("seeds", target);
            kept.sort();
            let kept: Vec<Vec<u8>> = kept.iter().map(|p| std::fs::read(p).unwrap()).collect();
            assert!(
                kept == seeds,
                "fuzz/seeds/{target} is not what seeds::all makes: run with MOVER_WRITE_SEEDS=1"
            );
        }
    }
}
