use super::*;
use crate::cookie_date;

const HSTS: (&str, &str) = ("strict-transport-security", "max-age=31536000");

fn cookie_result(cookies: &[&str], hsts: bool) -> (&'static str, bool, i64) {
    let mut pairs: Vec<(&str, &str)> = cookies.iter().map(|c| ("set-cookie", *c)).collect();
    if hsts {
        pairs.push(HSTS);
    }
    test_of(&grade(&site(&pairs, "")), "cookies")
}

#[test]
fn no_cookies() {
    assert_eq!(cookie_result(&[], false), ("cookies-not-found", true, 0));
}

#[test]
fn without_secure() {
    assert_eq!(cookie_result(&["theme=dark"], false), ("cookies-without-secure-flag", false, -20));
    assert_eq!(cookie_result(&["theme=dark"], true), ("cookies-without-secure-flag-but-protected-by-hsts", false, -5));
}

#[test]
fn session_cookies() {
    assert_eq!(cookie_result(&["sessionid=1; HttpOnly"], false), ("cookies-session-without-secure-flag", false, -40));
    assert_eq!(
        cookie_result(&["sessionid=1; HttpOnly"], true),
        ("cookies-session-without-secure-flag-but-protected-by-hsts", false, -10)
    );
    assert_eq!(cookie_result(&["user_LOGIN=1; Secure"], true), ("cookies-session-without-httponly-flag", false, -30));
    assert_eq!(
        cookie_result(&["theme=1; Secure"], false).0,
        "cookies-secure-with-httponly-sessions",
        "not a session cookie"
    );
}

#[test]
fn same_site() {
    assert_eq!(
        cookie_result(&["a=1; Secure; SameSite=Lax"], false),
        ("cookies-secure-with-httponly-sessions-and-samesite", true, 5)
    );
    assert_eq!(cookie_result(&["a=1; Secure"], false), ("cookies-secure-with-httponly-sessions", true, 0));
    assert_eq!(cookie_result(&["a=1; Secure; SameSite=Bogus"], false), ("cookies-samesite-flag-invalid", false, -20));
    assert_eq!(cookie_result(&["a=1; SameSite=None"], true).0, "cookies-samesite-flag-invalid");
    assert_eq!(cookie_result(&["csrftoken=1; Secure"], true), ("cookies-anticsrf-without-samesite-flag", false, -20));
    assert_eq!(
        cookie_result(&["csrftoken=1; Secure; SameSite=Strict"], true).0,
        "cookies-secure-with-httponly-sessions-and-samesite"
    );
}

#[test]
fn the_worst_result_wins() {
    let cookies = ["theme=1", "sessionid=1; Secure", "csrf=1; Secure"];
    assert_eq!(cookie_result(&cookies, false).0, "cookies-session-without-httponly-flag");
}

#[test]
fn prefixes_and_domains_are_enforced() {
    assert_eq!(cookie_result(&["__Host-id=1; Path=/"], false).0, "cookies-not-found", "__Host- needs Secure");
    assert_eq!(cookie_result(&["__Host-id=1; Secure; Domain=example.com"], false).0, "cookies-not-found");
    assert_eq!(cookie_result(&["__Secure-id=1"], false).0, "cookies-not-found");
    assert_eq!(
        cookie_result(&["__Host-id=1; Secure; Path=/; SameSite=Lax"], false).0,
        "cookies-secure-with-httponly-sessions-and-samesite"
    );
    assert_eq!(cookie_result(&["a=1; Domain=other.example"], false).0, "cookies-not-found");
    assert_eq!(cookie_result(&["a=1; Domain=com"], false).0, "cookies-not-found", "public suffix");
    assert_eq!(cookie_result(&["a=1; Domain=.EXAMPLE.com"], false).0, "cookies-without-secure-flag");
    assert_eq!(cookie_result(&["heroku-session-affinity=1", "=x", "novalue"], false).0, "cookies-not-found");
}

#[test]
fn malformed_same_site_counts_even_when_the_cookie_is_dropped() {
    assert_eq!(
        cookie_result(&["__Host-x=1; SameSite"], false).0,
        "cookies-not-found",
        "no cookie left: not found wins"
    );
    assert_eq!(cookie_result(&["__Host-x=1; SameSite", "a=1; Secure"], false).0, "cookies-samesite-flag-invalid");
}

#[test]
fn cookies_along_the_redirects_count_and_replace() {
    let chain = vec![
        hop("https://example.com/", 302, &[("location", "/home"), ("set-cookie", "sessionid=old")]),
        hop("https://example.com/home", 200, &[("set-cookie", "sessionid=new; Secure; HttpOnly; SameSite=Lax")]),
    ];
    let r = Retrieved {
        host: "example.com".to_owned(),
        https: Some(Session { chain, body: None, verified_tls: true }),
        ..Retrieved::default()
    };
    assert_eq!(
        result(&r, "cookies"),
        "cookies-secure-with-httponly-sessions-and-samesite",
        "same name, domain and path"
    );
}

#[test]
fn expired_cookies_go_when_the_next_request_carries_them() {
    let chain = vec![
        hop("https://example.com/", 302, &[("location", "/home"), ("set-cookie", "sessionid=; Max-Age=0")]),
        hop("https://example.com/home", 200, &[]),
    ];
    let mut r = Retrieved {
        host: "example.com".to_owned(),
        https: Some(Session { chain: chain.clone(), body: None, verified_tls: true }),
        ..Retrieved::default()
    };
    assert_eq!(result(&r, "cookies"), "cookies-not-found");
    let last =
        vec![hop("https://example.com/", 200, &[("set-cookie", "sessionid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT")])];
    r.https = Some(Session { chain: last, body: None, verified_tls: true });
    assert_eq!(result(&r, "cookies"), "cookies-session-without-secure-flag", "still in the jar at the end");
}

#[test]
fn cookie_dates() {
    assert_eq!(cookie_date::parse("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(cookie_date::parse("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1_445_412_480_000));
    assert_eq!(cookie_date::parse("Wed, 21-Oct-15 07:28:00"), Some(1_445_412_480_000), "two-digit year");
    assert_eq!(cookie_date::parse("21 October 2015 7:28:0"), Some(1_445_412_480_000));
    assert_eq!(cookie_date::parse("Wed, 21 Oct 1500 07:28:00 GMT"), None, "before 1601");
    assert_eq!(cookie_date::parse("Wed, 32 Oct 2015 07:28:00 GMT"), None);
    assert_eq!(cookie_date::parse("tomorrow"), None);
}

#[test]
fn unverified_sessions_also_count_robots_and_cors_cookies() {
    let mut r = site(&[("set-cookie", "a=1; Secure; SameSite=Lax")], "");
    let robots = crate::Response {
        url: "https://example.com/robots.txt".to_owned(),
        status: 200,
        headers: headers(&[("set-cookie", "sessionid=1; Secure; SameSite=Lax")]),
    };
    r.robots = Some(robots);
    assert_eq!(
        result(&r, "cookies"),
        "cookies-secure-with-httponly-sessions-and-samesite",
        "verified: robots.txt is not read"
    );
    if let Some(s) = r.https.as_mut() {
        s.verified_tls = false;
    }
    assert_eq!(result(&r, "cookies"), "cookies-session-without-httponly-flag");
}
