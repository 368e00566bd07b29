//! The Content Security Policy test: how strict the combined policy of the header and the
//! `<meta http-equiv>` tags is.

use std::collections::{BTreeMap, BTreeSet};

use crate::csp::{parse_csp_list, Csp, DUPLICATES_KEY};
use crate::outcome::Outcome;

/// Sources that allow nearly anything.
const BROAD: [&str; 8] = ["ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"];
/// Sources that allow inline code.
const INLINE: [&str; 2] = ["'unsafe-inline'", "data:"];
/// How nonces and hashes start.
const NONCES_HASHES: [&str; 4] = ["'sha256-", "'sha384-", "'sha512-", "'nonce-"];

/// What the test found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub outcome: Outcome,
    pub pass: bool,
    /// Whether the evaluated policy sets `frame-ancestors` (which stands in for X-Frame-Options).
    pub frame_ancestors: bool,
}

/// What the test reads from the answer.
pub(crate) struct Input<'a> {
    /// The `Content-Security-Policy` header (folded into one value when repeated).
    pub header: Vec<&'a str>,
    /// The `content` of each `<meta http-equiv="Content-Security-Policy">`.
    pub meta: &'a [String],
    /// Whether a non-empty `Content-Security-Policy-Report-Only` header was sent.
    pub report_only: bool,
    /// Whether the session used for the tests started on `https:`.
    pub https: bool,
}

fn verdict(outcome: Outcome) -> Verdict {
    Verdict { outcome, pass: false, frame_ancestors: false }
}

/// Runs the test; `None` when there is no answer.
pub(crate) fn test(input: Option<&Input<'_>>) -> Verdict {
    let Some(input) = input else { return verdict(Outcome::CspNotImplemented) };
    let mut all: Vec<&str> = input.header.clone();
    all.extend(input.meta.iter().map(String::as_str));
    let Ok(csp) = parse_csp_list(&all) else { return verdict(Outcome::CspHeaderInvalid) };
    let header_only = parse_csp_list(&input.header).unwrap_or_default();
    let meta_only = parse_csp_list(input.meta).map(Csp::without_meta_forbidden).unwrap_or_default();
    if header_only.entries() + meta_only.entries() == 0 {
        let outcome =
            if input.report_only { Outcome::CspNotImplementedButReportingEnabled } else { Outcome::CspNotImplemented };
        return verdict(outcome);
    }
    evaluate(csp.into_map(), input.https)
}

type Directives = BTreeMap<String, BTreeSet<String>>;

/// Where a source list the checks read comes from: a directive of the policy (shared, so changes
/// show through everywhere it is read) or the `*` it defaults to.
struct Lists {
    directives: Directives,
    script_key: Option<String>,
    style_key: Option<String>,
    object_key: Option<String>,
    script_default: BTreeSet<String>,
    style_default: BTreeSet<String>,
    object_default: BTreeSet<String>,
}

fn star() -> BTreeSet<String> {
    BTreeSet::from(["*".to_owned()])
}

impl Lists {
    fn new(directives: Directives) -> Lists {
        let key = |names: [&str; 2]| names.iter().find(|n| directives.contains_key(**n)).map(|n| (*n).to_owned());
        Lists {
            script_key: key(["script-src", "default-src"]),
            style_key: key(["style-src", "default-src"]),
            object_key: key(["object-src", "default-src"]),
            directives,
            script_default: star(),
            style_default: star(),
            object_default: star(),
        }
    }

    fn script(&self) -> &BTreeSet<String> {
        self.script_key.as_ref().and_then(|k| self.directives.get(k)).unwrap_or(&self.script_default)
    }

    fn style(&self) -> &BTreeSet<String> {
        self.style_key.as_ref().and_then(|k| self.directives.get(k)).unwrap_or(&self.style_default)
    }

    fn object(&self) -> &BTreeSet<String> {
        self.object_key.as_ref().and_then(|k| self.directives.get(k)).unwrap_or(&self.object_default)
    }

