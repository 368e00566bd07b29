//! `kevlar blackbook list|show|ban|unban` and `kevlar routes`: through the running Kevlar's admin
//! API, or straight from `<data-dir>/shield.db` when Kevlar is not running.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{json, Value};

use super::shown;
use crate::cli::{BlackbookCommand, ControlArgs};
use crate::commands::control::{call_with, running};

fn encode(addr: &str) -> String {
    addr.replace('/', "%2F")
}

fn fail(v: &Value) -> String {
    v["error"].as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn counts(v: &Value) -> String {
    let mut c: Vec<(String, u64)> = v["counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with("family:"))
                .map(|(k, n)| (kevlar_core::text::printable(k, 64).into_owned(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    c.sort_by_key(|x| std::cmp::Reverse(x.1));
    c.iter().take(3).map(|(k, n)| format!("{k}×{n}")).collect::<Vec<_>>().join(" ")
}

fn ban_text(v: &Value) -> String {
    if v["banned"].as_bool() != Some(true) {
        return "-".into();
    }
    let b = &v["ban"];
    let until = b["until"].as_str().unwrap_or("until lifted");
    let enforced = if b["enforced"].as_bool() == Some(false) { " (not enforced)" } else { "" };
    format!("{until}{enforced}")
}

fn print_list(records: &[Value]) {
    if records.is_empty() {
        println!("the black book is empty");
        return;
    }
    println!("{:<28} {:<25} {:>6}  {:<32} BANNED UNTIL", "ADDRESS", "LAST SEEN", "SCORE", "EVENTS");
    for r in records {
        println!(
            "{:<28} {:<25} {:>6}  {:<32} {}",
            r["address"].as_str().unwrap_or("?"),
            r["last_seen"].as_str().unwrap_or("?"),
            r["score"],
            counts(r),
            ban_text(r)
        );
    }
}

fn print_record(r: &Value) {
    println!("address     {}", r["address"].as_str().unwrap_or("?"));
    println!("first seen  {}", r["first_seen"].as_str().unwrap_or("?"));
    println!("last seen   {}", r["last_seen"].as_str().unwrap_or("?"));
    println!("score       {}", r["score"]);
    println!("banned      {}", ban_text(r));
    println!("counts:");
    for (k, n) in r["counts"].as_object().into_iter().flatten() {
        println!("  {:<32} {n}", kevlar_core::text::printable(k, 64));
    }
    println!("samples:");
    for s in r["samples"].as_array().into_iter().flatten() {
        println!(
            "  {} {} {} {} {} {}",
            shown(&s["@timestamp"], 32),
            shown(&s["action"], 64),
            shown(&s["family"], 32),
            shown(&s["method"], 16),
            shown(&s["path"], 200),
            if s["excerpt"].is_string() {
                format!("[{}] {}", shown(&s["location"], 100), shown(&s["excerpt"], 200))
            } else {
                String::new()
            }
        );
    }
    println!("ban history:");
    for b in r["ban_history"].as_array().into_iter().flatten() {
        println!(
            "  {} → {}  {}  ({}{})",
            b["since"].as_str().unwrap_or("?"),
            b["until"].as_str().unwrap_or("until lifted"),
            shown(&b["reason"], 200),
            shown(&b["source"], 32),
            if b["enforced"].as_bool() == Some(false) { ", not enforced" } else { "" }
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
        v["records"].clone()
    } else {
        kevlar_shield::offline_list(&control.data_dir, limit, banned)?
    };
    if control.json {
        println!("{}", json!({ "records": records }));
    } else {
        print_list(records.as_array().map(Vec::as_slice).unwrap_or(&[]));
    }
    Ok(ExitCode::SUCCESS)
}

/// `kevlar blackbook show ADDR`: exit 1 when the address has no record.
fn show(addr: &str, control: &ControlArgs) -> anyhow::Result<ExitCode> {
    let rec = if running(control) {
        let (code, v) = call_with(control, http::Method::GET, &format!("/v1/blackbook/{}", encode(addr)), None)?;
        match code {
            200 => Some(v),
            404 => None,
            _ => bail!("{}", fail(&v)),
        }
    } else {
        kevlar_shield::offline_show(&control.data_dir, addr)?
    };
    match rec {
        Some(r) if control.json => println!("{r}"),
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
        v
    } else {
        kevlar_shield::offline_ban(&control.data_dir, addr, dur, reason)?
    };
    if control.json {
        println!("{rec}");
    } else {
        println!(
            "banned {} until {}",
            rec["address"].as_str().unwrap_or(addr),
            rec["ban"]["until"].as_str().unwrap_or("lifted")
        );
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
        v["routes"].clone()
    } else {
        kevlar_shield::offline_routes(&control.data_dir, std::time::Duration::from_secs(30 * 86400))?
    };
    if control.json {
        println!("{}", json!({ "routes": routes }));
        return Ok(ExitCode::SUCCESS);
    }
    let rows = routes.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no routes learned yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<7} {:<40} {:>7} {:<24} {:<25} FLAGS", "METHOD", "ROUTE", "HITS", "STATUSES", "LAST SEEN");
    for r in rows {
        let statuses = r["statuses"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{}×{v}", kevlar_core::text::printable(k, 8)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let mut flags = Vec::new();
        if r["probe_only"].as_bool() == Some(true) {
            flags.push("probe-only");
        }
        if r["stale"].as_bool() == Some(true) {
            flags.push("stale");
        }
        let login = r["login"].as_str().map(|why| format!("login ({})", kevlar_core::text::printable(why, 80)));
        if let Some(l) = &login {
            flags.push(l);
        }
        println!(
            "{:<7} {:<40} {:>7} {:<24} {:<25} {}",
            shown(&r["method"], 16),
            shown(&r["route"], 200),
            r["hits"],
            statuses,
            r["last_seen"].as_str().unwrap_or("?"),
            flags.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}
