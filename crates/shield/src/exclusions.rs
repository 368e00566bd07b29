//! Exclusions added while Kevlar runs (the dashboard's "this was legitimate"): the same rule as a
//! configured `[[detect.exclude]]`, applied at once and kept in `<data-dir>/exclusions.json` so
//! that they survive a restart, until they are removed or pasted into `kevlar.toml`.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use kevlar_config::Exclusion;
use kevlar_detect::{Family, Finding};
use serde_json::{json, Value};

pub const FILE: &str = "exclusions.json";
/// More than this many run-time exclusions is a sign they should move to the configuration.
pub const MAX: usize = 1000;

/// One run-time exclusion: what it matches, when it was made and from which event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub id: String,
    pub rule: Exclusion,
    pub created_ms: i64,
    /// The `event.id` it was made from, when it was.
    pub event_id: Option<String>,
}

impl Added {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "path": self.rule.path,
            "exact": self.rule.exact,
            "families": self.rule.families,
            "args": self.rule.args,
            "created_ms": self.created_ms,
            "event_id": self.event_id,
            "toml": toml(&self.rule),
        })
    }

    fn from_json(v: &Value) -> Option<Added> {
        let strings = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        Some(Added {
            id: v["id"].as_str()?.to_owned(),
            rule: Exclusion {
                path: v["path"].as_str().map(str::to_owned),
                exact: v["exact"].as_bool().unwrap_or(false),
                families: strings("families"),
                args: strings("args"),
            },
            created_ms: v["created_ms"].as_i64().unwrap_or(0),
            event_id: v["event_id"].as_str().map(str::to_owned),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExclusionError {
    /// The caller's mistake: the rule is empty, malformed or names an unknown family.
    #[error("{0}")]
    Invalid(String),
    #[error("cannot save {path}")]
    Save { path: PathBuf, source: std::io::Error },
}

impl ExclusionError {
    pub fn is_client_error(&self) -> bool {
        matches!(self, ExclusionError::Invalid(_))
    }
}

/// Whether `x` stops finding `f` on `path` (every condition given must hold).
pub fn matches(x: &Exclusion, path: &str, f: &Finding) -> bool {
    x.path.as_deref().is_none_or(|p| if x.exact { path == p } else { path.starts_with(p) })
        && (x.families.is_empty() || x.families.iter().any(|n| n == f.family.as_str()))
        && (x.args.is_empty()
            || x.args.iter().any(|a| {
                *a == f.name
                    || *a == f.location
                    || f.location.strip_prefix("args.").or_else(|| f.location.strip_prefix("body.")) == Some(a)
            }))
}

/// The rule as a `[[detect.exclude]]` table, to paste into `kevlar.toml`.
pub fn toml(x: &Exclusion) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let list = |l: &[String]| l.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ");
    let mut out = String::from("[[detect.exclude]]\n");
    if let Some(p) = &x.path {
        out.push_str(&format!("path = {}\n", quote(p)));
        if x.exact {
            out.push_str("exact = true\n");
        }
    }
    if !x.families.is_empty() {
        out.push_str(&format!("families = [{}]\n", list(&x.families)));
    }
    if !x.args.is_empty() {
        out.push_str(&format!("args = [{}]\n", list(&x.args)));
    }
    out
}

/// Checks a rule given by a person: at least one condition, a path that is a path, known
/// families, names of a sane length.
pub fn validate(x: &Exclusion) -> Result<(), ExclusionError> {
    let bad = |m: &str| Err(ExclusionError::Invalid(m.to_owned()));
    if x.path.is_none() && x.families.is_empty() && x.args.is_empty() {
        return bad("an exclusion needs at least one of path, families, args");
    }
    if let Some(p) = &x.path {
        if !p.starts_with('/') || p.len() > 1024 || p.chars().any(char::is_control) {
            return bad("the path must start with / and hold at most 1024 printable characters");
        }
    }
    if let Some(f) = x.families.iter().find(|f| Family::parse(f).is_none()) {
        return Err(ExclusionError::Invalid(format!("unknown family {f:?}")));
    }
    if x.families.len() > 32 || x.args.len() > 32 || x.args.iter().any(|a| a.is_empty() || a.len() > 256) {
        return bad("at most 32 families and 32 argument names of 1 to 256 characters");
    }
    Ok(())
}

/// The run-time exclusions, read on every finding and changed rarely.
pub struct Store {
    file: PathBuf,
    list: RwLock<Vec<Added>>,
}

impl Store {
    /// Reads `<data_dir>/exclusions.json`; a missing file is an empty list, an unreadable one
    /// is said once and read as empty (the configured exclusions still apply).
    pub fn open(data_dir: &Path) -> Store {
        let file = data_dir.join(FILE);
        let list = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Array(items)) => items.iter().filter_map(Added::from_json).collect(),
                _ => {
                    tracing::warn!(file = %file.display(), "run-time exclusions: not a JSON list; none applied");
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "run-time exclusions: cannot read; none applied");
                Vec::new()
            }
        };
        Store { file, list: RwLock::new(list) }
    }

    pub fn any(&self, path: &str, f: &Finding) -> bool {
        self.list.read().map(|l| l.iter().any(|x| matches(&x.rule, path, f))).unwrap_or(false)
    }

    pub fn list(&self) -> Vec<Added> {
        self.list.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// Adds a rule (the same rule twice is one) and saves the list before answering.
    pub fn add(&self, rule: Exclusion, event_id: Option<String>) -> Result<Added, ExclusionError> {
        validate(&rule)?;
        let mut list = self.list.write().map_err(|_| ExclusionError::Invalid("exclusions unavailable".into()))?;
        if let Some(same) = list.iter().find(|x| x.rule == rule) {
            return Ok(same.clone());
        }
        if list.len() >= MAX {
            return Err(ExclusionError::Invalid(format!(
                "{MAX} run-time exclusions already: move some into kevlar.toml ([[detect.exclude]]) and remove them here"
            )));
        }
        let added =
            Added { id: format!("x{:016x}", fastrand_id()), rule, created_ms: kevlar_core::time::now_ms(), event_id };
        let mut next = list.clone();
        next.push(added.clone());
        self.save(&next)?;
        *list = next;
        Ok(added)
    }

    /// Removes a rule by id; `Ok(false)` when there is none.
    pub fn remove(&self, id: &str) -> Result<bool, ExclusionError> {
        let mut list = self.list.write().map_err(|_| ExclusionError::Invalid("exclusions unavailable".into()))?;
        let next: Vec<Added> = list.iter().filter(|x| x.id != id).cloned().collect();
        if next.len() == list.len() {
            return Ok(false);
        }
        self.save(&next)?;
        *list = next;
        Ok(true)
    }

    /// Writes the list whole to a temporary file, then renames it over the old one.
    fn save(&self, list: &[Added]) -> Result<(), ExclusionError> {
        let err = |source| ExclusionError::Save { path: self.file.clone(), source };
        let body = serde_json::to_vec_pretty(&list.iter().map(Added::to_json).collect::<Vec<_>>())
            .map_err(|e| err(std::io::Error::other(e)))?;
        let tmp = self.file.with_extension("json.tmp");
        std::fs::write(&tmp, body).map_err(err)?;
        kevlar_core::private::private_file(&tmp);
        std::fs::rename(&tmp, &self.file).map_err(err)
    }
}

