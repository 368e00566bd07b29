//! `[[watch]]`: server logs whose logins feed the same counters and jails as the web's — fail2ban's
//! job in the same engine. Each file is followed from its end, across rotation (a new file at the
//! path, or a truncated one, is read from its start), one complete line at a time.
//!
//! The line patterns are Kevlar's own, for OpenSSH's sshd and vsftpd:
//!
//! ```text
//! sshd:   Failed password for [invalid user] USER from IP port N ssh2
//!         Failed publickey|keyboard-interactive/pam for … from IP …
//!         error: maximum authentication attempts exceeded for [invalid user] USER from IP …
//!         Accepted password|publickey|… for USER from IP port N ssh2
//! vsftpd: [pid N] [USER] FAIL LOGIN: Client "IP"     [pid N] [USER] OK LOGIN: Client "IP"
//!         vsftpd…: pam_unix(vsftpd:auth): authentication failure; … ruser=USER rhost=IP
//! ```

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kevlar_config::{WatchFormat, WatchSource};

/// A login seen in a server log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLogin {
    pub ok: bool,
    pub user: Option<String>,
    pub ip: IpAddr,
    /// `password`, `publickey`, … when the line says.
    pub method: Option<String>,
}

const MAX_LINE: usize = 8192;

fn ip(s: &str) -> Option<IpAddr> {
    let s = s.trim_matches(|c: char| c == '"' || c == '[' || c == ']' || c == ',' || c == ';');
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

fn user(s: &str) -> Option<String> {
    let u: String = s.chars().filter(|c| !c.is_control()).take(128).collect();
    (!u.is_empty()).then_some(u)
}

/// `… for [invalid user] USER from IP …` → (user, ip).
fn for_from(rest: &str) -> Option<(Option<String>, IpAddr)> {
    let rest = rest.strip_prefix("invalid user ").unwrap_or(rest);
    let (u, after) = rest.rsplit_once(" from ")?;
    let addr = after.split_whitespace().next()?;
    Some((user(u), ip(addr)?))
}

pub fn parse_sshd(line: &str) -> Option<LogLogin> {
    if let Some(i) = line.find("Failed ") {
        let rest = &line[i + 7..];
        let (method, rest) = rest.split_once(" for ")?;
        let (u, ip) = for_from(rest)?;
        return Some(LogLogin { ok: false, user: u, ip, method: Some(method.to_owned()) });
    }
    if let Some(i) = line.find("maximum authentication attempts exceeded for ") {
        let (u, ip) = for_from(&line[i + 45..])?;
        return Some(LogLogin { ok: false, user: u, ip, method: None });
    }
    if let Some(i) = line.find("Accepted ") {
        let rest = &line[i + 9..];
        let (method, rest) = rest.split_once(" for ")?;
        let (u, ip) = for_from(rest)?;
        return Some(LogLogin { ok: true, user: u, ip, method: Some(method.to_owned()) });
    }
    None
}

pub fn parse_vsftpd(line: &str) -> Option<LogLogin> {
    for (marker, ok) in [("] FAIL LOGIN: Client ", false), ("] OK LOGIN: Client ", true)] {
        if let Some(i) = line.find(marker) {
            let head = &line[..i];
            let u = head.rsplit_once('[').map(|(_, u)| u).and_then(user);
            let addr = line[i + marker.len()..].split_whitespace().next()?;
            return Some(LogLogin { ok, user: u, ip: ip(addr)?, method: None });
        }
    }
    if line.contains("vsftpd") && line.contains("authentication failure") {
        let field = |k: &str| line.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_owned);
        let rhost = field("rhost=")?;
        return Some(LogLogin {
            ok: false,
            user: field("ruser=").and_then(|u| user(&u)),
            ip: ip(&rhost)?,
            method: None,
        });
    }
    None
}

pub fn parse(format: WatchFormat, line: &str) -> Option<LogLogin> {
    match format {
        WatchFormat::Sshd => parse_sshd(line),
        WatchFormat::Vsftpd => parse_vsftpd(line),
    }
}

/// A file followed from where it ended when first seen.
pub struct Tail {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    pub fn new(path: PathBuf) -> Tail {
        let mut t = Tail { path, file: None, inode: 0, offset: 0, partial: Vec::new() };
        if let Ok(f) = File::open(&t.path) {
            if let Ok(m) = f.metadata() {
                t.inode = m.ino();
                t.offset = m.len();
                t.file = Some(f);
            }
        }
        t
    }

    fn read_new(&mut self, lines: &mut Vec<String>) {
        let Some(f) = self.file.as_mut() else { return };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if f.take(16 << 20).read_to_end(&mut buf).is_err() {
            return;
        }
        self.offset += buf.len() as u64;
        for b in buf {
            if b == b'\n' {
                lines.push(String::from_utf8_lossy(&self.partial).into_owned());
                self.partial.clear();
            } else if self.partial.len() < MAX_LINE {
                self.partial.push(b);
            }
        }
    }

