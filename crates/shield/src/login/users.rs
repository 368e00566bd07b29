//! Per-user and per-address state after an outcome: the (user, address) lockout, a targeted
//! account slowed down, credential stuffing from one address, the site-wide spike, logins from a
//! new network and the sessions they open.

use super::*;

impl Logins {
    pub(super) fn user_mut<'s>(&self, st: &'s mut State, user: &str, now: i64) -> &'s mut User {
        let key = user.to_lowercase();
        if !st.users.contains_key(&key) {
            let day = now - 86_400_000;
            make_room(&mut st.users, self.cfg.max_tracked, |u| u.last_ms < day, |_| false);
        }
        let u = st.users.entry(key).or_default();
        u.last_ms = now;
        u
    }

    /// The session the answer sets belongs to this user (these users) from now on: the
    /// configured session cookie, or the only cookie set. Its name, when there is one.
    fn remember_session(&self, st: &mut State, users: &[String], headers: &HeaderMap, now: i64) -> Option<String> {
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
        session.map(|(name, _)| name.clone())
    }

    /// A successful login. When it named several identities (`users.len() > 1`) each gets the
    /// events, none a notice; the lockouts of none are lifted and the network is learned for none
    /// (a success as the attacker's own account must not vouch for the victim's).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn success(
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
        let session = self.remember_session(st, users, headers, now);
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
            if let Some(name) = &session {
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
    pub(super) fn failure(
        &self,
        st: &mut State,
        meta: &RequestMeta<'_>,
        users: &[String],
        status: u16,
        by_app: bool,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
        let ambiguous = users.len() > 1;
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
            self.pair_failure(st, meta, user, now, out);
            self.user_failure(st, meta, user, ambiguous, now, out);
            self.address_failure(st, meta, user, now);
        }
        self.stuffing(st, meta, now, out);
        self.spike(st, meta, now, out);
    }

    /// Consecutive failures of this (user, address): the pair is refused for `pair_block`.
    fn pair_failure(&self, st: &mut State, meta: &RequestMeta<'_>, user: &str, now: i64, out: &mut Vec<SecurityEvent>) {
        let cfg = &self.cfg;
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
    }

    /// Failures against this user from anywhere within a day: attempts on it are slowed down and
    /// the user is told (when the account signed in before).
    fn user_failure(
        &self,
        st: &mut State,
        meta: &RequestMeta<'_>,
        user: &str,
        ambiguous: bool,
        now: i64,
        out: &mut Vec<SecurityEvent>,
    ) {
        let cfg = &self.cfg;
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
    }

    /// The users one address failed for within `spray_window` (for credential stuffing).
    fn address_failure(&self, st: &mut State, meta: &RequestMeta<'_>, user: &str, now: i64) {
        let cfg = &self.cfg;
        let window = cfg.spray_window.as_millis() as i64;
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

    /// Many usernames from one address: spraying, credential stuffing.
    fn stuffing(&self, st: &mut State, meta: &RequestMeta<'_>, now: i64, out: &mut Vec<SecurityEvent>) {
        let cfg = &self.cfg;
        let window = cfg.spray_window.as_millis() as i64;
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
    }

    /// Site-wide: failures per minute against the learned baseline.
    fn spike(&self, st: &mut State, meta: &RequestMeta<'_>, now: i64, out: &mut Vec<SecurityEvent>) {
        let cfg = &self.cfg;
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

    /// Another instance's failed login for this (user, address) pair (`[cluster]`): counted
    /// toward the lockout, never an event. Only a local failure locks; the lock is shared.
    pub fn remote_failure(&self, user: &str, ip: IpAddr, now: i64) {
        let cfg = &self.cfg;
        let block_ms = cfg.pair_block.as_millis() as i64;
        let Ok(mut st) = self.state.lock() else { return };
        let key = (user.to_lowercase(), ip);
        if !st.pairs.contains_key(&key) {
            make_room(&mut st.pairs, cfg.max_tracked, |p| p.last_ms < now - block_ms, |p| p.blocked_until > now);
        }
        if st.pairs.len() < cfg.max_tracked || st.pairs.contains_key(&key) {
            let p = st.pairs.entry(key).or_default();
            if p.blocked_until <= now {
                p.fails += 1;
            }
            p.last_ms = now;
        }
    }

    /// Another instance locked this pair for `secs` (`[cluster]`): locked here too.
    pub fn remote_lock(&self, user: &str, ip: IpAddr, secs: u64, now: i64) {
        let cfg = &self.cfg;
        let Ok(mut st) = self.state.lock() else { return };
        let key = (user.to_lowercase(), ip);
        if !st.pairs.contains_key(&key) {
            let block_ms = cfg.pair_block.as_millis() as i64;
            make_room(&mut st.pairs, cfg.max_tracked, |p| p.last_ms < now - block_ms, |p| p.blocked_until > now);
        }
        let secs = secs.min(cfg.pair_block.as_secs().max(1));
        let p = st.pairs.entry(key).or_default();
        p.blocked_until = p.blocked_until.max(now + secs as i64 * 1000);
        p.fails = 0;
        p.last_ms = now;
    }

    /// Whether the (user, address) pair is locked now.
    pub fn pair_locked(&self, user: &str, ip: IpAddr, now: i64) -> bool {
        self.state
            .lock()
            .map(|s| s.pairs.get(&(user.to_lowercase(), ip)).is_some_and(|p| p.blocked_until > now))
            .unwrap_or(false)
    }
}
