//! `kevlar doctor`'s look at the deployment itself, after the runtime: the configuration (what
//! only reports instead of stopping), TLS (certificate expiry, chain, key), the data directory's
//! and the secrets' exposure, and whether each alert sink can be reached. Each line is a verdict,
//! what was seen, and the fix.

use std::net::ToSocketAddrs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kevlar_config::{Config, Mode, SinkKind, SmtpSecurity, Transport};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub verdict: Verdict,
    pub area: &'static str,
    pub what: String,
    pub fix: Option<String>,
}

fn check(verdict: Verdict, area: &'static str, what: impl Into<String>, fix: Option<&str>) -> Check {
    Check { verdict, area, what: what.into(), fix: fix.map(str::to_owned) }
}

/// The configuration to look at: `--config`, else ./kevlar.toml when there is one, else the
/// embedded defaults. An invalid file is itself the first (failing) check.
pub fn load(config: Option<&Path>, data_dir: Option<PathBuf>) -> (Option<Config>, Vec<Check>) {
    let overrides = kevlar_config::Overrides { data_dir, ..Default::default() };
    let file = super::serve::config_file(config);
    match &file {
        None => match kevlar_config::defaults_with(&overrides) {
            Ok(c) => (
                Some(c),
                vec![check(
                    Verdict::Warn,
                    "config",
                    "no kevlar.toml: the embedded defaults",
                    Some("`kevlar init` writes a commented file to start from; pass it with --config"),
                )],
            ),
            Err(e) => (None, vec![check(Verdict::Fail, "config", format!("the defaults do not load: {e}"), None)]),
        },
        Some(f) => match kevlar_config::load_file(f, &overrides) {
            Ok(c) => (Some(c), vec![check(Verdict::Ok, "config", format!("{} is valid", f.display()), None)]),
            Err(e) => (
                None,
                vec![check(
                    Verdict::Fail,
                    "config",
                    format!("{} has {} problem(s): {}", f.display(), e.0.len(), e.to_string().replace('\n', "; ")),
                    Some("`kevlar validate` shows each one with its line"),
                )],
            ),
        },
    }
}

/// Every check of a loaded configuration.
pub fn checks(c: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    enforcement(c, &mut out);
    tls(c, &mut out);
    data(c, &mut out);
    secrets(c, &mut out);
    sinks(c, &mut out);
    out
}

fn enforcement(c: &Config, out: &mut Vec<Check>) {
    match c.detect.mode {
        Mode::Block => out.push(check(Verdict::Ok, "detect", "block: attacks are refused with 403", None)),
        Mode::Monitor => out.push(check(
            Verdict::Warn,
            "detect",
            "monitor: attacks are recorded and reach the app",
            Some("once `kevlar events` shows no false positives, set [detect] mode = \"block\""),
        )),
        Mode::Off => out.push(check(
            Verdict::Fail,
            "detect",
            "off: requests are not inspected",
            Some("set [detect] mode = \"monitor\" (or \"block\")"),
        )),
    }
    let lax: Vec<String> = c
        .detect
        .families
        .iter()
        .filter(|(_, m)| *m < c.detect.mode)
        .map(|(f, m)| format!("{f} ({})", mode_name(*m)))
        .chain(
            c.detect
                .paths
                .iter()
                .filter(|p| p.mode < c.detect.mode)
                .map(|p| format!("{} ({})", p.prefix, mode_name(p.mode))),
        )
        .collect();
    if !lax.is_empty() {
        out.push(check(
            Verdict::Warn,
            "detect",
            format!("less than the global mode for: {}", lax.join(", ")),
            Some("keep such exceptions as narrow as the false positive they answer ([[detect.exclude]] names one argument)"),
        ));
    }
    let bans_enforced = c.bans.enforce.unwrap_or(c.detect.mode == Mode::Block);
    if !bans_enforced {
        out.push(check(
            Verdict::Warn,
            "bans",
            "automatic bans are recorded, not enforced: a banned address is still served",
            Some("set [bans] enforce = true (or [detect] mode = \"block\")"),
        ));
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Off => "off",
        Mode::Monitor => "monitor",
        Mode::Block => "block",
    }
}

