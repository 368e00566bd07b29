//! Forwarding (RFC 9110 §7.6 intermediaries; RFC 7239 and the X-Forwarded-* convention): the app
//! learns the real client, a client cannot forge its address, every request carries an id, bodies
//! stream, and WebSocket upgrades pass through.

#![allow(clippy::unwrap_used)]

mod common;

use common::{client, DemoApp, Kevlar};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let r: Value = client()
        .get(k.url("/echo-headers"))
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Real-IP", "6.6.6.6")
        .header("Forwarded", "for=6.6.6.6")
        .header("X-Request-Id", "chosen-by-client")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let h = &r["headers"];
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert!(h.get("forwarded").is_none());
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], k.http.to_string());
    let id = h["x-request-id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert_ne!(id, "chosen-by-client");
    // And events name the peer, not the claimed address.
    client().get(k.url("/a%00b")).header("X-Forwarded-For", "6.6.6.6").send().await.unwrap();
    let e = k.wait_event(|e| e["kevlar"]["rule"] == "nul_byte");
    assert_eq!(e["source"]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_client_address() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).args(["--trusted-proxy", "127.0.0.0/8"]).start();
    let r: Value = client()
        .get(k.url("/echo-headers"))
        .header("X-Forwarded-For", "6.6.6.6, 198.51.100.7")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["headers"]["x-forwarded-for"], "6.6.6.6, 198.51.100.7, 127.0.0.1");
    assert_eq!(r["headers"]["x-real-ip"], "198.51.100.7", "right-most untrusted address");
    let bad = client().get(k.url("/a%00b")).header("X-Forwarded-For", "198.51.100.7").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let e = k.wait_event(|e| e["kevlar"]["rule"] == "nul_byte");
    assert_eq!(e["source"]["ip"], "198.51.100.7");
    let rid = bad.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(e["http"]["request"]["id"], rid.as_str(), "the event carries the request id");
}

#[tokio::test]
async fn request_bodies_stream_to_the_app() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    // 8 MiB in chunks, without a Content-Length: streamed, not gathered.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..128).map(|_| Ok(vec![b'x'; 64 * 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r: Value = client().post(k.url("/upload")).body(body).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["bytes"], 8 * 1024 * 1024);
}

#[tokio::test]
async fn websocket_upgrades_pass_through() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/ws", k.http)).await.unwrap();
    assert_eq!(resp.status(), 101);
    for msg in ["hello", "second message", &"x".repeat(5000)] {
        ws.send(tokio_tungstenite::tungstenite::Message::Text(msg.to_string())).await.unwrap();
        let back = ws.next().await.unwrap().unwrap();
        assert_eq!(back.into_text().unwrap(), msg);
    }
    ws.close(None).await.unwrap();
}
