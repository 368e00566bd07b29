//! `kevlar guard` and `kevlar run`: wire the pipeline together and serve until a signal.
//!
//! sensors (proxy, supervisor, admin API) → bus → store (durable) ; access log on the side.

use std::path::PathBuf;
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
use kevlar_supervisor::{AppSpec, Supervisor};
use tokio::sync::watch;

use crate::cli::CommonArgs;

const STORE_QUEUE: usize = 65_536;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    let file = match &common.config {
        Some(f) => Some(f.clone()),
        None => Some(PathBuf::from("kevlar.toml")).filter(|p| p.exists()),
    };
    let result = match &file {
        Some(f) => kevlar_config::load_file(f, &overrides),
        None => kevlar_config::defaults_with(&overrides),
    };
    result.map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEVLAR_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
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

async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
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
            tracing::warn!(limit = want, max_connections, "the open-file limit is below what limits.max_connections needs");
        }
    }
}

fn serve(config: Config, command: Option<Vec<String>>) -> anyhow::Result<ExitCode> {
    init_logging();
    raise_fd_limit(config.limits.max_connections);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    rt.block_on(serve_async(config, command))
}

async fn serve_async(config: Config, command: Option<Vec<String>>) -> anyhow::Result<ExitCode> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;

    // Consumers first, then the bus that feeds them.
    let mut bus_builder = BusBuilder::new();
    let store_rx = bus_builder.subscribe("store", STORE_QUEUE, true);
    let bus = bus_builder.build();
    let store = StoreWriter::start(&data_dir, Retention { max_age: config.store.retention, max_size_bytes: config.store.max_size_bytes }, store_rx)
        .context("cannot open the event store")?;

    let access = match &config.access_log {
        AccessLog::Off => None,
        AccessLog::Stdout => Some(AccessLogger::start(AccessTarget::Stdout, 65_536).context("cannot start the access log")?),
        AccessLog::File { path, max_bytes, keep } => {
            let path = if path.is_relative() { data_dir.join(path) } else { path.clone() };
            Some(
                AccessLogger::start(AccessTarget::File { path: path.clone(), max_bytes: *max_bytes, keep: *keep }, 65_536)
                    .with_context(|| format!("cannot open the access log {}", path.display()))?,
            )
        }
    };

    let token = kevlar_admin::ensure_token(&data_dir).with_context(|| format!("cannot create {}", data_dir.join(kevlar_admin::TOKEN_FILE).display()))?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("cannot listen on {} for the admin API", config.admin.listen))?;
    let admin_tls = match (&config.admin.tls_cert, &config.admin.tls_key) {
        (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(kevlar_proxy::tls::server_config(c, k, false)?)),
        _ => None,
    };

    let stats = Arc::new(Stats::default());
    let initial = config.proxy.upstream.as_ref().and_then(|u| u.authority().cloned());
    let upstream = Arc::new(Upstream::new(if command.is_some() { None } else { initial }));
    let guard = Guard::new(&config, upstream.clone(), bus.clone(), access, stats.clone());
    let listeners = guard.bind(&config).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut supervisor_task = None;
    let mut app_status = None;
    if let Some(cmd) = command {
        let port = match config.app.port {
            Some(p) => p,
            None => kevlar_supervisor::free_port()?,
        };
        let sup = Supervisor::new(
            AppSpec { command: cmd, port, env: config.app.env.clone(), cwd: None, ready_timeout: config.app.ready_timeout, stop_grace: config.app.stop_grace },
            bus.clone(),
        )?;
        app_status = Some(sup.status.clone());
        let up = upstream.clone();
        let rx = stop_rx.clone();
        supervisor_task = Some(tokio::spawn(async move {
            sup.run(rx, move |addr| up.set(addr.map(|a| http::uri::Authority::try_from(a.to_string().as_str()).expect("a socket address is an authority"))))
                .await
        }));
    }

    let status_upstream = upstream.clone();
    let status_stats = stats.clone();
    let status_fn: kevlar_admin::StatusFn = Arc::new(move || {
        let mut v = serde_json::json!({
            "proxy": status_stats.to_json(),
            "upstream": status_upstream.get().map(|a| a.to_string()),
        });
        if let Some(s) = &app_status {
            if let Ok(s) = s.lock() {
                v["app"] = serde_json::json!({ "state": s.state, "pid": s.pid, "restarts": s.restarts, "last_exit": s.last_exit });
            }
        }
        v
    });
    let admin_state = kevlar_admin::AdminState { token: Arc::new(token), data_dir: data_dir.clone(), bus: bus.clone(), status: status_fn, started: std::time::Instant::now() };

    let http_addr = listeners.http_addr().map(|a| a.to_string()).unwrap_or_default();
    let https_addr = listeners.https_addr().map(|a| format!(" https={a}")).unwrap_or_default();
    let admin_addr = admin_listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    bus.publish(
        SecurityEvent::new("sys_startup", Category::Process, Severity::Info, format!("Kevlar {} started", env!("CARGO_PKG_VERSION")))
            .with_outcome(Outcome::Success)
            .with_kevlar("listen", http_addr.clone()),
    );
    let overflow = bus.spawn_overflow_reporter(Duration::from_secs(5));

    let mut admin_stop = stop_rx.clone();
    let admin_task = tokio::spawn(kevlar_admin::serve(admin_listener, admin_tls, admin_state, async move {
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
    // A stable line that scripts and tests can wait for.
    eprintln!("kevlar: ready http={http_addr}{https_addr} admin={admin_addr} data_dir={}", data_dir.display());

    signal().await;
    tracing::info!("stopping: no new connections; finishing open requests");
    let _ = stop_tx.send(true);
    let _ = guard_task.await;
    let _ = admin_task.await;
    if let Some(t) = supervisor_task {
        match t.await {
            Ok(Err(e)) => tracing::error!(error = %e, "supervisor"),
            Err(e) => tracing::error!(error = %e, "supervisor task"),
            Ok(Ok(())) => {}
        }
    }
    overflow.abort();
    let _ = bus.publish_acked(SecurityEvent::new("sys_shutdown", Category::Process, Severity::Info, "Kevlar stopped").with_outcome(Outcome::Success)).await;
    drop(bus);
    // Every batch is committed as it arrives; this only waits for the last one, briefly.
    let _ = tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(move || store.join())).await;
    Ok(ExitCode::SUCCESS)
}
