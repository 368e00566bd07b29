//! `kevlar update --test CMD`: every newer version tried against the app's tests in scratch copies.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kevlar_update::trial::{self, Allow, Filter, Manager, Runner, Status};
use serde_json::json;

use crate::cli::UpdateArgs;

/// The advisories each candidate version fixes, by (package, version).
type Fixes = HashMap<(String, String), Vec<String>>;

pub fn run(a: UpdateArgs) -> anyhow::Result<ExitCode> {
    let project = a.path.canonicalize().with_context(|| format!("cannot open {}", a.path.display()))?;
    let timeout: Duration =
        humantime::parse_duration(&a.timeout).with_context(|| format!("--timeout {}", a.timeout))?;
    let min_age = match &a.min_age {
        Some(m) => Some(humantime::parse_duration(m).with_context(|| format!("--min-age {m}"))?),
        None => None,
    };
    let allow = Allow::parse(&a.allow).context("--allow is patch, minor or major")?;
    // Where branches go is checked before anything is tried.
    let publish = Publish::for_args(&project, &a)?;
    let (deps, candidates) = newer_versions(&project, &a, allow, min_age)?;
    if candidates.is_empty() {
        println!("nothing to try: every dependency is current within --allow {}", a.allow);
        return Ok(ExitCode::SUCCESS);
    }
    // Versions that fix a known advisory of the current one go first, and say so.
    let fixes = fixes(&a.db, &deps, &candidates);
    let mut candidates = candidates;
    candidates.sort_by_key(|c| !fixes.contains_key(&(c.name.clone(), c.version.clone())));
    let mgr = Manager::detect(&project);

    // Ctrl-C: stop the running installs and tests; the scratch copies go with them.
    let cancel = Arc::new(AtomicBool::new(false));
    let runner = Arc::new(Runner::new(timeout, cancel.clone()));
    on_interrupt(runner.clone(), cancel.clone())?;

    eprintln!("kevlar: testing the untouched project ({} install, then `{}`)", mgr.name(), a.test);
    let base = trial::baseline(&project, mgr, &a.test, &runner)?;
    if cancel.load(Ordering::SeqCst) {
        eprintln!("kevlar: interrupted; the project was not touched");
        return Ok(ExitCode::from(130));
    }
    if base.status != Status::Pass {
        eprintln!(
            "kevlar: the untouched project does not pass its tests ({}); nothing was tried:\n{}",
            base.status.as_str(),
            base.tail
        );
        return Ok(ExitCode::from(1));
    }
    eprintln!("kevlar: {} version(s) to try, {} at a time", candidates.len(), a.jobs.max(1));
    let results = trial::try_each(&project, mgr, &a.test, &runner, &candidates, a.jobs, &|o| {
        eprintln!(
            "kevlar: {}@{} {} ({:.1} s)",
            o.candidate.name,
            o.candidate.version,
            o.status.as_str(),
            o.duration.as_secs_f64()
        );
    });
    if cancel.load(Ordering::SeqCst) {
        eprintln!("kevlar: interrupted; the project was not touched");
        return Ok(ExitCode::from(130));
    }
    let passed = results.iter().filter(|(o, _)| o.status == Status::Pass).count();
    report(&results, &fixes, passed, a.json);
    if results.is_empty() {
        bail!("no trial ran");
    }
    if a.branch {
        branches(&project, mgr, &a.test, &results, &publish, &fixes)?;
    }
    if a.apply {
        apply(&project, mgr, &a.test, &runner, &results)?;
        if cancel.load(Ordering::SeqCst) {
            eprintln!("kevlar: interrupted; the project was not touched");
            return Ok(ExitCode::from(130));
        }
    }
    Ok(if passed == results.len() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The dependencies and the newer versions of them to try (`--allow`, `--only`, `--skip`,
/// `--latest-only`, `--min-age`), from the project's registries.
fn newer_versions(
    project: &std::path::Path,
    a: &UpdateArgs,
    allow: Allow,
    min_age: Option<Duration>,
) -> anyhow::Result<(Vec<kevlar_update::Outdated>, Vec<trial::Candidate>)> {
    let registries = kevlar_update::Registries::for_project(project);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("kevlar/", env!("CARGO_PKG_VERSION")))
        .build();
    let packuments = std::sync::Mutex::new(HashMap::new());
    let deps = kevlar_update::outdated(project, &|name| {
        let p = registries.fetch(&agent, name)?;
        if let Ok(mut m) = packuments.lock() {
            m.insert(name.to_owned(), p.clone());
        }
        Ok(p)
    })
    .with_context(|| format!("cannot list the dependencies of {}", project.display()))?;
    let packuments = packuments.into_inner().unwrap_or_default();
    let now = kevlar_core::time::now_ms();
    let candidates = trial::candidates(
        &deps,
        &|n| packuments.get(n).cloned(),
        &Filter {
            allow,
            only: &a.only,
            skip: &a.skip,
            latest_only: a.latest_only,
            published_before_ms: min_age.map(|d| now - d.as_millis() as i64),
        },
    );
    Ok((deps, candidates))
}

/// SIGINT/SIGTERM stop the running installs and tests; the handler is in place before the first
/// child starts.
fn on_interrupt(runner: Arc<Runner>, cancel: Arc<AtomicBool>) -> anyhow::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new().name("kevlar-update-signal".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            let _ = ready_tx.send(());
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                let _ = ready_tx.send(());
                return;
            };
            let _ = ready_tx.send(());
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            cancel.store(true, Ordering::SeqCst);
            runner.kill_all();
        });
    })?;
    // The handler is in place before the first child starts.
    let _ = ready_rx.recv_timeout(Duration::from_secs(2));
    Ok(())
}

