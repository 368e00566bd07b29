//! `kevlar guard` and `kevlar run`: wire the pipeline together and serve until a signal.
//!
//! sensors (proxy, supervisor, admin API) → bus → store (durable) ; access log on the side.

use kevlar_core::action;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kevlar_config::{AccessLog, Config, Overrides};
use kevlar_core::{Category, Outcome, SecurityEvent, Severity};
use kevlar_engine::BusBuilder;
use kevlar_proxy::{Guard, Stats, Upstream};
use kevlar_sinks::{AccessLogger, AccessTarget};
use kevlar_store::{Retention, StoreWriter};
use kevlar_supervisor::{AppLogs, AppSpec, Backoff, Health, InstanceState, Supervisor};
use tokio::sync::watch;

use crate::cli::CommonArgs;

const STORE_QUEUE: usize = 65_536;
/// The correlator's queue; beyond it events are dropped for the correlator only (and counted).
const SHIELD_QUEUE: usize = 65_536;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long the alert sinks may take, at shutdown, to send what is still queued.
const ALERTS_GRACE: Duration = Duration::from_secs(3);
/// Written at start: the admin API's URL, for the CLI's control commands.
pub const ADMIN_ADDR_FILE: &str = "admin.addr";

/// The configuration file to read: the one given, else ./kevlar.toml when there is one (else the
/// embedded defaults).
pub fn config_file(given: Option<&std::path::Path>) -> Option<PathBuf> {
    given.map(std::path::Path::to_path_buf).or_else(|| Some(PathBuf::from("kevlar.toml")).filter(|p| p.exists()))
}

fn load_config(common: &CommonArgs, upstream: Option<String>) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen: common.listen,
        upstream,
        tls_listen: common.tls_listen,
        tls_cert: common.tls_cert.clone(),
        tls_key: common.tls_key.clone(),
        admin: common.admin,
        data_dir: common.data_dir.clone(),
        trusted_proxies: common.trusted_proxy.clone(),
    };
    let file = config_file(common.config.as_deref());
    let result = match &file {
        Some(f) => kevlar_config::load_file(f, &overrides),
        None => kevlar_config::defaults_with(&overrides),
    };
    result.map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEVLAR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

pub fn guard(common: CommonArgs, upstream: Option<String>) -> anyhow::Result<ExitCode> {
    let config = load_config(&common, upstream)?;
    if config.proxy.upstream.is_none() {
        bail!("no upstream: give --upstream http://HOST:PORT (or proxy.upstream in the config), or use `kevlar run -- CMD`");
    }
    serve(config, None)
}

pub fn run(common: CommonArgs, command: Vec<String>) -> anyhow::Result<ExitCode> {
    let config = load_config(&common, None)?;
    let command = if command.is_empty() { config.app.command.clone() } else { command };
    if command.is_empty() {
        bail!("no command: `kevlar run -- node server.js` (or app.command in the config)");
    }
    serve(config, Some(command))
}

/// Waits for SIGTERM or SIGINT; SIGHUP meanwhile reloads the app (under `kevlar run`).
async fn signal(app: Option<kevlar_supervisor::SupervisorHandle>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => match &app {
                Some(app) => {
                    let app = app.clone();
                    tokio::spawn(async move {
                        tracing::info!("SIGHUP: reloading the application");
                        match app.reload().await {
                            Ok(()) => tracing::info!("reload done"),
                            Err(e) => tracing::warn!("reload failed: {e}"),
                        }
                    });
                }
                None => tracing::info!("SIGHUP ignored: no supervised app"),
            },
        }
    }
}

/// The supervisor routes through the guard's upstream set.
struct UpstreamRouter(Arc<Upstream>);

impl kevlar_supervisor::Router for UpstreamRouter {
    fn add(&self, addr: std::net::SocketAddr) -> u64 {
        match http::uri::Authority::try_from(addr.to_string().as_str()) {
            Ok(a) => self.0.add(a),
            Err(_) => 0,
        }
    }

