//! The pages: one module per section, sharing the layout, the event table and the error page.

pub mod app;
pub mod blackbook;
pub mod events;
pub mod exclusions;
pub mod logins;
pub mod overview;
pub mod routes;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use crate::format::{encode, field, time};
use crate::session::Session;

/// The sections, in the order of the navigation.
const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/events", "Events"),
    ("/blackbook", "Black book"),
    ("/logins", "Logins"),
    ("/routes", "Routes"),
    ("/app", "App"),
    ("/alerts", "Alerts"),
    ("/dependencies", "Dependencies"),
    ("/exclusions", "Exclusions"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Kevlar" }
            link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
            link rel="stylesheet" href="/assets/dashboard.css";
            script src="/assets/dashboard.js" defer {}
        }
    }
}

/// A page of the dashboard: navigation (the current section marked), sign-out, content.
pub fn layout(title: &str, section: &str, s: &Session, content: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "Kevlar" }
                    nav aria-label="Sections" {
                        ul {
                            @for (href, name) in NAV {
                                li {
                                    @if *href == section {
                                        a href=(href) aria-current="page" { (name) }
                                    } @else {
                                        a href=(href) { (name) }
                                    }
                                }
                            }
                        }
                    }
                    form.logout method="post" action="/logout" {
                        (csrf(s))
                        button type="submit" { "Sign out" }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    (StatusCode::OK, Html(page.into_string())).into_response()
}

/// The hidden CSRF field every form carries.
pub fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

pub fn error(status: StatusCode, message: &str) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Error"))
            body {
                main #main {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p { (message) }
                    p { a href="/" { "Back to the overview" } }
                }
            }
        }
    };
    (status, Html(page.into_string())).into_response()
}

/// The shield (black book, routes, exclusions), or the page saying detection is not running.
pub fn shield(d: &crate::Dash) -> Result<&kevlar_shield::Shield, Response> {
    d.admin.shield.as_ref().ok_or_else(|| error(StatusCode::SERVICE_UNAVAILABLE, "detection is not running"))
}

/// A store failure, said once in the log and on the page.
pub fn store_error<E: std::error::Error + 'static>(e: &E) -> Response {
    let msg = kevlar_core::error::chain(e);
    tracing::error!("dashboard: {msg}");
    error(StatusCode::INTERNAL_SERVER_ERROR, &format!("the event store could not be read: {msg}"))
}

pub fn login(token_file: &str, next: Option<&str>, failed: bool) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.login {
                main #main {
                    h1 { "Kevlar" }
                    form method="post" action="/login" {
                        @if failed {
                            p.warn role="alert" { "That token is not the admin token." }
                        }
                        label for="token" { "Admin token" }
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                        @if let Some(n) = next {
                            input type="hidden" name="next" value=(n);
                        }
                        button type="submit" { "Sign in" }
                        p.hint { "The token is in " code { (token_file) } " (readable by Kevlar's user only)." }
                    }
                }
            }
        }
    };
    (StatusCode::OK, Html(page.into_string())).into_response()
}

/// Severity names by ECS number (`event.severity`).
fn level(doc: &Value) -> String {
    field(doc, "log.level")
}

/// A table of stored events, newest first, each linking to its page. `live` marks the table
/// the live feed adds rows to.
pub fn event_table(events: &[(i64, Value)], live: Option<&str>) -> Markup {
    html! {
        table.events data-live=[live] {
            thead {
                tr { th { "Time" } th { "Level" } th { "Action" } th { "Address" } th { "User" } th { "Path" } th { "Message" } }
            }
            tbody {
                @for (id, doc) in events.iter().rev() {
                    @let ip = field(doc, "source.ip");
                    @let user = field(doc, "user.name");
                    tr data-id=(id) {
                        td { a href={ "/events/" (id) } { (time(&field(doc, "@timestamp"))) } }
                        td class={ "lv-" (level(doc)) } { (level(doc)) }
                        td { (field(doc, "event.action")) }
                        td { @if !ip.is_empty() { a href={ "/blackbook/" (encode(&ip)) } { (ip) } } }
                        td { @if !user.is_empty() { a href={ "/logins/" (encode(&user)) } { (user) } } }
                        td.path { (field(doc, "url.path")) }
                        td { (field(doc, "message")) }
                    }
                }
            }
        }
        @if events.is_empty() {
            p.empty { "No events." }
        }
    }
}

/// A definition list of a JSON object's plain fields.
pub fn facts(v: &Value, keys: &[(&str, &str)]) -> Markup {
    html! {
        dl.facts {
            @for (k, label) in keys {
                @let text = field(v, k);
                @if !text.is_empty() {
                    dt { (label) } dd { (text) }
                }
            }
        }
    }
}

/// JSON shown as text, indented (escaped by maud).
pub fn json_block(v: &Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json { (text) } }
}
