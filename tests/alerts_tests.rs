//! Alerts and log shipping against real peers on loopback: rsyslog (RFC 5424 over UDP, TCP with
//! octet-counting and newline framing, TLS), a `json_lines` TCP listener (Logstash), a webhook
//! receiver (JSON with HMAC, Slack), a real SMTP server (aiosmtpd, STARTTLS + AUTH) and the one
//! stand-in: an HTTP server that checks the request shape of Twilio's Messages API.
//! Then the outbox: an outage across `kill -9`, dead letters and retry, de-duplication, digests and
//! the per-sink rate budget.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::peers::{wait_until, HttpReceiver, LineListener, Rsyslog, Smtp};
use common::*;
use serde_json::{json, Value};

/// Kevlar with this config, in front of nothing (the events come through the admin API).
fn kevlar_with(config: &str) -> Kevlar {
    Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port())).config(config).start()
}

fn post_event(k: &Kevlar, ev: Value) -> String {
    let resp = ureq::post(&k.admin_url("/v1/events"))
        .set("Authorization", &format!("Bearer {}", k.token()))
        .set("Content-Type", "application/json")
        .send_string(&ev.to_string())
        .unwrap();
    assert_eq!(resp.status(), 201);
    serde_json::from_str::<Value>(&resp.into_string().unwrap()).unwrap()["event_id"].as_str().unwrap().to_owned()
}

fn event(action: &str, severity: u8, ip: &str, message: &str) -> Value {
    json!({
        "event": { "action": action, "category": "intrusion_detection", "severity": severity },
        "source": { "ip": ip },
        "message": message,
    })
}

fn kevlar_alerts(k: &Kevlar, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(KEVLAR)
        .arg("alerts")
        .args(args)
        .arg("--data-dir")
        .arg(&k.data_dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn alerts_json(k: &Kevlar) -> Value {
    let (code, out) = kevlar_alerts(k, &["--json"]);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).unwrap()
}

fn sink<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["sinks"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()
}

#[test]
fn syslog_reaches_rsyslog_over_udp_tcp_and_tls() {
    let rs = Rsyslog::start();
    let app = DemoApp::start();
    let config = format!(
        r#"
[[alerts.sink]]
name = "udp"
type = "syslog"
address = "127.0.0.1:{udp}"
transport = "udp"
app_name = "kevlar-udp"

[[alerts.sink]]
name = "tcp"
type = "syslog"
address = "127.0.0.1:{tcp}"
transport = "tcp"
framing = "octet-counting"
app_name = "kevlar-tcp"

[[alerts.sink]]
name = "tcp-newline"
type = "syslog"
address = "127.0.0.1:{tcp}"
transport = "tcp"
framing = "newline"
app_name = "kevlar-nl"

[[alerts.sink]]
name = "tls"
type = "syslog"
address = "127.0.0.1:{tls}"
transport = "tls"
app_name = "kevlar-tls"
ca_file = "{ca}"
"#,
        udp = rs.udp,
        tcp = rs.tcp,
        tls = rs.tls,
        ca = rs.ca().display()
    );
    let k = Kevlar::guard(&app.url()).config(&config).start();
    // A real attack through the proxy: the detection event travels store → outbox → syslog.
    let resp = ureq::get(&k.url("/?q=1%27%20UNION%20SELECT%20password%20FROM%20users--")).call().unwrap();
    assert_eq!(resp.status(), 200, "monitor mode forwards");
    for app_name in ["kevlar-udp", "kevlar-tcp", "kevlar-nl", "kevlar-tls"] {
        wait_until(20, &format!("{app_name} in rsyslog's file"), || {
            rs.lines().iter().any(|l| l.starts_with(&format!("{app_name} malicious_attack ")))
        });
    }
    let lines = rs.lines();
    let l = lines.iter().find(|l| l.starts_with("kevlar-tls malicious_attack ")).unwrap();
    assert!(l.contains("[kevlar@32473 id=\"") && l.contains(" ip=\"127.0.0.1\"") && l.contains(" path=\"/\""), "{l}");
    assert!(l.contains("action=\"malicious_attack\"") && l.ends_with("sqli attempt in args.q"), "{l}");
    // Startup events are shipped too (log sinks get everything), each message exactly once per sink.
    let tcp_attacks = lines.iter().filter(|l| l.starts_with("kevlar-tcp malicious_attack ")).count();
    assert_eq!(tcp_attacks, 1, "{lines:#?}");
    let st = alerts_json(&k);
    for s in ["udp", "tcp", "tcp-newline", "tls"] {
        assert_eq!(sink(&st, s)["state"], "ok", "{st}");
        assert!(sink(&st, s)["delivered"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn logstash_gets_json_lines() {
    let ls = LineListener::start();
    let k = Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port()))
        .config(&format!("[[alerts.sink]]\nname = \"ls\"\ntype = \"logstash\"\naddress = \"127.0.0.1:{}\"\n", ls.port))
        .start();
    let ids: Vec<String> = (0..20)
        .map(|i| post_event(&k, event("malicious_probe", 2, "192.0.2.9", &format!("probe {i}\nwith a newline"))))
        .collect();
    wait_until(20, "20 json lines", || {
        let lines = ls.lines.lock().unwrap();
        ids.iter().all(|id| lines.iter().any(|l| l.contains(id.as_str())))
    });
    for l in ls.lines.lock().unwrap().iter() {
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1, "one document per line: {l:?}");
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["event"]["action"].is_string() && v["@timestamp"].is_string(), "{v}");
    }
}

#[test]
fn stdout_gets_json_lines() {
    let k = Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port()))
        .config("[[alerts.sink]]\nname = \"out\"\ntype = \"stdout\"\n")
        .capture_stdout()
        .start();
    let id = post_event(&k, event("malicious_probe", 2, "192.0.2.3", "probe for /.env"));
    let out = k.stdout.clone().unwrap();
    wait_until(20, "the event on stdout", || std::fs::read_to_string(&out).unwrap_or_default().contains(&id));
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["event"]["action"].is_string(), "{line}");
    }
}

