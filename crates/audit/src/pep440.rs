//! Python version ordering per PEP 440: `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with the
//! spellings pip accepts (`1.0-alpha1`, `1.0c1`, `1.0-1`, `1.0.dev`, `v1.0`, any case).

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pep440 {
    epoch: u64,
    release: Vec<u64>,
    /// (0 = a, 1 = b, 2 = rc, number)
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<String>,
    text: String,
}

impl fmt::Display for Pep440 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn number(s: &str) -> (u64, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    (s[..end].parse().unwrap_or(0), &s[end..])
}

fn strip_sep(s: &str) -> &str {
    s.strip_prefix(['.', '-', '_']).unwrap_or(s)
}

/// Parses a version; `None` for text that is not one.
pub fn parse(s: &str) -> Option<Pep440> {
    let text = s.trim();
    let lower = text.to_ascii_lowercase();
    let mut rest = lower.strip_prefix('v').unwrap_or(&lower);
    if rest.is_empty() || !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let (public, local) = match rest.split_once('+') {
        Some((p, l)) => (p, l.split(['.', '-', '_']).map(str::to_owned).collect()),
        None => (rest, Vec::new()),
    };
    rest = public;
    let mut epoch = 0;
    if let Some((e, r)) = rest.split_once('!') {
        epoch = e.parse().ok()?;
        rest = r;
    }
    let mut release = Vec::new();
    loop {
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let (n, r) = number(rest);
        release.push(n);
        rest = r;
        match rest.strip_prefix('.') {
            Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => rest = r,
            _ => break,
        }
    }
    let mut pre = None;
    let mut post = None;
    let mut dev = None;
    let t = strip_sep(rest);
    for (word, kind) in
        [("alpha", 0u8), ("beta", 1), ("preview", 2), ("pre", 2), ("rc", 2), ("a", 0), ("b", 1), ("c", 2)]
    {
        if let Some(r) = t.strip_prefix(word) {
            let (n, r) = number(strip_sep(r));
            pre = Some((kind, n));
            rest = r;
            break;
        }
    }
    let t = strip_sep(rest);
    let mut matched_post = false;
    for word in ["post", "rev", "r"] {
        if let Some(r) = t.strip_prefix(word) {
            let (n, r) = number(strip_sep(r));
            post = Some(n);
            rest = r;
            matched_post = true;
            break;
        }
    }
    if !matched_post {
        // `1.0-1` is a post-release.
        if let Some(r) = rest.strip_prefix('-') {
            if r.starts_with(|c: char| c.is_ascii_digit()) {
                let (n, r) = number(r);
                post = Some(n);
                rest = r;
            }
        }
    }
    let t = strip_sep(rest);
    if let Some(r) = t.strip_prefix("dev") {
        let (n, r) = number(r);
        dev = Some(n);
        rest = r;
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Pep440 { epoch, release, pre, post, dev, local, text: text.to_owned() })
}

fn release_cmp(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    Ordering::Equal
}

/// PEP 440's total order.
pub fn cmp(a: &Pep440, b: &Pep440) -> Ordering {
    // Pre-release key: a dev release of the final (1.0.dev1) comes before its pre-releases.
    let pre_key = |v: &Pep440| -> (i8, u8, u64) {
        match (v.pre, v.post, v.dev) {
            (None, None, Some(_)) => (-1, 0, 0),
            (Some((k, n)), _, _) => (0, k, n),
            (None, _, _) => (1, 0, 0),
        }
    };
    let post_key = |v: &Pep440| -> (i8, u64) { v.post.map_or((-1, 0), |p| (0, p)) };
    let dev_key = |v: &Pep440| -> (i8, u64) { v.dev.map_or((1, 0), |d| (0, d)) };
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| release_cmp(&a.release, &b.release))
        .then_with(|| pre_key(a).cmp(&pre_key(b)))
        .then_with(|| post_key(a).cmp(&post_key(b)))
        .then_with(|| dev_key(a).cmp(&dev_key(b)))
        .then_with(|| local_cmp(&a.local, &b.local))
}

fn local_cmp(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// The normalised project name (PEP 503): lower case, runs of `-`, `_`, `.` as one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep440_order() {
        // PEP 440's own example ordering.
        let order = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for w in order.windows(2) {
            let a = parse(w[0]).unwrap_or_else(|| panic!("{}", w[0]));
            let b = parse(w[1]).unwrap_or_else(|| panic!("{}", w[1]));
            assert_eq!(cmp(&a, &b), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        let eq = |a: &str, b: &str| cmp(&parse(a).unwrap(), &parse(b).unwrap()) == Ordering::Equal;
        assert!(eq("1.0", "1.0.0"));
        assert!(eq("1.0-alpha1", "1.0a1"));
        assert!(eq("1.0c1", "1.0rc1"));
        assert!(eq("1.0-1", "1.0.post1"));
        assert!(eq("V1.0.DEV", "1.0.dev0"));
        assert!(eq("1!2.0", "1!2.0.0"));
        assert_eq!(cmp(&parse("1!1.0").unwrap(), &parse("2.0").unwrap()), Ordering::Greater);
        assert!(parse("latest").is_none());
        assert!(parse("1.0.x").is_none());
        assert_eq!(normalize_name("Django_REST.framework"), "django-rest-framework");
    }
}
