//! The OWASP CRS v4 regression tests (`../shared/data/crs/tests/regression/tests`) as a labelled
//! corpus for Kevlar's built-in detection, through the binary: every test of the attack families
//! (930 LFI … 944 Java) is sent as written to a Kevlar in monitor mode in front of an app that
//! echoes the request id, and judged by the events Kevlar recorded for that request. A test that
//! CRS expects a rule to match is an attack; one that expects none and says it checks a false
//! positive is benign. Prints the table per
//! family (attacks CRS's paranoia level 1 rules match, all attacks, false positives) and holds
//! each figure to a floor, so a change that loses detection fails here.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use common::{node_script, repo, Kevlar};
use yaml_rust2::{Yaml, YamlLoader};

const FAMILIES: &[(&str, &str)] = &[
    ("930", "lfi"),
    ("931", "rfi"),
    ("932", "rce"),
    ("933", "php"),
    ("934", "generic"),
    ("941", "xss"),
    ("942", "sqli"),
    ("943", "session-fixation"),
    ("944", "java"),
];

/// How CRS's tests say they check a false positive.
const BENIGN_WORDS: &[&str] = &[
    "false positive",
    "false-positive",
    "fp ",
    "fp:",
    "(fp",
    "benign",
    "legit",
    "should not",
    "shouldn't",
    "must not",
    "not match",
    "no match",
    "don't match",
    "do not match",
];

struct Case {
    family: &'static str,
    name: String,
    /// CRS expects a match (an attack), and the lowest paranoia level of the rules it expects.
    attack: Option<u8>,
    /// CRS expects no match and the test says it is a false-positive check (a test that only
    /// says one rule must not match may still be an attack another rule catches).
    benign: bool,
    raw: Vec<u8>,
}

fn crs() -> PathBuf {
    repo().join("../shared/data/crs")
}

/// Each rule id's paranoia level, from the rule files' `DETECTION_PARANOIA_LEVEL "@lt N"` sections.
fn paranoia_levels() -> HashMap<u64, u8> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(crs().join("rules")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("conf") {
            continue;
        }
        let mut level = 1u8;
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            if let Some(rest) = line.split("DETECTION_PARANOIA_LEVEL \"@lt ").nth(1) {
                level = rest.chars().next().and_then(|c| c.to_digit(10)).unwrap_or(1) as u8;
                continue;
            }
            for part in line.split("id:").skip(1) {
                let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(id) = digits.parse() {
                    out.entry(id).or_insert(level);
                }
            }
        }
    }
    out
}

fn ids(y: &Yaml) -> Vec<u64> {
    y.as_vec().map(|v| v.iter().filter_map(Yaml::as_i64).map(|n| n as u64).collect()).unwrap_or_default()
}

fn scalar(y: &Yaml) -> Option<String> {
    y.as_str().map(str::to_owned).or_else(|| y.as_i64().map(|n| n.to_string()))
}

