//! Taking a request apart into the named values detectors look at: query arguments, form, JSON
//! (nested values flattened with their paths: `body.items[0].name`) and multipart bodies, cookies.
//! Bounded: at most [`MAX_PARTS`] values, each cut to [`MAX_VALUE`] bytes.

use std::borrow::Cow;

pub const MAX_PARTS: usize = 512;
pub const MAX_VALUE: usize = 16 * 1024;
const MAX_DEPTH: usize = 32;

/// Where a value came from; decides which families look at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Arg,
    Body,
    Cookie,
}

#[derive(Debug)]
pub struct Part<'a> {
    pub source: Source,
    /// `args.q`, `body.items[0].name`, `cookie.sid`; empty when it is `{prefix}.{name}`, built
    /// only when something is found (see [`Part::location`]).
    pub location: String,
    pub prefix: &'static str,
    /// The parameter's own name (for exclusions and key checks).
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

fn cut(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.len() <= MAX_VALUE {
        return s;
    }
    let mut end = MAX_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(s[..end].to_owned())
}

impl Part<'_> {
    pub fn location(&self) -> Cow<'_, str> {
        if self.location.is_empty() {
            Cow::Owned(format!("{}.{}", self.prefix, self.name))
        } else {
            Cow::Borrowed(&self.location)
        }
    }
}

/// One form-encoded component: `+` is a space, `%XX` a byte; borrowed when there is nothing to
/// undo. Bytes that do not form UTF-8 are replaced.
fn form_decode(raw: &[u8]) -> Cow<'_, str> {
    if memchr::memchr2(b'%', b'+', raw).is_none() {
        return String::from_utf8_lossy(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match memchr::memchr2(b'%', b'+', &raw[i..]) {
            None => {
                out.extend_from_slice(&raw[i..]);
                break;
            }
            Some(n) => {
                out.extend_from_slice(&raw[i..i + n]);
                i += n;
                if raw[i] == b'+' {
                    out.push(b' ');
                    i += 1;
                } else {
                    let hex = |b: u8| (b as char).to_digit(16);
                    match (raw.get(i + 1).and_then(|b| hex(*b)), raw.get(i + 2).and_then(|b| hex(*b))) {
                        (Some(h), Some(l)) => {
                            out.push((h * 16 + l) as u8);
                            i += 3;
                        }
                        _ => {
                            out.push(b'%');
                            i += 1;
                        }
                    }
                }
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// `a=1&b=2` (form decoding: `+` is a space, one layer of percent-encoding undone).
pub fn form<'a>(raw: &'a [u8], prefix: &'static str, source: Source, out: &mut Vec<Part<'a>>) {
    for pair in raw.split(|b| *b == b'&') {
        if out.len() >= MAX_PARTS {
            return;
        }
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        out.push(Part { source, location: String::new(), prefix, name: form_decode(k), value: cut(form_decode(v)) });
    }
}

/// `Cookie: a=1; b=2`
pub fn cookies<'a>(header: &'a str, out: &mut Vec<Part<'a>>) {
    for pair in header.split(';') {
        if out.len() >= MAX_PARTS {
            return;
        }
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
        out.push(Part {
            source: Source::Cookie,
            location: String::new(),
            prefix: "cookie",
            name: Cow::Borrowed(k),
            value: cut(v),
        });
    }
}

/// A JSON body, flattened. Returns false when the text is not JSON (a cut-off prefix, or a lie in
/// `Content-Type`), so the caller can look at the raw text instead.
pub fn json(raw: &[u8], out: &mut Vec<Part<'static>>) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return false;
    };
    let mut path = String::from("body");
    walk(&v, &mut path, 0, out);
    true
}

fn walk(v: &serde_json::Value, path: &mut String, depth: usize, out: &mut Vec<Part<'static>>) {
    if out.len() >= MAX_PARTS || depth > MAX_DEPTH {
        return;
    }
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                if !matches!(child, serde_json::Value::String(_)) {
                    // Keys are inspected even when the value is a number or an object
                    // (`{"password": {"$ne": null}}`).
                    out.push(Part {
                        source: Source::Body,
                        prefix: "body",
                        location: path.clone(),
                        name: Cow::Owned(k.clone()),
                        value: Cow::Borrowed(""),
                    });
                }
                walk(child, path, depth + 1, out);
                path.truncate(len);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(child, path, depth + 1, out);
                path.truncate(len);
            }
        }
        serde_json::Value::String(s) => {
            let name = path.rsplit(['.', '[']).next().unwrap_or("").trim_end_matches(']').to_owned();
            out.push(Part {
                source: Source::Body,
                prefix: "body",
                location: path.clone(),
                name: Cow::Owned(name),
                value: cut(Cow::Owned(s.clone())),
            });
        }
        _ => {}
    }
}

