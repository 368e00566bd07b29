//! The correlator: every event with an address goes through the black book (a record per address:
//! counts per action, first and last seen, its bans) and the jails (fail2ban's model: `maxretry`
//! events of the jail's actions within `findtime` ban for `bantime`, doubled for each earlier ban
//! of the same jail up to `max_bantime`; the recidive jail bans repeat offenders for longer).
//! Bans go into the ban table the proxy's gate reads on every request, into `shield.db`, and out
//! as `malicious_ban` events. Also the control calls behind `kevlar blackbook` and the admin API,
//! with Kevlar running (here) or not (`offline_*`, on the store).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use kevlar_config::{BansConfig, BlackbookConfig, Config};
use kevlar_core::{action, Category, Outcome, SecurityEvent, Severity};
use tokio::sync::mpsc;

use crate::bans::{Ban, BanShare, BanTable};
use crate::blackbook::{BanRecord, BlackBook, BookRecord, Record};
use crate::book_db::{BookDb, DbError};
use crate::book_error::BookError;
use crate::key::IpKey;
use crate::{Bus, Envelope};

/// Per-address state kept for the jails is bounded by this many keys.
pub const MAX_TRACKED: usize = 100_000;

fn now_ms() -> i64 {
    kevlar_core::time::now_ms()
}

pub struct Correlator {
    bans_cfg: BansConfig,
    book_cfg: BlackbookConfig,
    allow: Vec<IpNet>,
    v6_prefix: u8,
    /// Automatic bans refuse requests (else they are recorded only).
    enforce_auto: bool,
    bans: BanTable,
    book: Mutex<BlackBook>,
    db: Mutex<Option<BookDb>>,
    /// Taken out on shutdown so the event queues can close.
    bus: RwLock<Option<Bus>>,
    /// When `shield.db` was last pruned (`blackbook.max_age`, `max_stored`).
    pruned_ms: AtomicI64,
    /// `[cluster]`: where bans made here are told.
    share: RwLock<Option<Arc<dyn BanShare>>>,
    /// `[cluster]`: other instances' jail hits, (jail name, key), for the correlator's thread.
    /// The flag: the jail's window of the key is cleared (a shared ban) rather than hit.
    remote_tx: mpsc::Sender<(String, IpKey, bool)>,
    remote_rx: Mutex<Option<mpsc::Receiver<(String, IpKey, bool)>>>,
}

/// Other instances' jail hits waiting for the correlator's thread; past this, they are dropped
/// (counting fails open).
const REMOTE_QUEUE: usize = 100_000;

impl Correlator {
    /// Opens the black book's store and reloads the bans still running. `enforce_auto`: whether
    /// automatic bans refuse requests (manual bans always do).
    pub fn open(cfg: &Config, bus: Bus, enforce_auto: bool) -> Result<Arc<Correlator>, DbError> {
        let db = BookDb::open(&cfg.data_dir)?;
        let (remote_tx, remote_rx) = mpsc::channel(REMOTE_QUEUE);
        let bans = BanTable::default();
        for (k, b) in db.load_bans(now_ms())? {
            bans.insert(k, b);
        }
        Ok(Arc::new(Correlator {
            bans_cfg: cfg.bans.clone(),
            book_cfg: cfg.blackbook.clone(),
            allow: cfg.blackbook.allow.clone(),
            v6_prefix: cfg.blackbook.ipv6_prefix,
            enforce_auto,
            bans,
            book: Mutex::new(BlackBook::new(cfg.blackbook.max_records)),
            db: Mutex::new(Some(db)),
            bus: RwLock::new(Some(bus)),
            pruned_ms: AtomicI64::new(0),
            share: RwLock::new(None),
            remote_tx,
            remote_rx: Mutex::new(Some(remote_rx)),
        }))
    }

    /// The black book's key of an address (IPv6 by `blackbook.ipv6_prefix`).
    pub fn key(&self, ip: IpAddr) -> IpKey {
        IpKey::new(ip, self.v6_prefix)
    }

