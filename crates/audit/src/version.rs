//! Version ordering per ecosystem: SemVer 2.0 precedence for npm and crates.io (lenient where
//! real records are sloppy: `1.0` → `1.0.0`, a leading `v` or `=` is dropped), PEP 440 for PyPI.

use std::cmp::Ordering;
use std::fmt;

use crate::pep440::{self, Pep440};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Sem(semver::Version),
    Pep(Pep440),
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Sem(v) => v.fmt(f),
            Version::Pep(v) => v.fmt(f),
        }
    }
}

/// Whether an ecosystem orders versions by PEP 440.
pub fn is_python(ecosystem: &str) -> bool {
    ecosystem.eq_ignore_ascii_case("pypi")
}

/// Parses a version as `ecosystem` orders it; `None` for text that is not a version.
pub fn parse_in(ecosystem: &str, s: &str) -> Option<Version> {
    if is_python(ecosystem) {
        pep440::parse(s).map(Version::Pep)
    } else {
        parse_semver(s).map(Version::Sem)
    }
}

/// A SemVer version (npm's reading).
pub fn parse(s: &str) -> Option<Version> {
    parse_semver(s).map(Version::Sem)
}

fn parse_semver(s: &str) -> Option<semver::Version> {
    let t = s.trim().trim_start_matches(['v', '=']).trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(v) = semver::Version::parse(t) {
        return Some(v);
    }
    // Pad a missing minor or patch: "1.0" → "1.0.0", "2" → "2.0.0", keeping any pre-release/build.
    let split = t.find(['-', '+']).unwrap_or(t.len());
    let (core, rest) = t.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut padded = parts.join(".");
    for _ in parts.len()..3 {
        padded.push_str(".0");
    }
    semver::Version::parse(&format!("{padded}{rest}")).ok()
}

/// Orders two versions of one ecosystem (different schemes compare by their text).
pub fn cmp(a: &Version, b: &Version) -> Ordering {
    match (a, b) {
        (Version::Sem(x), Version::Sem(y)) => x.cmp_precedence(y),
        (Version::Pep(x), Version::Pep(y)) => pep440::cmp(x, y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lenient_and_ordered() {
        assert_eq!(parse("1.0").unwrap().to_string(), "1.0.0");
        assert_eq!(parse("v2.3.4").unwrap().to_string(), "2.3.4");
        assert!(matches!(parse("3.0.0-beta.1").unwrap(), Version::Sem(v) if v.pre.as_str() == "beta.1"));
        assert!(parse("7.2.4, 6.11.4").is_none());
        assert!(parse("").is_none());
        assert!(parse("latest").is_none());
        assert_eq!(cmp(&parse("1.0.0-rc.1").unwrap(), &parse("1.0.0").unwrap()), Ordering::Less);
        assert_eq!(cmp(&parse("1.0.0+build").unwrap(), &parse("1.0.0").unwrap()), Ordering::Equal);
        let py = |s| parse_in("PyPI", s).unwrap();
        assert_eq!(cmp(&py("2.0rc1"), &py("2.0")), Ordering::Less);
        assert_eq!(cmp(&py("1.10"), &py("1.9.9")), Ordering::Greater);
    }
}
