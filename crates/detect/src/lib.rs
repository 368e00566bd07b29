//! Kevlar's built-in detectors. Pure: a [`RequestView`] goes in, [`Finding`]s come out; no I/O,
//! no state between requests (counting and remembering happen downstream, in the shield).
//!
//! The request is taken apart into named values (`extract`), each value decoded (`normalize`),
//! and each family that applies to where the value came from looks at it, one module per family.
//! Anything that inspects requests — these detectors, a rule-set engine later — implements
//! [`Detector`], so the proxy calls them all the same way.
#![forbid(unsafe_code)]

pub mod body;
pub mod cmdi;
pub mod crlf;
pub mod extract;
pub mod java;
pub mod jndi;
pub mod normalize;
pub mod nosql;
pub mod pollution;
pub mod probe;
pub mod protocol;
pub mod sqli;
pub mod ssrf;
pub mod ssti;
pub mod tool;
pub mod traversal;
pub mod xss;
pub mod xxe;

use extract::{Part, Source};
use http::HeaderMap;
use kevlar_core::action;

/// An attack family. The names are the `kevlar.family` of events and the keys of per-family
/// settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Sqli,
    Xss,
    Traversal,
    Cmdi,
    Ssrf,
    Nosql,
    PrototypePollution,
    Ssti,
    Jndi,
    /// Serialized Java objects, gadget classes, OGNL, class-loader paths.
    Java,
    Xxe,
    Crlf,
    Probe,
    Tool,
    Protocol,
    /// What Kevlar cannot read, or reads only in part: a body past an inspection limit, an
    /// unknown encoding or charset, a decompression bomb. Deliberate more often than not.
    Evasion,
}

