//! Reading a configuration file into a [`Config`]: the schema walk, command-line overrides, and
//! the checks that span several keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, Value};

use crate::error::{ConfigError, ConfigErrors};
use crate::model::*;
use crate::reader::{Doc, Table};
use crate::units::{cidr, parse_duration, parse_size, secs_from_int, size_from_int};

/// Values given on the command line; each one wins over the same key in the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub upstream: Option<String>,
    pub tls_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub admin: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    /// Replaces the file's list when not empty.
    pub trusted_proxies: Vec<String>,
}

/// Reads and validates a configuration file, then applies the command-line overrides.
pub fn load_file(path: &Path, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: None,
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    let mut partial = parse_partial(&src, &file);
    partial.config.source = Some(path.to_path_buf());
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    resolve_relative(&mut partial, &base);
    finish(partial, overrides, &file)
}

/// Reads and validates configuration text (`file` only names it in errors). Relative paths stay
/// as written. Never panics, whatever the input.
pub fn parse_str(src: &str, file: &str) -> Result<Config, ConfigErrors> {
    finish(parse_partial(src, file), &Overrides::default(), file)
}

/// The defaults with the command-line overrides, for runs without a file.
pub fn defaults_with(overrides: &Overrides) -> Result<Config, ConfigErrors> {
    finish(
        Partial { config: Config::default(), tls: TlsPartial::default(), errors: Vec::new(), spans: Spans::default() },
        overrides,
        "(flags)",
    )
}

#[derive(Default)]
struct TlsPartial {
    listen: Option<SocketAddr>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    redirect_http: Option<bool>,
    line: Option<usize>,
}

#[derive(Default)]
struct Spans {
    admin_listen: Option<usize>,
    admin_tls: Option<usize>,
}

struct Partial {
    config: Config,
    tls: TlsPartial,
    errors: Vec<ConfigError>,
    spans: Spans,
}

fn resolve_relative(p: &mut Partial, base: &Path) {
    let fix = |path: &mut PathBuf| {
        if path.is_relative() && !path.as_os_str().is_empty() {
            *path = base.join(&*path);
        }
    };
    if let Some(c) = p.tls.cert.as_mut() {
        fix(c);
    }
    if let Some(k) = p.tls.key.as_mut() {
        fix(k);
    }
    if let Some(c) = p.config.admin.tls_cert.as_mut() {
        fix(c);
    }
    if let Some(k) = p.config.admin.tls_key.as_mut() {
        fix(k);
    }
    if let Some(d) = p.config.app.cwd.as_mut() {
        fix(d);
    }
    for w in &mut p.config.watch {
        fix(&mut w.path);
    }
    for s in &mut p.config.alerts.sinks {
        match &mut s.kind {
            SinkKind::Syslog(x) => x.ca_file.iter_mut().for_each(fix),
            SinkKind::Logstash(x) => x.ca_file.iter_mut().for_each(fix),
            SinkKind::Webhook(x) => x.ca_file.iter_mut().for_each(fix),
            SinkKind::Email(x) => x.ca_file.iter_mut().for_each(fix),
            _ => {}
        }
    }
}

fn parse_partial(src: &str, file: &str) -> Partial {
    let mut doc = Doc { file: file.to_owned(), src, errors: Vec::new() };
    let mut config = Config::default();
    let mut tls = TlsPartial::default();
    let mut spans = Spans::default();
    let parsed = match ImDocument::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let msg = e.message().trim().to_owned();
            doc.error(e.span(), "(syntax)", if msg.is_empty() { "invalid TOML".to_owned() } else { msg });
            return Partial { config, tls, errors: doc.errors, spans };
        }
    };
    let mut root = Table::root(parsed.as_table());
    read_root(&mut doc, &mut root, &mut config, &mut tls, &mut spans);
    root.finish(&mut doc);
    doc.errors.sort_by_key(|e| e.line.unwrap_or(0));
    Partial { config, tls, errors: doc.errors, spans }
}

fn addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("`{s}` is not an address with a port (example: \"127.0.0.1:8080\", \"[::]:443\")"))
}

