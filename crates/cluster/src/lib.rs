//! Several Kevlar instances act as one (`[cluster]`): bans, manual and automatic, with their
//! expiry and reason, shared through Redis.
//!
//! The request path never waits on Redis: each instance keeps a complete copy of the bans in its
//! own ban table (`kevlar_engine::bans`), the table the gate already reads. A ban made here is
//! queued to this module's thread, written as `kevlar:{name}:ban:{address}` (expiring with the
//! ban) and published on `kevlar:{name}:bans`; every other instance applies what it hears at
//! once. Every `reconcile` (30 s) and after any reconnection, the whole set in Redis is compared
//! with the local copy: bans missing here are applied, bans made here while Redis was away are
//! written, bans this instance had seen in Redis and that are gone from it were lifted
//! elsewhere. Each instance also keeps `kevlar:{name}:instance:{instance}` alive (2 s, expiring after 6 s) for
//! `kevlar status`.
//!
//! Redis unreachable, refusing or slow (every command has a 2 s bound): `sys_cluster_degraded`
//! once, bans already known stay enforced, new ones are kept and merged on return
//! (`sys_cluster_recovered`).

#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use kevlar_config::ClusterConfig;
use kevlar_core::{action, Category, Outcome, SecurityEvent, Severity};
use kevlar_engine::bans::{Ban, BanShare};
use kevlar_engine::{Bus, Correlator, IpKey};
use redis::AsyncCommands;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Every Redis command is bounded by this; the request path never waits on any.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_secs(2);
const INSTANCE_TTL_MS: u64 = 6_000;
/// Local changes waiting for Redis; beyond it the oldest are dropped (reconciliation merges
/// every ban anyway).
const MAX_QUEUED: usize = 100_000;

fn now_ms() -> i64 {
    kevlar_core::time::now_ms()
}

enum Change {
    Banned(IpKey, Ban),
    Unbanned(IpKey),
    /// A jail counted an event of the key here.
    Hit(String, IpKey),
    /// A failed login of (user, address) here.
    Login(String, IpAddr),
    /// The (user, address) pair was locked here for so many seconds.
    Lock(String, IpAddr, u64),
}

impl Change {
    /// Counting signals: sent in batches, never queued while Redis is away.
    fn is_signal(&self) -> bool {
        matches!(self, Change::Hit(..) | Change::Login(..) | Change::Lock(..))
    }
}

/// The login monitor's side of `[cluster]`: other instances' failed logins and pair locks.
pub trait LoginSink: Send + Sync {
    fn failure(&self, user: &str, ip: IpAddr);
    fn locked(&self, user: &str, ip: IpAddr, secs: u64);
}

/// One batch of counting signals, one message.
#[derive(Default)]
struct Signals {
    hits: Vec<(String, IpKey)>,
    logins: Vec<(String, IpAddr)>,
    locks: Vec<(String, IpAddr, u64)>,
}

impl Signals {
    fn add(&mut self, c: Change) {
        match c {
            Change::Hit(j, k) => self.hits.push((j, k)),
            Change::Login(u, ip) => self.logins.push((u, ip)),
            Change::Lock(u, ip, secs) => self.locks.push((u, ip, secs)),
            _ => {}
        }
    }

    fn len(&self) -> usize {
        self.hits.len() + self.logins.len() + self.locks.len()
    }
}

/// Jail hits sent in one message at most.
const MAX_HITS: usize = 512;

/// The handle: the correlator tells it of local bans; `kevlar status` asks it for the cluster.
pub struct Cluster {
    cfg: ClusterConfig,
    tx: mpsc::Sender<Change>,
    up: AtomicBool,
    /// Other instances as last seen in Redis.
    instances: Mutex<Vec<Value>>,
    shared_bans: AtomicI64,
    last_error: Mutex<Option<String>>,
    /// Taken out on shutdown so the event queues can close.
    bus: Mutex<Option<Bus>>,
    /// Set on shutdown: the thread ends its session.
    stop: tokio::sync::Notify,
    /// Other instances' failed logins and pair locks go here.
    logins: std::sync::RwLock<Option<Arc<dyn LoginSink>>>,
    /// The instances present in Redis (their heartbeat keys), this one included, by name.
    members: Mutex<Vec<String>>,
}

