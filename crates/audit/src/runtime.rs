//! The Node.js runtime itself: its release line's schedule (end of life) and the known core
//! vulnerabilities of the running version. Both come in through `kevlar db update`: the Node.js
//! security WG's `vuln/core/*.json` (npm-style `vulnerable`/`patched` ranges) and a release
//! schedule (`schedule.json` of nodejs/Release, also shipped as node-releases'
//! `release-schedule.json`: `{"v20": {"start", "lts", "maintenance", "end", "codename"}}`).

use serde_json::Value;

use crate::npm_range;

/// A core advisory file of the security WG: an object with `vulnerable` and `patched`.
pub fn is_core_advisory(v: &Value) -> bool {
    v.get("vulnerable").is_some_and(Value::is_string) && v.get("cve").is_some()
}

/// A release schedule: every key `vN` (or `v0.N`) maps to an object with `start` and `end`.
pub fn is_schedule(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    !o.is_empty() && o.iter().all(|(k, e)| k.starts_with('v') && e.get("start").is_some() && e.get("end").is_some())
}

/// A known vulnerability of Node.js core that the version has.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CoreVuln {
    pub id: String,
    pub cves: Vec<String>,
    pub severity: String,
    pub overview: String,
    /// The smallest patched version on the running release line, when there is one.
    #[serde(rename = "fixed_version")]
    pub fixed: Option<String>,
    pub url: Option<String>,
}

/// Where a release line is in its schedule on the day of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineStatus {
    Current,
    ActiveLts,
    Maintenance,
    EndOfLife,
    /// The line is not in the schedule (or there is no schedule).
    Unknown,
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Current => "current",
            LineStatus::ActiveLts => "active-lts",
            LineStatus::Maintenance => "maintenance",
            LineStatus::EndOfLife => "end-of-life",
            LineStatus::Unknown => "unknown",
        }
    }
}

/// A release line still supported on the day of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SupportedLine {
    pub line: String,
    pub lts: bool,
    pub codename: Option<String>,
    pub end: Option<String>,
}

/// The runtime report: what `kevlar audit --runtime` and `kevlar doctor` say of Node.js itself.
/// Serialised as it is for `--format json`; `present::runtime_text` writes it for people.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuntimeReport {
    pub runtime: &'static str,
    pub version: String,
    pub line: Option<String>,
    pub status: LineStatus,
    pub end_of_life: Option<String>,
    /// The line to move to (end of life) or the lowest version that fixes every vulnerability.
    pub move_to: Option<String>,
    /// Supported lines, LTS first, newest first.
    pub supported_lines: Vec<SupportedLine>,
    pub vulnerabilities: Vec<CoreVuln>,
}

impl RuntimeReport {
    /// Whether it should fail a CI run: end of life, or a known vulnerability.
    pub fn failing(&self) -> bool {
        self.status == LineStatus::EndOfLife || !self.vulnerabilities.is_empty()
    }
}

/// The patched version on `major`'s line: the lowest bound of the `patched` alternative that
/// names this major (`^20.5.1` → 20.5.1).
fn patched_on_line(patched: &str, major: u64) -> Option<String> {
    patched
        .split("||")
        .map(str::trim)
        .filter_map(|alt| {
            let v = alt.trim_start_matches(['^', '~', '>', '=', ' ']).split_whitespace().next()?;
            let parsed = semver::Version::parse(v).ok()?;
            (parsed.major == major).then_some(parsed)
        })
        .min()
        .map(|v| v.to_string())
}

