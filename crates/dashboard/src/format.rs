//! Small helpers for pages: URL parts, times, fields of a stored event.

use serde_json::Value;

/// Percent-encodes everything but RFC 3986's unreserved characters (a path segment or a query
/// value: IPv6 prefixes keep their `/` inside one segment).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A stored event's field by path (`source.ip`), as text.
pub fn field(doc: &Value, path: &str) -> String {
    let mut v = doc;
    for part in path.split('.') {
        v = match v.get(part) {
            Some(x) => x,
            None => return String::new(),
        };
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string()))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// `2026-12-06T21:04:05.123Z` → `2026-12-06 21:04:05`.
pub fn time(rfc3339: &str) -> String {
    rfc3339.get(..19).map(|t| t.replace('T', " ")).unwrap_or_else(|| rfc3339.to_owned())
}

pub fn ms_time(ms: i64) -> String {
    time(&kevlar_core::time::rfc3339_ms(ms))
}

/// A duration in words, to the second.
pub fn ago(ms: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs((ms / 1000).max(0) as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_reads() {
        assert_eq!(encode("2001:db8::/64"), "2001%3Adb8%3A%3A%2F64");
        assert_eq!(encode("/events?a=b"), "%2Fevents%3Fa%3Db");
        let doc = serde_json::json!({"source": {"ip": "1.2.3.4"}, "event": {"category": ["web"], "severity": 4}});
        assert_eq!(field(&doc, "source.ip"), "1.2.3.4");
        assert_eq!(field(&doc, "event.category"), "web");
        assert_eq!(field(&doc, "event.severity"), "4");
        assert_eq!(field(&doc, "user.name"), "");
        assert_eq!(time("2026-12-06T21:04:05.123Z"), "2026-12-06 21:04:05");
    }
}
