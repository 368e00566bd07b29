//! The cookies test: the `Set-Cookie` headers of the session's answers go into a cookie jar (with
//! the jar's rules: domain scoping, `__Secure-`/`__Host-` prefixes, replacement of a cookie with
//! the same name, domain and path), and every cookie in it is checked for `Secure`, `HttpOnly`
//! on session cookies and `SameSite`.

use std::collections::BTreeMap;

use crate::cookie_date;
use crate::jsstr;
use crate::outcome::Outcome;
use crate::suffix;
use crate::url::HttpUrl;

/// Cookies the scoring ignores.
const IGNORED: [&str; 1] = ["heroku-session-affinity"];
/// Only this many requests of a chain are looked at for cookies that expire on the way.
const MAX_REQUESTS_CHECKED: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SameSite {
    Strict,
    Lax,
    None,
}

/// A cookie as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cookie {
    pub name: String,
    pub domain: String,
    pub path: String,
    pub host_only: bool,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: Option<SameSite>,
    /// Milliseconds since 1970 after which the cookie is gone; `i64::MIN` for already gone.
    pub expires_at: Option<i64>,
}

/// A `Set-Cookie` header read (before the jar applies its rules).
#[derive(Debug, Clone, Default)]
struct Parsed {
    name: String,
    domain: Option<String>,
    path: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
    max_age: Option<MaxAge>,
    expires: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
enum MaxAge {
    Seconds(i64),
    /// A `Max-Age` too large to represent, which ends up counting as expired.
    Overflow,
}

/// Reads a `Set-Cookie` header; `None` when it has no name or holds control characters.
fn parse(header: &str) -> Option<Parsed> {
    let header = jsstr::trim(header);
    let (pair, attributes) = match header.split_once(';') {
        Some((pair, attributes)) => (pair, Some(attributes)),
        None => (header, None),
    };
    let pair = pair.split(['\n', '\r', '\0']).next().unwrap_or("");
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (jsstr::trim(name), jsstr::trim(value));
    let control = |s: &str| s.chars().any(|c| c < ' ');
    if name.is_empty() || control(name) || control(value) {
        return None;
    }
    let mut cookie = Parsed { name: name.to_owned(), ..Parsed::default() };
    for attribute in attributes.map(jsstr::trim).unwrap_or("").split(';') {
        let attribute = jsstr::trim(attribute);
        if attribute.is_empty() {
            continue;
        }
        let (key, value) = match attribute.split_once('=') {
            Some((key, value)) => (key, jsstr::trim(value)),
            None => (attribute, ""),
        };
        apply_attribute(&mut cookie, &jsstr::trim(key).to_lowercase(), value);
    }
    Some(cookie)
}

fn apply_attribute(cookie: &mut Parsed, key: &str, value: &str) {
    match key {
        "expires" if !value.is_empty() => {
            if let Some(at) = cookie_date::parse(value) {
                cookie.expires = Some(at);
            }
        }
        "max-age" if is_integer(value) => {
            let digits = value.trim_start_matches('-').trim_start_matches('0');
            cookie.max_age = Some(match value.parse::<i64>() {
                Ok(seconds) => MaxAge::Seconds(seconds),
                Err(_) if digits.len() > 308 => MaxAge::Overflow,
                Err(_) if value.starts_with('-') => MaxAge::Seconds(i64::MIN),
                Err(_) => MaxAge::Seconds(i64::MAX),
            });
        }
        "domain" if !value.is_empty() => {
            let domain = jsstr::trim(value);
            let domain = domain.strip_prefix('.').unwrap_or(domain);
            if !domain.is_empty() {
                cookie.domain = Some(domain.to_lowercase());
            }
        }
        "path" => cookie.path = value.starts_with('/').then(|| value.to_owned()),
        "secure" => cookie.secure = true,
        "httponly" => cookie.http_only = true,
        "samesite" => {
            cookie.same_site = match value.to_lowercase().as_str() {
                "strict" => Some(SameSite::Strict),
                "lax" => Some(SameSite::Lax),
                "none" => Some(SameSite::None),
                _ => None,
            }
        }
        _ => {}
    }
}

fn is_integer(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The path a request's cookies are scoped by: its path, with a query's `?` escaped.
fn request_path(url: &HttpUrl) -> String {
    match &url.query {
        Some(query) => format!("{}%3F{query}", url.path),
        None => url.path.clone(),
    }
}

/// The directory of a request path, the default `Path` of its cookies.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(at) => path.get(..at).unwrap_or("/").to_owned(),
    }
}

