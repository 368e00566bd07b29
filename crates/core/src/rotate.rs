//! A file written in appends and rotated by size: `name` → `name.1` → … → `name.K`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub struct RotatingFile {
    path: PathBuf,
    file: io::BufWriter<File>,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::private::private_file(path);
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile { path: path.to_owned(), file: io::BufWriter::new(file), size, max_bytes, keep })
    }

    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.max_bytes > 0 && self.size > 0 && self.size + line.len() as u64 + 1 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.file.write_all(b"\n")?;
        self.size += line.len() as u64 + 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            for n in (1..self.keep).rev() {
                let from = numbered(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, numbered(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
        }
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path)?;
        self.file = io::BufWriter::new(file);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_keeps_k_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let mut f = RotatingFile::open(&p, 100, 2).unwrap();
        for i in 0..20 {
            f.write_line(format!("line {i:02} ..................").as_bytes()).unwrap();
        }
        f.flush().unwrap();
        assert!(p.exists());
        assert!(numbered(&p, 1).exists());
        assert!(numbered(&p, 2).exists());
        assert!(!numbered(&p, 3).exists());
        let last = std::fs::read_to_string(&p).unwrap();
        assert!(last.contains("line 19"));
        assert!(std::fs::metadata(&p).unwrap().len() <= 100);
    }
}
