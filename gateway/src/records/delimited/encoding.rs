//! The text encodings records hints name, both ways, as streams.
//!
//! Reading (by `encoding_rs`, except LATIN1, which is one byte per character):
//! - `UTF8`, `UTF8BOM`: UTF-8; a leading byte-order mark is skipped in either case.
//! - `UTF16`, `UTF16BOM`: the byte-order mark says the byte order; without one, little-endian
//!   (what Python's `utf-16`, and so Records Mover, does on the machines it runs on).
//! - `UTF16LE`, `UTF16BE`: that byte order; a leading mark of that order is skipped.
//! - `LATIN1`: ISO-8859-1, every byte the character of its number (0x80–0x9F are controls).
//! - `CP1252`: Windows-1252 as the WHATWG Encoding Standard defines it: the five bytes
//!   Microsoft leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) read as the controls of their
//!   number, where Python would refuse them.
//!
//! Bytes that are not valid in the declared encoding (or a character cut short at the end) are
//! an error; nothing is replaced.
//!
//! Writing: `UTF8BOM`, `UTF16` and `UTF16BOM` start with a byte-order mark, the UTF-16 ones in
//! little-endian order. A character that LATIN1 or CP1252 cannot hold is refused by the writer
//! before any byte of its row is written ([`TextEncoder::unencodable`]).

use std::sync::LazyLock;

