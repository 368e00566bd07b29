//! The online breached-password check (Pwned Passwords' range API, k-anonymity): answers cached
//! and bounded, asked off the request path by one thread.

use super::*;

/// The Pwned Passwords range API, asked from a thread of its own (never from a request), with a
/// bounded cache of answers per full hash (a day for an answer, five minutes after an error).
/// Per SHA-1: the count the API gave (`None`: not breached) and when that answer expires.
type Answers = HashMap<[u8; 20], (Option<u64>, i64)>;

pub struct Online {
    cache: Mutex<Answers>,
    tx: std::sync::mpsc::SyncSender<[u8; 20]>,
}

const ONLINE_CACHE: usize = 100_000;

impl Online {
    pub fn start(url: String) -> Option<std::sync::Arc<Online>> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<[u8; 20]>(1024);
        let me = std::sync::Arc::new(Online { cache: Mutex::new(HashMap::new()), tx });
        let weak = std::sync::Arc::downgrade(&me);
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(5))
            .user_agent(concat!("kevlar/", env!("CARGO_PKG_VERSION")))
            .build();
        let spawned = std::thread::Builder::new().name("kevlar-breach-api".into()).spawn(move || {
            for h in rx {
                let Some(me) = weak.upgrade() else { return };
                let now = kevlar_core::time::now_ms();
                if me.cached(&h, now).is_some() {
                    continue;
                }
                let (prefix, suffix) = kevlar_breach::range::split(&h);
                let answer = agent
                    .get(&format!("{url}{prefix}"))
                    .set("Add-Padding", "true")
                    .call()
                    .ok()
                    .and_then(|r| r.into_string().ok());
                let entry = match answer {
                    Some(body) => (kevlar_breach::range::count(&body, &suffix), now + 86_400_000),
                    None => {
                        tracing::debug!("breached-password API did not answer");
                        (None, now + 300_000)
                    }
                };
                me.store(h, entry, now);
            }
        });
        spawned.ok().map(|_| me)
    }

    /// `Some(count)` when the API has answered for this hash (`Some(None)`: not breached).
    pub(super) fn cached(&self, h: &[u8; 20], now: i64) -> Option<Option<u64>> {
        self.cache.lock().ok()?.get(h).filter(|(_, exp)| *exp > now).map(|(c, _)| *c)
    }

    pub(super) fn store(&self, h: [u8; 20], entry: (Option<u64>, i64), now: i64) {
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= ONLINE_CACHE {
                c.retain(|_, (_, exp)| *exp > now);
                if c.len() >= ONLINE_CACHE {
                    c.clear();
                }
            }
            c.insert(h, entry);
        }
    }

    pub(super) fn ask(&self, h: [u8; 20]) {
        let _ = self.tx.try_send(h);
    }
}
