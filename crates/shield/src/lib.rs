//! The shield: what Kevlar does about what it sees. It is the [`Gate`] the proxy calls on every
//! request — refusing banned and rate-limited addresses at the edge, running the detectors and
//! deciding monitor or block, learning the route inventory — and the correlator that reads the
//! event bus, keeps the black book and runs the jails that turn repeated events into bans.
//!
//! ```text
//!  proxy ──admit──► bans, rate limits           (cheap, before any other work)
//!        ──inspect─► detectors → findings → malicious_* events ─► bus
//!        ──observe─► route inventory, 404 bursts → malicious_excess_404 ─► bus
//!  bus ──► correlator: black book, jails → bans (malicious_ban) ─► ban table
//! ```
#![forbid(unsafe_code)]

pub mod bans;
pub mod blackbook;
pub mod db;
pub mod error;
pub mod key;
pub mod login;
pub mod ratelimit;
pub mod routes;
pub mod watch;

use kevlar_core::action;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use kevlar_config::{Config, Mode};
use kevlar_core::{
    Category, Decision, Gate, Outcome, Refusal, RequestContext, RequestMeta, RequestView, SecurityEvent, Severity,
    Verdict,
};
use kevlar_detect::body::Scanner;
use kevlar_detect::{Families, Family, Finding, InspectConfig, Inspector};
use kevlar_engine::{Bus, Envelope};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use bans::{Ban, BanTable};
use blackbook::{BanRecord, BlackBook};
use db::ShieldDb;
pub use error::ShieldError;
use key::IpKey;
use ratelimit::{Global, Keyed};
use routes::Inventory;

/// Per-address state kept for rate limits and jails is bounded by this many keys.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
struct Counters {
    inspected: AtomicU64,
    flagged: AtomicU64,
    blocked: AtomicU64,
    refused_banned: AtomicU64,
    refused_rate: AtomicU64,
}

struct Inner {
    cfg: Config,
    inspector: Inspector,
    family_modes: HashMap<Family, Mode>,
    bans: BanTable,
    allow: Vec<IpNet>,
    v6_prefix: u8,
    global: Option<Global>,
    per_ip: Option<Keyed<IpKey>>,
    paths: Vec<(String, Keyed<IpKey>)>,
    /// Taken out on shutdown so the event queues can close.
    bus: std::sync::RwLock<Option<Bus>>,
    book: Mutex<BlackBook>,
    routes: Mutex<Inventory>,
    notfound: Mutex<HashMap<IpKey, (u32, i64)>>,
    db: Mutex<Option<ShieldDb>>,
    /// Automatic bans refuse requests (else they are recorded only).
    enforce_auto: bool,
    counters: Counters,
    logins: login::Logins,
    /// When `shield.db` was last pruned (`blackbook.max_age`, `max_stored`).
    pruned_ms: std::sync::atomic::AtomicI64,
}

/// A cheap handle: the proxy's gate, the admin API's control, the correlator's state.
#[derive(Clone)]
pub struct Shield {
    inner: Arc<Inner>,
}

/// Runs a ban hook (`bans.command`, `bans.unban_command`) through `sh -c`, with `{ip}` (an address
/// or prefix Kevlar printed itself: digits, `.`, `:`, `/`) and `{seconds}` filled in, without
/// waiting for it; a failure is logged.
fn run_hook(template: &str, ip: &str, seconds: u64) {
    if !ip.bytes().all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'/')) {
        return;
    }
    let cmd = template.replace("{ip}", ip).replace("{seconds}", &seconds.to_string());
    let spawned = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    match spawned {
        Ok(child) => {
            let _ = std::thread::Builder::new().name("kevlar-ban-hook".into()).spawn(move || match child.wait_with_output() {
                Ok(out) if out.status.success() => {}
                Ok(out) => tracing::warn!(command = %cmd, status = %out.status, stderr = %String::from_utf8_lossy(&out.stderr).trim(), "ban command failed"),
                Err(e) => tracing::warn!(command = %cmd, error = %e, "ban command failed"),
            });
        }
        Err(e) => tracing::warn!(command = %cmd, error = %e, "cannot run the ban command"),
    }
}

/// `<data_dir>/breach.idx` when it is there (`kevlar breach import`).
fn breach_index(data_dir: &Path) -> Option<kevlar_breach::Index> {
    let path = data_dir.join(kevlar_breach::INDEX_FILE);
    if !path.exists() {
        return None;
    }
    match kevlar_breach::Index::load(&path) {
        Ok(i) => {
            tracing::info!(hashes = i.hashes, "breached-password index loaded");
            Some(i)
        }
        Err(e) => {
            tracing::warn!(error = %e, "breached-password index not usable; logins are not checked against it");
            None
        }
    }
}

fn now_ms() -> i64 {
    kevlar_core::time::now_ms()
}

fn mono_ns() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64 + 1_000_000_000
}

