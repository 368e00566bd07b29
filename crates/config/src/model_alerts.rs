//! The validated `[alerts]` section: sinks, their routes, delivery and budgets.

use ipnet::IpNet;
use std::path::PathBuf;
use std::time::Duration;

/// `[alerts]`: where security events go besides the store, and how they get there.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// A delivery that failed this many times moves to the dead letters (`kevlar alerts`).
    pub max_attempts: u32,
    /// Retry delays grow from `backoff_min`, doubling with jitter, up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How often an idle sink's peer is checked.
    pub health_interval: Duration,
    /// The outbox refuses new deliveries (counting them) beyond this many waiting ones.
    pub max_pending: u64,
    /// Notices to users (new sign-in, changed email …), per mailbox (a `+tag` and case ignored):
    /// beyond it they are dropped. Apart from every sink's own budget.
    pub user_notices: (u32, Duration),
    /// Notices to users in all; beyond it they wait.
    pub user_notices_total: (u32, Duration),
    pub sinks: Vec<SinkConfig>,
    pub routes: Vec<AlertRoute>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            max_attempts: 20,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            health_interval: Duration::from_secs(30),
            max_pending: 5_000_000,
            user_notices: (5, Duration::from_secs(3600)),
            user_notices_total: (200, Duration::from_secs(3600)),
            sinks: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// One `[[alerts.sink]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    pub name: String,
    pub kind: SinkKind,
    /// The same (action, address) within this window is sent once, then once more with a count.
    pub dedup: Option<Duration>,
    /// Every delivery is held and sent as one summary per window.
    pub digest: Option<Duration>,
    /// At most `count` messages per `per`; the rest wait and leave as one summary.
    pub rate_limit: Option<(u32, Duration)>,
}

impl SinkConfig {
    /// Email, SMS and webhooks page people; the others ship logs.
    pub fn pages_people(&self) -> bool {
        matches!(self.kind, SinkKind::Email(_) | SinkKind::Sms(_) | SinkKind::Webhook(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    Syslog(SyslogSink),
    Logstash(LogstashSink),
    Webhook(WebhookSink),
    Email(EmailSink),
    Sms(SmsSink),
    File(FileSink),
    Stdout,
}

impl SinkKind {
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::Syslog(_) => "syslog",
            SinkKind::Logstash(_) => "logstash",
            SinkKind::Webhook(_) => "webhook",
            SinkKind::Email(_) => "email",
            SinkKind::Sms(_) => "sms",
            SinkKind::File(_) => "file",
            SinkKind::Stdout => "stdout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// RFC 6587 §3.4.1: `LEN SP MSG`.
    OctetCounting,
    /// RFC 6587 §3.4.2: `MSG LF`.
    Newline,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyslogSink {
    /// `host:port`.
    pub address: String,
    pub transport: Transport,
    pub framing: Framing,
    pub app_name: String,
    /// `None`: the machine's host name.
    pub hostname: Option<String>,
    /// 0–23; 4 = auth, 10 = authpriv, 16 = local0.
    pub facility: u8,
    /// PEM roots for TLS besides the public ones.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogstashSink {
    pub address: String,
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The event as ECS JSON.
    Json,
    /// `{"text": "…"}`, what Slack (and Mattermost, Rocket.Chat, Teams' Slack mode) accept.
    Slack,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSink {
    pub url: String,
    pub format: WebhookFormat,
    pub headers: Vec<(String, String)>,
    /// Signs each body: `Kevlar-Signature: t=…,v1=hex(HMAC-SHA256(secret, "t.body"))`.
    pub secret: Option<String>,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on loopback.
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailSink {
    pub server: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmsSink {
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    pub to: Vec<String>,
    /// `https://api.twilio.com` unless set.
    pub base_url: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileSink {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub keep: usize,
}

/// One `[[alerts.route]]`: events that match every given condition go to `sinks`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertRoute {
    /// Event actions; a trailing `*` matches a prefix.
    pub actions: Vec<String>,
    /// ECS categories, or `malicious-traffic` for every `malicious_*` event.
    pub categories: Vec<String>,
    /// 1 info … 5 critical.
    pub min_severity: Option<u8>,
    pub addresses: Vec<IpNet>,
    pub users: Vec<String>,
    pub sinks: Vec<String>,
}
