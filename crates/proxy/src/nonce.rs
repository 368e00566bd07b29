//! `[headers] csp_nonce`: a fresh nonce per HTML answer, put in its Content-Security-Policy
//! (`script-src 'nonce-…' 'strict-dynamic'`) and on every `<script>` (and `<style>`, when the style
//! policy has no `'unsafe-inline'` to lose) as the answer streams through, decompressed and
//! compressed again on the way. The app's own inline scripts run without `'unsafe-inline'`;
//! an inline handler or a `javascript:` URL an attacker gets into the page does not.
//!
//! A proxy cannot tell the app's `<script>` from one the app reflected from the request, so the
//! request's own input is checked: a script whose `src` appears in a query value gets no nonce,
//! and an inline script whose whole text appears in one is emptied (and reported). An answer
//! Kevlar cannot rewrite (an unknown `Content-Encoding`, a charset that is not ASCII-compatible)
//! keeps its policy as it was, and that is reported too.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use lol_html::html_content::ContentType;
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{element, text, MemorySettings};

/// What the rewriter may hold while parsing (a tag or a script it is checking, not the page).
const REWRITER_MEMORY: usize = 1 << 20;
/// An inline script longer than this is passed on without the reflection check.
const SCRIPT_CHECK_MAX: usize = 64 << 10;
/// Query values shorter than this are not taken as a reflected script (`a=1` is in many scripts).
const MIN_REFLECTED: usize = 6;
/// At most this many query values, each this long, are checked against the page's scripts.
const MAX_INPUTS: usize = 64;
const MAX_INPUT_LEN: usize = 8 << 10;

/// Why an HTML answer kept its policy as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrewritable {
    Encoding,
    Charset,
}

impl Unrewritable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unrewritable::Encoding => "unknown Content-Encoding",
            Unrewritable::Charset => "charset not ASCII-compatible",
        }
    }
}

/// What the body rewriter reports as it goes: inline scripts emptied because they repeat the
/// request's input.
pub type OnReflected = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Clone, Copy)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
}

/// Whether this answer is an HTML page the nonce applies to; the coding of its body and its
/// charset (UTF-8 unless the header says another); `Err` for a page that cannot be rewritten.
fn rewritable(
    method: &http::Method,
    status: u16,
    headers: &HeaderMap,
) -> Option<Result<(Coding, lol_html::AsciiCompatibleEncoding), Unrewritable>> {
    if method == http::Method::HEAD || status < 200 || status == 204 || status == 304 {
        return None;
    }
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?.to_ascii_lowercase();
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime != "text/html" && mime != "application/xhtml+xml" {
        return None;
    }
    let mut charset = lol_html::AsciiCompatibleEncoding::utf_8();
    if let Some(cs) = ct.split(';').skip(1).find_map(|p| p.trim().strip_prefix("charset=")) {
        let found = encoding_rs::Encoding::for_label_no_replacement(cs.trim_matches('"').as_bytes())
            .and_then(lol_html::AsciiCompatibleEncoding::new);
        match found {
            Some(e) => charset = e,
            None => return Some(Err(Unrewritable::Charset)),
        }
    }
    let coding =
        match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase()) {
            None => Coding::Identity,
            Some(e) if e.is_empty() || e == "identity" => Coding::Identity,
            Some(e) if e == "gzip" || e == "x-gzip" => Coding::Gzip,
            Some(e) if e == "deflate" => Coding::Deflate,
            Some(e) if e == "br" => Coding::Brotli,
            Some(_) => return Some(Err(Unrewritable::Encoding)),
        };
    Some(Ok((coding, charset)))
}