fn upstream(s: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = s.parse().map_err(|_| format!("`{s}` is not a URL (example: \"http://127.0.0.1:3000\")"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("scheme `{other}` is not supported for the upstream; use http://")),
        None => return Err(format!("`{s}` needs a scheme (example: \"http://127.0.0.1:3000\")")),
    }
    if uri.authority().is_none() {
        return Err(format!("`{s}` needs a host and port"));
    }
    if uri.query().is_some() {
        return Err("the upstream URL cannot carry a query".into());
    }
    Ok(uri)
}

/// `YYYY-MM-DD` with a plausible month and day.
fn is_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    p.len() == 3
        && p[0].len() == 4
        && p[1].len() == 2
        && p[2].len() == 2
        && p.iter().all(|x| x.bytes().all(|c| c.is_ascii_digit()))
        && (1..=12).contains(&p[1].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&p[2].parse::<u32>().unwrap_or(0))
}

fn header_name(s: &str) -> Result<(), String> {
    http::HeaderName::from_bytes(s.as_bytes()).map(|_| ()).map_err(|_| format!("`{s}` is not a valid header name"))
}

fn header_value(s: &str) -> Result<(), String> {
    http::HeaderValue::from_str(s)
        .map(|_| ())
        .map_err(|_| "the value holds characters a header cannot carry".to_owned())
}

