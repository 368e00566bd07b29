//! The security-header policy: helmet 8's defaults byte for byte plus a conservative
//! `Permissions-Policy`, then the user's rules, compiled once into a list of header operations per
//! route, applied to every response.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use kevlar_config::{AppValues, CspConfig, HeaderRule, HeadersConfig};

/// helmet 8.3's Content-Security-Policy directives, in helmet's order.
pub const HELMET_CSP: &[(&str, &[&str])] = &[
    ("default-src", &["'self'"]),
    ("base-uri", &["'self'"]),
    ("font-src", &["'self'", "https:", "data:"]),
    ("form-action", &["'self'"]),
    ("frame-ancestors", &["'self'"]),
    ("img-src", &["'self'", "data:"]),
    ("object-src", &["'none'"]),
    ("script-src", &["'self'"]),
    ("script-src-attr", &["'none'"]),
    ("style-src", &["'self'", "https:", "'unsafe-inline'"]),
    ("upgrade-insecure-requests", &[]),
];

/// helmet 8.3's other headers and their values.
pub const HELMET_HEADERS: &[(&str, &str)] = &[
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

/// What Kevlar adds to helmet: a `Permissions-Policy` that turns off, for the page and every frame
/// in it, the powerful features an ordinary web app never asks for (sensors, camera, microphone,
/// location, payment, device access, screen capture, ad topics). Features that real pages use for
/// ordinary things (fullscreen, autoplay, picture-in-picture, passkeys, clipboard) are left alone,
/// so the default breaks no one; an app that needs one sets its own header (kept by default) or
/// `[headers.set] "Permissions-Policy"`. Only features in Chromium's list are named (an unknown
/// one is a console warning on every page).
pub const PERMISSIONS_POLICY: &str =
    "accelerometer=(), bluetooth=(), browsing-topics=(), camera=(), display-capture=(), \
geolocation=(), gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), payment=(), serial=(), usb=(), \
xr-spatial-tracking=()";

#[derive(Debug, Clone)]
enum Op {
    Set { name: HeaderName, value: HeaderValue, keep_app: bool },
    Remove(HeaderName),
}

/// The compiled operations for one route.
#[derive(Debug, Clone)]
struct Compiled {
    ops: Vec<Op>,
}

/// The whole policy: the default route and per-path overrides, longest path first.
#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    default: Compiled,
    routes: Vec<(String, Compiled)>,
}

#[derive(Debug, Clone)]
struct Draft {
    /// (lowercase name, value or None for removed, app_values)
    headers: Vec<(String, Option<String>, AppValues)>,
    csp: Vec<(String, Vec<String>)>,
    csp_report_only: bool,
    /// A second policy, report-only, beside the first (`[headers.csp_report_only]`).
    trial: Option<Vec<(String, Vec<String>)>>,
    remove: Vec<String>,
    /// `[headers] csp_report_path`: added as `report-uri` to a policy that names no report target.
    report: Option<String>,
}

impl Draft {
    fn helmet(app_values: AppValues) -> Self {
        Draft {
            headers: HELMET_HEADERS
                .iter()
                .chain(&[("permissions-policy", PERMISSIONS_POLICY)])
                .map(|(n, v)| ((*n).to_owned(), Some((*v).to_owned()), app_values))
                .collect(),
            csp: HELMET_CSP
                .iter()
                .map(|(n, s)| ((*n).to_owned(), s.iter().map(|x| (*x).to_owned()).collect()))
                .collect(),
            csp_report_only: false,
            trial: None,
            remove: Vec::new(),
            report: None,
        }
    }

    /// The report-only policy: helmet's directives (or none) with the given ones applied.
    fn apply_trial(&mut self, csp: &CspConfig) {
        let mut d = Draft::helmet(AppValues::Keep);
        d.apply_csp(csp);
        self.trial = Some(d.csp);
    }

    fn apply_rules(&mut self, rules: &[HeaderRule], default_app: AppValues) {
        for r in rules {
            let name = r.name.to_ascii_lowercase();
            let app = r.app_values.unwrap_or(default_app);
            if name == "content-security-policy" || name == "content-security-policy-report-only" {
                // A literal CSP string replaces the directive list.
                self.csp = match &r.value {
                    None => Vec::new(),
                    Some(v) => parse_csp(v),
                };
                self.csp_report_only = name.ends_with("report-only");
                continue;
            }
            match self.headers.iter_mut().find(|(n, _, _)| *n == name) {
                Some(slot) => {
                    slot.1 = r.value.clone();
                    slot.2 = app;
                }
                None => self.headers.push((name, r.value.clone(), app)),
            }
        }
    }

