//! A push tokenizer for JSON bodies: fed chunk by chunk, it hands out every key and every string
//! value with its path (`body.items[0].name`), with memory bounded by the longest value kept
//! ([`super::MAX_VALUE`]) and the nesting depth ([`MAX_STACK`]), never by the body's size.

use std::borrow::Cow;

use crate::extract::{Part, Source};

/// Nesting past this is reported ([`Limit::Deep`]); the tokenizer goes on.
pub const MAX_DEPTH: usize = 64;
/// Nesting past this stops the tokenizer (the rest is read as text).
pub const MAX_STACK: usize = 1024;
/// Keys longer than this are kept cut in the path (they are inspected whole).
const MAX_KEY: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Deep,
    LongValue,
}

enum Frame {
    Obj(Option<String>),
    Arr(usize),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    Value,
    ValueOrEnd,
    KeyOrEnd,
    Str,
    Esc,
    Uni(u8, u32),
    Lit,
    Colon,
    AfterValue,
}

pub struct JsonTok {
    stack: Vec<Frame>,
    st: St,
    in_key: bool,
    buf: Vec<u8>,
    high: Option<u32>,
    long: bool,
}

impl Default for JsonTok {
    fn default() -> Self {
        JsonTok { stack: Vec::new(), st: St::Value, in_key: false, buf: Vec::new(), high: None, long: false }
    }
}

/// Not JSON from this byte on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError(pub usize);

impl JsonTok {
    fn path(&self) -> String {
        let mut p = String::from("body");
        for f in self.stack.iter().take(MAX_DEPTH) {
            match f {
                Frame::Obj(Some(k)) => {
                    p.push('.');
                    p.push_str(k);
                }
                Frame::Obj(None) => {}
                Frame::Arr(i) => {
                    p.push('[');
                    p.push_str(&i.to_string());
                    p.push(']');
                }
            }
        }
        if self.stack.len() > MAX_DEPTH {
            p.push('…');
        }
        p
    }

    /// The key the current value sits under (arrays take their parent's key).
    fn name(&self) -> String {
        for f in self.stack.iter().rev() {
            if let Frame::Obj(Some(k)) = f {
                return k.clone();
            }
        }
        String::new()
    }

    fn push_char(&mut self, cp: u32, limits: &mut dyn FnMut(Limit)) {
        let c = char::from_u32(cp).unwrap_or('\u{fffd}');
        let mut b = [0u8; 4];
        self.push_bytes(c.encode_utf8(&mut b).as_bytes(), limits);
    }

    fn push_bytes(&mut self, b: &[u8], limits: &mut dyn FnMut(Limit)) {
        if self.buf.len() + b.len() > super::MAX_VALUE {
            if !self.long {
                self.long = true;
                limits(Limit::LongValue);
            }
            return;
        }
        self.buf.extend_from_slice(b);
    }

    fn after_value(&mut self) {
        self.st = if self.stack.is_empty() { St::Value } else { St::AfterValue };
    }

    fn end_string(&mut self, out: &mut Vec<Part<'static>>) {
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        self.long = false;
        if self.in_key {
            let kept = if text.len() > MAX_KEY {
                let mut e = MAX_KEY;
                while !text.is_char_boundary(e) {
                    e -= 1;
                }
                text[..e].to_owned()
            } else {
                text.clone()
            };
            if let Some(Frame::Obj(k)) = self.stack.last_mut() {
                *k = Some(kept);
            }
            // Keys are inspected whatever their value (`{"password": {"$ne": null}}`).
            out.push(Part {
                source: Source::Body,
                prefix: "body",
                location: self.path(),
                name: Cow::Owned(text),
                value: Cow::Borrowed(""),
            });
            self.st = St::Colon;
        } else {
            out.push(Part {
                source: Source::Body,
                prefix: "body",
                location: self.path(),
                name: Cow::Owned(self.name()),
                value: Cow::Owned(text),
            });
            self.after_value();
        }
    }

