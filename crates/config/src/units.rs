//! Sizes (`"10MiB"`, `16384`), durations (`"30s"`, `"1h"`, `"30d"`), rates (`"100/s"`) and
//! address ranges as written in the config: plain string parsers, shared by every section's reader.

use std::time::Duration;

/// Parses a byte size: a plain number of bytes, or a number with a unit. `KB`/`MB`/`GB` are
/// powers of 1000; `K`/`KiB`, `M`/`MiB`, `G`/`GiB` are powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!("`{s}` is not a size (examples: 16384, \"64KiB\", \"10MB\")"));
    }
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is too large"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown size unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses a duration: `"500ms"`, `"30s"`, `"10m"`, `"1h"`, `"30d"`, or combinations (`"1h 30m"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|_| format!("`{s}` is not a duration (examples: \"500ms\", \"30s\", \"10m\", \"1h\", \"30d\")"))
}

/// A whole number of bytes, as an integer in the config.
pub fn size_from_int(n: i64) -> Result<u64, String> {
    u64::try_from(n).map_err(|_| "a size cannot be negative".to_owned())
}

/// A whole number of seconds, as an integer in the config.
pub fn secs_from_int(n: i64) -> Result<Duration, String> {
    u64::try_from(n).map(Duration::from_secs).map_err(|_| "a duration cannot be negative".to_owned())
}

/// An address (`10.1.2.3`) or a CIDR range (`10.0.0.0/8`).
pub fn cidr(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{s}` is not an address or CIDR range (example: \"10.0.0.0/8\")"))
}

/// `"100/s"`, `"600/min"`, `"10/5m"`: a count per duration.
pub fn rate(s: &str) -> Result<(u32, Duration), String> {
    let bad = || format!("`{s}` is not a rate (examples: \"100/s\", \"600/min\", \"20/10s\")");
    let (n, per) = s.split_once('/').ok_or_else(bad)?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if count == 0 {
        return Err("a rate needs a count above zero".into());
    }
    let per = match per.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86400),
        other => parse_duration(other).map_err(|_| bad())?,
    };
    if per.is_zero() {
        return Err(bad());
    }
    Ok((count, per))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16384"), Ok(16384));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("18446744073709551615G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
    }
}
