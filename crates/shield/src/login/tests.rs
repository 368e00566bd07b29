//! The login monitor's unit tests: attempts in, events and decisions out.
#![allow(clippy::unwrap_used)]

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
        spikes
            .extend(answer(&l, &ip, &s, 401, 61 * 60_000 + j).into_iter().filter(|e| e.action == "authn_login_spike"));
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
