//! `[headers]`: the security headers (helmet's set) and their per-path rules, the enforced and
//! the report-only Content-Security-Policy.

use toml_edit::{Item, Value};

use crate::model::*;
use crate::reader::{Doc, Table};

fn header_name(s: &str) -> Result<(), String> {
    http::HeaderName::from_bytes(s.as_bytes()).map(|_| ()).map_err(|_| format!("`{s}` is not a valid header name"))
}

fn header_value(s: &str) -> Result<(), String> {
    http::HeaderValue::from_str(s)
        .map(|_| ())
        .map_err(|_| "the value holds characters a header cannot carry".to_owned())
}

/// `[headers.set]`-style tables: name = "value" | false | { value = "…", app_values = "…" }.
fn read_header_rules(doc: &mut Doc, t: &Table) -> Vec<HeaderRule> {
    let mut out = Vec::new();
    for (name, item, span) in t.entries() {
        let path = t.key_path(name);
        if let Err(m) = header_name(name) {
            doc.error(span.clone(), &path, m);
            continue;
        }
        let rule = match item {
            Item::Value(Value::String(s)) => {
                let v = s.value();
                if let Err(m) = header_value(v) {
                    doc.error(span, &path, m);
                    continue;
                }
                HeaderRule { name: name.to_owned(), value: Some(v.clone()), app_values: None }
            }
            Item::Value(Value::Boolean(b)) if !*b.value() => {
                HeaderRule { name: name.to_owned(), value: None, app_values: None }
            }
            other => {
                match other.as_table_like() {
                    Some(inner) => {
                        let mut value = None;
                        let mut av = None;
                        let mut known = true;
                        for (k, v) in inner.iter() {
                            match (k, v.as_str()) {
                                ("value", Some(s)) => value = Some(s.to_owned()),
                                ("app_values", Some(s)) => match app_values(s) {
                                    Ok(a) => av = Some(a),
                                    Err(m) => doc.error(span.clone(), &format!("{path}.app_values"), m),
                                },
                                ("value", None) | ("app_values", None) => {
                                    doc.error(span.clone(), &format!("{path}.{k}"), "expected a string")
                                }
                                (k, _) => {
                                    known = false;
                                    doc.error(
                                        span.clone(),
                                        &format!("{path}.{k}"),
                                        "unknown key; known keys here: value, app_values",
                                    );
                                }
                            }
                        }
                        if let Some(v) = &value {
                            if let Err(m) = header_value(v) {
                                doc.error(span, &path, m);
                                continue;
                            }
                        }
                        if !known {
                            continue;
                        }
                        HeaderRule { name: name.to_owned(), value, app_values: av }
                    }
                    None => {
                        doc.error(span, &path, "expected a string, false (remove), or { value = \"…\", app_values = \"keep\"|\"override\" }");
                        continue;
                    }
                }
            }
        };
        out.push(rule);
    }
    out
}

fn read_csp(doc: &mut Doc, t: &mut Table, csp: &mut CspConfig) {
    if let Some(b) = t.boolean(doc, "use_defaults") {
        csp.use_defaults = b;
    }
    if let Some(b) = t.boolean(doc, "report_only") {
        csp.report_only = b;
    }
    if let Some(d) = t.table(doc, "directives") {
        for (name, item, span) in d.entries() {
            let path = d.key_path(name);
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                doc.error(span, &path, "a directive name is letters, digits and `-`");
                continue;
            }
            let sources = match item {
                Item::Value(Value::Boolean(b)) if !*b.value() => None,
                Item::Value(Value::String(s)) => Some(s.value().split_whitespace().map(str::to_owned).collect()),
                Item::Value(Value::Array(a)) => {
                    let list: Option<Vec<String>> = a.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                    match list {
                        Some(l) => Some(l),
                        None => {
                            doc.error(span, &path, "expected an array of strings");
                            continue;
                        }
                    }
                }
                _ => {
                    doc.error(span, &path, "expected an array of sources, a string, or false (remove)");
                    continue;
                }
            };
            if let Some(list) = &sources {
                if list.iter().any(|s| s.contains(';') || s.contains(',') || header_value(s).is_err()) {
                    doc.error(span, &path, "a source cannot contain `;`, `,` or control characters");
                    continue;
                }
            }
            csp.directives.push((name.to_ascii_lowercase(), sources));
        }
    }
}

/// `csp_report_only`: a second policy, sent as `Content-Security-Policy-Report-Only` beside the
/// enforced one. Its `use_defaults` starts from helmet's directives too; `report_only` has no
/// meaning there, and the enforced policy cannot be report-only at the same time.
fn read_csp_report_only(doc: &mut Doc, t: &mut Table, enforced_is_report_only: bool) -> Option<CspConfig> {
    let mut table = t.table(doc, "csp_report_only")?;
    let mut cfg = CspConfig::default();
    read_csp(doc, &mut table, &mut cfg);
    cfg.report_only = true;
    if enforced_is_report_only {
        doc.error(
            table.span(),
            &table.path,
            "the policy in `csp` is already report-only (`report_only = true`): set one of the two",
        );
    }
    table.finish(doc);
    Some(cfg)
}

pub(crate) fn read_headers(doc: &mut Doc, t: &mut Table, h: &mut HeadersConfig) {
    if let Some(a) = t.parsed(doc, "app_values", app_values, None) {
        h.app_values = a;
    }
    if let Some((list, span)) = t.strings(doc, "remove") {
        h.remove.clear();
        for name in list {
            match header_name(&name) {
                Ok(()) => h.remove.push(name),
                Err(m) => doc.error(span.clone(), "headers.remove", m),
            }
        }
    }
    if let Some(set) = t.table(doc, "set") {
        h.set = read_header_rules(doc, &set);
    }
    if let Some(mut csp) = t.table(doc, "csp") {
        read_csp(doc, &mut csp, &mut h.csp);
        csp.finish(doc);
    }
    h.csp_report_only = read_csp_report_only(doc, t, h.csp.report_only);
    if let Some((p, span)) = t.string(doc, "csp_report_path") {
        if !p.starts_with('/') || p.contains(['?', '#']) || p.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            doc.error(span, &t.key_path("csp_report_path"), "must be a path starting with `/`, without `?` or `#`");
        } else {
            h.csp_report_path = Some(p);
        }
    }
    if let Some(b) = t.boolean(doc, "csp_nonce") {
        h.csp_nonce = b;
    }
    for (mut r, span) in t.tables(doc, "route") {
        let path = match r.string(doc, "path") {
            Some((p, pspan)) => {
                if !p.starts_with('/') {
                    doc.error(pspan, &r.key_path("path"), "must start with `/`");
                }
                p
            }
            None => {
                doc.error(span, &r.path, "a route needs `path`");
                String::new()
            }
        };
        let set = r.table(doc, "set").map(|s| read_header_rules(doc, &s)).unwrap_or_default();
        let csp = r.table(doc, "csp").map(|mut c| {
            let mut cfg = CspConfig::default();
            read_csp(doc, &mut c, &mut cfg);
            c.finish(doc);
            cfg
        });
        let report_only = csp.as_ref().map_or(h.csp.report_only, |c| c.report_only);
        let csp_report_only = read_csp_report_only(doc, &mut r, report_only);
        r.finish(doc);
        h.routes.push(RouteHeaders { path: path.trim_end_matches('/').to_owned(), set, csp, csp_report_only });
    }
}

fn app_values(s: &str) -> Result<AppValues, String> {
    match s {
        "keep" => Ok(AppValues::Keep),
        "override" => Ok(AppValues::Override),
        other => Err(format!("`{other}` is not one of keep, override")),
    }
}
