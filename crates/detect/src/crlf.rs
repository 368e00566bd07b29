//! CRLF injection (HTTP response splitting, header injection): a line break followed by a header
//! line or markup, in a place that may end up in a response header (path, query, headers).

const HEADERS: &[&str] = &[
    "set-cookie",
    "location",
    "content-type",
    "content-length",
    "x-xss-protection",
    "refresh",
    "access-control-",
    "transfer-encoding",
    "cache-control",
    "content-security-policy",
    "http/1.",
    "connection",
    "host",
    "x-forwarded-",
    "cookie",
    "content-disposition",
    "link",
    "bcc",
    "cc",
    "to",
    "subject",
    "from",
];

pub fn check(value: &str) -> Option<(&'static str, u32)> {
    let b = value.as_bytes();
    let nl = b.iter().position(|c| *c == b'\r' || *c == b'\n')?;
    let lower = value[nl..].to_ascii_lowercase();
    for line in lower.split(['\r', '\n']).filter(|l| !l.trim().is_empty()) {
        let line = line.trim_start();
        if let Some((name, _)) = line.split_once(':') {
            let name = name.trim();
            if HEADERS.iter().any(|h| name == *h || (h.ends_with('-') && name.starts_with(h))) {
                return Some(("header_injection", 9));
            }
        }
        if line.starts_with('<') || line.starts_with("http/") {
            return Some(("response_splitting", 8));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn crlf() {
        assert!(check("x\r\nSet-Cookie: a=b").is_some());
        assert!(check("/\r\nLocation: http://evil").is_some());
        assert!(check("a\r\n\r\n<script>").is_some());
        assert!(check("line one\nline two").is_none());
        assert!(check("no breaks").is_none());
    }
}
