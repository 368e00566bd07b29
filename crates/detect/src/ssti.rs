//! Server-side template injection: expressions in the delimiters of the common template engines
//! (`{{7*7}}`, `${7*7}`, `<%= %>`, `#{}`, `*{}`, `{% %}`), Python object-graph walks
//! (`__class__.__mro__`), and engine-specific gadgets.

const GADGETS: &[&str] = &[
    "__class__",
    "__mro__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "__init__",
    "getattr(",
    "freemarker.template.utility.execute",
    "java.lang.runtime",
    "t(java.",
    "new java.",
    "$class.inspect",
    "#set(",
    "<#assign",
    "constructor.constructor",
    "self._templatereference",
    "lipsum.",
    "cycler.",
    "joiner.",
    "namespace.__init__",
    "request.application",
    "config.items",
    "url_for.__globals__",
    "get_flashed_messages",
    "range.constructor",
    "process.mainmodule",
    "global.process",
    "require(",
    "#{t(",
    "@java.",
    "${t(",
];

fn expr_inside(s: &str, open: &str, close: &str) -> bool {
    let mut from = 0;
    while let Some(p) = s[from..].find(open) {
        let start = from + p + open.len();
        // Expressions are short: look for the close within a bounded window (keeps this linear).
        let window = &s.as_bytes()[start..(start + 402).min(s.len())];
        let Some(len) = memchr::memmem::find(window, close.as_bytes()) else {
            from = start;
            continue;
        };
        if !s.is_char_boundary(start + len) {
            from = start;
            continue;
        }
        let inner = s[start..start + len].trim();
        if !inner.is_empty() && inner.len() <= 400 {
            // An operator or a call; quotes alone are a helper's arguments (`<%= link_to "Home" %>`).
            let arith = inner.bytes().any(|c| matches!(c, b'*' | b'+' | b'-' | b'/' | b'%' | b'|' | b'(' | b'['))
                && inner.bytes().any(|c| c.is_ascii_digit() || c == b'(' || c == b'\'' || c == b'"');
            let call = inner.contains("()") || inner.contains(".__") || inner.contains("(\"") || inner.contains("('");
            if arith || call || GADGETS.iter().any(|g| inner.contains(g)) {
                return true;
            }
        }
        // Expressions do not overlap: go on after this one's close.
        from = start + len + close.len();
    }
    false
}

pub fn check(value: &str) -> Option<(&'static str, u32)> {
    let b = value.as_bytes();
    if !b.iter().any(|c| matches!(c, b'{' | b'%' | b'_' | b'#' | b'$' | b'(')) {
        return None;
    }
    let lower = value.to_ascii_lowercase();
    if GADGETS.iter().take(8).any(|g| lower.contains(g))
        || GADGETS
            .iter()
            .skip(8)
            .any(|g| lower.contains(g) && (lower.contains('{') || lower.contains('(') || lower.contains('<')))
    {
        if lower.contains("require(") && !(lower.contains("{{") || lower.contains("${") || lower.contains("<%")) {
            return None;
        }
        return Some(("template_gadget", 9));
    }
    for (open, close) in [
        ("{{", "}}"),
        ("${", "}"),
        ("<%=", "%>"),
        ("<%", "%>"),
        ("#{", "}"),
        ("*{", "}"),
        ("{%", "%}"),
        ("@(", ")"),
        ("[[", "]]"),
    ] {
        if lower.contains(open) && expr_inside(&lower, open, close) {
            if open == "[[" && !lower.contains("${") {
                continue;
            }
            if open == "@(" {
                continue;
            }
            return Some(("template_expression", 8));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn templates() {
        for s in [
            "{{7*7}}",
            "${7*7}",
            "<%= 7*7 %>",
            "#{7*7}",
            "{{config.items()}}",
            "{{''.__class__.__mro__[1].__subclasses__()}}",
            "${T(java.lang.Runtime).getRuntime().exec('id')}",
            "{% import os %}{{ os.popen('id').read() }}",
        ] {
            assert!(check(s).is_some(), "missed: {s}");
        }
        for s in ["{name}", "hello {{ user }}", "price ${amount}", "50% off {today}", "#{hashtag}"] {
            assert!(check(s).is_none(), "false positive: {s}");
        }
    }
}
