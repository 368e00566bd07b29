//! Logins and account changes, seen in the traffic: which requests are login attempts (configured
//! endpoints, or the common shapes), who they are for, how the app answered, and what follows —
//! the per-(user, address) lockout, slowing down a targeted account, credential stuffing from one
//! address, a site-wide spike, logins from a new network, changes right after one, sessions.
//!
//! Pure state behind one lock: requests and answers go in, events and decisions come out; the
//! shield publishes. Only the username is ever kept; the password is read to find the attempt and
//! dropped. Every table is bounded by `logins.max_tracked` and expires; a live lockout is never
//! evicted to make room.

use kevlar_core::action;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use base64::Engine;
use http::HeaderMap;
use ipnet::IpNet;
use kevlar_config::{ChangeKind, LoginEndpoint, LoginsConfig};
use kevlar_core::{Category, LoginAttempt, Outcome, RequestContext, RequestMeta, RequestView, SecurityEvent, Severity};

mod online;
mod recognise;
mod respond;
#[cfg(test)]
mod tests;
mod users;

pub use online::Online;
pub use respond::outcome;

/// The endpoint index of a login recognised by its body (any path).
pub const AUTO: usize = usize::MAX;
/// The endpoint index of `Authorization: Basic` / `Digest` credentials (any path, any method).
pub const BASIC: usize = usize::MAX - 1;
/// The change index of a password change recognised by its body (the current and a new password).
const RECOGNISED_CHANGE: usize = usize::MAX;

/// Where a login is expected: a 2xx answer with no other sign is a success here (elsewhere it
/// says nothing).
const AUTO_PATHS: &[&str] = &[
    "/login",
    "/signin",
    "/sign-in",
    "/sign_in",
    "/api/login",
    "/api/signin",
    "/auth/login",
    "/api/auth/login",
    "/session",
    "/sessions",
    "/api/session",
    "/api/sessions",
    "/users/sign_in",
    "/user/login",
    "/account/login",
];
const MAX_USER: usize = 128;
/// Identities kept from one login request; more than one makes it ambiguous.
pub(crate) const MAX_CANDIDATES: usize = 4;
/// Distinct failure addresses remembered per user.
const MAX_FAIL_ADDRS: usize = 32;
/// Networks remembered per user.
const MAX_NETS: usize = 20;

/// The response headers an app sends Kevlar; never forwarded to the client.
pub const EVENT_HEADER: &str = "kevlar-event";
pub const USER_EMAIL_HEADER: &str = "kevlar-user-email";

#[derive(Default)]
struct Pair {
    fails: u32,
    last_ms: i64,
    blocked_until: i64,
}