impl Shield {
    /// Builds the shield from the configuration, and reloads bans and routes from
    /// `<data_dir>/shield.db`.
    pub fn new(cfg: &Config, bus: Bus) -> Result<Shield, db::DbError> {
        let d = &cfg.detect;
        let mut families = Families::ALL;
        let mut family_modes = HashMap::new();
        for (name, mode) in &d.families {
            if let Some(f) = Family::parse(name) {
                if *mode == Mode::Off {
                    families = families.without(f);
                }
                family_modes.insert(f, *mode);
            }
        }
        let inspector = Inspector::new(InspectConfig {
            families,
            headers: d.headers.iter().filter_map(|h| http::HeaderName::from_bytes(h.as_bytes()).ok()).collect(),
            php_app: d.php_app,
        });
        let db = ShieldDb::open(&cfg.data_dir)?;
        let bans = BanTable::default();
        let now = now_ms();
        for (k, b) in db.load_bans(now)? {
            bans.insert(k, b);
        }
        let mut inv = Inventory::new(cfg.routes.max_routes);
        for (k, r) in db.load_routes()? {
            inv.insert(k, r);
        }
        let rl = &cfg.ratelimit;
        let inner = Inner {
            inspector,
            family_modes,
            bans,
            allow: cfg.blackbook.allow.clone(),
            v6_prefix: cfg.blackbook.ipv6_prefix,
            global: rl.global.map(Global::new),
            per_ip: rl.per_ip.map(|r| Keyed::new(r, MAX_TRACKED)),
            paths: rl.paths.iter().map(|p| (p.prefix.clone(), Keyed::new(p.rate, MAX_TRACKED))).collect(),
            bus: std::sync::RwLock::new(Some(bus)),
            book: Mutex::new(BlackBook::new(cfg.blackbook.max_records)),
            routes: Mutex::new(inv),
            notfound: Mutex::new(HashMap::new()),
            db: Mutex::new(Some(db)),
            enforce_auto: cfg.bans.enforce.unwrap_or(d.mode == Mode::Block),
            counters: Counters::default(),
            logins: login::Logins::new(&cfg.logins, cfg.bans.enforce.unwrap_or(d.mode == Mode::Block))
                .with_breach_index(breach_index(&cfg.data_dir)),
            pruned_ms: std::sync::atomic::AtomicI64::new(0),
            cfg: cfg.clone(),
        };
        Ok(Shield { inner: Arc::new(inner) })
    }

    pub fn key(&self, ip: IpAddr) -> IpKey {
        IpKey::new(ip, self.inner.v6_prefix)
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.inner.allow.iter().any(|n| n.contains(&ip))
    }

    fn path_mode(&self, path: &str) -> Option<Mode> {
        self.inner
            .cfg
            .detect
            .paths
            .iter()
            .filter(|p| path.starts_with(p.prefix.as_str()))
            .max_by_key(|p| p.prefix.len())
            .map(|p| p.mode)
    }

    fn excluded(&self, path: &str, f: &Finding) -> bool {
        self.inner.cfg.detect.exclude.iter().any(|x| {
            x.path.as_deref().is_none_or(|p| path.starts_with(p))
                && (x.families.is_empty() || x.families.iter().any(|n| n == f.family.as_str()))
                && (x.args.is_empty()
                    || x.args.iter().any(|a| {
                        *a == f.name
                            || *a == f.location
                            || f.location.strip_prefix("args.").or_else(|| f.location.strip_prefix("body.")) == Some(a)
                    }))
        })
    }

    fn event(&self, meta: &RequestMeta<'_>, action: &str, severity: Severity, message: String) -> SecurityEvent {
        let mut ev = SecurityEvent::new(action, Category::IntrusionDetection, severity, message);
        ev.source_ip = Some(meta.ip);
        ev.http_method = Some(meta.method.to_owned());
        ev.url_path = Some(kevlar_core::event::capped(meta.path, 2048));
        ev.url_query = meta.query.map(|q| kevlar_core::event::redacted_query(q, 2048));
        ev.user_agent = meta.user_agent.map(|u| kevlar_core::event::capped(u, 512));
        ev.request_id = Some(meta.request_id.to_owned());
        ev
    }

