//! The writer thread: drains the store's bus queue in batches, one transaction per batch,
//! acknowledges after commit. Retention runs on a timer of its own (a quiet store is trimmed
//! too), and the space it frees is given back to the file system (incremental vacuum).

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kevlar_core::SecurityEvent;
use kevlar_engine::{Envelope, Wake};
use tokio::sync::mpsc;

use crate::{db_path, migrate, open_conn, StoreError};

const BATCH: usize = 4096;
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// How often retention runs: every minute, sooner when events are kept for less than four.
fn retention_every(r: Retention) -> Duration {
    (r.max_age / 4).clamp(Duration::from_secs(1), RETENTION_EVERY)
}

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: Duration,
    pub max_size_bytes: u64,
}

/// Owns the writer thread; [`StoreWriter::join`] waits for it to commit what it holds.
pub struct StoreWriter {
    handle: Option<JoinHandle<()>>,
    retention: Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>,
    path: PathBuf,
}

impl StoreWriter {
    /// Opens (creating and migrating) `<data_dir>/events.db` and starts the writer on `rx`.
    pub fn start(data_dir: &Path, retention: Retention, rx: mpsc::Receiver<Envelope>) -> Result<Self, StoreError> {
        Self::start_with_wake(data_dir, retention, rx, None)
    }

    /// As [`StoreWriter::start`], signalling `wake` after every committed batch (the alert sinks
    /// read new events from the store).
    pub fn start_with_wake(
        data_dir: &Path,
        retention: Retention,
        rx: mpsc::Receiver<Envelope>,
        wake: Option<Wake>,
    ) -> Result<Self, StoreError> {
        let path = db_path(data_dir);
        let mut conn = open_conn(&path)?;
        incremental_vacuum_mode(&conn);
        migrate::migrate(&mut conn, &path)?;
        apply_retention(&conn, retention);
        let trim = open_conn(&path)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let every = retention_every(retention);
        let timer = std::thread::Builder::new()
            .name("kevlar-store-retention".into())
            .spawn(move || {
                // Ends when the writer is dropped or joined (the sender goes away).
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    apply_retention(&trim, retention);
                }
            })
            .map_err(StoreError::Thread)?;
        let handle = std::thread::Builder::new()
            .name("kevlar-store".into())
            .spawn(move || run(conn, rx, wake))
            .map_err(StoreError::Thread)?;
        Ok(StoreWriter { handle: Some(handle), retention: Some((stop, timer)), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until every sender is gone and the last batch is committed.
    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if let Some((stop, timer)) = self.retention.take() {
            drop(stop);
            let _ = timer.join();
        }
    }
}

fn run(mut conn: rusqlite::Connection, mut rx: mpsc::Receiver<Envelope>, wake: Option<Wake>) {
    let mut batch: Vec<Envelope> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let result = write_batch(&mut conn, &batch);
        if let Some(w) = &wake {
            w.notify();
        }
        for (env, res) in batch.drain(..).zip(result) {
            if let Some(ack) = env.ack {
                let _ = ack.send(res);
            }
        }
    }
}

/// Freed pages go back to the file system (`PRAGMA incremental_vacuum` after retention). A store
/// made before this is converted once (a `VACUUM`).
fn incremental_vacuum_mode(conn: &rusqlite::Connection) {
    let mode: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0)).unwrap_or(2);
    if mode != 2 {
        let start = Instant::now();
        let res = conn.pragma_update(None, "auto_vacuum", 2).and_then(|_| conn.execute_batch("VACUUM"));
        match res {
            Ok(()) => {
                tracing::info!(ms = start.elapsed().as_millis() as u64, "event store: set to give freed space back")
            }
            Err(e) => tracing::warn!(error = %e, "event store: cannot switch to incremental vacuum"),
        }
    }
}

/// The rollup series an event counts in: its action, attacks by family.
pub fn series_of(e: &SecurityEvent) -> String {
    if e.action == kevlar_core::action::MALICIOUS_ATTACK {
        let family = e.kevlar.get("family").and_then(|f| f.as_str()).unwrap_or("other");
        return format!("{}:{family}", e.action);
    }
    e.action.clone()
}

/// Adds `n` to `series` for the minute and hour of `ts_ms`.
pub(crate) fn tally(tx: &rusqlite::Connection, ts_ms: i64, series: &str, n: i64) -> rusqlite::Result<()> {
    let minute = ts_ms.div_euclid(60_000);
    tx.prepare_cached(
        "INSERT INTO rollup_min (minute, series, n) VALUES (?1, ?2, ?3)
         ON CONFLICT(minute, series) DO UPDATE SET n = n + excluded.n",
    )?
    .execute(rusqlite::params![minute, series, n])?;
    tx.prepare_cached(
        "INSERT INTO rollup_hour (hour, series, n) VALUES (?1, ?2, ?3)
         ON CONFLICT(hour, series) DO UPDATE SET n = n + excluded.n",
    )?
    .execute(rusqlite::params![minute.div_euclid(60), series, n])?;
    Ok(())
}

