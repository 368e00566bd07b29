//! Text for people: an attacker-controlled string (a username, a path, an argument name, a user
//! agent) made safe to show in a terminal, an email, a chat message or a syslog line. Nothing in
//! it can move the cursor, clear a line, set a window title, start a new line or reorder what is
//! shown around it, and it has a length.

use std::borrow::Cow;

/// Characters that change how the text around them is shown: C0 and C1 controls and DEL (CR,
/// LF, ESC …), bidirectional embeddings, overrides, isolates and marks (U+202E …), line and
/// paragraph separators (U+2028, U+2029), zero-width characters and the BOM.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// One line to show: every unsafe character written out as an escape (`\r`, `\n`, `\t`,
/// `\x1b`, `\u{202e}`), then capped at `max` characters with `…` (the escapes count).
pub fn printable(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max && !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(max * 4) + 8);
    let mut n = 0usize;
    for c in s.chars() {
        let piece: Cow<'_, str> = match c {
            '\r' => "\\r".into(),
            '\n' => "\\n".into(),
            '\t' => "\\t".into(),
            c if (c as u32) < 0x100 && is_unsafe(c) => format!("\\x{:02x}", c as u32).into(),
            c if is_unsafe(c) => format!("\\u{{{:04x}}}", c as u32).into(),
            c => c.to_string().into(),
        };
        let len = piece.chars().count();
        if n + len > max {
            out.push('…');
            return Cow::Owned(out);
        }
        n += len;
        out.push_str(&piece);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_written_out_and_length_is_capped() {
        assert!(matches!(printable("alice@example.com", 64), Cow::Borrowed(_)));
        let forged = "x\r\x1b[2K2026-12-01 sys_startup\x1b]0;pwned\x07";
        let p = printable(forged, 200);
        assert_eq!(p, "x\\r\\x1b[2K2026-12-01 sys_startup\\x1b]0;pwned\\x07");
        assert!(!p.chars().any(is_unsafe));
        assert_eq!(printable("abc\u{202E}fed\u{2028}\u{85}", 50), "abc\\u{202e}fed\\u{2028}\\x85");
        let long = "a".repeat(6000);
        let p = printable(&long, 100);
        assert_eq!(p.chars().count(), 101);
        assert!(p.ends_with('…'));
        assert_eq!(printable("ü\n", 2), "ü…", "an escape that does not fit is not cut in half");
    }
}