impl BanShare for Cluster {
    fn banned(&self, key: &IpKey, ban: &Ban) {
        let _ = self.tx.try_send(Change::Banned(*key, ban.clone()));
    }

    fn unbanned(&self, key: &IpKey) {
        let _ = self.tx.try_send(Change::Unbanned(*key));
    }

    fn jail_hit(&self, jail: &str, key: &IpKey) {
        self.signal(Change::Hit(jail.to_owned(), *key));
    }

    fn login_failure(&self, user: &str, ip: IpAddr) {
        self.signal(Change::Login(user.to_owned(), ip));
    }

    fn pair_locked(&self, user: &str, ip: IpAddr, secs: u64) {
        self.signal(Change::Lock(user.to_owned(), ip, secs));
    }

    /// The instances present in Redis, in name order, share the addresses by a hash of the
    /// address; cut off from Redis, this instance owns every address again.
    fn owns(&self, key: &IpKey) -> bool {
        if !self.up.load(Ordering::Relaxed) {
            return true;
        }
        let Ok(members) = self.members.lock() else { return true };
        if members.is_empty() || !members.contains(&self.cfg.instance) {
            return true;
        }
        // FNV-1a: the same on every instance, whatever the build.
        let h = key
            .to_string()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        members[(h % members.len() as u64) as usize] == self.cfg.instance
    }
}

fn ban_json(ban: &Ban, instance: &str) -> Value {
    json!({
        "since_ms": ban.since_ms,
        "until_ms": ban.until_ms,
        "reason": ban.reason,
        "source": ban.source,
        "enforced": ban.enforced,
        "instance": instance,
    })
}

fn ban_of(v: &Value) -> Option<Ban> {
    Some(Ban {
        since_ms: v["since_ms"].as_i64()?,
        until_ms: v["until_ms"].as_i64()?,
        reason: kevlar_core::event::capped(v["reason"].as_str().unwrap_or(""), 256),
        source: kevlar_core::event::capped(v["source"].as_str().unwrap_or("cluster"), 64),
        enforced: v["enforced"].as_bool().unwrap_or(true),
    })
}

struct Keys {
    prefix: String,
}

impl Keys {
    fn ban(&self, key: &IpKey) -> String {
        format!("{}:ban:{key}", self.prefix)
    }
    fn bans_pattern(&self) -> String {
        format!("{}:ban:*", self.prefix)
    }
    fn hits(&self) -> String {
        format!("{}:hits", self.prefix)
    }
    fn channel(&self) -> String {
        format!("{}:bans", self.prefix)
    }
    fn instance(&self, name: &str) -> String {
        format!("{}:instance:{name}", self.prefix)
    }
    fn instances_pattern(&self) -> String {
        format!("{}:instance:*", self.prefix)
    }
}

impl Cluster {
    /// Starts sharing the correlator's bans; the work runs on a thread of its own.
    /// Only while Redis answers: a count is worth something only now (counting fails open).
    /// Signals never take the second half of the queue, which stays for bans and lifts.
    fn signal(&self, c: Change) {
        if self.up.load(Ordering::Relaxed) && self.tx.capacity() > MAX_QUEUED / 2 {
            let _ = self.tx.try_send(c);
        }
    }

    /// Where other instances' failed logins and pair locks go (the login monitor).
    pub fn set_logins(&self, sink: Arc<dyn LoginSink>) {
        if let Ok(mut l) = self.logins.write() {
            *l = Some(sink);
        }
    }

