//! `[audit] watch`: while Kevlar runs, the deployed lockfile is audited at start, again within
//! seconds of a change to it (a deploy) or to the advisory database (`kevlar db update`), and after
//! each scheduled fetch of the advisories. Each finding is raised once when it appears
//! (`vuln_new`) and once when it goes (`vuln_fixed`), across restarts (`<data-dir>/audit.json`);
//! the Node.js runtime is checked with it (`runtime_eol`, `runtime_vulnerable`). What the watch
//! cannot do (no lockfile where one was named, no database, a failed fetch) is `sys_audit_fail`,
//! once per distinct problem.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kevlar_audit::known::{Changes, Known, RuntimeChanges};
use kevlar_audit::{lockfile, AdvisoryDb, Severity as AdvisorySeverity};
use kevlar_config::Config;
use kevlar_core::{action, Category, Outcome, SecurityEvent, Severity};
use kevlar_engine::Bus;
use serde_json::{json, Value};

/// How often the lockfile and the database are looked at for changes.
const POLL: Duration = Duration::from_secs(2);
const STATE_FILE: &str = "audit.json";
/// The paths of a finding carried by its event.
const MAX_PATHS: usize = 5;

/// The running watch; stopped (and its thread joined) by `stop`.
pub struct AuditWatch {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AuditWatch {
    pub fn stop(mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What `/v1/status` shows of the watch.
pub type AuditStatus = Arc<Mutex<Value>>;

/// Starts the watch when there is a lockfile to watch: `[audit] lockfile`, else (under
/// `kevlar run`) the app's project, found from `app.cwd` or the script the command runs.
pub fn start(config: &Config, command: Option<&[String]>, bus: Bus) -> (Option<AuditWatch>, AuditStatus) {
    let status: AuditStatus = Arc::new(Mutex::new(Value::Null));
    if config.audit.watch.is_none() {
        return (None, status);
    }
    let Some(lock) = locate(config, command) else {
        tracing::info!("audit watch: no lockfile found for the app; set [audit] lockfile to watch one");
        return (None, status);
    };
    let node = command.and_then(|c| c.first()).filter(|c| is_node(c)).cloned().unwrap_or_else(|| "node".to_owned());
    let mut w = Watcher {
        lock,
        db: config.audit.db.clone().unwrap_or_else(|| super::audit::db_dir(None)),
        state: config.data_dir.join(STATE_FILE),
        every: config.audit.watch.unwrap_or(Duration::MAX),
        source: config.audit.source.clone(),
        production: config.audit.production,
        ignores: config.audit.ignore.clone(),
        node,
        bus,
        status: status.clone(),
        problem: None,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new().name("audit-watch".into()).spawn(move || w.run(&rx));
    match thread {
        Ok(t) => (Some(AuditWatch { stop: Some(tx), thread: Some(t) }), status),
        Err(e) => {
            tracing::warn!("audit watch: cannot start its thread: {e}");
            (None, status)
        }
    }
}

fn is_node(program: &str) -> bool {
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "node" || name == "nodejs"
}

const LOCK_NAMES: &[&str] = &["npm-shrinkwrap.json", "package-lock.json", "pnpm-lock.yaml", "yarn.lock", "bun.lock"];

/// The lockfile (or project directory) to watch. From the app's directory (`app.cwd`, else the
/// directory of the first argument naming a file, else Kevlar's own) upwards, the first directory
/// with a `package.json` or a lockfile: its lockfile, if it has one.
fn locate(config: &Config, command: Option<&[String]>) -> Option<PathBuf> {
    if let Some(l) = &config.audit.lockfile {
        return Some(l.clone());
    }
    let command = command?;
    let base = config.app.cwd.clone().or_else(|| std::env::current_dir().ok())?;
    let script_dir = command
        .iter()
        .skip(1)
        .map(|a| base.join(a))
        .find(|p| p.is_file())
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let start = if config.app.cwd.is_some() { base.clone() } else { script_dir.unwrap_or(base) };
    for dir in start.ancestors() {
        if let Some(l) = LOCK_NAMES.iter().map(|n| dir.join(n)).find(|p| p.exists()) {
            return Some(l);
        }
        if dir.join("package.json").exists() {
            return None;
        }
    }
    None
}

struct Watcher {
    lock: PathBuf,
    db: PathBuf,
    state: PathBuf,
    every: Duration,
    source: Option<String>,
    production: bool,
    ignores: Vec<kevlar_config::AuditIgnore>,
    node: String,
    bus: Bus,
    status: AuditStatus,
    /// The last problem said, so that each is said once.
    problem: Option<String>,
}

/// What a change to the lockfile or the database looks like from outside: sizes and times.
type Signature = Vec<Option<(u64, SystemTime)>>;

fn signature(paths: &[PathBuf]) -> Signature {
    paths.iter().map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.len(), m.modified().ok()?)))).collect()
}

