//! The connection wrapper that enforces the time limits hyper does not: a client has
//! `header_timeout` from its first byte to finish a request head (then it gets a 408 and the
//! connection closes: slowloris), and an idle keep-alive connection is closed after
//! `idle_timeout`. While a request is in flight, or once a connection is upgraded (WebSocket),
//! reads pass straight through.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

const RESPONSE_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 36\r\nconnection: close\r\n\r\nThe request took too long to arrive.";

/// Shared between the connection's reader and the requests it carries.
#[derive(Default)]
pub struct ConnState {
    in_flight: AtomicUsize,
    completed: AtomicU64,
    upgraded: AtomicBool,
    /// Set when the head deadline cut the connection (for the 408 event).
    pub timed_out_head: AtomicBool,
    /// Set when Kevlar refused a request whose body it did not read: on close, keep reading (and
    /// discarding) for a moment so the client can read the answer instead of a reset.
    linger: AtomicBool,
    /// The last request head carried both `Content-Length` and `Transfer-Encoding` (hyper keeps
    /// only the second, so the detectors would never see the pair): the declared length.
    cl_and_te: AtomicBool,
    cl_value: AtomicU64,
    waker: AtomicWaker,
}

impl ConnState {
    /// Marks a request as in flight until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// After a 101 the connection belongs to the upgraded protocol: no more HTTP deadlines.
    pub fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    /// Takes what the head reader saw for the request now starting: `Some(content-length)` when
    /// its head declared both a length and a transfer coding.
    pub fn take_cl_and_te(&self) -> Option<u64> {
        self.cl_and_te.swap(false, Ordering::AcqRel).then(|| self.cl_value.load(Ordering::Acquire))
    }

    /// Asks for a lingering close (see the field).
    pub fn linger_on_close(&self) {
        self.linger.store(true, Ordering::Release);
    }
}

/// A request in flight; dropping it (when its response body is done) lets the idle clock start.
pub struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.completed.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.waker.wake();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Between requests.
    Idle,
}

pub struct GuardedIo<S> {
    inner: S,
    state: Arc<ConnState>,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    seen_completed: u64,
    header_timeout: Duration,
    idle_timeout: Duration,
    first_read: bool,
    /// HTTP/2 connections have no request head to time; only the idle limit applies.
    h2: bool,
    /// Lingering close in progress: bytes still to discard, and when to stop anyway.
    lingering: Option<(usize, Pin<Box<Sleep>>)>,
    head: HeadScan,
}

/// Reads the header names of an HTTP/1 request head as its bytes pass, a line at a time, for
/// the one fact hyper's parsed head loses: both `Content-Length` and `Transfer-Encoding`.
/// Bounded: only the first bytes of each line are kept.
#[derive(Default)]
struct HeadScan {
    line: [u8; 32],
    len: usize,
    lines: u32,
    cl: Option<u64>,
    te: bool,
    done: bool,
}

impl HeadScan {
    /// Feeds bytes; at the end of a head that had both, returns the declared length.
    fn feed(&mut self, bytes: &[u8]) -> Option<u64> {
        for &c in bytes {
            if self.done {
                return None;
            }
            if c != b'\n' {
                if self.len < self.line.len() {
                    self.line[self.len] = c.to_ascii_lowercase();
                    self.len += 1;
                }
                continue;
            }
            let mut l = &self.line[..self.len];
            if let Some(x) = l.strip_suffix(b"\r") {
                l = x;
            }
            self.len = 0;
            if l.is_empty() {
                // Empty lines before the request line are allowed (RFC 9112 §2.2).
                if self.lines > 0 {
                    self.done = true;
                    return self.cl.filter(|_| self.te);
                }
                continue;
            }
            self.lines += 1;
            let field = |name: &[u8]| l.strip_prefix(name).filter(|r| matches!(r.first(), Some(b':' | b' ' | b'\t')));
            if let Some(rest) = field(b"content-length") {
                let digits: Vec<u8> = rest.iter().copied().filter(u8::is_ascii_digit).collect();
                self.cl = Some(std::str::from_utf8(&digits).ok().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX));
            } else if field(b"transfer-encoding").is_some() {
                self.te = true;
            }
        }
        None
    }
}

/// A lingering close discards at most this much, for at most this long (nginx: lingering_close).
const LINGER_BYTES: usize = 4 << 20;
const LINGER_TIME: Duration = Duration::from_secs(2);