    pub fn start(cfg: &ClusterConfig, correlator: Arc<Correlator>, bus: Bus) -> std::io::Result<Arc<Cluster>> {
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        let me = Arc::new(Cluster {
            cfg: cfg.clone(),
            tx,
            up: AtomicBool::new(false),
            instances: Mutex::new(Vec::new()),
            shared_bans: AtomicI64::new(0),
            last_error: Mutex::new(None),
            bus: Mutex::new(Some(bus)),
            stop: tokio::sync::Notify::new(),
            logins: std::sync::RwLock::new(None),
            members: Mutex::new(Vec::new()),
        });
        correlator.set_share(me.clone());
        let worker = me.clone();
        std::thread::Builder::new().name("kevlar-cluster".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cluster: cannot start");
                    return;
                }
            };
            rt.block_on(async {
                tokio::select! {
                    _ = worker.clone().run(correlator, rx) => {}
                    _ = worker.stop.notified() => {}
                }
            });
        })?;
        Ok(me)
    }

    /// Lets go of the event bus and ends the thread's work; call on shutdown.
    pub fn close(&self) {
        if let Ok(mut b) = self.bus.lock() {
            b.take();
        }
        self.stop.notify_one();
    }

    fn publish(&self, ev: SecurityEvent) {
        if let Ok(b) = self.bus.lock() {
            if let Some(b) = b.as_ref() {
                b.publish(ev);
            }
        }
    }

    /// For `/v1/status`: this instance, Redis's state, the instances seen.
    pub fn status(&self) -> Value {
        json!({
            "instance": self.cfg.instance,
            "name": self.cfg.name,
            "redis": if self.up.load(Ordering::Relaxed) { "ok" } else { "degraded" },
            "last_error": self.last_error.lock().ok().and_then(|e| e.clone()),
            "shared_bans": self.shared_bans.load(Ordering::Relaxed),
            "instances": self.instances.lock().map(|i| i.clone()).unwrap_or_default(),
        })
    }

    fn event(&self, action: &str, severity: Severity, message: String) -> SecurityEvent {
        SecurityEvent::new(action, Category::Process, severity, message)
            .with_outcome(if action == action::SYS_CLUSTER_DEGRADED { Outcome::Failure } else { Outcome::Success })
            .with_kevlar("instance", self.cfg.instance.as_str())
    }

    async fn run(self: Arc<Self>, correlator: Arc<Correlator>, mut rx: mpsc::Receiver<Change>) {
        let keys = Keys { prefix: format!("kevlar:{}", self.cfg.name) };
        let mut seen_remote: HashSet<IpKey> = HashSet::new();
        let mut pending: Vec<Change> = Vec::new();
        // Set while Redis is away (the degraded event was published); the session that connects
        // again publishes the recovery.
        let mut down_since: Option<i64> = None;
        let mut backoff = Duration::from_millis(100);
        let started = now_ms();
        loop {
            let result = self
                .session(&keys, &correlator, &mut rx, &mut pending, &mut seen_remote, started, &mut down_since)
                .await;
            let Err(reason) = result else { return };
            self.up.store(false, Ordering::Relaxed);
            if let Ok(mut l) = self.last_error.lock() {
                *l = Some(reason.clone());
            }
            if down_since.is_none() {
                down_since = Some(now_ms());
                backoff = Duration::from_millis(100);
                tracing::warn!(error = %reason, "cluster: Redis unreachable; going on with local state");
                let ev = self
                    .event(
                        action::SYS_CLUSTER_DEGRADED,
                        Severity::Alert,
                        format!("Redis cannot be reached ({reason}); bans known here stay enforced, new ones are merged later"),
                    )
                    .with_kevlar("reason", reason);
                self.publish(ev);
            }
            // Local changes made meanwhile wait (reconciliation merges every ban anyway).
            let sleep = tokio::time::sleep(backoff);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    c = rx.recv() => match c {
                        // Counts made while Redis is away are not sent later: windows are short.
                        Some(c) if c.is_signal() => {}
                        Some(c) => {
                            if pending.len() >= MAX_QUEUED {
                                pending.remove(0);
                            }
                            pending.push(c);
                        }
                        None => return,
                    },
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// The Redis client: over TLS for `rediss://`, trusting `ca_file` when given (else the
    /// system's roots).
    fn client(&self) -> Result<redis::Client, String> {
        if !self.cfg.redis.starts_with("rediss://") {
            return redis::Client::open(self.cfg.redis.as_str()).map_err(|e| e.to_string());
        }
        let root_cert = match &self.cfg.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?),
            None => None,
        };
        redis::Client::build_with_tls(self.cfg.redis.as_str(), redis::TlsCertificates { client_tls: None, root_cert })
            .map_err(|e| e.to_string())
    }

    /// One connection's life: connect, merge, then apply and publish until an error. `Ok` only
    /// when the local side closed (shutdown).
    #[allow(clippy::too_many_arguments)]
    async fn session(
        &self,
        keys: &Keys,
        correlator: &Arc<Correlator>,
        rx: &mut mpsc::Receiver<Change>,
        pending: &mut Vec<Change>,
        seen_remote: &mut HashSet<IpKey>,
        started: i64,
        down_since: &mut Option<i64>,
    ) -> Result<(), String> {
        let client = self.client()?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(COMMAND_TIMEOUT)
            .set_response_timeout(COMMAND_TIMEOUT);
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await.map_err(|e| e.to_string())?;
        let mut pubsub = tokio::time::timeout(COMMAND_TIMEOUT, client.get_async_pubsub())
            .await
            .map_err(|_| "timed out")?
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(COMMAND_TIMEOUT, pubsub.subscribe(&[keys.channel(), keys.hits()]))
            .await
            .map_err(|_| "timed out")?
            .map_err(|e| e.to_string())?;
        // Connected and subscribed: what was made meanwhile, then the whole set.
        // Each change leaves the queue only once Redis has it.
        while let Some(c) = pending.first() {
            self.write(&mut conn, keys, c).await?;
            pending.remove(0);
        }
        self.reconcile(&mut conn, keys, correlator, seen_remote).await?;
        self.heartbeat(&mut conn, keys, started).await?;
        self.up.store(true, Ordering::Relaxed);
        if let Some(since) = down_since.take() {
            let down = now_ms() - since;
            tracing::info!(down_ms = down, "cluster: Redis answers again; bans merged");
            let ev = self
                .event(
                    action::SYS_CLUSTER_RECOVERED,
                    Severity::Notice,
                    format!("Redis answers again after {down} ms; bans merged"),
                )
                .with_kevlar("down_ms", down);
            self.publish(ev);
        }
        let mut messages = pubsub.on_message();
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.reset();
        let mut full = tokio::time::interval(self.cfg.reconcile);
        full.reset();
        loop {
            tokio::select! {
                m = messages.next() => {
                    let Some(m) = m else { return Err("the subscription ended".into()) };
                    let payload: String = m.get_payload().unwrap_or_default();
                    self.heard(&payload, correlator, seen_remote);
                }
                c = rx.recv() => match c {
                    Some(c) if c.is_signal() => {
                        // Whatever else is queued goes with it: one message per batch.
                        let mut sig = Signals::default();
                        sig.add(c);
                        let mut other = Vec::new();
                        while sig.len() < MAX_HITS {
                            match rx.try_recv() {
                                Ok(c) if c.is_signal() => sig.add(c),
                                Ok(c) => other.push(c),
                                Err(_) => break,
                            }
                        }
                        // Counts lost with Redis are fine (counting fails open); a ban or a lift
                        // is kept for the next session, whatever failed.
                        if let Err(e) = self.send_signals(&mut conn, keys, &sig).await {
                            pending.extend(other);
                            return Err(e);
                        }
                        let mut other = other.into_iter();
                        while let Some(c) = other.next() {
                            if let Err(e) = self.write(&mut conn, keys, &c).await {
                                pending.push(c);
                                pending.extend(other);
                                return Err(e);
                            }
                        }
                    }
                    Some(c) => {
                        if let Err(e) = self.write(&mut conn, keys, &c).await {
                            pending.push(c);
                            return Err(e);
                        }
                    }
                    None => return Ok(()),
                },
                _ = beat.tick() => self.heartbeat(&mut conn, keys, started).await?,
                _ = full.tick() => self.reconcile(&mut conn, keys, correlator, seen_remote).await?,
            }
        }
    }

    /// Counts made here — jail hits, failed logins, pair locks — for the other instances (one
    /// PUBLISH, nothing stored).
    async fn send_signals(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        keys: &Keys,
        sig: &Signals,
    ) -> Result<(), String> {
        let hits: Vec<Value> = sig.hits.iter().map(|(j, k)| json!([j, k.to_string()])).collect();
        let logins: Vec<Value> = sig.logins.iter().map(|(u, ip)| json!([u, ip.to_string()])).collect();
        let locks: Vec<Value> = sig.locks.iter().map(|(u, ip, s)| json!([u, ip.to_string(), s])).collect();
        let msg = json!({"op": "hits", "hits": hits, "logins": logins, "locks": locks, "instance": self.cfg.instance});
        bounded(conn.publish::<_, _, ()>(keys.hits(), msg.to_string())).await
    }

    /// A local change to Redis: the ban's key (expiring with it), then the message.
    async fn write(&self, conn: &mut redis::aio::MultiplexedConnection, keys: &Keys, c: &Change) -> Result<(), String> {
        let msg = match c {
            Change::Banned(key, ban) => {
                let k = keys.ban(key);
                let record = ban_json(ban, &self.cfg.instance);
                let value = record.to_string();
                let mut pipe = redis::pipe();
                pipe.set(&k, &value).ignore();
                if ban.until_ms != i64::MAX {
                    pipe.cmd("PEXPIREAT").arg(&k).arg(ban.until_ms).ignore();
                }
                bounded(pipe.query_async::<()>(conn)).await?;
                json!({"op": "ban", "key": key.to_string(), "ban": record, "instance": self.cfg.instance})
            }
            Change::Unbanned(key) => {
                bounded(conn.del::<_, ()>(keys.ban(key))).await?;
                json!({"op": "unban", "key": key.to_string(), "instance": self.cfg.instance})
            }
            Change::Hit(..) | Change::Login(..) | Change::Lock(..) => {
                let mut sig = Signals::default();
                sig.add(match c {
                    Change::Hit(j, k) => Change::Hit(j.clone(), *k),
                    Change::Login(u, ip) => Change::Login(u.clone(), *ip),
                    Change::Lock(u, ip, s) => Change::Lock(u.clone(), *ip, *s),
                    _ => return Ok(()),
                });
                return self.send_signals(conn, keys, &sig).await;
            }
        };
        bounded(conn.publish::<_, _, ()>(keys.channel(), msg.to_string())).await
    }

    /// A message from another instance.
    fn heard(&self, payload: &str, correlator: &Correlator, seen_remote: &mut HashSet<IpKey>) {
        let Ok(v) = serde_json::from_str::<Value>(payload) else { return };
        if v["instance"].as_str() == Some(self.cfg.instance.as_str()) {
            return;
        }
        if v["op"] == "hits" {
            let hits = v["hits"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            correlator.apply_shared_hits(hits.iter().take(MAX_HITS).filter_map(|h| {
                let jail = h[0].as_str().filter(|j| j.len() <= 256)?.to_owned();
                let key = correlator.parse_key(h[1].as_str()?).ok()?;
                Some((jail, key))
            }));
            let sink = self.logins.read().ok().and_then(|l| l.clone());
            if let Some(sink) = sink {
                let user_ip = |x: &Value| -> Option<(String, IpAddr)> {
                    let user = x[0].as_str().filter(|u| !u.is_empty() && u.len() <= 256)?.to_owned();
                    Some((user, x[1].as_str()?.parse().ok()?))
                };
                for l in v["logins"].as_array().map(Vec::as_slice).unwrap_or(&[]).iter().take(MAX_HITS) {
                    if let Some((user, ip)) = user_ip(l) {
                        sink.failure(&user, ip);
                    }
                }
                for l in v["locks"].as_array().map(Vec::as_slice).unwrap_or(&[]).iter().take(MAX_HITS) {
                    if let (Some((user, ip)), Some(secs)) = (user_ip(l), l[2].as_u64()) {
                        sink.locked(&user, ip, secs);
                    }
                }
            }
            return;
        }
        let Some(Ok(key)) = v["key"].as_str().map(|k| correlator.parse_key(k)) else { return };
        match v["op"].as_str() {
            Some("ban") => {
                if let Some(ban) = ban_of(&v["ban"]) {
                    seen_remote.insert(key);
                    correlator.apply_shared_ban(key, ban);
                }
            }
            Some("unban") => {
                seen_remote.remove(&key);
                correlator.apply_shared_unban(key);
            }
            _ => {}
        }
    }

    /// The whole set in Redis against the local copy.
    async fn reconcile(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        keys: &Keys,
        correlator: &Correlator,
        seen_remote: &mut HashSet<IpKey>,
    ) -> Result<(), String> {
        let mut remote: HashMap<IpKey, Ban> = HashMap::new();
        let names: Vec<String> = scan(conn, &keys.bans_pattern()).await?;
        for chunk in names.chunks(500) {
            let values: Vec<Option<String>> = bounded(conn.mget(chunk)).await?;
            for (name, value) in chunk.iter().zip(values) {
                let Some(addr) = name.rsplit_once(":ban:").map(|(_, a)| a) else { continue };
                let (Ok(key), Some(Ok(v))) =
                    (correlator.parse_key(addr), value.map(|s| serde_json::from_str::<Value>(&s)))
                else {
                    continue;
                };
                if let Some(ban) = ban_of(&v) {
                    remote.insert(key, ban);
                }
            }
        }
        let now = now_ms();
        let local: HashMap<IpKey, Ban> = correlator.bans().into_iter().filter(|(_, b)| b.until_ms > now).collect();
        for (key, ban) in &remote {
            if local.get(key) != Some(ban) {
                correlator.apply_shared_ban(*key, ban.clone());
            }
        }
        for (key, ban) in &local {
            if remote.contains_key(key) {
                continue;
            }
            if seen_remote.contains(key) {
                // It was in Redis, and is not any more: lifted elsewhere while a message was missed.
                correlator.apply_shared_unban(*key);
            } else {
                // Made here while Redis was away (or before this instance joined): shared now.
                self.write(conn, keys, &Change::Banned(*key, ban.clone())).await?;
            }
        }
        *seen_remote =
            remote.keys().copied().chain(local.keys().copied().filter(|k| !seen_remote.contains(k))).collect();
        // What Redis holds now: its bans, and those just written (the ones lifted here are gone).
        self.shared_bans.store(seen_remote.len() as i64, Ordering::Relaxed);
        Ok(())
    }

    async fn heartbeat(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        keys: &Keys,
        started: i64,
    ) -> Result<(), String> {
        let me = json!({
            "instance": self.cfg.instance,
            "version": env!("CARGO_PKG_VERSION"),
            "started_ms": started,
            "seen_ms": now_ms(),
        });
        let mut set = redis::cmd("SET");
        set.arg(keys.instance(&self.cfg.instance)).arg(me.to_string()).arg("PX").arg(INSTANCE_TTL_MS);
        bounded(set.query_async::<()>(conn)).await?;
        let names = scan(conn, &keys.instances_pattern()).await?;
        let mut list = Vec::new();
        if !names.is_empty() {
            let values: Vec<Option<String>> = bounded(conn.mget(&names)).await?;
            for v in values.into_iter().flatten() {
                if let Ok(mut v) = serde_json::from_str::<Value>(&v) {
                    let age = now_ms() - v["seen_ms"].as_i64().unwrap_or(0);
                    v["healthy"] = json!(age < INSTANCE_TTL_MS as i64);
                    list.push(v);
                }
            }
        }
        list.sort_by(|a, b| a["instance"].as_str().cmp(&b["instance"].as_str()));
        if let Ok(mut m) = self.members.lock() {
            *m = list.iter().filter_map(|v| v["instance"].as_str().map(str::to_owned)).collect();
        }
        if let Ok(mut i) = self.instances.lock() {
            *i = list;
        }
        Ok(())
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(COMMAND_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("Redis did not answer within 2 s".into()),
    }
}

/// Every key matching `pattern` (SCAN, never KEYS: Redis serves others meanwhile).
async fn scan(conn: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Result<Vec<String>, String> {
    let mut cursor: u64 = 0;
    let mut out = Vec::new();
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000);
        let (next, batch): (u64, Vec<String>) = bounded(cmd.query_async(conn)).await?;
        out.extend(batch);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ban_reads_back_as_written_and_hostile_text_is_capped() {
        let ban = Ban { since_ms: 1, until_ms: i64::MAX, reason: "r".into(), source: "manual".into(), enforced: true };
        let v = ban_json(&ban, "web-1");
        assert_eq!(ban_of(&v), Some(ban));
        assert_eq!(v["instance"], "web-1");
        let long = json!({"since_ms": 1, "until_ms": 2, "reason": "x".repeat(10_000), "source": "s"});
        assert!(ban_of(&long).unwrap().reason.len() <= 256);
        assert_eq!(ban_of(&json!({"reason": "no times"})), None);
    }
}
