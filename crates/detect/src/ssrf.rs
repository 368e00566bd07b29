//! Server-side request forgery: URLs in parameters that point at loopback, private, link-local or
//! cloud-metadata addresses (in every spelling: decimal, hex, octal, IPv6-mapped), and schemes a
//! server-side fetcher should never be handed (`file:`, `gopher:`, `dict:` …).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const SCHEMES: &[&str] =
    &["file:", "gopher:", "dict:", "ldap:", "ldaps:", "tftp:", "jar:", "netdoc:", "sftp:", "php:", "expect:"];
const HOSTS: &[&str] = &[
    "localhost",
    "metadata.google.internal",
    "metadata",
    "instance-data",
    "metadata.azure.com",
    "kubernetes.default",
    "localtest.me",
    "0",
];

/// Parses every spelling of an IPv4 address that `inet_aton` accepts: `2130706433`, `0x7f000001`,
/// `0177.0.0.1`, `127.1`.
fn loose_ipv4(h: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = h.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let num = |p: &str| -> Option<u64> {
        if let Some(x) = p.strip_prefix("0x") {
            u64::from_str_radix(x, 16).ok()
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()
        } else {
            p.parse().ok()
        }
    };
    let nums: Option<Vec<u64>> = parts.iter().map(|p| num(p)).collect();
    let nums = nums?;
    let v: u64 = match nums.len() {
        1 => nums[0],
        2 => (nums[0] << 24) | nums[1],
        3 => (nums[0] << 24) | (nums[1] << 16) | nums[2],
        _ => (nums[0] << 24) | (nums[1] << 16) | (nums[2] << 8) | nums[3],
    };
    (v <= u32::MAX as u64 && nums.iter().all(|n| *n <= u32::MAX as u64)).then(|| Ipv4Addr::from(v as u32))
}

fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.octets()[0] == 0
                || (v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v) => {
            v.is_loopback()
                || v.is_unspecified()
                || (v.segments()[0] & 0xffc0) == 0xfe80
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || v.to_ipv4_mapped().is_some_and(|m| internal(IpAddr::V4(m)))
        }
    }
}

fn host_of(url: &str) -> &str {
    let after = url.split_once("//").map_or(url, |(_, r)| r);
    let auth = after.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let auth = auth.rsplit('@').next().unwrap_or(auth);
    if let Some(rest) = auth.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    auth.split(':').next().unwrap_or("")
}

fn host_internal(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return false;
    }
    if HOSTS.contains(&host) || host.ends_with(".localhost") || host.ends_with(".internal") {
        return true;
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return internal(IpAddr::V6(v6));
    }
    if host.bytes().all(|c| c.is_ascii_hexdigit() || c == b'.' || c == b'x') && host.bytes().any(|c| c.is_ascii_digit())
    {
        if let Some(v4) = loose_ipv4(host) {
            return internal(IpAddr::V4(v4));
        }
    }
    // nip.io-style names that resolve to what they spell.
    ["127.0.0.1.nip.io", "169.254.169.254.nip.io", ".127.0.0.1.", "169.254.169.254"].iter().any(|k| host.contains(k))
}

pub fn check(value: &str) -> Option<(&'static str, u32)> {
    if !value.contains(':') && !value.contains("169.254") {
        return None;
    }
    let lower = value.trim().to_ascii_lowercase();
    if lower.contains("169.254.169.254")
        || lower.contains("fd00:ec2::254")
        || lower.contains("100.100.100.200")
        || lower.contains("metadata.google.internal")
    {
        return Some(("cloud_metadata", 9));
    }
    for s in SCHEMES {
        if lower.starts_with(s) || lower.contains(&format!("={s}")) {
            return Some(("dangerous_scheme", 8));
        }
    }
    let mut from = 0;
    while let Some(p) = lower[from..].find("://") {
        let at = from + p;
        let scheme_start = lower[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let scheme = &lower[scheme_start..at];
        if !scheme.is_empty() && host_internal(host_of(&lower[at..])) {
            return Some(("internal_address", 8));
        }
        from = at + 3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn ssrf() {
        for s in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:6379/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "file:///etc/passwd",
            "gopher://localhost:25/",
            "http://localhost/admin",
            "http://10.0.0.5/",
            "https://user@192.168.1.1/",
        ] {
            assert!(check(s).is_some(), "missed: {s}");
        }
        for s in [
            "https://example.com/a?b=c",
            "http://8.8.8.8/",
            "10:30",
            "url=http://www.example.com/tan?usp=4#8",
            "time: 12:00",
        ] {
            assert!(check(s).is_none(), "false positive: {s}");
        }
    }
}
