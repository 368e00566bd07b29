//! The catalogue of event actions Kevlar emits itself: one constant per name, so that a sensor,
//! a jail's defaults and a consumer matching on a name all spell it the same way. `docs/events.md`
//! lists exactly these (a test checks it). Applications may report other valid names through the
//! admin API; these are the ones Kevlar makes.

/// process: Kevlar started
pub const SYS_STARTUP: &str = "sys_startup";
/// process: Kevlar stopped on a signal
pub const SYS_SHUTDOWN: &str = "sys_shutdown";
/// process: an app instance exited unasked, never became ready, or hung (`reason: hang`)
pub const SYS_CRASH: &str = "sys_crash";
/// process: an instance serves again after a crash, hang, manual restart or reload
pub const SYS_RESTART: &str = "sys_restart";
/// process: at start, a process group that a Kevlar which died (with its keeper) left running was
/// ended
pub const SYS_ORPHAN_REAPED: &str = "sys_orphan_reaped";
/// process: too many fast crashes: no more restarts until `kevlar restart`
pub const SYS_ERRORED: &str = "sys_errored";
/// process: a reload's new instance did not become ready; the old one keeps serving
pub const SYS_RELOAD_FAIL: &str = "sys_reload_fail";
/// process: the app refused or broke the connection (502)
pub const SYS_UPSTREAM_UNAVAILABLE: &str = "sys_upstream_unavailable";
/// process: the app did not answer within `limits.upstream_timeout` (504)
pub const SYS_UPSTREAM_TIMEOUT: &str = "sys_upstream_timeout";
/// configuration: a consumer's queue was full and events were dropped for it
pub const SYS_EVENT_OVERFLOW: &str = "sys_event_overflow";
/// web: a request was refused: 400 (malformed, bad encoding, bad Host), 405 (CONNECT), 408 (slow
/// head or body), 413 (body too large), 431 (head too large)
pub const INPUT_VALIDATION_FAIL: &str = "input_validation_fail";
/// iam: an admin API call without a valid bearer token
pub const AUTHZ_FAIL: &str = "authz_fail";
/// A change made by an administrator (the dashboard's bans, exclusions, restarts, sign-ins).
pub const AUTHZ_ADMIN: &str = "authz_admin";
/// intrusion_detection: a detector found an attack (families: sqli, xss, traversal, cmdi, ssrf,
/// nosql, prototype_pollution, ssti, jndi, xxe, crlf, protocol); one event per request, led by the
/// strongest finding
pub const MALICIOUS_ATTACK: &str = "malicious_attack";
/// intrusion_detection: a known attack tool (User-Agent) or an out-of-band callback domain
pub const MALICIOUS_ATTACK_TOOL: &str = "malicious_attack_tool";
/// intrusion_detection: a request for a sensitive resource (`.env`, `.git/`, keys, backups, other
/// stacks' panels) or, in positive mode, for a route outside the inventory
pub const MALICIOUS_PROBE: &str = "malicious_probe";
/// intrusion_detection: a request Kevlar cannot read in full: an unknown `Content-Encoding` or
/// charset, a broken or exploding compressed body, a value over 64 KiB, JSON nested past 64 levels,
/// an unreadable multipart body (`docs/detection.md`)
pub const MALICIOUS_EVASION: &str = "malicious_evasion";
/// intrusion_detection: `detect.excess_404` not-found answers to one address within the window
pub const MALICIOUS_EXCESS_404: &str = "malicious_excess_404";
/// intrusion_detection: an address was banned (by a jail, the recidive jail, or by hand)
pub const MALICIOUS_BAN: &str = "malicious_ban";
/// intrusion_detection: a ban was lifted by hand
pub const MALICIOUS_UNBAN: &str = "malicious_unban";
/// authentication: a login succeeded (inferred from the app's answer, reported in `Kevlar-Event`,
/// or read from a `[[watch]]` log); `user.name` set
pub const AUTHN_LOGIN_SUCCESS: &str = "authn_login_success";
/// authentication: a login failed
pub const AUTHN_LOGIN_FAIL: &str = "authn_login_fail";
/// authentication: a login request named several users that disagree
/// (`username=decoy&email=alice@…`): it counts for each, no user is told (docs/logins.md)
pub const AUTHN_LOGIN_AMBIGUOUS: &str = "authn_login_ambiguous";
/// authentication: `logins.pair_failures` consecutive failures of one (user, address): the pair is
/// refused for `pair_block`
pub const AUTHN_LOGIN_FAIL_MAX: &str = "authn_login_fail_max";
/// authentication: `logins.user_failures` failures against one user within a day: attempts on it
/// are slowed down
pub const AUTHN_LOGIN_USER_TARGETED: &str = "authn_login_user_targeted";
/// authentication: failures for `logins.spray_users` different users from one address within
/// `spray_window`
pub const AUTHN_CREDENTIAL_STUFFING: &str = "authn_credential_stuffing";
/// authentication: failed logins this minute far above the learned baseline
pub const AUTHN_LOGIN_SPIKE: &str = "authn_login_spike";
/// authentication: a user signed in from a network (IPv4 /24, IPv6 /64) none of their earlier
/// logins came from
pub const AUTHN_LOGIN_NEW_IP: &str = "authn_login_new_ip";
/// authentication: a login attempt used a password from the breached-password index
pub const AUTHN_PASSWORD_BREACHED: &str = "authn_password_breached";
/// authentication: a signed-in user changed their password (a `[[logins.change]]` route answered
/// 2xx)
pub const AUTHN_PASSWORD_CHANGE: &str = "authn_password_change";
/// iam: a signed-in user changed their email address or profile
pub const USER_UPDATED: &str = "user_updated";
/// authentication: an email or password change within `logins.takeover_window` of a login from a
/// new network
pub const AUTHN_ACCOUNT_TAKEOVER: &str = "authn_account_takeover";
/// process: an alert sink's queue reached `alerts.max_pending`: new deliveries for it are refused
/// and counted (once per episode; the other sinks are not affected)
pub const SYS_ALERT_REFUSED: &str = "sys_alert_refused";
/// process: an alert sink failed a delivery or its health check; its deliveries wait in the outbox.
/// Delivered by the other sinks, never by the failing one
pub const SYS_SINK_FAILED: &str = "sys_sink_failed";
/// process: a failing sink delivered again
pub const SYS_SINK_RECOVERED: &str = "sys_sink_recovered";
/// process: made up on the way to one sink (never stored): the deliveries held for a digest or by
/// the sink's rate budget, summarised in one message
pub const SYS_ALERT_DIGEST: &str = "sys_alert_digest";
/// process: `kevlar alerts test`: a test message through the routes
pub const SYS_ALERT_TEST: &str = "sys_alert_test";