#[test]
fn webhooks_sign_and_speak_slack() {
    let hook = HttpReceiver::start(200);
    let slack = HttpReceiver::start(200);
    let config = format!(
        r#"
[[alerts.sink]]
name = "hook"
type = "webhook"
url = "{hook}"
secret = "env:KEVLAR_TEST_HOOK_SECRET"
headers = {{ "X-Team" = "blue" }}

[[alerts.sink]]
name = "slack"
type = "webhook"
url = "{slack}"
format = "slack"

[[alerts.route]]
actions = ["malicious_*"]
min_severity = "warning"
sinks = ["hook", "slack"]
"#,
        hook = hook.url("/kevlar"),
        slack = slack.url("/services/T0/B0/secretpath")
    );
    std::env::set_var("KEVLAR_TEST_HOOK_SECRET", "s3cret-hook-key");
    let k = kevlar_with(&config);
    let id = post_event(&k, event("malicious_attack", 3, "203.0.113.5", "SQL injection in q"));
    post_event(&k, event("malicious_probe", 2, "203.0.113.5", "below the route's severity"));
    post_event(&k, event("authn_login_fail", 3, "203.0.113.5", "not malicious traffic"));
    wait_until(20, "both webhooks", || !hook.all().is_empty() && !slack.all().is_empty());
    let r = &hook.all()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/kevlar"));
    assert_eq!(r.json()["event"]["id"], id.as_str());
    assert_eq!(r.header("idempotency-key"), Some(id.as_str()));
    assert_eq!(r.header("x-team"), Some("blue"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Kevlar-Signature: t=UNIX,v1=hex(HMAC-SHA256(secret, "UNIX.BODY")), checked independently.
    let sig = r.header("kevlar-signature").unwrap();
    let (t, v1) = sig.strip_prefix("t=").unwrap().split_once(",v1=").unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret-hook-key");
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let expect: String = ring::hmac::sign(&key, &signed).as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expect);
    let s = &slack.all()[0];
    let text = s.json()["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("*[Kevlar] warning: SQL injection in q*") && text.contains("`203.0.113.5`"), "{text}");
    // Only the routed event arrived; the secret is nowhere in Kevlar's output.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hook.all().len(), 1);
    assert!(!k.stderr().contains("s3cret-hook-key") && !k.stderr().contains("secretpath"));
}

#[test]
fn email_over_starttls_with_auth_reads_well() {
    let smtp = Smtp::start(true, Some(("kevlar", "smtp-pass-9f8e7d")));
    let config = format!(
        r#"
[[alerts.sink]]
name = "ops"
type = "email"
server = "localhost"
port = {port}
security = "starttls"
username = "kevlar"
password = "smtp-pass-9f8e7d"
from = "Kevlar <kevlar@example.com>"
to = ["ops@example.com", "oncall@example.com"]
ca_file = "{ca}"
"#,
        port = smtp.port,
        ca = smtp.ca().display()
    );
    let k = kevlar_with(&config);
    post_event(&k, event("malicious_attack", 3, "198.51.100.4", "below alert level: not mailed by default"));
    let id = post_event(
        &k,
        event(
            "malicious_ban",
            4,
            "198.51.100.4",
            "Banned 198.51.100.4 for 10m: 5 × malicious_attack in 10m (jail attacks)",
        ),
    );
    wait_until(20, "one email", || !smtp.mails().is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "only the alert-level event is mailed");
    let m = &mails[0];
    assert_eq!(m.envelope["tls"], true);
    assert_eq!(m.envelope["auth"], true);
    assert_eq!(m.envelope["to"], json!(["ops@example.com", "oncall@example.com"]));
    let raw = m.raw.replace("\r\n", "\n");
    assert!(raw.contains("Subject: [Kevlar] alert: Banned 198.51.100.4 for 10m"), "{raw}");
    assert!(raw.contains("Address      198.51.100.4") && raw.contains("Event        malicious_ban"), "{raw}");
    assert!(raw.contains(&id), "the body names the event id: {raw}");
    assert!(!k.stderr().contains("smtp-pass-9f8e7d"));
    assert_eq!(sink(&alerts_json(&k), "ops")["state"], "ok");
    // `kevlar alerts test` pages every sink that pages people.
    let (code, out) = kevlar_alerts(&k, &["test"]);
    assert_eq!(code, 0, "{out}");
    wait_until(20, "the test email", || smtp.mails().len() == 2);
    assert!(smtp.mails()[1].raw.contains("Subject: [Kevlar] alert: Test alert from `kevlar alerts test`"));
}

#[test]
fn email_over_implicit_tls() {
    let smtp = Smtp::start_implicit_tls();
    let config = format!(
        "[[alerts.sink]]\nname = \"smtps\"\ntype = \"email\"\nserver = \"127.0.0.1\"\nport = {}\nsecurity = \"tls\"\n\
         from = \"kevlar@example.com\"\nto = \"ops@example.com\"\nca_file = \"{}\"\n",
        smtp.port,
        smtp.ca().display()
    );
    let k = kevlar_with(&config);
    post_event(&k, event("sys_crash", 4, "127.0.0.1", "app instance 0 exited with code 1"));
    wait_until(20, "the email", || !smtp.mails().is_empty());
    let m = &smtp.mails()[0];
    assert_eq!(m.envelope["tls"], true);
    assert!(m.raw.contains("Subject: [Kevlar] alert: app instance 0 exited with code 1"), "{}", m.raw);
}

#[test]
fn sms_has_twilios_shape_and_a_budget() {
    // The one stand-in: a local server checking the request Twilio's Messages API documents.
    let twilio = HttpReceiver::start(201);
    let config = format!(
        r#"
[[alerts.sink]]
name = "sms"
type = "sms"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "tw-token-55aa"
from = "+15005550006"
to = ["+15551230001"]
base_url = "{base}"
rate_limit = "3/h"
dedup = "off"
"#,
        base = twilio.url("")
    );
    let k = kevlar_with(&config);
    let long = "x".repeat(600);
    post_event(&k, event("malicious_ban", 4, "192.0.2.50", &format!("Banned 192.0.2.50 {long}")));
    for i in 1..10 {
        post_event(&k, event("malicious_ban", 4, &format!("192.0.2.{}", 50 + i), "Banned"));
    }
    wait_until(20, "three messages, then the budget holds the rest", || {
        let st = alerts_json(&k);
        twilio.all().len() == 3 && sink(&st, "sms")["held"] == 7
    });
    let r = &twilio.all()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json");
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
    let basic = format!("Basic {}", base64_encode("AC0123456789abcdef0123456789abcdef:tw-token-55aa".as_bytes()));
    assert_eq!(r.header("authorization"), Some(basic.as_str()));
    let form: Vec<(String, String)> = form_decode(std::str::from_utf8(&r.body).unwrap());
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get("To"), "+15551230001");
    assert_eq!(get("From"), "+15005550006");
    let body = get("Body");
    assert!(
        body.starts_with("Kevlar alert: Banned 192.0.2.50 xxx") && body.len() <= 306 && body.ends_with("..."),
        "{body}"
    );
    assert!(!k.stderr().contains("tw-token-55aa"));
}

fn form_decode(s: &str) -> Vec<(String, String)> {
    let dec = |v: &str| -> String {
        let v = v.replace('+', " ");
        let b = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    s.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (dec(k), dec(v))).collect()
}

#[test]
fn dedup_sends_once_then_a_count_and_digests_summarise() {
    let hook = HttpReceiver::start(200);
    let digest = HttpReceiver::start(200);
    let config = format!(
        r#"
[[alerts.sink]]
name = "hook"
type = "webhook"
url = "{hook}"
dedup = "2s"

[[alerts.sink]]
name = "digest"
type = "webhook"
url = "{digest}"
digest = "2s"
dedup = "off"
"#,
        hook = hook.url("/h"),
        digest = digest.url("/d")
    );
    let k = kevlar_with(&config);
    for _ in 0..6 {
        post_event(&k, event("malicious_ban", 4, "192.0.2.77", "Banned 192.0.2.77"));
    }
    post_event(&k, event("malicious_ban", 4, "192.0.2.78", "Banned 192.0.2.78"));
    wait_until(20, "the first of each address, then one count", || hook.all().len() == 3);
    let got: Vec<Value> = hook.all().iter().map(|r| r.json()).collect();
    let repeat = got.iter().find(|v| v["kevlar"]["repeat_count"].is_number()).unwrap();
    assert_eq!(repeat["kevlar"]["repeat_count"], 5, "{got:#?}");
    assert_eq!(repeat["source"]["ip"], "192.0.2.77");
    assert!(repeat["message"].as_str().unwrap().contains("(and 5 more like it in 2 s)"));
    wait_until(20, "one digest", || !digest.all().is_empty());
    let d = digest.all()[0].json();
    assert_eq!(d["event"]["action"], "sys_alert_digest");
    assert_eq!(d["kevlar"]["digest_count"], 7, "{d}");
    assert_eq!(d["kevlar"]["digest"][0]["action"], "malicious_ban");
    assert_eq!(d["kevlar"]["digest"][0]["distinct_addresses"], 2);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(digest.all().len(), 1, "7 events, one message");
}

#[test]
fn an_outage_across_kill_9_loses_nothing() {
    // The webhook receiver is down; events are acknowledged by the admin API (committed to the
    // store); Kevlar is killed with SIGKILL; restarted; the receiver comes back where it was.
    let port = closed_port();
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[alerts]
backoff_min = "100ms"
backoff_max = "400ms"

[[alerts.sink]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:{port}/in"
dedup = "off"
rate_limit = "off"

[[alerts.sink]]
name = "file"
type = "file"
path = "alerts.jsonl"
"#
    );
    let mut k =
        Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port())).data_dir(data.path()).config(&config).start();
    let ids: Vec<String> =
        (0..40).map(|i| post_event(&k, event("malicious_ban", 4, &format!("198.51.100.{i}"), "Banned"))).collect();
    wait_until(20, "the failing sink to be reported", || {
        let st = alerts_json(&k);
        sink(&st, "hook")["state"] == "failing" && sink(&st, "hook")["pending"].as_u64().unwrap() > 0
    });
    // The failure is an event, delivered by the other sinks (not by the failing one).
    let file = data.path().join("alerts.jsonl");
    wait_until(20, "sys_sink_failed in the file sink", || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("\"sys_sink_failed\"") && l.contains("\"hook\""))
    });
    let status: Value = serde_json::from_str(
        &ureq::get(&k.admin_url("/v1/status"))
            .set("Authorization", &format!("Bearer {}", k.token()))
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["alerts"]["sinks"][0]["state"], "failing", "{status}");
    k.kill9();

    let k2 =
        Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port())).data_dir(data.path()).config(&config).start();
    wait_until(20, "the restarted Kevlar to find the sink still down", || {
        sink(&alerts_json(&k2), "hook")["state"] == "failing"
    });
    let hook = HttpReceiver::at(port, 200);
    wait_until(30, "every event delivered after the restart", || {
        let got: Vec<String> =
            hook.all().iter().map(|r| r.json()["event"]["id"].as_str().unwrap_or("").to_owned()).collect();
        ids.iter().all(|id| got.contains(id))
    });
    wait_until(10, "the outbox to empty", || sink(&alerts_json(&k2), "hook")["pending"] == 0);
    k2.wait_event(|e| e["event"]["action"] == "sys_sink_recovered" && e["kevlar"]["sink"] == "hook");
}