    fn script_mut(&mut self) -> &mut BTreeSet<String> {
        match self.script_key.as_ref().and_then(|k| self.directives.get_mut(k)) {
            Some(set) => set,
            None => &mut self.script_default,
        }
    }

    fn style_mut(&mut self) -> &mut BTreeSet<String> {
        match self.style_key.as_ref().and_then(|k| self.directives.get_mut(k)) {
            Some(set) => set,
            None => &mut self.style_default,
        }
    }
}

fn has_nonce_or_hash(list: &BTreeSet<String>) -> bool {
    list.iter().any(|s| NONCES_HASHES.iter().any(|p| s.starts_with(p)))
}

/// A nonce or hash makes browsers ignore `'unsafe-inline'`, so the scoring drops it too.
fn drop_overridden_inline(list: &mut BTreeSet<String>) {
    if has_nonce_or_hash(list) {
        list.remove("'unsafe-inline'");
    }
}

fn insecure(source: &str) -> bool {
    source.starts_with("http:") || source.starts_with("ftp:")
}

/// Grades a valid, non-empty policy.
fn evaluate(directives: Directives, https: bool) -> Verdict {
    let mut lists = Lists::new(directives);
    drop_overridden_inline(lists.script_mut());
    drop_overridden_inline(lists.style_mut());
    let mut result: Option<Outcome> = None;
    let script = lists.script_mut();
    if script.contains("'strict-dynamic'") {
        if has_nonce_or_hash(script) {
            script.retain(|s| !(BROAD.iter().any(|b| s.starts_with(b)) || s == "'self'" || s == "'unsafe-inline'"));
        } else {
            result = Some(Outcome::CspHeaderInvalid);
        }
    }
    let (script, style, object) = (lists.script(), lists.style(), lists.object());
    let directives = &lists.directives;
    let mut active: Vec<&String> = directives
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "img-src" | "media-src" | "script-src"))
        .flat_map(|(_, v)| v)
        .collect();
    active.extend(script);
    let passive: Vec<&String> = ["img-src", "media-src"]
        .iter()
        .filter_map(|d| directives.get(*d).or_else(|| directives.get("default-src")))
        .flatten()
        .collect();
    let broad_or_inline = |s: &String| BROAD.contains(&s.as_str()) || INLINE.contains(&s.as_str());
    let broad = |s: &String| BROAD.contains(&s.as_str());
    let checks = [
        (script.iter().any(broad_or_inline) || object.iter().any(broad), Outcome::CspImplementedWithUnsafeInline),
        (https && active.iter().any(|s| insecure(s)), Outcome::CspImplementedWithInsecureScheme),
        (script.contains("'unsafe-eval'") || style.contains("'unsafe-eval'"), Outcome::CspImplementedWithUnsafeEval),
        (https && passive.iter().any(|s| insecure(s)), Outcome::CspImplementedWithInsecureSchemeInPassiveContentOnly),
        (style.iter().any(broad_or_inline), Outcome::CspImplementedWithUnsafeInlineInStyleSrcOnly),
    ];
    for (failed, outcome) in checks {
        if failed && result.is_none() {
            result = Some(outcome);
        }
    }
    let default_none = directives.get("default-src").is_some_and(|d| d.len() == 1 && d.contains("'none'"));
    let fallback = if default_none {
        Outcome::CspImplementedWithNoUnsafeDefaultSrcNone
    } else {
        Outcome::CspImplementedWithNoUnsafe
    };
    let mut outcome = result.unwrap_or(fallback);
    let pass = matches!(
        outcome,
        Outcome::CspImplementedWithNoUnsafe
            | Outcome::CspImplementedWithNoUnsafeDefaultSrcNone
            | Outcome::CspImplementedWithUnsafeInlineInStyleSrcOnly
            | Outcome::CspImplementedWithInsecureSchemeInPassiveContentOnly
    );
    if pass && directives.contains_key(DUPLICATES_KEY) {
        outcome = Outcome::CspImplementedButDuplicateDirectives;
    }
    Verdict { outcome, pass, frame_ancestors: directives.contains_key("frame-ancestors") }
}
