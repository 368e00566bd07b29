//! npm `package-lock.json` (lockfileVersion 1, 2, 3) and `npm-shrinkwrap.json`.
//!
//! v2/v3 list every install location under `packages` (`node_modules/a/node_modules/b`); the
//! dependency paths follow Node's resolution (the nearest `node_modules` upwards). v1 nests
//! `dependencies` and names each package's needs under `requires`.

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};

use super::{LockfileError, Merger, Package, MAX_PATHS};

fn syntax(path: &str, text: &str, e: &serde_json::Error) -> LockfileError {
    let _ = text;
    LockfileError::Syntax { path: path.to_owned(), line: e.line(), message: e.to_string() }
}

pub fn parse(text: &str, path: &str) -> Result<Vec<Package>, LockfileError> {
    let v: Value = serde_json::from_str(text).map_err(|e| syntax(path, text, &e))?;
    let format = |m: &str| LockfileError::Format { path: path.to_owned(), message: m.to_owned() };
    let root = v.as_object().ok_or_else(|| format("the lockfile is not a JSON object"))?;
    let lv = root.get("lockfileVersion").and_then(Value::as_u64);
    match lv {
        Some(2) | Some(3) => match root.get("packages").and_then(Value::as_object) {
            Some(pkgs) => Ok(parse_packages(pkgs)),
            None => Err(format("lockfileVersion 2/3 without a `packages` object")),
        },
        Some(1) | None if root.contains_key("dependencies") => Ok(parse_v1(root)),
        Some(n) => Err(format(&format!("lockfileVersion {n} is not supported (known: 1, 2, 3)"))),
        None => Err(format("no lockfileVersion and no dependencies: not a package-lock.json")),
    }
}

fn name_of(key: &str, entry: &Map<String, Value>) -> Option<String> {
    if let Some(i) = key.rfind("node_modules/") {
        return Some(key[i + "node_modules/".len()..].to_owned());
    }
    entry.get("name").and_then(Value::as_str).map(str::to_owned)
}

fn dep_names(entry: &Map<String, Value>, keys: &[&str]) -> Vec<String> {
    keys.iter().filter_map(|k| entry.get(*k).and_then(Value::as_object)).flat_map(|m| m.keys().cloned()).collect()
}

/// Node's resolution: `name` required from install location `from`.
fn resolve<'a>(pkgs: &'a Map<String, Value>, from: &str, name: &str) -> Option<&'a str> {
    let mut base = from.to_owned();
    loop {
        let candidate =
            if base.is_empty() { format!("node_modules/{name}") } else { format!("{base}/node_modules/{name}") };
        if let Some((k, _)) = pkgs.get_key_value(&candidate) {
            return Some(k.as_str());
        }
        if base.is_empty() {
            return None;
        }
        // Up one level: strip the last `node_modules/<name>` (scoped names have a slash).
        match base.rfind("/node_modules/") {
            Some(i) => base.truncate(i),
            None => base.clear(),
        }
    }
}

/// The entry at `key`, following a workspace link (`"link": true`) to the member's own entry.
fn entry_at<'a>(pkgs: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    let entry = pkgs.get(key)?.as_object()?;
    if entry.get("link").and_then(Value::as_bool) == Some(true) {
        return entry.get("resolved").and_then(Value::as_str).and_then(|r| pkgs.get(r)).and_then(Value::as_object);
    }
    Some(entry)
}

