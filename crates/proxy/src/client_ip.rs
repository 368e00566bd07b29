//! The client's address: the socket peer, unless the peer is a configured trusted proxy, in which
//! case the right-most address of `X-Forwarded-For` that is not itself trusted. A client that is
//! not behind a trusted proxy can never choose its own address.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// Resolves the client address for a request that arrived from `peer`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    // Walk every X-Forwarded-For line from the right (the nearest hop) to the left.
    let values: Vec<&[u8]> = headers.get_all("x-forwarded-for").iter().map(|v| v.as_bytes()).collect();
    for value in values.iter().rev() {
        let Ok(text) = std::str::from_utf8(value) else { return client };
        for part in text.rsplit(',') {
            let part = part.trim();
            let parsed = parse_hop(part);
            match parsed {
                Some(ip) => {
                    let ip = canonical(ip);
                    client = ip;
                    if !is_trusted(ip, trusted) {
                        return ip;
                    }
                }
                // Garbage in the chain: stop at the last address a trusted hop vouched for.
                None => return client,
            }
        }
    }
    client
}

/// One X-Forwarded-For entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443` or `1.2.3.4:5678`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(xff: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        m
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_header_says() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(resolve(peer, &h("1.1.1.1"), &trusted), peer);
        assert_eq!(resolve(peer, &h("1.1.1.1"), &[]), peer);
    }

    #[test]
    fn trusted_chain_gives_the_rightmost_untrusted() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(resolve(peer, &h("6.6.6.6, 198.51.100.7, 10.0.0.9"), &trusted).to_string(), "198.51.100.7");
        assert_eq!(resolve(peer, &h("10.1.1.1"), &trusted).to_string(), "10.1.1.1");
        assert_eq!(resolve(peer, &HeaderMap::new(), &trusted), peer);
        assert_eq!(resolve(peer, &h("garbage, 10.0.0.3"), &trusted).to_string(), "10.0.0.3");
        assert_eq!(resolve(peer, &h("[2001:db8::1]:443"), &trusted).to_string(), "2001:db8::1");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(resolve(mapped, &h("198.51.100.7"), &trusted).to_string(), "198.51.100.7");
    }
}
