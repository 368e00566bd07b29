//! OSV records (https://ossf.github.io/osv-schema/) and range evaluation, exactly per the schema:
//! events sorted by version, `introduced` turns affected on, `fixed` (at or above) and
//! `last_affected` (above) turn it off, `limit` bounds the range; explicit `versions` lists count
//! too; withdrawn records match nothing. A range whose events cannot be read is skipped with a
//! warning naming the record — never a crash, never the whole database dropped.

use std::cmp::Ordering;

use serde_json::Value;

use crate::version::{self, Version};

/// The database's severity label (`database_specific.severity`), or `Critical` for a
/// malicious-package record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Unknown,
    Low,
    Moderate,
    High,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "low" => Severity::Low,
            "moderate" | "medium" => Severity::Moderate,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            "unknown" | "none" => Severity::Unknown,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Low => "low",
            Severity::Moderate => "moderate",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Introduced(Option<Version>), // None = "0"
    Fixed(Version),
    LastAffected(Version),
    Limit(Version),
}

impl Event {
    fn version(&self) -> Option<&Version> {
        match self {
            Event::Introduced(v) => v.as_ref(),
            Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => Some(v),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Range {
    events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Affected {
    pub ecosystem: String,
    pub name: String,
    ranges: Vec<Range>,
    versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub severity: Severity,
    /// CVSS vectors as given (`severity[].score`).
    pub cvss: Vec<String>,
    pub withdrawn: bool,
    pub malicious: bool,
    pub affected: Vec<Affected>,
}

/// `Ok(None)`: an event that says nothing (`fixed: ""` in some migrated records: no fix).
fn parse_event(ecosystem: &str, e: &Value) -> Result<Option<Event>, String> {
    let obj = e.as_object().ok_or("an event is not an object")?;
    let (kind, v) = obj.iter().next().ok_or("an empty event")?;
    let text = v.as_str().ok_or_else(|| format!("`{kind}` is not a string"))?;
    if text.is_empty() && matches!(kind.as_str(), "fixed" | "last_affected" | "limit") {
        return Ok(None);
    }
    let ver = || version::parse_in(ecosystem, text).ok_or_else(|| format!("`{kind}: {text:?}` is not a version"));
    Ok(Some(match kind.as_str() {
        "introduced" if text == "0" => Event::Introduced(None),
        "introduced" => Event::Introduced(Some(ver()?)),
        "fixed" => Event::Fixed(ver()?),
        "last_affected" => Event::LastAffected(ver()?),
        "limit" if text == "*" => return Err("`limit: *` is unbounded".into()),
        "limit" => Event::Limit(ver()?),
        other => return Err(format!("unknown event `{other}`")),
    }))
}

/// Orders events by version, `introduced: 0` first.
fn event_order(a: &Event, b: &Event) -> Ordering {
    match (a.version(), b.version()) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => version::cmp(x, y),
    }
}

/// Package names compare exactly, except PyPI's, which compare normalised (PEP 503).
fn same_name(ecosystem: &str, a: &str, b: &str) -> bool {
    a == b || (version::is_python(ecosystem) && crate::pep440::normalize_name(a) == crate::pep440::normalize_name(b))
}

impl Advisory {
    /// Reads one OSV record; problems that only spoil one range are pushed to `warnings`.
    pub fn from_json(v: &Value, warnings: &mut Vec<String>) -> Result<Advisory, String> {
        let id = v.get("id").and_then(Value::as_str).ok_or("missing `id`")?.to_owned();
        let strs = |key: &str| -> Vec<String> {
            v.get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let summary = v
            .get("summary")
            .or_else(|| v.get("details"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        let malicious = id.starts_with("MAL-") || summary.to_ascii_lowercase().starts_with("malicious");
        let label = v
            .pointer("/database_specific/severity")
            .and_then(Value::as_str)
            .and_then(Severity::parse)
            .unwrap_or(Severity::Unknown);
        let severity = if malicious { Severity::Critical } else { label };
        let cvss = v
            .get("severity")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("score").and_then(Value::as_str))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut affected = Vec::new();
        for a in v.get("affected").and_then(Value::as_array).into_iter().flatten() {
            let Some(pkg) = a.get("package") else { continue };
            let ecosystem = pkg.get("ecosystem").and_then(Value::as_str).unwrap_or("").to_owned();
            let name = pkg.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
            let mut ranges = Vec::new();
            for r in a.get("ranges").and_then(Value::as_array).into_iter().flatten() {
                let kind = r.get("type").and_then(Value::as_str).unwrap_or("");
                if kind == "GIT" {
                    continue;
                }
                let parsed: Result<Vec<Option<Event>>, String> = r
                    .get("events")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|e| parse_event(&ecosystem, e))
                    .collect();
                let parsed = parsed.map(|evs| {
                    let empty = evs.iter().filter(|e| e.is_none()).count();
                    if empty > 0 {
                        warnings.push(format!("{id}: {name}: an empty `fixed` was read as \"no fix\""));
                    }
                    evs.into_iter().flatten().collect::<Vec<Event>>()
                });
                match parsed {
                    Ok(mut events) if !events.is_empty() => {
                        events.sort_by(event_order);
                        ranges.push(Range { events });
                    }
                    Ok(_) => warnings.push(format!("{id}: {name}: a range without events was skipped")),
                    Err(e) => warnings.push(format!("{id}: {name}: a range was skipped: {e}")),
                }
            }
            let versions = a
                .get("versions")
                .and_then(Value::as_array)
                .map(|x| x.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            affected.push(Affected { ecosystem, name, ranges, versions });
        }
        Ok(Advisory {
            id,
            aliases: strs("aliases"),
            summary,
            severity,
            cvss,
            withdrawn: v.get("withdrawn").is_some_and(|w| !w.is_null()),
            malicious,
            affected,
        })
    }

    /// Whether `version` of `name` (in `ecosystem`) is affected.
    pub fn affects(&self, ecosystem: &str, name: &str, version: &str) -> bool {
        if self.withdrawn {
            return false;
        }
        let parsed = version::parse_in(ecosystem, version);
        self.affected.iter().filter(|a| a.ecosystem == ecosystem && same_name(ecosystem, &a.name, name)).any(|a| {
            a.versions.iter().any(|v| v == version)
                || parsed.as_ref().is_some_and(|ver| a.ranges.iter().any(|r| r.contains(ver)))
        })
    }

    /// The smallest `fixed` version above `version` in the ranges that affect it.
    pub fn smallest_fix(&self, ecosystem: &str, name: &str, version: &str) -> Option<Version> {
        let ver = version::parse_in(ecosystem, version)?;
        self.affected
            .iter()
            .filter(|a| a.ecosystem == ecosystem && same_name(ecosystem, &a.name, name))
            .flat_map(|a| a.ranges.iter())
            .filter(|r| r.contains(&ver))
            .flat_map(|r| r.events.iter())
            .filter_map(|e| match e {
                Event::Fixed(f) if version::cmp(f, &ver) == Ordering::Greater => Some(f.clone()),
                _ => None,
            })
            .min_by(version::cmp)
    }
}

impl Range {
    fn contains(&self, v: &Version) -> bool {
        let mut affected = false;
        for e in &self.events {
            match e {
                Event::Introduced(None) => affected = true,
                Event::Introduced(Some(i)) => {
                    if version::cmp(v, i) != Ordering::Less {
                        affected = true;
                    }
                }
                Event::Fixed(f) => {
                    if version::cmp(v, f) != Ordering::Less {
                        affected = false;
                    }
                }
                Event::LastAffected(l) => {
                    if version::cmp(v, l) == Ordering::Greater {
                        affected = false;
                    }
                }
                Event::Limit(_) => {}
            }
        }
        let under_limit = self.events.iter().all(|e| match e {
            Event::Limit(l) => version::cmp(v, l) == Ordering::Less,
            _ => true,
        });
        affected && under_limit
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn adv(events: Value) -> Advisory {
        let mut w = Vec::new();
        Advisory::from_json(
            &json!({"id": "GHSA-test", "affected": [{"package": {"ecosystem": "npm", "name": "p"}, "ranges": [{"type": "SEMVER", "events": events}]}]}),
            &mut w,
        )
        .unwrap()
    }

    #[test]
    fn introduced_fixed_last_affected_limit() {
        let a = adv(json!([{"introduced": "0"}, {"fixed": "1.2.3"}]));
        assert!(a.affects("npm", "p", "1.2.2"));
        assert!(!a.affects("npm", "p", "1.2.3"));
        assert!(a.affects("npm", "p", "1.2.3-beta.1"), "a pre-release of the fix is before it");
        assert_eq!(a.smallest_fix("npm", "p", "0.1.0").unwrap().to_string(), "1.2.3");
        let b = adv(json!([{"introduced": "2.0.0"}, {"last_affected": "2.4.0"}]));
        assert!(!b.affects("npm", "p", "1.9.9"));
        assert!(b.affects("npm", "p", "2.4.0"));
        assert!(!b.affects("npm", "p", "2.4.1"));
        let c = adv(json!([{"introduced": "1.0"}]));
        assert!(c.affects("npm", "p", "9.9.9"), "open range");
        assert!(!c.affects("npm", "other", "9.9.9"));
        let two = adv(json!([{"introduced": "0"}, {"fixed": "1.0.0"}, {"introduced": "2.0.0"}, {"fixed": "2.1.0"}]));
        assert!(two.affects("npm", "p", "2.0.5") && !two.affects("npm", "p", "1.5.0"));
        assert_eq!(two.smallest_fix("npm", "p", "2.0.5").unwrap().to_string(), "2.1.0");
        let lim = adv(json!([{"introduced": "0"}, {"limit": "3.0.0"}]));
        assert!(lim.affects("npm", "p", "2.0.0") && !lim.affects("npm", "p", "3.0.0"));
    }

    #[test]
    fn malformed_ranges_warn_and_are_skipped() {
        let mut w = Vec::new();
        let a = Advisory::from_json(
            &json!({"id": "GHSA-h755-8qp9-cq85", "affected": [{"package": {"ecosystem": "npm", "name": "p"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "7.2.4, 6.11.4"}]}], "versions": ["0.0.1"]}]}),
            &mut w,
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("GHSA-h755-8qp9-cq85: p: a range was skipped"), "{w:?}");
        assert!(!a.affects("npm", "p", "1.0.0"));
        assert!(a.affects("npm", "p", "0.0.1"), "explicit versions still count");
    }

    #[test]
    fn an_empty_fix_means_no_fix() {
        let mut w = Vec::new();
        let a = Advisory::from_json(
            &json!({"id": "GHSA-226w-6hhj-69hp", "summary": "Malicious Package in x", "affected": [{"package": {"ecosystem": "npm", "name": "x"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": ""}]}]}]}),
            &mut w,
        )
        .unwrap();
        assert!(a.affects("npm", "x", "1.0.0"));
        assert!(a.malicious && a.severity == Severity::Critical);
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn withdrawn_and_malicious() {
        let mut w = Vec::new();
        let gone = Advisory::from_json(&json!({"id": "X", "withdrawn": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "npm", "name": "p"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}), &mut w).unwrap();
        assert!(!gone.affects("npm", "p", "1.0.0"));
        let mal =
            Advisory::from_json(&json!({"id": "MAL-2024-1", "summary": "Malicious code in p (npm)"}), &mut w).unwrap();
        assert!(mal.malicious);
        assert_eq!(mal.severity, Severity::Critical);
    }
}
