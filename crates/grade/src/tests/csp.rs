use super::*;
use crate::{parse_csp, parse_csp_list, CspError};

fn sources(policy: &str, directive: &str) -> Vec<String> {
    let csp = parse_csp(policy).unwrap_or_default();
    csp.get(directive).map(|s| s.iter().cloned().collect()).unwrap_or_default()
}

fn csp_result(policy: &str) -> &'static str {
    result(&html_site(&[("content-security-policy", policy)], ""), "content-security-policy")
}

#[test]
fn parses_and_lowercases() {
    let csp = parse_csp("Default-Src 'SELF' HTTPS://CDN.Example.com;  img-src data:").unwrap_or_default();
    let mut names: Vec<&str> = csp.directives().map(|(name, _)| name).collect();
    names.sort_unstable();
    assert_eq!(names, ["default-src", "img-src"]);
    assert_eq!(
        sources("Default-Src 'SELF' HTTPS://CDN.Example.com", "default-src"),
        ["'self'", "https://cdn.example.com"]
    );
}

#[test]
fn empty_source_list_is_none() {
    assert_eq!(sources("script-src; img-src 'self'", "script-src"), ["'none'"]);
    assert_eq!(sources("upgrade-insecure-requests; img-src 'self'", "upgrade-insecure-requests"), ["'none'"]);
}

#[test]
fn longer_sources_under_a_prefix_are_dropped() {
    assert_eq!(sources("script-src https://a.example https://a.example/x.js", "script-src"), ["https://a.example"]);
    assert_eq!(sources("script-src 'self' 'self'", "script-src"), ["'self'"]);
}

#[test]
fn invalid_policies() {
    assert_eq!(parse_csp("abc"), Err(CspError::TooShort(0)));
    assert_eq!(parse_csp(" \r\n "), Err(CspError::TooShort(0)));
    assert!(matches!(parse_csp("script-src 'self'; SCRIPT-SRC 'none'"), Err(CspError::DuplicateDirective(0, _))));
    assert_eq!(csp_result("img-src a; img-src b"), "csp-header-invalid");
    assert_eq!(csp_result(""), "csp-header-invalid");
}

#[test]
fn repeated_report_directives_are_noted() {
    let csp = parse_csp("default-src 'none'; report-uri /a; report-uri /b").unwrap_or_default();
    assert!(csp.has_duplicates());
    assert_eq!(csp.get("report-uri").map(|s| s.len()), Some(1));
    assert_eq!(
        csp_result("default-src 'none'; report-uri /a; report-uri /b"),
        "csp-implemented-but-duplicate-directives"
    );
}

#[test]
fn several_policies_keep_what_all_allow() {
    let csp = parse_csp_list(&["script-src 'self' https://a.example/", "script-src https://a.example/lib/x.js"]);
    let script: Vec<String> = csp.unwrap_or_default().get("script-src").into_iter().flatten().cloned().collect();
    assert_eq!(script, ["https://a.example/lib/x.js"]);
    let only_second = parse_csp_list(&["default-src 'self'", "img-src 'self'"]).unwrap_or_default();
    assert_eq!(
        only_second.get("img-src").map(|s| s.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["'none'".to_owned()])
    );
    assert_eq!(parse_csp_list(&["script-src /%zz", "script-src /%zz"]), Err(CspError::BadEscape));
}

#[test]
fn unsafe_inline_in_script_src() {
    assert_eq!(
        csp_result("default-src 'self'; script-src 'self' 'unsafe-inline'; object-src 'none'"),
        "csp-implemented-with-unsafe-inline"
    );
    assert_eq!(csp_result("script-src 'self' data:; object-src 'none'"), "csp-implemented-with-unsafe-inline");
    assert_eq!(csp_result("img-src 'self'"), "csp-implemented-with-unsafe-inline", "script-src unrestricted");
    assert_eq!(csp_result("script-src 'self'"), "csp-implemented-with-unsafe-inline", "object-src unrestricted");
    assert_eq!(csp_result("default-src 'self'; object-src https:"), "csp-implemented-with-unsafe-inline");
}

#[test]
fn nonces_hashes_and_strict_dynamic() {
    let nonce = "script-src 'nonce-abc' 'unsafe-inline'; object-src 'none'; style-src 'self'";
    assert_eq!(csp_result(nonce), "csp-implemented-with-no-unsafe");
    let dynamic = "script-src 'nonce-abc' 'strict-dynamic' https: 'self'; object-src 'none'; style-src 'self'";
    assert_eq!(csp_result(dynamic), "csp-implemented-with-no-unsafe");
    let without_nonce = "script-src 'strict-dynamic' 'self'; object-src 'none'";
    assert_eq!(csp_result(without_nonce), "csp-header-invalid");
    let hash = "default-src 'sha256-abc=' 'unsafe-inline' 'strict-dynamic' https:";
    assert_eq!(csp_result(hash), "csp-implemented-with-no-unsafe", "default-src shared by script, style and object");
}

