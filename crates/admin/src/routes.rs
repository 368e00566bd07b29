//! Routes of the admin API and the token check.

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kevlar_core::action;
use kevlar_core::{Category, SecurityEvent, Severity};
use kevlar_store::{EventQuery, Reader};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::AdminState;

pub(crate) fn router(state: AdminState) -> Router {
    let v1 = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/events", get(list_events).post(post_event))
        .route("/v1/app/reload", axum::routing::post(reload))
        .route("/v1/app/restart", axum::routing::post(restart))
        .route("/v1/blackbook", get(blackbook_list))
        .route("/v1/blackbook/{addr}", get(blackbook_show))
        .route("/v1/blackbook/{addr}/ban", axum::routing::post(blackbook_ban).delete(blackbook_unban))
        .route("/v1/routes", get(routes))
        .route("/v1/alerts", get(alerts_status))
        .route("/v1/alerts/retry", axum::routing::post(alerts_retry))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(v1)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn require_token(State(state): State<AdminState>, headers: HeaderMap, req: Request, next: Next) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let ok = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(state.token.as_bytes())));
    if ok {
        return next.run(req).await;
    }
    let mut ev = SecurityEvent::new(
        action::AUTHZ_FAIL,
        Category::Iam,
        Severity::Warning,
        if given.is_some() { "admin API: wrong bearer token" } else { "admin API: no bearer token" },
    )
    .with_outcome(kevlar_core::Outcome::Failure)
    .with_kevlar("resource", "admin_api");
    ev.url_path = Some(req.uri().path().chars().take(256).collect());
    ev.http_method = Some(req.method().to_string());
    state.bus.publish(ev);
    let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required (see <data-dir>/admin.token)");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    r
}

async fn status(State(state): State<AdminState>) -> Response {
    let mut v = (state.status)();
    let bus = state.bus.stats();
    v["version"] = json!(env!("CARGO_PKG_VERSION"));
    v["uptime_seconds"] = json!(state.started.elapsed().as_secs());
    v["events"] = json!({
        "published": bus.published,
        "dropped": bus.dropped.iter().map(|(n, c)| (n.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
    });
    Json(v).into_response()
}

/// Rolling, zero-downtime reload; answers when every instance is replaced (or the first failure).
async fn reload(State(state): State<AdminState>) -> Response {
    let Some(app) = &state.app else {
        return error(StatusCode::CONFLICT, "no supervised app: Kevlar runs as `kevlar guard`");
    };
    match app.reload().await {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => control_error(&e),
    }
}

async fn restart(State(state): State<AdminState>) -> Response {
    let Some(app) = &state.app else {
        return error(StatusCode::CONFLICT, "no supervised app: Kevlar runs as `kevlar guard`");
    };
    match app.restart().await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "ok": true }))).into_response(),
        Err(e) => control_error(&e),
    }
}

/// A reload the app refused (its new instance never became ready) is a `409`; a supervisor that
/// has stopped, a `503`.
fn control_error(e: &kevlar_supervisor::ControlError) -> Response {
    match e {
        kevlar_supervisor::ControlError::Stopped => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        _ => error(StatusCode::CONFLICT, &e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsParams {
    since: Option<String>,
    action: Option<String>,
    ip: Option<String>,
    after: Option<i64>,
    limit: Option<usize>,
}

/// `since` is a duration back from now (`1h`, `30m`) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Option<i64> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Some(kevlar_core::time::now_ms() - d.as_millis().min(i64::MAX as u128) as i64);
    }
    kevlar_core::time::parse_rfc3339_ms(s)
}

async fn list_events(
    State(state): State<AdminState>,
    params: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(p)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            "unknown or malformed query parameter; known: since, action, ip, after, limit",
        );
    };
    let since_ms = match p.since.as_deref().map(parse_since) {
        Some(None) => {
            return error(StatusCode::BAD_REQUEST, "`since` must be a duration (1h, 30m) or an RFC 3339 time")
        }
        Some(Some(ms)) => Some(ms),
        None => None,
    };
    let q =
        EventQuery { since_ms, action: p.action, ip: p.ip, after_id: p.after, limit: p.limit, ..Default::default() };
    let dir = state.data_dir.clone();
    let res = tokio::task::spawn_blocking(move || Reader::open(&dir).and_then(|r| r.query(&q))).await;
    match res {
        Ok(Ok(events)) => {
            let list: Vec<Value> = events
                .into_iter()
                .map(|e| {
                    let mut d = e.doc;
                    d["kevlar"]["store_id"] = json!(e.id);
                    d
                })
                .collect();
            Json(json!({ "events": list })).into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "admin: event query failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the event store could not be read")
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the event query failed"),
    }
}

/// Accepts one event (ECS JSON) and answers 201 only after it is committed to the store.
async fn post_event(
    State(state): State<AdminState>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let v = match body {
        Ok(Json(v)) => v,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "the event is larger than the admin API's limit (64 KiB)")
        }
        Err(_) => {
            return error(StatusCode::BAD_REQUEST, "the body must be a JSON event (Content-Type: application/json)")
        }
    };
    let ev = match SecurityEvent::from_json(&v).and_then(SecurityEvent::validate_reported) {
        Ok(e) => e.with_kevlar("reported_by", "admin_api"),
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, &e.0),
    };
    let event_id = ev.id.clone();
    match state.bus.publish_acked(ev).await {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id, "event_id": event_id }))).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

