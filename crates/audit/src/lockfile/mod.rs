//! Lockfile parsers: each turns a file into the installed packages with how they got there.

pub mod bun;
pub mod cargo;
pub mod npm;
pub mod pnpm;
pub mod python;
pub mod yarn;

use std::path::{Path, PathBuf};

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Only needed for development (`npm install --omit=dev` leaves it out).
    pub dev: bool,
    /// The shortest dependency paths from the project (names, the project itself excluded).
    pub paths: Vec<Vec<String>>,
    /// The version ranges its dependents declare for it (`^6.7.0`), where the lockfile says
    /// (npm v2/v3); empty when unknown.
    pub ranges: Vec<String>,
    /// The workspaces (monorepo members) that pull it in, by their path in the repository
    /// (`.` for the root project); empty when the lockfile format does not say (npm v2/v3 does).
    pub workspaces: Vec<String>,
}

impl Package {
    pub fn direct(&self) -> bool {
        self.paths.iter().any(|p| p.len() == 1)
    }
}

/// The shortest dependency paths kept per package.
pub(crate) const MAX_PATHS: usize = 3;

/// Gathers lockfile entries into one package per (name, version) — peer variants, patched
/// variants and duplicate install locations are the same code: paths are merged (up to
/// [`MAX_PATHS`], shortest first) and a package is dev-only when every entry of it is.
#[derive(Default)]
pub(crate) struct Merger {
    out: Vec<Package>,
    index: std::collections::HashMap<(String, String), usize>,
}

impl Merger {
    pub fn add(&mut self, name: &str, version: &str, dev: bool, paths: Vec<Vec<String>>) {
        self.add_in(name, version, dev, paths, &[]);
    }

    /// As [`Merger::add`], also recording the workspaces that reach the entry.
    pub fn add_in(&mut self, name: &str, version: &str, dev: bool, paths: Vec<Vec<String>>, workspaces: &[String]) {
        let key = (name.to_owned(), version.to_owned());
        let i = match self.index.get(&key) {
            Some(&i) => {
                self.out[i].dev &= dev;
                i
            }
            None => {
                self.index.insert(key, self.out.len());
                self.out.push(Package {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    dev,
                    paths: Vec::new(),
                    ranges: Vec::new(),
                    workspaces: Vec::new(),
                });
                self.out.len() - 1
            }
        };
        let pkg = &mut self.out[i];
        for w in workspaces {
            if !pkg.workspaces.contains(w) {
                pkg.workspaces.push(w.clone());
            }
        }
        pkg.workspaces.sort();
        for p in paths {
            if pkg.paths.len() < MAX_PATHS && !pkg.paths.contains(&p) {
                pkg.paths.push(p);
            }
        }
    }

    /// A package no path reaches is listed under its own name.
    pub fn finish(mut self) -> Vec<Package> {
        for p in &mut self.out {
            if p.paths.is_empty() {
                p.paths.push(vec![p.name.clone()]);
            }
            p.paths.sort_by_key(Vec::len);
        }
        self.out
    }
}

/// A project's installed packages, from one lockfile.
#[derive(Debug, Clone)]
pub struct Project {
    pub lockfile: PathBuf,
    pub ecosystem: &'static str,
    pub packages: Vec<Package>,
}

/// Why a lockfile could not be read: the file, the line, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockfileError {
    #[error("{path}: cannot read")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Syntax { path: String, line: usize, message: String },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    #[error("{0}: no lockfile found (looked for npm-shrinkwrap.json, package-lock.json, pnpm-lock.yaml, yarn.lock, bun.lock, Cargo.lock, poetry.lock, uv.lock, requirements.txt)")]
    NotFound(String),
}

/// A TOML lockfile's syntax error with its line (Cargo.lock, poetry.lock, uv.lock).
pub(crate) fn toml_error(path: &str, text: &str, e: toml_edit::TomlError) -> LockfileError {
    let at = e.span().map_or(0, |s| s.start.min(text.len()));
    LockfileError::Syntax {
        path: path.to_owned(),
        line: text.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1,
        message: e.message().trim().to_owned(),
    }
}

/// bun.lock's `packages` values are arrays (`["name@1.0.0", …]`); npm's are objects.
fn packages_are_arrays(text: &str) -> bool {
    let Some(i) = text.find("\"packages\"") else { return false };
    let rest = &text[i + "\"packages\"".len()..];
    let Some(open) = rest.find('{') else { return false };
    let after_key = rest[open + 1..].trim_start();
    if !after_key.starts_with('"') {
        return false;
    }
    let Some(end) = after_key[1..].find('"') else { return false };
    let tail = after_key[end + 2..].trim_start();
    tail.strip_prefix(':').is_some_and(|t| t.trim_start().starts_with('['))
}

/// Finds the lockfile in `path` (a directory or a file) and reads it.
pub fn load(path: &Path) -> Result<Project, LockfileError> {
    let file = if path.is_dir() {
        [
            "npm-shrinkwrap.json",
            "package-lock.json",
            "pnpm-lock.yaml",
            "yarn.lock",
            "bun.lock",
            "Cargo.lock",
            "poetry.lock",
            "uv.lock",
            "requirements.txt",
        ]
        .iter()
        .map(|n| path.join(n))
        .find(|p| p.exists())
        .ok_or_else(|| LockfileError::NotFound(path.display().to_string()))?
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|source| LockfileError::Read { path: file.display().to_string(), source })?;
    let shown = file.display().to_string();
    // By content, not name: a JSON document is npm's, a `lockfileVersion:` line pnpm's, anything
    // else is read as yarn's.
    let is_json = text.trim_start().starts_with('{');
    let file_name = file.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
    if file_name.starts_with("requirements") && file_name.ends_with(".txt") {
        let packages = python::parse_requirements(&text, &shown)?;
        return Ok(Project { lockfile: file, ecosystem: "PyPI", packages });
    }
    // TOML lockfiles with `[[package]]` tables: poetry's has `[metadata]` with a content hash,
    // uv's a top-level `requires-python`, Cargo's neither.
    if !is_json && text.lines().any(|l| l.trim() == "[[package]]") {
        let poetry = text.lines().any(|l| l.trim() == "[metadata]") && text.contains("content-hash");
        let uv = text.lines().any(|l| l.starts_with("requires-python"));
        if poetry {
            let pyproject = file.parent().and_then(|d| std::fs::read_to_string(d.join("pyproject.toml")).ok());
            let packages = python::parse_poetry(&text, &shown, pyproject.as_deref())?;
            return Ok(Project { lockfile: file, ecosystem: "PyPI", packages });
        }
        if uv {
            let packages = python::parse_uv(&text, &shown)?;
            return Ok(Project { lockfile: file, ecosystem: "PyPI", packages });
        }
        let packages = cargo::parse(&text, &shown)?;
        return Ok(Project { lockfile: file, ecosystem: "crates.io", packages });
    }
    let is_pnpm = !is_json && text.lines().any(|l| l.starts_with("lockfileVersion:"));
    let is_bun = is_json && packages_are_arrays(&text);
    let packages = if is_bun {
        bun::parse(&text, &shown)?
    } else if is_pnpm {
        pnpm::parse(&text, &shown)?
    } else if !is_json {
        // yarn.lock does not say which packages are direct or dev-only; package.json does.
        let pj = file
            .parent()
            .map(|d| d.join("package.json"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        yarn::parse(&text, &shown, pj.as_ref())?
    } else {
        npm::parse(&text, &shown)?
    };
    Ok(Project { lockfile: file, ecosystem: "npm", packages })
}
