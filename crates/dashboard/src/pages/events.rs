//! `/events`: the feed with its filters, kept live by server-sent events (`/events/live`), and
//! `/events/{id}`: one event whole, with "this was legitimate" on findings.

use kevlar_core::action;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use kevlar_config::Exclusion;
use kevlar_store::{EventQuery, Reader};
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{csrf, error, event_table, facts, json_block, layout, store_error};
use crate::format::{encode, field};
use crate::session::Session;
use crate::St;

/// How often a live feed asks the store for what is new.
const POLL: Duration = Duration::from_millis(250);
/// Events sent in one poll at most (the rest follow on the next).
const BATCH: usize = 500;

#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    pub action: Option<String>,
    pub category: Option<String>,
    pub ip: Option<String>,
    pub user: Option<String>,
    pub path: Option<String>,
    /// A duration back from now (`1h`) or an RFC 3339 time.
    pub since: Option<String>,
    /// Older page: events stored before this id.
    pub before: Option<i64>,
    /// Live feed: events stored after this id.
    pub after: Option<i64>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl Filters {
    fn query(&self, limit: usize) -> Result<EventQuery, String> {
        let since_ms = match nonempty(&self.since) {
            None => None,
            Some(s) => Some(
                kevlar_admin::parse_since(&s)
                    .ok_or_else(|| format!("since {s:?}: give a duration (1h, 30m) or an RFC 3339 time"))?,
            ),
        };
        let action = nonempty(&self.action);
        let (action, action_prefix) = match action {
            Some(a) if a.ends_with('*') => (None, Some(a.trim_end_matches('*').to_owned())),
            a => (a, None),
        };
        Ok(EventQuery {
            since_ms,
            action,
            action_prefix,
            ip: nonempty(&self.ip),
            user: nonempty(&self.user),
            category: nonempty(&self.category),
            path: nonempty(&self.path),
            before_id: self.before,
            after_id: self.after,
            limit: Some(limit),
        })
    }

    /// The filters as a query string (without `before`/`after`).
    fn query_string(&self) -> String {
        let pairs = [
            ("action", &self.action),
            ("category", &self.category),
            ("ip", &self.ip),
            ("user", &self.user),
            ("path", &self.path),
            ("since", &self.since),
        ];
        pairs
            .iter()
            .filter_map(|(k, v)| nonempty(v).map(|v| format!("{k}={}", encode(&v))))
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub(crate) async fn read<T: Send + 'static>(
    d: &crate::Dash,
    f: impl FnOnce(&Reader) -> Result<T, kevlar_store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    let dir = d.admin.data_dir.clone();
    match tokio::task::spawn_blocking(move || Reader::open(&dir).and_then(|r| f(&r))).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(kevlar_store::StoreError::Missing(_))) => {
            Err(error(StatusCode::SERVICE_UNAVAILABLE, "no event store yet"))
        }
        Ok(Err(e)) => Err(store_error(&e)),
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "the event query failed")),
    }
}

const ACTIONS: &[&str] = &[
    "malicious_*",
    "authn_*",
    "sys_*",
    action::MALICIOUS_ATTACK,
    action::MALICIOUS_PROBE,
    action::MALICIOUS_BAN,
    action::AUTHN_LOGIN_FAIL,
];

