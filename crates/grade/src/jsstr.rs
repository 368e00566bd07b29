//! The JavaScript string rules the scoring depends on: what counts as whitespace, lengths in
//! UTF-16 units, and `parseInt`.

/// Whether `c` is whitespace for JavaScript's `trim()` and `\s`.
pub(crate) fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// `s.trim()`.
pub(crate) fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// The words of an already trimmed `s`, as `s.split(/\s+/)` gives them (no empty words).
pub(crate) fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|w| !w.is_empty())
}

/// `s.length`: the length in UTF-16 code units.
pub(crate) fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `s.slice(0, units)`, never splitting a character (one straddling the end is dropped).
pub(crate) fn utf16_prefix(s: &str, units: usize) -> &str {
    let mut used = 0;
    for (at, c) in s.char_indices() {
        used += c.len_utf16();
        if used > units {
            return s.get(..at).unwrap_or(s);
        }
    }
    s
}

/// `s.slice(start, end)` in UTF-16 units, never splitting a character.
pub(crate) fn utf16_slice(s: &str, start: usize, end: usize) -> &str {
    let head = utf16_prefix(s, start);
    let rest = s.get(head.len()..).unwrap_or("");
    utf16_prefix(rest, end.saturating_sub(start))
}

/// `parseInt(s, 10)`: `None` for `NaN`. Leading whitespace and one sign are skipped, then as many
/// decimal digits as there are.
pub(crate) fn parse_int(s: &str) -> Option<f64> {
    let s = s.trim_start_matches(is_space);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    let mut value = 0.0_f64;
    let mut any = false;
    for d in digits.bytes().take_while(u8::is_ascii_digit) {
        value = value * 10.0 + f64::from(d - b'0');
        any = true;
    }
    any.then_some(if negative { -value } else { value })
}