    /// Starts the correlator on its own thread: reads `rx` until the bus closes, flushes to the
    /// store every second and on exit.
    pub fn start_correlator(&self, mut rx: mpsc::Receiver<Envelope>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new().name("kevlar-correlator".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "correlator: cannot start");
                    return;
                }
            };
            rt.block_on(async move {
                let mut jails = Jails::default();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        env = rx.recv() => match env {
                            Some(env) => me.correlate(&env.event, &mut jails),
                            None => break,
                        },
                        _ = tick.tick() => me.housekeeping(),
                    }
                }
                me.housekeeping();
            });
        })
    }

    /// One event through the black book and the jails.
    fn correlate(&self, ev: &SecurityEvent, jails: &mut Jails) {
        let Some(ip) = ev.source_ip else { return };
        if matches!(ev.action.as_str(), action::MALICIOUS_BAN | action::MALICIOUS_UNBAN) {
            return;
        }
        let key = self.key(ip);
        let counted = ev.action.starts_with("malicious_")
            || ev.action.starts_with(action::AUTHN_LOGIN_FAIL)
            || ev.action == action::AUTHZ_FAIL
            || ev.action == action::INPUT_VALIDATION_FAIL;
        if counted {
            self.remember(key, ev);
        }
        if self.allowed(ip) {
            return;
        }
        let now = ev.timestamp_ms.max(now_ms() - 60_000);
        for (i, jail) in self.inner.cfg.bans.jails.iter().enumerate() {
            let hit = jail.actions.iter().any(|a| match a.strip_suffix('*') {
                Some(prefix) => ev.action.starts_with(prefix),
                None => *a == ev.action,
            });
            if !hit {
                continue;
            }
            if jails.count(i, key, now, jail.findtime.as_millis() as i64) >= jail.maxretry as usize {
                jails.clear(i, key);
                if self.inner.bans.get(&key).is_some_and(|b| b.until_ms > now) {
                    continue;
                }
                let source = format!("jail:{}", jail.name);
                let repeats = self.past_bans(key, Some(&source), now - 30 * 86_400_000);
                let factor = 1u32.checked_shl(repeats.min(20) as u32).unwrap_or(u32::MAX);
                let dur = jail.bantime.saturating_mul(factor).min(jail.max_bantime);
                let reason = format!(
                    "{} {} events within {}",
                    jail.maxretry,
                    jail.name,
                    humantime::format_duration(jail.findtime)
                );
                self.ban(key, ip, dur, reason, source, self.inner.enforce_auto);
                let b = &self.inner.cfg.bans;
                if self.past_bans(key, None, now - b.recidive_findtime.as_millis() as i64) >= b.recidive_bans as usize {
                    self.ban(
                        key,
                        ip,
                        b.recidive_bantime,
                        format!("{} bans within {}", b.recidive_bans, humantime::format_duration(b.recidive_findtime)),
                        "recidive".into(),
                        self.inner.enforce_auto,
                    );
                }
            }
        }
    }

    fn remember(&self, key: IpKey, ev: &SecurityEvent) {
        let Ok(mut book) = self.inner.book.lock() else { return };
        if !book.contains(&key) {
            // An address seen before (and evicted from memory) picks up where it left off.
            let stored =
                self.inner.db.lock().ok().and_then(|db| db.as_ref().and_then(|d| d.load_record(&key).ok().flatten()));
            if let Some(rec) = stored {
                let out = book.restore(key, rec);
                self.write_out(&out);
            }
        }
        book.record(key, ev);
        let out = book.evict();
        drop(book);
        self.write_out(&out);
    }

    fn write_out(&self, recs: &[(IpKey, blackbook::Record)]) {
        if recs.is_empty() {
            return;
        }
        if let Ok(mut db) = self.inner.db.lock() {
            if let Some(db) = db.as_mut() {
                if let Err(e) = db.save_records(recs, now_ms()) {
                    tracing::warn!(error = %e, "black book: cannot save");
                }
            }
        }
    }

    fn past_bans(&self, key: IpKey, source: Option<&str>, since_ms: i64) -> usize {
        self.inner
            .book
            .lock()
            .ok()
            .and_then(|b| {
                b.get(&key).map(|r| {
                    r.bans.iter().filter(|x| x.since_ms >= since_ms && source.is_none_or(|s| x.source == s)).count()
                })
            })
            .unwrap_or(0)
    }

    fn ban(&self, key: IpKey, ip: IpAddr, dur: Duration, reason: String, source: String, enforced: bool) {
        let since = now_ms();
        let until =
            if dur.is_zero() { i64::MAX } else { since.saturating_add(dur.as_millis().min(i64::MAX as u128) as i64) };
        let ban = Ban { since_ms: since, until_ms: until, reason: reason.clone(), source: source.clone(), enforced };
        self.inner.bans.insert(key, ban.clone());
        if let Ok(mut b) = self.inner.book.lock() {
            b.add_ban(
                key,
                BanRecord {
                    since_ms: since,
                    until_ms: until,
                    reason: reason.clone(),
                    source: source.clone(),
                    enforced,
                },
            );
        }
        if let Ok(mut db) = self.inner.db.lock() {
            if let Some(db) = db.as_mut() {
                if let Err(e) = db.save_ban(&key, &ban) {
                    tracing::warn!(error = %e, "bans: cannot save");
                }
            }
        }
        if enforced {
            if let Some(cmd) = &self.inner.cfg.bans.command {
                run_hook(cmd, &key.to_string(), dur.as_secs());
            }
        }
        let verb = if enforced { "banned" } else { "would be banned (monitor mode)" };
        let mut ev = SecurityEvent::new(
            action::MALICIOUS_BAN,
            Category::IntrusionDetection,
            // Alert level: the sinks that page people get bans by default (monitor mode included).
            Severity::Alert,
            format!(
                "{key} {verb} for {}: {reason}",
                if dur.is_zero() { "ever".into() } else { humantime::format_duration(dur).to_string() }
            ),
        )
        .with_outcome(Outcome::Success)
        .with_kevlar("address", key.to_string())
        .with_kevlar("source", source)
        .with_kevlar("enforced", enforced)
        .with_kevlar("duration_s", dur.as_secs());
        if until != i64::MAX {
            ev = ev.with_kevlar("until", kevlar_core::time::rfc3339_ms(until));
        }
        ev.source_ip = Some(ip);
        self.publish(ev);
    }

    /// Every second: ended bans leave the table; changed records and routes go to the store.
    fn housekeeping(&self) {
        let now = now_ms();
        self.inner.bans.expire(now);
        let dirty = self.inner.book.lock().map(|mut b| b.take_dirty()).unwrap_or_default();
        self.write_out(&dirty);
        let routes = self.inner.routes.lock().ok().and_then(|mut r| {
            if !r.dirty {
                return None;
            }
            r.dirty = false;
            Some(r.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>())
        });
        if let Some(routes) = routes {
            if let Ok(mut db) = self.inner.db.lock() {
                if let Some(db) = db.as_mut() {
                    if let Err(e) = db.save_routes(routes.iter().map(|(k, v)| (k, v))) {
                        tracing::warn!(error = %e, "routes: cannot save");
                    }
                }
            }
        }
        // The black book on disk has a size and an age too (every minute, sooner for short ages).
        let bb = &self.inner.cfg.blackbook;
        let every = (bb.max_age.as_millis() as i64 / 4).clamp(1000, 60_000);
        let last = self.inner.pruned_ms.load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= every {
            self.inner.pruned_ms.store(now, std::sync::atomic::Ordering::Relaxed);
            let before = now - bb.max_age.as_millis().min(i64::MAX as u128) as i64;
            if let Ok(mut db) = self.inner.db.lock() {
                if let Some(db) = db.as_mut() {
                    match db.prune(before, bb.max_stored, now) {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(records = n, "black book: old records forgotten"),
                        Err(e) => tracing::warn!(error = %e, "black book: cannot prune shield.db"),
                    }
                }
            }
        }
    }

    // ---- control: the admin API and the CLI ----

    /// Bans `addr` by hand (always enforced). `None`: until lifted.
    pub fn manual_ban(&self, addr: &str, dur: Option<Duration>, reason: Option<String>) -> Result<Value, ShieldError> {
        let key = IpKey::parse(addr, self.inner.v6_prefix).map_err(ShieldError::Refused)?;
        let ip = first_ip(&key);
        if self.allowed(ip) {
            return Err(ShieldError::Refused(format!("{key} is in blackbook.allow; it cannot be banned")));
        }
        self.ban(
            key,
            ip,
            dur.unwrap_or(Duration::ZERO),
            reason.unwrap_or_else(|| "manual ban".into()),
            "manual".into(),
            true,
        );
        self.housekeeping();
        Ok(self.show(&key.to_string())?.unwrap_or(Value::Null))
    }

    /// Lifts a ban. `Ok(false)` when the address was not banned.
    pub fn unban(&self, addr: &str) -> Result<bool, ShieldError> {
        let key = IpKey::parse(addr, self.inner.v6_prefix).map_err(ShieldError::Refused)?;
        let removed = self.inner.bans.remove(&key).is_some();
        let now = now_ms();
        if let Ok(mut b) = self.inner.book.lock() {
            if b.contains(&key) || removed {
                b.end_ban(key, now);
            }
        }
        // Lifted in memory at once; a store that fails to forget it is said (the ban would come
        // back at the next start).
        let stored = match self.inner.db.lock() {
            Ok(mut db) => db.as_mut().map_or(Ok(false), |db| db.delete_ban(&key)).map_err(ShieldError::from),
            Err(_) => Err(ShieldError::Unavailable),
        };
        if removed {
            if let Some(cmd) = &self.inner.cfg.bans.unban_command {
                run_hook(cmd, &key.to_string(), 0);
            }
            let mut ev = SecurityEvent::new(
                action::MALICIOUS_UNBAN,
                Category::IntrusionDetection,
                Severity::Info,
                format!("{key} unbanned"),
            )
            .with_outcome(Outcome::Success)
            .with_kevlar("address", key.to_string());
            ev.source_ip = Some(first_ip(&key));
            self.publish(ev);
        }
        self.housekeeping();
        stored.map(|_| removed)
    }

    /// The black book, most recently seen first (after writing pending changes).
    pub fn list(&self, limit: usize, banned_only: bool) -> Result<Value, ShieldError> {
        self.housekeeping();
        let db = self.inner.db.lock().map_err(|_| ShieldError::Unavailable)?;
        let db = db.as_ref().ok_or(ShieldError::Unavailable)?;
        Ok(db.list(limit, banned_only, now_ms()).map(Value::Array)?)
    }

    pub fn show(&self, addr: &str) -> Result<Option<Value>, ShieldError> {
        let key = IpKey::parse(addr, self.inner.v6_prefix).map_err(ShieldError::Refused)?;
        let now = now_ms();
        if let Some(r) = self.inner.book.lock().ok().and_then(|b| b.get(&key).cloned()) {
            return Ok(Some(r.to_json(&key, now)));
        }
        let db = self.inner.db.lock().map_err(|_| ShieldError::Unavailable)?;
        let rec = match db.as_ref() {
            Some(d) => d.load_record(&key)?,
            None => None,
        };
        Ok(rec.map(|r| r.to_json(&key, now)))
    }

    pub fn routes(&self) -> Value {
        let now = now_ms();
        let stale = self.inner.cfg.routes.stale_after.as_millis() as i64;
        match self.inner.routes.lock() {
            Ok(r) => routes::report(r.iter(), now, stale),
            Err(_) => Value::Array(Vec::new()),
        }
    }

    pub fn status(&self) -> Value {
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let active = self.inner.bans.all().into_iter().filter(|(_, b)| b.until_ms > now_ms()).count();
        let (pairs, users, addresses, sessions) = self.inner.logins.sizes();
        let logins = json!({ "pairs": pairs, "users": users, "addresses": addresses, "sessions": sessions });
        json!({
            "mode": self.inner.cfg.detect.mode.as_str(),
            "bans_enforced": self.inner.enforce_auto,
            "inspected": g(&c.inspected),
            "flagged": g(&c.flagged),
            "blocked": g(&c.blocked),
            "refused_banned": g(&c.refused_banned),
            "refused_rate_limited": g(&c.refused_rate),
            "active_bans": active,
            "blackbook_in_memory": self.inner.book.lock().map(|b| b.len()).unwrap_or(0),
            "routes": self.inner.routes.lock().map(|r| r.len()).unwrap_or(0),
            "logins": logins,
        })
    }

    /// A login seen outside the proxy (`[[watch]]` logs): the same lockout, stuffing and
    /// new-network rules; its events carry `kevlar.service`.
    pub fn external_login(&self, service: &str, ip: IpAddr, user: Option<&str>, ok: bool) {
        for ev in self.inner.logins.external(service, ip, user, ok, now_ms()) {
            self.publish(ev);
        }
    }

    /// Writes everything pending and lets go of the event bus; call on shutdown.
    pub fn close(&self) {
        self.housekeeping();
        if let Ok(mut b) = self.inner.bus.write() {
            b.take();
        }
    }

    /// The detectors' part of [`Gate::inspect`]; events name the signed-in user when known.
    /// Detection is off for this path (and no family is in block mode).
    fn detection_off(&self, path: &str) -> bool {
        let inner = &self.inner;
        self.path_mode(path).unwrap_or(inner.cfg.detect.mode) == Mode::Off
            && inner.family_modes.values().all(|m| *m != Mode::Block)
    }

    fn detect(
        &self,
        meta: &RequestMeta<'_>,
        view: &RequestView<'_>,
        scan: Option<&Scanner>,
        user: Option<&str>,
    ) -> Verdict {
        let inner = &self.inner;
        if self.detection_off(meta.path) {
            return Verdict::ALLOW;
        }
        inner.counters.inspected.fetch_add(1, Ordering::Relaxed);
        if inner.cfg.routes.positive {
            let unknown =
                inner.routes.lock().map(|r| !r.is_empty() && !r.knows(meta.method, meta.path)).unwrap_or(false);
            if unknown {
                let ev = self
                    .event(
                        meta,
                        action::MALICIOUS_PROBE,
                        Severity::Notice,
                        "request outside the learned route inventory".into(),
                    )
                    .with_kevlar("family", "probe")
                    .with_kevlar("rule", "unknown_route")
                    .with_kevlar("blocked", true);
                self.publish(ev);
                return Verdict::new(Decision::Refuse { status: 404, reason: "unknown_route" }, true);
            }
        }
        let mut findings = Vec::new();
        inner.inspector.inspect_head(view, &mut findings);
        if let Some(scan) = scan {
            for f in scan.findings() {
                if findings.len() < kevlar_detect::MAX_FINDINGS {
                    findings.push(f.clone());
                }
            }
        }
        self.report(meta, findings, user)
    }

    /// Findings become one `malicious_*` event per action; the verdict says whether to block.
    fn report(&self, meta: &RequestMeta<'_>, mut findings: Vec<Finding>, user: Option<&str>) -> Verdict {
        let inner = &self.inner;
        let path_mode = self.path_mode(meta.path);
        let global = inner.cfg.detect.mode;
        findings.retain(|f| !self.excluded(meta.path, f));
        if findings.is_empty() {
            return Verdict::ALLOW;
        }
        inner.counters.flagged.fetch_add(1, Ordering::Relaxed);
        let mode_of = |f: &Finding| match inner.family_modes.get(&f.family) {
            Some(Mode::Off) => Mode::Off,
            fm => path_mode.or(fm.copied()).unwrap_or(global),
        };
        findings.retain(|f| mode_of(f) != Mode::Off);
        if findings.is_empty() {
            return Verdict::ALLOW;
        }
        let block = findings.iter().any(|f| mode_of(f) == Mode::Block);
        // One event per action, led by its strongest finding, listing the others.
        for action in [
            action::MALICIOUS_ATTACK,
            action::MALICIOUS_ATTACK_TOOL,
            action::MALICIOUS_PROBE,
            action::MALICIOUS_EVASION,
        ] {
            let group: Vec<&Finding> = findings.iter().filter(|f| f.family.action() == action).collect();
            let Some(top) = group.iter().max_by_key(|f| f.score) else { continue };
            let severity = match action {
                action::MALICIOUS_ATTACK => Severity::Warning,
                _ => Severity::Notice,
            };
            let what = match action {
                action::MALICIOUS_ATTACK => format!("{} attempt in {}", top.family.as_str(), top.location),
                action::MALICIOUS_EVASION => format!("request Kevlar cannot read in full ({})", top.rule),
                action::MALICIOUS_ATTACK_TOOL => format!("attack tool {} in {}", top.rule, top.location),
                _ => format!("probe for a sensitive resource ({})", top.rule),
            };
            let blocked = block && group.iter().any(|f| mode_of(f) == Mode::Block);
            let mut ev = self
                .event(meta, action, severity, if blocked { format!("{what}; blocked") } else { what })
                .with_kevlar("family", top.family.as_str())
                .with_kevlar("rule", top.rule)
                .with_kevlar("location", top.location.as_str())
                .with_kevlar("excerpt", top.excerpt.as_str())
                .with_kevlar("score", top.score)
                .with_kevlar("mode", mode_of(top).as_str())
                .with_kevlar("blocked", blocked);
            ev.rule_id = Some(format!("kevlar.{}.{}", top.family.as_str(), top.rule));
            ev.rule_name = Some(top.rule.to_owned());
            if group.len() > 1 {
                ev = ev.with_kevlar(
                    "findings",
                    group
                        .iter()
                        .map(|f| json!({"family": f.family.as_str(), "rule": f.rule, "location": f.location, "score": f.score}))
                        .collect::<Vec<_>>(),
                );
            }
            ev.user_name = user.map(str::to_owned);
            if blocked {
                ev.status_code = Some(403);
                ev.outcome = Outcome::Failure;
            }
            self.publish(ev);
        }
        if block {
            inner.counters.blocked.fetch_add(1, Ordering::Relaxed);
            return Verdict::new(Decision::Refuse { status: 403, reason: "attack_blocked" }, true);
        }
        Verdict::new(Decision::Allow, true)
    }

    fn publish(&self, ev: SecurityEvent) {
        if let Ok(b) = self.inner.bus.read() {
            if let Some(b) = b.as_ref() {
                b.publish(ev);
            }
        }
    }
}

