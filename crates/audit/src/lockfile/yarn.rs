//! `yarn.lock`. yarn v1: blocks whose header lists the specs (`name@range`, comma-separated) they
//! satisfy, with `version` and a `dependencies` block. yarn berry (2+): YAML, descriptors with
//! protocols (`name@npm:^1.0.0`), workspaces as `linkType: soft` entries. Dependency paths start
//! from the `package.json` beside the lockfile (v1) or from the workspaces (berry); yarn.lock
//! itself does not say which packages are dev-only, so dev is known only from `package.json`.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::{LockfileError, Merger, Package, MAX_PATHS};

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

/// The entries of a yarn v1 lockfile, and which entry each `name@range` spec resolves to.
fn read_v1(text: &str, path: &str) -> Result<(Vec<Entry>, HashMap<String, usize>), LockfileError> {
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
            let header =
                line.strip_suffix(':').ok_or_else(|| err(line_no, "expected an entry header ending with `:`"))?;
            let specs: Vec<&str> = header.split(", ").collect();
            let (name, _) =
                split_spec(specs[0]).ok_or_else(|| err(line_no, "an entry header must name `package@range`"))?;
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
        return Err(LockfileError::Format {
            path: path.to_owned(),
            message: format!("the entry for `{}` has no version", entries[i].name),
        });
    }
    Ok((entries, by_spec))
}

/// Parses a yarn v1 lockfile; `package_json` (the project's, when found) gives direct and dev deps.
pub fn parse(text: &str, path: &str, package_json: Option<&Value>) -> Result<Vec<Package>, LockfileError> {
    if text.contains("\n__metadata:") || text.starts_with("__metadata:") {
        return parse_berry(text, path, package_json);
    }
    let (entries, by_spec) = read_v1(text, path)?;
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
            Package {
                dev: known_roots && dev_only[i] && seen_any[i],
                name: e.name,
                version: e.version,
                paths: p,
                ranges: Vec::new(),
                workspaces: Vec::new(),
            }
        })
        .collect())
}

/// The package name of a descriptor: `@scope/a@npm:^1.0.0` → `@scope/a`.
fn descriptor_name(d: &str) -> Option<&str> {
    let at = d.get(1..)?.find('@')? + 1;
    Some(&d[..at])
}

/// A yarn berry lockfile's entries: which are workspaces (`linkType: soft`), each workspace's
/// path (`packages/a`, `.`, from `resolution: "name@workspace:packages/a"`), and which entry each
/// descriptor resolves to.
struct Berry {
    entries: Vec<Entry>,
    soft: Vec<bool>,
    ws_label: Vec<String>,
    by_spec: HashMap<String, usize>,
}

