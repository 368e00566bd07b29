use super::*;
use crate::Response;

fn one(pairs: &[(&str, &str)], name: &str) -> (&'static str, bool, i64) {
    test_of(&grade(&site(pairs, "")), name)
}

fn hsts(value: &str) -> &'static str {
    one(&[("strict-transport-security", value)], "strict-transport-security").0
}

#[test]
fn hsts_max_age() {
    assert_eq!(
        one(&[("strict-transport-security", "max-age=31536000")], "strict-transport-security"),
        ("hsts-implemented-max-age-at-least-six-months", true, 0)
    );
    assert_eq!(hsts("max-age=15552000; includeSubDomains; preload"), "hsts-implemented-max-age-at-least-six-months");
    assert_eq!(
        one(&[("strict-transport-security", "max-age=15551999")], "strict-transport-security"),
        ("hsts-implemented-max-age-less-than-six-months", false, -10)
    );
    assert_eq!(hsts("MAX-AGE=86400"), "hsts-implemented-max-age-less-than-six-months");
    assert_eq!(hsts("max-age= -1"), "hsts-implemented-max-age-less-than-six-months");
    assert_eq!(hsts("max-age=abc"), "hsts-implemented-max-age-at-least-six-months", "NaN is not below six months");
}

#[test]
fn hsts_invalid_or_missing() {
    assert_eq!(hsts("includeSubDomains"), "hsts-header-invalid");
    assert_eq!(hsts("max-age = 31536000"), "hsts-header-invalid");
    assert_eq!(hsts("max-age=31536000, max-age=31536000"), "hsts-header-invalid");
    assert_eq!(hsts(""), "hsts-header-invalid");
    let twice = [("strict-transport-security", "max-age=1"), ("strict-transport-security", "max-age=2")];
    assert_eq!(one(&twice, "strict-transport-security").0, "hsts-header-invalid", "repeated headers fold with a comma");
    assert_eq!(one(&[], "strict-transport-security"), ("hsts-not-implemented", false, -20));
}

#[test]
fn hsts_certificate_and_preload() {
    let mut r = site(&[("strict-transport-security", "max-age=31536000")], "");
    if let Some(s) = r.https.as_mut() {
        s.verified_tls = false;
    }
    assert_eq!(result(&r, "strict-transport-security"), "hsts-invalid-cert");
    r.preloaded = true;
    assert_eq!(test_of(&grade(&r), "strict-transport-security"), ("hsts-preloaded", true, 5));
    r.https = None;
    assert_eq!(result(&r, "strict-transport-security"), "hsts-not-implemented-no-https");
}

fn http_chain(urls: &[(&str, u16)]) -> Retrieved {
    let chain = urls.iter().map(|(url, status)| hop(url, *status, &[])).collect();
    let mut r = site(&[], "");
    r.http = Some(Session { chain, body: None, verified_tls: true });
    r
}

#[test]
fn redirection() {
    let to_https = http_chain(&[("http://example.com/", 301), ("https://example.com/", 200)]);
    assert_eq!(test_of(&grade(&to_https), "redirection"), ("redirection-to-https", true, 0));
    let ports = http_chain(&[("http://example.com:8080/", 301), ("https://example.com:8443/", 200)]);
    assert_eq!(result(&ports, "redirection"), "redirection-to-https");
    assert_eq!(result(&http_chain(&[("http://example.com/", 200)]), "redirection"), "redirection-missing");
    let stays = http_chain(&[("http://example.com/", 301), ("http://example.com/home", 200)]);
    assert_eq!(result(&stays, "redirection"), "redirection-not-to-https");
    let http_first = http_chain(&[
        ("http://example.com/", 301),
        ("http://www.example.com/", 301),
        ("https://www.example.com/", 200),
    ]);
    assert_eq!(
        test_of(&grade(&http_first), "redirection"),
        ("redirection-not-to-https-on-initial-redirection", false, -10)
    );
    let off_host = http_chain(&[("http://example.com/", 301), ("https://www.example.com/", 200)]);
    assert_eq!(test_of(&grade(&off_host), "redirection"), ("redirection-off-host-from-http", false, -5));
}