/// Whether `host` is `domain` or one of its subdomains (an IP address only matching itself).
fn domain_match(host: &str, domain: &str) -> bool {
    host == domain
        || (!suffix::is_ip(host)
            && host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes().get(host.len() - domain.len() - 1) == Some(&b'.'))
}

fn path_match(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

/// The cookies set along a session.
#[derive(Debug, Clone, Default)]
pub(crate) struct Jar {
    cookies: BTreeMap<(String, String, String), Cookie>,
}

impl Jar {
    /// Stores one `Set-Cookie` header received from `url`, or ignores it as the jar's rules say.
    pub(crate) fn set(&mut self, header: &str, url: &HttpUrl, now: i64) {
        let Some(parsed) = parse(header) else { return };
        let host = url.host.to_lowercase();
        let (domain, host_only) = match &parsed.domain {
            Some(domain) => {
                let canonical = domain.strip_prefix('.').unwrap_or(domain);
                if !suffix::cookie_domain_allowed(canonical) || !domain_match(&host, canonical) {
                    return;
                }
                (domain.clone(), false)
            }
            None => (host, true),
        };
        let path = parsed.path.clone().unwrap_or_else(|| default_path(&request_path(url)));
        if parsed.name.starts_with("__Secure-") && !parsed.secure {
            return;
        }
        if parsed.name.starts_with("__Host-") && !(parsed.secure && host_only && path == "/") {
            return;
        }
        let expires_at = match parsed.max_age {
            Some(MaxAge::Seconds(s)) if s <= 0 => Some(i64::MIN),
            Some(MaxAge::Seconds(s)) => Some(now.saturating_add(s.saturating_mul(1000))),
            Some(MaxAge::Overflow) => Some(i64::MIN),
            None => parsed.expires,
        };
        let cookie = Cookie {
            name: parsed.name,
            domain,
            path,
            host_only,
            secure: parsed.secure,
            http_only: parsed.http_only,
            same_site: parsed.same_site,
            expires_at,
        };
        self.cookies.insert((cookie.domain.clone(), cookie.path.clone(), cookie.name.clone()), cookie);
    }

    /// Drops the expired cookies a request to `url` would have sent, as sending them does.
    pub(crate) fn request(&mut self, url: &HttpUrl, now: i64) {
        let (host, path) = (url.host.to_lowercase(), request_path(url));
        self.cookies.retain(|_, c| {
            let sent = (if c.host_only { c.domain == host } else { domain_match(&host, &c.domain) })
                && path_match(&path, &c.path)
                && (!c.secure || url.https);
            !(sent && c.expires_at.is_some_and(|at| at <= now))
        });
    }

    /// The cookies the scoring looks at.
    pub(crate) fn cookies(&self) -> impl Iterator<Item = &Cookie> {
        self.cookies.values().filter(|c| !c.name.is_empty() && !IGNORED.contains(&c.name.as_str()))
    }
}

/// One event of a session, as the cookie jar sees it.
pub(crate) enum Step<'a> {
    /// A request is sent to this URL (carrying, and so dropping, the expired cookies it matches).
    Request(HttpUrl),
    /// An answer from this URL set these cookies.
    Answer(HttpUrl, Vec<&'a str>),
}

/// Fills a jar from a session's requests and answers.
pub(crate) fn jar_of<'a>(steps: impl IntoIterator<Item = Step<'a>>, now: i64) -> Jar {
    let mut jar = Jar::default();
    let mut requests = 0;
    for step in steps {
        match step {
            Step::Request(url) => {
                requests += 1;
                if requests <= MAX_REQUESTS_CHECKED {
                    jar.request(&url, now);
                }
            }
            Step::Answer(url, headers) => headers.into_iter().for_each(|h| jar.set(h, &url, now)),
        }
    }
    jar
}