/// The request a test stage sends, as bytes: its own encoded request, or the request line, the
/// headers as given and the body, with `Content-Length` and `Connection: close` added.
fn raw_request(input: &Yaml) -> Option<Vec<u8>> {
    if let Some(enc) = input["encoded_request"].as_str() {
        return common::base64_decode(enc.trim());
    }
    let method = scalar(&input["method"]).unwrap_or_else(|| "GET".into());
    let uri = scalar(&input["uri"]).unwrap_or_else(|| "/".into());
    let version = scalar(&input["version"]).unwrap_or_else(|| "HTTP/1.1".into());
    let mut head = format!("{method} {uri} {version}\r\n");
    let mut names = HashSet::new();
    if let Some(h) = input["headers"].as_hash() {
        for (k, v) in h {
            let (Some(k), Some(v)) = (scalar(k), scalar(v)) else { continue };
            names.insert(k.to_ascii_lowercase());
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    let body = scalar(&input["data"]).unwrap_or_default();
    if !body.is_empty() && !names.contains("content-length") && !names.contains("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !names.contains("connection") {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

fn cases() -> Vec<Case> {
    let levels = paranoia_levels();
    let root = crs().join("tests/regression/tests");
    let mut out = Vec::new();
    for (prefix, family) in FAMILIES {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&format!("REQUEST-{prefix}")))
            .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
            .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("yaml"))
            .collect();
        files.sort();
        for f in files {
            let doc = &YamlLoader::load_from_str(&std::fs::read_to_string(&f).unwrap()).unwrap()[0];
            let rule = doc["rule_id"].as_i64().unwrap_or(0);
            for t in doc["tests"].as_vec().into_iter().flatten() {
                let stages = t["stages"].as_vec().cloned().unwrap_or_default();
                // Multi-stage tests depend on state between requests; only the last stage is judged.
                let Some(stage) = stages.last() else { continue };
                let expect = ids(&stage["output"]["log"]["expect_ids"]);
                let Some(raw) = raw_request(&stage["input"]) else { continue };
                let attack = (!expect.is_empty())
                    .then(|| expect.iter().map(|id| *levels.get(id).unwrap_or(&4)).min().unwrap_or(4));
                let desc = t["desc"].as_str().unwrap_or("").to_ascii_lowercase();
                let benign = expect.is_empty() && BENIGN_WORDS.iter().any(|w| desc.contains(w));
                let name = format!("{rule}-{}", scalar(&t["test_id"]).unwrap_or_default());
                out.push(Case { family, name, attack, benign, raw });
            }
        }
    }
    out
}

/// Sends the request; the request id from the answer (the app echoes it; Kevlar's own pages show
/// it), and whether Kevlar answered itself.
fn send(addr: SocketAddr, raw: &[u8]) -> (Option<String>, bool) {
    let Ok(mut s) = TcpStream::connect(addr) else { return (None, false) };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let refused = !text.starts_with("HTTP/1.1 200") && !text.starts_with("HTTP/1.0 200");
    let id = text.split(|c: char| !c.is_ascii_hexdigit()).find(|w| w.len() == 32).map(str::to_owned);
    (id, refused)
}

#[derive(Default)]
struct Tally {
    pl1: (usize, usize),
    all: (usize, usize),
    benign: (usize, usize),
}

#[test]
fn conformance_crs_regression_tests_by_family() {
    assert!(crs().join("tests/regression/tests").is_dir(), "../shared/data/crs is the labelled corpus");
    let cases = cases();
    let (_app, app) = node_script(
        "require('http').createServer((q, s) => { q.resume(); q.on('end', () => s.end('id ' + q.headers['x-request-id'] + '\\n')); })\
         .listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });",
    );
    let tmp = tempfile::tempdir().unwrap();
    let k = Kevlar::guard(&format!("http://{app}"))
        .data_dir(&tmp.path().join("data"))
        .config("[detect]\nmode = \"monitor\"\n")
        .start();
    let mut sent: Vec<(usize, Option<String>, bool)> = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let (id, refused) = send(k.http, &c.raw);
        sent.push((i, id, refused));
    }
    // Events are stored in order: once a last, obvious attack's event is in, every earlier one is.
    let (sentinel, _) = send(k.http, b"GET /?q=1%27%20union%20select%20password%20from%20users-- HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let sentinel = sentinel.unwrap();
    k.wait_event(|e| e["http"]["request"]["id"] == sentinel.as_str());
    let flagged: HashSet<String> = k
        .events(&["--limit", "1000000"])
        .iter()
        .filter(|e| {
            let a = e["event"]["action"].as_str().unwrap_or("");
            a.starts_with("malicious_") || a == "input_validation_fail"
        })
        .filter_map(|e| e["http"]["request"]["id"].as_str().map(str::to_owned))
        .collect();
    let mut tally: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut misses: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut false_positives: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, id, refused) in &sent {
        let c = &cases[*i];
        let hit = *refused || id.as_ref().is_some_and(|id| flagged.contains(id));
        let t = tally.entry(c.family).or_default();
        match c.attack {
            Some(level) => {
                t.all.1 += 1;
                t.all.0 += usize::from(hit);
                if level == 1 {
                    t.pl1.1 += 1;
                    t.pl1.0 += usize::from(hit);
                    if !hit {
                        misses.entry(c.family).or_default().push(c.name.clone());
                    }
                }
            }
            None if c.benign => {
                t.benign.1 += 1;
                t.benign.0 += usize::from(hit);
                if hit {
                    false_positives.entry(c.family).or_default().push(c.name.clone());
                }
            }
            None => {}
        }
    }
    let pct = |(a, n): (usize, usize)| {
        if n == 0 {
            "-".to_owned()
        } else {
            format!("{:.1} % ({a}/{n})", 100.0 * a as f64 / n as f64)
        }
    };
    println!("| family | attacks of PL1 rules | all attacks | false positives |\n|---|---|---|---|");
    for (f, t) in &tally {
        println!("| {f} | {} | {} | {} |", pct(t.pl1), pct(t.all), pct(t.benign));
    }
    for (f, m) in &misses {
        println!("missed at PL1, {f}: {}", m.join(" "));
    }
    for (f, m) in &false_positives {
        println!("false positives, {f}: {}", m.join(" "));
    }
    // Floors: the figures measured when this test was written, less a little; raise them as
    // detection improves.
    let floors: &[(&str, f64, f64)] = &[
        ("generic", 0.30, 0.10),
        ("java", 0.02, 1.0),
        ("lfi", 0.78, 0.45),
        ("php", 0.25, 0.08),
        ("rce", 0.17, 0.03),
        ("rfi", 0.33, 1.0),
        ("session-fixation", 0.20, 0.34),
        ("sqli", 0.49, 0.08),
        ("xss", 0.53, 0.02),
    ];
    for (f, min_pl1, max_fp) in floors {
        let t = &tally[f];
        let rate = t.pl1.0 as f64 / t.pl1.1.max(1) as f64;
        let fp = t.benign.0 as f64 / t.benign.1.max(1) as f64;
        assert!(rate >= *min_pl1, "{f}: PL1 detection {rate:.3} fell below {min_pl1}");
        assert!(fp <= *max_fp, "{f}: false positives {fp:.3} above {max_fp}");
    }
}

