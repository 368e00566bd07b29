//! The Logstash sink: the event as ECS JSON, one per line (`json_lines` codec of Logstash's `tcp`
//! input), over TCP or TLS.

use std::time::Duration;

use kevlar_config::LogstashSink as Config;
use kevlar_core::SecurityEvent;

use crate::util::net::{tls_config, Stream};
use crate::{Sink, SinkError};

pub struct LogstashSink {
    stream: Stream,
}

impl LogstashSink {
    pub fn new(cfg: &Config) -> Result<Self, SinkError> {
        let tls = if cfg.tls { Some(tls_config(cfg.ca_file.as_deref())?) } else { None };
        Ok(LogstashSink { stream: Stream::new(&cfg.address, tls, Duration::from_secs(10)) })
    }
}

/// `json_lines`: one JSON document per line; JSON escapes every newline inside strings.
pub fn encode(events: &[SecurityEvent]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * 512);
    for e in events {
        let _ = serde_json::to_writer(&mut out, &e.to_json());
        out.push(b'\n');
    }
    out
}

impl Sink for LogstashSink {
    fn send(&mut self, events: &[SecurityEvent]) -> Result<(), SinkError> {
        self.stream.send(&encode(events))
    }

    fn health(&mut self) -> Result<(), SinkError> {
        self.stream.check()
    }

    fn batch_size(&self) -> usize {
        500
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kevlar_core::{Category, Severity};

    #[test]
    fn one_document_per_line() {
        let a = SecurityEvent::new("malicious_attack", Category::IntrusionDetection, Severity::Warning, "two\nlines");
        let b = SecurityEvent::new("malicious_ban", Category::IntrusionDetection, Severity::Alert, "ban");
        let out = String::from_utf8(encode(&[a.clone(), b])).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["event"]["id"], a.id.as_str());
        assert_eq!(v["message"], "two\nlines");
    }
}
