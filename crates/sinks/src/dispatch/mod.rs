//! The alert pipeline at run time: one feeder thread turns new events of the store into
//! deliveries in the outbox; one worker thread per sink sends them.
//!
//! Guarantee: **at-least-once** for every event the store committed. The feeder writes a batch of
//! deliveries and its cursor into the store in one transaction; a worker deletes a delivery only
//! after the sink accepted it. A crash (even `kill -9`) between sending and deleting sends that
//! batch again after the restart, so receivers may see a duplicate: every delivery carries the
//! event id (`Idempotency-Key` on webhooks, `id=` in syslog structured data) to drop it by.
//! A syslog-over-UDP sink has no acknowledgement at all; TCP and TLS count a write the kernel
//! accepted (the connection is checked for a peer that went away before each batch).

use kevlar_core::action;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kevlar_config::{AlertsConfig, SinkConfig};
use kevlar_core::{time::now_ms, Category, Outcome, SecurityEvent, Severity};
use kevlar_engine::{Bus, Wake};
use rusqlite::Connection;
use serde_json::Value;

use crate::router::{Routed, Router};
pub use crate::util::outbox::DeadLetter;
use crate::util::outbox::{Counts, Delivery, Outbox, OutboxError, HELD, PENDING};
use crate::util::rate::Budget;
use crate::util::retry::Backoff;
use crate::{build, render, Sink, SinkError};

mod worker;
use worker::worker;

const FEED_BATCH: usize = 2000;
const IDLE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("cannot read the event store {path}")]
    Store { path: PathBuf, source: rusqlite::Error },
    #[error("alert sink `{name}`: {error}")]
    Sink { name: String, error: SinkError },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// What `kevlar status` shows for a sink.
#[derive(Debug, Clone, Default)]
struct Health {
    state: &'static str,
    since_ms: i64,
    last_ok_ms: Option<i64>,
    last_error: Option<String>,
    last_error_ms: Option<i64>,
    consecutive_failures: u32,
    delivered: u64,
    failed_attempts: u64,
    digests: u64,
    /// User notices over their mailbox's budget, dropped.
    notices_dropped: u64,
}

struct Slot {
    cfg: SinkConfig,
    wake: Wake,
    health: Mutex<Health>,
    /// Deliveries refused for this sink because its own queue was full (`alerts.max_pending`).
    refused: AtomicU64,
    /// Refusing now (a `sys_alert_refused` was raised; cleared when its queue has room again).
    refusing: AtomicBool,
}

struct Inner {
    data_dir: PathBuf,
    cfg: AlertsConfig,
    /// Taken away by `close`, so that the store's queue can close behind the last sender.
    bus: Mutex<Option<Bus>>,
    store_wake: Wake,
    slots: Vec<Slot>,
    stop: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    refused: AtomicU64,
}

/// Threads report here as they end; `close` waits for `usize` of them.
type Done = (mpsc::Receiver<()>, usize);

/// The outbox as `kevlar alerts` shows it when Kevlar is not running: counts per sink, dead letters.
pub type OfflineStatus = (Vec<(String, Counts)>, Vec<DeadLetter>);

/// One sink's health and queues, as `/v1/status`, `/v1/alerts`, `kevlar alerts` and the dashboard
/// show them. Read from the outbox alone (Kevlar stopped), only the queues are known.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SinkStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `unknown`, `ok`, `failing`; `stopped` when read without a running Kevlar.
    pub state: String,
    pub since: Option<String>,
    pub last_ok: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub consecutive_failures: u32,
    /// `None` when read without a running Kevlar.
    pub delivered: Option<u64>,
    pub failed_attempts: u64,
    pub digests: u64,
    pub notices_dropped: u64,
    pub pending: u64,
    pub held: u64,
    pub dead: u64,
    /// Deliveries refused because its queue was full (`alerts.max_pending`).
    pub refused: u64,
}