impl Family {
    pub const ALL: [Family; 16] = [
        Family::Sqli,
        Family::Xss,
        Family::Traversal,
        Family::Cmdi,
        Family::Ssrf,
        Family::Nosql,
        Family::PrototypePollution,
        Family::Ssti,
        Family::Jndi,
        Family::Java,
        Family::Xxe,
        Family::Crlf,
        Family::Probe,
        Family::Tool,
        Family::Protocol,
        Family::Evasion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Sqli => "sqli",
            Family::Xss => "xss",
            Family::Traversal => "traversal",
            Family::Cmdi => "cmdi",
            Family::Ssrf => "ssrf",
            Family::Nosql => "nosql",
            Family::PrototypePollution => "prototype_pollution",
            Family::Ssti => "ssti",
            Family::Jndi => "jndi",
            Family::Java => "java",
            Family::Xxe => "xxe",
            Family::Crlf => "crlf",
            Family::Probe => "probe",
            Family::Tool => "tool",
            Family::Protocol => "protocol",
            Family::Evasion => "evasion",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The event action a finding of this family becomes.
    pub fn action(self) -> &'static str {
        match self {
            Family::Probe => action::MALICIOUS_PROBE,
            Family::Tool => action::MALICIOUS_ATTACK_TOOL,
            Family::Evasion => action::MALICIOUS_EVASION,
            _ => action::MALICIOUS_ATTACK,
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of families, as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families(u32);

impl Families {
    pub const ALL: Families = Families((1 << 16) - 1);
    pub const NONE: Families = Families(0);

    pub fn contains(self, f: Family) -> bool {
        self.0 & f.bit() != 0
    }
    pub fn with(self, f: Family) -> Families {
        Families(self.0 | f.bit())
    }
    pub fn without(self, f: Family) -> Families {
        Families(self.0 & !f.bit())
    }
}

impl FromIterator<Family> for Families {
    fn from_iter<I: IntoIterator<Item = Family>>(iter: I) -> Self {
        iter.into_iter().fold(Families::NONE, Families::with)
    }
}

/// One thing a detector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub family: Family,
    /// The detector's rule, e.g. `union_select`, `event_handler`, `dotenv`.
    pub rule: &'static str,
    /// Where: `path`, `args.q`, `body.items[0].name`, `cookie.sid`, `header.user-agent`.
    pub location: String,
    /// The parameter's own name (what exclusions by argument name match).
    pub name: String,
    /// A short, printable excerpt of the decoded value; `[redacted]` for secrets' fields.
    pub excerpt: String,
    /// 1 (a hint) to 10 (certain).
    pub score: u32,
    /// The encodings undone before the value matched, outermost first (`percent`, `html_entity`,
    /// `js_escape`, `fullwidth`), one entry per layer.
    pub layers: Vec<&'static str>,
    /// What the family's reading saw, when it says more than the excerpt: SQL's token classes,
    /// the path a traversal resolves to. Empty for secrets' fields.
    pub detail: String,
}

pub use kevlar_core::RequestView;

/// Anything that inspects requests: the built-in detectors now, a rule-set engine later.
pub trait Detector: Send + Sync {
    fn name(&self) -> &'static str;
    /// Appends what it finds to `out`.
    fn inspect(&self, req: &RequestView<'_>, out: &mut Vec<Finding>);
}

#[derive(Debug, Clone)]
pub struct InspectConfig {
    pub families: Families,
    /// Headers inspected with every family besides User-Agent, Referer and X-Forwarded-Host.
    pub headers: Vec<http::HeaderName>,
    /// The app's own stacks, as configured (`[detect] stack`): their scripts and panels are not
    /// probes (`wp-login.php` on a PHP app, `.jsp` pages on a Java one).
    pub stacks: probe::Stacks,
}

impl Default for InspectConfig {
    fn default() -> Self {
        InspectConfig { families: Families::ALL, headers: Vec::new(), stacks: probe::Stacks::NONE }
    }
}

/// The built-in detectors.
pub struct Inspector {
    cfg: InspectConfig,
    tools: tool::ToolMatcher,
}

pub const MAX_FINDINGS: usize = 16;

/// Whether any family could match the (decoded) value. Letters, digits, blanks, `,._@`: no family
/// can match without one of the few words `plain_suspects` knows. Most real values leave here.
fn needs_look(v: &str) -> bool {
    if v.is_empty() {
        return false;
    }
    thread_local!(static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        b.clear();
        // One pass: lower-case into the buffer while checking that every byte is plain.
        let mut plain = true;
        b.extend(v.bytes().map(|c| {
            plain &= PLAIN[c as usize];
            c.to_ascii_lowercase()
        }));
        !plain || suspect(&b)
    })
}

/// Whether a raw form component (`a+b%2C+c`), once form-decoded, is certainly uninteresting:
/// ASCII-plain with none of the plain suspects. One pass decodes and lower-cases into a reused
/// buffer (the runs between `%` escapes by comparisons the compiler vectorises), then one SIMD
/// scan; no allocation. Anything else (`%` layers, non-ASCII, punctuation) answers `false` and
/// takes the full path.
fn raw_form_clean(raw: &[u8]) -> bool {
    thread_local!(static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        b.clear();
        b.reserve(raw.len());
        let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16)).map(|d| d as u8);
        let mut plain = true;
        let mut rest = raw;
        loop {
            let (run, escape) = match memchr::memchr(b'%', rest) {
                Some(at) => (&rest[..at], Some(&rest[at..])),
                None => (rest, None),
            };
            b.extend(run.iter().map(|&c| {
                let c = if c == b'+' { b' ' } else { c };
                plain &= plain_ascii(c);
                c.to_ascii_lowercase()
            }));
            let Some(e) = escape else { break };
            let (Some(h), Some(l)) = (hex(e.get(1)), hex(e.get(2))) else { return false };
            // A decoded `+` is a plus, not a blank: not plain.
            let c = h * 16 + l;
            plain &= plain_ascii(c);
            b.push(c.to_ascii_lowercase());
            rest = &e[3..];
        }
        plain && !suspect(&b)
    })
}

/// Whether a lower-cased plain value holds a suspect word: the words of four bytes and more in
/// one SIMD scan (four-byte fingerprints: ordinary text rarely even reaches verification), the
/// short ones around `_` (`__`, `xp_`, `sp_`) by looking at each `_`.
fn suspect(b: &[u8]) -> bool {
    let Some(searcher) = plain_suspects() else { return true };
    if searcher.find(b).is_some() {
        return true;
    }
    memchr::memchr_iter(b'_', b)
        .any(|at| b.get(at + 1) == Some(&b'_') || (at >= 2 && matches!(&b[at - 2..at], b"xp" | b"sp")))
}

