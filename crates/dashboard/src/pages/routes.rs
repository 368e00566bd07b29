//! `/routes`: the route inventory — unused routes, probe-only paths and the routes with the most
//! findings marked ("make sure all those routes are used").

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::html;
use serde_json::Value;

use super::{error, layout};
use crate::format::{encode, field, time};
use crate::session::Session;
use crate::St;

pub async fn page(State(d): St, Extension(s): Extension<Session>) -> Response {
    let Some(sh) = &d.admin.shield else { return error(StatusCode::SERVICE_UNAVAILABLE, "detection is not running") };
    let routes = sh.routes();
    let rows: Vec<&Value> = routes.as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let mut flagged: Vec<u64> = rows.iter().filter_map(|r| r["flagged"].as_u64()).filter(|n| *n > 0).collect();
    flagged.sort_unstable_by(|a, b| b.cmp(a));
    // The five routes with the most findings are marked.
    let hot = flagged.get(4).or(flagged.last()).copied().unwrap_or(u64::MAX);
    let unused = rows.iter().filter(|r| r["stale"] == true).count();
    let probes = rows.iter().filter(|r| r["probe_only"] == true).count();
    layout(
        "Routes",
        "/routes",
        &s,
        html! {
            p { (rows.len()) " routes; " strong { (unused) } " unused lately; " strong { (probes) } " seen only in probes." }
            table.routes {
                thead { tr { th { "Method" } th { "Route" } th { "Hits" } th { "Findings" } th { "Statuses" } th { "Last seen" } th { "Notes" } } }
                tbody {
                    @for r in &rows {
                        @let n = r["flagged"].as_u64().unwrap_or(0);
                        @let route = field(r, "route");
                        tr class={ @if n >= hot && n > 0 { "hot " } @if r["stale"] == true { "stale " } @if r["probe_only"] == true { "probe" } } {
                            td { (field(r, "method")) }
                            td.path { a href={ "/events?path=" (encode(route.split('{').next().unwrap_or(""))) } { (route) } }
                            td { (field(r, "hits")) }
                            td { (n) }
                            td { (statuses(&r["statuses"])) }
                            td { (time(&field(r, "last_seen"))) }
                            td {
                                @if n >= hot && n > 0 { span.tag.bad { "most findings" } " " }
                                @if r["stale"] == true { span.tag { "unused" } " " }
                                @if r["probe_only"] == true { span.tag { "probes only" } " " }
                                @if r["login"].as_str().is_some() { span.tag { "login" } }
                            }
                        }
                    }
                }
            }
            @if rows.is_empty() { p.empty { "No route seen yet." } }
        },
    )
}

fn statuses(v: &Value) -> String {
    v.as_object().map(|m| m.iter().map(|(k, n)| format!("{k}×{n}")).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}
