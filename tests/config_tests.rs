//! Configuration (STYLE: two-layer config; errors name file:line:key): `kevlar init` writes a
//! valid commented file, `kevlar validate` reports every problem at once, an unknown key is an
//! error, flags win over the file, and a bad config stops Kevlar with a clear message.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{client, repo, DemoApp, Kevlar, KEVLAR};

fn validate(file: &std::path::Path) -> (i32, String) {
    let out = Command::new(KEVLAR).arg("validate").arg(file).output().unwrap();
    (
        out.status.code().unwrap(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

fn fixture(name: &str) -> std::path::PathBuf {
    repo().join("tests/fixtures/config").join(name)
}

#[test]
fn an_unknown_key_is_an_error_with_file_and_line() {
    let (code, out) = validate(&fixture("unknown_key.toml"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unknown_key.toml:3: proxy.lisen: unknown key (did you mean `listen`?)"), "{out}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let (code, out) = validate(&fixture("many_problems.toml"));
    assert_eq!(code, 1, "{out}");
    for expected in [
        "many_problems.toml:4: proxy.listen: `not an address` is not an address",
        "many_problems.toml:5: proxy.upstream: scheme `ftp` is not supported",
        "many_problems.toml:6: proxy.trusted_proxies: `10.0.0.0/33` is not an address or CIDR range",
        "many_problems.toml:9: limits.max_headers: 0 is out of range",
        "many_problems.toml:10: limits.header_timeout: `soon` is not a duration",
        "many_problems.toml:11: limits.max_body_bytes: unknown size unit `parsecs`",
        "many_problems.toml:14: headers.set.Bad Header: `Bad Header` is not a valid header name",
        "many_problems.toml:15: headers.set.X-Frame-Options: expected a string, false (remove)",
        "many_problems.toml:18: admin.listen: 0.0.0.0:9090 is not a loopback address",
        "many_problems.toml:20: acces_log: unknown key (did you mean `access_log`?)",
        "many_problems.toml:24: detect.stack: unknown stack `jvm` (known: auto, node, php, java, dotnet, cgi, coldfusion, python, ruby)",
        "11 problems",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn syntax_and_cross_key_errors_name_the_line() {
    let (code, out) = validate(&fixture("syntax_error.toml"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("syntax_error.toml:3: (syntax):"), "{out}");
    let (code, out) = validate(&fixture("tls_incomplete.toml"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("tls_incomplete.toml:1: tls: TLS needs listen, cert and key together; missing key (--tls-key)"),
        "{out}"
    );
    let (code, out) = validate(&fixture("does_not_exist.toml"));
    assert_eq!(code, 2, "{out}");
    let (code, out) = validate(&fixture("valid.toml"));
    assert_eq!((code, out.trim_end().ends_with("valid.toml: valid")), (0, true), "{out}");
}

#[test]
fn init_writes_a_commented_file_that_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(KEVLAR).arg("init").current_dir(tmp.path()).output().unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(tmp.path().join("kevlar.toml")).unwrap();
    assert!(text.lines().filter(|l| l.trim_start().starts_with('#')).count() > 50, "fully commented");
    assert_eq!(validate(&tmp.path().join("kevlar.toml")).0, 0);
    let again = Command::new(KEVLAR).arg("init").current_dir(tmp.path()).output().unwrap();
    assert!(!again.status.success(), "init does not overwrite without --force");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn a_bad_config_stops_kevlar_with_every_problem() {
    let err = Kevlar::cmd(&["guard", "--upstream", "http://127.0.0.1:1"])
        .config("[proxy]\nlisen = \"x\"\n[limits]\nmax_headers = -4\n")
        .try_start()
        .err()
        .expect("must refuse to start");
    assert!(
        err.contains("proxy.lisen: unknown key") && err.contains("limits.max_headers: -4 is out of range"),
        "{err}"
    );
    let err = Kevlar::cmd(&["guard"]).try_start().err().expect("no upstream");
    assert!(err.contains("no upstream"), "{err}");
    let err = Kevlar::cmd(&["guard", "--upstream", "http://127.0.0.1:1", "--trusted-proxy", "nonsense"])
        .try_start()
        .err()
        .expect("bad flag");
    assert!(err.contains("--trusted-proxy: `nonsense`"), "{err}");
}

#[tokio::test]
async fn flags_win_over_the_file() {
    let app = DemoApp::start();
    // The file says the app is elsewhere and X-Frame-Options is DENY; --upstream wins.
    let k = Kevlar::guard(&app.url())
        .config("[proxy]\nupstream = \"http://127.0.0.1:1\"\nlisten = \"127.0.0.1:1\"\n[headers.set]\n\"X-Frame-Options\" = \"DENY\"\n")
        .start();
    let r = client().get(k.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "--upstream and --listen beat the file");
    assert_eq!(r.headers()["x-frame-options"], "DENY", "the rest of the file applies");
}

#[test]
fn help_lists_every_command_and_flag() {
    let out = Command::new(KEVLAR).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for c in ["guard", "run", "init", "validate", "events", "cert"] {
        assert!(text.contains(c), "{c} missing from --help");
    }
    let out = Command::new(KEVLAR).args(["guard", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for f in [
        "--upstream",
        "--listen",
        "--tls-listen",
        "--tls-cert",
        "--tls-key",
        "--admin",
        "--data-dir",
        "--trusted-proxy",
        "--config",
    ] {
        assert!(text.contains(f), "{f} missing from guard --help");
    }
}

/// The example systemd unit: `systemd-analyze verify` finds nothing to say (a misspelt key or a
/// wrong section is a warning there, so silence is the check), `systemd-analyze security` rates
/// its exposure "OK" (2.0 or less of 10), and the command it starts is one Kevlar accepts.
#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(repo().join("examples/systemd/kevlar.service")).unwrap();
    for key in ["ProtectSystem=strict", "NoNewPrivileges=yes", "User=kevlar", "StateDirectory=kevlar"] {
        assert!(unit.lines().any(|l| l == key), "{key} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let path = dir.path().join("kevlar.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/kevlar", KEVLAR)).unwrap();
    let out =
        Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze (package systemd)");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
    // The check can fail: a misspelt key is reported.
    std::fs::write(&path, unit.replace("/usr/local/bin/kevlar", KEVLAR).replace("ProtectHome=", "ProtectHom="))
        .unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ProtectHom"), "a misspelt key goes unnoticed");

    std::fs::write(&path, unit.replace("/usr/local/bin/kevlar", KEVLAR)).unwrap();
    let out = Command::new("systemd-analyze").args(["security", "--offline=yes"]).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for kevlar.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(level <= 2.0, "exposure {level}: {text}");

    // ExecStart's arguments are Kevlar's: the same line with --help after `run` is accepted.
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    let args: Vec<&str> = exec.split_whitespace().skip(1).take_while(|a| *a != "--").collect();
    assert_eq!(args[0], "run");
    let help = Command::new(KEVLAR).arg("run").arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(help.contains(flag), "`kevlar run` has no {flag}");
    }
}
