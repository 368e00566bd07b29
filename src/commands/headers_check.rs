//! `kevlar headers check URL`: grades a site's security headers the way the MDN HTTP Observatory
//! does (its requests, its ten tests, its score and grade: `kevlar-grade`), then grades the same
//! answers once more with Kevlar's header policy applied to them, and says what Kevlar would add,
//! change and remove.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kevlar_grade::{Hop, Report, Response, Retrieved, Session};

use crate::cli::HeadersCheckArgs;

/// Grades from best to worst, for `--fail-under`.
const GRADES: &[&str] = &["A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F"];

/// Where the two sessions start.
struct Target {
    host: String,
    http_port: u16,
    https_port: u16,
}

impl Target {
    fn parse(url: &str, http_port: Option<u16>, https_port: Option<u16>) -> anyhow::Result<Target> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
            None => (None, url),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse::<u16>() {
                Ok(p) => (h.to_owned(), Some(p)),
                Err(_) => bail!("`{url}`: `{p}` is not a port"),
            },
            _ => (authority.to_owned(), None),
        };
        if host.is_empty() {
            bail!("`{url}` names no host");
        }
        let (mut http, mut https) = (80, 443);
        match (scheme.as_deref(), port) {
            (Some("http"), Some(p)) => http = p,
            (Some("https") | None, Some(p)) => https = p,
            (Some("http" | "https") | None, None) => {}
            (Some(s), _) => bail!("`{url}`: the scheme is http or https, not {s}"),
        }
        Ok(Target {
            host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            http_port: http_port.unwrap_or(http),
            https_port: https_port.unwrap_or(https),
        })
    }

    fn url(&self, scheme: &str) -> String {
        let (port, default) = if scheme == "https" { (self.https_port, 443) } else { (self.http_port, 80) };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if port == default {
            format!("{scheme}://{host}/")
        } else {
            format!("{scheme}://{host}:{port}/")
        }
    }
}

/// Accepts any certificate: the Observatory grades a site whose certificate does not verify
/// (and says so) rather than not at all.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The two clients: one that verifies certificates (the web's roots and `--ca`), one that does not.
struct Clients {
    verifying: ureq::Agent,
    lenient: ureq::Agent,
}

impl Clients {
    fn new(ca: Option<&std::path::Path>, redirects: u32) -> anyhow::Result<Clients> {
        let timeout = Duration::from_secs(kevlar_grade::REQUEST_TIMEOUT_SECS);
        let verifying_tls = kevlar_sinks::util::net::tls_config(ca).map_err(|e| anyhow::anyhow!("{e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let lenient_tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS setup")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        let build = |tls: Arc<rustls::ClientConfig>| {
            ureq::AgentBuilder::new()
                .timeout(timeout)
                .redirects(redirects)
                .user_agent(kevlar_grade::USER_AGENT)
                .tls_config(tls)
                .build()
        };
        Ok(Clients { verifying: build(verifying_tls), lenient: build(Arc::new(lenient_tls)) })
    }

    fn agent(&self, verify: bool) -> &ureq::Agent {
        if verify {
            &self.verifying
        } else {
            &self.lenient
        }
    }
}

/// Why a request got no answer.
enum Failure {
    Certificate,
    Other,
}

/// One request: its answer whatever the status, or why there was none.
fn request(req: ureq::Request) -> Result<ureq::Response, Failure> {
    match req.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Ok(r),
        Err(ureq::Error::Transport(t)) => {
            let text = t.to_string().to_ascii_lowercase();
            if text.contains("certificate") || text.contains("unknownissuer") || text.contains("notvalidforname") {
                Err(Failure::Certificate)
            } else {
                Err(Failure::Other)
            }
        }
    }
}

fn headers_of(r: &ureq::Response) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in r.headers_names() {
        for v in r.all(&name) {
            out.push((name.to_ascii_lowercase(), v.to_owned()));
        }
    }
    out
}