/// 64 bits from the clock and a counter, enough to tell the list's entries apart.
fn fastrand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = kevlar_core::time::now_ms() as u64;
    t.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ N.fetch_add(1, Ordering::Relaxed).wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_checked_kept_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path());
        assert!(s.add(Exclusion::default(), None).unwrap_err().is_client_error());
        let bad = Exclusion { families: vec!["nope".into()], ..Default::default() };
        assert!(s.add(bad, None).is_err());
        let rule = Exclusion {
            path: Some("/search".into()),
            exact: true,
            families: vec!["sqli".into()],
            args: vec!["q".into()],
        };
        let a = s.add(rule.clone(), Some("ev1".into())).unwrap();
        assert_eq!(s.add(rule.clone(), None).unwrap().id, a.id, "the same rule twice is one");
        assert_eq!(
            toml(&rule),
            "[[detect.exclude]]\npath = \"/search\"\nexact = true\nfamilies = [\"sqli\"]\nargs = [\"q\"]\n"
        );
        // Exact: the path alone, not the paths under it.
        let f = kevlar_detect::Finding {
            family: kevlar_detect::Family::Sqli,
            rule: "union_select",
            location: "args.q".into(),
            name: "q".into(),
            excerpt: String::new(),
            score: 9,
            layers: Vec::new(),
            detail: String::new(),
        };
        assert!(matches(&rule, "/search", &f));
        assert!(!matches(&rule, "/search/../admin", &f) && !matches(&rule, "/searchx", &f));
        let again = Store::open(dir.path());
        assert_eq!(again.list(), vec![a.clone()], "kept across a restart");
        assert!(again.remove(&a.id).unwrap());
        assert!(!again.remove(&a.id).unwrap());
        assert!(Store::open(dir.path()).list().is_empty());
    }
}
