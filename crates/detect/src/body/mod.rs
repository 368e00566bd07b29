//! Request bodies read the way the app's parsers will read them, while they stream: the
//! [`Scanner`] undoes `Content-Encoding` and the declared charset, decides the body's shape from
//! its content type — or, when there is none or it says little (`text/plain`,
//! `application/octet-stream`), from its first bytes, as parsers configured with `type: '*/*'`
//! would — and tokenizes it chunk by chunk (form, JSON, multipart, text), handing every value to
//! the detectors. Memory is bounded by one value ([`MAX_VALUE`]), never by the body.
//!
//! Whatever cannot be read is itself a finding of the `evasion` family: an unknown encoding or
//! charset, a broken or exploding compressed stream, a value longer than [`MAX_VALUE`], nesting
//! deeper than [`json::MAX_DEPTH`], a multipart body without a boundary or with runaway headers.

pub mod decode;
pub mod json;
pub mod multipart;

use std::collections::HashMap;

use http::HeaderMap;

use crate::extract::{Part, Source};
use crate::{Family, Finding, Inspector, Sink, MAX_FINDINGS};
use decode::{Charset, Decoder, Problem, Transcoder};

/// The longest single value inspected whole; longer ones are a finding (`value_too_long`).
pub const MAX_VALUE: usize = 64 * 1024;
/// The decoded start of the body kept for the login monitor.
pub const KEEP: usize = 64 * 1024;
/// Bytes looked at to tell an undeclared body's shape.
const SNIFF: usize = 1024;
/// Text bodies are inspected in windows this long, overlapping by [`OVERLAP`].
const WINDOW: usize = 64 * 1024;
const OVERLAP: usize = 2048;

/// What a body turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Form,
    Json,
    Multipart,
    Xml,
    Text,
    Binary,
    /// Not decided yet (too few bytes seen).
    Unknown,
}

enum Tok {
    Sniff,
    Form(FormTok),
    Json(json::JsonTok),
    Multipart(Box<multipart::MultipartTok>),
    Text { xml: bool, buf: Vec<u8> },
    Skip,
}

/// Form bodies: complete `&`-separated pairs go to the detectors; the last, unfinished pair waits.
#[derive(Default)]
struct FormTok {
    carry: Vec<u8>,
    /// Inside a pair longer than [`MAX_VALUE`]: its rest is dropped up to the next `&`.
    skipping: bool,
}

impl FormTok {
    /// Calls `f` with runs of whole pairs; true when a pair ran past [`MAX_VALUE`].
    fn feed(&mut self, mut d: &[u8], f: &mut dyn FnMut(&[u8])) -> bool {
        let mut long = false;
        if self.skipping {
            match memchr::memchr(b'&', d) {
                None => return false,
                Some(n) => {
                    d = &d[n + 1..];
                    self.skipping = false;
                }
            }
        }
        match memchr::memrchr(b'&', d) {
            // Whole pairs straight from the chunk: only the unfinished last one is kept.
            Some(last) if self.carry.is_empty() => {
                f(&d[..last]);
                self.carry.extend_from_slice(&d[last + 1..]);
            }
            Some(_) => {
                self.carry.extend_from_slice(d);
                if let Some(last) = memchr::memrchr(b'&', &self.carry) {
                    f(&self.carry[..last]);
                    self.carry.drain(..=last);
                }
            }
            None => self.carry.extend_from_slice(d),
        }
        if self.carry.len() > MAX_VALUE {
            f(&self.carry[..MAX_VALUE]);
            self.carry.clear();
            self.skipping = true;
            long = true;
        }
        long
    }
}

/// Values of repeated names (`q=a&q=b`, `q[]=`, `q[0]=`, `q[a]=`), inspected joined as the app's
/// array reads (`a,b` and `a b`) as each value arrives: per name, the last `JOIN_TAIL` bytes of
/// the join so far are kept, so that memory stays bounded however many values come. More
/// distinct names than Kevlar joins is a finding of its own (`too_many_names`; body-parser and
/// PHP stop at 1,000).
pub(crate) struct Joins {
    /// By a hash of the name as the app reads it (a collision only joins more than needed).
    map: HashMap<u64, Join, std::hash::BuildHasherDefault<Prehashed>>,
    /// First values, one after the other (a `Join` keeps its range): one buffer, not one each.
    firsts: Vec<u8>,
    prefix: &'static str,
    source: Source,
    told: bool,
}

