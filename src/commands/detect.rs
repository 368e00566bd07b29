//! `kevlar detect`: the built-in detectors on values or requests, without a running proxy.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use http::{HeaderMap, HeaderName, HeaderValue};
use kevlar_detect::{Detector, Finding, Inspector, RequestView};
use serde_json::{json, Value};

use crate::cli::DetectArgs;

/// One request to judge, owned.
struct Request {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Request {
    fn get(path: &str, query: Option<String>) -> Request {
        Request { method: "GET".into(), path: path.into(), query, headers: HeaderMap::new(), body: Vec::new() }
    }

    fn post(content_type: &'static str, body: Vec<u8>) -> Request {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Request { method: "POST".into(), path: "/".into(), query: None, headers, body }
    }

    fn findings(&self, inspector: &Inspector) -> Vec<Finding> {
        let view = RequestView {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: &self.body,
            body_complete: true,
        };
        let mut out = Vec::new();
        inspector.inspect(&view, &mut out);
        out
    }
}

/// Percent-encodes everything but unreserved characters (as a browser's form encoder would).
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value in one placement; `None` when it cannot be sent there (a header with a line break).
fn placed(place: &str, v: &str) -> Option<Request> {
    Some(match place {
        "query" => Request::get("/", Some(format!("q={}", encode(v)))),
        "form" => Request::post("application/x-www-form-urlencoded", format!("q={}", encode(v)).into_bytes()),
        "json" => Request::post("application/json", json!({ "q": v }).to_string().into_bytes()),
        "path" => Request::get(&if v.starts_with('/') { v.to_owned() } else { format!("/{v}") }, None),
        "header" | "cookie" => {
            let (name, value) = match place {
                "header" => (http::header::USER_AGENT, HeaderValue::from_str(v).ok()?),
                _ => (http::header::COOKIE, HeaderValue::from_str(&format!("q={v}")).ok()?),
            };
            let mut r = Request::get("/", None);
            r.headers.insert(name, value);
            r
        }
        _ => return None,
    })
}

/// A request written as a JSON object.
fn request_of(o: &serde_json::Map<String, Value>) -> Result<Request, String> {
    let text = |k: &str| o.get(k).and_then(Value::as_str);
    let mut r = Request::get(text("path").unwrap_or("/"), text("query").map(str::to_owned));
    r.method = text("method").unwrap_or(if o.contains_key("body") { "POST" } else { "GET" }).to_owned();
    if let Some(h) = o.get("headers") {
        let Some(h) = h.as_object() else { return Err("`headers` must be an object of strings".into()) };
        for (k, v) in h {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("`{k}` is not a header name"))?;
            let v = v.as_str().ok_or_else(|| format!("header `{k}` must be a string"))?;
            let value =
                HeaderValue::from_str(v).map_err(|_| format!("header `{k}` holds a character headers cannot"))?;
            r.headers.append(name, value);
        }
    }
    if let Some(b) = o.get("body") {
        r.body = match b {
            Value::String(s) => s.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        };
    }
    Ok(r)
}

fn finding_json(place: &str, f: &Finding) -> Value {
    json!({
        "placement": place,
        "family": f.family.as_str(),
        "rule": f.rule,
        "location": f.location,
        "score": f.score,
        "excerpt": f.excerpt,
        "decoding": f.layers,
        "reading": f.detail,
    })
}

fn finding_text(place: &str, f: &Finding) -> String {
    let mut line = format!("  {place:<7} {}/{} in {} (score {})", f.family.as_str(), f.rule, f.location, f.score);
    if !f.layers.is_empty() {
        line.push_str(&format!("; decoded: {}", f.layers.join(" → ")));
    }
    if !f.detail.is_empty() {
        line.push_str(&format!("; reading {}", kevlar_core::text::printable(&f.detail, 300)));
    }
    line
}

/// What one input is: the placements of a value, or one request.
fn judge(inspector: &Inspector, input: &Input, places: &[&str]) -> Result<Vec<(String, Finding)>, String> {
    let mut out = Vec::new();
    match input {
        Input::Value(v) => {
            for p in places {
                if let Some(r) = placed(p, v) {
                    out.extend(r.findings(inspector).into_iter().map(|f| ((*p).to_owned(), f)));
                }
            }
        }
        Input::Request(o) => {
            let r = request_of(o)?;
            out.extend(r.findings(inspector).into_iter().map(|f| ("request".to_owned(), f)));
        }
    }
    Ok(out)
}

enum Input {
    Value(String),
    Request(serde_json::Map<String, Value>),
}

fn input_of_line(line: &str) -> Input {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::String(s)) => Input::Value(s),
        Ok(Value::Object(o)) => Input::Request(o),
        _ => Input::Value(line.to_owned()),
    }
}

pub fn run(a: DetectArgs) -> anyhow::Result<ExitCode> {
    let file = super::serve::config_file(a.config.as_deref());
    let cfg = match &file {
        Some(f) => kevlar_config::load_file(f, &Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => kevlar_config::defaults_with(&Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let (inspector, _) = kevlar_shield::inspector(&cfg.detect);
    let mut places: Vec<&str> = Vec::new();
    for p in &a.places {
        let add = if p == "all" { vec!["query", "form", "json"] } else { vec![p.as_str()] };
        for p in add {
            if !places.contains(&p) {
                places.push(p);
            }
        }
    }
    let mut inputs: Vec<(String, Input)> = a.values.iter().map(|v| (v.clone(), Input::Value(v.clone()))).collect();
    if let Some(path) = &a.file {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            Box::new(std::io::BufReader::new(f))
        };
        for (i, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            inputs.push((format!("line {}", i + 1), input_of_line(&line)));
        }
    }
    if inputs.is_empty() {
        bail!("nothing to judge: give values as arguments or --file FILE");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut flagged, mut errors) = (0usize, 0usize);
    for (label, input) in &inputs {
        let shown = match input {
            Input::Value(v) => kevlar_core::text::printable(v, 200).into_owned(),
            Input::Request(_) => label.clone(),
        };
        let found = match judge(&inspector, input, &places) {
            Ok(f) => f,
            Err(e) => {
                errors += 1;
                if a.json {
                    writeln!(out, "{}", json!({ "input": shown, "error": e }))?;
                } else {
                    writeln!(out, "{shown}\n  error: {e}")?;
                }
                continue;
            }
        };
        if !found.is_empty() {
            flagged += 1;
        }
        if a.json {
            let list: Vec<Value> = found.iter().map(|(p, f)| finding_json(p, f)).collect();
            writeln!(out, "{}", json!({ "input": shown, "findings": list }))?;
        } else {
            writeln!(out, "{shown}")?;
            if found.is_empty() {
                writeln!(out, "  nothing found")?;
            }
            for (p, f) in &found {
                writeln!(out, "{}", finding_text(p, f))?;
            }
        }
    }
    if !a.json {
        writeln!(out, "{} of {} flagged", flagged, inputs.len())?;
    }
    Ok(ExitCode::from(if errors > 0 {
        2
    } else if flagged > 0 {
        1
    } else {
        0
    }))
}
