//! Presenting what the audit found, apart from deciding it: the findings as a table, JSON, SARIF
//! 2.1.0 (for code scanning) and Markdown (for a pull request), and the runtime report in words.

use serde_json::{json, Value};

use crate::lockfile::Project;
use crate::matching::Finding;
use crate::osv::Severity;
use crate::runtime::{LineStatus, RuntimeReport};

pub fn to_json(project: &Project, findings: &[Finding]) -> Value {
    json!({
        "lockfile": project.lockfile.display().to_string(),
        "ecosystem": project.ecosystem,
        "packages": project.packages.len(),
        "findings": findings.iter().map(|f| json!({
            "package": f.package,
            "version": f.version,
            "id": f.id,
            "aliases": f.aliases,
            "severity": f.severity.as_str(),
            "cvss_score": f.cvss_score,
            "cvss_vector": f.cvss_vector,
            "malicious": f.malicious,
            "summary": f.summary,
            "fixed_version": f.fixed,
            "fix_in_range": f.fix_in_range,
            "workspaces": f.workspaces,
            "direct": f.direct,
            "dev": f.dev,
            "paths": f.paths,
        })).collect::<Vec<_>>(),
    })
}

pub fn to_table(project: &Project, findings: &[Finding]) -> String {
    let mut s = String::new();
    if findings.is_empty() {
        s.push_str(&format!(
            "{}: {} packages, no known vulnerabilities\n",
            project.lockfile.display(),
            project.packages.len()
        ));
        return s;
    }
    s.push_str(&format!(
        "{:<9} {:<5} {:<28} {:<12} {:<20} {:<10} {:<5} PATH\n",
        "SEVERITY", "CVSS", "PACKAGE", "VERSION", "ADVISORY", "FIX", "DEV"
    ));
    for f in findings {
        let label = if f.malicious { "MALWARE".to_owned() } else { f.severity.as_str().to_uppercase() };
        let path = f.paths.first().map(|p| p.join(" > ")).unwrap_or_default();
        s.push_str(&format!(
            "{:<9} {:<5} {:<28} {:<12} {:<20} {:<10} {:<5} {}\n",
            label,
            f.cvss_score.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into()),
            f.package,
            f.version,
            f.id,
            match (f.fixed.as_deref(), f.fix_in_range) {
                (None, _) => "none".to_owned(),
                (Some(v), Some(false)) => format!("{v}!"),
                (Some(v), _) => v.to_owned(),
            },
            if f.dev { "dev" } else { "prod" },
            path
        ));
        s.push_str(&format!("{:<9} {}\n", "", f.summary));
        if !f.workspaces.is_empty() && f.workspaces != ["."] {
            s.push_str(&format!(
                "{:<9} pulled in by workspace{} {}\n",
                "",
                if f.workspaces.len() == 1 { "" } else { "s" },
                f.workspaces.join(", ")
            ));
        }
    }
    s.push_str(&format!(
        "{} finding{} in {} packages ({})\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        project.packages.len(),
        project.lockfile.display()
    ));
    s
}

fn security_severity(s: Severity) -> &'static str {
    // GitHub code scanning reads `security-severity` as a CVSS-like number.
    match s {
        Severity::Critical => "9.5",
        Severity::High => "7.5",
        Severity::Moderate => "5.0",
        Severity::Low => "2.0",
        Severity::Unknown => "5.0",
    }
}

/// The line of the lockfile where the package is declared (1 when it cannot be found).
fn line_of(lockfile_text: &str, name: &str) -> usize {
    let needles = [format!("\"node_modules/{name}\""), format!("\"{name}\":"), format!("{name}@")];
    for n in &needles {
        if let Some(pos) = lockfile_text.find(n.as_str()) {
            return 1 + lockfile_text[..pos].bytes().filter(|&b| b == b'\n').count();
        }
    }
    1
}