/// Every sink, with the dead letters when asked for (`/v1/alerts`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AlertsStatus {
    pub sinks: Vec<SinkStatus>,
    /// Events the feeder refused in all.
    pub refused: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead: Option<Vec<DeadLetter>>,
}

/// The running alert pipeline; cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
    done: Arc<Mutex<Option<Done>>>,
}

fn store_max_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))
}

impl Alerts {
    /// Opens the outbox, builds every sink (a sink that cannot be built is an error now, not a
    /// surprise later) and starts the threads. `store_wake` is signalled by the store after each
    /// commit; `store_db` is its file.
    pub fn start(
        cfg: &AlertsConfig,
        data_dir: &Path,
        store_db: &Path,
        store_wake: Wake,
        bus: Bus,
    ) -> Result<Alerts, AlertsError> {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        for s in &cfg.sinks {
            sinks.push(build(s, data_dir).map_err(|error| AlertsError::Sink { name: s.name.clone(), error })?);
        }
        let serr = |source| AlertsError::Store { path: store_db.to_owned(), source };
        let store = Connection::open(store_db).map_err(serr)?;
        store.busy_timeout(Duration::from_secs(10)).map_err(serr)?;
        let max = store_max_id(&store).map_err(serr)?;
        let mut outbox = Outbox::open(data_dir)?;
        // A fresh outbox starts at the present; a store that was reset (ids restart) too.
        let cursor = match outbox.cursor()? {
            Some(c) if c <= max => c,
            _ => {
                outbox.enqueue(&[], Some(max))?;
                max
            }
        };
        let inner = Arc::new(Inner {
            data_dir: data_dir.to_owned(),
            cfg: cfg.clone(),
            bus: Mutex::new(Some(bus)),
            store_wake,
            slots: cfg
                .sinks
                .iter()
                .map(|c| Slot {
                    cfg: c.clone(),
                    wake: Wake::new(),
                    health: Mutex::new(Health { state: "unknown", since_ms: now_ms(), ..Default::default() }),
                    refused: AtomicU64::new(0),
                    refusing: AtomicBool::new(false),
                })
                .collect(),
            stop: AtomicBool::new(false),
            deadline: Mutex::new(None),
            refused: AtomicU64::new(0),
        });
        let (done_tx, done_rx) = mpsc::channel();
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        let router = Router::new(&cfg.sinks, &cfg.routes);
        {
            let inner = inner.clone();
            let done = done_tx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("kevlar-alerts-feed".into())
                    .spawn(move || {
                        feeder(&inner, outbox, store, cursor, router);
                        let _ = done.send(());
                    })
                    .map_err(AlertsError::Thread)?,
            );
        }
        for (i, sink) in sinks.into_iter().enumerate() {
            let inner2 = inner.clone();
            let done = done_tx.clone();
            let outbox = Outbox::open(data_dir)?;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("kevlar-sink-{}", cfg.sinks[i].name))
                    .spawn(move || {
                        worker(&inner2, i, sink, outbox);
                        let _ = done.send(());
                    })
                    .map_err(AlertsError::Thread)?,
            );
        }
        let n = threads.len();
        drop(threads); // detached: `close` waits on the done channel with a deadline instead
        Ok(Alerts { inner, done: Arc::new(Mutex::new(Some((done_rx, n)))) })
    }

    /// Stops the pipeline: the feeder takes what the store committed last, the workers send what
    /// they can within `grace`; the rest stays in the outbox for the next start.
    pub fn close(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        if let Ok(mut d) = self.inner.deadline.lock() {
            *d = Some(deadline);
        }
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.store_wake.notify();
        for s in &self.inner.slots {
            s.wake.notify();
        }
        if let Some((rx, n)) = self.done.lock().ok().and_then(|mut d| d.take()) {
            for _ in 0..n {
                let left = deadline.saturating_duration_since(Instant::now());
                if rx.recv_timeout(left).is_err() {
                    break;
                }
            }
        }
        if let Ok(mut b) = self.inner.bus.lock() {
            b.take();
        }
    }

    /// Per-sink health and queue counts, for `/v1/status` and `kevlar alerts`.
    pub fn status(&self) -> AlertsStatus {
        let counts: Vec<(String, Counts)> = Outbox::open_existing(&self.inner.data_dir)
            .ok()
            .flatten()
            .and_then(|o| o.counts().ok())
            .unwrap_or_default();
        let sinks: Vec<SinkStatus> = self
            .inner
            .slots
            .iter()
            .map(|s| {
                let h = s.health.lock().map(|h| h.clone()).unwrap_or_default();
                let c = counts.iter().find(|(n, _)| *n == s.cfg.name).map(|(_, c)| *c).unwrap_or_default();
                SinkStatus {
                    name: s.cfg.name.clone(),
                    kind: s.cfg.kind.name().to_owned(),
                    state: h.state.to_owned(),
                    since: Some(kevlar_core::time::rfc3339_ms(h.since_ms)),
                    last_ok: h.last_ok_ms.map(kevlar_core::time::rfc3339_ms),
                    last_error: h.last_error,
                    last_error_at: h.last_error_ms.map(kevlar_core::time::rfc3339_ms),
                    consecutive_failures: h.consecutive_failures,
                    delivered: Some(h.delivered),
                    failed_attempts: h.failed_attempts,
                    digests: h.digests,
                    notices_dropped: h.notices_dropped,
                    pending: c.pending,
                    held: c.held,
                    dead: c.dead,
                    refused: s.refused.load(Ordering::Relaxed),
                }
            })
            .collect();
        AlertsStatus { sinks, refused: self.inner.refused.load(Ordering::Relaxed), dead: None }
    }

    /// Dead letters, newest first.
    pub fn dead(&self, limit: usize) -> Result<Vec<DeadLetter>, OutboxError> {
        Outbox::open(&self.inner.data_dir)?.dead(limit)
    }

    /// Puts dead letters back in the queue (the given ids, or all) and wakes the sinks.
    pub fn retry(&self, ids: Option<&[i64]>) -> Result<usize, OutboxError> {
        let n = Outbox::open(&self.inner.data_dir)?.retry(ids)?;
        for s in &self.inner.slots {
            s.wake.notify();
        }
        Ok(n)
    }
}

