//! TLS termination and the HTTPS redirect (RFC 8446 via rustls; RFC 9110 §15.4.2 301; RFC 6797
//! HSTS), HTTP/2 over ALPN (RFC 9113 §3.2), and the MDN HTTP Observatory grade of a plain app
//! behind Kevlar with TLS.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{client, DemoApp, Kevlar, KEVLAR};

fn make_cert(dir: &Path) {
    let out = Command::new(KEVLAR).args(["cert", "--self-signed", "--out"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir.join("key.pem")).unwrap().permissions().mode() & 0o777, 0o600);
}

fn tls_kevlar(app: &DemoApp, dir: &Path) -> Kevlar {
    Kevlar::guard(&app.url())
        .args(["--tls-listen", "127.0.0.1:0", "--tls-cert"])
        .arg(dir.join("cert.pem").display().to_string())
        .arg("--tls-key")
        .arg(dir.join("key.pem").display().to_string())
        .start()
}

fn https_client(dir: &Path, k: &Kevlar) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("localhost", k.https.unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_is_served_with_h2_and_plain_http_redirects() {
    let tmp = tempfile::tempdir().unwrap();
    make_cert(tmp.path());
    let app = DemoApp::start();
    let k = tls_kevlar(&app, tmp.path());
    let https = k.https.unwrap();
    let c = https_client(tmp.path(), &k);

    let r = c.get(format!("https://localhost:{}/echo-headers", https.port())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");
    assert_eq!(body["headers"]["host"], format!("localhost:{}", https.port()), "the h2 authority becomes Host");

    let r =
        c.get(format!("https://localhost:{}/", https.port())).version(reqwest::Version::HTTP_11).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Plain HTTP: 301 to the same host on the TLS port, path and query kept.
    let r = client().get(format!("http://localhost:{}/a/b?x=1&y=2", k.http.port())).send().await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], format!("https://localhost:{}/a/b?x=1&y=2", https.port()).as_str());
    assert!(r.headers().get("content-security-policy").is_some());
}

#[tokio::test]
async fn a_bad_key_is_a_clear_startup_error() {
    let tmp = tempfile::tempdir().unwrap();
    make_cert(tmp.path());
    std::fs::write(tmp.path().join("key.pem"), "not a key").unwrap();
    let app = DemoApp::start();
    let err = Kevlar::guard(&app.url())
        .args(["--tls-listen", "127.0.0.1:0", "--tls-cert"])
        .arg(tmp.path().join("cert.pem").display().to_string())
        .arg("--tls-key")
        .arg(tmp.path().join("key.pem").display().to_string())
        .try_start()
        .err()
        .expect("must not start");
    assert!(err.contains("private key") && err.contains("key.pem"), "{err}");
}

