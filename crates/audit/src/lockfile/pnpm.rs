//! pnpm `pnpm-lock.yaml`: lockfileVersion 5.x (`/name/1.0.0_peer` keys), 6.x (`/name@1.0.0(peer)`)
//! and 9.x (`packages` plus `snapshots`, keys `name@1.0.0(peer)`), including files holding more
//! than one YAML document. Dependency paths start at each importer (workspace member).

use std::collections::{HashMap, VecDeque};

use yaml_rust2::Yaml;

use super::{LockfileError, Merger, Package, MAX_PATHS};

struct Node {
    name: String,
    version: String,
    deps: Vec<String>,
    dev: Option<bool>,
}

fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Drops a peer suffix: `1.0.0_react@18` (v5), `1.0.0(react@18)` (v6, v9).
fn bare_version(v: &str) -> &str {
    let v = v.split('(').next().unwrap_or(v);
    v.split('_').next().unwrap_or(v)
}

/// (name, version-with-peers) from a package key of the given major version.
fn split_key(key: &str, major: u32) -> Option<(String, String)> {
    let k = key.strip_prefix('/').unwrap_or(key);
    if major < 6 {
        let i = k.rfind('/')?;
        return Some((k[..i].to_owned(), k[i + 1..].to_owned()));
    }
    let head = k.split('(').next().unwrap_or(k);
    let at = head.get(1..)?.rfind('@')? + 1;
    Some((k[..at].to_owned(), k[at + 1..].to_owned()))
}

/// The key a dependency `name: version` points to.
fn dep_key(name: &str, version: &str, major: u32) -> Option<String> {
    if version.starts_with("link:") || version.starts_with("file:") {
        return None;
    }
    if version.starts_with('/') {
        return Some(version.to_owned());
    }
    Some(match major {
        m if m < 6 => format!("/{name}/{version}"),
        6 => format!("/{name}@{version}"),
        _ => format!("{name}@{version}"),
    })
}

fn dep_version(v: &Yaml) -> Option<String> {
    text(v).or_else(|| text(&v["version"]))
}

pub fn parse(src: &str, path: &str) -> Result<Vec<Package>, LockfileError> {
    let docs = crate::yaml::load(src).map_err(|e| LockfileError::Syntax {
        path: path.to_owned(),
        line: e.line,
        message: e.message,
    })?;
    let mut nodes: HashMap<String, Node> = HashMap::new();
    let mut roots: Vec<(String, String, bool, String)> = Vec::new();
    let mut seen_doc = false;
    for doc in &docs {
        let Some(lv) = text(&doc["lockfileVersion"]) else { continue };
        seen_doc = true;
        let major: u32 = lv.split('.').next().and_then(|m| m.trim_start_matches('\'').parse().ok()).unwrap_or(0);
        if !(5..=9).contains(&major) {
            return Err(LockfileError::Format {
                path: path.to_owned(),
                message: format!("pnpm lockfileVersion {lv} is not supported (known: 5.x, 6.x, 9.x)"),
            });
        }
        read_packages(doc, major, &mut nodes);
        read_importers(doc, major, &mut roots);
    }
    if !seen_doc {
        return Err(LockfileError::Format {
            path: path.to_owned(),
            message: "no `lockfileVersion`: not a pnpm lockfile".into(),
        });
    }
    Ok(walk(&nodes, &mut roots))
}

/// Packages (v5/v6: with dependencies; v9: metadata here, dependencies under snapshots).
fn read_packages(doc: &Yaml, major: u32, nodes: &mut HashMap<String, Node>) {
    for section in ["packages", "snapshots"] {
        let Some(h) = doc[section].as_hash() else { continue };
        for (k, v) in h {
            let Some(key) = text(k) else { continue };
            let Some((name, version)) = split_key(&key, major) else { continue };
            let deps: Vec<String> = ["dependencies", "optionalDependencies"]
                .iter()
                .filter_map(|d| v[*d].as_hash())
                .flat_map(|m| m.iter())
                .filter_map(|(n, ver)| dep_key(&text(n)?, &dep_version(ver)?, major))
                .collect();
            let dev = v["dev"].as_bool();
            let node = nodes.entry(key).or_insert_with(|| Node { name, version, deps: Vec::new(), dev });
            node.deps.extend(deps);
            if node.dev.is_none() {
                node.dev = dev;
            }
        }
    }
}

/// The importers' direct dependencies (v5 without workspaces keeps them at the top level): the
/// roots of the walk, as (key, name, dev, importer).
fn read_importers(doc: &Yaml, major: u32, roots: &mut Vec<(String, String, bool, String)>) {
    let importers: Vec<(String, &Yaml)> = match doc["importers"].as_hash() {
        Some(h) => h.iter().map(|(k, v)| (text(k).unwrap_or_else(|| ".".into()), v)).collect(),
        None => vec![(".".to_owned(), doc)],
    };
    for (importer, imp) in importers {
        for (section, dev) in [("dependencies", false), ("optionalDependencies", false), ("devDependencies", true)] {
            let Some(h) = imp[section].as_hash() else { continue };
            for (n, v) in h {
                let (Some(name), Some(version)) = (text(n), dep_version(v)) else { continue };
                if let Some(k) = dep_key(&name, &version, major) {
                    roots.push((k, name, dev, importer.clone()));
                }
            }
        }
    }
}

