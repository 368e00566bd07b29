//! Lockfile parsers: each turns a file into the installed packages with how they got there.

pub mod npm;

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
}

impl Package {
    pub fn direct(&self) -> bool {
        self.paths.iter().any(|p| p.len() == 1)
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
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Syntax { path: String, line: usize, message: String },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    #[error("{0}: no lockfile found (looked for package-lock.json and npm-shrinkwrap.json)")]
    NotFound(String),
}

/// Finds the lockfile in `path` (a directory or a file) and reads it.
pub fn load(path: &Path) -> Result<Project, LockfileError> {
    let file = if path.is_dir() {
        ["npm-shrinkwrap.json", "package-lock.json"]
            .iter()
            .map(|n| path.join(n))
            .find(|p| p.exists())
            .ok_or_else(|| LockfileError::NotFound(path.display().to_string()))?
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| LockfileError::Read { path: file.display().to_string(), source })?;
    let packages = npm::parse(&text, &file.display().to_string())?;
    Ok(Project { lockfile: file, ecosystem: "npm", packages })
}
