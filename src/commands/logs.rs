//! `kevlar logs`: the app's captured stdout or stderr, with `--follow` across rotations.

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::cli::LogsArgs;

pub fn run(a: LogsArgs) -> anyhow::Result<ExitCode> {
    let name = if a.stderr { "app.err.log" } else { "app.out.log" };
    let path = a.data_dir.join("logs").join(name);
    let text = std::fs::read(&path)
        .with_context(|| format!("cannot read {} (has `kevlar run` run with this --data-dir?)", path.display()))?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for l in &lines[lines.len().saturating_sub(a.lines)..] {
        if writeln!(out, "{l}").is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let _ = out.flush();
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut pos = text.len() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let Ok(mut f) = std::fs::File::open(&path) else { continue };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Rotated: the file started again.
            pos = 0;
        }
        if len == pos {
            continue;
        }
        f.seek(SeekFrom::Start(pos))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        pos += buf.len() as u64;
        if out.write_all(&buf).and_then(|_| out.flush()).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
}
