//! Logins recognised wherever a password is sent, with no configuration: each framework's shape
//! (tests/fixtures/apps/login-shapes.js answers exactly as the framework documents), its failure
//! and its success told from the answer; forms that only look like logins are not logins.
#![allow(clippy::unwrap_used)]

mod common;

use common::peers::wait_until;
use common::*;
use serde_json::Value;

struct Shape {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: fn(&str) -> String,
    user: &'static str,
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect::<Vec<_>>().join("&")
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            name: "Auth.js credentials",
            path: "/api/auth/callback/credentials",
            content_type: FORM,
            body: |pw| {
                form(&[("csrfToken", "t0k"), ("email", "alice@example.com"), ("password", pw), ("callbackUrl", "/")])
            },
            user: "alice@example.com",
        },
        Shape {
            name: "Strapi",
            path: "/api/auth/local",
            content_type: JSON,
            body: |pw| serde_json::json!({ "identifier": "alice", "password": pw }).to_string(),
            user: "alice",
        },
        Shape {
            name: "Ghost",
            path: "/ghost/api/admin/session",
            content_type: JSON,
            body: |pw| serde_json::json!({ "username": "alice@example.com", "password": pw }).to_string(),
            user: "alice@example.com",
        },
        Shape {
            name: "Devise",
            path: "/users/sign_in",
            content_type: FORM,
            body: |pw| {
                form(&[
                    ("authenticity_token", "t"),
                    ("user[email]", "alice@example.com"),
                    ("user[password]", pw),
                    ("commit", "Log in"),
                ])
            },
            user: "alice@example.com",
        },
        Shape {
            name: "Django",
            path: "/accounts/login/",
            content_type: FORM,
            body: |pw| form(&[("csrfmiddlewaretoken", "t"), ("username", "alice"), ("password", pw), ("next", "/")]),
            user: "alice",
        },
        Shape {
            name: "WordPress",
            path: "/wp-login.php",
            content_type: FORM,
            body: |pw| form(&[("log", "alice"), ("pwd", pw), ("wp-submit", "Log In"), ("testcookie", "1")]),
            user: "alice",
        },
        Shape {
            name: "nested JSON user",
            path: "/api/v1/auth",
            content_type: JSON,
            body: |pw| serde_json::json!({ "user": { "email": "alice@example.com", "password": pw } }).to_string(),
            user: "alice@example.com",
        },
        Shape {
            name: "GraphQL mutation",
            path: "/graphql",
            content_type: JSON,
            body: |pw| {
                serde_json::json!({
                "query": "mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { token } }",
                "variables": { "email": "alice@example.com", "password": pw },
            }).to_string()
            },
            user: "alice@example.com",
        },
        Shape {
            name: "token endpoint",
            path: "/api/sanctum/token",
            content_type: JSON,
            body: |pw| {
                serde_json::json!({ "email": "alice@example.com", "password": pw, "device_name": "phone" }).to_string()
            },
            user: "alice@example.com",
        },
        Shape {
            name: "OAuth 2 password grant",
            path: "/oauth/token",
            content_type: FORM,
            body: |pw| {
                form(&[("grant_type", "password"), ("username", "alice"), ("password", pw), ("client_id", "app")])
            },
            user: "alice",
        },
        Shape {
            name: "Keystone",
            path: "/api/graphql",
            content_type: JSON,
            body: |pw| {
                serde_json::json!({
                "query": "mutation($email: String!, $password: String!) { authenticateUserWithPassword(email: $email, password: $password) { ... on UserAuthenticationWithPasswordSuccess { sessionToken } ... on UserAuthenticationWithPasswordFailure { message } } }",
                "variables": { "email": "alice@example.com", "password": pw },
            }).to_string()
            },
            user: "alice@example.com",
        },
        Shape {
            name: "Directus",
            path: "/auth/login",
            content_type: JSON,
            body: |pw| serde_json::json!({ "email": "alice@example.com", "password": pw, "mode": "json" }).to_string(),
            user: "alice@example.com",
        },
        Shape {
            name: "Payload",
            path: "/api/users/login",
            content_type: JSON,
            body: |pw| serde_json::json!({ "email": "alice@example.com", "password": pw }).to_string(),
            user: "alice@example.com",
        },
        Shape {
            name: "NestJS",
            path: "/auth/signin",
            content_type: JSON,
            body: |pw| serde_json::json!({ "username": "alice", "password": pw }).to_string(),
            user: "alice",
        },
        Shape {
            name: "passwd in a multipart form",
            path: "/auth",
            content_type: "multipart/form-data; boundary=----WebKitFormBoundaryQ1",
            body: |pw| {
                format!(
                "------WebKitFormBoundaryQ1\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n------WebKitFormBoundaryQ1\r\nContent-Disposition: form-data; name=\"passwd\"\r\n\r\n{pw}\r\n------WebKitFormBoundaryQ1--\r\n"
            )
            },
            user: "alice",
        },
    ]
}

