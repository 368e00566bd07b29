//! The `[logins]` section: login endpoints (`[[logins.endpoint]]`), account-change routes
//! (`[[logins.change]]`) and the thresholds of the login rules.

use crate::model::*;
use crate::reader::{Doc, Table};

fn path(doc: &mut Doc, t: &mut Table, what: &str) -> Option<String> {
    match t.string(doc, "path") {
        Some((p, _)) if p.starts_with('/') => Some(p),
        Some((_, span)) => {
            doc.error(span, &t.key_path("path"), "must start with `/`");
            None
        }
        None => {
            doc.error(None, &t.path, format!("a {what} needs `path`"));
            None
        }
    }
}

fn method(doc: &mut Doc, t: &mut Table) -> String {
    match t.string(doc, "method") {
        Some((m, span)) => {
            let up = m.to_ascii_uppercase();
            if up.is_empty() || !up.bytes().all(|b| b.is_ascii_uppercase()) {
                doc.error(span, &t.key_path("method"), format!("`{m}` is not an HTTP method"));
            }
            up
        }
        None => "POST".into(),
    }
}

pub(crate) fn read_logins(doc: &mut Doc, t: &mut Table, l: &mut LoginsConfig) {
    if let Some(b) = t.boolean(doc, "enabled") {
        l.enabled = b;
    }
    if let Some(b) = t.boolean(doc, "auto") {
        l.auto = b;
    }
    if let Some((list, span)) = t.strings(doc, "ignore") {
        if list.iter().any(|p| !p.starts_with('/')) {
            doc.error(span, &t.key_path("ignore"), "each entry is a path prefix starting with `/`");
        }
        l.ignore = list;
    }
    if let Some((list, _)) = t.strings(doc, "session_cookies") {
        l.session_cookies = list;
    }
    let count =
        |doc: &mut Doc, t: &mut Table, key: &'static str, max: i64| t.integer(doc, key, 1, max).map(|n| n as u32);
    if let Some(n) = count(doc, t, "pair_failures", 1_000_000) {
        l.pair_failures = n;
    }
    if let Some(d) = t.positive_duration(doc, "pair_block") {
        l.pair_block = d;
    }
    if let Some(n) = count(doc, t, "user_failures", 1_000_000) {
        l.user_failures = n;
    }
    if let Some(d) = t.positive_duration(doc, "user_delay") {
        l.user_delay = d.min(std::time::Duration::from_secs(30));
    }
    if let Some(n) = count(doc, t, "spray_users", 1000) {
        l.spray_users = n.max(2);
    }
    if let Some(d) = t.positive_duration(doc, "spray_window") {
        l.spray_window = d;
    }
    if let Some(n) = count(doc, t, "spike_factor", 1000) {
        l.spike_factor = n;
    }
    if let Some(n) = count(doc, t, "spike_min", 1_000_000) {
        l.spike_min = n;
    }
    if let Some(n) = t.integer(doc, "new_ip_prefix_v4", 8, 32) {
        l.new_ip_prefix_v4 = n as u8;
    }
    if let Some(n) = t.integer(doc, "new_ip_prefix_v6", 16, 128) {
        l.new_ip_prefix_v6 = n as u8;
    }
    if let Some(d) = t.positive_duration(doc, "notify_every") {
        l.notify_every = d;
    }
    if let Some(d) = t.positive_duration(doc, "takeover_window") {
        l.takeover_window = d;
    }
    if let Some(n) = t.integer(doc, "max_tracked", 1000, 100_000_000) {
        l.max_tracked = n as usize;
    }
    if let Some((u, span)) = t.string(doc, "breach_api") {
        match u.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
                l.breach_api = Some(if u.ends_with('/') { u } else { format!("{u}/") })
            }
            _ => doc.error(span, &t.key_path("breach_api"), format!("`{u}` is not an http(s) URL")),
        }
    }
    for (e, _) in t.tables(doc, "endpoint") {
        if let Some(ep) = read_endpoint(doc, e) {
            l.endpoints.push(ep);
        }
    }
    read_changes(doc, t, l);
}

/// One `[[logins.endpoint]]`.
fn read_endpoint(doc: &mut Doc, mut e: Table) -> Option<LoginEndpoint> {
    let p = path(doc, &mut e, "login endpoint");
    let m = method(doc, &mut e);
    let username = e
        .strings(doc, "username")
        .map(|(v, _)| v)
        .unwrap_or_else(|| ["email", "username", "user", "login"].into_iter().map(String::from).collect());
    let password = e.strings(doc, "password").map(|(v, _)| v).unwrap_or_else(|| vec!["password".into()]);
    let basic = e.boolean(doc, "basic").unwrap_or(false);
    let failure_status = match e.item("failure_status") {
        Some((item, fspan)) => match item.as_array() {
            Some(a) => a
                .iter()
                .filter_map(|v| match v.as_integer() {
                    Some(n) if (100..600).contains(&n) => Some(n as u16),
                    _ => {
                        doc.error(fspan.clone(), &e.key_path("failure_status"), "expected HTTP statuses (100 to 599)");
                        None
                    }
                })
                .collect(),
            None => {
                doc.error(fspan, &e.key_path("failure_status"), "expected a list of statuses, e.g. [401, 403]");
                vec![401, 403]
            }
        },
        None => vec![401, 403],
    };
    let failure_redirect = e.string(doc, "failure_redirect").map(|(v, _)| v);
    let success_redirect = e.string(doc, "success_redirect").map(|(v, _)| v);
    let success_cookie = e.string(doc, "success_cookie").map(|(v, _)| v);
    let success_body = e.string(doc, "success_body").map(|(v, _)| v).filter(|v| !v.is_empty());
    let failure_body = e.string(doc, "failure_body").map(|(v, _)| v).filter(|v| !v.is_empty());
    e.finish(doc);
    Some(LoginEndpoint {
        method: m,
        path: p?,
        username,
        password,
        basic,
        failure_status,
        failure_redirect,
        success_redirect,
        success_cookie,
        success_body,
        failure_body,
    })
}

/// `[[logins.change]]`: routes where a signed-in user changes their email, password or profile
/// (given, they replace the defaults).
fn read_changes(doc: &mut Doc, t: &mut Table, l: &mut LoginsConfig) {
    let changes = t.tables(doc, "change");
    if !changes.is_empty() {
        l.changes.clear();
    }
    for (mut c, _) in changes {
        let p = path(doc, &mut c, "change route");
        let m = method(doc, &mut c);
        let kind = c.parsed(
            doc,
            "kind",
            |v| match v {
                "email" => Ok(ChangeKind::Email),
                "password" => Ok(ChangeKind::Password),
                "profile" => Ok(ChangeKind::Profile),
                _ => Err(format!("`{v}` is not a change kind (email, password, profile)")),
            },
            None,
        );
        if kind.is_none() {
            doc.error(None, &c.path, "a change route needs `kind` (email, password, profile)");
        }
        c.finish(doc);
        if let (Some(path), Some(kind)) = (p, kind) {
            l.changes.push(AccountChange { method: m, path, kind });
        }
    }
}