/// A nonce: 128 random bits from the operating system, base64.
fn fresh_nonce() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // Without randomness there is no nonce worth having; a fixed one would be guessable.
        return String::new();
    }
    base64(&b)
}

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The policy with the nonce: `script-src` (from `default-src` when absent) gains `'nonce-…'
/// 'strict-dynamic'`; `style-src` gains the nonce only when it has no `'unsafe-inline'` (a nonce
/// would turn that off for every `style=` attribute). `None` when the policy has no script rule
/// at all (nothing to relax: inline scripts already run).
fn with_nonce(policy: &str, nonce: &str) -> (Option<String>, bool) {
    let mut dirs: Vec<(String, String)> = policy
        .split(';')
        .filter_map(|d| {
            let d = d.trim();
            let (name, rest) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
            (!name.is_empty()).then(|| (name.to_ascii_lowercase(), rest.trim().to_owned()))
        })
        .collect();
    let token = format!("'nonce-{nonce}'");
    let script = match dirs.iter().position(|(n, _)| n == "script-src") {
        Some(i) => Some(i),
        None => dirs.iter().position(|(n, _)| n == "default-src").map(|d| {
            let sources = dirs[d].1.clone();
            dirs.push(("script-src".to_owned(), sources));
            dirs.len() - 1
        }),
    };
    let Some(script) = script else { return (None, false) };
    let s = &mut dirs[script].1;
    if s.split_whitespace().any(|x| x == "'none'") {
        *s = String::new();
    }
    *s = format!("{s} {token} 'strict-dynamic'").trim().to_owned();
    let mut styles = false;
    if let Some((_, s)) = dirs.iter_mut().find(|(n, _)| n == "style-src") {
        if !s.split_whitespace().any(|x| x.eq_ignore_ascii_case("'unsafe-inline'")) {
            if s.split_whitespace().any(|x| x == "'none'") {
                *s = String::new();
            }
            *s = format!("{s} {token}").trim().to_owned();
            styles = true;
        }
    }
    let text = dirs.iter().map(|(n, s)| if s.is_empty() { n.clone() } else { format!("{n} {s}") }).collect::<Vec<_>>();
    (Some(text.join(";")), styles)
}

/// The request's query values, decoded, long enough to be a script.
pub fn inputs(query: Option<&str>) -> Vec<String> {
    let Some(q) = query else { return Vec::new() };
    q.split('&')
        .filter_map(|p| p.split_once('=').map(|(_, v)| v))
        .map(|v| percent_decode(&v.replace('+', " ")))
        .filter(|v| v.len() >= MIN_REFLECTED)
        .map(|mut v| {
            if v.len() > MAX_INPUT_LEN {
                let mut end = MAX_INPUT_LEN;
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                v.truncate(end);
            }
            v
        })
        .take(MAX_INPUTS)
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Prepares an HTML answer: the nonce in its policies, validators and length out. `Ok(None)`:
/// not an HTML page, or no policy with a script rule; `Err`: a page that cannot be rewritten
/// (its headers untouched).
pub fn prepare(
    method: &http::Method,
    status: u16,
    headers: &mut HeaderMap,
    inputs: Vec<String>,
    on_reflected: OnReflected,
) -> Result<Option<Rewrite>, Unrewritable> {
    let (coding, charset) = match rewritable(method, status, headers) {
        None => return Ok(None),
        Some(r) => r?,
    };
    let nonce = fresh_nonce();
    if nonce.is_empty() {
        return Ok(None);
    }
    let mut styles = false;
    let mut any = false;
    for name in [header::CONTENT_SECURITY_POLICY, header::CONTENT_SECURITY_POLICY_REPORT_ONLY] {
        let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
        if values.is_empty() {
            continue;
        }
        headers.remove(&name);
        for v in values {
            let text = v.to_str().unwrap_or("");
            let (new, st) = with_nonce(text, &nonce);
            match new.and_then(|n| HeaderValue::from_str(&n).ok()) {
                Some(n) => {
                    any = true;
                    styles |= st && name == header::CONTENT_SECURITY_POLICY;
                    headers.append(&name, n);
                }
                None => {
                    headers.append(&name, v);
                }
            }
        }
    }
    if !any {
        return Ok(None);
    }
    // The body changes with every answer: its length, and validators that would let a cache
    // serve an old page (with an old nonce) under the new policy.
    for h in [header::CONTENT_LENGTH, header::ETAG, header::LAST_MODIFIED] {
        headers.remove(h);
    }
    if matches!(coding, Coding::Brotli) {
        // Decompressed and sent as it is (no brotli encoder here).
        headers.remove(header::CONTENT_ENCODING);
    }
    Ok(Some(Rewrite::new(coding, charset, Handlers { nonce, styles, inputs: Arc::new(inputs), on_reflected })))
}

type Sink = Box<dyn FnMut(&[u8]) + Send>;

/// Feeds decompressed bytes to the HTML rewriter.
struct Feed {
    rewriter: Option<HtmlRewriter<'static, Sink>>,
}

impl Write for Feed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(r) = self.rewriter.as_mut() {
            r.write(buf).map_err(std::io::Error::other)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Decode {
    Identity(Box<Feed>),
    Gzip(Box<flate2::write::GzDecoder<Feed>>),
    Zlib(Box<flate2::write::ZlibDecoder<Feed>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Feed>>),
}

enum Encode {
    Identity,
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zlib(flate2::write::ZlibEncoder<Vec<u8>>),
}

/// One answer's body on its way through the rewriter.
pub struct Rewrite {
    decode: Option<Decode>,
    encode: Encode,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Rewrite {
    fn new(coding: Coding, charset: lol_html::AsciiCompatibleEncoding, handlers: Handlers) -> Rewrite {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink_out = out.clone();
        let sink: Sink = Box::new(move |b: &[u8]| {
            if let Ok(mut o) = sink_out.lock() {
                o.extend_from_slice(b);
            }
        });
        let rewriter = HtmlRewriter::new(settings(handlers).with_encoding(charset), sink);
        let feed = Feed { rewriter: Some(rewriter) };
        let level = flate2::Compression::fast();
        let (decode, encode) = match coding {
            Coding::Identity => (Decode::Identity(Box::new(feed)), Encode::Identity),
            Coding::Gzip => (
                Decode::Gzip(Box::new(flate2::write::GzDecoder::new(feed))),
                Encode::Gzip(flate2::write::GzEncoder::new(Vec::new(), level)),
            ),
            Coding::Deflate => (
                Decode::Zlib(Box::new(flate2::write::ZlibDecoder::new(feed))),
                Encode::Zlib(flate2::write::ZlibEncoder::new(Vec::new(), level)),
            ),
            Coding::Brotli => {
                (Decode::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(feed, 4096))), Encode::Identity)
            }
        };
        Rewrite { decode: Some(decode), encode, out }
    }

    /// The rewritten (and compressed again) bytes for this piece of the app's body.
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<Bytes> {
        match self.decode.as_mut() {
            Some(Decode::Identity(f)) => f.write_all(chunk)?,
            Some(Decode::Gzip(d)) => d.write_all(chunk)?,
            Some(Decode::Zlib(d)) => d.write_all(chunk)?,
            Some(Decode::Brotli(d)) => d.write_all(chunk)?,
            None => return Err(std::io::Error::other("the body ended already")),
        }
        self.drain(false)
    }

    /// The last bytes, once the app's body is over.
    pub fn finish(&mut self) -> std::io::Result<Bytes> {
        let feed = match self.decode.take() {
            Some(Decode::Identity(f)) => *f,
            Some(Decode::Gzip(d)) => d.finish()?,
            Some(Decode::Zlib(d)) => d.finish()?,
            Some(Decode::Brotli(d)) => d.into_inner().map_err(|_| std::io::Error::other("a broken brotli stream"))?,
            None => return Ok(Bytes::new()),
        };
        if let Some(r) = feed.rewriter {
            r.end().map_err(std::io::Error::other)?;
        }
        self.drain(true)
    }

    fn drain(&mut self, last: bool) -> std::io::Result<Bytes> {
        let html = match self.out.lock() {
            Ok(mut o) => std::mem::take(&mut *o),
            Err(_) => return Err(std::io::Error::other("the rewriter's buffer is poisoned")),
        };
        let bytes = match &mut self.encode {
            Encode::Identity => html,
            Encode::Gzip(e) => {
                e.write_all(&html)?;
                if last {
                    e.try_finish()?;
                } else if !html.is_empty() {
                    e.flush()?;
                }
                std::mem::take(e.get_mut())
            }
            Encode::Zlib(e) => {
                e.write_all(&html)?;
                if last {
                    e.try_finish()?;
                } else if !html.is_empty() {
                    e.flush()?;
                }
                std::mem::take(e.get_mut())
            }
        };
        Ok(Bytes::from(bytes))
    }
}

/// What the rewriter's handlers need.
struct Handlers {
    nonce: String,
    styles: bool,
    inputs: Arc<Vec<String>>,
    on_reflected: OnReflected,
}

/// The handlers: the nonce on scripts (and styles), the reflection check on scripts.
fn settings(h: Handlers) -> Settings<'static, 'static> {
    let Handlers { nonce, styles, inputs, on_reflected } = h;
    let script_nonce = nonce.clone();
    let src_inputs = inputs.clone();
    let mut s = Settings::new_send()
        .with_memory_settings(MemorySettings::new().with_max_allowed_memory_usage(REWRITER_MEMORY))
        .append_element_content_handler(element!("script", move |el| {
            let reflected = el.get_attribute("src").is_some_and(|src| {
                let src = src.trim();
                src.len() >= MIN_REFLECTED && src_inputs.iter().any(|i| i.contains(src))
            });
            if reflected {
                el.remove_attribute("nonce");
            } else {
                el.set_attribute("nonce", &script_nonce)?;
            }
            Ok(())
        }))
        .append_element_content_handler(inline_check(inputs, on_reflected));
    if styles {
        s = s.append_element_content_handler(element!("style", move |el| {
            el.set_attribute("nonce", &nonce)?;
            Ok(())
        }));
    }
    s
}

/// An inline script's text is held back until it is complete (at most `SCRIPT_CHECK_MAX`), then
/// passed on, or emptied when the whole of it is in one of the request's query values.
fn inline_check(
    inputs: Arc<Vec<String>>,
    on_reflected: OnReflected,
) -> (std::borrow::Cow<'static, lol_html::Selector>, lol_html::send::ElementContentHandlers<'static>) {
    let mut held = String::new();
    let mut passing = false;
    text!("script", move |t| {
        if passing {
            if t.last_in_text_node() {
                passing = false;
            }
            return Ok(());
        }
        held.push_str(t.as_str());
        if !t.last_in_text_node() {
            if held.len() > SCRIPT_CHECK_MAX {
                t.replace(&std::mem::take(&mut held), ContentType::Html);
                passing = true;
            } else {
                t.remove();
            }
            return Ok(());
        }
        let whole = std::mem::take(&mut held);
        let body = whole.trim();
        if body.len() >= MIN_REFLECTED && inputs.iter().any(|i| i.contains(body)) {
            on_reflected(body);
            t.replace("/* emptied by Kevlar: this script repeats the request's input */", ContentType::Html);
        } else {
            t.replace(&whole, ContentType::Html);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rewrite(html: &str, query: Option<&str>) -> (String, Vec<String>) {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'self';script-src 'self'"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let mut r = prepare(
            &http::Method::GET,
            200,
            &mut h,
            inputs(query),
            Box::new(move |s| s2.lock().unwrap().push(s.to_owned())),
        )
        .unwrap()
        .unwrap();
        let csp = h.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap().to_owned();
        let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_owned();
        let mut out = Vec::new();
        // One byte at a time: every split of a tag and of a script's text.
        for b in html.as_bytes() {
            out.extend_from_slice(&r.write(&[*b]).unwrap());
        }
        out.extend_from_slice(&r.finish().unwrap());
        let text = String::from_utf8(out).unwrap().replace(&nonce, "N");
        let seen = seen.lock().unwrap().clone();
        (text, seen)
    }

    #[test]
    fn scripts_get_the_nonce_and_the_policy_says_it() {
        let (out, seen) = rewrite("<p>hi</p><script>var a = 1;</script><SCRIPT src=/app.js></SCRIPT>", None);
        assert_eq!(out, "<p>hi</p><script nonce=\"N\">var a = 1;</script><SCRIPT src=/app.js nonce=\"N\"></SCRIPT>");
        assert!(seen.is_empty());
        let (p, styles) = with_nonce("default-src 'self';style-src 'self' 'unsafe-inline'", "X");
        assert_eq!(
            p.unwrap(),
            "default-src 'self';style-src 'self' 'unsafe-inline';script-src 'self' 'nonce-X' 'strict-dynamic'"
        );
        assert!(!styles, "a nonce would switch 'unsafe-inline' off for style attributes");
        let (p, styles) = with_nonce("script-src 'none';style-src 'none'", "X");
        assert_eq!(p.unwrap(), "script-src 'nonce-X' 'strict-dynamic';style-src 'nonce-X'");
        assert!(styles);
        assert_eq!(with_nonce("img-src 'self'", "X").0, None, "no script rule: nothing to relax");
    }

    #[test]
    fn a_script_the_request_brought_gets_no_nonce_and_is_emptied() {
        let q = "q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E&src=https://evil.example/x.js";
        let html = "<p>results for <script>alert(document.cookie)</script></p><script>var q = \"alert(document.cookie)\";</script>\
                    <script src=\"https://evil.example/x.js\"></script>";
        let (out, seen) = rewrite(html, Some(q));
        assert!(out.contains("<script nonce=\"N\">/* emptied by Kevlar"), "{out}");
        assert!(
            out.contains("<script nonce=\"N\">var q = \"alert(document.cookie)\";</script>"),
            "the app's own script: {out}"
        );
        assert!(out.contains("<script src=\"https://evil.example/x.js\"></script>"), "{out}");
        assert_eq!(seen, vec!["alert(document.cookie)".to_owned()]);
    }

    #[test]
    fn compressed_pages_are_rewritten_and_compressed_again() {
        use std::io::Read;
        let page = format!("<html><script>go()</script>{}</html>", "x".repeat(100_000));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(page.as_bytes()).unwrap();
        let body = gz.finish().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("script-src 'self'"));
        let mut r = prepare(&http::Method::GET, 200, &mut h, vec![], Box::new(|_| {})).unwrap().unwrap();
        assert!(h.get(header::CONTENT_LENGTH).is_none() && h.get(header::CONTENT_ENCODING).is_some());
        let mut out = Vec::new();
        for c in body.chunks(777) {
            out.extend_from_slice(&r.write(c).unwrap());
        }
        out.extend_from_slice(&r.finish().unwrap());
        let mut text = String::new();
        flate2::read::GzDecoder::new(&out[..]).read_to_string(&mut text).unwrap();
        assert!(text.starts_with("<html><script nonce=\"") && text.ends_with("x</html>"), "{}", &text[..60]);
        // What cannot be rewritten is said, and the headers are left alone.
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("zstd"));
        let before = h.clone();
        assert_eq!(
            prepare(&http::Method::GET, 200, &mut h, vec![], Box::new(|_| {})).err(),
            Some(Unrewritable::Encoding)
        );
        assert_eq!(h, before);
        // Not HTML, a HEAD, a 304: nothing to do.
        let mut j = HeaderMap::new();
        j.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(prepare(&http::Method::GET, 200, &mut j, vec![], Box::new(|_| {})).unwrap().is_none());
    }

    #[test]
    fn base64_is_standard() {
        assert_eq!(base64(b"any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw==");
        assert_eq!(fresh_nonce().len(), 24);
        assert_ne!(fresh_nonce(), fresh_nonce());
    }
}