impl Watcher {
    fn run(&mut self, stop: &Receiver<()>) {
        let (mut known, warning) = Known::load(&self.state);
        if let Some(w) = warning {
            tracing::warn!("audit watch: {w}");
        }
        let mut seen: Option<Signature> = None;
        loop {
            let now = kevlar_core::time::now_ms();
            let due = known.last_fetch_ms.map_or(now, |t| t.saturating_add(self.every.as_millis() as i64));
            if known.last_fetch_ms.is_none() {
                // The first fetch is one period after the first start, never at start.
                known.last_fetch_ms = Some(now);
                self.save(&known);
            } else if now >= due {
                self.fetch();
                known.last_fetch_ms = Some(now);
                self.save(&known);
            }
            let sig = signature(&self.watched());
            if seen.as_ref() != Some(&sig) {
                self.audit(&mut known);
                seen = Some(sig);
            }
            match stop.recv_timeout(POLL) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    fn watched(&self) -> Vec<PathBuf> {
        let db = self.db.join(kevlar_audit::db::DB_FILE);
        let wal = self.db.join(format!("{}-wal", kevlar_audit::db::DB_FILE));
        let lock = if self.lock.is_dir() {
            LOCK_NAMES.iter().map(|n| self.lock.join(n)).find(|p| p.exists()).unwrap_or_else(|| self.lock.clone())
        } else {
            self.lock.clone()
        };
        vec![lock, db, wal]
    }

    fn save(&self, known: &Known) {
        if let Err(e) = known.save(&self.state) {
            self.fail(&format!("cannot write {}: {e}", self.state.display()));
        }
    }

    /// Says a problem once (an event and a log line); the same problem again is not repeated.
    fn problem(&mut self, what: String) {
        if self.problem.as_deref() != Some(&what) {
            self.fail(&what);
            self.problem = Some(what);
        }
    }

    fn fail(&self, what: &str) {
        tracing::warn!("audit watch: {what}");
        self.bus.publish(
            SecurityEvent::new(
                action::SYS_AUDIT_FAIL,
                Category::Configuration,
                Severity::Warning,
                format!("audit watch: {what}"),
            )
            .with_outcome(Outcome::Failure)
            .with_kevlar("reason", what.to_owned()),
        );
    }

    /// The scheduled fetch: the configured source, else OSV's archive for the ecosystem.
    fn fetch(&mut self) {
        let source = match &self.source {
            Some(s) if s == "off" => return,
            Some(s) => s.clone(),
            None => {
                let eco = lockfile::load(&self.lock).map(|p| p.ecosystem).unwrap_or("npm");
                super::audit::osv_archive(eco)
            }
        };
        match super::audit::import_source(&source, &self.db) {
            Ok(summary) => tracing::info!("audit watch: {summary}"),
            Err(e) => self.problem(format!("the scheduled fetch of {source} failed: {e:#}")),
        }
    }

    fn audit(&mut self, known: &mut Known) {
        let project = match lockfile::load(&self.lock) {
            Ok(p) => p,
            Err(e) => return self.problem(format!("cannot read the lockfile: {e}")),
        };
        let db = match AdvisoryDb::open(&self.db) {
            Ok(d) => d,
            Err(e) => return self.problem(e.to_string()),
        };
        let findings = match kevlar_audit::audit(&project, &db, self.production) {
            Ok(f) => f,
            Err(e) => return self.problem(e.to_string()),
        };
        self.problem = None;
        let (findings, ignored, warnings) = super::audit::apply_ignores(findings, &self.ignores, "[audit] ignore");
        for w in warnings {
            tracing::warn!("audit watch: {w}");
        }
        let now = kevlar_core::time::now_ms();
        let changes = known.update(&findings, now);
        let lockfile = project.lockfile.display().to_string();
        self.report(&changes, &lockfile);
        let runtime = self.runtime(&db, known);
        self.save(known);
        tracing::info!(
            "audit watch: {lockfile}: {} findings ({} new, {} fixed, {} ignored)",
            known.findings.len(),
            changes.new.len(),
            changes.fixed.len(),
            ignored.len()
        );
        if let Ok(mut s) = self.status.lock() {
            *s = json!({
                "lockfile": lockfile,
                "packages": project.packages.len(),
                "findings": known.findings.len(),
                "ignored": ignored.len(),
                "last_audit": kevlar_core::time::rfc3339_ms(now),
                "database": self.db.display().to_string(),
                "database_updated": db.updated_ms().ok().flatten().map(kevlar_core::time::rfc3339_ms),
                "runtime": runtime,
            });
        }
    }

    fn report(&self, changes: &Changes, lockfile: &str) {
        for (f, versions) in &changes.new {
            let severity = match f.severity {
                _ if f.malicious => Severity::Critical,
                AdvisorySeverity::Critical | AdvisorySeverity::High => Severity::Alert,
                AdvisorySeverity::Moderate => Severity::Warning,
                AdvisorySeverity::Low | AdvisorySeverity::Unknown => Severity::Notice,
            };
            let fix = f.fixed.as_ref().map(|v| format!("; fixed in {v}")).unwrap_or_else(|| "; no fix yet".into());
            let paths: Vec<String> = f.paths.iter().take(MAX_PATHS).map(|p| p.join(" > ")).collect();
            let message =
                format!("{} {}: {} ({}) {}{fix}", f.package, versions.join(", "), f.id, f.severity.as_str(), f.summary);
            self.bus.publish(
                SecurityEvent::new(action::VULN_NEW, Category::Vulnerability, severity, message)
                    .with_outcome(Outcome::Unknown)
                    .with_kevlar("package", f.package.clone())
                    .with_kevlar("versions", versions.clone())
                    .with_kevlar("advisory", f.id.clone())
                    .with_kevlar("aliases", f.aliases.clone())
                    .with_kevlar("advisory_severity", f.severity.as_str())
                    .with_kevlar("fixed_version", f.fixed.clone())
                    .with_kevlar("dev", f.dev)
                    .with_kevlar("paths", paths)
                    .with_kevlar("lockfile", lockfile.to_owned()),
            );
        }
        for f in &changes.fixed {
            self.bus.publish(
                SecurityEvent::new(
                    action::VULN_FIXED,
                    Category::Vulnerability,
                    Severity::Info,
                    format!("{} no longer has {} ({})", f.package, f.id, f.summary),
                )
                .with_outcome(Outcome::Success)
                .with_kevlar("package", f.package.clone())
                .with_kevlar("versions", f.versions.clone())
                .with_kevlar("advisory", f.id.clone())
                .with_kevlar("advisory_severity", f.severity.clone())
                .with_kevlar("lockfile", lockfile.to_owned()),
            );
        }
    }

    /// The runtime check, when Node.js answers and the database has runtime data.
    fn runtime(&self, db: &AdvisoryDb, known: &mut Known) -> Value {
        let Ok(version) = super::audit::node_version(&self.node, None) else { return Value::Null };
        let (Ok(schedule), Ok(docs)) = (db.node_schedule(), db.runtime_vulns()) else { return Value::Null };
        if schedule.is_none() && docs.is_empty() {
            return Value::Null;
        }
        let today = kevlar_core::time::rfc3339_ms(kevlar_core::time::now_ms())[..10].to_owned();
        let r = kevlar_audit::runtime::report(&version, schedule.as_ref(), &docs, &today);
        let RuntimeChanges { end_of_life, new_vulnerabilities } = known.update_runtime(&r);
        if end_of_life {
            self.bus.publish(
                SecurityEvent::new(
                    action::RUNTIME_EOL,
                    Category::Vulnerability,
                    Severity::Alert,
                    format!(
                        "Node.js {} is past its end of life ({}){}",
                        r.version,
                        r.end_of_life.as_deref().unwrap_or("date unknown"),
                        r.move_to.as_ref().map(|m| format!("; move to {m}")).unwrap_or_default()
                    ),
                )
                .with_kevlar("runtime_version", r.version.clone())
                .with_kevlar("end_of_life", r.end_of_life.clone())
                .with_kevlar("move_to", r.move_to.clone()),
            );
        }
        for v in &new_vulnerabilities {
            self.bus.publish(
                SecurityEvent::new(
                    action::RUNTIME_VULNERABLE,
                    Category::Vulnerability,
                    Severity::Alert,
                    format!(
                        "Node.js {}: {} ({}) {}{}",
                        r.version,
                        v.id,
                        v.severity,
                        v.overview.chars().take(200).collect::<String>(),
                        v.fixed.as_ref().map(|f| format!("; fixed in {f}")).unwrap_or_default()
                    ),
                )
                .with_kevlar("runtime_version", r.version.clone())
                .with_kevlar("advisory", v.id.clone())
                .with_kevlar("aliases", v.cves.clone())
                .with_kevlar("advisory_severity", v.severity.clone())
                .with_kevlar("fixed_version", v.fixed.clone()),
            );
        }
        json!({ "version": r.version, "status": r.status.as_str(), "vulnerabilities": r.vulnerabilities.len() })
    }
}
