//! A bound on the lines of a text file, checked on its bytes before any reader sees them: a
//! file of one endless line (or a compressed file that expands into one) is refused once a
//! line passes the bound, by its number, instead of being buffered whole by the CSV, records
//! or JSON lines reader. A record may span lines (a quoted newline); each line is bounded.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::{Error, Result};

/// `input` as it is, failing at the first line longer than `max` bytes; `setting` names the
/// option that sets `max`, for the error.
pub fn bounded(
    input: BoxStream<'static, Result<Bytes>>,
    max: usize,
    setting: String,
) -> BoxStream<'static, Result<Bytes>> {
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
        let ok: Vec<Bytes> = bounded(chunks(&["ab\nabcd", "\nx", "y\n", "abcd"]), 4, "m".into())
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
            let err = bounded(chunks(parts), 4, "buckets.files.max_line_mb".into())
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
        let after: Vec<_> = bounded(chunks(&["abcdef", "ok\n"]), 4, "m".into())
            .collect()
            .await;
        assert_eq!(after.len(), 1);
    }
}
