//! npm's version ranges, as node-semver reads them: `||` alternatives of comparator sets, with
//! X-ranges (`1.x`, `1.2.*`, `*`, ``), tilde (`~1.2.3`), caret (`^0.2.3`), hyphen ranges
//! (`1.2 - 2.3.4`), partial versions and the pre-release rule (a `1.2.3-beta` only satisfies a
//! set that names a pre-release of 1.2.3). Used to tell whether a fix is reachable within the
//! range a project declares, and to read the Node.js security WG's runtime advisories.
//! Checked against node-semver itself by a differential test.

use semver::{Prerelease, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

#[derive(Debug, Clone)]
struct Cmp {
    op: Op,
    v: Version,
}

/// A parsed range; `satisfies` answers as `semver.satisfies(version, range)` does.
#[derive(Debug, Clone)]
pub struct Range {
    sets: Vec<Vec<Cmp>>,
}

/// A partial version: `1`, `1.2`, `1.2.3-pre`, with `x`/`*` parts as `None`.
#[derive(Debug, Clone)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Prerelease,
}

fn parse_partial(s: &str) -> Option<Partial> {
    let s = s.trim().trim_start_matches('=').trim_start_matches(['v', 'V']).trim();
    if s.is_empty() || s == "*" || s.eq_ignore_ascii_case("x") {
        return Some(Partial { major: None, minor: None, patch: None, pre: Prerelease::EMPTY });
    }
    let (core, pre) = match s.find(['-', '+']) {
        Some(i) if s.as_bytes()[i] == b'-' => {
            let rest = &s[i + 1..];
            let pre = rest.split('+').next().unwrap_or("");
            (&s[..i], Prerelease::new(pre).ok()?)
        }
        Some(i) => (&s[..i], Prerelease::EMPTY),
        None => (s, Prerelease::EMPTY),
    };
    let mut parts = core.split('.');
    let num = |p: Option<&str>| -> Result<Option<u64>, ()> {
        match p {
            None => Ok(None),
            Some(x) if x == "*" || x.eq_ignore_ascii_case("x") => Ok(None),
            Some(x) if !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()) && x.len() <= 16 => {
                x.parse().map(Some).map_err(|_| ())
            }
            _ => Err(()),
        }
    };
    let major = num(parts.next()).ok()?;
    let minor = num(parts.next()).ok()?;
    let patch = num(parts.next()).ok()?;
    if parts.next().is_some() {
        return None;
    }
    // `1.x.3` reads as `1.x`.
    let (minor, patch) = if major.is_none() || minor.is_none() { (None, None) } else { (minor, patch) };
    Some(Partial { major, minor, patch, pre })
}

fn v(major: u64, minor: u64, patch: u64) -> Version {
    Version::new(major, minor, patch)
}

/// `x.y.z-0`: the lowest version of a release line (below every pre-release of it).
fn v0(major: u64, minor: u64, patch: u64) -> Version {
    let mut out = Version::new(major, minor, patch);
    out.pre = Prerelease::new("0").unwrap_or(Prerelease::EMPTY);
    out
}

fn full(p: &Partial) -> Version {
    let mut out = v(p.major.unwrap_or(0), p.minor.unwrap_or(0), p.patch.unwrap_or(0));
    out.pre = p.pre.clone();
    out
}

fn cmp(op: Op, v: Version) -> Cmp {
    Cmp { op, v }
}

fn any() -> Vec<Cmp> {
    vec![cmp(Op::Ge, v(0, 0, 0))]
}

