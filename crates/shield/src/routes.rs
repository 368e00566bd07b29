//! The surface area, learned from traffic: method plus path template (ids collapsed: `/users/{n}`,
//! `/files/{uuid}`, `/t/{token}`), hits, status classes, first and last seen, and whether only
//! requests that detectors flagged ever asked for it (a probe-only path). Bounded.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteStats {
    pub hits: u64,
    /// Requests that detectors flagged.
    pub flagged: u64,
    /// By status code.
    pub statuses: BTreeMap<u16, u64>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Kevlar takes requests to this route for logins, and why.
    pub login: Option<String>,
}

impl RouteStats {
    /// Only flagged requests asked for it, and none of them found anything (404s only).
    pub fn probe_only(&self) -> bool {
        self.hits > 0 && self.flagged == self.hits
    }
}

/// `(method, template)`
pub type RouteKey = (String, String);

pub struct Inventory {
    /// By `"METHOD template"`, so a request looks its route up without allocating.
    routes: HashMap<String, (RouteKey, RouteStats)>,
    scratch: String,
    max: usize,
    pub dirty: bool,
}

const OTHER: &str = "(other)";

fn is_hex(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// One path segment as a template part.
fn segment(s: &str) -> &str {
    if s.is_empty() {
        return s;
    }
    if s.bytes().all(|c| c.is_ascii_digit()) {
        return "{n}";
    }
    if s.len() == 36 && s.bytes().filter(|c| *c == b'-').count() == 4 && is_hex(&s.replace('-', "")) {
        return "{uuid}";
    }
    if s.len() >= 16 && is_hex(s) {
        return "{hex}";
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let alnum = s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    if alnum && s.len() >= 20 && digits >= 2 {
        return "{token}";
    }
    if alnum && digits * 2 >= s.len() && digits >= 3 {
        return "{id}";
    }
    if s.contains('@') && s.contains('.') {
        return "{email}";
    }
    s
}

/// The template of a request path (raw, percent-encoded): `/users/42/orders/9f1c…` →
/// `/users/{n}/orders/{hex}`. Long paths keep their first 8 segments.
pub fn template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    template_into(path, &mut out);
    out
}

fn template_into(path: &str, out: &mut String) {
    for (i, seg) in path.split('/').enumerate() {
        if i == 0 {
            continue;
        }
        if i > 8 {
            out.push_str("/…");
            break;
        }
        out.push('/');
        let seg = if seg.len() > 64 { "{long}" } else { segment(seg) };
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
}

impl Inventory {
    pub fn new(max: usize) -> Self {
        Inventory { routes: HashMap::new(), max: max.max(1), dirty: false, scratch: String::new() }
    }

    pub fn observe(&mut self, method: &str, path: &str, status: u16, flagged: bool, now_ms: i64) {
        self.scratch.clear();
        self.scratch.push_str(method);
        self.scratch.push(' ');
        template_into(path, &mut self.scratch);
        if !self.routes.contains_key(self.scratch.as_str()) {
            let mut tmpl = self.scratch[method.len() + 1..].to_owned();
            if self.routes.len() >= self.max {
                tmpl = OTHER.to_owned();
                self.scratch.truncate(method.len() + 1);
                self.scratch.push_str(OTHER);
            }
            self.routes.entry(self.scratch.clone()).or_insert_with(|| {
                ((method.to_owned(), tmpl), RouteStats { first_seen_ms: now_ms, ..Default::default() })
            });
        }
        let Some((_, r)) = self.routes.get_mut(self.scratch.as_str()) else { return };
        r.hits += 1;
        if flagged {
            r.flagged += 1;
        }
        *r.statuses.entry(status).or_default() += 1;
        r.last_seen_ms = now_ms;
        self.dirty = true;
    }

    /// Notes that requests to this route are taken for logins, and why.
    pub fn mark_login(&mut self, method: &str, path: &str, why: &str) {
        let k = format!("{method} {}", template(path));
        if let Some((_, r)) = self.routes.get_mut(&k) {
            if r.login.as_deref() != Some(why) {
                r.login = Some(why.to_owned());
                self.dirty = true;
            }
        }
    }

    /// Requests to this route have been taken for logins.
    pub fn is_login(&self, method: &str, path: &str) -> bool {
        let k = format!("{method} {}", template(path));
        self.routes.get(&k).is_some_and(|(_, r)| r.login.is_some())
    }

    pub fn knows(&self, method: &str, path: &str) -> bool {
        let k = format!("{method} {}", template(path));
        self.routes.get(&k).is_some_and(|(_, r)| !r.probe_only() && r.statuses.keys().any(|s| *s < 400))
    }

    pub fn insert(&mut self, key: RouteKey, stats: RouteStats) {
        self.routes.insert(format!("{} {}", key.0, key.1), (key, stats));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RouteKey, &RouteStats)> {
        self.routes.values().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// One route as the admin API (`/v1/routes`), `kevlar routes` and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteView {
    pub method: String,
    /// The path template (`/users/{n}`).
    pub route: String,
    pub hits: u64,
    /// Requests that detectors flagged.
    pub flagged: u64,
    /// By status code (as text, the JSON object's keys).
    pub statuses: BTreeMap<String, u64>,
    pub first_seen: String,
    pub last_seen: String,
    /// Not seen for longer than `routes.stale_after`.
    pub stale: bool,
    pub probe_only: bool,
    /// Why Kevlar takes requests to it for logins, when it does.
    pub login: Option<String>,
}

/// The inventory as `kevlar routes` shows it: busiest first, with flags.
pub fn report<'a>(
    routes: impl Iterator<Item = (&'a RouteKey, &'a RouteStats)>,
    now_ms: i64,
    stale_ms: i64,
) -> Vec<RouteView> {
    let mut rows: Vec<(&RouteKey, &RouteStats)> = routes.collect();
    rows.sort_by(|a, b| b.1.hits.cmp(&a.1.hits).then(a.0.cmp(b.0)));
    rows.into_iter()
        .map(|((method, template), r)| RouteView {
            method: method.clone(),
            route: template.clone(),
            hits: r.hits,
            flagged: r.flagged,
            statuses: r.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            first_seen: kevlar_core::time::rfc3339_ms(r.first_seen_ms),
            last_seen: kevlar_core::time::rfc3339_ms(r.last_seen_ms),
            stale: now_ms - r.last_seen_ms > stale_ms,
            probe_only: r.probe_only(),
            login: r.login.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_collapse_ids() {
        assert_eq!(template("/users/42/orders"), "/users/{n}/orders");
        assert_eq!(template("/files/123e4567-e89b-12d3-a456-426614174000"), "/files/{uuid}");
        assert_eq!(template("/c/9f1c2a7b3d4e5f60"), "/c/{hex}");
        assert_eq!(template("/reset/aZ3kP9qLmN2xR7tY5vB1"), "/reset/{token}");
        assert_eq!(template("/"), "/");
        assert_eq!(template("/account/email"), "/account/email");
    }

    #[test]
    fn bounded() {
        let mut inv = Inventory::new(10);
        for i in 0..1000 {
            inv.observe("GET", &format!("/p{i}x"), 404, true, 0);
        }
        assert!(inv.len() <= 11);
    }
}