/// The body of a login answer whose outcome a body pattern tells: its first bytes are kept until it
/// ends, then the login is decided.
struct LoginBody {
    shield: Shield,
    deferred: Option<login::Deferred>,
    seen: Vec<u8>,
}

impl kevlar_core::BodyWatch for LoginBody {
    fn data(&mut self, chunk: &[u8]) {
        let room = login::BODY_SCAN.saturating_sub(self.seen.len());
        self.seen.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn end(mut self: Box<Self>) {
        if let Some(d) = self.deferred.take() {
            for ev in self.shield.inner.logins.finish(d, &self.seen, now_ms()) {
                self.shield.publish(ev);
            }
        }
    }
}

/// The request facts an event needs, kept past the request head.
struct OwnedMeta {
    ip: IpAddr,
    request_id: String,
    method: String,
    path: String,
    query: Option<String>,
    user_agent: Option<String>,
}

impl OwnedMeta {
    fn of(m: &RequestMeta<'_>) -> OwnedMeta {
        OwnedMeta {
            ip: m.ip,
            request_id: m.request_id.to_owned(),
            method: m.method.to_owned(),
            path: m.path.to_owned(),
            query: m.query.map(str::to_owned),
            user_agent: m.user_agent.map(str::to_owned),
        }
    }

    fn meta(&self) -> RequestMeta<'_> {
        RequestMeta {
            ip: self.ip,
            request_id: &self.request_id,
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            user_agent: self.user_agent.as_deref(),
        }
    }
}