    fn remove(&self, id: u64) -> Box<dyn Fn() -> usize + Send + Sync> {
        match self.0.remove(id) {
            Some(b) => Box::new(move || b.outstanding()),
            None => Box::new(|| 0),
        }
    }

    fn hold_requests(&self, yes: bool) {
        self.0.set_holding(yes);
    }
}

fn app_logs(config: &Config, data_dir: &std::path::Path) -> anyhow::Result<AppLogs> {
    use kevlar_core::rotate::RotatingFile;
    let open = |name: &str| -> anyhow::Result<Arc<std::sync::Mutex<RotatingFile>>> {
        let p = data_dir.join("logs").join(name);
        let f = RotatingFile::open(&p, config.app.logs.max_bytes, config.app.logs.keep)
            .with_context(|| format!("cannot open {}", p.display()))?;
        Ok(Arc::new(std::sync::Mutex::new(f)))
    };
    Ok(AppLogs { out: Some(open("app.out.log")?), err: Some(open("app.err.log")?), echo: config.app.logs.echo })
}

/// A proxy holds two descriptors per client; raise the soft limit to the hard one, as nginx's
/// `worker_rlimit_nofile` does, so that `limits.max_connections` can actually be reached.
fn raise_fd_limit(max_connections: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = ((max_connections as u64) * 2 + 256).min(hard);
        if want > soft && setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_err() {
            tracing::warn!(soft, hard, "cannot raise the open-file limit");
        }
        if want < (max_connections as u64) * 2 {
            tracing::warn!(
                limit = want,
                max_connections,
                "the open-file limit is below what limits.max_connections needs"
            );
        }
    }
}

fn serve(config: Config, command: Option<Vec<String>>) -> anyhow::Result<ExitCode> {
    init_logging();
    raise_fd_limit(config.limits.max_connections);
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    rt.block_on(serve_async(config, command))
}

/// One Kevlar per data dir: an exclusive lock on `<data-dir>/kevlar.lock`, held while Kevlar runs
/// and released by the kernel however it ends. The file says which process holds it.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Seek, Write};
    let path = data_dir.join("kevlar.lock");
    kevlar_core::private::private_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if let Err(e) = f.try_lock() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        let holder = holder.trim();
        return Err(match e {
            std::fs::TryLockError::WouldBlock => anyhow::anyhow!(
                "the data dir {} is in use by another Kevlar ({}); give each its own --data-dir",
                data_dir.display(),
                if holder.is_empty() { "pid unknown".to_owned() } else { format!("pid {holder}") }
            ),
            std::fs::TryLockError::Error(e) => anyhow::anyhow!("cannot lock {}: {e}", path.display()),
        });
    }
    f.set_len(0)?;
    f.rewind()?;
    writeln!(f, "{}", std::process::id())?;
    Ok(f)
}

