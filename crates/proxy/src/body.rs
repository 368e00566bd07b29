//! Bodies the proxy moves: the request body with its size cap, inactivity timeout and minimum
//! rate (streamed, never gathered), and the response body that carries the per-request
//! bookkeeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::io::InFlight;
use crate::upstream::Lease;

/// Why a request body was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds the limit")]
    TooLarge,
    #[error("request body stalled")]
    Timeout,
    #[error("request body read failed")]
    Read,
    /// Inspection of the body past its read-ahead start refused it, with this status (its event
    /// is already out).
    #[error("request body refused by inspection")]
    Blocked { status: u16 },
}

/// How a request body was cut off while streaming, for the proxy to read after the upstream
/// client failed on it: the client's fault (413, 408, 400, refused), not the app's (502).
#[derive(Debug, Default)]
pub struct Failure(AtomicU32);

impl Failure {
    fn set(&self, e: BodyError) {
        let code = match e {
            BodyError::TooLarge => 1,
            BodyError::Timeout => 2,
            BodyError::Read => 3,
            BodyError::Blocked { status } => 4 << 16 | u32::from(status),
        };
        self.0.store(code, Ordering::Relaxed);
    }

    /// The body's failure, if it failed.
    pub fn get(&self) -> Option<BodyError> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(BodyError::TooLarge),
            2 => Some(BodyError::Timeout),
            3 => Some(BodyError::Read),
            c => Some(BodyError::Blocked { status: (c & 0xffff) as u16 }),
        }
    }
}

/// The client's request body on its way upstream.
pub struct RequestBody {
    inner: Option<Incoming>,
    read: u64,
    max: u64,
    timeout: Duration,
    /// Bytes per second the body must average after its first `timeout` (0: no such deadline).
    min_rate: u64,
    started: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Read ahead for inspection, sent before the rest.
    prefix: Option<Bytes>,
    /// A trailers frame met while reading ahead.
    trailers: Option<http::HeaderMap>,
    /// Set when the body is cut off, so the proxy can answer 413 or 408 instead of 502.
    pub failed: Arc<Failure>,
    /// Sees the body after the read-ahead start as it streams.
    scan: Option<Box<dyn kevlar_core::BodyScan>>,
}

impl RequestBody {
    pub fn new(inner: Incoming, max: u64, timeout: Duration, min_rate: u64) -> Self {
        RequestBody {
            inner: Some(inner),
            read: 0,
            max,
            timeout,
            min_rate,
            started: Instant::now(),
            sleep: None,
            prefix: None,
            trailers: None,
            failed: Arc::default(),
            scan: None,
        }
    }

    /// When the body is cut off: `timeout` after the last piece, or — as Apache's
    /// `mod_reqtimeout` MinRate — `timeout` plus one second per `min_rate` bytes after its start,
    /// whichever comes first.
    fn deadline(&self, now: Instant) -> Instant {
        let stall = now + self.timeout;
        if self.min_rate == 0 {
            return stall;
        }
        let earned = Duration::from_secs_f64(self.read as f64 / self.min_rate as f64);
        stall.min(self.started + self.timeout + earned)
    }

    /// Lets `scan` see the rest of the body (what follows the read-ahead start).
    pub fn scanned(&mut self, scan: Option<Box<dyn kevlar_core::BodyScan>>) {
        self.scan = scan;
    }

