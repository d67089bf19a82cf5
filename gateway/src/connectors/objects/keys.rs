//! Object keys from dataset paths, confined to their bucket.
//!
//! A key is made of the path's parts; a part may not be empty, `.` or `..`, and may not hold
//! `\`, `%` or control characters, so no spelling (percent-encoded, backslashed, absolute) can
//! name anything outside the bucket. A last part ending in `/` names a prefix.

use std::fmt;

use object_store::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Key {
    path: Path,
    text: String,
    prefix: bool,
    /// Set when a part holds `*`, `?` or `[`: the key names the files the pattern matches.
    glob: Option<globset::GlobMatcher>,
    /// The parts before the first pattern part: where to list from.
    literal: Path,
}

impl Key {
    pub fn parse(parts: &[String]) -> Result<Self> {
        if parts.is_empty() {
            return Err(Error::invalid("name a file or prefix inside the bucket"));
        }
        let mut prefix = false;
        let mut clean = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let part = match part.strip_suffix('/') {
                Some(p) if last => {
                    prefix = true;
                    p
                }
                _ => part.as_str(),
            };
            check_part(part)?;
            clean.push(part);
        }
        let text = clean.join("/");
        let parse =
            |t: &str| Path::parse(t).map_err(|e| Error::invalid(format!("bad key {t:?}: {e}")));
        let path = parse(&text)?;
        let (glob, literal) = match clean.iter().position(|p| p.contains(['*', '?', '['])) {
            None => (None, path.clone()),
            Some(first) => {
                let matcher = globset::GlobBuilder::new(&text)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| Error::invalid(format!("bad pattern {text:?}: {e}")))?
                    .compile_matcher();
                (Some(matcher), parse(&clean[..first].join("/"))?)
            }
        };
        if glob.is_some() && prefix {
            return Err(Error::invalid(format!(
                "{text}/: a pattern names files; drop the trailing '/'"
            )));
        }
        Ok(Self {
            path,
            text,
            prefix,
            glob,
            literal,
        })
    }

    /// The pattern, when the key is one.
    pub fn glob(&self) -> Option<&globset::GlobMatcher> {
        self.glob.as_ref()
    }

    /// Where listing starts: the key itself, or the literal parts before a pattern.
    pub fn literal(&self) -> &Path {
        &self.literal
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// Whether `location` is one of the data files this key names.
    pub fn covers(&self, location: &Path) -> bool {
        let named = match (&self.glob, self.prefix) {
            (Some(glob), _) => glob.is_match(location.as_ref()),
            (None, true) => location.prefix_matches(&self.path) && *location != self.path,
            (None, false) => *location == self.path,
        };
        named && is_data_file(location)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.text, if self.prefix { "/" } else { "" })
    }
}

fn check_part(part: &str) -> Result<()> {
    let bad = part.is_empty()
        || part == "."
        || part == ".."
        || part.contains(['/', '\\', '%'])
        || part.chars().any(char::is_control);
    if bad {
        Err(Error::invalid(format!(
            "key part {part:?} is not allowed: parts may not be empty, '.' or '..', nor hold '/', '\\', '%' or control characters"
        )))
    } else {
        Ok(())
    }
}

/// Files a dataset listing shows: not hidden (`.x`, `_x`), not a local upload in progress
/// (object_store stages those as `name#n`).
pub fn is_data_file(path: &Path) -> bool {
    path.parts().all(|p| {
        let p = p.as_ref();
        !p.starts_with('.') && !p.starts_with('_') && !p.contains('#')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parts: &[&str]) -> Result<Key> {
        Key::parse(&parts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn files_and_prefixes() {
        let k = key(&["out", "orders.parquet"]).unwrap();
        assert_eq!(k.as_str(), "out/orders.parquet");
        assert!(!k.is_prefix());
        let p = key(&["exports", "orders/"]).unwrap();
        assert!(p.is_prefix());
        assert_eq!(p.to_string(), "exports/orders/");
    }

    #[test]
    fn globs_match_within_parts() {
        let k = key(&["exports", "2026-*", "part-*.parquet"]).unwrap();
        let g = k.glob().unwrap();
        assert_eq!(k.literal().as_ref(), "exports");
        assert!(g.is_match("exports/2026-01/part-0.parquet"));
        assert!(!g.is_match("exports/2026-01/x/part-0.parquet"));
        assert!(!g.is_match("exports/2025-01/part-0.parquet"));
        assert!(key(&["a", "b.csv"]).unwrap().glob().is_none());
        assert!(key(&["a", "*/"]).is_err());
    }

    #[test]
    fn a_key_covers_its_own_files_only() {
        let p = |s: &str| Path::parse(s).unwrap();
        let prefix = key(&["exports", "orders/"]).unwrap();
        assert!(prefix.covers(&p("exports/orders/part-1.csv")));
        assert!(!prefix.covers(&p("exports/orders2/part-1.csv")));
        assert!(!prefix.covers(&p("exports/secret.csv")));
        assert!(!prefix.covers(&p("exports/orders/_staging.csv")));
        let glob = key(&["2026-*", "part-*.parquet"]).unwrap();
        assert!(glob.covers(&p("2026-01/part-1.parquet")));
        assert!(!glob.covers(&p("2025-01/part-1.parquet")));
        let file = key(&["a.csv"]).unwrap();
        assert!(file.covers(&p("a.csv")) && !file.covers(&p("b.csv")));
    }

    #[test]
    fn escapes_are_refused() {
        for bad in [
            &["..", "etc", "passwd"][..],
            &["a", "..", "b"],
            &["a\\..\\b"],
            &["%2e%2e", "x"],
            &["", "x"],
            &["."],
            &["a/b"],
            &["a\u{0}b"],
        ] {
            assert!(key(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn hidden_and_staging_files_are_not_data() {
        assert!(is_data_file(&Path::from("a/b.csv")));
        assert!(!is_data_file(&Path::from("a/_manifest")));
        assert!(!is_data_file(&Path::from(".hidden/b.csv")));
        assert!(!is_data_file(&Path::parse("a/b.csv#1").unwrap()));
    }
}
