//! The keeper: a tiny process between Kevlar and each app instance, so that the app dies with
//! Kevlar however Kevlar dies (a crash, an OOM kill, `kill -9`), as a systemd unit's processes
//! die with their cgroup.
//!
//! Kevlar starts `kevlar __keep --grace-ms N -- CMD…` (its own binary) as the leader of a new
//! process group, with a pipe as its stdin whose other end only Kevlar holds. The keeper starts
//! the app in that same group, with the keeper's stdout and stderr (Kevlar's pipes), and then:
//!
//! - waits for the app and exits as it did (the same code, or the same signal), so that Kevlar
//!   sees the app's own exit;
//! - watches its stdin: end of file means Kevlar is gone (the kernel closes a dead process's
//!   pipes, whatever killed it), and the keeper ends the group — SIGTERM, `grace`, SIGKILL.
//!
//! SIGTERM, SIGINT and SIGHUP sent to the group (Kevlar's graceful stop) are for the app: the
//! keeper notes them and waits for the app. Why not `PR_SET_PDEATHSIG`: it must be set in the
//! child between fork and exec (`pre_exec`, which is `unsafe`), it is Linux-only, and it fires
//! when the forking *thread* exits, not the process. A pipe's end of file has none of these.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::getpgrp;

/// The hidden subcommand Kevlar re-executes itself with.
pub const KEEP_SUBCOMMAND: &str = "__keep";

/// Runs `command` kept (see the module); returns the exit code to leave with when the app exited
/// with a code. An app ended by a signal ends the keeper by the same signal.
pub fn keep(grace: Duration, command: &[String]) -> i32 {
    let Some(program) = command.first() else {
        eprintln!("kevlar: __keep: no command");
        return 2;
    };
    let asked = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT, signal_hook::consts::SIGHUP] {
        if let Err(e) = signal_hook::flag::register(sig, asked.clone()) {
            eprintln!("kevlar: __keep: cannot handle signal {sig}: {e}");
            return 2;
        }
    }
    let mut child = match Command::new(program).args(&command[1..]).stdin(Stdio::null()).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kevlar: cannot start {program}: {e}");
            return 127;
        }
    };
    let done = Arc::new(AtomicBool::new(false));
    let gone = Arc::new(AtomicBool::new(false));
    let ender = {
        let (done, gone) = (done.clone(), gone.clone());
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            // Kevlar is gone: the app goes too, and whatever it started in its group.
            gone.store(true, Ordering::Release);
            let group = getpgrp();
            let _ = killpg(group, Signal::SIGTERM);
            let until = Instant::now() + grace;
            while Instant::now() < until && !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = killpg(group, Signal::SIGKILL);
        })
    };
    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kevlar: __keep: waiting for the app: {e}");
            return 2;
        }
    };
    done.store(true, Ordering::Release);
    if gone.load(Ordering::Acquire) {
        // Ending the group: what the app left behind goes with the keeper.
        let _ = ender.join();
    }
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        // Leave as the app left, so that Kevlar reports the app's own signal.
        let _ = signal_hook::low_level::emulate_default_handler(sig);
        if let Ok(s) = Signal::try_from(sig) {
            let _ = nix::sys::signal::kill(nix::unistd::getpid(), s);
        }
        return 128 + sig;
    }
    status.code().unwrap_or(1)
}