fn post(k: &Kevlar, path: &str, ct: &str, body: &str, from: &str) -> u16 {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    match agent.post(&k.url(path)).set("Content-Type", ct).set("X-Forwarded-For", from).send_string(body) {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    }
}

fn shapes_app() -> (Owned, String) {
    let (child, addr) = node_script(include_str!("fixtures/apps/login-shapes.js"));
    (child, format!("http://{addr}"))
}

fn guard(upstream: &str, config: &str) -> Kevlar {
    Kevlar::guard(upstream).args(["--trusted-proxy", "127.0.0.1/32"]).config(config).start()
}

fn from_ip(events: &[Value], action: &str, ip: &str) -> Vec<Value> {
    events.iter().filter(|e| e["event"]["action"] == action && e["source"]["ip"] == ip).cloned().collect()
}

#[test]
fn every_framework_shape_is_recognised_with_its_outcome() {
    let (_app, url) = shapes_app();
    let k = guard(&url, "");
    let cases = shapes();
    for (i, s) in cases.iter().enumerate() {
        let from = format!("198.51.100.{}", 10 + i);
        let bad = post(&k, s.path, s.content_type, &(s.body)("wrong-pw"), &from);
        assert!(bad >= 200, "{}: {bad}", s.name);
        let good = post(&k, s.path, s.content_type, &(s.body)("right-pw"), &from);
        assert!((200..400).contains(&good), "{}: {good}", s.name);
    }
    // HTTP Basic on any path: a 401 is a failed login.
    let basic = |pw: &str| {
        let auth = format!("Basic {}", base64_encode(format!("alice:{pw}").as_bytes()));
        match ureq::get(&k.url("/admin/report"))
            .set("Authorization", &auth)
            .set("X-Forwarded-For", "198.51.100.99")
            .call()
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(basic("wrong-pw"), 401);
    assert_eq!(basic("right-pw"), 200);
    for _ in 0..3 {
        assert_eq!(basic("right-pw"), 200, "later API calls with the same credentials are not logins");
    }
    wait_until(20, "an outcome for every shape", || {
        let evs = k.events(&["--limit", "10000"]);
        (0..cases.len()).all(|i| {
            let ip = format!("198.51.100.{}", 10 + i);
            !from_ip(&evs, "authn_login_fail", &ip).is_empty() && !from_ip(&evs, "authn_login_success", &ip).is_empty()
        }) && !from_ip(&evs, "authn_login_success", "198.51.100.99").is_empty()
    });
    let evs = k.events(&["--limit", "10000"]);
    for (i, s) in cases.iter().enumerate() {
        let ip = format!("198.51.100.{}", 10 + i);
        let (fail, ok) = (from_ip(&evs, "authn_login_fail", &ip), from_ip(&evs, "authn_login_success", &ip));
        assert_eq!((fail.len(), ok.len()), (1, 1), "{}: {fail:?} {ok:?}", s.name);
        assert_eq!(fail[0]["user"]["name"], s.user, "{}", s.name);
        assert_eq!(ok[0]["user"]["name"], s.user, "{}", s.name);
    }
    let basic_events =
        (from_ip(&evs, "authn_login_fail", "198.51.100.99"), from_ip(&evs, "authn_login_success", "198.51.100.99"));
    assert_eq!((basic_events.0.len(), basic_events.1.len()), (1, 1), "{basic_events:?}");
    assert!(evs.iter().all(|e| !e.to_string().contains("right-pw") && !e.to_string().contains("wrong-pw")));
    // The route inventory says which routes are taken for logins, and why.
    let out =
        std::process::Command::new(KEVLAR).args(["routes", "--json", "--data-dir"]).arg(&k.data_dir).output().unwrap();
    let routes: Value = serde_json::from_slice(&out.stdout).unwrap();
    let login_of = |path: &str| {
        routes["routes"].as_array().unwrap().iter().find(|r| r["route"] == path).map(|r| r["login"].clone())
    };
    assert_eq!(login_of("/api/auth/local").unwrap(), "a JSON body with a password and an identifier", "{routes}");
    assert_eq!(login_of("/wp-login.php").unwrap(), "a form body with a password and an identifier");
    assert_eq!(login_of("/admin/report").unwrap(), "credentials in Authorization (Basic or Digest)");
    let text = std::process::Command::new(KEVLAR).args(["routes", "--data-dir"]).arg(&k.data_dir).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.lines().any(|l| l.contains("/auth") && l.contains("login (a multipart form")), "{text}");
}

