//! Security headers (OWASP Secure Headers Project; helmet 8.3 defaults): every response carries
//! helmet's twelve headers byte for byte and a conservative `Permissions-Policy`, `Server` and
//! `X-Powered-By` are stripped, and each
//! header can be changed, removed, kept from the app or overridden, per path.

#![allow(clippy::unwrap_used)]

mod common;

use common::{client, DemoApp, Kevlar};

/// helmet 8.3's defaults, as its own test suite states them.
const HELMET: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
    ("referrer-policy", "no-referrer"),
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("x-content-type-options", "nosniff"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-permitted-cross-domain-policies", "none"),
    ("x-xss-protection", "0"),
];

#[tokio::test]
async fn every_response_carries_helmets_defaults_byte_for_byte() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    // Pages, JSON, errors from the app and Kevlar's own pages alike.
    for path in ["/", "/health", "/echo-headers", "/nope", "/%zz"] {
        let r = c.get(k.url(path)).send().await.unwrap();
        for (name, value) in HELMET {
            let got = r.headers().get(*name).map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(got.as_deref(), Some(*value), "{path}: {name}");
        }
        assert!(r.headers().get("server").is_none(), "{path}: Server must be stripped");
        assert!(r.headers().get("x-powered-by").is_none(), "{path}: X-Powered-By must be stripped");
    }
    // The app really does send them: without Kevlar they are there.
    let direct = c.get(format!("{}/health", app.url())).send().await.unwrap();
    assert_eq!(direct.headers()["x-powered-by"], "demo-app");
}

#[tokio::test]
async fn app_values_are_kept_by_default_and_overridden_on_request() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let r = client().get(k.url("/app-headers")).send().await.unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY", "keep: the app's value stays");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");

    let k2 = Kevlar::guard(&app.url())
        .config("[headers]\napp_values = \"override\"\n[headers.set]\n\"Referrer-Policy\" = { value = \"strict-origin\", app_values = \"keep\" }\n")
        .start();
    let r = client().get(k2.url("/app-headers")).send().await.unwrap();
    assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN", "override: Kevlar's value wins");
    assert_eq!(r.headers()["referrer-policy"], "same-origin", "per-header keep beats the global override");
}

/// Beyond helmet: a conservative Permissions-Policy on every response, the app's own kept (a video
/// call app that allows its camera is not broken), removable in the config.
#[tokio::test]
async fn a_conservative_permissions_policy_by_default_the_apps_own_kept() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    for path in ["/", "/nope"] {
        let r = c.get(k.url(path)).send().await.unwrap();
        let pp = r.headers()["permissions-policy"].to_str().unwrap().to_owned();
        for off in ["camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()", "browsing-topics=()"] {
            assert!(pp.split(", ").any(|f| f == off), "{path}: {off} missing from {pp}");
        }
        for used in ["fullscreen", "autoplay", "publickey-credentials-get", "picture-in-picture"] {
            assert!(!pp.contains(used), "{path}: {used} is used by ordinary pages: {pp}");
        }
    }
    let r = c.get(k.url("/app-headers")).send().await.unwrap();
    assert_eq!(r.headers()["permissions-policy"], "camera=(self)", "the app's own policy is kept");
    let k2 = Kevlar::guard(&app.url()).config("[headers.set]\n\"Permissions-Policy\" = false\n").start();
    let r = c.get(k2.url("/")).send().await.unwrap();
    assert!(r.headers().get("permissions-policy").is_none(), "removed when the config says false");
}

