//! `SecurityEvent`: the one record every sensor emits and every consumer reads.
//!
//! Field names follow the Elastic Common Schema; `event.action` names follow the OWASP Logging
//! Vocabulary. The JSON form nests objects as ECS does (`{"source":{"ip":"…"}}`). The contract
//! is written down in `docs/events.md`; change both together.

use std::fmt;
use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::time;

/// How bad an event is. Numeric in `event.severity` (1–5), named in `log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info = 1,
    Notice = 2,
    Warning = 3,
    Alert = 4,
    Critical = 5,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Alert => "alert",
            Severity::Critical => "critical",
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Some(match n {
            1 => Severity::Info,
            2 => Severity::Notice,
            3 => Severity::Warning,
            4 => Severity::Alert,
            5 => Severity::Critical,
            _ => return None,
        })
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "notice" => Severity::Notice,
            "warning" | "warn" => Severity::Warning,
            "alert" => Severity::Alert,
            "critical" => Severity::Critical,
            other => return other.parse().ok().and_then(Self::from_number),
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ECS `event.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Something happened (a login, a startup).
    Event,
    /// Something that needs a look (an attack, a crash loop).
    Alert,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Event => "event",
            EventKind::Alert => "alert",
        }
    }
}

/// ECS `event.category` (the subset Kevlar uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Authentication,
    IntrusionDetection,
    Web,
    Process,
    Configuration,
    Iam,
    /// Known vulnerabilities in the app's dependencies or runtime.
    Vulnerability,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::IntrusionDetection => "intrusion_detection",
            Category::Web => "web",
            Category::Process => "process",
            Category::Configuration => "configuration",
            Category::Iam => "iam",
            Category::Vulnerability => "vulnerability",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "authentication" => Category::Authentication,
            "intrusion_detection" => Category::IntrusionDetection,
            "web" => Category::Web,
            "process" => Category::Process,
            "configuration" => Category::Configuration,
            "iam" => Category::Iam,
            "vulnerability" => Category::Vulnerability,
            _ => return None,
        })
    }
}

/// ECS `event.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One security-relevant thing that happened.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    /// `event.id`: random, unique; an idempotency key for every sink.
    pub id: String,
    /// `@timestamp`, milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// `event.action`, from the OWASP Logging Vocabulary (`authn_login_fail`, `sys_startup` …).
    pub action: String,
    pub kind: EventKind,
    pub category: Category,
    pub outcome: Outcome,
    pub severity: Severity,
    pub message: String,
    pub source_ip: Option<IpAddr>,
    pub user_name: Option<String>,
    pub url_path: Option<String>,
    pub url_query: Option<String>,
    pub http_method: Option<String>,
    pub status_code: Option<u16>,
    pub user_agent: Option<String>,
    pub rule_id: Option<String>,
    pub rule_name: Option<String>,
    /// `http.request.id`: the request that caused the event.
    pub request_id: Option<String>,
    /// Kevlar-specific fields, under `kevlar` in the JSON form.
    pub kevlar: Map<String, Value>,
}

/// Why a JSON document is not an acceptable event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventJsonError(pub String);

impl fmt::Display for EventJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EventJsonError {}

/// `event.severity`, `event.category`, `event.outcome` and `event.kind` of an event's JSON, each
/// with its default (info, web, unknown, and alert for severity alert and above).
fn event_fields(ev: &Map<String, Value>) -> Result<(Severity, Category, Outcome, EventKind), EventJsonError> {
    let err = |m: &str| EventJsonError(m.to_owned());
    let severity = match ev.get("severity") {
        None => Severity::Info,
        Some(Value::Number(n)) => {
            n.as_i64().and_then(Severity::from_number).ok_or_else(|| err("`event.severity` must be 1 to 5"))?
        }
        Some(Value::String(s)) => Severity::parse(s).ok_or_else(|| err("unknown `event.severity`"))?,
        Some(_) => return Err(err("`event.severity` must be a number or a name")),
    };
    let category = match ev.get("category") {
        None => Category::Web,
        Some(Value::String(s)) => Category::parse(s).ok_or_else(|| err("unknown `event.category`"))?,
        Some(Value::Array(a)) => a
            .first()
            .and_then(Value::as_str)
            .and_then(Category::parse)
            .ok_or_else(|| err("unknown `event.category`"))?,
        Some(_) => return Err(err("`event.category` must be a string or an array")),
    };
    let outcome = match ev.get("outcome").and_then(Value::as_str) {
        Some("success") => Outcome::Success,
        Some("failure") => Outcome::Failure,
        Some("unknown") | None => Outcome::Unknown,
        Some(_) => return Err(err("`event.outcome` must be success, failure or unknown")),
    };
    let kind = match ev.get("kind").and_then(Value::as_str) {
        Some("alert") => EventKind::Alert,
        Some("event") => EventKind::Event,
        None => {
            if severity >= Severity::Alert {
                EventKind::Alert
            } else {
                EventKind::Event
            }
        }
        Some(_) => return Err(err("`event.kind` must be event or alert")),
    };
    Ok((severity, category, outcome, kind))
}

