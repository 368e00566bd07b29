//! Just enough of URL parsing for the scoring: the scheme, the host and the path of `http:` and
//! `https:` URLs, and how a `<script src>` resolves against the page's base URL.

/// An `http:` or `https:` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// `https:` rather than `http:`.
    pub https: bool,
    /// The host, lowercase; IPv6 addresses keep their brackets.
    pub host: String,
    /// The path, `/` when empty.
    pub path: String,
    /// The query without its `?`, when there is a `?`.
    pub query: Option<String>,
}

/// The base URL relative references resolve against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base {
    /// No usable base (`about:blank`): relative references do not resolve.
    Blank,
    /// An `http:` or `https:` base.
    Http(HttpUrl),
    /// Another hierarchical base (`file:`, `ftp:`, `foo://…`): everything resolves, to a URL that is
    /// neither `http:` nor `https:`.
    Other,
}

/// What a reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    Http(HttpUrl),
    /// A URL of another scheme (`javascript:`, `data:`, `ftp:`, …).
    Other,
}

/// Parses an absolute URL, e.g. a hop's URL.
pub(crate) fn parse_http(input: &str) -> Option<HttpUrl> {
    match resolve(input, &Base::Blank) {
        Some(Resolved::Http(url)) => Some(url),
        _ => None,
    }
}

/// Resolves `input` against `base`; `None` when it does not parse.
pub(crate) fn resolve(input: &str, base: &Base) -> Option<Resolved> {
    let cleaned = clean(input);
    let s = cleaned.as_str();
    if let Some((scheme, rest)) = split_scheme(s) {
        let https = match scheme.as_str() {
            "https" => true,
            "http" => false,
            _ => return Some(Resolved::Other),
        };
        if let Base::Http(b) = base {
            if b.https == https && !starts_with_two_slashes(rest) {
                return Some(Resolved::Http(on_base_host(b, rest)));
            }
        }
        return authority(rest.trim_start_matches(['/', '\\']), https).map(Resolved::Http);
    }
    match base {
        Base::Blank => None,
        Base::Other => Some(Resolved::Other),
        Base::Http(b) if starts_with_two_slashes(s) => {
            authority(s.trim_start_matches(['/', '\\']), b.https).map(Resolved::Http)
        }
        Base::Http(b) => Some(Resolved::Http(on_base_host(b, s))),
    }
}

/// The base a `<base href>` value gives (`Blank` when it is not an absolute URL).
pub(crate) fn base_of(href: &str) -> Base {
    let cleaned = clean(href);
    let Some((scheme, rest)) = split_scheme(&cleaned) else { return Base::Blank };
    match scheme.as_str() {
        "http" | "https" => match authority(rest.trim_start_matches(['/', '\\']), scheme == "https") {
            Some(url) => Base::Http(url),
            None => Base::Blank,
        },
        "file" | "ftp" | "ws" | "wss" => Base::Other,
        _ if rest.starts_with('/') => Base::Other,
        _ => Base::Blank,
    }
}

/// Strips leading and trailing control characters and spaces, and drops tabs and newlines.
fn clean(input: &str) -> String {
    input.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect()
}

/// The lowercase scheme and what follows its `:`, when `s` starts with one.
fn split_scheme(s: &str) -> Option<(String, &str)> {
    let colon = s.find(':')?;
    let scheme = s.get(..colon)?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), s.get(colon + 1..)?))
}

fn starts_with_two_slashes(s: &str) -> bool {
    let mut chars = s.chars();
    matches!((chars.next(), chars.next()), (Some('/' | '\\'), Some('/' | '\\')))
}

/// A reference that keeps the base's host.
fn on_base_host(base: &HttpUrl, rest: &str) -> HttpUrl {
    let (path, query) = path_and_query(rest);
    let path = if path.starts_with('/') { path } else { format!("/{path}") };
    HttpUrl { https: base.https, host: base.host.clone(), path, query }
}

/// Parses `host[:port][/path][?query][#fragment]` (after the slashes and any user info).
fn authority(s: &str, https: bool) -> Option<HttpUrl> {
    let end = s.find(['/', '\\', '?', '#']).unwrap_or(s.len());
    let auth = s.get(..end)?;
    let host_port = match auth.rfind('@') {
        Some(at) => auth.get(at + 1..)?,
        None => auth,
    };
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port.find(']')?;
        let after = host_port.get(close + 1..)?;
        let port = match after.strip_prefix(':') {
            Some(port) => port,
            None if after.is_empty() => "",
            None => return None,
        };
        (ipv6(host_port.get(..=close)?)?, port)
    } else {
        let (host, port) = host_port.split_once(':').unwrap_or((host_port, ""));
        (domain(host)?, port)
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u64>().map_or(!port.is_empty(), |p| p > 65535) {
        return None;
    }
    let (path, query) = path_and_query(s.get(end..)?);
    let path = if path.is_empty() { "/".to_owned() } else { path };
    Some(HttpUrl { https, host, path, query })
}

/// Splits what follows the host into a path (backslashes read as slashes) and a query, dropping
/// any fragment.
fn path_and_query(s: &str) -> (String, Option<String>) {
    let s = s.split('#').next().unwrap_or("");
    let (path, query) = match s.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (s, None),
    };
    (path.replace('\\', "/"), query)
}

fn ipv6(bracketed: &str) -> Option<String> {
    let inner = bracketed.strip_prefix('[')?.strip_suffix(']')?;
    let ok = !inner.is_empty()
        && inner.contains(':')
        && inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    ok.then(|| bracketed.to_ascii_lowercase())
}

/// A domain or IPv4 host, percent-decoded and lowercased; `None` when it is not valid.
fn domain(raw: &str) -> Option<String> {
    let decoded = String::from_utf8_lossy(&percent_decode(raw.as_bytes())).to_lowercase();
    let forbidden = |c: char| {
        c <= ' ' || matches!(c, '#' | '%' | '/' | ':' | '<' | '>' | '?' | '@' | '[' | '\\' | ']' | '^' | '|' | '\u{7f}')
    };
    if decoded.is_empty() || decoded.chars().any(forbidden) {
        return None;
    }
    if ends_in_number(&decoded) {
        return ipv4(&decoded);
    }
    Some(decoded)
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Whether the last label of a host is a number, which makes it an IPv4 address.
fn ends_in_number(host: &str) -> bool {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    let last = trimmed.rsplit('.').next().unwrap_or("");
    !last.is_empty() && (last.bytes().all(|b| b.is_ascii_digit()) || ipv4_part(last).is_some())
}

/// Normalizes an IPv4 host written in any of the forms browsers accept (`127.1`, `0x7f.0.0.1`).
fn ipv4(host: &str) -> Option<String> {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<u64> = trimmed.split('.').map(ipv4_part).collect::<Option<_>>()?;
    let (last, init) = parts.split_last()?;
    if parts.len() > 4 || init.iter().any(|&p| p > 255) || *last >= 256_u64.pow(5 - parts.len() as u32) {
        return None;
    }
    let mut value = *last;
    for (i, part) in init.iter().enumerate() {
        value += part << (8 * (3 - i));
    }
    let octets = value.to_be_bytes();
    let [.., a, b, c, d] = octets;
    Some(format!("{a}.{b}.{c}.{d}"))
}

fn ipv4_part(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (part.get(1..)?, 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return (radix != 10).then_some(0);
    }
    if digits.len() > 12 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}
