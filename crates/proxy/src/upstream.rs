//! Where requests go: a set of ready backends, chosen by least outstanding requests.
//!
//! `kevlar guard` puts one fixed backend in it. `kevlar run` adds an instance when it is ready and
//! removes it when it exits or is drained for a reload; while the set is empty (the app is starting
//! or restarting) requests are held — up to a bounded time and count — and served as soon as an
//! instance is ready, instead of failing.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::uri::Authority;
use tokio::sync::Notify;

/// After a failed connection a backend is avoided for this long, while others are ready.
const AVOID_FOR_MS: i64 = 1000;

pub struct Backend {
    pub id: u64,
    pub authority: Authority,
    outstanding: AtomicUsize,
    failed_at_ms: AtomicI64,
}

impl Backend {
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// A connection to it failed: prefer others for a moment.
    pub fn mark_failed(&self) {
        self.failed_at_ms.store(kevlar_core::time::now_ms(), Ordering::Relaxed);
    }

    fn avoided(&self, now: i64) -> bool {
        now - self.failed_at_ms.load(Ordering::Relaxed) < AVOID_FOR_MS
    }
}

/// A request's hold on a backend; counts as outstanding until dropped (when the response body
/// is done).
pub struct Lease(Arc<Backend>);

impl Lease {
    pub fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why no backend could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoBackend {
    /// Waited the whole hold time.
    Timeout,
    /// Too many requests are already waiting.
    TooManyWaiting,
}

pub struct Upstream {
    backends: RwLock<Arc<Vec<Arc<Backend>>>>,
    next_id: AtomicU64,
    changed: Notify,
    held: AtomicUsize,
    /// Where the next pick starts looking, so that ties rotate (round robin among equals).
    rotate: AtomicUsize,
    /// Supervised instances come and go: a request whose instance died is sent to another one,
    /// waiting for it when needed. A fixed upstream (`kevlar guard`) fails fast instead.
    supervised: bool,
    /// Off while nothing can become ready (every instance errored): 503 at once.
    holding: std::sync::atomic::AtomicBool,
    max_held: usize,
    hold: Duration,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream::new(None)
    }
}

impl Upstream {
    pub fn new(initial: Option<Authority>) -> Self {
        let u = Upstream {
            backends: RwLock::new(Arc::new(Vec::new())),
            next_id: AtomicU64::new(1),
            changed: Notify::new(),
            held: AtomicUsize::new(0),
            rotate: AtomicUsize::new(0),
            supervised: false,
            holding: std::sync::atomic::AtomicBool::new(true),
            max_held: 1024,
            hold: Duration::from_secs(10),
        };
        if let Some(a) = initial {
            u.add(a);
        }
        u
    }

    /// How long and how many requests may wait for an instance.
    pub fn with_hold(mut self, hold: Duration, max_held: usize) -> Self {
        self.hold = hold;
        self.max_held = max_held;
        self
    }

    /// Marks the set as managed by the supervisor (see the field).
    pub fn supervised(mut self, yes: bool) -> Self {
        self.supervised = yes;
        self
    }

    pub fn is_supervised(&self) -> bool {
        self.supervised
    }

