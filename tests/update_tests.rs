//! `kevlar outdated` against a real registry on loopback (verdaccio), with packages the test
//! publishes: current from the lockfile, wanted within the declared range, latest from the
//! registry the project's `.npmrc` names.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::peers::Verdaccio;
use common::KEVLAR;
use serde_json::Value;

fn lib(version: &str) -> String {
    format!("exports.add = (a, b) => a + b;\nexports.version = '{version}';\n")
}

#[test]
fn outdated_lists_current_wanted_and_latest_from_the_projects_registry() {
    let reg = Verdaccio::start();
    for v in ["1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0"] {
        reg.publish("kv-lib", v, &[("index.js", &lib(v))]);
    }
    for v in ["1.0.0", "1.0.3", "1.2.0"] {
        reg.publish("kv-util", v, &[("index.js", &lib(v))]);
    }
    reg.publish("kv-fresh", "3.0.0", &[("index.js", &lib("3.0.0"))]);
    // The fixture app: a real install from the registry writes the lockfile.
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("package.json"),
        r#"{"name":"fixture-app","version":"1.0.0","private":true,
            "dependencies":{"kv-lib":"^1.0.0","kv-fresh":"^3.0.0"},
            "devDependencies":{"kv-util":"~1.0.0"}}"#,
    )
    .unwrap();
    std::fs::write(app.path().join(".npmrc"), format!("registry={}\n", reg.url())).unwrap();
    let install = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "kv-lib@1.0.0",
            "kv-util@1.0.0",
            "kv-fresh@3.0.0",
            "--save-prefix=^",
        ])
        .current_dir(app.path())
        .output()
        .unwrap();
    assert!(install.status.success(), "{}", String::from_utf8_lossy(&install.stderr));
    // npm wrote exact versions back with the prefix; restore the declared ranges of the fixture.
    std::fs::write(
        app.path().join("package.json"),
        r#"{"name":"fixture-app","version":"1.0.0","private":true,
            "dependencies":{"kv-lib":"^1.0.0","kv-fresh":"^3.0.0"},
            "devDependencies":{"kv-util":"~1.0.0"}}"#,
    )
    .unwrap();

    let out = Command::new(KEVLAR).args(["outdated", "--json"]).arg(app.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "something is outdated: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kv-lib"]["current"], "1.0.0");
    assert_eq!(v["kv-lib"]["wanted"], "1.10.0", "numeric order within ^1.0.0");
    assert_eq!(v["kv-lib"]["latest"], "2.0.0");
    assert_eq!(v["kv-util"]["wanted"], "1.0.3", "~1.0.0 stays on 1.0.x");
    assert_eq!(v["kv-util"]["type"], "devDependencies");
    assert!(v.get("kv-fresh").is_none(), "current packages are not listed: {v}");

    let table = Command::new(KEVLAR).arg("outdated").arg(app.path()).output().unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["kv-lib", "1.0.0", "1.10.0", "2.0.0", "dependencies"]), "{text}");

    // A registry that does not know the package is a clear error (exit 2), not a crash.
    std::fs::write(app.path().join(".npmrc"), "registry=http://127.0.0.1:9/\n").unwrap();
    let out = Command::new(KEVLAR).arg("outdated").arg(app.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("registry http://127.0.0.1:9/"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
