use kevlar_config::Framing;
use kevlar_core::{Category, SecurityEvent, Severity};

use super::encoder::*;

fn event() -> SecurityEvent {
    let mut e = SecurityEvent::new(
        "malicious_attack",
        Category::IntrusionDetection,
        Severity::Warning,
        "SQL injection in q\nnext",
    );
    e.source_ip = "192.0.2.7".parse().ok();
    e.url_path = Some("/search\"]\\".into());
    e.timestamp_ms = 1_700_000_000_123;
    e
}

#[test]
fn rfc5424_with_structured_data() {
    let h = Header { facility: 10, hostname: "web 1", app_name: "kevlar", procid: 42 };
    let m = encode(&event(), &h);
    // PRI = 10 * 8 + 4 (warning).
    assert!(m.starts_with("<84>1 2023-11-14T22:13:20.123Z web1 kevlar 42 malicious_attack [kevlar@32473 id=\""), "{m}");
    assert!(m.contains(" ip=\"192.0.2.7\"") && m.contains(" path=\"/search\\\"\\]\\\\\""), "{m}");
    assert!(m.ends_with("] SQL injection in q\\nnext"), "the line end is written out: {m}");
}

#[test]
fn bidi_controls_and_separators_are_written_out() {
    let h = Header { facility: 10, hostname: "web1", app_name: "kevlar", procid: 42 };
    let mut e = event();
    e.message = "login for evil\u{202E}gpj.exe\u{2028}forged".into();
    let m = encode(&e, &h);
    assert!(m.ends_with("login for evil\\u{202e}gpj.exe\\u{2028}forged"), "{m}");
}

#[test]
fn framing_and_datagrams() {
    let mut out = Vec::new();
    frame("<13>1 - - - - - - hé", Framing::OctetCounting, &mut out);
    frame("x", Framing::Newline, &mut out);
    assert_eq!(out, "21 <13>1 - - - - - - hé".bytes().chain(*b"x\n").collect::<Vec<u8>>());
    assert_eq!(datagram("aé", 2), "a");
    assert_eq!(syslog_severity(Severity::Critical), 1);
}