    fn apply_csp(&mut self, csp: &CspConfig) {
        if !csp.use_defaults {
            self.csp.clear();
        }
        for (name, sources) in &csp.directives {
            let pos = self.csp.iter().position(|(n, _)| n == name);
            match (pos, sources) {
                (Some(i), None) => {
                    self.csp.remove(i);
                }
                (Some(i), Some(s)) => self.csp[i].1 = s.clone(),
                (None, Some(s)) => self.csp.push((name.clone(), s.clone())),
                (None, None) => {}
            }
        }
        self.csp_report_only = csp.report_only;
    }

    /// The policy with `report-uri <csp_report_path>` when it names no report target itself.
    fn reporting(&self, csp: &[(String, Vec<String>)]) -> Vec<(String, Vec<String>)> {
        let mut out = csp.to_vec();
        if let Some(path) = &self.report {
            if !out.iter().any(|(n, _)| n == "report-uri" || n == "report-to") {
                out.push(("report-uri".to_owned(), vec![path.clone()]));
            }
        }
        out
    }

    fn compile(&self, app_values: AppValues) -> Compiled {
        let mut ops = Vec::new();
        for name in &self.remove {
            if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
                ops.push(Op::Remove(n));
            }
        }
        let csp_names = ["content-security-policy", "content-security-policy-report-only"];
        let (csp_on, csp_off) =
            if self.csp_report_only { (csp_names[1], csp_names[0]) } else { (csp_names[0], csp_names[1]) };
        if self.csp.is_empty() {
            ops.push(Op::Remove(HeaderName::from_static(csp_on)));
        } else if let Ok(value) = HeaderValue::from_str(&render_csp(&self.reporting(&self.csp))) {
            ops.push(Op::Set { name: HeaderName::from_static(csp_on), value, keep_app: app_values == AppValues::Keep });
        }
        // Both at once: the enforced policy protects while the report-only one is tried.
        if let Some(trial) = self.trial.as_ref().filter(|t| !t.is_empty() && !self.csp_report_only) {
            if let Ok(value) = HeaderValue::from_str(&render_csp(&self.reporting(trial))) {
                ops.push(Op::Set {
                    name: HeaderName::from_static(csp_off),
                    value,
                    keep_app: app_values == AppValues::Keep,
                });
            }
        }
        for (name, value, app) in &self.headers {
            let Ok(n) = HeaderName::from_bytes(name.as_bytes()) else { continue };
            match value {
                None => ops.push(Op::Remove(n)),
                Some(v) => {
                    if let Ok(value) = HeaderValue::from_str(v) {
                        ops.push(Op::Set { name: n, value, keep_app: *app == AppValues::Keep });
                    }
                }
            }
        }
        Compiled { ops }
    }
}

/// helmet's rendering: `name source source;name2 …`.
pub fn render_csp(directives: &[(String, Vec<String>)]) -> String {
    let mut out = String::new();
    for (i, (name, sources)) in directives.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name);
        for s in sources {
            out.push(' ');
            out.push_str(s);
        }
    }
    out
}

fn parse_csp(v: &str) -> Vec<(String, Vec<String>)> {
    v.split(';')
        .filter_map(|d| {
            let mut parts = d.split_whitespace();
            let name = parts.next()?.to_ascii_lowercase();
            Some((name, parts.map(str::to_owned).collect()))
        })
        .collect()
}