    /// Whether `blackbook.allow` lists any range at all.
    pub fn allows_any(&self) -> bool {
        !self.allow.is_empty()
    }

    /// Whether the address is in `blackbook.allow` (never counted toward a ban, never banned).
    pub fn allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|n| n.contains(&ip))
    }

    /// An enforced ban on `key` at `now`: its end (`i64::MAX`: until lifted). The gate's check.
    pub fn banned_until(&self, key: &IpKey, now: i64) -> Option<i64> {
        self.bans.check(key, now)
    }

    pub fn enforces_auto(&self) -> bool {
        self.enforce_auto
    }

    /// Bans running now.
    pub fn active_bans(&self) -> usize {
        let now = now_ms();
        self.bans.all().into_iter().filter(|(_, b)| b.until_ms > now).count()
    }

    /// Records held in memory.
    pub fn in_memory(&self) -> usize {
        self.book.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// Starts the correlator on its own thread: reads `rx` until the bus closes; every second
    /// (and on exit) its housekeeping, then `tick` (the caller's own, e.g. saving routes).
    pub fn start(
        self: &Arc<Self>,
        mut rx: mpsc::Receiver<Envelope>,
        tick: impl Fn() + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        let mut remote = self.remote_rx.lock().ok().and_then(|mut r| r.take());
        std::thread::Builder::new().name("kevlar-correlator".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "correlator: cannot start");
                    return;
                }
            };
            rt.block_on(async move {
                let mut jails = Jails::new(&me.bans_cfg);
                let mut every = tokio::time::interval(Duration::from_secs(1));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        env = rx.recv() => match env {
                            Some(env) => me.correlate(&env.event, &mut jails),
                            None => break,
                        },
                        hit = async {
                            match remote.as_mut() {
                                Some(r) => r.recv().await,
                                None => std::future::pending().await,
                            }
                        } => match hit {
                            Some((jail, key, clear)) => me.remote_hit(&jail, key, clear, &mut jails),
                            None => remote = None,
                        },
                        _ = every.tick() => {
                            me.housekeeping();
                            tick();
                        }
                    }
                }
                me.housekeeping();
                tick();
            });
        })
    }

    /// Writes everything pending and lets go of the event bus; call on shutdown.
    pub fn close(&self) {
        self.housekeeping();
        if let Ok(mut b) = self.bus.write() {
            b.take();
        }
    }

    fn publish(&self, ev: SecurityEvent) {
        if let Ok(b) = self.bus.read() {
            if let Some(b) = b.as_ref() {
                b.publish(ev);
            }
        }
    }

    /// One event through the black book and the jails.
    fn correlate(&self, ev: &SecurityEvent, jails: &mut Jails) {
        let Some(ip) = ev.source_ip else { return };
        if matches!(ev.action.as_str(), action::MALICIOUS_BAN | action::MALICIOUS_UNBAN) {
            return;
        }
        let key = self.key(ip);
        if let (Some(share), Some(user)) = (self.share(), ev.user_name.as_deref()) {
            match ev.action.as_str() {
                action::AUTHN_LOGIN_FAIL => share.login_failure(user, ip),
                action::AUTHN_LOGIN_FAIL_MAX => {
                    let secs = ev.kevlar.get("duration_s").and_then(|v| v.as_u64()).unwrap_or(0);
                    if secs > 0 {
                        share.pair_locked(user, ip, secs);
                    }
                }
                _ => {}
            }
        }
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
        for (i, jail) in self.bans_cfg.jails.iter().enumerate() {
            let hit = jail.actions.iter().any(|a| match a.strip_suffix('*') {
                Some(prefix) => ev.action.starts_with(prefix),
                None => *a == ev.action,
            });
            if !hit {
                continue;
            }
            if let Some(share) = self.share() {
                share.jail_hit(&jail.name, &key);
            }
            if jails.count(i, key, now, jail.findtime.as_millis() as i64) >= jail.maxretry as usize && self.owns(&key) {
                jails.clear(i, key);
                self.jail_ban(i, key, ip, now);
            }
        }
    }

    /// Whether this instance makes the jails' bans of `key`: always alone; in a cluster, one
    /// instance per address, so that an attack spread over instances is banned once.
    fn owns(&self, key: &IpKey) -> bool {
        self.share().is_none_or(|s| s.owns(key))
    }

    /// Jail `i` saw `maxretry` events of `key`: the ban, escalating with the jail's past bans,
    /// and the recidive jail's.
    fn jail_ban(&self, i: usize, key: IpKey, ip: IpAddr, now: i64) {
        let Some(jail) = self.bans_cfg.jails.get(i) else { return };
        if self.bans.get(&key).is_some_and(|b| b.until_ms > now) {
            return;
        }
        let source = format!("jail:{}", jail.name);
        let repeats = self.past_bans(key, Some(&source), now - 30 * 86_400_000);
        let factor = 1u32.checked_shl(repeats.min(20) as u32).unwrap_or(u32::MAX);
        let dur = jail.bantime.saturating_mul(factor).min(jail.max_bantime);
        let reason =
            format!("{} {} events within {}", jail.maxretry, jail.name, humantime::format_duration(jail.findtime));
        self.ban(key, ip, dur, reason, source, self.enforce_auto);
        let b = &self.bans_cfg;
        if self.past_bans(key, None, now - b.recidive_findtime.as_millis() as i64) >= b.recidive_bans as usize {
            self.ban(
                key,
                ip,
                b.recidive_bantime,
                format!("{} bans within {}", b.recidive_bans, humantime::format_duration(b.recidive_findtime)),
                "recidive".into(),
                self.enforce_auto,
            );
        }
    }

    fn remember(&self, key: IpKey, ev: &SecurityEvent) {
        let Ok(mut book) = self.book.lock() else { return };
        if !book.contains(&key) {
            // An address seen before (and evicted from memory) picks up where it left off.
            let stored =
                self.db.lock().ok().and_then(|db| db.as_ref().and_then(|d| d.load_record(&key).ok().flatten()));
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

    fn write_out(&self, recs: &[(IpKey, Record)]) {
        if recs.is_empty() {
            return;
        }
        if let Ok(mut db) = self.db.lock() {
            if let Some(db) = db.as_mut() {
                if let Err(e) = db.save_records(recs, now_ms()) {
                    tracing::warn!(error = %e, "black book: cannot save");
                }
            }
        }
    }

    fn past_bans(&self, key: IpKey, source: Option<&str>, since_ms: i64) -> usize {
        self.book
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
        self.bans.insert(key, ban.clone());
        if let Some(share) = self.share() {
            share.banned(&key, &ban);
        }
        if let Ok(mut b) = self.book.lock() {
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
        if let Ok(mut db) = self.db.lock() {
            if let Some(db) = db.as_mut() {
                if let Err(e) = db.save_ban(&key, &ban) {
                    tracing::warn!(error = %e, "bans: cannot save");
                }
            }
        }
        if enforced {
            if let Some(cmd) = &self.bans_cfg.command {
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

    /// Every second: ended bans leave the table; changed records go to the store, and the store
    /// is pruned to its size and age.
    pub fn housekeeping(&self) {
        let now = now_ms();
        self.bans.expire(now);
        let dirty = self.book.lock().map(|mut b| b.take_dirty()).unwrap_or_default();
        self.write_out(&dirty);
        // The black book on disk has a size and an age too (every minute, sooner for short ages).
        let bb = &self.book_cfg;
        let every = (bb.max_age.as_millis() as i64 / 4).clamp(1000, 60_000);
        let last = self.pruned_ms.load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= every {
            self.pruned_ms.store(now, std::sync::atomic::Ordering::Relaxed);
            let before = now - bb.max_age.as_millis().min(i64::MAX as u128) as i64;
            if let Ok(mut db) = self.db.lock() {
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

    // ---- sharing: [cluster] ----

    /// Tells `share` of every ban made here from now on.
    pub fn set_share(&self, share: Arc<dyn BanShare>) {
        if let Ok(mut s) = self.share.write() {
            *s = Some(share);
        }
    }

    fn share(&self) -> Option<Arc<dyn BanShare>> {
        self.share.read().ok().and_then(|s| s.clone())
    }

    /// Jail hits another instance counted (`[cluster]`): added to this instance's windows, so
    /// that an attack spread over instances is counted whole. The instance that owns the
    /// address (`BanShare::owns`) makes the one ban, whichever instance saw the attempt that
    /// crossed the line, and shares it.
    pub fn apply_shared_hits(&self, hits: impl IntoIterator<Item = (String, IpKey)>) {
        for (jail, key) in hits {
            if self.remote_tx.try_send((jail, key, false)).is_err() {
                break;
            }
        }
    }

    fn remote_hit(&self, jail: &str, key: IpKey, clear: bool, jails: &mut Jails) {
        if self.allowed(first_ip(&key)) {
            return;
        }
        if let Some((i, j)) = self.bans_cfg.jails.iter().enumerate().find(|(_, j)| j.name == jail) {
            if clear {
                jails.clear(i, key);
                return;
            }
            let now = now_ms();
            if jails.count(i, key, now, j.findtime.as_millis() as i64) >= j.maxretry as usize && self.owns(&key) {
                jails.clear(i, key);
                self.jail_ban(i, key, first_ip(&key), now);
            }
        }
    }

    /// The bans in force or recorded here, for merging with the other instances'.
    pub fn bans(&self) -> Vec<(IpKey, Ban)> {
        self.bans.all()
    }

    /// A ban another instance made: applied here as if made here (table, store, black book, the
    /// ban command), without an event (the instance that made it published one) and without
    /// telling it back. An address in this instance's `blackbook.allow` is not banned.
    pub fn apply_shared_ban(&self, key: IpKey, ban: Ban) {
        if self.allowed(first_ip(&key)) || ban.until_ms <= now_ms() {
            return;
        }
        if self.bans.get(&key).is_some_and(|b| b.until_ms == ban.until_ms && b.since_ms == ban.since_ms) {
            return;
        }
        self.bans.insert(key, ban.clone());
        // The jail that banned starts again from nothing here too, as it did where it banned.
        if let Some(jail) = ban.source.strip_prefix("jail:") {
            let _ = self.remote_tx.try_send((jail.to_owned(), key, true));
        }
        if let Ok(mut b) = self.book.lock() {
            b.add_ban(
                key,
                BanRecord {
                    since_ms: ban.since_ms,
                    until_ms: ban.until_ms,
                    reason: ban.reason.clone(),
                    source: ban.source.clone(),
                    enforced: ban.enforced,
                },
            );
        }
        if let Ok(mut db) = self.db.lock() {
            if let Some(db) = db.as_mut() {
                if let Err(e) = db.save_ban(&key, &ban) {
                    tracing::warn!(error = %e, "bans: cannot save");
                }
            }
        }
        if ban.enforced {
            if let Some(cmd) = &self.bans_cfg.command {
                let secs = if ban.until_ms == i64::MAX { 0 } else { ((ban.until_ms - now_ms()) / 1000).max(1) as u64 };
                run_hook(cmd, &key.to_string(), secs);
            }
        }
    }

    /// A ban another instance lifted. `true` when it was in force here.
    pub fn apply_shared_unban(&self, key: IpKey) -> bool {
        let removed = self.bans.remove(&key).is_some();
        if removed {
            if let Ok(mut b) = self.book.lock() {
                b.end_ban(key, now_ms());
            }
            if let Ok(mut db) = self.db.lock() {
                if let Some(db) = db.as_mut() {
                    if let Err(e) = db.delete_ban(&key) {
                        tracing::warn!(error = %e, "bans: cannot forget a lifted ban");
                    }
                }
            }
            if let Some(cmd) = &self.bans_cfg.unban_command {
                run_hook(cmd, &key.to_string(), 0);
            }
        }
        removed
    }

    /// Parses an address or prefix as this instance keys it.
    pub fn parse_key(&self, s: &str) -> Result<IpKey, String> {
        IpKey::parse(s, self.v6_prefix)
    }

    // ---- control: the admin API and the CLI ----

    /// Bans `addr` by hand (always enforced). `None`: until lifted.
    pub fn manual_ban(
        &self,
        addr: &str,
        dur: Option<Duration>,
        reason: Option<String>,
    ) -> Result<BookRecord, BookError> {
        let key = IpKey::parse(addr, self.v6_prefix).map_err(BookError::Refused)?;
        let ip = first_ip(&key);
        if self.allowed(ip) {
            return Err(BookError::Refused(format!("{key} is in blackbook.allow; it cannot be banned")));
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
        self.show(&key.to_string())?.ok_or(BookError::Unavailable)
    }

    /// Lifts a ban. `Ok(false)` when the address was not banned.
    pub fn unban(&self, addr: &str) -> Result<bool, BookError> {
        let key = IpKey::parse(addr, self.v6_prefix).map_err(BookError::Refused)?;
        let removed = self.bans.remove(&key).is_some();
        let now = now_ms();
        if let Ok(mut b) = self.book.lock() {
            if b.contains(&key) || removed {
                b.end_ban(key, now);
            }
        }
        // Lifted in memory at once; a store that fails to forget it is said (the ban would come
        // back at the next start).
        let stored = match self.db.lock() {
            Ok(mut db) => db.as_mut().map_or(Ok(false), |db| db.delete_ban(&key)).map_err(BookError::from),
            Err(_) => Err(BookError::Unavailable),
        };
        if removed {
            if let Some(share) = self.share() {
                share.unbanned(&key);
            }
            if let Some(cmd) = &self.bans_cfg.unban_command {
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
    pub fn list(&self, limit: usize, banned_only: bool) -> Result<Vec<BookRecord>, BookError> {
        self.housekeeping();
        let db = self.db.lock().map_err(|_| BookError::Unavailable)?;
        let db = db.as_ref().ok_or(BookError::Unavailable)?;
        Ok(db.list(limit, banned_only, now_ms())?)
    }

    pub fn show(&self, addr: &str) -> Result<Option<BookRecord>, BookError> {
        let key = IpKey::parse(addr, self.v6_prefix).map_err(BookError::Refused)?;
        let now = now_ms();
        if let Some(r) = self.book.lock().ok().and_then(|b| b.get(&key).cloned()) {
            return Ok(Some(r.view(&key, now)));
        }
        let db = self.db.lock().map_err(|_| BookError::Unavailable)?;
        let rec = match db.as_ref() {
            Some(d) => d.load_record(&key)?,
            None => None,
        };
        Ok(rec.map(|r| r.view(&key, now)))
    }
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
    /// Each jail's `findtime`, in ms (by jail index).
    findtimes: Vec<i64>,
}

impl Jails {
    fn new(cfg: &BansConfig) -> Jails {
        Jails { windows: HashMap::new(), findtimes: cfg.jails.iter().map(|j| j.findtime.as_millis() as i64).collect() }
    }

    /// Room for one more window: first the windows whose hits all left their own jail's
    /// `findtime`, then the tenth with the fewest hits (the least recently hit among equals).
    /// A flood of new addresses never empties the windows of the ones that are counting up.
    fn make_room(&mut self, now: i64) {
        let findtimes = &self.findtimes;
        self.windows.retain(|(jail, _), w| {
            let ft = findtimes.get(*jail).copied().unwrap_or(0);
            w.back().is_some_and(|t| *t > now - ft)
        });
        if self.windows.len() >= MAX_TRACKED {
            let mut least: Vec<((usize, i64), (usize, IpKey))> =
                self.windows.iter().map(|(k, w)| ((w.len(), w.back().copied().unwrap_or(0)), *k)).collect();
            let cut = least.len() / 10;
            least.select_nth_unstable_by_key(cut, |(rank, _)| *rank);
            for (_, k) in &least[..cut] {
                self.windows.remove(k);
            }
        }
    }

    fn count(&mut self, jail: usize, key: IpKey, now: i64, findtime_ms: i64) -> usize {
        if self.windows.len() >= MAX_TRACKED && !self.windows.contains_key(&(jail, key)) {
            self.make_room(now);
        }
        let w = self.windows.entry((jail, key)).or_default();
        // Kept in time order: hits from other instances and local events may interleave.
        if w.back().is_some_and(|t| *t > now) {
            let at = w.partition_point(|t| *t <= now);
            w.insert(at, now);
        } else {
            w.push_back(now);
        }
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

/// For the CLI when Kevlar is not running: the stored black book.
pub fn offline_list(data_dir: &Path, limit: usize, banned_only: bool) -> Result<Vec<BookRecord>, BookError> {
    let db = BookDb::open(data_dir)?;
    Ok(db.list(limit, banned_only, now_ms())?)
}

pub fn offline_show(data_dir: &Path, addr: &str) -> Result<Option<BookRecord>, BookError> {
    let db = BookDb::open(data_dir)?;
    let key = IpKey::parse(addr, 64).map_err(BookError::Refused)?;
    Ok(db.load_record(&key)?.map(|r| r.view(&key, now_ms())))
}

/// For the CLI when Kevlar is not running: a ban written to the store, in force from the next start.
pub fn offline_ban(
    data_dir: &Path,
    addr: &str,
    dur: Option<Duration>,
    reason: Option<String>,
) -> Result<BookRecord, BookError> {
    let mut db = BookDb::open(data_dir)?;
    let key = IpKey::parse(addr, 64).map_err(BookError::Refused)?;
    let since = now_ms();
    let until = dur.map_or(i64::MAX, |d| since.saturating_add(d.as_millis().min(i64::MAX as u128) as i64));
    let reason = reason.unwrap_or_else(|| "manual ban".into());
    let ban = Ban { since_ms: since, until_ms: until, reason: reason.clone(), source: "manual".into(), enforced: true };
    db.save_ban(&key, &ban)?;
    let mut rec =
        db.load_record(&key)?.unwrap_or(Record { first_seen_ms: since, last_seen_ms: since, ..Default::default() });
    rec.bans.push_back(BanRecord { since_ms: since, until_ms: until, reason, source: "manual".into(), enforced: true });
    db.save_records(&[(key, rec.clone())], since)?;
    Ok(rec.view(&key, since))
}

/// For the CLI when Kevlar is not running. `Ok(false)`: there was no ban.
pub fn offline_unban(data_dir: &Path, addr: &str) -> Result<bool, BookError> {
    let mut db = BookDb::open(data_dir)?;
    let key = IpKey::parse(addr, 64).map_err(BookError::Refused)?;
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(i: u32) -> IpKey {
        IpKey::parse(&std::net::Ipv4Addr::from(i).to_string(), 64).unwrap()
    }

    #[test]
    fn a_flood_of_new_addresses_does_not_reset_a_brute_forcers_count() {
        let mut jails = Jails { windows: HashMap::new(), findtimes: vec![60_000, 86_400_000] };
        // The brute forcer, counting in the day-long jail; then a flood in the minute jail.
        for t in 0..4 {
            jails.count(1, key(7), 1_000 + t, 86_400_000);
        }
        // All within the minute: nothing has aged out, room is made by count.
        for i in 0..(MAX_TRACKED as u32 + 5_000) {
            jails.count(0, key(1_000_000 + i), 2_000_000 + i64::from(i) / 10, 60_000);
        }
        assert!(jails.windows.len() <= MAX_TRACKED);
        assert_eq!(jails.count(1, key(7), 3_000_000, 86_400_000), 5, "still counting: the 5th attempt");
        // Out of order (another instance's hit stamped later than a local event): kept sorted.
        let mut j = Jails { windows: HashMap::new(), findtimes: vec![1_000] };
        j.count(0, key(1), 5_000, 1_000);
        j.count(0, key(1), 4_500, 1_000);
        assert!(j.windows[&(0, key(1))].iter().is_sorted());
    }
}
