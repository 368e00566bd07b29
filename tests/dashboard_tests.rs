//! The dashboard on the admin port (docs/dashboard.md). In a real browser (Debian's Chromium
//! driven by playwright-core): sign in with the admin token, the live feed, one-click false
//! positives, a ban from the black book, every page by keyboard, no console error or CSP
//! violation, framing and cross-site posts refused. Over plain HTTP: the session cookie's
//! attributes, wrong tokens (recorded, then rate limited), missing CSRF tokens and cross-site
//! origins refused, each change an `authz_admin` event, and the `kevlar dashboard` command.
//! The defences follow OWASP's CSRF Prevention Cheat Sheet (synchronizer token, Fetch Metadata,
//! Origin check) and its Clickjacking Defense Cheat Sheet (`frame-ancestors`, `X-Frame-Options`).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::peers::wait_until;
use common::{repo, DemoApp, Kevlar, KEVLAR};
use serde_json::Value;

fn kevlar_cli(data_dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(KEVLAR).args(args).arg("--data-dir").arg(data_dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The addresses `kevlar blackbook list` reports banned.
fn banned(data_dir: &std::path::Path) -> Vec<String> {
    let (code, out, err) = kevlar_cli(data_dir, &["blackbook", "list", "--json", "--banned"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["banned"] == true)
        .map(|r| r["address"].as_str().unwrap().to_owned())
        .collect()
}

/// An HTTP client that never follows redirects (the tests look at them).
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

fn status(r: Result<ureq::Response, ureq::Error>) -> (u16, Option<ureq::Response>) {
    match r {
        Ok(r) => (r.status(), Some(r)),
        Err(ureq::Error::Status(c, r)) => (c, Some(r)),
        Err(e) => panic!("{e}"),
    }
}

/// Signs in and answers the session cookie (`name=value`) and the page's CSRF token.
fn sign_in(k: &Kevlar) -> (String, String) {
    let (code, r) = status(agent().post(&k.admin_url("/login")).send_form(&[("token", &k.token())]));
    assert_eq!(code, 303);
    let cookie = r.unwrap().header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let page = agent().get(&k.admin_url("/blackbook")).set("Cookie", &cookie).call().unwrap().into_string().unwrap();
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    (cookie, page[at..at + 64].to_owned())
}

#[test]
fn the_dashboard_in_a_real_browser() {
    assert!(
        repo().join("tests/browser/node_modules/playwright-core").exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium and playwright-core are installed by scripts/setup.sh"
    );
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).config("[detect]\nmode = \"block\"\n").start();
    let shots = repo().join("target/dashboard-screenshots");
    let out = Command::new("node")
        .arg(repo().join("tests/browser/dashboard.mjs"))
        .args([k.admin_url(""), k.url(""), k.token()])
        .arg(&shots)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], Value::Null, "{v:#}");

    // Sign-in: the login page first, a wrong token said so, the session cookie as it must be.
    assert_eq!(v["loginUrl"], "/login");
    assert!(v["wrongTokenAlert"].as_str().unwrap().contains("not the admin token"), "{v:#}");
    assert_eq!(v["afterLogin"], "Overview");
    let c = &v["cookie"];
    assert_eq!((c["httpOnly"].as_bool(), c["sameSite"].as_str()), (Some(true), Some("Strict")), "{c}");
    assert!(c["expires"].as_f64().unwrap() > 0.0, "the session expires: {c}");

    // The attack was blocked and appeared in the live feed without a reload, within a second
    // of the store's commit (the feed polls four times a second).
    assert_eq!(v["attackStatus"], 403);
    assert_eq!(v["reloadedForLive"], false);
    assert!(v["liveMs"].as_u64().unwrap() < 3000, "{v:#}");

    // One click: the exclusion shown, applied, and the same request passes without an event.
    let toml = v["proposedToml"].as_str().unwrap();
    assert!(toml.contains("path = \"/search\"\nexact = true") && toml.contains("families = [\"sqli\"]"), "{toml}");
    assert_eq!(v["exclusionToml"], v["proposedToml"]);
    assert_ne!(v["afterExclusionStatus"], 403, "{v:#}");
    let attacks = k
        .events(&["--limit", "10000"])
        .iter()
        .filter(|e| e["event"]["action"] == "malicious_attack" && e["url"]["path"] == "/search")
        .count();
    assert_eq!(attacks, 1, "the excluded request raised no second event");
    let saved: Value = serde_json::from_slice(&std::fs::read(k.data_dir.join("exclusions.json")).unwrap()).unwrap();
    assert_eq!(saved[0]["families"][0], "sqli");

    // Every page by keyboard, each with its own heading, and nothing the policy refused.
    for (name, path) in [
        ("Overview", "/"),
        ("Events", "/events"),
        ("Black book", "/blackbook"),
        ("Logins", "/logins"),
        ("Routes", "/routes"),
        ("App", "/app"),
        ("Alerts", "/alerts"),
        ("Dependencies", "/dependencies"),
        ("Exclusions", "/exclusions"),
    ] {
        assert_eq!(v["keyboard"][name], path, "{name}: {v:#}");
        assert!(shots.join(format!("{}.png", name.to_lowercase().replace(' ', "-"))).exists());
    }
    assert_eq!(v["consoleErrors"], serde_json::json!([]), "{v:#}");
    assert_eq!(v["cspViolations"], serde_json::json!([]), "{v:#}");

    // Framing and cross-site posts.
    assert_eq!(v["framedRefused"], true, "{v:#}");
    assert_eq!(v["framedLoginVisible"], 0);
    assert_eq!(v["crossSitePost"], 403, "{v:#}");
    assert!(!banned(&k.data_dir).contains(&"198.51.100.77".to_owned()), "the cross-site POST banned nobody");
    k.wait_event(|e| e["event"]["action"] == "authz_fail" && e["message"] == "dashboard: cross-site request");

    // The ban from the black-book page: shown, listed by the CLI, enforced on the next request.
    assert!(v["bannedShown"].as_str().unwrap().contains("seen in the dashboard test"), "{v:#}");
    assert_eq!(v["unbanButton"], 1);
    assert_eq!(banned(&k.data_dir), ["127.0.0.1"]);
    assert_eq!(v["afterBanStatus"], 403);
    let change = k.wait_event(|e| e["event"]["action"] == "authz_admin" && e["kevlar"]["change"] == "ban");
    assert_eq!(change["kevlar"]["source"], "dashboard");
    assert_eq!(change["kevlar"]["target"], "127.0.0.1");
}

