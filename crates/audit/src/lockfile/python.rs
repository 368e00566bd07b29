//! Python: `poetry.lock` (dev from `category`/`groups`, direct dependencies from the
//! `pyproject.toml` beside it), `uv.lock` (the project's own entries — editable, virtual,
//! directory sources — are the roots; `dev-dependencies` mark dev), and pinned
//! `requirements.txt` (`name==version`; every line direct and production). Names are
//! normalised (PEP 503) so `Django` and `django` are one package.

use std::collections::{HashMap, HashSet, VecDeque};

use super::{LockfileError, Merger, Package};
use crate::pep440::normalize_name;

/// Breadth-first dependency paths from `roots` (shortest first, at most `MAX_PATHS`).
fn paths(roots: &[String], edges: &HashMap<String, Vec<String>>) -> HashMap<String, Vec<Vec<String>>> {
    let mut out: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    let mut queue: VecDeque<Vec<String>> = roots.iter().map(|r| vec![r.clone()]).collect();
    let mut visits = 0usize;
    while let Some(p) = queue.pop_front() {
        visits += 1;
        if visits > 200_000 {
            break;
        }
        let Some(last) = p.last().cloned() else { continue };
        let entry = out.entry(last.clone()).or_default();
        if entry.len() >= super::MAX_PATHS {
            continue;
        }
        let first = entry.is_empty();
        entry.push(p.clone());
        if first {
            for d in edges.get(&last).into_iter().flatten() {
                if !p.contains(d) {
                    let mut next = p.clone();
                    next.push(d.clone());
                    queue.push_back(next);
                }
            }
        }
    }
    out
}

/// The names a `pyproject.toml` declares: (production, development).
fn pyproject_direct(pyproject: Option<&str>) -> (Vec<String>, Vec<String>) {
    let Some(doc) = pyproject.and_then(|t| t.parse::<toml_edit::DocumentMut>().ok()) else {
        return (Vec::new(), Vec::new());
    };
    let mut prod = Vec::new();
    let mut dev = Vec::new();
    let name_of_req = |r: &str| -> String {
        let end = r.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))).unwrap_or(r.len());
        normalize_name(&r[..end])
    };
    if let Some(a) = doc.get("project").and_then(|p| p.get("dependencies")).and_then(|d| d.as_array()) {
        prod.extend(a.iter().filter_map(|v| v.as_str()).map(name_of_req));
    }
    if let Some(t) = doc.get("tool").and_then(|t| t.get("poetry")) {
        if let Some(d) = t.get("dependencies").and_then(|d| d.as_table_like()) {
            prod.extend(d.iter().map(|(k, _)| normalize_name(k)).filter(|k| k != "python"));
        }
        if let Some(d) = t.get("dev-dependencies").and_then(|d| d.as_table_like()) {
            dev.extend(d.iter().map(|(k, _)| normalize_name(k)));
        }
        if let Some(groups) = t.get("group").and_then(|g| g.as_table_like()) {
            for (_, g) in groups.iter() {
                if let Some(d) = g.get("dependencies").and_then(|d| d.as_table_like()) {
                    dev.extend(d.iter().map(|(k, _)| normalize_name(k)));
                }
            }
        }
    }
    (prod, dev)
}

