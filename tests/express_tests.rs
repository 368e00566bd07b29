//! The ways around inspection, sent to a real Express app (express 5, body-parser, qs, multer from
//! npm; `tests/express`) behind Kevlar. Each request is one that these parsers read and that
//! Kevlar once forwarded uninspected: in block mode it must be refused with an event; in monitor
//! mode it must reach the app byte for byte (the app hashes what it received) with the attack in
//! what the app parsed, and an event must say so. OWASP Top 10 A03 Injection.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::peers::wait_until;
use common::{client, deflate, gzip, sha256_hex, DemoApp, Kevlar};
use serde_json::Value;

const BLOCK: &str = "[detect]\nmode = \"block\"\n[bans]\nenforce = false\n";
const SQLI: &str = "1' union select password from users--";
const SQLI_URL: &str = "1%27%20union%20select%20password%20from%20users--";

/// Brotli as Node's zlib writes it (the encoder the app's own stack pairs with).
fn brotli(d: &[u8]) -> Vec<u8> {
    let mut c = Command::new("node")
        .args(["-e", "process.stdout.write(require('zlib').brotliCompressSync(require('fs').readFileSync(0)))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(d).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// One bypass: what is sent, and the text the app's parsers must have read from it.
struct Case {
    what: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    /// In monitor mode, the app's parsed view (body or query) contains this.
    reads: &'static str,
}

fn case(what: &'static str, ct: Option<&str>, enc: Option<&str>, body: Vec<u8>, reads: &'static str) -> Case {
    let mut headers = Vec::new();
    if let Some(ct) = ct {
        headers.push(("content-type", ct.to_owned()));
    }
    if let Some(enc) = enc {
        headers.push(("content-encoding", enc.to_owned()));
    }
    Case { what, path: "/echo".into(), headers, body: Some(body), reads }
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");

fn cases() -> Vec<Case> {
    let json_attack = format!(r#"{{"q":"{SQLI}","user":{{"$ne":null}}}}"#);
    let form_attack = format!("a=1&q={SQLI_URL}");
    let many: String = (0..600).map(|i| format!("p{i}=x&")).collect();
    let b = "WebKitFormBoundary7MA4YWxkTrZu0gW";
    let multipart = format!(
        "------{b}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n------{b}\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n{SQLI}\r\n------{b}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nplain file\r\n------{b}--\r\n"
    );
    vec![
        case("gzipped JSON", JSON, Some("gzip"), gzip(json_attack.as_bytes()), "union select"),
        case("deflated JSON", JSON, Some("deflate"), deflate(json_attack.as_bytes()), "union select"),
        case("brotli form", FORM, Some("br"), brotli(form_attack.as_bytes()), "union select"),
        case("gzipped form", FORM, Some("gzip"), gzip(form_attack.as_bytes()), "union select"),
        case(
            "the attack in a second gzip member",
            FORM,
            Some("gzip"),
            [gzip(b"a=1&"), gzip(format!("q={SQLI_URL}").as_bytes())].concat(),
            "union select",
        ),
        case(
            "a WebKit multipart boundary",
            Some(&format!("multipart/form-data; boundary=----{b}")),
            None,
            multipart.into_bytes(),
            "union select",
        ),
        case("600 form parameters first", FORM, None, format!("{many}q={SQLI_URL}").into_bytes(), "union select"),
        case(
            "17 KB of padding in the value",
            FORM,
            None,
            format!("q={}{SQLI_URL}", "a".repeat(17 * 1024)).into_bytes(),
            "union select",
        ),
        case(
            "after 64 KiB of body",
            FORM,
            None,
            format!("pad={}&q={SQLI_URL}", "b".repeat(70 * 1024)).into_bytes(),
            "union select",
        ),
        case(
            "a JSON array of 600 items",
            JSON,
            None,
            format!("[{}\"{SQLI}\"]", "1,".repeat(600)).into_bytes(),
            "union select",
        ),
        case(
            "JSON nested 34 levels",
            JSON,
            None,
            format!("{}\"{SQLI}\"{}", "[".repeat(34), "]".repeat(34)).into_bytes(),
            "union select",
        ),
        case("JSON with no Content-Type", None, None, json_attack.clone().into_bytes(), "union select"),
        case("text/plain", Some("text/plain"), None, SQLI.as_bytes().to_vec(), "union select"),
        case(
            "same-name form parameters",
            FORM,
            None,
            b"q=1%27%20union&q=select%20password%20from%20users--".to_vec(),
            "select password",
        ),
        case("a suspect word made at the seam of plain values", FORM, None, b"q=1+order&q=by+5".to_vec(), "by 5"),
        case(
            "qs bracket nesting in a form",
            FORM,
            None,
            b"q[a]=1%27%20union&q[b]=select%20password%20from%20users--".to_vec(),
            "select password",
        ),
        case(
            "a split attack after more names than Kevlar joins",
            FORM,
            None,
            format!(
                "{}q=1%27%20union&q=select%20password%20from%20users--",
                (0..2100).map(|i| format!("n{i}=x&")).collect::<String>()
            )
            .into_bytes(),
            "select password",
        ),
        Case {
            what: "indexed query parameters",
            path: "/echo?q[0]=1%27%20union&q[1]=select%20password%20from%20users--".into(),
            headers: vec![],
            body: None,
            reads: "select password",
        },
        Case {
            what: "600 query parameters first",
            path: format!("/echo?{many}q={SQLI_URL}"),
            headers: vec![],
            body: None,
            reads: "union select",
        },
    ]
}

/// Sends case `i`, tagged `case=i` in the query so that its events can be told apart.
async fn send(k: &Kevlar, i: usize, c: &Case) -> (u16, String) {
    // First in the query: a long query is shortened in the event.
    let url = match c.path.split_once('?') {
        Some((p, q)) => k.url(&format!("{p}?case={i}&{q}")),
        None => k.url(&format!("{}?case={i}", c.path)),
    };
    let mut r = match &c.body {
        Some(b) => client().post(url).body(b.clone()),
        None => client().get(url),
    };
    for (n, v) in &c.headers {
        r = r.header(*n, v);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// The `malicious_*` / `input_validation_fail` events of case `i`.
fn case_events(k: &Kevlar, i: usize) -> Vec<Value> {
    let tag = format!("case={i}");
    k.events(&["--limit", "10000"])
        .into_iter()
        .filter(|e| {
            let action = e["event"]["action"].as_str().unwrap_or("");
            (action.starts_with("malicious_") || action == "input_validation_fail")
                && e["url"]["query"].as_str().is_some_and(|q| q.split('&').any(|p| p == tag))
        })
        .collect()
}

#[tokio::test]
async fn block_mode_refuses_every_bypass_in_front_of_express() {
    let app = DemoApp::express();
    let k = Kevlar::guard(&app.url()).config(BLOCK).start();
    for (i, c) in cases().iter().enumerate() {
        let (status, text) = send(&k, i, c).await;
        assert_eq!(status, 403, "{}: {text}", c.what);
        wait_until(10, c.what, || !case_events(&k, i).is_empty());
        assert!(case_events(&k, i).iter().all(|e| e["kevlar"]["blocked"] == true), "{}", c.what);
    }
    // Clean traffic of the same shapes passes.
    let clean = [
        case("clean gzipped JSON", JSON, Some("gzip"), gzip(br#"{"name":"Jane","n":[1,2,3]}"#), ""),
        case("clean brotli form", FORM, Some("br"), brotli(b"name=Jane&city=Lyon"), ""),
        case("clean untyped JSON", None, None, br#"{"comment":"arrived on time"}"#.to_vec(), ""),
    ];
    for (i, c) in clean.iter().enumerate() {
        let (status, text) = send(&k, 100 + i, c).await;
        assert_eq!(status, 200, "{}: {text}", c.what);
    }
}

#[tokio::test]
async fn monitor_mode_forwards_every_bypass_to_express_byte_for_byte_and_tells() {
    let app = DemoApp::express();
    let k = Kevlar::guard(&app.url()).start();
    for (i, c) in cases().iter().enumerate() {
        let (status, text) = send(&k, i, c).await;
        assert_eq!(status, 200, "{}: {text}", c.what);
        let v: Value = serde_json::from_str(&text).unwrap();
        if let Some(body) = &c.body {
            assert_eq!(v["raw"]["sha256"], sha256_hex(body), "{}: the app must receive the body unchanged", c.what);
        }
        // The app really read the attack: this was a bypass, not a body nobody parses.
        let parsed = format!("{} {}", v["body"], v["query"]);
        assert!(parsed.contains(c.reads), "{}: the app parsed {parsed}", c.what);
        wait_until(10, c.what, || !case_events(&k, i).is_empty());
        assert!(case_events(&k, i).iter().all(|e| e["kevlar"]["blocked"] == false), "{}", c.what);
    }
}

#[tokio::test]
async fn compressed_and_untyped_logins_to_express_are_counted_and_banned() {
    let app = DemoApp::express();
    let k = Kevlar::guard(&app.url()).start();
    for i in 0..8 {
        let body = gzip(format!("email=alice%40example.com&password=guess-{i}").as_bytes());
        let resp = client()
            .post(k.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    // A JSON login with no Content-Type, which this app parses.
    let resp = client()
        .post(k.url("/login"))
        .body(r#"{"email":"alice@example.com","password":"correct horse battery staple"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let count = |action: &str| {
        k.events(&["--limit", "10000"])
            .into_iter()
            .filter(|e| e["event"]["action"] == action && e["user"]["name"] == "alice@example.com")
            .count()
    };
    wait_until(10, "eight failed logins and a success", || {
        count("authn_login_fail") == 8 && count("authn_login_success") == 1
    });
    let ban = k.wait_event(|e| e["event"]["action"] == "malicious_ban");
    assert_eq!(ban["kevlar"]["source"], "jail:login-fast");
}
