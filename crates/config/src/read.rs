//! Reading a configuration file into a [`Config`]: the schema walk, command-line overrides, and
//! the checks that span several keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml_edit::ImDocument;

use crate::error::{ConfigError, ConfigErrors};
use crate::model::*;
use crate::read_app::read_app;
use crate::read_headers::read_headers;
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
    p.config.audit.lockfile.iter_mut().chain(p.config.audit.db.iter_mut()).for_each(fix);
    for w in &mut p.config.watch {
        fix(&mut w.path);
    }
    if let Some(c) = p.config.cluster.as_mut() {
        c.ca_file.iter_mut().for_each(fix);
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

fn read_root(doc: &mut Doc, root: &mut Table, c: &mut Config, tls: &mut TlsPartial, spans: &mut Spans) {
    if let Some((s, _)) = root.string(doc, "data_dir") {
        c.data_dir = PathBuf::from(s);
    }
    if let Some(mut t) = root.table(doc, "proxy") {
        read_proxy(doc, &mut t, c);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "tls") {
        read_tls(doc, &mut t, tls);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "limits") {
        read_limits(doc, &mut t, c);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "headers") {
        read_headers(doc, &mut t, &mut c.headers);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "admin") {
        read_admin(doc, &mut t, c, spans);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "store") {
        read_store(doc, &mut t, c);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "access_log") {
        read_access_log(doc, &mut t, c);
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
    if let Some(mut t) = root.table(doc, "cluster") {
        c.cluster = crate::read_alerts::read_cluster(doc, &mut t);
        t.finish(doc);
    }
    read_watch(doc, root, c);
    if let Some(mut t) = root.table(doc, "logins") {
        crate::read_logins::read_logins(doc, &mut t, &mut c.logins);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "alerts") {
        crate::read_alerts::read_alerts(doc, &mut t, &mut c.alerts);
        t.finish(doc);
    }
    if let Some(mut t) = root.table(doc, "audit") {
        read_audit(doc, &mut t, c);
        t.finish(doc);
    }
}

/// `[proxy]`: where Kevlar listens, the app it forwards to, its workers, trusted proxies.
fn read_proxy(doc: &mut Doc, t: &mut Table, c: &mut Config) {
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
}

/// `[tls]`: the HTTPS listener (checked as a whole in `finish`).
fn read_tls(doc: &mut Doc, t: &mut Table, tls: &mut TlsPartial) {
    tls.line = t.line(doc);
    tls.listen = t.parsed(doc, "listen", addr, None);
    tls.cert = t.string(doc, "cert").map(|(s, _)| PathBuf::from(s));
    tls.key = t.string(doc, "key").map(|(s, _)| PathBuf::from(s));
    tls.redirect_http = t.boolean(doc, "redirect_http");
}

/// `[limits]`: sizes, counts and timeouts that bound every request and connection.
fn read_limits(doc: &mut Doc, t: &mut Table, c: &mut Config) {
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
}

/// `[admin]`: the admin API's address (loopback unless it has TLS) and certificate.
fn read_admin(doc: &mut Doc, t: &mut Table, c: &mut Config, spans: &mut Spans) {
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
}

/// `[store]`: the event store's retention and size.
fn read_store(doc: &mut Doc, t: &mut Table, c: &mut Config) {
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
}

/// `[access_log]`: file (rotated), stdout, or off.
fn read_access_log(doc: &mut Doc, t: &mut Table, c: &mut Config) {
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
}

/// `[[watch]]`: server logs (sshd, vsftpd) whose logins count like the proxy's.
fn read_watch(doc: &mut Doc, root: &mut Table, c: &mut Config) {
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
}

/// `[audit]`: the watch on the deployed lockfile, and `[[audit.ignore]]` entries, each with a
/// reason and usually an end date.
fn read_audit(doc: &mut Doc, t: &mut Table, c: &mut Config) {
    let a = &mut c.audit;
    if let Some(w) = t.parsed(
        doc,
        "watch",
        |v| if v == "off" { Ok(None) } else { crate::units::parse_duration(v).map(Some) },
        Some(&|n| crate::units::secs_from_int(n).map(Some)),
    ) {
        match w {
            Some(d) if d < std::time::Duration::from_secs(1) => {
                doc.error(None, "audit.watch", "must be at least 1s, or \"off\"")
            }
            w => a.watch = w,
        }
    }
    if let Some((p, _)) = t.string(doc, "lockfile") {
        a.lockfile = Some(PathBuf::from(p));
    }
    if let Some((p, _)) = t.string(doc, "db") {
        a.db = Some(PathBuf::from(p));
    }
    if let Some((s, span)) = t.string(doc, "source") {
        if s.trim().is_empty() {
            doc.error(span, "audit.source", "give a URL, a path, or \"off\"");
        } else {
            a.source = Some(s);
        }
    }
    if let Some(b) = t.boolean(doc, "production") {
        a.production = b;
    }
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
    fn cluster_needs_a_redis_url_and_plain_names() {
        let ok =
            parse_str("[cluster]\nredis = \"redis://127.0.0.1:6379/0\"\ninstance = \"web-1\"\n", "k.toml").unwrap();
        let c = ok.cluster.unwrap();
        assert_eq!((c.instance.as_str(), c.name.as_str(), c.reconcile.as_secs()), ("web-1", "default", 30));
        assert!(!format!("{c:?}").contains("redis://"), "the URL (it may hold a password) is not in Debug");
        for (src, want) in [
            ("[cluster]\n", "needs `redis`"),
            ("[cluster]\nredis = \"http://x\"\n", "expected a redis:// or rediss:// URL"),
            ("[cluster]\nredis = \"redis://x\"\nca_file = \"ca.pem\"\n", "must be rediss://"),
            ("[cluster]\nredis = \"redis://x\"\nname = \"a b\"\n", "cluster.name"),
            ("[cluster]\nredis = \"env:KEVLAR_TEST_NO_SUCH_VAR\"\n", "is not set"),
        ] {
            let e = parse_str(src, "k.toml").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(want), "{src:?}: {e}");
        }
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
    fn the_audit_watch_is_read_and_checked() {
        let c = parse_str(
            "[audit]\nwatch = \"6h\"\nlockfile = \"/srv/app\"\nsource = \"off\"\nproduction = true\n",
            "k.toml",
        )
        .unwrap();
        assert_eq!(c.audit.watch, Some(std::time::Duration::from_secs(6 * 3600)));
        assert_eq!(c.audit.lockfile, Some(PathBuf::from("/srv/app")));
        assert_eq!((c.audit.source.as_deref(), c.audit.production), (Some("off"), true));
        assert_eq!(parse_str("[audit]\nwatch = \"off\"\n", "k.toml").unwrap().audit.watch, None);
        let e = parse_str("[audit]\nwatch = \"daily\"\nsource = \"\"\nwhatch = 1\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("k.toml:2: audit.watch:"), "{e}");
        assert!(e.contains("k.toml:3: audit.source: give a URL"), "{e}");
        assert!(e.contains("k.toml:4: audit.whatch: unknown key (did you mean `watch`?)"), "{e}");
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
