//! In a real browser (Debian's Chromium driven by playwright-core): `[headers] csp_nonce` lets the
//! app's own inline scripts run under a policy without `'unsafe-inline'`, scripts they load run
//! (`'strict-dynamic'`), compressed pages are rewritten, while an inline handler, a script
//! injected through the DOM and a script the page reflects from the query do not run; the
//! browser's violation reports reach Kevlar.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::peers::wait_until;
use common::{node_script, repo, Kevlar};
use serde_json::Value;

const APP: &str = r#"
const http = require('node:http');
const zlib = require('node:zlib');
const page = (extra) => `<!doctype html><html><head><title>shop</title></head><body>
<p id="out"></p>
<script>window.ran = window.ran || {}; window.ran.inline = true;</script>
<script src="/app.js"></script>
<img src="/missing.png" onerror="window.ran.handler = true">
${extra}
<script>document.getElementById('out').innerHTML = decodeURIComponent(location.hash.slice(1));
setTimeout(() => { window.settled = true; }, 400);</script>
</body></html>`;
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/app.js') {
    res.setHeader('Content-Type', 'text/javascript');
    return res.end("window.ran = window.ran || {}; window.ran.external = true; const s = document.createElement('script'); s.src = '/dynamic.js'; document.head.appendChild(s);");
  }
  if (url.pathname === '/dynamic.js') {
    res.setHeader('Content-Type', 'text/javascript');
    return res.end('window.ran = window.ran || {}; window.ran.dynamic = true;');
  }
  if (url.pathname === '/missing.png') { res.statusCode = 404; return res.end(); }
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  if (url.pathname === '/gz') {
    res.setHeader('Content-Encoding', 'gzip');
    return res.end(zlib.gzipSync(page('<script>window.ran.compressed = true;</script>')));
  }
  if (url.pathname === '/search') {
    // Reflects the query into the page as it is: the reflected-XSS bug the nonce must not bless.
    return res.end(page(`<p>Results for ${url.searchParams.get('q')}</p>`));
  }
  res.end(page(''));
});
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
"#;

/// Each URL visited in Chromium: what ran (`window.ran`) and the page's policy.
fn visit(urls: &[String]) -> Vec<Value> {
    let script = repo().join("tests/browser/visit.mjs");
    assert!(
        repo().join("tests/browser/node_modules/playwright-core").exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium and playwright-core are installed by scripts/setup.sh"
    );
    let out = Command::new("node").arg(script).args(urls).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const HEADERS: &str = "[detect]\nmode = \"monitor\"\n[headers]\ncsp_report_path = \"/csp-report\"\n";

#[test]
fn nonces_let_the_apps_inline_scripts_run_and_nothing_injected() {
    let (_app, addr) = node_script(APP);
    let upstream = format!("http://{addr}");
    let reflected = "/search?q=%3Cscript%3Ewindow.ran.reflected%3Dtrue%3C%2Fscript%3E";
    let injected = "/#%3Cimg%20src%3Dx%20onerror%3D%22window.ran.injected%3Dtrue%22%3E";

    // Without nonces, helmet's policy (script-src 'self') blocks the app's inline scripts.
    let plain = Kevlar::guard(&upstream).config(HEADERS).start();
    let v = visit(&[plain.url("/")]);
    assert_eq!(v[0]["ran"]["inline"], Value::Null, "{v:#?}");
    assert_eq!(v[0]["ran"]["external"], true, "{v:#?}");
    drop(plain);

    let k = Kevlar::guard(&upstream).config(&format!("{HEADERS}csp_nonce = true\n")).start();
    let v = visit(&[k.url("/"), k.url("/gz"), k.url(reflected), k.url(injected)]);
    let (home, gz, search, hash) = (&v[0], &v[1], &v[2], &v[3]);
    let csp = home["csp"].as_str().unwrap();
    assert!(
        csp.contains("'nonce-") && csp.contains("'strict-dynamic'") && !csp.contains("unsafe-inline';script"),
        "{csp}"
    );
    for (page, what) in [(home, "inline"), (home, "external"), (home, "dynamic"), (gz, "compressed"), (gz, "inline")] {
        assert_eq!(page["ran"][what], true, "{what} on {}: {page:#}", page["url"]);
    }
    assert_eq!(home["ran"]["handler"], Value::Null, "an inline handler stays blocked: {home:#}");
    assert_eq!(hash["ran"]["injected"], Value::Null, "a handler injected through the DOM does not run: {hash:#}");
    assert_eq!(hash["ran"]["inline"], true);
    assert_eq!(search["ran"]["reflected"], Value::Null, "a script reflected from the query does not run: {search:#}");
    assert_eq!(search["ran"]["inline"], true, "the page's own scripts still do: {search:#}");
    assert_ne!(home["csp"], v[3]["csp"], "a fresh nonce per answer");

    k.wait_event(|e| e["event"]["action"] == "malicious_attack" && e["kevlar"]["rule"] == "reflected_script");
    // The browser reported the blocked handler to Kevlar.
    wait_until(10, "a csp_violation event", || {
        k.events(&["--limit", "1000"]).iter().any(|e| e["event"]["action"] == "csp_violation")
    });
}

/// A page Kevlar cannot rewrite keeps its policy as it was, and says so once.
#[test]
fn a_page_that_cannot_be_rewritten_keeps_its_policy_and_is_reported() {
    let (_app, addr) = node_script(
        "require('http').createServer((q, s) => { s.setHeader('Content-Type', 'text/html'); s.setHeader('Content-Encoding', 'zstd'); \
         s.end('(zstd bytes)'); }).listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });",
    );
    let k = Kevlar::guard(&format!("http://{addr}")).config("[headers]\ncsp_nonce = true\n").start();
    for _ in 0..3 {
        let r = ureq::get(&k.url("/page")).call().unwrap();
        let csp = r.header("content-security-policy").unwrap().to_owned();
        assert!(!csp.contains("nonce"), "{csp}");
        assert_eq!(r.into_string().unwrap(), "(zstd bytes)");
    }
    let e = k.wait_event(|e| e["event"]["action"] == "csp_nonce_unavailable");
    assert_eq!(e["kevlar"]["reason"], "unknown Content-Encoding");
    let n = k.events(&[]).iter().filter(|e| e["event"]["action"] == "csp_nonce_unavailable").count();
    assert_eq!(n, 1, "once per path and reason");
}
