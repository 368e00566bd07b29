//! yarn v1 `yarn.lock`: blocks whose header lists the specs (`name@range`, comma-separated) they
//! satisfy, with `version` and a `dependencies` block. Dependency paths start from the
//! `package.json` beside the lockfile when there is one (yarn.lock itself does not know which
//! packages are direct, nor which are dev-only).

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::{LockfileError, Package};

const MAX_PATHS: usize = 3;

struct Entry {
    name: String,
    version: String,
    deps: Vec<(String, String)>,
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s)
}

/// `@scope/name@^1.0.0` → (`@scope/name`, `^1.0.0`).
fn split_spec(spec: &str) -> Option<(&str, &str)> {
    let spec = unquote(spec);
    let at = spec.get(1..)?.find('@')? + 1;
    Some((&spec[..at], &spec[at + 1..]))
}

/// Parses a yarn v1 lockfile; `package_json` (the project's, when found) gives direct and dev deps.
pub fn parse(text: &str, path: &str, package_json: Option<&Value>) -> Result<Vec<Package>, LockfileError> {
    if text.contains("\n__metadata:") || text.starts_with("__metadata:") {
        return Err(LockfileError::Format { path: path.to_owned(), message: "a yarn berry (v2+) lockfile; only yarn v1 lockfiles are read so far".into() });
    }
    let err = |line: usize, m: &str| LockfileError::Syntax { path: path.to_owned(), line, message: m.to_owned() };
    let mut entries: Vec<Entry> = Vec::new();
    let mut by_spec: HashMap<String, usize> = HashMap::new();
    let mut in_deps = false;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let line = raw.trim();
        if indent == 0 {
            let header = line.strip_suffix(':').ok_or_else(|| err(line_no, "expected an entry header ending with `:`"))?;
            let specs: Vec<&str> = header.split(", ").collect();
            let (name, _) = split_spec(specs[0]).ok_or_else(|| err(line_no, "an entry header must name `package@range`"))?;
            let idx = entries.len();
            entries.push(Entry { name: name.to_owned(), version: String::new(), deps: Vec::new() });
            for s in specs {
                by_spec.insert(unquote(s).to_owned(), idx);
            }
            in_deps = false;
            continue;
        }
        let Some(entry) = entries.last_mut() else { return Err(err(line_no, "an indented line before any entry")) };
        if indent == 2 {
            in_deps = line == "dependencies:" || line == "optionalDependencies:";
            if let Some(v) = line.strip_prefix("version ") {
                entry.version = unquote(v).to_owned();
            }
        } else if indent >= 4 && in_deps {
            let (n, r) = line.split_once(' ').ok_or_else(|| err(line_no, "expected `name \"range\"`"))?;
            entry.deps.push((unquote(n).to_owned(), unquote(r).to_owned()));
        }
    }
    if let Some((i, _)) = entries.iter().enumerate().find(|(_, e)| e.version.is_empty()) {
        return Err(LockfileError::Format { path: path.to_owned(), message: format!("the entry for `{}` has no version", entries[i].name) });
    }
    // Paths: breadth-first from package.json's dependencies.
    let mut paths: Vec<Vec<Vec<String>>> = vec![Vec::new(); entries.len()];
    let mut dev_only: Vec<bool> = vec![true; entries.len()];
    let mut queue: VecDeque<(usize, Vec<String>, bool)> = VecDeque::new();
    if let Some(pj) = package_json {
        for (key, dev) in [("dependencies", false), ("optionalDependencies", false), ("devDependencies", true)] {
            for (n, r) in pj.get(key).and_then(Value::as_object).into_iter().flatten() {
                if let Some(&idx) = by_spec.get(&format!("{n}@{}", r.as_str().unwrap_or(""))) {
                    queue.push_back((idx, vec![n.clone()], dev));
                }
            }
        }
    }
    let mut seen_prod = vec![false; entries.len()];
    let mut seen_any = vec![false; entries.len()];
    while let Some((idx, trail, dev)) = queue.pop_front() {
        if paths[idx].len() < MAX_PATHS && !paths[idx].contains(&trail) {
            paths[idx].push(trail.clone());
        }
        if !dev {
            dev_only[idx] = false;
        }
        let seen = if dev { &mut seen_any } else { &mut seen_prod };
        if seen[idx] || trail.len() >= 64 {
            continue;
        }
        seen[idx] = true;
        seen_any[idx] = true;
        for (n, r) in &entries[idx].deps {
            if let Some(&next) = by_spec.get(&format!("{n}@{r}")) {
                let mut t = trail.clone();
                t.push(n.clone());
                queue.push_back((next, t, dev));
            }
        }
    }
    let known_roots = package_json.is_some();
    Ok(entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let mut p = std::mem::take(&mut paths[i]);
            if p.is_empty() {
                p.push(vec![e.name.clone()]);
            }
            Package { dev: known_roots && dev_only[i] && seen_any[i], name: e.name, version: e.version, paths: p }
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOCK: &str = r#"# yarn lockfile v1


"@scope/a@^1.0.0", "@scope/a@^1.1.0":
  version "1.2.0"
  resolved "https://registry.yarnpkg.com/@scope/a/-/a-1.2.0.tgz"
  dependencies:
    qs "^6.0.0"

qs@^6.0.0:
  version "6.7.0"

mocha@^8.0.0:
  version "8.0.0"
  dependencies:
    minimist "^1.2.0"

minimist@^1.2.0:
  version "1.2.5"
"#;

    #[test]
    fn entries_paths_and_dev_from_package_json() {
        let pj = json!({"dependencies": {"@scope/a": "^1.0.0"}, "devDependencies": {"mocha": "^8.0.0"}});
        let pkgs = parse(LOCK, "yarn.lock", Some(&pj)).unwrap();
        assert_eq!(pkgs.len(), 4);
        let qs = pkgs.iter().find(|p| p.name == "qs").unwrap();
        assert_eq!(qs.version, "6.7.0");
        assert_eq!(qs.paths[0], vec!["@scope/a".to_string(), "qs".to_string()]);
        assert!(!qs.dev);
        assert!(pkgs.iter().find(|p| p.name == "minimist").unwrap().dev);
        let without = parse(LOCK, "yarn.lock", None).unwrap();
        assert!(without.iter().all(|p| !p.dev), "unknown without package.json: treated as prod");
    }

    #[test]
    fn broken_and_berry_files_are_errors() {
        let e = parse("qs@^6.0.0\n  version \"1\"\n", "yarn.lock", None).unwrap_err().to_string();
        assert!(e.starts_with("yarn.lock:1:"), "{e}");
        let e = parse("qs@^6.0.0:\n  resolved \"x\"\n", "yarn.lock", None).unwrap_err().to_string();
        assert!(e.contains("has no version"), "{e}");
        let e = parse("__metadata:\n  version: 6\n", "yarn.lock", None).unwrap_err().to_string();
        assert!(e.contains("yarn berry"), "{e}");
    }
}
