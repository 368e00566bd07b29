//! `/routes`: the route inventory — unused routes, probe-only paths and the routes with the most
//! findings marked ("make sure all those routes are used").

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use maud::html;

use super::{layout, shield};
use crate::format::{encode, time};
use crate::session::Session;
use crate::St;

pub async fn page(State(d): St, Extension(s): Extension<Session>) -> Response {
    let sh = match shield(&d) {
        Ok(sh) => sh,
        Err(r) => return r,
    };
    let rows = sh.routes();
    let mut flagged: Vec<u64> = rows.iter().map(|r| r.flagged).filter(|n| *n > 0).collect();
    flagged.sort_unstable_by(|a, b| b.cmp(a));
    // The five routes with the most findings are marked.
    let hot = flagged.get(4).or(flagged.last()).copied().unwrap_or(u64::MAX);
    let unused = rows.iter().filter(|r| r.stale).count();
    let probes = rows.iter().filter(|r| r.probe_only).count();
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
                        @let n = r.flagged;
                        @let hot_row = n >= hot && n > 0;
                        tr class={ @if hot_row { "hot " } @if r.stale { "stale " } @if r.probe_only { "probe" } } {
                            td { (r.method) }
                            td.path { a href={ "/events?path=" (encode(r.route.split('{').next().unwrap_or(""))) } { (r.route) } }
                            td { (r.hits) }
                            td { (n) }
                            td { (statuses(r)) }
                            td { (time(&r.last_seen)) }
                            td {
                                @if hot_row { span.tag.bad { "most findings" } " " }
                                @if r.stale { span.tag { "unused" } " " }
                                @if r.probe_only { span.tag { "probes only" } " " }
                                @if r.login.is_some() { span.tag { "login" } }
                            }
                        }
                    }
                }
            }
            @if rows.is_empty() { p.empty { "No route seen yet." } }
        },
    )
}

fn statuses(r: &kevlar_shield::routes::RouteView) -> String {
    r.statuses.iter().map(|(k, n)| format!("{k}×{n}")).collect::<Vec<_>>().join(" ")
}
