//! `kevlar blackbook list|show|ban|unban` and `kevlar routes`: through the running Kevlar's admin
//! API, or straight from `<data-dir>/shield.db` when Kevlar is not running.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{json, Value};

use crate::cli::{BlackbookCommand, ControlArgs};
use crate::commands::control::{call_with, running};
use kevlar_shield::routes::RouteView;
use kevlar_shield::BookRecord;

use super::{text, typed};

fn encode(addr: &str) -> String {
    addr.replace('/', "%2F")
}

fn fail(v: &Value) -> String {
    v["error"].as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn counts(r: &BookRecord) -> String {
    let mut c: Vec<(String, u64)> = r
        .counts
        .iter()
        .filter(|(k, _)| !k.starts_with("family:"))
        .map(|(k, n)| (kevlar_core::text::printable(k, 64).into_owned(), *n))
        .collect();
    c.sort_by_key(|x| std::cmp::Reverse(x.1));
    c.iter().take(3).map(|(k, n)| format!("{k}×{n}")).collect::<Vec<_>>().join(" ")
}

fn ban_text(r: &BookRecord) -> String {
    let Some(b) = r.ban.as_ref().filter(|_| r.banned) else { return "-".into() };
    let until = b.until.as_deref().unwrap_or("until lifted");
    let enforced = if b.enforced { "" } else { " (not enforced)" };
    format!("{until}{enforced}")
}

fn print_list(records: &[BookRecord]) {
    if records.is_empty() {
        println!("the black book is empty");
        return;
    }
    println!("{:<28} {:<25} {:>6}  {:<32} BANNED UNTIL", "ADDRESS", "LAST SEEN", "SCORE", "EVENTS");
    for r in records {
        println!("{:<28} {:<25} {:>6}  {:<32} {}", r.address, r.last_seen, r.score, counts(r), ban_text(r));
    }
}

fn print_record(r: &BookRecord) {
    println!("address     {}", r.address);
    println!("first seen  {}", r.first_seen);
    println!("last seen   {}", r.last_seen);
    println!("score       {}", r.score);
    println!("banned      {}", ban_text(r));
    println!("counts:");
    for (k, n) in &r.counts {
        println!("  {:<32} {n}", kevlar_core::text::printable(k, 64));
    }
    println!("samples:");
    for s in &r.samples {
        println!(
            "  {} {} {} {} {} {}",
            text(Some(&s.timestamp), 32),
            text(Some(&s.action), 64),
            text(s.family.as_deref(), 32),
            text(s.method.as_deref(), 16),
            text(s.path.as_deref(), 200),
            match &s.excerpt {
                Some(e) => format!("[{}] {}", text(s.location.as_deref(), 100), text(Some(e), 200)),
                None => String::new(),
            }
        );
    }
    println!("ban history:");
    for b in &r.ban_history {
        println!(
            "  {} → {}  {}  ({}{})",
            b.since,
            b.until.as_deref().unwrap_or("until lifted"),
            text(Some(&b.reason), 200),
            text(Some(&b.source), 32),
            if b.enforced { "" } else { ", not enforced" }
        );
    }
}

pub fn run(cmd: BlackbookCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BlackbookCommand::List { banned, limit, control } => list(banned, limit, &control),
        BlackbookCommand::Show { addr, control } => show(&addr, &control),
        BlackbookCommand::Ban { addr, duration, reason, control } => ban(&addr, duration, reason, &control),
        BlackbookCommand::Unban { addr, control } => unban(&addr, &control),
    }
}

/// `kevlar blackbook list`: from the running Kevlar, else from the store.
fn list(banned: bool, limit: usize, control: &ControlArgs) -> anyhow::Result<ExitCode> {
    let records = if running(control) {
        let (code, v) =
            call_with(control, http::Method::GET, &format!("/v1/blackbook?limit={limit}&banned={banned}"), None)?;
        if code != 200 {
            bail!("admin API answered {code}: {}", fail(&v));
        }
        typed::<Vec<BookRecord>>(v["records"].clone(), "black-book list")?
    } else {
        kevlar_shield::offline_list(&control.data_dir, limit, banned)?
    };
    if control.json {
        println!("{}", json!({ "records": records }));
    } else {
        print_list(&records);
    }
    Ok(ExitCode::SUCCESS)
}