fn read_berry(root: &yaml_rust2::yaml::Hash) -> Berry {
    use yaml_rust2::Yaml;
    let s = |y: &Yaml| -> Option<String> {
        match y {
            Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
            Yaml::Integer(i) => Some(i.to_string()),
            _ => None,
        }
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut soft: Vec<bool> = Vec::new();
    let mut ws_label: Vec<String> = Vec::new();
    let mut by_spec: HashMap<String, usize> = HashMap::new();
    for (k, v) in root {
        let Some(key) = s(k) else { continue };
        if key == "__metadata" {
            continue;
        }
        let descriptors: Vec<&str> = key.split(", ").map(str::trim).collect();
        let Some(name) = descriptors.first().and_then(|d| descriptor_name(d)) else { continue };
        let version = s(&v["version"]).unwrap_or_default();
        let deps: Vec<(String, String)> = ["dependencies", "optionalDependencies"]
            .iter()
            .filter_map(|d| v[*d].as_hash())
            .flat_map(|h| h.iter())
            .filter_map(|(n, r)| Some((s(n)?, s(r)?)))
            .collect();
        let idx = entries.len();
        entries.push(Entry { name: name.to_owned(), version, deps });
        soft.push(s(&v["linkType"]).as_deref() == Some("soft"));
        ws_label.push(
            s(&v["resolution"])
                .and_then(|r| r.split_once("@workspace:").map(|(_, p)| p.to_owned()))
                .unwrap_or_else(|| ".".to_owned()),
        );
        for d in descriptors {
            by_spec.insert(d.to_owned(), idx);
        }
    }
    Berry { entries, soft, ws_label, by_spec }
}

fn parse_berry(text: &str, path: &str, package_json: Option<&Value>) -> Result<Vec<Package>, LockfileError> {
    use yaml_rust2::Yaml;
    let docs = crate::yaml::load(text).map_err(|e| LockfileError::Syntax {
        path: path.to_owned(),
        line: e.line,
        message: e.message,
    })?;
    let Some(root) = docs.first().and_then(Yaml::as_hash) else {
        return Err(LockfileError::Format { path: path.to_owned(), message: "an empty yarn lockfile".into() });
    };
    let Berry { entries, soft, ws_label, by_spec } = read_berry(root);
    let lookup = |name: &str, range: &str| -> Option<usize> {
        by_spec.get(&format!("{name}@{range}")).or_else(|| by_spec.get(&format!("{name}@npm:{range}"))).copied()
    };
    let dev_roots: Vec<String> = package_json
        .and_then(|p| p.get("devDependencies"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut paths: Vec<Vec<Vec<String>>> = vec![Vec::new(); entries.len()];
    let mut prod = vec![false; entries.len()];
    let mut expanded: std::collections::HashSet<(usize, bool, usize)> = std::collections::HashSet::new();
    let mut queue: VecDeque<(usize, Vec<String>, bool, usize)> = VecDeque::new();
    let mut workspaces: Vec<std::collections::BTreeSet<String>> = vec![Default::default(); entries.len()];
    for (i, is_soft) in soft.iter().enumerate() {
        if *is_soft {
            for (n, r) in &entries[i].deps {
                if let Some(t) = lookup(n, r) {
                    queue.push_back((t, vec![n.clone()], dev_roots.contains(n), i));
                }
            }
        }
    }
    while let Some((idx, trail, dev, root)) = queue.pop_front() {
        workspaces[idx].insert(ws_label[root].clone());
        if paths[idx].len() < MAX_PATHS && !paths[idx].contains(&trail) {
            paths[idx].push(trail.clone());
        }
        if !dev {
            prod[idx] = true;
        }
        if !expanded.insert((idx, dev, root)) || trail.len() >= 64 {
            continue;
        }
        for (n, r) in &entries[idx].deps {
            if let Some(t) = lookup(n, r) {
                let mut next = trail.clone();
                next.push(n.clone());
                queue.push_back((t, next, dev, root));
            }
        }
    }
    // One package per (name, version): a patched variant (`patch:` protocol) is the same code.
    let mut merged = Merger::default();
    for (i, e) in entries.into_iter().enumerate() {
        if soft[i] || e.version.is_empty() || e.version.ends_with("-use.local") {
            continue;
        }
        let found = std::mem::take(&mut paths[i]);
        let dev = !found.is_empty() && !prod[i];
        let ws: Vec<String> = std::mem::take(&mut workspaces[i]).into_iter().collect();
        merged.add_in(&e.name, &e.version, dev, found, &ws);
    }
    Ok(merged.finish())
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
    fn berry_workspaces_and_protocols() {
        let lock = "__metadata:\n  version: 8\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n  resolution: \"app@workspace:.\"\n  dependencies:\n    \"@s/a\": \"npm:^1.0.0\"\n    mocha: \"npm:^8.0.0\"\n  languageName: unknown\n  linkType: soft\n\n\"@s/a@npm:^1.0.0, @s/a@npm:^1.1.0\":\n  version: 1.2.0\n  resolution: \"@s/a@npm:1.2.0\"\n  dependencies:\n    qs: \"npm:^6.0.0\"\n  languageName: node\n  linkType: hard\n\n\"qs@npm:^6.0.0\":\n  version: 6.7.0\n  resolution: \"qs@npm:6.7.0\"\n  languageName: node\n  linkType: hard\n\n\"mocha@npm:^8.0.0\":\n  version: 8.0.0\n  resolution: \"mocha@npm:8.0.0\"\n  languageName: node\n  linkType: hard\n";
        let pj = json!({"devDependencies": {"mocha": "^8.0.0"}});
        let pkgs = parse(lock, "yarn.lock", Some(&pj)).unwrap();
        assert_eq!(pkgs.len(), 3, "the workspace itself is not a package");
        assert!(pkgs.iter().all(|p| p.workspaces == vec![".".to_string()]), "{pkgs:?}");
        let qs = pkgs.iter().find(|p| p.name == "qs").unwrap();
        assert_eq!(qs.paths[0], vec!["@s/a".to_string(), "qs".to_string()]);
        assert!(!qs.dev);
        assert!(pkgs.iter().find(|p| p.name == "mocha").unwrap().dev);
    }

    #[test]
    fn broken_and_berry_files_are_errors() {
        let e = parse("qs@^6.0.0\n  version \"1\"\n", "yarn.lock", None).unwrap_err().to_string();
        assert!(e.starts_with("yarn.lock:1:"), "{e}");
        let e = parse("qs@^6.0.0:\n  resolved \"x\"\n", "yarn.lock", None).unwrap_err().to_string();
        assert!(e.contains("has no version"), "{e}");
        let e = parse("__metadata:\n  version: 6\n\"a@npm:1\": [\n", "yarn.lock", None).unwrap_err().to_string();
        assert!(e.starts_with("yarn.lock:"), "{e}");
    }
}
