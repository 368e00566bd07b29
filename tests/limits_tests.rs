//! Request limits (RFC 9110 §15.5.14 413, RFC 6585 §5 431, RFC 9110 §15.5.9 408; OWASP DoS
//! cheat sheet: slowloris): oversized heads and bodies, too many headers, clients that send too
//! slowly, and malformed requests all get a clear answer and never hold resources or crash Kevlar.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{client, raw, DemoApp, Kevlar};

const FAST_TIMEOUTS: &str =
    "[limits]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\nidle_timeout = \"2s\"\nmax_body_bytes = \"1MiB\"\n";

#[tokio::test]
async fn oversized_heads_get_431() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    let r = c.get(k.url("/")).header("X-Big", "a".repeat(40 * 1024)).send().await.unwrap();
    assert_eq!(r.status(), 431);
    let mut req = c.get(k.url("/"));
    for i in 0..150 {
        req = req.header(format!("x-h{i}"), "v");
    }
    assert_eq!(req.send().await.unwrap().status(), 431, "more than 100 headers");
    // Still healthy afterwards.
    assert_eq!(c.get(k.url("/health")).send().await.unwrap().status(), 200);
    let e = k.wait_event(|e| e["http"]["response"]["status_code"] == 431);
    assert_eq!(e["event"]["action"], "input_validation_fail");
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_streamed() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).config(FAST_TIMEOUTS).start();
    let c = client();
    let r = c.post(k.url("/upload")).body(vec![b'x'; 2 * 1024 * 1024]).send().await.unwrap();
    assert_eq!(r.status(), 413, "declared Content-Length over the limit");
    // Chunked, no length: cut off while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..40).map(|_| Ok(vec![b'x'; 64 * 1024])).collect();
    let r = c.post(k.url("/upload")).body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))).send().await;
    match r {
        Ok(r) => assert_eq!(r.status(), 413),
        // Kevlar may close the connection while the client is still sending; that is a refusal too.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let ok = c.post(k.url("/upload")).body(vec![b'x'; 1000]).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    k.wait_event(|e| e["kevlar"]["reason"] == "body_too_large");
}

#[test]
fn a_slowloris_client_gets_408_and_is_disconnected() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).config(FAST_TIMEOUTS).start();
    // Several slow clients at once, each trickling an endless head.
    let started = Instant::now();
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let addr = k.http;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
                let mut out = Vec::new();
                for i in 0..100 {
                    if s.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
                        break;
                    }
                    let mut buf = [0u8; 512];
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => out.extend_from_slice(&buf[..n]),
                        Err(_) => {}
                    }
                }
                String::from_utf8_lossy(&out).into_owned()
            })
        })
        .collect();
    for h in handles {
        let got = h.join().unwrap();
        assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(8), "cut off near the 1s head timeout");
    // A normal client is unaffected.
    let ok = raw(k.http, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Duration::from_secs(5));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

#[test]
fn a_slow_body_gets_408() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).config(FAST_TIMEOUTS).start();
    let mut s = TcpStream::connect(k.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains("Request id: <code>"), "{out}");
}

#[test]
fn a_body_trickled_under_the_minimum_rate_gets_408() {
    // 5 bytes every 300 ms: never a pause of `body_timeout`, but far under 100 bytes a second.
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).config("[limits]\nbody_timeout = \"2s\"\nbody_min_rate = 100\n").start();
    let mut s = TcpStream::connect(k.http).unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n").unwrap();
    // The read timeout paces the trickle; 40 rounds are 12 s, while 10,000 bytes need 2,000.
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..40 {
        let _ = s.write_all(b"aaaaa");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 408"), "{out:?}");
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).config(FAST_TIMEOUTS).start();
    let mut s = TcpStream::connect(k.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "closed after ~2s idle, took {waited:?}"
    );
}

#[test]
fn malformed_requests_get_400_never_a_crash() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let cases: &[&[u8]] = &[
        // (`/%zz`, `/%ff%fe`, `?q=%C3` are forwarded: evasion_tests.rs.)
        b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /..%c0%af HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        b"GET  HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ];
    for case in cases {
        let got = raw(k.http, case, Duration::from_secs(5));
        assert!(got.starts_with("HTTP/1.1 400"), "{:?} -> {got:?}", String::from_utf8_lossy(case));
    }
    let connect =
        raw(k.http, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", Duration::from_secs(5));
    assert!(connect.starts_with("HTTP/1.1 405"), "{connect}");
    // An absolute-form target never sends the request anywhere but the app.
    let abs = raw(
        k.http,
        b"GET http://evil.example/echo-headers HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(abs.starts_with("HTTP/1.1 200") && abs.contains("\"url\":\"/echo-headers\""), "{abs}");
    let ok = raw(k.http, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Duration::from_secs(5));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// An app that answers every request after 200 ms and tells the most requests it ever held at
/// once (`GET /max`).
fn counting_app() -> (common::Owned, String) {
    let script = r#"
const http = require('http');
let now = 0, max = 0;
const s = http.createServer((q, r) => {
  if (q.url === '/max') return r.end(JSON.stringify({ max }));
  now++; max = Math.max(max, now);
  setTimeout(() => { now--; r.end('ok'); }, 200);
});
s.listen(0, '127.0.0.1', () => console.log('listening ' + s.address().port));
"#;
    let (child, addr) = common::node_script(script);
    (child, format!("http://{addr}"))
}

#[tokio::test]
async fn http2_streams_cannot_take_the_apps_connections() {
    let (mut app, url) = counting_app();
    let k = Kevlar::guard(&url).config("[limits]\nmax_upstream_per_client = 4\nmax_upstream_connections = 6\n").start();
    let h2 = || reqwest::Client::builder().http2_prior_knowledge().no_proxy().build().unwrap();
    let burst = |c: reqwest::Client, n: usize| {
        let url = k.url("/slow");
        async move {
            let all = (0..n).map(|_| {
                let c = c.clone();
                let url = url.clone();
                async move { c.get(url).send().await.map(|r| r.status().as_u16()) }
            });
            futures_util::future::join_all(all).await
        }
    };
    let max = || async {
        let v: serde_json::Value = client().get(format!("{url}/max")).send().await.unwrap().json().await.unwrap();
        v["max"].as_u64().unwrap()
    };
    // 40 streams on one connection: 4 at a time reach the app, all are answered.
    let one = burst(h2(), 40).await;
    assert!(one.iter().all(|r| matches!(r, Ok(200))), "{one:?}");
    assert_eq!(max().await, 4, "one client connection holds at most 4 of the app's connections");
    // Three connections of 20: the total bound, 6.
    let (a, b, c) = tokio::join!(burst(h2(), 20), burst(h2(), 20), burst(h2(), 20));
    for r in a.iter().chain(&b).chain(&c) {
        assert!(matches!(r, Ok(200)), "{r:?}");
    }
    assert_eq!(max().await, 6, "at most 6 requests in flight to the app in all");
    let _ = app.kill();
    let _ = app.wait();
}
