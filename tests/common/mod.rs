//! Helpers for black-box tests: start the real `kevlar` binary and the real demo app on
//! ephemeral ports, wait for their readiness lines (never a sleep), and talk to them.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub const KEVLAR: &str = env!("CARGO_BIN_EXE_kevlar");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Waits for a line that starts with `prefix` on a child's stream; keeps draining afterwards.
fn watch_lines<R: Read + Send + 'static>(
    r: R,
    prefix: &'static str,
    log: Arc<Mutex<String>>,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut l) = log.lock() {
                l.push_str(&line);
                l.push('\n');
            }
            if !sent && line.starts_with(prefix) {
                sent = true;
                let _ = tx.send(line);
            }
        }
    });
    rx
}

pub struct DemoApp {
    child: Child,
    pub addr: SocketAddr,
}

impl DemoApp {
    pub fn start() -> DemoApp {
        DemoApp::node(&repo().join("examples/demo-app/server.js"), "demo app listening on ")
    }

    /// The plain Express app of `tests/express` (express, body-parser, multer from npm, which the
    /// test command installs).
    pub fn express() -> DemoApp {
        let dir = repo().join("tests/express");
        assert!(
            dir.join("node_modules/express").is_dir() && dir.join("node_modules/multer").is_dir(),
            "tests/express/node_modules is missing: run the test command (scripts/test.sh), which installs it"
        );
        DemoApp::node(&dir.join("app.js"), "express app listening on ")
    }

    /// An Express app with Passport's local strategy and express-session (tests/express/passport.js).
    pub fn passport() -> DemoApp {
        let dir = repo().join("tests/express");
        assert!(
            dir.join("node_modules/passport-local").is_dir(),
            "tests/express/node_modules is missing: run the test command (scripts/test.sh), which installs it"
        );
        DemoApp::node(&dir.join("passport.js"), "passport app listening on ")
    }

    fn node(script: &Path, ready: &'static str) -> DemoApp {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("node")
            .process_group(0)
            .arg(script)
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed (the test command installs it)");
        let log = Arc::new(Mutex::new(String::new()));
        let rx = watch_lines(child.stdout.take().unwrap(), ready, log);
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the app did not start");
        let url = line.trim_start_matches(ready).trim_start_matches("http://");
        DemoApp { child, addr: url.parse().unwrap() }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

pub struct Kevlar {
    pub child: Child,
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
    pub stderr: Arc<Mutex<String>>,
    /// Where Kevlar's standard output went, when the test asked for it.
    pub stdout: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

pub struct KevlarBuilder {
    args: Vec<String>,
    data_dir: Option<PathBuf>,
    config: Option<String>,
    cwd: Option<PathBuf>,
    capture_stdout: bool,
}

impl KevlarBuilder {
    /// Keep Kevlar's standard output in a file (`Kevlar::stdout`).
    pub fn capture_stdout(mut self) -> Self {
        self.capture_stdout = true;
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn data_dir(mut self, d: &Path) -> Self {
        self.data_dir = Some(d.to_owned());
        self
    }

    /// A config file with this content is written to the temp dir and passed with --config.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    pub fn start(self) -> Kevlar {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_start(self) -> Result<Kevlar, String> {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = self.data_dir.clone().unwrap_or_else(|| tmp.path().join("data"));
        let mut args = self.args.clone();
        // Subcommand first; then our defaults unless the test chose.
        let has = |f: &str| args.iter().any(|a| a == f);
        let mut extra: Vec<String> = Vec::new();
        if !has("--listen") {
            extra.extend(["--listen".into(), "127.0.0.1:0".into()]);
        }
        if !has("--admin") {
            extra.extend(["--admin".into(), "127.0.0.1:0".into()]);
        }
        if !has("--data-dir") {
            extra.extend(["--data-dir".into(), data_dir.display().to_string()]);
        }
        if let Some(c) = &self.config {
            let p = tmp.path().join("kevlar.toml");
            std::fs::write(&p, c).unwrap();
            extra.extend(["--config".into(), p.display().to_string()]);
        }
        // Flags go before a `--` (for `kevlar run`).
        let pos = args.iter().position(|a| a == "--").unwrap_or(args.len());
        for (i, e) in extra.into_iter().enumerate() {
            args.insert(pos + i, e);
        }
        let stdout_path = self.capture_stdout.then(|| tmp.path().join("stdout"));
        let mut cmd = Command::new(KEVLAR);
        cmd.args(&args)
            .stdout(match &stdout_path {
                Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
                None => Stdio::null(),
            })
            .stderr(Stdio::piped())
            .current_dir(self.cwd.as_deref().unwrap_or(tmp.path()));
        cmd.env("KEVLAR_LOG", "info");
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let rx = watch_lines(child.stderr.take().unwrap(), "kevlar: ready ", log.clone());
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("kevlar did not become ready; stderr:\n{}", log.lock().unwrap()));
            }
        };
        let field = |name: &str| -> Option<SocketAddr> {
            line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))).and_then(|v| v.parse().ok())
        };
        Ok(Kevlar {
            child,
            http: field("http").unwrap(),
            https: field("https"),
            admin: field("admin").unwrap(),
            data_dir,
            stderr: log,
            stdout: stdout_path,
            _tmp: Some(tmp),
        })
    }
}

