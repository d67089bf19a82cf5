//! A bound on the lines of a text file, checked on its bytes before any reader sees them: a
//! file of one endless line (or a compressed file that expands into one) is refused once a
//! line passes the bound, by its number, instead of being buffered whole by the CSV, records
//! or JSON lines reader. A record may span lines (a quoted newline): the same [`Bound`] is
//! checked by the delimited readers on the record as it grows.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::{Error, Result};

/// The most bytes one line, or one record, may hold, and the setting that says so.
#[derive(Debug, Clone)]
pub struct Bound {
    pub max: usize,
    pub setting: String,
}

impl Bound {
    /// No bound (for input the gateway made itself).
    pub fn none() -> Self {
        Self {
            max: usize::MAX,
            setting: String::new(),
        }
    }

    /// The error for a record that began on `line` and grew past the bound.
    pub fn record_too_long(&self, line: u64) -> Error {
        Error::invalid(format!(
            "line {line}: a record (its quoted or escaped line ends included) longer than {} MiB ({}); it is refused before it is held",
            self.max / (1024 * 1024),
            self.setting
        ))
    }
}

/// `input` as it is, failing at the first line longer than the bound.
pub fn bounded(
    input: BoxStream<'static, Result<Bytes>>,
    bound: Bound,
) -> BoxStream<'static, Result<Bytes>> {
    let Bound { max, setting } = bound;
    let mut counter = Lines::default();
    let mut failed = false;
    input
        .map(move |chunk| {
            let chunk = chunk?;
            counter.check(&chunk, max).map_err(|line| {
                Error::invalid(format!(
                    "line {line} is longer than {} MiB ({setting}); it is refused before it is held",
                    max / (1024 * 1024)
                ))
            })?;
            Ok(chunk)
        })
        .take_while(move |r| {
            let go = !failed;
            failed |= r.is_err();
            futures::future::ready(go)
        })
        .boxed()
}

/// Where the input is: the number of the line it is in, and that line's bytes so far.
#[derive(Default)]
struct Lines {
    ended: u64,
    open: usize,
}

impl Lines {
    /// Take in `chunk`; the number of the first line longer than `max`, if it made one.
    fn check(&mut self, chunk: &[u8], max: usize) -> std::result::Result<(), u64> {
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', chunk) {
            if self.open + (newline - start) > max {
                return Err(self.ended + 1);
            }
            self.ended += 1;
            self.open = 0;
            start = newline + 1;
        }
        self.open += chunk.len() - start;
        if self.open > max {
            return Err(self.ended + 1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(max: usize, setting: &str) -> Bound {
        Bound {
            max,
            setting: setting.into(),
        }
    }
    use futures::TryStreamExt;

    fn chunks(parts: &[&str]) -> BoxStream<'static, Result<Bytes>> {
        let parts: Vec<Result<Bytes>> = parts
            .iter()
            .map(|p| Ok(Bytes::from(p.to_string())))
            .collect();
        futures::stream::iter(parts).boxed()
    }

    #[tokio::test]
    async fn a_line_over_the_bound_is_refused_by_number_wherever_the_chunks_cut() {
        // Lines of up to 4 bytes pass, however chunked.
        let ok: Vec<Bytes> = bounded(chunks(&["ab\nabcd", "\nx", "y\n", "abcd"]), bound(4, "m"))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(ok.concat(), b"ab\nabcd\nxy\nabcd");
        // Line 3 reaches 5 bytes across two chunks; line 2 within one chunk.
        for (parts, line) in [
            (&["a\nb\nabc", "de\n"][..], 3),
            (&["a\nabcde\n"][..], 2),
            (&["abcdef"][..], 1),
        ] {
            let err = bounded(chunks(parts), bound(4, "buckets.files.max_line_mb"))
                .try_collect::<Vec<_>>()
                .await
                .unwrap_err();
            assert!(
                err.message.contains(&format!("line {line} is longer than"))
                    && err.message.contains("buckets.files.max_line_mb"),
                "{parts:?}: {}",
                err.message
            );
        }
        // Nothing is handed on after the error.
        let after: Vec<_> = bounded(chunks(&["abcdef", "ok\n"]), bound(4, "m"))
            .collect()
            .await;
        assert_eq!(after.len(), 1);
    }
}