/// Whether a raw `Set-Cookie` header carries a `SameSite` attribute that is not `Strict`, `Lax` or
/// `None`.
fn invalid_same_site(header: &str) -> bool {
    jsstr::trim(header).split(';').any(|part| {
        let mut pieces = jsstr::trim(part).split('=');
        let key = pieces.next().unwrap_or("");
        if jsstr::trim(key).to_lowercase() != "samesite" {
            return false;
        }
        match pieces.next() {
            None | Some("") => true,
            Some(value) => !matches!(jsstr::trim(value).to_lowercase().as_str(), "lax" | "strict" | "none"),
        }
    })
}

/// Results from best to worst, for keeping the worst one seen.
const ORDER: [Outcome; 7] = [
    Outcome::CookiesWithoutSecureFlagButProtectedByHsts,
    Outcome::CookiesWithoutSecureFlag,
    Outcome::CookiesSessionWithoutSecureFlagButProtectedByHsts,
    Outcome::CookiesSamesiteFlagInvalid,
    Outcome::CookiesAnticsrfWithoutSamesiteFlag,
    Outcome::CookiesSessionWithoutHttponlyFlag,
    Outcome::CookiesSessionWithoutSecureFlag,
];

fn worse(current: Option<Outcome>, new: Outcome) -> Option<Outcome> {
    let rank = |o: Outcome| ORDER.iter().position(|x| *x == o);
    match current {
        Some(old) if rank(new) <= rank(old) => Some(old),
        _ => Some(new),
    }
}

/// Runs the test on the final answer's raw `Set-Cookie` headers and the jar; `hsts` is whether
/// the HSTS test passed.
pub(crate) fn test(raw_headers: &[&str], jar: &Jar, hsts: bool) -> (Outcome, bool) {
    let mut result: Option<Outcome> = None;
    for header in raw_headers {
        if invalid_same_site(header) {
            result = worse(result, Outcome::CookiesSamesiteFlagInvalid);
        }
    }
    let cookies: Vec<&Cookie> = jar.cookies().collect();
    if cookies.is_empty() {
        return (Outcome::CookiesNotFound, true);
    }
    let mut missing_same_site = false;
    for cookie in &cookies {
        let name = cookie.name.to_lowercase();
        let session = name.contains("login") || name.contains("sess");
        if !cookie.secure && cookie.same_site == Some(SameSite::None) {
            result = worse(result, Outcome::CookiesSamesiteFlagInvalid);
        }
        if !cookie.secure {
            let flag = if hsts {
                Outcome::CookiesWithoutSecureFlagButProtectedByHsts
            } else {
                Outcome::CookiesWithoutSecureFlag
            };
            result = worse(result, flag);
        }
        if name.contains("csrf") && cookie.same_site.is_none() {
            result = worse(result, Outcome::CookiesAnticsrfWithoutSamesiteFlag);
        }
        if session && !cookie.secure {
            let flag = if hsts {
                Outcome::CookiesSessionWithoutSecureFlagButProtectedByHsts
            } else {
                Outcome::CookiesSessionWithoutSecureFlag
            };
            result = worse(result, flag);
        }
        if session && !cookie.http_only {
            result = worse(result, Outcome::CookiesSessionWithoutHttponlyFlag);
        }
        missing_same_site |= cookie.same_site.is_none();
    }
    let outcome = result.unwrap_or(if missing_same_site {
        Outcome::CookiesSecureWithHttponlySessions
    } else {
        Outcome::CookiesSecureWithHttponlySessionsAndSamesite
    });
    let pass = matches!(
        outcome,
        Outcome::CookiesSecureWithHttponlySessionsAndSamesite | Outcome::CookiesSecureWithHttponlySessions
    );
    (outcome, pass)
}
