//! Runs the application under `kevlar run`: N instances, each spawned in its own process group
//! with `PORT`, routed to once ready, health-checked, restarted with exponential backoff when it
//! crashes or hangs, given up on (`errored`) after too many fast crashes, replaced one by one on a
//! zero-downtime reload, and stopped gracefully with its whole group. See `LIFECYCLE.md`.
#![forbid(unsafe_code)]

mod instance;
pub mod keeper;
pub mod orphans;
mod slot;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kevlar_engine::Bus;
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot, watch};

pub use instance::AppLogs;

#[derive(Debug, Clone)]
pub struct Health {
    /// Probed with `GET`; any HTTP answer counts. `None`: an accepted TCP connection counts (which
    /// cannot see a hung app).
    pub path: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failed probes before the instance is restarted (`reason: hang`).
    pub failures: u32,
}

#[derive(Debug, Clone)]
pub struct Backoff {
    pub first: Duration,
    pub factor: f64,
    pub max: Duration,
    /// A run at least this long counts as healthy: the next crash restarts at once.
    pub min_uptime: Duration,
    /// This many fast crashes (shorter than `min_uptime`) within `window` → `errored`.
    pub max_fast_crashes: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct AppSpec {
    pub command: Vec<String>,
    /// The first instance's port; `None` (or further instances) get a free one.
    pub port: Option<u16>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub instances: usize,
    pub ready_timeout: Duration,
    pub stop_grace: Duration,
    /// The `kevlar` binary, to start each instance under a keeper (`keeper.rs`) so that it dies
    /// with Kevlar; `None` starts the command directly.
    pub keeper: Option<PathBuf>,
    /// Where each running instance's process group is recorded (`orphans.rs`); `None`: nowhere.
    pub groups_dir: Option<PathBuf>,
    pub health: Health,
    pub backoff: Backoff,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    #[error("no command to run (give one after `--`, or set app.command)")]
    NoCommand,
    #[error("cannot start `{program}`")]
    Spawn { program: String, source: std::io::Error },
    #[error("cannot find a free port: {0}")]
    Port(std::io::Error),
}

/// What a reload or a restart asked of a running supervisor can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Kevlar is stopping: nothing can be asked of the app any more.
    #[error("the supervisor has stopped")]
    Stopped,
    /// A successor did not become ready; the old instance keeps serving.
    #[error("instance {instance}: {reason}")]
    ReloadFailed { instance: usize, reason: String },
}

/// Asks the OS for a free loopback port.
pub fn free_port() -> Result<u16, SupervisorError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(SupervisorError::Port)?;
    l.local_addr().map(|a| a.port()).map_err(SupervisorError::Port)
}

/// Where the proxy sends traffic; the binary implements it over the guard's upstream set, so the
/// supervisor never depends on the proxy.
pub trait Router: Send + Sync + 'static {
    /// An instance is ready at `addr`: start sending it requests. Returns a handle id.
    fn add(&self, addr: SocketAddr) -> u64;
    /// Stop sending it new requests; returns a probe of its outstanding requests (for draining).
    fn remove(&self, id: u64) -> Box<dyn Fn() -> usize + Send + Sync>;
    /// Whether requests should wait for an instance while none is ready: not when every instance
    /// is `errored` (nothing is coming; answer 503 at once).
    fn hold_requests(&self, yes: bool);
}

/// Where an instance is in its lifecycle: the states of `LIFECYCLE.md` (beside `Cargo.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Spawned, not yet answering its readiness probe.
    #[default]
    Starting,
    /// Ready and in the upstream set.
    Running,
    /// Exited or hung (or told to restart); waiting out the backoff or starting again.
    Restarting,
    /// Being drained and ended.
    Stopping,
    Stopped,
    /// Crashed too often too fast: no more restarts until `kevlar restart`.
    Errored,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Starting => "starting",
            InstanceState::Running => "running",
            InstanceState::Restarting => "restarting",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Errored => "errored",
        }
    }
}

/// What the last health checks said of a running instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Not checked since it (re)started.
    #[default]
    Unknown,
    Ok,
    /// The last check failed (the instance is restarted after `health.failures` in a row).
    Failing,
}

/// One instance's state, for `/v1/status` and `kevlar status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InstanceStatus {
    pub slot: usize,
    pub state: InstanceState,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub started_ms: Option<i64>,
    pub restarts: u64,
    pub last_exit: Option<String>,
    pub health: HealthState,
}

pub type Status = Arc<Mutex<Vec<InstanceStatus>>>;

pub(crate) enum SlotCmd {
    Reload(oneshot::Sender<Result<(), String>>),
    Restart,
}

/// Talks to a running supervisor: reload (rolling), restart (also leaves `errored`).
#[derive(Clone)]
pub struct SupervisorHandle {
    slots: Vec<mpsc::Sender<SlotCmd>>,
    reloading: Arc<tokio::sync::Mutex<()>>,
}

impl SupervisorHandle {
    /// Replaces every instance, one at a time, each only once its successor is ready. Stops at the
    /// first instance whose successor fails, leaving the old one serving.
    pub async fn reload(&self) -> Result<(), ControlError> {
        let _one_at_a_time = self.reloading.lock().await;
        for (i, s) in self.slots.iter().enumerate() {
            let (tx, rx) = oneshot::channel();
            s.send(SlotCmd::Reload(tx)).await.map_err(|_| ControlError::Stopped)?;
            rx.await
                .map_err(|_| ControlError::Stopped)?
                .map_err(|reason| ControlError::ReloadFailed { instance: i, reason })?;
        }
        Ok(())
    }

    /// Restarts every instance now (and leaves the `errored` state).
    pub async fn restart(&self) -> Result<(), ControlError> {
        for s in &self.slots {
            s.send(SlotCmd::Restart).await.map_err(|_| ControlError::Stopped)?;
        }
        Ok(())
    }
}

pub struct Supervisor {
    spec: Arc<AppSpec>,
    bus: Bus,
    router: Arc<dyn Router>,
    logs: AppLogs,
    pub status: Status,
}

pub(crate) fn describe_exit(status: std::process::ExitStatus) -> (String, serde_json::Value) {
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
    pub fn new(spec: AppSpec, bus: Bus, router: Arc<dyn Router>, logs: AppLogs) -> Result<Self, SupervisorError> {
        if spec.command.is_empty() {
            return Err(SupervisorError::NoCommand);
        }
        let n = spec.instances.max(1);
        let status = Arc::new(Mutex::new((0..n).map(|slot| InstanceStatus { slot, ..Default::default() }).collect()));
        Ok(Supervisor { spec: Arc::new(spec), bus, router, logs, status })
    }

    /// Starts every instance's supervision; they run until `stop` turns true. The join handle
    /// ends once every instance has stopped.
    pub fn start(self, stop: watch::Receiver<bool>) -> (SupervisorHandle, tokio::task::JoinHandle<()>) {
        let n = self.spec.instances.max(1);
        let mut senders = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = mpsc::channel(4);
            senders.push(tx);
            let port = self.spec.port.map(|p| p.saturating_add(i as u16));
            let ctx = slot::Slot {
                index: i,
                spec: self.spec.clone(),
                bus: self.bus.clone(),
                router: self.router.clone(),
                logs: self.logs.clone(),
                status: self.status.clone(),
                first_port: port,
            };
            tasks.push(tokio::spawn(ctx.run(rx, stop.clone())));
        }
        let all = tokio::spawn(async move {
            for t in tasks {
                let _ = t.await;
            }
        });
        (SupervisorHandle { slots: senders, reloading: Arc::new(tokio::sync::Mutex::new(())) }, all)
    }
}
