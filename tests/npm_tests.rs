//! Kevlar installed the way Node tools are: the packages `scripts/npm-pack.sh` builds (a launcher,
//! the native binary for this platform, the app-side helper) published to a local registry
//! (verdaccio), installed into a fresh project with `npm i -D kevlar`, run through `npx`; and the
//! helper `@kevlar/app` reporting to the real binary in front of a plain `http` app.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::peers::{wait_until, Verdaccio};
use common::{events_in, repo, KEVLAR};
use serde_json::Value;

/// Node's name for this platform (`${process.platform}-${process.arch}`).
fn node_platform() -> String {
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{}-{cpu}", std::env::consts::OS)
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kevlar's `kevlar: ready …` line, from the child's standard error.
fn ready_line(child: &mut std::process::Child) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("kevlar: ready ") {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("kevlar run became ready")
}

/// The helper's typings, checked by TypeScript (strict) against code that uses them in an Express
/// app; a misuse is an error.
fn typings_check(project: &Path) {
    let typings = repo().join("tests/typings/node_modules");
    assert!(typings.join(".bin/tsc").exists(), "TypeScript is installed by scripts/setup.sh (tests/typings)");
    std::os::unix::fs::symlink(typings.join("@types"), project.join("node_modules/@types")).unwrap();
    let good = r#"
import express from 'express';
import * as kevlar from '@kevlar/app';
const app = express();
app.use(kevlar.middleware());
app.post('/login', (req, res) => {
  const breached: boolean = req.kevlar?.breached ?? false;
  const count: '1+' | '100+' | null = kevlar.read(req).breachedCount;
  if (breached || count) kevlar.loginFailed(res, 'ada').json({ ok: false });
  else kevlar.loginSucceeded(res, 'ada', { email: 'ada@example.com' }).json({ ok: true });
  kevlar.report(res, 'user_updated', { user: 'ada', outcome: 'success', message: 'x' });
});
kevlar.send({ action: 'authz_admin', category: 'iam', severity: 3 }).then((r) => r['event_id']);
"#;
    let bad = "import * as kevlar from '@kevlar/app';\nimport http from 'node:http';\n\
               http.createServer((req, res) => { kevlar.report(res, 'x', { outcome: 'maybe' }); });\n";
    std::fs::write(project.join("good.ts"), good).unwrap();
    std::fs::write(project.join("bad.ts"), bad).unwrap();
    let tsc = |file: &str| {
        Command::new(typings.join(".bin/tsc"))
            .args([
                "--noEmit",
                "--strict",
                "--esModuleInterop",
                "--module",
                "nodenext",
                "--moduleResolution",
                "nodenext",
                file,
            ])
            .current_dir(project)
            .output()
            .unwrap()
    };
    let out = tsc("good.ts");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = tsc("bad.ts");
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stdout).contains("'\"maybe\"'"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

const APP: &str = r#"
const http = require('node:http');
const fs = require('node:fs');
const kevlar = require('@kevlar/app');
fs.writeFileSync(process.env.PID_FILE, String(process.pid));
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const form = new URLSearchParams(body);
    res.setHeader('Content-Type', 'application/json');
    if (req.url === '/login') {
      const user = form.get('username');
      if (form.get('password') === 'correct horse') kevlar.loginSucceeded(res, user, { email: 'ada@example.com' });
      else kevlar.loginFailed(res, user);
      return res.end(JSON.stringify(kevlar.read(req)));
    }
    if (req.url === '/profile') {
      kevlar.report(res, 'user_updated', { user: 'ada', message: 'email; changed=yes' });
      kevlar.report(res, 'authn_password_change', { user: 'ada', outcome: 'success' });
      return res.end('{}');
    }
    res.end(JSON.stringify({ ok: true }));
  });
});
server.listen(Number(process.env.PORT), '127.0.0.1');
"#;

