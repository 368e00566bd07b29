//! The identity of a client in the black book: an IPv4 address, or an IPv6 address cut to a
//! prefix (/64 by default: one customer's network, which an attacker rotates inside freely).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpKey {
    V4(u32),
    V6 { net: u128, prefix: u8 },
}

impl IpKey {
    pub fn new(ip: IpAddr, v6_prefix: u8) -> IpKey {
        match ip {
            IpAddr::V4(v) => IpKey::V4(v.into()),
            IpAddr::V6(v) => match v.to_ipv4_mapped() {
                Some(m) => IpKey::V4(m.into()),
                None => {
                    let prefix = v6_prefix.clamp(1, 128);
                    let mask = if prefix == 128 { u128::MAX } else { !(u128::MAX >> prefix) };
                    IpKey::V6 { net: u128::from(v) & mask, prefix }
                }
            },
        }
    }

    /// Reads `1.2.3.4`, `2001:db8::1` (grouped by `v6_prefix`) or `2001:db8::/64`.
    pub fn parse(s: &str, v6_prefix: u8) -> Result<IpKey, String> {
        let s = s.trim();
        if let Some((addr, len)) = s.split_once('/') {
            let ip: IpAddr = addr.parse().map_err(|_| format!("`{s}` is not an address"))?;
            let len: u8 = len.parse().map_err(|_| format!("`{s}` has a bad prefix length"))?;
            return match ip {
                IpAddr::V4(_) if len == 32 => Ok(IpKey::new(ip, v6_prefix)),
                IpAddr::V4(_) => Err("IPv4 records are per address; give the address without a prefix".into()),
                IpAddr::V6(_) if (1..=128).contains(&len) => Ok(IpKey::new(ip, len)),
                IpAddr::V6(_) => Err(format!("`{s}` has a bad prefix length")),
            };
        }
        s.parse::<IpAddr>().map(|ip| IpKey::new(ip, v6_prefix)).map_err(|_| format!("`{s}` is not an IP address"))
    }
}

impl fmt::Display for IpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpKey::V4(v) => write!(f, "{}", std::net::Ipv4Addr::from(*v)),
            IpKey::V6 { net, prefix: 128 } => write!(f, "{}", Ipv6Addr::from(*net)),
            IpKey::V6 { net, prefix } => write!(f, "{}/{}", Ipv6Addr::from(*net), prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IpKey;

    #[test]
    fn v6_groups_by_prefix() {
        let a = IpKey::parse("2001:db8:1:2:aaaa::1", 64).unwrap();
        let b = IpKey::parse("2001:db8:1:2:ffff::9", 64).unwrap();
        let c = IpKey::parse("2001:db8:1:3::1", 64).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(IpKey::parse("::ffff:10.0.0.1", 64).unwrap().to_string(), "10.0.0.1");
        assert_eq!(IpKey::parse("2001:db8:1:2::/64", 64).unwrap(), a);
        assert!(IpKey::parse("not-an-ip", 64).is_err());
        assert!(IpKey::parse("10.0.0.0/8", 64).is_err());
    }
}
