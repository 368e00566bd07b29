//! The app's surface as its answers show it: its server stacks and the files it really serves.
//!
//! Some probe rules judge a path by its looks (`probe::SERVABLE_RULES`): a `.jsp` page, `/cgi-bin/`,
//! a download named `….tar.gz`. Such a path is no probe when the app's own stack serves it or when
//! the app hands it, with success, to many clients. `[detect] stack` declares stacks; `auto` also
//! learns them from the answers:
//!
//! - the app's own headers before Kevlar strips them (`X-Powered-By: PHP/8.3`, `Server: Jetty`,
//!   `X-AspNet-Version`) and the session cookies it sets (`JSESSIONID`, `PHPSESSID`,
//!   `ASP.NET_SessionId`, `connect.sid`);
//! - a stack's script extensions answered 2xx: 3 distinct paths, for 2 distinct clients; not
//!   once the headers showed a Node app, and never again once scripts of two different stacks
//!   were answered 2xx (a catch-all route answers everything; then only headers teach).
//!
//! Any path a servable rule flagged becomes the app's own once it was answered 2xx to
//! [`SERVED_CLIENTS`] distinct clients (a leaked backup is fetched by its finder, a download by
//! many). Everything is bounded, in memory, and learned again after a restart.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;

use http::HeaderMap;
use kevlar_detect::probe::{self, Stack, Stacks};
use kevlar_detect::{Family, Finding};
use serde_json::{json, Value};

/// Distinct clients a flagged path must be answered 2xx to before it is the app's own.
pub const SERVED_CLIENTS: usize = 3;
/// Distinct paths and clients of a stack's scripts answered 2xx before the stack is learned.
const STACK_PATHS: usize = 3;
const STACK_CLIENTS: usize = 2;
const MAX_CANDIDATES: usize = 8192;
const MAX_SERVED: usize = 4096;

pub struct Surface {
    declared: Stacks,
    auto: bool,
    learned: AtomicU16,
    state: Mutex<Learning>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct Learning {
    /// Per stack: distinct paths and clients its scripts were answered 2xx to.
    scripts: HashMap<Stack, (HashSet<u64>, HashSet<u64>)>,
    /// Scripts of two stacks were answered 2xx: a catch-all; extensions teach nothing more.
    catch_all: bool,
    /// Flagged paths answered 2xx, by the clients they were answered to.
    candidates: HashMap<u64, HashSet<u64>>,
    served: HashSet<u64>,
}

impl Surface {
    /// From `[detect] stack` (names checked by the config reader).
    pub fn new(names: &[String]) -> Surface {
        Surface {
            declared: names.iter().filter_map(|n| Stack::parse(n)).collect(),
            auto: names.iter().any(|n| n == "auto"),
            learned: AtomicU16::new(0),
            state: Mutex::new(Learning::default()),
            hasher: Default::default(),
        }
    }

    fn learned(&self) -> Stacks {
        Stacks(self.learned.load(Ordering::Relaxed))
    }

    fn learn(&self, s: Stack) {
        if !self.learned().contains(s) {
            self.learned.fetch_or(Stacks::NONE.with(s).0, Ordering::Relaxed);
            tracing::info!(stack = s.as_str(), "the app's stack learned from its answers");
        }
    }

    /// A finding of a servable rule on a path the app's own stack or its answers make its own.
    pub fn is_own(&self, f: &Finding, path: &str) -> bool {
        if f.family != Family::Probe || f.location != "path" || !probe::SERVABLE_RULES.contains(&f.rule) {
            return false;
        }
        self.owns(path)
    }

    /// The path is of the app's own stack, or the app serves it.
    pub fn owns(&self, path: &str) -> bool {
        if probe::owner(path).is_some_and(|s| self.declared.union(self.learned()).contains(s)) {
            return true;
        }
        let h = self.hasher.hash_one(path);
        self.state.lock().is_ok_and(|s| s.served.contains(&h))
    }

