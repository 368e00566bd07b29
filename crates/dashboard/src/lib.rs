//! The dashboard: what Kevlar records — attacks, probes, logins, bans, routes, the app, alerts,
//! dependencies — as pages on the admin port, rendered on the server (maud), with a little
//! JavaScript for the live feed; assets embedded in the binary. Every page reads without
//! JavaScript.
//!
//! ```text
//!  browser ──/login (token)──► session cookie + CSRF token (session.rs)
//!          ──GET pages──────► pages/*: store (events, rollups), shield, alerts, supervisor
//!          ──POST changes───► CSRF and same-origin checked here, then shield/supervisor/alerts;
//!                             each change is an `authz_admin` event with `kevlar.source = dashboard`
//! ```
#![forbid(unsafe_code)]
// Page helpers answer `Result<_, Response>`: the error is the page the handler returns as it is.
#![allow(clippy::result_large_err)]

mod chart;
mod format;
mod pages;
mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kevlar_admin::AdminState;
use kevlar_core::{action, Category, Outcome, SecurityEvent, Severity};
use serde::Deserialize;

pub use session::COOKIE;
use session::{Session, Sessions};

/// Live feeds open at once (each polls the store four times a second).
const MAX_LIVE: usize = 32;
/// A change's form is small; anything larger is refused before it is read further.
const MAX_FORM: usize = 16 * 1024;

pub(crate) struct Dash {
    pub admin: AdminState,
    pub sessions: Sessions,
    /// Served over TLS: cookies are `Secure`.
    tls: bool,
    pub live: Arc<tokio::sync::Semaphore>,
}

pub(crate) type St = State<Arc<Dash>>;

/// The dashboard's routes, to merge with the admin API's on the admin port.
pub fn router(admin: AdminState, tls: bool) -> Router {
    let st = Arc::new(Dash {
        admin,
        sessions: Sessions::default(),
        tls,
        live: Arc::new(tokio::sync::Semaphore::new(MAX_LIVE)),
    });
    let private = Router::new()
        .route("/", get(pages::overview::page))
        .route("/events", get(pages::events::list))
        .route("/events/live", get(pages::events::live))
        .route("/events/{id}", get(pages::events::show))
        .route("/exclusions", get(pages::exclusions::page).post(pages::exclusions::add))
        .route("/exclusions/{id}/remove", post(pages::exclusions::remove))
        .route("/blackbook", get(pages::blackbook::list))
        .route("/blackbook/{address}", get(pages::blackbook::show))
        .route("/blackbook/{address}/ban", post(pages::blackbook::ban))
        .route("/blackbook/{address}/unban", post(pages::blackbook::unban))
        .route("/logins", get(pages::logins::list))
        .route("/logins/{user}", get(pages::logins::show))
        .route("/routes", get(pages::routes::page))
        .route("/app", get(pages::app::page))
        .route("/app/reload", post(pages::app::reload))
        .route("/app/restart", post(pages::app::restart))
        .route("/alerts", get(pages::app::alerts))
        .route("/alerts/retry", post(pages::app::retry))
        .route("/dependencies", get(pages::app::dependencies))
        .route("/logout", post(logout))
        .layer(middleware::from_fn_with_state(st.clone(), require_session));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route(
            "/assets/dashboard.css",
            get(|| asset("text/css; charset=utf-8", include_str!("../assets/dashboard.css"))),
        )
        .route(
            "/assets/dashboard.js",
            get(|| asset("text/javascript; charset=utf-8", include_str!("../assets/dashboard.js"))),
        )
        .route("/assets/favicon.svg", get(|| asset("image/svg+xml", include_str!("../assets/favicon.svg"))))
        .merge(private)
        .layer(middleware::from_fn_with_state(st.clone(), security_headers))
        .with_state(st)
}

async fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=3600")], body).into_response()
}

/// Kevlar's own strict policy on every page: no inline script or style, nothing from elsewhere,
/// never framed, nothing cached; over TLS, HSTS for a year.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(State(d): St, req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    if d.tls {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(h, header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin");
    set(h, header::HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    r
}