use encoding_rs::{DecoderResult, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

use super::hints::Encoding;

/// Text from byte chunks that may cut a character in two.
pub struct TextDecoder {
    /// None for LATIN1, which needs no state.
    decoder: Option<encoding_rs::Decoder>,
    consumed: u64,
}

/// Bytes the declared encoding does not allow: the text decoded before them, and the offset
/// (from the start of the file's text) of the first bad byte.
#[derive(Debug)]
pub struct Malformed {
    pub decoded: String,
    pub offset: u64,
}

impl TextDecoder {
    pub fn new(encoding: Encoding) -> Self {
        let decoder = match encoding {
            Encoding::Utf8 | Encoding::Utf8Bom => Some(UTF_8.new_decoder_with_bom_removal()),
            // BOM sniffing, little-endian without one.
            Encoding::Utf16 | Encoding::Utf16Bom => Some(UTF_16LE.new_decoder()),
            Encoding::Utf16Le => Some(UTF_16LE.new_decoder_with_bom_removal()),
            Encoding::Utf16Be => Some(UTF_16BE.new_decoder_with_bom_removal()),
            Encoding::Cp1252 => Some(WINDOWS_1252.new_decoder_without_bom_handling()),
            Encoding::Latin1 => None,
        };
        Self {
            decoder,
            consumed: 0,
        }
    }

    /// The text of `chunk`. A character cut at the chunk's end waits for the next chunk;
    /// with `last` (no bytes follow), it is an error.
    pub fn decode(&mut self, chunk: &[u8], last: bool) -> Result<String, Malformed> {
        let Some(decoder) = self.decoder.as_mut() else {
            self.consumed += chunk.len() as u64;
            return Ok(encoding_rs::mem::decode_latin1(chunk).into_owned());
        };
        let mut out = String::new();
        let mut src = chunk;
        loop {
            let room = decoder
                .max_utf8_buffer_length_without_replacement(src.len())
                .unwrap_or(src.len().saturating_mul(3) + 16);
            out.reserve(room);
            let (result, read) = decoder.decode_to_string_without_replacement(src, &mut out, last);
            src = &src[read..];
            self.consumed += read as u64;
            match result {
                DecoderResult::InputEmpty => return Ok(out),
                DecoderResult::OutputFull => continue,
                DecoderResult::Malformed(bad, after) => {
                    return Err(Malformed {
                        decoded: out,
                        offset: self.consumed - u64::from(bad) - u64::from(after),
                    });
                }
            }
        }
    }
}

/// The text of a sample (the first bytes of a file) in `encoding`: a character cut at its end
/// is left out unless the sample is the whole file.
pub fn decode_sample(encoding: Encoding, bytes: &[u8], whole: bool) -> Result<String, Malformed> {
    let mut d = TextDecoder::new(encoding);
    let text = d.decode(bytes, false)?;
    if !whole {
        return Ok(text);
    }
    match d.decode(&[], true) {
        Ok(rest) => Ok(text + &rest),
        Err(bad) => Err(Malformed {
            decoded: text + &bad.decoded,
            offset: bad.offset,
        }),
    }
}

/// Text to the bytes of one encoding, a byte-order mark first where the encoding has one.
pub struct TextEncoder {
    encoding: Encoding,
    bom_pending: bool,
}

/// The characters CP1252 holds at 0x80–0x9F (as encoding_rs reads them).
static CP1252_HIGH: LazyLock<Vec<char>> = LazyLock::new(|| {
    let bytes: Vec<u8> = (0x80..=0x9F).collect();
    WINDOWS_1252
        .decode_without_bom_handling(&bytes)
        .0
        .chars()
        .collect()
});

impl TextEncoder {
    pub fn new(encoding: Encoding) -> Self {
        Self {
            encoding,
            bom_pending: matches!(
                encoding,
                Encoding::Utf8Bom | Encoding::Utf16 | Encoding::Utf16Bom
            ),
        }
    }

    /// The first character of `text` this encoding cannot hold, if any.
    pub fn unencodable(&self, text: &str) -> Option<char> {
        let holds: fn(char) -> bool = match self.encoding {
            Encoding::Latin1 => |c| u32::from(c) <= 0xFF,
            Encoding::Cp1252 => |c| {
                let n = u32::from(c);
                n < 0x80 || (0xA0..=0xFF).contains(&n) || CP1252_HIGH.contains(&c)
            },
            _ => return None,
        };
        if text.is_ascii() {
            return None;
        }
        text.chars().find(|&c| !holds(c))
    }

    /// The bytes of `text`, which [`Self::unencodable`] has passed.
    pub fn encode(&mut self, text: &str) -> Vec<u8> {
        let bom = std::mem::take(&mut self.bom_pending);
        match self.encoding {
            Encoding::Utf8 | Encoding::Utf8Bom => {
                let mut out = Vec::with_capacity(text.len() + 3);
                if bom {
                    out.extend_from_slice(b"\xEF\xBB\xBF");
                }
                out.extend_from_slice(text.as_bytes());
                out
            }
            Encoding::Utf16 | Encoding::Utf16Bom | Encoding::Utf16Le | Encoding::Utf16Be => {
                let big = self.encoding == Encoding::Utf16Be;
                let mut out = Vec::with_capacity(text.len() * 2 + 2);
                let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
                for unit in units {
                    out.extend_from_slice(&if big {
                        unit.to_be_bytes()
                    } else {
                        unit.to_le_bytes()
                    });
                }
                out
            }
            Encoding::Latin1 => text.chars().map(|c| c as u8).collect(),
            Encoding::Cp1252 => WINDOWS_1252.encode(text).0.into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode in chunks of every small size, so characters are cut everywhere.
    fn decode_chunked(encoding: Encoding, bytes: &[u8], size: usize) -> String {
        let mut d = TextDecoder::new(encoding);
        let mut text = String::new();
        for chunk in bytes.chunks(size) {
            text += &d.decode(chunk, false).unwrap();
        }
        text + &d.decode(&[], true).unwrap()
    }

    #[test]
    fn every_encoding_round_trips_in_any_chunking() {
        for encoding in Encoding::ALL {
            let text = match encoding {
                Encoding::Latin1 => "id,name\n1,café naïve ÿ\n",
                Encoding::Cp1252 => "id,name\n1,“quoted” – €5 café\n",
                _ => "id,name\n1,日本語 😀 café\n",
            };
            let e = TextEncoder::new(encoding);
            assert_eq!(e.unencodable(text), None, "{encoding:?}");
            let mut e = e;
            let bytes = [e.encode(&text[..4]), e.encode(&text[4..])].concat();
            for size in 1..6 {
                assert_eq!(
                    decode_chunked(encoding, &bytes, size),
                    text,
                    "{encoding:?} in chunks of {size}"
                );
            }
        }
    }

    #[test]
    fn byte_order_marks_as_python_writes_them() {
        assert_eq!(
            TextEncoder::new(Encoding::Utf16).encode("a"),
            [0xFF, 0xFE, b'a', 0]
        );
        assert_eq!(TextEncoder::new(Encoding::Utf16Be).encode("a"), [0, b'a']);
        assert_eq!(
            TextEncoder::new(Encoding::Utf8Bom).encode("a"),
            b"\xEF\xBB\xBFa"
        );
        // A big-endian file with its mark reads as UTF16.
        assert_eq!(
            decode_chunked(Encoding::Utf16, &[0xFE, 0xFF, 0, b'a'], 1),
            "a"
        );
        // LATIN1 keeps 0x80-0x9F as controls; CP1252 reads them as printable characters.
        assert_eq!(decode_chunked(Encoding::Latin1, b"\x93", 1), "\u{93}");
        assert_eq!(decode_chunked(Encoding::Cp1252, b"\x93", 1), "\u{201c}");
    }

    #[test]
    fn what_an_encoding_cannot_hold_is_told_not_replaced() {
        assert_eq!(
            TextEncoder::new(Encoding::Latin1).unencodable("a€"),
            Some('€')
        );
        assert_eq!(TextEncoder::new(Encoding::Cp1252).unencodable("a€"), None);
        assert_eq!(
            TextEncoder::new(Encoding::Cp1252).unencodable("日"),
            Some('日')
        );
        let bad = TextDecoder::new(Encoding::Utf8)
            .decode(b"ok\n\xff", true)
            .unwrap_err();
        assert_eq!((bad.decoded.as_str(), bad.offset), ("ok\n", 3));
        let cut = TextDecoder::new(Encoding::Utf16Le).decode(b"a\0b", true);
        assert!(cut.is_err());
        // A lone surrogate is not UTF-16.
        let lone =
            TextDecoder::new(Encoding::Utf16Le).decode(&[b'a', 0, 0x00, 0xD8, b'b', 0], true);
        assert_eq!(lone.unwrap_err().offset, 2);
    }
}
