//! Access rules: which principal may read, write or query which datasets.
//!
//! A rule's datasets are globs over names (`warehouse/public/*`, `lake/exports/**`), with only
//! `*` (within one part) and `**` (any depth) as wildcards. A name asked for may itself be a
//! pattern (a glob read) or a prefix (`lake/exports/`): it is allowed only if one single rule
//! covers everything it could name. To decide that soundly, each wildcard of the asked
//! pattern becomes a placeholder character that only a rule's own `*`/`**` can match; a prefix
//! must be covered at depth 1 and 2 by the same rule, which only a `**` rule can do.

use std::collections::HashMap;

use globset::{GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Stands for "any characters but /" in an asked pattern.
const ANY: char = '\u{E000}';

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// A certificate's principal (see `server.tls.principal`) or a user's name.
    pub principal: String,
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    /// Databases (names, or globs over them) this principal may send free SQL to.
    #[serde(default)]
    pub query: Vec<String>,
    /// This principal sees and cancels every principal's running moves (`mvrec moves`), not
    /// only its own.
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Read,
    Write,
    Query,
}

impl Right {
    pub fn verb(self) -> &'static str {
        match self {
            Right::Read => "read",
            Right::Write => "write",
            Right::Query => "query",
        }
    }
}

#[derive(Default)]
struct Granted {
    read: Option<GlobSet>,
    write: Option<GlobSet>,
    query: Option<GlobSet>,
    /// The literal text before the first wildcard of each read rule: which prefixes a listing
    /// may show.
    read_roots: Vec<String>,
    admin: bool,
}

/// The rules of one gateway, compiled.
#[derive(Default)]
pub struct Rules {
    by_principal: HashMap<String, Granted>,
}

impl Rules {
    pub fn compile(rules: &[AccessRule]) -> Result<Self> {
        let mut by_principal: HashMap<String, Vec<&AccessRule>> = HashMap::new();
        for r in rules {
            by_principal.entry(r.principal.clone()).or_default().push(r);
        }
        let mut out = HashMap::new();
        for (principal, rules) in by_principal {
            let pick = |f: fn(&AccessRule) -> &Vec<String>| -> Vec<String> {
                rules.iter().flat_map(|r| f(r).iter().cloned()).collect()
            };
            let (read, write, query) = (pick(|r| &r.read), pick(|r| &r.write), pick(|r| &r.query));
            let read_roots = read
                .iter()
                .map(|g| g.split('*').next().unwrap_or("").to_string())
                .collect();
            let granted = Granted {
                read: globs(&principal, &read)?,
                write: globs(&principal, &write)?,
                query: globs(&principal, &query)?,
                read_roots,
                admin: rules.iter().any(|r| r.admin),
            };
            out.insert(principal, granted);
        }
        Ok(Self { by_principal: out })
    }

    /// Does a rule make `principal` an admin (every principal's moves)?
    pub fn is_admin(&self, principal: &str) -> bool {
        self.by_principal.get(principal).is_some_and(|g| g.admin)
    }

    /// May `principal` use `right` on `name` (a dataset, a prefix ending in `/`, or a glob)?
    pub fn allows(&self, principal: &str, right: Right, name: &str) -> bool {
        let Some(granted) = self.by_principal.get(principal) else {
            return false;
        };
        let set = match right {
            Right::Read => &granted.read,
            Right::Write => &granted.write,
            Right::Query => &granted.query,
        };
        let Some(set) = set else { return false };
        let text = placeholders(name);
        match text.strip_suffix('/') {
            // A prefix: one rule must cover names at depth 1 and 2 below it.
            Some(base) => {
                let one = set.matches(format!("{base}/{ANY}"));
                let two = set.matches(format!("{base}/{ANY}/{ANY}"));
                one.iter().any(|i| two.contains(i))
            }
            None => set.is_match(&text),
        }
    }

    /// Does any rule let `principal` write?
    pub fn writes_anything(&self, principal: &str) -> bool {
        self.by_principal
            .get(principal)
            .is_some_and(|g| g.write.is_some())
    }

    /// May a listing show the prefix `name` (ending in `/`) to `principal`: could anything
    /// readable lie below it?
    pub fn may_see_under(&self, principal: &str, name: &str) -> bool {
        self.by_principal.get(principal).is_some_and(|g| {
            g.read_roots
                .iter()
                .any(|root| root.starts_with(name) || name.starts_with(root.as_str()))
        })
    }
}

