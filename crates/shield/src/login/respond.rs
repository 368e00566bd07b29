//! How the app answered a login attempt or an account change: success or failure read from the
//! status, the session cookie, a redirect or the body; attempts whose answer said nothing, settled
//! by what the client does next; account changes after a login.

use super::*;

/// How a login went, as far as the answer (or the app) told.
struct LoginOutcome {
    users: Vec<String>,
    /// `None`: the answer said nothing.
    ok: Option<bool>,
    /// The app reported it (`Kevlar-Event`).
    by_app: bool,
    /// The breached-password count of the password tried.
    breached: Option<u64>,
}

impl Logins {
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

        let reported_login = self.reported(meta, &reported, session_user, &mut out);
        let login = self.login_outcome(&st, meta, ctx, reported_login, status, headers, app_email.as_deref(), deferred);
        if let Some(LoginOutcome { users, ok: Some(ok), by_app, breached }) = login {
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

        self.account_change(&mut st, meta, ctx, status, app_email.as_deref(), now, &mut out);
        out
    }

    /// What the app reported itself in `Kevlar-Event` headers: its events out, and the login it
    /// reported (the user, and whether it succeeded).
    fn reported(
        &self,
        meta: &RequestMeta<'_>,
        reported: &[String],
        session_user: Option<String>,
        out: &mut Vec<SecurityEvent>,
    ) -> Option<(String, bool)> {
        let mut reported_login = None;
        for r in reported {
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
        reported_login
    }

    /// How a login went: as the app reported it, by the answer's status (and for `Authorization`
    /// logins, only when worth telling), or deferred to the answer's body (`deferred`). The users,
    /// the outcome (`None`: the answer said nothing), whether the app said so, the breach bucket.
    #[allow(clippy::too_many_arguments)]
    fn login_outcome(
        &self,
        st: &State,
        meta: &RequestMeta<'_>,
        ctx: Option<&RequestContext>,
        reported_login: Option<(String, bool)>,
        status: u16,
        headers: &HeaderMap,
        app_email: Option<&str>,
        deferred: &mut Option<Deferred>,
    ) -> Option<LoginOutcome> {
        let attempt = ctx.and_then(|c| c.login.as_ref());
        match (reported_login, attempt) {
            // The app said who it was: that wins over what the request named.
            (Some((u, ok)), _) => Some(LoginOutcome {
                users: vec![u],
                ok: Some(ok),
                by_app: true,
                breached: attempt.and_then(|a| a.breached),
            }),
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
                Some(LoginOutcome { users: a.users.clone(), ok: by_status, by_app: false, breached: a.breached })
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
                        app_email: app_email.map(str::to_owned),
                    });
                    None
                } else {
                    Some(LoginOutcome { users: a.users.clone(), ok: by_status, by_app: false, breached: a.breached })
                }
            }
            _ => None,
        }
    }

    /// An account change by the signed-in user (or, after an ambiguous login, by one of the
    /// identities it named: each is told to the owner, none to the user).
    #[allow(clippy::too_many_arguments)]
    fn account_change(
        &self,
        st: &mut State,
        meta: &RequestMeta<'_>,
        ctx: Option<&RequestContext>,
        status: u16,
        app_email: Option<&str>,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
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
                    self.change_by(st, meta, user, &ch, ambiguous, app_email, now, out);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn change_by(
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
    pub(super) fn apply(
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
    pub(super) fn apply_deferred(
        &self,
        st: &mut State,
        d: &Deferred,
        ok: bool,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
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
    pub(super) fn wait_for_next(&self, st: &mut State, d: Deferred, now: i64, out: &mut Vec<SecurityEvent>) {
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
    pub(super) fn settle_pending(
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

    pub(super) fn decide_pending(
        &self,
        st: &mut State,
        d: Deferred,
        ok: bool,
        by: &str,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
        let start = out.len();
        self.apply_deferred(st, &d, ok, now, out);
        for e in &mut out[start..] {
            e.kevlar.insert("outcome_by".into(), serde_json::Value::String(by.to_owned()));
        }
    }
}

/// What a login's 2xx answer says of its outcome, read from its first bytes and its cookies:
/// a failure when it shows a password field again (the form re-rendered) or says `errors`,
/// `error`, `ok: false`, `success: false`; a success when it hands out a token (`token`,
/// `access_token`, `jwt`, `sessionToken`, … at any depth); a failure when a JSON answer without a
/// token says `invalid`, `incorrect`, `failed`, `wrong`, `unauthorized` or `denied`; a success when
/// it sets a session cookie (not a CSRF or test cookie). `None` when it says nothing either way.
pub(super) fn answer_says(body: &[u8], cookies: &HeaderMap, session_cookies: &[String]) -> Option<bool> {
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

pub(super) fn has_token(v: &serde_json::Value, depth: usize) -> bool {
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
