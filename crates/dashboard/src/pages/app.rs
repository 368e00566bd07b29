//! `/app`: the supervised app's instances and the last crash, with reload and restart;
//! `/alerts`: the sinks, their health, queues and dead letters (with retry); `/dependencies`:
//! the last audit of the running app's lockfile and the runtime report.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use kevlar_core::action;
use kevlar_store::EventQuery;
use maud::html;
use serde_json::Value;

use super::events::read;
use super::{csrf, error, event_table, facts, layout};
use crate::format::{ago, field, time};
use crate::session::Session;
use crate::St;

async fn newest(d: &crate::Dash, action: &'static str, n: usize) -> Result<Vec<(i64, Value)>, Response> {
    let q = EventQuery { action: Some(action.into()), limit: Some(n), ..Default::default() };
    read(d, move |r| r.query(&q)).await.map(|e| e.into_iter().map(|e| (e.id, e.doc)).collect())
}

pub async fn page(State(d): St, Extension(s): Extension<Session>) -> Response {
    let status = (d.admin.status)();
    let app = &status["app"];
    let crash = match newest(&d, action::SYS_CRASH, 1).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let restarts = match newest(&d, action::SYS_RESTART, 10).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    layout(
        "App",
        "/app",
        &s,
        html! {
            @if d.admin.app.is_none() {
                p { "Kevlar runs as " code { "kevlar guard" } ": it does not supervise the app (upstream " (status["upstream"]) ")." }
            } @else {
                p { "State: " strong { (field(app, "state")) } }
                table {
                    thead { tr { th { "Instance" } th { "State" } th { "Health" } th { "Pid" } th { "Port" } th { "Uptime" } th { "Restarts" } th { "Last exit" } } }
                    tbody {
                        @for i in app["instances"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                            tr {
                                td { (field(i, "slot")) } td { (field(i, "state")) } td { (field(i, "health")) } td { (field(i, "pid")) }
                                td { (field(i, "port")) } td { @if let Some(ms) = i["uptime_ms"].as_i64() { (ago(ms)) } }
                                td { (field(i, "restarts")) } td { (field(i, "last_exit")) }
                            }
                        }
                    }
                }
                div.actions {
                    form method="post" action="/app/reload" { (csrf(&s)) button type="submit" { "Reload" } }
                    form method="post" action="/app/restart" { (csrf(&s)) button type="submit" { "Restart" } }
                }
            }
            h2 { "Last crash" }
            @match crash.last() {
                None => p.empty { "No crash recorded." },
                Some((id, doc)) => {
                    p { a href={ "/events/" (id) } { (time(&field(doc, "@timestamp"))) } ": " (field(doc, "message")) }
                    @let tail = field(doc, "kevlar.stderr_tail");
                    @if !tail.is_empty() { h3 { "Its stderr, last lines" } pre.stderr { (tail) } }
                }
            }
            h2 { "Recent restarts" }
            (event_table(&restarts, None))
        },
    )
}

async fn control(d: &crate::Dash, restart: bool) -> Response {
    let Some(app) = d.admin.app.clone() else {
        return error(StatusCode::CONFLICT, "no supervised app: Kevlar runs as `kevlar guard`");
    };
    let (change, res) = if restart { ("restart", app.restart().await) } else { ("reload", app.reload().await) };
    match res {
        Ok(()) => {
            crate::report_change(d, change, format!("dashboard: app {change}"), None);
            Redirect::to("/app").into_response()
        }
        Err(e) => error(StatusCode::CONFLICT, &e.to_string()),
    }
}

pub async fn reload(State(d): St, Extension(_s): Extension<Session>) -> Response {
    control(&d, false).await
}

pub async fn restart(State(d): St, Extension(_s): Extension<Session>) -> Response {
    control(&d, true).await
}

