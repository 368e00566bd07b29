//! The SMS sink, through the Twilio Messages API (any service with the same API works: the base
//! URL is configurable). One message per recipient per event, at most two segments long.

pub mod encoder;

use base64::Engine;
use kevlar_config::SmsSink as Config;
use kevlar_core::SecurityEvent;

use crate::util::http::{agent, http_error, http_reachable};
use crate::{Sink, SinkError};

pub struct SmsSink {
    cfg: Config,
    agent: ureq::Agent,
    auth: String,
}

impl SmsSink {
    pub fn new(cfg: &Config) -> Result<Self, SinkError> {
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", cfg.account_sid, cfg.auth_token))
        );
        Ok(SmsSink { agent: agent(cfg.timeout, None)?, cfg: cfg.clone(), auth })
    }
}

impl Sink for SmsSink {
    fn send(&mut self, events: &[SecurityEvent]) -> Result<(), SinkError> {
        let url = format!("{}{}", self.cfg.base_url, encoder::path(&self.cfg.account_sid));
        for e in events {
            let body = encoder::text(e);
            for to in &self.cfg.to {
                self.agent
                    .post(&url)
                    .set("Authorization", &self.auth)
                    .set("Idempotency-Key", &format!("{}-{to}", e.id))
                    .send_form(&[("To", to), ("From", &self.cfg.from), ("Body", &body)])
                    .map_err(http_error)?;
            }
        }
        Ok(())
    }

    fn health(&mut self) -> Result<(), SinkError> {
        http_reachable(&self.cfg.base_url, self.cfg.timeout)
    }
}