#[derive(Default)]
struct Join {
    count: u32,
    /// Where the first value as it came (its last `JOIN_TAIL` bytes) is in `firsts`.
    first: (u32, u16),
    /// The join so far is plain text with no suspect word (`raw_form_clean`). Joined with another
    /// such value, only the seam can make one (`1 order` + `by 5`): when the seam has none, the
    /// join is not inspected again.
    clean: bool,
    comma: String,
    space: String,
}

const JOIN_NAMES: usize = 2048;
const JOIN_TAIL: usize = 256;
/// How much of a new value is inspected after the tail (the value alone is inspected whole).
const JOIN_HEAD: usize = 4096;

/// The last `n` bytes of `s`, on a character boundary.
fn tail(s: &str, n: usize) -> &str {
    let mut at = s.len().saturating_sub(n);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

fn head(s: &str, n: usize) -> &str {
    let mut at = s.len().min(n);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    &s[..at]
}

impl Joins {
    pub(crate) fn new(prefix: &'static str, source: Source) -> Joins {
        Joins {
            map: HashMap::with_capacity_and_hasher(16, Default::default()),
            firsts: Vec::new(),
            prefix,
            source,
            told: false,
        }
    }

    /// One `key=value` pair as it came; `clean`: the value is plain (`raw_form_clean`).
    pub(crate) fn add(&mut self, ins: &Inspector, sink: &mut Sink<'_>, key: &[u8], value: &[u8], clean: bool) {
        use std::hash::BuildHasher;
        let decoded = crate::extract::form_decode(key);
        let mut name: &str = &decoded;
        // qs's nesting: `q[]`, `q[0]`, `q[a]`, `q[a][0]` are all parts of what the app reads as `q`.
        if let Some(open) = name.find('[') {
            if open > 0 && name.ends_with(']') {
                name = &name[..open];
            }
        }
        let id = name_key().hash_one(name.as_bytes());
        if !self.map.contains_key(&id) {
            if self.map.len() >= JOIN_NAMES {
                if !self.told {
                    self.told = true;
                    sink.add(Family::Evasion, Some(("too_many_names", 5)), self.prefix, "", "");
                }
            } else {
                let keep = &value[value.len().saturating_sub(JOIN_TAIL)..];
                let at = self.firsts.len() as u32;
                self.firsts.extend_from_slice(keep);
                self.map.insert(id, Join { count: 1, first: (at, keep.len() as u16), clean, ..Join::default() });
            }
            return;
        }
        let Some(j) = self.map.get_mut(&id) else { return };
        j.count = j.count.saturating_add(1);
        let both_clean = j.clean && clean;
        j.clean = both_clean;
        if j.count == 2 {
            let (at, len) = (j.first.0 as usize, usize::from(j.first.1));
            let first = crate::extract::form_decode(&self.firsts[at..at + len]);
            j.comma = tail(&first, JOIN_TAIL).to_owned();
            j.space = j.comma.clone();
        }
        let value = crate::extract::form_decode(value);
        let mut location = String::new();
        for (sep, buf) in [(",", &mut j.comma), (" ", &mut j.space)] {
            // The longest suspect word is 16 bytes: a seam of 24 on each side holds any it makes.
            let plain_seam = both_clean && !crate::needs_look(&format!("{}{sep}{}", tail(buf, 24), head(&value, 24)));
            buf.push_str(sep);
            buf.push_str(head(&value, JOIN_HEAD));
            if !plain_seam {
                j.clean = false;
                if location.is_empty() {
                    location = format!("{}.{name}[]", self.prefix);
                }
                ins.value(sink, self.source, &location, name, buf);
            }
            if value.len() > JOIN_HEAD {
                buf.clear();
                buf.push_str(tail(&value, JOIN_TAIL));
            } else {
                let cut = buf.len() - tail(buf, JOIN_TAIL).len();
                buf.drain(..cut);
            }
        }
    }
}

/// The join table's key for a name: SipHash with a key drawn once per process, so that no one can
/// aim names at one bucket of the table (a collision itself only joins two names).
fn name_key() -> &'static std::hash::RandomState {
    static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(std::hash::RandomState::new)
}