    fn close(&mut self, b: u8) -> bool {
        match (self.stack.last(), b) {
            (Some(Frame::Obj(_)), b'}') | (Some(Frame::Arr(_)), b']') => {
                self.stack.pop();
                self.after_value();
                true
            }
            _ => false,
        }
    }

    /// Tokenizes `chunk`, appending parts to `out`.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<Part<'static>>,
        limits: &mut dyn FnMut(Limit),
    ) -> Result<(), SyntaxError> {
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            match self.st {
                St::Str => {
                    // The common case: run to the next quote or backslash.
                    let rest = &chunk[i..];
                    match memchr::memchr2(b'"', b'\\', rest) {
                        None => {
                            self.push_bytes(rest, limits);
                            return Ok(());
                        }
                        Some(n) => {
                            self.push_bytes(&rest[..n], limits);
                            i += n;
                            if chunk[i] == b'"' {
                                self.end_string(out);
                            } else {
                                self.st = St::Esc;
                            }
                        }
                    }
                }
                St::Esc => self.escape(b, i, limits)?,
                St::Uni(n, cp) => self.unicode(n, cp, b, i, limits)?,
                _ if b.is_ascii_whitespace() && self.st != St::Lit => {}
                St::Value | St::ValueOrEnd => self.value(b, i, limits)?,
                St::KeyOrEnd => match b {
                    b'"' => {
                        self.in_key = true;
                        self.st = St::Str;
                    }
                    b'}' => {
                        self.close(b);
                    }
                    _ => return Err(SyntaxError(i)),
                },
                St::Colon => {
                    if b != b':' {
                        return Err(SyntaxError(i));
                    }
                    self.st = St::Value;
                }
                St::Lit => {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.') {
                        i += 1;
                        continue;
                    }
                    self.after_value();
                    // This byte ends the literal and belongs to what follows.
                    continue;
                }
                St::AfterValue => self.after_value_byte(b, i)?,
            }
            i += 1;
        }
        Ok(())
    }

    /// After a backslash in a string.
    fn escape(&mut self, b: u8, i: usize, limits: &mut dyn FnMut(Limit)) -> Result<(), SyntaxError> {
        let c = match b {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'"' | b'\\' | b'/' => Some(b),
            b'u' => None,
            _ => return Err(SyntaxError(i)),
        };
        match c {
            Some(c) => {
                self.push_bytes(&[c], limits);
                self.st = St::Str;
            }
            None => self.st = St::Uni(0, 0),
        }
        Ok(())
    }

    /// The `n`th hex digit of a `\\uXXXX` escape (surrogate pairs joined, lone halves replaced).
    fn unicode(&mut self, n: u8, cp: u32, b: u8, i: usize, limits: &mut dyn FnMut(Limit)) -> Result<(), SyntaxError> {
        let d = (b as char).to_digit(16).ok_or(SyntaxError(i))?;
        let cp = cp * 16 + d;
        if n < 3 {
            self.st = St::Uni(n + 1, cp);
        } else {
            self.st = St::Str;
            match (self.high.take(), cp) {
                (None, 0xd800..=0xdbff) => self.high = Some(cp),
                (Some(h), 0xdc00..=0xdfff) => self.push_char(0x10000 + ((h - 0xd800) << 10) + (cp - 0xdc00), limits),
                (Some(_), _) => {
                    self.push_char(0xfffd, limits);
                    self.push_char(cp, limits);
                }
                (None, _) => self.push_char(cp, limits),
            }
        }
        Ok(())
    }

    /// Where a value may start (or, in an array, the array end).
    fn value(&mut self, b: u8, i: usize, limits: &mut dyn FnMut(Limit)) -> Result<(), SyntaxError> {
        if self.st == St::ValueOrEnd && b == b']' {
            self.close(b);
        } else {
            match b {
                b'{' | b'[' => {
                    if self.stack.len() >= MAX_STACK {
                        return Err(SyntaxError(i));
                    }
                    if self.stack.len() == MAX_DEPTH {
                        limits(Limit::Deep);
                    }
                    if b == b'{' {
                        self.stack.push(Frame::Obj(None));
                        self.st = St::KeyOrEnd;
                    } else {
                        self.stack.push(Frame::Arr(0));
                        self.st = St::ValueOrEnd;
                    }
                }
                b'"' => {
                    self.in_key = false;
                    self.st = St::Str;
                }
                b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => self.st = St::Lit,
                _ => return Err(SyntaxError(i)),
            }
        }
        Ok(())
    }

    /// After a value: a comma or the end of its container.
    fn after_value_byte(&mut self, b: u8, i: usize) -> Result<(), SyntaxError> {
        match b {
            b',' => match self.stack.last_mut() {
                Some(Frame::Obj(_)) => self.st = St::KeyOrEnd,
                Some(Frame::Arr(n)) => {
                    *n += 1;
                    self.st = St::Value;
                }
                None => return Err(SyntaxError(i)),
            },
            b'}' | b']' => {
                if !self.close(b) {
                    return Err(SyntaxError(i));
                }
            }
            _ => return Err(SyntaxError(i)),
        }
        Ok(())
    }

    /// The body ended: a string still open is handed out as it is.
    pub fn finish(&mut self, out: &mut Vec<Part<'static>>) {
        if matches!(self.st, St::Str | St::Esc | St::Uni(..)) && !self.buf.is_empty() {
            self.in_key = false;
            self.end_string(out);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts(src: &[u8], step: usize) -> (Vec<(String, String, String)>, Vec<Limit>) {
        let mut t = JsonTok::default();
        let mut out = Vec::new();
        let mut lim = Vec::new();
        for c in src.chunks(step) {
            t.feed(c, &mut out, &mut |l| lim.push(l)).unwrap();
        }
        t.finish(&mut out);
        (out.into_iter().map(|p| (p.location, p.name.into_owned(), p.value.into_owned())).collect(), lim)
    }

    #[test]
    fn values_and_keys_with_paths_whatever_the_chunking() {
        let src = br#"{"a": [1, {"b": "x\"y\u00e9\ud83d\ude00"}, true], "c": {"$ne": null}, "d": "z", "e": [["q"]]}"#;
        for step in [1, 2, 3, 7, 1000] {
            let (p, lim) = parts(src, step);
            assert!(lim.is_empty());
            assert!(p.contains(&("body.a[1].b".into(), "b".into(), "x\"yé😀".into())), "{p:?}");
            assert!(p.contains(&("body.c.$ne".into(), "$ne".into(), "".into())), "{p:?}");
            assert!(p.contains(&("body.d".into(), "d".into(), "z".into())), "{p:?}");
            assert!(p.contains(&("body.e[0][0]".into(), "e".into(), "q".into())), "{p:?}");
        }
    }

    #[test]
    fn deep_and_wide_documents_are_read_to_the_end() {
        let deep = format!("{}\"1' or '1'='1\"{}", "[".repeat(80), "]".repeat(80));
        let (p, lim) = parts(deep.as_bytes(), 5);
        assert_eq!(lim, vec![Limit::Deep]);
        assert_eq!(p[0].2, "1' or '1'='1");
        let wide = format!("[{}\"attack\"]", "1,".repeat(5000));
        let (p, _) = parts(wide.as_bytes(), 64);
        assert_eq!(p[0].0, "body[5000]");
    }

    #[test]
    fn syntax_errors_are_told() {
        let mut t = JsonTok::default();
        let mut out = Vec::new();
        assert!(t.feed(b"{\"a\" 1}", &mut out, &mut |_| {}).is_err());
        let mut t = JsonTok::default();
        assert!(t.feed(b"hello", &mut out, &mut |_| {}).is_err());
        let mut t = JsonTok::default();
        assert!(t.feed(b"{\"a\":1}{\"b\":2}", &mut out, &mut |_| {}).is_ok());
    }
}
