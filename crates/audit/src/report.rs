//! Matching a project against the index, and presenting findings (table, JSON).

use serde_json::{json, Value};

use crate::db::{AdvisoryDb, DbError};
use crate::lockfile::Project;
use crate::osv::Severity;

#[derive(Debug, Clone)]
pub struct Finding {
    pub package: String,
    pub version: String,
    pub dev: bool,
    pub direct: bool,
    pub paths: Vec<Vec<String>>,
    pub id: String,
    pub aliases: Vec<String>,
    pub severity: Severity,
    pub malicious: bool,
    pub summary: String,
    pub fixed: Option<String>,
    /// The highest CVSS v3 base score computed from the advisory's vectors.
    pub cvss_score: Option<f64>,
    /// The vector that score came from.
    pub cvss_vector: Option<String>,
    /// Whether the fix is within every range the dependents declare (`npm update` suffices);
    /// `None` when unknown (no fix, or no declared ranges in the lockfile).
    pub fix_in_range: Option<bool>,
    /// The workspaces that pull the package in (monorepos; `.` is the root project).
    pub workspaces: Vec<String>,
}

/// Whether `fixed` satisfies every declared range (npm range semantics).
fn fix_in_range(ecosystem: &str, fixed: Option<&str>, ranges: &[String]) -> Option<bool> {
    let fixed = fixed?;
    if ecosystem != "npm" || ranges.is_empty() {
        return None;
    }
    let mut all = true;
    for r in ranges {
        all &= crate::npm_range::satisfies(fixed, r)?;
    }
    Some(all)
}

/// The highest v3 base score among the vectors, with its vector.
fn best_cvss(vectors: &[String]) -> (Option<f64>, Option<String>) {
    vectors
        .iter()
        .filter_map(|v| crate::cvss::base_score(v).map(|s| (s, v.clone())))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or((None, None), |(s, v)| (Some(s), Some(v)))
}

/// Every (package, advisory) pair that matches; an advisory known under several ids (GHSA and
/// CVE aliases) is reported once. `production` skips development-only packages.
pub fn audit(project: &Project, db: &AdvisoryDb, production: bool) -> Result<Vec<Finding>, DbError> {
    let mut out: Vec<Finding> = Vec::new();
    for p in &project.packages {
        if production && p.dev {
            continue;
        }
        for adv in db.lookup(project.ecosystem, &p.name)? {
            if !adv.affects(project.ecosystem, &p.name, &p.version) {
                continue;
            }
            let duplicate = out.iter_mut().find(|f| {
                f.package == p.name
                    && f.version == p.version
                    && (f.id == adv.id || f.aliases.contains(&adv.id) || adv.aliases.contains(&f.id))
            });
            if let Some(f) = duplicate {
                for a in adv.aliases.iter().chain(std::iter::once(&adv.id)) {
                    if a != &f.id && !f.aliases.contains(a) {
                        f.aliases.push(a.clone());
                    }
                }
                f.severity = f.severity.max(adv.severity);
                let (score, vector) = best_cvss(&adv.cvss);
                if score > f.cvss_score {
                    f.cvss_score = score;
                    f.cvss_vector = vector;
                }
                continue;
            }
            out.push(Finding {
                package: p.name.clone(),
                version: p.version.clone(),
                dev: p.dev,
                direct: p.direct(),
                paths: p.paths.clone(),
                fixed: adv.smallest_fix(project.ecosystem, &p.name, &p.version).map(|v| v.to_string()),
                id: adv.id.clone(),
                aliases: adv.aliases.clone(),
                severity: adv.severity,
                malicious: adv.malicious,
                summary: adv.summary.clone(),
                cvss_score: best_cvss(&adv.cvss).0,
                cvss_vector: best_cvss(&adv.cvss).1,
                fix_in_range: None,
                workspaces: p.workspaces.clone(),
            });
        }
    }
    for f in &mut out {
        let ranges = project
            .packages
            .iter()
            .find(|p| p.name == f.package && p.version == f.version)
            .map(|p| p.ranges.as_slice())
            .unwrap_or(&[]);
        f.fix_in_range = fix_in_range(project.ecosystem, f.fixed.as_deref(), ranges);
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.package.cmp(&b.package)).then(a.id.cmp(&b.id)));
    Ok(out)
}

pub fn to_json(project: &Project, findings: &[Finding]) -> Value {
    json!({
        "lockfile": project.lockfile.display().to_string(),
        "ecosystem": project.ecosystem,
        "packages": project.packages.len(),
        "findings": findings.iter().map(|f| json!({
            "package": f.package,
            "version": f.version,
            "id": f.id,
            "aliases": f.aliases,
            "severity": f.severity.as_str(),
            "cvss_score": f.cvss_score,
            "cvss_vector": f.cvss_vector,
            "malicious": f.malicious,
            "summary": f.summary,
            "fixed_version": f.fixed,
            "fix_in_range": f.fix_in_range,
            "workspaces": f.workspaces,
            "direct": f.direct,
            "dev": f.dev,
            "paths": f.paths,
        })).collect::<Vec<_>>(),
    })
}

