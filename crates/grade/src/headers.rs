//! Response headers as the Observatory's HTTP client presents them: names lowercased, repeated
//! headers folded into one value (joined with `, `), except `Set-Cookie`, which stays a list, and a
//! few headers of which only the first counts (`Content-Type`, `Location`, …).

use std::collections::BTreeMap;

/// Headers whose repeats are dropped: the first one received wins.
const FIRST_WINS: [&str; 18] = [
    "age",
    "authorization",
    "content-length",
    "content-type",
    "etag",
    "expires",
    "from",
    "host",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "retry-after",
    "server",
    "user-agent",
];

/// The headers of one answer, folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Headers {
    values: BTreeMap<String, Vec<String>>,
}

impl Headers {
    /// Folds raw `(name, value)` pairs.
    pub(crate) fn new(raw: &[(String, String)]) -> Self {
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in raw {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            let value = trim_ows(value);
            let slot = values.entry(name.clone()).or_default();
            match slot.first_mut() {
                None => slot.push(value.to_owned()),
                Some(_) if name == "set-cookie" => slot.push(value.to_owned()),
                Some(_) if FIRST_WINS.contains(&name.as_str()) => {}
                Some(first) => {
                    first.push_str(if name == "cookie" { "; " } else { ", " });
                    first.push_str(value);
                }
            }
        }
        for list in values.values_mut() {
            for value in list.iter_mut() {
                *value = sanitize(value);
            }
        }
        Headers { values }
    }

    /// The value of `name` (the first `Set-Cookie` for that one).
    pub(crate) fn first(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    /// Every value of `name`: the `Set-Cookie` list, or the one folded value of any other header.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.values.get(name).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default()
    }
}

/// Strips spaces and tabs around a header value, as an HTTP parser does.
pub(crate) fn trim_ows(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// Drops control characters (except tab) from a header value and trims it again.
fn sanitize(value: &str) -> String {
    let kept: String = value.chars().filter(|&c| c == '\t' || !(c < ' ' || c == '\u{7f}')).collect();
    trim_ows(&kept).to_owned()
}