fn globs(principal: &str, patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        if p.contains(['?', '[', ']', '{', '}', '\\', ANY]) {
            return Err(Error::invalid(format!(
                "access rule for {principal:?}: {p:?}: only * and ** are wildcards in rules"
            )));
        }
        let glob = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::invalid(format!("access rule for {principal:?}: {p:?}: {e}")))?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| Error::invalid(format!("access rules for {principal:?}: {e}")))
}

/// The asked name with each wildcard (`*`, `?`, `[...]`) replaced by one placeholder.
fn placeholders(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' => {
                if !out.ends_with(ANY) {
                    out.push(ANY);
                }
            }
            '[' => {
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                }
                if !out.ends_with(ANY) {
                    out.push(ANY);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(read: &[&str]) -> Rules {
        Rules::compile(&[AccessRule {
            principal: "p".into(),
            read: read.iter().map(|s| s.to_string()).collect(),
            write: vec![],
            query: vec!["demo".into()],
            admin: false,
        }])
        .unwrap()
    }

    #[test]
    fn plain_names_and_part_globs() {
        let r = rules(&["warehouse/public/*", "lake/exports/**"]);
        assert!(r.allows("p", Right::Read, "warehouse/public/orders"));
        assert!(!r.allows("p", Right::Read, "warehouse/private/orders"));
        assert!(!r.allows("p", Right::Read, "warehouse/public/a/b"));
        assert!(r.allows("p", Right::Read, "lake/exports/a/b/c.parquet"));
        assert!(!r.allows("p", Right::Write, "lake/exports/a.csv"));
        assert!(!r.allows("q", Right::Read, "warehouse/public/orders"));
        assert!(r.allows("p", Right::Query, "demo"));
    }

    #[test]
    fn asked_patterns_must_be_covered_whole() {
        let r = rules(&["lake/a/*", "lake/*.csv", "lake/x*/*"]);
        assert!(r.allows("p", Right::Read, "lake/a/*.parquet"));
        assert!(
            !r.allows("p", Right::Read, "lake/*/x.csv"),
            "would reach lake/b"
        );
        assert!(r.allows("p", Right::Read, "lake/[ab].csv"));
        let r = rules(&["lake/*a*"]);
        assert!(
            !r.allows("p", Right::Read, "lake/[ab].csv"),
            "b.csv has no a"
        );
        assert!(!r.allows("p", Right::Read, "lake/?.csv"));
    }

    #[test]
    fn prefixes_need_a_rule_that_covers_every_depth() {
        let r = rules(&["lake/a/*", "lake/a/*/*"]);
        assert!(
            !r.allows("p", Right::Read, "lake/a/"),
            "depth 3 is not covered"
        );
        let r = rules(&["lake/a/**"]);
        assert!(r.allows("p", Right::Read, "lake/a/"));
        assert!(r.allows("p", Right::Read, "lake/a/b/"));
        assert!(!r.allows("p", Right::Read, "lake/"));
    }

    #[test]
    fn listings_show_prefixes_on_the_way_to_readable_data() {
        let r = rules(&["lake/exports/**"]);
        assert!(r.may_see_under("p", "lake/"));
        assert!(r.may_see_under("p", "lake/exports/"));
        assert!(r.may_see_under("p", "lake/exports/x/"));
        assert!(!r.may_see_under("p", "lake/private/"));
    }

    #[test]
    fn an_admin_rule_makes_its_principal_an_admin_and_no_other() {
        let rule = |principal: &str, admin| AccessRule {
            principal: principal.into(),
            read: vec![],
            write: vec![],
            query: vec![],
            admin,
        };
        let r =
            Rules::compile(&[rule("ops", true), rule("ops", false), rule("alice", false)]).unwrap();
        assert!(r.is_admin("ops"));
        assert!(!r.is_admin("alice") && !r.is_admin("nobody"));
    }

    #[test]
    fn rules_with_other_wildcards_are_refused() {
        let e = Rules::compile(&[AccessRule {
            principal: "p".into(),
            read: vec!["lake/?.csv".into()],
            write: vec![],
            query: vec![],
            admin: false,
        }])
        .err()
        .unwrap();
        assert!(e.message.contains("only * and **"), "{e}");
    }
}
