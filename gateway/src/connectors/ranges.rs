//! Tables read in parts by ranges of an integer key (SQLite's rowid, a MySQL table's integer
//! primary key): the key's span cut into equal widths, the last range open so rows added
//! since are read too. Each part is its own read, not one snapshot with the others.

use mover_proto::Part;

/// A part is worth its own stream from about this many rows.
pub const MIN_PART_ROWS: u64 = 16_384;

/// The parts of a table whose `key` spans `[low, high]` over about `rows` rows, at most `max`.
pub fn key_ranges(key: &str, low: i64, high: i64, rows: u64, max: usize) -> Vec<Option<Part>> {
    let span = (i128::from(high) - i128::from(low) + 1).max(1);
    let parts = (rows / MIN_PART_ROWS)
        .min(max as u64)
        .min(u64::try_from(span).unwrap_or(u64::MAX));
    if parts <= 1 {
        return vec![None];
    }
    let step = span / i128::from(parts);
    (0..parts)
        .map(|i| {
            let bound = |i: u64| i64::try_from(i128::from(low) + step * i128::from(i)).ok();
            Some(Part {
                key: key.to_string(),
                first_key: if i == 0 { None } else { bound(i) },
                end_key: if i + 1 == parts { None } else { bound(i + 1) },
                ..Default::default()
            })
        })
        .collect()
}

/// The WHERE clause of `part`'s range on the key as `quoted` (empty without a range). The
/// bounds are numbers formatted here, never text from outside.
pub fn filter(part: Option<&Part>, quoted: &str) -> String {
    let Some(part) = part else {
        return String::new();
    };
    let mut terms = Vec::new();
    if let Some(low) = part.first_key {
        terms.push(format!("{quoted} >= {low}"));
    }
    if let Some(end) = part.end_key {
        terms.push(format!("{quoted} < {end}"));
    }
    match terms.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", terms.join(" AND ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(parts: &[Option<Part>], low: i64, high: i64) {
        // Consecutive, open at both ends, every key in exactly one range.
        let first = parts[0].as_ref().unwrap();
        assert_eq!(first.first_key, None);
        assert_eq!(parts.last().unwrap().as_ref().unwrap().end_key, None);
        for pair in parts.windows(2) {
            let (a, b) = (pair[0].as_ref().unwrap(), pair[1].as_ref().unwrap());
            assert_eq!(a.end_key, b.first_key);
            assert!(a.end_key.unwrap() > low && a.end_key.unwrap() <= high);
        }
    }

    #[test]
    fn ranges_cut_the_span_and_stay_open_at_the_ends() {
        let parts = key_ranges("rowid", 1, 1_000_000, 1_000_000, 8);
        assert_eq!(parts.len(), 8);
        covers(&parts, 1, 1_000_000);
        assert_eq!(filter(parts[0].as_ref(), "k"), " WHERE k < 125001");
        assert_eq!(
            filter(parts[1].as_ref(), "k"),
            " WHERE k >= 125001 AND k < 250001"
        );
        assert_eq!(filter(parts[7].as_ref(), "k"), " WHERE k >= 875001");
        // Small tables, and spans narrower than the parts asked for, are not split.
        assert_eq!(key_ranges("k", 1, 100, 100, 8), vec![None]);
        assert_eq!(key_ranges("k", 5, 6, 10_000_000, 8).len(), 2);
        // The widest span there is.
        let parts = key_ranges("k", i64::MIN, i64::MAX, u64::MAX, 4);
        assert_eq!(parts.len(), 4);
        covers(&parts, i64::MIN, i64::MAX);
        assert_eq!(filter(None, "k"), "");
    }
}