/// The core advisories (as stored) that affect `version`.
pub fn vulns_for(version: &semver::Version, docs: &[(String, Value)]) -> Vec<CoreVuln> {
    let text = version.to_string();
    let mut out = Vec::new();
    for (id, d) in docs {
        let vulnerable = d.get("vulnerable").and_then(Value::as_str).unwrap_or("");
        let patched = d.get("patched").and_then(Value::as_str).unwrap_or("");
        if npm_range::satisfies(&text, vulnerable) != Some(true) {
            continue;
        }
        if !patched.is_empty() && npm_range::satisfies(&text, patched) == Some(true) {
            continue;
        }
        out.push(CoreVuln {
            id: id.clone(),
            cves: d
                .get("cve")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            overview: d
                .get("overview")
                .or_else(|| d.get("description"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            severity: d.get("severity").and_then(Value::as_str).unwrap_or("unknown").to_ascii_lowercase(),
            fixed: patched_on_line(patched, version.major),
            url: d.get("ref").and_then(Value::as_str).map(str::to_owned),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// The release line of `version` in the schedule (`v20`, or `v0.12`), and its entry.
fn line_of<'a>(version: &semver::Version, schedule: &'a Value) -> Option<(String, &'a Value)> {
    let key = if version.major == 0 { format!("v0.{}", version.minor) } else { format!("v{}", version.major) };
    schedule.get(&key).map(|e| (key, e))
}

/// The report `kevlar doctor` prints: the line's status, what to move to, the vulnerabilities.
pub fn report(
    version: &semver::Version,
    schedule: Option<&Value>,
    docs: &[(String, Value)],
    today: &str,
) -> RuntimeReport {
    let vulns = vulns_for(version, docs);
    let mut status = LineStatus::Unknown;
    let mut end = None;
    let mut line = None;
    let mut supported = Vec::new();
    if let Some(s) = schedule {
        if let Some((key, e)) = line_of(version, s) {
            line = Some(key);
            let d = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
            end = d("end");
            let reached = |k: &str| d(k).is_some_and(|x| x.as_str() <= today);
            status = if reached("end") {
                LineStatus::EndOfLife
            } else if reached("maintenance") {
                LineStatus::Maintenance
            } else if reached("lts") {
                LineStatus::ActiveLts
            } else {
                LineStatus::Current
            };
        }
        supported = supported_lines(s, today);
    }
    let move_to = if status == LineStatus::EndOfLife {
        supported.first().map(|s| s.line.clone())
    } else {
        vulns
            .iter()
            .filter_map(|v| v.fixed.as_deref())
            .filter_map(|f| semver::Version::parse(f).ok())
            .max()
            .map(|v| v.to_string())
    };
    RuntimeReport {
        runtime: "node",
        version: version.to_string(),
        line,
        status,
        end_of_life: end,
        move_to,
        supported_lines: supported,
        vulnerabilities: vulns,
    }
}

/// The lines started and not yet ended on `today`, LTS first, newest first.
fn supported_lines(schedule: &Value, today: &str) -> Vec<SupportedLine> {
    let Some(o) = schedule.as_object() else { return Vec::new() };
    let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut lines: Vec<(u64, &Value, &String)> = o
        .iter()
        .filter(|(_, e)| {
            e.get("start").and_then(Value::as_str).is_some_and(|x| x <= today)
                && e.get("end").and_then(Value::as_str).is_some_and(|x| x > today)
        })
        .filter_map(|(k, e)| Some((k.trim_start_matches('v').parse::<u64>().ok()?, e, k)))
        .collect();
    lines.sort_by_key(|(n, e, _)| (e.get("lts").is_none(), std::cmp::Reverse(*n)));
    lines
        .into_iter()
        .map(|(_, e, k)| SupportedLine {
            line: k.clone(),
            lts: e.get("lts").is_some(),
            codename: text(e, "codename"),
            end: text(e, "end"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn eol_and_vulns() {
        let schedule = json!({
            "v18": {"start": "2022-04-19", "lts": "2022-10-25", "maintenance": "2023-10-18", "end": "2025-04-30", "codename": "Hydrogen"},
            "v20": {"start": "2023-04-18", "lts": "2023-10-24", "maintenance": "2024-10-22", "end": "2026-04-30", "codename": "Iron"},
            "v22": {"start": "2024-04-24", "lts": "2024-10-29", "maintenance": "2025-10-21", "end": "2027-04-30", "codename": "Jod"},
        });
        let docs = vec![(
            "100".to_owned(),
            json!({"cve": ["CVE-2022-35256"], "vulnerable": "14.x || 16.x || 18.x", "patched": "^14.20.1 || ^16.17.1 || ^18.9.1", "severity": "medium", "overview": "llhttp"}),
        )];
        let v = semver::Version::parse("18.9.0").unwrap();
        let r = serde_json::to_value(report(&v, Some(&schedule), &docs, "2026-11-24")).unwrap();
        assert_eq!(r["status"], "end-of-life");
        assert_eq!(r["move_to"], "v22");
        assert_eq!(r["vulnerabilities"][0]["fixed_version"], "18.9.1");
        let r = report(&semver::Version::parse("18.9.1").unwrap(), Some(&schedule), &docs, "2024-01-01");
        assert!(!r.failing());
        let r = serde_json::to_value(r).unwrap();
        assert_eq!(r["status"], "maintenance");
        assert_eq!(r["vulnerabilities"], json!([]));
        assert!(is_schedule(&schedule));
        assert!(is_core_advisory(&docs[0].1));
    }
}
