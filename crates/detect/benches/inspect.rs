//! Inspection cost: a typical request (10 query arguments, a 1 KB form body), and JSON bodies of
//! growing size (the cost must grow linearly).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::{HeaderMap, HeaderValue};
use kevlar_detect::{Detector, InspectConfig, Inspector, RequestView};

fn typical(c: &mut Criterion) {
    let inspector = Inspector::new(InspectConfig::default());
    let mut headers = HeaderMap::new();
    headers.insert(
        "user-agent",
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
    );
    headers.insert("referer", HeaderValue::from_static("https://shop.example.com/catalog?page=2"));
    headers.insert("cookie", HeaderValue::from_static("sid=8f3a9c2e1b7d4a60; theme=dark; lang=en-GB"));
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
    let query = "q=running+shoes&page=2&sort=price_asc&size=42&color=blue&brand=acme&min=10&max=200&ref=home&utm_source=newsletter";
    let mut body =
        String::from("name=Jane+Doe&email=jane.doe%40example.com&address=12+Rue+de+la+Paix%2C+Paris&comment=");
    while body.len() < 1024 {
        body.push_str("Lovely+product%2C+arrived+on+time+and+well+packed.+");
    }
    let view = RequestView {
        method: "POST",
        path: "/shop/checkout/step-2",
        query: Some(query),
        headers: &headers,
        body: body.as_bytes(),
        body_complete: true,
    };
    // What the proxy does: the head inspected, the body streamed through a `Scanner`.
    let head = RequestView { body: b"", body_complete: false, ..view };
    c.bench_function("proxy_path_head_and_streamed_1kb_form", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            inspector.inspect_head(std::hint::black_box(&head), &mut out);
            let mut s = kevlar_detect::body::Scanner::new(&inspector, &headers);
            s.feed(&inspector, std::hint::black_box(body.as_bytes()));
            s.finish(&inspector);
            out.extend_from_slice(s.findings());
            out
        })
    });
    c.bench_function("typical_request_10_args_1kb_form", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            inspector.inspect(std::hint::black_box(&view), &mut out);
            out
        })
    });
}

fn json_sizes(c: &mut Criterion) {
    let inspector = Inspector::new(InspectConfig::default());
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let mut g = c.benchmark_group("json_body");
    for kb in [1usize, 10, 100] {
        let mut items = Vec::new();
        let mut len = 0;
        let mut i = 0;
        while len < kb * 1024 {
            let item = format!(r#"{{"id":{i},"name":"Item number {i}","tags":["red","blue"],"note":"fine, thanks"}}"#);
            len += item.len() + 1;
            items.push(item);
            i += 1;
        }
        let body = format!(r#"{{"items":[{}]}}"#, items.join(","));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(format!("{kb}KB")), &body, |b, body| {
            let view = RequestView {
                method: "POST",
                path: "/api/items",
                query: None,
                headers: &headers,
                body: body.as_bytes(),
                body_complete: true,
            };
            b.iter(|| {
                let mut out = Vec::new();
                inspector.inspect(std::hint::black_box(&view), &mut out);
                out
            })
        });
    }
    g.finish();
}

/// Hostile inputs built to find super-linear paths: each is 64 KB of one repeated pattern, sent as
/// a query value and as a form body. Throughput should stay in the same range as benign input.
fn worst_case(c: &mut Criterion) {
    let inspector = Inspector::new(InspectConfig::default());
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
    let patterns = [
        "'",
        "\"",
        "${",
        "{{",
        "<a",
        "../",
        "%25",
        "/*",
        ";id",
        "a://",
        "&#",
        "\\x",
        "(",
        "or 1=",
        "<!--",
        "__proto__[",
        "$ne",
        "select ",
        "` ",
        "%u00",
    ];
    let mut g = c.benchmark_group("worst_case_64KB");
    g.sample_size(10);
    for p in patterns {
        let mut v = String::new();
        while v.len() < 64 * 1024 {
            v.push_str(p);
        }
        v.push_str("}}");
        let body = format!("v={v}");
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(p.trim()), &body, |b, body| {
            let view = RequestView {
                method: "POST",
                path: "/",
                query: None,
                headers: &headers,
                body: body.as_bytes(),
                body_complete: true,
            };
            b.iter(|| {
                let mut out = Vec::new();
                inspector.inspect(std::hint::black_box(&view), &mut out);
                out
            })
        });
    }
    g.finish();
}

criterion_group!(benches, typical, json_sizes, worst_case);
criterion_main!(benches);
