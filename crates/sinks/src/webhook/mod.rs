//! The webhook sink: one HTTP POST per event, the event as ECS JSON or as Slack's `{"text": …}`,
//! with custom headers, an `Idempotency-Key` (the event id, so a receiver can drop the duplicates
//! that at-least-once delivery allows) and an optional HMAC signature.

pub mod encoder;

use std::time::Duration;

use kevlar_config::WebhookSink as Config;
use kevlar_core::SecurityEvent;

use crate::util::net::{http_reachable, tls_config};
use crate::{Sink, SinkError};

pub struct WebhookSink {
    cfg: Config,
    agent: ureq::Agent,
}

/// A ureq error in words that never include the URL (a Slack webhook URL is a secret).
pub fn http_error(e: ureq::Error) -> SinkError {
    match e {
        ureq::Error::Status(code, resp) => {
            let retry = resp.header("retry-after").map(|r| format!(", retry after {r}")).unwrap_or_default();
            let msg = format!("HTTP {code} {}{retry}", resp.status_text());
            // 4xx says this request will never do (408 and 429 say: later).
            if (400..500).contains(&code) && code != 408 && code != 429 {
                SinkError::refused(msg)
            } else {
                SinkError::rejected(msg)
            }
        }
        ureq::Error::Transport(t) => {
            let msg = t.message().map(|m| format!(": {m}")).unwrap_or_default();
            SinkError::connect(format!("{}{msg}", t.kind()))
        }
    }
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

/// `host:port` of an http(s) URL.
pub fn authority(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let auth = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let auth = auth.rsplit_once('@').map_or(auth, |(_, a)| a);
    let has_port = auth.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !auth.ends_with(']');
    if has_port {
        auth.to_owned()
    } else {
        format!("{auth}:{}", if scheme == "https" { 443 } else { 80 })
    }
}

pub fn agent(timeout: Duration, ca_file: Option<&std::path::Path>) -> Result<ureq::Agent, SinkError> {
    Ok(ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .user_agent(concat!("kevlar/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls_config(ca_file)?)
        .build())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(authority("https://hooks.slack.com/services/T/B/X"), "hooks.slack.com:443");
        assert_eq!(authority("http://127.0.0.1:9/x?y"), "127.0.0.1:9");
        assert_eq!(authority("http://u:p@[::1]/x"), "[::1]:80");
    }
}
