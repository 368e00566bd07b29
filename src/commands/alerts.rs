//! `kevlar alerts [retry IDS|--all] [test]`: the alert sinks' health and the outbox, through the
//! running Kevlar's admin API, or straight from `<data-dir>/outbox.db` when Kevlar is not running.

use kevlar_core::action;
use std::process::ExitCode;

use anyhow::bail;
use serde_json::{json, Value};

use crate::cli::{AlertsCommand, ControlArgs};
use crate::commands::control::{call_with, running};

fn fail(v: &Value) -> String {
    v["error"].as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn print(v: &Value) {
    let sinks = v["sinks"].as_array().cloned().unwrap_or_default();
    if sinks.is_empty() {
        println!("no alert sink is configured ([[alerts.sink]] in kevlar.toml)");
    } else {
        println!(
            "{:<16} {:<9} {:<8} {:>9} {:>8} {:>6} {:>6}  LAST ERROR",
            "SINK", "TYPE", "STATE", "DELIVERED", "PENDING", "HELD", "DEAD"
        );
        for s in &sinks {
            println!(
                "{:<16} {:<9} {:<8} {:>9} {:>8} {:>6} {:>6}  {}",
                text(&s["name"]),
                text(&s["type"]),
                text(&s["state"]),
                s["delivered"].as_u64().map_or("-".into(), |n| n.to_string()),
                s["pending"],
                s["held"],
                s["dead"],
                s["last_error"]
                    .as_str()
                    .map(|e| format!("{} ({})", kevlar_core::text::printable(e, 300), text(&s["last_error_at"])))
                    .unwrap_or_default()
            );
        }
        for s in &sinks {
            if let Some(n) = s["refused"].as_u64().filter(|n| *n > 0) {
                println!("{}: {n} deliveries refused, its queue was full (alerts.max_pending)", text(&s["name"]));
            }
        }
    }
    let dead = v["dead"].as_array().cloned().unwrap_or_default();
    if !dead.is_empty() {
        println!("\ndead letters (`kevlar alerts retry ID…` or `--all` puts them back):");
        println!("{:>8} {:<16} {:<26} {:<24} {:>8}  LAST ERROR", "ID", "SINK", "CREATED", "ACTION", "ATTEMPTS");
        for d in &dead {
            println!(
                "{:>8} {:<16} {:<26} {:<24} {:>8}  {}",
                d["id"],
                text(&d["sink"]),
                text(&d["created"]),
                text(&d["action"]),
                d["attempts"],
                super::shown(&d["last_error"], 300)
            );
        }
    }
}

pub fn run(command: Option<AlertsCommand>, control: ControlArgs) -> anyhow::Result<ExitCode> {
    match command {
        None => {
            let v = if running(&control) {
                let (code, v) = call_with(&control, http::Method::GET, "/v1/alerts", None)?;
                if code == 404 {
                    println!("{}", fail(&v));
                    return Ok(ExitCode::SUCCESS);
                }
                if code != 200 {
                    bail!("admin API answered {code}: {}", fail(&v));
                }
                v
            } else {
                match kevlar_sinks::dispatch::offline_status(&control.data_dir)? {
                    None => json!({ "sinks": [], "dead": [] }),
                    Some((counts, dead)) => json!({
                        "sinks": counts.iter().map(|(name, c)| json!({
                            "name": name, "type": "-", "state": "stopped",
                            "pending": c.pending, "held": c.held, "dead": c.dead,
                        })).collect::<Vec<_>>(),
                        "dead": dead,
                    }),
                }
            };
            if control.json {
                println!("{v}");
            } else {
                print(&v);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(AlertsCommand::Retry { ids, all, control }) => {
            if ids.is_empty() && !all {
                bail!("name the delivery ids to retry, or --all");
            }
            let n = if running(&control) {
                let body = if all { json!({ "all": true }) } else { json!({ "ids": ids }) };
                let (code, v) = call_with(&control, http::Method::POST, "/v1/alerts/retry", Some(body))?;
                if code != 200 {
                    bail!("admin API answered {code}: {}", fail(&v));
                }
                v["retried"].as_u64().unwrap_or(0) as usize
            } else {
                let ids = if all { None } else { Some(ids.as_slice()) };
                kevlar_sinks::dispatch::offline_retry(&control.data_dir, ids)?
            };
            println!("{n} dead letter(s) back in the queue");
            Ok(if n == 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Some(AlertsCommand::Test { control }) => {
            if !running(&control) {
                bail!("Kevlar is not running with --data-dir {}", control.data_dir.display());
            }
            let ev = json!({
                "event": { "action": action::SYS_ALERT_TEST, "category": "process", "severity": 4, "outcome": "success" },
                "message": "Test alert from `kevlar alerts test`: if you read this, this sink works",
            });
            let (code, v) = call_with(&control, http::Method::POST, "/v1/events", Some(ev))?;
            if code != 201 {
                bail!("admin API answered {code}: {}", fail(&v));
            }
            println!("test event {} sent; `kevlar alerts` shows each sink's delivery", text(&v["event_id"]));
            Ok(ExitCode::SUCCESS)
        }
    }
}
