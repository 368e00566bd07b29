//! The registry a project installs from, as npm decides it: `npm_config_registry` in the
//! environment, then the project's `.npmrc`, then the user's; `@scope:registry` lines per scope;
//! `//host/path/:_authToken` per registry (`${VAR}` expanded).

use std::path::Path;

use crate::{Packument, UpdateError};

pub const DEFAULT: &str = "https://registry.npmjs.org/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registries {
    pub default: String,
    pub scopes: Vec<(String, String)>,
    tokens: Vec<(String, String)>,
}

fn expand(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(j) => {
                out.push_str(&std::env::var(&rest[i + 2..i + 2 + j]).unwrap_or_default());
                rest = &rest[i + 3 + j..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn slash(u: &str) -> String {
    if u.ends_with('/') {
        u.to_owned()
    } else {
        format!("{u}/")
    }
}

impl Registries {
    /// Reads the `.npmrc` files that apply to `project`.
    pub fn for_project(project: &Path) -> Registries {
        let mut r = Registries { default: DEFAULT.into(), scopes: Vec::new(), tokens: Vec::new() };
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        // Lowest precedence first; later files override.
        for file in home.iter().map(|h| h.join(".npmrc")).chain(std::iter::once(project.join(".npmrc"))) {
            if let Ok(text) = std::fs::read_to_string(&file) {
                r.read(&text);
            }
        }
        if let Ok(reg) = std::env::var("npm_config_registry").or_else(|_| std::env::var("NPM_CONFIG_REGISTRY")) {
            if !reg.is_empty() {
                r.default = slash(&reg);
            }
        }
        r
    }

    /// The registries one `.npmrc` text names (over the defaults).
    pub fn parse(text: &str) -> Registries {
        let mut r = Registries { default: DEFAULT.into(), scopes: Vec::new(), tokens: Vec::new() };
        r.read(text);
        r
    }

    pub fn read(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else { continue };
            let (k, v) = (k.trim(), expand(v.trim().trim_matches('"')));
            if k == "registry" {
                self.default = slash(&v);
            } else if let Some(scope) = k.strip_suffix(":registry").filter(|s| s.starts_with('@')) {
                self.scopes.retain(|(s, _)| s != scope);
                self.scopes.push((scope.to_owned(), slash(&v)));
            } else if let Some(prefix) = k.strip_suffix(":_authToken").filter(|p| p.starts_with("//")) {
                self.tokens.retain(|(p, _)| p != prefix);
                self.tokens.push((prefix.to_owned(), v));
            }
        }
    }

    /// The registry for a package name.
    pub fn registry_for(&self, name: &str) -> &str {
        name.split_once('/')
            .filter(|(s, _)| s.starts_with('@'))
            .and_then(|(scope, _)| self.scopes.iter().find(|(s, _)| s == scope))
            .map_or(self.default.as_str(), |(_, r)| r.as_str())
    }

    fn token_for(&self, registry: &str) -> Option<&str> {
        let nohttp = registry.split_once(':').map_or(registry, |(_, rest)| rest);
        self.tokens
            .iter()
            .filter(|(p, _)| nohttp.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, t)| t.as_str())
    }

    /// The full packument of `name` (with `time`, for ages).
    pub fn fetch(&self, agent: &ureq::Agent, name: &str) -> Result<Packument, UpdateError> {
        let registry = self.registry_for(name);
        let url = format!("{registry}{}", name.replace('/', "%2F"));
        let mut req = agent.get(&url).set("Accept", "application/json");
        if let Some(t) = self.token_for(registry) {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let err =
            |message: String| UpdateError::Registry { registry: registry.to_owned(), name: name.to_owned(), message };
        let body = match req.call() {
            Ok(r) => r.into_string().map_err(|e| err(e.to_string()))?,
            Err(ureq::Error::Status(404, _)) => return Err(err("not in this registry".into())),
            Err(ureq::Error::Status(code, _)) => return Err(err(format!("HTTP {code}"))),
            Err(ureq::Error::Transport(t)) => return Err(err(t.kind().to_string())),
        };
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| err(format!("not a package document: {e}")))?;
        Ok(Packument::parse(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_tokens_and_defaults() {
        let mut r = Registries { default: DEFAULT.into(), scopes: Vec::new(), tokens: Vec::new() };
        std::env::set_var("KEVLAR_TEST_NPM_TOKEN", "t0k");
        r.read("# comment\nregistry=http://127.0.0.1:4873\n@corp:registry = https://npm.corp.example/api/\n//npm.corp.example/api/:_authToken=${KEVLAR_TEST_NPM_TOKEN}\n");
        assert_eq!(r.registry_for("left-pad"), "http://127.0.0.1:4873/");
        assert_eq!(r.registry_for("@corp/ui"), "https://npm.corp.example/api/");
        assert_eq!(r.registry_for("@other/x"), "http://127.0.0.1:4873/");
        assert_eq!(r.token_for("https://npm.corp.example/api/"), Some("t0k"));
        assert_eq!(r.token_for("http://127.0.0.1:4873/"), None);
    }
}
