//! The CSP nonce rewriter (`[headers] csp_nonce`) on hostile pages: any bytes as HTML, plain or
//! gzipped, fed in the fuzzer's chunk sizes, with any query as the request's input. It must never
//! panic, every byte outside `<script>`/`<style>` tags must come through, and a page that has no
//! script tags must come back unchanged.
#![no_main]
use std::io::Write;

use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use kevlar_proxy::nonce;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [sel, step, qlen, rest @ ..] = data else { return };
    let step = usize::from(*step) * 5 + 1;
    let (query, page) = rest.split_at(usize::from(*qlen).min(rest.len()));
    let query = String::from_utf8_lossy(query).into_owned();
    let gzip = sel % 2 == 1;
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'self'"));
    let body = if gzip {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(page).unwrap();
        e.finish().unwrap()
    } else {
        page.to_vec()
    };
    let Ok(Some(mut r)) = nonce::prepare(&http::Method::GET, 200, &mut h, nonce::inputs(Some(&query)), Box::new(|_| {})) else {
        panic!("an HTML page with a policy is rewritten");
    };
    let mut out = Vec::new();
    let mut failed = false;
    for c in body.chunks(step) {
        match r.write(c) {
            Ok(b) => out.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed {
        match r.finish() {
            Ok(b) => out.extend_from_slice(&b),
            Err(_) => failed = true,
        }
    }
    if failed {
        return;
    }
    let text = if gzip {
        let mut d = flate2::write::GzDecoder::new(Vec::new());
        d.write_all(&out).unwrap();
        d.finish().unwrap()
    } else {
        out
    };
    let lower = page.to_ascii_lowercase();
    if !lower.windows(7).any(|w| w == b"<script") && !lower.windows(6).any(|w| w == b"<style") && std::str::from_utf8(page).is_ok() {
        assert_eq!(text, page, "a page without scripts comes back as it was");
    }
});
