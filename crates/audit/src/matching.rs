//! Matching a project against the index: which installed packages fall in which advisory's
//! ranges, by which dependency paths, and whether the fix is within the declared range. Presenting
//! the findings is `present.rs`.

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