#[test]
fn wrong_tokens_missing_csrf_and_cross_site_changes_are_refused() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();

    // Pages need a session; the login page says where the token is, and never shows it.
    let (code, r) = status(agent().get(&k.admin_url("/events?action=x")).call());
    assert_eq!(code, 303);
    assert_eq!(r.unwrap().header("location"), Some("/login?next=%2Fevents%3Faction%3Dx"));
    let login = agent().get(&k.admin_url("/login")).call().unwrap();
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
    let csp = login.header("content-security-policy").unwrap().to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let body = login.into_string().unwrap();
    assert!(body.contains("admin.token") && body.contains("name=\"token\"") && !body.contains(&k.token()));

    // The session cookie's attributes over plain HTTP on loopback (no `Secure` without TLS).
    let (code, r) = status(agent().post(&k.admin_url("/login")).send_form(&[("token", &k.token())]));
    assert_eq!(code, 303);
    let set = r.unwrap().header("set-cookie").unwrap().to_owned();
    for attr in ["kevlar_session=", "HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    let (cookie, csrf) = sign_in(&k);
    let page = |path: &str| status(agent().get(&k.admin_url(path)).set("Cookie", &cookie).call()).0;
    for p in [
        "/",
        "/?range=day",
        "/?range=month",
        "/events",
        "/events?action=malicious_*",
        "/blackbook",
        "/logins",
        "/routes",
        "/app",
        "/alerts",
        "/dependencies",
        "/exclusions",
    ] {
        assert_eq!(page(p), 200, "{p}");
    }
    assert_eq!(page("/events?since=whenever"), 400);
    assert_eq!(page("/events/999999"), 404);
    assert_eq!(page("/blackbook/not-an-address"), 400);

    // A change without the CSRF token, with a wrong one, or from another origin: refused, and
    // nobody banned.
    let ban = |extra: &[(&str, &str)], origin: Option<&str>| {
        let mut req = agent().post(&k.admin_url("/blackbook/198.51.100.8/ban")).set("Cookie", &cookie);
        if let Some(o) = origin {
            req = req.set("Origin", o);
        }
        let mut form = vec![("for", "1h")];
        form.extend_from_slice(extra);
        status(req.send_form(&form)).0
    };
    assert_eq!(ban(&[], None), 403);
    assert_eq!(ban(&[("csrf", &"0".repeat(64))], None), 403);
    assert_eq!(ban(&[("csrf", &csrf)], Some("http://evil.example")), 403);
    assert!(banned(&k.data_dir).is_empty());
    // Without a session at all.
    let (code, _) = status(agent().post(&k.admin_url("/blackbook/198.51.100.8/ban")).send_form(&[("csrf", &csrf)]));
    assert_eq!(code, 403);

    // With both: banned, and the change is an event of its own.
    assert_eq!(ban(&[("csrf", &csrf), ("reason", "test")], Some(&format!("http://{}", k.admin))), 303);
    assert_eq!(banned(&k.data_dir), ["198.51.100.8"]);
    k.wait_event(|e| e["event"]["action"] == "authz_admin" && e["kevlar"]["target"] == "198.51.100.8");
    let (code, _) = status(
        agent()
            .post(&k.admin_url("/blackbook/198.51.100.8/unban"))
            .set("Cookie", &cookie)
            .send_form(&[("csrf", &csrf)]),
    );
    assert_eq!(code, 303);
    k.wait_event(|e| e["event"]["action"] == "authz_admin" && e["kevlar"]["change"] == "unban");

    // Signing out ends the session.
    let (code, _) = status(agent().post(&k.admin_url("/logout")).set("Cookie", &cookie).send_form(&[("csrf", &csrf)]));
    assert_eq!(code, 303);
    assert_eq!(page("/"), 303);

    // Wrong tokens: each recorded, and after five a minute the address waits.
    for _ in 0..5 {
        let (code, r) = status(agent().post(&k.admin_url("/login")).send_form(&[("token", "guess")]));
        assert_eq!(code, 303);
        assert_eq!(r.unwrap().header("location"), Some("/login?failed=1"));
    }
    let (code, r) = status(agent().post(&k.admin_url("/login")).send_form(&[("token", &k.token())]));
    assert_eq!(code, 429, "even the right token waits once the address is limited");
    assert!(r.unwrap().header("retry-after").is_some());
    wait_until(10, "five wrong-token events", || {
        k.events(&["--action", "authz_fail", "--limit", "1000"])
            .iter()
            .filter(|e| e["message"] == "dashboard: wrong admin token")
            .count()
            == 5
    });
    for file in ["events.db", "events.db-wal"] {
        let bytes = std::fs::read(k.data_dir.join(file)).unwrap_or_default();
        let token = k.token();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "the token is never stored ({file})");
    }
}

