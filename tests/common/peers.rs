//! Real peers for the alert sinks, on loopback with ports the system picks: rsyslog (UDP, TCP,
//! TLS), an SMTP server (Python's aiosmtpd), an HTTP receiver (webhooks; the Twilio stand-in) and a
//! line listener (Logstash `json_lines`). Each stops when dropped.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::KEVLAR;

/// Polls `cond` every 20 ms until it holds or `secs` pass; panics with `what` on timeout.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// `kevlar cert --self-signed` into `dir`: ca.pem, cert.pem, key.pem for localhost and 127.0.0.1.
pub fn certs(dir: &Path) -> PathBuf {
    let out = Command::new(KEVLAR).args(["cert", "--self-signed", "--out"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir.to_owned()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Rsyslog {
    child: Child,
    pub dir: tempfile::TempDir,
    pub udp: u16,
    pub tcp: u16,
    pub tls: u16,
}

impl Rsyslog {
    /// rsyslogd in the foreground with UDP, TCP and TLS (gtls, anonymous clients) inputs, writing
    /// `APP-NAME MSGID STRUCTURED-DATA MSG` per message to out.log.
    pub fn start() -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        certs(&d.join("tls"));
        let udp = free_udp_port();
        let conf = format!(
            r#"global(workDirectory="{d}"
       defaultNetstreamDriverCAFile="{d}/tls/ca.pem"
       defaultNetstreamDriverCertFile="{d}/tls/cert.pem"
       defaultNetstreamDriverKeyFile="{d}/tls/key.pem")
module(load="imudp")
module(load="imtcp" maxSessions="100")
template(name="raw" type="string" string="%app-name% %msgid% %structured-data% %msg%\n")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{d}/tcp.port")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{d}/tls.port"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
action(type="omfile" file="{d}/out.log" template="raw")
"#,
            d = d.display()
        );
        std::fs::write(d.join("rsyslog.conf"), conf).unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd (Debian package rsyslog, installed by scripts/test.sh)");
        let port = |f: &str| -> Option<u16> { std::fs::read_to_string(d.join(f)).ok()?.trim().parse().ok() };
        wait_until(20, "rsyslogd's listening ports", || port("tcp.port").is_some() && port("tls.port").is_some());
        let (tcp, tls) = (port("tcp.port").unwrap(), port("tls.port").unwrap());
        Rsyslog { child, dir, udp, tcp, tls }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("out.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Smtp {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

pub struct Mail {
    pub raw: String,
    pub envelope: serde_json::Value,
}

impl Mail {
    /// The message with line ends normalised and quoted-printable soft breaks and escapes undone.
    pub fn text(&self) -> String {
        let s = self.raw.replace("\r\n", "\n").replace("=\n", "");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if b[i] == b'=' && i + 2 < b.len() {
                if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Smtp {
    /// aiosmtpd (tests/peers/smtp_server.py); with `tls` it requires STARTTLS (certificate from
    /// `kevlar cert`), with `auth` it requires AUTH.
    pub fn start(tls: bool, auth: Option<(&str, &str)>) -> Smtp {
        Self::launch(tls, false, auth)
    }

    /// TLS from the first byte (SMTPS, port 465's way).
    pub fn start_implicit_tls() -> Smtp {
        Self::launch(true, true, None)
    }

    fn launch(tls: bool, implicit: bool, auth: Option<(&str, &str)>) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("mail")).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(super::repo().join("tests/peers/smtp_server.py")).arg(d.join("mail"));
        if tls {
            certs(&d.join("tls"));
            cmd.arg("--cert").arg(d.join("tls/cert.pem")).arg("--key").arg(d.join("tls/key.pem"));
        }
        if implicit {
            cmd.arg("--implicit-tls");
        }
        if let Some((u, p)) = auth {
            cmd.args(["--user", u, "--password", p]);
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server did not start (is aiosmtpd installed?): {line:?}"));
        Smtp { child, dir, port }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    pub fn mails(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for n in 1.. {
            let base = self.dir.path().join("mail").join(n.to_string());
            let Ok(raw) = std::fs::read_to_string(base.with_extension("eml")) else { break };
            let envelope =
                serde_json::from_str(&std::fs::read_to_string(base.with_extension("json")).unwrap()).unwrap();
            out.push(Mail { raw, envelope });
        }
        out
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) that records every request and
/// answers with `status`.
pub struct HttpReceiver {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub status: Arc<AtomicU16>,
    /// The body of every answer (a small JSON document unless set).
    pub body: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body })
}

impl HttpReceiver {
    pub fn start(status: u16) -> HttpReceiver {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap(), status)
    }

    /// On a given port (a sink that comes back where it was).
    pub fn at(port: u16, status: u16) -> HttpReceiver {
        Self::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), status)
    }

    fn on(listener: TcpListener, status: u16) -> HttpReceiver {
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let stop = Arc::new(AtomicBool::new(false));
        let body_cfg: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let (reqs, st, stp, bc) = (requests.clone(), status.clone(), stop.clone(), body_cfg.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (reqs, st, bc) = (reqs.clone(), st.clone(), bc.clone());
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    while let Some(req) = read_request(&mut r) {
                        reqs.lock().unwrap().push(req);
                        let code = st.load(Ordering::SeqCst);
                        let fixed = bc.lock().unwrap().clone();
                        let body = fixed.as_deref().unwrap_or(if code < 300 {
                            "{\"sid\":\"SM1\"}"
                        } else {
                            "{\"error\":\"no\"}"
                        });
                        let resp = format!(
                            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if w.write_all(resp.as_bytes()).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        HttpReceiver { port, requests, status, body: body_cfg, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn all(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Accepts TCP connections and records every line received (Logstash's `json_lines` input).
pub struct LineListener {
    pub port: u16,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl LineListener {
    pub fn start() -> LineListener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let l3 = l2.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn);
                    let mut buf = Vec::new();
                    while r.read_until(b'\n', &mut buf).map(|n| n > 0).unwrap_or(false) {
                        l3.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
                        buf.clear();
                    }
                });
            }
        });
        LineListener { port, lines }
    }
}

/// verdaccio (from tests/update, installed by scripts/test.sh) on a free loopback port, with
/// no uplinks: a registry holding only what the test publishes. `token` may publish.
pub struct Verdaccio {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub token: String,
}

impl Verdaccio {
    pub fn start() -> Verdaccio {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::write(
            d.join("config.yaml"),
            format!(
                "storage: {d}/storage\nmax_body_size: 200mb\nauth:\n  htpasswd:\n    file: {d}/htpasswd\n    max_users: 100\nuplinks: {{}}\npackages:\n  '**':\n    access: $all\n    publish: $authenticated\n    unpublish: $authenticated\nlog: {{ type: stdout, format: json, level: warn }}\n",
                d = d.display()
            ),
        )
        .unwrap();
        let bin = super::repo().join("tests/update/node_modules/.bin/verdaccio");
        assert!(bin.exists(), "verdaccio is installed by scripts/test.sh (tests/update)");
        let child = Command::new(bin)
            .arg("--config")
            .arg(d.join("config.yaml"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        wait_until(60, "verdaccio", || ureq::get(&format!("{url}/-/ping")).call().is_ok());
        // A user that may publish (npm adduser, done over the API).
        let resp = ureq::put(&format!("{url}/-/user/org.couchdb.user:kevlar"))
            .set("Content-Type", "application/json")
            .send_string(r#"{"name":"kevlar","password":"kevlar-test-pass"}"#)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
        let token = v["token"].as_str().unwrap().to_owned();
        Verdaccio { child, dir, port, token }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// An `.npmrc` that installs from this registry (and may publish to it).
    pub fn npmrc(&self) -> String {
        format!("registry={}\n//127.0.0.1:{}/:_authToken={}\n", self.url(), self.port, self.token)
    }

    /// Publishes a tarball made by `npm pack`.
    pub fn publish_tarball(&self, tgz: &Path) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".npmrc"), self.npmrc()).unwrap();
        let out = Command::new("npm")
            .args(["publish", "--registry", &self.url(), "--userconfig"])
            .arg(d.path().join(".npmrc"))
            .arg(tgz)
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "npm publish {}: {}", tgz.display(), String::from_utf8_lossy(&out.stderr));
    }

    /// Publishes a package made of `files` (package.json is written from name and version).
    pub fn publish(&self, name: &str, version: &str, files: &[(&str, &str)]) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("package.json"),
            format!(r#"{{"name":"{name}","version":"{version}","main":"index.js","license":"MIT"}}"#),
        )
        .unwrap();
        for (f, body) in files {
            std::fs::write(d.path().join(f), body).unwrap();
        }
        std::fs::write(d.path().join(".npmrc"), self.npmrc()).unwrap();
        let out = Command::new("npm")
            .args(["publish", "--registry", &self.url(), "--userconfig"])
            .arg(d.path().join(".npmrc"))
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "npm publish {name}@{version}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `body` once per connection on an ephemeral port, for `count` connections.
pub fn serve_bytes(body: Vec<u8>, count: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}/npm/all.zip")
}

/// Debian's redis-server on a free loopback port, nothing persisted; `stop` and `start` again
/// on the same port (a Redis that went away and came back, empty).
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// TLS: the directory of `cert.pem`/`key.pem`/`ca.pem`, the TLS port, the password.
    tls: Option<(std::path::PathBuf, u16, String)>,
}

impl Redis {
    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = Redis { child: None, port, dir: tempfile::tempdir().unwrap(), tls: None };
        r.restart();
        r
    }

    /// A Redis that also serves TLS (certificate and key from `certs`, as `kevlar cert
    /// --self-signed` writes them) and wants `password` on every connection.
    pub fn start_tls(certs: &std::path::Path, password: &str) -> Redis {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tls_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tls = Some((certs.to_owned(), tls_port, password.to_owned()));
        let mut r = Redis { child: None, port, dir: tempfile::tempdir().unwrap(), tls };
        r.restart();
        r
    }

    /// The TLS URL, with the password, for a client that trusts `ca.pem`.
    pub fn tls_url(&self) -> String {
        let (_, port, pw) = self.tls.as_ref().expect("a TLS Redis");
        format!("rediss://:{pw}@localhost:{port}/0")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        if let Some((certs, tls_port, pw)) = &self.tls {
            cmd.args(["--tls-port", &tls_port.to_string(), "--tls-auth-clients", "no", "--requirepass", pw]);
            cmd.arg("--tls-cert-file").arg(certs.join("cert.pem"));
            cmd.arg("--tls-key-file").arg(certs.join("key.pem"));
            cmd.arg("--tls-ca-cert-file").arg(certs.join("ca.pem"));
        }
        let auth = self.tls.as_ref().map(|(_, _, pw)| format!("AUTH {pw}\r\n")).unwrap_or_default();
        let child = cmd
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server, installed by scripts/setup.sh)");
        self.child = Some(child);
        let port = self.port;
        wait_until(20, "redis-server to answer PING", || {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let want: &[u8] = if auth.is_empty() { b"+PONG\r\n" } else { b"+OK\r\n+PONG\r\n" };
            let mut buf = vec![0u8; want.len()];
            s.write_all(format!("{auth}PING\r\n").as_bytes()).is_ok() && s.read_exact(&mut buf).is_ok() && buf == want
        });
    }

    /// Stops it (SIGKILL: as if the machine went away).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One command, its raw answer (RESP).
    pub fn command(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if out.ends_with(b"\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