/// Breadth-first from the importers (prod roots first, so that `dev` is only what prod never
/// reaches), then one package per (name, version) whatever its peer variants.
fn walk(nodes: &HashMap<String, Node>, roots: &mut [(String, String, bool, String)]) -> Vec<Package> {
    roots.sort_by_key(|r| r.2);
    let mut paths: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
    let mut prod_reached: HashMap<&str, bool> = HashMap::new();
    let mut queue: VecDeque<(&str, Vec<String>, bool, &str)> = roots
        .iter()
        .filter(|r| nodes.contains_key(&r.0))
        .map(|r| (r.0.as_str(), vec![r.1.clone()], r.2, r.3.as_str()))
        .collect();
    let mut expanded: HashMap<(&str, bool, &str), ()> = HashMap::new();
    let mut workspaces: HashMap<&str, std::collections::BTreeSet<String>> = HashMap::new();
    while let Some((key, trail, dev, importer)) = queue.pop_front() {
        let Some((k, node)) = nodes.get_key_value(key) else { continue };
        workspaces.entry(k.as_str()).or_default().insert(importer.to_owned());
        let p = paths.entry(k.as_str()).or_default();
        if p.len() < MAX_PATHS && !p.contains(&trail) {
            p.push(trail.clone());
        }
        if !dev {
            prod_reached.insert(k.as_str(), true);
        }
        if expanded.insert((k.as_str(), dev, importer), ()).is_some() || trail.len() >= 64 {
            continue;
        }
        for d in &node.deps {
            if let Some((dk, dn)) = nodes.get_key_value(d.as_str()) {
                let mut t = trail.clone();
                t.push(dn.name.clone());
                queue.push_back((dk.as_str(), t, dev, importer));
            }
        }
    }
    let mut merged = Merger::default();
    let mut keys: Vec<&String> = nodes.keys().collect();
    keys.sort();
    for key in keys {
        let node = &nodes[key];
        let reached = prod_reached.get(key.as_str()).copied().unwrap_or(false);
        let dev = node.dev.unwrap_or(!reached && paths.contains_key(key.as_str()));
        let ws: Vec<String> = workspaces.remove(key.as_str()).map(|s| s.into_iter().collect()).unwrap_or_default();
        merged.add_in(
            &node.name,
            bare_version(&node.version),
            dev,
            paths.remove(key.as_str()).unwrap_or_default(),
            &ws,
        );
    }
    merged.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn v5_v6_v9_keys() {
        assert_eq!(split_key("/@babel/parser/7.21.3", 5).unwrap(), ("@babel/parser".into(), "7.21.3".into()));
        assert_eq!(split_key("/rollup-plugin-x/1.0.0_rollup@3.0.0", 5).unwrap().1, "1.0.0_rollup@3.0.0");
        assert_eq!(
            split_key("/@scope/a@1.0.0(react@18.0.0)", 6).unwrap(),
            ("@scope/a".into(), "1.0.0(react@18.0.0)".into())
        );
        assert_eq!(split_key("qs@6.7.0", 9).unwrap(), ("qs".into(), "6.7.0".into()));
        assert_eq!(bare_version("1.0.0(react@18.0.0)"), "1.0.0");
        assert_eq!(bare_version("1.0.0_react@18.0.0"), "1.0.0");
    }

    #[test]
    fn a_v9_workspace_with_snapshots() {
        let src = "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      express:\n        specifier: ^4.0.0\n        version: 4.17.1\n    devDependencies:\n      mocha:\n        specifier: ^8.0.0\n        version: 8.0.0\n  packages/web:\n    dependencies:\n      qs:\n        specifier: 6.7.0\n        version: 6.7.0\npackages:\n  express@4.17.1:\n    resolution: {integrity: x}\n  qs@6.7.0:\n    resolution: {integrity: x}\n  mocha@8.0.0:\n    resolution: {integrity: x}\n  minimist@1.2.5:\n    resolution: {integrity: x}\nsnapshots:\n  express@4.17.1:\n    dependencies:\n      qs: 6.7.0\n  qs@6.7.0: {}\n  mocha@8.0.0:\n    dependencies:\n      minimist: 1.2.5\n  minimist@1.2.5: {}\n";
        let pkgs = parse(src, "pnpm-lock.yaml").unwrap();
        assert_eq!(pkgs.len(), 4);
        let qs = pkgs.iter().find(|p| p.name == "qs").unwrap();
        assert!(qs.direct() && !qs.dev);
        assert!(qs.paths.contains(&vec!["express".to_string(), "qs".to_string()]));
        assert_eq!(qs.workspaces, vec![".".to_string(), "packages/web".to_string()]);
        assert!(pkgs.iter().find(|p| p.name == "minimist").unwrap().dev);
    }

    #[test]
    fn v5_top_level_and_errors() {
        let src = "lockfileVersion: 5.4\nspecifiers:\n  a: ^1.0.0\ndependencies:\n  a: 1.0.0\npackages:\n  /a/1.0.0:\n    resolution: {integrity: x}\n    dependencies:\n      b: 2.0.0_c@1.0.0\n    dev: false\n  /b/2.0.0_c@1.0.0:\n    resolution: {integrity: x}\n    dev: false\n";
        let pkgs = parse(src, "pnpm-lock.yaml").unwrap();
        let b = pkgs.iter().find(|p| p.name == "b").unwrap();
        assert_eq!(b.version, "2.0.0");
        assert_eq!(b.paths[0], vec!["a".to_string(), "b".to_string()]);
        let e = parse("lockfileVersion: '9.0'\npackages:\n  - [\n", "p.yaml").unwrap_err().to_string();
        assert!(e.starts_with("p.yaml:"), "{e}");
        assert!(parse("lockfileVersion: '4.0'\n", "p.yaml").unwrap_err().to_string().contains("not supported"));
        assert!(parse("name: x\n", "p.yaml").is_err());
    }
}
