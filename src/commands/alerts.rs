//! `kevlar alerts [retry IDS|--all] [test]`: the alert sinks' health and the outbox, through the
//! running Kevlar's admin API, or straight from `<data-dir>/outbox.db` when Kevlar is not running.

use kevlar_core::action;
use std::process::ExitCode;

use anyhow::bail;
use serde_json::{json, Value};

use kevlar_sinks::dispatch::{AlertsStatus, SinkStatus};

use super::{text, typed};
use crate::cli::{AlertsCommand, ControlArgs};
use crate::commands::control::{call_with, running};

fn fail(v: &Value) -> String {
    v["error"].as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn print(v: &AlertsStatus) {
    if v.sinks.is_empty() {
        println!("no alert sink is configured ([[alerts.sink]] in kevlar.toml)");
    } else {
        println!(
            "{:<16} {:<9} {:<8} {:>9} {:>8} {:>6} {:>6}  LAST ERROR",
            "SINK", "TYPE", "STATE", "DELIVERED", "PENDING", "HELD", "DEAD"
        );
        for s in &v.sinks {
            println!(
                "{:<16} {:<9} {:<8} {:>9} {:>8} {:>6} {:>6}  {}",
                text(Some(&s.name), 64),
                text(Some(&s.kind), 16),
                text(Some(&s.state), 16),
                s.delivered.map_or("-".into(), |n| n.to_string()),
                s.pending,
                s.held,
                s.dead,
                s.last_error
                    .as_deref()
                    .map(|e| format!(
                        "{} ({})",
                        kevlar_core::text::printable(e, 300),
                        text(s.last_error_at.as_deref(), 40)
                    ))
                    .unwrap_or_default()
            );
        }
        for s in v.sinks.iter().filter(|s| s.refused > 0) {
            println!(
                "{}: {} deliveries refused, its queue was full (alerts.max_pending)",
                text(Some(&s.name), 64),
                s.refused
            );
        }
    }
    let dead = v.dead.as_deref().unwrap_or(&[]);
    if !dead.is_empty() {
        println!("\ndead letters (`kevlar alerts retry ID…` or `--all` puts them back):");
        println!("{:>8} {:<16} {:<26} {:<24} {:>8}  LAST ERROR", "ID", "SINK", "CREATED", "ACTION", "ATTEMPTS");
        for d in dead {
            println!(
                "{:>8} {:<16} {:<26} {:<24} {:>8}  {}",
                d.id,
                text(Some(&d.sink), 64),
                text(Some(&d.created), 40),
                text(Some(&d.action), 64),
                d.attempts,
                text(d.last_error.as_deref(), 300)
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
                typed::<AlertsStatus>(v, "alert status")?
            } else {
                match kevlar_sinks::dispatch::offline_status(&control.data_dir)? {
                    None => AlertsStatus { dead: Some(Vec::new()), ..Default::default() },
                    Some((counts, dead)) => AlertsStatus {
                        sinks: counts
                            .iter()
                            .map(|(name, c)| SinkStatus {
                                name: name.clone(),
                                kind: "-".into(),
                                state: "stopped".into(),
                                pending: c.pending,
                                held: c.held,
                                dead: c.dead,
                                ..Default::default()
                            })
                            .collect(),
                        refused: 0,
                        dead: Some(dead),
                    },
                }
            };
            if control.json {
                println!("{}", json!(v));
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
            println!(
                "test event {} sent; `kevlar alerts` shows each sink's delivery",
                text(v["event_id"].as_str(), 64)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
