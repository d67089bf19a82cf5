//! Postgres binary COPY to Arrow and back, written here: the format is small and stable, and a
//! decoder that works on any chunking of the byte stream (sqlx hands out one chunk per row) and
//! builds Arrow arrays directly was simpler than adapting a crate to our Arrow version.
//!
//! Format: an 11-byte signature, flags and an extension area; then tuples: a field count
//! (i16, -1 ends the data) and per field a length (i32, -1 is NULL) and the value's binary
//! form. All integers are big-endian.

//!
//! [`decode`] reads the COPY stream into batches; [`encode`] writes batches as tuples. This
//! file holds what both share: the signature, the epochs, and the numeric and time-with-zone
//! forms.

mod decode;
mod encode;

pub use decode::Decoder;
pub use encode::{TRAILER, encode, header};

use std::fmt::Write as _;

pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Days and microseconds from 1970-01-01 to Postgres's epoch, 2000-01-01.
const EPOCH_DAYS: i32 = 10_957;
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The first `N` bytes of a value that must have exactly `N`.
pub(super) fn be<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

pub(super) fn format_timetz(micros: i64, offset_secs: i32) -> String {
    let (h, m, s, us) = (
        micros / 3_600_000_000,
        micros / 60_000_000 % 60,
        micros / 1_000_000 % 60,
        micros % 1_000_000,
    );
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let off = offset_secs.abs();
    let mut out = format!("{h:02}:{m:02}:{s:02}");
    if us != 0 {
        let _ = write!(out, ".{us:06}");
    }
    let _ = write!(out, "{sign}{:02}:{:02}", off / 3600, off / 60 % 60);
    // An offset of seconds too (Postgres keeps them; found by fuzzing, where "-00:00:30"
    // was written "-00:00" and read back as UTC).
    if off % 60 != 0 {
        let _ = write!(out, ":{:02}", off % 60);
    }
    out
}

/// numeric's binary form as an integer scaled by 10^`scale`, without going through text; None
/// for NaN/±Infinity, for digits beyond `scale`, or when it does not fit an i128 (callers then
/// take the text path, which reports the exact problem).
pub(super) fn numeric_to_i128(v: &[u8], scale: i8) -> Option<i128> {
    let word = |i: usize| -> Option<i16> {
        Some(i16::from_be_bytes(
            v.get(i * 2..i * 2 + 2)?.try_into().ok()?,
        ))
    };
    let (ndigits, weight, sign) = (word(0)? as usize, word(1)? as i32, word(2)? as u16);
    if sign != 0x0000 && sign != 0x4000 {
        return None;
    }
    let mut acc: i128 = 0;
    for i in 0..ndigits {
        let digit = word(4 + i).filter(|d| (0..10_000).contains(d))?;
        acc = acc.checked_mul(10_000)?.checked_add(digit as i128)?;
    }
    // acc = value × 10000^(ndigits - 1 - weight); we want value × 10^scale.
    let exp = scale as i32 - 4 * (ndigits as i32 - 1 - weight);
    let scaled = if exp >= 0 {
        acc.checked_mul(10i128.checked_pow(exp as u32)?)?
    } else {
        let div = 10i128.checked_pow((-exp) as u32)?;
        if acc % div != 0 {
            return None;
        }
        acc / div
    };
    Some(if sign == 0x4000 { -scaled } else { scaled })
}

/// An integer scaled by 10^`scale` as numeric's binary form (dscale = `scale`); false (and
/// nothing written) when aligning it overflows, for the caller to take the text path.
pub(super) fn numeric_from_i128(value: i128, scale: i8, out: &mut Vec<u8>) -> bool {
    let scale = scale.max(0) as u32;
    // Align the fraction to whole base-10000 groups.
    let pad = (4 - scale % 4) % 4;
    let frac_groups = (scale + pad) / 4;
    let Some(mut mag) = value.unsigned_abs().checked_mul(10u128.pow(pad)) else {
        return false;
    };
    let mut groups: Vec<i16> = Vec::with_capacity(10);
    while mag > 0 {
        groups.push((mag % 10_000) as i16);
        mag /= 10_000;
    }
    // Least significant first: drop trailing zero groups (they are implied), keep the weight.
    let total = groups.len() as i32;
    let mut skip = 0;
    while skip < groups.len() && groups[skip] == 0 {
        skip += 1;
    }
    let weight = if groups.is_empty() {
        0
    } else {
        total - 1 - frac_groups as i32
    };
    let digits: Vec<i16> = groups[skip..].iter().rev().copied().collect();
    let sign: u16 = if value < 0 { 0x4000 } else { 0 };
    write_numeric(out, &digits, weight, sign, scale as i16);
    true
}

/// The largest display scale Postgres gives a numeric (`NUMERIC_DSCALE_MAX`).
const NUMERIC_DSCALE_MAX: usize = 0x3FFF;