#[test]
fn forms_that_only_look_like_logins_are_not_logins() {
    let (_app, url) = shapes_app();
    let k = guard(&url, "");
    let from = "203.0.113.40";
    assert_eq!(post(&k, "/search", FORM, "q=forgot+my+password&page=2", from), 200);
    assert_eq!(post(&k, "/comments", FORM, "name=alice&comment=hello&pass_through=1&email=a%40b.c", from), 201);
    assert_eq!(
        post(&k, "/signup", FORM, "email=new%40example.com&password=s3cret-pw&password_confirmation=s3cret-pw", from),
        201
    );
    assert_eq!(post(&k, "/signup", FORM, "username=newbie&password1=s3cret-pw&password2=s3cret-pw", from), 201);
    assert_eq!(
        post(
            &k,
            "/settings/password",
            FORM,
            "current_password=old-pw&new_password=n3w-pw&new_password_confirmation=n3w-pw",
            from
        ),
        200
    );
    // A request that is a login, after them, so that the store has caught up when it shows.
    assert_eq!(post(&k, "/oauth/token", FORM, "grant_type=password&username=zed&password=x", "203.0.113.41"), 400);
    k.wait_event(|e| e["event"]["action"] == "authn_login_fail" && e["source"]["ip"] == "203.0.113.41");
    let evs = k.events(&["--limit", "10000"]);
    let wrong: Vec<&Value> = evs
        .iter()
        .filter(|e| e["source"]["ip"] == from && e["event"]["action"].as_str().unwrap().starts_with("authn_"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[test]
fn brute_force_against_other_shapes_is_refused_like_login() {
    let (_app, url) = shapes_app();
    let k = guard(&url, "[bans]\nenforce = true\nstatus = 429\n");
    for (n, s) in shapes().iter().filter(|s| ["Strapi", "WordPress", "GraphQL mutation"].contains(&s.name)).enumerate()
    {
        let attacker = format!("203.0.113.{}", 70 + n);
        let mut refused = None;
        for i in 0..12 {
            let status = post(&k, s.path, s.content_type, &(s.body)(&format!("guess-{i}")), &attacker);
            if status == 429 {
                refused = Some(i);
                break;
            }
        }
        let i = refused.unwrap_or_else(|| panic!("{}: the brute force was never refused", s.name));
        assert!(i <= 6, "{}: refused only after {i} attempts", s.name);
        // The real user, from their own address, still signs in.
        let ok = post(&k, s.path, s.content_type, &(s.body)("right-pw"), &format!("198.51.100.{}", 70 + n));
        assert!((200..400).contains(&ok), "{}: {ok}", s.name);
    }
}

#[test]
fn a_real_passport_app_is_recognised() {
    let app = DemoApp::passport();
    let k = guard(&app.url(), "");
    assert_eq!(post(&k, "/login/password", FORM, "username=alice&password=wrong-pw", "198.51.100.200"), 302);
    assert_eq!(post(&k, "/login/password", FORM, "username=alice&password=right-pw", "198.51.100.200"), 302);
    let fail = k.wait_event(|e| e["event"]["action"] == "authn_login_fail");
    let ok = k.wait_event(|e| e["event"]["action"] == "authn_login_success");
    assert_eq!((fail["user"]["name"].as_str(), ok["user"]["name"].as_str()), (Some("alice"), Some("alice")));
    assert_eq!(ok["kevlar"]["session_cookie"], "connect.sid", "{ok}");
}

#[test]
fn an_answer_that_says_nothing_is_told_by_what_the_client_does_next() {
    let (_app, url) = shapes_app();
    let k = guard(&url, "");
    let from = "198.51.100.150";
    let signin =
        |pw: &str| post(&k, "/portal/signin", FORM, &form(&[("email", "alice@example.com"), ("password", pw)]), from);
    let get = |path: &str, accept: &str| {
        ureq::get(&k.url(path)).set("X-Forwarded-For", from).set("Accept", accept).call().unwrap().status()
    };
    // Two wrong passwords, each followed by the same login again: retries, so failures.
    assert_eq!(signin("wrong-1"), 200);
    assert_eq!(signin("wrong-2"), 200);
    assert_eq!(signin("right-pw"), 200);
    // The page's stylesheet is no sign; the browser going on to a page is.
    assert_eq!(get("/portal/app.css", "text/css,*/*;q=0.1"), 200);
    assert_eq!(get("/portal/home", "text/html,application/xhtml+xml,*/*;q=0.8"), 200);
    let ok = k.wait_event(|e| e["event"]["action"] == "authn_login_success" && e["source"]["ip"] == from);
    assert_eq!(ok["kevlar"]["outcome_by"], "navigation", "{ok}");
    let fails: Vec<Value> =
        k.events(&["--action", "authn_login_fail"]).into_iter().filter(|e| e["source"]["ip"] == from).collect();
    assert_eq!(fails.len(), 2, "{fails:?}");
    assert!(fails.iter().all(|e| e["kevlar"]["outcome_by"] == "retry" && e["user"]["name"] == "alice@example.com"));
}

#[test]
fn with_detection_off_logins_are_still_read_decoded() {
    let (_app, url) = shapes_app();
    let k = guard(&url, "[detect]\nmode = \"off\"\n");
    let body = gzip(br#"{"identifier":"alice","password":"wrong-pw","note":"1' UNION SELECT password FROM users--"}"#);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let status = match agent
        .post(&k.url("/api/auth/local"))
        .set("Content-Type", "application/json")
        .set("Content-Encoding", "gzip")
        .set("X-Forwarded-For", "198.51.100.77")
        .send_bytes(&body)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status, 400);
    let fail = k.wait_event(|e| e["event"]["action"] == "authn_login_fail");
    assert_eq!(fail["user"]["name"], "alice");
    assert!(k.events(&["--action", "malicious_attack"]).is_empty(), "detection is off");
}

#[test]
fn a_login_padded_past_what_kevlar_reads_is_a_finding() {
    let (_app, url) = shapes_app();
    let k = guard(&url, "");
    let s = shapes().into_iter().find(|s| s.name == "Strapi").unwrap();
    // Two ordinary attempts: the route is learned as a login.
    for _ in 0..2 {
        assert_eq!(post(&k, s.path, s.content_type, &(s.body)("wrong-pw"), "198.51.100.60"), 400);
    }
    let padded = serde_json::json!({ "pad": "A".repeat(70 * 1024), "identifier": "alice", "password": "wrong-pw" });
    assert_eq!(post(&k, s.path, JSON, &padded.to_string(), "198.51.100.61"), 400);
    let ev = k.wait_event(|e| e["event"]["action"] == "malicious_evasion" && e["source"]["ip"] == "198.51.100.61");
    assert_eq!(ev["kevlar"]["rule"], "login_unreadable", "{ev}");
    // The same padding on a usual login path, before any login was seen there.
    let form = format!("pad={}&email=alice%40example.com&password=x", "A".repeat(70 * 1024));
    post(&k, "/login", FORM, &form, "198.51.100.62");
    let ev = k.wait_event(|e| e["event"]["action"] == "malicious_evasion" && e["source"]["ip"] == "198.51.100.62");
    assert_eq!(ev["kevlar"]["rule"], "login_unreadable");
}