fn read_root(doc: &mut Doc, root: &mut Table, c: &mut Config, tls: &mut TlsPartial, spans: &mut Spans) {
    if let Some((s, _)) = root.string(doc, "data_dir") {
        c.data_dir = PathBuf::from(s);
    }
    if let Some(mut t) = root.table(doc, "proxy") {
        if let Some(a) = t.parsed(doc, "listen", addr, None) {
            c.proxy.listen = a;
        }
        if let Some(u) = t.parsed(doc, "upstream", upstream, None) {
            c.proxy.upstream = Some(u);
        }
        if let Some(n) = t.integer(doc, "workers", 0, 256) {
            c.proxy.workers = n as usize;
        }
        if let Some((list, span)) = t.strings(doc, "trusted_proxies") {
            c.proxy.trusted_proxies.clear();
            for s in list {
                match cidr(&s) {
                    Ok(n) => c.proxy.trusted_proxies.push(n),
                    Err(m) => doc.error(span.clone(), &t.key_path("trusted_proxies"), m),
                }
            }
        }
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "tls") {
        tls.line = t.line(doc);
        tls.listen = t.parsed(doc, "listen", addr, None);
        tls.cert = t.string(doc, "cert").map(|(s, _)| PathBuf::from(s));
        tls.key = t.string(doc, "key").map(|(s, _)| PathBuf::from(s));
        tls.redirect_http = t.boolean(doc, "redirect_http");
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "limits") {
        let l = &mut c.limits;
        let int: &dyn Fn(i64) -> Result<u64, String> = &size_from_int;
        let secs: &dyn Fn(i64) -> Result<std::time::Duration, String> = &secs_from_int;
        if let Some(n) = t.parsed(doc, "max_header_bytes", parse_size, Some(int)) {
            if !(8192..=1 << 20).contains(&n) {
                doc.error(None, &t.key_path("max_header_bytes"), "must be between 8KiB and 1MiB");
            } else {
                l.max_header_bytes = n as usize;
            }
        }
        if let Some(n) = t.integer(doc, "max_headers", 1, 1000) {
            l.max_headers = n as usize;
        }
        if let Some(n) = t.parsed(doc, "max_body_bytes", parse_size, Some(int)) {
            l.max_body_bytes = n;
        }
        for (key, slot) in [
            ("header_timeout", &mut l.header_timeout),
            ("body_timeout", &mut l.body_timeout),
            ("idle_timeout", &mut l.idle_timeout),
            ("upstream_connect_timeout", &mut l.upstream_connect_timeout),
            ("upstream_timeout", &mut l.upstream_timeout),
        ] {
            if let Some(d) = t.parsed(doc, key, parse_duration, Some(secs)) {
                if d.is_zero() {
                    doc.error(None, &t.key_path(key), "must be longer than zero");
                } else {
                    *slot = d;
                }
            }
        }
        if let Some(n) = t.integer(doc, "body_min_rate", 0, 1 << 30) {
            l.body_min_rate = n as u64;
        }
        if let Some(n) = t.integer(doc, "max_connections", 1, 1_000_000) {
            l.max_connections = n as usize;
        }
        if let Some(n) = t.integer(doc, "max_upstream_connections", 1, 1_000_000) {
            l.max_upstream_connections = n as usize;
        }
        if let Some(n) = t.integer(doc, "max_upstream_per_client", 1, 256) {
            l.max_upstream_per_client = n as usize;
        }
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "headers") {
        read_headers(doc, &mut t, &mut c.headers);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "admin") {
        if let Some((s, span)) = t.string(doc, "listen") {
            spans.admin_listen = doc.line_of(span.clone());
            match addr(&s) {
                Ok(a) => c.admin.listen = a,
                Err(m) => doc.error(span, "admin.listen", m),
            }
        }
        if let Some((s, span)) = t.string(doc, "tls_cert") {
            spans.admin_tls = doc.line_of(span);
            c.admin.tls_cert = Some(PathBuf::from(s));
        }
        c.admin.tls_key = t.string(doc, "tls_key").map(|(s, _)| PathBuf::from(s));
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "store") {
        if let Some(d) = t.parsed(doc, "retention", parse_duration, None) {
            c.store.retention = d;
        }
        let int: &dyn Fn(i64) -> Result<u64, String> = &size_from_int;
        if let Some(n) = t.parsed(doc, "max_size", parse_size, Some(int)) {
            if n < 1 << 20 {
                doc.error(None, "store.max_size", "must be at least 1MiB");
            } else {
                c.store.max_size_bytes = n;
            }
        }
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "access_log") {
        let (mut path, mut max_bytes, mut keep) = match &c.access_log {
            AccessLog::File { path, max_bytes, keep } => (path.clone(), *max_bytes, *keep),
            _ => (PathBuf::new(), 0, 0),
        };
        let target = t.string(doc, "target");
        if let Some((p, _)) = t.string(doc, "path") {
            path = PathBuf::from(p);
        }
        let int: &dyn Fn(i64) -> Result<u64, String> = &size_from_int;
        if let Some(n) = t.parsed(doc, "max_size", parse_size, Some(int)) {
            max_bytes = n;
        }
        if let Some(n) = t.integer(doc, "keep", 0, 100) {
            keep = n as usize;
        }
        match target {
            None => c.access_log = AccessLog::File { path, max_bytes, keep },
            Some((s, span)) => match s.as_str() {
                "file" => c.access_log = AccessLog::File { path, max_bytes, keep },
                "stdout" => c.access_log = AccessLog::Stdout,
                "off" => c.access_log = AccessLog::Off,
                other => doc.error(span, "access_log.target", format!("`{other}` is not one of file, stdout, off")),
            },
        }
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "app") {
        read_app(doc, &mut t, &mut c.app);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "detect") {
        crate::read_shield::read_detect(doc, &mut t, &mut c.detect);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "blackbook") {
        crate::read_shield::read_blackbook(doc, &mut t, &mut c.blackbook);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "bans") {
        crate::read_shield::read_bans(doc, &mut t, &mut c.bans);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "ratelimit") {
        crate::read_shield::read_ratelimit(doc, &mut t, &mut c.ratelimit);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "routes") {
        crate::read_shield::read_routes(doc, &mut t, &mut c.routes);
        t.finish(doc);
    }
    for (mut w, span) in root.tables(doc, "watch") {
        let name = w.string(doc, "name").map(|(s, _)| s);
        let path = w.string(doc, "path").map(|(s, _)| PathBuf::from(s));
        let format = w.parsed(
            doc,
            "format",
            |v| match v {
                "sshd" => Ok(WatchFormat::Sshd),
                "vsftpd" => Ok(WatchFormat::Vsftpd),
                _ => Err(format!("`{v}` is not a log format (sshd, vsftpd)")),
            },
            None,
        );
        w.finish(doc);
        match (name, path, format) {
            (Some(name), Some(path), Some(format)) => c.watch.push(WatchSource { name, path, format }),
            _ => doc.error(span, "watch", "a [[watch]] needs `name`, `path` and `format` (sshd, vsftpd)"),
        }
    }
    if let Some(mut t) = root.table(doc, "logins") {
        crate::read_logins::read_logins(doc, &mut t, &mut c.logins);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "alerts") {
        crate::read_alerts::read_alerts(doc, &mut t, &mut c.alerts);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "audit") {
        for (mut i, span) in t.tables(doc, "ignore") {
            let line = i.line(doc);
            let id = i.string(doc, "id").map(|(s, _)| s);
            let reason = i.string(doc, "reason").map(|(s, _)| s);
            let until = match i.string(doc, "until") {
                Some((u, uspan)) => {
                    if is_date(&u) {
                        Some(u)
                    } else {
                        doc.error(uspan, &i.key_path("until"), format!("`{u}` is not a date (YYYY-MM-DD)"));
                        None
                    }
                }
                None => None,
            };
            match (id, reason) {
                (Some(id), Some(reason)) if !reason.trim().is_empty() => {
                    c.audit.ignore.push(AuditIgnore { id, reason, until, line })
                }
                _ => doc.error(span, &i.path, "an ignore needs `id` and a `reason` (and usually `until`)"),
            }
            i.finish(doc);
        }
        t.finish(doc);
    }
}