fn tls(c: &Config, out: &mut Vec<Check>) {
    let Some(t) = &c.tls else {
        out.push(check(
            Verdict::Warn,
            "tls",
            "no [tls]: Kevlar serves plain HTTP",
            Some("fine behind a TLS terminator on the same host; otherwise set [tls] cert and key"),
        ));
        return;
    };
    out.extend(certificate(&t.cert, &t.key, kevlar_core::time::now_ms() / 1000));
}

/// The checks of a certificate chain and its key, at `now` (Unix seconds).
pub fn certificate(cert: &Path, key: &Path, now: i64) -> Vec<Check> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut out = Vec::new();
    let chain: Vec<CertificateDer<'static>> = match CertificateDer::pem_file_iter(cert) {
        Ok(it) => it.filter_map(Result::ok).collect(),
        Err(e) => {
            out.push(check(Verdict::Fail, "tls", format!("{}: {e}", cert.display()), None));
            return out;
        }
    };
    if chain.is_empty() {
        out.push(check(Verdict::Fail, "tls", format!("{}: no certificate in it", cert.display()), None));
        return out;
    };
    let parsed: Vec<_> =
        chain.iter().filter_map(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c)).collect();
    let Some(leaf_cert) = parsed.first() else {
        out.push(check(Verdict::Fail, "tls", format!("{}: the certificate cannot be read", cert.display()), None));
        return out;
    };
    let not_after = leaf_cert.validity().not_after.timestamp();
    let not_before = leaf_cert.validity().not_before.timestamp();
    let until = leaf_cert.validity().not_after.to_datetime().date();
    let days = (not_after - now).div_euclid(86400);
    let renew = Some("renew the certificate (certbot renew, or your CA's tooling) and reload Kevlar");
    if not_after < now {
        out.push(check(Verdict::Fail, "tls", format!("the certificate expired on {until}"), renew));
    } else if (now) < not_before {
        out.push(check(Verdict::Fail, "tls", "the certificate is not valid yet", Some("check the host's clock")));
    } else if days < 14 {
        out.push(check(Verdict::Fail, "tls", format!("the certificate expires on {until}, in {days} day(s)"), renew));
    } else if days < 30 {
        out.push(check(Verdict::Warn, "tls", format!("the certificate expires on {until}, in {days} days"), renew));
    } else {
        out.push(check(Verdict::Ok, "tls", format!("the certificate is valid until {until} ({days} days)"), None));
    }
    let self_signed = leaf_cert.issuer() == leaf_cert.subject();
    if self_signed {
        out.push(check(
            Verdict::Warn,
            "tls",
            "the certificate is self-signed: browsers refuse it",
            Some("use a certificate from a public CA (Let's Encrypt) for a public site"),
        ));
    } else {
        // Each certificate is issued by the next one; the last may be issued by a root the client has.
        let broken = parsed.windows(2).position(|w| w[0].issuer() != w[1].subject());
        match broken {
            Some(i) => out.push(check(
                Verdict::Fail,
                "tls",
                format!("the chain is out of order: certificate {} is not issued by certificate {}", i + 1, i + 2),
                Some("put the server certificate first, then each intermediate in order"),
            )),
            None if chain.len() == 1 => out.push(check(
                Verdict::Warn,
                "tls",
                "the file holds the server certificate alone: clients that lack the intermediate fail",
                Some("append the intermediate certificate(s) (the CA's fullchain.pem)"),
            )),
            None => out.push(check(
                Verdict::Ok,
                "tls",
                format!("the chain holds {} certificates in order", chain.len()),
                None,
            )),
        }
    }
    match kevlar_proxy::tls::server_config(cert, key, true) {
        Ok(_) => out.push(check(Verdict::Ok, "tls", "the key matches; TLS 1.3 and 1.2 only, no older protocol", None)),
        Err(e) => out.push(check(Verdict::Fail, "tls", format!("the key does not go with the certificate: {e}"), None)),
    }
    out
}

