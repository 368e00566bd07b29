//! XML external entities: a DOCTYPE declaring entities that point outside the document
//! (`SYSTEM`/`PUBLIC`), parameter entities, and XInclude.

pub fn check(value: &str) -> Option<(&'static str, u32)> {
    let b = value.as_bytes();
    memchr::memchr(b'<', b)?;
    let lower = value.to_ascii_lowercase();
    let entity = lower.contains("<!entity");
    if entity && (lower.contains("system") || lower.contains("public")) {
        return Some(("external_entity", 10));
    }
    if lower.contains("<!entity %")
        || (lower.contains("<!doctype") && lower.contains('%') && lower.contains(';') && entity)
    {
        return Some(("parameter_entity", 9));
    }
    if lower.contains("<!doctype")
        && (lower.contains(" system") || lower.contains(" public"))
        && (lower.contains('"') || lower.contains('\''))
    {
        return Some(("external_dtd", 9));
    }
    if lower.contains("xi:include")
        || lower.contains("http://www.w3.org/2001/xinclude")
        || lower.contains("xs:include")
        || lower.contains("xs:import")
        || lower.contains("schemalocation")
    {
        return Some(("xinclude", 8));
    }
    if entity {
        // An internal entity alone is the billion-laughs shape.
        return Some(("entity_declaration", 7));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn xxe() {
        assert!(
            check(r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#).is_some()
        );
        assert!(check(r#"<!DOCTYPE a [<!ENTITY % p SYSTEM "http://x/e.dtd"> %p;]>"#).is_some());
        assert!(check("<a><b>plain xml</b></a>").is_none());
    }
}