fn insert(tx: &rusqlite::Transaction, e: &SecurityEvent) -> rusqlite::Result<i64> {
    let doc = e.to_json().to_string();
    let changed = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO events (ts_ms, event_id, action, severity, ip, user_name, request_id, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(rusqlite::params![
            e.timestamp_ms,
            e.id,
            e.action,
            e.severity as i64,
            e.source_ip.map(|ip| ip.to_string()),
            e.user_name,
            e.request_id,
            doc
        ])?;
    if changed == 0 {
        // Already stored (same event.id): idempotent.
        return tx.query_row("SELECT id FROM events WHERE event_id = ?1", [&e.id], |r| r.get(0));
    }
    let id = tx.last_insert_rowid();
    tally(tx, e.timestamp_ms, &series_of(e), 1)?;
    if let Some(user) = &e.user_name {
        tx.prepare_cached(
            "INSERT INTO rollup_user (user_name, n, last_ms) VALUES (?1, 1, ?2)
             ON CONFLICT(user_name) DO UPDATE SET n = n + 1, last_ms = MAX(last_ms, excluded.last_ms)",
        )?
        .execute(rusqlite::params![user, e.timestamp_ms])?;
    }
    Ok(id)
}

/// One transaction for the batch; per-event results so one bad event does not fail the rest.
fn write_batch(conn: &mut rusqlite::Connection, batch: &[Envelope]) -> Vec<Result<i64, String>> {
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "event store: cannot begin a transaction");
            return batch.iter().map(|_| Err(format!("event store: {e}"))).collect();
        }
    };
    let results: Vec<Result<i64, String>> =
        batch.iter().map(|env| insert(&tx, &env.event).map_err(|e| e.to_string())).collect();
    match tx.commit() {
        Ok(()) => results,
        Err(e) => {
            tracing::error!(error = %e, lost = batch.len(), "event store: commit failed");
            batch.iter().map(|_| Err(format!("event store commit failed: {e}"))).collect()
        }
    }
}

fn apply_retention(conn: &rusqlite::Connection, r: Retention) {
    let cutoff = kevlar_core::time::now_ms() - r.max_age.as_millis().min(i64::MAX as u128) as i64;
    if let Err(e) = conn.execute("DELETE FROM events WHERE ts_ms < ?1", [cutoff]) {
        tracing::warn!(error = %e, "event store: age retention failed");
    }
    // The charts' counts: minutes for two days, hours for the retention (at least 30 days).
    let now_min = kevlar_core::time::now_ms() / 60_000;
    let hours = (r.max_age.as_secs() / 3600).max(30 * 24) as i64;
    let res = conn
        .execute("DELETE FROM rollup_min WHERE minute < ?1", [now_min - 2 * 24 * 60])
        .and_then(|_| conn.execute("DELETE FROM rollup_hour WHERE hour < ?1", [now_min / 60 - hours]))
        .and_then(|_| conn.execute("DELETE FROM rollup_user WHERE last_ms < ?1", [cutoff]));
    if let Err(e) = res {
        tracing::warn!(error = %e, "event store: rollup retention failed");
    }
    // Size: used pages only (freed pages are reused, so the file stops growing).
    for _ in 0..20 {
        let used: rusqlite::Result<i64> = conn.query_row(
            "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
            [],
            |row| row.get(0),
        );
        match used {
            Ok(bytes) if (bytes as u64) > r.max_size_bytes => {
                let res = conn.execute(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT MAX(1, (SELECT COUNT(*) FROM events) / 10))",
                    [],
                );
                if !matches!(res, Ok(n) if n > 0) {
                    break;
                }
            }
            _ => break,
        }
    }
    // Users no event names any more go too (the size limit deletes events, not users).
    let res = conn.execute(
        "DELETE FROM rollup_user WHERE last_ms < (SELECT COALESCE(MIN(ts_ms), 9223372036854775807) FROM events)",
        [],
    );
    if let Err(e) = res {
        tracing::warn!(error = %e, "event store: user rollup retention failed");
    }
    give_back(conn, "event store");
}

/// Returns free pages to the file system and truncates the write-ahead log.
pub(crate) fn give_back(conn: &rusqlite::Connection, what: &str) {
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0)).unwrap_or(0);
    if free == 0 {
        return;
    }
    if let Err(e) = vacuum_and_checkpoint(conn) {
        tracing::warn!(error = %e, "{what}: cannot give free space back");
    }
}