#[test]
fn dead_letters_are_listed_and_retried() {
    let hook = HttpReceiver::start(500);
    let config = format!(
        r#"
[alerts]
max_attempts = 2
backoff_min = "50ms"
backoff_max = "100ms"

[[alerts.sink]]
name = "hook"
type = "webhook"
url = "{url}"
"#,
        url = hook.url("/in")
    );
    let k = kevlar_with(&config);
    let id = post_event(&k, event("malicious_ban", 4, "192.0.2.200", "Banned 192.0.2.200"));
    wait_until(20, "a dead letter", || sink(&alerts_json(&k), "hook")["dead"] == 1);
    assert_eq!(hook.all().len(), 2, "two attempts, then it stopped");
    let st = alerts_json(&k);
    let dead = &st["dead"][0];
    assert_eq!((dead["event_id"].as_str(), dead["attempts"].as_i64()), (Some(id.as_str()), Some(2)));
    assert!(dead["last_error"].as_str().unwrap().contains("HTTP 500"), "{dead}");
    let (code, text) = kevlar_alerts(&k, &[]);
    assert_eq!(code, 0);
    assert!(text.contains("dead letters") && text.contains("HTTP 500") && text.contains("malicious_ban"), "{text}");
    let status = std::process::Command::new(KEVLAR).arg("status").arg("--data-dir").arg(&k.data_dir).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("alert sinks:") && status.contains("hook") && status.contains("1 dead"), "{status}");
    hook.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let (code, text) = kevlar_alerts(&k, &["retry", "--all"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1 dead letter(s) back in the queue"), "{text}");
    wait_until(20, "the retried delivery", || hook.all().len() == 3);
    assert_eq!(hook.all()[2].json()["event"]["id"], id.as_str());
    wait_until(10, "no dead letters left", || sink(&alerts_json(&k), "hook")["dead"] == 0);
    let (code, _) = kevlar_alerts(&k, &["retry", "--all"]);
    assert_eq!(code, 1, "nothing to retry");
}

#[test]
fn alert_config_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kevlar.toml");
    std::fs::write(
        &p,
        r#"
[[alerts.sink]]
name = "pager"
type = "pager"

[[alerts.sink]]
name = "hook"
type = "webhook"
url = "ftp://example.com/x"
retries = 3

[[alerts.route]]
min_severity = "loud"
sinks = ["nobody"]
"#,
    )
    .unwrap();
    let out = std::process::Command::new(KEVLAR).arg("validate").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for needle in [
        "kevlar.toml:4: alerts.sink[0].type: `pager` is not a sink type",
        "alerts.sink[1].url: `ftp://example.com/x` is not an http(s) URL",
        "kevlar.toml:10: alerts.sink[1].retries: unknown key",
        "alerts.route[0].min_severity: `loud` is not a severity",
        "alerts.route[0].sinks: no sink is named `nobody`",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}
