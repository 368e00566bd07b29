//! Which sinks an event goes to, and de-duplication on the way.
//!
//! `[[alerts.route]]` rules select by action (a trailing `*` matches a prefix), category
//! (`malicious-traffic` gathers every `malicious_*` event), minimum severity, address range and
//! user. A sink that no rule names gets the defaults: log sinks (syslog, Logstash, file, stdout)
//! every event, sinks that page people (email, SMS, webhook) events of severity `alert` and above.
//! A sink never receives the events about its own health.
//!
//! De-duplication (per sink, `dedup = "10m"`): the first (action, address) of a window is sent at
//! once; later ones within the window are counted, and when the window closes one more message says
//! how many came (`render::repeat`). The table is bounded; when full, events pass undeduplicated
//! (the sink's rate budget still applies).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use kevlar_config::{AlertRoute, SinkConfig};
use kevlar_core::{SecurityEvent, Severity};
use serde_json::Value;

use crate::render;

const MAX_DEDUP: usize = 100_000;

struct Rule {
    actions: Vec<String>,
    categories: Vec<String>,
    min_severity: Option<u8>,
    addresses: Vec<IpNet>,
    users: Vec<String>,
    sinks: Vec<usize>,
}

fn action_matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => pattern == action,
    }
}

impl Rule {
    fn matches(&self, e: &SecurityEvent) -> bool {
        (self.actions.is_empty() || self.actions.iter().any(|p| action_matches(p, &e.action)))
            && (self.categories.is_empty()
                || self.categories.iter().any(|c| {
                    if c == "malicious-traffic" {
                        e.action.starts_with("malicious_")
                    } else {
                        c == e.category.as_str()
                    }
                }))
            && self.min_severity.is_none_or(|m| e.severity as u8 >= m)
            && (self.addresses.is_empty()
                || e.source_ip.is_some_and(|ip| self.addresses.iter().any(|n| n.contains(&ip))))
            && (self.users.is_empty() || e.user_name.as_ref().is_some_and(|u| self.users.contains(u)))
    }
}

struct SinkRoute {
    name: String,
    pages_people: bool,
    email: bool,
    named_by_rule: bool,
    dedup: Option<Duration>,
    digest: bool,
    open: HashMap<(String, Option<IpAddr>), Open>,
    order: VecDeque<(i64, String, Option<IpAddr>)>,
}

struct Open {
    until_ms: i64,
    more: u64,
    last: Option<SecurityEvent>,
}

/// A delivery decided by the router.
#[derive(Debug)]
pub struct Routed {
    pub sink: usize,
    /// Goes to the held state at once (digest sinks).
    pub held: bool,
    pub event: SecurityEvent,
}

pub struct Router {
    rules: Vec<Rule>,
    sinks: Vec<SinkRoute>,
}

impl Router {
    pub fn new(sinks: &[SinkConfig], routes: &[AlertRoute]) -> Self {
        let index = |n: &String| sinks.iter().position(|s| &s.name == n);
        let rules: Vec<Rule> = routes
            .iter()
            .map(|r| Rule {
                actions: r.actions.clone(),
                categories: r.categories.clone(),
                min_severity: r.min_severity,
                addresses: r.addresses.clone(),
                users: r.users.clone(),
                sinks: r.sinks.iter().filter_map(index).collect(),
            })
            .collect();
        let sinks = sinks
            .iter()
            .enumerate()
            .map(|(i, s)| SinkRoute {
                name: s.name.clone(),
                pages_people: s.pages_people(),
                email: matches!(s.kind, kevlar_config::SinkKind::Email(_)),
                named_by_rule: rules.iter().any(|r| r.sinks.contains(&i)),
                dedup: s.dedup,
                digest: s.digest.is_some(),
                open: HashMap::new(),
                order: VecDeque::new(),
            })
            .collect();
        Router { rules, sinks }
    }

