//! The guard: its shared state, its workers (one thread and upstream pool each) and its counters.
//! The listening side is `listen.rs`, one request's phases `request.rs` (refusals as `Fault`s,
//! `fault.rs`), upgraded connections `tunnel.rs`.

mod fault;
mod listen;
mod request;
mod tunnel;

use listen::bind_many;
pub use listen::Listeners;

use kevlar_core::action;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ipnet::IpNet;
use kevlar_config::{Config, Limits};
use kevlar_core::access::{AccessLog, AccessRecord};
use kevlar_core::{Category, Decision, Gate, Outcome, RequestId, RequestMeta, RequestView, SecurityEvent, Severity};
use kevlar_engine::Bus;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::body::{RequestBody, ResponseBody};
use crate::forward::{self, ForwardInfo};
use crate::headers::HeaderPolicy;
use crate::io::{ConnState, GuardedIo, InFlight};
use crate::upstream::Upstream;
use crate::{client_ip, pages, validate};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    #[error("cannot listen on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Counters for `/v1/status`.
#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub upstream_errors: AtomicU64,
}

impl Stats {
    pub fn to_json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "requests": g(&self.requests),
            "connections_open": g(&self.connections_open),
            "connections_total": g(&self.connections_total),
            "responses_4xx": g(&self.responses_4xx),
            "responses_5xx": g(&self.responses_5xx),
            "upstream_errors": g(&self.upstream_errors),
        })
    }
}

struct Shared {
    policy: HeaderPolicy,
    trusted: Vec<IpNet>,
    limits: Limits,
    upstream: Arc<Upstream>,
    workers: usize,
    bus: Bus,
    access: Option<Arc<dyn AccessLog>>,
    stats: Arc<Stats>,
    /// With TLS on, the plain listener redirects to HTTPS.
    redirect: bool,
    /// The bound TLS port the redirect points to.
    tls_port: AtomicU16,
    h1: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
    conns: Semaphore,
    /// Requests in flight to the application, over all clients.
    upstream_slots: Arc<Semaphore>,
    /// Bans, rate limits, detection, route inventory.
    gate: Option<Arc<dyn Gate>>,
    /// `[headers] csp_report_path` and the deduplication of the reports it receives.
    csp_reports: Option<(String, crate::csp_report::Dedup)>,
    /// `[headers] csp_nonce`, and the deduplication of its `csp_nonce_unavailable` events.
    csp_nonce: Option<crate::csp_report::Dedup>,
}

/// The guard: configuration-derived state shared by its workers.
#[derive(Clone)]
pub struct Guard {
    shared: Arc<Shared>,
}

/// One worker: a single-threaded runtime with its own listeners and its own upstream pool, so a
/// request never crosses threads (no wake-ups between cores on the hot path).
#[derive(Clone)]
struct Worker {
    shared: Arc<Shared>,
    pool: Arc<crate::pool::Pool>,
}

fn upstream_pool(limits: &Limits) -> Arc<crate::pool::Pool> {
    crate::pool::Pool::new(limits.upstream_connect_timeout, std::time::Duration::from_secs(90), 256)
}

struct ConnCtx {
    peer_ip: IpAddr,
    /// The peer's address as a header value, rendered once per connection.
    peer_value: HeaderValue,
    tls: bool,
    redirect: bool,
    state: Arc<ConnState>,
    /// Requests of this connection in flight to the application.
    upstream_slots: Arc<Semaphore>,
}

const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("unknown"))
}

fn version_str(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "?",
    }
}

