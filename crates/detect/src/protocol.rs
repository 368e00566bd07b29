//! Protocol anomalies that survive the proxy's own validation (which already refuses malformed
//! requests with 400): methods only scanners send, both `Content-Length` and `Transfer-Encoding`,
//! obfuscated `Transfer-Encoding`, range floods (CVE-2011-3192), UTF-7 and other charsets used to
//! smuggle markup, and header values carrying line breaks or NULs.

use http::HeaderMap;

pub fn check(method: &str, headers: &HeaderMap) -> Option<(&'static str, String, u32)> {
    if matches!(method, "TRACE" | "TRACK" | "DEBUG") {
        return Some(("scanner_method", "method".into(), 6));
    }
    let te = headers.get_all(http::header::TRANSFER_ENCODING).iter().count();
    if te > 0 && headers.contains_key(http::header::CONTENT_LENGTH) {
        return Some(("content_length_and_chunked", "header.transfer-encoding".into(), 8));
    }
    for v in headers.get_all(http::header::TRANSFER_ENCODING) {
        let s = String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase();
        if s.split(',').any(|p| !matches!(p.trim(), "chunked" | "gzip" | "deflate" | "compress" | "identity" | "br")) {
            return Some(("transfer_encoding_obfuscated", "header.transfer-encoding".into(), 7));
        }
    }
    if let Some(r) = headers.get(http::header::RANGE) {
        if r.as_bytes().iter().filter(|c| **c == b',').count() >= 10 {
            return Some(("range_flood", "header.range".into(), 7));
        }
    }
    // Every charset named below has a 7, 0 or 5 in it: most content types are left at once.
    if let Some(ct) =
        headers.get(http::header::CONTENT_TYPE).filter(|ct| memchr::memchr3(b'7', b'0', b'5', ct.as_bytes()).is_some())
    {
        let s = String::from_utf8_lossy(ct.as_bytes()).to_ascii_lowercase();
        if s.contains("utf-7")
            || s.contains("utf7")
            || s.contains("ibm037")
            || s.contains("ibm500")
            || s.contains("cp875")
        {
            return Some(("smuggling_charset", "header.content-type".into(), 7));
        }
    }
    for (name, value) in headers {
        if memchr::memchr3(0, b'\r', b'\n', value.as_bytes()).is_some() {
            return Some(("control_in_header", format!("header.{}", name.as_str()), 7));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn anomalies() {
        let h = HeaderMap::new();
        assert!(check("TRACE", &h).is_some());
        assert!(check("GET", &h).is_none());
        let mut h = HeaderMap::new();
        h.insert("range", HeaderValue::from_static("bytes=0-1,1-2,2-3,3-4,4-5,5-6,6-7,7-8,8-9,9-10,10-11"));
        assert!(check("GET", &h).is_some());
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/html; charset=utf-7"));
        assert!(check("POST", &h).is_some());
    }
}
