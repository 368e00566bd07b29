//! Cross-site scripting: markup that runs script (dangerous tags, event-handler attributes,
//! script URLs), breaks out of an attribute or a script string, and calls to script sinks.
//! Works on the decoded, lower-cased value; `compact` (no controls or blanks) catches
//! `jav&#x09;ascript:`.

use crate::normalize;

const TAGS: &[&str] = &[
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "meta",
    "link",
    "style",
    "base",
    "form",
    "img",
    "image",
    "isindex",
    "video",
    "audio",
    "source",
    "body",
    "html",
    "xml",
    "xss",
    "marquee",
    "details",
    "input",
    "button",
    "textarea",
    "select",
    "keygen",
    "table",
    "div",
    "a",
    "animate",
    "set",
    "handler",
    "bgsound",
    "layer",
    "ilayer",
    "blink",
    "template",
    "noscript",
    "portal",
    "listing",
    "xmp",
    "plaintext",
    "comment",
    "title",
    "dialog",
    "object",
    "param",
    "track",
    "picture",
    "canvas",
    "foreignobject",
    "use",
    "x",
];

const SINKS: &[&str] = &[
    "alert",
    "prompt",
    "confirm",
    "eval",
    "settimeout",
    "setinterval",
    "execscript",
    "fromcharcode",
    "atob",
    "document.write",
    "document.cookie",
    "document.domain",
    "document.location",
    "window.location",
    "location.href",
    "innerhtml",
    "outerhtml",
    "import(",
    "constructor(",
    "fetch(",
    "xmlhttprequest",
    "console.log",
    "print(",
];

fn has_sink(s: &str) -> bool {
    SINKS.iter().any(|k| {
        let mut from = 0;
        while let Some(p) = s[from..].find(k) {
            let at = from + p;
            let end = at + k.len();
            let rest = s[end..].trim_start_matches([' ', '\t', '\n', '\r', '/']);
            // A call (`alert(1)`, ``alert`1` ``), or a property that is only read by script.
            if k.ends_with('(')
                || rest.starts_with('(')
                || rest.starts_with('`')
                || k.contains('.')
                || *k == "innerhtml"
                || *k == "outerhtml"
                || (rest.starts_with('=') && !k.contains('('))
            {
                return true;
            }
            from = end;
        }
        false
    })
}

fn is_event_attr(s: &str) -> bool {
    // ` on<letters>\s*=` preceded by a separator browsers accept between attributes.
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(p) = memchr::memmem::find(&b[i..], b"on") {
        let at = i + p;
        let before_ok = at == 0 || matches!(b[at - 1], b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'"' | b'\'' | b'\x0c');
        let mut j = at + 2;
        while j < b.len() && b[j].is_ascii_alphabetic() {
            j += 1;
        }
        if before_ok && j > at + 3 {
            let mut k = j;
            while k < b.len() && matches!(b[k], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') {
                k += 1;
            }
            if b.get(k) == Some(&b'=') {
                return true;
            }
        }
        i = at + 2;
    }
    false
}

/// Tags opened in the value: `<name` where name is a letter run.
fn tags(s: &str) -> impl Iterator<Item = &str> {
    s.match_indices('<').filter_map(move |(i, _)| {
        let rest = &s[i + 1..];
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        let end = rest.find(|c: char| !c.is_ascii_alphanumeric() && c != ':' && c != '-').unwrap_or(rest.len());
        let name = &rest[..end];
        (!name.is_empty() && name.as_bytes()[0].is_ascii_alphabetic()).then_some(name)
    })
}

fn script_url(compact: &str) -> bool {
    // `javascript:` followed by code, not by prose ("JavaScript: Basics of …").
    for scheme in ["javascript:", "vbscript:", "livescript:"] {
        let mut from = 0;
        while let Some(p) = compact[from..].find(scheme) {
            let rest = &compact[from + p + scheme.len()..];
            if rest.bytes().take(64).any(|c| {
                matches!(c, b'(' | b'=' | b'`' | b'[' | b'.' | b';' | b'\'' | b'"' | b'/' | b'{' | b'%' | b'&' | b'\\')
            }) {
                return true;
            }
            from += p + scheme.len();
        }
    }
    ["data:text/html", "data:image/svg+xml", "data:application/x"].iter().any(|k| compact.contains(k))
}

/// A sink referenced without a plain call: `alert.call(`, `(alert)(1)`, `alert?.(`,
/// `document["cookie"]`, `top["al"+"ert"](1)`, `[1].find(alert)`.
fn sink_reference(c: &str) -> bool {
    for s in ["alert", "prompt", "confirm", "eval"] {
        for suffix in [".call(", ".apply(", ".bind(", ")(", "?.(", ")`", "`"] {
            if c.contains(&format!("{s}{suffix}")) {
                return true;
            }
        }
        if c.contains(&format!("({s})")) || c.contains(&format!("={s},")) || c.contains(&format!(",{s})")) {
            return true;
        }
    }
    let doc = [
        "document[\"cookie",
        "document['cookie",
        "document[\"domain",
        "document['domain",
        "document?.cookie",
        "window[\"location",
        "window['location",
    ];
    if doc.iter().any(|d| c.contains(d)) {
        return true;
    }
    // `top[…](`, `window[…](`, `self[…](`, `this[…](`, `parent[…](`, `frames[…](`, `globalThis[…](`
    for obj in ["top[", "window[", "self[", "this[", "parent[", "frames[", "globalthis[", "content["] {
        if let Some(p) = c.find(obj) {
            if c[p..].contains("](") {
                return true;
            }
        }
    }
    false
}

