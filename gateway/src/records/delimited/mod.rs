//! Delimited text as Records Mover's hints describe it, read and written exactly:
//!
//! - [`hints`]: the 13 hints and the five variants, `_format_delimited` both ways.
//! - [`split`]: a streaming splitter for any delimiter, terminator, quote and escape character
//!   (escapes outside quotes included, which csv-core lacks).
//! - [`encoding`]: UTF-8, UTF-16 in both orders with and without marks, LATIN1, CP1252,
//!   decoded and encoded as streams.
//! - [`typed`]: split records to typed Arrow batches by the hints' formats; errors by file,
//!   line and column.
//! - [`hinted`]: Arrow batches to delimited text; what the hints, the encoding or a format
//!   cannot hold is refused by row and column.
//! - [`datetime`]: the allow-listed date and time formats, each a reader and an exact writer.
//! - [`sniff`]: the hints a file's first bytes suggest.

pub mod datetime;
pub mod encoding;
pub mod hinted;
pub mod hints;
pub mod sniff;
pub mod split;
pub mod typed;