async fn serve_async(config: Config, command: Option<Vec<String>>) -> anyhow::Result<ExitCode> {
    let data_dir = config.data_dir.clone();
    let _lock = own_data_dir(&data_dir)?;

    // Consumers first, then the bus that feeds them.
    let mut bus_builder = BusBuilder::new();
    let store_rx = bus_builder.subscribe("store", STORE_QUEUE, true);
    let shield_rx = bus_builder.subscribe("shield", SHIELD_QUEUE, false);
    let bus = bus_builder.build();
    let shield = kevlar_shield::Shield::new(&config, bus.clone()).context("cannot open the black book")?;
    shield.start_correlator(shield_rx).context("cannot start the correlator")?;
    let cluster = match &config.cluster {
        Some(c) => {
            let link = kevlar_cluster::Cluster::start(c, shield.correlator(), bus.clone())
                .context("cannot start the cluster link")?;
            link.set_logins(Arc::new(SharedLogins(shield.clone())));
            Some(link)
        }
        None => None,
    };
    let watch_stop = start_watch(&config, &shield)?;
    let (store, alerts) = start_store_and_alerts(&config, store_rx, &bus)?;
    let (audit_watch, audit_status) = super::audit_watch::start(&config, command.as_deref(), bus.clone());

    let access = access_log(&config, &data_dir)?;

    let token = kevlar_admin::ensure_token(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.join(kevlar_admin::TOKEN_FILE).display()))?;
    let (admin_listener, admin_tls) = admin_listener(&config).await?;

    let stats = Arc::new(Stats::default());
    let upstream = upstream_for(&config, command.is_some());
    let gate: Arc<dyn kevlar_core::Gate> = Arc::new(shield.clone());
    let guard = Guard::new(&config, upstream.clone(), bus.clone(), access, stats.clone(), Some(gate));
    let listeners = guard.bind(&config).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut supervisor_task = None;
    let mut app_status = None;
    let mut app_handle = None;
    if let Some(cmd) = command {
        reap_orphans(&config, &bus).await;
        let sup = Supervisor::new(
            app_spec(cmd, &config),
            bus.clone(),
            Arc::new(UpstreamRouter(upstream.clone())),
            app_logs(&config, &data_dir)?,
        )?;
        app_status = Some(sup.status.clone());
        let (handle, task) = sup.start(stop_rx.clone());
        app_handle = Some(handle);
        supervisor_task = Some(task);
    }

    let status_fn = status_fn(&upstream, &stats, &shield, alerts.clone(), app_status, audit_status, cluster.clone());
    let admin_state = kevlar_admin::AdminState {
        token: Arc::new(token),
        data_dir: data_dir.clone(),
        bus: bus.clone(),
        status: status_fn,
        started: std::time::Instant::now(),
        app: app_handle.clone(),
        shield: Some(shield.clone()),
        alerts: alerts.clone(),
    };

    let http_addr = listeners.http_addr().map(|a| a.to_string()).unwrap_or_default();
    let https_addr = listeners.https_addr().map(|a| format!(" https={a}")).unwrap_or_default();
    let admin_addr = admin_listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    bus.publish(
        SecurityEvent::new(action::SYS_STARTUP, Category::Process, Severity::Info, STARTED)
            .with_outcome(Outcome::Success)
            .with_kevlar("listen", http_addr.clone()),
    );
    let overflow = bus.spawn_overflow_reporter(Duration::from_secs(5));
    let tally = start_request_tally(&data_dir, stats.clone());

    let mut admin_stop = stop_rx.clone();
    let admin_app =
        kevlar_admin::router(admin_state.clone()).merge(kevlar_dashboard::router(admin_state, admin_tls.is_some()));
    let admin_task = tokio::spawn(kevlar_admin::serve(admin_listener, admin_tls, admin_app, async move {
        let _ = admin_stop.changed().await;
    }));
    let mut guard_stop = stop_rx.clone();
    let guard_task = tokio::spawn(guard.serve(
        listeners,
        async move {
            let _ = guard_stop.changed().await;
        },
        SHUTDOWN_GRACE,
    ));
    write_admin_addr(&config, &data_dir, &admin_addr);
    // A stable line that scripts and tests can wait for.
    eprintln!("kevlar: ready http={http_addr}{https_addr} admin={admin_addr} data_dir={}", data_dir.display());

    signal(app_handle).await;
    tracing::info!("stopping: no new connections; finishing open requests");
    let _ = stop_tx.send(true);
    let _ = guard_task.await;
    let _ = admin_task.await;
    if let Some(t) = supervisor_task {
        let _ = t.await;
    }
    let _ = std::fs::remove_file(data_dir.join(ADMIN_ADDR_FILE));
    overflow.abort();
    tally.abort();
    watch_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(w) = audit_watch {
        // A fetch under way is not waited for: its import is one transaction, the state file is
        // replaced whole.
        let _ = tokio::time::timeout(Duration::from_secs(2), tokio::task::spawn_blocking(move || w.stop())).await;
    }
    if let Some(c) = &cluster {
        c.close();
    }
    shield.close();
    flush_and_close(bus, alerts, store).await;
    Ok(ExitCode::SUCCESS)
}

