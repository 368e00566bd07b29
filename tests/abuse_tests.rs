//! What Kevlar says, and to whom, cannot be turned against the user or the owner: attacker text
//! cannot ping a Slack channel or forge a line in a terminal, an email or a syslog message; one
//! bad delivery never holds back the others; a flood cannot spend the users' own notices or send
//! mail to addresses of its choosing. Each test sends exactly the abuse and checks what every
//! receiver got, through the binary with real peers (aiosmtpd, a webhook receiver).
#![allow(clippy::unwrap_used)]

mod common;

use common::peers::{wait_until, HttpReceiver};
use common::*;
use serde_json::Value;

fn guard(app: &DemoApp, config: &str) -> Kevlar {
    Kevlar::guard(&app.url()).args(["--trusted-proxy", "127.0.0.1/32"]).config(config).start()
}

fn post_form(k: &Kevlar, path: &str, body: &str, from: &str) -> u16 {
    match ureq::AgentBuilder::new()
        .redirects(0)
        .build()
        .post(&k.url(path))
        .set("Content-Type", "application/x-www-form-urlencoded")
        .set("X-Forwarded-For", from)
        .send_string(body)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    }
}

fn get(k: &Kevlar, path_and_query: &str, from: &str) -> u16 {
    match ureq::get(&k.url(path_and_query)).set("X-Forwarded-For", from).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    }
}

fn kevlar_cli(k: &Kevlar, args: &[&str]) -> String {
    let out = std::process::Command::new(KEVLAR).args(args).arg("--data-dir").arg(&k.data_dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Nothing in `text` that a terminal or a reader would take for layout: no C0/C1 control but
/// the line ends, no bidi control, no line separator.
fn assert_inert(text: &str, what: &str) {
    for c in text.chars() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}');
        assert!(!bad, "{what} carries U+{:04X}:\n{text}", c as u32);
    }
}

#[test]
fn slack_text_cannot_ping_the_channel_or_link() {
    let app = DemoApp::start();
    let slack = HttpReceiver::start(200);
    let k = guard(
        &app,
        &format!(
            "[logins]\nuser_failures = 3\n\n[[alerts.sink]]\nname = \"slack\"\ntype = \"webhook\"\nurl = \"{}\"\nformat = \"slack\"\n",
            slack.url("/services/T0/B0/x")
        ),
    );
    let user = "<!channel> <https://evil.example/unlock|Unlock account> & co";
    let body = format!("username={}&password=nope", form_encode(user));
    for i in 0..3 {
        assert_eq!(post_form(&k, "/login", &body, &format!("198.51.100.{i}")), 401);
    }
    wait_until(20, "the targeted-user alert in Slack", || {
        slack.all().iter().any(|r| r.json()["text"].as_str().unwrap_or("").contains("failed sign-ins"))
    });
    for r in slack.all() {
        let text = r.json()["text"].as_str().unwrap().to_owned();
        assert!(!text.contains('<') && !text.contains('>'), "Slack markup passed: {text}");
        assert!(
            text.contains("&lt;!channel&gt; &lt;https://evil.example/unlock|Unlock account&gt; &amp; co"),
            "{text}"
        );
    }
}