impl HeaderPolicy {
    pub fn from_config(c: &HeadersConfig) -> Self {
        let mut base = Draft::helmet(c.app_values);
        base.remove = c.remove.clone();
        base.report = c.csp_report_path.clone();
        base.apply_csp(&c.csp);
        if let Some(t) = &c.csp_report_only {
            base.apply_trial(t);
        }
        base.apply_rules(&c.set, c.app_values);
        let default = base.compile(c.app_values);
        let mut routes: Vec<(String, Compiled)> = c
            .routes
            .iter()
            .map(|r| {
                let mut d = base.clone();
                if let Some(csp) = &r.csp {
                    d.apply_csp(csp);
                }
                if let Some(t) = &r.csp_report_only {
                    d.apply_trial(t);
                }
                d.apply_rules(&r.set, c.app_values);
                (r.path.clone(), d.compile(c.app_values))
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        HeaderPolicy { default, routes }
    }

    fn for_path(&self, path: &str) -> &Compiled {
        for (prefix, c) in &self.routes {
            let matches = prefix.is_empty()
                || (path.starts_with(prefix.as_str())
                    && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/') | Some(b'?')));
            if matches {
                return c;
            }
        }
        &self.default
    }

    /// Applies the policy to a response's headers. `app_set` tells which headers came from the
    /// application (for "keep"); for Kevlar's own pages pass `false` so everything is set.
    pub fn apply(&self, path: &str, headers: &mut HeaderMap, from_app: bool) {
        let ops = &self.for_path(path).ops;
        headers.reserve(ops.len());
        for op in ops {
            match op {
                Op::Remove(n) => {
                    headers.remove(n);
                }
                Op::Set { name, value, keep_app } => match headers.entry(name) {
                    http::header::Entry::Occupied(mut o) => {
                        if !(from_app && *keep_app) {
                            o.insert(value.clone());
                        }
                    }
                    http::header::Entry::Vacant(v) => {
                        v.insert(value.clone());
                    }
                },
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kevlar_config::{HeadersConfig, RouteHeaders};

    const HELMET_CSP_STRING: &str = "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests";

    #[test]
    fn defaults_are_helmets_byte_for_byte_and_a_permissions_policy() {
        let p = HeaderPolicy::from_config(&HeadersConfig::default());
        let mut h = HeaderMap::new();
        h.insert("server", HeaderValue::from_static("nginx"));
        h.insert("x-powered-by", HeaderValue::from_static("Express"));
        p.apply("/", &mut h, true);
        assert_eq!(h["content-security-policy"], HELMET_CSP_STRING);
        for (n, v) in HELMET_HEADERS {
            assert_eq!(h[*n], *v, "{n}");
        }
        assert!(h.get("server").is_none());
        assert!(h.get("x-powered-by").is_none());
        assert_eq!(h["permissions-policy"], PERMISSIONS_POLICY);
        assert!(PERMISSIONS_POLICY.split(", ").all(|f| f.ends_with("=()") && !f.contains(' ')));
        assert_eq!(h.len(), 13);
    }

    #[test]
    fn keep_and_override_and_routes() {
        let mut c = HeadersConfig::default();
        c.set.push(HeaderRule {
            name: "X-Frame-Options".into(),
            value: Some("DENY".into()),
            app_values: Some(AppValues::Override),
        });
        c.set.push(HeaderRule { name: "X-XSS-Protection".into(), value: None, app_values: None });
        c.routes.push(RouteHeaders {
            path: "/docs".into(),
            set: vec![],
            csp_report_only: None,
            csp: Some(CspConfig {
                use_defaults: true,
                directives: vec![("script-src".into(), Some(vec!["'self'".into(), "'unsafe-inline'".into()]))],
                report_only: true,
            }),
        });
        let p = HeaderPolicy::from_config(&c);
        let mut h = HeaderMap::new();
        h.insert("x-frame-options", HeaderValue::from_static("ALLOWALL"));
        h.insert("referrer-policy", HeaderValue::from_static("origin"));
        p.apply("/", &mut h, true);
        assert_eq!(h["x-frame-options"], "DENY", "override wins over the app");
        assert_eq!(h["referrer-policy"], "origin", "keep leaves the app's value");
        assert!(h.get("x-xss-protection").is_none());
        let mut d = HeaderMap::new();
        p.apply("/docs/intro", &mut d, true);
        assert!(d.get("content-security-policy").is_none());
        assert!(d["content-security-policy-report-only"]
            .to_str()
            .unwrap()
            .contains("script-src 'self' 'unsafe-inline';"));
        let mut other = HeaderMap::new();
        p.apply("/docsx", &mut other, true);
        assert_eq!(other["content-security-policy"], HELMET_CSP_STRING);
    }
}