/// ASCII letters and digits, blanks and `,._@`: the plain ASCII bytes. Comparisons only, so that a
/// loop over it vectorises.
const fn plain_ascii(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b' ' | b',' | b'.' | b'_' | b'@' | b'\t')
}

/// Letters (any script), digits, blanks and `,._@` are plain (non-ASCII once look-alikes are folded).
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = plain_ascii(i as u8) || i >= 0x80;
        i += 1;
    }
    t
};

/// What can still make a plain value interesting: SQL keywords that need no punctuation, the
/// metadata address, dunder names, callback domains, Windows system files. Lower case; matched
/// against a lower-cased copy with a SIMD multi-substring searcher (Teddy), several GB/s. Every
/// word has four bytes or more (what keeps Teddy's fingerprints selective); the shorter `__`,
/// `xp_` and `sp_` are looked for by [`suspect`].
const PLAIN_SUSPECTS: &[&str] = &[
    // Without punctuation an injection needs one of these: `1 union select 1,2`, `1 order by 5`,
    // `1 having 1 like 1`, `waitfor delay`, `xp_cmdshell` …
    "union",
    "select",
    "order by",
    "group by",
    "having",
    "waitfor",
    "between",
    "exec",
    "declare",
    "shutdown",
    "procedure",
    "sleep",
    "benchmark",
    "where",
    // the metadata address, dunder names, prototype pollution, Windows system files
    "169.254",
    "prototype",
    ".ini",
    "web.config",
    "global.asa",
    "ntuser.dat",
    // Java: serialized objects as base64 or hex, gadget packages, class-loader paths
    "ro0ab",
    "aced0005",
    "java.",
    "javax.",
    "classloader",
    "org.apache.",
    "com.sun.",
    "org.springframework",
    "org.codehaus",
    "opensymphony",
    "ysoserial",
    // out-of-band callback domains (see `tool::OOB`)
    "oast",
    "burpcollaborator",
    "interact.sh",
    "dnslog",
    "ceye.io",
    "requestbin",
    "canarytokens",
    "bxss.me",
    "xss.ht",
];

fn plain_suspects() -> Option<&'static aho_corasick::packed::Searcher> {
    static M: std::sync::OnceLock<Option<aho_corasick::packed::Searcher>> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let mut b = aho_corasick::packed::Config::new().only_teddy_fat(Some(true)).builder();
        for p in PLAIN_SUSPECTS {
            b.add(p);
        }
        b.build()
    })
    .as_ref()
}

thread_local! {
    /// Header values, paths and cookies seen clean recently on this thread (User-Agent, Referer,
    /// the app's routes and a browser's cookies repeat across requests), keyed by SipHash with a
    /// random key so an attacker cannot aim a collision; only the keys are kept, never a value.
    static SEEN: std::cell::RefCell<(std::hash::RandomState, std::collections::HashSet<u64>)> =
        std::cell::RefCell::new((std::hash::RandomState::new(), std::collections::HashSet::new()));
}

const SEEN_MAX: usize = 4096;

/// Whether `v` was seen clean recently (a header value, the path, a cookie, each with its tag),
/// and its key.
fn seen_clean(v: impl std::hash::Hash) -> (bool, u64) {
    use std::hash::BuildHasher;
    SEEN.with(|s| {
        let s = s.borrow();
        let h = s.0.hash_one(v);
        (s.1.contains(&h), h)
    })
}

fn mark_clean(h: u64) {
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        if s.1.len() >= SEEN_MAX {
            s.1.clear();
        }
        s.1.insert(h);
    });
}

/// A case-insensitive multi-pattern matcher for a fixed list. `None` only if building failed,
/// which callers treat as "may match" (the slow, exact check then decides).
pub(crate) fn matcher(patterns: &[&str]) -> Option<aho_corasick::AhoCorasick> {
    aho_corasick::AhoCorasickBuilder::new().ascii_case_insensitive(true).build(patterns).ok()
}

fn sensitive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "auth", "session", "sid", "key", "credential", "otp", "pin", "cvv", "card"]
        .iter()
        .any(|k| n.contains(k))
}

