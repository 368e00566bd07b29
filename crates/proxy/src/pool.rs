//! The connections to the app: each proxy worker keeps its own idle HTTP/1.1 connections to each
//! instance, so a request takes one without crossing threads, with no pool shared between
//! workers. A connection goes back when the answer's body is done; one the app closed, or that is
//! busy still, is not taken again. A request that could not even be written on a connection the
//! app had just closed is sent once more on a new one (nothing of it reached the app).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use http::uri::{Authority, PathAndQuery};
use http::{header, HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::RequestBody;

/// Why a request did not reach the app.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("cannot connect to the application")]
    Connect(#[source] std::io::Error),
    #[error("connecting to the application timed out")]
    ConnectTimeout,
    #[error("the exchange with the application failed")]
    Http(#[source] hyper::Error),
}

struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

/// One worker's idle connections, by instance.
pub struct Pool {
    idle: Mutex<HashMap<Authority, Vec<Idle>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
}

/// A connection lent for one answer: back to the pool when the answer's body is done (dropped).
pub struct Lent {
    pool: Arc<Pool>,
    authority: Authority,
    sender: Option<SendRequest<RequestBody>>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.pool.put(&self.authority, sender);
        }
    }
}

impl Pool {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration, max_idle: usize) -> Arc<Pool> {
        Arc::new(Pool { idle: Mutex::default(), connect_timeout, idle_timeout, max_idle })
    }

    /// An idle connection to `authority` that can take a request now.
    fn take(&self, authority: &Authority) -> Option<SendRequest<RequestBody>> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(authority)?;
        while let Some(mut c) = list.pop() {
            if c.sender.is_closed() || c.since.elapsed() > self.idle_timeout {
                continue;
            }
            // Ready, or ready as soon as its connection has seen the end of the last answer.
            if c.sender.is_ready() || matches!(c.sender.ready().now_or_never(), Some(Ok(()))) {
                return Some(c.sender);
            }
        }
        None
    }

    fn put(&self, authority: &Authority, sender: SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else { return };
        if !idle.contains_key(authority) {
            // A new instance (a restart moves a supervised one to another port): let the
            // instances that are gone, whose connections are all closed, go too.
            idle.retain(|_, list| {
                list.retain(|c| !c.sender.is_closed());
                !list.is_empty()
            });
        }
        let list = idle.entry(authority.clone()).or_default();
        if list.len() >= self.max_idle {
            // The longest idle goes (dropping the sender closes its connection).
            list.remove(0);
        }
        list.push(Idle { sender, since: Instant::now() });
    }

    async fn connect(&self, authority: &Authority) -> Result<SendRequest<RequestBody>, PoolError> {
        let addr = (authority.host().trim_start_matches('[').trim_end_matches(']'), authority.port_u16().unwrap_or(80));
        let stream = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(PoolError::Connect(e)),
            Err(_) => return Err(PoolError::ConnectTimeout),
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(PoolError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Sends `req` (its URI absolute, naming the instance) on an idle connection to `authority`
    /// or a new one. `reusable`: the connection goes back to the pool after the answer (not
    /// after a protocol upgrade).
    pub async fn send(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        authority: &Authority,
        reusable: bool,
    ) -> Result<(Response<Incoming>, Option<Lent>), PoolError> {
        let mut req = origin_form(req, authority);
        loop {
            let (mut sender, fresh) = match self.take(authority) {
                Some(s) => (s, false),
                None => (self.connect(authority).await?, true),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let lent = reusable.then(|| Lent {
                        pool: self.clone(),
                        authority: authority.clone(),
                        sender: Some(sender),
                    });
                    return Ok((resp, lent));
                }
                Err(mut e) => match e.take_message() {
                    // Not written at all, on a connection the app had closed: a new one.
                    Some(r) if !fresh => req = r,
                    _ => return Err(PoolError::Http(e.into_error())),
                },
            }
        }
    }

    /// Idle connections held, over all instances.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|i| i.values().map(Vec::len).sum()).unwrap_or(0)
    }
}

/// The request line in origin form (`/path?query`), as an origin server expects it, and a `Host`
/// when the client sent none (HTTP/1.0).
fn origin_form(req: Request<RequestBody>, authority: &Authority) -> Request<RequestBody> {
    let (mut parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(pq);
    if !parts.headers.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(header::HOST, v);
        }
    }
    Request::from_parts(parts, body)
}
