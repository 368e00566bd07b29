//! The validated configuration: domain types with their defaults. Nothing here is raw text.

use kevlar_core::action;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

pub use crate::model_alerts::*;
pub use crate::model_logins::*;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the configuration came from; `None` for the embedded defaults.
    pub source: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub proxy: ProxyConfig,
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
    pub headers: HeadersConfig,
    pub admin: AdminConfig,
    pub store: StoreConfig,
    pub access_log: AccessLog,
    pub app: AppConfig,
    pub detect: DetectConfig,
    pub blackbook: BlackbookConfig,
    pub bans: BansConfig,
    pub ratelimit: RateLimitConfig,
    pub routes: RoutesConfig,
    /// `[cluster]`: share bans with the other instances through Redis.
    pub cluster: Option<ClusterConfig>,
    pub audit: AuditConfig,
    pub alerts: AlertsConfig,
    pub logins: LoginsConfig,
    /// `[[watch]]`: server logs whose logins feed the same counters and jails.
    pub watch: Vec<WatchSource>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            data_dir: PathBuf::from(".kevlar"),
            proxy: ProxyConfig::default(),
            tls: None,
            limits: Limits::default(),
            headers: HeadersConfig::default(),
            admin: AdminConfig::default(),
            store: StoreConfig::default(),
            access_log: AccessLog::default(),
            app: AppConfig::default(),
            detect: DetectConfig::default(),
            blackbook: BlackbookConfig::default(),
            bans: BansConfig::default(),
            ratelimit: RateLimitConfig::default(),
            routes: RoutesConfig::default(),
            cluster: None,
            audit: AuditConfig::default(),
            alerts: AlertsConfig::default(),
            logins: LoginsConfig::default(),
            watch: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    /// The application's address (`http://host:port`); `kevlar run` fills it in itself.
    pub upstream: Option<http::Uri>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Proxy worker threads, each with its own listener and upstream pool; 0 = one per core.
    pub workers: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            upstream: None,
            trusted_proxies: Vec::new(),
            workers: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The plain listener answers 301 to the HTTPS URL.
    pub redirect_http: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: u64,
    /// Time a client has to send a complete request head, from its first byte (408 after).
    pub header_timeout: Duration,
    /// Longest pause between two pieces of a request body (408 after).
    pub body_timeout: Duration,
    /// A body must also average this many bytes per second: it may take `body_timeout` plus one
    /// second per `body_min_rate` bytes received in all (408 after; 0: no whole-body deadline).
    pub body_min_rate: u64,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: Duration,
    pub upstream_connect_timeout: Duration,
    /// Time the application has to start answering (504 after).
    pub upstream_timeout: Duration,
    pub max_connections: usize,
    /// Requests in flight to the application at once, over all clients: each holds an upstream
    /// connection (503 when one waits longer than `upstream_timeout`).
    pub max_upstream_connections: usize,
    /// The same for one client connection (HTTP/2 multiplexes up to 256 requests on one).
    pub max_upstream_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_body_bytes: 10 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            body_min_rate: 500,
            idle_timeout: Duration::from_secs(60),
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_upstream_connections: 1024,
            max_upstream_per_client: 32,
        }
    }
}

/// When the application sets a header Kevlar also manages: keep the app's value, or replace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppValues {
    #[default]
    Keep,
    Override,
}

/// One header rule: set a value (or remove the header when `value` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    pub name: String,
    pub value: Option<String>,
    /// Overrides [`HeadersConfig::app_values`] for this header.
    pub app_values: Option<AppValues>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspConfig {
    /// Start from helmet's default directives (the given ones replace or remove them).
    pub use_defaults: bool,
    /// Directive name → sources; `None` removes a default directive.
    pub directives: Vec<(String, Option<Vec<String>>)>,
    pub report_only: bool,
}