/// One comparator token (`^1.2`, `>=1.0.0`, `1.x`) → comparators.
fn desugar(tok: &str) -> Option<Vec<Cmp>> {
    let (op, rest) = if let Some(r) = tok.strip_prefix(">=") {
        (">=", r)
    } else if let Some(r) = tok.strip_prefix("<=") {
        ("<=", r)
    } else if let Some(r) = tok.strip_prefix('>') {
        (">", r)
    } else if let Some(r) = tok.strip_prefix('<') {
        ("<", r)
    } else if let Some(r) = tok.strip_prefix('^') {
        ("^", r)
    } else if let Some(r) = tok.strip_prefix("~>") {
        ("~", r)
    } else if let Some(r) = tok.strip_prefix('~') {
        ("~", r)
    } else if let Some(r) = tok.strip_prefix('=') {
        ("", r)
    } else {
        ("", tok)
    };
    let p = parse_partial(rest)?;
    let (ma, mi, pa) = (p.major, p.minor, p.patch);
    Some(match op {
        "^" => match (ma, mi, pa) {
            (None, _, _) => any(),
            (Some(m), None, _) => vec![cmp(Op::Ge, v(m, 0, 0)), cmp(Op::Lt, v0(m + 1, 0, 0))],
            (Some(0), Some(n), None) => vec![cmp(Op::Ge, v(0, n, 0)), cmp(Op::Lt, v0(0, n + 1, 0))],
            (Some(m), Some(n), None) => vec![cmp(Op::Ge, v(m, n, 0)), cmp(Op::Lt, v0(m + 1, 0, 0))],
            (Some(0), Some(0), Some(z)) => vec![cmp(Op::Ge, full(&p)), cmp(Op::Lt, v0(0, 0, z + 1))],
            (Some(0), Some(n), Some(_)) => vec![cmp(Op::Ge, full(&p)), cmp(Op::Lt, v0(0, n + 1, 0))],
            (Some(m), Some(_), Some(_)) => vec![cmp(Op::Ge, full(&p)), cmp(Op::Lt, v0(m + 1, 0, 0))],
        },
        "~" => match (ma, mi) {
            (None, _) => any(),
            (Some(m), None) => vec![cmp(Op::Ge, v(m, 0, 0)), cmp(Op::Lt, v0(m + 1, 0, 0))],
            (Some(m), Some(n)) => vec![cmp(Op::Ge, full(&p)), cmp(Op::Lt, v0(m, n + 1, 0))],
        },
        "" => match (ma, mi, pa) {
            (None, _, _) => any(),
            (Some(m), None, _) => vec![cmp(Op::Ge, v(m, 0, 0)), cmp(Op::Lt, v0(m + 1, 0, 0))],
            (Some(m), Some(n), None) => vec![cmp(Op::Ge, v(m, n, 0)), cmp(Op::Lt, v0(m, n + 1, 0))],
            _ => vec![cmp(Op::Eq, full(&p))],
        },
        ">" => match (ma, mi, pa) {
            (None, _, _) => vec![cmp(Op::Lt, v0(0, 0, 0))], // `>*`: nothing
            (Some(m), None, _) => vec![cmp(Op::Ge, v(m + 1, 0, 0))],
            (Some(m), Some(n), None) => vec![cmp(Op::Ge, v(m, n + 1, 0))],
            _ => vec![cmp(Op::Gt, full(&p))],
        },
        ">=" => match ma {
            None => any(),
            Some(_) => vec![cmp(Op::Ge, full(&p))],
        },
        "<" => match (ma, mi, pa) {
            (None, _, _) => vec![cmp(Op::Lt, v0(0, 0, 0))],
            (Some(m), None, _) => vec![cmp(Op::Lt, v0(m, 0, 0))],
            (Some(m), Some(n), None) => vec![cmp(Op::Lt, v0(m, n, 0))],
            _ => vec![cmp(Op::Lt, full(&p))],
        },
        "<=" => match (ma, mi, pa) {
            (None, _, _) => any(),
            (Some(m), None, _) => vec![cmp(Op::Lt, v0(m + 1, 0, 0))],
            (Some(m), Some(n), None) => vec![cmp(Op::Lt, v0(m, n + 1, 0))],
            _ => vec![cmp(Op::Le, full(&p))],
        },
        _ => return None,
    })
}

fn hyphen(from: &str, to: &str) -> Option<Vec<Cmp>> {
    let a = parse_partial(from)?;
    let b = parse_partial(to)?;
    let mut out = Vec::new();
    if a.major.is_some() {
        out.push(cmp(Op::Ge, full(&a)));
    } else {
        out.push(cmp(Op::Ge, v(0, 0, 0)));
    }
    match (b.major, b.minor, b.patch) {
        (None, _, _) => {}
        (Some(m), None, _) => out.push(cmp(Op::Lt, v0(m + 1, 0, 0))),
        (Some(m), Some(n), None) => out.push(cmp(Op::Lt, v0(m, n + 1, 0))),
        _ => out.push(cmp(Op::Le, full(&b))),
    }
    Some(out)
}

