//! Taking a request apart into the named values detectors look at: query arguments, form, JSON
//! (nested values flattened with their paths: `body.items[0].name`), cookies — for what is read
//! whole (the login monitor's prefix, the head). Bodies stream through `body::Scanner` instead.
//! Bounded: at most [`MAX_PARTS`] values, each cut to [`MAX_VALUE`] bytes.

use std::borrow::Cow;

pub const MAX_PARTS: usize = 4096;
pub const MAX_VALUE: usize = 64 * 1024;
const MAX_DEPTH: usize = 64;

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
pub(crate) fn form_decode(raw: &[u8]) -> Cow<'_, str> {
    if memchr::memchr2(b'%', b'+', raw).is_none() {
        // The common case, valid UTF-8 (mostly ASCII): std's validation is the fast one.
        return match std::str::from_utf8(raw) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(raw),
        };
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
}