/// Whether others than the owner may read `p` (group or world bits).
fn open_to_others(p: &Path) -> Option<u32> {
    std::fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777).filter(|m| m & 0o077 != 0)
}

fn data(c: &Config, out: &mut Vec<Check>) {
    let dir = &c.data_dir;
    if !dir.exists() {
        out.push(check(
            Verdict::Ok,
            "data",
            format!("{} does not exist yet (made 0700 on start)", dir.display()),
            None,
        ));
        return;
    }
    let mut open = Vec::new();
    if let Some(m) = open_to_others(dir) {
        open.push(format!("{} ({m:o})", dir.display()));
    }
    for f in ["events.db", "shield.db", "outbox.db", kevlar_admin::TOKEN_FILE] {
        let p = dir.join(f);
        if let Some(m) = open_to_others(&p) {
            open.push(format!("{} ({m:o})", p.display()));
        }
    }
    if open.is_empty() {
        out.push(check(
            Verdict::Ok,
            "data",
            format!("{} and its databases are the owner's alone", dir.display()),
            None,
        ));
    } else {
        out.push(check(
            Verdict::Fail,
            "data",
            format!("others can read: {}", open.join(", ")),
            Some(&format!("chmod 700 {0} && chmod 600 {0}/*.db {0}/admin.token", dir.display())),
        ));
    }
    let token = dir.join(kevlar_admin::TOKEN_FILE);
    let loopback = c.admin.listen.ip().is_loopback();
    let admin_tls = c.admin.tls_cert.is_some();
    if !loopback && !admin_tls {
        out.push(check(
            Verdict::Fail,
            "admin",
            format!("the admin API listens on {} without TLS: the token crosses the network in clear", c.admin.listen),
            Some("set [admin] tls_cert and tls_key, or listen on 127.0.0.1"),
        ));
    } else if !loopback {
        out.push(check(
            Verdict::Warn,
            "admin",
            format!("the admin API listens on {} (TLS): reachable from the network", c.admin.listen),
            Some("firewall it to the hosts that need it"),
        ));
    } else if token.exists() && open_to_others(&token).is_none() {
        out.push(check(Verdict::Ok, "admin", format!("loopback only ({}); the token is 0600", c.admin.listen), None));
    } else {
        out.push(check(Verdict::Ok, "admin", format!("loopback only ({})", c.admin.listen), None));
    }
}

fn secrets(c: &Config, out: &mut Vec<Check>) {
    let Some(file) = &c.source else { return };
    let mut secrets: Vec<&str> = Vec::new();
    for s in &c.alerts.sinks {
        match &s.kind {
            SinkKind::Email(e) => secrets.extend(e.password.as_deref()),
            SinkKind::Sms(x) => secrets.push(&x.auth_token),
            SinkKind::Webhook(w) => {
                secrets.extend(w.secret.as_deref());
                secrets.extend(w.headers.iter().map(|(_, v)| v.as_str()));
                // Slack's and Discord's webhook URLs carry their token in the path.
                if w.url.contains("/services/") || w.url.contains("/api/webhooks/") {
                    secrets.push(&w.url);
                }
            }
            _ => {}
        }
    }
    // Written in the file itself, not taken from the environment (`env:NAME`).
    let text = std::fs::read_to_string(file).unwrap_or_default();
    if !secrets.iter().any(|s| s.len() >= 4 && text.contains(s)) {
        return;
    }
    match open_to_others(file) {
        Some(m) => out.push(check(
            Verdict::Fail,
            "secrets",
            format!("{} holds alert credentials and others can read it ({m:o})", file.display()),
            Some(&format!(
                "chmod 600 {}, or take them from the environment (`password = \"env:SMTP_PASSWORD\"`)",
                file.display()
            )),
        )),
        None => out.push(check(
            Verdict::Ok,
            "secrets",
            format!("{} holds credentials and is the owner's alone", file.display()),
            None,
        )),
    }
}

