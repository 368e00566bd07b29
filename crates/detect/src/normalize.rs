//! Undoing the encodings attackers stack to slip past pattern matching: percent-encoding (repeated,
//! and the non-standard `%uXXXX`), HTML character references, JavaScript and unicode escapes, NUL
//! bytes and full-width look-alikes. Path normalisation lives here too.
//!
//! Every function is linear in its input and allocates only when something changes.

use std::borrow::Cow;

/// How many rounds of decoding at most: each round undoes one layer of every encoding.
const ROUNDS: usize = 3;

/// Decodes every layer this module knows, repeatedly, until nothing changes (or [`ROUNDS`]).
/// NUL bytes are dropped and full-width ASCII look-alikes folded to ASCII.
pub fn decode(input: &str) -> Cow<'_, str> {
    if !needs_decoding(input) {
        return Cow::Borrowed(input);
    }
    let mut cur = input.to_owned();
    for _ in 0..ROUNDS {
        let next = decode_once(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    Cow::Owned(cur)
}

/// The layers [`decode`] undoes from `input`, outermost first, one entry per layer: `percent`
/// (with `percent_u` for `%uXXXX` and `overlong_utf8` for `%c0%af`-style forms), `html_entity`,
/// `js_escape`, `fold` (NULs dropped, full-width letters folded). For explaining a finding.
pub fn layers(input: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !needs_decoding(input) {
        return out;
    }
    let mut cur = input.to_owned();
    for _ in 0..ROUNDS {
        let a = percent(&cur);
        if a != cur {
            let l = cur.to_ascii_lowercase();
            out.push("percent");
            if l.match_indices("%u")
                .any(|(i, _)| l.as_bytes().get(i + 2..i + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
            {
                out.push("percent_u");
            }
            if ["%c0", "%c1", "%e0%80", "%f0%80"].iter().any(|o| l.contains(o)) {
                out.push("overlong_utf8");
            }
        }
        let b = entities(&a);
        if b != a {
            out.push("html_entity");
        }
        let c = escapes(&b);
        if c != b {
            out.push("js_escape");
        }
        let d = fold(&c);
        if d != c {
            out.push("fold");
        }
        if d == cur {
            break;
        }
        cur = d;
    }
    out
}

fn needs_decoding(s: &str) -> bool {
    let b = s.as_bytes();
    memchr::memchr3(b'%', b'&', b'\\', b).is_some() || memchr::memchr(0, b).is_some() || !s.is_ascii()
}

fn decode_once(s: &str) -> String {
    let a = percent(s);
    let b = entities(&a);
    let c = escapes(&b);
    fold(&c)
}

fn hex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

fn push_code(out: &mut Vec<u8>, cp: u32) {
    let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

/// `%XX` and `%uXXXX`. Malformed sequences stay as they are. Bytes that do not form UTF-8 are
/// replaced (an invalid sequence is itself suspicious, but not a match for any family).
pub fn percent(s: &str) -> String {
    let b = s.as_bytes();
    if memchr::memchr(b'%', b).is_none() {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 < b.len() {
                if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
            }
            if i + 5 < b.len() && (b[i + 1] == b'u' || b[i + 1] == b'U') {
                let digits = &b[i + 2..i + 6];
                if digits.iter().all(|d| d.is_ascii_hexdigit()) {
                    let cp = digits.iter().fold(0u32, |acc, d| acc * 16 + hex(*d).unwrap_or(0));
                    push_code(&mut out, cp);
                    i += 6;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    text_of(out)
}

/// Decoded bytes as text the way lenient decoders read them: UTF-8 where it is UTF-8, overlong
/// forms (`%c0%ae`, `%e0%80%af`) folded to the character they spell, and any other byte that is
/// not UTF-8 read as Latin-1 (`A%F1adir` is `Añadir`).
pub fn text_of(bytes: Vec<u8>) -> String {
    let bytes = match String::from_utf8(bytes) {
        Ok(s) => return s,
        Err(e) => e.into_bytes(),
    };
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or(""));
                rest = &rest[good..];
                let cont = |i: usize| rest.get(i).is_some_and(|c| c & 0xc0 == 0x80);
                let (ch, used) = match rest[0] {
                    0xc0 | 0xc1 if cont(1) => (u32::from(rest[0] & 1) << 6 | u32::from(rest[1] & 0x3f), 2),
                    0xe0 if cont(1) && rest[1] < 0xa0 && cont(2) => {
                        (u32::from(rest[1] & 0x3f) << 6 | u32::from(rest[2] & 0x3f), 3)
                    }
                    b => (u32::from(b), 1),
                };
                out.push(char::from_u32(ch).unwrap_or('\u{fffd}'));
                rest = &rest[used..];
            }
        }
    }
    out
}

/// HTML character references: decimal, hexadecimal (with or without the `;`, as browsers accept)
/// and the named ones attackers use.
pub fn entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'&' {
            if let Some((cp, used)) = entity_at(&b[i + 1..]) {
                push_code(&mut out, cp);
                i += 1 + used;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const NAMED: &[(&str, u32)] = &[
    ("lt", '<' as u32),
    ("gt", '>' as u32),
    ("quot", '"' as u32),
    ("apos", '\'' as u32),
    ("amp", '&' as u32),
    ("colon", ':' as u32),
    ("lpar", '(' as u32),
    ("rpar", ')' as u32),
    ("sol", '/' as u32),
    ("bsol", '\\' as u32),
    ("semi", ';' as u32),
    ("equals", '=' as u32),
    ("tab", '\t' as u32),
    ("newline", '\n' as u32),
    ("nbsp", ' ' as u32),
    ("grave", '`' as u32),
    ("period", '.' as u32),
    ("comma", ',' as u32),
    ("excl", '!' as u32),
    ("num", '#' as u32),
    ("dollar", '$' as u32),
    ("percnt", '%' as u32),
    ("lsqb", '[' as u32),
    ("rsqb", ']' as u32),
    ("lcub", '{' as u32),
    ("rcub", '}' as u32),
    ("plus", '+' as u32),
];

fn entity_at(b: &[u8]) -> Option<(u32, usize)> {
    if b.first() == Some(&b'#') {
        let (radix, start) = match b.get(1) {
            Some(b'x') | Some(b'X') => (16, 2),
            _ => (10, 1),
        };
        let mut cp: u32 = 0;
        let mut n = start;
        while n < b.len() && n - start < 10 && (b[n] as char).is_digit(radix) {
            cp = cp.saturating_mul(radix).saturating_add((b[n] as char).to_digit(radix).unwrap_or(0));
            n += 1;
        }
        if n == start {
            return None;
        }
        if b.get(n) == Some(&b';') {
            n += 1;
        }
        return Some((cp.min(0x10ffff), n));
    }
    let end = b.iter().take(8).position(|c| *c == b';')?;
    let name = std::str::from_utf8(&b[..end]).ok()?.to_ascii_lowercase();
    NAMED.iter().find(|(n, _)| *n == name).map(|(_, cp)| (*cp, end + 1))
}

/// JavaScript and CSS escapes: `\xHH`, `\uHHHH`, `\u{H…}`, `\OOO` is left alone (rare, ambiguous).
pub fn escapes(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'x' if i + 3 < b.len() && b[i + 2].is_ascii_hexdigit() && b[i + 3].is_ascii_hexdigit() => {
                    push_code(&mut out, hex(b[i + 2]).unwrap_or(0) * 16 + hex(b[i + 3]).unwrap_or(0));
                    i += 4;
                    continue;
                }
                b'u' if i + 2 < b.len() && b[i + 2] == b'{' => {
                    if let Some(close) = b[i + 3..].iter().take(8).position(|c| *c == b'}') {
                        let digits = &b[i + 3..i + 3 + close];
                        if !digits.is_empty() && digits.iter().all(|d| d.is_ascii_hexdigit()) {
                            let cp = digits.iter().fold(0u32, |a, d| a.saturating_mul(16) + hex(*d).unwrap_or(0));
                            push_code(&mut out, cp.min(0x10ffff));
                            i += 4 + close;
                            continue;
                        }
                    }
                }
                b'u' if i + 5 < b.len() && b[i + 2..i + 6].iter().all(|d| d.is_ascii_hexdigit()) => {
                    let cp = b[i + 2..i + 6].iter().fold(0u32, |a, d| a * 16 + hex(*d).unwrap_or(0));
                    push_code(&mut out, cp);
                    i += 6;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Drops NULs and folds full-width ASCII (U+FF01–U+FF5E) and a few look-alike brackets to ASCII.
pub fn fold(s: &str) -> String {
    if s.is_ascii() && !s.contains('\0') {
        return s.to_owned();
    }
    s.chars()
        .filter(|c| *c != '\0')
        .map(|c| match c as u32 {
            0xff01..=0xff5e => char::from_u32(c as u32 - 0xff01 + 0x21).unwrap_or(c),
            0x2039 | 0x3008 | 0xfe64 => '<',
            0x203a | 0x3009 | 0xfe65 => '>',
            0x02bc | 0x2018 | 0x2019 | 0x2032 => '\'',
            // Servers that keep only the low byte turn these into CR and LF.
            0x560d => '\r',
            0x560a => '\n',
            _ => c,
        })
        .collect()
}

/// A request path with percent-encoding undone and `\` as `/`, `//` collapsed, `/./` removed.
/// `..` segments are kept (resolving them would hide the traversal attempt).
pub fn path(raw: &str) -> String {
    let decoded = decode(raw);
    let mut out = String::with_capacity(decoded.len());
    let mut prev_slash = false;
    for c in decoded.chars() {
        let c = if c == '\\' { '/' } else { c };
        if c == '/' {
            if prev_slash {
                continue;
            }
            prev_slash = true;
        } else {
            prev_slash = false;
        }
        out.push(c);
    }
    while let Some(i) = out.find("/./") {
        out.replace_range(i..i + 2, "");
    }
    if out.ends_with("/.") {
        out.pop();
    }
    out
}

/// A copy without ASCII control characters and whitespace: browsers ignore tabs and newlines
/// inside a URL scheme (`jav&#x09;ascript:`).
pub fn compact(s: &str) -> String {
    s.chars().filter(|c| !(c.is_ascii_control() || *c == ' ')).collect()
}

#[cfg(test)]
mod layer_tests {
    #[test]
    fn layers_name_each_encoding_undone() {
        assert!(super::layers("plain").is_empty());
        assert_eq!(super::layers("%253Cscript%253E"), ["percent", "percent"]);
        assert_eq!(super::layers("%26lt%3Bscript"), ["percent", "html_entity"]);
        assert_eq!(super::layers("..%c0%afetc"), ["percent", "overlong_utf8"]);
        assert_eq!(super::layers("%u003cscript"), ["percent", "percent_u"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_come_off() {
        assert_eq!(decode("%253Cscript%253E"), "<script>");
        assert_eq!(decode("%u003cscript%u003e"), "<script>");
        assert_eq!(decode("&lt;img&#x20;src&#61;x&gt;"), "<img src=x>");
        assert_eq!(decode("&#0000106avascript"), "javascript");
        assert_eq!(decode("\\x3cscript\\u003e\\u{2f}"), "<script>/");
        assert_eq!(decode("ＳＥＬＥＣＴ"), "SELECT");
        assert_eq!(decode("a\0b"), "ab");
        assert_eq!(decode("plain text"), "plain text");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("A%F1adir"), "Añadir");
        assert_eq!(decode("..%c0%af..%c0%2f"), "../..À/");
        assert_eq!(decode("%c0%ae%c0%ae%e0%80%af"), "../");
    }

    #[test]
    fn paths_normalise() {
        assert_eq!(path("/a//b/./c"), "/a/b/c");
        assert_eq!(path("/a/%2e%2e/%2e%2e/etc/passwd"), "/a/../../etc/passwd");
        assert_eq!(path("/a\\..\\b"), "/a/../b");
        assert_eq!(path("/%252e%252e/"), "/../");
    }
}
