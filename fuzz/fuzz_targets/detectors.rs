//! The built-in detectors on hostile input: never a panic, and never slow. The first byte picks
//! where the rest goes (query, path, a form/JSON/multipart/XML body, a header, a cookie); every
//! input must be inspected within a time linear in its size (1 ms per KiB, with a generous
//! allowance for the fuzzer's instrumentation).
#![no_main]
use std::sync::OnceLock;
use std::time::Instant;

use kevlar_detect::{Detector, InspectConfig, Inspector, RequestView};
use libfuzzer_sys::fuzz_target;

fn inspector() -> &'static Inspector {
    static I: OnceLock<Inspector> = OnceLock::new();
    I.get_or_init(|| Inspector::new(InspectConfig::default()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let mut headers = http::HeaderMap::new();
    let ct = match sel % 4 {
        0 => "application/x-www-form-urlencoded",
        1 => "application/json",
        2 => "multipart/form-data; boundary=XX",
        _ => "application/xml",
    };
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(ct));
    if let Ok(v) = http::HeaderValue::from_bytes(rest) {
        headers.insert(if sel & 4 == 0 { http::header::USER_AGENT } else { http::header::COOKIE }, v);
    }
    let query = if sel & 8 == 0 { Some(text.as_ref()) } else { None };
    let path = if sel & 16 == 0 { "/" } else { text.as_ref() };
    let view = RequestView { method: "POST", path, query, headers: &headers, body: rest, body_complete: true };
    let started = Instant::now();
    let mut out = Vec::new();
    inspector().inspect(&view, &mut out);
    let kib = rest.len() as u128 / 1024 + 1;
    let ms = started.elapsed().as_millis();
    assert!(ms <= 20 * kib + 50, "{} bytes took {ms} ms", rest.len());
    for f in &out {
        assert!(f.excerpt.chars().count() <= 97);
        assert!((1..=10).contains(&f.score));
    }
});
