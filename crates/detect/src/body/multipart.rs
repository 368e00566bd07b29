//! A push tokenizer for `multipart/form-data` (RFC 7578 over RFC 2046), read as busboy reads it:
//! the boundary exactly as declared (case-sensitive), each part's `Content-Disposition` with
//! quoted parameters and RFC 5987 `filename*`; a body written with bare `\n` line breaks (which
//! busboy refuses, PHP and Python read) is read too. Field values are handed out whole (up to
//! [`super::MAX_VALUE`]); file contents are counted, not kept. Memory: one part's headers and one
//! field's value.

use std::borrow::Cow;

use crate::extract::{Part, Source};

/// Part headers longer than this are reported, and the part is skipped.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    LongValue,
    LongHead,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    Preamble,
    AfterDelim,
    Head,
    Content,
    Epilogue,
}

pub struct MultipartTok {
    /// `\r\n--boundary` (`\n--boundary` for a body written with bare `\n` line breaks)
    delim: Vec<u8>,
    /// The line break the body uses, told by the first delimiter line: `\r\n` as RFC 2046 says,
    /// or `\n` as lenient parsers (PHP's, Python's) also accept; `None` until it is seen.
    eol: Option<&'static [u8]>,
    boundary: Vec<u8>,
    finder: memchr::memmem::Finder<'static>,
    st: St,
    buf: Vec<u8>,
    name: String,
    file: bool,
    value: Vec<u8>,
    long: bool,
    /// Any byte of the body other than white space was seen.
    seen: bool,
}

/// The `boundary` parameter of a content type, case kept, quotes removed (RFC 2046 §5.1.1).
pub fn boundary(content_type: &str) -> Option<String> {
    params(content_type)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty() && b.len() <= 200)
}

/// `type; a=1; b="x;y"` → `[("a","1"), ("b","x;y")]`, quoted strings with `\` escapes.
pub fn params(header: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = header.as_bytes();
    let mut i = match memchr::memchr(b';', b) {
        Some(n) => n + 1,
        None => return out,
    };
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b';') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b';' {
            i += 1;
        }
        let key = header[ks..i].trim().to_owned();
        if i >= b.len() || b[i] == b';' {
            continue;
        }
        i += 1;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let mut val = Vec::new();
        if b.get(i) == Some(&b'"') {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != b';' {
                val.push(b[i]);
                i += 1;
            }
            while val.last().is_some_and(|c| *c == b' ' || *c == b'\t') {
                val.pop();
            }
        }
        if !key.is_empty() {
            out.push((key, String::from_utf8_lossy(&val).into_owned()));
        }
    }
    out
}

