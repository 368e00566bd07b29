//! Kevlar's reading of npm version ranges (`kevlar audit`'s "is the fix within the declared
//! range", the Node.js runtime advisories) checked against node-semver itself, the reference
//! npm uses, on a few thousand (range, version) pairs covering the range grammar.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::repo;
use kevlar_audit::npm_range;

const RANGES: &[&str] = &[
    "1.2.3",
    "=1.2.3",
    "v1.2.3",
    "1.2",
    "1",
    "1.x",
    "1.2.x",
    "1.X",
    "*",
    "",
    "x",
    "^1.2.3",
    "^0.2.3",
    "^0.0.3",
    "^1.2",
    "^0.2",
    "^0.0",
    "^1",
    "^0",
    "^1.x",
    "^0.x",
    "^0.0.x",
    "^1.2.3-beta.2",
    "~1.2.3",
    "~1.2",
    "~1",
    "~0.2.3",
    "~1.2.3-beta.2",
    "~>1.2",
    ">1.2.3",
    ">=1.2.3",
    "<1.2.3",
    "<=1.2.3",
    ">1.2",
    ">=1.2",
    "<1.2",
    "<=1.2",
    ">1",
    "<1",
    ">=1",
    "<=1",
    ">= 1.2.3",
    "> 1.2.3 < 2.0.0",
    ">=1.2.3 <2.0.0",
    ">=1.2.3-alpha <1.2.3",
    "1.2.3 - 2.3.4",
    "1.2 - 2.3.4",
    "1.2.3 - 2.3",
    "1.2.3 - 2",
    "1 - 2",
    "1.2.3-pre - 2.0.0",
    "^1.2.3 || ^2.0.0",
    "1.x || >=2.5.0",
    "<1.0.0 || >=2.0.0 <3.0.0",
    "^14.20.1 || ^16.17.1 || ^18.9.1",
    "14.x || 16.x || 18.x",
    ">=0.0.0",
    "<0.0.1",
    "0.0.x",
    "0.x",
    ">2.0.0-beta.1",
    "2.0.0-rc.1",
    "^2.0.0-rc.1",
    ">=1.0.0-0",
    "<2.0.0-0",
    "~0.0.1",
    "=v2.1.0",
    ">=1.2.3 <1.2.4",
    "1.2.3 || 1.2.4",
    "^1.0.0 <1.5.0",
    ">=4 <6",
    "> 4",
    "< 5",
    ">=1.x",
    "<=1.2.x",
    "^ 1.2.3",
    "1.2.3.4",
    "^^1",
    ">*",
    "<*",
    "1.x.3",
];

const VERSIONS: &[&str] = &[
    "0.0.0",
    "0.0.1",
    "0.0.3",
    "0.0.4",
    "0.1.0",
    "0.2.3",
    "0.2.9",
    "0.3.0",
    "0.9.9",
    "1.0.0-0",
    "1.0.0-alpha",
    "1.0.0",
    "1.0.1",
    "1.1.9",
    "1.2.0",
    "1.2.2",
    "1.2.3-alpha",
    "1.2.3-beta.1",
    "1.2.3-beta.2",
    "1.2.3-beta.10",
    "1.2.3",
    "1.2.4-rc.1",
    "1.2.4",
    "1.2.99",
    "1.3.0",
    "1.4.9",
    "1.5.0",
    "1.9.9",
    "2.0.0-0",
    "2.0.0-rc.1",
    "2.0.0-rc.2",
    "2.0.0",
    "2.3.3",
    "2.3.4",
    "2.3.5",
    "2.4.0",
    "2.5.0",
    "3.0.0",
    "4.0.0",
    "5.9.9",
    "6.0.0",
    "14.20.0",
    "14.20.1",
    "16.17.0",
    "16.17.1",
    "18.9.0",
    "18.9.1",
    "20.20.2",
];

/// A deterministic stream of generated (range, version) pairs from the grammar's pieces:
/// operators, partial versions, x-ranges, pre-releases, hyphens, sets and `||`.
fn generated(n: usize) -> Vec<(String, String)> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |m: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % m
    };
    let pre = ["alpha", "alpha.1", "beta.2", "rc.0", "rc.1", "0"];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let part = |next: &mut dyn FnMut(u64) -> u64| -> String {
            let major = next(3).to_string();
            let minor = match next(5) {
                0 => "x".to_owned(),
                _ => next(4).to_string(),
            };
            let mut p = match next(6) {
                0 => major.clone(),
                1 => format!("{major}.{minor}"),
                _ => format!("{major}.{minor}.{}", if minor == "x" { "x".to_owned() } else { next(4).to_string() }),
            };
            if next(5) == 0 && p.split('.').count() == 3 && !p.contains('x') {
                p.push('-');
                p.push_str(pre[next(pre.len() as u64) as usize]);
            }
            p
        };
        let ops = ["", "^", "~", ">=", "<", ">", "<=", "="];
        let one = |next: &mut dyn FnMut(u64) -> u64| -> String {
            match next(8) {
                0 => format!("{} - {}", part(next), part(next)),
                1 => format!("{}{} {}{}", ops[next(8) as usize], part(next), ops[next(8) as usize], part(next)),
                _ => format!("{}{}", ops[next(8) as usize], part(next)),
            }
        };
        let range = if next(4) == 0 { format!("{} || {}", one(&mut next), one(&mut next)) } else { one(&mut next) };
        let mut version = format!("{}.{}.{}", next(3), next(4), next(4));
        if next(3) == 0 {
            version.push('-');
            version.push_str(pre[next(pre.len() as u64) as usize]);
        }
        out.push((range, version));
    }
    out
}

#[test]
fn npm_ranges_agree_with_node_semver() {
    let oracle = repo().join("tests/semver");
    assert!(
        oracle.join("node_modules/semver/package.json").exists(),
        "node-semver is not installed in {} (the test command runs `npm ci` there)",
        oracle.display()
    );
    let mut pairs: Vec<(String, String)> =
        RANGES.iter().flat_map(|r| VERSIONS.iter().map(move |v| (r.to_string(), v.to_string()))).collect();
    pairs.extend(generated(4000));
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("pairs.json");
    std::fs::write(&input, serde_json::to_string(&pairs).unwrap()).unwrap();
    let out = Command::new("node").arg(oracle.join("check.js")).arg(&input).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected: Vec<Option<bool>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(expected.len(), pairs.len());
    let yes = expected.iter().filter(|e| **e == Some(true)).count();
    let no = expected.iter().filter(|e| **e == Some(false)).count();
    assert!(yes > 500 && no > 500, "a corpus that exercises both answers ({yes} yes, {no} no)");
    let mut mismatches = Vec::new();
    for ((range, version), want) in pairs.iter().zip(&expected) {
        let got = npm_range::satisfies(version, range);
        let agree = match want {
            Some(w) => got == Some(*w),
            None => got.is_none(),
        };
        if !agree {
            mismatches.push(format!("satisfies({version:?}, {range:?}): node-semver {want:?}, kevlar {got:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} pairs disagree:\n{}",
        mismatches.len(),
        pairs.len(),
        mismatches.join("\n")
    );
}
