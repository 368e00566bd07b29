//! `kevlar update --test`: every candidate version tried against the app's own tests, each in a
//! scratch copy of the project (never the user's tree), installed with the project's own package
//! manager; npm's, yarn's or pnpm's cache is shared, so it stays fast.

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{cmp_versions, Outdated, Packument, UpdateError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Npm,
    Yarn,
    Pnpm,
}

impl Manager {
    /// From the lockfile the project has.
    pub fn detect(project: &Path) -> Manager {
        if project.join("pnpm-lock.yaml").exists() {
            Manager::Pnpm
        } else if project.join("yarn.lock").exists() {
            Manager::Yarn
        } else {
            Manager::Npm
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Manager::Npm => "npm",
            Manager::Yarn => "yarn",
            Manager::Pnpm => "pnpm",
        }
    }

    fn install(self) -> Vec<&'static str> {
        match self {
            Manager::Npm => vec!["npm", "ci", "--no-audit", "--no-fund"],
            Manager::Yarn => vec!["yarn", "install", "--frozen-lockfile"],
            Manager::Pnpm => vec!["pnpm", "install", "--frozen-lockfile"],
        }
    }

    fn add(self, specs: &[String], dev: bool) -> Vec<String> {
        let mut c: Vec<String> = match self {
            Manager::Npm => vec!["npm".into(), "install".into(), "--no-audit".into(), "--no-fund".into()],
            Manager::Yarn => vec!["yarn".into(), "add".into()],
            Manager::Pnpm => vec!["pnpm".into(), "add".into()],
        };
        if dev {
            c.push(match self {
                Manager::Npm => "--save-dev".into(),
                Manager::Yarn => "--dev".into(),
                Manager::Pnpm => "--save-dev".into(),
            });
        }
        c.extend(specs.iter().cloned());
        c
    }

    pub fn lockfile(self) -> &'static str {
        match self {
            Manager::Npm => "package-lock.json",
            Manager::Yarn => "yarn.lock",
            Manager::Pnpm => "pnpm-lock.yaml",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Allow {
    Patch,
    Minor,
    Major,
}

impl Allow {
    pub fn parse(s: &str) -> Option<Allow> {
        match s {
            "patch" => Some(Allow::Patch),
            "minor" => Some(Allow::Minor),
            "major" => Some(Allow::Major),
            _ => None,
        }
    }
}

fn parts(v: &str) -> (u64, u64) {
    let mut it = v.split(['.', '-', '+']).map(|p| p.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Whether moving from `current` to `to` is within `allow`.
pub fn allowed(current: &str, to: &str, allow: Allow) -> bool {
    let (cm, cn) = parts(current);
    let (tm, tn) = parts(to);
    match allow {
        Allow::Major => true,
        Allow::Minor => tm == cm,
        Allow::Patch => tm == cm && tn == cn,
    }
}

/// One version to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub version: String,
    pub dev: bool,
}

pub struct Filter<'a> {
    pub allow: Allow,
    pub only: &'a [String],
    pub skip: &'a [String],
    pub latest_only: bool,
    /// Versions published more recently than this (ms since the epoch) are skipped.
    pub published_before_ms: Option<i64>,
}

/// The versions to try, per outdated dependency, oldest first.
pub fn candidates(deps: &[Outdated], packuments: &dyn Fn(&str) -> Option<Packument>, f: &Filter<'_>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for d in deps {
        if (!f.only.is_empty() && !f.only.contains(&d.name)) || f.skip.contains(&d.name) {
            continue;
        }
        let (Some(current), Some(p)) = (d.current.as_deref(), packuments(&d.name)) else { continue };
        let mut vs: Vec<&String> = p
            .versions
            .iter()
            .filter(|v| cmp_versions(v, current).is_gt() && !v.contains('-') && allowed(current, v, f.allow))
            .filter(|v| match (f.published_before_ms, p.time.get(v.as_str())) {
                (Some(limit), Some(t)) => kevlar_core_time(t).is_some_and(|ms| ms <= limit),
                (Some(_), None) => false,
                (None, _) => true,
            })
            .collect();
        if f.latest_only {
            vs = vs.into_iter().last().into_iter().collect();
        }
        for v in vs {
            out.push(Candidate { name: d.name.clone(), version: v.clone(), dev: d.kind == "devDependencies" });
        }
    }
    out
}

fn kevlar_core_time(t: &str) -> Option<i64> {
    // RFC 3339 as registries write it: 2026-11-24T07:00:00.000Z
    let b = t.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let n = |s: &str| s.parse::<i64>().ok();
    let (y, mo, d) = (n(&t[0..4])?, n(&t[5..7])?, n(&t[8..10])?);
    let (h, mi, s) = (n(&t[11..13])?, n(&t[14..16])?, n(&t[17..19])?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Timeout,
    InstallFailed,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Timeout => "TIMEOUT",
            Status::InstallFailed => "INSTALL-FAILED",
            Status::Cancelled => "CANCELLED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub candidate: Candidate,
    pub status: Status,
    pub duration: Duration,
    /// The last lines of the install's or the tests' output.
    pub tail: String,
}

/// A copy of the project without `node_modules` and `.git`, removed when dropped.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        if name == "node_modules" || name == ".git" {
            continue;
        }
        let ty = e.file_type()?;
        let dst = to.join(&name);
        if ty.is_dir() {
            copy_tree(&e.path(), &dst)?;
        } else if ty.is_file() {
            std::fs::copy(e.path(), &dst)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &dst)?;
        }
    }
    Ok(())
}

