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

pub mod db;
pub mod exclusions;
pub mod login;
pub mod ratelimit;
pub mod routes;
pub mod surface;
pub mod text;
pub mod watch;

use kevlar_core::action;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

use db::RoutesDb;
use kevlar_engine::book_db::DbError;
pub use kevlar_engine::correlator::{offline_ban, offline_list, offline_show, offline_unban, MAX_TRACKED};
/// What the black book's control calls fail with (the caller's mistake, or the store).
pub use kevlar_engine::BookError as ShieldError;
pub use kevlar_engine::{BanView, BookRecord, SampleView};
use kevlar_engine::{Correlator, IpKey};
use ratelimit::{Global, Keyed};
use routes::Inventory;

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
    /// The black book, jails and bans (crates/engine); the gate reads its ban table.
    correlator: Arc<Correlator>,
    global: Option<Global>,
    per_ip: Option<Keyed<IpKey>>,
    paths: Vec<(String, Keyed<IpKey>)>,
    /// Taken out on shutdown so the event queues can close.
    bus: std::sync::RwLock<Option<Bus>>,
    routes: Mutex<Inventory>,
    notfound: Mutex<HashMap<IpKey, (u32, i64)>>,
    routes_db: Mutex<Option<RoutesDb>>,
    counters: Counters,
    logins: login::Logins,
    /// The app's stacks and the paths it serves, learned from its answers.
    surface: surface::Surface,
    /// Probe events of servable rules held until the answer says whether the path is the app's
    /// own, by request id (at most one per request in flight).
    pending: Mutex<HashMap<String, SecurityEvent>>,
    /// Fields that carry prose or code, configured and learned.
    text: text::FreeText,
    /// Requests whose only findings were weak, by request id: the fields, for learning from the
    /// answer.
    weak: Mutex<HashMap<String, Vec<u64>>>,
    /// Entries in `pending` and `weak` (read without their locks on every answer).
    pending_n: std::sync::atomic::AtomicUsize,
    /// Exclusions added while running (the dashboard), beside the configured ones.
    exclusions: exclusions::Store,
}

/// A cheap handle: the proxy's gate, the admin API's control, the correlator's state.
#[derive(Clone)]
pub struct Shield {
    inner: Arc<Inner>,
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

/// The built-in detectors as `[detect]` configures them (families switched off, extra headers,
/// declared stacks), and each family's own mode.
pub fn inspector(d: &kevlar_config::DetectConfig) -> (Inspector, HashMap<Family, Mode>) {
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
        stacks: d.stack.iter().filter_map(|n| kevlar_detect::probe::Stack::parse(n)).collect(),
    });
    (inspector, family_modes)
}

impl Shield {
    /// Builds the shield from the configuration, and reloads bans and routes from
    /// `<data_dir>/shield.db`.
    pub fn new(cfg: &Config, bus: Bus) -> Result<Shield, DbError> {
        let d = &cfg.detect;
        let (inspector, family_modes) = inspector(d);
        let surface = surface::Surface::new(&d.stack);
        let enforce_auto = cfg.bans.enforce.unwrap_or(d.mode == Mode::Block);
        let correlator = Correlator::open(cfg, bus.clone(), enforce_auto)?;
        let routes_db = RoutesDb::open(&cfg.data_dir)?;
        let mut inv = Inventory::new(cfg.routes.max_routes);
        for (k, r) in routes_db.load_routes()? {
            inv.insert(k, r);
        }
        let rl = &cfg.ratelimit;
        let inner = Inner {
            inspector,
            family_modes,
            correlator,
            global: rl.global.map(Global::new),
            per_ip: rl.per_ip.map(|r| Keyed::new(r, MAX_TRACKED)),
            paths: rl.paths.iter().map(|p| (p.prefix.clone(), Keyed::new(p.rate, MAX_TRACKED))).collect(),
            bus: std::sync::RwLock::new(Some(bus)),
            routes: Mutex::new(inv),
            notfound: Mutex::new(HashMap::new()),
            routes_db: Mutex::new(Some(routes_db)),
            counters: Counters::default(),
            logins: login::Logins::new(&cfg.logins, enforce_auto).with_breach_index(breach_index(&cfg.data_dir)),
            surface,
            pending: Mutex::new(HashMap::new()),
            text: text::FreeText::new(&d.text, d.learn_text),
            weak: Mutex::new(HashMap::new()),
            pending_n: Default::default(),
            exclusions: exclusions::Store::open(&cfg.data_dir),
            cfg: cfg.clone(),
        };
        Ok(Shield { inner: Arc::new(inner) })
    }

    pub fn key(&self, ip: IpAddr) -> IpKey {
        self.inner.correlator.key(ip)
    }