/// The join table's keys are hashes already: the table uses them as they are.
#[derive(Default)]
pub(crate) struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Tells the shape of an undeclared body from its first bytes.
pub fn sniff(b: &[u8]) -> (Shape, Option<String>) {
    let b = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let t = &b[start..];
    match t.first() {
        None => return (Shape::Text, None),
        Some(b'{') | Some(b'[') => return (Shape::Json, None),
        Some(b'<') => return (Shape::Xml, None),
        _ => {}
    }
    if let Some(rest) = t.strip_prefix(b"--") {
        let line_end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = rest[..line_end].strip_suffix(b"\r").unwrap_or(&rest[..line_end]);
        if !line.is_empty() && line.len() <= 200 && line.iter().all(|c| c.is_ascii_graphic()) && line_end < rest.len() {
            return (Shape::Multipart, Some(String::from_utf8_lossy(line).into_owned()));
        }
    }
    let head = &t[..t.len().min(512)];
    if head.iter().any(|c| *c == 0 || (*c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r' | 0x1b))) {
        return (Shape::Binary, None);
    }
    if memchr::memchr(b'=', t).is_some() {
        return (Shape::Form, None);
    }
    (Shape::Text, None)
}

/// One request body on its way through: fed chunk by chunk, then finished.
pub struct Scanner {
    decoder: Option<Decoder>,
    transcoder: Transcoder,
    tok: Tok,
    shape: Shape,
    sniff: Vec<u8>,
    prefix: Vec<u8>,
    findings: Vec<Finding>,
    told: u32,
    joins: Joins,
    parts: Vec<Part<'static>>,
    stopped: bool,
    finished: bool,
    /// The request declared no `Content-Type` at all.
    untyped: bool,
    /// Only decode (for the login monitor when detection is off): keep the decoded start, read
    /// no values.
    decode_only: bool,
}

/// The rules of the `evasion` family, with their scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Evasion {
    UnknownEncoding,
    BadEncoding,
    DecompressionBomb,
    UnknownCharset,
    ValueTooLong,
    TooDeep,
    MultipartUnreadable,
    UntypedBinary,
}

impl Evasion {
    pub fn rule(self) -> &'static str {
        match self {
            Evasion::UnknownEncoding => "unknown_encoding",
            Evasion::BadEncoding => "bad_encoding",
            Evasion::DecompressionBomb => "decompression_bomb",
            Evasion::UnknownCharset => "unknown_charset",
            Evasion::ValueTooLong => "value_too_long",
            Evasion::TooDeep => "too_deep",
            Evasion::MultipartUnreadable => "multipart_unreadable",
            Evasion::UntypedBinary => "untyped_binary",
        }
    }

    fn score(self) -> u32 {
        match self {
            Evasion::DecompressionBomb => 8,
            Evasion::UnknownEncoding | Evasion::TooDeep => 6,
            _ => 5,
        }
    }
}