    /// Complete lines added since the last call.
    pub fn poll(&mut self, lines: &mut Vec<String>) {
        let current = std::fs::metadata(&self.path).ok();
        match (&self.file, current) {
            (_, None) => self.read_new(lines),
            (None, Some(_)) => {
                if let Ok(f) = File::open(&self.path) {
                    self.inode = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    self.offset = 0;
                    self.file = Some(f);
                    self.read_new(lines);
                }
            }
            (Some(_), Some(m)) => {
                if m.ino() != self.inode {
                    // Rotated: finish the old file, then read the new one from its start.
                    self.read_new(lines);
                    self.partial.clear();
                    self.file = None;
                    self.poll(lines);
                } else {
                    if m.len() < self.offset {
                        // Truncated in place (copytruncate).
                        self.offset = 0;
                        self.partial.clear();
                    }
                    self.read_new(lines);
                }
            }
        }
    }
}

/// Follows every source on one thread (four times a second) and hands each login to `seen`.
pub fn start(
    sources: Vec<WatchSource>,
    stop: Arc<AtomicBool>,
    seen: impl Fn(&WatchSource, LogLogin) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("kevlar-watch".into()).spawn(move || {
        let mut tails: Vec<(WatchSource, Tail)> = sources.into_iter().map(|s| (s.clone(), Tail::new(s.path))).collect();
        let mut lines = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            for (src, tail) in &mut tails {
                lines.clear();
                tail.poll(&mut lines);
                for l in &lines {
                    if let Some(login) = parse(src.format, l) {
                        seen(src, login);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sshd_lines() {
        let l = parse_sshd(
            "Nov 24 07:00:01 web sshd[812]: Failed password for invalid user admin from 203.0.113.9 port 52311 ssh2",
        )
        .unwrap();
        assert_eq!((l.ok, l.user.as_deref(), l.ip.to_string()), (false, Some("admin"), "203.0.113.9".into()));
        let l = parse_sshd("sshd[9]: Failed publickey for git from 2001:db8::7 port 4 ssh2: RSA SHA256:x").unwrap();
        assert_eq!((l.user.as_deref(), l.method.as_deref()), (Some("git"), Some("publickey")));
        let l = parse_sshd(
            "2026-11-24T07:00:00Z web sshd[1]: Accepted publickey for alice from 198.51.100.7 port 50022 ssh2",
        )
        .unwrap();
        assert!(l.ok);
        let l = parse_sshd(
            "sshd[1]: error: maximum authentication attempts exceeded for root from 192.0.2.4 port 22 ssh2 [preauth]",
        )
        .unwrap();
        assert_eq!(l.user.as_deref(), Some("root"));
        assert!(parse_sshd("sshd[1]: Connection closed by 192.0.2.4 port 22 [preauth]").is_none());
        assert!(parse_sshd("sshd[1]: Failed password for root from not-an-ip port 22").is_none());
    }

    #[test]
    fn vsftpd_lines() {
        let l = parse_vsftpd(r#"Tue Nov 24 07:00:00 2026 [pid 1234] [alice] FAIL LOGIN: Client "::ffff:203.0.113.9""#)
            .unwrap();
        assert_eq!((l.ok, l.user.as_deref(), l.ip.to_string()), (false, Some("alice"), "203.0.113.9".into()));
        assert!(
            parse_vsftpd(r#"Tue Nov 24 07:00:00 2026 [pid 1234] [alice] OK LOGIN: Client "198.51.100.7""#).unwrap().ok
        );
        let l = parse_vsftpd("vsftpd[77]: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=bob rhost=192.0.2.8").unwrap();
        assert_eq!(l.user.as_deref(), Some("bob"));
    }

    #[test]
    fn tail_follows_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.log");
        std::fs::write(&p, "old line\n").unwrap();
        let mut t = Tail::new(p.clone());
        let mut lines = Vec::new();
        t.poll(&mut lines);
        assert!(lines.is_empty(), "history is not replayed");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"one\ntw").unwrap();
        t.poll(&mut lines);
        assert_eq!(lines, ["one"]);
        f.write_all(b"o\n").unwrap();
        t.poll(&mut lines);
        assert_eq!(lines, ["one", "two"]);
        // Rotation: the old file moves away with a last line; a new one takes its place.
        f.write_all(b"last of old\n").unwrap();
        std::fs::rename(&p, dir.path().join("auth.log.1")).unwrap();
        std::fs::write(&p, "first of new\n").unwrap();
        lines.clear();
        t.poll(&mut lines);
        assert_eq!(lines, ["last of old", "first of new"]);
        // copytruncate
        std::fs::write(&p, "").unwrap();
        t.poll(&mut lines);
        std::fs::write(&p, "after truncate\n").unwrap();
        lines.clear();
        t.poll(&mut lines);
        assert_eq!(lines, ["after truncate"]);
    }
}