/// An action name is lowercase ASCII letters, digits, `_` and `:`, 1 to 64 characters.
pub fn is_valid_action(action: &str) -> bool {
    !action.is_empty()
        && action.len() <= 64
        && action.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b':')
}

const MAX_TEXT: usize = 2048;

/// `kevlar.*` keys Kevlar itself acts on (who gets a notice, which sink an event is about, what a
/// digest counted): an event reported from outside cannot set them.
pub const RESERVED_KEVLAR_KEYS: &[&str] = &[
    "notify_email",
    "notify",
    "notify_throttled",
    "deliver_to",
    "sink",
    "sink_type",
    "digest",
    "digest_count",
    "repeat_count",
    "repeat_window_s",
    "reported_by",
];

/// An event id is 1 to 128 characters of ASCII letters, digits, `-`, `_`, `.` and `:` (it goes
/// into headers such as `Idempotency-Key` and into syslog structured data).
pub fn is_valid_event_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl SecurityEvent {
    /// A new event stamped now, with a fresh id and the given action.
    pub fn new(action: &str, category: Category, severity: Severity, message: impl Into<String>) -> Self {
        SecurityEvent {
            id: crate::id::event_id(),
            timestamp_ms: time::now_ms(),
            action: action.to_owned(),
            kind: if severity >= Severity::Alert { EventKind::Alert } else { EventKind::Event },
            category,
            outcome: Outcome::Unknown,
            severity,
            message: message.into(),
            source_ip: None,
            user_name: None,
            url_path: None,
            url_query: None,
            http_method: None,
            status_code: None,
            user_agent: None,
            rule_id: None,
            rule_name: None,
            request_id: None,
            kevlar: Map::new(),
        }
    }

    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn with_kevlar(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.kevlar.insert(key.to_owned(), value.into());
        self
    }

    /// The ECS JSON form, with nested objects. Absent fields are omitted.
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        root.insert("@timestamp".into(), json!(time::rfc3339_ms(self.timestamp_ms)));
        root.insert(
            "event".into(),
            json!({
                "id": self.id,
                "kind": self.kind.as_str(),
                "category": [self.category.as_str()],
                "action": self.action,
                "outcome": self.outcome.as_str(),
                "severity": self.severity as i64,
            }),
        );
        root.insert("log".into(), json!({ "level": self.severity.as_str() }));
        root.insert("message".into(), json!(self.message));
        if let Some(ip) = self.source_ip {
            root.insert("source".into(), json!({ "ip": ip.to_string() }));
        }
        if let Some(user) = &self.user_name {
            root.insert("user".into(), json!({ "name": user }));
        }
        let mut url = Map::new();
        if let Some(p) = &self.url_path {
            url.insert("path".into(), json!(p));
        }
        if let Some(q) = &self.url_query {
            url.insert("query".into(), json!(q));
        }
        if !url.is_empty() {
            root.insert("url".into(), Value::Object(url));
        }
        let mut request = Map::new();
        if let Some(m) = &self.http_method {
            request.insert("method".into(), json!(m));
        }
        if let Some(id) = &self.request_id {
            request.insert("id".into(), json!(id));
        }
        let mut http = Map::new();
        if !request.is_empty() {
            http.insert("request".into(), Value::Object(request));
        }
        if let Some(s) = self.status_code {
            http.insert("response".into(), json!({ "status_code": s }));
        }
        if !http.is_empty() {
            root.insert("http".into(), Value::Object(http));
        }
        if let Some(ua) = &self.user_agent {
            root.insert("user_agent".into(), json!({ "original": ua }));
        }
        let mut rule = Map::new();
        if let Some(id) = &self.rule_id {
            rule.insert("id".into(), json!(id));
        }
        if let Some(name) = &self.rule_name {
            rule.insert("name".into(), json!(name));
        }
        if !rule.is_empty() {
            root.insert("rule".into(), Value::Object(rule));
        }
        if !self.kevlar.is_empty() {
            root.insert("kevlar".into(), Value::Object(self.kevlar.clone()));
        }
        Value::Object(root)
    }

    /// Reads the ECS JSON form back. Missing optional fields are fine; `event.action` is required;
    /// an absent id or timestamp is filled in. Text fields are capped so a hostile reporter cannot
    /// store megabytes per event.
    pub fn from_json(v: &Value) -> Result<Self, EventJsonError> {
        let err = |m: &str| EventJsonError(m.to_owned());
        let obj = v.as_object().ok_or_else(|| err("an event must be a JSON object"))?;
        let ev = obj.get("event").and_then(Value::as_object).ok_or_else(|| err("missing object `event`"))?;
        let action = ev.get("action").and_then(Value::as_str).ok_or_else(|| err("missing string `event.action`"))?;
        if !is_valid_action(action) {
            return Err(err("`event.action` must be 1-64 characters of a-z, 0-9, `_` and `:`"));
        }
        let (severity, category, outcome, kind) = event_fields(ev)?;
        let text = |path: &[&str]| -> Result<Option<String>, EventJsonError> {
            let mut cur = v;
            for p in path {
                match cur.get(p) {
                    Some(next) => cur = next,
                    None => return Ok(None),
                }
            }
            match cur {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(cap(s))),
                _ => Err(EventJsonError(format!("`{}` must be a string", path.join(".")))),
            }
        };
        let source_ip = match text(&["source", "ip"])? {
            None => None,
            Some(s) => Some(s.parse().map_err(|_| err("`source.ip` is not an IP address"))?),
        };
        let timestamp_ms = match text(&["@timestamp"])? {
            None => time::now_ms(),
            Some(s) => time::parse_rfc3339_ms(&s).ok_or_else(|| err("`@timestamp` is not RFC 3339"))?,
        };
        let status_code = match v.get("http").and_then(|h| h.get("response")).and_then(|r| r.get("status_code")) {
            None | Some(Value::Null) => None,
            Some(n) => Some(
                n.as_u64()
                    .filter(|c| (100..=999).contains(c))
                    .ok_or_else(|| err("`http.response.status_code` must be 100-999"))? as u16,
            ),
        };
        let kevlar = match obj.get("kevlar") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => {
                if serde_json::to_string(m).map(|s| s.len()).unwrap_or(usize::MAX) > 16 * 1024 {
                    return Err(err("`kevlar` is larger than 16 KiB"));
                }
                m.clone()
            }
            Some(_) => return Err(err("`kevlar` must be an object")),
        };
        Ok(SecurityEvent {
            id: text(&["event", "id"])?.unwrap_or_else(crate::id::event_id),
            timestamp_ms,
            action: action.to_owned(),
            kind,
            category,
            outcome,
            severity,
            message: text(&["message"])?.unwrap_or_default(),
            source_ip,
            user_name: text(&["user", "name"])?,
            url_path: text(&["url", "path"])?,
            url_query: text(&["url", "query"])?,
            http_method: text(&["http", "request", "method"])?,
            status_code,
            user_agent: text(&["user_agent", "original"])?,
            rule_id: text(&["rule", "id"])?,
            rule_name: text(&["rule", "name"])?,
            request_id: text(&["http", "request", "id"])?,
            kevlar,
        })
    }
}