fn alerts(state: &AdminState) -> Result<&kevlar_sinks::Alerts, Box<Response>> {
    state
        .alerts
        .as_ref()
        .ok_or_else(|| Box::new(error(StatusCode::NOT_FOUND, "no alert sink is configured ([[alerts.sink]])")))
}

#[derive(Deserialize)]
struct AlertsParams {
    limit: Option<usize>,
}

async fn alerts_status(State(state): State<AdminState>, Query(p): Query<AlertsParams>) -> Response {
    let a = match alerts(&state) {
        Ok(a) => a.clone(),
        Err(r) => return *r,
    };
    let limit = p.limit.unwrap_or(100).min(10_000);
    let res = tokio::task::spawn_blocking(move || a.dead(limit).map(|dead| (a.status(), dead))).await;
    match res {
        Ok(Ok((mut status, dead))) => {
            status.dead = Some(dead);
            Json(status).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Deserialize, Default)]
struct RetryBody {
    ids: Option<Vec<i64>>,
    all: Option<bool>,
}

async fn alerts_retry(State(state): State<AdminState>, body: axum::body::Bytes) -> Response {
    let a = match alerts(&state) {
        Ok(a) => a.clone(),
        Err(r) => return *r,
    };
    let req: RetryBody = if body.is_empty() {
        RetryBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return error(StatusCode::BAD_REQUEST, &format!("expected {{\"ids\": [..]}} or {{\"all\": true}}: {e}"))
            }
        }
    };
    let ids = match (req.ids, req.all.unwrap_or(false)) {
        (Some(ids), false) if !ids.is_empty() => Some(ids),
        (None, true) => None,
        _ => return error(StatusCode::BAD_REQUEST, "give either `ids` (a non-empty list) or `all: true`"),
    };
    match tokio::task::spawn_blocking(move || a.retry(ids.as_deref())).await {
        Ok(Ok(n)) => Json(json!({ "retried": n })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// 400 for the caller's mistake, 500 (with the cause, once) for Kevlar's own.
fn shield_error(e: &kevlar_shield::ShieldError) -> Response {
    if e.is_client_error() {
        error(StatusCode::BAD_REQUEST, &e.to_string())
    } else {
        tracing::error!("black book: {}", kevlar_core::error::chain(e));
        error(StatusCode::INTERNAL_SERVER_ERROR, &kevlar_core::error::chain(e))
    }
}

fn shield(state: &AdminState) -> Result<&kevlar_shield::Shield, Box<Response>> {
    state.shield.as_ref().ok_or_else(|| Box::new(error(StatusCode::SERVICE_UNAVAILABLE, "detection is not running")))
}

#[derive(Deserialize)]
struct BlackbookParams {
    limit: Option<usize>,
    banned: Option<bool>,
}

async fn blackbook_list(State(state): State<AdminState>, Query(p): Query<BlackbookParams>) -> Response {
    let s = match shield(&state) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match s.list(p.limit.unwrap_or(100).min(10_000), p.banned.unwrap_or(false)) {
        Ok(v) => Json(json!({ "records": v })).into_response(),
        Err(e) => shield_error(&e),
    }
}

async fn blackbook_show(
    State(state): State<AdminState>,
    axum::extract::Path(addr): axum::extract::Path<String>,
) -> Response {
    let s = match shield(&state) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match s.show(&addr) {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no record for this address"),
        Err(e) => shield_error(&e),
    }
}

#[derive(Deserialize, Default)]
struct BanBody {
    #[serde(rename = "for")]
    duration: Option<String>,
    reason: Option<String>,
}

async fn blackbook_ban(
    State(state): State<AdminState>,
    axum::extract::Path(addr): axum::extract::Path<String>,
    body: Option<Json<BanBody>>,
) -> Response {
    let s = match shield(&state) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let dur = match body.duration.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            return error(StatusCode::BAD_REQUEST, "`for` is not a duration (examples: \"1h\", \"30m\", \"7d\")")
        }
    };
    let reason = body.reason.map(|r| r.chars().take(200).collect());
    match s.manual_ban(&addr, dur, reason) {
        Ok(v) => Json(v).into_response(),
        Err(e) => shield_error(&e),
    }
}

async fn blackbook_unban(
    State(state): State<AdminState>,
    axum::extract::Path(addr): axum::extract::Path<String>,
) -> Response {
    let s = match shield(&state) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match s.unban(&addr) {
        Ok(true) => Json(json!({ "unbanned": addr })).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "this address is not banned"),
        Err(e) => shield_error(&e),
    }
}

async fn routes(State(state): State<AdminState>) -> Response {
    match shield(&state) {
        Ok(s) => Json(json!({ "routes": s.routes() })).into_response(),
        Err(r) => *r,
    }
}
