//! Listeners, connections and the per-request path.

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
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ipnet::IpNet;
use kevlar_config::{Config, Limits};
use kevlar_core::access::{AccessLog, AccessRecord};
use kevlar_core::{Category, Decision, Gate, Outcome, RequestId, RequestMeta, RequestView, SecurityEvent, Severity};
use kevlar_engine::Bus;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::body::{RequestBody, ResponseBody, FAIL_BLOCKED, FAIL_MALFORMED, FAIL_TIMEOUT, FAIL_TOO_LARGE};
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
}

/// The bound sockets, one per worker and address (SO_REUSEPORT), so callers learn the ports
/// (tests bind port 0) before serving starts.
pub struct Listeners {
    plain: Vec<std::net::TcpListener>,
    tls: Option<(Vec<std::net::TcpListener>, TlsAcceptor)>,
}

impl Listeners {
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.plain.first().and_then(|l| l.local_addr().ok())
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.first()).and_then(|l| l.local_addr().ok())
    }
}

/// Binds `count` listeners on one address with SO_REUSEPORT, so the kernel spreads connections
/// over the workers. A port 0 is resolved by the first bind and reused by the others.
async fn bind_many(addr: SocketAddr, count: usize) -> Result<Vec<std::net::TcpListener>, GuardError> {
    let err = |source| GuardError::Bind { addr, source };
    let mut out = Vec::with_capacity(count);
    let mut at = addr;
    for _ in 0..count.max(1) {
        let socket = if at.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
            .map_err(err)?;
        socket.set_reuseaddr(true).map_err(err)?;
        socket.set_reuseport(true).map_err(err)?;
        socket.bind(at).map_err(err)?;
        let l = socket.listen(4096).map_err(err)?;
        at = l.local_addr().map_err(err)?;
        out.push(l.into_std().map_err(err)?);
    }
    Ok(out)
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
    client: Client<HttpConnector, RequestBody>,
}

fn upstream_client(limits: &Limits) -> Client<HttpConnector, RequestBody> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(limits.upstream_connect_timeout));
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(connector)
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

/// Per-request facts kept for events and the access log. Cheap clones of the request's own
/// buffers; turned into text only when an event or a log line needs it.
struct ReqInfo {
    started: Instant,
    request_id: RequestId,
    request_id_value: HeaderValue,
    client_ip: IpAddr,
    method: http::Method,
    uri: http::Uri,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    version: &'static str,
    /// Detectors flagged the request (for the route inventory).
    flagged: std::sync::atomic::AtomicBool,
    /// Refused at the edge (banned, rate limited): not a fact about the app's routes.
    edge_refused: std::sync::atomic::AtomicBool,
}

use kevlar_core::event::capped;

impl ReqInfo {
    fn path(&self) -> &str {
        self.uri.path()
    }
    fn path_text(&self) -> String {
        capped(self.uri.path(), 2048)
    }
    fn query_text(&self) -> Option<String> {
        self.uri.query().map(|q| kevlar_core::event::redacted_query(q, 2048))
    }
    fn host_text(&self) -> Option<String> {
        match &self.host {
            Some(h) => h.to_str().ok().map(|s| capped(s, 512)),
            None => self.uri.authority().map(|a| capped(a.as_str(), 512)),
        }
    }
    fn ua_text(&self) -> Option<String> {
        self.user_agent.as_ref().and_then(|v| v.to_str().ok()).map(|s| capped(s, 512))
    }
    fn rid(&self) -> &str {
        self.request_id_value.to_str().unwrap_or("")
    }
    fn meta(&self) -> RequestMeta<'_> {
        RequestMeta {
            ip: self.client_ip,
            request_id: self.rid(),
            method: self.method.as_str(),
            path: self.uri.path(),
            query: self.uri.query(),
            user_agent: self.user_agent.as_ref().and_then(|v| v.to_str().ok()),
        }
    }
}

const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("unknown"))
}

/// Drives a connection; when Kevlar stops, asks it to finish its current requests and close.
async fn until_stopped<C>(
    conn: C,
    mut stop: tokio::sync::watch::Receiver<bool>,
    shutdown: fn(std::pin::Pin<&mut C>),
) -> Result<(), hyper::Error>
where
    C: std::future::Future<Output = Result<(), hyper::Error>>,
{
    tokio::pin!(conn);
    if !*stop.borrow() {
        tokio::select! {
            r = conn.as_mut() => return r,
            _ = stop.changed() => {}
        }
    }
    shutdown(conn.as_mut());
    conn.await
}

