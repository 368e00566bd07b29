//! The `[alerts]` section: sinks (`[[alerts.sink]]`, one table per destination, keys by `type`)
//! and routing rules (`[[alerts.route]]`).

use std::path::PathBuf;
use std::time::Duration;

use crate::model::*;
use crate::reader::{Doc, Table};
use crate::units::{parse_duration, parse_size};

const TYPES: &str = "syslog, logstash, webhook, email, sms, file, stdout";

/// Severity names as `kevlar_core::Severity` spells them, without depending on it.
pub(crate) fn severity(s: &str) -> Result<u8, String> {
    match s.to_ascii_lowercase().as_str() {
        "info" | "1" => Ok(1),
        "notice" | "2" => Ok(2),
        "warning" | "warn" | "3" => Ok(3),
        "alert" | "4" => Ok(4),
        "critical" | "5" => Ok(5),
        _ => Err(format!("`{s}` is not a severity (info, notice, warning, alert, critical)")),
    }
}

/// A secret as written, or `"env:NAME"` to read it from the environment when Kevlar starts.
fn secret(doc: &mut Doc, t: &mut Table, key: &'static str) -> Option<String> {
    let (s, span) = t.string(doc, key)?;
    match s.strip_prefix("env:") {
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                doc.error(span, &t.key_path(key), format!("the environment variable `{var}` is not set"));
                None
            }
        },
        None => Some(s),
    }
}

fn parse_nonzero_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than zero (or \"off\")".into()),
        d => Ok(d),
    }
}

/// A value, or `"off"`; `None` when the key is absent.
fn off_or<T>(
    doc: &mut Doc,
    t: &mut Table,
    key: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Option<Option<T>> {
    t.parsed(doc, key, |v| if v == "off" { Ok(None) } else { parse(v).map(Some) }, None)
}

fn required(doc: &mut Doc, t: &mut Table, key: &'static str, what: &str) -> Option<String> {
    match t.string(doc, key) {
        Some((s, span)) if s.trim().is_empty() => {
            doc.error(span, &t.key_path(key), "must not be empty");
            None
        }
        Some((s, _)) => Some(s),
        None => {
            doc.error(None, &t.path, format!("a {what} sink needs `{key}`"));
            None
        }
    }
}

/// `host:port` with a port.
fn address(doc: &mut Doc, t: &mut Table, what: &str) -> Option<String> {
    let a = required(doc, t, "address", what)?;
    let ok = a.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !ok {
        doc.error(None, &t.key_path("address"), format!("`{a}` is not host:port (example: \"logs.example.com:6514\")"));
        return None;
    }
    Some(a)
}

fn http_url(doc: &mut Doc, t: &mut Table, key: &'static str, what: &str) -> Option<String> {
    let u = required(doc, t, key, what)?;
    match u.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => Some(u),
        _ => {
            doc.error(None, &t.key_path(key), format!("`{u}` is not an http(s) URL"));
            None
        }
    }
}

fn ca_file(doc: &mut Doc, t: &mut Table) -> Option<PathBuf> {
    t.string(doc, "ca_file").map(|(s, _)| PathBuf::from(s))
}

fn timeout(doc: &mut Doc, t: &mut Table, default: Duration) -> Duration {
    t.positive_duration(doc, "timeout").unwrap_or(default)
}

fn email_address(s: &str) -> bool {
    let s = s.trim();
    let addr = match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => &s[i + 1..s.len() - 1],
        _ => s,
    };
    addr.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !addr.contains(char::is_whitespace))
}