pub async fn list(
    axum::extract::State(d): St,
    Extension(s): Extension<Session>,
    q: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(f)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "unknown or malformed filter; known: action, category, ip, user, path, since, before",
        );
    };
    let query = match f.query(100) {
        Ok(q) => q,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let (events, last) = match read(&d, move |r| Ok((r.query(&query)?, r.last_id()?))).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let rows: Vec<(i64, Value)> = events.into_iter().map(|e| (e.id, e.doc)).collect();
    let qs = f.query_string();
    // Live only on the newest page.
    let live =
        f.before.is_none().then(|| format!("/events/live?{qs}{}after={last}", if qs.is_empty() { "" } else { "&" }));
    let older = rows.first().map(|(id, _)| *id).filter(|_| rows.len() >= 100);
    let input = |name: &str, label: &str, v: &Option<String>, hint: &str| {
        html! {
            label { (label) input type="text" name=(name) value=[v.as_deref()] placeholder=(hint); }
        }
    };
    layout(
        "Events",
        "/events",
        &s,
        html! {
            form.filters method="get" action="/events" {
                (input("action", "Action", &f.action, "malicious_* or an action"))
                (input("category", "Category", &f.category, "intrusion_detection"))
                (input("ip", "Address", &f.ip, "203.0.113.7"))
                (input("user", "User", &f.user, "alice"))
                (input("path", "Route", &f.path, "/login"))
                (input("since", "Since", &f.since, "1h"))
                button type="submit" { "Filter" }
                " "
                a href="/events" { "Clear" }
            }
            p.quick {
                "Quick filters: "
                @for a in ACTIONS { a href={ "/events?action=" (encode(a)) } { (a) } " " }
            }
            @if live.is_some() { p.live #live-state aria-live="polite" { "Live: new events appear at the top." } }
            (event_table(&rows, live.as_deref()))
            @if let Some(id) = older {
                p { a href={ "/events?" (qs) (if qs.is_empty() { "" } else { "&" }) "before=" (id) } { "Older events" } }
            }
        },
    )
}

/// What a live row needs, in the same shape the page's table shows.
fn summary(id: i64, doc: &Value) -> Value {
    json!({
        "id": id,
        "time": crate::format::time(&field(doc, "@timestamp")),
        "level": field(doc, "log.level"),
        "action": field(doc, "event.action"),
        "ip": field(doc, "source.ip"),
        "user": field(doc, "user.name"),
        "path": field(doc, "url.path"),
        "message": field(doc, "message"),
    })
}

/// Server-sent events: every new stored event matching the filters, as it is committed.
pub async fn live(
    axum::extract::State(d): St,
    headers: axum::http::HeaderMap,
    q: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(f)) = q else { return error(StatusCode::BAD_REQUEST, "malformed filter") };
    let Some((session, _)) = crate::session_of(&d, &headers) else {
        return error(StatusCode::FORBIDDEN, "not signed in");
    };
    let Ok(permit) = d.live.clone().try_acquire_owned() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many live feeds are open; close one");
    };
    let mut query = match f.query(BATCH) {
        Ok(q) => q,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    query.before_id = None;
    // Only what is new from now on: since-filters would only repeat what the page shows.
    query.since_ms = None;
    let state = (query, d.clone(), session, permit, true);
    let stream = futures_util::stream::unfold(state, |(mut q, d, session, permit, first)| async move {
        loop {
            if !first {
                tokio::time::sleep(POLL).await;
            }
            // A feed lasts as long as its session: signing out (or expiry) ends it.
            d.sessions.get(&session, kevlar_core::time::now_ms())?;
            let qq = q.clone();
            let dir = d.admin.data_dir.clone();
            // Up to the newest row now, whether or not it matches: a filter that rarely matches
            // does not make each poll read everything since its last match again.
            let got = tokio::task::spawn_blocking(move || {
                Reader::open(&dir).and_then(|r| {
                    let max = r.last_id()?;
                    let mut bounded = qq;
                    bounded.before_id = Some(max + 1);
                    Ok((max, r.query(&bounded)?))
                })
            })
            .await;
            let (max, events) = match got {
                Ok(Ok(x)) => x,
                _ => (q.after_id.unwrap_or(0), Vec::new()),
            };
            q.after_id = Some(match events.last() {
                Some(last) if events.len() >= BATCH => last.id,
                _ => max.max(q.after_id.unwrap_or(0)),
            });
            if !events.is_empty() {
                let batch: Vec<Result<Event, Infallible>> = events
                    .iter()
                    .map(|e| Ok(Event::default().id(e.id.to_string()).data(summary(e.id, &e.doc).to_string())))
                    .collect();
                return Some((futures_util::stream::iter(batch), (q, d, session, permit, false)));
            }
            if first {
                return Some((futures_util::stream::iter(Vec::new()), (q, d, session, permit, false)));
            }
        }
    });
    use futures_util::StreamExt;
    Sse::new(stream.flatten()).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// The exclusion that would stop this event's findings: its path, families and arguments.
pub fn proposal(doc: &Value) -> Option<Exclusion> {
    let action = field(doc, "event.action");
    if !matches!(
        action.as_str(),
        action::MALICIOUS_ATTACK | action::MALICIOUS_ATTACK_TOOL | action::MALICIOUS_PROBE | action::MALICIOUS_EVASION
    ) {
        return None;
    }
    let k = &doc["kevlar"];
    let mut families: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let mut add = |family: &Value, location: &Value| {
        if let Some(f) = family.as_str() {
            if !families.iter().any(|x| x == f) {
                families.push(f.to_owned());
            }
        }
        if let Some(l) = location.as_str() {
            if l != "path" && !args.iter().any(|x| x == l) {
                args.push(l.to_owned());
            }
        }
    };
    add(&k["family"], &k["location"]);
    if let Some(list) = k["findings"].as_array() {
        for f in list {
            add(&f["family"], &f["location"]);
        }
    }
    if families.is_empty() {
        return None;
    }
    let path = doc["url"]["path"].as_str().map(str::to_owned);
    // Only this path: a prefix would reach paths under it, and `/` every path.
    let exact = path.is_some();
    Some(Exclusion { path, exact, families, args })
}

pub async fn show(axum::extract::State(d): St, Extension(s): Extension<Session>, Path(id): Path<String>) -> Response {
    let key = id.clone();
    let found = read(&d, move |r| {
        let ev = match key.parse::<i64>() {
            Ok(n) => r.get(n)?,
            Err(_) => r.find(&key)?.into_iter().find(|e| e.doc["event"]["id"] == key.as_str()),
        };
        let related = match ev.as_ref().and_then(|e| e.doc["http"]["request"]["id"].as_str().map(str::to_owned)) {
            Some(rid) => r.find(&rid)?,
            None => Vec::new(),
        };
        Ok((ev, related))
    })
    .await;
    let (ev, related) = match found {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(ev) = ev else { return error(StatusCode::NOT_FOUND, "no event with this id") };
    let doc = &ev.doc;
    let exclusion = proposal(doc);
    let others: Vec<(i64, Value)> = related.into_iter().filter(|e| e.id != ev.id).map(|e| (e.id, e.doc)).collect();
    layout(
        &format!("Event {}", ev.id),
        "/events",
        &s,
        html! {
            (facts(doc, &[
                ("@timestamp", "Time"), ("event.action", "Action"), ("log.level", "Level"),
                ("event.category", "Category"), ("event.outcome", "Outcome"), ("message", "Message"),
                ("source.ip", "Address"), ("user.name", "User"), ("http.request.method", "Method"),
                ("url.path", "Path"), ("url.query", "Query (redacted)"), ("http.response.status_code", "Status"),
                ("http.request.id", "Request id"), ("event.id", "Event id"), ("rule.id", "Rule"),
                ("kevlar.family", "Family"), ("kevlar.location", "Where"), ("kevlar.excerpt", "Excerpt (redacted)"),
                ("kevlar.score", "Score"), ("kevlar.mode", "Mode"), ("kevlar.blocked", "Blocked"),
                ("kevlar.reading", "Reading"), ("kevlar.source", "Source"), ("kevlar.change", "Change"),
            ]))
            @let ip = field(doc, "source.ip");
            @if !ip.is_empty() {
                p { a href={ "/blackbook/" (encode(&ip)) } { "This address in the black book" } }
            }
            @if let Some(x) = &exclusion {
                section.fp {
                    h2 { "False positive?" }
                    p { "If this request was legitimate, this exclusion stops the same findings on this path from now on:" }
                    pre.toml { (kevlar_shield::exclusions::toml(x)) }
                    form method="post" action="/exclusions" {
                        (csrf(&s))
                        input type="hidden" name="event" value=(ev.id);
                        button type="submit" { "This was legitimate" }
                    }
                }
            }
            @if !others.is_empty() {
                h2 { "Other events of this request" }
                (event_table(&others, None))
            }
            h2 { "The whole record" }
            (json_block(doc))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attack_event_proposes_its_exclusion() {
        let doc = json!({
            "event": {"action": "malicious_attack"},
            "url": {"path": "/search"},
            "kevlar": {"family": "sqli", "location": "args.q", "findings": [
                {"family": "sqli", "location": "args.q"}, {"family": "xss", "location": "body.comment"}]}
        });
        let x = proposal(&doc).unwrap();
        assert_eq!(x.path.as_deref(), Some("/search"));
        assert_eq!(x.families, ["sqli", "xss"]);
        assert_eq!(x.args, ["args.q", "body.comment"]);
        assert!(proposal(&json!({"event": {"action": "authn_login_fail"}})).is_none());
        let f = Filters { action: Some("malicious_*".into()), ..Default::default() };
        let q = f.query(10).unwrap();
        assert_eq!((q.action, q.action_prefix.as_deref()), (None, Some("malicious_")));
        assert!(Filters { since: Some("yesterday-ish".into()), ..Default::default() }.query(1).is_err());
    }
}
