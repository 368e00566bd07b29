//! The stage the proxy calls on every request: admission at the edge (bans, rate limits), the
//! inspection of the request (detectors), and the observation of the answer (route inventory,
//! 404 bursts). The proxy knows this trait only; the binary plugs the shield in.

use std::net::IpAddr;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::Decision;

/// What detectors see of a request. The body is the inspected prefix only.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// As received: percent-encoded.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// False when `body` is a prefix of a longer body.
    pub body_complete: bool,
}

/// Facts about a request that every stage needs for its events.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta<'a> {
    /// The client address as the proxy resolved it (trusted proxies applied).
    pub ip: IpAddr,
    pub request_id: &'a str,
    pub method: &'a str,
    /// As received: percent-encoded, without the query.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Refusal at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// Seconds, for `Retry-After`.
    pub retry_after: Option<u64>,
    pub reason: &'static str,
}

pub trait Gate: Send + Sync {
    /// Called first, before any other work on the request: banned addresses and rate limits.
    /// Must be cheap.
    fn admit(&self, meta: &RequestMeta<'_>) -> Result<(), Refusal>;

    /// How many bytes of the body to read before [`Gate::inspect`] (0: inspect without the body).
    fn body_prefix(&self, meta: &RequestMeta<'_>, content_type: Option<&str>) -> usize;

    /// Looks at the request; publishes what it finds; decides.
    fn inspect(&self, meta: &RequestMeta<'_>, view: &RequestView<'_>) -> Verdict;

    /// Called with the status of the answer (the app's or Kevlar's own); `flagged` is what
    /// [`Gate::inspect`] said.
    fn observe(&self, meta: &RequestMeta<'_>, status: u16, flagged: bool);

    /// Called with the head of the app's answer before the client sees it: login outcomes,
    /// sessions, account changes, and the `Kevlar-*` headers the app sends Kevlar (removed here).
    /// Returns a watcher when the answer's body decides something (a login outcome told by a
    /// body pattern); the proxy feeds it the body as it streams to the client.
    fn respond(
        &self,
        _meta: &RequestMeta<'_>,
        _ctx: Option<&RequestContext>,
        _status: u16,
        _headers: &mut HeaderMap,
    ) -> Option<Box<dyn BodyWatch>> {
        None
    }

    /// Called for a WebSocket upgrade before it is forwarded: a scanner for the messages the
    /// client will send through the tunnel, or `None` to relay them unread.
    fn websocket(&self, _meta: &RequestMeta<'_>) -> Option<Box<dyn MessageScan>> {
        None
    }
}

/// Sees the messages a client sends through a WebSocket tunnel, unmasked, piece by piece.
/// `Err(status)` closes the tunnel (the app never gets the message's last frame).
pub trait MessageScan: Send {
    /// A piece of the current message's payload.
    fn data(&mut self, piece: &[u8]) -> Result<(), u16>;
    /// The current message ended; the last chance to refuse it.
    fn end(&mut self) -> Result<(), u16>;
    /// A frame Kevlar cannot read (a reserved bit or opcode, an extension it did not allow).
    fn unreadable(&mut self, why: &'static str) -> Result<(), u16>;
}

/// Sees an answer's body as it streams (the first bytes only, as it chooses); `end` is called
/// once, when the body ends or is abandoned.
pub trait BodyWatch: Send {
    fn data(&mut self, chunk: &[u8]);
    fn end(self: Box<Self>);
}

/// Sees the rest of a request body as it streams to the app, after [`Gate::inspect`] saw its
/// start. `Err(status)` cuts the request: the app gets a truncated body (which its parser
/// refuses) and the client Kevlar's page with that status.
pub trait BodyScan: Send {
    fn data(&mut self, chunk: &[u8]) -> Result<(), u16>;
    /// The body ended; the last chance to refuse it.
    fn end(&mut self) -> Result<(), u16>;
}

/// What inspection concluded.
pub struct Verdict {
    pub decision: Decision,
    /// Detectors found something (whatever the mode did with it).
    pub flagged: bool,
    /// Seconds for `Retry-After` when refusing.
    pub retry_after: Option<u64>,
    /// Hold the request this long before forwarding it (a slowed-down login).
    pub delay: Option<Duration>,
    /// Headers for the request to the app (e.g. `Kevlar-Breached-Password`).
    pub add_headers: Vec<(HeaderName, HeaderValue)>,
    /// What the answer's handling needs to know about this request.
    pub context: Option<Box<RequestContext>>,
    /// For a body longer than what was read ahead: the inspection of the rest.
    pub body: Option<Box<dyn BodyScan>>,
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verdict")
            .field("decision", &self.decision)
            .field("flagged", &self.flagged)
            .field("retry_after", &self.retry_after)
            .field("delay", &self.delay)
            .field("body", &self.body.is_some())
            .finish()
    }
}

impl Verdict {
    pub const ALLOW: Verdict = Verdict {
        decision: Decision::Allow,
        flagged: false,
        retry_after: None,
        delay: None,
        add_headers: Vec::new(),
        context: None,
        body: None,
    };

    pub fn new(decision: Decision, flagged: bool) -> Verdict {
        Verdict { decision, flagged, ..Verdict::ALLOW }
    }
}

/// A login attempt found in a request, carried to its answer. Never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// The endpoint that matched (index into the configured ones, or the automatic shape).
    pub endpoint: usize,
    /// Who the attempt is for: the value of its identifier field. More than one when the request
    /// names several identities that disagree (`username=decoy&email=alice@…`, a repeated field):
    /// the app may read any of them, so the attempt counts for each and no user is told.
    pub users: Vec<String>,
    /// Why this is taken for a login (shown in the route inventory): `a form body with a
    /// password and an identifier`, `Authorization: Basic`, `[[logins.endpoint]]` …
    pub how: &'static str,
    /// The password is in the breached-password index, seen this many times.
    pub breached: Option<u64>,
}

/// Per-request facts from [`Gate::inspect`] for [`Gate::respond`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestContext {
    pub login: Option<LoginAttempt>,
    /// The user a session cookie of the request belongs to, when that is certain.
    pub session_user: Option<String>,
    /// Every user the session may belong to: the one above, or all the identities of the
    /// ambiguous login that set it (then `session_user` is `None`).
    pub session_candidates: Vec<String>,
    /// An account-change route matched (index into the configured ones).
    pub change: Option<usize>,
    /// A browser navigation (`Sec-Fetch-Mode: navigate`, or an `Accept` with `text/html`), not a
    /// page's subresource: it can tell the outcome of a login whose answer said nothing.
    pub navigation: bool,
}
