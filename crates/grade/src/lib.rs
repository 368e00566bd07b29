//! Grades a site's HTTP security headers the way the MDN HTTP Observatory's scoring does.
//!
//! The caller makes the requests described on [`Retrieved`] and fills it in; [`grade`] runs the
//! Observatory's ten tests on what came back and scores them. Nothing in this crate does I/O.
//!
//! Work is bounded by the input: bodies are read up to [`MAX_BODY_BYTES`], and every parser
//! here (CSP, cookies, HTML tags, URLs) is a single pass or a sort over its input.
#![forbid(unsafe_code)]

mod checks;
mod collate;
mod cookie_date;
mod cookies;
pub mod csp;
mod entities;
mod headers;
mod html;
mod jsstr;
mod outcome;
mod page;
mod policy;
mod sri;
mod suffix;
mod url;
mod view;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use csp::{parse_csp, parse_csp_list, Csp, CspError};
pub use outcome::Outcome;

/// The `User-Agent` every request sends.
pub const USER_AGENT: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:129.0) Gecko/20100101 Firefox/129.0 Observatory/129.0";
/// The `Accept` header of the page requests and of the CORS preflight.
pub const ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/// The `Accept` header of the robots.txt request.
pub const ROBOTS_ACCEPT: &str = "text/plain,*/*;q=0.8";
/// The `Origin` the CORS preflight sends.
pub const CORS_ORIGIN: &str = "https://http-observatory.security.mozilla.org";
/// The statuses a session follows as redirects (through their `Location` header).
pub const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];
/// The most redirects a session follows; the answer after the tenth is kept even when it is a redirect.
pub const MAX_REDIRECTS: usize = 10;
/// How much of a body is looked at: the HTML parsing for scripts and `<meta>` tags reads this many
/// bytes at most (the rest of a larger page is ignored).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// The timeout of each request, in seconds.
pub const REQUEST_TIMEOUT_SECS: u64 = 9;

/// One answer in a session's chain of redirects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hop {
    /// The absolute URL that was requested, e.g. `https://example.com/`.
    pub url: String,
    /// The status of the answer.
    pub status: u16,
    /// The response headers in the order received: lowercase names, a repeated header kept as
    /// separate entries (several `Set-Cookie`, or two `Content-Security-Policy` lines).
    pub headers: Vec<(String, String)>,
    /// Whether this hop's host is on the HSTS preload list (see [`Retrieved::preloaded`] for what
    /// counts). Only read for the hops of the `http://` session; `false` when unknown.
    pub preloaded: bool,
}

/// One session: a `GET` of a start URL, following redirects by hand and recording every answer.
///
/// How to fill it in: send `GET <start URL>` with `User-Agent: `[`USER_AGENT`] and
/// `Accept: `[`ACCEPT`], without letting the client follow redirects. While the answer's status is
/// one of [`REDIRECT_STATUSES`] and fewer than [`MAX_REDIRECTS`] redirects were followed, resolve its
/// `Location` against the hop's URL (a missing `Location` is resolved as the relative reference
/// `undefined`) and `GET` that, with the same headers, whatever the status (also after a 307/308).
/// Keep a cookie jar across the hops and send its cookies, as a browser would. Every answer,
/// including the last, is one [`Hop`]; any status is an answer (a 404 or 500 ends the chain
/// normally). Each request times out after [`REQUEST_TIMEOUT_SECS`].
///
/// TLS certificates are verified. When verification fails on any hop (expired, self-signed,
/// unknown issuer, wrong host name, …), start the whole session again with verification off and
/// set [`Session::verified_tls`] to `false`. When any request fails for another reason (DNS,
/// connection refused, timeout, TLS handshake failure), the whole session is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Every answer, in order: the start URL's answer first, the final answer last. A session with
    /// no hops counts as `None`.
    pub chain: Vec<Hop>,
    /// The final answer's body decoded as UTF-8 (lossily, after undoing any `Content-Encoding`),
    /// whatever its status; `None` when there was none. Only the first [`MAX_BODY_BYTES`] are read.
    pub body: Option<String>,
    /// `true` when every certificate verified (always `true` for a session that never reached an
    /// `https://` URL); `false` when the session had to be retried without verification.
    pub verified_tls: bool,
}

/// One answer to a request whose redirects the client followed itself (robots.txt, the CORS
/// preflight).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The URL of the final answer (after the redirects the client followed).
    pub url: String,
    /// The final answer's status.
    pub status: u16,
    /// The final answer's headers, as for [`Hop::headers`].
    pub headers: Vec<(String, String)>,
}

