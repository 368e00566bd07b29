//! The detection and response sections: `[detect]`, `[blackbook]`, `[bans]` with `[[bans.jail]]`,
//! `[ratelimit]` and `[routes]`.

use std::time::Duration;

use toml_edit::{Item, Value};

use crate::model::*;
use crate::reader::{Doc, Table};
use crate::units::{cidr, rate};

/// Family names the built-in detectors know (`kevlar_detect::Family`); kept here so the config
/// can name a typo without depending on the detectors.
pub const FAMILIES: &[&str] = &[
    "sqli",
    "xss",
    "traversal",
    "cmdi",
    "ssrf",
    "nosql",
    "prototype_pollution",
    "ssti",
    "jndi",
    "java",
    "xxe",
    "crlf",
    "probe",
    "tool",
    "protocol",
    "evasion",
];

fn family(s: &str) -> Result<String, String> {
    if FAMILIES.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not a detector family (one of: {})", FAMILIES.join(", ")))
    }
}

fn prefix(doc: &mut Doc, t: &mut Table, key: &'static str) -> Option<String> {
    let (p, span) = t.string(doc, key)?;
    if !p.starts_with('/') {
        doc.error(span, &t.key_path(key), "must start with `/`");
        return None;
    }
    Some(p)
}

/// A rate as a string (`"100/s"`, burst = count) or a table `{ rate = "100/s", burst = 200 }`.
fn read_rate(doc: &mut Doc, t: &mut Table, key: &'static str) -> Option<Rate> {
    let (item, span) = t.item(key)?;
    match item {
        Item::Value(Value::String(s)) => match rate(s.value()) {
            Ok((count, per)) => Some(Rate { count, per, burst: count }),
            Err(m) => {
                doc.error(span, &t.key_path(key), m);
                None
            }
        },
        other => match other.as_table_like() {
            Some(_) => {
                let mut inner = t.table(doc, key)?;
                let r = inner.parsed(doc, "rate", rate, None);
                let burst = inner.integer(doc, "burst", 1, 1_000_000);
                if r.is_none() {
                    doc.error(span, &inner.path, "needs `rate` (example: \"100/s\")");
                }
                inner.finish(doc);
                r.map(|(count, per)| Rate { count, per, burst: burst.map_or(count, |b| b as u32) })
            }
            None => {
                doc.error(
                    span,
                    &t.key_path(key),
                    "expected a rate such as \"100/s\" or a table with `rate` and `burst`",
                );
                None
            }
        },
    }
}

/// The names `[detect] stack` takes.
pub const STACKS: &[&str] = &["auto", "node", "php", "java", "dotnet", "cgi", "coldfusion", "python", "ruby"];