#[test]
fn redirection_without_http_bad_certificate_and_preload() {
    let mut r = site(&[], "");
    r.http = None;
    assert_eq!(test_of(&grade(&r), "redirection"), ("redirection-not-needed-no-http", true, 0));
    let mut bad = http_chain(&[("http://example.com/", 301), ("https://example.com/", 200)]);
    if let Some(s) = bad.http.as_mut() {
        s.verified_tls = false;
    }
    assert_eq!(result(&bad, "redirection"), "redirection-invalid-cert");
    let mut preloaded = http_chain(&[("http://example.com/", 200)]);
    if let Some(s) = preloaded.http.as_mut() {
        s.chain.iter_mut().for_each(|h| h.preloaded = true);
    }
    assert_eq!(result(&preloaded, "redirection"), "redirection-all-redirects-preloaded");
}

#[test]
fn referrer_policy() {
    assert_eq!(
        one(&[("referrer-policy", "strict-origin-when-cross-origin")], "referrer-policy"),
        ("referrer-policy-private", true, 5)
    );
    assert_eq!(
        one(&[("referrer-policy", "no-referrer, unsafe-url")], "referrer-policy"),
        ("referrer-policy-unsafe", false, -5)
    );
    assert_eq!(
        one(&[("referrer-policy", "unsafe-url, bogus, Same-Origin ")], "referrer-policy").0,
        "referrer-policy-private",
        "the last known value"
    );
    assert_eq!(one(&[("referrer-policy", "bogus")], "referrer-policy"), ("referrer-policy-header-invalid", false, -5));
    assert_eq!(one(&[], "referrer-policy"), ("referrer-policy-not-implemented", true, 0));
    let meta = r#"<meta name="referrer" content="unsafe-url">"#;
    assert_eq!(
        result(&html_site(&[("referrer-policy", "no-referrer")], meta), "referrer-policy"),
        "referrer-policy-unsafe",
        "the meta tag comes last"
    );
}

#[test]
fn x_content_type_options() {
    assert_eq!(
        one(&[("x-content-type-options", "NoSniff")], "x-content-type-options"),
        ("x-content-type-options-nosniff", true, 0)
    );
    assert_eq!(
        one(&[("x-content-type-options", "nosniff"), ("x-content-type-options", "nosniff")], "x-content-type-options")
            .0,
        "x-content-type-options-header-invalid"
    );
    assert_eq!(
        one(&[("x-content-type-options", "")], "x-content-type-options").0,
        "x-content-type-options-not-implemented"
    );
}

#[test]
fn x_frame_options() {
    assert_eq!(one(&[("x-frame-options", "deny")], "x-frame-options"), ("x-frame-options-sameorigin-or-deny", true, 0));
    assert_eq!(
        one(&[("x-frame-options", "ALLOW-FROM https://a.example")], "x-frame-options"),
        ("x-frame-options-allow-from-origin", true, 0)
    );
    assert_eq!(
        one(&[("x-frame-options", "DENY, DENY")], "x-frame-options"),
        ("x-frame-options-header-invalid", false, -20)
    );
}

#[test]
fn cross_origin_resource_policy() {
    assert_eq!(
        one(&[("cross-origin-resource-policy", "same-site")], "cross-origin-resource-policy"),
        ("corp-implemented-with-same-site", true, 10)
    );
    assert_eq!(
        one(&[("cross-origin-resource-policy", "Cross-Origin")], "cross-origin-resource-policy"),
        ("corp-implemented-with-cross-origin", true, 0)
    );
    assert_eq!(
        one(&[("cross-origin-resource-policy", "bogus")], "cross-origin-resource-policy"),
        ("corp-header-invalid", false, -5)
    );
}

fn cors(status: u16, pairs: &[(&str, &str)]) -> (&'static str, bool, i64) {
    let mut r = site(&[], "");
    r.cors = Some(Response { url: "https://example.com/".to_owned(), status, headers: headers(pairs) });
    test_of(&grade(&r), "cross-origin-resource-sharing")
}

#[test]
fn cors_preflight() {
    assert_eq!(
        cors(204, &[("access-control-allow-origin", "*")]),
        ("cross-origin-resource-sharing-implemented-with-public-access", true, 0)
    );
    let reflected = [("access-control-allow-origin", crate::CORS_ORIGIN), ("access-control-allow-credentials", "true")];
    assert_eq!(cors(200, &reflected), ("cross-origin-resource-sharing-implemented-with-restricted-access", true, 0));
    assert_eq!(
        cors(404, &[("access-control-allow-origin", "*")]).0,
        "cross-origin-resource-sharing-not-implemented",
        "only a 2xx counts"
    );
    assert_eq!(cors(200, &[]).0, "cross-origin-resource-sharing-not-implemented");
}
