//! One running copy of the app: spawned in its own process group with `PORT`, its output captured
//! (log files, Kevlar's stderr, the last stderr lines), probed for readiness and health, stopped
//! with SIGTERM then SIGKILL to the whole group.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kevlar_core::rotate::RotatingFile;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::{AppSpec, SupervisorError};

pub(crate) const STDERR_TAIL: usize = 50;

/// Where the app's output goes: the rotated files under `<data-dir>/logs/`, and Kevlar's own
/// stderr when `echo` is on.
#[derive(Clone)]
pub struct AppLogs {
    pub out: Option<Arc<Mutex<RotatingFile>>>,
    pub err: Option<Arc<Mutex<RotatingFile>>>,
    pub echo: bool,
}

impl AppLogs {
    pub fn none() -> Self {
        AppLogs { out: None, err: None, echo: true }
    }
}

pub(crate) struct Instance {
    pub child: Child,
    /// The keeper's stdin: while Kevlar holds it the keeper keeps the app; when Kevlar dies, the
    /// kernel closes it and the keeper ends the app's group.
    _lifeline: Option<tokio::process::ChildStdin>,
    /// The group's record for the next start, removed with the instance.
    _record: Option<crate::orphans::GroupRecord>,
    pub pid: Option<u32>,
    pub port: u16,
    pub started: Instant,
    pub tail: Arc<Mutex<VecDeque<String>>>,
}

impl Instance {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn spawn(spec: &AppSpec, port: u16, slot: usize, logs: &AppLogs) -> Result<Instance, SupervisorError> {
        let program = spec.command.first().ok_or(SupervisorError::NoCommand)?;
        let mut cmd = match &spec.keeper {
            Some(kevlar) => {
                // The keeper would start it; a command that cannot be started is told here, now.
                resolve(program, spec.cwd.as_deref())
                    .map_err(|source| SupervisorError::Spawn { program: program.clone(), source })?;
                let mut c = Command::new(kevlar);
                c.arg(crate::keeper::KEEP_SUBCOMMAND)
                    .arg("--grace-ms")
                    .arg(spec.stop_grace.as_millis().to_string())
                    .arg("--")
                    .args(&spec.command);
                c.stdin(Stdio::piped());
                c
            }
            None => {
                let mut c = Command::new(program);
                c.args(&spec.command[1..]).stdin(Stdio::null());
                c
            }
        };
        cmd.env("PORT", port.to_string())
            .env("KEVLAR_INSTANCE", slot.to_string())
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|source| SupervisorError::Spawn { program: program.clone(), source })?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pipe_lines(out, None, logs.out.clone(), logs.echo));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pipe_lines(err, Some(tail.clone()), logs.err.clone(), logs.echo));
        }
        let lifeline = child.stdin.take();
        let record =
            spec.groups_dir.as_deref().zip(child.id()).and_then(|(d, pid)| crate::orphans::GroupRecord::write(d, pid));
        Ok(Instance {
            pid: child.id(),
            _lifeline: lifeline,
            _record: record,
            child,
            port,
            started: Instant::now(),
            tail,
        })
    }

    pub fn stderr_tail(&self) -> Vec<String> {
        self.tail.lock().map(|t| t.iter().cloned().collect()).unwrap_or_default()
    }

    /// SIGKILL to the whole group (after an exit: whatever the app left behind).
    pub fn kill_group(&self) {
        if let Some(pid) = self.pid {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }

    /// SIGTERM to the group, `grace`, then SIGKILL. Returns true when SIGTERM was ignored.
    pub async fn stop(&mut self, grace: Duration) -> bool {
        let mut ignored = false;
        if let Some(pid) = self.pid {
            let group = Pid::from_raw(pid as i32);
            let _ = killpg(group, Signal::SIGTERM);
            if tokio::time::timeout(grace, self.child.wait()).await.is_err() {
                ignored = true;
            }
            let _ = killpg(group, Signal::SIGKILL);
        }
        let _ = self.child.wait().await;
        ignored
    }
}

/// Finds `program` as `execvp` would (a path with a `/` from `cwd`, otherwise on `PATH`).
fn resolve(program: &str, cwd: Option<&std::path::Path>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let runnable =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let found = if program.contains('/') {
        let p = std::path::Path::new(program);
        runnable(&cwd.map_or_else(|| p.to_owned(), |d| d.join(p)))
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| runnable(&dir.join(program))))
    };
    if found {
        Ok(())
    } else {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)"))
    }
}

/// `Ok(true)` when the probe succeeded. With a health path, any HTTP answer within `timeout` counts
/// (an app that answers 500 is up, if unwell; one that does not answer is hung). Without one, an
/// accepted TCP connection counts.
pub(crate) async fn probe(addr: SocketAddr, path: Option<&str>, timeout: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let Some(path) = path else { return Some(()) };
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kevlar-health\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.ok()?;
        buf.starts_with(b"HTTP/1.").then_some(())
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(())))
}

/// Why an instance did not become ready.
pub(crate) enum NotReady {
    Exited(std::process::ExitStatus),
    Timeout(String),
}

impl NotReady {
    pub fn describe(&self) -> String {
        match self {
            NotReady::Exited(s) => format!("exited before it was ready ({})", crate::describe_exit(*s).0),
            NotReady::Timeout(m) => m.clone(),
        }
    }
}

/// Waits until the instance answers its probe, it exits, or `ready_timeout` passes.
pub(crate) async fn wait_ready(inst: &mut Instance, spec: &AppSpec) -> Result<(), NotReady> {
    let started = Instant::now();
    let deadline = started + spec.ready_timeout;
    let addr = inst.addr();
    loop {
        if probe(addr, spec.health.path.as_deref(), spec.health.timeout).await {
            return Ok(());
        }
        if let Ok(Some(status)) = inst.child.try_wait() {
            return Err(NotReady::Exited(status));
        }
        if Instant::now() >= deadline {
            return Err(NotReady::Timeout(format!("not ready within {:?}", spec.ready_timeout)));
        }
        // Probe often while a quick app is booting (readiness is recovery time), then calmly.
        let wait = if started.elapsed() < Duration::from_secs(2) {
            Duration::from_millis(5)
        } else {
            Duration::from_millis(100)
        };
        tokio::time::sleep(wait).await;
    }
}

async fn pipe_lines<R: AsyncRead + Unpin>(
    r: R,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
    file: Option<Arc<Mutex<RotatingFile>>>,
    echo: bool,
) {
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo {
            eprintln!("[app] {line}");
        }
        if let Some(f) = &file {
            if let Ok(mut f) = f.lock() {
                let _ = f.write_line(line.as_bytes()).and_then(|_| f.flush());
            }
        }
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