/// `PRAGMA incremental_vacuum` frees one page per step: it is stepped to the end. Then the
/// write-ahead log is checkpointed and truncated.
fn vacuum_and_checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mut st = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = st.query([])?;
    while rows.next()?.is_some() {}
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{EventQuery, Reader};
    use kevlar_core::{Category, Severity};
    use kevlar_engine::BusBuilder;

    fn ev(action: &str) -> SecurityEvent {
        SecurityEvent::new(action, Category::Web, Severity::Info, "m")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acked_events_are_readable_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = BusBuilder::new();
        let rx = b.subscribe("store", 64, true);
        let bus = b.build();
        let w = StoreWriter::start(
            dir.path(),
            Retention { max_age: Duration::from_secs(3600), max_size_bytes: 1 << 30 },
            rx,
        )
        .unwrap();
        let e = ev("sys_startup");
        let id1 = bus.publish_acked(e.clone()).await.unwrap();
        let id2 = bus.publish_acked(e).await.unwrap();
        assert_eq!(id1, id2, "same event.id is stored once");
        bus.publish_acked(ev("authz_fail")).await.unwrap();
        drop(bus);
        tokio::task::spawn_blocking(move || w.join()).await.unwrap();
        let r = Reader::open(dir.path()).unwrap();
        let all = r.query(&EventQuery::default()).unwrap();
        assert_eq!(all.len(), 2);
        let only = r.query(&EventQuery { action: Some("authz_fail".into()), ..Default::default() }).unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].doc["event"]["action"], "authz_fail");
        // Following: the first events after an id, never the newest ones past a gap.
        let first = r.query(&EventQuery { after_id: Some(0), limit: Some(1), ..Default::default() }).unwrap();
        assert_eq!(first[0].id, all[0].id, "after an id comes the next one, not the newest");
        let newest = r.query(&EventQuery { limit: Some(1), ..Default::default() }).unwrap();
        assert_eq!(newest[0].id, all[1].id);
        let prefix = r.query(&EventQuery { action_prefix: Some("sys_".into()), ..Default::default() }).unwrap();
        assert_eq!(prefix.len(), 1);
        let web = r.query(&EventQuery { category: Some("web".into()), ..Default::default() }).unwrap();
        assert_eq!(web.len(), 2);
        let none = r.query(&EventQuery { category: Some("we%".into()), ..Default::default() }).unwrap();
        assert!(none.is_empty(), "a category is matched whole, never as a pattern");
    }

    #[test]
    fn age_retention_deletes_old_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(dir.path());
        let mut conn = open_conn(&path).unwrap();
        migrate::migrate(&mut conn, &path).unwrap();
        let mut old = ev("old");
        old.timestamp_ms -= 7_200_000;
        let (tx, _rx) = tokio::sync::oneshot::channel::<Result<i64, String>>();
        drop(tx);
        let batch = vec![
            Envelope { event: std::sync::Arc::new(old), ack: None },
            Envelope { event: std::sync::Arc::new(ev("new")), ack: None },
        ];
        assert!(write_batch(&mut conn, &batch).iter().all(|r| r.is_ok()));
        apply_retention(&conn, Retention { max_age: Duration::from_secs(3600), max_size_bytes: 1 << 30 });
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn rollups_count_what_is_stored_and_are_backfilled_on_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(dir.path());
        let mut conn = open_conn(&path).unwrap();
        // A store made before the rollups: schema 1 with events in it.
        conn.execute_batch(migrate::FIRST).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let mut attack = ev("malicious_attack").with_kevlar("family", "sqli");
        attack.timestamp_ms = 120_000 * 1000;
        let doc = attack.to_json().to_string();
        conn.execute(
            "INSERT INTO events (ts_ms, event_id, action, severity, doc) VALUES (?1, ?2, 'malicious_attack', 4, ?3)",
            rusqlite::params![attack.timestamp_ms, attack.id, doc],
        )
        .unwrap();
        migrate::migrate(&mut conn, &path).unwrap();
        // Then new events: counted as they are written, twice the same event counted once.
        let mut again = ev("malicious_attack").with_kevlar("family", "xss");
        again.timestamp_ms = attack.timestamp_ms + 30_000;
        let again = std::sync::Arc::new(again);
        let batch = vec![
            Envelope { event: again.clone(), ack: None },
            Envelope { event: again, ack: None },
            Envelope { event: std::sync::Arc::new(ev("authn_login_fail")), ack: None },
        ];
        assert!(write_batch(&mut conn, &batch).iter().all(|r| r.is_ok()));
        drop(conn);
        crate::Tally::open(dir.path()).unwrap().add("requests", 120_000 * 1000 + 5, 7).unwrap();
        let r = Reader::open(dir.path()).unwrap();
        let minute = r.series(0, 60_000).unwrap();
        let at =
            |series: &str| minute.iter().filter(|b| b.series == series).map(|b| (b.start_ms, b.n)).collect::<Vec<_>>();
        assert_eq!(at("malicious_attack:sqli"), [(120_000_000, 1)]);
        assert_eq!(at("malicious_attack:xss"), [(120_000_000, 1)]);
        assert_eq!(at("requests"), [(120_000_000, 7)]);
        assert_eq!(at("authn_login_fail").len(), 1);
        // Hours and days come from the hourly table, in buckets of the length asked.
        let days = r.series(0, 86_400_000).unwrap();
        let attacks: i64 = days.iter().filter(|b| b.series.starts_with("malicious_attack:")).map(|b| b.n).sum();
        assert_eq!(attacks, 2);
        assert!(days.iter().all(|b| b.start_ms % 86_400_000 == 0));
    }
}
