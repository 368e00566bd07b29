//! bun `bun.lock` (text lockfile, JSON with trailing commas): `workspaces` name the roots with
//! their dependencies, `packages` maps install paths (`name`, `parent/name`) to
//! `["name@version", registry, {dependencies}, integrity]`.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::{LockfileError, Merger, Package, MAX_PATHS};

/// Removes the trailing commas JSON does not allow; keeps every newline, so lines still match.
fn strip_trailing_commas(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let (mut in_str, mut escaped) = (false, false);
    for (i, c) in src.char_indices() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            ',' => {
                let next = bytes[i + 1..].iter().find(|b| !b.is_ascii_whitespace());
                if !matches!(next, Some(b'}') | Some(b']')) {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// `@scope/name@1.0.0` → (`@scope/name`, `1.0.0`).
fn split_ident(s: &str) -> Option<(&str, &str)> {
    let at = s.get(1..)?.rfind('@')? + 1;
    Some((&s[..at], &s[at + 1..]))
}

/// Node-style lookup of `dep` required from install path `from`.
fn resolve<'a>(pkgs: &'a serde_json::Map<String, Value>, from: &str, dep: &str) -> Option<&'a str> {
    let mut base = from.to_owned();
    loop {
        let candidate = if base.is_empty() { dep.to_owned() } else { format!("{base}/{dep}") };
        if let Some((k, _)) = pkgs.get_key_value(&candidate) {
            return Some(k.as_str());
        }
        if base.is_empty() {
            return None;
        }
        // Drop the last package name (two segments when scoped).
        let segs: Vec<&str> = base.split('/').collect();
        let cut = if segs.len() >= 2 && segs[segs.len() - 2].starts_with('@') { 2 } else { 1 };
        base = segs[..segs.len().saturating_sub(cut)].join("/");
    }
}

pub fn parse(src: &str, path: &str) -> Result<Vec<Package>, LockfileError> {
    let cleaned = strip_trailing_commas(src);
    let v: Value = serde_json::from_str(&cleaned).map_err(|e| LockfileError::Syntax {
        path: path.to_owned(),
        line: e.line(),
        message: e.to_string(),
    })?;
    let format = |m: &str| LockfileError::Format { path: path.to_owned(), message: m.to_owned() };
    let pkgs =
        v.get("packages").and_then(Value::as_object).ok_or_else(|| format("no `packages` object: not a bun.lock"))?;
    let mut roots: Vec<(String, bool, String)> = Vec::new();
    for (wpath, ws) in v.get("workspaces").and_then(Value::as_object).into_iter().flat_map(|m| m.iter()) {
        let label = if wpath.is_empty() { ".".to_owned() } else { wpath.clone() };
        for (section, dev) in [("dependencies", false), ("optionalDependencies", false), ("devDependencies", true)] {
            for name in ws.get(section).and_then(Value::as_object).into_iter().flat_map(|m| m.keys()) {
                roots.push((name.clone(), dev, label.clone()));
            }
        }
    }
    roots.sort_by_key(|r| r.1);
    let mut paths: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
    let mut prod: HashMap<&str, bool> = HashMap::new();
    let mut expanded: HashMap<(&str, bool, &str), ()> = HashMap::new();
    let mut workspaces: HashMap<&str, std::collections::BTreeSet<String>> = HashMap::new();
    let mut queue: VecDeque<(&str, Vec<String>, bool, &str)> = roots
        .iter()
        .filter_map(|(n, dev, ws)| {
            pkgs.get_key_value(n.as_str()).map(|(k, _)| (k.as_str(), vec![n.clone()], *dev, ws.as_str()))
        })
        .collect();
    while let Some((key, trail, dev, ws)) = queue.pop_front() {
        workspaces.entry(key).or_default().insert(ws.to_owned());
        let p = paths.entry(key).or_default();
        if p.len() < MAX_PATHS && !p.contains(&trail) {
            p.push(trail.clone());
        }
        if !dev {
            prod.insert(key, true);
        }
        if expanded.insert((key, dev, ws), ()).is_some() || trail.len() >= 64 {
            continue;
        }
        let meta = pkgs.get(key).and_then(|e| e.get(2));
        for section in ["dependencies", "optionalDependencies"] {
            for dep in meta.and_then(|m| m.get(section)).and_then(Value::as_object).into_iter().flat_map(|m| m.keys()) {
                if let Some(target) = resolve(pkgs, key, dep) {
                    let mut t = trail.clone();
                    t.push(dep.clone());
                    queue.push_back((target, t, dev, ws));
                }
            }
        }
    }
    let mut merged = Merger::default();
    for (key, entry) in pkgs {
        let Some(ident) = entry.get(0).and_then(Value::as_str) else { continue };
        let Some((name, version)) = split_ident(ident) else { continue };
        if version.contains(':') {
            continue; // workspace:, link:, file:, github: …
        }
        let dev = paths.contains_key(key.as_str()) && !prod.contains_key(key.as_str());
        let wsl: Vec<String> = workspaces.remove(key.as_str()).map(|s| s.into_iter().collect()).unwrap_or_default();
        merged.add_in(name, version, dev, paths.remove(key.as_str()).unwrap_or_default(), &wsl);
    }
    Ok(merged.finish())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LOCK: &str = r#"{
  "lockfileVersion": 1,
  "workspaces": {
    "": {
      "name": "app",
      "dependencies": { "express": "^4.0.0", },
      "devDependencies": { "@s/tool": "^1.0.0", },
    },
  },
  "packages": {
    "express": ["express@4.17.1", "", { "dependencies": { "qs": "6.7.0" } }, "sha512-x"],
    "express/qs": ["qs@6.7.0", "", {}, "sha512-y"],
    "qs": ["qs@6.11.0", "", {}, "sha512-z"],
    "@s/tool": ["@s/tool@1.0.0", "", { "dependencies": { "qs": "^6.11.0" } }, "sha512-w"],
    "app-lib": ["app-lib@workspace:packages/lib"],
  }
}
"#;

    #[test]
    fn nested_paths_dev_and_trailing_commas() {
        let pkgs = parse(LOCK, "bun.lock").unwrap();
        assert_eq!(pkgs.len(), 4);
        let nested = pkgs.iter().find(|p| p.name == "qs" && p.version == "6.7.0").unwrap();
        assert_eq!(nested.paths[0], vec!["express".to_string(), "qs".to_string()]);
        assert_eq!(nested.workspaces, vec![".".to_string()]);
        assert!(!nested.dev);
        let hoisted = pkgs.iter().find(|p| p.name == "qs" && p.version == "6.11.0").unwrap();
        assert!(hoisted.dev);
        assert_eq!(hoisted.paths[0], vec!["@s/tool".to_string(), "qs".to_string()]);
        assert_eq!(strip_trailing_commas("{\"a\": \"x,}\", \"b\": [1,],}"), "{\"a\": \"x,}\", \"b\": [1]}");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("{\n  \"packages\": {\n    \"a\": [\n", "bun.lock").unwrap_err().to_string();
        assert!(e.starts_with("bun.lock:4:"), "{e}");
        assert!(parse("{\"lockfileVersion\": 1}", "bun.lock").unwrap_err().to_string().contains("no `packages`"));
    }
}
