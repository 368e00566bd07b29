//! Words for people: the subject, body and short text of an event (email, SMS, Slack), and the
//! events Kevlar makes up on the way (a repeat count after de-duplication, a digest).

use kevlar_core::action;
use std::fmt::Write;
use std::time::Duration;

use kevlar_core::{Category, SecurityEvent, Severity};
use serde_json::{json, Value};

use crate::util::outbox::HeldSummary;

/// A value for people: one line, anything that could forge a line, move a cursor or reorder
/// text written out as an escape, capped at `max` characters (`kevlar_core::text`).
fn shown(s: &str, max: usize) -> String {
    kevlar_core::text::printable(s, max).into_owned()
}

fn one_line(s: &str) -> String {
    shown(s, 1000)
}

/// Slack reads `<…>` as mentions and links (`<!channel>`, `<https://…|text>`) and `&` as the start
/// of an escape: the three are escaped as Slack documents, in every value.
fn slack_text(s: &str, max: usize) -> String {
    shown(s, max).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) && s >= 3600 {
        format!("{} h", s / 3600)
    } else if s.is_multiple_of(60) && s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// The subject line: `[Kevlar] alert: Banned 203.0.113.7 …`.
pub fn subject(e: &SecurityEvent) -> String {
    kevlar_core::event::capped(&format!("[Kevlar] {}: {}", e.severity, one_line(&e.message)), 160)
}

/// A plain-text body: the message, then the fields a reader needs to act.
pub fn body(e: &SecurityEvent) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "{}\n", one_line(&e.message));
    let mut field = |k: &str, v: &str| {
        let _ = writeln!(b, "{k:<12} {v}");
    };
    field("When", &kevlar_core::time::rfc3339_ms(e.timestamp_ms));
    field("Event", &e.action);
    field("Severity", e.severity.as_str());
    if let Some(ip) = e.source_ip {
        field("Address", &ip.to_string());
    }
    if let Some(u) = &e.user_name {
        field("User", &shown(u, 200));
    }
    if let Some(p) = &e.url_path {
        let m = e.http_method.as_deref().unwrap_or("");
        field("Request", shown(&format!("{m} {p}"), 500).trim());
    }
    if let Some(s) = e.status_code {
        field("Status", &s.to_string());
    }
    if let Some(ua) = &e.user_agent {
        field("User agent", &shown(ua, 300));
    }
    if let Some(r) = &e.rule_name {
        field("Rule", &shown(r, 200));
    }
    if let Some(r) = &e.request_id {
        field("Request id", &shown(r, 100));
    }
    if let Some(n) = e.kevlar.get("repeat_count").and_then(Value::as_u64) {
        field("Repeats", &n.to_string());
    }
    if let Some(groups) = e.kevlar.get("digest").and_then(Value::as_array) {
        let _ = writeln!(b);
        for g in groups {
            let _ = writeln!(
                b,
                "{:>6} × {} (from {} addresses: {})\n         e.g. {}",
                g["count"].as_u64().unwrap_or(0),
                shown(g["action"].as_str().unwrap_or(""), 64),
                g["distinct_addresses"].as_u64().unwrap_or(0),
                g["addresses"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
                shown(g["example"].as_str().unwrap_or(""), 200),
            );
        }
    }
    let _ = writeln!(b, "\nEvent id {}. `kevlar events` shows the full record.", e.id);
    b
}

/// The subject of a notice to the user themself (`kevlar.notify`).
pub fn user_subject(e: &SecurityEvent) -> String {
    match e.kevlar.get("notify").and_then(Value::as_str).unwrap_or("") {
        "new_ip" => "New sign-in to your account".into(),
        "email_changed" => "The email address of your account was changed".into(),
        "password_changed" => "The password of your account was changed".into(),
        "targeted" => "Many failed sign-ins on your account".into(),
        "breached_password" => "Your password appears in data breaches".into(),
        _ => "Security notice about your account".into(),
    }
}

