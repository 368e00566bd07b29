//! The login parsers: the breached-password import (`HASH:COUNT` lines) and index reader, the
//! sshd and vsftpd log lines of `[[watch]]`, the credentials of a login request recognised by
//! its body (form, JSON, multipart) or its `Authorization` (Basic, Digest), the app's
//! `Kevlar-Event` reports and the reading of a 2xx answer's body. None may panic; the app's
//! headers never reach the client; every event is well formed.
#![no_main]

use kevlar_config::LoginsConfig;
use kevlar_core::{RequestMeta, RequestView};
use kevlar_shield::login::Logins;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kevlar_breach::import_hibp(data);
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = kevlar_shield::watch::parse_sshd(line);
        let _ = kevlar_shield::watch::parse_vsftpd(line);
    }
    let _ = kevlar_breach::Index::read(data);

    let logins = Logins::new(&LoginsConfig::default(), true);
    let meta = RequestMeta {
        ip: "192.0.2.1".parse().unwrap(),
        request_id: "r",
        method: "POST",
        path: "/login",
        query: None,
        user_agent: None,
    };
    let (head, body) = data.split_at(data.len().min(64));
    let mut headers = http::HeaderMap::new();
    let ct = match head.first().map(|b| b % 3) {
        Some(1) => "application/json",
        Some(2) => "multipart/form-data; boundary=XB",
        _ => "application/x-www-form-urlencoded",
    };
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(ct));
    if let Ok(v) = http::HeaderValue::from_bytes(head) {
        headers.insert(http::header::AUTHORIZATION, v.clone());
        headers.insert(http::header::COOKIE, v);
    }
    let view =
        RequestView { method: "POST", path: "/login", query: None, headers: &headers, body, body_complete: true };
    let seen = logins.on_request(&meta, &view, 1);
    let mut answer = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(head) {
        answer.insert("kevlar-event", v.clone());
        answer.insert(http::header::SET_COOKIE, v.clone());
        answer.insert(http::header::LOCATION, v);
    }
    let status = 200 + u16::from(head.first().copied().unwrap_or(0)) % 300;
    let mut deferred = None;
    let mut events = logins.on_response_full(&meta, seen.context.as_ref(), status, &mut answer, 2, &mut deferred);
    assert!(answer.get("kevlar-event").is_none());
    // A 2xx answer's body is read for tokens, errors and the form shown again.
    if let Some(d) = deferred {
        events.extend(logins.finish(d, body, 3));
    }
    // Every event reads back (the store and the sinks read them so).
    for e in &events {
        assert!(kevlar_core::SecurityEvent::from_json(&e.to_json()).is_ok());
    }
});