impl<S> GuardedIo<S> {
    pub fn new(inner: S, state: Arc<ConnState>, header_timeout: Duration, idle_timeout: Duration, h2: bool) -> Self {
        let (phase, first) = if h2 { (Phase::Idle, idle_timeout) } else { (Phase::Head, header_timeout) };
        GuardedIo {
            inner,
            state,
            phase,
            deadline: Box::pin(tokio::time::sleep(first)),
            seen_completed: 0,
            header_timeout,
            idle_timeout,
            first_read: true,
            h2,
            lingering: None,
            head: HeadScan::default(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state.upgraded.load(Ordering::Acquire) {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let busy = this.state.in_flight.load(Ordering::Acquire) > 0;
        if !busy {
            let done = this.state.completed.load(Ordering::Acquire);
            if done != this.seen_completed {
                this.seen_completed = done;
                this.phase = Phase::Idle;
                this.deadline.as_mut().reset(Instant::now() + this.idle_timeout);
            }
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = &buf.filled()[before..];
                if !got.is_empty() {
                    if this.first_read {
                        this.first_read = false;
                        if got.starts_with(b"PRI * HTTP/2.0") {
                            this.h2 = true;
                            this.phase = Phase::Idle;
                        }
                    }
                    if this.h2 {
                        if !busy {
                            this.deadline.as_mut().reset(Instant::now() + this.idle_timeout);
                        }
                    } else {
                        if !busy && this.phase == Phase::Idle {
                            this.phase = Phase::Head;
                            this.head = HeadScan::default();
                            this.deadline.as_mut().reset(Instant::now() + this.header_timeout);
                        }
                        if this.phase == Phase::Head {
                            if let Some(cl) = this.head.feed(got) {
                                this.state.cl_value.store(cl, Ordering::Release);
                                this.state.cl_and_te.store(true, Ordering::Release);
                            }
                        }
                    }
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        this.state.waker.register(cx.waker());
        if busy {
            return Poll::Pending;
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => match this.phase {
                // A clean end of stream: hyper closes the idle connection.
                Phase::Idle => Poll::Ready(Ok(())),
                Phase::Head => {
                    this.state.timed_out_head.store(true, Ordering::Release);
                    if !this.h2 {
                        // Best effort: the client is slow, not necessarily gone.
                        let _ = Pin::new(&mut this.inner).poll_write(cx, RESPONSE_408);
                        let _ = Pin::new(&mut this.inner).poll_flush(cx);
                    }
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "request head not received in time")))
                }
            },
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.lingering.is_none() {
            if let Poll::Ready(Err(e)) = Pin::new(&mut this.inner).poll_shutdown(cx) {
                return Poll::Ready(Err(e));
            }
            if !this.state.linger.load(Ordering::Acquire) {
                return Poll::Ready(Ok(()));
            }
            this.lingering = Some((LINGER_BYTES, Box::pin(tokio::time::sleep(LINGER_TIME))));
        }
        let Some((budget, deadline)) = this.lingering.as_mut() else { return Poll::Ready(Ok(())) };
        let mut scratch = [0u8; 8192];
        loop {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    *budget = budget.saturating_sub(buf.filled().len());
                    if *budget == 0 {
                        return Poll::Ready(Ok(()));
                    }
                }
                // End of stream or an error: the client is done.
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HeadScan;

    fn scan(pieces: &[&[u8]]) -> Option<u64> {
        let mut h = HeadScan::default();
        pieces.iter().find_map(|p| h.feed(p))
    }

    #[test]
    fn both_framing_headers_are_seen_across_reads() {
        let head: &[u8] = b"\r\nPOST / HTTP/1.1\r\nHost: x\r\nCONTENT-LENGTH: 42\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(scan(&[head]), Some(42));
        let (a, b) = head.split_at(37);
        assert_eq!(scan(&[a, b]), Some(42));
        let bytes: Vec<&[u8]> = head.chunks(1).collect();
        assert_eq!(scan(&bytes), Some(42));
    }

    #[test]
    fn one_of_them_or_a_look_alike_or_the_body_is_not() {
        assert_eq!(scan(&[b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"]), None);
        assert_eq!(scan(&[b"POST / HTTP/1.1\r\nContent-Lengthy: 3\r\nTransfer-Encoding: chunked\r\n\r\n"]), None);
        // What follows the head is the body, not header lines.
        assert_eq!(scan(&[b"POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\nTransfer-Encoding: chunked\r\n\r\n"]), None);
        // A length longer than a line is kept of is still a length.
        assert!(scan(&[b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\nTransfer-Encoding: x\r\n\r\n"])
            .is_some());
    }
}
