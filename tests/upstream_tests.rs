//! Upstream failures (RFC 9110 §15.6.3 502, §15.6.5 504; OWASP Error Handling cheat sheet):
//! Kevlar's own pages carry the request id and leak nothing about the application behind it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{client, closed_port, DemoApp, Kevlar};

#[tokio::test]
async fn a_refusing_upstream_gets_a_502_page_that_leaks_nothing() {
    let port = closed_port();
    let k = Kevlar::guard(&format!("http://127.0.0.1:{port}")).start();
    let r = client().get(k.url("/account?x=1")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(r.headers().get("content-security-policy").is_some());
    let body = r.text().await.unwrap();
    assert!(body.contains(&rid), "the page names the request id");
    assert!(
        !body.contains(&port.to_string()) && !body.contains("127.0.0.1") && !body.to_lowercase().contains("refused"),
        "{body}"
    );
    let e = k.wait_event(|e| e["event"]["action"] == "sys_upstream_unavailable");
    assert_eq!(e["http"]["request"]["id"], rid.as_str());
    assert!(!k.stderr().contains("panicked"));
}

#[tokio::test]
async fn a_slow_upstream_gets_a_504() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).config("[limits]\nupstream_timeout = \"1s\"\n").start();
    let r = client().get(k.url("/slow?ms=5000")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(r.text().await.unwrap().contains(&rid));
    k.wait_event(|e| e["event"]["action"] == "sys_upstream_timeout");
    // A quick answer still passes.
    assert_eq!(client().get(k.url("/slow?ms=10")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn keep_alive_is_reused_and_many_requests_flow() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = c.clone();
        let url = k.url(&format!("/echo-headers?i={i}"));
        tasks.push(tokio::spawn(async move { c.get(url).send().await.unwrap().status() }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let status: serde_json::Value =
        c.get(k.admin_url("/v1/status")).bearer_auth(k.token()).send().await.unwrap().json().await.unwrap();
    assert!(status["proxy"]["requests"].as_u64().unwrap() >= 200, "{status}");
}

/// An app that counts the connections it accepted (`GET /conns`) and echoes the length of what
/// it was sent; `keepAliveTimeout` in milliseconds from the first argument.
const COUNTING_APP: &str = r#"
const http = require('http');
let conns = 0;
const s = http.createServer((req, res) => {
  let n = 0;
  req.on('data', (d) => { n += d.length; });
  req.on('end', () => res.end(req.url === '/conns' ? String(conns) : String(n)));
});
s.on('connection', () => { conns += 1; });
s.keepAliveTimeout = Number(process.env.KEEP_ALIVE_MS || 5000);
s.listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
"#;

fn counting_app(keep_alive_ms: u32) -> (common::Owned, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = common::Owned::spawn(
        std::process::Command::new("node")
            .args(["-e", COUNTING_APP])
            .env("KEEP_ALIVE_MS", keep_alive_ms.to_string())
            .stdout(std::process::Stdio::piped()),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().trim_start_matches("listening ").parse().unwrap();
    (child, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

#[tokio::test]
async fn connections_to_the_app_are_kept_and_reused() {
    let (_app, addr) = counting_app(5000);
    let k = Kevlar::guard(&format!("http://{addr}")).config("[proxy]\nworkers = 1\n").start();
    let c = client();
    for i in 0..100 {
        let r = c.get(k.url(&format!("/x?i={i}"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let conns: u32 = c.get(k.url("/conns")).send().await.unwrap().text().await.unwrap().parse().unwrap();
    assert!(conns <= 2, "101 requests one after another took {conns} connections to the app");
}

#[tokio::test]
async fn an_app_closing_idle_connections_at_once_loses_no_request() {
    // Node closes a keep-alive connection 1 ms after its last answer: Kevlar's next request
    // often finds the connection it kept just closed.
    let (_app, addr) = counting_app(1);
    let k = Kevlar::guard(&format!("http://{addr}")).config("[proxy]\nworkers = 1\n").start();
    let c = client();
    let mut failed = Vec::new();
    for i in 0..200usize {
        let body = "x".repeat(100 + i);
        let r = c.post(k.url("/submit")).body(body.clone()).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        if status != 200 || text != body.len().to_string() {
            failed.push(format!("#{i}: {status} {text}"));
        }
        if i % 2 == 0 {
            tokio::time::sleep(std::time::Duration::from_micros(900 + 50 * (i % 5) as u64)).await;
        }
    }
    assert!(failed.is_empty(), "{} of 200 POSTs failed: {:?}", failed.len(), &failed[..failed.len().min(5)]);
}