    fn refuse(&mut self, status: u16) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.scan = None;
        self.inner = None;
        self.failed.set(BodyError::Blocked { status });
        Poll::Ready(Some(Err(BodyError::Blocked { status })))
    }

    /// Reads at least `n` bytes ahead (or the whole body when shorter), keeps them to send
    /// first, and returns them with whether they are the whole body. The size cap and the
    /// stall timeout apply as when streaming.
    pub async fn read_ahead(&mut self, n: usize) -> Result<(Bytes, bool), BodyError> {
        use http_body_util::BodyExt;
        let mut buf = bytes::BytesMut::new();
        let mut complete = false;
        while buf.len() < n {
            match self.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) => buf.extend_from_slice(&d),
                    Err(frame) => {
                        self.trailers = frame.into_trailers().ok();
                        complete = true;
                        break;
                    }
                },
                Some(Err(e)) => return Err(e),
                None => {
                    complete = true;
                    break;
                }
            }
        }
        let bytes = buf.freeze();
        if complete {
            self.inner = None;
        }
        self.prefix = Some(bytes.clone());
        Ok((bytes, complete))
    }

    /// No body (a request sent again).
    pub fn empty() -> Self {
        RequestBody {
            inner: None,
            read: 0,
            max: 0,
            timeout: Duration::from_secs(1),
            min_rate: 0,
            started: Instant::now(),
            sleep: None,
            prefix: None,
            trailers: None,
            failed: Arc::default(),
            scan: None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(p) = this.prefix.take() {
            // A body read ahead whole (its end not yet seen) is judged before it leaves.
            if this.inner.as_ref().is_none_or(|b| b.is_end_stream()) {
                if let Some(mut scan) = this.scan.take() {
                    if let Err(status) = scan.end() {
                        return this.refuse(status);
                    }
                }
            }
            if !p.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(p))));
            }
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.read += d.len() as u64;
                    if this.read > this.max {
                        this.failed.set(BodyError::TooLarge);
                        return Poll::Ready(Some(Err(BodyError::TooLarge)));
                    }
                }
                let now = Instant::now();
                let deadline = this.deadline(now);
                if deadline <= now {
                    this.failed.set(BodyError::Timeout);
                    return Poll::Ready(Some(Err(BodyError::Timeout)));
                }
                if let Some(s) = this.sleep.as_mut() {
                    s.as_mut().reset(deadline);
                }
                if let Some(scan) = this.scan.as_mut() {
                    let mut verdict = frame.data_ref().map_or(Ok(()), |d| scan.data(d));
                    // The last chunk is held until the whole body has been judged.
                    if verdict.is_ok() && this.inner.as_ref().is_some_and(|b| b.is_end_stream()) {
                        verdict = scan.end();
                        this.scan = None;
                    }
                    if let Err(status) = verdict {
                        return this.refuse(status);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => {
                // Broken framing (bad chunk sizes) or a client that went away mid-body.
                this.failed.set(BodyError::Read);
                Poll::Ready(Some(Err(BodyError::Read)))
            }
            Poll::Ready(None) => {
                if let Some(mut scan) = this.scan.take() {
                    if let Err(status) = scan.end() {
                        return this.refuse(status);
                    }
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                let deadline = this.deadline(Instant::now());
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                ready!(sleep.as_mut().poll(cx));
                this.failed.set(BodyError::Timeout);
                Poll::Ready(Some(Err(BodyError::Timeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.as_ref().is_none_or(|p| p.is_empty())
            && self.scan.is_none()
            && self.trailers.is_none()
            && self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let ahead = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let h = self.inner.as_ref().map(|b| b.size_hint()).unwrap_or_else(|| SizeHint::with_exact(0));
        let mut out = SizeHint::new();
        out.set_lower(h.lower() + ahead);
        if let Some(u) = h.upper() {
            out.set_upper(u + ahead);
        }
        out
    }
}

enum Kind {
    Upstream(Incoming),
    Full(Option<Bytes>),
}

/// What the client receives: the application's body streamed through, or Kevlar's own page.
/// Holds the request's [`InFlight`] mark until hyper has written the whole body.
pub struct ResponseBody {
    kind: Kind,
    watch: Option<Box<dyn kevlar_core::BodyWatch>>,
    /// `[headers] csp_nonce`: the HTML rewriter the app's body goes through.
    rewrite: Option<Box<crate::nonce::Rewrite>>,
    /// The app's trailers, held while the rewriter's last bytes go out.
    held_trailers: Option<http::HeaderMap>,
    _in_flight: Option<InFlight>,
    _lease: Option<Lease>,
    /// Places in the bounds on requests to the app, given back when the answer is over.
    _slots: Option<crate::UpstreamSlots>,
    /// The connection to the app the body comes on: back to the pool when the body is done.
    /// Declared last: dropped after the body itself has let go of the connection.
    _conn: Option<crate::pool::Lent>,
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(w) = self.watch.take() {
            w.end();
        }
    }
}

impl ResponseBody {
    /// The application's body; the lease on its instance is held until the body is done.
    pub fn upstream(b: Incoming, in_flight: Option<InFlight>, lease: Option<Lease>) -> Self {
        ResponseBody {
            kind: Kind::Upstream(b),
            watch: None,
            rewrite: None,
            held_trailers: None,
            _in_flight: in_flight,
            _lease: lease,
            _slots: None,
            _conn: None,
        }
    }

    /// Gives the connection back to the pool when the body is done.
    pub fn returning(mut self, conn: Option<crate::pool::Lent>) -> Self {
        self._conn = conn;
        self
    }

    /// Keeps the places in the upstream bounds until the body is done.
    pub fn holding(mut self, slots: crate::UpstreamSlots) -> Self {
        self._slots = Some(slots);
        self
    }

    /// Lets `watch` see the body as it goes by.
    pub fn watched(mut self, watch: Option<Box<dyn kevlar_core::BodyWatch>>) -> Self {
        self.watch = watch;
        self
    }

    /// Sends the app's body through `rewrite` (CSP nonces).
    pub fn rewritten(mut self, rewrite: Option<crate::nonce::Rewrite>) -> Self {
        self.rewrite = rewrite.map(Box::new);
        self
    }

    pub fn full(b: Bytes, in_flight: Option<InFlight>) -> Self {
        ResponseBody {
            kind: Kind::Full(Some(b)),
            watch: None,
            rewrite: None,
            held_trailers: None,
            _in_flight: in_flight,
            _lease: None,
            _slots: None,
            _conn: None,
        }
    }

    pub fn empty() -> Self {
        ResponseBody {
            kind: Kind::Full(None),
            watch: None,
            rewrite: None,
            held_trailers: None,
            _in_flight: None,
            _lease: None,
            _slots: None,
            _conn: None,
        }
    }
}

/// Why an answer's body broke off on Kevlar's side: the app's connection, or the HTML rewriter.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl ResponseBody {
    fn poll_app(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = match &mut self.kind {
            Kind::Upstream(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
            Kind::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
        };
        if let Some(w) = self.watch.as_mut() {
            match &polled {
                Poll::Ready(Some(Ok(f))) => {
                    if let Some(d) = f.data_ref() {
                        w.data(d);
                    }
                }
                Poll::Ready(_) => {
                    if let Some(w) = self.watch.take() {
                        w.end();
                    }
                }
                Poll::Pending => {}
            }
        }
        polled
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(t) = self.held_trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(t))));
        }
        loop {
            let polled = ready!(self.poll_app(cx));
            let Some(rw) = self.rewrite.as_mut() else { return Poll::Ready(polled) };
            let out = match polled {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) => rw.write(&d),
                    Err(trailers) => {
                        // Trailers end the body: what the rewriter holds goes first.
                        let last = rw.finish();
                        self.rewrite = None;
                        return Poll::Ready(Some(match last {
                            Ok(b) if b.is_empty() => Ok(trailers),
                            Ok(b) => {
                                self.held_trailers = trailers.into_trailers().ok();
                                Ok(Frame::data(b))
                            }
                            Err(e) => Err(e.into()),
                        }));
                    }
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    let last = rw.finish();
                    self.rewrite = None;
                    return Poll::Ready(match last {
                        Ok(b) if b.is_empty() => None,
                        Ok(b) => Some(Ok(Frame::data(b))),
                        Err(e) => Some(Err(e.into())),
                    });
                }
            };
            match out {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => return Poll::Ready(Some(Ok(Frame::data(b)))),
                // A page that cannot be rewritten halfway breaks off rather than arrive cut short
                // as if whole.
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.rewrite.is_some() || self.held_trailers.is_some() {
            return false;
        }
        match &self.kind {
            Kind::Upstream(b) => b.is_end_stream(),
            Kind::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.rewrite.is_some() {
            return SizeHint::new();
        }
        match &self.kind {
            Kind::Upstream(b) => b.size_hint(),
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map(|d| d.len() as u64).unwrap_or(0)),
        }
    }
}
