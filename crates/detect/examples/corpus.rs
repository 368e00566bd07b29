//! Detection and false-positive rates of the built-in detectors on public corpora, read in place:
//!
//!     cargo run --release -p kevlar-detect --example corpus -- ../shared/data/payloads [--misses N]
//!
//! Each payload is checked as the value of a query argument (as the proxy would see it after
//! form decoding). Prints one row per corpus; `--misses N` prints up to N misses (or false
//! positives) per corpus, for tuning.

use std::path::{Path, PathBuf};

use kevlar_detect::{check_value, Detector, InspectConfig, Inspector, RequestView};

struct Corpus {
    name: String,
    /// Also place each payload in the User-Agent header (gotestwaf places payloads there too).
    headers: bool,
    /// True: attacks (count detections); false: benign (count false positives).
    attack: bool,
    items: Vec<String>,
}

fn lines(path: &Path, url_encoded: bool) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| if url_encoded { form_decode(l) } else { l.to_owned() })
        .collect()
}

fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)));
    v.sort();
    v
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, ext, out);
        } else if p.extension().and_then(|e| e.to_str()) == Some(ext) {
            out.push(p);
        }
    }
}

/// Reads a CSV line of quoted fields: `"a","b"` with `""` as an escaped quote.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The `payload:` list of a gotestwaf test-case file (a small YAML subset: `- "…"`, `- '…'`, `- plain`).
fn gotestwaf_payloads(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let mut out = Vec::new();
    let mut inside = false;
    let mut pending: Option<String> = None;
    for line in text.lines() {
        if let Some(mut acc) = pending.take() {
            // A double-quoted scalar over several lines: `\` at a line's end joins without a break.
            let t = line.trim_start();
            if acc.ends_with('\\') {
                acc.pop();
            } else {
                acc.push(' ');
            }
            acc.push_str(t);
            if closes(&acc) {
                out.push(yaml_scalar(&acc));
            } else {
                pending = Some(acc);
            }
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('-') {
            inside = line.trim_end() == "payload:";
            continue;
        }
        if !inside {
            continue;
        }
        let Some(item) = line.trim_start().strip_prefix("- ") else { continue };
        let item = item.trim();
        if item.starts_with('"') && !closes(item) {
            pending = Some(item.to_owned());
        } else {
            out.push(yaml_scalar(item));
        }
    }
    out
}

/// Whether a double-quoted scalar is closed: it ends with a quote that is not escaped.
fn closes(s: &str) -> bool {
    if s.len() < 2 || !s.ends_with('"') {
        return false;
    }
    let body = &s[..s.len() - 1];
    let backslashes = body.chars().rev().take_while(|c| *c == '\\').count();
    backslashes % 2 == 0
}

fn yaml_scalar(s: &str) -> String {
    if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let mut out = String::new();
        let mut it = inner.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                Some('u') => {
                    let hex: String = it.by_ref().take(4).collect();
                    out.push(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).unwrap_or('?'));
                }
                Some('x') => {
                    let hex: String = it.by_ref().take(2).collect();
                    out.push(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).unwrap_or('?'));
                }
                Some(other) => out.push(other),
                None => {}
            }
        }
        return out;
    }
    if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    s.to_owned()
}

fn command_injection_list(readme: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(readme) else { return Vec::new() };
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        if inside && !line.trim().is_empty() {
            out.push(line.to_owned());
        }
    }
    out
}