/// SARIF 2.1.0 for GitHub code scanning: one rule per advisory, one result per finding, located
/// at the package's line in the lockfile.
pub fn to_sarif(project: &Project, findings: &[Finding], lockfile_text: &str, uri: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    for f in findings {
        if rules.iter().any(|r| r["id"] == f.id.as_str()) {
            continue;
        }
        rules.push(json!({
            "id": f.id,
            "name": f.id.replace('-', ""),
            "shortDescription": { "text": if f.summary.is_empty() { f.id.clone() } else { f.summary.clone() } },
            "helpUri": format!("https://osv.dev/vulnerability/{}", f.id),
            "help": { "text": format!("{} {} is affected by {}{}. {}", f.package, f.version, f.id,
                if f.aliases.is_empty() { String::new() } else { format!(" ({})", f.aliases.join(", ")) },
                match &f.fixed { Some(v) => format!("Upgrade to {v} or later."), None => "No fixed version is known.".to_owned() }) },
            "properties": { "security-severity": f.cvss_score.filter(|_| !f.malicious).map(|c| format!("{c:.1}")).unwrap_or_else(|| security_severity(f.severity).to_owned()), "tags": ["security", "dependency", project.ecosystem] },
        }));
    }
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let level = match f.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Moderate | Severity::Unknown => "warning",
                Severity::Low => "note",
            };
            json!({
                "ruleId": f.id,
                "level": level,
                "message": { "text": format!("{} {} ({}): {}{}", f.package, f.version,
                    f.paths.first().map(|p| p.join(" > ")).unwrap_or_default(), f.summary,
                    f.fixed.as_ref().map(|v| format!(" Fixed in {v}.")).unwrap_or_default()) },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": uri },
                    "region": { "startLine": line_of(lockfile_text, &f.package) },
                }}],
                "partialFingerprints": { "kevlar/v1": format!("{}@{}:{}", f.package, f.version, f.id) },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "kevlar", "informationUri": "https://github.com/kevlar", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "results": results,
        }],
    })
}

/// A Markdown report (a pull-request comment, a CI summary).
pub fn to_markdown(project: &Project, findings: &[Finding]) -> String {
    let mut s = format!("## Kevlar audit: `{}`\n\n", project.lockfile.display());
    if findings.is_empty() {
        s.push_str(&format!("No known vulnerabilities in {} packages.\n", project.packages.len()));
        return s;
    }
    s.push_str("| Severity | Package | Version | Advisory | Fixed in | Dependency path |\n|---|---|---|---|---|---|\n");
    let esc = |t: &str| t.replace('|', "\\|");
    for f in findings {
        let label = if f.malicious { "**MALWARE**".to_owned() } else { f.severity.as_str().to_owned() };
        s.push_str(&format!(
            "| {} | `{}` | {} | [{}](https://osv.dev/vulnerability/{}) {} | {} | {}{} |\n",
            label,
            esc(&f.package),
            esc(&f.version),
            esc(&f.id),
            esc(&f.id),
            esc(&f.summary),
            f.fixed.as_deref().unwrap_or("—"),
            esc(&f.paths.first().map(|p| p.join(" › ")).unwrap_or_default()),
            if f.dev { " (dev)" } else { "" }
        ));
    }
    s.push_str(&format!(
        "\n{} finding{} in {} packages.\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        project.packages.len()
    ));
    s
}

/// The runtime report for people: the line's status, then each known core vulnerability.
pub fn runtime_text(r: &RuntimeReport) -> String {
    let mut s = String::new();
    let line = r.line.as_deref().unwrap_or("?");
    let end = r.end_of_life.as_deref().unwrap_or("?");
    s.push_str(&match r.status {
        LineStatus::EndOfLife => format!(
            "Node.js {} ({line}) reached end of life on {end}: no more security fixes. Move to {}.\n",
            r.version,
            r.move_to.as_deref().unwrap_or("a supported line")
        ),
        LineStatus::Unknown => format!("Node.js {}: release line not in the schedule\n", r.version),
        st => format!("Node.js {} ({line}, {}; end of life {end})\n", r.version, st.as_str()),
    });
    if r.vulnerabilities.is_empty() {
        s.push_str("no known Node.js core vulnerabilities for this version\n");
        return s;
    }
    let n = r.vulnerabilities.len();
    s.push_str(&format!("{n} known Node.js core vulnerabilit{}:\n", if n == 1 { "y" } else { "ies" }));
    for v in &r.vulnerabilities {
        let overview: String = v.overview.chars().take(110).collect();
        s.push_str(&format!(
            "  {:<8} {:<18} fixed in {:<10} {}\n",
            v.severity.to_uppercase(),
            v.cves.join(", "),
            v.fixed.as_deref().unwrap_or("a newer line"),
            overview
        ));
    }
    s
}