#[test]
fn kevlar_dashboard_prints_the_url_and_the_token_file() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let (code, out, err) = kevlar_cli(&k.data_dir, &["dashboard", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["url"], format!("http://{}/", k.admin));
    assert!(v["token_file"].as_str().unwrap().ends_with("admin.token"));
    assert!(!out.contains(&k.token()), "the token itself is not printed");
    let (code, out, _) = kevlar_cli(&k.data_dir, &["dashboard"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("http://{}/", k.admin)), "{out}");
    drop(k);
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = kevlar_cli(dir.path(), &["dashboard"]);
    assert_eq!(code, 2);
    assert!(err.contains("is Kevlar running"), "{err}");
}

/// The dashboard's own pages, served over TLS on the admin port, graded by the MDN HTTP
/// Observatory's own code: A+ (no HTTP listener, so no redirection is needed).
#[test]
fn the_dashboard_passes_the_mdn_http_observatory() {
    assert!(
        repo().join("tests/observatory/node_modules/@mdn/mdn-http-observatory").exists(),
        "the MDN HTTP Observatory is installed by scripts/setup.sh"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(KEVLAR).args(["cert", "--self-signed", "--out"]).arg(tmp.path()).output().unwrap();
    assert!(out.status.success());
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url())
        .config(&format!(
            "[admin]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            tmp.path().join("cert.pem").display(),
            tmp.path().join("key.pem").display()
        ))
        .start();
    let out = Command::new("node")
        .arg(repo().join("tests/observatory/grade.mjs"))
        .args(["localhost", &common::closed_port().to_string(), &k.admin.port().to_string()])
        .env("NODE_EXTRA_CA_CERTS", tmp.path().join("ca.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let g: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(g["verified"], true, "{g:#}");
    for (test, t) in g["tests"].as_object().unwrap() {
        assert_eq!(t["pass"], true, "{test}: {g:#}");
    }
    assert_eq!(g["grade"], "A+", "{g:#}");
}
