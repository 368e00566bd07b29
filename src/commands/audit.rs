//! `kevlar audit` and `kevlar db update`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kevlar_audit::{lockfile, present, AdvisoryDb, Severity};

use crate::cli::{AuditArgs, DbCommand, DoctorArgs};

/// A database older than this gets a warning.
const STALE_DAYS: i64 = 7;

pub(crate) fn db_dir(given: Option<PathBuf>) -> PathBuf {
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
            let sources: Vec<String> = match from {
                Some(f) => vec![f],
                None => default_sources(),
            };
            for source in sources {
                println!("{}", import_source(&source, &dir)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// OSV's public archive for each ecosystem of the project in the current directory (npm when
/// there is none).
fn default_sources() -> Vec<String> {
    let eco = lockfile::load(std::path::Path::new(".")).map(|p| p.ecosystem).unwrap_or("npm");
    vec![osv_archive(eco)]
}

/// Downloads `url` into `<db>/downloads/`; at most 4 GiB, 10 minutes.
fn download(url: &str, db: &std::path::Path) -> anyhow::Result<PathBuf> {
    let dir = db.join("downloads");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = url.rsplit('/').next().filter(|n| !n.is_empty() && !n.contains('?')).unwrap_or("download");
    let dest = dir.join(name);
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(20))
        .timeout(std::time::Duration::from_secs(600))
        .build();
    let resp = agent.get(url).call().with_context(|| format!("cannot download {url}"))?;
    let tmp = dest.with_extension("part");
    let mut out = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let n = std::io::copy(&mut std::io::Read::take(resp.into_reader(), 4 << 30), &mut out)
        .with_context(|| format!("download of {url} broke off"))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("cannot write {}", dest.display()))?;
    eprintln!("kevlar: downloaded {url} ({n} bytes)");
    Ok(dest)
}

/// Imports `from` into the database; returns the summary line. Warnings go to stderr.
pub(crate) fn import_one(
    store: &mut AdvisoryDb,
    from: &std::path::Path,
    dir: &std::path::Path,
) -> anyhow::Result<String> {
    let stats = store.import_dir(from).with_context(|| format!("cannot import from {}", from.display()))?;
    for w in &stats.warnings {
        eprintln!("kevlar: warning: {w}");
    }
    Ok(format!(
        "imported {} records into {} in {:.2}s ({} files skipped, {} informational notices left out, {} Node.js runtime records, {} files in other formats, {} warnings); {} records in all",
        stats.records,
        dir.display(),
        stats.seconds,
        stats.skipped_files,
        stats.informational,
        stats.runtime_records,
        stats.not_advisories,
        stats.warnings.len(),
        store.count()?
    ))
}

/// Imports a source (a URL, downloaded first, or a local path) into the database at `dir`.
pub(crate) fn import_source(source: &str, dir: &std::path::Path) -> anyhow::Result<String> {
    let mut store = AdvisoryDb::create(dir)?;
    let path = if source.starts_with("http://") || source.starts_with("https://") {
        download(source, dir)?
    } else {
        PathBuf::from(source)
    };
    import_one(&mut store, &path, dir)
}

/// OSV's public archive for an ecosystem, or a mirror's (`KEVLAR_OSV_URL`, the same layout).
pub(crate) fn osv_archive(ecosystem: &str) -> String {
    let base = std::env::var("KEVLAR_OSV_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "https://osv-vulnerabilities.storage.googleapis.com".to_owned());
    format!("{}/{ecosystem}/all.zip", base.trim_end_matches('/'))
}

/// The `[[audit.ignore]]` entries of the configuration that applies, with the file's name.
fn ignores(a: &AuditArgs) -> anyhow::Result<(Vec<kevlar_config::AuditIgnore>, String)> {
    let project_dir =
        if a.path.is_dir() { a.path.clone() } else { a.path.parent().map(PathBuf::from).unwrap_or_default() };
    let file = match &a.config {
        Some(f) => Some(f.clone()),
        None => [project_dir.join("kevlar.toml"), PathBuf::from("kevlar.toml")].into_iter().find(|p| p.exists()),
    };
    let Some(file) = file else { return Ok((Vec::new(), String::new())) };
    let config =
        kevlar_config::load_file(&file, &kevlar_config::Overrides::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((config.audit.ignore, file.display().to_string()))
}

/// Findings an unexpired ignore covers are set apart; expired and unused ignores are warned about
/// (the warnings are returned, for the caller to say).
pub(crate) fn apply_ignores(
    findings: Vec<kevlar_audit::Finding>,
    ignores: &[kevlar_config::AuditIgnore],
    file: &str,
) -> (Vec<kevlar_audit::Finding>, Vec<serde_json::Value>, Vec<String>) {
    let today = kevlar_core::time::rfc3339_ms(kevlar_core::time::now_ms())[..10].to_owned();
    let mut kept = Vec::new();
    let mut ignored = Vec::new();
    let mut warnings = Vec::new();
    let mut used = vec![false; ignores.len()];
    for f in findings {
        let hit = ignores.iter().position(|i| i.id == f.id || f.aliases.contains(&i.id));
        match hit {
            Some(n) => {
                used[n] = true;
                let ig = &ignores[n];
                let line = ig.line.map(|l| format!(":{l}")).unwrap_or_default();
                if ig.until.as_ref().is_some_and(|u| *u <= today) {
                    warnings.push(format!(
                        "{file}{line}: the ignore of {} expired on {} (reason: {}); it is reported again",
                        ig.id,
                        ig.until.as_deref().unwrap_or(""),
                        ig.reason
                    ));
                    kept.push(f);
                } else {
                    ignored.push(serde_json::json!({
                        "id": f.id, "package": f.package, "version": f.version,
                        "reason": ig.reason, "until": ig.until,
                    }));
                }
            }
            None => kept.push(f),
        }
    }
    for (n, ig) in ignores.iter().enumerate() {
        if !used[n] {
            let line = ig.line.map(|l| format!(":{l}")).unwrap_or_default();
            warnings.push(format!("{file}{line}: the ignore of {} matches no finding; remove it?", ig.id));
        }
    }
    (kept, ignored, warnings)
}

pub fn run(a: AuditArgs) -> anyhow::Result<ExitCode> {
    let (ignores, config_file) = ignores(&a)?;
    let project = lockfile::load(&a.path)?;
    let dir = db_dir(a.db);
    let db = AdvisoryDb::open(&dir)?;
    if let Some(ms) = db.updated_ms()? {
        let days = (kevlar_core::time::now_ms() - ms) / 86_400_000;
        if days > STALE_DAYS {
            eprintln!("kevlar: warning: the advisory database was updated {days} days ago; run `kevlar db update`");
        }
    }
    let findings = kevlar_audit::audit(&project, &db, a.production)?;
    let (findings, ignored, warnings) = apply_ignores(findings, &ignores, &config_file);
    for w in warnings {
        eprintln!("kevlar: warning: {w}");
    }
    if !ignored.is_empty() && a.format != "json" {
        eprintln!(
            "kevlar: {} finding{} ignored by {config_file}",
            ignored.len(),
            if ignored.len() == 1 { "" } else { "s" }
        );
    }
    match a.format.as_str() {
        "json" => {
            let mut v = present::to_json(&project, &findings);
            v["ignored"] = serde_json::Value::Array(ignored);
            println!("{v}");
        }
        "sarif" => {
            let text = std::fs::read_to_string(&project.lockfile).unwrap_or_default();
            let uri = project
                .lockfile
                .strip_prefix(std::env::current_dir().unwrap_or_default())
                .unwrap_or(&project.lockfile)
                .display()
                .to_string();
            println!("{}", present::to_sarif(&project, &findings, &text, &uri));
        }
        "markdown" => print!("{}", present::to_markdown(&project, &findings)),
        _ => print!("{}", present::to_table(&project, &findings)),
    }
    let threshold = Severity::parse(&a.fail_on).unwrap_or(Severity::Low);
    let mut failing = findings
        .iter()
        .any(|f| f.severity >= threshold || (f.severity == Severity::Unknown && threshold == Severity::Low));
    if a.runtime {
        let version = node_version("node", None)?;
        if a.format != "json" {
            println!();
        }
        let (r, runtime_failing) = runtime_report(&db, &version, a.format == "json")?;
        if a.format == "json" {
            println!("{r}");
        }
        failing |= runtime_failing;
    }
    Ok(if failing { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The running Node.js version (`node --version`), or the one given.
pub(crate) fn node_version(node: &str, given: Option<&str>) -> anyhow::Result<semver::Version> {
    let text = match given {
        Some(v) => v.to_owned(),
        None => {
            let out = std::process::Command::new(node)
                .arg("--version")
                .output()
                .with_context(|| format!("cannot run `{node} --version` (use --node PATH or --node-version X)"))?;
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
    };
    semver::Version::parse(text.trim().trim_start_matches('v'))
        .with_context(|| format!("`{text}` is not a Node.js version"))
}

/// The runtime report (printed for people unless `json_out`); `true` when it should fail a CI run.
fn runtime_report(
    db: &AdvisoryDb,
    version: &semver::Version,
    json_out: bool,
) -> anyhow::Result<(serde_json::Value, bool)> {
    let schedule = db.node_schedule()?;
    let docs = db.runtime_vulns()?;
    if schedule.is_none() && docs.is_empty() {
        anyhow::bail!(
            "the advisory database has no Node.js runtime data; import the security WG's vuln/core and a release schedule with `kevlar db update --from DIR`"
        );
    }
    let today = kevlar_core::time::rfc3339_ms(kevlar_core::time::now_ms())[..10].to_owned();
    let r = kevlar_audit::runtime::report(version, schedule.as_ref(), &docs, &today);
    if !json_out {
        print!("{}", present::runtime_text(&r));
    }
    Ok((serde_json::to_value(&r)?, r.failing()))
}

pub fn doctor(a: DoctorArgs) -> anyhow::Result<ExitCode> {
    let db = AdvisoryDb::open(&db_dir(a.db))?;
    let version = node_version(&a.node, a.node_version.as_deref())?;
    let json_out = a.format == "json";
    let (mut r, failing) = runtime_report(&db, &version, json_out)?;
    let (config, mut checks) = super::doctor::load(a.config.as_deref(), a.data_dir);
    if let Some(c) = &config {
        checks.extend(super::doctor::checks(c));
    }
    let checks_fail = checks.iter().any(|c| c.verdict == super::doctor::Verdict::Fail);
    if json_out {
        r["checks"] = super::doctor::to_json(&checks);
        println!("{r}");
    } else {
        println!();
        super::doctor::print(&checks);
    }
    Ok(if failing || checks_fail { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