/// The inspection of a body past its read-ahead start, chunk by chunk as it goes to the app.
struct RestOfBody {
    shield: Shield,
    scan: Scanner,
    /// Findings already reported with the request head.
    reported: usize,
    meta: OwnedMeta,
    user: Option<String>,
}

impl RestOfBody {
    fn report_new(&mut self) -> Result<(), u16> {
        let found = self.scan.findings();
        if found.len() <= self.reported {
            return Ok(());
        }
        let new = found[self.reported..].to_vec();
        self.reported = found.len();
        let v = self.shield.report(&self.meta.meta(), new, self.user.as_deref());
        match v.decision {
            Decision::Refuse { status, .. } => Err(status),
            _ => Ok(()),
        }
    }
}

impl kevlar_core::BodyScan for RestOfBody {
    fn data(&mut self, chunk: &[u8]) -> Result<(), u16> {
        self.scan.feed(&self.shield.inner.inspector, chunk);
        self.report_new()
    }

    fn end(&mut self) -> Result<(), u16> {
        self.scan.finish(&self.shield.inner.inspector);
        self.report_new()
    }
}

/// The messages a client sends through one WebSocket tunnel (`[detect] websocket = true`), each
/// read as an untyped body is: JSON, a form, multipart or text by its first bytes.
struct WsMessages {
    shield: Shield,
    meta: OwnedMeta,
    /// The current message's scanner, from its first piece.
    scan: Option<Scanner>,
    reported: usize,
}

