//! Why a request ends in Kevlar's own page instead of the app's answer: one type for every phase,
//! saying whose fault it is (the client's, the app's, Kevlar's), the status and the reason it is
//! answered with, whether it is still to be reported, and whether sending the request again is
//! safe.

use std::borrow::Cow;

use kevlar_core::{action, Severity};

use crate::body::BodyError;

/// Whose fault a refused or failed request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Party {
    /// A malformed, oversized, slow or refused request: 4xx, `input_validation_fail`.
    Client,
    /// The app refused, broke or did not answer: 502/504, `sys_upstream_*`.
    Upstream,
    /// Kevlar could not take the request now (all slots for the app busy): 503.
    Kevlar,
}

#[derive(Debug)]
pub(super) struct Fault {
    pub party: Party,
    pub status: u16,
    /// `kevlar.reason` of the event still to publish; `None` when one is already out (a ban, a
    /// detector's refusal) or none is due.
    pub reason: Option<&'static str>,
    pub message: Cow<'static, str>,
    pub retry_after: Option<u64>,
}

impl Fault {
    pub fn client(status: u16, reason: &'static str, message: impl Into<Cow<'static, str>>) -> Fault {
        Fault { party: Party::Client, status, reason: Some(reason), message: message.into(), retry_after: None }
    }

    pub fn upstream(status: u16, reason: &'static str, message: impl Into<Cow<'static, str>>) -> Fault {
        Fault { party: Party::Upstream, status, reason: Some(reason), message: message.into(), retry_after: None }
    }

    pub fn busy(reason: &'static str, message: impl Into<Cow<'static, str>>) -> Fault {
        Fault { party: Party::Kevlar, status: 503, reason: Some(reason), message: message.into(), retry_after: None }
    }

    /// Refused with `status`, already reported (or nothing to report).
    pub fn told(party: Party, status: u16) -> Fault {
        Fault { party, status, reason: None, message: Cow::Borrowed(""), retry_after: None }
    }

    pub fn retry_after(mut self, secs: Option<u64>) -> Fault {
        self.retry_after = secs;
        self
    }

    /// The event's action and severity, when one is still to publish.
    pub fn event(&self) -> Option<(&'static str, Severity)> {
        self.reason?;
        Some(match (self.party, self.status) {
            (Party::Client, _) => (action::INPUT_VALIDATION_FAIL, Severity::Notice),
            (Party::Upstream, 504) => (action::SYS_UPSTREAM_TIMEOUT, Severity::Warning),
            (Party::Upstream | Party::Kevlar, _) => (action::SYS_UPSTREAM_UNAVAILABLE, Severity::Warning),
        })
    }

    /// Whether the request may be sent again to another instance: only when the app failed and
    /// the request carried nothing that could have been consumed (the caller knows that part).
    pub fn retry_safe(&self) -> bool {
        self.party == Party::Upstream && self.status == 502
    }
}

/// One mapping of a cut-off body to the answer, wherever the body was read (ahead, or streamed).
impl From<BodyError> for Fault {
    fn from(e: BodyError) -> Fault {
        match e {
            BodyError::TooLarge => Fault::client(413, "body_too_large", "request body larger than the limit"),
            BodyError::Timeout => Fault::client(408, "slow_body", "request body stalled"),
            BodyError::Read => Fault::client(400, "malformed_body", "malformed request body"),
            BodyError::Blocked { status } => Fault::told(Party::Client, status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_failures_are_the_clients_and_one_mapping() {
        let f = Fault::from(BodyError::TooLarge);
        assert_eq!((f.party, f.status, f.reason), (Party::Client, 413, Some("body_too_large")));
        assert_eq!(f.event(), Some((action::INPUT_VALIDATION_FAIL, Severity::Notice)));
        let f = Fault::from(BodyError::Blocked { status: 403 });
        assert_eq!((f.status, f.event()), (403, None));
        assert!(!f.retry_safe());
        let f = Fault::upstream(504, "upstream_timeout", "late");
        assert_eq!(f.event(), Some((action::SYS_UPSTREAM_TIMEOUT, Severity::Warning)));
        assert!(Fault::upstream(502, "upstream_error", "x").retry_safe());
    }
}
