//! `/blackbook`: the addresses Kevlar has seen misbehave, searchable by address or prefix;
//! `/blackbook/{address}`: one record — score, counts, samples, ban history, its events — with
//! "Ban" (a duration and a reason) and "Unban".

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use kevlar_shield::{BanView, BookRecord};
use kevlar_store::EventQuery;
use maud::html;
use serde::Deserialize;

use super::events::read;
use super::{csrf, error, event_table, layout, shield};
use crate::format::{encode, time};
use crate::session::Session;
use crate::St;

fn shield_error(e: &kevlar_shield::ShieldError) -> Response {
    if e.is_client_error() {
        error(StatusCode::BAD_REQUEST, &e.to_string())
    } else {
        error(StatusCode::INTERNAL_SERVER_ERROR, &kevlar_core::error::chain(e))
    }
}

#[derive(Deserialize)]
pub struct Search {
    q: Option<String>,
    banned: Option<String>,
}

pub async fn list(
    State(d): St,
    Extension(s): Extension<Session>,
    q: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else { return error(StatusCode::BAD_REQUEST, "malformed search") };
    let sh = match shield(&d) {
        Ok(sh) => sh.clone(),
        Err(r) => return r,
    };
    let banned_only = q.banned.is_some();
    let list = match tokio::task::spawn_blocking(move || sh.list(10_000, banned_only)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return shield_error(&e),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the black book could not be read"),
    };
    let needle = q.q.as_deref().map(str::trim).unwrap_or("");
    // A prefix (`203.0.113.`, `2001:db8:`) or CIDR-looking text matches the address's start.
    let needle = needle.split('/').next().unwrap_or("");
    let records: Vec<&BookRecord> = list.iter().filter(|r| r.address.starts_with(needle)).take(500).collect();
    layout(
        "Black book",
        "/blackbook",
        &s,
        html! {
            form.filters method="get" action="/blackbook" role="search" {
                label { "Address or prefix" input type="search" name="q" value=(needle) placeholder="203.0.113."; }
                label.check { input type="checkbox" name="banned" value="1" checked[banned_only]; " banned only" }
                button type="submit" { "Search" }
            }
            table {
                thead { tr { th { "Address" } th { "Score" } th { "Last seen" } th { "Banned" } th { "Events" } } }
                tbody {
                    @for r in &records {
                        tr {
                            td { a href={ "/blackbook/" (encode(&r.address)) } { (r.address) } }
                            td { (r.score) }
                            td { (time(&r.last_seen)) }
                            td { @if let Some(b) = r.ban.as_ref().filter(|_| r.banned) { strong.bad { "banned" } " until " (until(b)) } }
                            td { (counts(r)) }
                        }
                    }
                }
            }
            @if records.is_empty() { p.empty { "No record matches." } }
            h2 { "Ban an address" }
            (ban_form(&s, None))
        },
    )
}

fn until(ban: &BanView) -> String {
    match &ban.until {
        Some(t) => time(t),
        None => "lifted by hand".into(),
    }
}

