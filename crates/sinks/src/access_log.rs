//! The access log: one ECS JSON line per request, to stdout or a rotated file. Records travel to
//! a writer thread through a bounded queue; when it is full the record is dropped and counted,
//! so a slow disk never slows a request.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::util::rotate::RotatingFile;

/// Where access-log lines go.
#[derive(Debug, Clone)]
pub enum AccessTarget {
    Stdout,
    File { path: PathBuf, max_bytes: u64, keep: usize },
}

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
            "@timestamp": kevlar_core::time::rfc3339_ms(self.timestamp_ms),
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

/// A handle to the access-log writer; cheap to clone.
#[derive(Clone)]
pub struct AccessLogger {
    tx: SyncSender<AccessRecord>,
    dropped: Arc<AtomicU64>,
}

impl AccessLogger {
    /// Starts the writer thread. Fails when the file cannot be opened.
    pub fn start(target: AccessTarget, capacity: usize) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(capacity.max(1));
        let mut out: Box<dyn LineOut> = match target {
            AccessTarget::Stdout => Box::new(std::io::BufWriter::new(std::io::stdout())),
            AccessTarget::File { path, max_bytes, keep } => Box::new(RotatingFile::open(&path, max_bytes, keep)?),
        };
        std::thread::Builder::new().name("kevlar-access-log".into()).spawn(move || run(&mut *out, rx))?;
        Ok(AccessLogger { tx, dropped: Arc::new(AtomicU64::new(0)) })
    }

    pub fn log(&self, record: AccessRecord) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(record) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

trait LineOut: Send {
    fn line(&mut self, line: &[u8]) -> std::io::Result<()>;
    fn flush_out(&mut self) -> std::io::Result<()>;
}

impl LineOut for RotatingFile {
    fn line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.write_line(line)
    }
    fn flush_out(&mut self) -> std::io::Result<()> {
        self.flush()
    }
}

impl<W: Write + Send> LineOut for std::io::BufWriter<W> {
    fn line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.write_all(line)?;
        self.write_all(b"\n")
    }
    fn flush_out(&mut self) -> std::io::Result<()> {
        self.flush()
    }
}

fn run(out: &mut dyn LineOut, rx: Receiver<AccessRecord>) {
    let mut failing = false;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(rec) = next {
            let line = rec.to_json().to_string();
            if let Err(e) = out.line(line.as_bytes()) {
                if !failing {
                    tracing::error!(error = %e, "access log: write failed");
                    failing = true;
                }
            }
            next = rx.try_recv().ok();
        }
        if out.flush_out().is_ok() {
            failing = false;
        }
    }
}
