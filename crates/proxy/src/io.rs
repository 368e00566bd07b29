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
                    } else if !busy && this.phase == Phase::Idle {
                        this.phase = Phase::Head;
                        this.deadline.as_mut().reset(Instant::now() + this.header_timeout);
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