/// A printable excerpt of at most 96 characters; control characters shown as `\xNN`.
pub fn excerpt(value: &str, name: &str) -> String {
    if sensitive(name) {
        return "[redacted]".into();
    }
    let mut out = String::new();
    let mut n = 0;
    for c in value.chars() {
        let piece = if c.is_control() { format!("\\x{:02x}", c as u32 & 0xff) } else { c.to_string() };
        let len = piece.chars().count();
        if n + len > 96 {
            out.push('…');
            break;
        }
        out.push_str(&piece);
        n += len;
    }
    out
}

pub(crate) struct Sink<'o> {
    out: &'o mut Vec<Finding>,
    families: Families,
}

impl Sink<'_> {
    fn add(&mut self, family: Family, hit: Option<(&'static str, u32)>, location: &str, name: &str, value: &str) {
        let Some((rule, score)) = hit else { return };
        if !self.families.contains(family) || self.out.len() >= MAX_FINDINGS {
            return;
        }
        if self.out.iter().any(|f| f.family == family && f.location == location) {
            return;
        }
        self.out.push(Finding {
            family,
            rule,
            location: location.to_owned(),
            name: name.to_owned(),
            excerpt: excerpt(value, name),
            score,
            layers: Vec::new(),
            detail: String::new(),
        });
    }
}

/// A dotted name that may be a Java class or a property path to one (`java.lang.Runtime=…`,
/// `class.module.classLoader…`): property binders read names as code.
fn java_like_name(k: &[u8]) -> bool {
    k.len() > 8
        && memchr::memchr(b'.', k).is_some()
        && [&b"java"[..], b"class", b"org.", b"com.", b"sun.", b"bsh.", b"ognl"]
            .iter()
            .any(|w| k.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w)))
}

/// Fills in how new findings were reached: the layers undone from `raw` to `decoded`, and what
/// the family's reading saw. Only for findings (never on the clean path).
fn explain(new: &mut [Finding], raw: &str, decoded: &str, name: &str) {
    if new.is_empty() {
        return;
    }
    let layers = normalize::layers(raw);
    let secret = sensitive(name);
    for f in new {
        f.layers = layers.clone();
        if secret {
            continue;
        }
        f.detail = match f.family {
            Family::Sqli => sqli::explain(decoded).unwrap_or_default(),
            Family::Traversal => excerpt(&traversal::plain(decoded), ""),
            _ => String::new(),
        };
    }
}

/// A header value that could climb a directory or name a system file: `..`, an encoded dot, a
/// backslash, `/etc/`, a `file:`/`php:` wrapper (checked before the traversal rules run).
fn may_name_a_file(b: &[u8]) -> bool {
    memchr::memmem::find(b, b"..").is_some()
        || memchr::memchr(b'\\', b).is_some()
        || b.windows(3)
            .any(|w| w[0] == b'%' && (w[1..].eq_ignore_ascii_case(b"2e") || w[1..].eq_ignore_ascii_case(b"c0")))
        || memchr::memmem::find(b, b"/etc/").is_some()
        || memchr::memmem::find(b, b"://").is_some() && (b.starts_with(b"file") || b.starts_with(b"php"))
}

impl Inspector {
    pub fn new(cfg: InspectConfig) -> Self {
        Inspector { cfg, tools: tool::ToolMatcher::new() }
    }

    /// Checks one decoded value with every injection family (what an argument gets).
    fn value(&self, sink: &mut Sink<'_>, source: Source, location: &str, name: &str, raw: &str) {
        let v = normalize::decode(raw);
        let v = v.as_ref();
        if !needs_look(v) {
            return;
        }
        let before = sink.out.len();
        self.value_checks(sink, source, location, name, v);
        explain(&mut sink.out[before..], raw, v, name);
    }

