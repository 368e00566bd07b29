//! `/exclusions`: the false positives closed from the dashboard — made from an event in one click,
//! applied at once, kept in `<data-dir>/exclusions.json`, listed with the TOML to paste into
//! `kevlar.toml`, removable; and the configured `[[detect.exclude]]` beside them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::html;

use super::events::{proposal, read};
use super::{csrf, error, layout, shield};
use crate::session::Session;
use crate::St;

pub async fn page(State(d): St, Extension(s): Extension<Session>) -> Response {
    let sh = match shield(&d) {
        Ok(sh) => sh,
        Err(r) => return r,
    };
    let added = sh.exclusions();
    let configured = sh.configured_exclusions();
    layout(
        "Exclusions",
        "/exclusions",
        &s,
        html! {
            p { "Findings these rules match are not reported or blocked. Rules added here apply at once and survive a restart; paste them into " code { "kevlar.toml" } " to keep them with the configuration." }
            h2 { "Added from the dashboard" }
            @if added.is_empty() { p.empty { "None yet. On an attack event, \u{201c}This was legitimate\u{201d} adds one." } }
            @for x in &added {
                section.exclusion id=(x.id) {
                    pre.toml { (kevlar_shield::exclusions::toml(&x.rule)) }
                    p.meta {
                        "Added " (crate::format::ms_time(x.created_ms))
                        @if let Some(e) = &x.event_id { " from event " a href={ "/events/" (e) } { (e) } }
                    }
                    form method="post" action={ "/exclusions/" (x.id) "/remove" } {
                        (csrf(&s))
                        button type="submit" { "Remove" }
                    }
                }
            }
            h2 { "In the configuration" }
            @if configured.is_empty() { p.empty { "None." } }
            @for x in configured { pre.toml { (kevlar_shield::exclusions::toml(x)) } }
        },
    )
}

/// "This was legitimate": the exclusion the event proposes, added.
pub async fn add(State(d): St, Extension(_s): Extension<Session>, body: axum::body::Bytes) -> Response {
    let sh = match shield(&d) {
        Ok(sh) => sh.clone(),
        Err(r) => return r,
    };
    let Some(id) = crate::form_field(&body, "event").and_then(|e| e.parse::<i64>().ok()) else {
        return error(StatusCode::BAD_REQUEST, "name the event (its number) the exclusion is made from");
    };
    let ev = match read(&d, move |r| r.get(id)).await {
        Ok(Some(ev)) => ev,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no event with this id"),
        Err(r) => return r,
    };
    let Some(rule) = proposal(&ev.doc) else {
        return error(StatusCode::BAD_REQUEST, "this event is not a finding an exclusion can stop");
    };
    let event_id = ev.doc["event"]["id"].as_str().map(str::to_owned);
    match sh.add_exclusion(rule, event_id) {
        Ok(x) => {
            let toml = kevlar_shield::exclusions::toml(&x.rule);
            crate::report_change(&d, "exclude", format!("dashboard: exclusion added\n{toml}"), Some(&x.id));
            Redirect::to(&format!("/exclusions#{}", x.id)).into_response()
        }
        Err(e) if e.is_client_error() => error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &kevlar_core::error::chain(&e)),
    }
}

pub async fn remove(State(d): St, Extension(_s): Extension<Session>, Path(id): Path<String>) -> Response {
    let sh = match shield(&d) {
        Ok(sh) => sh,
        Err(r) => return r,
    };
    match sh.remove_exclusion(&id) {
        Ok(true) => {
            crate::report_change(&d, "unexclude", "dashboard: exclusion removed".into(), Some(&id));
            Redirect::to("/exclusions").into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "no such exclusion"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &kevlar_core::error::chain(&e)),
    }
}
