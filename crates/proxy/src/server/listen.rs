//! The listening side: sockets bound per worker (SO_REUSEPORT), the accept loop under the
//! connection cap, one connection's life (plain HTTP/1, HTTP/2 by preface or ALPN, TLS), and the
//! graceful stop.

use super::*;

/// The bound sockets, one per worker and address (SO_REUSEPORT), so callers learn the ports
/// (tests bind port 0) before serving starts.
pub struct Listeners {
    pub(super) plain: Vec<std::net::TcpListener>,
    pub(super) tls: Option<(Vec<std::net::TcpListener>, TlsAcceptor)>,
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
pub(super) async fn bind_many(addr: SocketAddr, count: usize) -> Result<Vec<std::net::TcpListener>, GuardError> {
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

impl Worker {
    pub(super) async fn accept_loop(
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