/// The packages built by `scripts/npm-pack.sh` from this build (stripped, as a release ships it),
/// published to a fresh verdaccio, and a fresh project that installed them: `npm i -D kevlar` and
/// `npm i @kevlar/app`.
fn installed_project(tmp: &Path) -> (Verdaccio, std::path::PathBuf) {
    // The binary as a release would ship it: stripped (what `--profile dist` gives).
    let bin = tmp.join("kevlar");
    std::fs::copy(KEVLAR, &bin).unwrap();
    let _ = Command::new("strip").arg(&bin).status();
    let packs = tmp.join("packs");
    let platform = node_platform();
    let out = Command::new("bash")
        .arg(repo().join("scripts/npm-pack.sh"))
        .arg(&packs)
        .arg(format!("{platform}={}", bin.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "npm-pack.sh: {}", String::from_utf8_lossy(&out.stderr));
    let reg = Verdaccio::start();
    let version = env!("CARGO_PKG_VERSION");
    for name in [
        format!("kevlar-{platform}-{version}.tgz"),
        format!("kevlar-{version}.tgz"),
        format!("kevlar-app-{version}.tgz"),
    ] {
        reg.publish_tarball(&packs.join(name));
    }

    // A fresh project: `npm i -D kevlar` and the helper, from the registry alone.
    let project = tmp.join("shop");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("package.json"), r#"{"name":"shop","version":"1.0.0","private":true}"#).unwrap();
    std::fs::write(project.join(".npmrc"), format!("registry={}\n", reg.url())).unwrap();
    run(&project, &["npm", "install", "--no-audit", "--no-fund", "-D", "kevlar"]);
    run(&project, &["npm", "install", "--no-audit", "--no-fund", "@kevlar/app"]);
    let pkg: Value = serde_json::from_str(&std::fs::read_to_string(project.join("package.json")).unwrap()).unwrap();
    assert!(pkg["devDependencies"]["kevlar"].is_string() && pkg["dependencies"]["@kevlar/app"].is_string(), "{pkg}");
    (reg, project)
}

#[test]
fn npm_install_then_npx_kevlar_runs_the_app_and_the_helper_reports_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (_reg, project) = installed_project(tmp.path());
    let version = env!("CARGO_PKG_VERSION");
    typings_check(&project);
    let v = run(&project, &["npx", "kevlar", "--version"]);
    assert_eq!(v.trim(), format!("kevlar {version}"));
    // The exit status and the streams come through: `kevlar validate` of a broken config is 1.
    std::fs::write(project.join("broken.toml"), "[proxy]\nlisen = 1\n").unwrap();
    let st = Command::new("npx").args(["kevlar", "validate", "broken.toml"]).current_dir(&project).output().unwrap();
    assert_eq!(st.status.code(), Some(1), "{}", String::from_utf8_lossy(&st.stderr));
    assert!(
        String::from_utf8_lossy(&st.stdout).contains("broken.toml:2: proxy.lisen"),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );

    // A breached-password index, then the app behind `npx kevlar run`.
    let data = tmp.path().join("data");
    std::fs::write(project.join("breached.txt"), "hunter2\n123456\n").unwrap();
    let data_s = data.to_str().unwrap();
    run(&project, &["npx", "kevlar", "breach", "import", "--format", "plain", "--data-dir", data_s, "breached.txt"]);
    std::fs::write(project.join("server.js"), APP).unwrap();
    let pid_file = tmp.path().join("app.pid");
    let mut npx = Command::new("npx")
        .args([
            "kevlar",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--data-dir",
            data_s,
            "--",
            "node",
            "server.js",
        ])
        .current_dir(&project)
        .env("PID_FILE", &pid_file)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = ready_line(&mut npx);
    let field = |name: &str| -> String {
        ready.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))).unwrap().to_owned()
    };
    let (http, admin) = (field("http"), field("admin"));
    wait_until(30, "the app behind Kevlar", || ureq::get(&format!("http://{http}/")).call().is_ok());
    let home = ureq::get(&format!("http://{http}/")).call().unwrap();
    assert!(home.header("content-security-policy").is_some(), "Kevlar's headers on the app's answer");

    // The helper's reports: read by Kevlar, gone from the answer.
    let login = |password: &str| {
        ureq::post(&format!("http://{http}/login"))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&format!("username=ada&password={}", password.replace(' ', "+")))
            .unwrap()
    };
    let r = login("hunter2");
    assert!(r.header("kevlar-event").is_none(), "Kevlar removes the app's report");
    let seen: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
    assert_eq!(seen["breached"], true, "req.kevlar.breached from Kevlar's header: {seen}");
    assert_eq!(seen["breachedCount"], "100+", "a plain list counts its first entries as common");
    assert!(seen["requestId"].as_str().is_some_and(|id| id.len() >= 16), "{seen}");
    let seen: Value = serde_json::from_str(&login("correct horse").into_string().unwrap()).unwrap();
    assert_eq!(seen["breached"], false);
    let r = ureq::post(&format!("http://{http}/profile")).call().unwrap();
    assert!(r.header("kevlar-event").is_none());
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap().trim().to_owned();
    let send = Command::new("node")
        .arg("-e")
        .arg("require('@kevlar/app').send({action: 'authz_admin', user: 'ada', message: 'role granted'}).then(r => console.log(JSON.stringify(r)))")
        .current_dir(&project)
        .env("KEVLAR_ADMIN_URL", format!("http://{admin}"))
        .env("KEVLAR_TOKEN", &token)
        .output()
        .unwrap();
    assert!(send.status.success(), "{}", String::from_utf8_lossy(&send.stderr));
    let stored: Value = serde_json::from_slice(&send.stdout).unwrap();
    assert!(stored["event_id"].is_string(), "{stored}");

    let has = |action: &str, pred: &dyn Fn(&Value) -> bool| {
        events_in(&data, &["--limit", "10000"]).iter().any(|e| e["event"]["action"] == action && pred(e))
    };
    wait_until(10, "the reported events", || {
        has("authn_login_fail", &|e| e["user"]["name"] == "ada")
            && has("authn_login_success", &|e| e["user"]["name"] == "ada")
            && has("authn_password_breached", &|_| true)
            && has("user_updated", &|e| e["message"] == "email; changed=yes")
            && has("authn_password_change", &|_| true)
            && has("authz_admin", &|e| e["message"] == "role granted")
    });

    // Ctrl-C in the terminal (SIGINT to the foreground process group: npm, its shell, the
    // launcher and Kevlar) stops Kevlar, which stops the app, and everything exits.
    let app_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let _ = Command::new("kill").args(["-INT", "--", &format!("-{}", npx.id())]).status();
    let status = npx.wait().unwrap();
    assert!(status.code() == Some(0) || status.code() == Some(130) || status.code().is_none(), "{status:?}");
    wait_until(15, "the app stopped with Kevlar", || {
        !Path::new(&format!("/proc/{app_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{app_pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    assert!(has("sys_shutdown", &|_| true), "Kevlar stopped cleanly");

    // Under a process manager (systemd, a container's init) the launcher itself is run; SIGTERM to
    // it is passed on, and Kevlar stops the app.
    std::fs::remove_file(&pid_file).unwrap();
    let mut launcher = Command::new(project.join("node_modules/.bin/kevlar"))
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--data-dir",
            data_s,
            "--",
            "node",
            "server.js",
        ])
        .current_dir(&project)
        .env("PID_FILE", &pid_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ready_line(&mut launcher);
    wait_until(30, "the app started again", || std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.is_empty()));
    let app_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let _ = Command::new("kill").args(["-TERM", &launcher.id().to_string()]).status();
    let status = launcher.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        !Path::new(&format!("/proc/{app_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{app_pid}/stat")).is_ok_and(|s| s.contains(") Z ")),
        "the app is stopped before the launcher exits"
    );
}

