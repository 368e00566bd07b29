//! Outputs of the pipeline: the access log, and the alert sinks — syslog, Logstash, webhook,
//! email, SMS, file and stdout — fed from the event store through one durable outbox.
//!
//! ```text
//!  events.db ──► feeder: router (rules, dedup) ──► outbox.db ──► one worker per sink ──► peer
//!   (store)        cursor + deliveries in one transaction      retry, budget, digest, health
//! ```
//!
//! Each sink lives in its own folder with the same anatomy as the others: `mod.rs` (build from
//! its config, send, health check), `encoder.rs` where it has a wire format, and its tests.
//! Retry delays, rate budgets, connections and the outbox are shared once in `util/`.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod dispatch;
pub mod email;
pub mod file;
pub mod logstash;
pub mod render;
pub mod router;
pub mod sms;
pub mod syslog;
pub mod util;
pub mod webhook;

use std::fmt;

pub use access_log::{AccessLogger, AccessTarget};
pub use dispatch::Alerts;
use kevlar_config::{SinkConfig, SinkKind};
use kevlar_core::SecurityEvent;

/// Why a delivery or a health check failed. The message never carries a secret (webhook URLs and
/// credentials are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The sink's settings cannot work (a bad CA file, an invalid address); retrying will not help.
    Config,
    /// The peer could not be reached.
    Connect,
    /// The connection broke while sending.
    Io,
    /// The peer answered and refused for now (an SMTP 4xx reply, HTTP 5xx, 408 or 429): this
    /// delivery is tried again later, the others go on.
    Rejected,
    /// This delivery can never succeed (an address the mail library refuses, an SMTP 5xx reply,
    /// an HTTP 4xx): a dead letter at once.
    Refused,
}

impl SinkError {
    pub fn config(m: impl Into<String>) -> Self {
        SinkError { kind: ErrorKind::Config, message: m.into() }
    }
    pub fn connect(m: impl Into<String>) -> Self {
        SinkError { kind: ErrorKind::Connect, message: m.into() }
    }
    pub fn io(e: std::io::Error) -> Self {
        SinkError { kind: ErrorKind::Io, message: e.to_string() }
    }
    pub fn rejected(m: impl Into<String>) -> Self {
        SinkError { kind: ErrorKind::Rejected, message: m.into() }
    }
    pub fn refused(m: impl Into<String>) -> Self {
        SinkError { kind: ErrorKind::Refused, message: m.into() }
    }

    /// Retrying this delivery cannot help: it goes to the dead letters now. A settings problem
    /// found while sending (`Config`) is about the delivery at hand (its address, its id).
    pub fn is_permanent(&self) -> bool {
        matches!(self.kind, ErrorKind::Refused | ErrorKind::Config)
    }

    /// The peer answered about this one delivery (rather than being unreachable): it waits on
    /// its own backoff and does not hold back the others.
    pub fn is_per_delivery(&self) -> bool {
        matches!(self.kind, ErrorKind::Rejected | ErrorKind::Refused | ErrorKind::Config)
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SinkError {}

/// One destination. Called from the sink's own worker thread, so blocking I/O is fine.
pub trait Sink: Send {
    /// Delivers the batch; `Ok` only when the peer took all of it.
    fn send(&mut self, events: &[SecurityEvent]) -> Result<(), SinkError>;
    /// Whether the peer is reachable now (connects; sends nothing a reader would see).
    fn health(&mut self) -> Result<(), SinkError>;
    /// How many deliveries one `send` takes.
    fn batch_size(&self) -> usize {
        1
    }
}

/// Builds the sink a `[[alerts.sink]]` table describes.
pub fn build(cfg: &SinkConfig, data_dir: &std::path::Path) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match &cfg.kind {
        SinkKind::Syslog(c) => Box::new(syslog::SyslogSink::new(c)?),
        SinkKind::Logstash(c) => Box::new(logstash::LogstashSink::new(c)?),
        SinkKind::Webhook(c) => Box::new(webhook::WebhookSink::new(c)?),
        SinkKind::Email(c) => Box::new(email::EmailSink::new(c)?),
        SinkKind::Sms(c) => Box::new(sms::SmsSink::new(c)?),
        SinkKind::File(c) => Box::new(file::FileSink::new(c, data_dir)?),
        SinkKind::Stdout => Box::new(file::StdoutSink),
    })
}