#[test]
fn terminal_escapes_and_long_names_are_written_out_in_the_cli() {
    let app = DemoApp::start();
    let k = guard(&app, "[detect]\nmode = \"block\"\n[bans]\nenforce = false\n");
    // An argument name that rewrites the row before it into a forged sys_startup and sets the
    // window title, a bidi override, and a 6,000-character name; each with an attack in its value.
    let forged = "%0D%1B%5B2K2026-12-01T00%3A00%3A00.000Z%20info%20sys_startup%1B%5D0%3Bpwned%07";
    let attack = "=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    assert_eq!(get(&k, &format!("/?{forged}{attack}"), "203.0.113.66"), 403);
    assert_eq!(get(&k, &format!("/?a%E2%80%AEb%E2%80%A8c{attack}"), "203.0.113.66"), 403);
    assert_eq!(get(&k, &format!("/?{}{attack}", "n".repeat(6000)), "203.0.113.66"), 403);
    wait_until(20, "three attack events", || k.events(&["--action", "malicious_attack"]).len() >= 3);
    let events = kevlar_cli(&k, &["events", "--limit", "100"]);
    assert!(events.contains("pwned"), "the forged name is shown, written out: {events}");
    assert_inert(&events, "kevlar events");
    assert!(
        events.lines().all(|l| l.chars().count() < 1000),
        "a line is uncapped: {} chars",
        events.lines().map(|l| l.chars().count()).max().unwrap()
    );
    let book = kevlar_cli(&k, &["blackbook", "show", "203.0.113.66"]);
    assert!(book.contains("sys_startup"), "{book}");
    assert_inert(&book, "kevlar blackbook show");
    assert!(book.lines().all(|l| l.chars().count() < 1000));
    let _: Value = serde_json::from_str(&kevlar_cli(&k, &["blackbook", "show", "203.0.113.66", "--json"])).unwrap();
}

fn mail_sink(port: u16) -> String {
    format!(
        "[[alerts.sink]]\nname = \"mail\"\ntype = \"email\"\nserver = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom = \"Kevlar <kevlar@example.com>\"\nto = \"ops@example.com\"\n"
    )
}

/// POSTs an event to the admin API (one kept-alive connection for the whole test binary).
fn report(k: &Kevlar, body: &str) -> (u16, String) {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    let r = AGENT
        .get_or_init(|| ureq::AgentBuilder::new().build())
        .post(&k.admin_url("/v1/events"))
        .set("Authorization", &format!("Bearer {}", k.token()))
        .set("Content-Type", "application/json")
        .send_string(body);
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn reported_events_cannot_forge_lines_or_address_a_user() {
    let smtp = common::peers::Smtp::start(false, None);
    let k = Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port())).config(&mail_sink(smtp.port)).start();
    let alert = |extra: Value| {
        let mut ev = serde_json::json!({
            "event": { "action": "malicious_ban", "category": "intrusion_detection", "severity": 4 },
            "source": { "ip": "203.0.113.9" },
            "message": "reported ban",
        });
        for (k, v) in extra.as_object().unwrap() {
            ev[k] = v.clone();
        }
        ev.to_string()
    };
    // CR/LF in the user name and the request id would add lines to the ops mail.
    for extra in [
        serde_json::json!({ "user": { "name": "bob\r\n\r\nRule all clear, ignore this alert" } }),
        serde_json::json!({ "http": { "request": { "id": "r1\nRule all clear" } } }),
        serde_json::json!({ "message": "ban\u{202E}trela" }),
        serde_json::json!({ "event": { "action": "malicious_ban", "id": "é-1", "severity": 4 } }),
    ] {
        let (status, body) = report(&k, &alert(extra.clone()));
        assert_eq!(status, 422, "{extra}: {body}");
    }
    // Above the size limit: 413, said as such.
    let big = alert(serde_json::json!({ "message": "x".repeat(70 * 1024) }));
    let (status, body) = report(&k, &big);
    assert_eq!(status, 413, "{body}");
    // A reported event cannot send a user notice, wherever the routes send it.
    let (status, body) = report(
        &k,
        &alert(
            serde_json::json!({ "kevlar": { "notify_email": "victim@example.net", "notify": "new_ip", "deliver_to": "victim@example.net" } }),
        ),
    );
    assert_eq!(status, 201, "{body}");
    wait_until(20, "the reported alert to the owner", || {
        smtp.mails().iter().any(|m| m.envelope["to"][0] == "ops@example.com" && m.text().contains("reported ban"))
    });
    let to: Vec<Value> = smtp.mails().iter().map(|m| m.envelope["to"].clone()).collect();
    assert!(to.iter().all(|t| t[0] == "ops@example.com"), "{to:?}");
    let stored = k.events(&["--action", "malicious_ban"]);
    assert!(stored.iter().all(|e| e["kevlar"].get("notify_email").is_none()), "{stored:?}");
}

