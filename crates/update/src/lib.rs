//! `kevlar outdated`: for each direct dependency, the version the lockfile holds (current), the
//! newest within the range `package.json` declares (wanted) and the registry's `latest`, read from
//! the registry the project is configured for (`.npmrc`: `registry`, `@scope:registry`, auth tokens).
#![forbid(unsafe_code)]

pub mod npmrc;
pub mod trial;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

pub use npmrc::Registries;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    #[error("cannot read {path}: {message}")]
    Project { path: String, message: String },
    #[error(transparent)]
    Lockfile(#[from] kevlar_audit::lockfile::LockfileError),
    #[error("registry {registry}: {name}: {message}")]
    Registry { registry: String, name: String, message: String },
}

/// What the registry says of a package.
#[derive(Debug, Clone, Default)]
pub struct Packument {
    pub versions: Vec<String>,
    pub latest: Option<String>,
    /// Publication time (RFC 3339) per version.
    pub time: BTreeMap<String, String>,
}

impl Packument {
    pub fn parse(v: &Value) -> Packument {
        let mut versions: Vec<String> =
            v["versions"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        versions.sort_by(|a, b| cmp_versions(a, b));
        Packument {
            versions,
            latest: v["dist-tags"]["latest"].as_str().map(str::to_owned),
            time: v["time"]
                .as_object()
                .map(|m| m.iter().filter_map(|(k, t)| Some((k.clone(), t.as_str()?.to_owned()))).collect())
                .unwrap_or_default(),
        }
    }

    /// The newest version within `range` (prereleases only when the range asks for them).
    pub fn wanted(&self, range: &str) -> Option<&str> {
        self.versions
            .iter()
            .rev()
            .find(|v| kevlar_audit::npm_range::satisfies(v, range) == Some(true))
            .map(String::as_str)
    }
}

pub fn cmp_versions(a: &str, b: &str) -> Ordering {
    match (kevlar_audit::version::parse(a), kevlar_audit::version::parse(b)) {
        (Some(x), Some(y)) => kevlar_audit::version::cmp(&x, &y),
        _ => a.cmp(b),
    }
}

/// One direct dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outdated {
    pub name: String,
    /// `dependencies`, `devDependencies` or `optionalDependencies`.
    pub kind: &'static str,
    pub declared: String,
    pub current: Option<String>,
    pub wanted: Option<String>,
    pub latest: Option<String>,
}

impl Outdated {
    pub fn is_outdated(&self) -> bool {
        let newer = |v: &Option<String>| match (v, &self.current) {
            (Some(v), Some(c)) => cmp_versions(v, c) == Ordering::Greater,
            (Some(_), None) => true,
            _ => false,
        };
        newer(&self.wanted) || newer(&self.latest)
    }
}

/// The direct dependencies `package.json` declares, with the registry's view of each.
pub fn outdated(
    project: &Path,
    fetch: &dyn Fn(&str) -> Result<Packument, UpdateError>,
) -> Result<Vec<Outdated>, UpdateError> {
    let manifest_path = project.join("package.json");
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| UpdateError::Project { path: manifest_path.display().to_string(), message: e.to_string() })?;
    let manifest: Value = serde_json::from_str(&text)
        .map_err(|e| UpdateError::Project { path: manifest_path.display().to_string(), message: e.to_string() })?;
    let lock = kevlar_audit::lockfile::load(project).ok();
    let current = |name: &str| -> Option<String> {
        lock.as_ref()?.packages.iter().find(|p| p.name == name && p.direct()).map(|p| p.version.clone())
    };
    let mut out = Vec::new();
    for kind in ["dependencies", "devDependencies", "optionalDependencies"] {
        let Some(deps) = manifest[kind].as_object() else { continue };
        for (name, range) in deps {
            let Some(range) = range.as_str() else { continue };
            // Links, files, git and aliases have no registry versions to compare.
            if ["file:", "link:", "git", "http:", "https:", "npm:", "workspace:"].iter().any(|p| range.starts_with(p)) {
                continue;
            }
            let p = fetch(name)?;
            out.push(Outdated {
                name: name.clone(),
                kind,
                declared: range.to_owned(),
                current: current(name),
                wanted: p.wanted(range).map(str::to_owned),
                latest: p.latest.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wanted_and_latest() {
        let p = Packument::parse(&json!({
            "dist-tags": {"latest": "2.0.0"},
            "versions": {"1.0.0": {}, "1.0.1": {}, "1.1.0": {}, "1.10.0": {}, "2.0.0": {}, "2.1.0-beta.1": {}},
            "time": {"1.0.0": "2026-01-01T00:00:00.000Z"}
        }));
        assert_eq!(p.wanted("^1.0.0"), Some("1.10.0"), "numeric, not lexical, order");
        assert_eq!(p.wanted("~1.0.0"), Some("1.0.1"));
        assert_eq!(p.wanted("^3"), None);
        assert_eq!(p.latest.as_deref(), Some("2.0.0"));
        let o = Outdated {
            name: "x".into(),
            kind: "dependencies",
            declared: "^1".into(),
            current: Some("1.10.0".into()),
            wanted: Some("1.10.0".into()),
            latest: Some("2.0.0".into()),
        };
        assert!(o.is_outdated());
    }
}