pub fn to_table(project: &Project, findings: &[Finding]) -> String {
    let mut s = String::new();
    if findings.is_empty() {
        s.push_str(&format!(
            "{}: {} packages, no known vulnerabilities\n",
            project.lockfile.display(),
            project.packages.len()
        ));
        return s;
    }
    s.push_str(&format!(
        "{:<9} {:<5} {:<28} {:<12} {:<20} {:<10} {:<5} PATH\n",
        "SEVERITY", "CVSS", "PACKAGE", "VERSION", "ADVISORY", "FIX", "DEV"
    ));
    for f in findings {
        let label = if f.malicious { "MALWARE".to_owned() } else { f.severity.as_str().to_uppercase() };
        let path = f.paths.first().map(|p| p.join(" > ")).unwrap_or_default();
        s.push_str(&format!(
            "{:<9} {:<5} {:<28} {:<12} {:<20} {:<10} {:<5} {}\n",
            label,
            f.cvss_score.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into()),
            f.package,
            f.version,
            f.id,
            match (f.fixed.as_deref(), f.fix_in_range) {
                (None, _) => "none".to_owned(),
                (Some(v), Some(false)) => format!("{v}!"),
                (Some(v), _) => v.to_owned(),
            },
            if f.dev { "dev" } else { "prod" },
            path
        ));
        s.push_str(&format!("{:<9} {}\n", "", f.summary));
        if !f.workspaces.is_empty() && f.workspaces != ["."] {
            s.push_str(&format!(
                "{:<9} pulled in by workspace{} {}\n",
                "",
                if f.workspaces.len() == 1 { "" } else { "s" },
                f.workspaces.join(", ")
            ));
        }
    }
    s.push_str(&format!(
        "{} finding{} in {} packages ({})\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        project.packages.len(),
        project.lockfile.display()
    ));
    s
}

fn security_severity(s: Severity) -> &'static str {
    // GitHub code scanning reads `security-severity` as a CVSS-like number.
    match s {
        Severity::Critical => "9.5",
        Severity::High => "7.5",
        Severity::Moderate => "5.0",
        Severity::Low => "2.0",
        Severity::Unknown => "5.0",
    }
}

/// The line of the lockfile where the package is declared (1 when it cannot be found).
fn line_of(lockfile_text: &str, name: &str) -> usize {
    let needles = [format!("\"node_modules/{name}\""), format!("\"{name}\":"), format!("{name}@")];
    for n in &needles {
        if let Some(pos) = lockfile_text.find(n.as_str()) {
            return 1 + lockfile_text[..pos].bytes().filter(|&b| b == b'\n').count();
        }
    }
    1
}

/// SARIF 2.1.0 for GitHub code scanning: one rule per advisory, one result per finding, located
/// at the package's line in the lockfile.
pub fn to_sarif(project: &Project, findings: &[Finding], lockfile_text: &str, uri: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    for f in findings {
        if rules.iter().any(|r| r["id"] == f.id.as_str()) {
            continue;
        }
        rules.push(json!({
            "id": f.id,
            "name": f.id.replace('-', ""),
            "shortDescription": { "text": if f.summary.is_empty() { f.id.clone() } else { f.summary.clone() } },
            "helpUri": format!("https://osv.dev/vulnerability/{}", f.id),
            "help": { "text": format!("{} {} is affected by {}{}. {}", f.package, f.version, f.id,
                if f.aliases.is_empty() { String::new() } else { format!(" ({})", f.aliases.join(", ")) },
                match &f.fixed { Some(v) => format!("Upgrade to {v} or later."), None => "No fixed version is known.".to_owned() }) },
            "properties": { "security-severity": f.cvss_score.filter(|_| !f.malicious).map(|c| format!("{c:.1}")).unwrap_or_else(|| security_severity(f.severity).to_owned()), "tags": ["security", "dependency", project.ecosystem] },
        }));
    }
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let level = match f.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Moderate | Severity::Unknown => "warning",
                Severity::Low => "note",
            };
            json!({
                "ruleId": f.id,
                "level": level,
                "message": { "text": format!("{} {} ({}): {}{}", f.package, f.version,
                    f.paths.first().map(|p| p.join(" > ")).unwrap_or_default(), f.summary,
                    f.fixed.as_ref().map(|v| format!(" Fixed in {v}.")).unwrap_or_default()) },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": uri },
                    "region": { "startLine": line_of(lockfile_text, &f.package) },
                }}],
                "partialFingerprints": { "kevlar/v1": format!("{}@{}:{}", f.package, f.version, f.id) },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "kevlar", "informationUri": "https://github.com/kevlar", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "results": results,
        }],
    })
}

/// A Markdown report (a pull-request comment, a CI summary).
pub fn to_markdown(project: &Project, findings: &[Finding]) -> String {
    let mut s = format!("## Kevlar audit: `{}`\n\n", project.lockfile.display());
    if findings.is_empty() {
        s.push_str(&format!("No known vulnerabilities in {} packages.\n", project.packages.len()));
        return s;
    }
    s.push_str("| Severity | Package | Version | Advisory | Fixed in | Dependency path |\n|---|---|---|---|---|---|\n");
    let esc = |t: &str| t.replace('|', "\\|");
    for f in findings {
        let label = if f.malicious { "**MALWARE**".to_owned() } else { f.severity.as_str().to_owned() };
        s.push_str(&format!(
            "| {} | `{}` | {} | [{}](https://osv.dev/vulnerability/{}) {} | {} | {}{} |\n",
            label,
            esc(&f.package),
            esc(&f.version),
            esc(&f.id),
            esc(&f.id),
            esc(&f.summary),
            f.fixed.as_deref().unwrap_or("—"),
            esc(&f.paths.first().map(|p| p.join(" › ")).unwrap_or_default()),
            if f.dev { " (dev)" } else { "" }
        ));
    }
    s.push_str(&format!(
        "\n{} finding{} in {} packages.\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        project.packages.len()
    ));
    s
}