pub(crate) fn read_detect(doc: &mut Doc, t: &mut Table, d: &mut DetectConfig) {
    if let Some(m) = t.parsed(doc, "mode", Mode::parse, None) {
        d.mode = m;
    }
    if let Some(n) = t.parsed(
        doc,
        "body_limit",
        crate::units::parse_size,
        Some(&|n: i64| u64::try_from(n).map_err(|_| "a size cannot be negative".to_owned())),
    ) {
        d.body_limit = n.min(16 << 20);
    }
    if let Some((list, span)) = t.strings(doc, "headers") {
        d.headers.clear();
        for h in list {
            match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) => d.headers.push(n.as_str().to_owned()),
                Err(_) => doc.error(span.clone(), &t.key_path("headers"), format!("`{h}` is not a valid header name")),
            }
        }
    }
    if let Some(b) = t.boolean(doc, "websocket") {
        d.websocket = b;
    }
    if let Some((list, span)) = t.strings(doc, "stack") {
        d.stack.clear();
        for name in list {
            if STACKS.contains(&name.as_str()) {
                if !d.stack.contains(&name) {
                    d.stack.push(name);
                }
            } else {
                let known = STACKS.join(", ");
                doc.error(span.clone(), &t.key_path("stack"), format!("unknown stack `{name}` (known: {known})"));
            }
        }
    }
    // The older spelling of `stack = ["auto", "php"]`.
    if t.boolean(doc, "php_app") == Some(true) && !d.stack.iter().any(|s| s == "php") {
        d.stack.push("php".to_owned());
    }
    if let Some(n) = t.integer(doc, "excess_404", 1, 100_000) {
        d.excess_404 = n as u32;
    }
    if let Some(w) = t.positive_duration(doc, "excess_404_window") {
        d.excess_404_window = w;
    }
    if let Some(fams) = t.table(doc, "families") {
        for (name, item, span) in fams.entries() {
            let path = fams.key_path(name);
            if let Err(m) = family(name) {
                doc.error(span.clone(), &path, m);
                continue;
            }
            match item.as_str().map(Mode::parse) {
                Some(Ok(m)) => d.families.push((name.to_owned(), m)),
                Some(Err(m)) => doc.error(span, &path, m),
                None => doc.error(span, &path, "expected a mode: \"off\", \"monitor\" or \"block\""),
            }
        }
    }
    for (mut p, span) in t.tables(doc, "path") {
        let pre = prefix(doc, &mut p, "prefix");
        let mode = p.parsed(doc, "mode", Mode::parse, None);
        match (pre, mode) {
            (Some(prefix), Some(mode)) => d.paths.push(PathMode { prefix, mode }),
            _ => doc.error(span, &p.path, "a path rule needs `prefix` and `mode`"),
        }
        p.finish(doc);
    }
    if let Some(b) = t.boolean(doc, "learn_text") {
        d.learn_text = b;
    }
    for (mut e, span) in t.tables(doc, "text") {
        let path = prefix(doc, &mut e, "path");
        match e.strings(doc, "args") {
            Some((args, _)) if !args.is_empty() => d.text.push(TextField { path, args }),
            _ => doc.error(span, &e.path, "a free-text rule needs `args` (the fields that carry prose or code)"),
        }
        e.finish(doc);
    }
    for (mut e, span) in t.tables(doc, "exclude") {
        let mut x = Exclusion { path: prefix(doc, &mut e, "path"), ..Default::default() };
        x.exact = e.boolean(doc, "exact").unwrap_or(false);
        if x.exact && x.path.is_none() {
            doc.error(span.clone(), &e.path, "`exact = true` needs a `path`");
        }
        if let Some((list, lspan)) = e.strings(doc, "families") {
            for f in list {
                match family(&f) {
                    Ok(f) => x.families.push(f),
                    Err(m) => doc.error(lspan.clone(), &e.key_path("families"), m),
                }
            }
        }
        if let Some((list, _)) = e.strings(doc, "args") {
            x.args = list;
        }
        if x.path.is_none() && x.families.is_empty() && x.args.is_empty() {
            doc.error(span, &e.path, "an exclusion needs at least one of `path`, `families`, `args`");
        }
        e.finish(doc);
        d.exclude.push(x);
    }
}

pub(crate) fn read_blackbook(doc: &mut Doc, t: &mut Table, b: &mut BlackbookConfig) {
    if let Some(n) = t.integer(doc, "max_records", 100, 100_000_000) {
        b.max_records = n as usize;
    }
    if let Some(n) = t.integer(doc, "max_stored", 100, 1_000_000_000) {
        b.max_stored = n as usize;
    }
    if let Some(d) = t.parsed(doc, "max_age", crate::units::parse_duration, None) {
        b.max_age = d;
    }
    if b.max_stored < b.max_records {
        doc.error(None, &t.key_path("max_stored"), "must not be smaller than `max_records`");
    }
    if let Some(n) = t.integer(doc, "ipv6_prefix", 32, 128) {
        b.ipv6_prefix = n as u8;
    }
    if let Some((list, span)) = t.strings(doc, "allow") {
        b.allow.clear();
        for s in list {
            match cidr(&s) {
                Ok(n) => b.allow.push(n),
                Err(m) => doc.error(span.clone(), &t.key_path("allow"), m),
            }
        }
    }
}

