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

#[test]
fn npm_ranges_agree_with_node_semver() {
    let oracle = repo().join("tests/semver");
    assert!(
        oracle.join("node_modules/semver/package.json").exists(),
        "node-semver is not installed in {} (the test command runs `npm ci` there)",
        oracle.display()
    );
    let pairs: Vec<(String, String)> =
        RANGES.iter().flat_map(|r| VERSIONS.iter().map(move |v| (r.to_string(), v.to_string()))).collect();
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
