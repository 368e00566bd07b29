//! The Pwned Passwords range API (k-anonymity): only the first five hex digits of a password's
//! SHA-1 leave the machine; the answer lists every known suffix under that prefix, `SUFFIX:COUNT`
//! per line. With `Add-Padding: true` the answer is padded with made-up suffixes of count 0, which
//! mean nothing and are ignored.

/// `(prefix, suffix)` of a SHA-1 in uppercase hex: 5 and 35 digits.
pub fn split(h: &[u8; 20]) -> (String, String) {
    let hex: String = h.iter().map(|b| format!("{b:02X}")).collect();
    (hex[..5].to_owned(), hex[5..].to_owned())
}

/// The count for `suffix` in a range answer; `None` when absent (or only a padding line).
pub fn count(body: &str, suffix: &str) -> Option<u64> {
    body.lines().find_map(|l| {
        let (s, c) = l.trim().split_once(':')?;
        if !s.eq_ignore_ascii_case(suffix) {
            return None;
        }
        c.trim().parse::<u64>().ok().filter(|n| *n > 0)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn range_answers_with_padding() {
        let (p, s) = split(&crate::sha1(b"password"));
        assert_eq!((p.as_str(), s.as_str()), ("5BAA6", "1E4C9B93F3F0682250B6CF8331B7EE68FD8"));
        let body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n1E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824\r\nFFFFF00000000000000000000000000000A:0\r\n";
        assert_eq!(count(body, &s), Some(9_545_824));
        assert_eq!(count(body, "FFFFF00000000000000000000000000000A"), None, "padding lines count for nothing");
        assert_eq!(count(body, "0000000000000000000000000000000000F"), None);
        assert_eq!(count("garbage", &s), None);
    }
}
