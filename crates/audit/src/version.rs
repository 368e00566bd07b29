//! npm version ordering (SemVer 2.0 precedence), lenient where real records are sloppy:
//! `1.0` → `1.0.0`, a leading `v` or `=` is dropped.

use std::cmp::Ordering;

pub use semver::Version;

/// Parses a version as npm would order it; `None` for text that is not a version.
pub fn parse(s: &str) -> Option<Version> {
    let t = s.trim().trim_start_matches(['v', '=']).trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(v) = Version::parse(t) {
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
    Version::parse(&format!("{padded}{rest}")).ok()
}

pub fn cmp(a: &Version, b: &Version) -> Ordering {
    a.cmp_precedence(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lenient_and_ordered() {
        assert_eq!(parse("1.0").unwrap().to_string(), "1.0.0");
        assert_eq!(parse("v2.3.4").unwrap().to_string(), "2.3.4");
        assert_eq!(parse("3.0.0-beta.1").unwrap().pre.as_str(), "beta.1");
        assert!(parse("7.2.4, 6.11.4").is_none());
        assert!(parse("").is_none());
        assert!(parse("latest").is_none());
        assert_eq!(cmp(&parse("1.0.0-rc.1").unwrap(), &parse("1.0.0").unwrap()), Ordering::Less);
        assert_eq!(cmp(&parse("1.0.0+build").unwrap(), &parse("1.0.0").unwrap()), Ordering::Equal);
    }
}