/// The boundary parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"'))
    })
}

/// The fields of a multipart body (or of the prefix of one): each field's value, and uploaded
/// files' names. File contents are not inspected beyond their first [`MAX_VALUE`] bytes.
pub fn multipart<'a>(raw: &'a [u8], boundary: &str, out: &mut Vec<Part<'a>>) {
    let delim = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delim.as_bytes());
    let starts: Vec<usize> = finder.find_iter(raw).collect();
    for (n, start) in starts.iter().enumerate() {
        if out.len() >= MAX_PARTS {
            return;
        }
        let body_start = start + delim.len();
        let end = starts.get(n + 1).copied().unwrap_or(raw.len());
        if body_start >= end {
            continue;
        }
        let part = &raw[body_start..end];
        let Some(head_end) = memchr::memmem::find(part, b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&part[..head_end]);
        let mut content = &part[head_end + 4..];
        if content.ends_with(b"\r\n") {
            content = &content[..content.len() - 2];
        }
        let mut name = String::new();
        let mut filename = None;
        for line in head.lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for p in v.split(';').skip(1) {
                if let Some((pk, pv)) = p.trim().split_once('=') {
                    let pv = pv.trim().trim_matches('"');
                    match pk.trim().to_ascii_lowercase().as_str() {
                        "name" => name = pv.to_owned(),
                        "filename" => filename = Some(pv.to_owned()),
                        _ => {}
                    }
                }
            }
        }
        if let Some(f) = filename {
            out.push(Part {
                source: Source::Body,
                prefix: "body",
                location: format!("body.{name}.filename"),
                name: Cow::Owned(name.clone()),
                value: Cow::Owned(f),
            });
            continue;
        }
        let value = cut(String::from_utf8_lossy(content));
        out.push(Part { source: Source::Body, prefix: "body", location: String::new(), name: Cow::Owned(name), value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let mut out = Vec::new();
        form(b"a=1+2&b=%41%zz%&c&=x&d=%C3%A9%FF", "args", Source::Arg, &mut out);
        let got: Vec<(String, String)> = out.iter().map(|p| (p.name.to_string(), p.value.to_string())).collect();
        assert_eq!(got[0], ("a".into(), "1 2".into()));
        assert_eq!(got[1], ("b".into(), "A%zz%".into()));
        assert_eq!(got[2], ("c".into(), "".into()));
        assert_eq!(got[3], ("".into(), "x".into()));
        assert_eq!(got[4], ("d".into(), "é\u{fffd}".into()));
    }

    #[test]
    fn json_flattens_with_paths() {
        let mut out = Vec::new();
        assert!(json(br#"{"items":[{"name":"a"}],"user":{"$ne":null},"n":1}"#, &mut out));
        let locs: Vec<String> = out.iter().map(|p| p.location().into_owned()).collect();
        let locs: Vec<&str> = locs.iter().map(String::as_str).collect();
        assert!(locs.contains(&"body.items[0].name"), "{locs:?}");
        assert!(locs.contains(&"body.user.$ne"), "{locs:?}");
        assert!(!json(b"{\"cut", &mut out));
    }

    #[test]
    fn multipart_fields_and_files() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../x.sh\"\r\n\r\n#!/bin/sh\r\n--XX--\r\n";
        let mut out = Vec::new();
        multipart(body, "XX", &mut out);
        assert_eq!(out[0].location(), "body.a");
        assert_eq!(out[0].value, "hello");
        assert_eq!(out[1].location, "body.f.filename");
        assert_eq!(out[1].value, "../../x.sh");
        assert_eq!(boundary("multipart/form-data; boundary=\"XX\""), Some("XX"));
    }
}
