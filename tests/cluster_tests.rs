//! Several Kevlar instances act as one through a real Redis (`[cluster]`): a ban made on any
//! instance, by hand or by a jail, is enforced by every other within a moment; lifting it is as
//! fast; with Redis gone each instance goes on with what it knows and says so, and when Redis
//! comes back, empty, every ban made meanwhile on either side is merged.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::peers::{wait_until, Redis};
use common::{client, DemoApp, Kevlar, KEVLAR};

fn instance(app: &DemoApp, redis: &Redis, name: &str) -> Kevlar {
    let cfg = format!(
        "[cluster]\nredis = \"{}\"\ninstance = \"{name}\"\nname = \"shop\"\n\
         [bans]\nenforce = true\n[[bans.jail]]\nname = \"probes\"\nactions = [\"malicious_probe\"]\nmaxretry = 2\nfindtime = \"1m\"\nbantime = \"1h\"\n\
         [[bans.jail]]\nname = \"brute\"\nactions = [\"authn_login_fail\"]\nmaxretry = 5\nfindtime = \"1m\"\nbantime = \"1h\"\n",
        redis.url()
    );
    Kevlar::guard(&app.url()).config(&cfg).args(["--trusted-proxy", "127.0.0.1"]).start()
}

fn cli(k: &Kevlar, args: &[&str]) -> (i32, String) {
    let out = Command::new(KEVLAR).args(args).arg("--data-dir").arg(&k.data_dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn status(k: &Kevlar) -> serde_json::Value {
    let (code, out) = cli(k, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).unwrap()
}

/// The status a request from `ip` gets.
async fn from(k: &Kevlar, ip: &str) -> u16 {
    client().get(k.url("/")).header("x-forwarded-for", ip).send().await.unwrap().status().as_u16()
}

/// How long until a request from `ip` to `k` gets `want` (polled every 5 ms, at most 10 s).
async fn until(k: &Kevlar, ip: &str, want: u16) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if from(k, ip).await == want {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{ip} never got {want}");
}

fn both_up(a: &Kevlar, b: &Kevlar) {
    all_up(&[a, b]);
}

/// Every instance connected to Redis and seeing all the others.
fn all_up(ks: &[&Kevlar]) {
    wait_until(20, "every instance connected to Redis and seeing the others", || {
        ks.iter().all(|k| {
            let s = status(k);
            s["cluster"]["redis"] == "ok" && s["cluster"]["instances"].as_array().is_some_and(|i| i.len() == ks.len())
        })
    });
}

#[tokio::test]
async fn a_ban_on_one_instance_is_enforced_by_every_instance_and_lifted_as_fast() {
    let redis = Redis::start();
    let app = DemoApp::start();
    let (a, b) = (instance(&app, &redis, "web-1"), instance(&app, &redis, "web-2"));
    both_up(&a, &b);
    let (code, text) = cli(&a, &["status"]);
    assert!(code == 0 && text.contains("cluster: shop as web-1, Redis ok"), "{text}");
    assert!(text.contains("web-1 (up), web-2 (up)"), "{text}");

    // By hand, on web-1.
    assert_eq!(from(&b, "203.0.113.9").await, 200);
    let (code, out) = cli(&a, &["blackbook", "ban", "203.0.113.9", "--for", "1h", "--reason", "seen scraping"]);
    assert_eq!(code, 0, "{out}");
    let ban_delay = until(&b, "203.0.113.9", 403).await;
    let (_, shown) = cli(&b, &["blackbook", "show", "203.0.113.9"]);
    assert!(shown.contains("seen scraping"), "web-2 knows the reason: {shown}");
    // Lifted on web-2: web-1 lets it through again.
    let (code, out) = cli(&b, &["blackbook", "unban", "203.0.113.9"]);
    assert_eq!(code, 0, "{out}");
    let unban_delay = until(&a, "203.0.113.9", 200).await;
    println!("ban propagation {ban_delay:?}, unban propagation {unban_delay:?}");
    assert!(ban_delay < Duration::from_secs(1) && unban_delay < Duration::from_secs(1));

    // By a jail, on web-1: two probes; web-2 refuses the address too.
    for p in ["/.env", "/.git/config"] {
        let _ = client().get(a.url(p)).header("x-forwarded-for", "198.51.100.20").send().await.unwrap();
    }
    until(&b, "198.51.100.20", 403).await;
    // The ban event is web-1's alone: web-2 applied it without a second alert.
    a.wait_event(|e| e["event"]["action"] == "malicious_ban" && e["kevlar"]["address"] == "198.51.100.20");
    assert!(b.events(&["--action", "malicious_ban"]).is_empty());
    // In Redis: one key per ban, expiring with it.
    let ttl = redis.command(&["PTTL", "kevlar:shop:ban:198.51.100.20"]);
    let ttl: i64 = ttl.trim().trim_start_matches(':').parse().unwrap();
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");
}

#[tokio::test]
async fn with_redis_gone_each_instance_goes_on_and_everything_is_merged_when_it_returns() {
    let mut redis = Redis::start();
    let app = DemoApp::start();
    let (a, b) = (instance(&app, &redis, "web-1"), instance(&app, &redis, "web-2"));
    both_up(&a, &b);
    assert_eq!(cli(&a, &["blackbook", "ban", "203.0.113.40", "--for", "1h"]).0, 0);
    until(&b, "203.0.113.40", 403).await;

    redis.stop();
    for k in [&a, &b] {
        let ev = k.wait_event(|e| e["event"]["action"] == "sys_cluster_degraded");
        assert_eq!(ev["log"]["level"], "alert");
    }
    // Clean traffic flows and known bans hold, with no Redis at all.
    assert_eq!(from(&a, "203.0.113.41").await, 200);
    assert_eq!(from(&b, "203.0.113.40").await, 403);
    assert_eq!(status(&b)["cluster"]["redis"], "degraded");
    // Bans made meanwhile, one on each side.
    assert_eq!(cli(&a, &["blackbook", "ban", "203.0.113.50", "--for", "1h"]).0, 0);
    assert_eq!(cli(&b, &["blackbook", "ban", "203.0.113.51", "--for", "1h"]).0, 0);
    assert_eq!(from(&b, "203.0.113.50").await, 200, "not shared while Redis is away");

    // Redis comes back empty: every ban is merged, none lost.
    redis.restart();
    for k in [&a, &b] {
        k.wait_event(|e| e["event"]["action"] == "sys_cluster_recovered");
    }
    until(&b, "203.0.113.50", 403).await;
    until(&a, "203.0.113.51", 403).await;
    assert_eq!(from(&a, "203.0.113.40").await, 403);
    assert_eq!(from(&b, "203.0.113.40").await, 403);
    let keys = redis.command(&["KEYS", "kevlar:shop:ban:*"]);
    for addr in ["203.0.113.40", "203.0.113.50", "203.0.113.51"] {
        assert!(keys.contains(addr), "{addr} in Redis again: {keys}");
    }
    // A clustered instance stops on SIGTERM like any other (its link lets go of the event bus).
    let (mut a, mut b) = (a, b);
    assert!(a.sigterm().success());
    redis.stop();
    assert!(b.sigterm().success(), "and with Redis away too");
}

/// One failed login from `ip` through `k`: the status it got.
async fn guess(k: &Kevlar, ip: &str) -> u16 {
    client()
        .post(k.url("/login"))
        .header("x-forwarded-for", ip)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=alice%40example.com&password=wrong-guess")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The attempt (1-based) at which a brute force sent round-robin over `ks` is first refused.
async fn refused_at(ks: &[&Kevlar], ip: &str) -> usize {
    for n in 1..=30 {
        if guess(ks[(n - 1) % ks.len()], ip).await == 403 {
            return n;
        }
    }
    panic!("{ip} was never refused in 30 attempts");
}

/// The jails count an attack spread over instances whole: the brute-force jail (5 failures a
/// minute) refuses a round-robin brute force over three instances at the same attempt as one
/// instance refuses it (± 1: a hit takes a moment to reach the others), with one ban event.
#[tokio::test]
async fn a_brute_force_spread_over_three_instances_is_refused_as_one_instance_refuses_it() {
    let redis = Redis::start();
    let app = DemoApp::start();
    let (a, b, c) = (instance(&app, &redis, "web-1"), instance(&app, &redis, "web-2"), instance(&app, &redis, "web-3"));
    all_up(&[&a, &b, &c]);
    let alone = refused_at(&[&a], "198.51.100.20").await;
    let spread = refused_at(&[&a, &b, &c], "198.51.100.21").await;
    eprintln!("refused at attempt {alone} against one instance, {spread} spread over three");
    assert!((5..=7).contains(&alone), "one instance: {alone}");
    assert!(spread.abs_diff(alone) <= 1, "spread over three: {spread}, one instance: {alone}");
    // One ban, made where the attempt crossed the line, enforced everywhere.
    for k in [&a, &b, &c] {
        until(k, "198.51.100.21", 403).await;
    }
    wait_until(10, "the ban event", || {
        [&a, &b, &c]
            .iter()
            .any(|k| k.events(&["--action", "malicious_ban"]).iter().any(|e| e["kevlar"]["address"] == "198.51.100.21"))
    });
    let bans: usize = [&a, &b, &c]
        .iter()
        .map(|k| {
            k.events(&["--action", "malicious_ban"])
                .iter()
                .filter(|e| e["kevlar"]["address"] == "198.51.100.21")
                .count()
        })
        .sum();
    // One: the instance that owns the address bans, whichever instance saw the last attempt.
    assert_eq!(bans, 1, "one ban event in the cluster");
}

/// `rediss://` with a password and a local CA (`[cluster] ca_file`): two instances share a ban
/// over TLS; an instance that does not trust the CA says Redis is unreachable and bans nothing
/// it should not.
#[tokio::test]
async fn instances_share_bans_over_tls_with_a_password_and_a_local_ca() {
    let certs = tempfile::tempdir().unwrap();
    let out = Command::new(KEVLAR).args(["cert", "--self-signed", "--out"]).arg(certs.path()).output().unwrap();
    assert!(out.status.success());
    let redis = Redis::start_tls(certs.path(), "s3cret-pass");
    let app = DemoApp::start();
    let cfg = |name: &str, ca: bool| {
        let ca = if ca { format!("ca_file = \"{}\"\n", certs.path().join("ca.pem").display()) } else { String::new() };
        format!(
            "[cluster]\nredis = \"{}\"\ninstance = \"{name}\"\nname = \"tls\"\n{ca}[bans]\nenforce = true\n",
            redis.tls_url()
        )
    };
    let start = |name: &str, ca: bool| {
        Kevlar::guard(&app.url()).config(&cfg(name, ca)).args(["--trusted-proxy", "127.0.0.1"]).start()
    };
    let (a, b) = (start("web-1", true), start("web-2", true));
    both_up(&a, &b);
    let (code, out) = cli(&a, &["blackbook", "ban", "203.0.113.44", "--for", "1h"]);
    assert_eq!(code, 0, "{out}");
    until(&b, "203.0.113.44", 403).await;
    // The password never shows in the status or the events.
    let s = status(&a).to_string();
    assert!(!s.contains("s3cret-pass"), "{s}");
    // Without the CA, the certificate is not trusted: the instance says so and carries on.
    let c = start("web-3", false);
    let ev = c.wait_event(|e| e["event"]["action"] == "sys_cluster_degraded");
    assert!(!ev.to_string().contains("s3cret-pass"), "{ev}");
    assert_eq!(from(&c, "203.0.113.44").await, 200, "web-3 never reached Redis");
    let sc = status(&c);
    assert_eq!(sc["cluster"]["redis"], "degraded", "{sc}");
    assert!(!sc.to_string().contains("s3cret-pass"), "{sc}");
}

/// The attempt (1-based) at which a guessing run round-robin over `ks` is first answered 429.
async fn locked_at(ks: &[&Kevlar], ip: &str) -> usize {
    for n in 1..=30 {
        if guess(ks[(n - 1) % ks.len()], ip).await == 429 {
            return n;
        }
    }
    panic!("{ip} never got 429");
}

/// The login monitor's (user, address) lockout counts failures on every instance: a guessing
/// run against one account from one address, sent round-robin to three instances with no jail
/// to ban it, is refused (429) at the same attempt as against one instance, and the lock made
/// on one instance holds on the others.
/// (No jail bans here: only the probes jail is configured.)
#[tokio::test]
async fn a_lockout_counts_failed_logins_from_every_instance() {
    let redis = Redis::start();
    let app = DemoApp::start();
    // Only a probes jail: the address is never banned, so the pair lockout alone refuses.
    let start = |name: &str| {
        let cfg = format!(
            "[cluster]\nredis = \"{}\"\ninstance = \"{name}\"\nname = \"locks\"\n[bans]\nenforce = true\n\
             [[bans.jail]]\nname = \"probes\"\nactions = [\"malicious_probe\"]\nmaxretry = 2\nfindtime = \"1m\"\nbantime = \"1h\"\n\
             [logins]\npair_failures = 6\n",
            redis.url()
        );
        Kevlar::guard(&app.url()).config(&cfg).args(["--trusted-proxy", "127.0.0.1"]).start()
    };
    let (a, b, c) = (start("web-1"), start("web-2"), start("web-3"));
    all_up(&[&a, &b, &c]);
    let alone = locked_at(&[&a], "198.51.100.40").await;
    let spread = locked_at(&[&a, &b, &c], "198.51.100.41").await;
    eprintln!("pair refused at attempt {alone} against one instance, {spread} spread over three");
    assert_eq!(alone, 7, "one instance: six failures lock the pair");
    assert!(spread.abs_diff(alone) <= 1, "spread over three: {spread}, one instance: {alone}");
    // Locked everywhere now, with one lockout event in the cluster.
    for k in [&a, &b, &c] {
        assert_eq!(guess(k, "198.51.100.41").await, 429);
    }
    let locks: usize = [&a, &b, &c]
        .iter()
        .map(|k| {
            k.events(&["--action", "authn_login_fail_max"])
                .iter()
                .filter(|e| e["source"]["ip"] == "198.51.100.41")
                .count()
        })
        .sum();
    assert!((1..=3).contains(&locks), "at most one lockout event per instance: {locks}");
}
