//! `/`: the overview — requests, attacks by family, probes, login failures and successes over the
//! last hour, day or 30 days (from the store's rollups), the top offending addresses, the most
//! attacked routes, current bans, the app, the sinks and open dependency findings, each number
//! linking to its list.

use kevlar_core::action;
use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

use super::events::read;
use super::layout;
use crate::chart::{bars, line, Range};
use crate::format::{encode, field, time};
use crate::session::Session;
use crate::St;

#[derive(Deserialize)]
pub struct Params {
    range: Option<String>,
}

fn stat(label: &str, n: impl std::fmt::Display, href: &str) -> Markup {
    html! { a.stat href=(href) { span.n { (n) } span.l { (label) } } }
}

pub async fn page(
    State(d): St,
    Extension(s): Extension<Session>,
    q: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let range = Range::parse(q.as_ref().ok().and_then(|q| q.range.as_deref()));
    let now = kevlar_core::time::now_ms();
    let (len, n) = range.buckets();
    let start = range.start(now);
    let got = read(&d, move |r| {
        let read_len = if len >= 86_400_000 { 3_600_000 } else { len };
        let restart =
            kevlar_store::EventQuery { action: Some(action::SYS_RESTART.into()), limit: Some(1), ..Default::default() };
        Ok((r.series(start, read_len)?, r.top_addresses("malicious_", start, 10)?, r.query(&restart)?))
    })
    .await;
    let (buckets, top, restart) = match got {
        Ok(x) => x,
        Err(r) => return r,
    };
    // Hourly reads regrouped into days for the 30-day range.
    let buckets: Vec<kevlar_store::Bucket> = buckets
        .into_iter()
        .map(|mut b| {
            b.start_ms = b.start_ms.div_euclid(len) * len;
            b
        })
        .collect();
    let requests = line(&buckets, start, len, n, |s| s == "requests");
    let attacks = line(&buckets, start, len, n, |s| s.starts_with("malicious_attack:"));
    let probes = line(&buckets, start, len, n, |s| s == action::MALICIOUS_PROBE);
    let fails = line(&buckets, start, len, n, |s| s == action::AUTHN_LOGIN_FAIL);
    let oks = line(&buckets, start, len, n, |s| s == action::AUTHN_LOGIN_SUCCESS);
    let mut families: BTreeMap<String, i64> = BTreeMap::new();
    for b in &buckets {
        if let Some(f) = b.series.strip_prefix("malicious_attack:") {
            *families.entry(f.to_owned()).or_default() += b.n;
        }
    }
    let status = (d.admin.status)();
    let since = match range {
        Range::Hour => "1h",
        Range::Day => "24h",
        Range::Month => "30days",
    };
    let bans = d.admin.shield.as_ref().and_then(|sh| sh.list(20, true).ok()).unwrap_or_default();
    let mut routes = d.admin.shield.as_ref().map(|sh| sh.routes()).unwrap_or_default();
    routes.retain(|r| r.flagged > 0);
    routes.sort_by_key(|r| std::cmp::Reverse(r.flagged));
    routes.truncate(10);
    let sinks = status["alerts"]["sinks"].as_array().cloned().unwrap_or_default();
    let sum = |v: &[i64]| v.iter().sum::<i64>();
    layout(
        "Overview",
        "/",
        &s,
        html! {
            nav.ranges aria-label="Range" {
                @for r in [Range::Hour, Range::Day, Range::Month] {
                    @if r == range { a href={ "/?range=" (r.as_str()) } aria-current="true" { (r.label()) } }
                    @else { a href={ "/?range=" (r.as_str()) } { (r.label()) } }
                }
            }
            div.stats {
                (stat("requests", sum(&requests), "/routes"))
                (stat("attacks", sum(&attacks), &format!("/events?action=malicious_attack&since={since}")))
                (stat("probes", sum(&probes), &format!("/events?action=malicious_probe&since={since}")))
                (stat("failed logins", sum(&fails), &format!("/events?action=authn_login_fail&since={since}")))
                (stat("logins", sum(&oks), &format!("/events?action=authn_login_success&since={since}")))
                (stat("banned now", bans.len(), "/blackbook?banned=1"))
            }
            div.charts {
                (bars("Requests", "req", &requests, start, len))
                (bars("Attacks", "att", &attacks, start, len))
                (bars("Probes", "probe", &probes, start, len))
                (bars("Failed logins", "fail", &fails, start, len))
                (bars("Successful logins", "ok", &oks, start, len))
            }
            div.grid {
                section {
                    h2 { "Attacks by family" }
                    @if families.is_empty() { p.empty { "None in this range." } }
                    ul { @for (f, c) in &families {
                        li { a href={ "/events?action=malicious_attack&since=" (since) } { (f) } ": " (c) }
                    } }
                }
                section {
                    h2 { "Top offending addresses" }
                    @if top.is_empty() { p.empty { "None in this range." } }
                    ol { @for (ip, c) in &top {
                        li { a href={ "/blackbook/" (encode(ip)) } { (ip) } " — " a href={ "/events?ip=" (encode(ip)) } { (c) " events" } }
                    } }
                }
                section {
                    h2 { "Most attacked routes" }
                    @if routes.is_empty() { p.empty { "No route has findings." } }
                    ol { @for r in &routes {
                        li { code { (r.method) " " (r.route) } " — " (r.flagged) " findings" }
                    } }
                }
                section {
                    h2 { "Current bans" }
                    @if bans.is_empty() { p.empty { "No address is banned." } }
                    ul { @for b in &bans {
                        li {
                            a href={ "/blackbook/" (encode(&b.address)) } { (b.address) }
                            " until " (b.ban.as_ref().and_then(|x| x.until.as_deref()).map(time).unwrap_or_else(|| "lifted".into()))
                        }
                    } }
                }
                section {
                    h2 { a href="/app" { "App" } }
                    @if status["app"].is_null() { p { "Not supervised (" code { "kevlar guard" } ")." } }
                    @else { p { "State: " strong { (field(&status["app"], "state")) } } }
                    @if let Some(r) = restart.last() {
                        p { "Last restart: " a href={ "/events/" (r.id) } { (time(&field(&r.doc, "@timestamp"))) } }
                    }
                }
                section {
                    h2 { a href="/alerts" { "Sinks" } }
                    @if sinks.is_empty() { p.empty { "No alert sink configured." } }
                    ul { @for k in &sinks { li { (field(k, "name")) ": " span class={ "h-" (field(k, "state")) } { (field(k, "state")) } } } }
                }
                section {
                    h2 { a href="/dependencies" { "Dependencies" } }
                    @if status["audit"].is_null() { p.empty { "Not audited while running." } }
                    @else { p { strong { (field(&status["audit"], "findings")) } " open findings in " (field(&status["audit"], "packages")) " packages" } }
                }
            }
        },
    )
}
