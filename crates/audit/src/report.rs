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
                f.package == p.name && f.version == p.version && (f.id == adv.id || f.aliases.contains(&adv.id) || adv.aliases.contains(&f.id))
            });
            if let Some(f) = duplicate {
                for a in adv.aliases.iter().chain(std::iter::once(&adv.id)) {
                    if a != &f.id && !f.aliases.contains(a) {
                        f.aliases.push(a.clone());
                    }
                }
                f.severity = f.severity.max(adv.severity);
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
            });
        }
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
            "malicious": f.malicious,
            "summary": f.summary,
            "fixed_version": f.fixed,
            "direct": f.direct,
            "dev": f.dev,
            "paths": f.paths,
        })).collect::<Vec<_>>(),
    })
}

pub fn to_table(project: &Project, findings: &[Finding]) -> String {
    let mut s = String::new();
    if findings.is_empty() {
        s.push_str(&format!("{}: {} packages, no known vulnerabilities\n", project.lockfile.display(), project.packages.len()));
        return s;
    }
    s.push_str(&format!("{:<9} {:<28} {:<12} {:<20} {:<10} {:<5} PATH\n", "SEVERITY", "PACKAGE", "VERSION", "ADVISORY", "FIX", "DEV"));
    for f in findings {
        let label = if f.malicious { "MALWARE".to_owned() } else { f.severity.as_str().to_uppercase() };
        let path = f.paths.first().map(|p| p.join(" > ")).unwrap_or_default();
        s.push_str(&format!(
            "{:<9} {:<28} {:<12} {:<20} {:<10} {:<5} {}\n",
            label,
            f.package,
            f.version,
            f.id,
            f.fixed.as_deref().unwrap_or("none"),
            if f.dev { "dev" } else { "prod" },
            path
        ));
        s.push_str(&format!("{:<9} {}\n", "", f.summary));
    }
    s.push_str(&format!("{} finding{} in {} packages ({})\n", findings.len(), if findings.len() == 1 { "" } else { "s" }, project.packages.len(), project.lockfile.display()));
    s
}
