//! The cost of login monitoring per request (release build; `bash bench/logins.sh`), against the
//! detectors on the same request measured in the same run:
//! a page view with a session cookie, a login POST (form) answered 401, and two POSTs that are not
//! logins (a 1 KB comment form, a JSON API call) on paths that are not login paths — logins are
//! recognised by their body on any path, so these pay the recognition's byte scan.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use http::HeaderMap;
use kevlar_config::LoginsConfig;
use kevlar_core::{RequestMeta, RequestView};
use kevlar_detect::{Detector, InspectConfig, Inspector};
use kevlar_shield::login::Logins;

fn per_call(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

/// The detectors' time per call on one request, in ns.
fn detect_cost(inspector: &Inspector, v: &RequestView<'_>, n: u32) -> f64 {
    let mut findings = Vec::new();
    per_call(n, |_| {
        findings.clear();
        inspector.inspect(v, &mut findings);
    })
}

/// One request and its answer through the login monitor.
fn round(logins: &Logins, m: &RequestMeta<'_>, v: &RequestView<'_>, status: u16, now: i64) {
    let s = logins.on_request(m, v, now);
    let mut h = HeaderMap::new();
    let _ = logins.on_response(m, s.context.as_ref(), status, &mut h, now);
}

/// Memory: a million distinct usernames from rotating addresses, the default caps.
fn memory(form: &HeaderMap, login: &RequestMeta<'_>) -> String {
    let rss = || -> f64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()))
            .unwrap_or(0.0)
            / 1024.0
    };
    let fresh = Logins::new(&LoginsConfig::default(), true);
    let before = rss();
    let mut peak = before;
    for i in 0..1_000_000u32 {
        let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        let body = format!("username=user{i}%40example.com&password=Winter2024");
        let v = RequestView {
            method: "POST",
            path: "/login",
            query: None,
            headers: form,
            body: body.as_bytes(),
            body_complete: true,
        };
        let m = RequestMeta { ip: ip.parse().unwrap(), ..*login };
        round(&fresh, &m, &v, 401, i64::from(i));
        if i % 100_000 == 0 {
            peak = peak.max(rss());
        }
    }
    let (pairs, users, addrs, _) = fresh.sizes();
    format!(
        "1,000,000 usernames from rotating addresses: RSS {before:.0} MB -> peak {:.0} MB (tables: {pairs} pairs, {users} users, {addrs} addresses; cap 100,000 each)",
        peak.max(rss())
    )
}

fn main() {
    let n = 1_000_000;
    let logins = Logins::new(&LoginsConfig::default(), true);
    let inspector = Inspector::new(InspectConfig::default());
    let mut page = HeaderMap::new();
    page.insert(http::header::COOKIE, "theme=dark; sid=0123456789abcdef0123456789abcdef".parse().unwrap());
    page.insert(http::header::USER_AGENT, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".parse().unwrap());
    let mut form = page.clone();
    form.insert(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
    let body = b"email=alice%40example.com&password=correct+horse+battery+staple&remember=1";
    let meta = |path: &'static str, method: &'static str| RequestMeta {
        ip: "198.51.100.7".parse().unwrap(),
        request_id: "0123456789abcdef",
        method,
        path,
        query: None,
        user_agent: Some("Mozilla/5.0"),
    };
    let pv = RequestView {
        method: "GET",
        path: "/account",
        query: Some("tab=profile&page=2"),
        headers: &page,
        body: b"",
        body_complete: true,
    };
    let lv = RequestView { method: "POST", path: "/login", query: None, headers: &form, body, body_complete: true };
    let comment = format!("name=Ada&email=ada%40example.com&comment={}&subscribe=1", "lorem+ipsum+dolor+".repeat(52));
    let cv = RequestView {
        method: "POST",
        path: "/posts/42/comments",
        query: None,
        headers: &form,
        body: comment.as_bytes(),
        body_complete: true,
    };
    let mut json_h = page.clone();
    json_h.insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
    let api = br#"{"cart":{"items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}]},"coupon":"WINTER","note":"leave at the door"}"#;
    let av = RequestView {
        method: "POST",
        path: "/api/cart",
        query: None,
        headers: &json_h,
        body: api,
        body_complete: true,
    };
    let detect_page = detect_cost(&inspector, &pv, n);
    let detect_login = detect_cost(&inspector, &lv, n);
    // The page view's cookie belongs to a session a login set: it is hashed and looked up.
    {
        let m = meta("/login", "POST");
        let s = logins.on_request(&m, &lv, 0);
        let mut h = HeaderMap::new();
        h.insert(http::header::LOCATION, "/account".parse().unwrap());
        h.insert(http::header::SET_COOKIE, "sid=0123456789abcdef0123456789abcdef; HttpOnly".parse().unwrap());
        let _ = logins.on_response(&m, s.context.as_ref(), 302, &mut h, 0);
        let again = logins.on_request(&meta("/account", "GET"), &pv, 1);
        assert!(again.context.and_then(|c| c.session_user).is_some(), "the session is known");
    }
    let m = meta("/account", "GET");
    let logins_page = per_call(n, |_| round(&logins, &m, &pv, 200, 1));
    let m = meta("/login", "POST");
    let logins_login = per_call(n, |i| round(&logins, &m, &lv, 401, i64::from(i)));
    let m = meta("/posts/42/comments", "POST");
    let logins_comment = per_call(n, |_| round(&logins, &m, &cv, 201, 1));
    let detect_comment = detect_cost(&inspector, &cv, n / 4);
    let m = meta("/api/cart", "POST");
    let logins_api = per_call(n, |_| round(&logins, &m, &av, 200, 1));
    let detect_api = detect_cost(&inspector, &av, n);
    println!("{}", memory(&form, &meta("/login", "POST")));
    println!(
        "page view with a session cookie: logins {logins_page:.0} ns, detectors {detect_page:.0} ns (ratio {:.2})",
        logins_page / detect_page
    );
    println!(
        "login POST answered 401:         logins {logins_login:.0} ns, detectors {detect_login:.0} ns (ratio {:.2})",
        logins_login / detect_login
    );
    println!(
        "1 KB comment form, not a login:  logins {logins_comment:.0} ns, detectors {detect_comment:.0} ns (ratio {:.3})",
        logins_comment / detect_comment
    );
    println!(
        "JSON API POST, not a login:      logins {logins_api:.0} ns, detectors {detect_api:.0} ns (ratio {:.3})",
        logins_api / detect_api
    );
}