fn read_app(doc: &mut Doc, t: &mut Table, a: &mut AppConfig) {
    let secs: &dyn Fn(i64) -> Result<std::time::Duration, String> = &secs_from_int;
    if let Some((cmd, span)) = t.strings(doc, "command") {
        if cmd.is_empty() {
            doc.error(span, "app.command", "must name a program");
        }
        a.command = cmd;
    }
    if let Some(p) = t.integer(doc, "port", 1, 65535) {
        a.port = Some(p as u16);
    }
    if let Some((d, _)) = t.string(doc, "cwd") {
        a.cwd = Some(PathBuf::from(d));
    }
    if let Some(n) = t.integer(doc, "instances", 1, 64) {
        a.instances = n as usize;
    }
    for (key, slot) in [
        ("ready_timeout", &mut a.ready_timeout),
        ("stop_grace", &mut a.stop_grace),
        ("hold_timeout", &mut a.hold_timeout),
        ("backoff_first", &mut a.backoff_first),
        ("backoff_max", &mut a.backoff_max),
        ("min_uptime", &mut a.min_uptime),
        ("crash_window", &mut a.crash_window),
    ] {
        if let Some(d) = t.parsed(doc, key, parse_duration, Some(secs)) {
            *slot = d;
        }
    }
    if let Some(n) = t.integer(doc, "max_held", 0, 1_000_000) {
        a.max_held = n as usize;
    }
    if let Some(n) = t.integer(doc, "max_fast_crashes", 1, 1000) {
        a.max_fast_crashes = n as u32;
    }
    if let Some((item, span)) = t.item("backoff_factor") {
        match item.as_float().or_else(|| item.as_integer().map(|i| i as f64)) {
            Some(f) if (1.0..=10.0).contains(&f) => a.backoff_factor = f,
            _ => doc.error(span, "app.backoff_factor", "must be a number from 1 to 10"),
        }
    }
    if a.backoff_first > a.backoff_max {
        doc.error(None, "app.backoff_first", "must not be longer than app.backoff_max");
    }
    if let Some(env) = t.table(doc, "env") {
        for (k, item, span) in env.entries() {
            match item.as_str() {
                Some(v) => a.env.push((k.to_owned(), v.to_owned())),
                None => doc.error(span, &env.key_path(k), "expected a string"),
            }
        }
    }
    if let Some(mut h) = t.table(doc, "health") {
        if let Some((item, span)) = h.item("path") {
            match (item.as_str(), item.as_bool()) {
                (Some(p), _) if p.starts_with('/') && !p.contains(char::is_whitespace) => {
                    a.health.path = Some(p.to_owned())
                }
                (_, Some(false)) => a.health.path = None,
                _ => doc.error(span, "app.health.path", "must be a path starting with `/`, or false (TCP check only)"),
            }
        }
        for (key, slot) in [("interval", &mut a.health.interval), ("timeout", &mut a.health.timeout)] {
            if let Some(d) = h.parsed(doc, key, parse_duration, Some(secs)) {
                if d.is_zero() {
                    doc.error(None, &h.key_path(key), "must be longer than zero");
                } else {
                    *slot = d;
                }
            }
        }
        if let Some(n) = h.integer(doc, "failures", 1, 100) {
            a.health.failures = n as u32;
        }
        h.finish(doc);
    }
    if let Some(mut l) = t.table(doc, "logs") {
        let int: &dyn Fn(i64) -> Result<u64, String> = &size_from_int;
        if let Some(n) = l.parsed(doc, "max_size", parse_size, Some(int)) {
            a.logs.max_bytes = n;
        }
        if let Some(n) = l.integer(doc, "keep", 0, 100) {
            a.logs.keep = n as usize;
        }
        if let Some(b) = l.boolean(doc, "echo") {
            a.logs.echo = b;
        }
        l.finish(doc);
    }
}