impl Scanner {
    /// A scanner for the body of a request with these headers.
    pub fn new(ins: &Inspector, headers: &HeaderMap) -> Scanner {
        let mut s = Scanner {
            decoder: None,
            transcoder: Transcoder::new(Charset::Utf8),
            tok: Tok::Sniff,
            shape: Shape::Unknown,
            sniff: Vec::new(),
            prefix: Vec::new(),
            findings: Vec::new(),
            told: 0,
            joins: Joins::new("body", Source::Body),
            parts: Vec::new(),
            stopped: false,
            finished: false,
            untyped: !headers.contains_key(http::header::CONTENT_TYPE),
            decode_only: false,
        };
        let encodings: Vec<String> = headers
            .get_all(http::header::CONTENT_ENCODING)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if !encodings.is_empty() {
            match Decoder::new(&encodings.join(",")) {
                Ok(d) => s.decoder = d,
                // Read as it came: the app may ignore the header.
                Err(_) => s.tell(ins, Evasion::UnknownEncoding),
            }
        }
        let ct = headers.get(http::header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let ct = ct.unwrap_or_default();
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        for (k, v) in multipart::params(&ct) {
            if k.eq_ignore_ascii_case("charset") {
                match Charset::parse(&v) {
                    Some(cs) => s.transcoder = Transcoder::new(cs),
                    None => s.tell(ins, Evasion::UnknownCharset),
                }
            }
        }
        if mime == "application/x-www-form-urlencoded" {
            s.start(Shape::Form, None);
        } else if mime == "application/json" || mime.ends_with("+json") || mime == "application/csp-report" {
            s.start(Shape::Json, None);
        } else if mime.starts_with("multipart/") {
            match multipart::boundary(&ct) {
                Some(b) => s.start(Shape::Multipart, Some(b)),
                None => s.tell(ins, Evasion::MultipartUnreadable),
            }
        } else if mime.ends_with("/xml") || mime.ends_with("+xml") {
            s.start(Shape::Xml, None);
        }
        s
    }

    fn tell(&mut self, ins: &Inspector, e: Evasion) {
        let bit = 1 << (e as u8);
        if self.told & bit != 0 {
            return;
        }
        self.told |= bit;
        if !ins.cfg.families.contains(Family::Evasion) || self.findings.len() >= MAX_FINDINGS {
            return;
        }
        self.findings.push(Finding {
            family: Family::Evasion,
            rule: e.rule(),
            location: "body".into(),
            name: String::new(),
            excerpt: String::new(),
            score: e.score(),
            layers: Vec::new(),
            detail: String::new(),
        });
    }

    fn start(&mut self, shape: Shape, boundary: Option<String>) {
        self.shape = shape;
        self.tok = match (shape, boundary) {
            (Shape::Form, _) => Tok::Form(FormTok::default()),
            (Shape::Json, _) => Tok::Json(json::JsonTok::default()),
            (Shape::Multipart, Some(b)) => Tok::Multipart(Box::new(multipart::MultipartTok::new(&b))),
            (Shape::Xml, _) => Tok::Text { xml: true, buf: Vec::new() },
            (Shape::Binary, _) => Tok::Skip,
            _ => Tok::Text { xml: false, buf: Vec::new() },
        };
    }

    /// What the body turned out to be (`Unknown` until enough of it was seen).
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// A scanner that only undoes `Content-Encoding` and the charset, keeping the decoded start
    /// (what the login monitor reads when detection is off); it reads no values.
    pub fn decoding(ins: &Inspector, headers: &HeaderMap) -> Scanner {
        let mut s = Scanner::new(ins, headers);
        s.decode_only = true;
        s
    }

    /// The decoded start of the body (up to [`KEEP`] bytes), as the app's parser reads it.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Everything found so far.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The next chunk of the body, as it came from the client.
    pub fn feed(&mut self, ins: &Inspector, chunk: &[u8]) {
        if self.stopped || self.finished || chunk.is_empty() {
            return;
        }
        match self.decoder.take() {
            None => self.decoded(ins, chunk),
            Some(mut d) => {
                let r = d.feed(chunk, &mut |out| self.decoded(ins, out));
                self.decoder = Some(d);
                if let Err(p) = r {
                    self.problem(ins, p);
                }
            }
        }
    }

    fn problem(&mut self, ins: &Inspector, p: Problem) {
        self.tell(
            ins,
            match p {
                Problem::Bomb => Evasion::DecompressionBomb,
                Problem::Corrupt => Evasion::BadEncoding,
                Problem::UnknownEncoding => Evasion::UnknownEncoding,
            },
        );
        self.stopped = true;
    }

    fn decoded(&mut self, ins: &Inspector, d: &[u8]) {
        let converted;
        let d = if self.transcoder.is_identity() {
            d
        } else {
            let mut v = Vec::with_capacity(d.len() * 2);
            self.transcoder.feed(d, &mut v);
            converted = v;
            &converted[..]
        };
        if self.prefix.len() < KEEP {
            let room = KEEP - self.prefix.len();
            self.prefix.extend_from_slice(&d[..d.len().min(room)]);
        }
        if self.decode_only {
            return;
        }
        if let Tok::Sniff = self.tok {
            self.sniff.extend_from_slice(d);
            if self.sniff.len() >= SNIFF {
                self.decide(ins);
            }
            return;
        }
        self.tokens(ins, d);
    }

    fn decide(&mut self, ins: &Inspector) {
        let (shape, boundary) = sniff(&self.sniff);
        // Binary is skipped, but a catch-all parser still reads `\0&q=…` as a form: binary with no
        // type at all (a real client names its binary uploads) is a finding, not a silent skip.
        if shape == Shape::Binary && self.untyped {
            self.tell(ins, Evasion::UntypedBinary);
        }
        self.start(shape, boundary);
        let buf = std::mem::take(&mut self.sniff);
        self.tokens(ins, &buf);
    }

    fn tokens(&mut self, ins: &Inspector, d: &[u8]) {
        let mut told = Vec::new();
        let mut sink = Sink { out: &mut self.findings, families: ins.cfg.families };
        let mut fallback = None;
        match &mut self.tok {
            Tok::Sniff | Tok::Skip => {}
            Tok::Form(t) => {
                let joins = &mut self.joins;
                let long = t.feed(d, &mut |run| ins.form(&mut sink, run, "body", Source::Body, Some(joins)));
                if long {
                    told.push(Evasion::ValueTooLong);
                }
            }
            Tok::Json(t) => {
                let r = t.feed(d, &mut self.parts, &mut |l| {
                    told.push(match l {
                        json::Limit::Deep => Evasion::TooDeep,
                        json::Limit::LongValue => Evasion::ValueTooLong,
                    })
                });
                ins.scan_parts(&mut sink, &self.parts);
                self.parts.clear();
                if let Err(json::SyntaxError(at)) = r {
                    // Not JSON after all (or nested past the tokenizer's stack): read the rest as text.
                    fallback = Some(d[at.min(d.len())..].to_vec());
                }
            }
            Tok::Multipart(t) => {
                t.feed(d, &mut self.parts, &mut |l| {
                    told.push(match l {
                        multipart::Limit::LongValue => Evasion::ValueTooLong,
                        multipart::Limit::LongHead => Evasion::MultipartUnreadable,
                    })
                });
                ins.scan_parts(&mut sink, &self.parts);
                self.parts.clear();
            }
            Tok::Text { xml, buf } => {
                buf.extend_from_slice(d);
                while buf.len() >= WINDOW {
                    ins.text(&mut sink, &String::from_utf8_lossy(&buf[..WINDOW]), *xml);
                    buf.drain(..WINDOW - OVERLAP);
                }
            }
        }
        for e in told {
            self.tell(ins, e);
        }
        if let Some(rest) = fallback {
            self.tok = Tok::Text { xml: false, buf: Vec::new() };
            self.tokens(ins, &rest);
        }
    }

    /// The body ended (`complete`) or Kevlar stops reading it; inspects what is still pending.
    pub fn finish(&mut self, ins: &Inspector) {
        if self.finished {
            return;
        }
        if !self.stopped {
            if let Some(mut d) = self.decoder.take() {
                let r = d.finish(&mut |out| self.decoded(ins, out));
                if let Err(p) = r {
                    self.problem(ins, p);
                }
            }
        }
        if self.decode_only {
            self.finished = true;
            return;
        }
        if let Tok::Sniff = self.tok {
            self.decide(ins);
        }
        self.finished = true;
        let mut unreadable = false;
        let mut sink = Sink { out: &mut self.findings, families: ins.cfg.families };
        match &mut self.tok {
            Tok::Form(t) => {
                let rest = std::mem::take(&mut t.carry);
                if !t.skipping {
                    ins.form(&mut sink, &rest, "body", Source::Body, Some(&mut self.joins));
                }
            }
            Tok::Json(t) => {
                t.finish(&mut self.parts);
                ins.scan_parts(&mut sink, &self.parts);
                self.parts.clear();
            }
            Tok::Multipart(t) => {
                unreadable = !t.finish(&mut self.parts);
                ins.scan_parts(&mut sink, &self.parts);
                self.parts.clear();
            }
            Tok::Text { xml, buf } => {
                if !buf.is_empty() {
                    ins.text(&mut sink, &String::from_utf8_lossy(buf), *xml);
                }
                buf.clear();
            }
            Tok::Sniff | Tok::Skip => {}
        }
        if unreadable {
            self.tell(ins, Evasion::MultipartUnreadable);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::InspectConfig;

    fn scan(ct: Option<&str>, body: &[u8], step: usize) -> Vec<(String, &'static str)> {
        let ins = Inspector::new(InspectConfig::default());
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert("content-type", ct.parse().unwrap());
        }
        let mut s = Scanner::new(&ins, &h);
        for c in body.chunks(step) {
            s.feed(&ins, c);
        }
        s.finish(&ins);
        s.findings().iter().map(|f| (f.family.as_str().to_owned(), f.rule)).collect()
    }

    #[test]
    fn a_multipart_body_read_leniently_and_one_no_parser_reads_is_a_finding() {
        let ct = Some("multipart/form-data; boundary=----B");
        let lf_only =
            b"------B\nContent-Disposition: form-data; name=\"file\"; filename=\"../1.7z\"\n\nDATA\n------B--\n";
        let unclosed = b"------B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello";
        let no_delimiter = b"just some text, no boundary at all";
        let whole = b"------B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n------B--\r\n";
        for step in [1, 7, 4096] {
            // Bare `\n` line breaks: read as lenient parsers (PHP's) read them, so what they hand
            // the app is inspected.
            assert_eq!(
                scan(ct, lf_only, step),
                vec![("traversal".to_owned(), "dot_dot_slash")],
                "LF line breaks alone"
            );
            assert!(
                scan(ct, unclosed, step).contains(&("evasion".into(), "multipart_unreadable")),
                "no closing delimiter"
            );
            assert!(scan(ct, no_delimiter, step).contains(&("evasion".into(), "multipart_unreadable")), "no delimiter");
            assert!(scan(ct, whole, step).is_empty(), "{:?}", scan(ct, whole, step));
            assert!(scan(ct, b"", step).is_empty());
        }
    }

    #[test]
    fn limits_are_findings() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let f = scan(Some("application/json"), deep.as_bytes(), 7);
        assert!(f.iter().any(|(_, r)| *r == "too_deep"), "{f:?}");
        let long = format!("a={}", "x".repeat(MAX_VALUE + 10));
        let f = scan(Some("application/x-www-form-urlencoded"), long.as_bytes(), 4096);
        assert!(f.iter().any(|(_, r)| *r == "value_too_long"), "{f:?}");
    }

    #[test]
    fn a_suspect_word_made_at_the_seam_of_two_plain_values_is_inspected() {
        // Each half is plain; joined as the app's array reads, `1 order by 5` is a column probe.
        let ct = Some("application/x-www-form-urlencoded");
        let whole = scan(ct, b"q=1+order+by+5", 64);
        assert!(whole.iter().any(|(fam, _)| fam == "sqli"), "the joined text itself is a finding: {whole:?}");
        let split = scan(ct, b"q=1+order&q=by+5", 64);
        assert!(split.iter().any(|(fam, _)| fam == "sqli"), "{split:?}");
        assert!(scan(ct, b"q=red&q=blue&q=green", 64).is_empty());
    }

    #[test]
    fn untyped_binary_is_a_finding_typed_binary_is_not() {
        let body = b"\0\0\0&q=1%27%20union%20select%20password%20from%20users--";
        assert!(scan(None, body, 5).iter().any(|(_, r)| *r == "untyped_binary"));
        assert!(scan(Some("application/octet-stream"), body, 5).is_empty());
    }

    #[test]
    fn shapes_are_sniffed() {
        assert_eq!(sniff(b"  {\"a\":1}").0, Shape::Json);
        assert_eq!(sniff(b"--abc\r\nContent-Disposition: form-data").1.as_deref(), Some("abc"));
        assert_eq!(sniff(b"a=1&b=2").0, Shape::Form);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0").0, Shape::Binary);
        assert_eq!(sniff(b"hello there").0, Shape::Text);
        let f = scan(None, b"{\"q\":\"1' or '1'='1\"}", 3);
        assert!(f.iter().any(|(fam, _)| fam == "sqli"), "{f:?}");
    }
}
