//! The ten tests, and the simpler ones among them: HSTS, redirection, Referrer-Policy,
//! X-Content-Type-Options, X-Frame-Options, Cross-Origin-Resource-Policy and CORS.

use crate::cookies;
use crate::jsstr;
use crate::outcome::Outcome;
use crate::policy;
use crate::sri;
use crate::url;
use crate::view::View;

/// A test's name, result and whether it passed.
pub(crate) type Finding = (&'static str, Outcome, bool);

/// Six months in seconds (rounded down the way many sites do, to 180 days).
const SIX_MONTHS: f64 = 15_552_000.0;

/// Runs the ten tests in the Observatory's order.
pub(crate) fn run_all(view: &View<'_>) -> Vec<Finding> {
    let csp = csp(view);
    let hsts = hsts(view);
    let cookies = cookies::test(
        &view.used.as_ref().map(|u| u.headers.all("set-cookie")).unwrap_or_default(),
        &view.jar(),
        hsts.1,
    );
    let sri = match view.used.as_ref() {
        Some(u) => sri::test(u.scripts.as_ref(), &view.host, u.https),
        None => (Outcome::SriNotImplementedButNoScriptsLoaded, false),
    };
    let [cors, redirection, referrer, nosniff, framing, corp] =
        [cors(view), redirection(view), referrer(view), nosniff(view), framing(view, csp.frame_ancestors), corp(view)];
    vec![
        ("content-security-policy", csp.outcome, csp.pass),
        ("cookies", cookies.0, cookies.1),
        ("cross-origin-resource-sharing", cors.0, cors.1),
        ("redirection", redirection.0, redirection.1),
        ("referrer-policy", referrer.0, referrer.1),
        ("strict-transport-security", hsts.0, hsts.1),
        ("subresource-integrity", sri.0, sri.1),
        ("x-content-type-options", nosniff.0, nosniff.1),
        ("x-frame-options", framing.0, framing.1),
        ("cross-origin-resource-policy", corp.0, corp.1),
    ]
}

fn csp(view: &View<'_>) -> policy::Verdict {
    let input = view.used.as_ref().map(|u| policy::Input {
        header: u.headers.all("content-security-policy"),
        meta: &u.meta.csp,
        report_only: u.headers.first("content-security-policy-report-only").is_some_and(|v| !v.is_empty()),
        https: u.https,
    });
    policy::test(input.as_ref())
}

/// The first value of a header of the final answer, when it is not empty.
fn header<'v>(view: &'v View<'_>, name: &str) -> Option<&'v str> {
    view.used.as_ref()?.headers.first(name).filter(|v| !v.is_empty())
}

fn hsts(view: &View<'_>) -> (Outcome, bool) {
    let mut outcome = match &view.https {
        None => Outcome::HstsNotImplementedNoHttps,
        Some((_, false)) => Outcome::HstsInvalidCert,
        Some((headers, true)) => match headers.first("strict-transport-security") {
            Some(value) => hsts_value(value),
            None => Outcome::HstsNotImplemented,
        },
    };
    if view.https.is_some() && view.preloaded {
        outcome = Outcome::HstsPreloaded;
    }
    let pass = matches!(outcome, Outcome::HstsImplementedMaxAgeAtLeastSixMonths | Outcome::HstsPreloaded);
    (outcome, pass)
}

/// Reads a `Strict-Transport-Security` value (only its first 1024 characters).
fn hsts_value(value: &str) -> Outcome {
    let value = jsstr::utf16_prefix(value, 1024);
    if value.contains(',') {
        return Outcome::HstsHeaderInvalid;
    }
    let mut max_age: Option<Option<f64>> = None;
    for parameter in value.split(';').map(|p| jsstr::trim(p).to_lowercase()) {
        if let Some(after) = parameter.strip_prefix("max-age=") {
            max_age = Some(jsstr::parse_int(jsstr::utf16_slice(after, 0, 120)));
        }
    }
    match max_age {
        None => Outcome::HstsHeaderInvalid,
        Some(Some(seconds)) if seconds < SIX_MONTHS => Outcome::HstsImplementedMaxAgeLessThanSixMonths,
        // A max-age that is not a number compares as not below six months.
        Some(_) => Outcome::HstsImplementedMaxAgeAtLeastSixMonths,
    }
}

fn redirection(view: &View<'_>) -> (Outcome, bool) {
    let outcome = match view.http {
        None => Outcome::RedirectionNotNeededNoHttp,
        Some(session) if !session.verified_tls => Outcome::RedirectionInvalidCert,
        Some(session) => {
            let route: Vec<(Option<url::HttpUrl>, bool)> =
                session.chain.iter().map(|hop| (url::parse_http(&hop.url), hop.preloaded)).collect();
            let https_at = |i: usize| route.get(i).and_then(|(u, _)| u.as_ref()).map(|u| u.https);
            let host_at = |i: usize| route.get(i).and_then(|(u, _)| u.as_ref()).map(|u| u.host.clone());
            if route.iter().all(|(_, preloaded)| *preloaded) {
                Outcome::RedirectionAllRedirectsPreloaded
            } else if route.len() == 1 {
                Outcome::RedirectionMissing
            } else if https_at(route.len() - 1) != Some(true) {
                Outcome::RedirectionNotToHttps
            } else if https_at(1) == Some(false) {
                Outcome::RedirectionNotToHttpsOnInitialRedirection
            } else if https_at(0) == Some(false) && https_at(1) == Some(true) && host_at(0) != host_at(1) {
                Outcome::RedirectionOffHostFromHttp
            } else {
                Outcome::RedirectionToHttps
            }
        }
    };
    let pass = matches!(
        outcome,
        Outcome::RedirectionNotNeededNoHttp | Outcome::RedirectionAllRedirectsPreloaded | Outcome::RedirectionToHttps
    );
    (outcome, pass)
}

fn referrer(view: &View<'_>) -> (Outcome, bool) {
    const PRIVATE: [&str; 4] = ["no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"];
    const UNSAFE: [&str; 4] = ["origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade"];
    let Some(used) = &view.used else { return (Outcome::ReferrerPolicyNotImplemented, false) };
    let mut values = used.headers.all("referrer-policy");
    values.extend(used.meta.referrer.as_deref());
    if values.is_empty() {
        return (Outcome::ReferrerPolicyNotImplemented, true);
    }
    let joined = values.join(", ");
    let last_known = joined
        .rsplit(',')
        .map(|p| jsstr::trim(&p.to_lowercase()).to_owned())
        .find(|p| PRIVATE.contains(&p.as_str()) || UNSAFE.contains(&p.as_str()));
    match last_known.as_deref() {
        Some(p) if PRIVATE.contains(&p) => (Outcome::ReferrerPolicyPrivate, true),
        Some(_) => (Outcome::ReferrerPolicyUnsafe, false),
        None => (Outcome::ReferrerPolicyHeaderInvalid, false),
    }
}

fn nosniff(view: &View<'_>) -> (Outcome, bool) {
    match header(view, "x-content-type-options") {
        None => (Outcome::XContentTypeOptionsNotImplemented, false),
        Some(v) if jsstr::trim(jsstr::utf16_prefix(v, 256)).to_lowercase() == "nosniff" => {
            (Outcome::XContentTypeOptionsNosniff, true)
        }
        Some(_) => (Outcome::XContentTypeOptionsHeaderInvalid, false),
    }
}

fn framing(view: &View<'_>, frame_ancestors: bool) -> (Outcome, bool) {
    let outcome = if frame_ancestors {
        Outcome::XFrameOptionsImplementedViaCsp
    } else {
        match header(view, "x-frame-options").map(|v| jsstr::trim(jsstr::utf16_prefix(v, 1024)).to_lowercase()) {
            None => Outcome::XFrameOptionsNotImplemented,
            Some(v) if v == "deny" || v == "sameorigin" => Outcome::XFrameOptionsSameoriginOrDeny,
            Some(v) if v.starts_with("allow-from") => Outcome::XFrameOptionsAllowFromOrigin,
            Some(_) => Outcome::XFrameOptionsHeaderInvalid,
        }
    };
    let pass = !matches!(outcome, Outcome::XFrameOptionsNotImplemented | Outcome::XFrameOptionsHeaderInvalid);
    (outcome, pass)
}

fn corp(view: &View<'_>) -> (Outcome, bool) {
    if view.used.is_none() {
        return (Outcome::CorpNotImplemented, false);
    }
    let value =
        header(view, "cross-origin-resource-policy").map(|v| jsstr::trim(jsstr::utf16_prefix(v, 256)).to_lowercase());
    let outcome = match value.as_deref() {
        None | Some("") => Outcome::CorpNotImplemented,
        Some("same-site") => Outcome::CorpImplementedWithSameSite,
        Some("same-origin") => Outcome::CorpImplementedWithSameOrigin,
        Some("cross-origin") => Outcome::CorpImplementedWithCrossOrigin,
        Some(_) => Outcome::CorpHeaderInvalid,
    };
    (outcome, outcome != Outcome::CorpHeaderInvalid)
}

/// The reference reads the preflight's `Origin` from the request object of its HTTP client,
/// where it is never found: so an echoed origin with credentials counts as restricted access, and
/// universal access is never reported.
fn cors(view: &View<'_>) -> (Outcome, bool) {
    let Some(headers) = &view.cors else { return (Outcome::CorsNotImplemented, true) };
    let outcome = match headers.first("access-control-allow-origin").filter(|v| !v.is_empty()) {
        None => Outcome::CorsNotImplemented,
        Some(v) if jsstr::trim(jsstr::utf16_prefix(v, 256)).to_lowercase() == "*" => {
            Outcome::CorsImplementedWithPublicAccess
        }
        Some(_) => Outcome::CorsImplementedWithRestrictedAccess,
    };
    (outcome, outcome != Outcome::CorsImplementedWithUniversalAccess)
}