    /// Learns the stack from the head of any answer of the app (before Kevlar's header policy).
    pub fn learn_headers(&self, headers: &HeaderMap) {
        if !self.auto {
            return;
        }
        for name in ["x-powered-by", "server", "x-aspnet-version", "x-aspnetmvc-version"] {
            if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
                if let Some(s) = stack_of_header(name, v) {
                    self.learn(s);
                }
            }
        }
        for v in headers.get_all(http::header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let name = v.split('=').next().unwrap_or("").trim();
            if let Some(s) = stack_of_cookie(name) {
                self.learn(s);
            }
        }
    }

    /// A path a servable rule flagged was answered `status` to `client` (a keyed address).
    pub fn answered(&self, path: &str, client: impl std::hash::Hash, status: u16) {
        if !(200..300).contains(&status) {
            return;
        }
        let client = self.hasher.hash_one(client);
        let h = self.hasher.hash_one(path);
        let Ok(mut st) = self.state.lock() else { return };
        let st = &mut *st;
        if self.auto && !st.catch_all && !self.learned().contains(Stack::Node) {
            if let Some(stack) = probe::owner(path).filter(|s| !self.declared.union(self.learned()).contains(*s)) {
                let (paths, clients) = st.scripts.entry(stack).or_default();
                if paths.len() < STACK_PATHS {
                    paths.insert(h);
                }
                if clients.len() < STACK_CLIENTS {
                    clients.insert(client);
                }
                let (paths, clients) = (paths.len(), clients.len());
                if st.scripts.len() > 1 {
                    st.catch_all = true;
                    tracing::info!("scripts of several stacks answered 2xx: a catch-all route; stacks are learned from headers only");
                } else if paths >= STACK_PATHS && clients >= STACK_CLIENTS {
                    self.learn(stack);
                }
            }
        }
        if st.served.contains(&h) || st.served.len() >= MAX_SERVED {
            return;
        }
        if st.candidates.len() >= MAX_CANDIDATES && !st.candidates.contains_key(&h) {
            st.candidates.clear();
        }
        let clients = st.candidates.entry(h).or_default();
        clients.insert(client);
        if clients.len() >= SERVED_CLIENTS {
            st.candidates.remove(&h);
            st.served.insert(h);
        }
    }

    pub fn status(&self) -> Value {
        let names = |s: Stacks| s.iter().map(Stack::as_str).collect::<Vec<_>>();
        let (served, catch_all) = self.state.lock().map(|s| (s.served.len(), s.catch_all)).unwrap_or((0, false));
        json!({
            "auto": self.auto,
            "declared": names(self.declared),
            "learned": names(self.learned()),
            "served_paths": served,
            "catch_all": catch_all,
        })
    }
}

/// What a server header says of the stack behind it.
fn stack_of_header(name: &str, v: &str) -> Option<Stack> {
    let v = v.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| v.contains(w));
    match name {
        "x-aspnet-version" | "x-aspnetmvc-version" => Some(Stack::Dotnet),
        "x-powered-by" if has(&["express", "next.js", "nuxt", "koa", "hapi", "fastify", "sails"]) => Some(Stack::Node),
        "x-powered-by" if v.starts_with("php") || has(&["php/"]) => Some(Stack::Php),
        "x-powered-by" if has(&["servlet", "jsp", "jsf", "jboss", "wildfly", "tomcat", "glassfish"]) => {
            Some(Stack::Java)
        }
        "x-powered-by" if has(&["asp.net"]) => Some(Stack::Dotnet),
        "x-powered-by" if has(&["phusion passenger", "rails"]) => Some(Stack::Ruby),
        "server"
            if has(&[
                "apache-coyote",
                "tomcat",
                "jetty",
                "glassfish",
                "wildfly",
                "jboss",
                "undertow",
                "weblogic",
                "websphere",
            ]) =>
        {
            Some(Stack::Java)
        }
        "server" if has(&["microsoft-iis", "kestrel"]) => Some(Stack::Dotnet),
        "server" if has(&["gunicorn", "uvicorn", "werkzeug", "hypercorn", "daphne", "waitress", "tornadoserver"]) => {
            Some(Stack::Python)
        }
        "server" if has(&["puma", "unicorn", "thin", "webrick", "passenger"]) => Some(Stack::Ruby),
        _ => None,
    }
}