impl Guard {
    pub fn new(
        config: &Config,
        upstream: Arc<Upstream>,
        bus: Bus,
        access: Option<Arc<dyn AccessLog>>,
        stats: Arc<Stats>,
        gate: Option<Arc<dyn Gate>>,
    ) -> Self {
        let limits = config.limits.clone();
        let workers = match config.proxy.workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        };
        let mut h1 = hyper::server::conn::http1::Builder::new();
        h1.max_buf_size(limits.max_header_bytes.max(8192))
            .max_headers(limits.max_headers)
            .header_read_timeout(None)
            .keep_alive(true);
        let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2.max_header_list_size(limits.max_header_bytes as u32).max_concurrent_streams(256);
        let redirect = config.tls.as_ref().is_some_and(|t| t.redirect_http);
        let tls_port = AtomicU16::new(config.tls.as_ref().map(|t| t.listen.port()).unwrap_or(443));
        Guard {
            shared: Arc::new(Shared {
                policy: HeaderPolicy::from_config(&config.headers),
                trusted: config.proxy.trusted_proxies.clone(),
                conns: Semaphore::new(limits.max_connections),
                upstream_slots: Arc::new(Semaphore::new(limits.max_upstream_connections)),
                limits,
                upstream,
                workers,
                bus,
                access,
                stats,
                redirect,
                tls_port,
                h1,
                h2,
                gate,
                csp_reports: config.headers.csp_report_path.clone().map(|p| (p, Default::default())),
                csp_nonce: config.headers.csp_nonce.then(Default::default),
            }),
        }
    }

    /// Binds the plain listener and, when configured, the TLS one.
    pub async fn bind(&self, config: &Config) -> Result<Listeners, GuardError> {
        let n = self.shared.workers;
        let tls = match &config.tls {
            None => None,
            Some(t) => {
                let cfg = crate::tls::server_config(&t.cert, &t.key, true)?;
                Some((bind_many(t.listen, n).await?, TlsAcceptor::from(cfg)))
            }
        };
        let plain = bind_many(config.proxy.listen, n).await?;
        Ok(Listeners { plain, tls })
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets open connections finish
    /// their current request (up to `grace`). Each worker runs on its own thread.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl std::future::Future<Output = ()>,
        grace: std::time::Duration,
    ) {
        if let Some(a) = listeners.https_addr() {
            self.shared.tls_port.store(a.port(), Ordering::Relaxed);
        }
        let redirect = self.shared.redirect && listeners.tls.is_some();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut plain = listeners.plain.into_iter();
        let (mut tls, acceptor) = match listeners.tls {
            Some((l, a)) => (l.into_iter(), Some(a)),
            None => (Vec::new().into_iter(), None),
        };
        let mut threads = Vec::new();
        for i in 0..self.shared.workers {
            let plain_l = plain.next();
            let tls_l = tls.next();
            let acceptor = acceptor.clone();
            let shared = self.shared.clone();
            let mut stop = stop_rx.clone();
            let spawned = std::thread::Builder::new().name(format!("kevlar-proxy-{i}")).spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a proxy worker");
                        return;
                    }
                };
                rt.block_on(async move {
                    let worker = Worker { pool: upstream_pool(&shared.limits), shared };
                    // Every connection holds a clone of `open`; when the last is gone, `drained` ends.
                    let (open, mut drained) = tokio::sync::mpsc::channel::<()>(1);
                    let mut loops = Vec::new();
                    for (l, acc, redir) in [(plain_l, None, redirect), (tls_l, acceptor, false)] {
                        let Some(l) = l else { continue };
                        match TcpListener::from_std(l) {
                            Ok(l) => loops.push(tokio::spawn(worker.clone().accept_loop(
                                l,
                                acc,
                                redir,
                                stop.clone(),
                                open.clone(),
                            ))),
                            Err(e) => tracing::error!(error = %e, "cannot use a listener"),
                        }
                    }
                    drop(open);
                    let _ = stop.changed().await;
                    for l in &loops {
                        l.abort();
                    }
                    for l in loops {
                        let _ = l.await;
                    }
                    if tokio::time::timeout(grace, drained.recv()).await.is_err() {
                        tracing::warn!("connections still open after the grace period; closing them");
                    }
                });
            });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!(error = %e, "cannot start a proxy worker thread"),
            }
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}