/// The results, as a table (with the output of each failure) or as JSON.
fn report(results: &[(trial::Outcome, Option<(String, String)>)], fixes: &Fixes, passed: usize, json_out: bool) {
    if json_out {
        let rows: Vec<_> = results
            .iter()
            .map(|(o, _)| {
                json!({
                    "name": o.candidate.name, "version": o.candidate.version, "status": o.status.as_str(),
                    "seconds": (o.duration.as_secs_f64() * 10.0).round() / 10.0, "output_tail": o.tail,
                    "fixes": fixes.get(&(o.candidate.name.clone(), o.candidate.version.clone())).cloned().unwrap_or_default(),
                })
            })
            .collect();
        println!("{}", json!({ "baseline": "PASS", "results": rows, "passed": passed, "tried": results.len() }));
    } else {
        println!("{:<32} {:<12} {:<15} {:>8}  FIXES", "PACKAGE", "VERSION", "RESULT", "SECONDS");
        for (o, _) in results {
            let fixed = fixes
                .get(&(o.candidate.name.clone(), o.candidate.version.clone()))
                .map(|f| f.join(" "))
                .unwrap_or_default();
            println!(
                "{:<32} {:<12} {:<15} {:>8.1}  {fixed}",
                o.candidate.name,
                o.candidate.version,
                o.status.as_str(),
                o.duration.as_secs_f64()
            );
        }
        println!("{passed} of {} version(s) keep the tests green", results.len());
        for (o, _) in results.iter().filter(|(o, _)| o.status != Status::Pass) {
            println!("\n{}@{} {}:\n{}", o.candidate.name, o.candidate.version, o.status.as_str(), o.tail);
        }
    }
}