/// numeric's binary form (base-10000 digits) as exact decimal text, NaN and ±Infinity included.
pub fn numeric_to_string(v: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<i16, String> {
        Ok(i16::from_be_bytes(be(v
            .get(i * 2..i * 2 + 2)
            .ok_or("a short numeric")?)?))
    };
    let (ndigits, weight, sign, dscale) = (
        word(0)? as u16 as usize,
        word(1)? as i32,
        word(2)? as u16,
        word(3)? as u16 as usize,
    );
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0 | 0x4000 => {}
        _ => return Err(format!("a numeric with the unknown sign {sign:#06x}")),
    }
    // Postgres's own limits: a display scale of at most 16383 digits, and no more base-10000
    // digits than the value has bytes for. Past them a forged value would make text of any
    // length (a negative scale read as 2^64 digits).
    if dscale > NUMERIC_DSCALE_MAX {
        return Err(format!(
            "a numeric with a display scale of {dscale} (Postgres allows {NUMERIC_DSCALE_MAX})"
        ));
    }
    if v.len() != 8 + 2 * ndigits {
        return Err(format!(
            "a numeric of {ndigits} digits in {} bytes",
            v.len()
        ));
    }
    let digit = |d: i32| -> Result<i16, String> {
        if d < 0 || d as usize >= ndigits {
            return Ok(0);
        }
        match word(4 + d as usize)? {
            x @ 0..=9999 => Ok(x),
            x => Err(format!("a numeric with the base-10000 digit {x}")),
        }
    };
    // Canonical text whatever the form (Postgres sends its values normalised; a value with
    // leading zero digits or a negative zero, found by fuzzing, would read as "-00000.0"):
    // no leading zeros, and no sign on zero.
    let mut s = String::new();
    for d in 0..=weight {
        let _ = write!(s, "{:04}", digit(d)?);
    }
    let whole = s.trim_start_matches('0');
    let mut s = if whole.is_empty() {
        "0".to_string()
    } else {
        whole.to_string()
    };
    if dscale > 0 {
        let mut frac = String::new();
        let mut d = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(d)?);
            d += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    if sign == 0x4000 && s.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        s.insert(0, '-');
    }
    Ok(s)
}

/// Exact decimal text (or NaN, ±Infinity) as numeric's binary form.
pub fn numeric_from_str(text: &str) -> Result<Vec<u8>, String> {
    let special = |sign: u16| {
        [0i16, 0, sign as i16, 0]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect()
    };
    match text {
        "NaN" => return Ok(special(0xC000)),
        "Infinity" | "inf" => return Ok(special(0xD000)),
        "-Infinity" | "-inf" => return Ok(special(0xF000)),
        _ => {}
    }
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|c| c.is_ascii_digit())
        || !frac.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(format!("{text:?} is not a number"));
    }
    let int = int.trim_start_matches('0');
    let dscale = frac.len();
    // Align to groups of four digits around the decimal point.
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let digits: String = "0".repeat(int_pad) + int + frac + &"0".repeat(frac_pad);
    let mut groups: Vec<i16> = digits
        .as_bytes()
        .chunks(4)
        .map(|c| {
            std::str::from_utf8(c)
                .expect("ascii")
                .parse()
                .expect("digits")
        })
        .collect();
    let mut weight = ((int.len() + int_pad) / 4) as i32 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if neg && !groups.is_empty() { 0x4000 } else { 0 };
    let mut out = Vec::with_capacity(8 + groups.len() * 2);
    write_numeric(&mut out, &groups, weight, sign, dscale as i16);
    Ok(out)
}

