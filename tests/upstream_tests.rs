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