#[derive(Default)]
struct User {
    fails: VecDeque<i64>,
    /// Distinct addresses of the recent failures (up to `MAX_FAIL_ADDRS`), to say how many.
    fail_addrs: Vec<IpAddr>,
    nets: Vec<(IpNet, i64)>,
    email: Option<String>,
    /// (kind, when) of the last email about each kind of notice.
    notified: Vec<(&'static str, i64)>,
    /// The last login from a new network: when, from where.
    new_ip: Option<(i64, IpAddr)>,
    targeted_alerted_ms: i64,
    last_ms: i64,
}

#[derive(Default)]
struct Addr {
    /// (hash of the username, when) of recent failures, distinct users only.
    users: Vec<(u64, i64)>,
    alerted_until: i64,
    last_ms: i64,
}

#[derive(Default)]
struct Spike {
    minute: i64,
    count: u32,
    baseline: f64,
    minutes_seen: u32,
    alerted_until: i64,
}

#[derive(Default)]
struct State {
    pairs: HashMap<(String, IpAddr), Pair>,
    users: HashMap<String, User>,
    addrs: HashMap<IpAddr, Addr>,
    /// A session's users (one, or every identity of the ambiguous login that set it), and expiry.
    sessions: HashMap<[u8; 16], (Vec<String>, i64)>,
    /// Recognised logins whose answer said nothing (a 200 either way), per client, waiting for
    /// what the client does next: the same login again is a retry (it failed), going on to
    /// another page is navigation (it worked). With when it was answered.
    pending: HashMap<IpAddr, (Deferred, i64)>,
    spike: Spike,
}

/// A login whose outcome the answer's body tells, waiting for it.
#[derive(Debug)]
pub struct Deferred {
    endpoint: usize,
    users: Vec<String>,
    breached: Option<u64>,
    by_status: Option<bool>,
    status: u16,
    cookies: HeaderMap,
    ip: IpAddr,
    request_id: String,
    method: String,
    path: String,
    user_agent: Option<String>,
    app_email: Option<String>,
}

/// A browser's navigation to a page, not one of its subresources (a stylesheet the answer loads
/// is no sign that the login worked).
fn is_navigation(headers: &HeaderMap) -> bool {
    if let Some(mode) = headers.get("sec-fetch-mode").and_then(|v| v.to_str().ok()) {
        return mode.eq_ignore_ascii_case("navigate");
    }
    headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// How long a login whose answer said nothing waits for the client's next request.
const PENDING_MS: i64 = 120_000;

/// How much of an answer's body a body pattern is looked for in.
pub const BODY_SCAN: usize = 64 << 10;

/// What a request told the login monitor.
#[derive(Debug, Default)]
pub struct Seen {
    pub context: Option<RequestContext>,
    /// Refuse with 429 for this many seconds (a locked (user, address) pair).
    pub refuse_for: Option<u64>,
    pub delay: Option<std::time::Duration>,
    /// Headers for the request to the app (`Kevlar-Breached-Password`, `Kevlar-Breached-Count`).
    pub add_headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

pub struct Logins {
    cfg: LoginsConfig,
    enforce: bool,
    breach: Option<kevlar_breach::Index>,
    online: Option<std::sync::Arc<Online>>,
    /// Some login has set a session: only then are request cookies hashed and looked up.
    any_session: std::sync::atomic::AtomicBool,
    /// Some login waits for the client's next request to tell its outcome.
    any_pending: std::sync::atomic::AtomicBool,
    /// Two independently keyed SipHash states: a 128-bit keyed hash of cookie values and names.
    keys: (std::collections::hash_map::RandomState, std::collections::hash_map::RandomState),
    state: Mutex<State>,
}

/// Paths compared as routes are: case-insensitive, a trailing `/` ignored. No allocation (this
/// runs on every request).
fn same_path(a: &str, b: &str) -> bool {
    fn trim(p: &str) -> &str {
        match p.trim_end_matches('/') {
            "" => "/",
            t => t,
        }
    }
    trim(a).eq_ignore_ascii_case(trim(b))
}

fn clean_user(s: &str) -> Option<String> {
    let s: String = s.trim().chars().filter(|c| !c.is_control()).take(MAX_USER).collect();
    (!s.is_empty()).then_some(s)
}

/// A plain address a notice can go to: `local@domain`, the local part of letters, digits and
/// ``.!#$%&'*+/=?^_`{|}~-`` (no leading, trailing or double dot), the domain of two or more
/// letter-digit-hyphen labels. Display names, lists, quoting and IP literals are not addresses
/// here (`x@bad..test`, `a@b.test,1`, `a@b.test>x` are refused).
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    let dots_ok = |p: &str| !p.is_empty() && !p.starts_with('.') && !p.ends_with('.') && !p.contains("..");
    let local_ok = dots_ok(local)
        && local.len() <= 64
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = dots_ok(domain)
        && domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok
}

fn net_of(ip: IpAddr, v4: u8, v6: u8) -> IpNet {
    let p = if ip.is_ipv4() { v4 } else { v6 };
    IpNet::new(ip, p).map(|n| n.trunc()).unwrap_or_else(|_| IpNet::from(ip))
}

/// Keeps a table under `cap`: first drops what `weak` says may go, then what `strong` does not
/// keep alive; never what `strong` keeps (a live lockout). Returns whether there is room.
fn make_room<K: std::hash::Hash + Eq, V>(
    m: &mut HashMap<K, V>,
    cap: usize,
    weak: impl Fn(&V) -> bool,
    strong: impl Fn(&V) -> bool,
) -> bool {
    if m.len() < cap {
        return true;
    }
    m.retain(|_, v| !weak(v) || strong(v));
    if m.len() >= cap * 9 / 10 {
        m.retain(|_, v| strong(v));
    }
    m.len() < cap
}

impl Logins {
    /// With the breached-password index when there is one.
    pub fn with_breach_index(mut self, index: Option<kevlar_breach::Index>) -> Logins {
        self.breach = index;
        self
    }

    pub fn new(cfg: &LoginsConfig, enforce: bool) -> Logins {
        let online = cfg.breach_api.clone().and_then(Online::start);
        Logins {
            cfg: cfg.clone(),
            enforce,
            breach: None,
            online,
            any_session: std::sync::atomic::AtomicBool::new(false),
            any_pending: std::sync::atomic::AtomicBool::new(false),
            keys: Default::default(),
            state: Mutex::new(State::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    fn endpoint(&self, method: &str, path: &str) -> Option<(usize, Option<&LoginEndpoint>)> {
        if !self.cfg.endpoints.is_empty() {
            return self
                .cfg
                .endpoints
                .iter()
                .position(|e| e.method.eq_ignore_ascii_case(method) && same_path(&e.path, path))
                .map(|i| (i, self.cfg.endpoints.get(i)));
        }
        // Recognised by what the body sends, wherever it is sent.
        if self.cfg.auto
            && method.eq_ignore_ascii_case("POST")
            && !self.cfg.ignore.iter().any(|p| path.starts_with(p.as_str()))
        {
            return Some((AUTO, None));
        }
        None
    }

    /// Whether this request's body must be read for a login (so the proxy reads it ahead).
    pub fn wants_body(&self, method: &str, path: &str) -> bool {
        self.cfg.enabled && self.endpoint(method, path).is_some()
    }

    /// A login is expected here: a configured endpoint, or one of the usual login paths.
    pub fn expects_login(&self, method: &str, path: &str) -> bool {
        self.cfg.enabled
            && method.eq_ignore_ascii_case("POST")
            && if self.cfg.endpoints.is_empty() {
                self.cfg.auto && AUTO_PATHS.iter().any(|a| same_path(a, path))
            } else {
                self.endpoint(method, path).is_some()
            }
    }

    fn change(&self, method: &str, path: &str) -> Option<usize> {
        self.cfg.changes.iter().position(|c| c.method.eq_ignore_ascii_case(method) && same_path(&c.path, path))
    }

    /// A keyed 128-bit hash (the keys are random per process and never leave it): session values
    /// are kept only as this.
    fn hash(&self, s: &[u8]) -> [u8; 16] {
        use std::hash::BuildHasher;
        let (a, b) = (self.keys.0.hash_one(s), self.keys.1.hash_one(s));
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a.to_le_bytes());
        out[8..].copy_from_slice(&b.to_le_bytes());
        out
    }

    /// Whether a password is breached: the local index, then (when `breach_api` is set) what the
    /// range API said of it before. A hash the API has not been asked about yet is asked in the
    /// background: this attempt goes on unmarked, the next one with that password is marked.
    fn breached(&self, password: &[u8], now: i64) -> Option<kevlar_breach::Bucket> {
        if self.breach.is_none() && self.online.is_none() {
            return None;
        }
        let h = kevlar_breach::sha1(password);
        if let Some(b) = self.breach.as_ref().and_then(|i| i.lookup(&h)) {
            return Some(b);
        }
        let online = self.online.as_ref()?;
        match online.cached(&h, now) {
            Some(count) => count.map(|c| {
                if c >= kevlar_breach::OFTEN {
                    kevlar_breach::Bucket::Often
                } else {
                    kevlar_breach::Bucket::Seen
                }
            }),
            None => {
                online.ask(h);
                None
            }
        }
    }

    fn user_hash(&self, user: &str) -> u64 {
        let h = self.hash(user.to_lowercase().as_bytes());
        u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
    }

    /// Who a login request is for, and what `check` says of its password (the password itself
    /// goes no further than `check`). Every distinct value of every identifier field, in body
    /// order: apps differ in which one they read (`email || username`, the last of a repeated
    /// field), so when they disagree Kevlar cannot tell and keeps them all.
    fn credentials<T>(
        ep: &LoginEndpoint,
        view: &RequestView<'_>,
        check: impl Fn(&[u8]) -> Option<T>,
    ) -> Option<(Vec<String>, Option<T>)> {
        if ep.basic {
            return Self::authorization(view, check);
        }
        let users: Vec<&str> = ep.username.iter().map(String::as_str).collect();
        let passwords: Vec<&str> = ep.password.iter().map(String::as_str).collect();
        // The body read as the app reads it, by the same reader as logins recognised by shape.
        let (fields, _) = recognise::fields(view);
        let mut found: Vec<String> = Vec::new();
        let mut password = None;
        for (f, value) in &fields {
            if users.iter().any(|u| u.eq_ignore_ascii_case(f)) {
                if let Some(u) = clean_user(value) {
                    if found.len() < MAX_CANDIDATES && !found.iter().any(|x| x.to_lowercase() == u.to_lowercase()) {
                        found.push(u);
                    }
                }
            } else if password.is_none() && passwords.iter().any(|u| u.eq_ignore_ascii_case(f)) && !value.is_empty() {
                password = Some(check(value.as_bytes()));
            }
        }
        (!found.is_empty()).then_some((found, password?))
    }

    /// Credentials in `Authorization`: `Basic` (the user, and what `check` says of the password)
    /// or `Digest` (the user; the password never crosses the wire).
    fn authorization<T>(
        view: &RequestView<'_>,
        check: impl Fn(&[u8]) -> Option<T>,
    ) -> Option<(Vec<String>, Option<T>)> {
        let auth = view.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, rest) = auth.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
            let text = String::from_utf8_lossy(&raw);
            let (user, pass) = text.split_once(':')?;
            if pass.is_empty() {
                return None;
            }
            return clean_user(user).map(|u| (vec![u], check(pass.as_bytes())));
        }
        if scheme.eq_ignore_ascii_case("digest") {
            let params = kevlar_detect::body::multipart::params(&format!("x; {}", rest.replace(',', ";")));
            let user = params.iter().find(|(k, _)| k.eq_ignore_ascii_case("username"))?;
            return clean_user(&user.1).map(|u| (vec![u], None));
        }
        None
    }

    /// A login recognised by its body, on any path (see `recognise.rs`).
    fn recognised<T>(view: &RequestView<'_>, check: impl Fn(&[u8]) -> Option<T>) -> Recognised<T> {
        if view.body.is_empty() || !recognise::may_carry_password(view.body) {
            return Recognised::Nothing;
        }
        let (fields, how) = recognise::fields(view);
        match recognise::classify(&fields, clean_user) {
            (recognise::Shape::Login { users }, Some(pw)) => Recognised::Login(users, check(pw.as_bytes()), how),
            (recognise::Shape::PasswordChange, _) => Recognised::PasswordChange,
            _ => Recognised::Nothing,
        }
    }

    /// Keyed hashes of the request's session-like cookies (usually none or one).
    fn session_hashes(&self, headers: &HeaderMap) -> Vec<[u8; 16]> {
        let mut out = Vec::new();
        if !self.any_session.load(std::sync::atomic::Ordering::Relaxed) {
            return out;
        }
        for v in headers.get_all(http::header::COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            for pair in s.split(';') {
                let Some((k, val)) = pair.trim().split_once('=') else { continue };
                if !val.is_empty() && self.cfg.session_cookies.iter().any(|n| n == k) {
                    out.push(self.hash(val.as_bytes()));
                }
            }
        }
        out
    }

    fn session_users(hashes: &[[u8; 16]], now: i64, st: &State) -> Vec<String> {
        hashes
            .iter()
            .find_map(|h| st.sessions.get(h).filter(|(_, exp)| *exp > now).map(|(u, _)| u.clone()))
            .unwrap_or_default()
    }

    fn event(
        meta: &RequestMeta<'_>,
        action: &str,
        severity: Severity,
        outcome: Outcome,
        user: Option<&str>,
        message: String,
    ) -> SecurityEvent {
        let category = if action.starts_with("authn_") { Category::Authentication } else { Category::Iam };
        let mut ev = SecurityEvent::new(action, category, severity, message).with_outcome(outcome);
        ev.source_ip = Some(meta.ip);
        ev.http_method = Some(meta.method.to_owned());
        ev.url_path = Some(kevlar_core::event::capped(meta.path, 2048));
        ev.user_agent = meta.user_agent.map(|u| kevlar_core::event::capped(u, 512));
        ev.request_id = Some(meta.request_id.to_owned());
        ev.user_name = user.map(str::to_owned);
        ev
    }

    /// Adds a user notification to an event (an email to the user), throttled per user and kind.
    fn notify(&self, user: &mut User, name: &str, kind: &'static str, now: i64, ev: SecurityEvent) -> SecurityEvent {
        let to = user.email.clone().or_else(|| is_email(name).then(|| name.to_owned()));
        let Some(to) = to else { return ev };
        let every = self.cfg.notify_every.as_millis() as i64;
        if user.notified.iter().any(|(k, at)| *k == kind && *at > now - every) {
            return ev.with_kevlar("notify_throttled", true);
        }
        user.notified.retain(|(k, _)| *k != kind);
        user.notified.push((kind, now));
        ev.with_kevlar("notify_email", to).with_kevlar("notify", kind)
    }

    /// Looks at a request: a login attempt (and whether its pair is locked or its user slowed),
    /// an account change, the signed-in user.
    pub fn on_request(&self, meta: &RequestMeta<'_>, view: &RequestView<'_>, now: i64) -> Seen {
        let mut seen = Seen::default();
        if !self.cfg.enabled {
            return seen;
        }
        // Everything that needs no shared state first; most requests stop here, without the lock.
        let mut change = self.change(meta.method, meta.path);
        let sessions = self.session_hashes(view.headers);
        let check = |pw: &[u8]| self.breached(pw, now);
        let attempt = match self.endpoint(meta.method, meta.path) {
            Some((idx, Some(ep))) => Self::credentials(ep, view, check).map(|c| (idx, c, "a [[logins.endpoint]]")),
            Some((idx, None)) => match Self::recognised(view, check) {
                Recognised::Login(users, breached, how) => Some((idx, (users, breached), how)),
                Recognised::PasswordChange => {
                    change = change.or(Some(RECOGNISED_CHANGE));
                    None
                }
                Recognised::Nothing => None,
            },
            None => None,
        };
        // Credentials in `Authorization` are an attempt wherever they are sent.
        let attempt = attempt.or_else(|| {
            (self.cfg.auto && self.cfg.endpoints.is_empty())
                .then(|| Self::authorization(view, check))
                .flatten()
                .map(|c| (BASIC, c, "credentials in Authorization (Basic or Digest)"))
        });
        let waiting = self.any_pending.load(std::sync::atomic::Ordering::Relaxed);
        let navigation = waiting && is_navigation(view.headers);
        if change.is_none() && sessions.is_empty() && attempt.is_none() && !navigation {
            return seen;
        }
        let Ok(st) = self.state.lock() else { return seen };
        let session_candidates = Self::session_users(&sessions, now, &st);
        let session_user = (session_candidates.len() == 1).then(|| session_candidates[0].clone());
        let mut login = None;
        if let Some((idx, (users, breached), how)) = attempt {
            if let Some(bucket) = breached {
                seen.add_headers.push((
                    http::HeaderName::from_static("kevlar-breached-password"),
                    http::HeaderValue::from_static("1"),
                ));
                seen.add_headers.push((
                    http::HeaderName::from_static("kevlar-breached-count"),
                    http::HeaderValue::from_static(bucket.as_str()),
                ));
            }
            // Any identity the request names that is locked or slowed locks or slows it.
            for user in &users {
                let lower = user.to_lowercase();
                if let Some(p) = st.pairs.get(&(lower.clone(), meta.ip)) {
                    if p.blocked_until > now && self.enforce {
                        let left = ((p.blocked_until - now + 999) / 1000).max(1) as u64;
                        seen.refuse_for = Some(seen.refuse_for.map_or(left, |r| r.max(left)));
                    }
                }
                if let Some(u) = st.users.get(&lower) {
                    let day = now - 86_400_000;
                    let recent = u.fails.iter().filter(|t| **t > day).count() as u32;
                    if recent >= self.cfg.user_failures && self.enforce {
                        seen.delay = Some(self.cfg.user_delay);
                    }
                }
            }
            let breached = breached.map(|b| match b {
                kevlar_breach::Bucket::Seen => 1,
                kevlar_breach::Bucket::Often => kevlar_breach::OFTEN,
            });
            login = Some(LoginAttempt { endpoint: idx, users, how, breached });
        }
        if login.is_some() || !session_candidates.is_empty() || change.is_some() || navigation {
            seen.context = Some(RequestContext { login, session_user, session_candidates, change, navigation });
        }
        seen
    }
}

/// What the body of a request said, for the login monitor.
enum Recognised<T> {
    Login(Vec<String>, Option<T>, &'static str),
    PasswordChange,
    Nothing,
}