/// Joins an operator to its version when written apart: `>= 1.2.3` → `>=1.2.3`.
fn tokens(set: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    for t in set.split_whitespace() {
        if let Some(op) = pending.take() {
            out.push(format!("{op}{t}"));
            continue;
        }
        if matches!(t, ">" | ">=" | "<" | "<=" | "=" | "^" | "~" | "~>") {
            pending = Some(t.to_owned());
        } else {
            out.push(t.to_owned());
        }
    }
    if let Some(op) = pending {
        out.push(op);
    }
    out
}

impl Range {
    /// Parses a range; `None` when node-semver would reject it.
    pub fn parse(s: &str) -> Option<Range> {
        if s.len() > 1024 {
            return None;
        }
        let mut sets = Vec::new();
        for alt in s.split("||") {
            let alt = alt.trim();
            let toks = tokens(alt);
            let set = if toks.len() == 3 && toks[1] == "-" {
                hyphen(&toks[0], &toks[2])?
            } else if toks.is_empty() {
                any()
            } else {
                let mut set = Vec::new();
                for t in &toks {
                    set.extend(desugar(t)?);
                }
                set
            };
            sets.push(set);
        }
        Some(Range { sets })
    }

    pub fn satisfies(&self, version: &Version) -> bool {
        self.sets.iter().any(|set| {
            let all = set.iter().all(|c| {
                let o = version.cmp_precedence(&c.v);
                match c.op {
                    Op::Lt => o.is_lt(),
                    Op::Le => o.is_le(),
                    Op::Gt => o.is_gt(),
                    Op::Ge => o.is_ge(),
                    Op::Eq => o.is_eq(),
                }
            });
            if !all {
                return false;
            }
            if version.pre.is_empty() {
                return true;
            }
            // A pre-release only matches a set that names a pre-release of the same x.y.z
            // (the `-0` floors the desugaring adds do not count).
            set.iter().any(|c| {
                !c.v.pre.is_empty()
                    && c.v.pre.as_str() != "0"
                    && (c.v.major, c.v.minor, c.v.patch) == (version.major, version.minor, version.patch)
            }) || set.iter().any(|c| {
                c.v.pre.as_str() == "0"
                    && c.op != Op::Lt
                    && (c.v.major, c.v.minor, c.v.patch) == (version.major, version.minor, version.patch)
            })
        })
    }
}

/// `semver.satisfies(version, range)`; `None` when either cannot be read.
pub fn satisfies(version: &str, range: &str) -> Option<bool> {
    let v = Version::parse(version.trim().trim_start_matches(['v', '='])).ok()?;
    Some(Range::parse(range)?.satisfies(&v))
}

#[cfg(test)]
mod tests {
    use super::satisfies;

    #[test]
    fn node_semver_examples() {
        let yes = [
            ("1.2.3", "^1.2.0"),
            ("1.9.9", "^1.2.0"),
            ("0.2.5", "^0.2.3"),
            ("0.0.3", "^0.0.3"),
            ("1.2.9", "~1.2.3"),
            ("1.5.0", "1.x"),
            ("1.2.3", "1.2.3"),
            ("2.0.0", "*"),
            ("1.5.0", "1.2 - 2.3.4"),
            ("2.3.4", "1.2 - 2.3.4"),
            ("1.2.3-beta.2", ">=1.2.3-beta.1"),
            ("16.17.1", "^14.20.1 || ^16.17.1 || ^18.9.1"),
            ("1.0.0", ">= 1.0.0 < 2"),
            ("0.1.0", ""),
        ];
        let no = [
            ("2.0.0", "^1.2.0"),
            ("0.3.0", "^0.2.3"),
            ("0.0.4", "^0.0.3"),
            ("1.3.0", "~1.2.3"),
            ("2.0.0-alpha", "^1.2.0"),
            ("1.2.4-beta", ">=1.2.3-beta.1"),
            ("2.4.0", "1.2 - 2.3.4"),
            ("16.17.0", "^14.20.1 || ^16.17.1 || ^18.9.1"),
            ("1.3.0-rc.1", "1.x"),
        ];
        for (v, r) in yes {
            assert_eq!(satisfies(v, r), Some(true), "{v} in {r}");
        }
        for (v, r) in no {
            assert_eq!(satisfies(v, r), Some(false), "{v} not in {r}");
        }
        assert_eq!(satisfies("1.0.0", "^^1"), None);
        assert_eq!(satisfies("1.0.0", "1.2.3.4"), None);
    }
}