impl Scratch {
    pub fn of(project: &Path) -> Result<Scratch, UpdateError> {
        let dir = tempfile::Builder::new()
            .prefix("kevlar-update-")
            .tempdir()
            .map_err(|e| UpdateError::Project { path: "a scratch directory".into(), message: e.to_string() })?;
        copy_tree(project, dir.path())
            .map_err(|e| UpdateError::Project { path: project.display().to_string(), message: e.to_string() })?;
        Ok(Scratch { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs `argv` (or `sh -c` of a string) in its own process group; `None` on timeout or cancel.
pub struct Runner {
    pub timeout: Duration,
    pub cancel: Arc<AtomicBool>,
    running: Mutex<Vec<i32>>,
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

impl Runner {
    pub fn new(timeout: Duration, cancel: Arc<AtomicBool>) -> Runner {
        Runner { timeout, cancel, running: Mutex::new(Vec::new()) }
    }

    /// Kills every running child's process group (Ctrl-C).
    pub fn kill_all(&self) {
        if let Ok(r) = self.running.lock() {
            for pid in r.iter() {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }

    /// `(exit ok, timed out, output tail)`.
    pub fn run(&self, cmd: &mut Command, dir: &Path) -> (bool, bool, String) {
        cmd.current_dir(dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return (false, false, e.to_string()),
        };
        let pid = child.id() as i32;
        if let Ok(mut r) = self.running.lock() {
            r.push(pid);
        }
        let out = Arc::new(Mutex::new(Vec::new()));
        let readers: Vec<_> = [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|mut s| {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut o) = out.lock() {
                        o.extend_from_slice(&buf[..n]);
                        let len = o.len();
                        if len > 256 << 10 {
                            o.drain(..len - (128 << 10));
                        }
                    }
                }
            })
        })
        .collect();
        let started = Instant::now();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if self.cancel.load(Ordering::Relaxed) || started.elapsed() > self.timeout {
                timed_out = !self.cancel.load(Ordering::Relaxed);
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in readers {
            let _ = r.join();
        }
        if let Ok(mut r) = self.running.lock() {
            r.retain(|p| *p != pid);
        }
        let text = out.lock().map(|o| String::from_utf8_lossy(&o).into_owned()).unwrap_or_default();
        (status.is_some_and(|s| s.success()), timed_out, tail(&text, 20))
    }

    /// What a failed install means.
    fn install_status(&self, timed_out: bool) -> Status {
        if self.cancel.load(Ordering::Relaxed) {
            Status::Cancelled
        } else if timed_out {
            Status::Timeout
        } else {
            Status::InstallFailed
        }
    }

    /// What a test run's end means.
    fn test_status(&self, ok: bool, timed_out: bool) -> Status {
        match (ok, timed_out) {
            (true, _) => Status::Pass,
            (false, true) => Status::Timeout,
            _ if self.cancel.load(Ordering::Relaxed) => Status::Cancelled,
            _ => Status::Fail,
        }
    }

    fn argv(&self, argv: &[String], dir: &Path) -> (bool, bool, String) {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        self.run(&mut c, dir)
    }

    pub fn tests(&self, test: &str, dir: &Path) -> (bool, bool, String) {
        let mut c = Command::new("sh");
        c.arg("-c").arg(test);
        self.run(&mut c, dir)
    }
}

/// Installs the untouched project in a scratch copy and runs the tests there.
pub fn baseline(project: &Path, mgr: Manager, test: &str, runner: &Runner) -> Result<Outcome, UpdateError> {
    let started = Instant::now();
    let s = Scratch::of(project)?;
    let install: Vec<String> = mgr.install().into_iter().map(String::from).collect();
    let (ok, timed_out, out) = runner.argv(&install, s.path());
    let candidate = Candidate { name: "(untouched project)".into(), version: String::new(), dev: false };
    if !ok {
        let status = runner.install_status(timed_out);
        return Ok(Outcome { candidate, status, duration: started.elapsed(), tail: out });
    }
    let (ok, timed_out, out) = runner.tests(test, s.path());
    let status = runner.test_status(ok, timed_out);
    Ok(Outcome { candidate, status, duration: started.elapsed(), tail: out })
}

/// `package.json` and the lockfile as a passing trial left them.
pub type Files = (String, String);

/// Tries one set of updates in a fresh scratch copy: install, then test. Returns the outcome and,
/// when it passed, the new package.json and lockfile.
pub fn trial(
    project: &Path,
    mgr: Manager,
    test: &str,
    runner: &Runner,
    set: &[Candidate],
) -> Result<(Status, Duration, String, Option<Files>), UpdateError> {
    let started = Instant::now();
    let s = Scratch::of(project)?;
    for dev in [false, true] {
        let specs: Vec<String> =
            set.iter().filter(|c| c.dev == dev).map(|c| format!("{}@{}", c.name, c.version)).collect();
        if specs.is_empty() {
            continue;
        }
        let (ok, timed_out, out) = runner.argv(&mgr.add(&specs, dev), s.path());
        if !ok {
            return Ok((runner.install_status(timed_out), started.elapsed(), out, None));
        }
    }
    let (ok, timed_out, out) = runner.tests(test, s.path());
    let status = runner.test_status(ok, timed_out);
    let files = if status == Status::Pass {
        let read = |f: &str| std::fs::read_to_string(s.path().join(f)).unwrap_or_default();
        Some((read("package.json"), read(mgr.lockfile())))
    } else {
        None
    };
    Ok((status, started.elapsed(), out, files))
}

/// One trial per candidate, `jobs` at a time; results in the candidates' order.
pub fn try_each(
    project: &Path,
    mgr: Manager,
    test: &str,
    runner: &Runner,
    candidates: &[Candidate],
    jobs: usize,
    progress: &(dyn Fn(&Outcome) + Sync),
) -> Vec<(Outcome, Option<Files>)> {
    let queue: Mutex<VecDeque<(usize, Candidate)>> = Mutex::new(candidates.iter().cloned().enumerate().collect());
    let results: Mutex<Vec<(usize, Outcome, Option<Files>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some((i, c)) = next else { return };
                let (status, duration, tail, files) = if runner.cancel.load(Ordering::Relaxed) {
                    (Status::Cancelled, Duration::ZERO, String::new(), None)
                } else {
                    match trial(project, mgr, test, runner, std::slice::from_ref(&c)) {
                        Ok(r) => r,
                        Err(e) => (Status::InstallFailed, Duration::ZERO, e.to_string(), None),
                    }
                };
                let o = Outcome { candidate: c, status, duration, tail };
                progress(&o);
                if let Ok(mut r) = results.lock() {
                    r.push((i, o, files));
                }
            });
        }
    });
    let mut r = results.into_inner().unwrap_or_default();
    r.sort_by_key(|(i, _, _)| *i);
    r.into_iter().map(|(_, o, f)| (o, f)).collect()
}