#[test]
fn insecure_schemes_on_https_only() {
    let active = "default-src 'self'; connect-src http://api.example";
    assert_eq!(csp_result(active), "csp-implemented-with-insecure-scheme");
    let passive = "default-src 'self'; img-src http://img.example";
    assert_eq!(csp_result(passive), "csp-implemented-with-insecure-scheme-in-passive-content-only");
    let over_http = Retrieved {
        host: "example.com".to_owned(),
        http: Some(single("http://example.com/", &[("content-security-policy", active)], "")),
        ..Retrieved::default()
    };
    assert_eq!(result(&over_http, "content-security-policy"), "csp-implemented-with-no-unsafe");
}

#[test]
fn unsafe_eval_style_and_default_none() {
    assert_eq!(csp_result("default-src 'self'; script-src 'self' 'unsafe-eval'"), "csp-implemented-with-unsafe-eval");
    assert_eq!(
        csp_result("default-src 'self'; style-src 'unsafe-inline'"),
        "csp-implemented-with-unsafe-inline-in-style-src-only"
    );
    assert_eq!(csp_result("default-src 'none'"), "csp-implemented-with-no-unsafe-default-src-none");
    assert_eq!(csp_result("default-src 'none' 'self'"), "csp-implemented-with-no-unsafe");
}

#[test]
fn report_only_is_not_enough() {
    let r = html_site(&[("content-security-policy-report-only", "default-src 'none'")], "");
    let report = grade(&r);
    assert_eq!(test_of(&report, "content-security-policy"), ("csp-not-implemented-but-reporting-enabled", false, -25));
}

#[test]
fn policy_from_meta_tag() {
    let meta = r#"<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;">"#;
    assert_eq!(
        result(&html_site(&[], meta), "content-security-policy"),
        "csp-implemented-with-no-unsafe-default-src-none"
    );
    let plain = site(&[("content-type", "text/plain")], meta);
    assert_eq!(result(&plain, "content-security-policy"), "csp-not-implemented", "meta tags are read only in HTML");
    let framing_only = r#"<meta http-equiv="content-security-policy" content="frame-ancestors 'none'">"#;
    let report = grade(&html_site(&[], framing_only));
    assert_eq!(test_of(&report, "content-security-policy").0, "csp-not-implemented");
    assert_eq!(test_of(&report, "x-frame-options").0, "x-frame-options-not-implemented");
}

#[test]
fn header_and_meta_combine() {
    let meta = r#"<meta http-equiv="content-security-policy" content="script-src 'self'">"#;
    let r = html_site(&[("content-security-policy", "default-src 'self'; object-src 'none'")], meta);
    assert_eq!(result(&r, "content-security-policy"), "csp-implemented-with-no-unsafe");
    let combined = parse_csp_list(&["default-src 'self'; object-src 'none'", "script-src 'self'"]).unwrap_or_default();
    let script: Vec<&String> = combined.get("script-src").into_iter().flatten().collect();
    assert_eq!(script, ["'none'"], "a directive only the second policy sets keeps nothing");
    let bad_meta = r#"<meta http-equiv="content-security-policy" content="abc">"#;
    assert_eq!(
        result(&html_site(&[("content-security-policy", "default-src 'none'")], bad_meta), "content-security-policy"),
        "csp-header-invalid"
    );
}

#[test]
fn repeated_header_lines_fold_into_one_policy() {
    let r = html_site(
        &[("content-security-policy", "default-src 'none'"), ("content-security-policy", "img-src 'self'")],
        "",
    );
    assert_eq!(
        result(&r, "content-security-policy"),
        "csp-implemented-with-no-unsafe",
        "default-src gets 'none', and more"
    );
}

#[test]
fn frame_ancestors_stands_in_for_x_frame_options() {
    let r = html_site(
        &[("content-security-policy", "default-src 'none'; frame-ancestors *"), ("x-frame-options", "bogus")],
        "",
    );
    let report = grade(&r);
    assert_eq!(test_of(&report, "x-frame-options"), ("x-frame-options-implemented-via-csp", true, 5));
}

#[test]
fn policies_past_the_combined_limit_are_still_validated() {
    let mut many: Vec<String> =
        (0..crate::csp::MAX_COMBINED_POLICIES + 5).map(|_| "default-src 'none'".to_owned()).collect();
    assert!(parse_csp_list(&many).is_ok());
    many.push("img-src a; img-src b".to_owned());
    assert!(matches!(parse_csp_list(&many), Err(CspError::DuplicateDirective(_, _))));
    many.pop();
    many.push("abc".to_owned());
    assert!(matches!(parse_csp_list(&many), Err(CspError::TooShort(_))));
}