/// numeric's binary form: digit count, weight, sign, display scale, then base-10000 digits.
pub(super) fn write_numeric(
    out: &mut Vec<u8>,
    digits: &[i16],
    weight: i32,
    sign: u16,
    dscale: i16,
) {
    for w in [digits.len() as i16, weight as i16, sign as i16, dscale] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// `HH:MM:SS[.ffffff]±HH[:MM]` to microseconds and the offset east of UTC in seconds.
pub(super) fn parse_timetz(text: &str) -> Result<(i64, i32), String> {
    let bad = || format!("{text:?} is not a time with zone (HH:MM:SS+HH:MM)");
    let split = text.rfind(['+', '-']).ok_or_else(bad)?;
    let (time, zone) = text.split_at(split);
    let t = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S%.f").map_err(|_| bad())?;
    use chrono::Timelike;
    let micros = t.num_seconds_from_midnight() as i64 * 1_000_000 + (t.nanosecond() / 1000) as i64;
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let mut parts = zone[1..].split(':');
    let h: i32 = parts.next().and_then(|h| h.parse().ok()).ok_or_else(bad)?;
    let mut next = || {
        parts
            .next()
            .map(|n| n.parse::<i32>().map_err(|_| bad()))
            .transpose()
    };
    let (m, sec) = (next()?.unwrap_or(0), next()?.unwrap_or(0));
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((micros, sign * (h * 3600 + m * 60 + sec)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::compute::kernels::cast_utils::parse_decimal;
    use arrow::datatypes::Decimal128Type;

    #[test]
    fn numeric_text_round_trips() {
        for s in [
            "0",
            "1",
            "-1",
            "10000",
            "12345.678",
            "-0.0001",
            "0.5",
            "100000000.00000001",
            "99999999999999999999999999999999999999",
            "NaN",
            "Infinity",
            "-Infinity",
            "123.4500",
        ] {
            let bin = numeric_from_str(s).unwrap();
            assert_eq!(numeric_to_string(&bin).unwrap(), s, "{s}");
        }
        let big = format!("{}.{}", "9".repeat(1000), "1".repeat(50));
        assert_eq!(
            numeric_to_string(&numeric_from_str(&big).unwrap()).unwrap(),
            big
        );
        assert!(numeric_from_str("12a").is_err());
    }

    /// Found by fuzzing (fuzz/regressions/pg_copy): a display scale of -1 read as 2^64 digits
    /// ran until memory ran out; digits out of base 10000 came out as text like "1-001".
    #[test]
    fn a_forged_numeric_is_refused_not_spelled_out() {
        let words = |w: &[i16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
        let e = numeric_to_string(&words(&[1, 0, 0, -1, 5])).unwrap_err();
        assert!(e.contains("display scale of 65535"), "{e}");
        let e = numeric_to_string(&words(&[2, 1, 0, 0, 1, -1])).unwrap_err();
        assert!(e.contains("digit -1"), "{e}");
        assert_eq!(numeric_to_i128(&words(&[2, 1, 0, 0, 1, 10_000]), 0), None);
        let e = numeric_to_string(&words(&[3, 0, 0, 0, 1])).unwrap_err();
        assert!(e.contains("3 digits in 10 bytes"), "{e}");
        // Not normalised: a leading zero digit, a negative zero.
        assert_eq!(
            numeric_to_string(&words(&[2, 1, 0, 0, 0, 12])).unwrap(),
            "12"
        );
        assert_eq!(
            numeric_to_string(&words(&[1, 1, 0x4000, 2, 0])).unwrap(),
            "0.00"
        );
        let e = numeric_to_string(&words(&[0, 0, 0x1000, 0])).unwrap_err();
        assert!(e.contains("unknown sign"), "{e}");
    }

    #[test]
    fn numeric_integers_agree_with_the_text_path() {
        let cases: &[(&str, i8)] = &[
            ("0", 2),
            ("1.5", 2),
            ("-1.5", 2),
            ("24710.35", 2),
            ("0.04", 2),
            ("12345678.9012", 4),
            ("10000", 0),
            ("-99999.99999", 5),
            ("0.0000000001", 10),
            ("9999999999", 0),
            ("123456789012345678901234567.89", 2),
            ("-0.5", 1),
            ("100000000", 3),
            ("7", 9),
        ];
        for (text, scale) in cases {
            let bin = numeric_from_str(text).unwrap();
            let want = parse_decimal::<Decimal128Type>(text, 38, *scale).unwrap();
            assert_eq!(
                numeric_to_i128(&bin, *scale),
                Some(want),
                "{text} as scale {scale}"
            );
            let mut out = Vec::new();
            assert!(numeric_from_i128(want, *scale, &mut out));
            let back = numeric_to_string(&out).unwrap();
            let again = parse_decimal::<Decimal128Type>(&back, 38, *scale).unwrap();
            assert_eq!(again, want, "{text}: {back}");
            assert_eq!(numeric_to_i128(&out, *scale), Some(want), "{text}");
        }
        // 38 nines with scale 10 overflow the alignment: the text path takes them.
        let mut out = Vec::new();
        assert!(!numeric_from_i128(10i128.pow(38) - 1, 10, &mut out));
        assert!(out.is_empty());
        // Digits beyond the scale, NaN: the text path decides.
        assert_eq!(
            numeric_to_i128(&numeric_from_str("1.234").unwrap(), 2),
            None
        );
        assert_eq!(numeric_to_i128(&numeric_from_str("NaN").unwrap(), 2), None);
    }

    #[test]
    fn timetz_text_round_trips() {
        let (us, off) = parse_timetz("13:45:01.250000+05:30").unwrap();
        assert_eq!(format_timetz(us, off), "13:45:01.250000+05:30");
        let (us, off) = parse_timetz("00:00:00-08:00").unwrap();
        assert_eq!(format_timetz(us, off), "00:00:00-08:00");
        // An offset with seconds (found by fuzzing: it lost them).
        assert_eq!(format_timetz(1, -30), "00:00:00.000001-00:00:30");
        assert_eq!(parse_timetz("00:00:00.000001-00:00:30").unwrap(), (1, -30));
        assert!(parse_timetz("00:00:00+01:02:03:04").is_err());
    }
}
