//! Groups a dead Kevlar left behind. Each running instance's process group is recorded in
//! `<data-dir>/groups/<pgid>` (its id and its leader's start time) while it runs; a clean stop
//! removes the record. If Kevlar and the keeper both died (`pkill -9 kevlar`, an OOM kill of
//! both), the next start finds the record, checks that the group is still the one recorded — its
//! leader, if alive, started at the recorded time, and its members started after it — and ends it
//! (SIGTERM, grace, SIGKILL) before starting its own instances. The data dir's lock guarantees no
//! live Kevlar owns those groups.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// A group that was found running without its Kevlar, and ended.
#[derive(Debug, Clone)]
pub struct Reaped {
    pub pgid: u32,
    /// The processes it had.
    pub pids: Vec<u32>,
    /// SIGTERM was not enough.
    pub killed: bool,
}

/// The record of one running group; removed when dropped (the group is gone or ended).
pub(crate) struct GroupRecord(PathBuf);

impl GroupRecord {
    pub fn write(dir: &Path, pgid: u32) -> Option<GroupRecord> {
        let start = start_time(pgid)?;
        std::fs::create_dir_all(dir).ok()?;
        let path = dir.join(pgid.to_string());
        std::fs::write(&path, format!("{pgid} {start}\n")).ok()?;
        Some(GroupRecord(path))
    }
}

impl Drop for GroupRecord {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `(process group, start time in clock ticks)` of a live, non-zombie process.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.first() == Some(&"Z") {
        return None;
    }
    Some((f.get(2)?.parse().ok()?, f.get(19)?.parse().ok()?))
}

fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, s)| s)
}

/// Live members of group `pgid` that started no earlier than `since`.
fn members(pgid: u32, since: u64) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(g, s)| g == pgid && s >= since))
        .collect()
}

/// Ends the groups recorded in `dir` that are still running; returns what it ended.
pub fn reap(dir: &Path, grace: Duration) -> Vec<Reaped> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let path = e.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut it = text.split_whitespace().map(|s| s.parse::<u64>().ok());
        let (Some(Some(pgid)), Some(Some(start))) = (it.next(), it.next()) else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let Ok(pgid) = u32::try_from(pgid) else { continue };
        // A leader alive with another start time: the id was reused, not ours.
        let reused = start_time(pgid).is_some_and(|s| s != start);
        let pids = if reused { Vec::new() } else { members(pgid, start) };
        if !pids.is_empty() {
            let group = Pid::from_raw(pgid as i32);
            let _ = killpg(group, Signal::SIGTERM);
            let until = Instant::now() + grace;
            while Instant::now() < until && !members(pgid, start).is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let killed = !members(pgid, start).is_empty();
            if killed {
                let _ = killpg(group, Signal::SIGKILL);
            }
            out.push(Reaped { pgid, pids, killed });
        }
        let _ = std::fs::remove_file(&path);
    }
    out
}
