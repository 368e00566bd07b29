//! Character references in HTML attribute values (`&amp;`, `&#39;`, `&#x2F;`): numeric ones in
//! full, named ones for the common subset below (others are left as written).

/// Named references: with their `;`, and the legacy ones also without it.
const NAMED: &[(&str, &str)] = &[
    ("amp;", "&"),
    ("amp", "&"),
    ("lt;", "<"),
    ("lt", "<"),
    ("gt;", ">"),
    ("gt", ">"),
    ("quot;", "\""),
    ("quot", "\""),
    ("apos;", "'"),
    ("nbsp;", "\u{a0}"),
    ("nbsp", "\u{a0}"),
    ("copy;", "\u{a9}"),
    ("copy", "\u{a9}"),
    ("reg;", "\u{ae}"),
    ("reg", "\u{ae}"),
    ("Tab;", "\t"),
    ("NewLine;", "\n"),
    ("excl;", "!"),
    ("num;", "#"),
    ("dollar;", "$"),
    ("percnt;", "%"),
    ("lpar;", "("),
    ("rpar;", ")"),
    ("ast;", "*"),
    ("plus;", "+"),
    ("comma;", ","),
    ("period;", "."),
    ("sol;", "/"),
    ("colon;", ":"),
    ("semi;", ";"),
    ("equals;", "="),
    ("quest;", "?"),
    ("commat;", "@"),
    ("lsqb;", "["),
    ("bsol;", "\\"),
    ("rsqb;", "]"),
    ("lowbar;", "_"),
    ("grave;", "`"),
    ("lcub;", "{"),
    ("verbar;", "|"),
    ("rcub;", "}"),
];

/// What the code points 0x80 to 0x9F stand for in a numeric reference (windows-1252).
const C1: [u32; 32] = [
    0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d,
    0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d,
    0x17e, 0x178,
];

/// Decodes the character references of an attribute value.
pub(crate) fn decode_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or(""));
        let after = rest.get(amp + 1..).unwrap_or("");
        let (text, used) = reference(after).unwrap_or(("&".into(), 0));
        out.push_str(&text);
        rest = after.get(used..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// The text of the reference at the start of `s` (just after its `&`) and how many bytes it
/// spans; `None` when there is none.
fn reference(s: &str) -> Option<(String, usize)> {
    if let Some(numeric) = s.strip_prefix('#') {
        return numeric_reference(numeric).map(|(c, used)| (c.to_string(), used + 1));
    }
    let (name, text) = NAMED.iter().filter(|(name, _)| s.starts_with(name)).max_by_key(|(name, _)| name.len())?;
    if !name.ends_with(';') {
        let next = s.as_bytes().get(name.len());
        if next.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'=') {
            return None;
        }
    }
    Some(((*text).to_owned(), name.len()))
}

fn numeric_reference(s: &str) -> Option<(char, usize)> {
    let (digits_from, radix) = match s.as_bytes().first() {
        Some(b'x' | b'X') => (1, 16),
        _ => (0, 10),
    };
    let body = s.get(digits_from..)?;
    let count = body.bytes().take_while(|b| (*b as char).is_digit(radix)).count();
    if count == 0 {
        return None;
    }
    let digits = body.get(..count)?;
    let value = digits.bytes().fold(0_u32, |acc, b| {
        let d = (b as char).to_digit(radix).unwrap_or(0);
        acc.saturating_mul(radix).saturating_add(d).min(0x11_0000)
    });
    let used = digits_from + count + usize::from(body.as_bytes().get(count) == Some(&b';'));
    let value = match value {
        0x80..=0x9f => C1.get((value - 0x80) as usize).copied().unwrap_or(value),
        _ => value,
    };
    let c = match value {
        0 => '\u{fffd}',
        _ => char::from_u32(value).unwrap_or('\u{fffd}'),
    };
    Some((c, used))
}