fn grade(dir: &Path, http: u16, https: u16) -> serde_json::Value {
    let script = common::repo().join("tests/observatory/grade.mjs");
    assert!(
        common::repo().join("tests/observatory/node_modules/@mdn/mdn-http-observatory").exists(),
        "the MDN HTTP Observatory is not installed: run the test command (scripts/test.sh), which installs it"
    );
    let out = Command::new("node")
        .arg(script)
        .args(["localhost", &http.to_string(), &https.to_string()])
        .env("NODE_EXTRA_CA_CERTS", dir.join("ca.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "grader failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn the_mdn_http_observatory_grades_a_plain_app_behind_kevlar_a_plus() {
    let tmp = tempfile::tempdir().unwrap();
    make_cert(tmp.path());
    let app = DemoApp::start();
    let k = tls_kevlar(&app, tmp.path());
    let g = grade(tmp.path(), k.http.port(), k.https.unwrap().port());
    assert_eq!(g["grade"], "A+", "{g:#}");
    assert_eq!(g["verified"], true, "the certificate must verify against the local CA: {g:#}");
    assert_eq!(g["tests"]["redirection"]["result"], "redirection-to-https");
    // The grader is not lenient: the same app without Kevlar fails it.
    let plain = grade(tmp.path(), app.addr.port(), common::closed_port());
    assert!(plain["score"].as_i64().unwrap() < 50, "{plain:#}");
}

/// `kevlar headers check` as JSON.
fn kevlar_check(args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(KEVLAR).args(["headers", "check", "--format", "json"]).args(args).output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    (code, serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
}

/// `kevlar headers check` grades exactly as the MDN HTTP Observatory's own code does (its
/// retriever and grader, run beside it): the same grade, score and result of each of the ten tests,
/// on a site behind Kevlar, the bare app, and a site with weak headers, cookies and an external
/// script; and it says what Kevlar would change.
#[tokio::test]
async fn headers_check_grades_as_the_observatory_does() {
    let tmp = tempfile::tempdir().unwrap();
    make_cert(tmp.path());
    let ca = tmp.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let app = DemoApp::start();
    let strong = tls_kevlar(&app, tmp.path());
    let (weak_app, weak_addr) = common::node_script(
        "require('http').createServer((q, s) => { s.setHeader('Set-Cookie', ['sessionid=abc; Path=/', 'theme=dark; Secure']); \
         s.setHeader('Content-Type', 'text/html'); s.setHeader('Access-Control-Allow-Origin', '*'); \
         s.end('<html><head><script src=\"https://cdn.example.com/lib.js\"></script></head><body>hi</body></html>'); })\
         .listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });",
    );
    let weak = Kevlar::guard(&format!("http://{weak_addr}"))
        .args(["--tls-listen", "127.0.0.1:0", "--tls-cert"])
        .arg(tmp.path().join("cert.pem").display().to_string())
        .arg("--tls-key")
        .arg(tmp.path().join("key.pem").display().to_string())
        .config(
            "[headers]\napp_values = \"keep\"\n[headers.csp]\ndirectives = { script-src = [\"'self'\", \"'unsafe-inline'\", \"https:\"] }\n\
             [headers.set]\n\"Strict-Transport-Security\" = \"max-age=300\"\n\"X-Frame-Options\" = false\n\"Referrer-Policy\" = \"unsafe-url\"\n",
        )
        .start();
    let sites = [
        ("behind Kevlar", strong.http.port(), strong.https.unwrap().port()),
        ("the bare app", app.addr.port(), common::closed_port()),
        ("weak headers", weak.http.port(), weak.https.unwrap().port()),
    ];
    for (what, http, https) in sites {
        let reference = grade(tmp.path(), http, https);
        let (code, ours) =
            kevlar_check(&[&format!("https://localhost:{https}"), "--http-port", &http.to_string(), "--ca", ca]);
        assert_eq!(code, 0, "{what}: {ours:#}");
        assert_eq!(
            (&ours["grade"], &ours["score"]),
            (&reference["grade"], &reference["score"]),
            "{what}: {ours:#}\n{reference:#}"
        );
        for t in ours["tests"].as_array().unwrap() {
            let name = t["name"].as_str().unwrap();
            let same = reference["tests"]
                .as_object()
                .unwrap()
                .values()
                .any(|r| r["result"] == t["result"] && r["scoreModifier"] == t["modifier"]);
            assert!(same, "{what}: {name}: {t:#} is not among the Observatory's results {:#}", reference["tests"]);
        }
    }
    // The weak site: what Kevlar would change is said, and a grade floor fails the command.
    let (code, ours) = kevlar_check(&[
        &format!("https://localhost:{}", weak.https.unwrap().port()),
        "--http-port",
        &weak.http.port().to_string(),
        "--ca",
        ca,
        "--fail-under",
        "A",
    ]);
    assert_eq!(code, 1, "{ours:#}");
    let results: Vec<&str> = ours["tests"].as_array().unwrap().iter().map(|t| t["result"].as_str().unwrap()).collect();
    for r in [
        "csp-implemented-with-unsafe-inline",
        "cookies-session-without-secure-flag",
        "cross-origin-resource-sharing-implemented-with-public-access",
        "hsts-implemented-max-age-less-than-six-months",
        "sri-not-implemented-but-external-scripts-loaded-securely",
        "referrer-policy-unsafe",
    ] {
        assert!(results.contains(&r), "{r} not in {results:?}");
    }
    let (_, bare) = kevlar_check(&[
        &format!("http://localhost:{}", app.addr.port()),
        "--https-port",
        &common::closed_port().to_string(),
    ]);
    let added: Vec<&str> =
        bare["with_kevlar"]["added"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert!(added.contains(&"content-security-policy") && added.contains(&"x-frame-options"), "{bare:#}");
    assert!(bare["with_kevlar"]["score"].as_i64().unwrap() > bare["score"].as_i64().unwrap(), "{bare:#}");
    drop(weak_app);
}
