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

/// Every file of a tree (without node_modules), for "untouched" checks.
fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == "node_modules") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn update_tries_each_version_against_the_apps_tests_in_scratch_copies() {
    let reg = Verdaccio::start();
    // In publication order (npm moves `latest` forward only): 1.1.0 breaks the app's tests,
    // 1.3.0 hangs when loaded.
    for v in ["1.0.0", "1.0.1", "1.1.0", "1.2.0", "1.3.0", "2.0.0"] {
        let body = match v {
            "1.1.0" => "exports.add = (a, b) => a - b;\n".to_owned(),
            "1.3.0" => "while (true) {}\n".to_owned(),
            _ => lib(v),
        };
        reg.publish("kv-lib", v, &[("index.js", &body)]);
    }
    // kv-util 1.1.0 cannot be installed: it depends on a package the registry does not have.
    reg.publish("kv-util", "1.0.0", &[("index.js", &lib("1.0.0"))]);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("package.json"),
        r#"{"name":"kv-util","version":"1.1.0","main":"index.js","license":"MIT","dependencies":{"kv-missing":"^9.0.0"}}"#,
    )
    .unwrap();
    std::fs::write(d.path().join("index.js"), "module.exports = {};\n").unwrap();
    std::fs::write(d.path().join(".npmrc"), reg.npmrc()).unwrap();
    let out = Command::new("npm")
        .args(["publish", "--userconfig"])
        .arg(d.path().join(".npmrc"))
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let app = tempfile::tempdir().unwrap();
    let manifest = r#"{"name":"fixture-app","version":"1.0.0","private":true,"scripts":{"test":"node test.js"},
        "dependencies":{"kv-lib":"^1.0.0"},"devDependencies":{"kv-util":"^1.0.0"}}"#;
    std::fs::write(app.path().join("package.json"), manifest).unwrap();
    std::fs::write(app.path().join(".npmrc"), format!("registry={}\n", reg.url())).unwrap();
    std::fs::write(
        app.path().join("test.js"),
        "const assert = require('assert');\nassert.strictEqual(require('kv-lib').add(1, 2), 3);\nconsole.log('tests ok');\n",
    )
    .unwrap();
    let install = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "kv-lib@1.0.0", "--save-dev", "kv-util@1.0.0"])
        .current_dir(app.path())
        .output()
        .unwrap();
    assert!(install.status.success(), "{}", String::from_utf8_lossy(&install.stderr));
    std::fs::write(app.path().join("package.json"), manifest).unwrap();
    let before = snapshot(app.path());

    // An advisory for kv-lib: 1.0.0 and 1.1.x are affected; 1.0.1, 1.2.0 and later fix it.
    let osv = tempfile::tempdir().unwrap();
    std::fs::write(
        osv.path().join("GHSA-kvli-b000-0001.json"),
        r#"{"id":"GHSA-kvli-b000-0001","summary":"kv-lib adds wrongly","affected":[{"package":{"ecosystem":"npm","name":"kv-lib"},
            "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.1"},{"introduced":"1.1.0"},{"fixed":"1.2.0"}]}]}]}"#,
    )
    .unwrap();
    let db = tempfile::tempdir().unwrap();
    let imported = Command::new(KEVLAR)
        .args(["db", "update", "--from"])
        .arg(osv.path())
        .arg("--db")
        .arg(db.path())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let out = Command::new(KEVLAR)
        .args(["update", "--test", "npm test", "--jobs", "2", "--timeout", "8s", "--json", "--db"])
        .arg(db.path())
        .arg(app.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "not every version passes: {err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |name: &str, version: &str| -> String {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name && r["version"] == version)
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{name}@{version} not tried: {v}"))
    };
    assert_eq!(status("kv-lib", "1.0.1"), "PASS");
    assert_eq!(status("kv-lib", "1.1.0"), "FAIL");
    assert_eq!(status("kv-lib", "1.2.0"), "PASS");
    assert_eq!(status("kv-lib", "1.3.0"), "TIMEOUT");
    assert_eq!(status("kv-lib", "2.0.0"), "PASS");
    assert_eq!(status("kv-util", "1.1.0"), "INSTALL-FAILED");
    // Updates that fix the advisory were tried first, and say so.
    let order: Vec<(String, bool)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!("{}@{}", r["name"].as_str().unwrap(), r["version"].as_str().unwrap()),
                !r["fixes"].as_array().unwrap().is_empty(),
            )
        })
        .collect();
    let marked: Vec<&str> = order.iter().filter(|(_, f)| *f).map(|(n, _)| n.as_str()).collect();
    assert_eq!(marked, ["kv-lib@1.0.1", "kv-lib@1.2.0", "kv-lib@1.3.0", "kv-lib@2.0.0"], "{order:?}");
    assert!(order.iter().take(4).all(|(_, f)| *f), "fixing updates first: {order:?}");
    let fail =
        v["results"].as_array().unwrap().iter().find(|r| r["version"] == "1.1.0" && r["name"] == "kv-lib").unwrap();
    assert!(fail["output_tail"].as_str().unwrap().contains("AssertionError"), "{fail}");
    assert_eq!(snapshot(app.path()), before, "the project's own tree is untouched");

    // --allow patch --latest-only: one version, and it passes.
    let out = Command::new(KEVLAR)
        .args(["update", "--test", "npm test", "--allow", "patch", "--latest-only", "--only", "kv-lib"])
        .arg(app.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kv-lib") && text.contains("1.0.1") && text.contains("1 of 1 version(s) keep the tests green"),
        "{text}"
    );
    // --min-age: everything here was published seconds ago.
    let out = Command::new(KEVLAR)
        .args(["update", "--test", "npm test", "--min-age", "3d"])
        .arg(app.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to try"));
    // A project whose own tests fail: said, and nothing is tried.
    std::fs::write(app.path().join("test.js"), "process.exit(3);\n").unwrap();
    let out = Command::new(KEVLAR).args(["update", "--test", "npm test"]).arg(app.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the untouched project does not pass its tests"));
}

#[test]
fn apply_bisects_a_breaking_combination_and_branch_commits_each_update() {
    let reg = Verdaccio::start();
    for v in ["1.0.0", "1.2.0", "2.0.0"] {
        reg.publish("kv-lib", v, &[("index.js", &lib(v))]);
    }
    reg.publish("kv-util", "1.0.0", &[("index.js", &lib("1.0.0"))]);
    // Fine alone, but it needs kv-lib 1.0.x: together with kv-lib 2.0.0 the tests fail.
    reg.publish("kv-util", "1.0.4", &[("index.js", &format!("{}exports.needs = '1.0';\n", lib("1.0.4")))]);
    let app = tempfile::tempdir().unwrap();
    let manifest = r#"{"name":"fixture-app","version":"1.0.0","private":true,"scripts":{"test":"node test.js"},
        "dependencies":{"kv-lib":"^1.0.0","kv-util":"~1.0.0"}}"#;
    std::fs::write(app.path().join("package.json"), manifest).unwrap();
    std::fs::write(app.path().join(".npmrc"), format!("registry={}\n", reg.url())).unwrap();
    std::fs::write(app.path().join(".gitignore"), "node_modules/\n").unwrap();
    std::fs::write(
        app.path().join("test.js"),
        "const assert = require('assert');\nconst lib = require('kv-lib'), util = require('kv-util');\n\
         assert.strictEqual(lib.add(1, 2), 3);\n\
         if (util.needs) assert.ok(lib.version.startsWith(util.needs), `kv-util ${util.version} needs kv-lib ${util.needs}`);\n",
    )
    .unwrap();
    let sh = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).current_dir(app.path()).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    sh(&["npm", "install", "--no-audit", "--no-fund", "kv-lib@1.0.0", "kv-util@1.0.0"]);
    std::fs::write(app.path().join("package.json"), manifest).unwrap();
    sh(&["git", "init", "-q"]);
    sh(&["git", "add", "-A"]);
    sh(&["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "fixture"]);

    // --branch: one branch per package at its newest passing version; the working tree stays as it was.
    // --push origin: each pushed to a bare repository; --pr github: a pull request each, opened
    // through a local server standing in for GitHub's REST API.
    let remote = tempfile::tempdir().unwrap();
    let init = Command::new("git").args(["init", "-q", "--bare"]).arg(remote.path()).status().unwrap();
    assert!(init.success());
    sh(&["git", "remote", "add", "origin", remote.path().to_str().unwrap()]);
    // The remote takes push options and records them, as GitLab reads `merge_request.create`.
    let git_remote =
        |args: &[&str]| Command::new("git").arg("--git-dir").arg(remote.path()).args(args).output().unwrap();
    git_remote(&["config", "receive.advertisePushOptions", "true"]);
    let hook = remote.path().join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\ni=0\nwhile [ $i -lt \"${GIT_PUSH_OPTION_COUNT:-0}\" ]; do eval \"echo \\$GIT_PUSH_OPTION_$i\" >> \"$GIT_DIR/push-options\"; i=$((i+1)); done\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let base = sh(&["git", "rev-parse", "--abbrev-ref", "HEAD"]).trim().to_owned();
    let github = common::peers::HttpReceiver::start(201);
    *github.body.lock().unwrap() = Some(r#"{"number": 7, "html_url": "https://github.com/acme/shop/pull/7"}"#.into());
    let update = |extra: &[&str], token: Option<&str>| {
        let mut cmd = Command::new(KEVLAR);
        cmd.args(["update", "--test", "npm test", "--jobs", "2"]).args(extra).arg(app.path());
        cmd.env("GITHUB_API_URL", github.url("")).env("GITHUB_REPOSITORY", "acme/shop").env_remove("GITHUB_TOKEN");
        if let Some(t) = token {
            cmd.env("GITHUB_TOKEN", t);
        }
        cmd.output().unwrap()
    };
    // Without a token, said before anything is tried.
    let out = update(&["--branch", "--push", "origin", "--pr", "github"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GITHUB_TOKEN"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = update(&["--push", "origin"], None);
    assert_eq!(out.status.code(), Some(2), "--push needs --branch");
    let before = snapshot(app.path());
    let out = update(
        &["--branch", "--push", "origin", "--push-option", "merge_request.create", "--pr", "github"],
        Some("ghs_t0ken"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let pushed = Command::new("git").arg("--git-dir").arg(remote.path()).args(["branch", "--list"]).output().unwrap();
    let pushed = String::from_utf8_lossy(&pushed.stdout);
    let options = std::fs::read_to_string(remote.path().join("push-options")).unwrap_or_default();
    assert_eq!(options.lines().filter(|l| *l == "merge_request.create").count(), 2, "{options}");
    assert!(
        pushed.contains("kevlar/update-kv-lib-2.0.0") && pushed.contains("kevlar/update-kv-util-1.0.4"),
        "{pushed}"
    );
    assert_eq!(stdout.matches("pull request https://github.com/acme/shop/pull/7").count(), 2, "{stdout}");
    let prs = github.all();
    assert_eq!(prs.len(), 2, "{prs:?}");
    for pr in &prs {
        assert_eq!((pr.method.as_str(), pr.path.as_str()), ("POST", "/repos/acme/shop/pulls"));
        assert_eq!(pr.header("authorization"), Some("Bearer ghs_t0ken"));
        assert_eq!(pr.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(pr.header("x-github-api-version"), Some("2022-11-28"));
        assert!(pr.header("user-agent").unwrap().starts_with("kevlar/"));
        let v = pr.json();
        assert_eq!(v["base"], base.as_str());
        let head = v["head"].as_str().unwrap();
        assert!(head.starts_with("kevlar/update-kv-"), "{v}");
        assert!(v["title"].as_str().unwrap().starts_with("Update kv-"), "{v}");
        assert!(v["body"].as_str().unwrap().contains("`npm test` passes with kv-"), "{v}");
    }
    let branches = sh(&["git", "branch", "--list", "kevlar/*"]);
    assert!(
        branches.contains("kevlar/update-kv-lib-2.0.0") && branches.contains("kevlar/update-kv-util-1.0.4"),
        "{branches}"
    );
    let shown = sh(&["git", "show", "kevlar/update-kv-lib-2.0.0:package.json"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["dependencies"]["kv-lib"], "^2.0.0", "{shown}");
    assert!(
        sh(&["git", "log", "-1", "--format=%B", "kevlar/update-kv-lib-2.0.0"]).contains("`npm test` passes with it")
    );
    let after: Vec<_> = snapshot(app.path()).into_iter().filter(|(p, _)| !p.starts_with(".git/")).collect();
    let before: Vec<_> = before.into_iter().filter(|(p, _)| !p.starts_with(".git/")).collect();
    assert_eq!(after, before, "--branch leaves the working tree alone");
    assert!(sh(&["git", "status", "--porcelain"]).is_empty());

    // --apply: kv-lib 2.0.0 and kv-util 1.0.4 each pass, not together: bisection leaves kv-util out.
    let out = Command::new(KEVLAR).args(["update", "--test", "npm test", "--apply"]).arg(app.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("wrote kv-lib@2.0.0 into package.json") && text.contains("left out kv-util@1.0.4"), "{text}");
    let pkg: Value = serde_json::from_str(&std::fs::read_to_string(app.path().join("package.json")).unwrap()).unwrap();
    assert_eq!(pkg["dependencies"]["kv-lib"], "^2.0.0");
    assert_eq!(pkg["dependencies"]["kv-util"], "~1.0.0");
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(app.path().join("package-lock.json")).unwrap()).unwrap();
    assert_eq!(lock["packages"]["node_modules/kv-lib"]["version"], "2.0.0");
    assert_eq!(lock["packages"]["node_modules/kv-util"]["version"], "1.0.0");
    // And the project, installed as written, is green.
    sh(&["npm", "ci", "--no-audit", "--no-fund"]);
    sh(&["npm", "test"]);
}

#[test]
fn ctrl_c_stops_cleanly_and_leaves_the_tree_and_no_scratch_copies() {
    let reg = Verdaccio::start();
    reg.publish("kv-lib", "1.0.0", &[("index.js", &lib("1.0.0"))]);
    reg.publish("kv-lib", "1.0.1", &[("index.js", &lib("1.0.1"))]);
    let app = tempfile::tempdir().unwrap();
    let manifest = r#"{"name":"fixture-app","version":"1.0.0","private":true,"dependencies":{"kv-lib":"^1.0.0"}}"#;
    std::fs::write(app.path().join("package.json"), manifest).unwrap();
    std::fs::write(app.path().join(".npmrc"), format!("registry={}\n", reg.url())).unwrap();
    let install = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "kv-lib@1.0.0"])
        .current_dir(app.path())
        .output()
        .unwrap();
    assert!(install.status.success());
    std::fs::write(app.path().join("package.json"), manifest).unwrap();
    let before = snapshot(app.path());
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(KEVLAR)
        .args(["update", "--test", "sleep 60"])
        .arg(app.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the untouched project's tests are running (a scratch copy exists), then Ctrl-C.
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    assert!(line.contains("testing the untouched project"), "{line}");
    common::peers::wait_until(30, "a scratch copy", || {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("kevlar-update-"))
    });
    let started = std::time::Instant::now();
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "the sleeping test was stopped, not waited for");
    assert_eq!(snapshot(app.path()), before, "the tree is untouched");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "scratch copies left behind: {left:?}");
}
