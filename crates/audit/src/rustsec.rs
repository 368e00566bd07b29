//! RustSec advisories (`advisory-db`: Markdown with a TOML front matter) turned into OSV records,
//! so the index and the matcher stay one. `patched` and `unaffected` are sets of semver
//! requirements; the affected versions are what neither covers, written as OSV `SEMVER` events
//! (the same translation RustSec's own OSV export makes). Informational advisories (unmaintained,
//! unsound notices) are not vulnerabilities and are skipped.

use semver::{Comparator, Op, Version, VersionReq};
use serde_json::{json, Value};

/// `Ok(None)`: a valid advisory that is informational only, or that affects no version.
pub fn to_osv(markdown: &str) -> Result<Option<Value>, String> {
    let start = markdown.find("```toml").ok_or("no ```toml front matter")?;
    let body = &markdown[start + "```toml".len()..];
    let end = body.find("```").ok_or("the ```toml block is not closed")?;
    let front = &body[..end];
    let rest = &body[end + 3..];
    let doc: toml_edit::DocumentMut = front.parse().map_err(|e: toml_edit::TomlError| {
        let at = start + "```toml".len() + e.span().map_or(0, |s| s.start);
        let line = markdown.as_bytes()[..at.min(markdown.len())].iter().filter(|b| **b == b'\n').count() + 1;
        format!("line {line}: {}", e.message().trim())
    })?;
    let adv = doc.get("advisory").and_then(|a| a.as_table_like()).ok_or("no [advisory] table")?;
    let s = |k: &str| adv.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let id = s("id").ok_or("[advisory] has no `id`")?;
    let package = s("package").ok_or("[advisory] has no `package`")?;
    if adv.get("informational").is_some() {
        return Ok(None);
    }
    let list = |t: Option<&dyn toml_edit::TableLike>, k: &str| -> Vec<String> {
        t.and_then(|t| t.get(k))
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let versions = doc.get("versions").and_then(|v| v.as_table_like());
    let mut safe = Vec::new();
    for r in list(versions, "patched").iter().chain(list(versions, "unaffected").iter()) {
        let req = VersionReq::parse(r).map_err(|e| format!("`{r}` is not a version requirement: {e}"))?;
        if let Some(iv) = interval(&req) {
            safe.push(iv);
        }
    }
    let events = affected_events(safe);
    if events.is_empty() {
        // Every version is patched or unaffected (the issue is platform-specific, say).
        return Ok(None);
    }
    let title = rest.lines().find_map(|l| l.strip_prefix("# ")).unwrap_or("").trim().to_owned();
    let cvss = s("cvss");
    let label = cvss.as_deref().and_then(crate::cvss::base_score).map(|sc| match crate::cvss::rating(sc) {
        "critical" => "CRITICAL",
        "high" => "HIGH",
        "medium" => "MODERATE",
        _ => "LOW",
    });
    let mut rec = json!({
        "schema_version": "1.4.0",
        "id": id,
        "aliases": list(Some(adv), "aliases"),
        "summary": title,
        "affected": [{
            "package": { "ecosystem": "crates.io", "name": package },
            "ranges": [{ "type": "SEMVER", "events": events }],
        }],
        "database_specific": { "severity": label.unwrap_or("UNKNOWN"), "source": "rustsec" },
    });
    if let Some(c) = cvss {
        rec["severity"] = json!([{ "type": "CVSS_V3", "score": c }]);
    }
    if let Some(w) = s("withdrawn") {
        rec["withdrawn"] = json!(w);
    }
    Ok(Some(rec))
}

/// The versions a requirement covers, as `[low, high)` (`None`: unbounded above).
fn interval(req: &VersionReq) -> Option<(Version, Option<Version>)> {
    let mut lo = Version::new(0, 0, 0);
    let mut hi: Option<Version> = None;
    for c in &req.comparators {
        let (l, h) = comparator(c);
        if l > lo {
            lo = l;
        }
        if let Some(h) = h {
            if hi.as_ref().is_none_or(|x| h < *x) {
                hi = Some(h);
            }
        }
    }
    match &hi {
        Some(h) if *h <= lo => None,
        _ => Some((lo, hi)),
    }
}

fn comparator(c: &Comparator) -> (Version, Option<Version>) {
    let full = Version {
        major: c.major,
        minor: c.minor.unwrap_or(0),
        patch: c.patch.unwrap_or(0),
        pre: c.pre.clone(),
        build: Default::default(),
    };
    // The first version past the part the comparator names (`1.2` → 1.3.0, `1.2.3` → 1.2.4).
    let next = || match (c.minor, c.patch) {
        (None, _) => Version::new(c.major + 1, 0, 0),
        (Some(m), None) => Version::new(c.major, m + 1, 0),
        (Some(m), Some(p)) => Version::new(c.major, m, p + 1),
    };
    match c.op {
        Op::GreaterEq => (full, None),
        Op::Greater => (next(), None),
        Op::Less => (Version::new(0, 0, 0), Some(full)),
        Op::LessEq => (Version::new(0, 0, 0), Some(next())),
        Op::Exact | Op::Wildcard => (full, Some(next())),
        Op::Tilde => {
            let hi = match c.minor {
                Some(m) => Version::new(c.major, m + 1, 0),
                None => Version::new(c.major + 1, 0, 0),
            };
            (full, Some(hi))
        }
        // `^` and a bare requirement: up to the next breaking version.
        _ => {
            let hi = if c.major > 0 {
                Version::new(c.major + 1, 0, 0)
            } else if c.minor.unwrap_or(0) > 0 || c.patch.is_none() {
                match c.minor {
                    Some(m) => Version::new(0, m + 1, 0),
                    None => Version::new(1, 0, 0),
                }
            } else {
                Version::new(0, 0, c.patch.unwrap_or(0) + 1)
            };
            (full, Some(hi))
        }
    }
}

/// OSV events for the complement of the safe intervals.
fn affected_events(mut safe: Vec<(Version, Option<Version>)>) -> Vec<Value> {
    safe.sort_by(|a, b| a.0.cmp(&b.0));
    let mut events = Vec::new();
    let mut cur = Some(Version::new(0, 0, 0));
    for (lo, hi) in safe {
        let Some(c) = cur.clone() else { break };
        if lo > c {
            let intro = if c == Version::new(0, 0, 0) { "0".to_owned() } else { c.to_string() };
            events.push(json!({ "introduced": intro }));
            events.push(json!({ "fixed": lo.to_string() }));
        }
        cur = hi.map(|h| if h > c { h } else { c });
    }
    if let Some(c) = cur {
        let intro = if c == Version::new(0, 0, 0) { "0".to_owned() } else { c.to_string() };
        events.push(json!({ "introduced": intro }));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(patched: &str, unaffected: &str) -> Value {
        let md = format!(
            "```toml\n[advisory]\nid = \"RUSTSEC-2099-0001\"\npackage = \"x\"\ndate = \"2099-01-01\"\ncvss = \"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\"\n[versions]\npatched = {patched}\nunaffected = {unaffected}\n```\n\n# x is broken\n"
        );
        let v = to_osv(&md).unwrap().unwrap();
        assert_eq!(v["summary"], "x is broken");
        assert_eq!(v["database_specific"]["severity"], "CRITICAL");
        v["affected"][0]["ranges"][0]["events"].clone()
    }

    #[test]
    fn requirements_become_events() {
        assert_eq!(events(r#"[">= 1.2.3"]"#, "[]"), json!([{"introduced": "0"}, {"fixed": "1.2.3"}]));
        assert_eq!(
            events(r#"[">= 1.2.3, < 2.0.0", ">= 2.0.5"]"#, r#"["< 0.5.0"]"#),
            json!([{"introduced": "0.5.0"}, {"fixed": "1.2.3"}, {"introduced": "2.0.0"}, {"fixed": "2.0.5"}])
        );
        assert_eq!(events("[]", "[]"), json!([{"introduced": "0"}]));
        assert_eq!(
            events(r#"["^0.3.2"]"#, "[]"),
            json!([{"introduced": "0"}, {"fixed": "0.3.2"}, {"introduced": "0.4.0"}])
        );
    }

    #[test]
    fn informational_and_broken_inputs() {
        let info = "```toml\n[advisory]\nid = \"R\"\npackage = \"p\"\ninformational = \"unmaintained\"\n[versions]\npatched = []\n```\n";
        assert_eq!(to_osv(info).unwrap(), None);
        assert!(to_osv("no front matter").is_err());
        assert!(
            to_osv("```toml\n[advisory\n```").unwrap_err().contains("line 2"),
            "{:?}",
            to_osv("```toml\n[advisory\n```")
        );
        assert!(
            to_osv("```toml\n[advisory]\nid = \"R\"\npackage = \"p\"\n[versions]\npatched = [\"=> 1\"]\n```").is_err()
        );
    }
}
