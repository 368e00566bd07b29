//! `/logins`: the users Kevlar has seen sign in or be attacked, and the site-wide failure rate
//! against its baseline; `/logins/{user}`: one user's logins, networks, new-network logins,
//! lockouts, breached-password uses and account changes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use kevlar_core::action;
use kevlar_store::EventQuery;
use maud::html;
use serde_json::Value;

use super::events::read;
use super::{error, event_table, layout};
use crate::format::{encode, field, ms_time};
use crate::session::Session;
use crate::St;

const HOUR: i64 = 3_600_000;

/// Failures and successes in the last hour, and failures per hour over the last week.
fn rates(buckets: &[kevlar_store::Bucket], now: i64) -> (i64, i64, f64) {
    let mut fail_hour = 0;
    let mut ok_hour = 0;
    let mut fail_week = 0;
    for b in buckets {
        let recent = b.start_ms >= now - HOUR;
        match b.series.as_str() {
            action::AUTHN_LOGIN_FAIL => {
                fail_week += b.n;
                if recent {
                    fail_hour += b.n;
                }
            }
            action::AUTHN_LOGIN_SUCCESS if recent => ok_hour += b.n,
            _ => {}
        }
    }
    (fail_hour, ok_hour, fail_week as f64 / (7.0 * 24.0))
}

pub async fn list(State(d): St, Extension(s): Extension<Session>) -> Response {
    let now = kevlar_core::time::now_ms();
    let got =
        read(&d, move |r| Ok((r.users(500)?, r.series(now - 7 * 24 * HOUR, HOUR)?, r.series(now - HOUR, 60_000)?)))
            .await;
    let (users, week, hour) = match got {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (_, _, baseline) = rates(&week, now);
    let (fail_hour, ok_hour, _) = rates(&hour, now);
    let start = crate::chart::Range::Hour.start(now);
    let failures = crate::chart::line(&hour, start, 60_000, 60, |s| s == action::AUTHN_LOGIN_FAIL);
    let above = baseline > 0.0 && fail_hour as f64 > 3.0 * baseline;
    layout(
        "Logins",
        "/logins",
        &s,
        html! {
            p {
                "Last hour: " strong { (fail_hour) } " failed and " strong { (ok_hour) } " successful logins. "
                "Baseline: " (format!("{baseline:.1}")) " failures an hour over the last 7 days."
                @if above { " " strong.bad { "Failures are above three times the baseline." } }
            }
            (crate::chart::bars("Failed logins, last hour", "fail", &failures, start, 60_000))
            p { a href="/events?action=authn_*" { "All login events" } }
            h2 { "Users" }
            table {
                thead { tr { th { "User" } th { "Events" } th { "Last seen" } } }
                tbody {
                    @for (u, n, last) in &users {
                        tr { td { a href={ "/logins/" (encode(u)) } { (u) } } td { (n) } td { (ms_time(*last)) } }
                    }
                }
            }
            @if users.is_empty() { p.empty { "No login seen yet." } }
        },
    )
}

pub async fn show(State(d): St, Extension(s): Extension<Session>, Path(user): Path<String>) -> Response {
    if user.len() > 256 {
        return error(StatusCode::BAD_REQUEST, "a user name of at most 256 bytes");
    }
    let q = EventQuery { user: Some(user.clone()), limit: Some(500), ..Default::default() };
    let events = match read(&d, move |r| r.query(&q)).await {
        Ok(e) => e.into_iter().map(|e| (e.id, e.doc)).collect::<Vec<(i64, Value)>>(),
        Err(r) => return r,
    };
    let of = |actions: &[&str]| -> Vec<(i64, Value)> {
        events.iter().filter(|(_, d)| actions.contains(&field(d, "event.action").as_str())).cloned().collect()
    };
    let logins = of(&[action::AUTHN_LOGIN_SUCCESS, action::AUTHN_LOGIN_FAIL, action::AUTHN_LOGIN_AMBIGUOUS]);
    let mut networks: Vec<(String, usize)> = Vec::new();
    for (_, doc) in events.iter().filter(|(_, d)| field(d, "event.action") == action::AUTHN_LOGIN_SUCCESS) {
        let ip = field(doc, "source.ip");
        match networks.iter_mut().find(|(n, _)| *n == ip) {
            Some(x) => x.1 += 1,
            None => networks.push((ip, 1)),
        }
    }
    let section = |title: &str, rows: Vec<(i64, Value)>| {
        html! {
            h2 { (title) " (" (rows.len()) ")" }
            @if rows.is_empty() { p.empty { "None." } } @else { (event_table(&rows, None)) }
        }
    };
    layout(
        &format!("Logins of {user}"),
        "/logins",
        &s,
        html! {
            h2 { "Networks seen" }
            @if networks.is_empty() { p.empty { "No successful login yet." } }
            ul { @for (ip, n) in &networks { li { a href={ "/blackbook/" (encode(ip)) } { (ip) } " — " (n) " logins" } } }
            (section("Recent logins", logins.into_iter().rev().take(50).rev().collect()))
            (section("New-network logins", of(&[action::AUTHN_LOGIN_NEW_IP])))
            (section("Lockouts and targeting", of(&[action::AUTHN_LOGIN_FAIL_MAX, action::AUTHN_LOGIN_USER_TARGETED, action::AUTHN_ACCOUNT_TAKEOVER])))
            (section("Breached passwords", of(&[action::AUTHN_PASSWORD_BREACHED])))
            (section("Account changes", of(&[action::AUTHN_PASSWORD_CHANGE, action::USER_UPDATED])))
        },
    )
}