fn parse_packages(pkgs: &Map<String, Value>) -> Vec<Package> {
    // Breadth-first from the root (and workspace members) over resolved dependency edges.
    let mut paths: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
    let mut ranges: HashMap<&str, Vec<String>> = HashMap::new();
    // Which workspace each package is reached from: a second breadth-first walk per root.
    let mut workspaces: HashMap<&str, std::collections::BTreeSet<String>> = HashMap::new();
    let mut queue: VecDeque<(&str, Vec<String>)> = VecDeque::new();
    let roots: Vec<&str> = pkgs
        .iter()
        .filter(|(k, e)| k.is_empty() || (!k.contains("node_modules/") && e.as_object().is_some()))
        .map(|(k, _)| k.as_str())
        .collect();
    for r in &roots {
        queue.push_back((r, Vec::new()));
    }
    let mut steps = 0usize;
    while let Some((at, trail)) = queue.pop_front() {
        steps += 1;
        if steps > 2_000_000 {
            break;
        }
        let Some(entry) = entry_at(pkgs, at) else { continue };
        for dep in dep_names(entry, &["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"]) {
            let Some(target) = resolve(pkgs, at, &dep) else { continue };
            let declared = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"]
                .iter()
                .find_map(|k| entry.get(*k).and_then(|d| d.get(&dep)).and_then(Value::as_str));
            if let Some(r) = declared {
                let known = ranges.entry(target).or_default();
                if known.len() < 8 && !known.iter().any(|k| k == r) {
                    known.push(r.to_owned());
                }
            }
            let mut next = trail.clone();
            next.push(dep.clone());
            let known = paths.entry(target).or_default();
            if known.len() >= MAX_PATHS || known.iter().any(|p| p == &next) {
                continue;
            }
            let first_visit = known.is_empty();
            known.push(next.clone());
            if first_visit && next.len() < 64 {
                queue.push_back((target, next));
            }
        }
    }
    for r in &roots {
        let label = if r.is_empty() { ".".to_owned() } else { (*r).to_owned() };
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([*r]);
        while let Some(at) = queue.pop_front() {
            if seen.len() > 200_000 {
                break;
            }
            let Some(entry) = entry_at(pkgs, at) else { continue };
            let kinds: &[&str] = if at == *r {
                &["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"]
            } else {
                &["dependencies", "optionalDependencies", "peerDependencies"]
            };
            for dep in dep_names(entry, kinds) {
                let Some(target) = resolve(pkgs, at, &dep) else { continue };
                if !target.contains("node_modules/") {
                    continue; // another workspace member: counted as its own root
                }
                if seen.insert(target) {
                    workspaces.entry(target).or_default().insert(label.clone());
                    queue.push_back(target);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (key, entry) in pkgs {
        if key.is_empty() || !key.contains("node_modules/") {
            continue;
        }
        let Some(e) = entry.as_object() else { continue };
        if e.get("link").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let (Some(name), Some(version)) = (name_of(key, e), e.get("version").and_then(Value::as_str)) else { continue };
        let dev = e.get("dev").and_then(Value::as_bool).unwrap_or(false)
            || e.get("devOptional").and_then(Value::as_bool).unwrap_or(false);
        let mut p = paths.remove(key.as_str()).unwrap_or_default();
        if p.is_empty() {
            p.push(vec![name.clone()]);
        }
        p.sort_by_key(Vec::len);
        let r = ranges.remove(key.as_str()).unwrap_or_default();
        let ws = workspaces.remove(key.as_str()).map(|s| s.into_iter().collect()).unwrap_or_default();
        out.push(Package { name, version: version.to_owned(), dev, paths: p, ranges: r, workspaces: ws });
    }
    out
}

fn parse_v1(root: &Map<String, Value>) -> Vec<Package> {
    let mut merged = Merger::default();
    let mut stack: Vec<(&Map<String, Value>, Vec<String>)> = Vec::new();
    if let Some(deps) = root.get("dependencies").and_then(Value::as_object) {
        stack.push((deps, Vec::new()));
    }
    while let Some((deps, trail)) = stack.pop() {
        for (name, d) in deps {
            let Some(d) = d.as_object() else { continue };
            let Some(version) = d.get("version").and_then(Value::as_str) else { continue };
            let mut path = trail.clone();
            path.push(name.clone());
            merged.add(name, version, d.get("dev").and_then(Value::as_bool).unwrap_or(false), vec![path.clone()]);
            if let Some(nested) = d.get("dependencies").and_then(Value::as_object) {
                if path.len() < 64 {
                    stack.push((nested, path));
                }
            }
        }
    }
    merged.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const V3: &str = r#"{
      "name": "app", "lockfileVersion": 3, "requires": true,
      "packages": {
        "": {"name": "app", "dependencies": {"express": "^4.0.0"}, "devDependencies": {"jest": "^29.0.0"}},
        "node_modules/express": {"version": "4.17.1", "dependencies": {"qs": "6.7.0", "cookie": "0.4.0"}},
        "node_modules/express/node_modules/qs": {"version": "6.7.0"},
        "node_modules/qs": {"version": "6.11.0", "dev": true},
        "node_modules/cookie": {"version": "0.4.0"},
        "node_modules/jest": {"version": "29.0.0", "dev": true, "dependencies": {"qs": "^6.11.0"}},
        "node_modules/@scope/pkg": {"version": "1.0.0", "dev": true}
      }
    }"#;

    #[test]
    fn v3_packages_paths_and_dev() {
        let pkgs = parse(V3, "package-lock.json").unwrap();
        let get = |n: &str, v: &str| pkgs.iter().find(|p| p.name == n && p.version == v).unwrap().clone();
        let nested = get("qs", "6.7.0");
        assert_eq!(nested.paths, vec![vec!["express".to_string(), "qs".to_string()]]);
        assert!(!nested.dev);
        let hoisted = get("qs", "6.11.0");
        assert!(hoisted.dev);
        assert_eq!(hoisted.paths[0], vec!["jest".to_string(), "qs".to_string()]);
        assert!(get("express", "4.17.1").direct());
        assert_eq!(get("@scope/pkg", "1.0.0").name, "@scope/pkg");
        assert_eq!(pkgs.len(), 6);
    }

    #[test]
    fn v1_nesting() {
        let v1 = r#"{"name": "a", "lockfileVersion": 1, "dependencies": {
            "lodash": {"version": "4.17.20"},
            "request": {"version": "2.88.0", "requires": {"qs": "~6.5.2"}, "dependencies": {"qs": {"version": "6.5.2"}}},
            "mocha": {"version": "8.0.0", "dev": true}}}"#;
        let pkgs = parse(v1, "package-lock.json").unwrap();
        assert_eq!(pkgs.len(), 4);
        let qs = pkgs.iter().find(|p| p.name == "qs").unwrap();
        assert_eq!(qs.paths[0], vec!["request".to_string(), "qs".to_string()]);
        assert!(pkgs.iter().find(|p| p.name == "mocha").unwrap().dev);
    }

    #[test]
    fn bad_input_names_file_and_line() {
        let e =
            parse("{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n", "x/package-lock.json").unwrap_err().to_string();
        assert!(e.starts_with("x/package-lock.json:4:"), "{e}");
        let e = parse("{\"lockfileVersion\": 9, \"packages\": {}}", "p.json").unwrap_err().to_string();
        assert!(e.contains("lockfileVersion 9 is not supported"), "{e}");
        assert!(parse("[]", "p.json").is_err());
        assert!(parse("{\"lockfileVersion\": 3}", "p.json").is_err());
    }
}