/// Every corpus under the payload directory, labelled attack or benign.
fn load(root: &Path) -> Vec<Corpus> {
    let mut corpora: Vec<Corpus> = Vec::new();
    let li = root.join("libinjection/data");
    corpora.push(Corpus {
        name: "libinjection SQLi".into(),
        attack: true,
        headers: false,
        items: files(&li, "sqli-").iter().flat_map(|p| lines(p, true)).collect(),
    });
    corpora.push(Corpus {
        name: "libinjection XSS".into(),
        attack: true,
        headers: false,
        items: files(&li, "xss-").iter().flat_map(|p| lines(p, false)).collect(),
    });
    corpora.push(Corpus {
        name: "libinjection false positives (benign)".into(),
        attack: false,
        headers: false,
        items: lines(&li.join("false_positives.txt"), true),
    });
    let mut hp_attack = Vec::new();
    let mut hp_benign = Vec::new();
    if let Ok(text) = std::fs::read_to_string(root.join("httpparams/payload_full.csv")) {
        for line in text.lines().skip(1) {
            let f = csv_fields(line);
            if f.len() < 4 {
                continue;
            }
            if f[3] == "anom" {
                hp_attack.push(f[0].clone());
            } else {
                hp_benign.push(f[0].clone());
            }
        }
    }
    corpora.push(Corpus { name: "HttpParamsDataset attacks".into(), attack: true, headers: false, items: hp_attack });
    corpora.push(Corpus { name: "HttpParamsDataset benign".into(), attack: false, headers: false, items: hp_benign });
    let mut sql = Vec::new();
    walk(&root.join("sql-injection-payload-list/Intruder"), "txt", &mut sql);
    corpora.push(Corpus {
        name: "payloadbox SQLi".into(),
        attack: true,
        headers: false,
        items: sql.iter().filter(|p| !p.to_string_lossy().contains("NoSQL")).flat_map(|p| lines(p, false)).collect(),
    });
    corpora.push(Corpus {
        name: "payloadbox XSS".into(),
        attack: true,
        headers: false,
        items: lines(&root.join("xss-payload-list/Intruder/xss-payload-list.txt"), false),
    });
    corpora.push(Corpus {
        name: "payloadbox command injection".into(),
        attack: true,
        headers: false,
        items: command_injection_list(&root.join("command-injection-payload-list/README.md")),
    });
    let mut gw = Vec::new();
    walk(&root.join("gotestwaf/testcases/owasp"), "yml", &mut gw);
    walk(&root.join("gotestwaf/testcases/community"), "yml", &mut gw);
    corpora.push(Corpus {
        name: "gotestwaf attacks (owasp + community)".into(),
        attack: true,
        headers: true,
        items: gw.iter().flat_map(|p| gotestwaf_payloads(p)).collect(),
    });
    let mut gwa = Vec::new();
    walk(&root.join("gotestwaf/testcases/owasp-api"), "yml", &mut gwa);
    corpora.push(Corpus {
        name: "gotestwaf API attacks".into(),
        attack: true,
        headers: true,
        items: gwa.iter().flat_map(|p| gotestwaf_payloads(p)).collect(),
    });
    corpora.push(Corpus {
        name: "gotestwaf false-pos texts (benign)".into(),
        attack: false,
        headers: true,
        items: gotestwaf_payloads(&root.join("gotestwaf/testcases/false-pos/texts.yml")),
    });
    corpora
}

/// How many of a corpus's items are flagged (printing up to `misses` misses or false positives),
/// and the time per item in µs.
fn score(inspector: &Inspector, c: &Corpus, misses: usize) -> (usize, f64) {
    let started = std::time::Instant::now();
    let mut flagged = 0;
    let mut shown = 0;
    for item in &c.items {
        let mut hits = check_value(inspector, "q", item);
        if c.headers {
            if let Ok(v) = http::HeaderValue::from_str(item) {
                let mut h = http::HeaderMap::new();
                h.insert(http::header::USER_AGENT, v);
                let view =
                    RequestView { method: "GET", path: "/", query: None, headers: &h, body: b"", body_complete: true };
                inspector.inspect(&view, &mut hits);
            }
        }
        let hit = !hits.is_empty();
        if hit {
            flagged += 1;
        }
        if hit != c.attack && shown < misses {
            shown += 1;
            let detail = hits.first().map(|f| format!(" [{}:{}]", f.family.as_str(), f.rule)).unwrap_or_default();
            eprintln!(
                "  {} {}: {}{detail}",
                if c.attack { "miss" } else { "FP" },
                c.name,
                item.chars().take(160).collect::<String>()
            );
        }
    }
    (flagged, started.elapsed().as_secs_f64() * 1e6 / c.items.len().max(1) as f64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "../shared/data/payloads".into()));
    let misses: usize = args
        .iter()
        .position(|a| a == "--misses")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if !root.is_dir() {
        eprintln!("corpus: no payload directory at {}", root.display());
        std::process::exit(2);
    }
    let corpora = load(&root);

    let inspector = Inspector::new(InspectConfig::default());
    println!("{:<42} {:>7} {:>9} {:>8}", "corpus", "items", "flagged", "rate");
    let mut failed = false;
    for c in &corpora {
        let (flagged, micros) = score(&inspector, c, misses);
        let rate = if c.items.is_empty() { 0.0 } else { 100.0 * flagged as f64 / c.items.len() as f64 };
        let label = if c.attack { "detected" } else { "false positives" };
        println!("{:<42} {:>7} {:>9} {:>7.2}%  {label}  ({micros:.1} µs/item)", c.name, c.items.len(), flagged, rate);
        if c.items.is_empty() {
            failed = true;
        }
    }
    if failed {
        eprintln!("corpus: some corpora were empty (is ../shared/data/payloads complete?)");
        std::process::exit(2);
    }
}