fn app_values(s: &str) -> Result<AppValues, String> {
    match s {
        "keep" => Ok(AppValues::Keep),
        "override" => Ok(AppValues::Override),
        other => Err(format!("`{other}` is not one of keep, override")),
    }
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

fn read_headers(doc: &mut Doc, t: &mut Table, h: &mut HeadersConfig) {
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

fn finish(p: Partial, o: &Overrides, file: &str) -> Result<Config, ConfigErrors> {
    let Partial { mut config, tls, mut errors, spans } = p;
    let flag_err =
        |key: &str, message: String| ConfigError { file: file.to_owned(), line: None, key: key.to_owned(), message };
    if let Some(a) = o.listen {
        config.proxy.listen = a;
    }
    if let Some(u) = &o.upstream {
        match upstream(u) {
            Ok(u) => config.proxy.upstream = Some(u),
            Err(m) => errors.push(flag_err("--upstream", m)),
        }
    }
    if !o.trusted_proxies.is_empty() {
        config.proxy.trusted_proxies.clear();
        for s in &o.trusted_proxies {
            match cidr(s) {
                Ok(n) => config.proxy.trusted_proxies.push(n),
                Err(m) => errors.push(flag_err("--trusted-proxy", m)),
            }
        }
    }
    if let Some(a) = o.admin {
        config.admin.listen = a;
    }
    if let Some(d) = &o.data_dir {
        config.data_dir = d.clone();
    }
    let listen = o.tls_listen.or(tls.listen);
    let cert = o.tls_cert.clone().or(tls.cert);
    let key = o.tls_key.clone().or(tls.key);
    match (listen, cert, key) {
        (None, None, None) => {}
        (Some(listen), Some(cert), Some(key)) => {
            config.tls = Some(TlsConfig { listen, cert, key, redirect_http: tls.redirect_http.unwrap_or(true) })
        }
        (l, c, k) => {
            let mut missing = Vec::new();
            if l.is_none() {
                missing.push("listen (--tls-listen)");
            }
            if c.is_none() {
                missing.push("cert (--tls-cert)");
            }
            if k.is_none() {
                missing.push("key (--tls-key)");
            }
            errors.push(ConfigError {
                file: file.to_owned(),
                line: tls.line,
                key: "tls".into(),
                message: format!("TLS needs listen, cert and key together; missing {}", missing.join(", ")),
            });
        }
    }
    if let Some(t) = &config.tls {
        if t.listen == config.proxy.listen && t.listen.port() != 0 {
            errors.push(ConfigError {
                file: file.to_owned(),
                line: tls.line,
                key: "tls.listen".into(),
                message: "must differ from proxy.listen".into(),
            });
        }
    }
    if config.admin.tls_cert.is_some() != config.admin.tls_key.is_some() {
        errors.push(ConfigError {
            file: file.to_owned(),
            line: spans.admin_tls,
            key: "admin".into(),
            message: "tls_cert and tls_key go together".into(),
        });
    }
    if !config.admin.listen.ip().is_loopback() && config.admin.tls_cert.is_none() {
        errors.push(ConfigError {
            file: file.to_owned(),
            line: spans.admin_listen,
            key: "admin.listen".into(),
            message: format!(
                "{} is not a loopback address; the admin API carries a bearer token and is only served off loopback with TLS (set admin.tls_cert and admin.tls_key)",
                config.admin.listen
            ),
        });
    }
    if config.admin.listen == config.proxy.listen && config.admin.listen.port() != 0 {
        errors.push(ConfigError {
            file: file.to_owned(),
            line: spans.admin_listen,
            key: "admin.listen".into(),
            message: "must differ from proxy.listen".into(),
        });
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid_and_equals_the_defaults() {
        let c = parse_str(crate::EXAMPLE, "kevlar.example.toml").unwrap_or_else(|e| panic!("{e}"));
        let mut d = Config::default();
        d.proxy.upstream = c.proxy.upstream.clone();
        assert_eq!(c, d, "kevlar.example.toml must show the defaults");
    }

    #[test]
    fn the_commented_alert_examples_are_valid() {
        // Uncomment every `# [[alerts.…]]` block of the example and read it.
        let mut src = String::new();
        let mut in_block = false;
        for line in crate::EXAMPLE.lines() {
            if line.starts_with("# [[alerts.") {
                in_block = true;
            } else if !line.starts_with("# ") {
                in_block = false;
            }
            src.push_str(if in_block { &line[2..] } else { line });
            src.push('\n');
        }
        std::env::set_var("SMTP_PASSWORD", "p");
        std::env::set_var("TWILIO_AUTH_TOKEN", "t");
        std::env::set_var("KEVLAR_HOOK_SECRET", "s");
        let c = parse_str(&src, "example").unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<&str> = c.alerts.sinks.iter().map(|s| s.kind.name()).collect();
        assert_eq!(kinds, ["syslog", "logstash", "webhook", "email", "sms", "file"]);
        assert_eq!(c.alerts.routes.len(), 1);
        let email = &c.alerts.sinks[3];
        let secs = std::time::Duration::from_secs;
        assert_eq!((email.dedup, email.rate_limit), (Some(secs(600)), Some((30, secs(3600)))));
        let hook = &c.alerts.sinks[2];
        assert_eq!(hook.rate_limit, Some((30, secs(3600))), "webhooks page people: a budget by default");
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_line() {
        let src = "[proxy]\nlisen = \"1.2.3.4:80\"\nupstream = \"ftp://x\"\n\n[limits]\nmax_headers = 0\nbody_timeout = \"soon\"\n[headers.set]\n\"Bad Header\" = \"x\"\n";
        let e = parse_str(src, "k.toml").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("k.toml:2: proxy.lisen: unknown key (did you mean `listen`?)"), "{text}");
        assert!(text.contains("k.toml:3: proxy.upstream: scheme `ftp`"), "{text}");
        assert!(text.contains("k.toml:6: limits.max_headers: 0 is out of range"), "{text}");
        assert!(text.contains("k.toml:7: limits.body_timeout:"), "{text}");
        assert!(text.contains("k.toml:9: headers.set.Bad Header: `Bad Header` is not a valid header name"), "{text}");
        assert_eq!(e.0.len(), 5, "{text}");
    }

    #[test]
    fn detection_sections_are_checked() {
        let src = "[detect]\nmode = \"blok\"\n[detect.families]\nsqlii = \"block\"\nxss = \"loud\"\n[ratelimit]\nper_ip = \"10 per second\"\n[bans]\nstatus = 418\n[[bans.jail]]\nname = \"x\"\nactions = [\"Bad Action\"]\n[blackbook]\nallow = [\"10.0.0.0/33\"]\n";
        let e = parse_str(src, "k.toml").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("k.toml:2: detect.mode: `blok` is not a mode"), "{text}");
        assert!(text.contains("detect.families.sqlii: `sqlii` is not a detector family"), "{text}");
        assert!(text.contains("detect.families.xss: `loud` is not a mode"), "{text}");
        assert!(text.contains("ratelimit.per_ip: `10 per second` is not a rate"), "{text}");
        assert!(text.contains("bans.status"), "{text}");
        assert!(text.contains("`Bad Action` is not an event action"), "{text}");
        assert!(text.contains("blackbook.allow"), "{text}");
        let ok = parse_str("[detect]\nmode = \"block\"\n[ratelimit]\nper_ip = { rate = \"20/s\", burst = 100 }\n[[ratelimit.path]]\nprefix = \"/login\"\nrate = \"10/min\"\n", "k.toml").unwrap();
        assert_eq!(ok.detect.mode, Mode::Block);
        assert_eq!(ok.ratelimit.per_ip.unwrap().burst, 100);
        assert_eq!(ok.ratelimit.paths[0].rate.count, 10);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse_str("[proxy]\nlisten = \n", "k.toml").unwrap_err();
        assert_eq!(e.0[0].line, Some(2), "{e}");
    }

    #[test]
    fn tls_needs_all_three_and_flags_win() {
        let e = parse_str("[tls]\nlisten = \"127.0.0.1:8443\"\n", "k.toml").unwrap_err();
        assert!(e.to_string().contains("missing cert (--tls-cert), key (--tls-key)"), "{e}");
        let p = parse_partial("[proxy]\nlisten = \"127.0.0.1:1\"\n", "k.toml");
        let c = finish(p, &Overrides { listen: Some("127.0.0.1:2".parse().unwrap()), ..Default::default() }, "k.toml")
            .unwrap();
        assert_eq!(c.proxy.listen.port(), 2);
    }

    #[test]
    fn admin_off_loopback_without_tls_is_refused() {
        let e = parse_str("[admin]\nlisten = \"0.0.0.0:9090\"\n", "k.toml").unwrap_err();
        assert!(e.to_string().contains("k.toml:2: admin.listen: 0.0.0.0:9090 is not a loopback address"), "{e}");
    }

    #[test]
    fn header_rules_and_routes() {
        let src = r#"
[headers]
app_values = "override"
[headers.set]
"X-Frame-Options" = "DENY"
"X-XSS-Protection" = false
"Permissions-Policy" = { value = "camera=()", app_values = "keep" }
[headers.csp]
report_only = true
[headers.csp.directives]
"script-src" = ["'self'", "https://cdn.example.com"]
"upgrade-insecure-requests" = false
[[headers.route]]
path = "/docs/"
[headers.route.csp.directives]
"script-src" = "'self' 'unsafe-inline'"
"#;
        let c = parse_str(src, "k.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.headers.app_values, AppValues::Override);
        assert_eq!(c.headers.set.len(), 3);
        assert_eq!(c.headers.set[1].value, None);
        assert_eq!(c.headers.set[2].app_values, Some(AppValues::Keep));
        assert!(c.headers.csp.report_only);
        assert_eq!(c.headers.csp.directives[1], ("upgrade-insecure-requests".into(), None));
        assert_eq!(c.headers.routes[0].path, "/docs");
        let rc = c.headers.routes[0].csp.as_ref().unwrap();
        assert_eq!(rc.directives[0].1.as_ref().unwrap(), &vec!["'self'".to_string(), "'unsafe-inline'".to_string()]);
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        for src in [
            "[[",
            "a = [1, \"x\"]",
            "[tls]\ncert = 5",
            "[headers]\nroute = 3",
            "[headers]\nroute = [1]",
            "data_dir = { x = 1 }",
            "\u{0}",
            "[app.env]\nA = 1",
        ] {
            let _ = parse_str(src, "k.toml");
        }
    }
}