/// The event store's writer, and the alert sinks, which read what the store committed through
/// their durable outbox.
fn start_store_and_alerts(
    config: &Config,
    store_rx: tokio::sync::mpsc::Receiver<kevlar_engine::Envelope>,
    bus: &kevlar_engine::Bus,
) -> anyhow::Result<(StoreWriter, Option<kevlar_sinks::Alerts>)> {
    let store_wake = kevlar_engine::Wake::new();
    let store = StoreWriter::start_with_wake(
        &config.data_dir,
        Retention { max_age: config.store.retention, max_size_bytes: config.store.max_size_bytes },
        store_rx,
        Some(store_wake.clone()),
    )
    .context("cannot open the event store")?;
    let alerts = if config.alerts.sinks.is_empty() {
        None
    } else {
        Some(
            kevlar_sinks::Alerts::start(&config.alerts, &config.data_dir, store.path(), store_wake, bus.clone())
                .context("cannot start the alert sinks")?,
        )
    };
    Ok((store, alerts))
}

/// Other instances' failed logins and pair locks, into this instance's login monitor.
struct SharedLogins(kevlar_shield::Shield);

impl kevlar_cluster::LoginSink for SharedLogins {
    fn failure(&self, user: &str, ip: std::net::IpAddr) {
        self.0.remote_login_failure(user, ip);
    }

    fn locked(&self, user: &str, ip: std::net::IpAddr, secs: u64) {
        self.0.remote_pair_lock(user, ip, secs);
    }
}

/// Requests proxied, added to the store's per-minute rollups every 10 s (the dashboard's
/// request chart); a count that cannot be written is said once and kept for the next try.
fn start_request_tally(data_dir: &Path, stats: Arc<Stats>) -> tokio::task::JoinHandle<()> {
    let dir = data_dir.to_path_buf();
    tokio::spawn(async move {
        let tally = match tokio::task::spawn_blocking(move || kevlar_store::Tally::open(&dir)).await {
            Ok(Ok(t)) => Arc::new(std::sync::Mutex::new(t)),
            Ok(Err(e)) => {
                tracing::warn!(error = %kevlar_core::error::chain(&e), "request counts are not kept for the charts");
                return;
            }
            Err(_) => return,
        };
        let mut written = 0u64;
        let mut warned = false;
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let now = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
            let delta = now.saturating_sub(written);
            if delta == 0 {
                continue;
            }
            let t = tally.clone();
            let res = tokio::task::spawn_blocking(move || {
                t.lock().map_err(|_| ()).and_then(|t| {
                    t.add("requests", kevlar_core::time::now_ms(), delta as i64).map_err(|e| {
                        tracing::debug!(error = %e, "request tally");
                    })
                })
            })
            .await;
            match res {
                Ok(Ok(())) => written = now,
                _ if !warned => {
                    warned = true;
                    tracing::warn!("request counts could not be written to the event store; retrying");
                }
                _ => {}
            }
        }
    })
}

const STARTED: &str = concat!("Kevlar ", env!("CARGO_PKG_VERSION"), " started");

/// Server logs (`[[watch]]`) feed the same login rules and jails; the flag stops the watcher.
fn start_watch(config: &Config, shield: &kevlar_shield::Shield) -> anyhow::Result<Arc<std::sync::atomic::AtomicBool>> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if !config.watch.is_empty() {
        let sh = shield.clone();
        kevlar_shield::watch::start(config.watch.clone(), stop.clone(), move |src, l| {
            sh.external_login(&src.name, l.ip, l.user.as_deref(), l.ok)
        })
        .context("cannot start the log watcher")?;
    }
    Ok(stop)
}

