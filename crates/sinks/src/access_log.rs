//! The access log: one ECS JSON line per request, to stdout or a rotated file. Records travel to
//! a writer thread through a bounded queue; when it is full the record is dropped and counted,
//! so a slow disk never slows a request.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use kevlar_core::access::{AccessLog, AccessRecord};
use kevlar_core::rotate::RotatingFile;

/// Where access-log lines go.
#[derive(Debug, Clone)]
pub enum AccessTarget {
    Stdout,
    File { path: PathBuf, max_bytes: u64, keep: usize },
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

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AccessLog for AccessLogger {
    fn log(&self, record: AccessRecord) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(record) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
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