pub(crate) fn read_bans(doc: &mut Doc, t: &mut Table, b: &mut BansConfig) {
    if let Some(e) = t.boolean(doc, "enforce") {
        b.enforce = Some(e);
    }
    if let Some(n) = t.integer(doc, "status", 403, 429) {
        if n != 403 && n != 429 {
            doc.error(None, &t.key_path("status"), "must be 403 or 429");
        } else {
            b.status = n as u16;
        }
    }
    if let Some(n) = t.integer(doc, "recidive_bans", 1, 1000) {
        b.recidive_bans = n as u32;
    }
    if let Some(d) = t.positive_duration(doc, "recidive_findtime") {
        b.recidive_findtime = d;
    }
    if let Some(d) = t.positive_duration(doc, "recidive_bantime") {
        b.recidive_bantime = d;
    }
    for (key, slot) in [("command", &mut b.command), ("unban_command", &mut b.unban_command)] {
        if let Some((c, span)) = t.string(doc, key) {
            let unknown = c
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}'))
                .map(|(n, _)| n)
                .find(|n| !matches!(*n, "ip" | "seconds"));
            match unknown {
                Some(n) => doc.error(
                    span,
                    &t.key_path(key),
                    format!("`{{{n}}}` is not a placeholder (use {{ip}} and {{seconds}})"),
                ),
                None => *slot = Some(c),
            }
        }
    }
    let jails = t.tables(doc, "jail");
    if !jails.is_empty() {
        b.jails.clear();
    }
    for (mut j, span) in jails {
        let name = j.string(doc, "name").map(|(s, _)| s);
        let actions = j.strings(doc, "actions").map(|(a, _)| a);
        let mut jail = JailConfig {
            name: name.clone().unwrap_or_default(),
            actions: actions.clone().unwrap_or_default(),
            maxretry: 5,
            findtime: Duration::from_secs(600),
            bantime: Duration::from_secs(600),
            max_bantime: Duration::from_secs(86400),
        };
        if name.is_none() || actions.as_ref().is_none_or(|a| a.is_empty()) {
            doc.error(span, &j.path, "a jail needs `name` and `actions`");
        }
        for a in &jail.actions {
            let bare = a.trim_end_matches('*');
            if bare.is_empty()
                || !bare.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b':')
            {
                doc.error(
                    None,
                    &j.key_path("actions"),
                    format!("`{a}` is not an event action (example: \"malicious_probe\" or \"malicious_*\")"),
                );
            }
        }
        if let Some(n) = j.integer(doc, "maxretry", 1, 1_000_000) {
            jail.maxretry = n as u32;
        }
        if let Some(d) = j.positive_duration(doc, "findtime") {
            jail.findtime = d;
        }
        if let Some(d) = j.positive_duration(doc, "bantime") {
            jail.bantime = d;
        }
        if let Some(d) = j.positive_duration(doc, "max_bantime") {
            jail.max_bantime = d;
        }
        if jail.max_bantime < jail.bantime {
            jail.max_bantime = jail.bantime;
        }
        j.finish(doc);
        b.jails.push(jail);
    }
}

pub(crate) fn read_ratelimit(doc: &mut Doc, t: &mut Table, r: &mut RateLimitConfig) {
    r.global = read_rate(doc, t, "global").or(r.global);
    r.per_ip = read_rate(doc, t, "per_ip").or(r.per_ip);
    for (mut p, span) in t.tables(doc, "path") {
        let pre = prefix(doc, &mut p, "prefix");
        let rate = read_rate(doc, &mut p, "rate");
        match (pre, rate) {
            (Some(prefix), Some(rate)) => r.paths.push(PathRate { prefix, rate }),
            _ => doc.error(span, &p.path, "a path limit needs `prefix` and `rate`"),
        }
        p.finish(doc);
    }
}

pub(crate) fn read_routes(doc: &mut Doc, t: &mut Table, r: &mut RoutesConfig) {
    if let Some(b) = t.boolean(doc, "enabled") {
        r.enabled = b;
    }
    if let Some(n) = t.integer(doc, "max_routes", 10, 1_000_000) {
        r.max_routes = n as usize;
    }
    if let Some(d) = t.positive_duration(doc, "stale_after") {
        r.stale_after = d;
    }
    if let Some(b) = t.boolean(doc, "positive") {
        r.positive = b;
    }
}