/// The body of a notice to the user: what happened, from where, when, and what to do.
pub fn user_body(e: &SecurityEvent) -> String {
    let user = e.user_name.as_deref().map_or_else(|| "your account".to_owned(), |u| shown(u, 200));
    let when = kevlar_core::time::rfc3339_ms(e.timestamp_ms);
    let from = e.source_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "an unknown address".into());
    let agent = e.user_agent.as_deref().map(|a| format!("\nBrowser: {}", shown(a, 300))).unwrap_or_default();
    let not_you = "If this was not you, change your password now and contact us.";
    let what = match e.kevlar.get("notify").and_then(Value::as_str).unwrap_or("") {
        "new_ip" => format!(
            "Someone signed in to {user} from a network not seen before ({}).\n\nWhen: {when}\nAddress: {from}{agent}\n\nIf this was you, there is nothing to do. {not_you}",
            e.kevlar.get("network").and_then(Value::as_str).unwrap_or("?")
        ),
        "email_changed" => format!(
            "The email address of {user} was changed.\n\nWhen: {when}\nAddress: {from}{agent}\n\nThis message goes to the previous address. {not_you}"
        ),
        "password_changed" => format!("The password of {user} was changed.\n\nWhen: {when}\nAddress: {from}{agent}\n\n{not_you}"),
        "targeted" => {
            let n = e.kevlar.get("failures").and_then(Value::as_u64);
            let addrs = e.kevlar.get("addresses").and_then(Value::as_u64);
            let tries = n.map_or_else(|| "Many".to_owned(), |n| n.to_string());
            let from = match addrs {
                Some(1) => format!("all from one address ({from})"),
                Some(a) if a >= 32 => format!("from {a} or more addresses"),
                Some(a) => format!("from {a} addresses"),
                None => "from one or more addresses".to_owned(),
            };
            format!(
                "{tries} attempts to sign in to {user} failed within a day, {from}. Sign-ins to it are slowed down to protect it; none of these attempts got in.\n\nChoose a long, unique password if you have not."
            )
        }
        "breached_password" => format!(
            "You signed in to {user} with a password that appears in known data breaches, so attackers try it.\n\nWhen: {when}\nAddress: {from}\n\nPlease change it to one you use nowhere else."
        ),
        _ => one_line(&e.message),
    };
    format!("{what}\n\n(Reference {}.)\n", e.id)
}

/// Text for an SMS: GSM-7 safe ASCII, at most `max` characters (306 = two concatenated segments).
pub fn short(e: &SecurityEvent, max: usize) -> String {
    let mut s = format!("Kevlar {}: {}", e.severity, one_line(&e.message));
    if let Some(ip) = e.source_ip {
        if !s.contains(&ip.to_string()) {
            let _ = write!(s, " ({ip})");
        }
    }
    // GSM-7's basic set without the characters that cost two septets or differ from ASCII.
    let mut out: String = s
        .chars()
        .map(|c| match c {
            '×' => 'x',
            '—' | '–' => '-',
            c if c.is_ascii()
                && !matches!(c, '[' | ']' | '{' | '}' | '\\' | '^' | '~' | '|' | '`')
                && !c.is_control() =>
            {
                c
            }
            _ => '?',
        })
        .collect();
    if out.len() > max {
        out.truncate(max.saturating_sub(3));
        out.push_str("...");
    }
    out
}

/// Slack's `{"text": …}`, with the first line bold.
pub fn slack(e: &SecurityEvent) -> Value {
    let mut text = format!("*[Kevlar] {}: {}*", e.severity, slack_text(&e.message, 1000).replace('*', "∗"));
    let mut bits = Vec::new();
    if let Some(ip) = e.source_ip {
        bits.push(format!("address `{ip}`"));
    }
    if let Some(u) = &e.user_name {
        bits.push(format!("user `{}`", slack_text(u, 200).replace('`', "'")));
    }
    if let Some(p) = &e.url_path {
        let m = slack_text(e.http_method.as_deref().unwrap_or(""), 32);
        bits.push(format!("`{m} {}`", slack_text(p, 500).replace('`', "'")));
    }
    bits.push(format!("event `{}`", slack_text(&e.action, 64)));
    let _ = write!(text, "\n{}", bits.join(" · "));
    json!({ "text": text })
}