pub fn parse_poetry(text: &str, path: &str, pyproject: Option<&str>) -> Result<Vec<Package>, LockfileError> {
    let doc: toml_edit::DocumentMut = text.parse().map_err(|e| super::toml_error(path, text, e))?;
    let packages = doc.get("package").and_then(|p| p.as_array_of_tables()).ok_or_else(|| LockfileError::Format {
        path: path.to_owned(),
        message: "no [[package]] entries: not a poetry.lock".into(),
    })?;
    let mut entries = Vec::new();
    let mut edges: HashMap<String, Vec<String>> = HashMap::new();
    for t in packages.iter() {
        let (Some(name), Some(version)) =
            (t.get("name").and_then(|v| v.as_str()), t.get("version").and_then(|v| v.as_str()))
        else {
            return Err(LockfileError::Format {
                path: path.to_owned(),
                message: "a [[package]] lacks `name` or `version`".into(),
            });
        };
        let name = normalize_name(name);
        let category_dev = t.get("category").and_then(|v| v.as_str()) == Some("dev");
        let groups: Vec<String> = t
            .get("groups")
            .and_then(|g| g.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let dev = category_dev || (!groups.is_empty() && !groups.iter().any(|g| g == "main"));
        let deps: Vec<String> = t
            .get("dependencies")
            .and_then(|d| d.as_table_like())
            .map(|d| d.iter().map(|(k, _)| normalize_name(k)).collect())
            .unwrap_or_default();
        edges.insert(name.clone(), deps);
        entries.push((name, version.to_owned(), dev));
    }
    let (prod, dev_direct) = pyproject_direct(pyproject);
    let mut roots: Vec<String> = prod.iter().chain(dev_direct.iter()).cloned().collect();
    if roots.is_empty() {
        // Without pyproject.toml: the packages nothing depends on.
        let depended: HashSet<&String> = edges.values().flatten().collect();
        roots = entries.iter().map(|e| e.0.clone()).filter(|n| !depended.contains(n)).collect();
    }
    let mut found = paths(&roots, &edges);
    let mut m = Merger::default();
    for (name, version, dev) in &entries {
        m.add(name, version, *dev, found.remove(name).unwrap_or_default());
    }
    Ok(m.finish())
}

pub fn parse_uv(text: &str, path: &str) -> Result<Vec<Package>, LockfileError> {
    let doc: toml_edit::DocumentMut = text.parse().map_err(|e| super::toml_error(path, text, e))?;
    let packages = doc.get("package").and_then(|p| p.as_array_of_tables()).ok_or_else(|| LockfileError::Format {
        path: path.to_owned(),
        message: "no [[package]] entries: not a uv.lock".into(),
    })?;
    let dep_names = |v: Option<&toml_edit::Item>| -> Vec<String> {
        v.and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_inline_table().and_then(|t| t.get("name")).and_then(|n| n.as_str()))
                    .map(normalize_name)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut entries = Vec::new();
    let mut edges: HashMap<String, Vec<String>> = HashMap::new();
    let mut roots = Vec::new();
    let mut dev_roots = Vec::new();
    for t in packages.iter() {
        let Some(name) = t.get("name").and_then(|v| v.as_str()).map(normalize_name) else {
            return Err(LockfileError::Format { path: path.to_owned(), message: "a [[package]] lacks `name`".into() });
        };
        let version = t.get("version").and_then(|v| v.as_str()).unwrap_or("").to_owned();
        let local = t
            .get("source")
            .and_then(|s| s.as_inline_table())
            .is_some_and(|s| s.contains_key("editable") || s.contains_key("virtual") || s.contains_key("directory"));
        let mut deps = dep_names(t.get("dependencies"));
        if let Some(opt) = t.get("optional-dependencies").and_then(|o| o.as_table_like()) {
            for (_, v) in opt.iter() {
                deps.extend(dep_names(Some(v)));
            }
        }
        if local {
            roots.extend(deps.iter().cloned());
            if let Some(dd) = t.get("dev-dependencies").and_then(|o| o.as_table_like()) {
                for (_, v) in dd.iter() {
                    dev_roots.extend(dep_names(Some(v)));
                }
            }
        } else {
            entries.push((name.clone(), version));
        }
        edges.insert(name, deps);
    }
    let prod_paths = paths(&roots, &edges);
    let mut dev_paths = paths(&dev_roots, &edges);
    let mut m = Merger::default();
    for (name, version) in &entries {
        let (dev, p) = match prod_paths.get(name) {
            Some(p) => (false, p.clone()),
            None => (!dev_roots.is_empty() && dev_paths.contains_key(name), dev_paths.remove(name).unwrap_or_default()),
        };
        m.add(name, version, dev, p);
    }
    Ok(m.finish())
}

/// Pinned requirements: `name==version`, with extras, environment markers, hashes and line
/// continuations allowed. Unpinned lines and options (`-r`, `-e`, `--index-url`) are skipped.
pub fn parse_requirements(text: &str, path: &str) -> Result<Vec<Package>, LockfileError> {
    let mut m = Merger::default();
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut pinned = 0;
    for (n, raw) in joined.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            continue;
        }
        let spec = line.split(';').next().unwrap_or("").trim();
        let Some((name, version)) = spec.split_once("==") else { continue };
        let name = name.split('[').next().unwrap_or("").trim();
        let version = version.split_whitespace().next().unwrap_or("").trim_start_matches('=');
        if name.is_empty()
            || version.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(LockfileError::Syntax {
                path: path.to_owned(),
                line: n + 1,
                message: format!("`{spec}` is not `name==version`"),
            });
        }
        let name = normalize_name(name);
        m.add(&name, version, false, vec![vec![name.clone()]]);
        pinned += 1;
    }
    if pinned == 0
        && !text.trim().is_empty()
        && !text.lines().all(|l| l.trim().is_empty() || l.trim().starts_with(['#', '-']))
    {
        return Err(LockfileError::Format {
            path: path.to_owned(),
            message: "no pinned requirement (`name==version`)".into(),
        });
    }
    Ok(m.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poetry_with_pyproject() {
        let lock = r#"
[[package]]
name = "Django"
version = "4.2.1"
category = "main"

[package.dependencies]
asgiref = ">=3.6.0,<4"

[[package]]
name = "asgiref"
version = "3.7.2"
category = "main"

[[package]]
name = "pytest"
version = "7.0.0"
category = "dev"

[metadata]
lock-version = "1.1"
content-hash = "x"
"#;
        let pyproject = "[tool.poetry.dependencies]\npython = \"^3.10\"\ndjango = \"^4.2\"\n[tool.poetry.group.dev.dependencies]\npytest = \"*\"\n";
        let p = parse_poetry(lock, "poetry.lock", Some(pyproject)).unwrap();
        let a = p.iter().find(|x| x.name == "asgiref").unwrap();
        assert_eq!(a.paths[0], vec!["django".to_owned(), "asgiref".to_owned()]);
        assert!(!a.dev);
        assert!(p.iter().find(|x| x.name == "pytest").unwrap().dev);
        assert!(p.iter().find(|x| x.name == "django").unwrap().direct());
    }

    #[test]
    fn uv_roots_and_dev() {
        let lock = r#"
version = 1
requires-python = ">=3.12"

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }
dependencies = [{ name = "requests" }]

[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "requests"
version = "2.31.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "urllib3" }]

[[package]]
name = "urllib3"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pytest"
version = "8.0.0"
source = { registry = "https://pypi.org/simple" }
"#;
        let p = parse_uv(lock, "uv.lock").unwrap();
        assert_eq!(p.len(), 3);
        let u = p.iter().find(|x| x.name == "urllib3").unwrap();
        assert_eq!(u.paths[0], vec!["requests".to_owned(), "urllib3".to_owned()]);
        assert!(!u.dev);
        assert!(p.iter().find(|x| x.name == "pytest").unwrap().dev);
    }

    #[test]
    fn requirements() {
        let text = "# pinned\nDjango==4.2.1 \\\n    --hash=sha256:abc\nrequests[socks]==2.31.0 ; python_version >= '3.8'\n-r other.txt\nflask>=2\n";
        let p = parse_requirements(text, "requirements.txt").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "django");
        assert_eq!(p[0].version, "4.2.1");
        assert_eq!(p[1].name, "requests");
        let e = parse_requirements("bad name==1.0\n", "requirements.txt").unwrap_err().to_string();
        assert!(e.starts_with("requirements.txt:1:"), "{e}");
    }
}
