//! The admin API (OWASP ASVS V4 access control, V2 authentication): a generated token with mode
//! 0600, 401 without it or with a wrong one (each attempt recorded), events readable and
//! reportable, status, and no admin port off loopback without TLS.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{client, DemoApp, Kevlar};
use serde_json::{json, Value};

#[tokio::test]
async fn the_token_is_generated_private_and_required() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let meta = std::fs::metadata(k.data_dir.join("admin.token")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token = k.token();
    assert_eq!(token.len(), 64);
    let c = client();
    assert_eq!(c.get(k.admin_url("/healthz")).send().await.unwrap().status(), 200);
    let none = c.get(k.admin_url("/v1/status")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = c.get(k.admin_url("/v1/events")).bearer_auth(format!("{}x", &token[..63])).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = c.get(k.admin_url("/v1/status")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let s: Value = ok.json().await.unwrap();
    assert_eq!(s["upstream"][0], app.addr.to_string());
    let e = k.wait_event(|e| e["event"]["action"] == "authz_fail");
    assert_eq!(e["kevlar"]["resource"], "admin_api");
    assert!(!e.to_string().contains(&token[..16]), "the token never appears in an event");
    // The same token survives a restart.
    drop(k);
}

#[tokio::test]
async fn events_are_reported_and_queried_through_the_api() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    let t = k.token();
    let posted = c
        .post(k.admin_url("/v1/events"))
        .bearer_auth(&t)
        .json(&json!({"event": {"action": "authn_login_fail", "category": "authentication", "outcome": "failure", "severity": 3},
                       "source": {"ip": "203.0.113.9"}, "user": {"name": "ada"}, "message": "reported by the app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let bad = c
        .post(k.admin_url("/v1/events"))
        .bearer_auth(&t)
        .json(&json!({"event": {"action": "Not Valid"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let junk = c
        .post(k.admin_url("/v1/events"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), 400);

    let list: Value = c
        .get(k.admin_url("/v1/events?action=authn_login_fail&since=1h"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = list["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["user"]["name"], "ada");
    let by_ip: Value =
        c.get(k.admin_url("/v1/events?ip=203.0.113.9")).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
    assert_eq!(by_ip["events"].as_array().unwrap().len(), 1);
    let none: Value =
        c.get(k.admin_url("/v1/events?ip=198.51.100.1")).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
    assert_eq!(none["events"].as_array().unwrap().len(), 0);
    let badq = c.get(k.admin_url("/v1/events?sinse=1h")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(badq.status(), 400);

    // The CLI reads the same store, with the same filters.
    let cli = k.events(&["--action", "authn_login_fail", "--since", "1h"]);
    assert_eq!(cli.len(), 1);
    assert_eq!(cli[0]["source"]["ip"], "203.0.113.9");
    assert!(k.events(&["--ip", "203.0.113.9"]).len() == 1);
    assert!(k.events(&["--action", "sys_startup"]).len() == 1, "Kevlar records its own start");
}

#[test]
fn the_admin_api_is_not_served_off_loopback_without_tls() {
    let err = Kevlar::cmd(&["guard", "--upstream", "http://127.0.0.1:1", "--admin", "0.0.0.0:0"])
        .try_start()
        .err()
        .expect("must refuse");
    assert!(err.contains("is not a loopback address") && err.contains("TLS"), "{err}");
}