    /// The black book and bans behind this shield (for `[cluster]` to share them).
    pub fn correlator(&self) -> Arc<Correlator> {
        self.inner.correlator.clone()
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.inner.correlator.allowed(ip)
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
        self.inner.cfg.detect.exclude.iter().any(|x| exclusions::matches(x, path, f))
            || self.inner.exclusions.any(path, f)
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

    /// Starts the correlator (`kevlar_engine::Correlator`) on its own thread, reading `rx` until
    /// the bus closes; the route inventory is saved on its tick.
    pub fn start_correlator(&self, rx: mpsc::Receiver<Envelope>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        self.inner.correlator.start(rx, move || me.save_routes())
    }

    /// Every second (on the correlator's thread): the route inventory, when changed, to the store.
    fn save_routes(&self) {
        let routes = self.inner.routes.lock().ok().and_then(|mut r| {
            if !r.dirty {
                return None;
            }
            r.dirty = false;
            Some(r.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>())
        });
        let Some(routes) = routes else { return };
        if let Ok(mut db) = self.inner.routes_db.lock() {
            if let Some(db) = db.as_mut() {
                if let Err(e) = db.save_routes(routes.iter().map(|(k, v)| (k, v))) {
                    tracing::warn!(error = %kevlar_core::error::chain(&e), "routes: cannot save");
                }
            }
        }
    }

    // ---- control: the admin API and the CLI (the black book's, through the correlator) ----

    /// Bans `addr` by hand (always enforced). `None`: until lifted.
    pub fn manual_ban(
        &self,
        addr: &str,
        dur: Option<Duration>,
        reason: Option<String>,
    ) -> Result<kevlar_engine::BookRecord, ShieldError> {
        self.inner.correlator.manual_ban(addr, dur, reason)
    }

    /// Lifts a ban. `Ok(false)` when the address was not banned.
    pub fn unban(&self, addr: &str) -> Result<bool, ShieldError> {
        self.inner.correlator.unban(addr)
    }

    /// The black book, most recently seen first (after writing pending changes).
    pub fn list(&self, limit: usize, banned_only: bool) -> Result<Vec<kevlar_engine::BookRecord>, ShieldError> {
        self.inner.correlator.list(limit, banned_only)
    }

    pub fn show(&self, addr: &str) -> Result<Option<kevlar_engine::BookRecord>, ShieldError> {
        self.inner.correlator.show(addr)
    }

    /// The exclusions added while running (`<data-dir>/exclusions.json`).
    pub fn exclusions(&self) -> Vec<exclusions::Added> {
        self.inner.exclusions.list()
    }

    /// The exclusions of `[[detect.exclude]]` in the configuration.
    pub fn configured_exclusions(&self) -> &[kevlar_config::Exclusion] {
        &self.inner.cfg.detect.exclude
    }

    /// Adds an exclusion that applies from the next request on, and keeps it.
    pub fn add_exclusion(
        &self,
        rule: kevlar_config::Exclusion,
        event_id: Option<String>,
    ) -> Result<exclusions::Added, exclusions::ExclusionError> {
        self.inner.exclusions.add(rule, event_id)
    }

    pub fn remove_exclusion(&self, id: &str) -> Result<bool, exclusions::ExclusionError> {
        self.inner.exclusions.remove(id)
    }

    pub fn routes(&self) -> Vec<routes::RouteView> {
        let now = now_ms();
        let stale = self.inner.cfg.routes.stale_after.as_millis() as i64;
        match self.inner.routes.lock() {
            Ok(r) => routes::report(r.iter(), now, stale),
            Err(_) => Vec::new(),
        }
    }

    pub fn status(&self) -> Value {
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (pairs, users, addresses, sessions) = self.inner.logins.sizes();
        let logins = json!({ "pairs": pairs, "users": users, "addresses": addresses, "sessions": sessions });
        json!({
            "mode": self.inner.cfg.detect.mode.as_str(),
            "bans_enforced": self.inner.correlator.enforces_auto(),
            "inspected": g(&c.inspected),
            "flagged": g(&c.flagged),
            "blocked": g(&c.blocked),
            "refused_banned": g(&c.refused_banned),
            "refused_rate_limited": g(&c.refused_rate),
            "active_bans": self.inner.correlator.active_bans(),
            "blackbook_in_memory": self.inner.correlator.in_memory(),
            "routes": self.inner.routes.lock().map(|r| r.len()).unwrap_or(0),
            "logins": logins,
            "stack": self.inner.surface.status(),
            "text_fields_learned": self.inner.text.learned(),
        })
    }

    /// A login seen outside the proxy (`[[watch]]` logs): the same lockout, stuffing and
    /// new-network rules; its events carry `kevlar.service`.
    pub fn external_login(&self, service: &str, ip: IpAddr, user: Option<&str>, ok: bool) {
        for ev in self.inner.logins.external(service, ip, user, ok, now_ms()) {
            self.publish(ev);
        }
    }

    /// `[cluster]`: another instance's failed login for this (user, address) pair.
    pub fn remote_login_failure(&self, user: &str, ip: IpAddr) {
        self.inner.logins.remote_failure(user, ip, now_ms());
    }

    /// `[cluster]`: another instance locked this (user, address) pair for `secs`.
    pub fn remote_pair_lock(&self, user: &str, ip: IpAddr, secs: u64) {
        self.inner.logins.remote_lock(user, ip, secs, now_ms());
    }

    /// Writes everything pending and lets go of the event bus; call on shutdown.
    pub fn close(&self) {
        self.inner.correlator.close();
        self.save_routes();
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
        findings.retain(|f| {
            !self.excluded(meta.path, f)
                && !inner.surface.is_own(f, meta.path)
                && !inner.text.is_text(meta.method, meta.path, f)
        });
        if findings.is_empty() {
            return Verdict::ALLOW;
        }
        if inner.text.teaches(&findings) {
            let fields = findings.iter().map(|f| inner.text.key(meta.method, meta.path, f)).collect();
            self.hold_weak(meta.request_id, fields);
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
            // How the value was reached: the layers undone and what the family's reading saw.
            if !top.layers.is_empty() {
                ev = ev.with_kevlar("decoding", top.layers.clone());
            }
            if !top.detail.is_empty() {
                ev = ev.with_kevlar("reading", top.detail.as_str());
            }
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
            // A path that only looks like a probe waits for the app's answer (monitor mode).
            let servable =
                |f: &&Finding| kevlar_detect::probe::SERVABLE_RULES.contains(&f.rule) && f.location == "path";
            if action == action::MALICIOUS_PROBE && !blocked && group.iter().all(servable) {
                self.hold(meta.request_id, ev);
                continue;
            }
            self.publish(ev);
        }
        if block {
            inner.counters.blocked.fetch_add(1, Ordering::Relaxed);
            return Verdict::new(Decision::Refuse { status: 403, reason: "attack_blocked" }, true);
        }
        Verdict::new(Decision::Allow, true)
    }

    /// Holds a probe event until [`Gate::observe`] sees the answer.
    fn hold(&self, request_id: &str, ev: SecurityEvent) {
        let Ok(mut p) = self.inner.pending.lock() else { return self.publish(ev) };
        if p.len() >= MAX_TRACKED {
            // Answers that never came (cannot happen: every request is observed); publish them.
            for (_, ev) in p.drain() {
                self.inner.pending_n.fetch_sub(1, Ordering::Relaxed);
                self.publish(ev);
            }
        }
        if p.insert(request_id.to_owned(), ev).is_none() {
            self.inner.pending_n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Remembers a request whose findings were all weak until its answer.
    fn hold_weak(&self, request_id: &str, fields: Vec<u64>) {
        let Ok(mut w) = self.inner.weak.lock() else { return };
        if w.len() >= MAX_TRACKED {
            self.inner.pending_n.fetch_sub(w.len(), Ordering::Relaxed);
            w.clear();
        }
        if w.insert(request_id.to_owned(), fields).is_none() {
            self.inner.pending_n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The answer to a request whose probe event was held: the app's own path, or a probe.
    fn resolve(&self, meta: &RequestMeta<'_>, status: u16) {
        let fields = self.inner.weak.lock().ok().and_then(|mut w| w.remove(meta.request_id));
        if let Some(fields) = fields {
            self.inner.pending_n.fetch_sub(1, Ordering::Relaxed);
            self.inner.text.answered(&fields, self.key(meta.ip), status);
        }
        let ev = match self.inner.pending.lock() {
            Ok(mut p) => {
                let ev = p.remove(meta.request_id);
                if ev.is_some() {
                    self.inner.pending_n.fetch_sub(1, Ordering::Relaxed);
                }
                ev
            }
            Err(_) => None,
        };
        let Some(mut ev) = ev else { return };
        let surface = &self.inner.surface;
        surface.answered(meta.path, self.key(meta.ip), status);
        if (200..300).contains(&status) && surface.owns(meta.path) {
            return;
        }
        ev.status_code = Some(status);
        self.publish(ev);
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
            layers: Vec::new(),
            detail: String::new(),
        }])
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
        if inner.correlator.allows_any() && self.allowed(meta.ip) {
            return Ok(());
        }
        let key = self.key(meta.ip);
        let now = now_ms();
        if let Some(until) = inner.correlator.banned_until(&key, now) {
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
        self.inner.surface.learn_headers(headers);
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
        if flagged && inner.pending_n.load(Ordering::Relaxed) > 0 {
            self.resolve(meta, status);
        }
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

/// For the CLI when Kevlar is not running: the stored route inventory.
pub fn offline_routes(data_dir: &Path, stale_after: Duration) -> Result<Vec<routes::RouteView>, ShieldError> {
    let db = RoutesDb::open(data_dir)?;
    let routes = db.load_routes()?;
    Ok(routes::report(routes.iter().map(|(k, v)| (k, v)), now_ms(), stale_after.as_millis() as i64))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_config_knows_every_detector_family() {
        let names: Vec<&str> = kevlar_detect::Family::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(names, kevlar_config::FAMILIES, "kevlar_config::FAMILIES must list kevlar_detect::Family::ALL");
    }
}