/// web: a browser reported a Content-Security-Policy violation to `[headers] csp_report_path`
/// (one event per violation per 10 minutes)
pub const CSP_VIOLATION: &str = "csp_violation";
/// web: `[headers] csp_nonce` could not rewrite an HTML answer (an unknown `Content-Encoding`, a
/// charset that is not ASCII-compatible): its policy was left as it was (once per path and reason
/// per 10 minutes)
pub const CSP_NONCE_UNAVAILABLE: &str = "csp_nonce_unavailable";
/// vulnerability: the deployed lockfile has a known vulnerability not reported before (one event
/// per advisory and package, `[audit] watch`)
pub const VULN_NEW: &str = "vuln_new";
/// vulnerability: a vulnerability reported before is no longer in the deployed lockfile
pub const VULN_FIXED: &str = "vuln_fixed";
/// vulnerability: the Node.js the app runs on reached its end of life
pub const RUNTIME_EOL: &str = "runtime_eol";
/// vulnerability: the Node.js the app runs on has a known vulnerability not reported before
pub const RUNTIME_VULNERABLE: &str = "runtime_vulnerable";
/// configuration: the watch cannot audit: the lockfile is unreadable, the advisory database is
/// missing or broken, or a scheduled fetch failed (once per distinct problem)
pub const SYS_AUDIT_FAIL: &str = "sys_audit_fail";
/// process: Redis cannot be reached (`[cluster]`): this instance carries on with what it knows
pub const SYS_CLUSTER_DEGRADED: &str = "sys_cluster_degraded";
/// process: Redis answers again; what was made meanwhile is merged
pub const SYS_CLUSTER_RECOVERED: &str = "sys_cluster_recovered";

/// Every action in the catalogue, in the order `docs/events.md` lists them.
pub const ALL: &[&str] = &[
    SYS_STARTUP,
    SYS_SHUTDOWN,
    SYS_CRASH,
    SYS_RESTART,
    SYS_ORPHAN_REAPED,
    SYS_ERRORED,
    SYS_RELOAD_FAIL,
    SYS_UPSTREAM_UNAVAILABLE,
    SYS_UPSTREAM_TIMEOUT,
    SYS_EVENT_OVERFLOW,
    INPUT_VALIDATION_FAIL,
    AUTHZ_FAIL,
    AUTHZ_ADMIN,
    MALICIOUS_ATTACK,
    MALICIOUS_ATTACK_TOOL,
    MALICIOUS_PROBE,
    MALICIOUS_EVASION,
    MALICIOUS_EXCESS_404,
    MALICIOUS_BAN,
    MALICIOUS_UNBAN,
    AUTHN_LOGIN_SUCCESS,
    AUTHN_LOGIN_FAIL,
    AUTHN_LOGIN_AMBIGUOUS,
    AUTHN_LOGIN_FAIL_MAX,
    AUTHN_LOGIN_USER_TARGETED,
    AUTHN_CREDENTIAL_STUFFING,
    AUTHN_LOGIN_SPIKE,
    AUTHN_LOGIN_NEW_IP,
    AUTHN_PASSWORD_BREACHED,
    AUTHN_PASSWORD_CHANGE,
    USER_UPDATED,
    AUTHN_ACCOUNT_TAKEOVER,
    SYS_ALERT_REFUSED,
    SYS_SINK_FAILED,
    SYS_SINK_RECOVERED,
    SYS_ALERT_DIGEST,
    SYS_ALERT_TEST,
    CSP_VIOLATION,
    CSP_NONCE_UNAVAILABLE,
    VULN_NEW,
    VULN_FIXED,
    RUNTIME_EOL,
    RUNTIME_VULNERABLE,
    SYS_AUDIT_FAIL,
    SYS_CLUSTER_DEGRADED,
    SYS_CLUSTER_RECOVERED,
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `docs/events.md` is the contract consumers read: its table of actions is the catalogue.
    #[test]
    fn the_docs_list_exactly_the_catalogue() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let section = doc.split("## Actions Kevlar emits today").nth(1).unwrap();
        let listed: Vec<&str> =
            section.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split('`').next()).collect();
        assert_eq!(listed, ALL, "docs/events.md and core::action disagree");
    }

    #[test]
    fn every_name_is_a_valid_action() {
        for a in ALL {
            assert!(crate::event::is_valid_action(a), "{a}");
        }
        let mut seen = std::collections::HashSet::new();
        assert!(ALL.iter().all(|a| seen.insert(a)), "a name listed twice");
    }
}
