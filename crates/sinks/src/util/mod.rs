//! Shared plumbing for sinks: the durable outbox, retry delays, rate limits, connections.

pub mod http;
pub mod net;
pub mod outbox;
pub mod rate;
pub mod retry;