    /// Whether requests wait for an instance while none is ready.
    pub fn set_holding(&self, yes: bool) {
        self.holding.store(yes, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Backend>>> {
        self.backends.read().map(|g| g.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut Vec<Arc<Backend>>)) {
        if let Ok(mut g) = self.backends.write() {
            let mut v: Vec<Arc<Backend>> = g.as_ref().clone();
            f(&mut v);
            *g = Arc::new(v);
        }
        self.changed.notify_waiters();
    }

    /// Adds a ready backend; returns its id (for removing it later).
    pub fn add(&self, authority: Authority) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let b = Arc::new(Backend { id, authority, outstanding: AtomicUsize::new(0), failed_at_ms: AtomicI64::new(0) });
        self.update(|v| v.push(b));
        id
    }

    /// Stops sending new requests to a backend; returns it so the caller can wait for it to drain.
    pub fn remove(&self, id: u64) -> Option<Arc<Backend>> {
        let mut removed = None;
        self.update(|v| {
            if let Some(i) = v.iter().position(|b| b.id == id) {
                removed = Some(v.remove(i));
            }
        });
        removed
    }

    /// Replaces every backend with this one (or none).
    pub fn set(&self, a: Option<Authority>) {
        self.update(|v| v.clear());
        if let Some(a) = a {
            self.add(a);
        }
    }

    pub fn authorities(&self) -> Vec<String> {
        self.snapshot().iter().map(|b| b.authority.to_string()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }

    /// The ready backend with the fewest outstanding requests (avoiding recently failed ones
    /// while another is ready).
    pub fn pick(&self) -> Option<Lease> {
        self.pick_except(&[])
    }

    /// Like [`pick`](Self::pick), never choosing one of `except` (backends that already failed
    /// this request).
    pub fn pick_except(&self, except: &[u64]) -> Option<Lease> {
        // No allocation: this runs on every request.
        let all = self.snapshot();
        let n = all.len();
        let start = if n > 1 { self.rotate.fetch_add(1, Ordering::Relaxed) % n } else { 0 };
        let now = kevlar_core::time::now_ms();
        let candidates = || all[start..].iter().chain(all[..start].iter()).filter(|b| !except.contains(&b.id));
        let best = candidates()
            .filter(|b| !b.avoided(now))
            .min_by_key(|b| b.outstanding())
            .or_else(|| candidates().min_by_key(|b| b.failed_at_ms.load(Ordering::Relaxed)))?;
        best.outstanding.fetch_add(1, Ordering::AcqRel);
        Some(Lease(best.clone()))
    }

    /// Like [`pick`](Self::pick), but while no backend is ready waits for one — up to the hold
    /// time, and only while fewer than the maximum number of requests are waiting.
    pub async fn pick_or_wait(&self) -> Result<Lease, NoBackend> {
        self.pick_or_wait_except(&[]).await
    }

    /// [`pick_or_wait`](Self::pick_or_wait) that never chooses one of `except`.
    pub async fn pick_or_wait_except(&self, except: &[u64]) -> Result<Lease, NoBackend> {
        if let Some(l) = self.pick_except(except) {
            return Ok(l);
        }
        if !self.holding.load(Ordering::Relaxed) {
            return Err(NoBackend::Timeout);
        }
        if self.held.fetch_add(1, Ordering::AcqRel) >= self.max_held {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return Err(NoBackend::TooManyWaiting);
        }
        let deadline = tokio::time::Instant::now() + self.hold;
        let result = loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(l) = self.pick_except(except) {
                break Ok(l);
            }
            if !self.holding.load(Ordering::Relaxed) {
                break Err(NoBackend::Timeout);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break self.pick_except(except).ok_or(NoBackend::Timeout);
            }
        };
        self.held.fetch_sub(1, Ordering::AcqRel);
        result
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// A request's places in the two bounds on requests in flight to the application: per client
/// connection and in all. Without them, 8 HTTP/2 connections of 256 streams each open 2,048
/// connections to the app.
pub struct UpstreamSlots {
    _client: tokio::sync::OwnedSemaphorePermit,
    _total: tokio::sync::OwnedSemaphorePermit,
}

impl UpstreamSlots {
    /// Waits for a place in the client's bound, then in the total (so that a client's queue holds
    /// none of the total); `None` when either is closed.
    pub async fn acquire(client: &Arc<tokio::sync::Semaphore>, total: &Arc<tokio::sync::Semaphore>) -> Option<Self> {
        let c = client.clone().acquire_owned().await.ok()?;
        let t = total.clone().acquire_owned().await.ok()?;
        Some(UpstreamSlots { _client: c, _total: t })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn a(port: u16) -> Authority {
        format!("127.0.0.1:{port}").parse().unwrap()
    }

    #[test]
    fn least_outstanding_wins_and_leases_release() {
        let u = Upstream::new(None);
        u.add(a(1));
        u.add(a(2));
        let l1 = u.pick().unwrap();
        let l2 = u.pick().unwrap();
        assert_ne!(l1.backend().id, l2.backend().id, "spread over both");
        drop(l1);
        let l3 = u.pick().unwrap();
        assert_eq!(l3.backend().outstanding(), 1);
        let failed = l3.backend().id;
        l3.backend().mark_failed();
        drop(l3);
        for _ in 0..3 {
            assert_ne!(u.pick().unwrap().backend().id, failed, "a failed backend is avoided");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_a_backend_then_give_up() {
        let u = Arc::new(Upstream::new(None).with_hold(Duration::from_secs(2), 1));
        let waiter = {
            let u = u.clone();
            tokio::spawn(async move { u.pick_or_wait().await.map(|l| l.backend().authority.to_string()) })
        };
        tokio::task::yield_now().await;
        assert_eq!(u.pick_or_wait().await.err(), Some(NoBackend::TooManyWaiting));
        u.add(a(7));
        assert_eq!(waiter.await.unwrap(), Ok("127.0.0.1:7".to_string()));
        u.set(None);
        assert_eq!(u.pick_or_wait().await.err(), Some(NoBackend::Timeout));
    }
}