/// One step of a CI job: a shell command with its environment, or an action's name and inputs.
enum Step {
    Run { name: String, env: Vec<(String, String)>, cmd: String },
    Uses { action: String, with: Vec<(String, String)> },
}

fn yaml_pairs(y: &yaml_rust2::Yaml) -> Vec<(String, String)> {
    y.as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| {
                    let v = v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|n| n.to_string()))?;
                    Some((k.as_str()?.to_owned(), v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The jobs of a workflow, in order: GitHub Actions' `jobs.*.steps`, or GitLab CI's `*.script`
/// lines (with the job's `variables`).
fn ci_jobs(file: &str) -> Vec<(String, Vec<Step>)> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let root = docs[0].as_hash().unwrap();
    let mut jobs = Vec::new();
    let entries: Vec<(&yaml_rust2::Yaml, &yaml_rust2::Yaml)> = match root.get(&yaml_rust2::Yaml::from_str("jobs")) {
        Some(j) => j.as_hash().unwrap().iter().collect(),
        None => root.iter().filter(|(_, v)| !v["script"].is_badvalue()).collect(),
    };
    for (name, job) in entries {
        let mut steps = Vec::new();
        if let Some(list) = job["steps"].as_vec() {
            for s in list {
                if let Some(a) = s["uses"].as_str() {
                    steps.push(Step::Uses { action: a.to_owned(), with: yaml_pairs(&s["with"]) });
                } else {
                    let name = s["name"].as_str().unwrap_or("").to_owned();
                    steps.push(Step::Run {
                        name,
                        env: yaml_pairs(&s["env"]),
                        cmd: s["run"].as_str().unwrap().to_owned(),
                    });
                }
            }
        } else {
            let vars = yaml_pairs(&job["variables"]);
            for line in job["script"].as_vec().unwrap() {
                steps.push(Step::Run {
                    name: String::new(),
                    env: vars.clone(),
                    cmd: line.as_str().unwrap().to_owned(),
                });
            }
        }
        jobs.push((name.as_str().unwrap().to_owned(), steps));
    }
    jobs
}

/// The ready-made CI of `examples/ci/`: every command each workflow runs, run as written in a
/// project that installed Kevlar from npm, against local stand-ins for OSV's archive and GitHub's
/// API; the SARIF the audit job uploads is a valid report of the finding.
#[test]
fn the_ci_examples_run_their_commands_as_written() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let (_reg, project) = installed_project(tmp.path());
    std::fs::write(
        project.join("package.json"),
        std::fs::read_to_string(project.join("package.json")).unwrap().replace(
            "\"private\": true",
            "\"private\": true,\n  \"scripts\": { \"test\": \"node -e \\\"require('@kevlar/app')\\\"\" }",
        ),
    )
    .unwrap();
    let git = |args: &[&str]| run(&project, &[&["git"], args].concat());
    std::fs::write(project.join(".gitignore"), "node_modules/\n").unwrap();
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "shop"]);
    let remote = tmp.path().join("remote.git");
    run(tmp.path(), &["git", "init", "-q", "--bare", remote.to_str().unwrap()]);
    git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    // OSV's archive, served locally: a moderate advisory against the installed helper.
    let record = serde_json::json!({"schema_version": "1.4.0", "id": "GHSA-kvlr-0001", "summary": "the helper is vulnerable",
        "affected": [{"package": {"ecosystem": "npm", "name": "@kevlar/app"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "99.0.0"}]}]}],
        "database_specific": {"severity": "MODERATE"}});
    let mut zip_bytes = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip_bytes));
        w.start_file("GHSA-kvlr-0001.json", zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(record.to_string().as_bytes()).unwrap();
        w.finish().unwrap();
    }
    let osv = common::peers::serve_bytes(zip_bytes, 2);
    let osv_base = osv.trim_end_matches("/npm/all.zip").to_owned();
    let github = common::peers::HttpReceiver::start(201);
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let summary = tmp.path().join("summary.md");
    let ci_env: Vec<(&str, String)> = vec![
        ("HOME", home.display().to_string()),
        ("KEVLAR_OSV_URL", osv_base),
        ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
        ("GITHUB_REPOSITORY", "acme/shop".into()),
        ("GITHUB_API_URL", github.url("")),
        ("CI_SERVER_HOST", "gitlab.example.com".into()),
        ("CI_PROJECT_PATH", "acme/shop".into()),
        ("CI_DEFAULT_BRANCH", "main".into()),
        ("KEVLAR_PUSH_TOKEN", "glpat-test".into()),
    ];
    let mut ran = Vec::new();
    for file in ["examples/ci/github-actions.yml", "examples/ci/gitlab-ci.yml"] {
        for (job, steps) in ci_jobs(file) {
            for step in steps {
                match step {
                    Step::Run { name, env, cmd } => {
                        let mut c = Command::new("bash");
                        c.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &cmd]).current_dir(&project);
                        c.env_remove("KEVLAR_DB").envs(ci_env.iter().map(|(k, v)| (*k, v.as_str())));
                        for (k, v) in env {
                            let v = v.replace("${{ secrets.GITHUB_TOKEN }}", "ghs_test");
                            assert!(!v.contains("${{"), "{file} {job}: an expression the test does not know: {v}");
                            c.env(k, v);
                        }
                        assert!(!cmd.contains("${{"), "{file} {job}: an expression the test does not know: {cmd}");
                        let out = c.output().unwrap();
                        assert!(
                            out.status.success(),
                            "{file} {job} `{name}`: {cmd}\n{}{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        );
                        ran.push(format!("{file} {job}: {cmd}"));
                    }
                    Step::Uses { action, with } => {
                        if action.starts_with("github/codeql-action/upload-sarif") {
                            let f = &with.iter().find(|(k, _)| k == "sarif_file").unwrap().1;
                            let sarif: Value =
                                serde_json::from_str(&std::fs::read_to_string(project.join(f)).unwrap()).unwrap();
                            assert_eq!(sarif["version"], "2.1.0");
                            let results = sarif["runs"][0]["results"].as_array().unwrap();
                            assert_eq!(results.len(), 1, "{sarif:#}");
                            assert!(
                                results[0]["message"]["text"].as_str().unwrap().contains("@kevlar/app"),
                                "{sarif:#}"
                            );
                        }
                    }
                }
            }
        }
    }
    let kevlar_cmds = ran.iter().filter(|r| r.contains("npx kevlar")).count();
    assert!(kevlar_cmds >= 8, "every kevlar command of both workflows ran: {ran:#?}");
    assert!(
        std::fs::read_to_string(&summary).unwrap().contains("GHSA-kvlr-0001"),
        "the Markdown report in the job summary"
    );
    assert!(project.join(".kevlar-advisories").is_dir(), "GitLab's job keeps its database where its cache looks");
    assert!(home.join(".cache/kevlar/advisories").is_dir(), "GitHub's job keeps its database where its cache looks");
}