/// Kevlar's own adversarial and tricky-benign strings (tests/fixtures/adversarial): the `dev`
/// half is what the detectors were tuned against; each `heldback` half was measured once after a
/// round of tuning (the first one has been tuned against since; the second not yet). Each
/// value goes through `kevlar detect` in the three placements (query, form field, JSON field):
/// flagged in any placement counts.
fn flagged_share(file: &str) -> (usize, usize, Vec<String>) {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/adversarial").join(file)).unwrap();
    let values: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once('\t').map_or(l, |(_, v)| v))
        .collect();
    let input: String = values.iter().map(|v| format!("{}\n", serde_json::Value::from(*v))).collect();
    let mut child = std::process::Command::new(common::KEVLAR)
        .args(["detect", "--json", "--file", "-"])
        .current_dir(std::env::temp_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), values.len());
    let flagged: Vec<String> = rows
        .iter()
        .filter(|r| r["findings"].as_array().is_some_and(|f| !f.is_empty()))
        .map(|r| r["input"].as_str().unwrap_or("").to_owned())
        .collect();
    (flagged.len(), values.len(), flagged)
}

#[test]
fn conformance_own_adversarial_and_tricky_benign_sets() {
    let pct = |(n, of, _): &(usize, usize, Vec<String>)| 100.0 * *n as f64 / *of as f64;
    let dev_attacks = flagged_share("dev_attacks.txt");
    let dev_benign = flagged_share("dev_benign.txt");
    let held_attacks = flagged_share("heldback_attacks.txt");
    let held_benign = flagged_share("heldback_benign.txt");
    let held2_attacks = flagged_share("heldback2_attacks.txt");
    let held2_benign = flagged_share("heldback2_benign.txt");
    println!("| set | flagged |\n|---|---|");
    for (name, s) in [
        ("dev attacks", &dev_attacks),
        ("dev tricky benign", &dev_benign),
        ("held-back attacks", &held_attacks),
        ("held-back tricky benign", &held_benign),
        ("second held-back attacks", &held2_attacks),
        ("second held-back tricky benign", &held2_benign),
    ] {
        println!("| {name} | {:.1} % ({}/{}) |", pct(s), s.0, s.1);
    }
    println!("false positives, held back: {:?}", held_benign.2);
    // Floors and ceilings at the figures measured when the held-back half was first run: they
    // catch a regression, they are not the targets (docs/detection.md).
    assert!(pct(&dev_attacks) >= 98.0, "dev attacks: {:.1} %", pct(&dev_attacks));
    assert!(pct(&dev_benign) <= 5.0, "dev benign: {:?}", dev_benign.2);
    assert!(pct(&held_attacks) >= 96.0, "held-back attacks: {:.1} %", pct(&held_attacks));
    assert!(pct(&held_benign) <= 20.0, "held-back benign: {:?}", held_benign.2);
    assert!(pct(&held2_attacks) >= 96.0, "second held-back attacks: {:.1} %", pct(&held2_attacks));
    assert!(pct(&held2_benign) <= 7.0, "second held-back benign: {:?}", held2_benign.2);
}
