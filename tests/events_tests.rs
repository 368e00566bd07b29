//! The event spine seen from outside (OWASP Logging cheat sheet; ECS): the access log's JSON lines,
//! `kevlar events --follow`, and the bounded store.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{client, DemoApp, Kevlar, KEVLAR};
use serde_json::{json, Value};

#[tokio::test]
async fn the_access_log_has_one_ecs_line_per_request() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let c = client();
    let r = c.get(k.url("/health?probe=1")).header("User-Agent", "tour/1.0").send().await.unwrap();
    assert_eq!(r.status(), 200);
    c.get(k.url("/nope")).send().await.unwrap();
    let path = k.data_dir.join("logs/access.log");
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..200 {
        lines = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(lines.len(), 2, "{lines:?}");
    let l = &lines[0];
    assert_eq!(l["url"]["path"], "/health");
    assert_eq!(l["url"]["query"], "probe=1");
    assert_eq!(l["http"]["request"]["method"], "GET");
    assert_eq!(l["http"]["response"]["status_code"], 200);
    assert_eq!(l["source"]["ip"], "127.0.0.1");
    assert_eq!(l["user_agent"]["original"], "tour/1.0");
    assert_eq!(l["http"]["request"]["id"].as_str().unwrap().len(), 32);
    assert_eq!(lines[1]["http"]["response"]["status_code"], 404);
}

#[tokio::test]
async fn events_follow_prints_new_events_as_they_arrive() {
    let app = DemoApp::start();
    let k = Kevlar::guard(&app.url()).start();
    let mut follow = common::Owned::spawn(
        Command::new(KEVLAR)
            .args(["events", "--follow", "--json", "--action", "app_follow_test", "--data-dir"])
            .arg(&k.data_dir)
            .stdout(Stdio::piped()),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    for i in 0..3 {
        let r = client()
            .post(k.admin_url("/v1/events"))
            .bearer_auth(k.token())
            .json(&json!({"event": {"action": "app_follow_test"}, "message": format!("m{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("follow printed the new event");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["message"], format!("m{i}"));
    }
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn events_refuses_bad_filters_and_a_missing_store() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(KEVLAR).args(["events", "--data-dir"]).arg(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no event store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(KEVLAR)
        .args(["events", "--since", "yesterday-ish", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    let out =
        Command::new(KEVLAR).args(["events", "--ip", "not-an-ip", "--data-dir"]).arg(tmp.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ip"));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `kevlar validate kevlar.toml | head -0`: the reader is gone before the first line; no panic.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kevlar.toml");
    std::fs::write(&cfg, "[proxy]\nlisten = \"127.0.0.1:8080\"\n").unwrap();
    let mut child = std::process::Command::new(KEVLAR)
        .arg("validate")
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// One catalogue of action names (`kevlar_core::action`): no code outside it spells a name of its
/// own, so that a rename cannot leave a sensor and a consumer (a jail, a route) disagreeing.
/// Tests keep the literal names: they check the contract from outside.
#[test]
fn action_names_are_spelt_only_in_the_catalogue() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("src")];
    for c in std::fs::read_dir(root.join("crates")).unwrap() {
        dirs.push(c.unwrap().path().join("src"));
    }
    let catalogue = root.join("crates/core/src/action.rs");
    let mut offenders = Vec::new();
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") || p == catalogue || p.ends_with("tests.rs") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                for name in kevlar_core::action::ALL {
                    if line.contains(&format!("\"{name}\"")) {
                        offenders.push(format!("{}:{}: {name}", p.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(files > 100, "the walk found only {files} source files");
    assert!(offenders.is_empty(), "action names spelt outside kevlar_core::action:\n{}", offenders.join("\n"));
}