fn read_sink(doc: &mut Doc, s: &mut Table, span: Option<std::ops::Range<usize>>) -> Option<SinkConfig> {
    let name = s.string(doc, "name").map(|(n, _)| n);
    let kind = s.string(doc, "type");
    let dedup = off_or(doc, s, "dedup", parse_nonzero_duration);
    let digest = off_or(doc, s, "digest", parse_nonzero_duration);
    let rate_limit = off_or(doc, s, "rate_limit", crate::units::rate);
    let Some((kind, kspan)) = kind else {
        doc.error(span, &s.path, format!("a sink needs `type` ({TYPES})"));
        return None;
    };
    let kind = match kind.as_str() {
        "syslog" => read_syslog(doc, s)?,
        "logstash" => read_logstash(doc, s)?,
        "webhook" => read_webhook(doc, s)?,
        "email" => read_email(doc, s)?,
        "sms" => read_sms(doc, s)?,
        "file" => read_file(doc, s)?,
        "stdout" => SinkKind::Stdout,
        other => {
            doc.error(kspan, &s.key_path("type"), format!("`{other}` is not a sink type ({TYPES})"));
            return None;
        }
    };
    let Some(name) = name else {
        doc.error(span, &s.path, "a sink needs `name` (routes and `kevlar alerts` use it)");
        return None;
    };
    // Sinks that page people de-duplicate and keep a budget unless told otherwise.
    let (default_dedup, default_rate) = match kind {
        SinkKind::Email(_) => (Some(Duration::from_secs(600)), Some((30, Duration::from_secs(3600)))),
        SinkKind::Sms(_) => (Some(Duration::from_secs(600)), Some((10, Duration::from_secs(3600)))),
        SinkKind::Webhook(_) => (Some(Duration::from_secs(600)), Some((30, Duration::from_secs(3600)))),
        _ => (None, None),
    };
    Some(SinkConfig {
        name,
        kind,
        dedup: dedup.unwrap_or(default_dedup),
        digest: digest.flatten(),
        rate_limit: rate_limit.unwrap_or(default_rate),
    })
}

/// `type = "syslog"`.
fn read_syslog(doc: &mut Doc, s: &mut Table) -> Option<SinkKind> {
    let address = address(doc, s, "syslog");
    let transport = s.parsed(
        doc,
        "transport",
        |v| match v {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            _ => Err(format!("`{v}` is not a transport (udp, tcp, tls)")),
        },
        None,
    );
    let framing = s.parsed(
        doc,
        "framing",
        |v| match v {
            "octet-counting" => Ok(Framing::OctetCounting),
            "newline" => Ok(Framing::Newline),
            _ => Err(format!("`{v}` is not a framing (octet-counting, newline)")),
        },
        None,
    );
    let app_name = s.string(doc, "app_name").map(|(v, _)| v);
    if app_name.as_ref().is_some_and(|a| a.is_empty() || a.len() > 48 || !a.bytes().all(|b| (33..=126).contains(&b))) {
        doc.error(None, &s.key_path("app_name"), "must be 1 to 48 printable ASCII characters without spaces");
    }
    let hostname = s.string(doc, "hostname").map(|(v, _)| v);
    let facility = s.integer(doc, "facility", 0, 23).map(|n| n as u8);
    let ca_file = ca_file(doc, s);
    Some(SinkKind::Syslog(SyslogSink {
        address: address?,
        transport: transport.unwrap_or(Transport::Udp),
        framing: framing.unwrap_or(Framing::OctetCounting),
        app_name: app_name.unwrap_or_else(|| "kevlar".into()),
        hostname,
        facility: facility.unwrap_or(10),
        ca_file,
    }))
}

/// `type = "logstash"`.
fn read_logstash(doc: &mut Doc, s: &mut Table) -> Option<SinkKind> {
    let address = address(doc, s, "logstash");
    let tls = s.boolean(doc, "tls").unwrap_or(false);
    let ca_file = ca_file(doc, s);
    Some(SinkKind::Logstash(LogstashSink { address: address?, tls, ca_file }))
}

/// `type = "webhook"`.
fn read_webhook(doc: &mut Doc, s: &mut Table) -> Option<SinkKind> {
    let url = http_url(doc, s, "url", "webhook");
    let format = s.parsed(
        doc,
        "format",
        |v| match v {
            "json" => Ok(WebhookFormat::Json),
            "slack" => Ok(WebhookFormat::Slack),
            _ => Err(format!("`{v}` is not a webhook format (json, slack)")),
        },
        None,
    );
    let mut headers = Vec::new();
    if let Some(h) = s.table(doc, "headers") {
        for (k, item, hspan) in h.entries() {
            match (http::HeaderName::from_bytes(k.as_bytes()), item.as_str()) {
                (Ok(_), Some(v)) if http::HeaderValue::from_str(v).is_ok() => {
                    headers.push((k.to_owned(), v.to_owned()))
                }
                (Err(_), _) => doc.error(hspan, &h.key_path(k), "not a valid header name"),
                _ => doc.error(hspan, &h.key_path(k), "expected a header value (a string of visible ASCII)"),
            }
        }
    }
    let secret = secret(doc, s, "secret");
    let timeout = timeout(doc, s, Duration::from_secs(10));
    let ca_file = ca_file(doc, s);
    Some(SinkKind::Webhook(WebhookSink {
        url: url?,
        format: format.unwrap_or(WebhookFormat::Json),
        headers,
        secret,
        timeout,
        ca_file,
    }))
}