/// `--apply`: the newest passing versions together; bisection when the combination fails.
fn apply(
    project: &std::path::Path,
    mgr: Manager,
    test: &str,
    runner: &Runner,
    results: &[(trial::Outcome, Option<trial::Files>)],
) -> anyhow::Result<()> {
    let mut set = trial::best(results);
    let mut left_out: Vec<(trial::Candidate, &str)> = Vec::new();
    loop {
        if set.is_empty() {
            println!("\n--apply: no update passes; package.json and the lockfile are unchanged");
            return Ok(());
        }
        let names: Vec<String> = set.iter().map(|c| format!("{}@{}", c.name, c.version)).collect();
        eprintln!("kevlar: testing the combination {}", names.join(" "));
        let (status, _, tail, files) = trial::trial(project, mgr, test, runner, &set)?;
        if status == Status::Cancelled {
            return Ok(());
        }
        if let (Status::Pass, Some((manifest, lock))) = (status, files) {
            trial::write_atomic(&project.join("package.json"), &manifest)?;
            trial::write_atomic(&project.join(mgr.lockfile()), &lock)?;
            println!(
                "\n--apply: wrote {} into package.json and {} (tests green on the combination)",
                names.join(", "),
                mgr.lockfile()
            );
            for (c, why) in &left_out {
                println!("  left out {}@{}: {why}", c.name, c.version);
            }
            println!("  run `{} install` to bring node_modules up to date", mgr.name());
            return Ok(());
        }
        eprintln!("kevlar: the combination {}: bisecting\n{tail}", status.as_str());
        let mut passes = |s: &[trial::Candidate]| -> bool {
            s.is_empty() || matches!(trial::trial(project, mgr, test, runner, s), Ok((Status::Pass, ..)))
        };
        let bad = trial::culprit(&[], &set, &mut passes);
        eprintln!("kevlar: {}@{} breaks the combination; leaving it out", bad.name, bad.version);
        set.retain(|c| c.name != bad.name);
        left_out.push((bad, "breaks the tests together with the others (found by bisection)"));
    }
}

/// `--push` and `--pr`: where each new branch goes after it is committed.
struct Publish {
    remote: Option<String>,
    push_options: Vec<String>,
    github: Option<super::github::GitHub>,
    base: String,
}

fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().context("cannot run git")?;
    if !out.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Publish {
    fn for_args(project: &std::path::Path, a: &UpdateArgs) -> anyhow::Result<Publish> {
        let mut p =
            Publish { remote: a.push.clone(), push_options: a.push_option.clone(), github: None, base: String::new() };
        let Some(remote) = &a.push else { return Ok(p) };
        let url = git(project, &["remote", "get-url", remote])
            .with_context(|| format!("--push {remote}: no such git remote"))?;
        if a.pr.is_some() {
            p.github = Some(super::github::GitHub::from_env(a.api_url.as_deref(), a.repo.as_deref(), &url)?);
            p.base = match &a.base {
                Some(b) => b.clone(),
                None => git(project, &["rev-parse", "--abbrev-ref", "HEAD"])
                    .ok()
                    .filter(|b| b != "HEAD")
                    .context("no branch is checked out; give --base BRANCH for the pull requests")?,
            };
        }
        Ok(p)
    }

    /// Pushes the branch, then opens its pull request; a failure is said and the next branch
    /// goes on.
    fn publish(&self, top: &std::path::Path, branch: &str, title: &str, body: impl FnOnce() -> String) -> bool {
        let Some(remote) = &self.remote else { return true };
        let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
        let mut args = vec!["push", "-q"];
        for o in &self.push_options {
            args.extend(["-o", o.as_str()]);
        }
        args.extend([remote.as_str(), refspec.as_str()]);
        if let Err(e) = git(top, &args) {
            eprintln!("kevlar: cannot push {branch} to {remote}: {e:#}");
            return false;
        }
        println!("pushed {branch} to {remote}");
        let Some(gh) = &self.github else { return true };
        match gh.open(branch, &self.base, title, &body()) {
            Ok(super::github::Opened::Url(u)) => println!("pull request {u}"),
            Ok(super::github::Opened::Exists) => println!("a pull request for {branch} is open already"),
            Err(e) => {
                eprintln!("kevlar: {e:#}");
                return false;
            }
        }
        true
    }
}

