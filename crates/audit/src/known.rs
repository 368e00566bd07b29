//! What a running Kevlar remembers between audits of the deployed lockfile: the findings it has
//! reported and the runtime's last verdict, so that each finding is raised once when it appears
//! (`vuln_new`) and once when a deploy removes it (`vuln_fixed`), across restarts.
//!
//! Kept as one JSON file in the data dir, written whole (temporary file, then rename). A finding
//! is known by (advisory, package): a package upgraded to another still-affected version is the
//! same finding, not a fix and a new one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::matching::Finding;
use crate::runtime::{LineStatus, RuntimeReport};

/// One reported finding, as remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownFinding {
    pub id: String,
    pub package: String,
    pub versions: Vec<String>,
    pub severity: String,
    pub summary: String,
    pub first_seen_ms: i64,
}

/// The runtime's last verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KnownRuntime {
    pub version: String,
    pub end_of_life: bool,
    /// The core advisories already reported for this version.
    pub vulnerabilities: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Known {
    pub findings: BTreeMap<String, KnownFinding>,
    pub runtime: Option<KnownRuntime>,
    /// When the advisories were last fetched from the watch's source.
    pub last_fetch_ms: Option<i64>,
    pub last_audit_ms: Option<i64>,
}

/// What changed since the last audit.
#[derive(Debug, Default)]
pub struct Changes {
    /// Findings not reported before, one per (advisory, package), with every affected version.
    pub new: Vec<(Finding, Vec<String>)>,
    /// Findings reported before that the lockfile no longer has.
    pub fixed: Vec<KnownFinding>,
}

/// What changed in the runtime's verdict.
#[derive(Debug, Default)]
pub struct RuntimeChanges {
    /// The version's line reached its end of life (reported once per version).
    pub end_of_life: bool,
    /// Core advisories not reported before for this version.
    pub new_vulnerabilities: Vec<crate::runtime::CoreVuln>,
}

fn key(id: &str, package: &str) -> String {
    format!("{id} {package}")
}

impl Known {
    /// The remembered state; a missing file is a first audit, an unreadable one is said and
    /// replaced (its findings are then reported again, never lost silently).
    pub fn load(path: &Path) -> (Known, Option<String>) {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(k) => (k, None),
                Err(e) => {
                    (Known::default(), Some(format!("{}: {e}; its findings will be reported again", path.display())))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Known::default(), None),
            Err(e) => (Known::default(), Some(format!("cannot read {}: {e}", path.display()))),
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, path)
    }

    /// Records this audit's findings; returns what appeared and what went.
    pub fn update(&mut self, findings: &[Finding], now_ms: i64) -> Changes {
        let mut current: BTreeMap<String, (Finding, Vec<String>)> = BTreeMap::new();
        for f in findings {
            let e = current.entry(key(&f.id, &f.package)).or_insert_with(|| (f.clone(), Vec::new()));
            if !e.1.contains(&f.version) {
                e.1.push(f.version.clone());
            }
        }
        let mut changes = Changes::default();
        let gone: Vec<String> = self.findings.keys().filter(|k| !current.contains_key(*k)).cloned().collect();
        for k in gone {
            if let Some(f) = self.findings.remove(&k) {
                changes.fixed.push(f);
            }
        }
        for (k, (f, versions)) in current {
            match self.findings.get_mut(&k) {
                Some(known) => known.versions.clone_from(&versions),
                None => {
                    self.findings.insert(
                        k,
                        KnownFinding {
                            id: f.id.clone(),
                            package: f.package.clone(),
                            versions: versions.clone(),
                            severity: f.severity.as_str().to_owned(),
                            summary: f.summary.clone(),
                            first_seen_ms: now_ms,
                        },
                    );
                    changes.new.push((f, versions));
                }
            }
        }
        self.last_audit_ms = Some(now_ms);
        changes
    }

    /// Records the runtime's report; a new version starts over.
    pub fn update_runtime(&mut self, r: &RuntimeReport) -> RuntimeChanges {
        let known = match &mut self.runtime {
            Some(k) if k.version == r.version => k,
            slot => slot.insert(KnownRuntime { version: r.version.clone(), ..KnownRuntime::default() }),
        };
        let mut changes = RuntimeChanges::default();
        let eol = r.status == LineStatus::EndOfLife;
        changes.end_of_life = eol && !known.end_of_life;
        known.end_of_life = eol;
        for v in &r.vulnerabilities {
            if known.vulnerabilities.insert(v.id.clone()) {
                changes.new_vulnerabilities.push(v.clone());
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::osv::Severity;

    fn finding(id: &str, package: &str, version: &str) -> Finding {
        Finding {
            package: package.into(),
            version: version.into(),
            dev: false,
            direct: true,
            paths: vec![vec![package.into()]],
            id: id.into(),
            aliases: vec![],
            severity: Severity::High,
            malicious: false,
            summary: format!("{package} is vulnerable"),
            fixed: None,
            cvss_score: None,
            cvss_vector: None,
            fix_in_range: None,
            workspaces: vec![],
        }
    }

    #[test]
    fn each_finding_is_new_once_and_fixed_once() {
        let mut k = Known::default();
        let c = k.update(&[finding("A", "qs", "6.7.0"), finding("A", "qs", "6.5.0"), finding("B", "ms", "1.0.0")], 1);
        assert_eq!(c.new.len(), 2, "one per (advisory, package)");
        assert_eq!(c.new[0].1, vec!["6.7.0", "6.5.0"]);
        assert!(c.fixed.is_empty());
        // The same findings again, one version moved but still affected: nothing to say.
        let c = k.update(&[finding("A", "qs", "6.7.1"), finding("B", "ms", "1.0.0")], 2);
        assert!(c.new.is_empty() && c.fixed.is_empty());
        let c = k.update(&[finding("B", "ms", "1.0.0")], 3);
        assert_eq!(c.fixed.len(), 1);
        assert_eq!(c.fixed[0].versions, vec!["6.7.1"]);
        assert_eq!(c.fixed[0].first_seen_ms, 1);
        // Through the file, as after a restart.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.json");
        k.save(&p).unwrap();
        let (mut back, warning) = Known::load(&p);
        assert!(warning.is_none());
        assert!(back.update(&[finding("B", "ms", "1.0.0")], 4).new.is_empty());
        std::fs::write(&p, "{ broken").unwrap();
        let (fresh, warning) = Known::load(&p);
        assert!(fresh.findings.is_empty() && warning.unwrap().contains("reported again"));
    }
}