/// `type = "email"`.
fn read_email(doc: &mut Doc, s: &mut Table) -> Option<SinkKind> {
    let server = required(doc, s, "server", "email");
    let security = s.parsed(
        doc,
        "security",
        |v| match v {
            "starttls" => Ok(SmtpSecurity::Starttls),
            "tls" => Ok(SmtpSecurity::Tls),
            "none" => Ok(SmtpSecurity::None),
            _ => Err(format!("`{v}` is not an SMTP security (starttls, tls, none)")),
        },
        None,
    );
    let security = security.unwrap_or(SmtpSecurity::Starttls);
    let port = s.integer(doc, "port", 1, 65535).map(|p| p as u16);
    let username = s.string(doc, "username").map(|(v, _)| v);
    let password = secret(doc, s, "password");
    if username.is_some() != password.is_some() {
        doc.error(None, &s.path, "`username` and `password` go together");
    }
    let from = required(doc, s, "from", "email");
    let to = s.strings(doc, "to").map(|(v, _)| v).unwrap_or_default();
    if to.is_empty() {
        doc.error(None, &s.path, "an email sink needs `to` (one address or a list)");
    }
    for a in from.iter().chain(to.iter()) {
        if !email_address(a) {
            doc.error(None, &s.path, format!("`{a}` is not an email address"));
        }
    }
    let ca_file = ca_file(doc, s);
    let timeout = timeout(doc, s, Duration::from_secs(20));
    Some(SinkKind::Email(EmailSink {
        server: server?,
        port: port.unwrap_or(match security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }),
        security,
        username,
        password,
        from: from?,
        to,
        ca_file,
        timeout,
    }))
}

/// `type = "sms"`.
fn read_sms(doc: &mut Doc, s: &mut Table) -> Option<SinkKind> {
    let account_sid = required(doc, s, "account_sid", "sms");
    let auth_token = secret(doc, s, "auth_token");
    if auth_token.is_none() {
        doc.error(None, &s.path, "an sms sink needs `auth_token` (or \"env:NAME\")");
    }
    let from = required(doc, s, "from", "sms");
    let to = s.strings(doc, "to").map(|(v, _)| v).unwrap_or_default();
    if to.is_empty() {
        doc.error(None, &s.path, "an sms sink needs `to` (one number or a list)");
    }
    let base_url = match s.item("base_url") {
        Some(_) => http_url(doc, s, "base_url", "sms"),
        None => Some("https://api.twilio.com".to_owned()),
    };
    let timeout = timeout(doc, s, Duration::from_secs(10));
    Some(SinkKind::Sms(SmsSink {
        account_sid: account_sid?,
        auth_token: auth_token?,
        from: from?,
        to,
        base_url: base_url?.trim_end_matches('/').to_owned(),
        timeout,
    }))
}

/// `type = "file"`.
fn read_file(doc: &mut Doc, s: &mut Table) -> Option<SinkKind> {
    let path = required(doc, s, "path", "file").map(PathBuf::from);
    let max_bytes = s.parsed(doc, "max_bytes", parse_size, Some(&crate::units::size_from_int));
    let keep = s.integer(doc, "keep", 0, 1000).map(|n| n as usize);
    Some(SinkKind::File(FileSink { path: path?, max_bytes: max_bytes.unwrap_or(100 << 20), keep: keep.unwrap_or(5) }))
}