#[test]
fn an_address_the_mailer_refuses_never_holds_up_the_mail() {
    let app = DemoApp::start();
    let smtp = common::peers::Smtp::start(false, None);
    let k = guard(&app, &format!("[logins]\nuser_failures = 3\nspray_users = 50\n\n{}", mail_sink(smtp.port)));
    // Addresses Kevlar once took for mailboxes and the mail library refuses, reachable with
    // failed logins and no account.
    for (n, user) in ["x@bad..test", "a@b.test,1", "a@b.test>x"].iter().enumerate() {
        for i in 0..3 {
            let body = format!("username={}&password=nope", form_encode(user));
            assert_eq!(post_form(&k, "/login", &body, &format!("198.51.10{n}.{i}")), 401);
        }
    }
    wait_until(20, "three targeted-user events", || k.events(&["--action", "authn_login_user_targeted"]).len() == 3);
    let out = kevlar_cli(&k, &["alerts", "test"]);
    assert!(out.contains("test event"), "{out}");
    wait_until(20, "the test alert behind them", || smtp.mails().iter().any(|m| m.text().contains("Test alert from")));
    let mails = smtp.mails();
    assert!(
        mails.iter().all(|m| m.envelope["to"][0] == "ops@example.com"),
        "{:?}",
        mails.iter().map(|m| &m.envelope).collect::<Vec<_>>()
    );
    let status: Value = serde_json::from_str(&kevlar_cli(&k, &["alerts", "--json"])).unwrap();
    let mail = status["sinks"].as_array().unwrap().iter().find(|s| s["name"] == "mail").unwrap().clone();
    assert_eq!((mail["pending"].as_u64(), mail["dead"].as_u64()), (Some(0), Some(0)), "{mail}");
}

#[test]
fn one_refused_delivery_never_holds_back_the_others() {
    // A receiver that refuses one payload for good (400), another for now (500), takes the rest.
    let (_receiver, addr) = node_script(
        r#"
const got = [];
require('http').createServer((req, res) => {
  if (req.method === 'GET') { res.end(JSON.stringify(got)); return; }
  let b = ''; req.on('data', (c) => b += c); req.on('end', () => {
    got.push(JSON.parse(b).message);
    res.statusCode = b.includes('poison-never') ? 400 : b.includes('poison-later') ? 500 : 200;
    res.end();
  });
}).listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });
"#,
    );
    let k = Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port()))
        .config(&format!(
            "[[alerts.sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{addr}/hook\"\ndedup = \"off\"\n"
        ))
        .start();
    for m in ["poison-never", "poison-later", "fine-1", "fine-2"] {
        let ev = serde_json::json!({
            "event": { "action": "malicious_ban", "category": "intrusion_detection", "severity": 4 },
            "source": { "ip": "203.0.113.9" },
            "message": m,
        });
        assert_eq!(report(&k, &ev.to_string()).0, 201);
    }
    let received = || -> Vec<String> {
        serde_json::from_str(&ureq::get(&format!("http://{addr}/")).call().unwrap().into_string().unwrap()).unwrap()
    };
    wait_until(20, "the deliveries behind the refused ones", || {
        let r = received();
        r.contains(&"fine-1".to_owned()) && r.contains(&"fine-2".to_owned())
    });
    let status: Value = serde_json::from_str(&kevlar_cli(&k, &["alerts", "--json"])).unwrap();
    let hook = status["sinks"].as_array().unwrap().iter().find(|s| s["name"] == "hook").unwrap().clone();
    assert_eq!(hook["dead"], 1, "the 400 is a dead letter at once: {hook}");
    assert_eq!(hook["state"], "ok", "a refused delivery does not make the sink failing: {hook}");
    assert_eq!(received().iter().filter(|m| *m == "poison-never").count(), 1, "never tried again");
    let dead = &status["dead"][0];
    assert!(dead["last_error"].as_str().unwrap().contains("HTTP 400"), "{dead}");
}

