//! Turning the client's request into the application's, and the application's response into the
//! client's: hop-by-hop headers per RFC 9110 §7.6.1, the X-Forwarded-* family, X-Request-Id.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{request, uri, Request, Uri, Version};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
fn remove_hop_by_hop(h: &mut HeaderMap) {
    // Headers the Connection header names are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ] {
        h.remove(n);
    }
}

/// Whether the request asks to switch protocols (WebSocket and friends), HTTP/1.1 style.
/// Only `websocket` is let through: any other protocol (`h2c`) would turn the connection into
/// a tunnel nobody inspects.
pub fn wants_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
        && h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

pub struct ForwardInfo {
    /// The client's address, rendered.
    pub client_value: HeaderValue,
    pub peer_ip: IpAddr,
    pub peer_trusted: bool,
    pub tls: bool,
    pub request_id: HeaderValue,
    pub upgrade: bool,
}

/// Rewrites the request head in place for the application at `authority`.
pub fn prepare<B>(
    parts: request::Parts,
    body: B,
    authority: &uri::Authority,
    info: &ForwardInfo,
) -> Result<Request<B>, http::Error> {
    let mut parts = parts;
    let upgrade_value = if info.upgrade { parts.headers.get(header::UPGRADE).cloned() } else { None };
    remove_hop_by_hop(&mut parts.headers);
    if let Some(up) = upgrade_value {
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, up);
    }
    // HTTP/2 requests carry the host in the URI; the application speaks HTTP/1.1.
    if !parts.headers.contains_key(header::HOST) {
        if let Some(a) = parts.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                parts.headers.insert(header::HOST, v);
            }
        }
    }
    let h = &mut parts.headers;
    let client = info.client_value.clone();
    if info.peer_trusted {
        let peer = info.peer_ip.to_string();
        let chain = h.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(", ");
        let v = if chain.is_empty() { peer } else { format!("{chain}, {peer}") };
        match HeaderValue::from_str(&v) {
            Ok(v) => {
                h.insert(X_FORWARDED_FOR, v);
            }
            Err(_) => {
                h.insert(X_FORWARDED_FOR, client.clone());
            }
        }
    } else {
        // From an untrusted peer these headers are the client's own claims: replace them.
        h.insert(X_FORWARDED_FOR, client.clone());
        h.remove(FORWARDED);
        h.remove(&X_FORWARDED_PROTO);
        h.remove(&X_FORWARDED_HOST);
    }
    if !h.contains_key(&X_FORWARDED_PROTO) {
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(if info.tls { "https" } else { "http" }));
    }
    if !h.contains_key(&X_FORWARDED_HOST) {
        if let Some(host) = h.get(header::HOST).cloned() {
            h.insert(X_FORWARDED_HOST, host);
        }
    }
    h.insert(X_REAL_IP, client);
    h.insert(X_REQUEST_ID, info.request_id.clone());
    let pq = match parts.uri.path_and_query() {
        Some(pq) if pq.as_str().starts_with('/') => pq.clone(),
        _ => uri::PathAndQuery::from_static("/"),
    };
    let mut up = uri::Parts::default();
    up.scheme = Some(uri::Scheme::HTTP);
    up.authority = Some(authority.clone());
    up.path_and_query = Some(pq);
    parts.uri = Uri::from_parts(up).map_err(http::Error::from)?;
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, body))
}

/// Cleans the application's response head for the client.
pub fn clean_response(h: &mut HeaderMap, upgraded: bool) {
    let upgrade = if upgraded { h.get(header::UPGRADE).cloned() } else { None };
    remove_hop_by_hop(h);
    if let Some(up) = upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, up);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> request::Parts {
        let mut b = Request::builder().uri("/p?q=1");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn info(trusted: bool, upgrade: bool) -> ForwardInfo {
        ForwardInfo {
            client_value: HeaderValue::from_static("198.51.100.7"),
            peer_ip: "10.0.0.1".parse().unwrap(),
            peer_trusted: trusted,
            tls: true,
            request_id: HeaderValue::from_static("abc"),
            upgrade,
        }
    }

    #[test]
    fn untrusted_peer_headers_are_replaced_and_hop_by_hop_removed() {
        let p = req(&[
            ("host", "shop.example"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "gopher"),
            ("connection", "close, x-secret"),
            ("x-secret", "s"),
            ("te", "trailers"),
            ("x-request-id", "mine"),
        ]);
        let a: uri::Authority = "127.0.0.1:3000".parse().unwrap();
        let r = prepare(p, (), &a, &info(false, false)).unwrap();
        let h = r.headers();
        assert_eq!(h["x-forwarded-for"], "198.51.100.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(h["x-request-id"], "abc");
        assert!(h.get("connection").is_none() && h.get("x-secret").is_none() && h.get("te").is_none());
        assert_eq!(r.uri().to_string(), "http://127.0.0.1:3000/p?q=1");
    }

    #[test]
    fn trusted_peer_chain_is_extended_and_upgrade_kept() {
        let p = req(&[
            ("host", "h"),
            ("x-forwarded-for", "198.51.100.7"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
        ]);
        let a: uri::Authority = "127.0.0.1:3000".parse().unwrap();
        let r = prepare(p, (), &a, &info(true, true)).unwrap();
        assert_eq!(r.headers()["x-forwarded-for"], "198.51.100.7, 10.0.0.1");
        assert_eq!(r.headers()["upgrade"], "websocket");
        assert_eq!(r.headers()["connection"], "upgrade");
    }
}
