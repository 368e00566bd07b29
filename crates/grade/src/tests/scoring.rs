use super::*;
use crate::{grade_for_score, score_of, Outcome};

#[test]
fn grade_chart() {
    let cases = [
        (150, "A+"),
        (100, "A+"),
        (99, "A"),
        (90, "A"),
        (89, "A-"),
        (85, "A-"),
        (80, "B+"),
        (79, "B"),
        (70, "B"),
        (65, "B-"),
        (60, "C+"),
        (50, "C"),
        (45, "C-"),
        (40, "D+"),
        (30, "D"),
        (25, "D-"),
        (24, "F"),
        (0, "F"),
        (-40, "F"),
    ];
    for (score, letter) in cases {
        assert_eq!(grade_for_score(score), letter, "score {score}");
    }
}

#[test]
fn bonuses_count_only_when_penalties_leave_ninety() {
    assert_eq!(score_of([5, 10, -10]), 105);
    assert_eq!(score_of([5, 10, -15]), 85, "penalties alone leave 85: bonuses dropped");
    assert_eq!(score_of([-20, -25, -50, -50]), 0, "never below zero");
    assert_eq!(score_of([]), 100);
}

#[test]
fn a_site_without_any_header_over_https() {
    let report = grade(&site(&[], ""));
    let results: Vec<(&str, &str, i64)> = report.tests.iter().map(|t| (t.name, t.result, t.modifier)).collect();
    assert_eq!(
        results,
        vec![
            ("content-security-policy", "csp-not-implemented", -25),
            ("cookies", "cookies-not-found", 0),
            ("cross-origin-resource-sharing", "cross-origin-resource-sharing-not-implemented", 0),
            ("redirection", "redirection-to-https", 0),
            ("referrer-policy", "referrer-policy-not-implemented", 0),
            ("strict-transport-security", "hsts-not-implemented", -20),
            ("subresource-integrity", "sri-not-implemented-response-not-html", 0),
            ("x-content-type-options", "x-content-type-options-not-implemented", -5),
            ("x-frame-options", "x-frame-options-not-implemented", -20),
            ("cross-origin-resource-policy", "corp-not-implemented", 0),
        ]
    );
    assert_eq!((report.score, report.grade.as_str()), (30, "D"));
    assert!(report.tests.iter().all(|t| !t.description.is_empty() && !t.description.contains('<')));
}

#[test]
fn helmet_defaults_grade_a_plus() {
    let body = "<!doctype html><html><head><script src=\"/app.js\"></script></head></html>";
    let report = grade(&html_site(&HELMET, body));
    assert_eq!(
        test_of(&report, "content-security-policy"),
        ("csp-implemented-with-unsafe-inline-in-style-src-only", true, 0)
    );
    assert_eq!(test_of(&report, "x-frame-options"), ("x-frame-options-implemented-via-csp", true, 5));
    assert_eq!(test_of(&report, "referrer-policy"), ("referrer-policy-private", true, 5));
    assert_eq!(test_of(&report, "cross-origin-resource-policy"), ("corp-implemented-with-same-origin", true, 10));
    assert_eq!(test_of(&report, "strict-transport-security").0, "hsts-implemented-max-age-at-least-six-months");
    assert_eq!(
        test_of(&report, "subresource-integrity").0,
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    );
    assert_eq!((report.score, report.grade.as_str()), (120, "A+"));
}

#[test]
fn site_down_still_reports() {
    let down = Retrieved { host: "example.com".to_owned(), ..Retrieved::default() };
    assert!(down.site_down());
    assert_eq!(down.final_status(), None);
    let report = grade(&down);
    assert_eq!(test_of(&report, "content-security-policy").0, "csp-not-implemented");
    assert_eq!(test_of(&report, "redirection").0, "redirection-not-needed-no-http");
    assert_eq!(test_of(&report, "strict-transport-security").0, "hsts-not-implemented-no-https");
}

#[test]
fn http_only_site_is_used_for_the_tests() {
    let r = Retrieved {
        host: "example.com".to_owned(),
        http: Some(single("http://example.com/", &[("x-frame-options", "DENY")], "")),
        ..Retrieved::default()
    };
    assert_eq!(r.final_status(), Some(200));
    let report = grade(&r);
    assert_eq!(test_of(&report, "x-frame-options").0, "x-frame-options-sameorigin-or-deny");
    assert_eq!(test_of(&report, "redirection").0, "redirection-missing");
    assert_eq!(test_of(&report, "strict-transport-security").0, "hsts-not-implemented-no-https");
}

#[test]
fn every_outcome_has_a_name_and_plain_text() {
    let all = [
        Outcome::CspImplementedWithNoUnsafeDefaultSrcNone,
        Outcome::CspHeaderInvalid,
        Outcome::SriNotImplementedResponseNotHtml,
        Outcome::HtmlNotParseable,
        Outcome::HstsPreloaded,
        Outcome::CookiesSessionWithoutSecureFlag,
        Outcome::XFrameOptionsImplementedViaCsp,
        Outcome::RedirectionAllRedirectsPreloaded,
        Outcome::ReferrerPolicyHeaderInvalid,
        Outcome::XContentTypeOptionsHeaderInvalid,
        Outcome::CorsImplementedWithUniversalAccess,
        Outcome::CorpHeaderInvalid,
    ];
    for outcome in all {
        assert!(!outcome.as_str().is_empty(), "{outcome:?}");
        assert!(!outcome.description().contains('<'), "{outcome:?}");
    }
    assert_eq!(Outcome::CorsImplementedWithUniversalAccess.modifier(), -50);
    assert_eq!(Outcome::CorpImplementedWithSameSite.as_str(), "corp-implemented-with-same-site");
}