impl Default for CspConfig {
    fn default() -> Self {
        CspConfig { use_defaults: true, directives: Vec::new(), report_only: false }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHeaders {
    /// Applies to request paths equal to this or below it (`/docs` matches `/docs/x`).
    pub path: String,
    pub set: Vec<HeaderRule>,
    pub csp: Option<CspConfig>,
    pub csp_report_only: Option<CspConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadersConfig {
    pub app_values: AppValues,
    /// Headers removed from every response.
    pub remove: Vec<String>,
    pub set: Vec<HeaderRule>,
    pub csp: CspConfig,
    /// A second policy sent as `Content-Security-Policy-Report-Only` beside the enforced one
    /// (to try a stricter policy while the current one protects).
    pub csp_report_only: Option<CspConfig>,
    /// Where browsers send CSP violation reports: Kevlar answers this path itself (never the app)
    /// and adds `report-uri` to every policy without a report directive. `None`: off.
    pub csp_report_path: Option<String>,
    /// A fresh nonce per HTML answer in its policy (`script-src 'nonce-…' 'strict-dynamic'`) and
    /// on every `<script>` of the page as it streams (`crates/proxy/src/nonce.rs`).
    pub csp_nonce: bool,
    pub routes: Vec<RouteHeaders>,
}

impl Default for HeadersConfig {
    fn default() -> Self {
        HeadersConfig {
            app_values: AppValues::Keep,
            remove: vec!["Server".into(), "X-Powered-By".into()],
            set: Vec::new(),
            csp: CspConfig::default(),
            csp_report_only: None,
            csp_report_path: None,
            csp_nonce: false,
            routes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: SocketAddr::from(([127, 0, 0, 1], 9090)), tls_cert: None, tls_key: None }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Events older than this are deleted.
    pub retention: Duration,
    /// The oldest events are deleted when the database grows past this.
    pub max_size_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { retention: Duration::from_secs(30 * 86400), max_size_bytes: 1 << 30 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    Off,
    Stdout,
    /// JSON lines in a file (relative paths are under the data dir), rotated by size.
    File {
        path: PathBuf,
        max_bytes: u64,
        keep: usize,
    },
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog::File { path: PathBuf::from("logs/access.log"), max_bytes: 50 << 20, keep: 5 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    /// The command `kevlar run` starts when none is given after `--`.
    pub command: Vec<String>,
    /// The port the first instance is told (`PORT`); `None` picks free ones.
    pub port: Option<u16>,
    pub env: Vec<(String, String)>,
    /// Working directory of the app (default: Kevlar's).
    pub cwd: Option<std::path::PathBuf>,
    /// Copies of the app, load-balanced by least outstanding requests.
    pub instances: usize,
    /// How long an instance may take to become ready.
    pub ready_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when stopping the app.
    pub stop_grace: Duration,
    /// How long a request waits for an instance while none is ready (then 503).
    pub hold_timeout: Duration,
    /// How many requests may wait at once (further ones get 503 at once).
    pub max_held: usize,
    pub backoff_first: Duration,
    pub backoff_factor: f64,
    pub backoff_max: Duration,
    pub min_uptime: Duration,
    pub max_fast_crashes: u32,
    pub crash_window: Duration,
    pub health: HealthConfig,
    pub logs: AppLogsConfig,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            command: Vec::new(),
            port: None,
            env: Vec::new(),
            cwd: None,
            instances: 1,
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(10),
            hold_timeout: Duration::from_secs(10),
            max_held: 1024,
            backoff_first: Duration::from_millis(100),
            backoff_factor: 2.0,
            backoff_max: Duration::from_secs(15),
            min_uptime: Duration::from_secs(10),
            max_fast_crashes: 10,
            crash_window: Duration::from_secs(60),
            health: HealthConfig::default(),
            logs: AppLogsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// Probed with GET; any HTTP answer counts. `None`: TCP accept only (cannot see a hang).
    pub path: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub failures: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            path: Some("/".into()),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            failures: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLogsConfig {
    /// Rotate `<data_dir>/logs/app.out.log` and `app.err.log` past this size.
    pub max_bytes: u64,
    pub keep: usize,
    /// Also print the app's output on Kevlar's stderr.
    pub echo: bool,
}

impl Default for AppLogsConfig {
    fn default() -> Self {
        AppLogsConfig { max_bytes: 10 << 20, keep: 5, echo: true }
    }
}

/// What detection does with a finding, from least to most (`Off < Monitor < Block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Not inspected.
    Off,
    /// Forward, record, count, remember.
    Monitor,
    /// Refuse with 403.
    Block,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "off" => Ok(Mode::Off),
            "monitor" => Ok(Mode::Monitor),
            "block" => Ok(Mode::Block),
            _ => Err(format!("`{s}` is not a mode: use `off`, `monitor` or `block`")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Monitor => "monitor",
            Mode::Block => "block",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMode {
    /// A path prefix (`/api/upload`); the longest matching prefix wins.
    pub prefix: String,
    pub mode: Mode,
}

/// Findings to ignore (false positives): every condition given must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exclusion {
    /// A path prefix, or with `exact` the whole path.
    pub path: Option<String>,
    /// `path` is the whole path, not a prefix.
    pub exact: bool,
    /// Family names; empty: all.
    pub families: Vec<String>,
    /// Argument names (`q`, `body.comment`, `comment`); empty: all.
    pub args: Vec<String>,
}

/// Fields that carry prose or code (`[[detect.text]]`): the shapes of SQL, shell, path and
/// template syntax that prose also forms are not enough there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextField {
    pub path: Option<String>,
    /// Argument names (`comment`, `body.bio`, `args.q`).
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectConfig {
    pub mode: Mode,
    /// Per-family mode, by family name.
    pub families: Vec<(String, Mode)>,
    pub paths: Vec<PathMode>,
    pub exclude: Vec<Exclusion>,
    pub text: Vec<TextField>,
    /// Learn free-text fields from traffic: a field where weak shapes keep coming from many
    /// clients whose requests the app answers 2xx.
    pub learn_text: bool,
    /// How much of a body is read and inspected before it is forwarded.
    pub body_limit: u64,
    /// Headers inspected with every family, besides User-Agent, Referer and X-Forwarded-Host.
    pub headers: Vec<String>,
    /// The app's server stacks (`node`, `php`, `java`, `dotnet`, `cgi`, `coldfusion`, `python`,
    /// `ruby`): their scripts and panels are not probes. `auto` (the default) also learns them
    /// from the app's answers.
    pub stack: Vec<String>,
    /// Inspect the messages clients send through WebSocket tunnels with the same detectors.
    pub websocket: bool,
    /// `malicious_excess_404`: this many 404s from one address within `excess_404_window`.
    pub excess_404: u32,
    pub excess_404_window: Duration,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            mode: Mode::Monitor,
            families: Vec::new(),
            paths: Vec::new(),
            exclude: Vec::new(),
            text: Vec::new(),
            learn_text: true,
            body_limit: 64 * 1024,
            headers: Vec::new(),
            stack: vec!["auto".to_owned()],
            websocket: false,
            excess_404: 20,
            excess_404_window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlackbookConfig {
    /// Records kept in memory; the least recently seen leave first (they stay in the store).
    pub max_records: usize,
    /// Records kept on disk (`shield.db`); beyond it the least recently seen unbanned ones go.
    pub max_stored: usize,
    /// A record not seen for this long is forgotten (unless its address is banned).
    pub max_age: Duration,
    /// IPv6 addresses are grouped by this prefix length.
    pub ipv6_prefix: u8,
    /// Never banned, never rate limited.
    pub allow: Vec<IpNet>,
}

impl Default for BlackbookConfig {
    fn default() -> Self {
        BlackbookConfig {
            max_records: 100_000,
            max_stored: 1_000_000,
            max_age: Duration::from_secs(30 * 86400),
            ipv6_prefix: 64,
            allow: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailConfig {
    pub name: String,
    /// Event actions counted (`malicious_probe`); a trailing `*` matches a prefix (`malicious_*`).
    pub actions: Vec<String>,
    pub maxretry: u32,
    pub findtime: Duration,
    pub bantime: Duration,
    /// Each repeat ban doubles, up to this.
    pub max_bantime: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BansConfig {
    /// Whether automatic bans refuse requests; `None` follows `detect.mode` (enforced in
    /// `block`, recorded only in `monitor`). Manual bans are always enforced.
    pub enforce: Option<bool>,
    /// 403 or 429.
    pub status: u16,
    pub jails: Vec<JailConfig>,
    /// The long jail for repeat offenders: `recidive_bans` bans within `recidive_findtime`.
    pub recidive_bans: u32,
    pub recidive_findtime: Duration,
    pub recidive_bantime: Duration,
    /// Run (through `sh -c`) when an enforced ban starts: `{ip}`, `{seconds}` are filled in,
    /// e.g. an `nft add element …` that blocks the address at the firewall too.
    pub command: Option<String>,
    /// Run when a ban is lifted by hand.
    pub unban_command: Option<String>,
}

impl Default for BansConfig {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(m * 60);
        BansConfig {
            enforce: None,
            status: 403,
            jails: vec![
                JailConfig {
                    name: "attacks".into(),
                    actions: vec![action::MALICIOUS_ATTACK.into(), action::MALICIOUS_ATTACK_TOOL.into()],
                    maxretry: 5,
                    findtime: min(10),
                    bantime: min(10),
                    max_bantime: min(24 * 60),
                },
                JailConfig {
                    name: "probes".into(),
                    actions: vec![action::MALICIOUS_PROBE.into(), action::MALICIOUS_EXCESS_404.into()],
                    maxretry: 10,
                    findtime: min(10),
                    bantime: min(10),
                    max_bantime: min(24 * 60),
                },
                JailConfig {
                    name: "login-fast".into(),
                    actions: vec![action::AUTHN_LOGIN_FAIL.into()],
                    maxretry: 5,
                    findtime: Duration::from_secs(10),
                    bantime: min(10),
                    max_bantime: min(24 * 60),
                },
                JailConfig {
                    name: "login-slow".into(),
                    actions: vec![action::AUTHN_LOGIN_FAIL.into()],
                    maxretry: 100,
                    findtime: min(24 * 60),
                    bantime: min(24 * 60),
                    max_bantime: min(7 * 24 * 60),
                },
                JailConfig {
                    name: "stuffing".into(),
                    actions: vec![action::AUTHN_CREDENTIAL_STUFFING.into()],
                    maxretry: 1,
                    findtime: min(60),
                    bantime: min(60),
                    max_bantime: min(7 * 24 * 60),
                },
            ],
            recidive_bans: 3,
            recidive_findtime: min(24 * 60),
            recidive_bantime: min(7 * 24 * 60),
            command: None,
            unban_command: None,
        }
    }
}

/// A GCRA rate: `count` requests per `per`, with bursts up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRate {
    pub prefix: String,
    /// Per address, on this path prefix.
    pub rate: Rate,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RateLimitConfig {
    pub global: Option<Rate>,
    pub per_ip: Option<Rate>,
    pub paths: Vec<PathRate>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `redis://[user:password@]host:port/db` (the password may come from `env:NAME`).
    pub redis: String,
    /// This instance's name among the others (default: the host name).
    pub instance: String,
    /// The key namespace: `kevlar:{name}:…` (instances with the same Redis and name share).
    pub name: String,
    /// How often every ban in Redis is compared with the local copy.
    pub reconcile: Duration,
    /// With `rediss://`: the CA that signed Redis's certificate (PEM); else the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("ClusterConfig").field("instance", &self.instance).field("name", &self.name).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesConfig {
    pub enabled: bool,
    /// Distinct routes remembered; beyond it new ones are counted as `(other)`.
    pub max_routes: usize,
    /// `kevlar routes` flags routes not hit for this long.
    pub stale_after: Duration,
    /// Refuse (404) requests whose route is not in the learned inventory.
    pub positive: bool,
}

impl Default for RoutesConfig {
    fn default() -> Self {
        RoutesConfig { enabled: true, max_routes: 2000, stale_after: Duration::from_secs(30 * 86400), positive: false }
    }
}

/// An advisory `kevlar audit` does not report, for a reason, until a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditIgnore {
    /// The advisory id or one of its aliases (`GHSA-…`, `CVE-…`).
    pub id: String,
    pub reason: String,
    /// `YYYY-MM-DD`: from this day on the finding is reported again, with a warning.
    pub until: Option<String>,
    /// The line in the file, for warnings.
    pub line: Option<usize>,
}

/// `[audit]`: ignores, and the watch `kevlar run` and `kevlar guard` keep on the deployed lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub ignore: Vec<AuditIgnore>,
    /// How often the advisories are fetched again (from `source`) and the lockfile re-audited;
    /// `None` (`watch = "off"`): no audit while Kevlar runs. A changed lockfile or advisory
    /// database is re-audited within seconds whatever this says.
    pub watch: Option<Duration>,
    /// The lockfile, or the directory holding it; `None`: `app.cwd`, else Kevlar's working
    /// directory (under `kevlar guard`, only a lockfile given here is watched).
    pub lockfile: Option<PathBuf>,
    /// The advisory database; `None`: the one `kevlar audit` reads (`KEVLAR_DB`, else the cache).
    pub db: Option<PathBuf>,
    /// What each scheduled fetch imports: a URL or a local path, as `kevlar db update --from`;
    /// `None`: OSV's archive for the project's ecosystem. `Some("off")` fetches nothing.
    pub source: Option<String>,
    /// Development-only packages are left out.
    pub production: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            ignore: Vec::new(),
            watch: Some(Duration::from_secs(86_400)),
            lockfile: None,
            db: None,
            source: None,
            production: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFormat {
    /// OpenSSH's sshd lines (auth.log, secure, journal exports).
    Sshd,
    /// vsftpd's own log (`FAIL LOGIN`, `OK LOGIN`) and its PAM lines in syslog.
    Vsftpd,
}

impl WatchFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchFormat::Sshd => "sshd",
            WatchFormat::Vsftpd => "vsftpd",
        }
    }
}

/// One `[[watch]]`: a log file followed across rotation.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSource {
    pub name: String,
    pub path: PathBuf,
    pub format: WatchFormat,
}
