//! The supervisor under `kevlar run` (what forever and pm2 do): crash restarts with backoff and
//! the `errored` state, hang detection by health check, requests held across a restart, rolling
//! zero-downtime reloads (and a failed one that keeps the old instance), several instances sharing
//! load, and the app's logs with rotation. Real Node apps written for the tests.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{client, repo, Kevlar, KEVLAR};
use serde_json::Value;

fn app() -> String {
    repo().join("tests/fixtures/apps/lifecycle.js").display().to_string()
}

fn run_app(config: &str) -> Kevlar {
    Kevlar::cmd(&["run", "--", "node", &app()]).config(config).start()
}

async fn wait_ok(k: &Kevlar) -> String {
    let c = client();
    for _ in 0..800 {
        if let Ok(r) = c.get(k.url("/")).send().await {
            if r.status() == 200 {
                return r.text().await.unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the app never answered; stderr:\n{}", k.stderr());
}

fn ctl(k: &Kevlar, what: &str) -> (i32, String) {
    let out = Command::new(KEVLAR).args([what, "--data-dir"]).arg(&k.data_dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

fn status(k: &Kevlar) -> Value {
    let out = Command::new(KEVLAR).args(["status", "--json", "--data-dir"]).arg(&k.data_dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn count(k: &Kevlar, action: &str) -> usize {
    k.events(&["--action", action, "--limit", "10000"]).len()
}

#[tokio::test]
async fn requests_during_a_crash_restart_are_held_and_served() {
    let k = run_app("[app]\nmin_uptime = \"1h\"\n");
    let first = wait_ok(&k).await;
    let c = client();
    let bye = c.get(k.url("/crash")).send().await.unwrap();
    assert_eq!(bye.status(), 200);
    // Fire requests straight into the restart window: none may fail.
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let c = c.clone();
        let url = k.url("/");
        tasks.push(tokio::spawn(async move { c.get(url).send().await.map(|r| r.status().as_u16()) }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
    let crash = k.wait_event(|e| e["event"]["action"] == "sys_crash");
    assert_eq!(crash["kevlar"]["exit_code"], 3);
    assert!(crash["kevlar"]["stderr_tail"].to_string().contains("about to crash"));
    k.wait_event(|e| e["event"]["action"] == "sys_restart" && e["kevlar"]["reason"] == "crash");
    assert_ne!(wait_ok(&k).await, first);
}

/// The first crash of an instance that was serving restarts it at once (pm2 and forever do); the
/// backoff starts from the second fast crash.
#[tokio::test]
async fn the_first_crash_after_ready_restarts_at_once_the_second_backs_off() {
    let k = run_app("[app]\nmin_uptime = \"1h\"\nbackoff_first = \"300ms\"\n");
    let c = client();
    let first = wait_ok(&k).await;
    c.get(k.url("/crash")).send().await.unwrap();
    k.wait_event(|e| e["event"]["action"] == "sys_restart" && e["kevlar"]["reason"] == "crash");
    let second = wait_ok(&k).await;
    assert_ne!(second, first);
    c.get(k.url("/crash")).send().await.unwrap();
    for _ in 0..400 {
        if count(&k, "sys_crash") >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let crashes = k.events(&["--action", "sys_crash", "--limit", "10"]);
    let delays: Vec<Value> = crashes.iter().map(|e| e["kevlar"]["restart_in_ms"].clone()).collect();
    assert_eq!(delays, vec![Value::from(0), Value::from(300)], "{crashes:#?}");
    assert_ne!(wait_ok(&k).await, second);
}

#[tokio::test]
async fn fast_crashes_back_off_then_give_up_until_restart() {
    let k = Kevlar::cmd(&["run", "--", "node", &app()])
        .config("[app]\nbackoff_first = \"50ms\"\nbackoff_factor = 2.0\nmax_fast_crashes = 5\n[app.env]\nCRASH_AT_START = \"1\"\n")
        .start();
    let errored = k.wait_event(|e| e["event"]["action"] == "sys_errored");
    assert_eq!(errored["log"]["level"], "alert");
    let crashes = k.events(&["--action", "sys_crash", "--limit", "100"]);
    assert_eq!(crashes.len(), 5, "{crashes:#?}");
    assert!(crashes[0]["kevlar"]["stderr_tail"].to_string().contains("boot failure"));
    assert_eq!(crashes[0]["kevlar"]["exit_code"], 2);
    // The delays grow: 50, 100, 200, 400 ms; the last crash gives up instead. The crashes really
    // are that far apart.
    let delays: Vec<Value> = crashes.iter().map(|e| e["kevlar"]["restart_in_ms"].clone()).collect();
    assert_eq!(delays, vec![Value::from(50), 100.into(), 200.into(), 400.into(), Value::Null], "{crashes:#?}");
    let ts: Vec<i64> = crashes.iter().map(|e| humantime_ms(e["@timestamp"].as_str().unwrap())).collect();
    for (i, w) in ts.windows(2).enumerate() {
        assert!(w[1] - w[0] >= delays[i].as_i64().unwrap(), "crash {} came before its backoff: {ts:?}", i + 1);
    }
    let s = status(&k);
    assert_eq!(s["app"]["state"], "errored", "{s}");
    // Kevlar stays up: 503 with Retry-After, admin API answering.
    let r = client().get(k.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    // No more restarts while errored…
    assert_eq!(count(&k, "sys_crash"), 5);
    // …until `kevlar restart`.
    let (code, out) = ctl(&k, "restart");
    assert_eq!(code, 0, "{out}");
    for _ in 0..400 {
        if count(&k, "sys_crash") > 5 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("restart did not start the app again");
}

fn humantime_ms(s: &str) -> i64 {
    let t = std::time::SystemTime::UNIX_EPOCH;
    let parsed = humantime::parse_rfc3339(s).unwrap();
    parsed.duration_since(t).unwrap().as_millis() as i64
}

#[tokio::test]
async fn a_hung_app_is_restarted_by_the_health_check() {
    let k = run_app("[app.health]\ninterval = \"200ms\"\ntimeout = \"200ms\"\nfailures = 2\n");
    let first = wait_ok(&k).await;
    client().get(k.url("/hang")).send().await.unwrap();
    let e = k.wait_event(|e| e["event"]["action"] == "sys_crash" && e["kevlar"]["reason"] == "hang");
    assert!(e["message"].as_str().unwrap().contains("hung"));
    k.wait_event(|e| e["event"]["action"] == "sys_restart" && e["kevlar"]["reason"] == "hang");
    assert_ne!(wait_ok(&k).await, first, "a new process serves");
}

#[tokio::test]
async fn reload_under_load_fails_no_request() {
    let k = run_app("[app]\ninstances = 2\n");
    wait_ok(&k).await;
    let before = status(&k);
    let pids_before: Vec<u64> =
        before["app"]["instances"].as_array().unwrap().iter().map(|i| i["pid"].as_u64().unwrap()).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..4 {
        let c = client();
        let url = k.url("/");
        let stop = stop.clone();
        loops.push(tokio::spawn(async move {
            let (mut ok, mut bad) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => bad.push(r.status().to_string()),
                    Err(e) => bad.push(e.to_string()),
                }
            }
            (ok, bad)
        }));
    }
    let k_dir = k.data_dir.clone();
    let (code, out) = tokio::task::spawn_blocking(move || {
        let out = Command::new(KEVLAR).args(["reload", "--data-dir"]).arg(&k_dir).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    // And once more with SIGHUP.
    let _ = Command::new("kill").args(["-HUP", &k.child.id().to_string()]).status();
    k.wait_event(|e| {
        e["event"]["action"] == "sys_restart"
            && e["kevlar"]["reason"] == "reload"
            && e["kevlar"]["instance"] == 1
            && e["@timestamp"].is_string()
    });
    for _ in 0..400 {
        if count(&k, "sys_restart") >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for l in loops {
        let (ok, bad) = l.await.unwrap();
        assert!(bad.is_empty(), "failed requests during reload: {bad:?}");
        total += ok;
    }
    assert!(total > 50, "the load ran ({total} requests)");
    let after = status(&k);
    for i in after["app"]["instances"].as_array().unwrap() {
        assert!(!pids_before.contains(&i["pid"].as_u64().unwrap()), "every instance replaced: {after}");
    }
}

#[tokio::test]
async fn a_failed_reload_keeps_the_old_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("broken");
    let k = run_app(&format!("[app]\nready_timeout = \"2s\"\n[app.env]\nFAIL_IF_EXISTS = \"{}\"\n", flag.display()));
    let first = wait_ok(&k).await;
    std::fs::write(&flag, "x").unwrap();
    let (code, out) = ctl(&k, "reload");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("old one keeps serving"), "{out}");
    k.wait_event(|e| e["event"]["action"] == "sys_reload_fail");
    assert_eq!(wait_ok(&k).await, first, "the old instance still serves");
}

#[tokio::test]
async fn two_instances_share_the_load() {
    let k = run_app("[app]\ninstances = 2\n");
    wait_ok(&k).await;
    // Both ready.
    for _ in 0..400 {
        if status(&k)["app"]["state"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let c = c.clone();
        let url = k.url("/");
        tasks.push(tokio::spawn(async move { c.get(url).send().await.unwrap().text().await.unwrap() }));
    }
    let mut pids = std::collections::HashSet::new();
    for t in tasks {
        pids.insert(t.await.unwrap());
    }
    assert_eq!(pids.len(), 2, "{pids:?}");
}

#[tokio::test]
async fn app_logs_are_captured_rotated_and_shown() {
    let k = run_app("[app.logs]\nmax_size = \"4KiB\"\nkeep = 2\necho = false\n");
    wait_ok(&k).await;
    client().get(k.url("/spam?n=400")).send().await.unwrap();
    let logs = k.data_dir.join("logs");
    // Written by another thread as the app prints: wait for the last line.
    for _ in 0..400 {
        if std::fs::read_to_string(logs.join("app.out.log")).unwrap_or_default().contains("line 399 ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(logs.join("app.out.log.1").exists() && logs.join("app.out.log.2").exists());
    assert!(!logs.join("app.out.log.3").exists(), "keep = 2");
    assert!(std::fs::metadata(logs.join("app.out.log")).unwrap().len() <= 4096);
    let out = Command::new(KEVLAR).args(["logs", "--lines", "3", "--data-dir"]).arg(&k.data_dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().last().unwrap().starts_with("line 399 "), "{text}");
}

#[tokio::test]
async fn the_command_can_come_from_the_config_and_logs_follow() {
    let cfg = format!("[app]\ncommand = [\"node\", \"{}\"]\n", app());
    let k = Kevlar::cmd(&["run"]).config(&cfg).start();
    wait_ok(&k).await;
    let mut follow = common::Owned::spawn(
        Command::new(KEVLAR)
            .args(["logs", "--follow", "--data-dir"])
            .arg(&k.data_dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let out = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    // Whether the first batch is read at start or followed, once it is printed `logs` is running;
    // the second batch can then only arrive by following.
    client().get(k.url("/spam?n=1")).send().await.unwrap();
    let first = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(l) => l,
        Err(_) => {
            let _ = follow.kill();
            let mut stderr = String::new();
            if let Some(mut e) = follow.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            panic!(
                "logs --follow printed nothing; its stderr: {stderr}; app.out.log: {:?}",
                std::fs::read_to_string(k.data_dir.join("logs/app.out.log"))
            );
        }
    };
    assert!(first.starts_with("line 0 "), "{first}");
    client().get(k.url("/spam?n=3")).send().await.unwrap();
    let followed: Vec<String> =
        (0..3).map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("followed lines")).collect();
    assert!(followed[2].starts_with("line 2 "), "{followed:?}");
    let _ = follow.kill();
    let _ = follow.wait();
    let s = status(&k);
    assert_eq!(s["app"]["state"], "running", "{s}");
    let (code, out) = ctl(&k, "status");
    assert_eq!(code, 0);
    assert!(out.contains("running") && out.contains("RESTARTS"), "{out}");
}