    /// The deliveries for one event.
    pub fn route(&mut self, e: &SecurityEvent, now_ms: i64, out: &mut Vec<Routed>) {
        let about_sink = e.kevlar.get("sink").and_then(Value::as_str);
        for (i, s) in self.sinks.iter_mut().enumerate() {
            if about_sink == Some(s.name.as_str()) {
                continue;
            }
            let wanted = if s.named_by_rule {
                self.rules.iter().any(|r| r.sinks.contains(&i) && r.matches(e))
            } else if s.pages_people {
                e.severity >= Severity::Alert
            } else {
                true
            };
            if !wanted {
                continue;
            }
            if let Some(window) = s.dedup {
                let key = (e.action.clone(), e.source_ip);
                if let Some(open) = s.open.get_mut(&key) {
                    if open.until_ms > now_ms {
                        open.more += 1;
                        open.last = Some(e.clone());
                        continue;
                    }
                }
                if s.open.len() < MAX_DEDUP {
                    let until_ms = now_ms + window.as_millis() as i64;
                    s.open.insert(key.clone(), Open { until_ms, more: 0, last: None });
                    s.order.push_back((until_ms, key.0, key.1));
                }
            }
            out.push(Routed { sink: i, held: s.digest, event: e.clone() });
        }
        // A notice for the user themself (a new sign-in, a changed email): one copy to the first
        // email sink, addressed to them, whatever the routes say.
        if let Some(to) = e.kevlar.get("notify_email").and_then(Value::as_str) {
            // Checked with the sender's own rules before it is queued: an address the mail
            // library would refuse never reaches the outbox.
            let sendable = to.parse::<lettre::Address>().is_ok_and(|a| AsRef::<str>::as_ref(&a) == to);
            if !sendable {
                tracing::warn!(event = %e.id, "alerts: a user notice to an address that cannot be mailed is dropped");
            }
            if let Some(i) = self.sinks.iter().position(|s| s.email).filter(|_| sendable) {
                let mut copy = e.clone();
                copy.id = format!("{}-user", e.id);
                copy.kevlar.insert("deliver_to".into(), Value::String(to.to_owned()));
                out.push(Routed { sink: i, held: false, event: copy });
            }
        }
    }

    /// Closes de-duplication windows that have ended; a window that counted repeats yields one
    /// more delivery carrying the count.
    pub fn close_windows(&mut self, now_ms: i64, out: &mut Vec<Routed>) {
        for (i, s) in self.sinks.iter_mut().enumerate() {
            let Some(window) = s.dedup else { continue };
            while s.order.front().is_some_and(|(until, _, _)| *until <= now_ms) {
                let Some((until, action, ip)) = s.order.pop_front() else { break };
                let key = (action, ip);
                // A key re-opened later has a later deadline; only the matching entry closes.
                if s.open.get(&key).is_some_and(|o| o.until_ms == until) {
                    if let Some(open) = s.open.remove(&key) {
                        if let (Some(last), true) = (open.last, open.more > 0) {
                            out.push(Routed {
                                sink: i,
                                held: s.digest,
                                event: render::repeat(&last, open.more, window),
                            });
                        }
                    }
                }
            }
        }
    }

