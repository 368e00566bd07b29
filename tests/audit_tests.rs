//! `kevlar audit` and `kevlar db update` (OWASP Top 10 A06: vulnerable and outdated components):
//! OSV records imported offline, npm lockfiles read, findings with paths and fixes, CI exit codes,
//! and bad input answered with the file and line.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{repo, Kevlar, KEVLAR};
use serde_json::{json, Value};

fn kevlar(args: &[&str], db: &Path) -> (i32, String, String) {
    let out = Command::new(KEVLAR).args(args).env("KEVLAR_DB", db).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_fixture(dir: &Path) {
    let osv = dir.join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    let rec = |id: &str, name: &str, sev: &str, events: Value, aliases: Value| {
        json!({"schema_version": "1.4.0", "id": id, "aliases": aliases, "summary": format!("{name} is vulnerable"),
               "affected": [{"package": {"ecosystem": "npm", "name": name}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
               "database_specific": {"severity": sev}})
    };
    let records = [
        rec("GHSA-aaaa-0001", "qs", "HIGH", json!([{"introduced": "0"}, {"fixed": "6.7.3"}]), json!(["CVE-2022-0001"])),
        rec("CVE-2022-0001", "qs", "HIGH", json!([{"introduced": "0"}, {"fixed": "6.7.3"}]), json!(["GHSA-aaaa-0001"])),
        rec("GHSA-bbbb-0002", "minimist", "MODERATE", json!([{"introduced": "1.0.0"}, {"fixed": "1.2.6"}]), json!([])),
        rec("GHSA-cccc-0003", "express", "LOW", json!([{"introduced": "5.0.0"}]), json!([])),
        rec("GHSA-dddd-0004", "broken", "LOW", json!([{"introduced": "0"}, {"fixed": "1.0.0, 2.0.0"}]), json!([])),
    ];
    for r in &records {
        std::fs::write(osv.join(format!("{}.json", r["id"].as_str().unwrap())), r.to_string()).unwrap();
    }
    std::fs::write(osv.join("garbage.json"), "{ not json").unwrap();
    let lock = json!({
        "name": "app", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "app", "dependencies": {"express": "^4.17.0"}, "devDependencies": {"mocha": "^8.0.0"}},
            "node_modules/express": {"version": "4.17.1", "dependencies": {"qs": "6.7.0"}},
            "node_modules/qs": {"version": "6.7.0"},
            "node_modules/mocha": {"version": "8.0.0", "dev": true, "dependencies": {"minimist": "^1.2.0"}},
            "node_modules/minimist": {"version": "1.2.5", "dev": true}
        }
    });
    std::fs::write(dir.join("package-lock.json"), serde_json::to_string_pretty(&lock).unwrap()).unwrap();
}

#[test]
fn findings_with_paths_fixes_and_ci_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(tmp.path());
    let db = tmp.path().join("db");
    let (code, out, err) = kevlar(&["db", "update", "--from", tmp.path().join("osv").to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 5 records") && out.contains("1 files skipped"), "{out}");
    assert!(err.contains("garbage.json:1:") && err.contains("GHSA-dddd-0004: broken: a range was skipped"), "{err}");

    let dir = tmp.path().to_str().unwrap();
    let (code, out, err) = kevlar(&["audit", dir, "--format", "json"], &db);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let f = v["findings"].as_array().unwrap();
    assert_eq!(f.len(), 2, "the GHSA and its CVE alias are one finding: {v:#}");
    assert_eq!(f[0]["package"], "qs");
    assert_eq!(f[0]["severity"], "high");
    assert_eq!(f[0]["fixed_version"], "6.7.3");
    assert_eq!(f[0]["paths"][0], json!(["express", "qs"]));
    assert_eq!(f[0]["direct"], false);
    // express pins qs to exactly 6.7.0: the fix needs express to move, `npm update` is not enough.
    assert_eq!(f[0]["fix_in_range"], false);
    let mut ids: Vec<Value> = f[0]["aliases"].as_array().unwrap().clone();
    ids.push(f[0]["id"].clone());
    assert!(ids.contains(&json!("CVE-2022-0001")) && ids.contains(&json!("GHSA-aaaa-0001")), "{ids:?}");
    assert_eq!(f[1]["package"], "minimist");
    assert_eq!(f[1]["dev"], true);
    // mocha asks for ^1.2.0: 1.2.6 is within it.
    assert_eq!(f[1]["fix_in_range"], true);
    assert_eq!(v["packages"], 4);

    let (code, out, _) = kevlar(&["audit", dir, "--production"], &db);
    assert_eq!(code, 1);
    assert!(!out.contains("minimist") && out.contains("qs"), "{out}");
    assert!(out.contains("HIGH") && out.contains("express > qs"), "{out}");
    let (code, out, _) = kevlar(&["audit", dir, "--format", "sarif"], &db);
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "kevlar");
    assert_eq!(run["results"].as_array().unwrap().len(), 2);
    let qs = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["message"]["text"].as_str().unwrap().starts_with("qs 6.7.0"))
        .unwrap();
    assert_eq!(qs["level"], "error");
    let line = qs["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64().unwrap() as usize;
    let lock_text = std::fs::read_to_string(tmp.path().join("package-lock.json")).unwrap();
    assert!(lock_text.lines().nth(line - 1).unwrap().contains("\"node_modules/qs\""), "line {line}");
    for rule in run["tool"]["driver"]["rules"].as_array().unwrap() {
        assert!(rule["properties"]["security-severity"].as_str().unwrap().parse::<f64>().is_ok());
    }
    let (code, out, _) = kevlar(&["audit", dir, "--format", "markdown"], &db);
    assert_eq!(code, 1);
    assert!(out.contains("| high | `qs` | 6.7.0 |") && out.contains("express › qs"), "{out}");
    let (code, _, _) = kevlar(&["audit", dir, "--fail-on", "critical"], &db);
    assert_eq!(code, 0, "nothing critical");
    let (code, _, _) = kevlar(&["audit", dir, "--fail-on", "high"], &db);
    assert_eq!(code, 1);
}

#[test]
fn bad_input_is_an_error_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    std::fs::write(
        tmp.path().join("package-lock.json"),
        "{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n    \"\": {",
    )
    .unwrap();
    let (code, _, err) = kevlar(&["audit", tmp.path().to_str().unwrap()], &db);
    assert_eq!(code, 2);
    assert!(err.contains("package-lock.json:4:"), "{err}");
    std::fs::write(tmp.path().join("package-lock.json"), "{\"lockfileVersion\": 3, \"packages\": {}}").unwrap();
    let (code, _, err) = kevlar(&["audit", tmp.path().to_str().unwrap()], &db);
    assert_eq!(code, 2);
    assert!(err.contains("no advisory database") && err.contains("kevlar db update"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = kevlar(&["audit", empty.path().to_str().unwrap()], &db);
    assert_eq!(code, 2);
    assert!(err.contains("no lockfile found"), "{err}");
    // An error says what failed and its cause, each once.
    let missing = tmp.path().join("nope/package-lock.json");
    let (code, _, err) = kevlar(&["audit", missing.to_str().unwrap()], &db);
    assert_eq!(code, 2);
    assert!(err.contains("package-lock.json: cannot read"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "the cause said once: {err}");
    // A YAML alias bomb (under 500 bytes, billions of nodes once expanded): a clear error, no abort.
    let bomb = tempfile::tempdir().unwrap();
    let mut doc = String::from("lockfileVersion: '9.0'\na: &a [x,x,x,x,x,x,x,x,x]\n");
    for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
        let prev = (b'a' + i as u8) as char;
        doc.push_str(&format!(
            "{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    std::fs::write(bomb.path().join("pnpm-lock.yaml"), &doc).unwrap();
    let (code, _, err) = kevlar(&["audit", bomb.path().to_str().unwrap()], &db);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pnpm-lock.yaml:") && err.contains("alias"), "{err}");
}

/// Conformance on the shared corpus: every npm lockfile parses with every package counted, and
/// the real GitHub advisories import with their known quirks reported, not fatal.
#[test]
fn conformance_real_lockfiles_and_advisories_from_the_shared_corpus() {
    let data = repo().join("../shared/data");
    assert!(
        data.join("lockfiles").is_dir() && data.join("advisories/npm").is_dir(),
        "../shared/data is missing: this test reads it in place"
    );
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let (code, out, err) = kevlar(&["db", "update", "--from", data.join("advisories/npm").to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 252 records"), "{out}");
    assert!(err.contains("GHSA-h755-8qp9-cq85: protobufjs: a range was skipped"), "{err}");
    let mut checked = 0;
    for entry in std::fs::read_dir(data.join("lockfiles")).unwrap() {
        let p = entry.unwrap().path();
        if !p.file_name().unwrap().to_str().unwrap().ends_with("package-lock.json") {
            continue;
        }
        let lock: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        // Count independently: install locations (v2/v3), or distinct name@version in the tree (v1).
        let expected = match lock.get("packages").and_then(Value::as_object) {
            Some(pkgs) => pkgs
                .iter()
                .filter(|(k, v)| k.contains("node_modules/") && v.get("link").is_none() && v.get("version").is_some())
                .count(),
            None => {
                let mut set = std::collections::HashSet::new();
                let mut stack = vec![lock["dependencies"].clone()];
                while let Some(next) = stack.pop() {
                    let Value::Object(m) = next else { continue };
                    for (name, d) in m {
                        if let Some(v) = d["version"].as_str() {
                            set.insert(format!("{name}@{v}"));
                        }
                        stack.push(d["dependencies"].clone());
                    }
                }
                set.len()
            }
        };
        let (code, out, err) = kevlar(&["audit", p.to_str().unwrap(), "--format", "json"], &db);
        assert!(code == 0 || code == 1, "{}: {err}", p.display());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["packages"].as_u64().unwrap() as usize, expected, "{}", p.display());
        checked += 1;
    }
    assert!(checked >= 6, "expected the corpus's npm lockfiles, found {checked}");
    // yarn v1: one package per `version` line.
    let yarn = data.join("lockfiles/webpack.yarn.lock");
    let expected = std::fs::read_to_string(&yarn).unwrap().lines().filter(|l| l.starts_with("  version ")).count();
    let (code, out, err) = kevlar(&["audit", yarn.to_str().unwrap(), "--format", "json"], &db);
    assert!(code == 0 || code == 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["packages"].as_u64().unwrap() as usize, expected);
    // pnpm 5.4, 6, 9 and a two-document file: the distinct name@version of every `packages:` key,
    // counted from the raw lines.
    let mut pnpm_checked = 0;
    for entry in std::fs::read_dir(data.join("lockfiles")).unwrap() {
        let p = entry.unwrap().path();
        if !p.to_str().unwrap().ends_with("pnpm-lock.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let mut set = std::collections::HashSet::new();
        let (mut section, mut v5) = (String::new(), false);
        for line in text.lines() {
            if line.starts_with("lockfileVersion:") {
                v5 = line.contains(" 5.") || line.contains("'5.");
            }
            if !line.starts_with(' ') && line.ends_with(':') {
                section = line.trim_end_matches(':').to_owned();
                continue;
            }
            if section != "packages" || !line.starts_with("  ") || line.starts_with("   ") || !line.ends_with(':') {
                continue;
            }
            let key = line.trim().trim_end_matches(':').trim_matches(|c| c == '\'' || c == '"');
            let key = key.trim_start_matches('/');
            let (name, version) = if v5 {
                let i = key.rfind('/').unwrap();
                (&key[..i], key[i + 1..].split('_').next().unwrap())
            } else {
                let head = key.split('(').next().unwrap();
                let at = head[1..].rfind('@').unwrap() + 1;
                (&key[..at], head[at + 1..].split('_').next().unwrap())
            };
            set.insert(format!("{name}@{version}"));
        }
        let (code, out, err) = kevlar(&["audit", p.to_str().unwrap(), "--format", "json"], &db);
        assert!(code == 0 || code == 1, "{}: {err}", p.display());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["packages"].as_u64().unwrap() as usize, set.len(), "{}", p.display());
        pnpm_checked += 1;
    }
    assert!(pnpm_checked >= 4, "expected the corpus's pnpm lockfiles, found {pnpm_checked}");
    // bun.lock: the distinct registry name@version idents.
    let bun = data.join("lockfiles/hono.bun.lock");
    let text = std::fs::read_to_string(&bun).unwrap();
    let idents: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("    \"")?.split_once("\": [\"").map(|(_, rest)| rest.split('"').next().unwrap_or(""))
        })
        .filter(|i| !i[1..].rsplit_once('@').map(|(_, v)| v.contains(':')).unwrap_or(true))
        .collect();
    let (code, out, err) = kevlar(&["audit", bun.to_str().unwrap(), "--format", "json"], &db);
    assert!(code == 0 || code == 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["packages"].as_u64().unwrap() as usize, idents.len());
    // yarn berry: distinct name@version of the `linkType: hard` entries (name from `resolution`).
    let berry = data.join("lockfiles/jest.yarn-berry.lock");
    let text = std::fs::read_to_string(&berry).unwrap();
    let mut set = std::collections::HashSet::new();
    for block in text.split("\n\n") {
        if !block.contains("linkType: hard") {
            continue;
        }
        let field = |k: &str| {
            block.lines().find_map(|l| l.trim().strip_prefix(k)).map(|v| v.trim().trim_matches('"').to_owned())
        };
        let (Some(res), Some(ver)) = (field("resolution:"), field("version:")) else { continue };
        let at = res[1..].find('@').unwrap() + 1;
        set.insert(format!("{}@{ver}", &res[..at]));
    }
    let (code, out, err) = kevlar(&["audit", berry.to_str().unwrap(), "--format", "json"], &db);
    assert!(code == 0 || code == 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["packages"].as_u64().unwrap() as usize, set.len());
}

#[test]
fn cvss_scores_and_ignores_with_reason_and_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(tmp.path());
    // A vector on the qs advisory: the score is computed from it (9.8 for this one).
    let p = tmp.path().join("osv/GHSA-aaaa-0001.json");
    let mut rec: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    rec["severity"] = json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]);
    std::fs::write(&p, rec.to_string()).unwrap();
    let db = tmp.path().join("db");
    let (code, _, err) = kevlar(&["db", "update", "--from", tmp.path().join("osv").to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    let dir = tmp.path().to_str().unwrap();
    let (_, out, _) = kevlar(&["audit", dir, "--format", "json"], &db);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["findings"][0]["cvss_score"], 9.8);
    let (_, table, _) = kevlar(&["audit", dir], &db);
    assert!(table.contains("CVSS") && table.contains("9.8"), "{table}");
    let (_, sarif, _) = kevlar(&["audit", dir, "--format", "sarif"], &db);
    assert!(sarif.contains("\"security-severity\":\"9.8\""), "{sarif}");

    // An ignore by alias, one still running, one expired, one that matches nothing.
    std::fs::write(
        tmp.path().join("kevlar.toml"),
        r#"
[[audit.ignore]]
id = "CVE-2022-0001"
reason = "qs is only used on trusted input here"
until = "2999-12-31"

[[audit.ignore]]
id = "GHSA-bbbb-0002"
reason = "waiting for mocha"
until = "2020-01-01"

[[audit.ignore]]
id = "GHSA-zzzz-9999"
reason = "old"
"#,
    )
    .unwrap();
    let (code, out, err) = kevlar(&["audit", dir, "--format", "json"], &db);
    assert_eq!(code, 1, "the expired ignore's finding still fails the run");
    let v: Value = serde_json::from_str(&out).unwrap();
    let f = v["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0]["package"], "minimist");
    assert_eq!(v["ignored"][0]["package"], "qs");
    assert_eq!(v["ignored"][0]["reason"], "qs is only used on trusted input here");
    assert!(err.contains("kevlar.toml:7: the ignore of GHSA-bbbb-0002 expired on 2020-01-01"), "{err}");
    assert!(err.contains("GHSA-zzzz-9999 matches no finding"), "{err}");
    let (code, _, _) = kevlar(&["audit", dir, "--production"], &db);
    assert_eq!(code, 0, "with qs ignored and minimist dev-only, production is clean");

    // An ignore without a reason, or with a bad date, is a configuration error.
    std::fs::write(tmp.path().join("kevlar.toml"), "[[audit.ignore]]\nid = \"X\"\nuntil = \"next week\"\n").unwrap();
    let (code, _, err) = kevlar(&["audit", dir], &db);
    assert_eq!(code, 2);
    assert!(err.contains("`next week` is not a date") && err.contains("needs `id` and a `reason`"), "{err}");
}

#[test]
fn conformance_cargo_lock_against_the_real_rustsec_database() {
    let rust = repo().join("../shared/data/advisories/rust");
    assert!(rust.is_dir(), "the shared RustSec corpus is missing at {}", rust.display());
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let (code, out, err) = kevlar(&["db", "update", "--from", rust.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    let imported: usize = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(imported > 700, "{out}");
    assert!(out.contains("informational notices left out"), "{out}");
    std::fs::write(
        tmp.path().join("Cargo.lock"),
        r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["hyper", "smallvec 1.13.2"]

[[package]]
name = "hyper"
version = "0.12.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = ["smallvec 0.6.9"]

[[package]]
name = "smallvec"
version = "0.6.9"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "smallvec"
version = "1.13.2"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#,
    )
    .unwrap();
    let (code, out, err) = kevlar(&["audit", tmp.path().to_str().unwrap(), "--format", "json"], &db);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ecosystem"], "crates.io");
    let f = v["findings"].as_array().unwrap();
    let sv = f.iter().find(|x| x["id"] == "RUSTSEC-2019-0009").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(sv["version"], "0.6.9");
    assert_eq!(sv["fixed_version"], "0.6.10");
    assert_eq!(sv["cvss_score"], 9.8);
    assert_eq!(sv["severity"], "critical");
    assert_eq!(sv["paths"][0], json!(["hyper", "smallvec"]));
    assert!(sv["aliases"].as_array().unwrap().contains(&json!("CVE-2019-15551")));
    assert!(f.iter().all(|x| x["version"] != "1.13.2"), "the patched smallvec is clean: {v:#}");
    // Kevlar's own lockfile reads too.
    let (code, out, err) = kevlar(&["audit", repo().join("Cargo.lock").to_str().unwrap(), "--format", "json"], &db);
    assert!(code == 0 || code == 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["packages"].as_u64().unwrap() > 100);
}

#[test]
fn conformance_python_lockfiles_against_the_real_pypa_database() {
    let pypi = repo().join("../shared/data/advisories/pypi");
    assert!(pypi.is_dir(), "the shared PyPA corpus is missing at {}", pypi.display());
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let (code, out, err) = kevlar(&["db", "update", "--from", pypi.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("imported 2661 records"), "{out}");
    // Real records with versions PEP 440 cannot read are skipped by range, named.
    assert!(err.contains("PYSEC-2019-125: steam: a range was skipped"), "{err}");

    // requirements.txt: names normalised (`Ansible`), PEP 440 ordering for the fix.
    let req = tmp.path().join("req");
    std::fs::create_dir_all(&req).unwrap();
    std::fs::write(req.join("requirements.txt"), "Ansible==2.8.1 --hash=sha256:00\nrequests==2.31.0\n").unwrap();
    let (code, out, err) = kevlar(&["audit", req.to_str().unwrap(), "--format", "json"], &db);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ecosystem"], "PyPI");
    let f = v["findings"].as_array().unwrap();
    let one = f.iter().find(|x| x["id"] == "PYSEC-2019-145").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(one["package"], "ansible");
    assert_eq!(one["fixed_version"], "2.8.4");
    assert!(f.iter().all(|x| x["package"] == "ansible"), "requests 2.31.0 is clean here: {v:#}");

    // poetry.lock with its pyproject.toml: paths and dev from the groups.
    let poetry = tmp.path().join("poetry");
    std::fs::create_dir_all(&poetry).unwrap();
    std::fs::write(
        poetry.join("poetry.lock"),
        "[[package]]\nname = \"molecule\"\nversion = \"3.0.0\"\ncategory = \"dev\"\n\n[package.dependencies]\nansible = \">=2.5\"\n\n[[package]]\nname = \"ansible\"\nversion = \"2.8.1\"\ncategory = \"dev\"\n\n[metadata]\nlock-version = \"1.1\"\ncontent-hash = \"0\"\n",
    )
    .unwrap();
    std::fs::write(poetry.join("pyproject.toml"), "[tool.poetry.group.dev.dependencies]\nmolecule = \"^3\"\n").unwrap();
    let (code, out, _) = kevlar(&["audit", poetry.to_str().unwrap(), "--format", "json"], &db);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    let f = &v["findings"][0];
    assert_eq!(f["paths"][0], json!(["molecule", "ansible"]));
    assert_eq!(f["dev"], true);
    let (code, _, _) = kevlar(&["audit", poetry.to_str().unwrap(), "--production"], &db);
    assert_eq!(code, 0, "dev-only findings leave --production clean");

    // A broken uv.lock names the file and the line.
    let uv = tmp.path().join("uv");
    std::fs::create_dir_all(&uv).unwrap();
    std::fs::write(
        uv.join("uv.lock"),
        "version = 1\nrequires-python = \">=3.12\"\n\n[[package]]\nname = \"x\"\nversion = 1.0.0\n",
    )
    .unwrap();
    let (code, _, err) = kevlar(&["audit", uv.to_str().unwrap()], &db);
    assert_eq!(code, 2);
    assert!(err.contains("uv.lock:6:"), "{err}");
}

#[test]
fn conformance_doctor_reports_end_of_life_and_node_core_vulnerabilities() {
    let wg = repo().join("../shared/data/advisories/nodejs-security-wg");
    assert!(wg.is_dir(), "the shared security-wg corpus is missing at {}", wg.display());
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    // Without runtime data, doctor says what to import.
    let (code, _, err) = kevlar(&["db", "update", "--from", tmp.path().to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = kevlar(&["doctor", "--node-version", "20.0.0"], &db);
    assert_eq!(code, 2);
    assert!(err.contains("no Node.js runtime data"), "{err}");

    let (code, out, err) = kevlar(&["db", "update", "--from", wg.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("171 Node.js runtime records"), "{out}");
    // A release schedule in nodejs/Release's format (node-releases ships the same file).
    let schedule = tmp.path().join("schedule.json");
    std::fs::write(
        &schedule,
        r#"{
  "v18": {"start": "2022-04-19", "lts": "2022-10-25", "maintenance": "2023-10-18", "end": "2025-04-30", "codename": "Hydrogen"},
  "v22": {"start": "2024-04-24", "lts": "2024-10-29", "maintenance": "2025-10-21", "end": "2999-04-30", "codename": "Jod"},
  "v23": {"start": "2024-10-16", "maintenance": "2025-04-01", "end": "2999-06-01"}
}"#,
    )
    .unwrap();
    let (code, _, err) = kevlar(&["db", "update", "--from", schedule.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = kevlar(&["doctor", "--node-version", "18.9.0", "--format", "json"], &db);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "end-of-life");
    assert_eq!(v["move_to"], "v22", "the newest supported LTS line");
    let llhttp = v["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["cves"].as_array().unwrap().contains(&json!("CVE-2022-35256")))
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(llhttp["fixed_version"], "18.9.1");

    let (code, out, _) = kevlar(&["doctor", "--node-version", "22.99.0"], &db);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("v22, maintenance") && out.contains("no known Node.js core vulnerabilities"), "{out}");
    let (code, out, _) = kevlar(&["doctor", "--node-version", "22.1.0"], &db);
    assert_eq!(code, 1);
    assert!(out.contains("known Node.js core vulnerabilit"), "{out}");

    // The real `node` of this machine.
    let real = String::from_utf8(Command::new("node").arg("--version").output().unwrap().stdout).unwrap();
    let (code, out, err) = kevlar(&["doctor", "--format", "json"], &db);
    assert!(code == 0 || code == 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], real.trim().trim_start_matches('v'));

    // `audit --runtime` adds the runtime report to the dependency audit.
    write_fixture(tmp.path());
    let (code, out, err) = kevlar(&["audit", tmp.path().to_str().unwrap(), "--runtime"], &db);
    assert!(code == 0 || code == 1, "{err}");
    assert!(out.contains("Node.js"), "{out}");
}

#[test]
fn db_update_reads_zip_archives_and_urls() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(tmp.path());
    // OSV's all.zip layout: one JSON record per entry, deflated.
    let mut zip_bytes = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip_bytes));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for e in std::fs::read_dir(tmp.path().join("osv")).unwrap() {
            let p = e.unwrap().path();
            w.start_file(p.file_name().unwrap().to_str().unwrap(), opts).unwrap();
            w.write_all(&std::fs::read(&p).unwrap()).unwrap();
        }
        w.finish().unwrap();
    }
    let zip_path = tmp.path().join("all.zip");
    std::fs::write(&zip_path, &zip_bytes).unwrap();
    let db = tmp.path().join("db1");
    let (code, out, err) = kevlar(&["db", "update", "--from", zip_path.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 5 records"), "{out}");
    let (code, _, _) = kevlar(&["audit", tmp.path().to_str().unwrap()], &db);
    assert_eq!(code, 1, "the zip's records find the vulnerable qs");

    // The same archive over HTTP.
    let url = common::peers::serve_bytes(zip_bytes.clone(), 1);
    let db = tmp.path().join("db2");
    let (code, out, err) = kevlar(&["db", "update", "--from", &url], &db);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("downloaded") && out.contains("imported 5 records"), "{out}{err}");
    // A broken archive and an unreachable source are errors, not panics.
    std::fs::write(tmp.path().join("broken.zip"), b"PK\x03\x04 not really").unwrap();
    let (code, _, err) = kevlar(&["db", "update", "--from", tmp.path().join("broken.zip").to_str().unwrap()], &db);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) =
        kevlar(&["db", "update", "--from", &format!("http://127.0.0.1:{}/x.zip", common::closed_port())], &db);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot download"), "{err}");
}

#[test]
fn monorepo_findings_name_the_workspace_that_pulls_them_in() {
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(tmp.path());
    let db = tmp.path().join("db");
    let (code, _, err) = kevlar(&["db", "update", "--from", tmp.path().join("osv").to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    let repo_dir = tmp.path().join("mono");
    std::fs::create_dir_all(&repo_dir).unwrap();
    let lock = json!({
        "name": "mono", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "mono", "workspaces": ["packages/*"]},
            "packages/api": {"name": "api", "version": "1.0.0", "dependencies": {"qs": "^6.7.0"}},
            "packages/cli": {"name": "cli", "version": "1.0.0", "dependencies": {"minimist": "^1.2.0", "qs": "^6.7.0"}},
            "node_modules/api": {"resolved": "packages/api", "link": true},
            "node_modules/cli": {"resolved": "packages/cli", "link": true},
            "node_modules/qs": {"version": "6.7.0"},
            "node_modules/minimist": {"version": "1.2.5"}
        }
    });
    std::fs::write(repo_dir.join("package-lock.json"), lock.to_string()).unwrap();
    let (code, out, err) = kevlar(&["audit", repo_dir.to_str().unwrap(), "--format", "json"], &db);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let by = |p: &str| v["findings"].as_array().unwrap().iter().find(|f| f["package"] == p).unwrap().clone();
    assert_eq!(by("qs")["workspaces"], json!(["packages/api", "packages/cli"]));
    assert_eq!(by("minimist")["workspaces"], json!(["packages/cli"]));
    let (_, table, _) = kevlar(&["audit", repo_dir.to_str().unwrap()], &db);
    assert!(table.contains("pulled in by workspace packages/cli"), "{table}");
}

#[test]
fn conformance_a_lockfile_npm_itself_writes() {
    // The test writes a package.json and lets npm resolve it against the real registry.
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name": "app", "version": "1.0.0", "private": true, "dependencies": {"minimist": "1.2.5"}, "devDependencies": {"mkdirp": "0.5.5"}}"#,
    )
    .unwrap();
    let npm = Command::new("npm")
        .args(["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&app)
        .output()
        .unwrap();
    assert!(npm.status.success(), "npm install failed: {}", String::from_utf8_lossy(&npm.stderr));
    let db = tmp.path().join("db");
    let npm_advisories = repo().join("../shared/data/advisories/npm");
    let (code, _, err) = kevlar(&["db", "update", "--from", npm_advisories.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = kevlar(&["audit", app.to_str().unwrap(), "--format", "json"], &db);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let f = v["findings"].as_array().unwrap();
    // minimist 1.2.5 (GHSA-xvch-5gv4-984h, fixed in 1.2.6), direct, pinned exactly: the fix is
    // outside the declared range; through mkdirp (dev) it is the same package.
    let m = f.iter().find(|x| x["id"] == "GHSA-xvch-5gv4-984h").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(m["version"], "1.2.5");
    assert_eq!(m["fixed_version"], "1.2.6");
    assert_eq!(m["direct"], true);
    assert_eq!(m["dev"], false);
    assert_eq!(m["fix_in_range"], false, "`1.2.5` pins it; mkdirp's ^1.2.5 would allow 1.2.6");
}

#[test]
fn sarif_output_is_valid_against_the_sarif_2_1_0_schema() {
    let oracle = repo().join("tests/sarif");
    assert!(
        oracle.join("node_modules/ajv/package.json").exists(),
        "the SARIF schema and validator are not installed in {} (the test command runs `npm ci` there)",
        oracle.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(tmp.path());
    // A record with a CVSS vector and a malicious-package one, so every kind of rule appears.
    let p = tmp.path().join("osv/GHSA-aaaa-0001.json");
    let mut rec: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    rec["severity"] = json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]);
    std::fs::write(&p, rec.to_string()).unwrap();
    let db = tmp.path().join("db");
    let (code, _, err) = kevlar(&["db", "update", "--from", tmp.path().join("osv").to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = kevlar(&["audit", tmp.path().to_str().unwrap(), "--format", "sarif"], &db);
    assert_eq!(code, 1);
    let file = tmp.path().join("out.sarif");
    std::fs::write(&file, &out).unwrap();
    let check = |f: &Path| Command::new("node").arg(oracle.join("validate.js")).arg(f).output().unwrap();
    let r = check(&file);
    assert!(r.status.success(), "kevlar's SARIF is not valid:\n{}", String::from_utf8_lossy(&r.stdout));
    // The check can fail: the same document without its version is rejected.
    let mut broken: Value = serde_json::from_str(&out).unwrap();
    broken.as_object_mut().unwrap().remove("version");
    std::fs::write(&file, broken.to_string()).unwrap();
    assert!(!check(&file).status.success(), "the validator accepts anything");
    // An empty report (no findings) is valid too.
    let clean = tmp.path().join("clean");
    std::fs::create_dir_all(&clean).unwrap();
    std::fs::write(clean.join("package-lock.json"), r#"{"name":"c","lockfileVersion":3,"packages":{"":{"name":"c"}}}"#)
        .unwrap();
    let (code, out, _) = kevlar(&["audit", clean.to_str().unwrap(), "--format", "sarif"], &db);
    assert_eq!(code, 0);
    std::fs::write(&file, &out).unwrap();
    let r = check(&file);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
}

/// A runtime database with just a release schedule (enough for `kevlar doctor`'s first part).
fn schedule_db(tmp: &Path) -> std::path::PathBuf {
    let db = tmp.join("db");
    let schedule = tmp.join("schedule.json");
    std::fs::write(
        &schedule,
        r#"{"v22": {"start": "2024-04-24", "lts": "2024-10-29", "maintenance": "2025-10-21", "end": "2999-04-30"}}"#,
    )
    .unwrap();
    let (code, _, err) = kevlar(&["db", "update", "--from", schedule.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    db
}

fn checks(out: &str) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {v:#}"))
        .iter()
        .map(|c| {
            (
                c["verdict"].as_str().unwrap().to_owned(),
                c["area"].as_str().unwrap().to_owned(),
                c["what"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn has(cs: &[(String, String, String)], verdict: &str, area: &str, what: &str) -> bool {
    cs.iter().any(|(v, a, w)| v == verdict && a == area && w.contains(what))
}

/// `kevlar doctor` looks at the deployment: each exposure is a failing line with its fix, and
/// once each is fixed the same command passes.
#[test]
fn doctor_checks_the_deployment_and_each_fix_turns_it_green() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let db = schedule_db(tmp.path());
    let tls = tmp.path().join("tls");
    let (code, _, err) = kevlar(&["cert", "--self-signed", "--out", tls.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    // A data dir and token others can read; one sink that answers, one that does not.
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("admin.token"), "x").unwrap();
    std::fs::set_permissions(data.join("admin.token"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = |mode: &str, secret: &str, sinks: &str| {
        format!(
            "data_dir = \"{data}\"\n[detect]\nmode = \"{mode}\"\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\
             [[alerts.sink]]\nname = \"up\"\ntype = \"logstash\"\naddress = \"{open}\"\n\
             [[alerts.sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{open}/hook\"\nsecret = \"{secret}\"\n{sinks}",
            data = data.display(),
            cert = tls.join("cert.pem").display(),
            key = tls.join("key.pem").display(),
            open = open.local_addr().unwrap(),
        )
    };
    let file = tmp.path().join("kevlar.toml");
    std::fs::write(
        &file,
        config(
            "monitor",
            "a-long-literal-secret",
            &format!(
                "[[alerts.sink]]\nname = \"down\"\ntype = \"syslog\"\naddress = \"{closed}\"\ntransport = \"tcp\"\n"
            ),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let doctor = |format: &str| {
        kevlar(&["doctor", "--node-version", "22.99.0", "--config", file.to_str().unwrap(), "--format", format], &db)
    };
    let (code, out, err) = doctor("json");
    assert_eq!(code, 1, "{out}{err}");
    let cs = checks(&out);
    assert!(has(&cs, "warn", "detect", "monitor"), "{cs:?}");
    assert!(has(&cs, "warn", "bans", "not enforced"), "{cs:?}");
    assert!(has(&cs, "ok", "tls", "valid until"), "{cs:?}");
    assert!(has(&cs, "ok", "tls", "2 certificates in order"), "{cs:?}");
    assert!(has(&cs, "ok", "tls", "key matches"), "{cs:?}");
    assert!(has(&cs, "fail", "data", "admin.token (644)"), "{cs:?}");
    assert!(has(&cs, "fail", "secrets", "others can read it (644)"), "{cs:?}");
    assert!(has(&cs, "ok", "alerts", "up (logstash)"), "{cs:?}");
    assert!(has(&cs, "fail", "alerts", &format!("down (syslog): cannot reach {closed}")), "{cs:?}");
    // The table says the same, each failure with its fix.
    let (code, out, _) = doctor("table");
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  data") && out.contains("fix: chmod 700"), "{out}");
    assert!(out.contains("WARN  detect   monitor"), "{out}");

    // Fixed: modes, permissions, the secret from the environment, the dead sink gone.
    std::fs::write(&file, config("block", "env:PATH", "")).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(data.join("admin.token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, err) = doctor("json");
    assert_eq!(code, 0, "{out}{err}");
    let cs = checks(&out);
    assert!(!cs.iter().any(|(v, _, _)| v == "fail"), "{cs:?}");
    assert!(has(&cs, "ok", "detect", "block"), "{cs:?}");
    assert!(has(&cs, "ok", "data", "owner's alone"), "{cs:?}");
    assert!(!cs.iter().any(|(_, a, _)| a == "secrets"), "a secret from the environment is not in the file: {cs:?}");

    // An expired, self-signed certificate; then a key that is not the certificate's.
    let mut p = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(tls.join("cert.pem"), p.self_signed(&key).unwrap().pem()).unwrap();
    let (code, out, _) = doctor("json");
    assert_eq!(code, 1);
    let cs = checks(&out);
    assert!(has(&cs, "fail", "tls", "expired on 2021-01-01"), "{cs:?}");
    assert!(has(&cs, "warn", "tls", "self-signed"), "{cs:?}");
    assert!(has(&cs, "fail", "tls", "key does not go with the certificate"), "{cs:?}");

    // An invalid configuration is the first failure, not a crash.
    std::fs::write(&file, "[detect]\nmode = \"blok\"\n").unwrap();
    let (code, out, _) = doctor("json");
    assert_eq!(code, 1);
    assert!(has(&checks(&out), "fail", "config", "1 problem"), "{out}");
    drop(open);
}

fn actions(k: &Kevlar, action: &str) -> Vec<Value> {
    k.events(&["--limit", "10000"]).into_iter().filter(|e| e["event"]["action"] == action).collect()
}

/// `[audit] watch`: the deployed lockfile is audited at start, again after `kevlar db update` and
/// after a deploy; each finding is raised once (`vuln_new`), its fix once (`vuln_fixed`), and a
/// restart does not raise them again. What the watch cannot read is said (`sys_audit_fail`).
#[test]
fn the_watch_raises_each_new_and_fixed_vulnerability_once() {
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(tmp.path());
    let osv = tmp.path().join("osv");
    // The first database: qs's advisory (under two ids) and Node.js 20's end of life; minimist's
    // advisory arrives later.
    let later = tmp.path().join("later");
    std::fs::create_dir(&later).unwrap();
    std::fs::rename(osv.join("GHSA-bbbb-0002.json"), later.join("GHSA-bbbb-0002.json")).unwrap();
    std::fs::write(
        osv.join("schedule.json"),
        r#"{"v20": {"start": "2023-04-18", "lts": "2023-10-24", "maintenance": "2024-10-22", "end": "2026-04-30"},
            "v24": {"start": "2025-05-06", "lts": "2025-10-28", "maintenance": "2026-10-20", "end": "2999-04-30"}}"#,
    )
    .unwrap();
    let db = tmp.path().join("db");
    let (code, _, err) = kevlar(&["db", "update", "--from", osv.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    let node_major = Command::new("node").arg("--version").output().unwrap().stdout;
    let node_is_20 = String::from_utf8_lossy(&node_major).starts_with("v20.");
    let data = tmp.path().join("data");
    let config =
        format!("[audit]\nwatch = \"24h\"\nlockfile = \"{}\"\ndb = \"{}\"\n", tmp.path().display(), db.display());
    let start = || {
        Kevlar::guard(&format!("http://127.0.0.1:{}", common::closed_port())).data_dir(&data).config(&config).start()
    };
    let mut k = start();
    let qs = k.wait_event(|e| e["event"]["action"] == "vuln_new");
    assert_eq!(qs["kevlar"]["package"], "qs", "{qs:#}");
    assert_eq!(qs["kevlar"]["versions"], json!(["6.7.0"]));
    assert_eq!(qs["kevlar"]["advisory_severity"], "high");
    assert_eq!(qs["kevlar"]["fixed_version"], "6.7.3");
    assert_eq!(qs["event"]["category"], json!(["vulnerability"]));
    assert_eq!(qs["event"]["severity"], 4, "a high advisory is alert-level");
    assert!(qs["message"].as_str().unwrap().contains("fixed in 6.7.3"), "{qs:#}");
    if node_is_20 {
        let eol = k.wait_event(|e| e["event"]["action"] == "runtime_eol");
        assert!(eol["message"].as_str().unwrap().contains("move to v24"), "{eol:#}");
    }
    let status = |k: &Kevlar| -> Value {
        let out = Command::new(KEVLAR).args(["status", "--json", "--data-dir"]).arg(&k.data_dir).output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    assert_eq!(status(&k)["audit"]["findings"], 1, "{:#}", status(&k));

    // `kevlar db update` while Kevlar runs: the new advisory is raised within seconds.
    let (code, _, err) = kevlar(&["db", "update", "--from", later.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    common::peers::wait_until(15, "vuln_new for minimist", || {
        actions(&k, "vuln_new").iter().any(|e| e["kevlar"]["package"] == "minimist")
    });
    // A deploy that upgrades qs past the fix.
    let lock_path = tmp.path().join("package-lock.json");
    let lock = std::fs::read_to_string(&lock_path).unwrap().replace("\"6.7.0\"", "\"6.7.3\"");
    std::fs::write(&lock_path, &lock).unwrap();
    common::peers::wait_until(15, "vuln_fixed for qs", || {
        actions(&k, "vuln_fixed").iter().any(|e| e["kevlar"]["package"] == "qs")
    });
    assert_eq!(actions(&k, "vuln_new").len(), 2, "one per finding: {:#?}", actions(&k, "vuln_new"));
    // A broken lockfile is said once, not skipped.
    std::fs::write(&lock_path, "{ \"lockfileVersion\": 3, broken").unwrap();
    common::peers::wait_until(15, "sys_audit_fail", || !actions(&k, "sys_audit_fail").is_empty());
    let fail = &actions(&k, "sys_audit_fail")[0];
    assert!(fail["kevlar"]["reason"].as_str().unwrap().contains("lockfile"), "{fail:#}");
    std::fs::write(&lock_path, &lock).unwrap();
    common::peers::wait_until(15, "the repaired lockfile audited", || {
        status(&k)["audit"]["last_audit"] != Value::Null && actions(&k, "sys_audit_fail").len() == 1
    });
    k.sigterm();

    // A restart audits again and raises nothing it raised before.
    let k = start();
    common::peers::wait_until(15, "the audit after the restart", || status(&k)["audit"]["findings"] == 1);
    assert_eq!(actions(&k, "vuln_new").len(), 2);
    assert_eq!(actions(&k, "vuln_fixed").len(), 1);
    assert!(actions(&k, "runtime_eol").len() <= 1);
}

/// The watch's schedule fetches the advisories from `[audit] source` (here a local server standing
/// in for OSV's archive) and audits with what arrived; a fetch that fails is said, not skipped.
#[test]
fn the_scheduled_fetch_imports_the_source_and_a_failed_fetch_is_said() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(tmp.path());
    let mut zip_bytes = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip_bytes));
        let opts = zip::write::SimpleFileOptions::default();
        w.start_file("GHSA-bbbb-0002.json", opts).unwrap();
        w.write_all(&std::fs::read(tmp.path().join("osv/GHSA-bbbb-0002.json")).unwrap()).unwrap();
        w.finish().unwrap();
    }
    // Served once: the second fetch finds the server gone.
    let url = common::peers::serve_bytes(zip_bytes, 1);
    let db = tmp.path().join("db");
    let config = format!(
        "[audit]\nwatch = \"1s\"\nsource = \"{url}\"\nlockfile = \"{}\"\ndb = \"{}\"\n",
        tmp.path().join("package-lock.json").display(),
        db.display()
    );
    let k = Kevlar::guard(&format!("http://127.0.0.1:{}", common::closed_port())).config(&config).start();
    // No database yet: said once.
    common::peers::wait_until(15, "sys_audit_fail for the missing database", || {
        actions(&k, "sys_audit_fail").iter().any(|e| e["message"].as_str().unwrap().contains("kevlar db update"))
    });
    common::peers::wait_until(20, "vuln_new after the fetch", || {
        actions(&k, "vuln_new").iter().any(|e| e["kevlar"]["package"] == "minimist")
    });
    common::peers::wait_until(20, "the failed fetch said", || {
        actions(&k, "sys_audit_fail").iter().any(|e| e["message"].as_str().unwrap().contains("scheduled fetch"))
    });
    let fails = actions(&k, "sys_audit_fail");
    assert!(fails.len() <= 3, "each problem once: {fails:#?}");
}