/// The value with short tags removed (`o<x>nfocus` → `onfocus`).
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('<') {
        out.push_str(&rest[..p]);
        match rest[p..].find('>') {
            Some(e) if e <= 12 => rest = &rest[p + e + 1..],
            _ => {
                out.push('<');
                rest = &rest[p + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn check(value: &str) -> Option<(&'static str, u32)> {
    let b = value.as_bytes();
    if !b.iter().any(|c| matches!(c, b'<' | b':' | b'(' | b'=' | b'`' | b'"' | b'\'')) {
        return None;
    }
    let lower = value.to_ascii_lowercase();
    let compact = normalize::compact(&lower);
    let has_tag_open = lower.contains('<');
    if has_tag_open {
        let mut plain_tag = false;
        for name in tags(&lower) {
            let name = name.rsplit(':').next().unwrap_or(name);
            if matches!(name, "script" | "iframe" | "object" | "embed" | "applet" | "meta" | "base" | "frameset") {
                return Some(("script_tag", 9));
            }
            if TAGS.contains(&name) || name.len() <= 12 {
                plain_tag = true;
            }
        }
        if plain_tag {
            if is_event_attr(&lower) {
                return Some(("event_handler", 9));
            }
            if script_url(&compact) {
                return Some(("script_url", 9));
            }
            if compact.contains("expression(") || compact.contains("-moz-binding") || compact.contains("behavior:") {
                return Some(("css_expression", 8));
            }
            if compact.contains("srcdoc=") || compact.contains("formaction=") || compact.contains("xlink:href") {
                return Some(("dangerous_attribute", 8));
            }
            if has_sink(&lower) {
                return Some(("markup_with_script", 8));
            }
            if lower.contains("<style") || lower.contains("<svg") || lower.contains("<math") {
                return Some(("active_markup", 7));
            }
            if ["<layer", "<ilayer", "<link", "<xml", "<import", "<bgsound", "<frame"].iter().any(|t| lower.contains(t))
                && (compact.contains("src=") || compact.contains("href="))
            {
                return Some(("external_resource_markup", 7));
            }
        }
        if lower.contains("<!--") && (lower.contains("<!--#") || has_sink(&lower)) {
            return Some(("comment_script", 7));
        }
        if lower.contains("<![cdata[") && has_sink(&lower) {
            return Some(("cdata_script", 7));
        }
    }
    if script_url(&compact)
        && (compact.starts_with("javascript:")
            || compact.starts_with("vbscript:")
            || compact.starts_with("livescript:")
            || has_sink(&lower))
    {
        return Some(("script_url", 8));
    }
    if compact.starts_with("data:text/html") {
        return Some(("script_url", 8));
    }
    // Breaking out of an attribute: `" onmouseover="alert(1)`, `' autofocus onfocus=…`, also with
    // junk tags a sanitizer would strip (`o<x>nfocus=`).
    if (lower.contains('"') || lower.contains('\''))
        && (is_event_attr(&lower) || (has_tag_open && is_event_attr(&strip_tags(&lower))))
    {
        return Some(("attribute_break", 8));
    }
    if (lower.contains('"') || lower.contains('\'')) && (compact.contains("style=") && compact.contains("expression("))
    {
        return Some(("attribute_break", 8));
    }
    // Breaking out of a script string: `';alert(1)//`, `"-alert(1)-"`, `</script><script>`
    if sink_reference(&compact) {
        return Some(("sink_reference", 7));
    }
    if has_sink(&lower) {
        let quote_break =
            ["';", "\";", "'-", "\"-", "'+", "\"+", "'|", "\"|", "')", "\")", "'}", "\"}", "\\';", "'*", "\"*"]
                .iter()
                .any(|k| compact.contains(k));
        if quote_break || compact.contains("})") || compact.contains(";//") || compact.contains("*/") {
            return Some(("script_break", 8));
        }
        // A bare sink call with a literal argument: `alert(1)`, ``prompt`x` ``, `alert(document.domain)`
        if ["alert(", "prompt(", "confirm(", "alert`", "prompt`", "confirm`", "eval(", "fromcharcode("]
            .iter()
            .any(|k| compact.contains(k))
        {
            return Some(("script_call", 7));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn script() {
        for s in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "\"><img src=x onerror=prompt(1)>",
            "javascript:alert(document.cookie)",
            "<a href=\"jav\tascript:alert(1)\">x</a>",
            "\" onmouseover=\"alert(1)",
            "';alert(String.fromCharCode(88,83,83))//",
            "<iframe src=//evil>",
            "<body onload=alert('XSS')>",
            "<div style=\"width: expression(alert(1))\">",
        ] {
            assert!(check(s).is_some(), "missed: {s}");
        }
    }

    #[test]
    fn prose() {
        for s in [
            "h2<h1",
            "a < b and c > d",
            "JavaScript: Basics of JavaScript Language",
            "url=http://www.example.com/tan?usp=4#8",
            ">url=/pi?mode=<;>",
            "I'd like to go on=time",
            "onions = 3",
            "<b>bold</b> text",
        ] {
            assert!(check(s).is_none(), "false positive: {s} ({:?})", check(s));
        }
    }
}