fn now_ms() -> i64 {
    kevlar_core::time::now_ms()
}

fn peer(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// The session behind a request's cookie, if it still lasts.
pub(crate) fn session_of(d: &Dash, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| session::cookie(c, COOKIE))?;
    d.sessions.get(id, now_ms()).map(|s| (id.to_owned(), s))
}

/// Whether a change comes from the dashboard's own pages: the browser's `Sec-Fetch-Site` and
/// `Origin`, when sent, must say same-origin.
fn same_origin(headers: &HeaderMap) -> bool {
    // Fetch Metadata first: every current browser sends it, and it survives a `null` Origin.
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
            !host.is_empty() && rest == Some(host)
        }
    }
}

fn refused(status: StatusCode, why: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{why}\n")).into_response()
}

/// Pages need a session (else the login page); changes need a session, a same-origin request and
/// the session's CSRF token in the form.
async fn require_session(State(d): St, req: Request, next: Next) -> Response {
    let Some((_, session)) = session_of(&d, req.headers()) else {
        if req.method() == Method::GET {
            let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let next = if path == "/" { String::new() } else { format!("?next={}", format::encode(path)) };
            return Redirect::to(&format!("/login{next}")).into_response();
        }
        return refused(StatusCode::FORBIDDEN, "not signed in: open /login");
    };
    if req.method() == Method::GET || req.method() == Method::HEAD {
        let mut req = req;
        req.extensions_mut().insert(session);
        return next.run(req).await;
    }
    if !same_origin(req.headers()) {
        report_refusal(&d, &req, "cross-site request");
        return refused(StatusCode::FORBIDDEN, "refused: a change must come from the dashboard's own pages");
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return refused(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large");
    };
    let csrf = form_field(&bytes, "csrf");
    if !csrf.as_deref().is_some_and(|c| session::same(c, &session.csrf)) {
        let req = Request::from_parts(parts, Body::empty());
        report_refusal(&d, &req, "missing or wrong CSRF token");
        return refused(StatusCode::FORBIDDEN, "refused: the form's CSRF token is missing or wrong; reload the page");
    }
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(session);
    next.run(req).await
}

pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn report_refusal(d: &Dash, req: &Request, why: &str) {
    let mut ev = SecurityEvent::new(action::AUTHZ_FAIL, Category::Iam, Severity::Warning, format!("dashboard: {why}"))
        .with_outcome(Outcome::Failure)
        .with_kevlar("resource", "dashboard");
    ev.source_ip = Some(peer(req));
    ev.url_path = Some(req.uri().path().chars().take(256).collect());
    ev.http_method = Some(req.method().to_string());
    d.admin.bus.publish(ev);
}

/// Every change made through the dashboard is an event of its own.
pub(crate) fn report_change(d: &Dash, change: &str, message: String, target: Option<&str>) {
    let mut ev = SecurityEvent::new(action::AUTHZ_ADMIN, Category::Iam, Severity::Notice, message)
        .with_outcome(Outcome::Success)
        .with_kevlar("source", "dashboard")
        .with_kevlar("change", change);
    if let Some(t) = target {
        ev = ev.with_kevlar("target", t);
    }
    d.admin.bus.publish(ev);
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    failed: Option<String>,
}

async fn login_page(State(d): St, q: axum::extract::Query<LoginQuery>) -> Response {
    let token_file = d.admin.data_dir.join(kevlar_admin::TOKEN_FILE);
    pages::login(&token_file.display().to_string(), q.next.as_deref(), q.failed.is_some()).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

/// Only a path of the dashboard itself (never `//host` or a scheme).
fn local_next(next: Option<&str>) -> &str {
    // Printable ASCII only: a browser drops tabs and newlines from a URL, so `/\t/evil` would
    // become `//evil`, another site.
    let printable = |n: &str| n.bytes().all(|b| (0x21..0x7f).contains(&b));
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.starts_with("/login")
                && printable(n) =>
        {
            n
        }
        _ => "/",
    }
}

async fn login(State(d): St, req: Request) -> Response {
    let ip = peer(&req);
    if let Err((wait, first)) = d.sessions.may_try(ip, now_ms()) {
        // Said once per address and window: a flood of tries is not a flood of events.
        if first {
            report_refusal(&d, &req, "too many wrong tokens");
        }
        let mut r = refused(StatusCode::TOO_MANY_REQUESTS, "too many wrong tokens from this address; wait a minute");
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    if !same_origin(req.headers()) {
        report_refusal(&d, &req, "cross-site login");
        return refused(StatusCode::FORBIDDEN, "refused: sign in from the dashboard's own page");
    }
    let (parts, body) = req.into_parts();
    let head = Request::from_parts(parts, Body::empty());
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return refused(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large");
    };
    let Ok(f) = serde_urlencoded::from_bytes::<LoginForm>(&bytes) else {
        return refused(StatusCode::BAD_REQUEST, "expected a form with `token`");
    };
    if !session::same(f.token.trim(), &d.admin.token) {
        d.sessions.failed(ip, now_ms());
        report_refusal(&d, &head, "wrong admin token");
        let next = f.next.as_deref().map(|n| format!("&next={}", format::encode(n))).unwrap_or_default();
        return Redirect::to(&format!("/login?failed=1{next}")).into_response();
    }
    let (id, _) = match d.sessions.open(now_ms()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "dashboard: no randomness for a session");
            return refused(StatusCode::INTERNAL_SERVER_ERROR, "cannot open a session: no randomness from the OS");
        }
    };
    let secure = if d.tls { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", session::LIFETIME_MS / 1000);
    let mut ev = SecurityEvent::new(action::AUTHZ_ADMIN, Category::Iam, Severity::Info, "dashboard: signed in")
        .with_outcome(Outcome::Success)
        .with_kevlar("source", "dashboard")
        .with_kevlar("change", "login");
    ev.source_ip = Some(ip);
    d.admin.bus.publish(ev);
    let mut r = Redirect::to(local_next(f.next.as_deref())).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(d): St, headers: HeaderMap) -> Response {
    if let Some((id, _)) = session_of(&d, &headers) {
        d.sessions.close(&id);
    }
    let mut r = Redirect::to("/login").into_response();
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_next(Some("/events?action=x")), "/events?action=x");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "/login?next=/",
            "/\t/evil.example",
            "/\n/evil",
            "/ /x",
        ] {
            assert_eq!(local_next(Some(bad)), "/", "{bad}");
        }
    }

    #[test]
    fn cross_site_changes_are_told_apart() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9090"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:9090"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        assert_eq!(form_field(b"a=1&csrf=ab%20c", "csrf").as_deref(), Some("ab c"));
    }
}

/// What the dashboard reads from outside, for the fuzz target (`fuzz/fuzz_targets/dashboard_inputs.rs`):
/// a `Cookie` header, a form body, and a stored event (attacker text in every field) rendered
/// into the event table, the event's facts and its proposed exclusion.
#[doc(hidden)]
pub mod fuzzing {
    /// Answers the rendered HTML, so the target can check that no tag came from the input.
    pub fn inputs(cookie_header: &str, form: &[u8], doc: &serde_json::Value) -> String {
        let _ = crate::session::cookie(cookie_header, crate::COOKIE);
        let _ = crate::form_field(form, "csrf");
        let _ = crate::local_next(Some(cookie_header));
        let mut html = crate::pages::event_table(&[(1, doc.clone())], None).into_string();
        html.push_str(
            &crate::pages::facts(doc, &[("message", "m"), ("url.path", "p"), ("kevlar.excerpt", "e")]).into_string(),
        );
        if let Some(x) = crate::pages::events::proposal(doc) {
            let _ = kevlar_shield::exclusions::validate(&x);
            html.push_str(&maud::html! { pre { (kevlar_shield::exclusions::toml(&x)) } }.into_string());
        }
        html
    }
}
