//! Checks on the request line and headers that hyper leaves to us: percent-encoding, UTF-8 after
//! decoding, NUL bytes, the Host header. A failure is a 400 with a reason, never a panic.
//!
//! Bytes that are not UTF-8 (`/tienda1/A%F1adir`, Latin-1) and a `%` that starts no escape
//! (`?width=100%`) are what real clients send: they are forwarded, and the detectors read them
//! as bytes and as Latin-1. Only what no app can legitimately receive is refused — a NUL, an
//! overlong UTF-8 form (`%c0%ae`) — and that is an attack, not a malformed request.

use http::{HeaderMap, Method, Uri};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    BadPercentEncoding,
    BadUtf8,
    NulByte,
    BadHost,
    DuplicateHost,
    BadPath,
    Connect,
    BadContentLength,
    OverlongUtf8,
    LowercaseMethod,
    MissingHost,
}

impl Invalid {
    pub fn reason(self) -> &'static str {
        match self {
            Invalid::BadPercentEncoding => "invalid percent-encoding",
            Invalid::BadUtf8 => "invalid UTF-8 after percent-decoding",
            Invalid::NulByte => "NUL byte in the URL",
            Invalid::BadHost => "invalid Host header",
            Invalid::DuplicateHost => "more than one Host header",
            Invalid::BadPath => "the request target is not a path",
            Invalid::Connect => "CONNECT is not served",
            Invalid::BadContentLength => "invalid Content-Length",
            Invalid::OverlongUtf8 => "overlong UTF-8 in the URL",
            Invalid::LowercaseMethod => "a method in lower case",
            Invalid::MissingHost => "no Host header",
        }
    }

    /// Refused as an attack (a `malicious_attack` event) rather than as a malformed request.
    pub fn attack_rule(self) -> Option<&'static str> {
        match self {
            Invalid::NulByte => Some("nul_byte"),
            Invalid::OverlongUtf8 => Some("overlong_utf8"),
            _ => None,
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Invalid::Connect => 405,
            _ => 400,
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s` into `out`; refuses NUL and overlong UTF-8. A malformed escape stays as it
/// is and bytes that are not UTF-8 are accepted (see the module's notes). No allocation when
/// the input holds no `%` (the common case) beyond the reused buffer.
pub fn check_component(s: &str, out: &mut Vec<u8>) -> Result<(), Invalid> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        return if bytes.contains(&0) { Err(Invalid::NulByte) } else { Ok(()) };
    }
    out.clear();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if let (Some(h), Some(l)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    if out.contains(&0) {
        return Err(Invalid::NulByte);
    }
    if std::str::from_utf8(out).is_err() && overlong(out) {
        return Err(Invalid::OverlongUtf8);
    }
    Ok(())
}

fn overlong(b: &[u8]) -> bool {
    b.windows(2).any(|w| matches!(w[0], 0xc0 | 0xc1) && w[1] & 0xc0 == 0x80)
        || b.windows(3).any(|w| w[0] == 0xe0 && (0x80..0xa0).contains(&w[1]) && w[2] & 0xc0 == 0x80)
        || b.windows(2).any(|w| w[0] == 0xf0 && (0x80..0x90).contains(&w[1]))
}

pub fn check(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), Invalid> {
    if method == Method::CONNECT {
        return Err(Invalid::Connect);
    }
    // Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET, and apps disagree on it.
    if method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(Invalid::LowercaseMethod);
    }
    let path = uri.path();
    if !(path.starts_with('/') || (path == "*" && method == Method::OPTIONS)) {
        return Err(Invalid::BadPath);
    }
    let mut buf = Vec::new();
    check_component(path, &mut buf)?;
    if let Some(q) = uri.query() {
        check_component(q, &mut buf)?;
    }
    let mut hosts = headers.get_all(http::header::HOST).iter();
    if let Some(h) = hosts.next() {
        if hosts.next().is_some() {
            return Err(Invalid::DuplicateHost);
        }
        let ok = h
            .to_str()
            .ok()
            .and_then(|s| s.parse::<http::uri::Authority>().ok())
            .is_some_and(|a| !a.as_str().contains('@'));
        if !ok {
            return Err(Invalid::BadHost);
        }
    }
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    if let Some(cl) = lengths.next() {
        let first = cl.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).ok_or(Invalid::BadContentLength)?;
        for other in lengths {
            if other.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) != Some(first) {
                return Err(Invalid::BadContentLength);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn c(u: &str) -> Result<(), Invalid> {
        check(&Method::GET, &u.parse().unwrap(), &HeaderMap::new())
    }

    #[test]
    fn urls() {
        assert_eq!(c("/a/b?x=1&y=%20z"), Ok(()));
        assert_eq!(c("/caf%C3%A9"), Ok(()));
        // What real clients send is forwarded.
        assert_eq!(c("/%zz"), Ok(()));
        assert_eq!(c("/?width=100%&height=100%"), Ok(()));
        assert_eq!(c("/tienda1/A%F1adir"), Ok(()));
        assert_eq!(c("/?q=%C3"), Ok(()));
        // What no app can legitimately receive is not.
        assert_eq!(c("/a%00b"), Err(Invalid::NulByte));
        assert_eq!(c("/..%c0%af..%c0%afetc/passwd"), Err(Invalid::OverlongUtf8));
        assert_eq!(c("/%e0%80%ae"), Err(Invalid::OverlongUtf8));
        assert_eq!(
            check(&Method::from_bytes(b"get").unwrap(), &"/".parse().unwrap(), &HeaderMap::new()),
            Err(Invalid::LowercaseMethod)
        );
    }

    #[test]
    fn hosts_and_lengths() {
        let mut h = HeaderMap::new();
        h.append("host", "a.example".parse().unwrap());
        assert_eq!(check(&Method::GET, &"/".parse().unwrap(), &h), Ok(()));
        h.append("host", "b.example".parse().unwrap());
        assert_eq!(check(&Method::GET, &"/".parse().unwrap(), &h), Err(Invalid::DuplicateHost));
        let mut h = HeaderMap::new();
        h.insert("host", "user@evil".parse().unwrap());
        assert_eq!(check(&Method::GET, &"/".parse().unwrap(), &h), Err(Invalid::BadHost));
        let mut h = HeaderMap::new();
        h.append("content-length", "5".parse().unwrap());
        h.append("content-length", "6".parse().unwrap());
        assert_eq!(check(&Method::POST, &"/".parse().unwrap(), &h), Err(Invalid::BadContentLength));
        assert_eq!(
            check(&Method::CONNECT, &"example.com:443".parse().unwrap(), &HeaderMap::new()),
            Err(Invalid::Connect)
        );
    }
}
