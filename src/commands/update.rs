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

pub fn run(a: UpdateArgs) -> anyhow::Result<ExitCode> {
    let project = a.path.canonicalize().with_context(|| format!("cannot open {}", a.path.display()))?;
    let timeout: Duration =
        humantime::parse_duration(&a.timeout).with_context(|| format!("--timeout {}", a.timeout))?;
    let min_age = match &a.min_age {
        Some(m) => Some(humantime::parse_duration(m).with_context(|| format!("--min-age {m}"))?),
        None => None,
    };
    let allow = Allow::parse(&a.allow).context("--allow is patch, minor or major")?;
    let registries = kevlar_update::Registries::for_project(&project);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("kevlar/", env!("CARGO_PKG_VERSION")))
        .build();
    let packuments = std::sync::Mutex::new(HashMap::new());
    let deps = kevlar_update::outdated(&project, &|name| {
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
    if candidates.is_empty() {
        println!("nothing to try: every dependency is current within --allow {}", a.allow);
        return Ok(ExitCode::SUCCESS);
    }
    let mgr = Manager::detect(&project);

    // Ctrl-C: stop the running installs and tests; the scratch copies go with them.
    let cancel = Arc::new(AtomicBool::new(false));
    let runner = Arc::new(Runner::new(timeout, cancel.clone()));
    {
        let runner = runner.clone();
        let cancel = cancel.clone();
        std::thread::Builder::new().name("kevlar-update-signal".into()).spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.store(true, Ordering::SeqCst);
                    runner.kill_all();
                }
            });
        })?;
    }

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
    if a.json {
        let rows: Vec<_> = results
            .iter()
            .map(|(o, _)| {
                json!({
                    "name": o.candidate.name, "version": o.candidate.version, "status": o.status.as_str(),
                    "seconds": (o.duration.as_secs_f64() * 10.0).round() / 10.0, "output_tail": o.tail,
                })
            })
            .collect();
        println!("{}", json!({ "baseline": "PASS", "results": rows, "passed": passed, "tried": results.len() }));
    } else {
        println!("{:<32} {:<12} {:<15} {:>8}", "PACKAGE", "VERSION", "RESULT", "SECONDS");
        for (o, _) in &results {
            println!(
                "{:<32} {:<12} {:<15} {:>8.1}",
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
    if results.is_empty() {
        bail!("no trial ran");
    }
    Ok(if passed == results.len() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
