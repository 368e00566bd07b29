//! RFC 5424 messages and RFC 6587 framing.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [kevlar@32473 …] MSG`. MSGID is the event
//! action; the structured data carries the event's key fields, so a log service can search them
//! without parsing the text. (32473 is the private enterprise number RFC 5612 sets aside for
//! examples; `kevlar@32473` is stable across versions.)

use std::fmt::Write;

use kevlar_config::Framing;
use kevlar_core::{SecurityEvent, Severity};

pub const SD_ID: &str = "kevlar@32473";

/// Kevlar's severities on the syslog scale, keeping the order: critical → 1 (alert),
/// alert → 2 (crit), warning → 4, notice → 5, info → 6.
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 1,
        Severity::Alert => 2,
        Severity::Warning => 4,
        Severity::Notice => 5,
        Severity::Info => 6,
    }
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, `-` when empty.
fn header_field(out: &mut String, s: &str, max: usize) {
    let start = out.len();
    out.extend(s.chars().filter(|c| c.is_ascii_graphic()).take(max));
    if out.len() == start {
        out.push('-');
    }
}

/// A structured-data value, escaped per RFC 5424 §6.3.3 (`"`, `\` and `]`), capped.
fn sd_param(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    for c in value.chars().take(256) {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

pub struct Header<'a> {
    pub facility: u8,
    pub hostname: &'a str,
    pub app_name: &'a str,
    pub procid: u32,
}

/// One message, without framing.
pub fn encode(e: &SecurityEvent, h: &Header<'_>) -> String {
    let mut m = String::with_capacity(256);
    let pri = u16::from(h.facility) * 8 + u16::from(syslog_severity(e.severity));
    let _ = write!(m, "<{pri}>1 {} ", kevlar_core::time::rfc3339_ms(e.timestamp_ms));
    header_field(&mut m, h.hostname, 255);
    m.push(' ');
    header_field(&mut m, h.app_name, 48);
    let _ = write!(m, " {} ", h.procid);
    header_field(&mut m, &e.action, 32);
    let _ = write!(m, " [{SD_ID}");
    sd_param(&mut m, "id", &e.id);
    sd_param(&mut m, "action", &e.action);
    sd_param(&mut m, "category", e.category.as_str());
    sd_param(&mut m, "severity", e.severity.as_str());
    sd_param(&mut m, "outcome", e.outcome.as_str());
    if let Some(ip) = e.source_ip {
        sd_param(&mut m, "ip", &ip.to_string());
    }
    if let Some(u) = &e.user_name {
        sd_param(&mut m, "user", u);
    }
    if let Some(x) = &e.http_method {
        sd_param(&mut m, "method", x);
    }
    if let Some(x) = &e.url_path {
        sd_param(&mut m, "path", x);
    }
    if let Some(x) = e.status_code {
        sd_param(&mut m, "status", &x.to_string());
    }
    if let Some(x) = &e.rule_id {
        sd_param(&mut m, "rule", x);
    }
    if let Some(x) = &e.request_id {
        sd_param(&mut m, "request_id", x);
    }
    m.push_str("] ");
    // The free-text part is read by people (and terminals): written out, never raw.
    m.push_str(&kevlar_core::text::printable(&e.message, 2000));
    m
}

/// Appends `msg` framed for a stream transport.
pub fn frame(msg: &str, framing: Framing, out: &mut Vec<u8>) {
    match framing {
        Framing::OctetCounting => {
            out.extend_from_slice(msg.len().to_string().as_bytes());
            out.push(b' ');
            out.extend_from_slice(msg.as_bytes());
        }
        Framing::Newline => {
            out.extend_from_slice(msg.as_bytes());
            out.push(b'\n');
        }
    }
}

/// Truncates a datagram at a character boundary: RFC 5426 receivers must take 480 octets and
/// should take 2048.
pub fn datagram(msg: &str, max: usize) -> &str {
    if msg.len() <= max {
        return msg;
    }
    let mut end = max;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    &msg[..end]
}
