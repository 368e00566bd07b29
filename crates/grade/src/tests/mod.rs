//! Unit tests, by area. The expected results follow the reference scoring's rules; the helpers
//! build small sites: an HTTPS page, with HTTP redirecting to it.

mod checks;
mod cookies;
mod csp;
mod html;
mod robustness;
mod scoring;
mod sri;
mod url;

use crate::{grade, Hop, Report, Retrieved, Session};

/// Headers from `(name, value)` pairs.
pub(super) fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

pub(super) fn hop(url: &str, status: u16, pairs: &[(&str, &str)]) -> Hop {
    Hop { url: url.to_owned(), status, headers: headers(pairs), preloaded: false }
}

/// A verified session of one answer.
pub(super) fn single(url: &str, pairs: &[(&str, &str)], body: &str) -> Session {
    Session { chain: vec![hop(url, 200, pairs)], body: Some(body.to_owned()), verified_tls: true }
}

/// `http://example.com/` redirecting to `https://example.com/`.
pub(super) fn http_to_https() -> Session {
    Session {
        chain: vec![
            hop("http://example.com/", 301, &[("location", "https://example.com/")]),
            hop("https://example.com/", 200, &[]),
        ],
        body: None,
        verified_tls: true,
    }
}

/// A site answering over HTTPS with these headers and body, HTTP redirecting to it.
pub(super) fn site(pairs: &[(&str, &str)], body: &str) -> Retrieved {
    Retrieved {
        host: "example.com".to_owned(),
        https: Some(single("https://example.com/", pairs, body)),
        http: Some(http_to_https()),
        ..Retrieved::default()
    }
}

/// An HTML page over HTTPS with these headers (a `Content-Type` of `text/html` added).
pub(super) fn html_site(pairs: &[(&str, &str)], body: &str) -> Retrieved {
    let mut all = vec![("content-type", "text/html; charset=utf-8")];
    all.extend_from_slice(pairs);
    site(&all, body)
}

/// The result name, pass flag and modifier of one test.
pub(super) fn test_of(report: &Report, name: &str) -> (&'static str, bool, i64) {
    let test = report.tests.iter().find(|t| t.name == name);
    test.map_or(("missing", false, 0), |t| (t.result, t.pass, t.modifier))
}

/// Grades `r` and returns one test's result name.
pub(super) fn result(r: &Retrieved, name: &str) -> &'static str {
    test_of(&grade(r), name).0
}

/// The helmet middleware's default headers.
pub(super) const HELMET: [(&str, &str); 12] = [
    (
        "content-security-policy",
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
    ("referrer-policy", "no-referrer"),
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("x-content-type-options", "nosniff"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-permitted-cross-domain-policies", "none"),
    ("x-xss-protection", "0"),
];