/// An upgraded (WebSocket) tunnel closes after this long without a byte either way, at least.
const TUNNEL_IDLE_MIN: std::time::Duration = std::time::Duration::from_secs(300);

/// Relays an upgraded connection until either side closes, errs or the tunnel is idle for
/// `idle`; then both sides are closed, so that a client gone away never leaves Kevlar holding
/// the app's socket (and the app never keeps Kevlar's).
async fn tunnel<C, U>(c: C, u: U, idle: std::time::Duration, mut scan: Option<Box<dyn kevlar_core::MessageScan>>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut cr, mut cw) = tokio::io::split(c);
    let (mut ur, mut uw) = tokio::io::split(u);
    let mut cb = vec![0u8; 8192];
    let mut ub = vec![0u8; 8192];
    let mut frames = crate::wsframe::Frames::default();
    loop {
        let step = tokio::time::timeout(idle, async {
            tokio::select! {
                r = cr.read(&mut cb) => match r {
                    Ok(0) | Err(_) => false,
                    Ok(n) => {
                        // Judged before relayed: a refused message's last frame never reaches the app.
                        let refused = scan.as_mut().is_some_and(|s| frames.feed(&cb[..n], s.as_mut()).is_err());
                        if refused {
                            let _ = cw.write_all(crate::wsframe::CLOSE_POLICY).await;
                            false
                        } else {
                            uw.write_all(&cb[..n]).await.is_ok()
                        }
                    }
                },
                r = ur.read(&mut ub) => match r {
                    Ok(0) | Err(_) => false,
                    Ok(n) => cw.write_all(&ub[..n]).await.is_ok(),
                },
            }
        })
        .await;
        if step != Ok(true) {
            break;
        }
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = cw.shutdown().await;
        let _ = uw.shutdown().await;
    })
    .await;
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Looks at the first bytes without consuming them: true when they are HTTP/2's preface.
async fn sniff_h2_preface(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buf = [0u8; 24];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(false);
        }
        if !H2_PREFACE.starts_with(&buf[..n]) {
            return Ok(false);
        }
        if n >= H2_PREFACE.len() {
            return Ok(true);
        }
        // A partial preface: wait for more bytes (bounded by the caller's timeout).
        stream.readable().await?;
        tokio::task::yield_now().await;
    }
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
                    let worker = Worker { client: upstream_client(&shared.limits), shared };
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