fn counts(r: &BookRecord) -> String {
    r.counts
        .iter()
        .filter(|(k, _)| !k.starts_with("family:"))
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ban_form(s: &Session, addr: Option<&str>) -> maud::Markup {
    let action = match addr {
        Some(a) => format!("/blackbook/{}/ban", encode(a)),
        None => "/blackbook/-/ban".into(),
    };
    html! {
        form.ban method="post" action=(action) {
            (csrf(s))
            @if addr.is_none() {
                label { "Address or prefix" input type="text" name="address" required placeholder="203.0.113.7"; }
            }
            label { "For" input type="text" name="for" value="1h" placeholder="1h, 7d; empty: until lifted"; }
            label { "Reason" input type="text" name="reason" maxlength="200" placeholder="why"; }
            button type="submit" { "Ban" }
        }
    }
}

pub async fn show(State(d): St, Extension(s): Extension<Session>, Path(addr): Path<String>) -> Response {
    let sh = match shield(&d) {
        Ok(sh) => sh.clone(),
        Err(r) => return r,
    };
    let a = addr.clone();
    let rec = match tokio::task::spawn_blocking(move || sh.show(&a)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return shield_error(&e),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the black book could not be read"),
    };
    // An address is looked up on its index; an IPv6 group (`2001:db8:1:2::/64`) among the
    // newest 5,000 events, by the addresses it holds.
    let net = addr.parse::<ipnet::IpNet>().ok().filter(|n| n.prefix_len() < n.max_prefix_len());
    let q = match &net {
        None => EventQuery { ip: Some(addr.clone()), limit: Some(50), ..Default::default() },
        Some(_) => EventQuery { limit: Some(5000), ..Default::default() },
    };
    let events = match read(&d, move |r| r.query(&q)).await {
        Ok(e) => e.into_iter().map(|e| (e.id, e.doc)).collect::<Vec<_>>(),
        Err(r) => return r,
    };
    let events: Vec<_> = match &net {
        None => events,
        Some(net) => {
            let inside = |doc: &serde_json::Value| {
                doc["source"]["ip"]
                    .as_str()
                    .and_then(|i| i.parse::<std::net::IpAddr>().ok())
                    .is_some_and(|i| net.contains(&i))
            };
            let mut v: Vec<_> = events.into_iter().filter(|(_, doc)| inside(doc)).collect();
            let cut = v.len().saturating_sub(50);
            v.drain(..cut);
            v
        }
    };
    layout(
        &addr,
        "/blackbook",
        &s,
        html! {
            @match &rec {
                None => p.empty { "No record for this address: Kevlar has not seen it misbehave." },
                Some(r) => {
                    @if let Some(b) = r.ban.as_ref().filter(|_| r.banned) {
                        p.bad { strong { "Banned" } " until " (until(b)) ": " (b.reason) " (" (b.source) ")" }
                    } @else {
                        p { "Not banned." }
                    }
                    dl.facts { dt { "Score" } dd { (r.score) } dt { "First seen" } dd { (time(&r.first_seen)) } dt { "Last seen" } dd { (time(&r.last_seen)) } }
                    p { "Counts: " (counts(r)) }
                }
            }
            @if rec.as_ref().is_some_and(|r| r.banned) {
                form.unban method="post" action={ "/blackbook/" (encode(&addr)) "/unban" } {
                    (csrf(&s))
                    button type="submit" { "Unban" }
                }
            } @else {
                (ban_form(&s, Some(&addr)))
            }
            @if let Some(r) = &rec {
                @if !r.ban_history.is_empty() {
                    h2 { "Ban history" }
                    table {
                        thead { tr { th { "Since" } th { "Until" } th { "Source" } th { "Reason" } th { "Enforced" } } }
                        tbody {
                            @for b in &r.ban_history {
                                tr { td { (time(&b.since)) } td { (until(b)) } td { (b.source) } td { (b.reason) } td { (if b.enforced { "yes" } else { "no" }) } }
                            }
                        }
                    }
                }
                @if !r.samples.is_empty() {
                    h2 { "Samples" }
                    table {
                        thead { tr { th { "Time" } th { "Action" } th { "Family" } th { "Request" } th { "Where" } th { "Excerpt (redacted)" } } }
                        tbody {
                            @for x in &r.samples {
                                tr {
                                    td { (time(&x.timestamp)) } td { (x.action) } td { (x.family.as_deref().unwrap_or("")) }
                                    td.path { (x.method.as_deref().unwrap_or("")) " " (x.path.as_deref().unwrap_or("")) }
                                    td { (x.location.as_deref().unwrap_or("")) } td { code { (x.excerpt.as_deref().unwrap_or("")) } }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Events from this address" }
            (event_table(&events, None))
        },
    )
}

#[derive(Deserialize)]
pub struct BanForm {
    address: Option<String>,
    #[serde(rename = "for")]
    duration: Option<String>,
    reason: Option<String>,
}

pub async fn ban(
    State(d): St,
    Extension(_s): Extension<Session>,
    Path(addr): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(f) = serde_urlencoded::from_bytes::<BanForm>(&body) else {
        return error(StatusCode::BAD_REQUEST, "expected a form with for and reason");
    };
    let addr = match (addr.as_str(), f.address.as_deref().map(str::trim)) {
        ("-", Some(a)) if !a.is_empty() => a.to_owned(),
        ("-", _) => return error(StatusCode::BAD_REQUEST, "give the address or prefix to ban"),
        (a, _) => a.to_owned(),
    };
    let dur = match f.duration.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(t) => match humantime::parse_duration(t) {
            Ok(d) => Some(d),
            Err(_) => return error(StatusCode::BAD_REQUEST, "`For` is not a duration (examples: 1h, 30m, 7d)"),
        },
    };
    let reason = f.reason.map(|r| r.trim().chars().take(200).collect::<String>()).filter(|r| !r.is_empty());
    let reason = Some(reason.unwrap_or_else(|| "banned from the dashboard".into()));
    let sh = match shield(&d) {
        Ok(sh) => sh.clone(),
        Err(r) => return r,
    };
    let a = addr.clone();
    match tokio::task::spawn_blocking(move || sh.manual_ban(&a, dur, reason)).await {
        Ok(Ok(v)) => {
            let shown = v.address;
            crate::report_change(&d, "ban", format!("dashboard: {shown} banned"), Some(&shown));
            Redirect::to(&format!("/blackbook/{}", encode(&shown))).into_response()
        }
        Ok(Err(e)) => shield_error(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the ban failed"),
    }
}

pub async fn unban(State(d): St, Extension(_s): Extension<Session>, Path(addr): Path<String>) -> Response {
    let sh = match shield(&d) {
        Ok(sh) => sh.clone(),
        Err(r) => return r,
    };
    let a = addr.clone();
    match tokio::task::spawn_blocking(move || sh.unban(&a)).await {
        Ok(Ok(true)) => {
            crate::report_change(&d, "unban", format!("dashboard: {addr} unbanned"), Some(&addr));
            Redirect::to(&format!("/blackbook/{}", encode(&addr))).into_response()
        }
        Ok(Ok(false)) => error(StatusCode::NOT_FOUND, "this address is not banned"),
        Ok(Err(e)) => shield_error(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the unban failed"),
    }
}
