use super::*;

fn sri(body: &str) -> (&'static str, bool, i64) {
    test_of(&grade(&html_site(&[], body)), "subresource-integrity")
}

#[test]
fn not_html_or_no_scripts() {
    assert_eq!(
        test_of(&grade(&site(&[("content-type", "application/json")], "{}")), "subresource-integrity").0,
        "sri-not-implemented-response-not-html"
    );
    assert_eq!(
        test_of(&grade(&site(&[("content-type", "text/html ; charset=utf-8")], "")), "subresource-integrity").0,
        "sri-not-implemented-response-not-html",
        "media type must match exactly"
    );
    assert_eq!(sri("<p>no scripts</p>"), ("sri-not-implemented-but-no-scripts-loaded", true, 0));
    assert_eq!(
        sri("<!-- <script src=http://x.example/a.js></script> -->"),
        ("sri-not-implemented-but-no-scripts-loaded", true, 0)
    );
}

#[test]
fn same_origin_scripts() {
    assert_eq!(
        sri("<script src=/app.js></script>"),
        ("sri-not-implemented-but-all-scripts-loaded-from-secure-origin", true, 0)
    );
    assert_eq!(sri("<script>inline()</script>").0, "sri-not-implemented-but-all-scripts-loaded-from-secure-origin");
    assert_eq!(
        sri(r#"<script src="/app.js" integrity="sha384-x"></script>"#),
        ("sri-implemented-and-all-scripts-loaded-securely", true, 5)
    );
    assert_eq!(
        sri(r#"<script src="https://static.example.com/a.js" integrity="sha384-x"></script>"#).0,
        "sri-implemented-and-all-scripts-loaded-securely",
        "same registrable domain"
    );
}

#[test]
fn external_script_without_integrity() {
    assert_eq!(
        sri(r#"<script src="https://cdn.other.net/a.js"></script>"#),
        ("sri-not-implemented-but-external-scripts-loaded-securely", false, -5)
    );
    assert_eq!(
        sri(r#"<script src="http://cdn.other.net/a.js"></script>"#),
        ("sri-not-implemented-and-external-scripts-not-loaded-securely", false, -50)
    );
    assert_eq!(
        sri(r#"<script src="//cdn.other.net/a.js"></script>"#).0,
        "sri-not-implemented-and-external-scripts-not-loaded-securely"
    );
    assert_eq!(
        sri(r#"<script src="//example.com/a.js"></script>"#).0,
        "sri-not-implemented-and-external-scripts-not-loaded-securely",
        "protocol-relative counts as external"
    );
}

#[test]
fn external_script_with_integrity() {
    let secure = r#"<script src="https://cdn.other.net/a.js" integrity="sha384-x" crossorigin="anonymous"></script>"#;
    assert_eq!(sri(secure), ("sri-implemented-and-external-scripts-loaded-securely", true, 5));
    let insecure = r#"<SCRIPT SRC='http://cdn.other.net/a.js' INTEGRITY=sha384-x></SCRIPT>"#;
    assert_eq!(sri(insecure), ("sri-implemented-but-external-scripts-not-loaded-securely", false, -20));
    assert_eq!(
        sri(r#"<script src="https://cdn.other.net/a.js" integrity=""></script>"#).0,
        "sri-not-implemented-but-external-scripts-loaded-securely",
        "empty integrity"
    );
}

#[test]
fn worst_script_wins() {
    let body = r#"<script src="https://cdn.other.net/a.js" integrity="x"></script><script src="http://cdn.other.net/b.js"></script><script src="https://cdn.other.net/c.js"></script>"#;
    assert_eq!(sri(body).0, "sri-not-implemented-and-external-scripts-not-loaded-securely");
}

#[test]
fn which_script_tags_count() {
    assert_eq!(
        sri("<template><script src=http://x.example/a.js></script></template>").0,
        "sri-not-implemented-but-no-scripts-loaded"
    );
    assert_eq!(
        sri("<svg><script href=x></script></svg>").0,
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
        "an SVG script has no src"
    );
    assert_eq!(
        sri("<noscript><script src=http://x.example/a.js></script></noscript>").0,
        "sri-not-implemented-and-external-scripts-not-loaded-securely"
    );
    assert_eq!(
        sri("<textarea><script src=http://x.example/a.js></script></textarea>").0,
        "sri-not-implemented-but-no-scripts-loaded"
    );
    assert_eq!(
        sri(r#"<script>document.write("<script src=http://x.example/a.js></scr" + "ipt>")</script>"#).0,
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    );
    assert_eq!(
        sri("<script src=\"http://x.example/a.js\"").0,
        "sri-not-implemented-but-no-scripts-loaded",
        "a tag cut by the end is dropped"
    );
}

#[test]
fn base_href_and_odd_sources() {
    assert_eq!(
        sri(r#"<base href="https://cdn.other.net/"><script src="/a.js"></script>"#).0,
        "sri-not-implemented-but-external-scripts-loaded-securely"
    );
    assert_eq!(
        sri(r#"<base href="/relative/"><script src="/a.js"></script>"#).0,
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    );
    assert_eq!(
        sri(r#"<script src="HTTP://CDN.OTHER.NET/a.js"></script>"#).0,
        "sri-not-implemented-and-external-scripts-not-loaded-securely"
    );
    assert_eq!(
        sri(r#"<script src="https:cdn.other.net/a.js"></script>"#).0,
        "sri-not-implemented-but-external-scripts-loaded-securely"
    );
    assert_eq!(
        sri(r#"<script src="data:text/javascript,1"></script>"#).0,
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    );
    assert_eq!(
        sri(r#"<script src="ht&#116;p://cdn.other.net/a.js"></script>"#).0,
        "sri-not-implemented-and-external-scripts-not-loaded-securely"
    );
}

#[test]
fn relative_scripts_over_http_are_not_secure() {
    let r = Retrieved {
        host: "example.com".to_owned(),
        http: Some(single(
            "http://example.com/",
            &[("content-type", "text/html")],
            r#"<script src="/a.js" integrity="x"></script>"#,
        )),
        ..Retrieved::default()
    };
    assert_eq!(result(&r, "subresource-integrity"), "sri-not-implemented-but-all-scripts-loaded-from-secure-origin");
}

#[test]
fn hosts_without_a_registrable_domain_match_each_other() {
    let mut r = html_site(&[], r#"<script src="https://127.0.0.1/a.js"></script>"#);
    r.host = "localhost".to_owned();
    assert_eq!(result(&r, "subresource-integrity"), "sri-not-implemented-but-all-scripts-loaded-from-secure-origin");
}

#[test]
fn a_json_body_is_read_as_its_value() {
    let body = r#""<script src='http://cdn.other.net/a.js'></script>""#;
    assert_eq!(sri(body).0, "sri-not-implemented-and-external-scripts-not-loaded-securely");
    assert_eq!(
        sri("{\"a\": \"<script src='http://x.example/a.js'></script>\"}").0,
        "sri-not-implemented-but-no-scripts-loaded"
    );
}
