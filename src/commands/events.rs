//! `kevlar events`: read the event store, as a table or one JSON event per line.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use kevlar_store::{EventQuery, Reader, StoredEvent};
use serde_json::Value;

use crate::cli::EventsArgs;

fn since_ms(s: &str) -> Option<i64> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Some(kevlar_core::time::now_ms() - d.as_millis().min(i64::MAX as u128) as i64);
    }
    kevlar_core::time::parse_rfc3339_ms(s)
}

fn text(v: &Value, path: &[&str], max: usize) -> String {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    super::shown(cur, max)
}

fn print(out: &mut impl Write, e: &StoredEvent, json: bool) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", e.doc)
    } else {
        let d = &e.doc;
        writeln!(
            out,
            "{:<24} {:<8} {:<26} {:<16} {:<16} {}",
            text(d, &["@timestamp"], 32),
            text(d, &["log", "level"], 16),
            text(d, &["event", "action"], 64),
            text(d, &["source", "ip"], 45),
            text(d, &["user", "name"], 64),
            text(d, &["message"], 400)
        )
    }
}

/// `--explain ID`: each event of that id (or request id) in full, in words.
fn explain(a: &EventsArgs, id: &str) -> anyhow::Result<ExitCode> {
    if !kevlar_core::event::is_valid_event_id(id) {
        bail!("--explain {id:?}: an event id or request id is letters, digits and - _ . :");
    }
    let reader = Reader::open(&a.data_dir).context("cannot open the event store")?;
    let events = reader.find(id)?;
    if events.is_empty() {
        eprintln!("kevlar: no event with event.id or request id {id:?} in {}", a.data_dir.display());
        return Ok(ExitCode::from(1));
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for e in &events {
        if a.json {
            writeln!(out, "{}", e.doc)?;
        } else {
            writeln!(out, "{}", explanation(&e.doc))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One event in words: what, the request, the finding and how it was reached, and what to write
/// if it was legitimate.
pub(crate) fn explanation(d: &Value) -> String {
    let t = |path: &[&str], max: usize| text(d, path, max);
    let k = &d["kevlar"];
    let mut out = format!(
        "event    {}  {}  {}\n         {}\n",
        t(&["event", "id"], 128),
        t(&["@timestamp"], 32),
        t(&["event", "action"], 64),
        t(&["message"], 400)
    );
    let query =
        d["url"]["query"].as_str().map(|q| format!("?{}", super::shown(&Value::from(q), 400))).unwrap_or_default();
    out += &format!(
        "request  {} {}{query}  from {}  request id {}",
        t(&["http", "request", "method"], 16),
        t(&["url", "path"], 400),
        t(&["source", "ip"], 45),
        t(&["http", "request", "id"], 128),
    );
    if let Some(s) = d["http"]["response"]["status_code"].as_u64() {
        out += &format!("  answered {s}");
    }
    out.push('\n');
    let Some(family) = k["family"].as_str() else {
        return out;
    };
    let rule = super::shown(&k["rule"], 64);
    let location = super::shown(&k["location"], 200);
    out += &format!(
        "finding  {family}/{rule} in {location}, score {} of 10, mode {}{}\n",
        k["score"],
        super::shown(&k["mode"], 16),
        if k["blocked"] == true { ", blocked" } else { "" }
    );
    if k["excerpt"].is_string() {
        out += &format!("value    {}  (as the app reads it, decoded)\n", super::shown(&k["excerpt"], 200));
    }
    let layers: Vec<String> = k["decoding"].as_array().into_iter().flatten().map(|l| super::shown(l, 32)).collect();
    out += &format!(
        "decoding {}\n",
        if layers.is_empty() { "none: the value matched as sent".to_owned() } else { layers.join(" → ") }
    );
    if k["reading"].is_string() {
        out += &format!("reading  {}\n", super::shown(&k["reading"], 400));
    }
    for f in k["findings"].as_array().into_iter().flatten().skip(1) {
        out += &format!(
            "also     {}/{} in {} (score {})\n",
            super::shown(&f["family"], 32),
            super::shown(&f["rule"], 64),
            super::shown(&f["location"], 200),
            f["score"]
        );
    }
    // What would silence it: the path, the family, the argument.
    let arg = location.strip_prefix("args.").or_else(|| location.strip_prefix("body.")).unwrap_or(&location);
    let path = d["url"]["path"].as_str().map(|p| super::shown(&Value::from(p), 400));
    out += "if it was legitimate, this in kevlar.toml stops it:\n  [[detect.exclude]]\n";
    if let Some(p) = path {
        out += &format!("  path = {:?}\n", p);
    }
    out += &format!("  families = [{family:?}]\n");
    if location != "path" {
        out += &format!("  args = [{arg:?}]\n");
    }
    out
}

pub fn run(a: EventsArgs) -> anyhow::Result<ExitCode> {
    if let Some(id) = &a.explain {
        return explain(&a, id);
    }
    let since = match &a.since {
        None => None,
        Some(s) => match since_ms(s) {
            Some(ms) => Some(ms),
            None => bail!("--since {s:?}: use a duration (1h, 30m, 7d) or an RFC 3339 time"),
        },
    };
    if let Some(ip) = &a.ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            bail!("--ip {ip:?} is not an IP address");
        }
    }
    let reader = Reader::open(&a.data_dir).context("cannot open the event store")?;
    let mut q = EventQuery {
        since_ms: since,
        action: a.action.clone(),
        ip: a.ip.clone(),
        after_id: None,
        limit: Some(a.limit),
        ..Default::default()
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if !a.json {
        writeln!(out, "{:<24} {:<8} {:<26} {:<16} {:<16} MESSAGE", "TIME", "LEVEL", "ACTION", "SOURCE", "USER")?;
    }
    let mut last = 0;
    loop {
        let events = reader.query(&q)?;
        for e in &events {
            if print(&mut out, e, a.json).is_err() {
                // The reader went away (a closed pipe): stop quietly.
                return Ok(ExitCode::SUCCESS);
            }
            last = last.max(e.id);
        }
        let _ = out.flush();
        if !a.follow {
            return Ok(ExitCode::SUCCESS);
        }
        q.after_id = Some(last);
        q.limit = Some(10_000);
        std::thread::sleep(Duration::from_millis(250));
    }
}