impl WsMessages {
    fn report(&mut self, found: Vec<Finding>) -> Result<(), u16> {
        if found.is_empty() {
            return Ok(());
        }
        let found = found
            .into_iter()
            .map(|mut f| {
                f.location = match f.location.strip_prefix("body") {
                    Some(rest) => format!("websocket{rest}"),
                    None => f.location,
                };
                f
            })
            .collect();
        match self.shield.report(&self.meta.meta(), found, None).decision {
            Decision::Refuse { status, .. } => Err(status),
            _ => Ok(()),
        }
    }

    fn report_new(&mut self) -> Result<(), u16> {
        let Some(s) = &self.scan else { return Ok(()) };
        let new = s.findings()[self.reported.min(s.findings().len())..].to_vec();
        self.reported += new.len();
        self.report(new)
    }
}

impl kevlar_core::MessageScan for WsMessages {
    fn data(&mut self, piece: &[u8]) -> Result<(), u16> {
        let ins = &self.shield.inner.inspector;
        self.scan.get_or_insert_with(|| Scanner::new(ins, &http::HeaderMap::new())).feed(ins, piece);
        self.report_new()
    }

    fn end(&mut self) -> Result<(), u16> {
        if let Some(s) = self.scan.as_mut() {
            s.finish(&self.shield.inner.inspector);
        }
        let r = self.report_new();
        self.scan = None;
        self.reported = 0;
        r
    }

    fn unreadable(&mut self, why: &'static str) -> Result<(), u16> {
        self.report(vec![Finding {
            family: Family::Evasion,
            rule: why,
            location: "websocket".into(),
            name: String::new(),
            excerpt: String::new(),
            score: 6,
        }])
    }
}

/// A representative address of a key (events need an `IpAddr`).
fn first_ip(k: &IpKey) -> IpAddr {
    match k {
        IpKey::V4(v) => IpAddr::V4((*v).into()),
        IpKey::V6 { net, .. } => IpAddr::V6((*net).into()),
    }
}

/// Sliding windows of event times per (jail, address), bounded.
#[derive(Default)]
struct Jails {
    windows: HashMap<(usize, IpKey), VecDeque<i64>>,
}