/// Everything the Observatory collects about a host, and which requests produce it.
///
/// Make the two sessions (they are independent and may run at the same time), then the optional
/// robots.txt request, then the CORS preflight:
///
/// 1. [`https`](Self::https): the [`Session`] started at `https://HOST/`.
/// 2. [`http`](Self::http): the [`Session`] started at `http://HOST/`.
///
/// The session "used for the tests" is `https` when it is `Some`, else `http`. The test for HSTS
/// reads the final answer of `https`, the redirection test the chain and certificate check of
/// `http`, and every other test the final answer (headers and body) of the session used for the
/// tests, the cookies being the `Set-Cookie` headers of all its hops.
///
/// 3. [`robots`](Self::robots): only when the session used for the tests has `verified_tls ==
///    false` (otherwise nothing from it is used; leave it `None`). `GET <scheme://host[:port] of
///    that session's start URL>/robots.txt` with `Accept: `[`ROBOTS_ACCEPT`] and the usual
///    `User-Agent`, the client following up to [`MAX_REDIRECTS`] redirects, TLS verification off,
///    sending the session's cookies.
/// 4. [`cors`](Self::cors): `OPTIONS <URL of the last hop of the session used for the tests>`,
///    except that in the unverified case above, when robots.txt answered 2xx, the URL is that
///    robots.txt URL (as requested, before redirects). Headers: `Origin: `[`CORS_ORIGIN`],
///    `Access-Control-Request-Method: GET`, plus the `User-Agent` and `Accept` of the sessions. The
///    client follows up to [`MAX_REDIRECTS`] redirects itself; TLS verification as in the session;
///    no cookies are sent unless the session was unverified. Store the final answer whatever its
///    status (only a 2xx counts); `None` when the request failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retrieved {
    /// The host name graded, without scheme or port, e.g. `example.com`.
    pub host: String,
    /// The session started at `https://HOST/`; `None` when it failed (see [`Session`]).
    pub https: Option<Session>,
    /// The session started at `http://HOST/`; `None` when it failed.
    pub http: Option<Session>,
    /// The answer to the robots.txt request, when it was made (step 3 above).
    pub robots: Option<Response>,
    /// The answer to the CORS preflight (step 4 above).
    pub cors: Option<Response>,
    /// Whether [`host`](Self::host) is on Chromium's HSTS preload list: listed itself with mode
    /// `force-https`, or a parent domain is listed with mode `force-https` and
    /// `include_subdomains`. `false` when unknown.
    pub preloaded: bool,
}

impl Retrieved {
    /// Whether neither session answered: the Observatory then reports the site as down instead
    /// of grading it. [`grade`] still returns a report (every test run on nothing).
    pub fn site_down(&self) -> bool {
        view::used_session(self).is_none()
    }

    /// The status of the final answer of the session used for the tests. The Observatory's own
    /// scan refuses to grade a site whose status is below 200, or 400 and above other than 401
    /// and 403.
    pub fn final_status(&self) -> Option<u16> {
        view::used_session(self).and_then(|(session, _)| session.chain.last()).map(|hop| hop.status)
    }
}

/// The outcome of one of the ten tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// The test's name, e.g. `content-security-policy`.
    pub name: &'static str,
    /// Whether the test passed.
    pub pass: bool,
    /// The result's name, e.g. `csp-implemented-with-no-unsafe`.
    pub result: &'static str,
    /// What the result adds to (or takes from) the score.
    pub modifier: i64,
    /// What the result means, in one plain-text sentence.
    pub description: String,
    /// What to do about it, in plain text; empty when nothing.
    pub recommendation: String,
}

/// A graded site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The score: 100 plus the tests' modifiers (see [`grade`]), never below 0, possibly above 100.
    pub score: i64,
    /// The letter grade: `A+`, `A`, `A-`, `B+`, `B`, `B-`, `C+`, `C`, `C-`, `D+`, `D`, `D-` or `F`.
    pub grade: String,
    /// The ten tests, in the Observatory's order.
    pub tests: Vec<TestResult>,
}

/// The score below which bonuses (positive modifiers) are not counted.
pub const MINIMUM_SCORE_FOR_EXTRA_CREDIT: i64 = 90;

/// Runs the ten tests on what was retrieved and scores them.
///
/// The score starts at 100 and adds every test's modifier; but when the score counting only the
/// penalties is below [`MINIMUM_SCORE_FOR_EXTRA_CREDIT`], the bonuses are dropped. The grade is
/// read from the score rounded down to a multiple of 5 (anything above 100 grades as 100).
pub fn grade(r: &Retrieved) -> Report {
    let view = view::View::new(r);
    let tests: Vec<TestResult> = checks::run_all(&view)
        .into_iter()
        .map(|(name, outcome, pass)| TestResult {
            name,
            pass,
            result: outcome.as_str(),
            modifier: outcome.modifier(),
            description: outcome.description().to_owned(),
            recommendation: outcome.recommendation().to_owned(),
        })
        .collect();
    let score = score_of(tests.iter().map(|t| t.modifier));
    Report { score, grade: grade_for_score(score).to_owned(), tests }
}

/// The score of a set of modifiers: 100 plus the penalties, plus the bonuses when the penalties
/// alone leave at least [`MINIMUM_SCORE_FOR_EXTRA_CREDIT`]. Never below 0.
pub fn score_of(modifiers: impl IntoIterator<Item = i64>) -> i64 {
    let (mut with_bonuses, mut penalties_only) = (100_i64, 100_i64);
    for modifier in modifiers {
        with_bonuses = with_bonuses.saturating_add(modifier);
        if modifier < 0 {
            penalties_only = penalties_only.saturating_add(modifier);
        }
    }
    let score = if penalties_only >= MINIMUM_SCORE_FOR_EXTRA_CREDIT { with_bonuses } else { penalties_only };
    score.max(0)
}

/// The letter grade of a score.
pub fn grade_for_score(score: i64) -> &'static str {
    let step = (score.max(0) - score.max(0) % 5).min(100);
    match step {
        100 => "A+",
        90 | 95 => "A",
        85 => "A-",
        80 => "B+",
        70 | 75 => "B",
        65 => "B-",
        60 => "C+",
        50 | 55 => "C",
        45 => "C-",
        40 => "D+",
        30 | 35 => "D",
        25 => "D-",
        _ => "F",
    }
}
