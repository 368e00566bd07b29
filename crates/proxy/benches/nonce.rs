//! `[headers] csp_nonce`: the cost of rewriting an HTML page as it streams, against passing the
//! same bytes through untouched (a copy), for a plain and a gzipped 100 KB page in 16 KiB chunks.

use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use kevlar_proxy::nonce;

fn page() -> Vec<u8> {
    let mut p =
        String::from("<!doctype html><html><head><title>shop</title><script src=\"/app.js\"></script></head><body>");
    while p.len() < 100_000 {
        p.push_str("<div class=\"item\"><a href=\"/p/42\">Running shoes</a><span>€ 89</span></div>\n");
        if p.len() % 10_000 < 80 {
            p.push_str("<script>window.track && track('view', 42);</script>");
        }
    }
    p.push_str("</body></html>");
    p.into_bytes()
}

fn rewrite(body: &[u8], gzip: bool) -> usize {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'self'"));
    if gzip {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let inputs = nonce::inputs(Some("q=running+shoes&page=2"));
    let Ok(Some(mut r)) = nonce::prepare(&http::Method::GET, 200, &mut h, inputs, Box::new(|_| {})) else {
        return 0;
    };
    let mut n = 0;
    for c in body.chunks(16 * 1024) {
        n += r.write(c).map(|b| b.len()).unwrap_or(0);
    }
    n + r.finish().map(|b| b.len()).unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let plain = page();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(&plain);
    let gz = e.finish().unwrap_or_default();
    let mut g = c.benchmark_group("csp_nonce_100kb_page");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("copy (no rewriting)", |b| {
        b.iter(|| plain.chunks(16 * 1024).map(|c| bytes::Bytes::copy_from_slice(c).len()).sum::<usize>())
    });
    g.bench_function("rewrite plain", |b| b.iter(|| rewrite(&plain, false)));
    g.bench_function("rewrite gzip (inflate, rewrite, deflate)", |b| b.iter(|| rewrite(&gz, true)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