    /// The soonest end of an open de-duplication window.
    pub fn next_deadline(&self) -> Option<i64> {
        self.sinks.iter().filter_map(|s| s.order.front().map(|o| o.0)).min()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kevlar_config::{SinkKind, SmsSink};
    use kevlar_core::Category;

    fn sink(name: &str, kind: SinkKind, dedup: Option<Duration>) -> SinkConfig {
        SinkConfig { name: name.into(), kind, dedup, digest: None, rate_limit: None }
    }

    fn sms() -> SinkKind {
        SinkKind::Sms(SmsSink {
            account_sid: "AC1".into(),
            auth_token: "t".into(),
            from: "+1".into(),
            to: vec!["+2".into()],
            base_url: "http://127.0.0.1:1".into(),
            timeout: Duration::from_secs(1),
        })
    }

    fn ev(action: &str, sev: Severity, ip: &str) -> SecurityEvent {
        let mut e = SecurityEvent::new(action, Category::IntrusionDetection, sev, "m");
        e.source_ip = ip.parse().ok();
        e
    }

    fn sinks_for(r: &mut Router, e: &SecurityEvent, now: i64) -> Vec<usize> {
        let mut out = Vec::new();
        r.route(e, now, &mut out);
        out.iter().map(|d| d.sink).collect()
    }

    #[test]
    fn defaults_send_logs_everything_and_pages_alerts() {
        let sinks = vec![sink("log", SinkKind::Stdout, None), sink("pager", sms(), None)];
        let mut r = Router::new(&sinks, &[]);
        assert_eq!(sinks_for(&mut r, &ev("malicious_attack", Severity::Warning, "192.0.2.1"), 0), vec![0]);
        assert_eq!(sinks_for(&mut r, &ev("malicious_ban", Severity::Alert, "192.0.2.1"), 0), vec![0, 1]);
        let mut own = ev("sys_sink_failed", Severity::Alert, "192.0.2.1");
        own.kevlar.insert("sink".into(), "pager".into());
        assert_eq!(sinks_for(&mut r, &own, 0), vec![0], "a sink never hears about itself");
    }

    #[test]
    fn rules_select_by_every_field() {
        let sinks = vec![sink("a", SinkKind::Stdout, None), sink("b", SinkKind::Stdout, None)];
        let routes = vec![AlertRoute {
            categories: vec!["malicious-traffic".into()],
            min_severity: Some(3),
            addresses: vec!["192.0.2.0/24".parse().unwrap()],
            sinks: vec!["a".into()],
            ..Default::default()
        }];
        let mut r = Router::new(&sinks, &routes);
        assert_eq!(sinks_for(&mut r, &ev("malicious_attack", Severity::Warning, "192.0.2.9"), 0), vec![0, 1]);
        assert_eq!(sinks_for(&mut r, &ev("malicious_attack", Severity::Notice, "192.0.2.9"), 0), vec![1]);
        assert_eq!(sinks_for(&mut r, &ev("malicious_attack", Severity::Warning, "198.51.100.1"), 0), vec![1]);
        assert_eq!(sinks_for(&mut r, &ev("authn_login_fail", Severity::Warning, "192.0.2.9"), 0), vec![1]);
    }

    #[test]
    fn dedup_sends_the_first_then_one_count() {
        let sinks = vec![sink("pager", sms(), Some(Duration::from_secs(60)))];
        let mut r = Router::new(&sinks, &[]);
        let e = ev("malicious_ban", Severity::Alert, "192.0.2.1");
        assert_eq!(sinks_for(&mut r, &e, 0).len(), 1);
        for t in 1..50 {
            assert!(sinks_for(&mut r, &e, t).is_empty());
        }
        assert_eq!(sinks_for(&mut r, &ev("malicious_ban", Severity::Alert, "192.0.2.2"), 10).len(), 1);
        let mut out = Vec::new();
        r.close_windows(59_999, &mut out);
        assert!(out.is_empty());
        r.close_windows(60_010, &mut out);
        assert_eq!(out.len(), 1, "one count for the repeated address, none for the single one");
        assert_eq!(out[0].event.kevlar["repeat_count"], 49);
        assert_eq!(sinks_for(&mut r, &e, 60_011).len(), 1, "a new window opens");
    }

    #[test]
    fn a_user_notice_to_an_address_the_mailer_refuses_is_not_queued() {
        let mail = SinkKind::Email(kevlar_config::EmailSink {
            server: "127.0.0.1".into(),
            port: 25,
            security: kevlar_config::SmtpSecurity::None,
            username: None,
            password: None,
            from: "k@example.com".into(),
            to: vec!["ops@example.com".into()],
            ca_file: None,
            timeout: Duration::from_secs(1),
        });
        let mut r = Router::new(&[sink("mail", mail, None)], &[]);
        for (to, queued) in
            [("alice@example.com", true), ("x@bad..test", false), ("a@b.test,1", false), ("a@b.test>x", false)]
        {
            let e = ev("authn_login_new_ip", Severity::Warning, "192.0.2.1").with_kevlar("notify_email", to);
            let users = sinks_for(&mut r, &e, 0).len();
            assert_eq!(users == 1, queued, "{to}");
        }
    }
}
