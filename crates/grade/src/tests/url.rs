use crate::suffix::registrable_domain;
use crate::url::{base_of, parse_http, resolve, Base, Resolved};

fn host(url: &str) -> Option<String> {
    parse_http(url).map(|u| u.host)
}

#[test]
fn hosts_and_ports() {
    assert_eq!(host("https://User:Pw@Example.COM:8443/a?b#c"), Some("example.com".to_owned()));
    assert_eq!(host("https:example.com/x"), Some("example.com".to_owned()));
    assert_eq!(host(" \thttps://ex%41mple.com/"), Some("example.com".to_owned()));
    assert_eq!(host("http://[::1]:80/"), Some("[::1]".to_owned()));
    assert_eq!(host("http://0x7f.1/"), Some("127.0.0.1".to_owned()));
    assert_eq!(host("http://exa mple.com/"), None);
    assert_eq!(host("http://a:99999/"), None);
    assert_eq!(host("http://1.2.3.256.7/"), None);
    assert_eq!(host("https://"), None);
    let url = parse_http("http://a.example/login?next=/x").map(|u| (u.path, u.query));
    assert_eq!(url, Some(("/login".to_owned(), Some("next=/x".to_owned()))));
}

#[test]
fn references_against_a_base() {
    let base = base_of("https://cdn.example/dir/");
    assert!(matches!(base, Base::Http(_)));
    let on = |src: &str| match resolve(src, &base) {
        Some(Resolved::Http(u)) => format!("{}://{}", if u.https { "https" } else { "http" }, u.host),
        Some(Resolved::Other) => "other".to_owned(),
        None => "none".to_owned(),
    };
    assert_eq!(on("/a.js"), "https://cdn.example");
    assert_eq!(on("\\\\x.example/a.js"), "https://x.example");
    assert_eq!(on("https:a.js"), "https://cdn.example", "same scheme without slashes stays on the base");
    assert_eq!(on("http:a.example"), "http://a.example");
    assert_eq!(on("javascript:1"), "other");
    assert_eq!(resolve("/a.js", &Base::Blank), None);
    assert_eq!(base_of("/relative/"), Base::Blank);
    assert_eq!(base_of("file:///x/"), Base::Other);
}

#[test]
fn registrable_domains() {
    assert_eq!(registrable_domain("www.example.com").as_deref(), Some("example.com"));
    assert_eq!(registrable_domain("a.b.example.co.uk").as_deref(), Some("example.co.uk"));
    assert_eq!(registrable_domain("co.uk"), None);
    assert_eq!(registrable_domain("localhost"), None);
    assert_eq!(registrable_domain("foo.localhost").as_deref(), Some("foo.localhost"));
    assert_eq!(registrable_domain("127.0.0.1"), None);
}