    fn value_checks(&self, sink: &mut Sink<'_>, source: Source, location: &str, name: &str, v: &str) {
        let f = self.cfg.families;
        if f.contains(Family::Sqli) {
            sink.add(Family::Sqli, sqli::check(v), location, name, v);
        }
        if f.contains(Family::Xss) {
            sink.add(Family::Xss, xss::check(v), location, name, v);
        }
        if f.contains(Family::Traversal) {
            sink.add(Family::Traversal, traversal::check(v, false), location, name, v);
        }
        if f.contains(Family::Cmdi) {
            sink.add(Family::Cmdi, cmdi::check(v), location, name, v);
        }
        if f.contains(Family::Ssrf) && source != Source::Cookie {
            sink.add(Family::Ssrf, ssrf::check(v), location, name, v);
        }
        if f.contains(Family::Nosql) {
            sink.add(Family::Nosql, nosql::check(v), location, name, v);
        }
        if f.contains(Family::PrototypePollution) {
            sink.add(Family::PrototypePollution, pollution::check(v), location, name, v);
        }
        if f.contains(Family::Ssti) {
            sink.add(Family::Ssti, ssti::check(v), location, name, v);
        }
        if f.contains(Family::Jndi) {
            sink.add(Family::Jndi, jndi::check(v), location, name, v);
        }
        if f.contains(Family::Java) {
            sink.add(Family::Java, java::check(v), location, name, v);
        }
        if f.contains(Family::Xxe) && v.contains('<') {
            sink.add(Family::Xxe, xxe::check(v), location, name, v);
        }
        if f.contains(Family::Crlf) && source == Source::Arg {
            sink.add(Family::Crlf, crlf::check(v), location, name, v);
        }
        if f.contains(Family::Tool) && v.contains('.') {
            sink.add(Family::Tool, tool::oob_domain(v), location, name, v);
        }
    }

    fn key(&self, sink: &mut Sink<'_>, location: &str, name: &str) {
        if name.contains('/') || name.contains("..") {
            // PHP and hand-written parsers hand names to the app too (`?/etc/passwd=1`).
            let n = normalize::decode(name);
            sink.add(Family::Traversal, traversal::check(&n, false), location, name, &n);
        }
        if name.contains('$') {
            sink.add(Family::Nosql, nosql::check_key(location), location, name, name);
        }
        if name.len() > 8 && name.contains('.') {
            // Parsers that bind names to properties or classes read the name as code.
            let hit = java::check_key(name).or_else(|| java::check(name));
            sink.add(Family::Java, hit, location, name, name);
        }
        if name.contains("proto") || location.contains("__proto__") || location.contains("prototype") {
            sink.add(Family::PrototypePollution, pollution::check_key(location), location, name, name);
        }
    }

    fn path(&self, sink: &mut Sink<'_>, raw: &str) {
        // Paths repeat across requests: one seen clean recently is not looked at again.
        let (clean, key) = seen_clean((self.cfg.stacks.0, raw));
        if clean {
            return;
        }
        let before = sink.out.len();
        self.path_checks(sink, raw);
        if sink.out.len() == before && before < MAX_FINDINGS && sink.families == Families::ALL {
            mark_clean(key);
        }
        if sink.out.len() > before {
            let norm = normalize::path(raw);
            explain(&mut sink.out[before..], raw, &norm, "");
        }
    }