/// `kevlar blackbook show ADDR`: exit 1 when the address has no record.
fn show(addr: &str, control: &ControlArgs) -> anyhow::Result<ExitCode> {
    let rec = if running(control) {
        let (code, v) = call_with(control, http::Method::GET, &format!("/v1/blackbook/{}", encode(addr)), None)?;
        match code {
            200 => Some(typed::<BookRecord>(v, "black-book record")?),
            404 => None,
            _ => bail!("{}", fail(&v)),
        }
    } else {
        kevlar_shield::offline_show(&control.data_dir, addr)?
    };
    match rec {
        Some(r) if control.json => println!("{}", json!(r)),
        Some(r) => print_record(&r),
        None => {
            eprintln!("kevlar: {addr} is not in the black book");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kevlar blackbook ban ADDR [--for D] [--reason R]`: at once when Kevlar runs, else from its
/// next start.
fn ban(
    addr: &str,
    duration: Option<String>,
    reason: Option<String>,
    control: &ControlArgs,
) -> anyhow::Result<ExitCode> {
    let dur = match duration.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            bail!("--for: `{}` is not a duration (examples: 1h, 30m, 7d)", duration.unwrap_or_default())
        }
    };
    let rec = if running(control) {
        let body = json!({ "for": duration, "reason": reason });
        let (code, v) =
            call_with(control, http::Method::POST, &format!("/v1/blackbook/{}/ban", encode(addr)), Some(body))?;
        if code != 200 {
            bail!("{}", fail(&v));
        }
        typed::<BookRecord>(v, "black-book record")?
    } else {
        kevlar_shield::offline_ban(&control.data_dir, addr, dur, reason)?
    };
    if control.json {
        println!("{}", json!(rec));
    } else {
        let until = rec.ban.as_ref().and_then(|b| b.until.as_deref()).unwrap_or("lifted");
        println!("banned {} until {until}", rec.address);
    }
    Ok(ExitCode::SUCCESS)
}

/// `kevlar blackbook unban ADDR`: exit 1 when it was not banned.
fn unban(addr: &str, control: &ControlArgs) -> anyhow::Result<ExitCode> {
    let removed = if running(control) {
        let (code, v) = call_with(control, http::Method::DELETE, &format!("/v1/blackbook/{}/ban", encode(addr)), None)?;
        match code {
            200 => true,
            404 => false,
            _ => bail!("{}", fail(&v)),
        }
    } else {
        kevlar_shield::offline_unban(&control.data_dir, addr)?
    };
    if removed {
        println!("unbanned {addr}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("kevlar: {addr} is not banned");
        Ok(ExitCode::from(1))
    }
}

pub fn routes(control: ControlArgs) -> anyhow::Result<ExitCode> {
    let routes = if running(&control) {
        let (code, v) = call_with(&control, http::Method::GET, "/v1/routes", None)?;
        if code != 200 {
            bail!("admin API answered {code}: {}", fail(&v));
        }
        typed::<Vec<RouteView>>(v["routes"].clone(), "route inventory")?
    } else {
        kevlar_shield::offline_routes(&control.data_dir, std::time::Duration::from_secs(30 * 86400))?
    };
    if control.json {
        println!("{}", json!({ "routes": routes }));
        return Ok(ExitCode::SUCCESS);
    }
    if routes.is_empty() {
        println!("no routes learned yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<7} {:<40} {:>7} {:<24} {:<25} FLAGS", "METHOD", "ROUTE", "HITS", "STATUSES", "LAST SEEN");
    for r in routes {
        let statuses = r
            .statuses
            .iter()
            .map(|(k, v)| format!("{}×{v}", kevlar_core::text::printable(k, 8)))
            .collect::<Vec<_>>()
            .join(" ");
        let mut flags = Vec::new();
        if r.probe_only {
            flags.push("probe-only".to_owned());
        }
        if r.stale {
            flags.push("stale".to_owned());
        }
        if let Some(why) = &r.login {
            flags.push(format!("login ({})", kevlar_core::text::printable(why, 80)));
        }
        println!(
            "{:<7} {:<40} {:>7} {:<24} {:<25} {}",
            text(Some(&r.method), 16),
            text(Some(&r.route), 200),
            r.hits,
            statuses,
            r.last_seen,
            flags.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}
