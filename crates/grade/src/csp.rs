//! Parsing Content-Security-Policy values the way the Observatory's scoring reads them.
//!
//! Several policies (a header and `<meta http-equiv>` tags) combine into one: a directive that
//! appears in several keeps only the sources every policy allows, compared as whole strings or as
//! path prefixes. Sources and directive names are lowercased. A source list left empty reads as
//! `'none'`.
//!
//! A policy is invalid when it is shorter than six characters or repeats a directive within
//! itself (`report-uri` and `report-to` may repeat: that is only noted, see
//! [`Csp::has_duplicates`]).
//!
//! Work is bounded: every policy is checked for validity, but only the first
//! [`MAX_COMBINED_POLICIES`] are combined, reading at most [`MAX_SOURCES_PER_DIRECTIVE`] sources of
//! each directive (a directive that only appears after that reads as `'none'`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::collate;
use crate::jsstr;

/// The key under which repeated `report-uri`/`report-to` directives are noted, among the
/// directives (as the reference behaviour does, so a policy naming a directive this way is read
/// the same).
pub(crate) const DUPLICATES_KEY: &str = "_observatory_duplicate_key_warnings";

/// Directives that may repeat within one policy.
const ALLOWED_DUPLICATES: [&str; 2] = ["report-uri", "report-to"];

/// Directives a `<meta>` policy may not set.
pub(crate) const NOT_IN_META: [&str; 3] = ["frame-ancestors", "report-uri", "sandbox"];

/// The shortest policy accepted, in UTF-16 units.
const SHORTEST_POLICY: usize = 6;

/// How many policies are combined. Combining is quadratic in the number of policies (sources kept
/// from the second policy on stay kept), so further policies are only checked for validity.
pub const MAX_COMBINED_POLICIES: usize = 64;

/// How many sources of one directive in one policy are read; the rest are ignored.
pub const MAX_SOURCES_PER_DIRECTIVE: usize = 1024;

/// A parsed policy: each directive with its sources, all lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Csp {
    directives: BTreeMap<String, BTreeSet<String>>,
}

/// Why a policy cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CspError {
    /// The policy at this index (after dropping line breaks and trimming) is empty or shorter than
    /// six characters.
    TooShort(usize),
    /// The policy at this index repeats this directive.
    DuplicateDirective(usize, String),
    /// Comparing sources across policies met a malformed `%` escape.
    BadEscape,
}

impl fmt::Display for CspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CspError::TooShort(i) => write!(f, "policy {i} is too short"),
            CspError::DuplicateDirective(i, d) => write!(f, "policy {i} repeats the {d} directive"),
            CspError::BadEscape => f.write_str("a source has a malformed % escape"),
        }
    }
}

impl std::error::Error for CspError {}

impl Csp {
    /// The sources of `directive` (lowercase name), when the policy sets it.
    pub fn get(&self, directive: &str) -> Option<&BTreeSet<String>> {
        self.directives.get(directive)
    }

    /// Every directive set, with its sources.
    pub fn directives(&self) -> impl Iterator<Item = (&str, &BTreeSet<String>)> {
        self.directives.iter().filter(|(k, _)| k.as_str() != DUPLICATES_KEY).map(|(k, v)| (k.as_str(), v))
    }

    /// Whether `report-uri` or `report-to` was repeated within a policy.
    pub fn has_duplicates(&self) -> bool {
        self.directives.contains_key(DUPLICATES_KEY)
    }

    /// Whether nothing was set.
    pub fn is_empty(&self) -> bool {
        self.directives.is_empty()
    }

    /// How many entries the policy holds (the note of repeated directives counting as one).
    pub(crate) fn entries(&self) -> usize {
        self.directives.len()
    }

    /// Drops the directives a `<meta>` policy may not set.
    pub(crate) fn without_meta_forbidden(mut self) -> Csp {
        for directive in NOT_IN_META {
            self.directives.remove(directive);
        }
        self
    }

    /// The directives, the note of repeated directives included, for the scoring to work on.
    pub(crate) fn into_map(self) -> BTreeMap<String, BTreeSet<String>> {
        self.directives
    }
}

/// Parses one policy, e.g. `default-src 'self'; img-src https:`.
pub fn parse_csp(policy: &str) -> Result<Csp, CspError> {
    parse_csp_list(&[policy])
}

/// One source while policies are combined.
#[derive(Debug, Clone)]
struct Source {
    text: String,
    policy: usize,
    keep: bool,
}

