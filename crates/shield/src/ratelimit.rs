//! Rate limits by GCRA (the generic cell rate algorithm): one timestamp per key — the
//! theoretical arrival time — so the state is eight bytes, and a key whose time has passed is
//! the same as no key, which makes bounding memory lossless: expired keys are swept first.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use kevlar_config::Rate;

const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Params {
    /// Nanoseconds between two requests at the steady rate.
    emission: u64,
    /// How far ahead of now the arrival time may run: the burst.
    tolerance: u64,
}

impl Params {
    fn new(r: Rate) -> Params {
        let emission = (r.per.as_nanos() / u128::from(r.count.max(1))).min(u64::MAX as u128) as u64;
        Params { emission, tolerance: emission.saturating_mul(u64::from(r.burst.max(1)).saturating_sub(1)) }
    }

    /// The new arrival time, or how long to wait.
    fn step(&self, tat: u64, now: u64) -> Result<u64, u64> {
        let tat = tat.max(now);
        let allow_at = tat.saturating_sub(self.tolerance);
        if now < allow_at {
            return Err(allow_at - now);
        }
        Ok(tat + self.emission)
    }
}

/// One limit for everyone.
pub struct Global {
    p: Params,
    tat: AtomicU64,
}

impl Global {
    pub fn new(r: Rate) -> Global {
        Global { p: Params::new(r), tat: AtomicU64::new(0) }
    }

    /// `Err(wait_ns)` when over the limit.
    pub fn check(&self, now: u64) -> Result<(), u64> {
        let mut cur = self.tat.load(Ordering::Relaxed);
        loop {
            let next = self.p.step(cur, now)?;
            match self.tat.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }
}

/// One limit per key, in sharded maps of bounded size.
pub struct Keyed<K> {
    p: Params,
    shards: Vec<Mutex<HashMap<K, u64>>>,
    cap_per_shard: usize,
    /// One hasher for all threads, so a key always lands in the same shard.
    hasher: std::hash::RandomState,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    pub fn new(r: Rate, capacity: usize) -> Keyed<K> {
        Keyed {
            p: Params::new(r),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            cap_per_shard: (capacity / SHARDS).max(16),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn shard(&self, k: &K) -> &Mutex<HashMap<K, u64>> {
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(k);
        &self.shards[(h as usize) % SHARDS]
    }

    pub fn check(&self, k: &K, now: u64) -> Result<(), u64> {
        let Ok(mut map) = self.shard(k).lock() else { return Ok(()) };
        let tat = map.get(k).copied().unwrap_or(0);
        let next = self.p.step(tat, now)?;
        if map.len() >= self.cap_per_shard && !map.contains_key(k) {
            // Expired arrival times carry no information: drop them. If every key is live (a
            // flood of distinct addresses), drop an arbitrary half: the limit fails open for
            // them rather than letting memory grow.
            map.retain(|_, t| *t > now);
            if map.len() >= self.cap_per_shard {
                let drop: Vec<K> = map.keys().take(self.cap_per_shard / 2).cloned().collect();
                for d in drop {
                    map.remove(&d);
                }
            }
        }
        map.insert(k.clone(), next);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|m| m.len()).unwrap_or(0)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    #[test]
    fn burst_then_steady() {
        let g = Global::new(Rate { count: 10, per: Duration::from_secs(1), burst: 5 });
        for _ in 0..5 {
            assert!(g.check(S).is_ok());
        }
        let wait = g.check(S).unwrap_err();
        assert!(wait > 0 && wait <= S / 10, "{wait}");
        assert!(g.check(S + S / 10).is_ok());
    }

    #[test]
    fn keyed_memory_is_bounded() {
        let k: Keyed<u32> = Keyed::new(Rate { count: 1, per: Duration::from_secs(60), burst: 1 }, 10_000);
        for i in 0..1_000_000u32 {
            let _ = k.check(&i, S);
        }
        assert!(k.len() <= 10_000, "{}", k.len());
        assert!(k.check(&7, S).is_ok() || k.check(&7, S).is_err());
        let a = 123_456_789u32;
        assert!(k.check(&a, 2 * S).is_ok());
        assert!(k.check(&a, 2 * S).is_err());
    }
}

#[cfg(test)]
mod threads {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn one_key_one_budget_across_threads() {
        let k: Arc<Keyed<u32>> = Arc::new(Keyed::new(Rate { count: 1, per: Duration::from_secs(60), burst: 4 }, 1000));
        let allowed: usize = (0..4)
            .map(|_| {
                let k = k.clone();
                std::thread::spawn(move || (0..4).filter(|_| k.check(&9, 1_000_000_000).is_ok()).count())
            })
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(allowed, 4, "the burst is shared by every worker thread");
    }
}