fn sinks(c: &Config, out: &mut Vec<Check>) {
    if c.alerts.sinks.is_empty() {
        out.push(check(
            Verdict::Warn,
            "alerts",
            "no alert sink: events stay in the store and nobody is told",
            Some("add an [[alerts.sink]] (email, Slack webhook, syslog) and route warnings to it"),
        ));
        return;
    }
    for s in &c.alerts.sinks {
        let target = match &s.kind {
            SinkKind::Syslog(x) if x.transport == Transport::Udp => {
                out.push(check(
                    Verdict::Ok,
                    "alerts",
                    format!("{} ({}): UDP to {}, not checkable without sending", s.name, s.kind.name(), x.address),
                    None,
                ));
                continue;
            }
            SinkKind::Syslog(x) => x.address.clone(),
            SinkKind::Logstash(x) => x.address.clone(),
            SinkKind::Email(x) => {
                if x.security == SmtpSecurity::None && !is_loopback_host(&x.server) {
                    out.push(check(
                        Verdict::Fail,
                        "alerts",
                        format!("{}: mail to {} without TLS", s.name, x.server),
                        Some("set security = \"starttls\" or \"tls\""),
                    ));
                }
                format!("{}:{}", x.server, x.port)
            }
            SinkKind::Webhook(x) => kevlar_sinks::util::http::authority(&x.url),
            SinkKind::Sms(x) => kevlar_sinks::util::http::authority(&x.base_url),
            SinkKind::File(f) => {
                let dir = f.path.parent().map(Path::to_path_buf).unwrap_or_default();
                let dir = if dir.is_relative() { c.data_dir.join(dir) } else { dir };
                let writable = std::fs::metadata(&dir).is_ok_and(|m| !m.permissions().readonly()) || !dir.exists();
                out.push(check(
                    if writable { Verdict::Ok } else { Verdict::Fail },
                    "alerts",
                    format!("{} (file): {}", s.name, f.path.display()),
                    (!writable).then_some("make the directory writable by Kevlar's user"),
                ));
                continue;
            }
            SinkKind::Stdout => continue,
        };
        match reach(&target, Duration::from_secs(3)) {
            Ok(()) => out.push(check(Verdict::Ok, "alerts", format!("{} ({}): {target} answers", s.name, s.kind.name()), None)),
            Err(e) => out.push(check(
                Verdict::Fail,
                "alerts",
                format!("{} ({}): cannot reach {target}: {e}", s.name, s.kind.name()),
                Some("check the address, the firewall, and that the service runs; deliveries wait in the outbox meanwhile"),
            )),
        }
    }
}

fn is_loopback_host(h: &str) -> bool {
    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// A TCP connection to `target` within `timeout`.
fn reach(target: &str, timeout: Duration) -> Result<(), String> {
    let addrs: Vec<_> = target.to_socket_addrs().map_err(|e| format!("no address ({e})"))?.collect();
    let mut last = String::from("no address");
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Prints the checks as a table: verdict, area, what was seen; the fix on the next line.
pub fn print(checks: &[Check]) {
    for c in checks {
        println!("{:<5} {:<8} {}", c.verdict.as_str().to_uppercase(), c.area, c.what);
        if let Some(f) = &c.fix {
            println!("{:<14} fix: {f}", "");
        }
    }
}

pub fn to_json(checks: &[Check]) -> Value {
    Value::Array(
        checks
            .iter()
            .map(|c| json!({"verdict": c.verdict.as_str(), "area": c.area, "what": c.what, "fix": c.fix}))
            .collect(),
    )
}