    fn path_checks(&self, sink: &mut Sink<'_>, raw: &str) {
        let norm = normalize::path(raw);
        sink.add(Family::Traversal, traversal::check(&norm, true), "path", "", &norm);
        sink.add(Family::Probe, probe::check(&norm, self.cfg.stacks), "path", "", &norm);
        if norm.bytes().any(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'/' | b'-' | b'_' | b'.' | b'~'))) {
            sink.add(Family::Xss, xss::check(&norm), "path", "", &norm);
            sink.add(Family::Cmdi, cmdi::check(&norm), "path", "", &norm);
            sink.add(Family::Ssti, ssti::check(&norm), "path", "", &norm);
            sink.add(Family::Jndi, jndi::check(&norm), "path", "", &norm);
            sink.add(Family::Crlf, crlf::check(&norm), "path", "", &norm);
            for seg in norm.split('/') {
                if seg.bytes().any(|c| matches!(c, b'\'' | b'"' | b' ' | b'(' | b'=' | b'-' | b'#' | b';')) {
                    sink.add(Family::Sqli, sqli::check(seg), "path", "", seg);
                }
            }
        }
    }

    fn headers(&self, sink: &mut Sink<'_>, headers: &HeaderMap) {
        for (name, value) in headers {
            let n = name.as_str();
            let bytes = value.as_bytes();
            let configured = self.cfg.headers.iter().any(|h| h == name);
            let known = matches!(n, "user-agent" | "referer" | "x-forwarded-host");
            if !known && !configured {
                // Every header is a Log4Shell and shellshock carrier, and any header an app reads
                // may name a file (`X-Template: ../../etc/passwd`); all three need rare bytes.
                let jndi = memchr::memmem::find(bytes, b"${").is_some();
                let shock = memchr::memmem::find(bytes, b"() {").is_some();
                let path = n != "authorization" && may_name_a_file(bytes);
                if jndi || shock || path {
                    let v = String::from_utf8_lossy(bytes);
                    let location = format!("header.{n}");
                    sink.add(Family::Jndi, jndi.then(|| jndi::check(&v)).flatten(), &location, n, &v);
                    let hit = shock.then(|| cmdi::check(&v).filter(|(r, _)| *r == "shellshock")).flatten();
                    sink.add(Family::Cmdi, hit, &location, n, &v);
                    if path {
                        let d = normalize::decode(&v);
                        sink.add(Family::Traversal, traversal::check(&d, false), &location, n, &d);
                    }
                }
                continue;
            }
            if n == "cookie" {
                continue;
            }
            let v = String::from_utf8_lossy(bytes);
            if configured {
                self.value(sink, Source::Arg, &format!("header.{n}"), n, &v);
                continue;
            }
            let (clean, key) = seen_clean((b'h', &*v));
            if clean {
                continue;
            }
            let location = format!("header.{n}");
            let before = sink.out.len();
            if n == "user-agent" {
                if let Some(tool) = self.tools.check(&v) {
                    let tool = tool.trim_matches(['.', '/']);
                    sink.add(Family::Tool, Some((tool, 8)), &location, n, &v);
                }
            }
            sink.add(Family::Cmdi, cmdi::check(&v).filter(|(r, _)| *r == "shellshock"), &location, n, &v);
            let d = normalize::decode(&v);
            sink.add(Family::Sqli, sqli::check(&d), &location, n, &d);
            sink.add(Family::Xss, xss::check(&d), &location, n, &d);
            sink.add(Family::Jndi, jndi::check(&d), &location, n, &d);
            sink.add(Family::Java, java::check(&d), &location, n, &d);
            if n != "user-agent" {
                sink.add(Family::Traversal, traversal::check(&d, false), &location, n, &d);
                sink.add(Family::Crlf, crlf::check(&d), &location, n, &d);
            }
            if sink.out.len() == before && before < MAX_FINDINGS && sink.families == Families::ALL {
                mark_clean(key);
            }
        }
    }

    /// A form-encoded string (query or body): pairs that are certainly clean are skipped without
    /// decoding into strings; the others are taken apart and inspected.
    fn form(
        &self,
        sink: &mut Sink<'_>,
        raw: &[u8],
        prefix: &'static str,
        source: Source,
        mut joins: Option<&mut body::Joins>,
    ) {
        let mut rest = Vec::new();
        let mut start = 0;
        // memchr's SIMD search for the separators (a byte-by-byte split was most of the cost).
        let ends = memchr::memchr_iter(b'&', raw).chain(std::iter::once(raw.len()));
        for end in ends {
            let here = start;
            let pair = &raw[here..end];
            start = end + 1;
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match memchr::memchr(b'=', pair) {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let key_plain = k.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
                && !k.windows(5).any(|w| w.eq_ignore_ascii_case(b"proto"))
                && !java_like_name(k);
            let clean = raw_form_clean(v);
            if let Some(j) = joins.as_deref_mut() {
                j.add(self, sink, k, v, clean);
            }
            if key_plain && clean {
                continue;
            }
            rest.push(&raw[here..here + pair.len()]);
        }
        if rest.is_empty() {
            return;
        }
        let joined = rest.join(&b'&');
        let mut parts = Vec::new();
        extract::form(&joined, prefix, source, &mut parts);
        self.parts(sink, &parts);
    }

    /// Parts from a body tokenizer: uploaded files' names get the families a file name can carry.
    fn scan_parts(&self, sink: &mut Sink<'_>, parts: &[Part<'_>]) {
        if !parts.iter().any(|p| p.location.ends_with(".filename")) {
            return self.parts(sink, parts);
        }
        for p in parts {
            if p.location.ends_with(".filename") {
                let location = p.location();
                self.key(sink, &location, &p.name);
                let v = normalize::decode(&p.value);
                sink.add(Family::Traversal, traversal::check(&v, false), &location, &p.name, &v);
                sink.add(Family::Xss, xss::check(&v), &location, &p.name, &v);
            } else {
                self.parts(sink, std::slice::from_ref(p));
            }
        }
    }

    /// A body read as text: XML for entity attacks and Log4Shell, anything else as one value.
    fn text(&self, sink: &mut Sink<'_>, text: &str, xml: bool) {
        if xml || text.trim_start().starts_with('<') {
            sink.add(Family::Xxe, xxe::check(text), "body", "", text);
            sink.add(Family::Jndi, jndi::check(text), "body", "", text);
        }
        if xml {
            // What the app's XML parser hands it: attribute values and element text.
            let mut parts = Vec::new();
            extract::xml(text, &mut parts);
            self.parts(sink, &parts);
        } else {
            self.value(sink, Source::Body, "body", "", text);
        }
    }

    fn parts(&self, sink: &mut Sink<'_>, parts: &[Part<'_>]) {
        for p in parts {
            let key_clean = !p.name.contains('$')
                && !p.name.contains("proto")
                && !p.location.contains("__proto__")
                && !p.name.contains('/')
                && !p.name.contains("..")
                && !java_like_name(p.name.as_bytes());
            // Decoded first: `needs_look` counts non-ASCII as plain only once look-alikes are folded.
            if key_clean && !needs_look(&normalize::decode(&p.value)) {
                continue;
            }
            let location = p.location();
            self.key(sink, &location, &p.name);
            if !p.value.is_empty() {
                self.value(sink, p.source, &location, &p.name, &p.value);
            }
        }
    }

    /// The request without its body: method, path, query, cookies, headers.
    pub fn inspect_head(&self, req: &RequestView<'_>, out: &mut Vec<Finding>) {
        let mut sink = Sink { out, families: self.cfg.families };
        if let Some((rule, location, score)) = protocol::check(req.method, req.headers) {
            sink.add(Family::Protocol, Some((rule, score)), &location, "", req.method);
        }
        self.path(&mut sink, req.path);
        if let Some(q) = req.query {
            let mut joins = body::Joins::new("args", Source::Arg);
            self.form(&mut sink, q.as_bytes(), "args", Source::Arg, Some(&mut joins));
        }
        let mut cookie_parts = Vec::new();
        for c in req.headers.get_all(http::header::COOKIE) {
            if let Ok(s) = c.to_str() {
                extract::cookies(s, &mut cookie_parts);
            }
        }
        for p in &cookie_parts {
            let v = normalize::decode(&p.value);
            if !needs_look(&v) && !p.name.contains("proto") {
                continue;
            }
            // A browser sends the same cookies with every request: one seen clean is not looked
            // at again (`lang=en-GB`, a session id with `-`).
            let (clean, seen) = seen_clean((b'c', &*p.name, &*v));
            if clean {
                continue;
            }
            let before = sink.out.len();
            let location = p.location();
            self.key(&mut sink, &location, &p.name);
            for (fam, hit) in [
                (Family::Sqli, sqli::check(&v)),
                (Family::Xss, xss::check(&v)),
                (Family::Traversal, traversal::check(&v, false)),
                (Family::Cmdi, cmdi::check(&v)),
                (Family::Jndi, jndi::check(&v)),
                (Family::Java, java::check(&v)),
                (Family::PrototypePollution, pollution::check(&v)),
                (Family::Ssti, ssti::check(&v)),
            ] {
                sink.add(fam, hit, &location, &p.name, &v);
            }
            if sink.out.len() == before && before < MAX_FINDINGS && sink.families == Families::ALL {
                mark_clean(seen);
            }
        }
        self.headers(&mut sink, req.headers);
    }
}