pub async fn alerts(State(d): St, Extension(s): Extension<Session>) -> Response {
    let Some(a) = d.admin.alerts.clone() else {
        return layout(
            "Alerts",
            "/alerts",
            &s,
            html! { p.empty { "No alert sink is configured (" code { "[[alerts.sink]]" } " in kevlar.toml)." } },
        );
    };
    let res = tokio::task::spawn_blocking(move || a.dead(200).map(|dead| (a.status(), dead))).await;
    let (status, dead) = match res {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, &kevlar_core::error::chain(&e)),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the outbox could not be read"),
    };
    layout(
        "Alerts",
        "/alerts",
        &s,
        html! {
            table {
                thead { tr { th { "Sink" } th { "Type" } th { "Health" } th { "Since" } th { "Delivered" } th { "Pending" } th { "Held" } th { "Dead" } th { "Last error" } } }
                tbody {
                    @for k in &status.sinks {
                        tr {
                            td { (k.name) } td { (k.kind) }
                            td class={ "h-" (k.state) } { (k.state) }
                            td { (k.since.as_deref().map(time).unwrap_or_default()) } td { (k.delivered.unwrap_or(0)) } td { (k.pending) }
                            td { (k.held) } td { (k.dead) } td { (k.last_error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            h2 { "Dead letters (" (dead.len()) ")" }
            @if dead.is_empty() { p.empty { "None: every alert was delivered or is still being tried." } } @else {
                form method="post" action="/alerts/retry" { (csrf(&s)) button type="submit" { "Retry all" } }
                table {
                    thead { tr { th { "Id" } th { "Sink" } th { "Action" } th { "Address" } th { "Attempts" } th { "Created" } th { "Last error" } } }
                    tbody {
                        @for x in &dead {
                            tr {
                                td { (x.id) } td { (x.sink) } td { (x.action) } td { (x.ip.as_deref().unwrap_or("")) }
                                td { (x.attempts) } td { (time(&x.created)) } td { (x.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub async fn retry(State(d): St, Extension(_s): Extension<Session>) -> Response {
    let Some(a) = d.admin.alerts.clone() else { return error(StatusCode::NOT_FOUND, "no alert sink is configured") };
    match tokio::task::spawn_blocking(move || a.retry(None)).await {
        Ok(Ok(n)) => {
            crate::report_change(&d, "retry", format!("dashboard: {n} dead letters retried"), None);
            Redirect::to("/alerts").into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &kevlar_core::error::chain(&e)),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the retry failed"),
    }
}

pub async fn dependencies(State(d): St, Extension(s): Extension<Session>) -> Response {
    let status = (d.admin.status)();
    let audit = &status["audit"];
    let found = match newest(&d, action::VULN_NEW, 100).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let runtime = match read(&d, |r| {
        let mut v = r.query(&EventQuery {
            action: Some(action::RUNTIME_VULNERABLE.into()),
            limit: Some(5),
            ..Default::default()
        })?;
        v.extend(r.query(&EventQuery {
            action: Some(action::RUNTIME_EOL.into()),
            limit: Some(5),
            ..Default::default()
        })?);
        Ok(v)
    })
    .await
    {
        Ok(v) => v.into_iter().map(|e| (e.id, e.doc)).collect::<Vec<_>>(),
        Err(r) => return r,
    };
    layout(
        "Dependencies",
        "/dependencies",
        &s,
        html! {
            @if audit.is_null() {
                p.empty { "No audit of the running app yet: " code { "[audit] watch" } " audits the deployed lockfile (" code { "kevlar audit" } " from the command line)." }
            } @else {
                (facts(audit, &[("lockfile", "Lockfile"), ("packages", "Packages"), ("findings", "Open findings"), ("ignored", "Ignored"),
                    ("last_audit", "Last audit"), ("database", "Advisory database"), ("database_updated", "Database updated")]))
                @if !audit["runtime"].is_null() {
                    h2 { "Runtime" }
                    (facts(&audit["runtime"], &[("version", "Node.js"), ("status", "Status"), ("vulnerabilities", "Vulnerabilities")]))
                }
            }
            h2 { "New findings reported" }
            (event_table(&found, None))
            h2 { "Runtime reports" }
            (event_table(&runtime, None))
        },
    )
}