impl SecurityEvent {
    /// The stricter rules for an event reported from outside (the admin API), on top of what
    /// [`SecurityEvent::from_json`] checks: an id fit for a header, no character in any text that
    /// could forge a line or reorder what a reader sees (`text::is_unsafe`; a message may hold line
    /// feeds and tabs, which are written out where people read it), and no `kevlar.*` key
    /// Kevlar acts on (those are removed: a reported event cannot address a user notice).
    pub fn validate_reported(mut self) -> Result<Self, EventJsonError> {
        if !is_valid_event_id(&self.id) {
            return Err(EventJsonError(
                "`event.id` must be 1-128 characters of ASCII letters, digits, `-`, `_`, `.` and `:`".into(),
            ));
        }
        let fields = [
            ("message", Some(&self.message)),
            ("user.name", self.user_name.as_ref()),
            ("url.path", self.url_path.as_ref()),
            ("url.query", self.url_query.as_ref()),
            ("http.request.method", self.http_method.as_ref()),
            ("http.request.id", self.request_id.as_ref()),
            ("user_agent.original", self.user_agent.as_ref()),
            ("rule.id", self.rule_id.as_ref()),
            ("rule.name", self.rule_name.as_ref()),
        ];
        for (name, v) in fields {
            // A message may run over lines (a reporter's stack trace); it is written out wherever
            // people read it. Every other field is one line.
            let allowed = |c: char| name == "message" && matches!(c, '\n' | '\t');
            if v.is_some_and(|v| v.chars().any(|c| crate::text::is_unsafe(c) && !allowed(c))) {
                return Err(EventJsonError(format!(
                    "`{name}` must not contain control characters (CR, LF, ESC …), bidirectional controls or line separators"
                )));
            }
        }
        for k in RESERVED_KEVLAR_KEYS {
            self.kevlar.remove(*k);
        }
        Ok(self)
    }
}