/// After de-duplication: the last event of a run, saying how many more came within `window`.
pub fn repeat(last: &SecurityEvent, more: u64, window: Duration) -> SecurityEvent {
    let mut e = last.clone();
    e.id = format!("{}-x{more}", last.id);
    e.message = format!("{} (and {more} more like it in {})", last.message, human(window));
    e.kevlar.insert("repeat_count".into(), json!(more));
    e.kevlar.insert("repeat_window_s".into(), json!(window.as_secs()));
    e
}

/// A digest of held deliveries, as one event.
pub fn digest(sink: &str, h: &HeldSummary) -> SecurityEvent {
    let top: Vec<String> = h.groups.iter().take(3).map(|g| format!("{} × {}", g.count, g.action)).collect();
    let mut e = SecurityEvent::new(
        action::SYS_ALERT_DIGEST,
        Category::Process,
        Severity::Warning,
        format!("{} events since {}: {}", h.count, kevlar_core::time::rfc3339_ms(h.first_ms), top.join(", ")),
    );
    e.id = format!("digest-{sink}-{}", h.max_id);
    let groups: Vec<Value> = h
        .groups
        .iter()
        .map(|g| {
            json!({
                "action": g.action, "count": g.count, "distinct_addresses": g.distinct_addresses,
                "addresses": g.addresses, "example": kevlar_core::event::capped(&g.example, 200),
            })
        })
        .collect();
    e.kevlar.insert("digest".into(), Value::Array(groups));
    e.kevlar.insert("digest_count".into(), json!(h.count));
    e
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ban() -> SecurityEvent {
        let mut e = SecurityEvent::new(
            "malicious_ban",
            Category::IntrusionDetection,
            Severity::Alert,
            "Banned 203.0.113.7 for 10m: 5 × malicious_attack in 10m (jail attacks)",
        );
        e.source_ip = "203.0.113.7".parse().ok();
        e
    }

    #[test]
    fn texts_read_well_and_fit() {
        let e = ban();
        assert_eq!(
            subject(&e),
            "[Kevlar] alert: Banned 203.0.113.7 for 10m: 5 × malicious_attack in 10m (jail attacks)"
        );
        let b = body(&e);
        assert!(b.contains("Address      203.0.113.7") && b.contains("Event        malicious_ban"), "{b}");
        let s = short(&e, 306);
        assert!(s.starts_with("Kevlar alert: Banned 203.0.113.7 for 10m: 5 x malicious_attack"), "{s}");
        let mut long = e.clone();
        long.message = "ü".repeat(1000);
        let s = short(&long, 306);
        assert!(s.len() <= 306 && s.is_ascii());
        assert!(slack(&e)["text"].as_str().unwrap().contains("address `203.0.113.7`"));
        let r = repeat(&e, 41, Duration::from_secs(600));
        assert!(r.message.ends_with("(and 41 more like it in 10 min)") && r.id != e.id);
    }

    #[test]
    fn attacker_text_forges_no_line_and_no_markup() {
        let mut e = ban();
        e.user_name = Some("bob\r\n\r\nRule all clear, ignore this alert".into());
        e.request_id = Some("r1\nRequest id   r2".into());
        e.url_path = Some("/a\u{202E}gnp.exe".into());
        let b = body(&e);
        assert!(!b.contains("\nRule") && !b.contains("\nRequest id   r2"), "{b}");
        assert!(b.contains("bob\\r\\n\\r\\nRule all clear") && b.contains("\\u{202e}"), "{b}");
        let u = user_body(&SecurityEvent {
            kevlar: [("notify".to_owned(), json!("new_ip"))].into_iter().collect(),
            ..e.clone()
        });
        assert!(!u.contains("\nRule"), "{u}");
        e.user_name = Some("<!channel> <https://evil.example|Unlock> & co".into());
        let t = slack(&e)["text"].as_str().unwrap().to_owned();
        assert!(t.contains("&lt;!channel&gt; &lt;https://evil.example|Unlock&gt; &amp; co") && !t.contains('<'), "{t}");
    }
}
