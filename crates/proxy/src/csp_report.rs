//! CSP violation reports sent by browsers to `[headers] csp_report_path`: both formats browsers
//! send (`application/csp-report`, from `report-uri`, and the Reporting API's
//! `application/reports+json` list), read into violations, deduplicated, and published as
//! `csp_violation` events. Any browser, or anyone, can post here: bodies are capped, URIs lose
//! their query (tokens live there) and are capped, repeats of one violation within the window
//! count but raise no event, distinct violations are capped per minute, and the state is bounded.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use serde_json::Value;

/// The largest report body read (browsers send a few hundred bytes per violation).
pub const MAX_BODY: usize = 64 * 1024;
/// One violation raises one event per window.
const WINDOW_MS: i64 = 10 * 60 * 1000;
/// Distinct violations remembered for the window.
const MAX_SEEN: usize = 10_000;
/// New `csp_violation` events per minute at most, whatever is posted.
const MAX_PER_MINUTE: u32 = 60;
/// Violations read from one report body at most.
const MAX_PER_BODY: usize = 32;

/// One violation as a browser reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The directive that was violated (`script-src-elem`, …).
    pub directive: String,
    /// What was blocked: a URL without its query, or `inline`, `eval`, `data`, ….
    pub blocked: String,
    /// The page it happened on, without its query.
    pub document: String,
    /// `enforce` (blocked) or `report` (a report-only policy: it would have been).
    pub disposition: String,
}

/// Why a report body is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadReport {
    NotJson,
    NoViolation,
}

impl BadReport {
    pub fn reason(self) -> &'static str {
        match self {
            BadReport::NotJson => "a CSP report must be JSON",
            BadReport::NoViolation => "no CSP violation in the report",
        }
    }
}

/// A URI as it may be stored: no query or fragment, at most 512 bytes.
fn clean_uri(v: Option<&Value>) -> String {
    let s = v.and_then(Value::as_str).unwrap_or("");
    let s = s.split(['?', '#']).next().unwrap_or("");
    kevlar_core::event::capped(s, 512)
}

fn text(v: Option<&Value>, max: usize) -> String {
    kevlar_core::event::capped(v.and_then(Value::as_str).unwrap_or(""), max)
}

/// Reads the violations of a report body, in either format.
pub fn parse(body: &[u8]) -> Result<Vec<Violation>, BadReport> {
    let v: Value = serde_json::from_slice(body).map_err(|_| BadReport::NotJson)?;
    let mut out = Vec::new();
    // `report-uri`: {"csp-report": {"document-uri", "violated-directive", "effective-directive",
    // "blocked-uri", "disposition", …}}
    if let Some(r) = v.get("csp-report") {
        let directive = r.get("effective-directive").or_else(|| r.get("violated-directive"));
        out.push(Violation {
            directive: text(directive, 64),
            blocked: clean_uri(r.get("blocked-uri")),
            document: clean_uri(r.get("document-uri")),
            disposition: text(r.get("disposition"), 16),
        });
    }
    // The Reporting API: [{"type": "csp-violation", "body": {"documentURL", "blockedURL",
    // "effectiveDirective", "disposition", …}}, …]
    if let Some(list) = v.as_array() {
        for r in list.iter().filter(|r| r.get("type").and_then(Value::as_str) == Some("csp-violation")) {
            let b = r.get("body").unwrap_or(&Value::Null);
            out.push(Violation {
                directive: text(b.get("effectiveDirective"), 64),
                blocked: clean_uri(b.get("blockedURL")),
                document: clean_uri(b.get("documentURL").or_else(|| r.get("url"))),
                disposition: text(b.get("disposition"), 16),
            });
            if out.len() >= MAX_PER_BODY {
                break;
            }
        }
    }
    out.retain(|x| !x.directive.is_empty());
    if out.is_empty() {
        return Err(BadReport::NoViolation);
    }
    Ok(out)
}

/// Which violations are new within the window, bounded in memory and in events per minute.
#[derive(Default)]
pub struct Dedup {
    state: Mutex<DedupState>,
}

#[derive(Default)]
struct DedupState {
    /// A keyed hash of (directive, blocked, document) → when its event was raised.
    seen: HashMap<u64, i64>,
    minute: i64,
    this_minute: u32,
    hasher: std::collections::hash_map::RandomState,
}

impl Dedup {
    /// Whether this violation raises an event now (the first in its window, under the cap).
    pub fn admit(&self, v: &Violation, now_ms: i64) -> bool {
        self.admit_key((&v.directive, &v.blocked, &v.document, &v.disposition), now_ms)
    }

    /// The same for any event keyed by `key` (one per 10 minutes, at most 60 new a minute).
    pub fn admit_key(&self, key: impl std::hash::Hash, now_ms: i64) -> bool {
        let Ok(mut st) = self.state.lock() else { return false };
        let key = st.hasher.hash_one(key);
        if st.seen.get(&key).is_some_and(|t| now_ms - t < WINDOW_MS) {
            return false;
        }
        let minute = now_ms / 60_000;
        if minute != st.minute {
            st.minute = minute;
            st.this_minute = 0;
        }
        if st.this_minute >= MAX_PER_MINUTE {
            return false;
        }
        if st.seen.len() >= MAX_SEEN {
            st.seen.retain(|_, t| now_ms - *t < WINDOW_MS);
            if st.seen.len() >= MAX_SEEN {
                return false;
            }
        }
        st.this_minute += 1;
        st.seen.insert(key, now_ms);
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_and_queries_dropped() {
        let legacy = br#"{"csp-report":{"document-uri":"https://shop.example/cart?token=s3cret","violated-directive":"script-src","effective-directive":"script-src-elem","blocked-uri":"https://evil.example/x.js?u=1","disposition":"enforce"}}"#;
        let v = parse(legacy).unwrap();
        assert_eq!(
            v,
            vec![Violation {
                directive: "script-src-elem".into(),
                blocked: "https://evil.example/x.js".into(),
                document: "https://shop.example/cart".into(),
                disposition: "enforce".into(),
            }]
        );
        let api = br#"[{"type":"csp-violation","url":"https://shop.example/","body":{"documentURL":"https://shop.example/","blockedURL":"inline","effectiveDirective":"script-src-elem","disposition":"report"}},{"type":"deprecation","body":{}}]"#;
        let v = parse(api).unwrap();
        assert_eq!((v.len(), v[0].blocked.as_str(), v[0].disposition.as_str()), (1, "inline", "report"));
        assert_eq!(parse(b"nope"), Err(BadReport::NotJson));
        assert_eq!(parse(b"{}"), Err(BadReport::NoViolation));
        assert_eq!(parse(br#"[{"type":"csp-violation","body":{}}]"#), Err(BadReport::NoViolation));
    }

    #[test]
    fn one_event_per_violation_per_window_and_a_cap_per_minute() {
        let d = Dedup::default();
        let v = |n: usize| Violation {
            directive: "img-src".into(),
            blocked: format!("https://cdn{n}.example/"),
            document: "https://shop.example/".into(),
            disposition: "enforce".into(),
        };
        assert!(d.admit(&v(0), 0));
        assert!(!d.admit(&v(0), 1000), "a repeat within the window");
        assert!(d.admit(&v(0), WINDOW_MS + 1), "again after the window");
        let admitted = (1..200).filter(|n| d.admit(&v(*n), WINDOW_MS + 2)).count();
        assert_eq!(admitted, MAX_PER_MINUTE as usize - 1, "distinct violations are capped per minute");
    }
}