impl Jails {
    fn count(&mut self, jail: usize, key: IpKey, now: i64, findtime_ms: i64) -> usize {
        if self.windows.len() >= MAX_TRACKED && !self.windows.contains_key(&(jail, key)) {
            self.windows.retain(|_, w| w.back().is_some_and(|t| *t > now - findtime_ms));
            if self.windows.len() >= MAX_TRACKED {
                self.windows.clear();
            }
        }
        let w = self.windows.entry((jail, key)).or_default();
        w.push_back(now);
        while w.front().is_some_and(|t| *t <= now - findtime_ms) {
            w.pop_front();
        }
        while w.len() > 10_000 {
            w.pop_front();
        }
        w.len()
    }

    fn clear(&mut self, jail: usize, key: IpKey) {
        self.windows.remove(&(jail, key));
    }
}

impl Gate for Shield {
    fn websocket(&self, meta: &RequestMeta<'_>) -> Option<Box<dyn kevlar_core::MessageScan>> {
        let d = &self.inner.cfg.detect;
        (d.websocket && d.mode != Mode::Off).then(|| {
            Box::new(WsMessages { shield: self.clone(), meta: OwnedMeta::of(meta), scan: None, reported: 0 })
                as Box<dyn kevlar_core::MessageScan>
        })
    }

    fn admit(&self, meta: &RequestMeta<'_>) -> Result<(), Refusal> {
        let inner = &self.inner;
        if !inner.allow.is_empty() && self.allowed(meta.ip) {
            return Ok(());
        }
        let key = self.key(meta.ip);
        let now = now_ms();
        if let Some(until) = inner.bans.check(&key, now) {
            inner.counters.refused_banned.fetch_add(1, Ordering::Relaxed);
            let retry = if until == i64::MAX { None } else { Some(((until - now) / 1000).max(1) as u64) };
            return Err(Refusal { status: inner.cfg.bans.status, retry_after: retry, reason: "banned" });
        }
        if inner.global.is_none() && inner.per_ip.is_none() && inner.paths.is_empty() {
            return Ok(());
        }
        let t = mono_ns();
        let limited = |wait: u64| {
            inner.counters.refused_rate.fetch_add(1, Ordering::Relaxed);
            Refusal { status: 429, retry_after: Some(wait.div_ceil(1_000_000_000).max(1)), reason: "rate_limited" }
        };
        if let Some(p) = inner.paths.iter().find(|(prefix, _)| meta.path.starts_with(prefix.as_str())) {
            p.1.check(&key, t).map_err(limited)?;
        }
        if let Some(l) = &inner.per_ip {
            l.check(&key, t).map_err(limited)?;
        }
        if let Some(g) = &inner.global {
            g.check(t).map_err(limited)?;
        }
        Ok(())
    }

    fn body_prefix(&self, meta: &RequestMeta<'_>, _content_type: Option<&str>) -> usize {
        // Whatever the content type says, or if it says nothing: apps read bodies they were not
        // told the type of.
        let limit = self.inner.cfg.detect.body_limit as usize;
        if self.inner.logins.wants_body(meta.method, meta.path) {
            return limit.max(16 << 10);
        }
        let mode = self.path_mode(meta.path).unwrap_or(self.inner.cfg.detect.mode);
        if mode == Mode::Off {
            return 0;
        }
        limit
    }

    fn inspect(&self, meta: &RequestMeta<'_>, view: &RequestView<'_>) -> Verdict {
        let inner = &self.inner;
        // The body once, decoded as the app reads it, for the login monitor and the detectors
        // (only decoded when detection is off here: the login monitor still reads it).
        let off = self.detection_off(meta.path);
        let mut scan = (!view.body.is_empty()).then(|| {
            if off {
                Scanner::decoding(&inner.inspector, view.headers)
            } else {
                Scanner::new(&inner.inspector, view.headers)
            }
        });
        if let Some(s) = scan.as_mut() {
            s.feed(&inner.inspector, view.body);
            if view.body_complete {
                s.finish(&inner.inspector);
            }
        }
        let decoded = RequestView { body: scan.as_ref().map_or(view.body, |s| s.prefix()), ..*view };
        let seen = inner.logins.on_request(meta, &decoded, now_ms());
        // A body longer than the login monitor reads, where a login is expected and none was
        // found in what it read (padding before the fields): unread is a finding, not a skip.
        if !view.body_complete
            && seen.context.as_ref().is_none_or(|c| c.login.is_none())
            && (inner.logins.expects_login(meta.method, meta.path)
                || inner.routes.lock().is_ok_and(|r| r.is_login(meta.method, meta.path)))
        {
            let ev = self
                .event(
                    meta,
                    action::MALICIOUS_EVASION,
                    Severity::Warning,
                    format!("a login request longer than the {} bytes the login monitor reads", view.body.len()),
                )
                .with_kevlar("family", "evasion")
                .with_kevlar("rule", "login_unreadable");
            self.publish(ev);
        }
        let session_user = seen.context.as_ref().and_then(|c| c.session_user.clone());
        if let Some(secs) = seen.refuse_for {
            let mut v = Verdict::new(Decision::Refuse { status: 429, reason: "login_pair_locked" }, false);
            v.retry_after = Some(secs);
            return v;
        }
        let mut v = self.detect(meta, view, scan.as_ref(), session_user.as_deref());
        if let (Some(s), false, Decision::Allow, false) = (scan, view.body_complete, &v.decision, off) {
            let reported = s.findings().len();
            v.body = Some(Box::new(RestOfBody {
                shield: self.clone(),
                scan: s,
                reported,
                meta: OwnedMeta::of(meta),
                user: session_user,
            }));
        }
        v.delay = seen.delay;
        v.add_headers = seen.add_headers;
        v.context = seen.context.map(Box::new);
        v
    }

