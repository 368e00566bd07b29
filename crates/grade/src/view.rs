//! What the tests read from a [`Retrieved`]: which session is used for the tests, its final
//! answer's folded headers, page text and `<meta>` policies, and the cookies set along the way.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::cookies::{self, Jar, Step};
use crate::headers::{trim_ows, Headers};
use crate::page::{self, Meta, Scripts};
use crate::url::{self, HttpUrl};
use crate::{Retrieved, Session, MAX_BODY_BYTES};

/// Content types read as HTML.
const HTML_TYPES: [&str; 2] = ["text/html", "application/xhtml+xml"];

/// The session used for the tests, and whether it is the `https:` one.
pub(crate) fn used_session(r: &Retrieved) -> Option<(&Session, bool)> {
    let answered = |s: &&Session| !s.chain.is_empty();
    let https = r.https.as_ref().filter(answered).map(|s| (s, true));
    https.or_else(|| r.http.as_ref().filter(answered).map(|s| (s, false)))
}

/// The final answer of the session used for the tests.
pub(crate) struct Used<'a> {
    pub session: &'a Session,
    /// Whether the session started at `https://`.
    pub https: bool,
    pub headers: Headers,
    /// The page's scripts, when the answer is HTML.
    pub scripts: Option<Scripts>,
    pub meta: Meta,
}

/// Everything the tests read.
pub(crate) struct View<'a> {
    pub host: String,
    pub preloaded: bool,
    pub used: Option<Used<'a>>,
    /// The final answer of the `https:` session (its headers, and whether its certificates verified).
    pub https: Option<(Headers, bool)>,
    pub http: Option<&'a Session>,
    /// The CORS preflight's answer, when it was a 2xx.
    pub cors: Option<Headers>,
    retrieved: &'a Retrieved,
}

impl<'a> View<'a> {
    pub(crate) fn new(r: &'a Retrieved) -> View<'a> {
        let used = used_session(r).and_then(|(session, https)| used_answer(session, https));
        let https =
            r.https.as_ref().and_then(|s| s.chain.last().map(|hop| (Headers::new(&hop.headers), s.verified_tls)));
        let cors = r.cors.as_ref().filter(|c| (200..300).contains(&c.status)).map(|c| Headers::new(&c.headers));
        View {
            host: r.host.trim().to_lowercase(),
            preloaded: r.preloaded,
            used,
            https,
            http: r.http.as_ref().filter(|s| !s.chain.is_empty()),
            cors,
            retrieved: r,
        }
    }

    /// The cookies set along the session used for the tests (and, when its certificates did not
    /// verify, by the robots.txt and CORS requests, which then share its cookies over HTTPS).
    pub(crate) fn jar(&self) -> Jar {
        let Some(used) = &self.used else { return Jar::default() };
        let mut steps = Vec::new();
        for (at, hop) in used.session.chain.iter().enumerate() {
            let Some(url) = url::parse_http(&hop.url) else { continue };
            if at > 0 {
                steps.push(Step::Request(url.clone()));
            }
            steps.push(Step::Answer(url, raw_set_cookies(&hop.headers)));
        }
        if !used.session.verified_tls {
            self.unverified_extras(used.session, &mut steps);
        }
        cookies::jar_of(steps, now_ms())
    }

    /// The robots.txt request and the CORS preflight, as the cookie jar sees them.
    fn unverified_extras(&self, session: &Session, steps: &mut Vec<Step<'a>>) {
        let start = session.chain.first().and_then(|hop| url::parse_http(&hop.url));
        let robots_url = start.map(|u| HttpUrl { path: "/robots.txt".to_owned(), query: None, ..u });
        let (robots, cors) = (self.retrieved.robots.as_ref(), self.retrieved.cors.as_ref());
        let robots_ok = robots.is_some_and(|r| (200..300).contains(&r.status));
        let cors_url =
            if robots_ok { robots_url.clone() } else { session.chain.last().and_then(|hop| url::parse_http(&hop.url)) };
        for (request, answer) in [(robots_url, robots), (cors_url, cors)] {
            if let Some(url) = request.filter(|u| u.https) {
                steps.push(Step::Request(url));
            }
            if let Some(answer) = answer {
                if let Some(url) = url::parse_http(&answer.url).filter(|u| u.https) {
                    steps.push(Step::Answer(url, raw_set_cookies(&answer.headers)));
                }
            }
        }
    }
}

fn raw_set_cookies(headers: &[(String, String)]) -> Vec<&str> {
    headers.iter().filter(|(n, _)| n.trim().eq_ignore_ascii_case("set-cookie")).map(|(_, v)| trim_ows(v)).collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn used_answer(session: &Session, https: bool) -> Option<Used<'_>> {
    let last = session.chain.last()?;
    let headers = Headers::new(&last.headers);
    let media_type = headers.first("content-type").map(|t| t.split(';').next().unwrap_or(""));
    let html = media_type.is_some_and(|t| HTML_TYPES.contains(&t));
    let text = page_text(session.body.as_deref());
    let meta = match (&text, html) {
        (Some(text), true) => page::meta_of(text),
        _ => Meta::default(),
    };
    let scripts = html.then(|| page::scripts_of(text.as_deref().unwrap_or("")));
    Some(Used { session, https, headers, scripts, meta })
}

/// The first [`MAX_BODY_BYTES`] of `s`, cut at a character boundary.
fn capped(s: &str) -> &str {
    if s.len() <= MAX_BODY_BYTES {
        return s;
    }
    let mut end = MAX_BODY_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// The page's text as the reference client hands it over: a body that parses as JSON arrives as
/// that JSON value, turned back into text the way JavaScript does; `None` for an empty or false
/// value.
fn page_text(body: Option<&str>) -> Option<String> {
    let body = capped(body?);
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    if body.is_empty() {
        return None;
    }
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Null | Value::Bool(false)) => None,
        Ok(Value::String(s)) if s.is_empty() => None,
        Ok(Value::Number(n)) if n.as_f64() == Some(0.0) => None,
        Ok(value) => Some(js_text(&value)),
        Err(_) => Some(body.to_owned()),
    }
}

/// `String(value)` for a JSON value.
fn js_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(js_text).collect::<Vec<_>>().join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}