impl Kevlar {
    pub fn guard(upstream: &str) -> KevlarBuilder {
        KevlarBuilder {
            args: vec!["guard".into(), "--upstream".into(), upstream.into()],
            data_dir: None,
            config: None,
            cwd: None,
            capture_stdout: false,
        }
    }

    pub fn cmd(args: &[&str]) -> KevlarBuilder {
        KevlarBuilder {
            args: args.iter().map(|s| s.to_string()).collect(),
            data_dir: None,
            config: None,
            cwd: None,
            capture_stdout: false,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token")).unwrap().trim().to_owned()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().unwrap()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Events from the store through the CLI (`kevlar events --json`).
    pub fn events(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        events_in(&self.data_dir, extra)
    }

    /// Polls the store until an event matches (events are written asynchronously).
    pub fn wait_event(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        for _ in 0..200 {
            if let Some(e) = self.events(&["--limit", "10000"]).into_iter().find(|e| pred(e)) {
                return e;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no matching event; have: {:#?}", self.events(&[]));
    }
}

pub fn events_in(data_dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(KEVLAR).args(["events", "--json", "--data-dir"]).arg(data_dir).args(extra).output().unwrap();
    assert!(out.status.success(), "kevlar events failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

impl Drop for Kevlar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap()
}

/// Sends raw bytes, returns everything read until the peer closes or `timeout` passes.
pub fn raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A process a test started, in a process group of its own: the whole group is killed (and the
/// process reaped) when the guard drops, after a panic too.
pub struct Owned(pub Child);

impl Owned {
    pub fn spawn(cmd: &mut Command) -> Owned {
        use std::os::unix::process::CommandExt;
        Owned(cmd.process_group(0).spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")))
    }
}

/// SIGKILL to the group `child` leads, then to `child` itself.
fn kill_group(child: &mut Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

impl std::ops::Deref for Owned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Owned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        kill_group(&mut self.0);
    }
}

/// Starts `node -e script`, a test app that prints `listening PORT` once it listens.
pub fn node_script(script: &str) -> (Owned, SocketAddr) {
    let mut child = Owned::spawn(Command::new("node").args(["-e", script]).stdout(Stdio::piped()));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().trim_start_matches("listening ").parse().unwrap();
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

pub fn gzip(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}

pub fn deflate(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}

pub fn sha256_hex(d: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, d);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
pub mod peers;

/// Standard base64 with padding (the Basic credentials and webhook signatures the tests build).
pub fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A form value percent-encoded: letters, digits and `-_.` as they are, every other byte `%XX`.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Standard base64 (padding optional, whitespace ignored); `None` for anything else.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
