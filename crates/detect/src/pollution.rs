//! Prototype pollution: `__proto__` and `constructor.prototype` in parameter names, JSON keys, or
//! JSON-ish text, the way `qs`, `lodash.merge` and friends were polluted.

fn segments(key: &str) -> impl Iterator<Item = &str> {
    key.split(['[', ']', '.']).filter(|s| !s.is_empty())
}

/// Checks a parameter name or a flattened JSON path.
pub fn check_key(key: &str) -> Option<(&'static str, u32)> {
    if !key.contains("__proto__") && !key.contains("prototype") {
        return None;
    }
    let mut prev = "";
    for seg in segments(key) {
        if seg == "__proto__" {
            return Some(("proto_key", 9));
        }
        if seg == "prototype" && prev == "constructor" {
            return Some(("constructor_prototype", 9));
        }
        prev = seg;
    }
    None
}

/// Checks a value that may be JSON text itself.
pub fn check(value: &str) -> Option<(&'static str, u32)> {
    if value.contains("\"__proto__\"")
        || value.contains("'__proto__'")
        || value.contains("__proto__[")
        || value.contains("__proto__.")
    {
        return Some(("proto_text", 8));
    }
    if value.contains("constructor")
        && (value.contains("[prototype]") || value.contains(".prototype") || value.contains("\"prototype\""))
    {
        return Some(("constructor_prototype", 8));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pollution() {
        assert!(check_key("__proto__[admin]").is_some());
        assert!(check_key("body.__proto__.isAdmin").is_some());
        assert!(check_key("constructor[prototype][x]").is_some());
        assert!(check_key("prototype").is_none());
        assert!(check(r#"{"__proto__":{"a":1}}"#).is_some());
        assert!(check("the prototype of a constructor").is_none());
    }
}
