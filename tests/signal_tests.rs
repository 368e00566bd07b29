//! Process lifecycle under `kevlar run` (its own test binary: it sends signals). Graceful stop
//! (SIGTERM, grace, SIGKILL to the whole process group, no orphans), crash restarts with the exit
//! status and the last stderr lines in `sys_crash`, and `sys_startup`/`sys_shutdown` events.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{client, repo, Kevlar};

fn alive(pid: i32) -> bool {
    // `kill -0` probes without signalling; a zombie has /proc/<pid>/stat state Z.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

async fn wait_up(k: &Kevlar, path: &str) -> String {
    let c = client();
    for _ in 0..400 {
        if let Ok(r) = c.get(k.url(path)).send().await {
            if r.status() == 200 {
                return r.text().await.unwrap();
            }
            assert_eq!(r.status(), 503, "while the app starts Kevlar answers 503");
            assert_eq!(r.headers()["retry-after"], "2");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("app never came up; stderr:\n{}", k.stderr());
}

fn pids(file: &std::path::Path) -> (i32, i32) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut it = text.split_whitespace().map(|s| s.parse().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[tokio::test]
async fn sigterm_stops_kevlar_and_the_whole_app_group() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pids");
    let app = repo().join("tests/fixtures/apps/stubborn.js");
    let mut k = Kevlar::cmd(&["run", "--", "node", app.to_str().unwrap()])
        .config(&format!(
            "[app]\nstop_grace = \"1s\"\n[app.env]\nPID_FILE = \"{}\"\nIGNORE_TERM = \"1\"\n",
            pid_file.display()
        ))
        .start();
    wait_up(&k, "/").await;
    let (app_pid, grandchild) = pids(&pid_file);
    assert!(alive(app_pid) && alive(grandchild));
    let status = k.sigterm();
    assert!(status.success(), "{status:?}; stderr:\n{}", k.stderr());
    assert!(!alive(app_pid), "an app that ignores SIGTERM is killed after the grace");
    assert!(!alive(grandchild), "no orphans: the grandchild dies with the group");
    assert!(k.stderr().contains("ignored SIGTERM"), "{}", k.stderr());
    let actions: Vec<String> =
        k.events(&[]).iter().map(|e| e["event"]["action"].as_str().unwrap().to_owned()).collect();
    assert!(actions.contains(&"sys_startup".into()) && actions.contains(&"sys_shutdown".into()), "{actions:?}");
}

#[tokio::test]
async fn a_crash_is_recorded_and_the_app_restarted() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pids");
    let app = repo().join("tests/fixtures/apps/stubborn.js");
    let k = Kevlar::cmd(&["run", "--", "node", app.to_str().unwrap()])
        .config(&format!("[app.env]\nPID_FILE = \"{}\"\n", pid_file.display()))
        .start();
    let first = wait_up(&k, "/").await;
    let (_, grandchild) = pids(&pid_file);
    let _ = client().get(k.url("/crash")).send().await;
    let crash = k.wait_event(|e| e["event"]["action"] == "sys_crash");
    assert_eq!(crash["kevlar"]["exit_code"], 3);
    assert!(crash["kevlar"]["stderr_tail"].to_string().contains("database connection lost"), "{crash}");
    assert_eq!(crash["log"]["level"], "alert");
    // Back, as a new process; the old group is gone.
    let mut second = String::new();
    for _ in 0..200 {
        second = wait_up(&k, "/").await;
        if second != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_ne!(first, second, "a new instance serves");
    assert!(!alive(grandchild), "what the crashed app spawned was killed");
    k.wait_event(|e| e["event"]["action"] == "sys_restart");
}

/// Polls until `pids` are all gone; returns how long it took, or panics after `secs`.
fn wait_gone(pids: &[i32], secs: u64) -> Duration {
    let start = std::time::Instant::now();
    while pids.iter().any(|p| alive(*p)) {
        assert!(start.elapsed() < Duration::from_secs(secs), "still alive after {secs} s: {pids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[tokio::test]
async fn kill_9_of_kevlar_takes_the_app_and_its_group_with_it() {
    // An app that stops on SIGTERM goes at once; one that ignores it goes after stop_grace.
    for (ignore, within) in [(false, 2), (true, 3)] {
        let tmp = tempfile::tempdir().unwrap();
        let pid_file = tmp.path().join("pids");
        let app = repo().join("tests/fixtures/apps/stubborn.js");
        let mut env = format!("PID_FILE = \"{}\"\n", pid_file.display());
        if ignore {
            env.push_str("IGNORE_TERM = \"1\"\n");
        }
        let mut k = Kevlar::cmd(&["run", "--", "node", app.to_str().unwrap()])
            .config(&format!("[app]\nstop_grace = \"1s\"\n[app.env]\n{env}"))
            .start();
        wait_up(&k, "/").await;
        let (app_pid, grandchild) = pids(&pid_file);
        assert!(alive(app_pid) && alive(grandchild));
        k.kill9();
        let took = wait_gone(&[app_pid, grandchild], within);
        assert!(took < Duration::from_secs(within), "ignore SIGTERM {ignore}: {took:?}");
    }
}

#[tokio::test]
async fn the_app_still_reports_its_own_exit_through_the_keeper() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pids");
    let app = repo().join("tests/fixtures/apps/stubborn.js");
    let k = Kevlar::cmd(&["run", "--", "node", app.to_str().unwrap()])
        .config(&format!("[app.env]\nPID_FILE = \"{}\"\n", pid_file.display()))
        .start();
    wait_up(&k, "/").await;
    let (app_pid, _) = pids(&pid_file);
    // A signal: the app's own, not the keeper's exit code.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(app_pid), nix::sys::signal::Signal::SIGSEGV).unwrap();
    let ev = k.wait_event(|e| e["event"]["action"] == "sys_crash");
    assert!(ev["message"].as_str().unwrap().contains("SIGSEGV"), "{ev}");
}

#[test]
fn a_data_dir_in_use_is_refused_never_shared() {
    let first = Kevlar::guard("http://127.0.0.1:9").start();
    let out = std::process::Command::new(common::KEVLAR)
        .args(["guard", "--upstream", "http://127.0.0.1:9", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&first.data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use by another Kevlar") && err.contains(&format!("pid {}", first.child.id())), "{err}");
    // Once the first is gone (even by kill -9), the dir is free again.
    let dir = first.data_dir.clone();
    let mut first = first;
    first.kill9();
    let again = Kevlar::guard("http://127.0.0.1:9").data_dir(&dir).start();
    drop(again);
}

fn pgid_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_next_start_ends_a_group_left_by_a_kevlar_that_died_with_its_keeper() {
    // `pkill -9 kevlar` kills the keepers too: the app is left running; the next start ends it.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pid_file = tmp.path().join("pids");
    let app = repo().join("tests/fixtures/apps/stubborn.js");
    let config = format!("[app]\nstop_grace = \"1s\"\n[app.env]\nPID_FILE = \"{}\"\n", pid_file.display());
    let start = || Kevlar::cmd(&["run", "--", "node", app.to_str().unwrap()]).data_dir(&data).config(&config).start();
    let mut first = start();
    wait_up(&first, "/").await;
    let (old_app, old_grandchild) = pids(&pid_file);
    let keeper = pgid_of(old_app);
    assert_ne!(keeper, old_app, "the app runs under a keeper that leads its group");
    // Both die "at once": Kevlar is frozen first so that it cannot react to its keeper's death (it
    // ends the group of an instance that exits), then the keeper dies, then Kevlar. (Freezing the
    // keeper instead would leave a stopped process in an orphaned group: the kernel hangs it up.)
    let kevlar_pid = nix::unistd::Pid::from_raw(first.child.id() as i32);
    nix::sys::signal::kill(kevlar_pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(keeper), nix::sys::signal::Signal::SIGKILL).unwrap();
    first.kill9();
    assert!(
        alive(old_app) && alive(old_grandchild),
        "with its keeper gone too, the app is an orphan: {:?} {:?}",
        std::fs::read_to_string(format!("/proc/{old_app}/stat")),
        std::fs::read_to_string(format!("/proc/{old_grandchild}/stat"))
    );
    let second = start();
    assert!(!alive(old_app) && !alive(old_grandchild), "the orphaned group is ended before the new app starts");
    wait_up(&second, "/").await;
    let (new_app, _) = pids(&pid_file);
    assert_ne!(new_app, old_app);
    assert!(alive(new_app), "exactly one copy: the new one");
    assert!(second.stderr().contains("left running by a Kevlar that died"), "{}", second.stderr());
    let ev = second.wait_event(|e| e["event"]["action"] == "sys_orphan_reaped");
    assert_eq!(ev["kevlar"]["pgid"], keeper);
}
