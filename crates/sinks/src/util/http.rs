//! HTTP plumbing for the sinks that speak HTTP (webhook, SMS): one ureq agent setup, errors in
//! words that never include the URL, and the reachability check of their health probe.

use std::net::TcpStream;
use std::time::Duration;

use crate::util::net::tls_config;
use crate::SinkError;

/// A ureq error in words that never include the URL (a Slack webhook URL is a secret).
pub fn http_error(e: ureq::Error) -> SinkError {
    match e {
        ureq::Error::Status(code, resp) => {
            let retry = resp.header("retry-after").map(|r| format!(", retry after {r}")).unwrap_or_default();
            let msg = format!("HTTP {code} {}{retry}", resp.status_text());
            // 4xx says this request will never do (408 and 429 say: later).
            if (400..500).contains(&code) && code != 408 && code != 429 {
                SinkError::refused(msg)
            } else {
                SinkError::rejected(msg)
            }
        }
        ureq::Error::Transport(t) => {
            let msg = t.message().map(|m| format!(": {m}")).unwrap_or_default();
            SinkError::connect(format!("{}{msg}", t.kind()))
        }
    }
}

/// `host:port` of an http(s) URL.
pub fn authority(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let auth = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let auth = auth.rsplit_once('@').map_or(auth, |(_, a)| a);
    let has_port = auth.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !auth.ends_with(']');
    if has_port {
        auth.to_owned()
    } else {
        format!("{auth}:{}", if scheme == "https" { 443 } else { 80 })
    }
}

pub fn agent(timeout: Duration, ca_file: Option<&std::path::Path>) -> Result<ureq::Agent, SinkError> {
    Ok(ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .user_agent(concat!("kevlar/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls_config(ca_file)?)
        .build())
}

/// Whether a TCP connection to the host and port of an http(s) URL opens: the health check of
/// the HTTP sinks (a request would be seen by the receiver).
pub fn http_reachable(url: &str, timeout: Duration) -> Result<(), SinkError> {
    let auth = authority(url);
    let addr = crate::util::net::resolve(&auth)?;
    TcpStream::connect_timeout(&addr[0], timeout)
        .map(|_| ())
        .map_err(|e| SinkError::connect(format!("cannot connect to {auth}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(authority("https://hooks.slack.com/services/T/B/X"), "hooks.slack.com:443");
        assert_eq!(authority("http://127.0.0.1:9/x?y"), "127.0.0.1:9");
        assert_eq!(authority("http://u:p@[::1]/x"), "[::1]:80");
    }
}