pub(crate) fn read_alerts(doc: &mut Doc, t: &mut Table, a: &mut AlertsConfig) {
    if let Some(n) = t.integer(doc, "max_attempts", 1, 1000) {
        a.max_attempts = n as u32;
    }
    if let Some(d) = t.positive_duration(doc, "backoff_min") {
        a.backoff_min = d;
    }
    if let Some(d) = t.positive_duration(doc, "backoff_max") {
        a.backoff_max = d;
    }
    if a.backoff_max < a.backoff_min {
        doc.error(None, &t.key_path("backoff_max"), "must not be shorter than `backoff_min`");
    }
    if let Some(d) = t.positive_duration(doc, "health_interval") {
        a.health_interval = d;
    }
    if let Some(n) = t.integer(doc, "max_pending", 1000, 1_000_000_000) {
        a.max_pending = n as u64;
    }
    if let Some(r) = t.parsed(doc, "user_notices", crate::units::rate, None) {
        a.user_notices = r;
    }
    if let Some(r) = t.parsed(doc, "user_notices_total", crate::units::rate, None) {
        a.user_notices_total = r;
    }
    for (mut s, span) in t.tables(doc, "sink") {
        let sink = read_sink(doc, &mut s, span.clone());
        s.finish(doc);
        if let Some(sink) = sink {
            let valid_name =
                !sink.name.is_empty() && sink.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_name {
                doc.error(span, &format!("{}.name", t.key_path("sink")), "a sink name is letters, digits, `-` and `_`");
            } else if a.sinks.iter().any(|x| x.name == sink.name) {
                doc.error(
                    span,
                    &format!("{}.name", t.key_path("sink")),
                    format!("two sinks are named `{}`", sink.name),
                );
            } else {
                a.sinks.push(sink);
            }
        }
    }
    for (mut r, span) in t.tables(doc, "route") {
        let mut route = AlertRoute::default();
        if let Some((list, _)) = r.strings(doc, "actions") {
            for act in &list {
                let bare = act.trim_end_matches('*');
                if bare.is_empty() && act != "*"
                    || !bare.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b':')
                {
                    doc.error(None, &r.key_path("actions"), format!("`{act}` is not an event action pattern"));
                }
            }
            route.actions = list;
        }
        if let Some((list, _)) = r.strings(doc, "categories") {
            route.categories = list;
        }
        route.min_severity = r.parsed(doc, "min_severity", severity, Some(&|n: i64| severity(&n.to_string())));
        if let Some((list, lspan)) = r.strings(doc, "addresses") {
            for s in list {
                match crate::units::cidr(&s) {
                    Ok(n) => route.addresses.push(n),
                    Err(m) => doc.error(lspan.clone(), &r.key_path("addresses"), m),
                }
            }
        }
        if let Some((list, _)) = r.strings(doc, "users") {
            route.users = list;
        }
        match r.strings(doc, "sinks") {
            Some((list, lspan)) if !list.is_empty() => {
                for n in &list {
                    if !a.sinks.iter().any(|s| &s.name == n) {
                        let known: Vec<&str> = a.sinks.iter().map(|s| s.name.as_str()).collect();
                        doc.error(
                            lspan.clone(),
                            &r.key_path("sinks"),
                            format!(
                                "no sink is named `{n}` (sinks: {})",
                                if known.is_empty() { "none".into() } else { known.join(", ") }
                            ),
                        );
                    }
                }
                route.sinks = list;
            }
            _ => doc.error(span, &r.path, "a route needs `sinks` (names of [[alerts.sink]] tables)"),
        }
        r.finish(doc);
        a.routes.push(route);
    }
}

/// `[cluster]`: `redis` (required; `redis://`, a password in it may be `env:NAME` as a whole URL),
/// `instance`, `name`, `reconcile`, `ca_file` (with `rediss://`).
pub(crate) fn read_cluster(doc: &mut Doc, t: &mut Table) -> Option<ClusterConfig> {
    let redis = secret(doc, t, "redis");
    let instance = t.string(doc, "instance").map(|(s, _)| s);
    let name = t.string(doc, "name").map(|(s, _)| s);
    let reconcile = t.positive_duration(doc, "reconcile");
    let redis = match redis {
        Some(r) if r.starts_with("redis://") || r.starts_with("rediss://") || r.starts_with("unix://") => r,
        Some(_) => {
            doc.error(
                None,
                &t.key_path("redis"),
                "expected a redis:// or rediss:// URL (example: \"redis://127.0.0.1:6379/0\")",
            );
            return None;
        }
        None => {
            doc.error(None, &t.path, "needs `redis` (example: \"redis://127.0.0.1:6379/0\")");
            return None;
        }
    };
    let name = name.unwrap_or_else(|| "default".into());
    let ok =
        |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
    if !ok(&name) {
        doc.error(None, &t.key_path("name"), "1 to 64 letters, digits, `-`, `_` or `.`");
        return None;
    }
    let instance = instance.unwrap_or_else(host_name);
    if !ok(&instance) {
        doc.error(None, &t.key_path("instance"), "1 to 64 letters, digits, `-`, `_` or `.`");
        return None;
    }
    let ca_file = ca_file(doc, t);
    if ca_file.is_some() && !redis.starts_with("rediss://") {
        doc.error(None, &t.key_path("ca_file"), "a CA is for TLS: the URL must be rediss://");
        return None;
    }
    Some(ClusterConfig { redis, instance, name, reconcile: reconcile.unwrap_or(Duration::from_secs(30)), ca_file })
}

/// The host name, as `hostname` says it (or `kevlar`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| {
            s.trim().chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(64).collect::<String>()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "kevlar".into())
}
