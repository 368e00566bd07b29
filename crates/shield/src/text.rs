//! Fields that carry prose or code all day (a comment, a bio, a snippet) need more evidence than
//! an `id`: there, the shapes of SQL, shell, path and template syntax that ordinary writing also
//! forms (`price >= 10 and price <= 20`, `a || b; return`, `../images`, `<%= render %>`) are not
//! findings. Only certain ones are (score [`STRONG`] and up: a `UNION SELECT`, `' or '1'='1`, a
//! climb to `/etc/passwd`); other families (XSS above all) are judged as anywhere.
//!
//! Which fields: `[[detect.text]]` (path prefix and argument names), and, with
//! `[detect] learn_text` (on by default), the fields where such weak shapes keep coming from
//! [`TEXT_CLIENTS`] different clients in requests with nothing else found, each answered 2xx.
//! A field is its route's template plus its location (`POST /posts/{n}` `body.comment`).
//! Bounded, in memory.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Mutex;

use kevlar_config::TextField;
use kevlar_detect::{Family, Finding};

/// Scores from here up are findings in a free-text field too.
pub const STRONG: u32 = 9;
/// Different clients whose weak findings in one field were answered 2xx before it is free text.
pub const TEXT_CLIENTS: usize = 5;
const MAX_CANDIDATES: usize = 8192;
const MAX_LEARNED: usize = 4096;

/// The families whose weaker shapes prose and code also form.
const PRONE: [Family; 4] = [Family::Sqli, Family::Cmdi, Family::Traversal, Family::Ssti];

pub struct FreeText {
    configured: Vec<TextField>,
    learn: bool,
    state: Mutex<Learning>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct Learning {
    candidates: HashMap<u64, HashSet<u64>>,
    learned: HashSet<u64>,
}

/// A finding that ordinary writing can produce.
pub fn weak(f: &Finding) -> bool {
    f.score < STRONG && PRONE.contains(&f.family)
}

fn names(a: &str, f: &Finding) -> bool {
    a == f.name
        || a == f.location
        || f.location.strip_prefix("args.").or_else(|| f.location.strip_prefix("body.")) == Some(a)
}

impl FreeText {
    pub fn new(configured: &[TextField], learn: bool) -> FreeText {
        FreeText { configured: configured.to_vec(), learn, state: Mutex::default(), hasher: Default::default() }
    }

    /// The field's key: the request's route template and the finding's location.
    pub fn key(&self, method: &str, path: &str, f: &Finding) -> u64 {
        self.hasher.hash_one((method, crate::routes::template(path), f.location.as_str()))
    }

    /// The finding is weak and sits in a field that carries prose or code.
    pub fn is_text(&self, method: &str, path: &str, f: &Finding) -> bool {
        if !weak(f) || f.location == "path" || f.location.starts_with("header.") {
            return false;
        }
        let configured = self
            .configured
            .iter()
            .any(|t| t.path.as_deref().is_none_or(|p| path.starts_with(p)) && t.args.iter().any(|a| names(a, f)));
        configured
            || self.learn
                && self
                    .state
                    .lock()
                    .is_ok_and(|s| !s.learned.is_empty() && s.learned.contains(&self.key(method, path, f)))
    }

    /// Whether a request's findings may teach: learning is on and every one of them is weak.
    pub fn teaches(&self, findings: &[Finding]) -> bool {
        self.learn && !findings.is_empty() && findings.iter().all(weak)
    }

    /// The app answered `status` to `client` for a request whose only findings were weak, in
    /// these fields.
    pub fn answered(&self, fields: &[u64], client: impl std::hash::Hash, status: u16) {
        if !(200..300).contains(&status) {
            return;
        }
        let client = self.hasher.hash_one(client);
        let Ok(mut st) = self.state.lock() else { return };
        for k in fields {
            if st.learned.contains(k) || st.learned.len() >= MAX_LEARNED {
                continue;
            }
            if st.candidates.len() >= MAX_CANDIDATES && !st.candidates.contains_key(k) {
                st.candidates.clear();
            }
            let clients = st.candidates.entry(*k).or_default();
            clients.insert(client);
            if clients.len() >= TEXT_CLIENTS {
                st.candidates.remove(k);
                st.learned.insert(*k);
                tracing::info!("a field that carries prose or code learned; weak shapes there are no longer findings");
            }
        }
    }

    pub fn learned(&self) -> usize {
        self.state.lock().map(|s| s.learned.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(family: Family, score: u32, location: &str) -> Finding {
        Finding {
            family,
            rule: "r",
            location: location.into(),
            name: location.rsplit('.').next().unwrap_or("").into(),
            excerpt: String::new(),
            score,
            layers: Vec::new(),
            detail: String::new(),
        }
    }

    #[test]
    fn configured_fields_need_strong_evidence() {
        let t = FreeText::new(&[TextField { path: Some("/posts".into()), args: vec!["comment".into()] }], false);
        let weak_sql = finding(Family::Sqli, 8, "body.comment");
        assert!(t.is_text("POST", "/posts/1", &weak_sql));
        assert!(!t.is_text("POST", "/users", &weak_sql), "another path");
        assert!(!t.is_text("POST", "/posts/1", &finding(Family::Sqli, 10, "body.comment")), "strong");
        assert!(!t.is_text("POST", "/posts/1", &finding(Family::Xss, 8, "body.comment")), "XSS is judged as anywhere");
        assert!(!t.is_text("POST", "/posts/1", &finding(Family::Sqli, 8, "body.id")), "another field");
    }

    #[test]
    fn learned_from_five_clients_answered_2xx() {
        let t = FreeText::new(&[], true);
        let f = finding(Family::Sqli, 8, "args.msg");
        let k = t.key("GET", "/feedback/12", &f);
        for c in 0..4 {
            t.answered(&[k], c, 200);
        }
        t.answered(&[k], 9, 403);
        assert!(!t.is_text("GET", "/feedback/13", &f));
        t.answered(&[k], 4, 200);
        assert!(t.is_text("GET", "/feedback/13", &f), "the same route template");
        assert!(!t.is_text("GET", "/feedback/13", &finding(Family::Sqli, 8, "args.id")));
        assert!(!t.is_text("POST", "/feedback/13", &f), "another method");
        assert!(!t.teaches(&[f.clone(), finding(Family::Sqli, 10, "args.id")]), "a strong finding teaches nothing");
        assert!(t.teaches(&[f]));
    }
}
