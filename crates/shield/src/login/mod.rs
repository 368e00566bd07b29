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
use kevlar_detect::extract::{self, Part, Source};

mod recognise;

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
        let ct = view.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut parts: Vec<Part<'_>> = Vec::new();
        let mut owned: Vec<Part<'static>> = Vec::new();
        // A body without a (JSON) type that is JSON all the same is read as apps read it.
        if ct.contains("json") || view.body.trim_ascii_start().starts_with(b"{") {
            extract::json(view.body, &mut owned);
        } else {
            extract::form(view.body, "body", Source::Body, &mut parts);
        }
        let field = |p: &Part<'_>| -> String {
            if p.location.is_empty() {
                p.name.to_string()
            } else {
                p.location.strip_prefix("body.").unwrap_or(&p.location).to_owned()
            }
        };
        let all = parts.iter().chain(owned.iter());
        let mut found: Vec<String> = Vec::new();
        let mut password = None;
        for p in all {
            let f = field(p);
            if users.iter().any(|u| u.eq_ignore_ascii_case(&f)) {
                if let Some(u) = clean_user(&p.value) {
                    if found.len() < MAX_CANDIDATES && !found.iter().any(|x| x.to_lowercase() == u.to_lowercase()) {
                        found.push(u);
                    }
                }
            } else if password.is_none() && passwords.iter().any(|u| u.eq_ignore_ascii_case(&f)) && !p.value.is_empty()
            {
                password = Some(check(p.value.as_bytes()));
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

    /// Looks at the head of the app's answer: the login outcome, the app's own `Kevlar-Event`
    /// reports and `Kevlar-User-Email` (both removed), a session set, an account change.
    pub fn on_response(
        &self,
        meta: &RequestMeta<'_>,
        ctx: Option<&RequestContext>,
        status: u16,
        headers: &mut HeaderMap,
        now: i64,
    ) -> Vec<SecurityEvent> {
        let mut deferred = None;
        let mut out = self.on_response_full(meta, ctx, status, headers, now, &mut deferred);
        if let Some(d) = deferred {
            out.extend(self.finish(d, b"", now));
        }
        out
    }

    /// As [`Logins::on_response`]; when the endpoint's outcome is told by its body
    /// (`success_body`, `failure_body`), the decision waits in `deferred` for [`Logins::finish`].
    pub fn on_response_full(
        &self,
        meta: &RequestMeta<'_>,
        ctx: Option<&RequestContext>,
        status: u16,
        headers: &mut HeaderMap,
        now: i64,
        deferred: &mut Option<Deferred>,
    ) -> Vec<SecurityEvent> {
        let mut out = Vec::new();
        let reported: Vec<String> =
            headers.get_all(EVENT_HEADER).iter().filter_map(|v| v.to_str().ok().map(str::to_owned)).collect();
        let app_email = headers.get(USER_EMAIL_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        headers.remove(EVENT_HEADER);
        headers.remove(USER_EMAIL_HEADER);
        let nothing = ctx.is_none_or(|c| c.login.is_none() && c.change.is_none());
        let waiting = self.any_pending.load(std::sync::atomic::Ordering::Relaxed);
        if !self.cfg.enabled || (reported.is_empty() && nothing && !waiting) {
            return out;
        }
        let Ok(mut st) = self.state.lock() else { return out };
        if waiting {
            self.settle_pending(&mut st, meta, ctx, status, now, &mut out);
        }
        let session_user = ctx.and_then(|c| c.session_user.clone());

        // What the app reported itself.
        let mut reported_login: Option<(String, bool)> = None;
        for r in &reported {
            let mut fields = r.split(';').map(str::trim);
            let action = fields.next().unwrap_or("").to_ascii_lowercase();
            if !kevlar_core::event::is_valid_action(&action) {
                continue;
            }
            let mut user = session_user.clone();
            let mut outcome = Outcome::Unknown;
            let mut message = None;
            for f in fields {
                let Some((k, v)) = f.split_once('=') else { continue };
                let v = kevlar_detect::normalize::percent(v.trim().trim_matches('"'));
                match k.trim() {
                    "user" => user = clean_user(&v),
                    "outcome" if v == "success" => outcome = Outcome::Success,
                    "outcome" if v == "failure" => outcome = Outcome::Failure,
                    "message" => message = Some(kevlar_core::event::capped(&v, 512)),
                    _ => {}
                }
            }
            match (action.as_str(), &user) {
                (action::AUTHN_LOGIN_SUCCESS, Some(u)) => reported_login = Some((u.clone(), true)),
                (action::AUTHN_LOGIN_FAIL, Some(u)) => reported_login = Some((u.clone(), false)),
                _ => {
                    let severity = if action.starts_with("malicious_") { Severity::Warning } else { Severity::Info };
                    let msg = message.unwrap_or_else(|| format!("{action} reported by the app"));
                    out.push(
                        Self::event(meta, &action, severity, outcome, user.as_deref(), msg)
                            .with_kevlar("reported_by", "app_header"),
                    );
                }
            }
        }

        let attempt = ctx.and_then(|c| c.login.as_ref());
        let login = match (reported_login, attempt) {
            // The app said who it was: that wins over what the request named.
            (Some((u, ok)), _) => Some((vec![u], Some(ok), true, attempt.and_then(|a| a.breached))),
            (None, Some(a)) if a.endpoint == BASIC => {
                // Credentials in a header: 401 is a failure; a success is worth telling only when
                // it ends a run of failures or comes from a new network (not every API call).
                let by_status = match status {
                    401 => Some(false),
                    200..=399 => {
                        let news = a.users.iter().any(|u| {
                            let lower = u.to_lowercase();
                            st.pairs.get(&(lower.clone(), meta.ip)).is_some_and(|p| p.fails > 0)
                                || st
                                    .users
                                    .get(&lower)
                                    .is_none_or(|x| !x.nets.iter().any(|(n, _)| n.contains(&meta.ip)))
                        });
                        news.then_some(true)
                    }
                    _ => None,
                };
                Some((a.users.clone(), by_status, false, a.breached))
            }
            (None, Some(a)) => {
                let ep = (a.endpoint < self.cfg.endpoints.len()).then(|| self.cfg.endpoints.get(a.endpoint)).flatten();
                let by_status = outcome(ep, meta.path, status, headers);
                // A recognised login answered 2xx: its body says how it went.
                let auto_body = ep.is_none() && by_status == Some(true) && (200..300).contains(&status);
                let by_body = ep.is_some_and(|e| e.success_body.is_some() || e.failure_body.is_some());
                if by_status.is_some() && (by_body || auto_body) {
                    let mut cookies = HeaderMap::new();
                    for v in headers.get_all(http::header::SET_COOKIE) {
                        cookies.append(http::header::SET_COOKIE, v.clone());
                    }
                    *deferred = Some(Deferred {
                        endpoint: a.endpoint,
                        users: a.users.clone(),
                        breached: a.breached,
                        by_status,
                        status,
                        cookies,
                        ip: meta.ip,
                        request_id: meta.request_id.to_owned(),
                        method: meta.method.to_owned(),
                        path: meta.path.to_owned(),
                        user_agent: meta.user_agent.map(str::to_owned),
                        app_email: app_email.clone(),
                    });
                    None
                } else {
                    Some((a.users.clone(), by_status, false, a.breached))
                }
            }
            _ => None,
        };
        if let Some((users, Some(ok), by_app, breached)) = login {
            self.apply(
                &mut st,
                meta,
                &users,
                ok,
                by_app,
                breached,
                status,
                headers,
                app_email.as_deref(),
                now,
                &mut out,
            );
        }

        // An account change by the signed-in user (or, after an ambiguous login, by one of the
        // identities it named: each is told to the owner, none to the user).
        let candidates = ctx.map(|c| c.session_candidates.as_slice()).unwrap_or_default();
        if let (Some(ci), false, true) =
            (ctx.and_then(|c| c.change), candidates.is_empty(), (200..300).contains(&status))
        {
            let recognised = (ci == RECOGNISED_CHANGE).then(|| kevlar_config::AccountChange {
                method: meta.method.to_owned(),
                path: meta.path.to_owned(),
                kind: ChangeKind::Password,
            });
            if let Some(ch) = recognised.or_else(|| self.cfg.changes.get(ci).cloned()) {
                let ambiguous = candidates.len() > 1;
                for user in candidates {
                    self.change_by(&mut st, meta, user, &ch, ambiguous, app_email.as_deref(), now, &mut out);
                }
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn change_by(
        &self,
        st: &mut State,
        meta: &RequestMeta<'_>,
        user: &str,
        ch: &kevlar_config::AccountChange,
        ambiguous: bool,
        app_email: Option<&str>,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
        let takeover_window = self.cfg.takeover_window.as_millis() as i64;
        let u = self.user_mut(st, user, now);
        let (action, what) = match ch.kind {
            ChangeKind::Email => (action::USER_UPDATED, "email address"),
            ChangeKind::Password => (action::AUTHN_PASSWORD_CHANGE, "password"),
            ChangeKind::Profile => (action::USER_UPDATED, "profile"),
        };
        let mut ev = Self::event(
            meta,
            action,
            Severity::Notice,
            Outcome::Success,
            Some(user),
            format!("{user} changed their {what}"),
        )
        .with_kevlar("change", ch.kind.as_str());
        if ambiguous {
            ev = ev.with_kevlar("ambiguous", true);
        }
        let kind = match ch.kind {
            ChangeKind::Email => "email_changed",
            ChangeKind::Password => "password_changed",
            ChangeKind::Profile => "profile_changed",
        };
        let recent_new_ip = u.new_ip.filter(|(at, _)| now - at <= takeover_window);
        let ev = if ch.kind == ChangeKind::Profile || ambiguous { ev } else { self.notify(u, user, kind, now, ev) };
        out.push(ev);
        if let (Some((at, from)), ChangeKind::Email | ChangeKind::Password) = (recent_new_ip, ch.kind) {
            out.push(
                Self::event(
                    meta,
                    action::AUTHN_ACCOUNT_TAKEOVER,
                    Severity::Alert,
                    Outcome::Unknown,
                    Some(user),
                    format!(
                        "possible account takeover: {user} changed their {what} {} min after signing in from a new network ({from})",
                        (now - at) / 60_000
                    ),
                )
                .with_kevlar("change", ch.kind.as_str())
                .with_kevlar("new_ip", from.to_string()),
            );
        }
        if ch.kind == ChangeKind::Email && !ambiguous {
            if let Some(e) = app_email.filter(|e| is_email(e)) {
                u.email = Some(e.to_owned());
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        st: &mut State,
        meta: &RequestMeta<'_>,
        users: &[String],
        ok: bool,
        by_app: bool,
        breached: Option<u64>,
        status: u16,
        headers: &HeaderMap,
        app_email: Option<&str>,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
        // The app's `Kevlar-User-Email` naming one of the identities says which one it read.
        let told = app_email.and_then(|e| users.iter().find(|u| u.eq_ignore_ascii_case(e)));
        let users = match (users.len() > 1, told) {
            (true, Some(u)) => std::slice::from_ref(u),
            _ => users,
        };
        let ambiguous = users.len() > 1;
        if ambiguous {
            // Kevlar cannot know which of these the app reads: a finding of its own.
            let list = users.join(", ");
            out.push(
                Self::event(
                    meta,
                    action::AUTHN_LOGIN_AMBIGUOUS,
                    Severity::Warning,
                    if ok { Outcome::Success } else { Outcome::Failure },
                    None,
                    format!(
                        "a sign-in named {} different users ({list}); it counts for each and no user is told",
                        users.len()
                    ),
                )
                .with_kevlar("users", users.to_vec()),
            );
        }
        if let (Some(e), [user]) = (app_email.filter(|e| is_email(e)), users) {
            self.user_mut(st, user, now).email = Some(e.to_owned());
        }
        if ok {
            self.success(st, meta, users, status, headers, by_app, breached, now, out);
        } else {
            self.failure(st, meta, users, status, by_app, now, out);
            if let Some(count) = breached {
                for user in users {
                    out.push(
                        Self::event(
                            meta,
                            action::AUTHN_PASSWORD_BREACHED,
                            Severity::Notice,
                            Outcome::Failure,
                            Some(user),
                            format!("failed sign-in for {user} with a password found in data breaches"),
                        )
                        .with_kevlar("breach_count", if count >= kevlar_breach::OFTEN { "100+" } else { "1+" }),
                    );
                }
            }
        }
    }

    /// Decides a deferred login with the first bytes of its answer's body.
    pub fn finish(&self, d: Deferred, body: &[u8], now: i64) -> Vec<SecurityEvent> {
        let mut out = Vec::new();
        let ok = match self.cfg.endpoints.get(d.endpoint) {
            Some(ep) => {
                let has = |pat: &Option<String>| {
                    pat.as_ref().map(|p| body.windows(p.len().max(1)).any(|w| w == p.as_bytes()))
                };
                match (has(&ep.failure_body), has(&ep.success_body)) {
                    (Some(true), _) => false,
                    (_, Some(found)) => found,
                    _ => d.by_status.unwrap_or(false),
                }
            }
            None => match answer_says(body, &d.cookies, &self.cfg.session_cookies) {
                Some(ok) => ok,
                // Nothing in the answer says: a success where a login is expected; elsewhere,
                // what the client does next tells.
                None if AUTO_PATHS.iter().any(|p| same_path(p, &d.path)) => true,
                None => {
                    let Ok(mut st) = self.state.lock() else { return out };
                    self.wait_for_next(&mut st, d, now, &mut out);
                    return out;
                }
            },
        };
        let Ok(mut st) = self.state.lock() else { return out };
        self.apply_deferred(&mut st, &d, ok, now, &mut out);
        out
    }

    /// Decides a login that waited (for its answer's body, or the client's next request).
    fn apply_deferred(&self, st: &mut State, d: &Deferred, ok: bool, now: i64, out: &mut Vec<SecurityEvent>) {
        let meta = RequestMeta {
            ip: d.ip,
            request_id: &d.request_id,
            method: &d.method,
            path: &d.path,
            query: None,
            user_agent: d.user_agent.as_deref(),
        };
        self.apply(st, &meta, &d.users, ok, false, d.breached, d.status, &d.cookies, d.app_email.as_deref(), now, out);
    }

    /// Keeps a login whose answer said nothing until the client's next request. A login already
    /// waiting for this client on the same path was retried: it failed.
    fn wait_for_next(&self, st: &mut State, d: Deferred, now: i64, out: &mut Vec<SecurityEvent>) {
        if let Some((prev, _)) = st.pending.remove(&d.ip) {
            if same_path(&prev.path, &d.path) {
                self.decide_pending(st, prev, false, "retry", now, out);
            }
        }
        let cap = self.cfg.max_tracked;
        if make_room(&mut st.pending, cap, |(_, at)| *at < now - PENDING_MS, |_| false) {
            st.pending.insert(d.ip, (d, now));
            self.any_pending.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The next request of a client with a login waiting: the same login again (a retry) means
    /// it failed; a page elsewhere answered 2xx/3xx (navigation) means it worked.
    fn settle_pending(
        &self,
        st: &mut State,
        meta: &RequestMeta<'_>,
        ctx: Option<&RequestContext>,
        status: u16,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
        let Some((p, at)) = st.pending.get(&meta.ip) else { return };
        let retry = ctx.is_some_and(|c| c.login.is_some()) && same_path(&p.path, meta.path);
        let navigation = !retry
            && ctx.is_some_and(|c| c.navigation)
            && meta.method.eq_ignore_ascii_case("GET")
            && (200..400).contains(&status);
        let expired = now - at > PENDING_MS;
        if retry {
            // Left for `wait_for_next`, which sees the retry's own answer.
            return;
        }
        if navigation || expired {
            if let Some((p, _)) = st.pending.remove(&meta.ip) {
                if navigation && !expired {
                    self.decide_pending(st, p, true, "navigation", now, out);
                }
            }
        }
        if st.pending.is_empty() {
            self.any_pending.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn decide_pending(&self, st: &mut State, d: Deferred, ok: bool, by: &str, now: i64, out: &mut Vec<SecurityEvent>) {
        let start = out.len();
        self.apply_deferred(st, &d, ok, now, out);
        for e in &mut out[start..] {
            e.kevlar.insert("outcome_by".into(), serde_json::Value::String(by.to_owned()));
        }
    }

    fn user_mut<'s>(&self, st: &'s mut State, user: &str, now: i64) -> &'s mut User {
        let key = user.to_lowercase();
        if !st.users.contains_key(&key) {
            let day = now - 86_400_000;
            make_room(&mut st.users, self.cfg.max_tracked, |u| u.last_ms < day, |_| false);
        }
        let u = st.users.entry(key).or_default();
        u.last_ms = now;
        u
    }

    /// A successful login. When it named several identities (`users.len() > 1`) each gets the
    /// events, none a notice; the lockouts of none are lifted and the network is learned for none
    /// (a success as the attacker's own account must not vouch for the victim's).
    #[allow(clippy::too_many_arguments)]
    fn success(
        &self,
        st: &mut State,
        meta: &RequestMeta<'_>,
        users: &[String],
        status: u16,
        headers: &HeaderMap,
        by_app: bool,
        breached: Option<u64>,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
        let ambiguous = users.len() > 1;
        // The session the answer sets belongs to this user (these users) from now on.
        let cookies: Vec<(String, String)> = headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next()?.trim().split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let session = cookies
            .iter()
            .find(|(k, _)| self.cfg.session_cookies.iter().any(|n| n == k))
            .or_else(|| (cookies.len() == 1).then(|| &cookies[0]));
        if let Some((_, value)) = session {
            let cap = self.cfg.max_tracked;
            if make_room(&mut st.sessions, cap, |(_, exp)| *exp <= now, |_| false) {
                st.sessions.insert(self.hash(value.as_bytes()), (users.to_vec(), now + 7 * 86_400_000));
                self.any_session.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let (v4, v6) = (self.cfg.new_ip_prefix_v4, self.cfg.new_ip_prefix_v6);
        let net = net_of(meta.ip, v4, v6);
        for user in users {
            let user = user.as_str();
            if !ambiguous {
                st.pairs.remove(&(user.to_lowercase(), meta.ip));
            }
            let mut ev = Self::event(
                meta,
                action::AUTHN_LOGIN_SUCCESS,
                Severity::Info,
                Outcome::Success,
                Some(user),
                format!("{user} signed in"),
            );
            ev.status_code = Some(status);
            if by_app {
                ev = ev.with_kevlar("reported_by", "app_header");
            }
            if let Some((name, _)) = session {
                ev = ev.with_kevlar("session_cookie", name.clone());
            }
            if ambiguous {
                ev = ev.with_kevlar("ambiguous", true);
            }
            let u = self.user_mut(st, user, now);
            let known = u.nets.iter().any(|(n, _)| n.contains(&meta.ip));
            let first = u.nets.is_empty();
            if known {
                if let Some(e) = u.nets.iter_mut().find(|(n, _)| n.contains(&meta.ip)) {
                    e.1 = now;
                }
            } else if !ambiguous {
                if u.nets.len() >= MAX_NETS {
                    if let Some(oldest) = u.nets.iter().enumerate().min_by_key(|(_, (_, t))| *t).map(|(i, _)| i) {
                        u.nets.remove(oldest);
                    }
                }
                u.nets.push((net, now));
            }
            out.push(ev);
            if !known && !first {
                u.new_ip = Some((now, meta.ip));
                let mut ev = Self::event(
                    meta,
                    action::AUTHN_LOGIN_NEW_IP,
                    Severity::Warning,
                    Outcome::Success,
                    Some(user),
                    format!("{user} signed in from a new network ({net})"),
                )
                .with_kevlar("network", net.to_string());
                if ambiguous {
                    ev = ev.with_kevlar("ambiguous", true);
                } else {
                    ev = self.notify(u, user, "new_ip", now, ev);
                }
                out.push(ev);
            }
            if let Some(count) = breached {
                let ev = Self::event(
                    meta,
                    action::AUTHN_PASSWORD_BREACHED,
                    Severity::Warning,
                    Outcome::Success,
                    Some(user),
                    format!("{user} signed in with a password found in data breaches"),
                )
                .with_kevlar("breach_count", if count >= kevlar_breach::OFTEN { "100+" } else { "1+" });
                let ev = if ambiguous { ev } else { self.notify(u, user, "breached_password", now, ev) };
                out.push(ev);
            }
        }
    }

    /// A failed login: counted for every identity it named (no user notice when there are
    /// several), once for the address and the site.
    #[allow(clippy::too_many_arguments)]
    fn failure(
        &self,
        st: &mut State,
        meta: &RequestMeta<'_>,
        users: &[String],
        status: u16,
        by_app: bool,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
        let cfg = &self.cfg;
        let ambiguous = users.len() > 1;
        let window = cfg.spray_window.as_millis() as i64;
        for user in users {
            let user = user.as_str();
            let mut ev = Self::event(
                meta,
                action::AUTHN_LOGIN_FAIL,
                Severity::Notice,
                Outcome::Failure,
                Some(user),
                format!("failed sign-in for {user}"),
            );
            ev.status_code = Some(status);
            if by_app {
                ev = ev.with_kevlar("reported_by", "app_header");
            }
            if ambiguous {
                ev = ev.with_kevlar("ambiguous", true);
            }
            out.push(ev);

            // Consecutive failures of this (user, address).
            let block_ms = cfg.pair_block.as_millis() as i64;
            let key = (user.to_lowercase(), meta.ip);
            if !st.pairs.contains_key(&key) {
                make_room(&mut st.pairs, cfg.max_tracked, |p| p.last_ms < now - block_ms, |p| p.blocked_until > now);
            }
            if st.pairs.len() < cfg.max_tracked || st.pairs.contains_key(&key) {
                let p = st.pairs.entry(key).or_default();
                p.fails += 1;
                p.last_ms = now;
                if p.fails >= cfg.pair_failures && p.blocked_until <= now {
                    p.blocked_until = now + block_ms;
                    p.fails = 0;
                    out.push(
                        Self::event(
                            meta,
                            action::AUTHN_LOGIN_FAIL_MAX,
                            Severity::Warning,
                            Outcome::Failure,
                            Some(user),
                            format!(
                                "{} consecutive failed sign-ins for {user} from {}: that pair is refused for {}",
                                cfg.pair_failures,
                                meta.ip,
                                humantime::format_duration(cfg.pair_block)
                            ),
                        )
                        .with_kevlar("enforced", self.enforce)
                        .with_kevlar("duration_s", cfg.pair_block.as_secs()),
                    );
                }
            }

            // Failures against this user from anywhere: slow it down, tell the user.
            let day = now - 86_400_000;
            let threshold = cfg.user_failures;
            let u = self.user_mut(st, user, now);
            while u.fails.front().is_some_and(|t| *t <= day) {
                u.fails.pop_front();
            }
            if u.fails.is_empty() {
                u.fail_addrs.clear();
            }
            if u.fails.len() < threshold as usize + 1 {
                u.fails.push_back(now);
            }
            if !u.fail_addrs.contains(&meta.ip) && u.fail_addrs.len() < MAX_FAIL_ADDRS {
                u.fail_addrs.push(meta.ip);
            }
            if u.fails.len() as u32 >= threshold && u.targeted_alerted_ms <= day {
                u.targeted_alerted_ms = now;
                let addrs = u.fail_addrs.len();
                let from = match addrs {
                    1 => format!("all from {}", meta.ip),
                    n if n >= MAX_FAIL_ADDRS => format!("from {n} or more addresses"),
                    n => format!("from {n} addresses"),
                };
                let ev = Self::event(
                    meta,
                    action::AUTHN_LOGIN_USER_TARGETED,
                    Severity::Alert,
                    Outcome::Failure,
                    Some(user),
                    format!("{threshold} failed sign-ins for {user} within a day, {from}: attempts are slowed down"),
                )
                .with_kevlar("enforced", self.enforce)
                .with_kevlar("failures", threshold)
                .with_kevlar("addresses", addrs);
                // Told to the user only for an account that exists: one that has signed in
                // before. Anyone can fail logins naming any address.
                let known = !u.nets.is_empty();
                let ev = if ambiguous || !known { ev } else { self.notify(u, user, "targeted", now, ev) };
                out.push(ev);
            }

            // Many usernames from one address: spraying / credential stuffing.
            let uh = self.user_hash(user);
            if !st.addrs.contains_key(&meta.ip) {
                make_room(&mut st.addrs, cfg.max_tracked, |a| a.last_ms < now - window, |a| a.alerted_until > now);
            }
            if st.addrs.len() < cfg.max_tracked || st.addrs.contains_key(&meta.ip) {
                let a = st.addrs.entry(meta.ip).or_default();
                a.last_ms = now;
                a.users.retain(|(_, t)| *t > now - window);
                if !a.users.iter().any(|(h, _)| *h == uh) && a.users.len() <= cfg.spray_users as usize {
                    a.users.push((uh, now));
                }
            }
        }
        if let Some(a) = st.addrs.get_mut(&meta.ip) {
            if a.users.len() >= cfg.spray_users as usize && a.alerted_until <= now {
                a.alerted_until = now + window;
                out.push(
                    Self::event(
                        meta,
                        action::AUTHN_CREDENTIAL_STUFFING,
                        Severity::Alert,
                        Outcome::Failure,
                        None,
                        format!(
                            "credential stuffing: failed sign-ins for {} different users from {} within {}",
                            a.users.len(),
                            meta.ip,
                            humantime::format_duration(cfg.spray_window)
                        ),
                    )
                    .with_kevlar("users", a.users.len()),
                );
            }
        }

        // Site-wide: failures per minute against the learned baseline.
        let minute = now / 60_000;
        let s = &mut st.spike;
        if minute != s.minute {
            if s.minute != 0 {
                // Minutes without failures pull the baseline down too.
                let idle = (minute - s.minute - 1).clamp(0, 60) as u32;
                s.baseline = s.baseline * 0.9 + f64::from(s.count) * 0.1;
                for _ in 0..idle {
                    s.baseline *= 0.9;
                }
                s.minutes_seen += 1 + idle;
            }
            s.minute = minute;
            s.count = 0;
        }
        s.count += 1;
        let limit = (s.baseline * f64::from(cfg.spike_factor)).max(f64::from(cfg.spike_min));
        if f64::from(s.count) > limit && s.alerted_until <= now {
            s.alerted_until = now + 600_000;
            out.push(
                Self::event(
                    meta,
                    action::AUTHN_LOGIN_SPIKE,
                    Severity::Alert,
                    Outcome::Failure,
                    None,
                    format!(
                        "{} failed sign-ins this minute across the site (usual: {:.1} a minute)",
                        s.count, s.baseline
                    ),
                )
                .with_kevlar("count", s.count)
                .with_kevlar("baseline", (s.baseline * 10.0).round() / 10.0),
            );
        }
    }

    /// A login seen outside the proxy (an sshd or vsftpd log): the same rules as a web login.
    pub fn external(&self, service: &str, ip: IpAddr, user: Option<&str>, ok: bool, now: i64) -> Vec<SecurityEvent> {
        let mut out = Vec::new();
        if !self.cfg.enabled {
            return out;
        }
        let user = user.and_then(clean_user).unwrap_or_else(|| "(unknown)".into());
        let meta = RequestMeta { ip, request_id: "", method: "", path: "", query: None, user_agent: None };
        let Ok(mut st) = self.state.lock() else { return out };
        if ok {
            self.success(&mut st, &meta, std::slice::from_ref(&user), 0, &HeaderMap::new(), false, None, now, &mut out);
        } else {
            self.failure(&mut st, &meta, std::slice::from_ref(&user), 0, false, now, &mut out);
        }
        for e in &mut out {
            e.http_method = None;
            e.url_path = None;
            e.request_id = None;
            e.status_code = None;
            e.kevlar.insert("service".into(), serde_json::Value::String(service.to_owned()));
        }
        out
    }

    /// Sizes of the tables, for `/v1/status` and the bounds tests.
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        self.state.lock().map(|s| (s.pairs.len(), s.users.len(), s.addrs.len(), s.sessions.len())).unwrap_or_default()
    }

    /// Whether the (user, address) pair is locked now.
    pub fn pair_locked(&self, user: &str, ip: IpAddr, now: i64) -> bool {
        self.state
            .lock()
            .map(|s| s.pairs.get(&(user.to_lowercase(), ip)).is_some_and(|p| p.blocked_until > now))
            .unwrap_or(false)
    }
}

/// What a login's 2xx answer says of its outcome, read from its first bytes and its cookies:
/// a failure when it shows a password field again (the form re-rendered) or says `errors`,
/// `error`, `ok: false`, `success: false`; a success when it hands out a token (`token`,
/// `access_token`, `jwt`, `sessionToken`, … at any depth); a failure when a JSON answer without a
/// token says `invalid`, `incorrect`, `failed`, `wrong`, `unauthorized` or `denied`; a success when
/// it sets a session cookie (not a CSRF or test cookie). `None` when it says nothing either way.
fn answer_says(body: &[u8], cookies: &HeaderMap, session_cookies: &[String]) -> Option<bool> {
    let lower = String::from_utf8_lossy(&body[..body.len().min(BODY_SCAN)]).to_ascii_lowercase();
    let trimmed = lower.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed) {
            if let Some(o) = v.as_object() {
                let falsy = |k: &str| o.get(k).is_some_and(|x| x == &serde_json::Value::Bool(false));
                let errors = o.get("errors").is_some_and(|e| e.as_array().is_none_or(|a| !a.is_empty()));
                if errors || o.get("error").is_some_and(|e| !e.is_null()) || falsy("ok") || falsy("success") {
                    return Some(false);
                }
            }
            if has_token(&v, 0) {
                return Some(true);
            }
            // No token, and the answer says it did not work (Keystone's `message:
            // "Authentication failed."`, `invalid credentials`).
            if ["invalid", "incorrect", "failed", "wrong", "unauthori", "denied"].iter().any(|w| trimmed.contains(w)) {
                return Some(false);
            }
        }
    } else {
        let form_again = ["type=\"password\"", "type='password'", "type=password"].iter().any(|p| lower.contains(p));
        if form_again {
            return Some(false);
        }
    }
    let session = cookies
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next()?.trim().split_once('='))
        .filter(|(_, v)| !v.is_empty())
        .any(|(k, _)| {
            let k = k.to_ascii_lowercase();
            session_cookies.iter().any(|n| n.eq_ignore_ascii_case(&k))
                || (!k.contains("csrf") && !k.contains("xsrf") && !k.contains("test"))
        });
    session.then_some(true)
}

fn has_token(v: &serde_json::Value, depth: usize) -> bool {
    const TOKENS: &[&str] =
        &["token", "access_token", "accesstoken", "jwt", "id_token", "session_token", "sessiontoken", "auth_token"];
    match v {
        serde_json::Value::Object(o) if depth < 5 => o.iter().any(|(k, x)| {
            (TOKENS.contains(&k.as_str()) && x.as_str().is_some_and(|s| !s.is_empty())) || has_token(x, depth + 1)
        }),
        serde_json::Value::Array(a) if depth < 5 => a.iter().take(8).any(|x| has_token(x, depth + 1)),
        _ => false,
    }
}

/// What the body of a request said, for the login monitor.
enum Recognised<T> {
    Login(Vec<String>, Option<T>, &'static str),
    PasswordChange,
    Nothing,
}

/// The Pwned Passwords range API, asked from a thread of its own (never from a request), with a
/// bounded cache of answers per full hash (a day for an answer, five minutes after an error).
/// Per SHA-1: the count the API gave (`None`: not breached) and when that answer expires.
type Answers = HashMap<[u8; 20], (Option<u64>, i64)>;

pub struct Online {
    cache: Mutex<Answers>,
    tx: std::sync::mpsc::SyncSender<[u8; 20]>,
}

const ONLINE_CACHE: usize = 100_000;

impl Online {
    pub fn start(url: String) -> Option<std::sync::Arc<Online>> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<[u8; 20]>(1024);
        let me = std::sync::Arc::new(Online { cache: Mutex::new(HashMap::new()), tx });
        let weak = std::sync::Arc::downgrade(&me);
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(5))
            .user_agent(concat!("kevlar/", env!("CARGO_PKG_VERSION")))
            .build();
        let spawned = std::thread::Builder::new().name("kevlar-breach-api".into()).spawn(move || {
            for h in rx {
                let Some(me) = weak.upgrade() else { return };
                let now = kevlar_core::time::now_ms();
                if me.cached(&h, now).is_some() {
                    continue;
                }
                let (prefix, suffix) = kevlar_breach::range::split(&h);
                let answer = agent
                    .get(&format!("{url}{prefix}"))
                    .set("Add-Padding", "true")
                    .call()
                    .ok()
                    .and_then(|r| r.into_string().ok());
                let entry = match answer {
                    Some(body) => (kevlar_breach::range::count(&body, &suffix), now + 86_400_000),
                    None => {
                        tracing::debug!("breached-password API did not answer");
                        (None, now + 300_000)
                    }
                };
                me.store(h, entry, now);
            }
        });
        spawned.ok().map(|_| me)
    }

    /// `Some(count)` when the API has answered for this hash (`Some(None)`: not breached).
    fn cached(&self, h: &[u8; 20], now: i64) -> Option<Option<u64>> {
        self.cache.lock().ok()?.get(h).filter(|(_, exp)| *exp > now).map(|(c, _)| *c)
    }

    fn store(&self, h: [u8; 20], entry: (Option<u64>, i64), now: i64) {
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= ONLINE_CACHE {
                c.retain(|_, (_, exp)| *exp > now);
                if c.len() >= ONLINE_CACHE {
                    c.clear();
                }
            }
            c.insert(h, entry);
        }
    }

    fn ask(&self, h: [u8; 20]) {
        let _ = self.tx.try_send(h);
    }
}

/// The outcome of a login answer: `Some(true)` success, `Some(false)` failure, `None` neither
/// (an error, a rate limit, a route that is not there).
pub fn outcome(ep: Option<&LoginEndpoint>, login_path: &str, status: u16, headers: &HeaderMap) -> Option<bool> {
    if status >= 500 || matches!(status, 404 | 405 | 429) || status < 200 {
        return None;
    }
    let failure_status: &[u16] = ep.map_or(&[401, 403], |e| &e.failure_status);
    if failure_status.contains(&status) {
        return Some(false);
    }
    if (400..500).contains(&status) {
        return Some(false);
    }
    let location = headers.get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(|l| {
        // The path of an absolute or relative target.
        let l = l.split_once("://").map_or(l, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
        l.to_owned()
    });
    if (300..400).contains(&status) {
        if let Some(loc) = &location {
            let path = loc.split(['?', '#']).next().unwrap_or("");
            if let Some(f) = ep.and_then(|e| e.failure_redirect.as_deref()) {
                if path.starts_with(f) {
                    return Some(false);
                }
            }
            if let Some(s) = ep.and_then(|e| e.success_redirect.as_deref()) {
                return Some(path.starts_with(s));
            }
            let lower = loc.to_ascii_lowercase();
            // Back to the login page: the same path, or a usual login page (Passport's
            // `/login/password` → `/login`).
            let back = same_path(path, login_path) || (ep.is_none() && AUTO_PATHS.iter().any(|p| same_path(p, path)));
            if back || lower.contains("error") || lower.contains("fail") {
                return Some(false);
            }
        }
    }
    if let Some(c) = ep.and_then(|e| e.success_cookie.as_deref()) {
        let set = headers.get_all(http::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).any(|v| {
            v.split(';')
                .next()
                .and_then(|kv| kv.trim().split_once('='))
                .is_some_and(|(k, val)| k == c && !val.is_empty())
        });
        return Some(set);
    }
    Some(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn meta(ip: &str) -> RequestMeta<'static> {
        RequestMeta {
            ip: ip.parse().unwrap(),
            request_id: "r",
            method: "POST",
            path: "/login",
            query: None,
            user_agent: Some("test"),
        }
    }

    fn attempt(l: &Logins, ip: &str, body: &str, now: i64) -> Seen {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
        let view = RequestView {
            method: "POST",
            path: "/login",
            query: None,
            headers: &h,
            body: body.as_bytes(),
            body_complete: true,
        };
        l.on_request(&meta(ip), &view, now)
    }

    fn answer(l: &Logins, ip: &str, seen: &Seen, status: u16, now: i64) -> Vec<SecurityEvent> {
        let mut h = HeaderMap::new();
        if status == 302 {
            h.insert(http::header::LOCATION, "/account".parse().unwrap());
            h.insert(http::header::SET_COOKIE, "sid=abc123; Path=/; HttpOnly".parse().unwrap());
        }
        l.on_response(&meta(ip), seen.context.as_ref(), status, &mut h, now)
    }

    fn actions(evs: &[SecurityEvent]) -> Vec<&str> {
        evs.iter().map(|e| e.action.as_str()).collect()
    }

    #[test]
    fn credentials_and_outcomes() {
        let l = Logins::new(&LoginsConfig::default(), true);
        let s = attempt(&l, "192.0.2.1", "email=alice%40example.com&password=secret", 1000);
        let a = s.context.as_ref().unwrap().login.as_ref().unwrap();
        assert_eq!(a.users, ["alice@example.com"]);
        assert!(attempt(&l, "192.0.2.1", "email=alice", 1000).context.is_none(), "no password: not a login");
        let evs = answer(&l, "192.0.2.1", &s, 401, 1000);
        assert_eq!(actions(&evs), ["authn_login_fail"]);
        assert!(!format!("{:?}", evs).contains("secret"));
        let evs = answer(&l, "192.0.2.1", &s, 302, 2000);
        assert_eq!(actions(&evs), ["authn_login_success"]);
        let mut h = HeaderMap::new();
        h.insert(http::header::LOCATION, "/login?error=1".parse().unwrap());
        assert_eq!(outcome(None, "/login", 302, &h), Some(false));
        assert_eq!(outcome(None, "/login", 503, &HeaderMap::new()), None);
    }

    #[test]
    fn identities_that_disagree_count_for_each_and_tell_no_user() {
        let cfg = LoginsConfig { pair_failures: 3, user_failures: 5, ..Default::default() };
        let l = Logins::new(&cfg, true);
        let t0 = 1_800_000_000_000;
        // The same identity twice (any case) is not ambiguous.
        let s = attempt(&l, "192.0.2.1", "username=Alice%40example.com&email=alice%40example.com&password=x", t0);
        assert_eq!(s.context.unwrap().login.unwrap().users, ["Alice@example.com"]);
        // Rotating decoys beside the target: every failure counts for alice.
        for i in 0..5 {
            let ip = format!("198.51.100.{i}");
            let s = attempt(&l, &ip, &format!("username=decoy{i}&email=alice%40example.com&password=x"), t0 + 10 + i);
            assert_eq!(s.context.as_ref().unwrap().login.as_ref().unwrap().users.len(), 2);
            let evs = answer(&l, &ip, &s, 401, t0 + 10 + i);
            assert!(actions(&evs).contains(&"authn_login_ambiguous"), "{:?}", actions(&evs));
            assert_eq!(evs.iter().filter(|e| e.action == "authn_login_fail").count(), 2);
            if i == 4 {
                let t = evs.iter().find(|e| e.action == "authn_login_user_targeted").expect("alice is targeted");
                assert_eq!(t.user_name.as_deref(), Some("alice@example.com"));
                assert!(!t.kevlar.contains_key("notify_email"), "no notice on an ambiguous identity");
            }
        }
        // A locked pair locks every request that names it, whatever else it names.
        for i in 0..3 {
            let s = attempt(&l, "192.0.2.9", "username=bob&password=x", t0 + 100 + i);
            answer(&l, "192.0.2.9", &s, 401, t0 + 100 + i);
        }
        let s = attempt(&l, "192.0.2.9", "username=mallory&username=bob&password=x", t0 + 200);
        assert!(s.refuse_for.is_some(), "a second name does not open a locked pair");
        // A success as the attacker's own account neither lifts the victim's lockout nor tells
        // an address the attacker chose.
        let s = attempt(&l, "192.0.2.9", "username=victim%40evil.test&username=bob&password=ok", t0 + 300);
        let evs = answer(&l, "192.0.2.9", &s, 302, t0 + 300);
        assert!(evs.iter().all(|e| !e.kevlar.contains_key("notify_email")), "{evs:?}");
        assert!(l.pair_locked("bob", "192.0.2.9".parse().unwrap(), t0 + 301));
    }

    #[test]
    fn an_ambiguous_login_from_a_new_network_then_a_change_is_a_takeover() {
        let mut cfg = LoginsConfig::default();
        cfg.changes.push(kevlar_config::AccountChange {
            method: "POST".into(),
            path: "/account/email".into(),
            kind: ChangeKind::Email,
        });
        let l = Logins::new(&cfg, true);
        let s = attempt(&l, "192.0.2.1", "email=alice%40example.com&password=pw", 1);
        answer(&l, "192.0.2.1", &s, 302, 1);
        let s = attempt(&l, "203.0.113.5", "username=decoy&email=alice%40example.com&password=pw", 1000);
        let evs = answer(&l, "203.0.113.5", &s, 302, 1000);
        let new_ip = evs.iter().find(|e| e.action == "authn_login_new_ip").expect("alice's new network");
        assert_eq!(new_ip.user_name.as_deref(), Some("alice@example.com"));
        assert!(!new_ip.kevlar.contains_key("notify_email"));
        // The session it set belongs to both: the change is alice's too, and a takeover.
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, "sid=abc123".parse().unwrap());
        h.insert(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
        let view = RequestView {
            method: "POST",
            path: "/account/email",
            query: None,
            headers: &h,
            body: b"email=m%40example.net",
            body_complete: true,
        };
        let m = RequestMeta { path: "/account/email", ..meta("203.0.113.5") };
        let seen = l.on_request(&m, &view, 2000);
        let ctx = seen.context.unwrap();
        assert_eq!((ctx.session_user.as_deref(), ctx.session_candidates.len()), (None, 2));
        let evs = l.on_response(&m, Some(&ctx), 200, &mut HeaderMap::new(), 2000);
        let t = evs.iter().find(|e| e.action == "authn_account_takeover").expect("a takeover");
        assert_eq!(t.user_name.as_deref(), Some("alice@example.com"));
        assert!(evs.iter().all(|e| !e.kevlar.contains_key("notify_email")), "{evs:?}");
    }

    #[test]
    fn the_pair_locks_after_consecutive_failures_and_success_resets() {
        let cfg = LoginsConfig { pair_failures: 3, ..Default::default() };
        let l = Logins::new(&cfg, true);
        for i in 0..2 {
            let s = attempt(&l, "192.0.2.1", "username=bob&password=x", i);
            answer(&l, "192.0.2.1", &s, 401, i);
        }
        let s = attempt(&l, "192.0.2.1", "username=bob&password=ok", 5);
        answer(&l, "192.0.2.1", &s, 302, 5);
        for i in 0..3 {
            let s = attempt(&l, "192.0.2.1", "username=bob&password=x", 10 + i);
            let evs = answer(&l, "192.0.2.1", &s, 401, 10 + i);
            assert_eq!(evs.iter().any(|e| e.action == "authn_login_fail_max"), i == 2);
        }
        assert_eq!(attempt(&l, "192.0.2.1", "username=bob&password=x", 20).refuse_for, Some(3600));
        assert_eq!(
            attempt(&l, "192.0.2.2", "username=bob&password=x", 20).refuse_for,
            None,
            "other addresses are not locked"
        );
    }

    #[test]
    fn spraying_new_networks_and_sessions() {
        let l = Logins::new(&LoginsConfig::default(), true);
        let mut stuffing = 0;
        for (i, u) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
            let s = attempt(&l, "198.51.100.9", &format!("username={u}&password=x"), i as i64);
            stuffing += answer(&l, "198.51.100.9", &s, 401, i as i64)
                .iter()
                .filter(|e| e.action == "authn_credential_stuffing")
                .count();
        }
        assert_eq!(stuffing, 1);
        // First login: nothing; same /24: nothing; another network: new_ip with an email to the user.
        let login = |ip: &str, now: i64| {
            let s = attempt(&l, ip, "email=alice%40example.com&password=pw", now);
            answer(&l, ip, &s, 302, now)
        };
        assert_eq!(actions(&login("192.0.2.10", 100)), ["authn_login_success"]);
        assert_eq!(actions(&login("192.0.2.77", 200)), ["authn_login_success"]);
        let evs = login("203.0.113.5", 300);
        assert_eq!(actions(&evs), ["authn_login_success", "authn_login_new_ip"]);
        assert_eq!(evs[1].kevlar["notify_email"], "alice@example.com");
        // The session set by the success is attributed on later requests.
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, "theme=dark; sid=abc123".parse().unwrap());
        let view =
            RequestView { method: "GET", path: "/account", query: None, headers: &h, body: b"", body_complete: true };
        let s = l.on_request(&RequestMeta { method: "GET", path: "/account", ..meta("203.0.113.5") }, &view, 400);
        assert_eq!(s.context.unwrap().session_user.as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn a_site_wide_spike_is_told_once() {
        let cfg = LoginsConfig { spike_min: 20, spike_factor: 5, spray_users: 1000, ..Default::default() };
        let l = Logins::new(&cfg, true);
        let mut spikes = Vec::new();
        // A quiet baseline: two failures a minute for an hour, then a burst of 100 in one minute.
        for minute in 1..=60i64 {
            for j in 0..2 {
                let s = attempt(&l, &format!("192.0.2.{j}"), "username=x&password=y", minute * 60_000);
                spikes.extend(
                    answer(&l, &format!("192.0.2.{j}"), &s, 401, minute * 60_000)
                        .into_iter()
                        .filter(|e| e.action == "authn_login_spike"),
                );
            }
        }
        assert!(spikes.is_empty());
        for j in 0..100 {
            let ip = format!("198.51.100.{j}");
            let s = attempt(&l, &ip, &format!("username=u{j}&password=y"), 61 * 60_000 + j);
            spikes.extend(
                answer(&l, &ip, &s, 401, 61 * 60_000 + j).into_iter().filter(|e| e.action == "authn_login_spike"),
            );
        }
        assert_eq!(spikes.len(), 1, "one alert, not one per failure");
        assert!(spikes[0].message.contains("failed sign-ins this minute"));
    }

    #[test]
    fn a_million_usernames_stay_bounded_and_keep_a_live_lock() {
        let cfg = LoginsConfig { pair_failures: 2, max_tracked: 10_000, ..Default::default() };
        let l = Logins::new(&cfg, true);
        for i in 0..2 {
            let s = attempt(&l, "192.0.2.1", "username=victim&password=x", i);
            answer(&l, "192.0.2.1", &s, 401, i);
        }
        assert!(l.pair_locked("victim", "192.0.2.1".parse().unwrap(), 10));
        for i in 0..1_000_000u32 {
            let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
            let s = attempt(&l, &ip, &format!("username=u{i}&password=x"), 100 + i64::from(i / 100));
            answer(&l, &ip, &s, 401, 100 + i64::from(i / 100));
        }
        let (pairs, users, addrs, sessions) = l.sizes();
        assert!(pairs <= 10_000 && users <= 10_000 && addrs <= 10_000 && sessions <= 10_000, "{pairs} {users} {addrs}");
        assert!(l.pair_locked("victim", "192.0.2.1".parse().unwrap(), 20_000), "a live lock is never evicted");
    }
}