/// `Location` resolved against the URL it came from.
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(l) = location.strip_prefix("//") {
        return format!("{scheme}://{l}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = &rest[authority.len()..];
    let dir = path.rsplit_once('/').map_or("/", |(d, _)| d);
    format!("{scheme}://{authority}{}/{location}", dir.trim_end_matches('/'))
}

/// The cookies a browser would send back: the last value set for each name.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, headers: &[(String, String)]) {
        for (n, v) in headers {
            if n == "set-cookie" {
                if let Some((name, value)) = v.split(';').next().and_then(|p| p.split_once('=')) {
                    self.0.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
    }
    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }
}

/// A session from `start`: redirects followed by hand, each answer kept; again without
/// certificate checks when one fails.
fn session(clients: &Clients, start: &str) -> Option<(Session, Jar)> {
    match session_once(clients, start, true) {
        Ok(s) => Some(s),
        Err(Failure::Certificate) => session_once(clients, start, false).ok(),
        Err(Failure::Other) => None,
    }
}

fn session_once(clients: &Clients, start: &str, verify: bool) -> Result<(Session, Jar), Failure> {
    let mut jar = Jar::default();
    let mut chain = Vec::new();
    let mut url = start.to_owned();
    loop {
        let mut req = clients.agent(verify).get(&url).set("Accept", kevlar_grade::ACCEPT);
        if let Some(c) = jar.header() {
            req = req.set("Cookie", &c);
        }
        let resp = request(req)?;
        let status = resp.status();
        let headers = headers_of(&resp);
        jar.take(&headers);
        let location = resp.header("location").map(str::to_owned);
        let redirect = kevlar_grade::REDIRECT_STATUSES.contains(&status) && chain.len() < kevlar_grade::MAX_REDIRECTS;
        chain.push(Hop { url: url.clone(), status, headers, preloaded: false });
        if redirect {
            url = resolve(&url, location.as_deref().unwrap_or("undefined"));
            continue;
        }
        let mut body = Vec::new();
        let _ = resp.into_reader().take(kevlar_grade::MAX_BODY_BYTES as u64).read_to_end(&mut body);
        let body = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
        return Ok((Session { chain, body, verified_tls: verify }, jar));
    }
}

/// Everything the Observatory's retriever collects, fetched as it fetches it.
fn retrieve(target: &Target, ca: Option<&std::path::Path>) -> anyhow::Result<Retrieved> {
    let hand = Clients::new(ca, 0)?;
    let following = Clients::new(ca, kevlar_grade::MAX_REDIRECTS as u32)?;
    let (https, http) = std::thread::scope(|s| {
        let a = s.spawn(|| session(&hand, &target.url("https")));
        let b = s.spawn(|| session(&hand, &target.url("http")));
        (a.join().ok().flatten(), b.join().ok().flatten())
    });
    let used = https.as_ref().or(http.as_ref());
    let mut robots = None;
    let mut cors_url = used.and_then(|(s, _)| s.chain.last()).map(|h| h.url.clone());
    let verify = used.is_none_or(|(s, _)| s.verified_tls);
    if let Some((s, jar)) = used.filter(|(s, _)| !s.verified_tls) {
        let start = s.chain.first().map(|h| h.url.clone()).unwrap_or_default();
        let origin = start.trim_end_matches('/').to_owned();
        let robots_url = format!("{origin}/robots.txt");
        let mut req = following.agent(false).get(&robots_url).set("Accept", kevlar_grade::ROBOTS_ACCEPT);
        if let Some(c) = jar.header() {
            req = req.set("Cookie", &c);
        }
        if let Ok(r) = request(req) {
            let resp = Response { url: r.get_url().to_owned(), status: r.status(), headers: headers_of(&r) };
            if (200..300).contains(&resp.status) {
                cors_url = Some(robots_url.clone());
            }
            robots = Some(resp);
        }
    }
    let cors = cors_url.and_then(|u| {
        let mut req = following
            .agent(verify)
            .request("OPTIONS", &u)
            .set("Accept", kevlar_grade::ACCEPT)
            .set("Origin", kevlar_grade::CORS_ORIGIN)
            .set("Access-Control-Request-Method", "GET");
        if let Some(c) = used.filter(|(s, _)| !s.verified_tls).and_then(|(_, j)| j.header()) {
            req = req.set("Cookie", &c);
        }
        request(req).ok().map(|r| Response { url: r.get_url().to_owned(), status: r.status(), headers: headers_of(&r) })
    });
    Ok(Retrieved {
        host: target.host.clone(),
        https: https.map(|(s, _)| s),
        http: http.map(|(s, _)| s),
        robots,
        cors,
        preloaded: false,
    })
}

/// The answers as they would leave Kevlar: its header policy applied to each (`from_app`, so
/// `app_values = "keep"` keeps what the site set).
fn with_kevlar(r: &Retrieved, policy: &kevlar_proxy::headers::HeaderPolicy) -> Retrieved {
    let apply = |url: &str, headers: &[(String, String)]| -> Vec<(String, String)> {
        let path = url.split_once("://").map_or("/", |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
        let mut map = http::HeaderMap::new();
        for (n, v) in headers {
            if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(n.as_bytes()), http::HeaderValue::from_str(v)) {
                map.append(n, v);
            }
        }
        policy.apply(path.split('?').next().unwrap_or("/"), &mut map, true);
        map.iter().map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect()
    };
    let session = |s: &Option<Session>| {
        s.clone().map(|mut s| {
            for h in &mut s.chain {
                h.headers = apply(&h.url, &h.headers);
            }
            s
        })
    };
    let response = |x: &Option<Response>| {
        x.clone().map(|mut x| {
            x.headers = apply(&x.url, &x.headers);
            x
        })
    };
    Retrieved {
        https: session(&r.https),
        http: session(&r.http),
        robots: response(&r.robots),
        cors: response(&r.cors),
        ..r.clone()
    }
}

/// What Kevlar changes in the final answer: added, changed (before, after) and removed headers.
type Changes = (Vec<(String, String)>, Vec<(String, String, String)>, Vec<String>);

fn changes(before: &Retrieved, after: &Retrieved) -> Changes {
    let last = |r: &Retrieved| -> BTreeMap<String, String> {
        let s = r.https.as_ref().or(r.http.as_ref());
        let mut m = BTreeMap::new();
        for (n, v) in s.and_then(|s| s.chain.last()).map(|h| h.headers.clone()).unwrap_or_default() {
            m.entry(n)
                .and_modify(|e: &mut String| {
                    e.push_str(", ");
                    e.push_str(&v);
                })
                .or_insert(v);
        }
        m
    };
    let (b, a) = (last(before), last(after));
    let added = a.iter().filter(|(n, _)| !b.contains_key(*n)).map(|(n, v)| (n.clone(), v.clone())).collect();
    let changed = a
        .iter()
        .filter_map(|(n, v)| b.get(n).filter(|old| *old != v).map(|old| (n.clone(), old.clone(), v.clone())))
        .collect();
    let removed = b.keys().filter(|n| !a.contains_key(*n)).cloned().collect();
    (added, changed, removed)
}

fn print_report(r: &Report) {
    for t in &r.tests {
        let verdict = if t.pass { "PASS" } else { "FAIL" };
        println!("  {verdict}  {:<30} {:<58} {:>+4}", t.name, t.result, t.modifier);
        if !t.pass && !t.recommendation.is_empty() {
            println!("        {}", t.recommendation);
        }
    }
}

fn policy_for(config: Option<&PathBuf>) -> anyhow::Result<(kevlar_proxy::headers::HeaderPolicy, String)> {
    let file = super::serve::config_file(config.map(PathBuf::as_path));
    let (c, from) = match &file {
        Some(f) => (
            kevlar_config::load_file(f, &kevlar_config::Overrides::default()).map_err(|e| anyhow::anyhow!("{e}"))?,
            f.display().to_string(),
        ),
        None => (
            kevlar_config::defaults_with(&kevlar_config::Overrides::default()).map_err(|e| anyhow::anyhow!("{e}"))?,
            "the embedded defaults".to_owned(),
        ),
    };
    Ok((kevlar_proxy::headers::HeaderPolicy::from_config(&c.headers), from))
}

pub fn check(a: HeadersCheckArgs) -> anyhow::Result<ExitCode> {
    let target = Target::parse(&a.url, a.http_port, a.https_port)?;
    let (policy, policy_from) = policy_for(a.config.as_ref())?;
    let fail_under = match &a.fail_under {
        Some(g) => Some(
            GRADES
                .iter()
                .position(|x| x.eq_ignore_ascii_case(g))
                .with_context(|| format!("--fail-under {g}: a grade is one of {}", GRADES.join(", ")))?,
        ),
        None => None,
    };
    let retrieved = retrieve(&target, a.ca.as_deref())?;
    if retrieved.site_down() {
        bail!("{}: neither {} nor {} answered", target.host, target.url("https"), target.url("http"));
    }
    let report = kevlar_grade::grade(&retrieved);
    let kevlar = with_kevlar(&retrieved, &policy);
    let behind = kevlar_grade::grade(&kevlar);
    let (added, changed, removed) = changes(&retrieved, &kevlar);
    if a.format == "json" {
        let v = serde_json::json!({
            "host": target.host,
            "grade": report.grade,
            "score": report.score,
            "status": retrieved.final_status(),
            "verified": retrieved.https.as_ref().map(|s| s.verified_tls),
            "tests": report.tests,
            "with_kevlar": {
                "policy": policy_from,
                "grade": behind.grade,
                "score": behind.score,
                "tests": behind.tests,
                "added": added.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
                "changed": changed.iter().map(|(n, o, v)| serde_json::json!({"name": n, "from": o, "to": v})).collect::<Vec<_>>(),
                "removed": removed,
            },
        });
        println!("{v}");
    } else {
        let verified = match retrieved.https.as_ref().map(|s| s.verified_tls) {
            Some(false) => " (the certificate does not verify)",
            None => " (no answer over HTTPS)",
            Some(true) => "",
        };
        println!(
            "{}: {} (score {}), as the MDN HTTP Observatory grades it{verified}",
            target.host, report.grade, report.score
        );
        print_report(&report);
        println!();
        println!("Behind Kevlar ({policy_from}): {} (score {})", behind.grade, behind.score);
        for (n, v) in &added {
            println!("  + {n}: {v}");
        }
        for (n, o, v) in &changed {
            println!("  ~ {n}: {o}\n      -> {v}");
        }
        for n in &removed {
            println!("  - {n}");
        }
        if retrieved.https.is_none() {
            println!("  (HTTPS: give Kevlar a certificate, [tls] in kevlar.toml, for the HTTPS tests to pass)");
        }
    }
    let rank = GRADES.iter().position(|g| *g == report.grade).unwrap_or(GRADES.len());
    Ok(match fail_under {
        Some(limit) if rank > limit => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_redirects() {
        let t = Target::parse("https://localhost:8443/x", Some(8080), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.host.as_str(), t.http_port, t.https_port), ("localhost", 8080, 8443));
        assert_eq!(t.url("https"), "https://localhost:8443/");
        let t = Target::parse("example.com", None, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.url("http"), t.url("https")),
            ("http://example.com/".to_owned(), "https://example.com/".to_owned())
        );
        assert!(Target::parse("ftp://x", None, None).is_err());
        assert_eq!(resolve("http://a:1/b/c", "/d"), "http://a:1/d");
        assert_eq!(resolve("http://a:1/b/c", "d"), "http://a:1/b/d");
        assert_eq!(resolve("http://a/b", "https://c/"), "https://c/");
        assert_eq!(resolve("https://a/b", "//c/d"), "https://c/d");
    }
}