fn read_events(store: &Connection, after: i64) -> rusqlite::Result<Vec<(i64, SecurityEvent)>> {
    let mut stmt = store.prepare_cached("SELECT id, doc FROM events WHERE id > ?1 ORDER BY id LIMIT ?2")?;
    let rows = stmt
        .query_map(rusqlite::params![after, FEED_BATCH as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(|(id, doc)| {
            let ev = serde_json::from_str::<Value>(&doc).ok().and_then(|v| SecurityEvent::from_json(&v).ok());
            (id, ev)
        })
        .filter_map(|(id, ev)| match ev {
            Some(e) => Some((id, e)),
            None => {
                tracing::warn!(id, "alerts: an event in the store does not read; skipped");
                None
            }
        })
        .collect())
}

/// Which routed deliveries fit under their sink's cap (`alerts.max_pending`, counting what
/// waits already); how many each sink refused.
fn within_caps<'r>(
    inner: &'r Inner,
    routed: &'r [Routed],
    counts: &mut [u64],
) -> (Vec<(&'r str, i64, &'r SecurityEvent)>, Vec<u64>) {
    let max = inner.cfg.max_pending;
    let mut refused = vec![0u64; inner.slots.len()];
    let mut items = Vec::with_capacity(routed.len());
    for r in routed {
        if counts[r.sink] >= max {
            refused[r.sink] += 1;
            continue;
        }
        counts[r.sink] += 1;
        items.push((inner.slots[r.sink].cfg.name.as_str(), if r.held { HELD } else { PENDING }, &r.event));
    }
    (items, refused)
}

