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