/// `--branch`: one branch per package at its newest passing version, made in a git worktree;
/// pushed and proposed as `--push` and `--pr` say.
fn branches(
    project: &std::path::Path,
    mgr: Manager,
    test: &str,
    results: &[(trial::Outcome, Option<trial::Files>)],
    publish: &Publish,
    fixes: &Fixes,
) -> anyhow::Result<()> {
    let top = std::path::PathBuf::from(
        git(project, &["rev-parse", "--show-toplevel"]).context("--branch needs a git repository")?,
    );
    let rel = project.strip_prefix(top.canonicalize()?).unwrap_or(std::path::Path::new("")).to_path_buf();
    let mut failed = 0;
    for c in trial::best(results) {
        let Some((o, Some((manifest, lock)))) = results.iter().find(|(o, _)| o.candidate == c) else { continue };
        let branch = format!("kevlar/update-{}-{}", c.name.replace('/', "-").trim_start_matches('@'), c.version);
        if git(&top, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]).is_ok() {
            println!("branch {branch} exists already; left as it is");
            continue;
        }
        let path =
            std::env::temp_dir().join(format!("kevlar-branch-{}-{}", std::process::id(), branch.replace('/', "-")));
        git(&top, &["worktree", "add", "-q", "-b", &branch, path.to_str().unwrap_or_default(), "HEAD"])?;
        let result = (|| -> anyhow::Result<()> {
            let dir = path.join(&rel);
            trial::write_atomic(&dir.join("package.json"), manifest)?;
            trial::write_atomic(&dir.join(mgr.lockfile()), lock)?;
            let msg = format!(
                "Update {} to {}\n\n`{test}` passes with it ({:.1} s, tried by kevlar update --test).\n\n{}\n",
                c.name,
                c.version,
                o.duration.as_secs_f64(),
                o.tail
            );
            git(
                &path,
                &[
                    "add",
                    "-A",
                    "--",
                    rel.join("package.json").to_str().unwrap_or("package.json"),
                    rel.join(mgr.lockfile()).to_str().unwrap_or_default(),
                ],
            )?;
            git(&path, &["-c", "user.name=kevlar", "-c", "user.email=kevlar@localhost", "commit", "-q", "-m", &msg])?;
            Ok(())
        })();
        let _ = git(&top, &["worktree", "remove", "--force", path.to_str().unwrap_or_default()]);
        result?;
        println!("branch {branch}: {}@{}", c.name, c.version);
        let title = format!("Update {} to {}", c.name, c.version);
        let fixed = fixes.get(&(c.name.clone(), c.version.clone())).cloned().unwrap_or_default();
        let body = || super::github::body(&c.name, &c.version, test, o.duration.as_secs_f64(), &fixed, &o.tail);
        if !publish.publish(&top, &branch, &title, body) {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} branch(es) could not be pushed or proposed (see above)");
    }
    Ok(())
}

/// Per candidate (name, version): the advisories affecting the current version that it fixes.
fn fixes(db: &Option<std::path::PathBuf>, deps: &[kevlar_update::Outdated], candidates: &[trial::Candidate]) -> Fixes {
    let mut out = HashMap::new();
    let dir = crate::commands::audit::db_dir(db.clone());
    let Ok(db) = kevlar_audit::AdvisoryDb::open(&dir) else { return out };
    for c in candidates {
        let Some(current) = deps.iter().find(|d| d.name == c.name).and_then(|d| d.current.clone()) else { continue };
        let Ok(advisories) = db.lookup("npm", &c.name) else { continue };
        let ids: Vec<String> = advisories
            .iter()
            .filter(|a| a.affects("npm", &c.name, &current) && !a.affects("npm", &c.name, &c.version))
            .map(|a| a.id.clone())
            .collect();
        if !ids.is_empty() {
            out.insert((c.name.clone(), c.version.clone()), ids);
        }
    }
    out
}
