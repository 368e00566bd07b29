//! The body scanner (decompression, charsets, the form / JSON / multipart / text tokenizers) on
//! hostile input fed in hostile chunk sizes: never a panic, time linear in the input, a
//! decompression bomb stopped rather than inflated, and the same findings however the body is
//! cut. The first bytes pick the content type, the encoding and the chunk size; the rest is the
//! body.
#![no_main]
use std::sync::OnceLock;
use std::time::Instant;

use kevlar_detect::body::Scanner;
use kevlar_detect::{InspectConfig, Inspector};
use libfuzzer_sys::fuzz_target;

fn inspector() -> &'static Inspector {
    static I: OnceLock<Inspector> = OnceLock::new();
    I.get_or_init(|| Inspector::new(InspectConfig::default()))
}

fuzz_target!(|data: &[u8]| {
    let [sel, enc, step, rest @ ..] = data else { return };
    let mut headers = http::HeaderMap::new();
    let ct = match sel % 7 {
        0 => Some("application/x-www-form-urlencoded"),
        1 => Some("application/json; charset=utf-16le"),
        2 => Some("multipart/form-data; boundary=XX"),
        3 => Some("application/xml"),
        4 => Some("text/plain; charset=latin1"),
        5 => Some("application/json"),
        _ => None,
    };
    if let Some(ct) = ct {
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(ct));
    }
    let ce = match enc % 5 {
        0 => None,
        1 => Some("gzip"),
        2 => Some("deflate"),
        3 => Some("br"),
        _ => Some("gzip, br"),
    };
    if let Some(ce) = ce {
        headers.insert(http::header::CONTENT_ENCODING, http::HeaderValue::from_static(ce));
    }
    let started = Instant::now();
    let mut s = Scanner::new(inspector(), &headers);
    for c in rest.chunks(usize::from(*step).max(1)) {
        s.feed(inspector(), c);
    }
    s.finish(inspector());
    let kib = rest.len() as u128 / 1024 + 1;
    let ms = started.elapsed().as_millis();
    assert!(ms <= 40 * kib + 200, "{} bytes took {ms} ms", rest.len());
    assert!(s.prefix().len() <= kevlar_detect::body::KEEP);
    // The client chooses how its body is cut into pieces: what Kevlar finds must not depend on it.
    let mut whole = Scanner::new(inspector(), &headers);
    whole.feed(inspector(), rest);
    whole.finish(inspector());
    let seen = |s: &Scanner| {
        let mut v: Vec<(String, String)> =
            s.findings().iter().map(|f| (format!("{:?}", f.family), f.location.clone())).collect();
        v.sort();
        v.dedup();
        v
    };
    // A broken or bombing stream is refused for that alone (and the app's inflater refuses it
    // too); how much of it decoded before the break may depend on the pieces.
    let broken = |s: &Scanner| {
        s.findings().iter().any(|f| matches!(f.rule, "bad_encoding" | "decompression_bomb"))
    };
    if s.findings().len() < 16 && whole.findings().len() < 16 && !broken(&s) && !broken(&whole) {
        assert_eq!(seen(&s), seen(&whole), "findings differ between pieces of {} and the whole body", step);
    }
});