/// An enforced CSP and a report-only CSP at once: the current policy protects while a stricter
/// one is tried; per path too. Both at once with `report_only = true` is a config error.
#[tokio::test]
async fn an_enforced_and_a_report_only_policy_at_once() {
    let app = DemoApp::start();
    let cfg = r#"
[headers.csp_report_only.directives]
"script-src" = ["'self'", "'strict-dynamic'"]
"require-trusted-types-for" = ["'script'"]
[[headers.route]]
path = "/echo-headers"
[headers.route.csp_report_only]
use_defaults = false
[headers.route.csp_report_only.directives]
"default-src" = ["'none'"]
"#;
    let k = Kevlar::guard(&app.url()).config(cfg).start();
    let c = client();
    let r = c.get(k.url("/health")).send().await.unwrap();
    let enforced = r.headers()["content-security-policy"].to_str().unwrap();
    assert_eq!(enforced, HELMET[0].1, "the enforced policy is still helmet's");
    let trial = r.headers()["content-security-policy-report-only"].to_str().unwrap();
    assert!(trial.contains("script-src 'self' 'strict-dynamic';"), "{trial}");
    assert!(
        trial.contains("require-trusted-types-for 'script'") && trial.starts_with("default-src 'self';"),
        "{trial}"
    );
    let r = c.get(k.url("/echo-headers")).send().await.unwrap();
    assert_eq!(r.headers()["content-security-policy-report-only"], "default-src 'none'");
    assert_eq!(r.headers()["content-security-policy"], HELMET[0].1);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.toml");
    std::fs::write(
        &file,
        "[headers.csp]\nreport_only = true\n[headers.csp_report_only.directives]\n\"script-src\" = [\"'self'\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::KEVLAR).arg("validate").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("k.toml:3: headers.csp_report_only: the policy in `csp` is already report-only"), "{said}");
}

#[tokio::test]
async fn headers_can_be_changed_removed_added_and_overridden_per_path() {
    let app = DemoApp::start();
    let cfg = r#"
[headers]
remove = ["Server"]
[headers.set]
"X-Frame-Options" = "DENY"
"X-XSS-Protection" = false
"Permissions-Policy" = "camera=(), microphone=()"
[headers.csp.directives]
"script-src" = ["'self'", "https://cdn.example.com"]
"upgrade-insecure-requests" = false
[[headers.route]]
path = "/echo-headers"
[headers.route.set]
"X-Frame-Options" = false
[headers.route.csp]
report_only = true
"#;
    let k = Kevlar::guard(&app.url()).config(cfg).start();
    let c = client();
    let r = c.get(k.url("/health")).send().await.unwrap();
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.get("x-xss-protection").is_none());
    assert_eq!(h["permissions-policy"], "camera=(), microphone=()");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self' https://cdn.example.com;"), "{csp}");
    assert!(!csp.contains("upgrade-insecure-requests"), "{csp}");
    assert_eq!(h["x-powered-by"], "demo-app", "only Server is removed when `remove` says so");

    let r = c.get(k.url("/echo-headers")).send().await.unwrap();
    let h = r.headers();
    assert!(h.get("x-frame-options").is_none(), "route removes it");
    assert!(h.get("content-security-policy").is_none());
    assert!(h["content-security-policy-report-only"].to_str().unwrap().contains("https://cdn.example.com"));
}

/// `[headers] csp_report_path`: the policies name it, browsers' reports (both formats) are
/// answered by Kevlar and become one `csp_violation` event per violation, without query strings;
/// a body that is not a report is refused.
#[tokio::test]
async fn csp_violation_reports_are_received_deduplicated_and_never_reach_the_app() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url())
        .config("[headers]\ncsp_report_path = \"/csp-report\"\n[headers.csp_report_only]\nuse_defaults = false\ndirectives = { script-src = [\"'none'\"] }\n")
        .start();
    let c = client();
    let r = c.get(k.url("/")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.ends_with(";report-uri /csp-report"), "{csp}");
    let trial = r.headers()["content-security-policy-report-only"].to_str().unwrap().to_owned();
    assert_eq!(trial, "script-src 'none';report-uri /csp-report");

    let legacy = r#"{"csp-report":{"document-uri":"https://shop.example/cart?session=s3cret","violated-directive":"script-src-elem","blocked-uri":"https://evil.example/x.js?k=1","disposition":"enforce"}}"#;
    for _ in 0..3 {
        let r = c
            .post(k.url("/csp-report"))
            .header("Content-Type", "application/csp-report")
            .body(legacy)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert!(r.headers().contains_key("x-request-id"));
    }
    let api = r#"[{"type":"csp-violation","age":1,"url":"https://shop.example/","body":{"documentURL":"https://shop.example/","blockedURL":"inline","effectiveDirective":"script-src-elem","disposition":"report"}}]"#;
    let r =
        c.post(k.url("/csp-report")).header("Content-Type", "application/reports+json").body(api).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let second = k.wait_event(|e| e["event"]["action"] == "csp_violation" && e["kevlar"]["disposition"] == "report");
    assert_eq!(second["kevlar"]["blocked_uri"], "inline");
    let all = k.events(&["--action", "csp_violation"]);
    assert_eq!(all.len(), 2, "three posts of one violation are one event: {all:#?}");
    let first = &all[0];
    assert_eq!(first["kevlar"]["directive"], "script-src-elem");
    assert_eq!(first["kevlar"]["blocked_uri"], "https://evil.example/x.js");
    assert_eq!(first["kevlar"]["document_uri"], "https://shop.example/cart");
    assert!(!first.to_string().contains("s3cret"), "no query string is stored: {first}");

    let bad = c.post(k.url("/csp-report")).body("not a report").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    k.wait_event(|e| e["event"]["action"] == "input_validation_fail" && e["kevlar"]["reason"] == "bad_csp_report");
    let get = c.get(k.url("/csp-report")).send().await.unwrap();
    assert_eq!(get.status(), 405);
    let big = c.post(k.url("/csp-report")).body(vec![b'{'; 70 * 1024]).send().await.unwrap();
    assert_eq!(big.status(), 413);
    // The app never saw any of it: it answers this path with its JSON 404.
    let text = get.text().await.unwrap();
    assert!(!text.contains("not found"), "answered by Kevlar, not the app: {text}");
    let direct = c.get(format!("{}/csp-report", app.url())).send().await.unwrap();
    assert_eq!(direct.status(), 404, "the app itself does not know the path");
}
