//! Kevlar's shared vocabulary: the security event every stage speaks, its severity, the catalogue
//! of action names, and the decision a stage can take about a request; the ports the proxy calls
//! through (`Gate`, `AccessLog`). The only I/O here is the rule on the mode of Kevlar's data files
//! and the size-rotated file several crates write; every other crate points here.
#![forbid(unsafe_code)]

pub mod access;
pub mod action;
pub mod error;
pub mod event;
pub mod gate;
pub mod id;
pub mod private;
pub mod rotate;
pub mod text;
pub mod time;

pub use event::{Category, EventKind, Outcome, SecurityEvent, Severity};
pub use gate::{
    BodyScan, BodyWatch, Gate, LoginAttempt, MessageScan, Refusal, RequestContext, RequestMeta, RequestView, Verdict,
};
pub use id::RequestId;

/// What the guard does with a request after the detection stages looked at it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Forward to the application.
    Allow,
    /// Answer with this status and Kevlar's own page; never forwarded.
    Refuse { status: u16, reason: &'static str },
}
