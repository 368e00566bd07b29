//! The order CSP sources are sorted in before the scoring compares neighbours: the English
//! collation of the Unicode Collation Algorithm (punctuation, then digits, then letters; control
//! characters ignored) for ASCII. Other characters sort after ASCII by code point, which is only
//! an approximation of the real collation.

use std::cmp::Ordering;

/// Printable ASCII in collation order; upper and lower case of a letter share a weight.
const ASCII_ORDER: &str = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";

/// The weight of one character; `None` for characters the collation ignores.
fn weight(c: char) -> Option<u32> {
    match c {
        '\u{0}'..='\u{8}' | '\u{e}'..='\u{1f}' | '\u{7f}' | '\u{ad}' | '\u{200b}'..='\u{200f}' => None,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' => Some(0),
        _ if c.is_ascii() => {
            let lower = c.to_ascii_lowercase();
            ASCII_ORDER.find(lower).map(|at| 1 + at as u32)
        }
        _ => Some(0x100 + u32::from(c)),
    }
}

/// Compares two strings in collation order.
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    let left = a.chars().filter_map(weight);
    let right = b.chars().filter_map(weight);
    left.cmp(right)
}