impl Worker {
    async fn accept_loop(
        self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        redirect: bool,
        stop: tokio::sync::watch::Receiver<bool>,
        open: tokio::sync::mpsc::Sender<()>,
    ) {
        loop {
            // At the connection cap, stop accepting: further clients wait in the kernel's queue.
            let permit = match self.shared.conns.acquire().await {
                Ok(p) => p,
                Err(_) => return,
            };
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            };
            permit.forget();
            let _ = stream.set_nodelay(true);
            let this = self.clone();
            let tls = tls.clone();
            let stop = stop.clone();
            let open = open.clone();
            tokio::spawn(async move {
                this.shared.stats.connections_open.fetch_add(1, Ordering::Relaxed);
                this.shared.stats.connections_total.fetch_add(1, Ordering::Relaxed);
                this.connection(stream, peer, tls, redirect, stop).await;
                drop(open);
                this.shared.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
                this.shared.conns.add_permits(1);
            });
        }
    }

    async fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<TlsAcceptor>,
        redirect: bool,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let limits = &self.shared.limits;
        let state = Arc::new(ConnState::default());
        let peer_ip = client_ip::canonical(peer.ip());
        let ctx = Arc::new(ConnCtx {
            peer_ip,
            peer_value: ip_value(peer_ip),
            tls: tls.is_some(),
            redirect,
            state: state.clone(),
            upstream_slots: Arc::new(Semaphore::new(limits.max_upstream_per_client)),
        });
        let this = self.clone();
        // The request future is boxed: hyper keeps its slot for the connection's whole life, and an
        // idle keep-alive connection should not hold a request's worth of state.
        let svc = hyper::service::service_fn(move |req| {
            let this = this.clone();
            let ctx = ctx.clone();
            Box::pin(async move { Ok::<_, Infallible>(this.handle(ctx, req).await) })
                as std::pin::Pin<
                    Box<dyn std::future::Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>,
                >
        });
        // Plain HTTP/1 is the common case and keeps its future small: the TLS and HTTP/2 paths are
        // boxed, so an idle HTTP/1 connection does not carry their state.
        let result: Result<(), hyper::Error> = match tls {
            None => {
                // HTTP/2 with prior knowledge starts with its preface; anything else is HTTP/1.
                let h2 = match tokio::time::timeout(limits.header_timeout, sniff_h2_preface(&stream)).await {
                    Ok(Ok(h2)) => h2,
                    Ok(Err(_)) => return,
                    Err(_) => {
                        state.timed_out_head.store(true, Ordering::Release);
                        false
                    }
                };
                let io =
                    TokioIo::new(GuardedIo::new(stream, state.clone(), limits.header_timeout, limits.idle_timeout, h2));
                if h2 {
                    Box::pin(self.serve_h2(io, svc, stop)).await
                } else {
                    self.serve_h1(io, svc, stop).await
                }
            }
            Some(acc) => match Box::pin(self.serve_tls(stream, peer, acc, state.clone(), svc, stop)).await {
                Some(r) => r,
                None => return,
            },
        };
        if let Err(e) = result {
            let reason = match &e {
                he if he.is_parse_too_large() => Some((431, "request head too large or too many headers")),
                he if he.is_parse() => Some((400, "malformed request")),
                _ if state.timed_out_head.load(Ordering::Acquire) => Some((408, "request head not received in time")),
                _ => None,
            };
            if let Some((status, why)) = reason {
                self.count_status(status);
                let ip = client_ip::canonical(peer.ip());
                let mut ev = SecurityEvent::new(
                    action::INPUT_VALIDATION_FAIL,
                    Category::Web,
                    Severity::Notice,
                    format!("{status}: {why}"),
                )
                .with_outcome(Outcome::Failure)
                .with_kevlar("reason", why);
                ev.source_ip = Some(ip);
                ev.status_code = Some(status);
                self.shared.bus.publish(ev);
            } else {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    }

    async fn serve_tls<S>(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        acc: TlsAcceptor,
        state: Arc<ConnState>,
        svc: S,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<Result<(), hyper::Error>>
    where
        S: hyper::service::HttpService<Incoming, ResBody = ResponseBody> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limits = &self.shared.limits;
        let tls_stream = match tokio::time::timeout(limits.header_timeout, acc.accept(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return None;
            }
        };
        let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(GuardedIo::new(tls_stream, state, limits.header_timeout, limits.idle_timeout, h2));
        Some(if h2 { self.serve_h2(io, svc, stop).await } else { self.serve_h1(io, svc, stop).await })
    }

    async fn serve_h1<I, S>(&self, io: I, svc: S, stop: tokio::sync::watch::Receiver<bool>) -> Result<(), hyper::Error>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        S: hyper::service::HttpService<Incoming, ResBody = ResponseBody> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let conn = self.shared.h1.serve_connection(io, svc).with_upgrades();
        until_stopped(conn, stop, |c| c.graceful_shutdown()).await
    }

    async fn serve_h2<I, S>(&self, io: I, svc: S, stop: tokio::sync::watch::Receiver<bool>) -> Result<(), hyper::Error>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        S: hyper::service::HttpService<Incoming, ResBody = ResponseBody> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let conn = self.shared.h2.serve_connection(io, svc);
        until_stopped(conn, stop, |c| c.graceful_shutdown()).await
    }

    fn count_status(&self, status: u16) {
        let s = &self.shared.stats;
        if (400..500).contains(&status) {
            s.responses_4xx.fetch_add(1, Ordering::Relaxed);
        } else if status >= 500 {
            s.responses_5xx.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn event(&self, info: &ReqInfo, action: &str, severity: Severity, status: u16, message: String, reason: &str) {
        let category = if action.starts_with("sys_") { Category::Process } else { Category::Web };
        let mut ev = SecurityEvent::new(action, category, severity, message)
            .with_outcome(Outcome::Failure)
            .with_kevlar("reason", reason);
        ev.source_ip = Some(info.client_ip);
        ev.http_method = Some(info.method.as_str().to_owned());
        ev.url_path = Some(info.path_text());
        ev.url_query = info.query_text();
        ev.user_agent = info.ua_text();
        ev.status_code = Some(status);
        ev.request_id = Some(info.rid().to_owned());
        self.shared.bus.publish(ev);
    }

    fn log_access(&self, info: &ReqInfo, status: u16, tls: bool) {
        self.count_status(status);
        if let Some(g) = self.shared.gate.as_ref().filter(|_| !info.edge_refused.load(Ordering::Relaxed)) {
            g.observe(&info.meta(), status, info.flagged.load(Ordering::Relaxed));
        }
        if let Some(a) = &self.shared.access {
            a.log(AccessRecord {
                timestamp_ms: kevlar_core::time::now_ms(),
                request_id: info.rid().to_owned(),
                client_ip: info.client_ip,
                method: info.method.as_str().to_owned(),
                path: info.path_text(),
                query: info.query_text(),
                host: info.host_text(),
                version: info.version,
                status,
                duration_us: info.started.elapsed().as_micros() as u64,
                user_agent: info.ua_text(),
                tls,
            });
        }
    }

    /// Kevlar's own answer, with the security headers and the request id.
    fn own_page(&self, ctx: &ConnCtx, info: &ReqInfo, status: u16, in_flight: InFlight) -> Response<ResponseBody> {
        self.own_page_retry(ctx, info, status, None, in_flight)
    }

    fn own_page_retry(
        &self,
        ctx: &ConnCtx,
        info: &ReqInfo,
        status: u16,
        retry_after: Option<u64>,
        in_flight: InFlight,
    ) -> Response<ResponseBody> {
        let mut resp = Response::new(ResponseBody::full(pages::page(status, info.rid()), Some(in_flight)));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(X_REQUEST_ID, info.request_id_value.clone());
        if status == 503 {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if let Some(secs) = retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(status, 400 | 408 | 413 | 431) {
            ctx.state.linger_on_close();
            // The rest of the request cannot be trusted or is not wanted: do not reuse the connection.
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.shared.policy.apply(info.path(), h, false);
        self.log_access(info, status, ctx.tls);
        resp
    }

    async fn handle(&self, ctx: Arc<ConnCtx>, mut req: Request<Incoming>) -> Response<ResponseBody> {
        let in_flight = ctx.state.begin();
        self.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let client_ip = client_ip::resolve(ctx.peer_ip, req.headers(), &self.shared.trusted);
        let request_id = RequestId::random();
        let info = ReqInfo {
            started: Instant::now(),
            request_id,
            request_id_value: HeaderValue::from_bytes(&request_id.to_hex()).unwrap_or(HeaderValue::from_static("0")),
            client_ip,
            method: req.method().clone(),
            uri: req.uri().clone(),
            host: req.headers().get(header::HOST).cloned(),
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
            version: version_str(req.version()),
            flagged: std::sync::atomic::AtomicBool::new(false),
            edge_refused: std::sync::atomic::AtomicBool::new(false),
        };

        // Banned and rate-limited clients are refused before any other work.
        if let Some(g) = &self.shared.gate {
            if let Err(r) = g.admit(&info.meta()) {
                info.edge_refused.store(true, Ordering::Relaxed);
                return self.own_page_retry(&ctx, &info, r.status, r.retry_after, in_flight);
            }
        }
        if ctx.redirect {
            return self.redirect(&ctx, &info, &req, in_flight);
        }
        let cl_and_te = ctx.state.take_cl_and_te();
        let mut checked = validate::check(req.method(), req.uri(), req.headers());
        // HTTP/1.1 requires Host (RFC 9112 §3.2); an HTTP/2 `:authority` and a different `host`
        // are two answers to one question.
        if checked.is_ok() {
            let host = req.headers().get(header::HOST);
            checked = match (req.version(), host, req.uri().authority()) {
                (http::Version::HTTP_11, None, _) => Err(validate::Invalid::MissingHost),
                (http::Version::HTTP_2, Some(h), Some(a))
                    if !h.as_bytes().eq_ignore_ascii_case(a.as_str().as_bytes()) =>
                {
                    Err(validate::Invalid::BadHost)
                }
                _ => Ok(()),
            };
        }
        if let Err(inv) = checked {
            if let Some(rule) = inv.attack_rule() {
                let mut ev = SecurityEvent::new(
                    action::MALICIOUS_ATTACK,
                    Category::IntrusionDetection,
                    Severity::Warning,
                    format!("protocol attempt in the URL: {}; refused", inv.reason()),
                )
                .with_outcome(Outcome::Failure)
                .with_kevlar("family", "protocol")
                .with_kevlar("rule", rule)
                .with_kevlar("location", "url")
                .with_kevlar("score", 8)
                .with_kevlar("blocked", true);
                ev.rule_id = Some(format!("kevlar.protocol.{rule}"));
                ev.rule_name = Some(rule.to_owned());
                ev.source_ip = Some(info.client_ip);
                ev.http_method = Some(info.method.as_str().to_owned());
                ev.url_path = Some(info.path_text());
                ev.url_query = info.query_text();
                ev.user_agent = info.ua_text();
                ev.status_code = Some(inv.status());
                ev.request_id = Some(info.rid().to_owned());
                self.shared.bus.publish(ev);
                return self.own_page(&ctx, &info, inv.status(), in_flight);
            }
            self.event(
                &info,
                action::INPUT_VALIDATION_FAIL,
                Severity::Notice,
                inv.status(),
                format!("request refused: {}", inv.reason()),
                inv.reason(),
            );
            return self.own_page(&ctx, &info, inv.status(), in_flight);
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.shared.limits.max_body_bytes) {
            self.event(
                &info,
                action::INPUT_VALIDATION_FAIL,
                Severity::Notice,
                413,
                "request body larger than the limit".into(),
                "body_too_large",
            );
            return self.own_page(&ctx, &info, 413, in_flight);
        }
        let upgrade = forward::wants_upgrade(req.headers());
        // Under `kevlar run`, a request without a body and with a safe method can be sent again when
        // the instance it went to died under it (a crash, a restart): the client never sees the
        // failure. A fixed upstream needs no copy: the pool itself retries a stale connection.
        let retryable = self.shared.upstream.is_supervised()
            && !upgrade
            && http_body::Body::is_end_stream(req.body())
            && matches!(*req.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        // Headers only Kevlar may tell the app (`Kevlar-Breached-Password`, …): a client's own
        // claims never reach it.
        let claimed: Vec<header::HeaderName> =
            parts.headers.keys().filter(|n| n.as_str().starts_with("kevlar-")).cloned().collect();
        for n in claimed {
            parts.headers.remove(n);
        }
        // Only WebSocket switches protocols through Kevlar: after an `h2c` (or any other) upgrade
        // the connection would be a tunnel nobody inspects.
        if !upgrade {
            parts.headers.remove(header::UPGRADE);
            parts.headers.remove("http2-settings");
        }
        // With `[detect] websocket = true`, the tunnel's messages are read; compression
        // (permessage-deflate) is then not offered to the app, so that every frame stays readable.
        let ws_scan = match (&self.shared.gate, upgrade) {
            (Some(g), true) => g.websocket(&info.meta()),
            _ => None,
        };
        if ws_scan.is_some() {
            parts.headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
        }
        let limits = &self.shared.limits;
        let mut body = RequestBody::new(body, limits.max_body_bytes, limits.body_timeout, limits.body_min_rate);
        let mut request_ctx = None;
        if let Some(g) = &self.shared.gate {
            let meta = info.meta();
            let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let want = if http_body::Body::is_end_stream(&body) { 0 } else { g.body_prefix(&meta, ct) };
            let (ahead, complete) = if want > 0 {
                match body.read_ahead(want).await {
                    Ok(x) => x,
                    Err(e) => {
                        let (status, reason) = match e {
                            crate::body::BodyError::TooLarge => (413, "body_too_large"),
                            crate::body::BodyError::Timeout => (408, "slow_body"),
                            crate::body::BodyError::Read | crate::body::BodyError::Blocked => (400, "malformed_body"),
                        };
                        self.event(
                            &info,
                            action::INPUT_VALIDATION_FAIL,
                            Severity::Notice,
                            status,
                            format!("request refused: {reason}"),
                            reason,
                        );
                        return self.own_page(&ctx, &info, status, in_flight);
                    }
                }
            } else {
                (Bytes::new(), true)
            };
            // hyper keeps only `Transfer-Encoding` of a head that declared both (RFC 9112 §6.3):
            // the detectors see the pair the client sent.
            let as_sent;
            let headers = match cl_and_te {
                Some(cl) if !parts.headers.contains_key(header::CONTENT_LENGTH) => {
                    let mut h = parts.headers.clone();
                    h.insert(header::CONTENT_LENGTH, HeaderValue::from(cl));
                    as_sent = h;
                    &as_sent
                }
                _ => &parts.headers,
            };
            let view = RequestView {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query(),
                headers,
                body: &ahead,
                body_complete: complete,
            };
            let verdict = g.inspect(&meta, &view);
            info.flagged.store(verdict.flagged, Ordering::Relaxed);
            if let Decision::Refuse { status, .. } = verdict.decision {
                return match verdict.retry_after {
                    Some(secs) => self.own_page_retry(&ctx, &info, status, Some(secs), in_flight),
                    None => self.own_page(&ctx, &info, status, in_flight),
                };
            }
            for (name, value) in verdict.add_headers {
                parts.headers.insert(name, value);
            }
            if let Some(d) = verdict.delay {
                tokio::time::sleep(d).await;
            }
            request_ctx = verdict.context;
            body.scanned(verdict.body);
        }
        let saved = retryable.then(|| (parts.method.clone(), parts.uri.clone(), parts.version, parts.headers.clone()));
        let client_value = if client_ip == ctx.peer_ip { ctx.peer_value.clone() } else { ip_value(client_ip) };
        let finfo = ForwardInfo {
            client_value,
            peer_ip: ctx.peer_ip,
            peer_trusted: client_ip::is_trusted(ctx.peer_ip, &self.shared.trusted),
            tls: ctx.tls,
            request_id: info.request_id_value.clone(),
            upgrade,
        };
        let slots = tokio::time::timeout(
            limits.upstream_timeout,
            crate::UpstreamSlots::acquire(&ctx.upstream_slots, &self.shared.upstream_slots),
        )
        .await;
        let Ok(Some(slots)) = slots else {
            self.event(
                &info,
                action::SYS_UPSTREAM_UNAVAILABLE,
                Severity::Warning,
                503,
                "too many requests already waiting for the application".into(),
                "upstream_busy",
            );
            return self.own_page(&ctx, &info, 503, in_flight);
        };
        let mut next = Some((parts, body));
        let mut attempt = 0;
        let mut failed_backends: Vec<u64> = Vec::new();
        const MAX_ATTEMPTS: u32 = 5;
        let (mut resp, lease) = loop {
            attempt += 1;
            let Some((parts, body)) = next.take() else {
                return self.own_page(&ctx, &info, 502, in_flight);
            };
            let lease = match self.shared.upstream.pick_or_wait_except(&failed_backends).await {
                Ok(l) => l,
                Err(_) => return self.own_page(&ctx, &info, 503, in_flight),
            };
            let failed = body.failed.clone();
            let blocked = body.blocked.clone();
            let upstream_req = match forward::prepare(parts, body, &lease.backend().authority, &finfo) {
                Ok(r) => r,
                Err(_) => {
                    self.event(
                        &info,
                        action::INPUT_VALIDATION_FAIL,
                        Severity::Notice,
                        400,
                        "request target cannot be forwarded".into(),
                        "bad_target",
                    );
                    return self.own_page(&ctx, &info, 400, in_flight);
                }
            };
            match tokio::time::timeout(limits.upstream_timeout, self.client.request(upstream_req)).await {
                Ok(Ok(r)) => break (r, lease),
                Ok(Err(e)) => {
                    let status = match failed.load(Ordering::Relaxed) {
                        // Inspection of the body's rest refused it; its event is already out.
                        FAIL_BLOCKED => blocked.load(Ordering::Relaxed),
                        FAIL_TOO_LARGE => {
                            self.event(
                                &info,
                                action::INPUT_VALIDATION_FAIL,
                                Severity::Notice,
                                413,
                                "request body larger than the limit".into(),
                                "body_too_large",
                            );
                            413
                        }
                        FAIL_MALFORMED => {
                            self.event(
                                &info,
                                action::INPUT_VALIDATION_FAIL,
                                Severity::Notice,
                                400,
                                "malformed request body".into(),
                                "malformed_body",
                            );
                            400
                        }
                        FAIL_TIMEOUT => {
                            self.event(
                                &info,
                                action::INPUT_VALIDATION_FAIL,
                                Severity::Notice,
                                408,
                                "request body stalled".into(),
                                "slow_body",
                            );
                            408
                        }
                        _ => {
                            lease.backend().mark_failed();
                            // A supervised instance that failed is dying: wait for another.
                            failed_backends.push(lease.backend().id);
                            drop(lease);
                            if let (Some((method, uri, version, headers)), true) = (&saved, attempt < MAX_ATTEMPTS) {
                                let mut again = Request::new(());
                                *again.method_mut() = method.clone();
                                *again.uri_mut() = uri.clone();
                                *again.version_mut() = *version;
                                *again.headers_mut() = headers.clone();
                                let (p, ()) = again.into_parts();
                                next = Some((p, RequestBody::empty()));
                                tracing::debug!(request_id = %info.request_id, error = %e, "upstream failed; sending the request again");
                                continue;
                            }
                            self.shared.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(request_id = %info.request_id, error = %e, "upstream request failed");
                            self.event(
                                &info,
                                action::SYS_UPSTREAM_UNAVAILABLE,
                                Severity::Warning,
                                502,
                                "the application did not accept the request".into(),
                                "upstream_error",
                            );
                            502
                        }
                    };
                    return self.own_page(&ctx, &info, status, in_flight);
                }
                Err(_) => {
                    self.shared.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                    self.event(
                        &info,
                        action::SYS_UPSTREAM_TIMEOUT,
                        Severity::Warning,
                        504,
                        "the application did not answer in time".into(),
                        "upstream_timeout",
                    );
                    return self.own_page(&ctx, &info, 504, in_flight);
                }
            }
        };

        let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching {
            match client_upgrade {
                Some(client_up) => {
                    ctx.state.mark_upgraded();
                    let upstream_up = hyper::upgrade::on(&mut resp);
                    let idle = limits.idle_timeout.max(TUNNEL_IDLE_MIN);
                    tokio::spawn(async move {
                        match tokio::try_join!(client_up, upstream_up) {
                            Ok((c, u)) => tunnel(TokioIo::new(c), TokioIo::new(u), idle, ws_scan).await,
                            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                        }
                    });
                }
                None => {
                    // A 101 nobody asked for cannot be relayed.
                    self.event(
                        &info,
                        action::SYS_UPSTREAM_UNAVAILABLE,
                        Severity::Warning,
                        502,
                        "the application switched protocols unasked".into(),
                        "unexpected_101",
                    );
                    return self.own_page(&ctx, &info, 502, in_flight);
                }
            }
        }
        let (mut parts, body) = resp.into_parts();
        let mut watch = None;
        if let (Some(g), false) = (&self.shared.gate, switching) {
            watch = g.respond(&info.meta(), request_ctx.as_deref(), parts.status.as_u16(), &mut parts.headers);
        }
        forward::clean_response(&mut parts.headers, switching);
        self.shared.policy.apply(info.path(), &mut parts.headers, true);
        self.log_access(&info, parts.status.as_u16(), ctx.tls);
        Response::from_parts(
            parts,
            ResponseBody::upstream(body, Some(in_flight), Some(lease)).watched(watch).holding(slots),
        )
    }

    fn redirect(
        &self,
        ctx: &ConnCtx,
        info: &ReqInfo,
        req: &Request<Incoming>,
        in_flight: InFlight,
    ) -> Response<ResponseBody> {
        let port = self.shared.tls_port.load(Ordering::Relaxed);
        let host = info.host_text().and_then(|h| h.parse::<http::uri::Authority>().ok()).map(|a| a.host().to_owned());
        let Some(host) = host else {
            return self.own_page(ctx, info, 400, in_flight);
        };
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
        let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let location = if port == 443 { format!("https://{host}{pq}") } else { format!("https://{host}:{port}{pq}") };
        let mut resp = Response::new(ResponseBody::full(Bytes::new(), Some(in_flight)));
        *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
        match HeaderValue::from_str(&location) {
            Ok(v) => {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
        }
        self.shared.policy.apply(info.path(), resp.headers_mut(), false);
        self.log_access(info, resp.status().as_u16(), false);
        resp
    }
}
