//! The access log's record and the port the proxy writes it through, as the gate is the port to
//! detection: the proxy knows only this trait; the sinks crate implements it with a bounded queue
//! to a writer thread (stdout or a rotated file).

use std::net::IpAddr;

use serde_json::{json, Map, Value};

/// What the proxy knows about a finished request.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub timestamp_ms: i64,
    pub request_id: String,
    pub client_ip: IpAddr,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub host: Option<String>,
    pub version: &'static str,
    pub status: u16,
    pub duration_us: u64,
    pub user_agent: Option<String>,
    pub tls: bool,
}

impl AccessRecord {
    pub fn to_json(&self) -> Value {
        let mut url = Map::new();
        url.insert("path".into(), json!(self.path));
        if let Some(q) = &self.query {
            url.insert("query".into(), json!(q));
        }
        if let Some(h) = &self.host {
            url.insert("domain".into(), json!(h));
        }
        url.insert("scheme".into(), json!(if self.tls { "https" } else { "http" }));
        let mut v = json!({
            "@timestamp": crate::time::rfc3339_ms(self.timestamp_ms),
            "event": { "dataset": "kevlar.access", "kind": "event", "category": ["web"], "duration": self.duration_us * 1000 },
            "source": { "ip": self.client_ip.to_string() },
            "http": {
                "version": self.version,
                "request": { "id": self.request_id, "method": self.method },
                "response": { "status_code": self.status },
            },
            "url": Value::Object(url),
        });
        if let Some(ua) = &self.user_agent {
            v["user_agent"] = json!({ "original": ua });
        }
        v
    }
}

/// Where the proxy hands a finished request's record. Must not block: a full queue drops and
/// counts the record.
pub trait AccessLog: Send + Sync {
    fn log(&self, record: AccessRecord);
}
