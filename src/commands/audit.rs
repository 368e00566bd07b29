//! `kevlar audit` and `kevlar db update`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kevlar_audit::{lockfile, report, AdvisoryDb, Severity};

use crate::cli::{AuditArgs, DbCommand};

/// A database older than this gets a warning.
const STALE_DAYS: i64 = 7;

fn db_dir(given: Option<PathBuf>) -> PathBuf {
    if let Some(d) = given {
        return d;
    }
    if let Some(d) = std::env::var_os("KEVLAR_DB") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".kevlar"));
    cache.join("kevlar").join("advisories")
}

pub fn db(cmd: DbCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Update { from, db } => {
            let dir = db_dir(db);
            let mut store = AdvisoryDb::create(&dir)?;
            let stats = store.import_dir(&from).with_context(|| format!("cannot import from {}", from.display()))?;
            for w in &stats.warnings {
                eprintln!("kevlar: warning: {w}");
            }
            println!(
                "imported {} records into {} in {:.2}s ({} files skipped, {} warnings); {} records in all",
                stats.records,
                dir.display(),
                stats.seconds,
                stats.skipped_files,
                stats.warnings.len(),
                store.count()?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run(a: AuditArgs) -> anyhow::Result<ExitCode> {
    let project = lockfile::load(&a.path)?;
    let dir = db_dir(a.db);
    let db = AdvisoryDb::open(&dir)?;
    if let Some(ms) = db.updated_ms()? {
        let days = (kevlar_core::time::now_ms() - ms) / 86_400_000;
        if days > STALE_DAYS {
            eprintln!("kevlar: warning: the advisory database was updated {days} days ago; run `kevlar db update`");
        }
    }
    let findings = report::audit(&project, &db, a.production)?;
    match a.format.as_str() {
        "json" => println!("{}", report::to_json(&project, &findings)),
        "sarif" => {
            let text = std::fs::read_to_string(&project.lockfile).unwrap_or_default();
            let uri = project
                .lockfile
                .strip_prefix(std::env::current_dir().unwrap_or_default())
                .unwrap_or(&project.lockfile)
                .display()
                .to_string();
            println!("{}", report::to_sarif(&project, &findings, &text, &uri));
        }
        "markdown" => print!("{}", report::to_markdown(&project, &findings)),
        _ => print!("{}", report::to_table(&project, &findings)),
    }
    let threshold = Severity::parse(&a.fail_on).unwrap_or(Severity::Low);
    let failing = findings
        .iter()
        .any(|f| f.severity >= threshold || (f.severity == Severity::Unknown && threshold == Severity::Low));
    Ok(if failing { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