/// Refusals counted per sink; a sink that starts refusing says so once (`sys_alert_refused`), and
/// is no longer refusing once it is under its cap again.
fn note_refusals(inner: &Inner, refused: &[u64], counts: &[u64]) {
    for (i, slot) in inner.slots.iter().enumerate() {
        if refused[i] > 0 {
            slot.refused.fetch_add(refused[i], Ordering::Relaxed);
            inner.refused.fetch_add(refused[i], Ordering::Relaxed);
            if !slot.refusing.swap(true, Ordering::Relaxed) {
                tracing::warn!(sink = %slot.cfg.name, "alerts: the sink's queue is full; new deliveries for it are refused");
                publish(
                    inner,
                    event_about(
                        slot,
                        action::SYS_ALERT_REFUSED,
                        Severity::Alert,
                        Outcome::Failure,
                        format!(
                            "Alert sink `{}` ({}) has {} deliveries waiting (alerts.max_pending): new ones for it are refused and counted",
                            slot.cfg.name,
                            slot.cfg.kind.name(),
                            counts[i]
                        ),
                    ),
                );
            }
        } else if counts[i] < inner.cfg.max_pending {
            slot.refusing.store(false, Ordering::Relaxed);
        }
    }
}

fn feeder(inner: &Inner, mut outbox: Outbox, store: Connection, mut cursor: i64, mut router: Router) {
    let mut seen = 0u64;
    let mut routed: Vec<Routed> = Vec::new();
    // Waiting deliveries per sink, re-read from disk every few seconds (the workers shrink them).
    let mut waiting: Option<(Vec<u64>, Instant)> = None;
    let mut gave_back = Instant::now();
    loop {
        let stopping = inner.stop.load(Ordering::SeqCst);
        let rows = match read_events(&store, cursor) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %kevlar_core::error::chain(&e), "alerts: cannot read new events; retrying");
                if stopping {
                    return;
                }
                inner.store_wake.wait(&mut seen, IDLE);
                continue;
            }
        };
        let full = rows.len() == FEED_BATCH;
        let now = now_ms();
        routed.clear();
        let new_cursor = rows.last().map(|(id, _)| *id);
        for (_, e) in &rows {
            router.route(e, now, &mut routed);
        }
        router.close_windows(now, &mut routed);
        if new_cursor.is_some() || !routed.is_empty() {
            let read = |outbox: &Outbox| -> (Vec<u64>, Instant) {
                let per = outbox.waiting_per_sink().unwrap_or_default();
                (inner.slots.iter().map(|s| per.get(&s.cfg.name).copied().unwrap_or(0)).collect(), Instant::now())
            };
            let cached = waiting.take().filter(|(_, at)| at.elapsed() < Duration::from_secs(5));
            let from_disk = cached.is_none();
            let (mut counts, mut at) = cached.unwrap_or_else(|| read(&outbox));
            // Each sink has its own cap: a sink that is down and full never costs a healthy one
            // its deliveries. (The cached counts only grow; before refusing, they are re-read.)
            let max = inner.cfg.max_pending;
            let over = |counts: &[u64]| {
                let mut add = vec![0u64; counts.len()];
                routed.iter().any(|r| {
                    add[r.sink] += 1;
                    counts[r.sink] + add[r.sink] > max
                })
            };
            if !from_disk && over(&counts) {
                (counts, at) = read(&outbox);
            }
            let (items, refused) = within_caps(inner, &routed, &mut counts);
            note_refusals(inner, &refused, &counts);
            match outbox.enqueue(&items, new_cursor) {
                Ok(()) => {
                    cursor = new_cursor.unwrap_or(cursor);
                    waiting = Some((counts, at));
                    let mut woken = vec![false; inner.slots.len()];
                    for r in &routed {
                        if !woken[r.sink] {
                            woken[r.sink] = true;
                            inner.slots[r.sink].wake.notify();
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %kevlar_core::error::chain(&e), "alerts: cannot write to the outbox; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
        }
        if full {
            continue;
        }
        if stopping {
            return;
        }
        // Once a minute, the space of what was delivered goes back to the file system.
        if gave_back.elapsed() >= Duration::from_secs(60) {
            gave_back = Instant::now();
            if let Err(e) = outbox.give_back(256) {
                tracing::debug!(error = %kevlar_core::error::chain(&e), "alerts: cannot shrink the outbox");
            }
        }
        let timeout = router
            .next_deadline()
            .map(|d| Duration::from_millis((d - now).clamp(1, IDLE.as_millis() as i64) as u64))
            .unwrap_or(IDLE);
        inner.store_wake.wait(&mut seen, timeout);
    }
}

fn event_about(slot: &Slot, action: &str, severity: Severity, outcome: Outcome, message: String) -> SecurityEvent {
    SecurityEvent::new(action, Category::Process, severity, message)
        .with_outcome(outcome)
        .with_kevlar("sink", slot.cfg.name.clone())
        .with_kevlar("sink_type", slot.cfg.kind.name())
}

fn publish(inner: &Inner, e: SecurityEvent) {
    if let Some(bus) = inner.bus.lock().ok().and_then(|b| b.clone()) {
        bus.publish(e);
    }
}

fn record_ok(inner: &Inner, slot: &Slot, delivered: u64) {
    let recovered = {
        let Ok(mut h) = slot.health.lock() else { return };
        let was = h.state;
        h.delivered += delivered;
        h.last_ok_ms = Some(now_ms());
        h.consecutive_failures = 0;
        if was != "ok" {
            h.state = "ok";
            h.since_ms = now_ms();
        }
        was == "failing"
    };
    if recovered {
        tracing::info!(sink = %slot.cfg.name, "alert sink recovered");
        publish(
            inner,
            event_about(
                slot,
                action::SYS_SINK_RECOVERED,
                Severity::Notice,
                Outcome::Success,
                format!("Alert sink `{}` ({}) works again", slot.cfg.name, slot.cfg.kind.name()),
            ),
        );
    }
}

fn record_failure(inner: &Inner, slot: &Slot, err: &SinkError, attempted: bool) {
    let newly = {
        let Ok(mut h) = slot.health.lock() else { return };
        let was = h.state;
        h.consecutive_failures += 1;
        if attempted {
            h.failed_attempts += 1;
        }
        h.last_error = Some(err.message.clone());
        h.last_error_ms = Some(now_ms());
        if was != "failing" {
            h.state = "failing";
            h.since_ms = now_ms();
        }
        was != "failing"
    };
    if newly {
        tracing::warn!(sink = %slot.cfg.name, error = %err, "alert sink failing; deliveries wait in the outbox");
        publish(
            inner,
            event_about(
                slot,
                action::SYS_SINK_FAILED,
                Severity::Alert,
                Outcome::Failure,
                format!(
                    "Alert sink `{}` ({}) is failing: {}. Its deliveries wait in the outbox.",
                    slot.cfg.name,
                    slot.cfg.kind.name(),
                    err.message
                ),
            ),
        );
    }
}

/// Reads the outbox without a running Kevlar (`kevlar alerts` offline).
pub fn offline_status(data_dir: &Path) -> Result<Option<OfflineStatus>, OutboxError> {
    let Some(o) = Outbox::open_existing(data_dir)? else { return Ok(None) };
    Ok(Some((o.counts()?, o.dead(100)?)))
}

/// `kevlar alerts retry` without a running Kevlar.
pub fn offline_retry(data_dir: &Path, ids: Option<&[i64]>) -> Result<usize, OutboxError> {
    match Outbox::open_existing(data_dir)? {
        Some(mut o) => o.retry(ids),
        None => Ok(0),
    }
}