/// Parses several policies that apply together, combining them.
pub fn parse_csp_list<S: AsRef<str>>(policies: &[S]) -> Result<Csp, CspError> {
    let cleaned: Vec<String> =
        policies.iter().map(|p| jsstr::trim(&p.as_ref().replace(['\r', '\n'], "")).to_owned()).collect();
    for (index, policy) in cleaned.iter().enumerate() {
        if policy.is_empty() || jsstr::utf16_len(policy) < SHORTEST_POLICY {
            return Err(CspError::TooShort(index));
        }
    }
    let several = policies.len() > 1;
    let mut sources: BTreeMap<String, Vec<Source>> = BTreeMap::new();
    let mut repeated: BTreeSet<String> = BTreeSet::new();
    for (index, policy) in cleaned.iter().enumerate() {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for entry in policy.split(';') {
            let mut words = jsstr::words(jsstr::trim(entry));
            let Some(name) = words.next() else { continue };
            let directive = name.to_lowercase();
            if !seen.insert(directive.clone()) {
                if !ALLOWED_DUPLICATES.contains(&directive.as_str()) {
                    return Err(CspError::DuplicateDirective(index, directive));
                }
                repeated.insert(directive.clone());
            }
            if index >= MAX_COMBINED_POLICIES {
                sources.entry(directive).or_default();
                continue;
            }
            let mut values: Vec<Source> = words
                .take(MAX_SOURCES_PER_DIRECTIVE)
                .map(|w| Source { text: w.to_lowercase(), policy: index, keep: index == 0 })
                .collect();
            if values.is_empty() && directive.ends_with("-src") {
                values.push(Source { text: "'none'".to_owned(), policy: index, keep: index == 0 });
            }
            let mut combined = if index == 0 { Vec::new() } else { sources.remove(&directive).unwrap_or_default() };
            combined.extend(values);
            let mut kept = intersect(combined)?;
            if index == 0 && several {
                kept.iter_mut().for_each(|s| s.keep = false);
            }
            sources.insert(directive, kept);
        }
    }
    let mut directives: BTreeMap<String, BTreeSet<String>> = sources
        .into_iter()
        .map(|(directive, list)| {
            let set: BTreeSet<String> = if list.is_empty() {
                BTreeSet::from(["'none'".to_owned()])
            } else {
                list.into_iter().map(|s| s.text).collect()
            };
            (directive, set)
        })
        .collect();
    if !repeated.is_empty() {
        directives.insert(DUPLICATES_KEY.to_owned(), repeated);
    }
    Ok(Csp { directives })
}

/// Sorts a directive's sources and settles which to keep by comparing each with the one before:
/// within a policy a source that merely extends the previous one is dropped; across policies a
/// source the previous one (from another policy) covers is kept.
fn intersect(mut combined: Vec<Source>) -> Result<Vec<Source>, CspError> {
    combined.sort_by(|a, b| collate::compare(&a.text, &b.text));
    for at in 1..combined.len() {
        let (before, after) = combined.split_at_mut(at);
        let (Some(prev), Some(source)) = (before.last(), after.first_mut()) else { continue };
        if source.policy == prev.policy && source.text.starts_with(&prev.text) {
            source.keep = false;
        }
        if source.policy != prev.policy && path_part_match(&prev.text, &source.text)? {
            source.keep = true;
        }
    }
    combined.retain(|s| s.keep);
    Ok(combined)
}

/// Whether source `b` falls under source `a`, read as `/`-separated paths: `a` ending in `/`
/// covers everything below it, otherwise the two must match piece for piece (after `%` decoding).
fn path_part_match(a: &str, b: &str) -> Result<bool, CspError> {
    if a.is_empty() || (a == "/" && b.is_empty()) {
        return Ok(true);
    }
    let exact = !a.ends_with('/');
    let mut pieces_a: Vec<&str> = a.split('/').collect();
    let pieces_b: Vec<&str> = b.split('/').collect();
    if pieces_a.len() > pieces_b.len() || (exact && pieces_a.len() != pieces_b.len()) {
        return Ok(false);
    }
    if !exact {
        pieces_a.pop();
    }
    for (piece_a, piece_b) in pieces_a.iter().zip(&pieces_b) {
        if decode_uri_component(piece_a)? != decode_uri_component(piece_b)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Decodes `%XX` escapes; an escape that is malformed or does not form UTF-8 is an error.
fn decode_uri_component(s: &str) -> Result<String, CspError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) != Some(&b'%') {
            let next = bytes.iter().skip(i).position(|&b| b == b'%').map_or(bytes.len(), |p| i + p);
            out.push_str(s.get(i..next).ok_or(CspError::BadEscape)?);
            i = next;
            continue;
        }
        let lead = escaped_byte(bytes, i)?;
        let len = match lead {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return Err(CspError::BadEscape),
        };
        let mut sequence = vec![lead];
        for k in 1..len {
            sequence.push(escaped_byte(bytes, i + 3 * k)?);
        }
        out.push_str(std::str::from_utf8(&sequence).map_err(|_| CspError::BadEscape)?);
        i += 3 * len;
    }
    Ok(out)
}

/// The byte of the `%XX` escape at `at`.
fn escaped_byte(bytes: &[u8], at: usize) -> Result<u8, CspError> {
    let hex = bytes.get(at + 1..at + 3).filter(|_| bytes.get(at) == Some(&b'%')).ok_or(CspError::BadEscape)?;
    let hex = std::str::from_utf8(hex).map_err(|_| CspError::BadEscape)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CspError::BadEscape);
    }
    u8::from_str_radix(hex, 16).map_err(|_| CspError::BadEscape)
}
