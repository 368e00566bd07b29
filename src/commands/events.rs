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

pub fn run(a: EventsArgs) -> anyhow::Result<ExitCode> {
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