fn cap(s: &str) -> String {
    capped(s, MAX_TEXT)
}

/// At most `max` bytes of `s`, cut on a character boundary: text from clients is bounded before
/// it is kept.
/// A query string for a record (event, access log): values of secret-like parameters
/// (`password`, `token`, `secret`, `session`, `auth`, `key`, `otp`, …) replaced by `[redacted]`,
/// then capped at `max` bytes.
pub fn redacted_query(q: &str, max: usize) -> String {
    const SECRET: [&str; 11] =
        ["pass", "pwd", "secret", "token", "session", "auth", "key", "otp", "credential", "sig", "code"];
    let secret = |k: &str| {
        let k = k.to_ascii_lowercase();
        SECRET.iter().any(|s| k.contains(s))
    };
    if !q.split('&').any(|p| secret(p.split('=').next().unwrap_or(""))) {
        return capped(q, max);
    }
    let out: Vec<String> = q
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if secret(k) => format!("{k}=[redacted]"),
            _ => p.to_owned(),
        })
        .collect();
    capped(&out.join("&"), max)
}

pub fn capped(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod redaction_tests {
    #[test]
    fn secret_parameters_are_redacted() {
        assert_eq!(super::redacted_query("q=shoes&page=2", 100), "q=shoes&page=2");
        assert_eq!(
            super::redacted_query("user=a&password=hunter2&api_key=k1&Session_ID=s", 100),
            "user=a&password=[redacted]&api_key=[redacted]&Session_ID=[redacted]"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_form_nests_like_ecs_and_round_trips() {
        let mut e = SecurityEvent::new("authn_login_fail", Category::Authentication, Severity::Warning, "bad password")
            .with_outcome(Outcome::Failure)
            .with_kevlar("reason", "wrong_password");
        e.source_ip = Some("203.0.113.9".parse().unwrap());
        e.user_name = Some("ada@example.com".into());
        e.request_id = Some("abc".into());
        e.status_code = Some(401);
        let j = e.to_json();
        assert_eq!(j["source"]["ip"], "203.0.113.9");
        assert_eq!(j["event"]["action"], "authn_login_fail");
        assert_eq!(j["event"]["category"][0], "authentication");
        assert_eq!(j["http"]["request"]["id"], "abc");
        assert_eq!(j["http"]["response"]["status_code"], 401);
        assert_eq!(j["log"]["level"], "warning");
        let back = SecurityEvent::from_json(&j).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn rejects_bad_documents_with_a_reason() {
        assert!(SecurityEvent::from_json(&json!([])).is_err());
        assert!(SecurityEvent::from_json(&json!({"event": {}})).unwrap_err().0.contains("event.action"));
        assert!(SecurityEvent::from_json(&json!({"event": {"action": "Bad Name"}})).is_err());
        assert!(SecurityEvent::from_json(&json!({"event": {"action": "x", "severity": 9}})).is_err());
        assert!(SecurityEvent::from_json(&json!({"event": {"action": "x"}, "source": {"ip": "nope"}})).is_err());
        let long = "a".repeat(10_000);
        let e = SecurityEvent::from_json(&json!({"event": {"action": "x"}, "message": long})).unwrap();
        assert_eq!(e.message.len(), MAX_TEXT);
    }
}