    fn respond(
        &self,
        meta: &RequestMeta<'_>,
        ctx: Option<&RequestContext>,
        status: u16,
        headers: &mut http::HeaderMap,
    ) -> Option<Box<dyn kevlar_core::BodyWatch>> {
        // The route inventory says which routes are taken for logins, and why.
        if let (Some(login), true) = (ctx.and_then(|c| c.login.as_ref()), self.inner.cfg.routes.enabled) {
            if let Ok(mut r) = self.inner.routes.lock() {
                r.mark_login(meta.method, meta.path, login.how);
            }
        }
        let mut deferred = None;
        for ev in self.inner.logins.on_response_full(meta, ctx, status, headers, now_ms(), &mut deferred) {
            self.publish(ev);
        }
        deferred.map(|d| {
            Box::new(LoginBody { shield: self.clone(), deferred: Some(d), seen: Vec::new() })
                as Box<dyn kevlar_core::BodyWatch>
        })
    }

    fn observe(&self, meta: &RequestMeta<'_>, status: u16, flagged: bool) {
        let inner = &self.inner;
        let now = now_ms();
        if inner.cfg.routes.enabled && !matches!(status, 408 | 431 | 413) {
            if let Ok(mut r) = inner.routes.lock() {
                r.observe(meta.method, meta.path, status, flagged, now);
            }
        }
        if status != 404 {
            return;
        }
        let key = self.key(meta.ip);
        let window = inner.cfg.detect.excess_404_window.as_millis() as i64;
        let threshold = inner.cfg.detect.excess_404;
        let fire = {
            let Ok(mut m) = inner.notfound.lock() else { return };
            if m.len() >= MAX_TRACKED && !m.contains_key(&key) {
                m.retain(|_, (_, start)| *start > now - window);
                if m.len() >= MAX_TRACKED {
                    m.clear();
                }
            }
            let e = m.entry(key).or_insert((0, now));
            if e.1 <= now - window {
                *e = (0, now);
            }
            e.0 += 1;
            if e.0 >= threshold {
                *e = (0, now);
                true
            } else {
                false
            }
        };
        if fire {
            let ev = self
                .event(
                    meta,
                    action::MALICIOUS_EXCESS_404,
                    Severity::Notice,
                    format!(
                        "{threshold} not-found answers within {}",
                        humantime::format_duration(inner.cfg.detect.excess_404_window)
                    ),
                )
                .with_kevlar("count", threshold);
            self.publish(ev);
        }
    }
}

/// For the CLI when Kevlar is not running: the stored black book.
pub fn offline_list(data_dir: &Path, limit: usize, banned_only: bool) -> Result<Value, ShieldError> {
    let db = ShieldDb::open(data_dir)?;
    Ok(db.list(limit, banned_only, now_ms()).map(Value::Array)?)
}

pub fn offline_show(data_dir: &Path, addr: &str) -> Result<Option<Value>, ShieldError> {
    let db = ShieldDb::open(data_dir)?;
    let key = IpKey::parse(addr, 64).map_err(ShieldError::Refused)?;
    Ok(db.load_record(&key)?.map(|r| r.to_json(&key, now_ms())))
}

pub fn offline_routes(data_dir: &Path, stale_after: Duration) -> Result<Value, ShieldError> {
    let db = ShieldDb::open(data_dir)?;
    let routes = db.load_routes()?;
    Ok(routes::report(routes.iter().map(|(k, v)| (k, v)), now_ms(), stale_after.as_millis() as i64))
}

/// For the CLI when Kevlar is not running: a ban written to the store, in force from the next start.
pub fn offline_ban(
    data_dir: &Path,
    addr: &str,
    dur: Option<Duration>,
    reason: Option<String>,
) -> Result<Value, ShieldError> {
    let mut db = ShieldDb::open(data_dir)?;
    let key = IpKey::parse(addr, 64).map_err(ShieldError::Refused)?;
    let since = now_ms();
    let until = dur.map_or(i64::MAX, |d| since.saturating_add(d.as_millis().min(i64::MAX as u128) as i64));
    let reason = reason.unwrap_or_else(|| "manual ban".into());
    let ban = Ban { since_ms: since, until_ms: until, reason: reason.clone(), source: "manual".into(), enforced: true };
    db.save_ban(&key, &ban)?;
    let mut rec = db.load_record(&key)?.unwrap_or(blackbook::Record {
        first_seen_ms: since,
        last_seen_ms: since,
        ..Default::default()
    });
    rec.bans.push_back(BanRecord { since_ms: since, until_ms: until, reason, source: "manual".into(), enforced: true });
    db.save_records(&[(key, rec.clone())], since)?;
    Ok(rec.to_json(&key, since))
}

/// For the CLI when Kevlar is not running. `Ok(false)`: there was no ban.
pub fn offline_unban(data_dir: &Path, addr: &str) -> Result<bool, ShieldError> {
    let mut db = ShieldDb::open(data_dir)?;
    let key = IpKey::parse(addr, 64).map_err(ShieldError::Refused)?;
    let now = now_ms();
    let removed = db.delete_ban(&key)?;
    if let Some(mut rec) = db.load_record(&key)? {
        if let Some(b) = rec.bans.back_mut() {
            b.until_ms = b.until_ms.min(now);
        }
        db.save_records(&[(key, rec)], now)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_config_knows_every_detector_family() {
        let names: Vec<&str> = kevlar_detect::Family::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(names, kevlar_config::FAMILIES, "kevlar_config::FAMILIES must list kevlar_detect::Family::ALL");
    }
}