/// Given that `base` passes and `base + cand` does not, finds one candidate that breaks it by
/// halving: `log2(n)` trials.
pub fn culprit(base: &[Candidate], cand: &[Candidate], passes: &mut dyn FnMut(&[Candidate]) -> bool) -> Candidate {
    if cand.len() <= 1 {
        return cand[0].clone();
    }
    let (a, b) = cand.split_at(cand.len() / 2);
    let with_a: Vec<Candidate> = base.iter().chain(a.iter()).cloned().collect();
    if passes(&with_a) {
        culprit(&with_a, b, passes)
    } else {
        culprit(base, a, passes)
    }
}

/// The newest passing version of each package.
pub fn best(results: &[(Outcome, Option<Files>)]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for (o, _) in results.iter().filter(|(o, _)| o.status == Status::Pass) {
        match out.iter_mut().find(|c| c.name == o.candidate.name) {
            Some(c) if cmp_versions(&o.candidate.version, &c.version).is_gt() => *c = o.candidate.clone(),
            Some(_) => {}
            None => out.push(o.candidate.clone()),
        }
    }
    out
}

/// Writes a file through a temporary sibling and a rename: a crash never leaves half a file.
pub fn write_atomic(path: &Path, body: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("kevlar-tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod bisect_tests {
    use super::*;

    #[test]
    fn halving_finds_the_one_that_breaks_the_combination() {
        let c = |n: &str| Candidate { name: n.into(), version: "1.0.0".into(), dev: false };
        let all: Vec<Candidate> = ["a", "b", "c", "d", "e", "f", "g"].iter().map(|n| c(n)).collect();
        let mut runs = 0;
        let found = culprit(&[], &all, &mut |set| {
            runs += 1;
            !set.iter().any(|x| x.name == "e")
        });
        assert_eq!(found.name, "e");
        assert!(runs <= 3, "{runs} trials");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_levels() {
        assert!(allowed("1.2.3", "1.2.9", Allow::Patch));
        assert!(!allowed("1.2.3", "1.3.0", Allow::Patch));
        assert!(allowed("1.2.3", "1.9.0", Allow::Minor));
        assert!(!allowed("1.2.3", "2.0.0", Allow::Minor));
        assert!(allowed("1.2.3", "3.0.0", Allow::Major));
    }

    #[test]
    fn registry_times() {
        assert_eq!(kevlar_core_time("1970-01-01T00:00:01.000Z"), Some(1000));
        assert_eq!(kevlar_core_time("2026-11-24T00:00:00.000Z"), Some(1_795_478_400_000));
        assert_eq!(kevlar_core_time("bad"), None);
    }
}
