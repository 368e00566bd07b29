//! The ban table the edge consults on every request. Reads take a shared lock on one shard; an
//! empty table (the common case) costs one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use crate::key::IpKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub since_ms: i64,
    /// `i64::MAX`: until lifted.
    pub until_ms: i64,
    pub reason: String,
    /// `manual`, `jail:attacks`, `recidive` …
    pub source: String,
    /// False for bans recorded in monitor mode: remembered and reported, not refused.
    pub enforced: bool,
}

/// Where bans made here are told, so that other instances apply them (`[cluster]`). Called on
/// the thread that made the change; must not block (queue and return).
pub trait BanShare: Send + Sync {
    fn banned(&self, key: &IpKey, ban: &Ban);
    fn unbanned(&self, key: &IpKey);
    /// An event of `key` counted in jail `jail` here, for the other instances' windows.
    fn jail_hit(&self, _jail: &str, _key: &IpKey) {}
    /// A failed login of `user` from `ip` here, for the other instances' lockout counts.
    fn login_failure(&self, _user: &str, _ip: std::net::IpAddr) {}
    /// The (user, address) pair was locked here for `secs`.
    fn pair_locked(&self, _user: &str, _ip: std::net::IpAddr, _secs: u64) {}
    /// Whether this instance makes the jails' bans of `key` (one instance per address in a
    /// cluster, every instance when alone or cut off).
    fn owns(&self, _key: &IpKey) -> bool {
        true
    }
}

#[derive(Default)]
pub struct BanTable {
    map: RwLock<HashMap<IpKey, Ban>>,
    enforced: AtomicUsize,
}

impl BanTable {
    /// The enforced ban on `key` that is still running at `now_ms`.
    pub fn check(&self, key: &IpKey, now_ms: i64) -> Option<i64> {
        if self.enforced.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let map = self.map.read().ok()?;
        map.get(key).filter(|b| b.enforced && b.until_ms > now_ms).map(|b| b.until_ms)
    }

    pub fn get(&self, key: &IpKey) -> Option<Ban> {
        self.map.read().ok()?.get(key).cloned()
    }

    pub fn insert(&self, key: IpKey, ban: Ban) {
        let Ok(mut map) = self.map.write() else { return };
        map.insert(key, ban);
        self.recount(&map);
    }

    pub fn remove(&self, key: &IpKey) -> Option<Ban> {
        let mut map = self.map.write().ok()?;
        let old = map.remove(key);
        self.recount(&map);
        old
    }

    /// Drops bans that ended; returns them.
    pub fn expire(&self, now_ms: i64) -> Vec<(IpKey, Ban)> {
        let Ok(mut map) = self.map.write() else { return Vec::new() };
        let ended: Vec<IpKey> = map.iter().filter(|(_, b)| b.until_ms <= now_ms).map(|(k, _)| *k).collect();
        let out = ended.into_iter().filter_map(|k| map.remove(&k).map(|b| (k, b))).collect();
        self.recount(&map);
        out
    }

    pub fn all(&self) -> Vec<(IpKey, Ban)> {
        self.map.read().map(|m| m.iter().map(|(k, b)| (*k, b.clone())).collect()).unwrap_or_default()
    }

    fn recount(&self, map: &HashMap<IpKey, Ban>) {
        self.enforced.store(map.values().filter(|b| b.enforced).count(), Ordering::Relaxed);
    }
}
