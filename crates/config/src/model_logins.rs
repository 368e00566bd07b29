//! The validated `[logins]` section: endpoints, thresholds, account changes.

use std::time::Duration;

/// `[logins]`: seeing logins and account changes in the traffic, and what follows from them.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginsConfig {
    pub enabled: bool,
    /// With no `[[logins.endpoint]]`: recognise the common shapes (`POST /login`, `/signin`,
    /// `/api/login`, `/auth/login`, `/session(s)` with a username-like field and `password`).
    pub auto: bool,
    /// Path prefixes never taken for logins (a form that looks like one and is not).
    pub ignore: Vec<String>,
    pub endpoints: Vec<LoginEndpoint>,
    /// Cookie names taken as a session when a login sets them (and looked for afterwards).
    pub session_cookies: Vec<String>,
    /// Consecutive failures of one (user, address) pair before that pair is refused.
    pub pair_failures: u32,
    pub pair_block: Duration,
    /// Failures against one user (any address) within a day before attempts on it are slowed.
    pub user_failures: u32,
    pub user_delay: Duration,
    /// Distinct usernames failed from one address within `spray_window`: credential stuffing.
    pub spray_users: u32,
    pub spray_window: Duration,
    /// Failures in a minute above `spike_factor` × the learned per-minute baseline (and at least
    /// `spike_min`): a site-wide alert.
    pub spike_factor: u32,
    pub spike_min: u32,
    /// Networks of past successful logins, per user: IPv4 /N and IPv6 /M.
    pub new_ip_prefix_v4: u8,
    pub new_ip_prefix_v6: u8,
    /// Emails to one user about one kind of thing at most this often.
    pub notify_every: Duration,
    /// An email or password change this soon after a new-address login: account takeover alert.
    pub takeover_window: Duration,
    /// Account-change routes (`POST` with a 2xx answer by a signed-in user).
    pub changes: Vec<AccountChange>,
    /// Users, addresses and pairs tracked in memory, each.
    pub max_tracked: usize,
    /// The Pwned Passwords range API (`https://api.pwnedpasswords.com/range/`), asked about
    /// passwords the local index does not know; `None`: off.
    pub breach_api: Option<String>,
}

impl Default for LoginsConfig {
    fn default() -> Self {
        let change = |path: &str, kind: ChangeKind| AccountChange { method: "POST".into(), path: path.into(), kind };
        LoginsConfig {
            enabled: true,
            auto: true,
            ignore: Vec::new(),
            endpoints: Vec::new(),
            session_cookies: [
                "sid",
                "session",
                "sessionid",
                "connect.sid",
                "_session",
                "JSESSIONID",
                "PHPSESSID",
                "laravel_session",
                "_forum_session",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            pair_failures: 10,
            pair_block: Duration::from_secs(3600),
            user_failures: 50,
            user_delay: Duration::from_secs(2),
            spray_users: 5,
            spray_window: Duration::from_secs(600),
            spike_factor: 10,
            spike_min: 30,
            new_ip_prefix_v4: 24,
            new_ip_prefix_v6: 64,
            notify_every: Duration::from_secs(3600),
            takeover_window: Duration::from_secs(1800),
            changes: vec![
                change("/account/email", ChangeKind::Email),
                change("/account/password", ChangeKind::Password),
                change("/settings/email", ChangeKind::Email),
                change("/settings/password", ChangeKind::Password),
                change("/account", ChangeKind::Profile),
                change("/settings/profile", ChangeKind::Profile),
            ],
            max_tracked: 100_000,
            breach_api: None,
        }
    }
}

/// One `[[logins.endpoint]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginEndpoint {
    pub method: String,
    pub path: String,
    /// Field names (form or JSON, top level or dotted paths) holding the username.
    pub username: Vec<String>,
    pub password: Vec<String>,
    /// Credentials in `Authorization: Basic`.
    pub basic: bool,
    /// Statuses that mean failure (default 401, 403; 5xx are neither).
    pub failure_status: Vec<u16>,
    /// A redirect to a path starting with this means failure (e.g. back to "/login").
    pub failure_redirect: Option<String>,
    /// A redirect to a path starting with this means success.
    pub success_redirect: Option<String>,
    /// Success needs this cookie set in the answer.
    pub success_cookie: Option<String>,
    /// Text in the first 64 KiB of the answer's body that means success (its absence: failure).
    pub success_body: Option<String>,
    /// Text in the first 64 KiB of the answer's body that means failure.
    pub failure_body: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Email,
    Password,
    Profile,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Email => "email",
            ChangeKind::Password => "password",
            ChangeKind::Profile => "profile",
        }
    }
}

/// One `[[logins.change]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountChange {
    pub method: String,
    pub path: String,
    pub kind: ChangeKind,
}