/// The admin API's socket, and its TLS when `admin.tls_cert`/`tls_key` are set.
async fn admin_listener(
    config: &Config,
) -> anyhow::Result<(tokio::net::TcpListener, Option<tokio_rustls::TlsAcceptor>)> {
    let listener = tokio::net::TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("cannot listen on {} for the admin API", config.admin.listen))?;
    let tls = match (&config.admin.tls_cert, &config.admin.tls_key) {
        (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(kevlar_proxy::tls::server_config(c, k, false)?)),
        _ => None,
    };
    Ok((listener, tls))
}

/// The upstream set: the fixed `proxy.upstream`, or (under `kevlar run`) the supervised
/// instances as they become ready.
fn upstream_for(config: &Config, supervised: bool) -> Arc<Upstream> {
    let initial = config.proxy.upstream.as_ref().and_then(|u| u.authority().cloned());
    Arc::new(
        Upstream::new(if supervised { None } else { initial })
            .with_hold(config.app.hold_timeout, config.app.max_held)
            .supervised(supervised),
    )
}

/// Creates the data dir, makes it Kevlar's alone (0700: events, the black book and the access
/// log), and locks it against a second Kevlar.
fn own_data_dir(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict the data dir {}", data_dir.display()))?;
    lock_data_dir(data_dir)
}

/// The access log's writer, as configured (a relative file is under the data dir).
fn access_log(config: &Config, data_dir: &Path) -> anyhow::Result<Option<Arc<dyn kevlar_core::access::AccessLog>>> {
    Ok(match &config.access_log {
        AccessLog::Off => None,
        AccessLog::Stdout => {
            Some(Arc::new(AccessLogger::start(AccessTarget::Stdout, 65_536).context("cannot start the access log")?))
        }
        AccessLog::File { path, max_bytes, keep } => {
            let path = if path.is_relative() { data_dir.join(path) } else { path.clone() };
            Some(Arc::new(
                AccessLogger::start(
                    AccessTarget::File { path: path.clone(), max_bytes: *max_bytes, keep: *keep },
                    65_536,
                )
                .with_context(|| format!("cannot open the access log {}", path.display()))?,
            ))
        }
    })
}

/// Ends the process groups a dead Kevlar (and its keepers) left running, before ours start.
async fn reap_orphans(config: &Config, bus: &kevlar_engine::Bus) {
    let groups = config.data_dir.join("groups");
    let grace = config.app.stop_grace;
    let reaped =
        tokio::task::spawn_blocking(move || kevlar_supervisor::orphans::reap(&groups, grace)).await.unwrap_or_default();
    for r in reaped {
        let how = if r.killed { "SIGKILL after the grace" } else { "SIGTERM" };
        eprintln!(
            "kevlar: ended process group {} ({} processes) left running by a Kevlar that died ({how})",
            r.pgid,
            r.pids.len()
        );
        bus.publish(
            SecurityEvent::new(
                action::SYS_ORPHAN_REAPED,
                Category::Process,
                Severity::Warning,
                format!("ended process group {} left running by a Kevlar that died", r.pgid),
            )
            .with_kevlar("pgid", r.pgid)
            .with_kevlar("pids", r.pids.clone())
            .with_kevlar("killed", r.killed),
        );
    }
}

/// What the supervisor runs, from `[app]`.
fn app_spec(cmd: Vec<String>, config: &Config) -> AppSpec {
    let a = &config.app;
    AppSpec {
        command: cmd,
        port: a.port,
        env: a.env.clone(),
        cwd: a.cwd.clone(),
        instances: a.instances,
        ready_timeout: a.ready_timeout,
        stop_grace: a.stop_grace,
        keeper: std::env::current_exe().ok(),
        groups_dir: Some(config.data_dir.join("groups")),
        health: Health {
            path: a.health.path.clone(),
            interval: a.health.interval,
            timeout: a.health.timeout,
            failures: a.health.failures,
        },
        backoff: Backoff {
            first: a.backoff_first,
            factor: a.backoff_factor,
            max: a.backoff_max,
            min_uptime: a.min_uptime,
            max_fast_crashes: a.max_fast_crashes,
            window: a.crash_window,
        },
    }
}