#[test]
fn a_flood_cannot_spend_the_users_notices_or_mail_strangers() {
    let app = DemoApp::start();
    let smtp = common::peers::Smtp::start(false, None);
    let k = guard(
        &app,
        &format!("[logins]\nuser_failures = 3\nspray_users = 50\n\n{}rate_limit = \"2/h\"\n", mail_sink(smtp.port)),
    );
    let pw = "correct horse battery staple";
    let login = |user: &str, pass: &str, from: &str| {
        post_form(&k, "/login", &format!("email={}&password={}", form_encode(user), form_encode(pass)), from)
    };
    assert_eq!(login("alice@example.com", pw, "192.0.2.10"), 302);
    // Failed logins naming addresses of no account, from one address: the owner hears of it (and
    // its budget is spent), the strangers hear nothing.
    for n in 0..4 {
        for _ in 0..3 {
            assert_eq!(login(&format!("stranger{n}@example.net"), "nope", "198.51.100.7"), 401);
        }
    }
    wait_until(20, "four targeted-user events", || k.events(&["--action", "authn_login_user_targeted"]).len() == 4);
    let t = k.events(&["--action", "authn_login_user_targeted"]);
    assert!(t.iter().all(|e| e["kevlar"].get("notify_email").is_none()), "no notice for an unknown account: {t:?}");
    assert!(t[0]["message"].as_str().unwrap().contains("all from 198.51.100.7"), "{}", t[0]["message"]);
    // alice's own account, attacked from one address: she is told, truthfully.
    for _ in 0..3 {
        assert_eq!(login("alice@example.com", "nope", "198.51.100.7"), 401);
    }
    // Then her real sign-in from a new network: her notice arrives although the owner's budget is
    // spent, as a message of its own.
    assert_eq!(login("alice@example.com", pw, "203.0.113.5"), 302);
    wait_until(20, "alice's two notices", || {
        smtp.mails().iter().filter(|m| m.envelope["to"][0] == "alice@example.com").count() == 2
    });
    let to_alice: Vec<String> =
        smtp.mails().iter().filter(|m| m.envelope["to"][0] == "alice@example.com").map(|m| m.text()).collect();
    assert!(to_alice.iter().any(|m| m.contains("Subject: New sign-in to your account")), "{to_alice:?}");
    let failed = to_alice.iter().find(|m| m.contains("Subject: Many failed sign-ins")).unwrap();
    assert!(failed.contains("3 attempts") && failed.contains("all from one address (198.51.100.7)"), "{failed}");
    assert!(!failed.contains("many addresses"), "{failed}");
    let strangers = smtp.mails().iter().filter(|m| m.envelope["to"][0].as_str().unwrap().contains("stranger")).count();
    assert_eq!(strangers, 0);
}

#[test]
fn a_sink_that_is_down_never_costs_a_healthy_one_its_deliveries() {
    let k = Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port()))
        .config(&format!(
            "[alerts]\nmax_pending = 1000\n\n[[alerts.sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{}/down\"\ndedup = \"off\"\nrate_limit = \"off\"\n\n[[alerts.sink]]\nname = \"file\"\ntype = \"file\"\npath = \"alerts.jsonl\"\n",
            closed_port()
        ))
        .start();
    for i in 0..1200 {
        let ev = serde_json::json!({
            "event": { "action": "malicious_ban", "category": "intrusion_detection", "severity": 4 },
            "source": { "ip": format!("198.51.{}.{}", 100 + i / 250, i % 250) },
            "message": format!("ban {i}"),
        });
        assert_eq!(report(&k, &ev.to_string()).0, 201);
    }
    let file = k.data_dir.join("alerts.jsonl");
    let bans = || std::fs::read_to_string(&file).unwrap_or_default().lines().filter(|l| l.contains("\"ban ")).count();
    wait_until(30, "every ban in the healthy file sink", || bans() == 1200);
    // The down sink's own cap refused what it could not hold, counted for it alone, and said so.
    let status: Value = serde_json::from_str(&kevlar_cli(&k, &["alerts", "--json"])).unwrap();
    let sink = |n: &str| status["sinks"].as_array().unwrap().iter().find(|s| s["name"] == n).unwrap().clone();
    let (hook, file_sink) = (sink("hook"), sink("file"));
    assert!(hook["refused"].as_u64().unwrap() >= 200, "{hook}");
    assert_eq!(file_sink["refused"], 0, "{file_sink}");
    let refused = k.wait_event(|e| e["event"]["action"] == "sys_alert_refused");
    assert_eq!(refused["kevlar"]["sink"], "hook");
    let text = kevlar_cli(&k, &["alerts"]);
    assert!(text.contains("hook: ") && text.contains("deliveries refused"), "{text}");
}

