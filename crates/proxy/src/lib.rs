//! The guard: Kevlar's reverse proxy. Listeners (plain and TLS), per-connection limits, request
//! checks, forwarding with a keep-alive pool, WebSocket pass-through, the security-header policy,
//! the access log, and the events the proxy itself raises. Detectors plug in through the engine;
//! nothing here knows about a sink.
#![forbid(unsafe_code)]

pub mod body;
pub mod client_ip;
pub mod csp_report;
pub mod forward;
pub mod headers;
pub mod io;
pub mod nonce;
pub mod pages;
pub mod pool;
mod server;
pub mod tls;
pub mod upstream;
pub mod validate;
pub mod wsframe;

pub use server::{Guard, GuardError, Listeners, Stats};
pub use upstream::{Upstream, UpstreamSlots};
