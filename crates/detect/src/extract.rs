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

/// The values an XML parser hands the app (xml2js, fast-xml-parser, a DOM): every attribute's
/// value (`body.xml.NAME`, NAME the attribute's) and every element's text and CDATA
/// (`body.xml.NAME`, NAME the element's), character references decoded. Markup declarations,
/// comments and processing instructions are not values (the XXE check reads those). Linear in
/// the text; at most [`MAX_PARTS`] values.
pub fn xml(text: &str, out: &mut Vec<Part<'static>>) {
    let b = text.as_bytes();
    let mut i = 0;
    let mut element = String::new();
    let push = |out: &mut Vec<Part<'static>>, name: &str, raw: &str| {
        if out.len() < MAX_PARTS && !raw.trim().is_empty() {
            let value = crate::normalize::entities(raw);
            out.push(Part {
                source: Source::Body,
                location: String::new(),
                prefix: "body.xml",
                name: Cow::Owned(name.to_owned()),
                value: cut(Cow::Owned(value)),
            });
        }
    };
    while i < b.len() {
        let Some(lt) = memchr::memchr(b'<', &b[i..]).map(|n| i + n) else {
            push(out, &element, &text[i..]);
            return;
        };
        if lt > i {
            push(out, &element, &text[i..lt]);
        }
        let rest = &text[lt..];
        if let Some(body) = rest.strip_prefix("<![CDATA[") {
            let end = body.find("]]>").unwrap_or(body.len());
            push(out, &element, &body[..end]);
            i = lt + 9 + end + 3;
            continue;
        }
        if rest.starts_with("<!--") {
            i = lt + rest.find("-->").map_or(rest.len(), |n| n + 3);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            i = lt + rest.find('>').map_or(rest.len(), |n| n + 1);
            continue;
        }
        // A tag: its name, then `name="value"` pairs up to `>`.
        let mut j = lt + 1;
        if b.get(j) == Some(&b'/') {
            i = lt + rest.find('>').map_or(rest.len(), |n| n + 1);
            continue;
        }
        let start = j;
        while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' && b[j] != b'/' {
            j += 1;
        }
        element = text[start..j].to_owned();
        loop {
            while j < b.len() && (b[j].is_ascii_whitespace() || b[j] == b'/') {
                j += 1;
            }
            if j >= b.len() || b[j] == b'>' {
                j += 1;
                break;
            }
            let an = j;
            while j < b.len() && b[j] != b'=' && b[j] != b'>' && !b[j].is_ascii_whitespace() {
                j += 1;
            }
            let attr = &text[an..j];
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if b.get(j) != Some(&b'=') {
                continue;
            }
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            match b.get(j) {
                Some(&q) if q == b'"' || q == b'\'' => {
                    let vs = j + 1;
                    let ve = memchr::memchr(q, &b[vs..]).map_or(b.len(), |n| vs + n);
                    push(out, attr, &text[vs..ve]);
                    j = ve + 1;
                }
                _ => {
                    let vs = j;
                    while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                        j += 1;
                    }
                    push(out, attr, &text[vs..j]);
                }
            }
        }
        i = j;
    }
}

#[cfg(test)]
mod xml_tests {
    #[test]
    fn attributes_text_and_cdata_are_values() {
        let mut out = Vec::new();
        super::xml(
            "<?xml version=\"1.0\"?><!DOCTYPE r><root><a probe=\"/etc/passwd\" n='1'>x &lt;script&gt;</a><!-- c --><b><![CDATA[' or 1=1--]]></b><c k='v'/></root>",
            &mut out,
        );
        let got: Vec<(String, String)> = out.iter().map(|p| (p.name.to_string(), p.value.to_string())).collect();
        assert_eq!(
            got,
            vec![
                ("probe".into(), "/etc/passwd".into()),
                ("n".into(), "1".into()),
                ("a".into(), "x <script>".into()),
                ("b".into(), "' or 1=1--".into()),
                ("k".into(), "v".into()),
            ]
        );
        // Hostile input: unclosed everything, no panic.
        for s in ["<", "<a", "<a b", "<a b=", "<a b=\"", "<![CDATA[", "<!--", "<?", "</", "<a/><"] {
            super::xml(s, &mut Vec::new());
        }
    }
}
