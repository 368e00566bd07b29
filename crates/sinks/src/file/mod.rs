//! The file sink (JSON lines, rotated by size) and the stdout sink (JSON lines).

use std::io::Write;
use std::path::Path;

use kevlar_config::FileSink as Config;
use kevlar_core::SecurityEvent;

use crate::{Sink, SinkError};
use kevlar_core::rotate::RotatingFile;

pub struct FileSink {
    file: RotatingFile,
}

impl FileSink {
    /// A relative path is under the data dir.
    pub fn new(cfg: &Config, data_dir: &Path) -> Result<Self, SinkError> {
        let path = if cfg.path.is_relative() { data_dir.join(&cfg.path) } else { cfg.path.clone() };
        let file = RotatingFile::open(&path, cfg.max_bytes, cfg.keep)
            .map_err(|e| SinkError::config(format!("cannot open {}: {e}", path.display())))?;
        Ok(FileSink { file })
    }
}

impl Sink for FileSink {
    fn send(&mut self, events: &[SecurityEvent]) -> Result<(), SinkError> {
        for e in events {
            self.file.write_line(e.to_json().to_string().as_bytes()).map_err(SinkError::io)?;
        }
        self.file.flush().map_err(SinkError::io)
    }

    fn health(&mut self) -> Result<(), SinkError> {
        self.file.flush().map_err(SinkError::io)
    }

    fn batch_size(&self) -> usize {
        500
    }
}

pub struct StdoutSink;

impl Sink for StdoutSink {
    fn send(&mut self, events: &[SecurityEvent]) -> Result<(), SinkError> {
        let mut buf = Vec::with_capacity(events.len() * 512);
        for e in events {
            let _ = serde_json::to_writer(&mut buf, &e.to_json());
            buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&buf).and_then(|_| out.flush()).map_err(SinkError::io)
    }

    fn health(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn batch_size(&self) -> usize {
        500
    }
}