/// `utf-8''%e2%82%ac.txt` → `€.txt`
fn ext_value(v: &str) -> String {
    let raw = v.splitn(3, '\'').nth(2).unwrap_or(v);
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

impl MultipartTok {
    pub fn new(boundary: &str) -> MultipartTok {
        let mut delim = b"\r\n--".to_vec();
        delim.extend_from_slice(boundary.as_bytes());
        let finder = memchr::memmem::Finder::new(&delim).into_owned();
        // The first delimiter may open the body without a line break before it.
        MultipartTok {
            delim,
            eol: None,
            boundary: boundary.as_bytes().to_vec(),
            finder,
            st: St::Preamble,
            buf: b"\r\n".to_vec(),
            name: String::new(),
            file: false,
            value: Vec::new(),
            long: false,
            seen: false,
        }
    }

    fn head(&mut self, head: &[u8], out: &mut Vec<Part<'static>>) {
        self.name.clear();
        self.file = false;
        self.value.clear();
        self.long = false;
        let text = String::from_utf8_lossy(head);
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some((k, v)) = line.split_once(':') else { continue };
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            let ps = params(v);
            let get = |n: &str| ps.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
            self.name = get("name").unwrap_or_default();
            let filename = get("filename*").map(|v| ext_value(&v)).or_else(|| get("filename"));
            if let Some(f) = filename {
                self.file = true;
                out.push(Part {
                    source: Source::Body,
                    prefix: "body",
                    location: format!("body.{}.filename", self.name),
                    name: Cow::Owned(self.name.clone()),
                    value: Cow::Owned(f),
                });
            }
        }
    }

    fn content(&mut self, data: &[u8], limits: &mut dyn FnMut(Limit)) {
        if self.file {
            return;
        }
        if self.value.len() + data.len() > super::MAX_VALUE {
            let room = super::MAX_VALUE - self.value.len();
            self.value.extend_from_slice(&data[..room]);
            if !self.long {
                self.long = true;
                limits(Limit::LongValue);
            }
            return;
        }
        self.value.extend_from_slice(data);
    }

    fn end_part(&mut self, out: &mut Vec<Part<'static>>) {
        if !self.file {
            out.push(Part {
                source: Source::Body,
                prefix: "body",
                location: String::new(),
                name: Cow::Owned(std::mem::take(&mut self.name)),
                value: Cow::Owned(String::from_utf8_lossy(&self.value).into_owned()),
            });
        }
        self.value.clear();
    }

    /// Tells the line break from the first `--boundary` line; `false` while it is not in yet.
    fn line_break(&mut self) -> bool {
        if self.eol.is_some() {
            return true;
        }
        let mut open = b"--".to_vec();
        open.extend_from_slice(&self.boundary);
        let Some(at) = memchr::memmem::find(&self.buf, &open) else {
            // A long preamble: keep only what could start the delimiter (and its line break).
            let keep = (open.len() + 2).min(self.buf.len());
            let cut = self.buf.len() - keep;
            self.buf.drain(..cut);
            return false;
        };
        let after = &self.buf[at + open.len()..];
        let eol: &'static [u8] = match after {
            [b'\r', b'\n', ..] | [b'-', b'-', ..] => b"\r\n",
            [b'\n', ..] => b"\n",
            [] | [b'\r'] | [b'-'] => return false,
            _ => b"\r\n",
        };
        self.eol = Some(eol);
        if eol == b"\n" {
            let mut delim = b"\n--".to_vec();
            delim.extend_from_slice(&self.boundary);
            self.finder = memchr::memmem::Finder::new(&delim).into_owned();
            self.delim = delim;
        }
        true
    }

    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Part<'static>>, limits: &mut dyn FnMut(Limit)) {
        self.seen |= chunk.iter().any(|c| !c.is_ascii_whitespace());
        self.buf.extend_from_slice(chunk);
        if !self.line_break() {
            return;
        }
        let eol = self.eol.unwrap_or(b"\r\n");
        let dl = self.delim.len();
        loop {
            match self.st {
                St::Epilogue => {
                    self.buf.clear();
                    return;
                }
                St::Preamble | St::Content => match self.finder.find(&self.buf) {
                    Some(n) => {
                        if self.st == St::Content {
                            let data = self.buf[..n].to_vec();
                            self.content(&data, limits);
                            self.end_part(out);
                        }
                        self.buf.drain(..n + dl);
                        self.st = St::AfterDelim;
                    }
                    None => {
                        let keep = dl.saturating_sub(1).min(self.buf.len());
                        let cut = self.buf.len() - keep;
                        if self.st == St::Content {
                            let data = self.buf[..cut].to_vec();
                            self.content(&data, limits);
                        }
                        self.buf.drain(..cut);
                        return;
                    }
                },
                St::AfterDelim => {
                    if self.buf.len() < 2 {
                        return;
                    }
                    if self.buf.starts_with(b"--") {
                        self.st = St::Epilogue;
                        continue;
                    }
                    match memchr::memmem::find(&self.buf, eol) {
                        Some(n) => {
                            self.buf.drain(..n + eol.len());
                            self.st = St::Head;
                        }
                        None if self.buf.len() > 1024 => {
                            limits(Limit::LongHead);
                            self.st = St::Epilogue;
                        }
                        None => return,
                    }
                }
                St::Head => {
                    if self.buf.starts_with(eol) {
                        self.buf.drain(..eol.len());
                        self.head(&[], out);
                        self.st = St::Content;
                        continue;
                    }
                    let end: &[u8] = if eol == b"\n" { b"\n\n" } else { b"\r\n\r\n" };
                    match memchr::memmem::find(&self.buf, end) {
                        Some(n) => {
                            let head = self.buf[..n].to_vec();
                            self.buf.drain(..n + end.len());
                            self.head(&head, out);
                            self.st = St::Content;
                        }
                        None if self.buf.len() > MAX_HEAD => {
                            limits(Limit::LongHead);
                            // Skip this part: its content runs to the next delimiter.
                            self.file = true;
                            self.buf.drain(..self.buf.len() - dl);
                            self.st = St::Content;
                        }
                        None => return,
                    }
                }
            }
        }
    }

    /// The body ended: a field still open (no closing delimiter) is handed out as it is.
    /// Returns whether the body was a whole multipart body: `false` when it never held the
    /// declared delimiter (another boundary, none at all) or stopped before the closing one —
    /// what such a body holds is read by no parser the same way, so it is a finding rather than a
    /// pass.
    pub fn finish(&mut self, out: &mut Vec<Part<'static>>) -> bool {
        if self.st == St::Content {
            let data = std::mem::take(&mut self.buf);
            self.content(&data, &mut |_| {});
            self.end_part(out);
        }
        self.st == St::Epilogue || !self.seen
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_keep_their_case_and_lose_their_quotes() {
        assert_eq!(boundary("multipart/form-data; boundary=XB").as_deref(), Some("XB"));
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"----WebKitFormBoundaryAb;c\"").as_deref(),
            Some("----WebKitFormBoundaryAb;c")
        );
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn fields_and_files_whatever_the_chunking() {
        let body = b"preamble\r\n--XB\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n1' or '1'='1\r\n--XB\r\ncontent-disposition: form-data; name=\"f\"; filename=\"a;b.txt\"; filename*=utf-8''..%2F..%2Fx.sh\r\nContent-Type: text/plain\r\n\r\n#!/bin/sh\r\nrm -rf /\r\n--XB--\r\nepilogue";
        for step in [1, 2, 5, 17, 4096] {
            let mut t = MultipartTok::new("XB");
            let mut out = Vec::new();
            for c in body.chunks(step) {
                t.feed(c, &mut out, &mut |_| panic!("no limit"));
            }
            t.finish(&mut out);
            let got: Vec<(String, String, String)> =
                out.iter().map(|p| (p.location.clone(), p.name.to_string(), p.value.to_string())).collect();
            assert_eq!(
                got,
                vec![
                    ("".into(), "q".into(), "1' or '1'='1".into()),
                    ("body.f.filename".into(), "f".into(), "../../x.sh".into()),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn a_long_field_is_told_and_kept_bounded() {
        let mut t = MultipartTok::new("b");
        let mut out = Vec::new();
        let mut told = 0;
        t.feed(b"--b\r\nContent-Disposition: form-data; name=\"v\"\r\n\r\n", &mut out, &mut |_| told += 1);
        for _ in 0..100 {
            t.feed(&[b'a'; 4096], &mut out, &mut |_| told += 1);
        }
        t.feed(b"\r\n--b--", &mut out, &mut |_| told += 1);
        assert_eq!(told, 1);
        assert_eq!(out[0].value.len(), super::super::MAX_VALUE);
    }
}
