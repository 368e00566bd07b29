//! Runs the application: spawns it in its own process group with `PORT` set, waits until it
//! accepts connections, restarts it with exponential backoff when it exits, and stops the whole
//! group gracefully (SIGTERM, grace, SIGKILL). See `LIFECYCLE.md` beside this file.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kevlar_core::{Category, Outcome, SecurityEvent, Severity};
use kevlar_engine::Bus;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const STDERR_TAIL: usize = 50;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(15);
/// A run this long counts as healthy: the next crash restarts at once and the backoff resets.
const MIN_UPTIME: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct AppSpec {
    pub command: Vec<String>,
    pub port: u16,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub ready_timeout: Duration,
    pub stop_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    #[error("no command to run (give one after `--`, or set app.command)")]
    NoCommand,
    #[error("cannot start `{program}`: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("cannot find a free port: {0}")]
    Port(std::io::Error),
}

/// Asks the OS for a free loopback port.
pub fn free_port() -> Result<u16, SupervisorError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(SupervisorError::Port)?;
    l.local_addr().map(|a| a.port()).map_err(SupervisorError::Port)
}

/// The app's state, for `/v1/status`.
#[derive(Debug, Clone, Default)]
pub struct AppState {
    pub state: &'static str,
    pub pid: Option<u32>,
    pub restarts: u64,
    pub last_exit: Option<String>,
}

pub struct Supervisor {
    spec: AppSpec,
    bus: Bus,
    pub status: Arc<Mutex<AppState>>,
}

fn spawn(spec: &AppSpec) -> Result<Child, SupervisorError> {
    let program = spec.command.first().ok_or(SupervisorError::NoCommand)?;
    let mut cmd = Command::new(program);
    cmd.args(&spec.command[1..])
        .env("PORT", spec.port.to_string())
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    cmd.spawn().map_err(|source| SupervisorError::Spawn { program: program.clone(), source })
}

fn describe_exit(status: std::process::ExitStatus) -> (String, serde_json::Value) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => (format!("exit code {c}"), serde_json::json!({ "exit_code": c })),
        (None, Some(s)) => {
            let name = Signal::try_from(s).map(|s| s.as_str().to_owned()).unwrap_or_else(|_| s.to_string());
            (format!("signal {name}"), serde_json::json!({ "signal": name }))
        }
        _ => ("unknown exit".into(), serde_json::json!({})),
    }
}

impl Supervisor {
    pub fn new(spec: AppSpec, bus: Bus) -> Result<Self, SupervisorError> {
        if spec.command.is_empty() {
            return Err(SupervisorError::NoCommand);
        }
        Ok(Supervisor { spec, bus, status: Arc::new(Mutex::new(AppState { state: "starting", ..Default::default() })) })
    }

    fn set(&self, f: impl FnOnce(&mut AppState)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// Keeps the app running until `stop` turns true. `on_ready(Some(addr))` is called when an
    /// instance accepts connections, `on_ready(None)` when it is gone.
    pub async fn run(self, mut stop: watch::Receiver<bool>, on_ready: impl Fn(Option<SocketAddr>) + Send) -> Result<(), SupervisorError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.spec.port));
        let mut backoff = BACKOFF_FIRST;
        let mut first = true;
        loop {
            let mut child = spawn(&self.spec)?;
            let pid = child.id();
            self.set(|s| {
                s.state = "starting";
                s.pid = pid;
            });
            let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
            if let Some(out) = child.stdout.take() {
                tokio::spawn(pipe_lines(out, None));
            }
            if let Some(err) = child.stderr.take() {
                tokio::spawn(pipe_lines(err, Some(tail.clone())));
            }
            let started = Instant::now();
            let ready = tokio::select! {
                r = wait_ready(addr, self.spec.ready_timeout) => r,
                _ = child.wait() => false,
                _ = stop.changed() => { self.stop_child(&mut child).await; return Ok(()); }
            };
            if ready {
                self.set(|s| s.state = "running");
                on_ready(Some(addr));
                if !first {
                    self.bus.publish(
                        SecurityEvent::new("sys_restart", Category::Process, Severity::Notice, "the application is running again")
                            .with_outcome(Outcome::Success)
                            .with_kevlar("reason", "crash"),
                    );
                }
            } else {
                tracing::warn!("the application did not accept connections within {:?}", self.spec.ready_timeout);
            }
            first = false;
            let status = tokio::select! {
                s = child.wait() => s,
                _ = stop.changed() => { on_ready(None); self.stop_child(&mut child).await; return Ok(()); }
            };
            on_ready(None);
            let uptime = started.elapsed();
            let (what, detail) = match status {
                Ok(s) => describe_exit(s),
                Err(e) => (format!("wait failed: {e}"), serde_json::json!({})),
            };
            let lines: Vec<String> = tail.lock().map(|t| t.iter().cloned().collect()).unwrap_or_default();
            let mut ev = SecurityEvent::new("sys_crash", Category::Process, Severity::Alert, format!("the application stopped: {what}"))
                .with_outcome(Outcome::Failure)
                .with_kevlar("uptime_ms", uptime.as_millis() as u64)
                .with_kevlar("stderr_tail", lines);
            if let serde_json::Value::Object(m) = detail {
                for (k, v) in m {
                    ev.kevlar.insert(k, v);
                }
            }
            self.bus.publish(ev);
            self.set(|s| {
                s.state = "restarting";
                s.restarts += 1;
                s.last_exit = Some(what.clone());
                s.pid = None;
            });
            // Kill anything the app left behind in its group.
            if let Some(pid) = pid {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            let delay = if uptime >= MIN_UPTIME {
                backoff = BACKOFF_FIRST;
                Duration::ZERO
            } else {
                let d = backoff;
                backoff = (backoff * 2).min(BACKOFF_CAP);
                d
            };
            tracing::warn!("application stopped ({what}) after {:?}; restarting in {:?}", uptime, delay);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => return Ok(()),
            }
        }
    }

    async fn stop_child(&self, child: &mut Child) {
        self.set(|s| s.state = "stopping");
        if let Some(pid) = child.id() {
            let group = Pid::from_raw(pid as i32);
            let _ = killpg(group, Signal::SIGTERM);
            if tokio::time::timeout(self.spec.stop_grace, child.wait()).await.is_err() {
                tracing::warn!("the application ignored SIGTERM for {:?}; sending SIGKILL", self.spec.stop_grace);
            }
            let _ = killpg(group, Signal::SIGKILL);
        }
        let _ = child.wait().await;
        self.set(|s| {
            s.state = "stopped";
            s.pid = None;
        });
    }
}

async fn wait_ready(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_millis(10);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    }
    false
}

async fn pipe_lines<R: tokio::io::AsyncRead + Unpin>(r: R, tail: Option<Arc<Mutex<VecDeque<String>>>>) {
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[app] {line}");
        if let Some(t) = &tail {
            if let Ok(mut t) = t.lock() {
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line.chars().take(1000).collect());
            }
        }
    }
}
