//! `kevlar headers check`'s grader (`kevlar-grade`) on hostile answers: any CSP text through the
//! parser, and any headers and page through the ten tests. Never a panic; the score stays within
//! what the modifiers allow and the grade is one of the Observatory's.
#![no_main]
use kevlar_grade::{grade, parse_csp, Hop, Response, Retrieved, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_csp(&text);
    let mut parts = text.splitn(4, '\u{1}');
    let (csp, cookie, other, body) = (parts.next(), parts.next(), parts.next(), parts.next());
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(c) = csp {
        headers.push(("content-security-policy".into(), c.into()));
    }
    if let Some(c) = cookie {
        headers.push(("set-cookie".into(), c.into()));
    }
    if let Some(o) = other {
        for line in o.lines() {
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().into()));
            }
        }
    }
    let hop = |url: &str, status: u16, headers: Vec<(String, String)>| Hop { url: url.into(), status, headers, preloaded: false };
    let https = Session {
        chain: vec![hop("https://example.com/", 200, headers.clone())],
        body: body.map(str::to_owned),
        verified_tls: data.first().is_some_and(|b| b & 1 == 0),
    };
    let http = Session {
        chain: vec![
            hop("http://example.com/", 301, vec![("location".into(), "https://example.com/".into())]),
            hop("https://example.com/", 200, headers.clone()),
        ],
        body: None,
        verified_tls: true,
    };
    let r = Retrieved {
        host: "example.com".into(),
        https: Some(https),
        http: Some(http),
        robots: None,
        cors: Some(Response { url: "https://example.com/".into(), status: 200, headers }),
        preloaded: false,
    };
    let report = grade(&r);
    assert!(report.score >= 0 && report.score <= 100 + 10 * 10);
    assert!(["A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F"].contains(&report.grade.as_str()));
    assert_eq!(report.tests.len(), 10);
});
