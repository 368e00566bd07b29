//! The command line: every subcommand and flag, with the help text users read.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "kevlar",
    version,
    about = "Guards a web application: hardening reverse proxy, helmet-grade security headers, attack detection and bans, security events shipped to syslog, Logstash, webhooks, email and SMS, dependency audit.",
    long_about = "Kevlar stands in front of a web application (a Node.js app first, any HTTP app in general), \
puts helmet's security headers on every response, enforces request limits, terminates TLS, detects attacks \
(monitor or block) and keeps a black book of attackers with fail2ban-style bans, watches logins (lockouts, \
credential stuffing, new networks, account changes, breached passwords), records security events in \
an embedded store you can read with `kevlar events` or the admin API, ships them to syslog (Papertrail), \
Logstash, webhooks (Slack), email and SMS through a durable outbox ([alerts] in kevlar.toml), and audits \
the app's dependencies and runtime for known vulnerabilities.\n\n\
Quick start:\n  kevlar run -- node server.js        supervise the app and guard it\n  \
kevlar guard --upstream http://127.0.0.1:3000   guard an app that runs elsewhere\n  \
kevlar init                          write a commented kevlar.toml\n  \
kevlar events --follow               watch security events\n  \
kevlar blackbook list                who attacked, and who is banned\n  \
kevlar alerts                        alert sinks: health, queue, dead letters\n  \
kevlar audit                         known vulnerabilities in the lockfile\n  \
kevlar update --test \"npm test\"       which dependency updates keep the tests green"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Guard an application that runs elsewhere (reverse proxy with security headers and limits).
    Guard {
        /// The application's URL, e.g. http://127.0.0.1:3000 (or proxy.upstream in the config).
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Start the application, keep it running, and guard it: `kevlar run -- node server.js`.
    /// The app's lockfile is audited while it runs (`[audit] watch`): each new known vulnerability
    /// is a `vuln_new` event, each fix a `vuln_fixed`.
    Run {
        #[command(flatten)]
        common: CommonArgs,
        /// The command that starts the app; it is given PORT in its environment.
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Internal: keeps one app instance for `kevlar run` (ends it when Kevlar dies).
    #[command(name = "__keep", hide = true)]
    Keep {
        #[arg(long)]
        grace_ms: u64,
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Write a fully commented kevlar.toml (every key with its default).
    Init {
        /// Where to write it.
        #[arg(long, default_value = "kevlar.toml")]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check a configuration file; every problem is printed as `file:line: key: what is wrong`.
    /// Exit code 0 when valid, 1 when not, 2 when the file cannot be read.
    Validate {
        /// The file to check.
        #[arg(default_value = "kevlar.toml")]
        file: PathBuf,
    },
    /// Read the security events Kevlar recorded (`--explain ID`: one finding in full).
    Events(EventsArgs),
    /// Judge values or whole requests with the built-in detectors, without a running proxy: each
    /// finding with its family, rule, location, score, the decoding layers undone and what the
    /// family's reading saw. Values come as arguments or from --file (JSON lines: a string is a
    /// value, an object a request; any other line is a value as written).
    /// Exit code 0 when nothing is found, 1 when something is, 2 on an error.
    Detect(DetectArgs),
    /// Show the running Kevlar's state: the app's instances (pids, uptime, restarts, health), the
    /// proxy's counters, the event queues. Talks to the admin API.
    Status(ControlArgs),
    /// Where the dashboard is: the running Kevlar's admin URL (open it in a browser) and the file
    /// holding the admin token its sign-in page asks for. Exit code 2 when Kevlar is not running.
    Dashboard(ControlArgs),
    /// Zero-downtime reload of the app: each instance is replaced once its successor is ready.
    /// Exit code 0 when every instance was replaced, 1 when one failed (the old one keeps serving).
    Reload(ControlArgs),
    /// Restart the app now (also leaves the `errored` state after too many crashes).
    Restart(ControlArgs),
    /// The black book: every offending address with its events, score, samples and bans.
    /// Talks to the running Kevlar; reads (and writes) <data-dir>/shield.db when it is not running.
    Blackbook {
        #[command(subcommand)]
        command: BlackbookCommand,
    },
    /// The route inventory learned from traffic: method and path template, hits, statuses, first
    /// and last seen; flags routes not hit for a long time and paths only probes asked for.
    Routes(ControlArgs),
    /// The alert sinks: each one's health and queue (pending, held for a digest or the rate
    /// budget, dead letters). Talks to the running Kevlar; reads <data-dir>/outbox.db otherwise.
    Alerts {
        #[command(subcommand)]
        command: Option<AlertsCommand>,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// The breached-password index that login attempts are checked against (the app learns of a
    /// breached password through `Kevlar-Breached-Password: 1`).
    Breach {
        #[command(subcommand)]
        command: BreachCommand,
    },
    /// Print the app's captured output (<data-dir>/logs/app.out.log, or app.err.log).
    Logs(LogsArgs),
    /// Known vulnerabilities in the app's dependencies, from the local advisory database.
    /// Exit code 0 when nothing is at or above --fail-on, 1 when something is, 2 on an error.
    Audit(AuditArgs),
    /// The runtime and the deployment, each line a verdict (ok / warn / fail) and a fix: whether the
    /// running Node.js's release line reached end of life and its known core vulnerabilities (from
    /// the local advisory database); then the configuration (what only monitors, what is not
    /// enforced), TLS (certificate expiry, chain order, key), the data directory's and the
    /// secrets' exposure, the admin API's, and whether each alert sink can be reached.
    /// Exit code 0 when nothing fails, 1 when something does (end-of-life, vulnerable, a failing
    /// check), 2 on an error.
    Doctor(DoctorArgs),
    /// For each direct dependency: the version the lockfile holds, the newest within the declared
    /// range, and the registry's latest, from the registry the project uses (.npmrc honoured).
    /// Exit code 0 when everything is current, 1 when something is outdated, 2 on an error.
    Outdated {
        /// The project (its package.json and lockfile).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// One JSON object keyed by package name, as `npm outdated --json` prints.
        #[arg(long)]
        json: bool,
    },
    /// Try each newer version of each outdated dependency against the app's own tests: the tests
    /// run first on the untouched project, then once per version, each in a scratch copy installed
    /// with the project's package manager (never in your tree). Prints PASS / FAIL / TIMEOUT /
    /// INSTALL-FAILED per version. Exit code 0 when every version passed, 1 when one did not (or
    /// the untouched project fails its tests), 2 on an error, 130 when interrupted.
    Update(UpdateArgs),
    /// Security headers: `kevlar headers check URL` grades a site the way the MDN HTTP
    /// Observatory does, and grades it again as it would leave Kevlar.
    Headers {
        #[command(subcommand)]
        command: HeadersCommand,
    },
    /// The local advisory database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Write a certificate to try TLS with: a local CA (ca.pem) and a server certificate signed by it.
    Cert {
        /// Generate a self-signed local CA and a server certificate (the only mode for now).
        #[arg(long, required = true)]
        self_signed: bool,
        /// Directory for ca.pem, cert.pem and key.pem.
        #[arg(long, default_value = ".kevlar/tls")]
        out: PathBuf,
        /// Host names and addresses the certificate covers (repeatable).
        #[arg(long = "host", value_name = "NAME", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])]
        hosts: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum BlackbookCommand {
    /// Addresses in the black book, most recently seen first.
    List {
        /// Only addresses banned now.
        #[arg(long)]
        banned: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// One address in full: counts by event and family, samples, ban history.
    Show {
        /// An IPv4 address, an IPv6 address (grouped by blackbook.ipv6_prefix) or `2001:db8::/64`.
        addr: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Refuse every request from an address, now (allow-listed ranges cannot be banned).
    Ban {
        addr: String,
        /// How long, e.g. 1h, 30m, 7d (default: until `unban`).
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        /// Why; shown in the black book and in the `malicious_ban` event.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Lift a ban. Exit code 1 when the address was not banned.
    Unban {
        addr: String,
        #[command(flatten)]
        control: ControlArgs,
    },
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The project.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The test command, run with `sh -c` in each scratch copy (e.g. "npm test").
    #[arg(long, value_name = "COMMAND")]
    pub test: String,
    /// How far to go: patch, minor or major.
    #[arg(long, default_value = "major", value_parser = ["patch", "minor", "major"])]
    pub allow: String,
    /// Only these packages (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Not these packages.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Only the newest allowed version of each package.
    #[arg(long)]
    pub latest_only: bool,
    /// Trials at once.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Skip versions published less than this long ago (e.g. 3d): a supply-chain safeguard.
    #[arg(long, value_name = "DURATION")]
    pub min_age: Option<String>,
    /// Give up on an install or a test run after this long.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the newest passing version of each package into package.json and the lockfile,
    /// after the tests pass on the combination (a package that breaks the combination is found
    /// by bisection and left out).
    #[arg(long)]
    pub apply: bool,
    /// Commit each package's newest passing update on its own git branch,
    /// `kevlar/update-NAME-VERSION`, with the test log in the message.
    #[arg(long)]
    pub branch: bool,
    /// Push each new branch to this git remote (e.g. origin); needs --branch.
    #[arg(long, value_name = "REMOTE", requires = "branch")]
    pub push: Option<String>,
    /// A push option for each push (`git push -o`), repeatable: on GitLab,
    /// `--push-option merge_request.create` opens a merge request with the push.
    #[arg(long, value_name = "OPTION", requires = "push")]
    pub push_option: Vec<String>,
    /// Open a pull request for each pushed branch: `github` (token in GITHUB_TOKEN, the test log
    /// as its body); needs --push.
    #[arg(long, value_name = "FORGE", value_parser = ["github"], requires = "push")]
    pub pr: Option<String>,
    /// The GitHub repository, OWNER/NAME (default: GITHUB_REPOSITORY, else the remote's URL).
    #[arg(long, value_name = "OWNER/NAME", requires = "pr")]
    pub repo: Option<String>,
    /// GitHub's API base (default: GITHUB_API_URL, else https://api.github.com; GitHub
    /// Enterprise: https://HOST/api/v3).
    #[arg(long, value_name = "URL", requires = "pr")]
    pub api_url: Option<String>,
    /// The branch pull requests go into (default: the branch checked out).
    #[arg(long, value_name = "BRANCH", requires = "pr")]
    pub base: Option<String>,
    /// The advisory database (`kevlar db update`): versions that fix a known advisory of the
    /// current one are tried first and marked. Default: the one `kevlar audit` uses.
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum BreachCommand {
    /// Build <data-dir>/breach.idx from Have I Been Pwned's Pwned Passwords download (SHA-1
    /// `HASH:COUNT` lines in hash order, as downloaded) or from a plain list of passwords, most
    /// common first. A running Kevlar reads the index when it starts.
    Import {
        /// The file ("-" for standard input).
        file: PathBuf,
        /// `hibp` (SHA-1 ordered hashes) or `plain` (one password per line).
        #[arg(long, default_value = "hibp", value_parser = ["hibp", "plain"])]
        format: String,
        #[arg(long, value_name = "DIR", default_value = ".kevlar")]
        data_dir: PathBuf,
    },
    /// Read a password on standard input and say whether it is in the index. Exit code 0 when it
    /// is not, 1 when it is, 2 on an error.
    Check {
        #[arg(long, value_name = "DIR", default_value = ".kevlar")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// Put dead letters back in the queue, with a fresh attempt count.
    Retry {
        /// Delivery ids (as `kevlar alerts` lists them).
        ids: Vec<i64>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Send a test event (`sys_alert_test`, severity alert) through the routes, so that every sink
    /// that would page someone does. Needs the running Kevlar.
    Test {
        #[command(flatten)]
        control: ControlArgs,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// Address for plain HTTP (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address for HTTPS; needs --tls-cert and --tls-key. Plain HTTP then redirects to it.
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Option<SocketAddr>,
    /// Certificate chain (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Address of the admin API (default 127.0.0.1:9090; loopback unless admin TLS is set).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// Where Kevlar keeps its state (default .kevlar).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A proxy whose X-Forwarded-For is believed (CIDR or address; repeatable).
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxy: Vec<String>,
    /// Configuration file (default: ./kevlar.toml when it exists, else the embedded defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Values to judge (each in every placement --in names).
    pub values: Vec<String>,
    /// JSON lines to judge, one value or request per line: `"1 union select 1"`, or
    /// `{"method": "POST", "path": "/login", "query": "a=1", "headers": {"content-type": "…"}, "body": "…"}`.
    /// `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Where a value is placed: query (`?q=`), form (a form field), json (a JSON field), path,
    /// header (User-Agent), cookie, or all (query, form and json). Comma-separated.
    #[arg(long = "in", value_name = "PLACES", default_value = "all", value_delimiter = ',',
          value_parser = ["query", "form", "json", "path", "header", "cookie", "all"])]
    pub places: Vec<String>,
    /// One JSON object per value or request: {"input", "findings": [...]}.
    #[arg(long)]
    pub json: bool,
    /// Read `[detect]` (families off, headers, stack) from this file (default: ./kevlar.toml when
    /// present, else the embedded defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Explain one event: its `event.id`, or a request id (every event of that request): the
    /// request, the finding, the decoding layers, what the family's reading saw, and the
    /// `[[detect.exclude]]` that would silence it if it was legitimate.
    #[arg(long, value_name = "ID")]
    pub explain: Option<String>,
    /// Keep printing new events as they arrive.
    #[arg(long)]
    pub follow: bool,
    /// Only events newer than this: a duration (1h, 30m, 7d) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events with this event.action (e.g. authz_fail).
    #[arg(long, value_name = "NAME")]
    pub action: Option<String>,
    /// Only events from this source address.
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// One JSON event per line (ECS fields).
    #[arg(long)]
    pub json: bool,
    /// At most this many (the newest).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Where Kevlar keeps its state (default .kevlar).
    #[arg(long, value_name = "DIR", default_value = ".kevlar")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct ControlArgs {
    /// The admin API's URL (default: read from <data-dir>/admin.addr, written by the running Kevlar).
    #[arg(long, value_name = "URL")]
    pub admin: Option<String>,
    /// The running Kevlar's data dir (for admin.addr and admin.token).
    #[arg(long, value_name = "DIR", default_value = ".kevlar")]
    pub data_dir: PathBuf,
    /// Print the raw JSON answer.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing new lines as the app writes them.
    #[arg(long)]
    pub follow: bool,
    /// The app's stderr instead of its stdout.
    #[arg(long)]
    pub stderr: bool,
    /// How many of the last lines to print first.
    #[arg(long, default_value_t = 50)]
    pub lines: usize,
    #[arg(long, value_name = "DIR", default_value = ".kevlar")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// The advisory database directory (default: $KEVLAR_DB, else ~/.cache/kevlar/advisories).
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// The Node.js binary to ask (`node --version`).
    #[arg(long, value_name = "PATH", default_value = "node")]
    pub node: String,
    /// Check this version instead of running Node.js (e.g. 20.11.0).
    #[arg(long, value_name = "VERSION")]
    pub node_version: Option<String>,
    /// table or json.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// The configuration to check (default: ./kevlar.toml when present, else the embedded defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory to check (default: the configuration's).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The project directory or its lockfile (package-lock.json, npm-shrinkwrap.json, pnpm-lock.yaml,
    /// yarn.lock, bun.lock, Cargo.lock, poetry.lock, uv.lock, requirements.txt).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Configuration with `[[audit.ignore]]` entries (default: kevlar.toml in the project
    /// directory, else in the current directory, when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also check the Node.js runtime (as `kevlar doctor` does).
    #[arg(long)]
    pub runtime: bool,
    /// The advisory database directory (default: $KEVLAR_DB, else ~/.cache/kevlar/advisories).
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// table, json, sarif (SARIF 2.1.0, for GitHub code scanning) or markdown.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "sarif", "markdown"])]
    pub format: String,
    /// The lowest severity that makes the exit code 1: low, moderate, high, critical.
    #[arg(long, default_value = "low", value_parser = ["low", "moderate", "high", "critical"])]
    pub fail_on: String,
    /// Skip development-only dependencies.
    #[arg(long)]
    pub production: bool,
}

#[derive(Subcommand, Debug)]
pub enum HeadersCommand {
    /// Grade any site's security headers as the MDN HTTP Observatory does (its requests, its ten
    /// tests, its score), then say what Kevlar's header policy would add, change and remove, and
    /// the grade behind Kevlar. Exit code 0; 1 below --fail-under; 2 when the site does not answer.
    Check(HeadersCheckArgs),
}

#[derive(Args, Debug)]
pub struct HeadersCheckArgs {
    /// The site: `example.com`, `https://example.com`, `http://127.0.0.1:8080`.
    pub url: String,
    /// The port of the plain-HTTP session (default 80, or the URL's for an http:// URL).
    #[arg(long, value_name = "PORT")]
    pub http_port: Option<u16>,
    /// The port of the HTTPS session (default 443, or the URL's).
    #[arg(long, value_name = "PORT")]
    pub https_port: Option<u16>,
    /// A CA certificate (PEM) to trust besides the web's roots (a local or internal CA).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The Kevlar configuration whose header policy is applied (default: ./kevlar.toml, else the
    /// embedded defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Exit 1 when the site's own grade is below this one (A+, A, A-, B+ … F).
    #[arg(long, value_name = "GRADE")]
    pub fail_under: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Import advisories into the local database: OSV records (JSON or YAML), RustSec advisories,
    /// the Node.js security WG's core advisories and a Node.js release schedule — from a
    /// directory, a file, a zip archive (OSV's per-ecosystem all.zip) or a URL. Without --from,
    /// OSV's public all.zip of each ecosystem the project in the current directory uses
    /// (KEVLAR_OSV_URL names a mirror with the same layout: URL/npm/all.zip).
    Update {
        /// A directory, a file, a .zip, or an http(s) URL of one.
        #[arg(long, value_name = "PATH|URL")]
        from: Option<String>,
        /// The advisory database directory (default: $KEVLAR_DB, else ~/.cache/kevlar/advisories).
        #[arg(long, value_name = "DIR")]
        db: Option<PathBuf>,
    },
}
