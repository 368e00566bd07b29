//! The webhook sink: one HTTP POST per event, the event as ECS JSON or as Slack's `{"text": …}`,
//! with custom headers, an `Idempotency-Key` (the event id, so a receiver can drop the duplicates
//! that at-least-once delivery allows) and an optional HMAC signature.

pub mod encoder;

use kevlar_config::WebhookSink as Config;
use kevlar_core::SecurityEvent;

use crate::util::http::{agent, http_error, http_reachable};
use crate::{Sink, SinkError};

pub struct WebhookSink {
    cfg: Config,
    agent: ureq::Agent,
}

/// The event id as a header value: kept as it is when it is a valid event id (always, for
/// Kevlar's own), otherwise percent-encoded, so that no id can make the request unsendable.
pub fn idempotency_key(id: &str) -> String {
    if kevlar_core::event::is_valid_event_id(id) {
        return id.to_owned();
    }
    let mut out = String::new();
    for b in id.bytes().take(128) {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

impl WebhookSink {
    pub fn new(cfg: &Config) -> Result<Self, SinkError> {
        Ok(WebhookSink { agent: agent(cfg.timeout, cfg.ca_file.as_deref())?, cfg: cfg.clone() })
    }
}

impl Sink for WebhookSink {
    fn send(&mut self, events: &[SecurityEvent]) -> Result<(), SinkError> {
        for e in events {
            let body = encoder::body(e, self.cfg.format);
            let mut req = self
                .agent
                .post(&self.cfg.url)
                .set("Content-Type", "application/json")
                .set("Idempotency-Key", &idempotency_key(&e.id))
                .set("Kevlar-Action", &e.action);
            for (k, v) in &self.cfg.headers {
                req = req.set(k, v);
            }
            if let Some(secret) = &self.cfg.secret {
                let unix = (kevlar_core::time::now_ms() / 1000).max(0) as u64;
                req = req.set("Kevlar-Signature", &encoder::signature(secret, unix, &body));
            }
            req.send_bytes(&body).map_err(http_error)?;
        }
        Ok(())
    }

    fn health(&mut self) -> Result<(), SinkError> {
        http_reachable(&self.cfg.url, self.cfg.timeout)
    }
}