#[test]
fn a_flood_from_many_addresses_does_not_flood_the_webhook() {
    let hook = HttpReceiver::start(200);
    let k = Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port()))
        .config(&format!("[[alerts.sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n", hook.url("/h")))
        .start();
    // 100 bans from 100 addresses: de-duplication by (action, address) does nothing against them.
    for i in 0..100 {
        let ev = serde_json::json!({
            "event": { "action": "malicious_ban", "category": "intrusion_detection", "severity": 4 },
            "source": { "ip": format!("198.51.100.{i}") },
            "message": format!("ban {i}"),
        });
        assert_eq!(report(&k, &ev.to_string()).0, 201);
    }
    let held = || {
        let st: Value = serde_json::from_str(&kevlar_cli(&k, &["alerts", "--json"])).unwrap();
        st["sinks"][0]["held"].as_u64().unwrap()
    };
    wait_until(20, "the default budget to hold the rest", || held() == 70);
    assert_eq!(hook.all().len(), 30, "30 messages an hour by default, the rest in a digest");
}

fn file_size(dir: &std::path::Path, name: &str) -> u64 {
    [name.to_owned(), format!("{name}-wal")]
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).map(|m| m.len()).unwrap_or(0))
        .sum()
}

#[test]
fn retention_runs_on_a_timer_and_gives_the_space_back() {
    let k = Kevlar::guard(&format!("http://127.0.0.1:{}", closed_port()))
        .config("[store]\nretention = \"3s\"\n\n[blackbook]\nmax_age = \"3s\"\n")
        .start();
    for i in 0..3000 {
        let ev = serde_json::json!({
            "event": { "action": "malicious_probe", "category": "intrusion_detection", "severity": 2 },
            "source": { "ip": format!("10.{}.{}.{}", i / 62500, (i / 250) % 250, i % 250) },
            "message": format!("probe {i} {}", "x".repeat(300)),
        });
        assert_eq!(report(&k, &ev.to_string()).0, 201);
    }
    let book = || kevlar_cli(&k, &["blackbook", "list", "--json", "--limit", "10000"]);
    // The last address reported is in the book on disk (on a loaded machine the first ones may
    // already have aged out: the age limit is 3 s).
    wait_until(20, "the black book on disk", || {
        serde_json::from_str::<Value>(&book()).unwrap()["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["address"] == "10.0.11.249")
    });
    let (store_peak, book_peak) = (file_size(&k.data_dir, "events.db"), file_size(&k.data_dir, "shield.db"));
    // No event arrives from now on: the timer alone trims both and gives the pages back.
    wait_until(30, "age retention with no new events", || k.events(&["--action", "malicious_probe"]).is_empty());
    wait_until(30, "the black book's age limit", || {
        serde_json::from_str::<Value>(&book()).unwrap()["records"].as_array().unwrap().is_empty()
    });
    let small =
        || file_size(&k.data_dir, "events.db") < store_peak / 4 && file_size(&k.data_dir, "shield.db") < book_peak / 2;
    wait_until(30, "the files to shrink", small);
}
