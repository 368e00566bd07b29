//! The stage the proxy calls on every request: admission at the edge (bans, rate limits), the
//! inspection of the request (detectors), and the observation of the answer (route inventory,
//! 404 bursts). The proxy knows this trait only; the binary plugs the shield in.

use std::net::IpAddr;

use http::HeaderMap;

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
}

/// What inspection concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// Detectors found something (whatever the mode did with it).
    pub flagged: bool,
}

impl Verdict {
    pub const ALLOW: Verdict = Verdict { decision: Decision::Allow, flagged: false };
}