impl Detector for Inspector {
    fn name(&self) -> &'static str {
        "builtin"
    }

    /// The head, then the body through a [`body::Scanner`] (finished when `body_complete`).
    fn inspect(&self, req: &RequestView<'_>, out: &mut Vec<Finding>) {
        self.inspect_head(req, out);
        if req.body.is_empty() {
            return;
        }
        let mut scan = body::Scanner::new(self, req.headers);
        scan.feed(self, req.body);
        if req.body_complete {
            scan.finish(self);
        }
        for f in scan.findings() {
            if out.len() < MAX_FINDINGS && !out.iter().any(|o| o.family == f.family && o.location == f.location) {
                out.push(f.clone());
            }
        }
    }
}

/// Checks one bare value with every injection family, as if it were a query argument named
/// `name`. For tests, benchmarks and the corpus runner.
pub fn check_value(inspector: &Inspector, name: &str, value: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut sink = Sink { out: &mut out, families: inspector.cfg.families };
    let location = format!("args.{name}");
    inspector.key(&mut sink, &location, name);
    inspector.value(&mut sink, Source::Arg, &location, name, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Vec<Finding> {
        let inspector = Inspector::new(InspectConfig::default());
        let headers = HeaderMap::new();
        let view =
            RequestView { method: "GET", path: "/", query: Some(q), headers: &headers, body: b"", body_complete: true };
        let mut out = Vec::new();
        inspector.inspect(&view, &mut out);
        out
    }

    #[test]
    fn the_clean_form_fast_path_lets_no_attack_through() {
        // Plain-looking values with keywords, every encoding layer, non-ASCII look-alikes, keys.
        for q in [
            "q=1+union+select+password+from+users",
            "q=1%20UNION%20SELECT%201%2C2",
            "q=%2527%2520or%25201%253D1--",
            "q=%EF%BC%B3%EF%BC%A5%EF%BC%AC%EF%BC%A5%EF%BC%A3%EF%BC%B4+1+%EF%BC%A6%EF%BC%B2%EF%BC%AF%EF%BC%AD+users",
            "user%5B%24ne%5D=1",
            "__proto__%5Badmin%5D=1",
            "a=1&b=2&c=waitfor+delay+%270%3A0%3A5%27",
            "u=http%3A%2F%2F169.254.169.254%2F",
            "f=..%2F..%2Fetc%2Fpasswd",
        ] {
            assert!(!query(q).is_empty(), "missed: {q}");
        }
        for q in ["q=running+shoes&page=2", "name=Jane+Doe&city=Paris", "comment=Lovely%2C+arrived+on+time."] {
            assert!(query(q).is_empty(), "false positive: {q}: {:?}", query(q));
        }
    }

    #[test]
    fn every_suspect_word_is_found_in_plain_values_in_any_case_and_encoding() {
        assert!(PLAIN_SUSPECTS.iter().all(|w| w.len() >= 4), "Teddy's fingerprints need four bytes");
        for w in PLAIN_SUSPECTS.iter().copied().chain(["__", "xp_", "sp_"]) {
            let upper = w.to_ascii_uppercase();
            for v in
                [format!("a {w} b"), format!("a+{}+b", upper.replace(' ', "+")), w.to_string(), format!("%41{upper}")]
            {
                assert!(!raw_form_clean(v.as_bytes()), "raw_form_clean let {v:?} through");
            }
            assert!(needs_look(&format!("Some {upper} text")), "needs_look let {w:?} through");
        }
        for v in ["xp_cmdshell", "EXEC+SP_WHO", "a__b", "%5F%5Fproto"] {
            assert!(!raw_form_clean(v.as_bytes()), "{v}");
        }
        // Plain text with `_`, `+`, escapes of plain bytes: clean. A decoded `+`, a lone `%`: not.
        for v in ["snake_case+name", "Lovely+product%2C+arrived", "jane.doe%40example.com", "_x", "p_"] {
            assert!(raw_form_clean(v.as_bytes()), "{v}");
        }
        for v in ["a%2Bb", "50%", "%zz", "a%2", "caf%C3%A9", "a;b"] {
            assert!(!raw_form_clean(v.as_bytes()), "{v}");
        }
    }
}
