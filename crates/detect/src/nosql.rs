//! NoSQL operator injection: MongoDB query operators smuggled in as keys (`user[$ne]=`,
//! `{"password": {"$gt": ""}}`) or as text, and `$where` JavaScript.

const OPS: &[&str] = &[
    "$ne",
    "$eq",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$regex",
    "$where",
    "$exists",
    "$expr",
    "$or",
    "$and",
    "$not",
    "$nor",
    "$elemmatch",
    "$function",
    "$accumulator",
    "$type",
    "$size",
    "$all",
    "$mod",
    "$text",
    "$jsonschema",
    "$options",
    "$lookup",
    "$merge",
    "$out",
    "$group",
    "$match",
];

fn is_op(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    OPS.contains(&l.as_str())
}

/// Checks a parameter name (`user[$ne]`, a flattened JSON path `body.password.$gt`).
pub fn check_key(key: &str) -> Option<(&'static str, u32)> {
    if !key.contains('$') {
        return None;
    }
    let found = key.split(['[', ']', '.']).any(|seg| seg.starts_with('$') && is_op(seg));
    found.then_some(("operator_key", 9))
}

/// Checks a value: a JSON-ish operator object in text, or `$where` code.
pub fn check(value: &str) -> Option<(&'static str, u32)> {
    if !value.contains('$') && !value.contains("==") && !value.contains("||") && !value.contains("db.") {
        return None;
    }
    let lower = value.to_ascii_lowercase();
    for op in OPS {
        let mut from = 0;
        while let Some(p) = lower[from..].find(op) {
            let at = from + p;
            let end = at + op.len();
            let before = lower[..at].trim_end();
            let after = lower[end..].trim_start();
            let quoted_key =
                (before.ends_with('"') || before.ends_with('\'') || before.ends_with('{') || before.ends_with('['))
                    && (after.starts_with(':')
                        || after.starts_with("\":")
                        || after.starts_with("':")
                        || after.starts_with(']'));
            if quoted_key {
                return Some(("operator_object", 9));
            }
            // Unquoted keys: `true, $where: '1 == 1'`, `', $or: [ {}, …`
            let sep_before = before.is_empty() || before.ends_with(',') || before.ends_with('{');
            if sep_before
                && after.starts_with(':')
                && (*op == "$where" || after[1..].trim_start().starts_with(['{', '[', '\'', '"']))
            {
                return Some(("operator_object", 8));
            }
            from = end;
        }
    }
    for verb in [".find(", ".insert(", ".drop(", ".remove(", ".update(", ".deletemany(", ".insertone(", ".aggregate("] {
        if lower.contains("db.") && lower.contains(verb) {
            return Some(("shell_command", 8));
        }
    }
    // `'; return true; var x='`, `' || '1'=='1`, `this.password.match(/.*/)`
    let js = ["return true", "this.password", "this.passwd", "sleep(", ".match(/", "db.", "tojson(", "objectid("];
    let breaks = ["'||'", "' || '", "\"||\"", "'==", "';", "\";", "1==1", "'=='"];
    if js.iter().any(|k| lower.contains(k)) && breaks.iter().any(|k| lower.contains(k) || lower.contains("$where")) {
        return Some(("where_javascript", 8));
    }
    if breaks.iter().any(|k| lower.contains(k)) && (lower.contains("||") && lower.contains("==")) {
        return Some(("javascript_tautology", 7));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators() {
        assert!(check_key("user[$ne]").is_some());
        assert!(check_key("body.password.$gt").is_some());
        assert!(check_key("price$").is_none());
        assert!(check(r#"{"$ne": null}"#).is_some());
        assert!(check("' || '1'=='1").is_some());
        assert!(check("$5 off").is_none());
        assert!(check("cost: $100 or $200").is_none());
    }
}
