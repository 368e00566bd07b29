//! Hostile and random inputs: nothing panics, and large inputs take linear time.

use std::time::{Duration, Instant};

use super::*;
use crate::{parse_csp, parse_csp_list, MAX_BODY_BYTES};

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let at = (self.next() % items.len() as u64) as usize;
        items.get(at).copied().unwrap_or("")
    }

    fn text(&mut self, pieces: &[&str], count: usize) -> String {
        (0..count).map(|_| self.pick(pieces)).collect()
    }
}

const MARKUP: [&str; 28] = [
    "<",
    ">",
    "/",
    "<script",
    "</script",
    "<meta",
    "<base",
    "<svg",
    "</svg>",
    "<math",
    "<template",
    "</template>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    " src=",
    " integrity=",
    " content=",
    " http-equiv=",
    "\"",
    "'",
    "&#",
    "&amp",
    "x",
    "é",
    "\u{0}",
    "<noscript",
];

const POLICY: [&str; 20] = [
    "script-src",
    "default-src",
    "report-uri",
    ";",
    " ",
    "'self'",
    "'nonce-",
    "'strict-dynamic'",
    "%",
    "%e9",
    "%c3%a9",
    "/",
    "https:",
    "*",
    "\u{a0}",
    "\r\n",
    "é",
    "'unsafe-inline'",
    "http://a/",
    "data:",
];

#[test]
fn random_policies_and_pages_do_not_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let policy = rng.text(&POLICY, 12);
        let _ = parse_csp(&policy);
        let _ = parse_csp_list(&[policy.as_str(), rng.text(&POLICY, 8).as_str()]);
        let body = rng.text(&MARKUP, 40);
        let pairs = [
            ("content-security-policy", policy.as_str()),
            ("set-cookie", body.as_str()),
            ("referrer-policy", body.as_str()),
        ];
        let report = grade(&html_site(&pairs, &body));
        assert_eq!(report.tests.len(), 10);
    }
}

#[test]
fn odd_urls_and_headers_do_not_panic() {
    let urls = [
        "",
        "http://",
        "https://[",
        "https://[::1",
        "https://a:99999/",
        "http://0x/",
        "http://1.2.3.4.5/",
        "http://%zz/",
        "ftp://x/",
        "https://é.example/",
        "http://256.1/",
    ];
    for url in urls {
        let chain = vec![hop(url, 301, &[("location", url), ("set-cookie", "a=1; Domain=\u{e9}")]), hop(url, 200, &[])];
        let session = Session {
            chain,
            body: Some(format!("<base href=\"{url}\"><script src=\"{url}\"></script>")),
            verified_tls: false,
        };
        let r = Retrieved {
            host: url.to_owned(),
            https: Some(session.clone()),
            http: Some(session),
            ..Retrieved::default()
        };
        let _ = grade(&r);
    }
}

fn assert_quick(body: &str) {
    let start = Instant::now();
    let _ = grade(&html_site(&[], body));
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
}

#[test]
fn large_hostile_pages_are_linear() {
    assert_quick(&"<a ".repeat((MAX_BODY_BYTES + 1000) / 3));
    let size = MAX_BODY_BYTES / 4;
    for unit in
        ["<script><!--<script>", "<svg><math>", "&amp&", "<!--", "<x a=1 b=2 c=3 ", "<script src=x integrity=y>"]
    {
        assert_quick(&unit.repeat(size / unit.len()));
    }
    let meta = "<meta http-equiv=content-security-policy content=\"script-src a b c d e f g\">".repeat(20_000);
    assert_quick(&meta);
    let growing: String = (0..5000)
        .map(|i| format!("<meta http-equiv=content-security-policy content=\"script-src / /a{i}\">"))
        .collect();
    assert_quick(&growing);
    let long_policy = format!("script-src {}", "'self' ".repeat(200_000));
    assert!(parse_csp(&long_policy).is_ok());
}