/// `/v1/status`: the proxy's counters, detection, the upstream, alerts, the app's instances.
fn status_fn(
    upstream: &Arc<Upstream>,
    stats: &Arc<Stats>,
    shield: &kevlar_shield::Shield,
    alerts: Option<kevlar_sinks::Alerts>,
    app_status: Option<kevlar_supervisor::Status>,
    audit: super::audit_watch::AuditStatus,
    cluster: Option<Arc<kevlar_cluster::Cluster>>,
) -> kevlar_admin::StatusFn {
    let status_upstream = upstream.clone();
    let status_stats = stats.clone();
    let status_shield = shield.clone();
    let status_alerts = alerts;
    Arc::new(move || {
        let mut v = serde_json::json!({
            "proxy": status_stats.to_json(),
            "detection": status_shield.status(),
            "upstream": status_upstream.authorities(),
            "held_requests": status_upstream.held(),
        });
        if let Some(a) = &status_alerts {
            v["alerts"] = serde_json::to_value(a.status()).unwrap_or_default();
        }
        if let Some(c) = &cluster {
            v["cluster"] = c.status();
        }
        if let Some(s) = &app_status {
            if let Ok(list) = s.lock() {
                v["app"] = app_json(&list);
            }
        }
        if let Ok(a) = audit.lock() {
            if !a.is_null() {
                v["audit"] = a.clone();
            }
        }
        v
    })
}

/// The app's state and instances, for `/v1/status` (`kevlar status`).
fn app_json(list: &[kevlar_supervisor::InstanceStatus]) -> serde_json::Value {
    let now = kevlar_core::time::now_ms();
    let instances: Vec<serde_json::Value> = list
        .iter()
        .map(|i| {
            let mut j = serde_json::to_value(i).unwrap_or_default();
            if let (Some(start), InstanceState::Running) = (i.started_ms, i.state) {
                j["uptime_ms"] = serde_json::json!(now - start);
            }
            j
        })
        .collect();
    let state = if list.iter().all(|i| i.state == InstanceState::Running) {
        "running"
    } else if list.iter().any(|i| i.state == InstanceState::Errored) {
        "errored"
    } else if list.len() > 1 && list.iter().any(|i| i.state == InstanceState::Running) {
        "partly running"
    } else {
        list.first().map_or("stopped", |i| i.state.as_str())
    };
    serde_json::json!({ "state": state, "instances": instances })
}

/// `kevlar status`, `reload` and `restart` find the admin API through this file.
fn write_admin_addr(config: &Config, data_dir: &Path, admin_addr: &str) {
    let scheme = if config.admin.tls_cert.is_some() { "https" } else { "http" };
    let addr_file = data_dir.join(ADMIN_ADDR_FILE);
    kevlar_core::private::private_file(&addr_file);
    if let Err(e) = std::fs::write(&addr_file, format!("{scheme}://{admin_addr}\n")) {
        tracing::warn!(error = %e, "cannot write {}", ADMIN_ADDR_FILE);
    }
}

/// The last event (`sys_shutdown`) acknowledged by the store, the sinks' last deliveries, the
/// store's last batch.
async fn flush_and_close(bus: kevlar_engine::Bus, alerts: Option<kevlar_sinks::Alerts>, store: StoreWriter) {
    let _ = bus
        .publish_acked(
            SecurityEvent::new(action::SYS_SHUTDOWN, Category::Process, Severity::Info, "Kevlar stopped")
                .with_outcome(Outcome::Success),
        )
        .await;
    // The sinks get a moment to send the last events; what is left waits in the outbox.
    if let Some(a) = alerts {
        let _ = tokio::task::spawn_blocking(move || a.close(ALERTS_GRACE)).await;
    }
    drop(bus);
    // Every batch is committed as it arrives; this only waits for the last one, briefly.
    let _ = tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(move || store.join())).await;
}