/// The stack whose session cookie this is.
fn stack_of_cookie(name: &str) -> Option<Stack> {
    match name {
        "JSESSIONID" => Some(Stack::Java),
        "PHPSESSID" | "laravel_session" => Some(Stack::Php),
        "ASP.NET_SessionId" | "ASPSESSIONID" => Some(Stack::Dotnet),
        n if n.starts_with(".AspNetCore.") || n.starts_with("ASPSESSIONID") => Some(Stack::Dotnet),
        "connect.sid" => Some(Stack::Node),
        "CFID" | "CFTOKEN" => Some(Stack::Coldfusion),
        "_rails_session" => Some(Stack::Ruby),
        "csrftoken" | "sessionid" => None,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &'static str) -> Finding {
        Finding {
            family: Family::Probe,
            rule,
            location: "path".into(),
            name: String::new(),
            excerpt: String::new(),
            score: 4,
            layers: Vec::new(),
            detail: String::new(),
        }
    }

    #[test]
    fn headers_teach_the_stack() {
        let s = Surface::new(&["auto".into()]);
        let f = finding("foreign_stack_script");
        assert!(!s.is_own(&f, "/shop/index.jsp"));
        let mut h = HeaderMap::new();
        h.append("set-cookie", "JSESSIONID=1; Path=/".parse().unwrap());
        s.learn_headers(&h);
        assert!(s.is_own(&f, "/shop/index.jsp"));
        assert!(!s.is_own(&f, "/index.php"), "PHP is still foreign");
        assert!(!s.is_own(&finding("sensitive_file"), "/WEB-INF/web.xml"));
    }

    #[test]
    fn declared_stacks_learn_nothing() {
        let s = Surface::new(&["node".into()]);
        let mut h = HeaderMap::new();
        h.insert("x-powered-by", "PHP/8.3".parse().unwrap());
        s.learn_headers(&h);
        assert!(!s.is_own(&finding("foreign_stack_script"), "/index.php"));
    }

    #[test]
    fn extensions_teach_unless_a_catch_all_answers() {
        let s = Surface::new(&["auto".into()]);
        let f = finding("foreign_stack_script");
        s.answered("/a.jsp", 1, 200);
        s.answered("/b.jsp", 1, 200);
        assert!(!s.is_own(&f, "/c.jsp"));
        s.answered("/c.jsp", 2, 200);
        assert!(s.is_own(&f, "/d.jsp"));

        let c = Surface::new(&["auto".into()]);
        c.answered("/a.jsp", 1, 200);
        c.answered("/admin.php", 1, 200);
        c.answered("/b.jsp", 2, 200);
        c.answered("/c.jsp", 3, 200);
        assert!(!c.is_own(&f, "/d.jsp"), "a catch-all teaches nothing");
        assert!(c.status()["catch_all"] == true);

        let n = Surface::new(&["auto".into()]);
        let mut h = HeaderMap::new();
        h.insert("x-powered-by", "Express".parse().unwrap());
        n.learn_headers(&h);
        for (i, p) in ["/a.jsp", "/b.jsp", "/c.jsp"].into_iter().enumerate() {
            n.answered(p, i as u64, 200);
        }
        assert!(!n.is_own(&f, "/d.jsp"), "a Node app's answers to .jsp are its catch-all's");
    }

    #[test]
    fn a_path_served_to_many_clients_is_the_apps_own() {
        let s = Surface::new(&["auto".into()]);
        let f = finding("backup_or_secret_file");
        let p = "/files/fex-20070729.tar.gz";
        s.answered(p, 1, 200);
        s.answered(p, 1, 200);
        s.answered(p, 2, 404);
        s.answered(p, 2, 200);
        assert!(!s.is_own(&f, p), "two clients are not enough");
        s.answered(p, 3, 206);
        assert!(s.is_own(&f, p));
        assert!(!s.is_own(&f, "/files/other.tar.gz"));
    }
}
