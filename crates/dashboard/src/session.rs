//! Who may see the dashboard: the admin token exchanged once for a session cookie (`HttpOnly`,
//! `SameSite=Strict`, `Secure` over TLS, 12 hours), a CSRF token per session checked on every
//! change, and wrong tokens counted per address (5 a minute, then `429`).

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;

use subtle::ConstantTimeEq;

pub const COOKIE: &str = "kevlar_session";
/// How long a session lasts from the login.
pub const LIFETIME_MS: i64 = 12 * 3600 * 1000;
/// Sessions kept at once; the oldest goes first.
const MAX_SESSIONS: usize = 256;
/// Wrong tokens allowed per address in a minute.
pub const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW_MS: i64 = 60_000;
const MAX_TRACKED: usize = 10_000;

#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    pub expires_ms: i64,
}

#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
}

/// 256 bits from the OS, as hex.
pub fn random_hex() -> std::io::Result<String> {
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// A new session: its id (the cookie) and the session.
    /// Without the OS's randomness there is no safe session: the error is the answer.
    pub fn open(&self, now_ms: i64) -> std::io::Result<(String, Session)> {
        let id = random_hex()?;
        let s = Session { csrf: random_hex()?, expires_ms: now_ms + LIFETIME_MS };
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, s| s.expires_ms > now_ms);
            if live.len() >= MAX_SESSIONS {
                if let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires_ms).map(|(k, _)| k.clone()) {
                    live.remove(&oldest);
                }
            }
            live.insert(id.clone(), s.clone());
        }
        Ok((id, s))
    }

    /// The session of this cookie value, while it lasts.
    pub fn get(&self, id: &str, now_ms: i64) -> Option<Session> {
        if id.len() != 64 {
            return None;
        }
        let live = self.live.lock().ok()?;
        // Constant time over the candidates' ids is not needed: the map lookup reveals nothing
        // an attacker can time across 256 random bits.
        live.get(id).filter(|s| s.expires_ms > now_ms).cloned()
    }

    pub fn close(&self, id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(id);
        }
    }

    /// Whether this address may try a token now; `Err((seconds to wait, first refusal of the
    /// window))`.
    pub fn may_try(&self, ip: IpAddr, now_ms: i64) -> Result<(), (u64, bool)> {
        let mut f = self.failures.lock().map_err(|_| (60u64, false))?;
        match f.get_mut(&ip) {
            Some((n, since)) if *n >= MAX_FAILURES && now_ms - *since < FAILURE_WINDOW_MS => {
                let first = *n == MAX_FAILURES;
                *n = n.saturating_add(1);
                Err((((FAILURE_WINDOW_MS - (now_ms - *since)) / 1000).max(1) as u64, first))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, ip: IpAddr, now_ms: i64) {
        if let Ok(mut f) = self.failures.lock() {
            if f.len() >= MAX_TRACKED {
                f.retain(|_, (_, since)| now_ms - *since < FAILURE_WINDOW_MS);
                if f.len() >= MAX_TRACKED {
                    f.clear();
                }
            }
            let e = f.entry(ip).or_insert((0, now_ms));
            if now_ms - e.1 >= FAILURE_WINDOW_MS {
                *e = (0, now_ms);
            }
            e.0 += 1;
        }
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|p| p.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_wrong_tokens_are_limited() {
        let s = Sessions::default();
        let (id, sess) = s.open(0).unwrap();
        assert_eq!(s.get(&id, 1).unwrap().csrf, sess.csrf);
        assert!(s.get(&id, LIFETIME_MS + 1).is_none(), "expired");
        assert!(s.get("short", 1).is_none());
        s.close(&id);
        assert!(s.get(&id, 1).is_none());
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(s.may_try(ip, 10).is_ok());
            s.failed(ip, 10);
        }
        assert_eq!(s.may_try(ip, 20).map_err(|e| e.1), Err(true), "the first refusal is said");
        assert_eq!(s.may_try(ip, 21).map_err(|e| e.1), Err(false), "the next ones are not");
        assert!(s.may_try(ip, 10 + FAILURE_WINDOW_MS).is_ok(), "the window passes");
        assert_eq!(cookie("a=1; kevlar_session=xyz; b=2", COOKIE), Some("xyz"));
    }
}
