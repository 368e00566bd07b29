//! The durable outbox: every delivery (one event for one sink) is written to `outbox.db` before
//! it is attempted and removed only when the sink accepted it. A delivery is `pending` (to send),
//! `held` (waiting for a digest or for the sink's rate budget) or `dead` (gave up after
//! `max_attempts`; `kevlar alerts retry` puts it back). The same file keeps the cursor into the
//! event store, written in the same transaction as the deliveries it produced, so an event is
//! turned into deliveries exactly once even across `kill -9`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kevlar_core::SecurityEvent;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

pub const OUTBOX_FILE: &str = "outbox.db";

pub const PENDING: i64 = 0;
pub const HELD: i64 = 1;
pub const DEAD: i64 = 2;

#[derive(Debug, thiserror::Error)]
#[error("outbox {path}")]
pub struct OutboxError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

/// Freed pages (deliveries sent, digests gone out) go back to the file system; an outbox made
/// before this is converted once.
fn incremental_vacuum_mode(conn: &Connection) -> rusqlite::Result<()> {
    if conn.pragma_query_value(None, "auto_vacuum", |r| r.get::<_, i64>(0))? != 2 {
        conn.pragma_update(None, "auto_vacuum", 2)?;
        conn.execute_batch("VACUUM")?;
    }
    Ok(())
}

/// Outboxes written before per-delivery backoff have no `next_ms`: it is added (0: due now).
fn add_next_ms(conn: &Connection) -> rusqlite::Result<()> {
    let has: bool = conn.prepare("SELECT 1 FROM pragma_table_info('deliveries') WHERE name = 'next_ms'")?.exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE deliveries ADD COLUMN next_ms INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    last_error TEXT,
    next_ms INTEGER NOT NULL DEFAULT 0,
    event_id TEXT NOT NULL,
    action TEXT NOT NULL,
    ip TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_sink ON deliveries(sink, state, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// A delivery read back for sending.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub attempts: u32,
    pub event: SecurityEvent,
}

/// Counts for one sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub held: u64,
    pub dead: u64,
}

pub struct Outbox {
    conn: Connection,
    path: PathBuf,
}

impl Outbox {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(OUTBOX_FILE)
    }

    /// Opens (creating) the outbox under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, OutboxError> {
        let path = Self::path(data_dir);
        let err = |source| OutboxError { path: path.clone(), source };
        kevlar_core::private::private_file(&path);
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .and_then(|_| incremental_vacuum_mode(&conn))
            .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| conn.execute_batch(SCHEMA))
            .and_then(|_| add_next_ms(&conn))
            .map_err(err)?;
        Ok(Outbox { conn, path })
    }

    /// Opens an existing outbox only (for `kevlar alerts` when Kevlar is not running).
    pub fn open_existing(data_dir: &Path) -> Result<Option<Self>, OutboxError> {
        if !Self::path(data_dir).exists() {
            return Ok(None);
        }
        Self::open(data_dir).map(Some)
    }

    fn err(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError { path: self.path.clone(), source }
    }

    /// The last event-store id already turned into deliveries.
    pub fn cursor(&self) -> Result<Option<i64>, OutboxError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'cursor'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Writes deliveries `(sink, state, event)` and moves the cursor, in one transaction.
    pub fn enqueue(&mut self, items: &[(&str, i64, &SecurityEvent)], cursor: Option<i64>) -> Result<(), OutboxError> {
        let path = self.path.clone();
        let err = |source| OutboxError { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO deliveries (sink, state, created_ms, event_id, action, ip, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            let now = kevlar_core::time::now_ms();
            for (sink, state, ev) in items {
                stmt.execute(params![
                    sink,
                    state,
                    now,
                    ev.id,
                    ev.action,
                    ev.source_ip.map(|ip| ip.to_string()),
                    ev.to_json().to_string()
                ])
                .map_err(err)?;
            }
            if let Some(c) = cursor {
                tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor', ?1)", [c]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Up to `limit` deliveries of `sink` in `state` that are due (not waiting on their own
    /// backoff), oldest first. A row whose document no longer reads is moved to the dead letters
    /// instead of blocking the queue.
    pub fn take(&mut self, sink: &str, state: i64, limit: usize) -> Result<Vec<Delivery>, OutboxError> {
        let now = kevlar_core::time::now_ms();
        let rows: Vec<(i64, u32, String)> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT id, attempts, doc FROM deliveries WHERE sink = ?1 AND state = ?2 AND next_ms <= ?4
                     ORDER BY id LIMIT ?3",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![sink, state, limit as i64, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|it| it.collect::<Result<Vec<_>, _>>());
            rows.map_err(|e| OutboxError { path: self.path.clone(), source: e })?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, attempts, doc) in rows {
            match serde_json::from_str::<Value>(&doc)
                .map_err(|e| e.to_string())
                .and_then(|v| SecurityEvent::from_json(&v).map_err(|e| e.0))
            {
                Ok(event) => out.push(Delivery { id, attempts, event }),
                Err(e) => {
                    self.conn
                        .execute(
                            "UPDATE deliveries SET state = ?2, last_error = ?3 WHERE id = ?1",
                            params![id, DEAD, format!("unreadable delivery: {e}")],
                        )
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        Ok(out)
    }

    fn each(
        &mut self,
        ids: &[i64],
        sql: &str,
        extra: &dyn Fn(i64) -> Vec<rusqlite::types::Value>,
    ) -> Result<usize, OutboxError> {
        let path = self.path.clone();
        let err = |source| OutboxError { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        let mut n = 0;
        {
            let mut stmt = tx.prepare_cached(sql).map_err(err)?;
            for &id in ids {
                n += stmt.execute(rusqlite::params_from_iter(extra(id))).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(n)
    }

    /// The sink accepted these: forget them.
    pub fn delete(&mut self, ids: &[i64]) -> Result<usize, OutboxError> {
        self.each(ids, "DELETE FROM deliveries WHERE id = ?1", &|id| vec![id.into()])
    }

    /// Moves these to `held` (waiting for the budget or the digest).
    pub fn hold(&mut self, ids: &[i64]) -> Result<usize, OutboxError> {
        self.each(ids, "UPDATE deliveries SET state = 1 WHERE id = ?1", &|id| vec![id.into()])
    }

    /// One more failed attempt for these; those at `max_attempts` become dead letters. Returns how
    /// many died.
    pub fn fail(&mut self, ids: &[i64], error: &str, max_attempts: u32) -> Result<usize, OutboxError> {
        let error = kevlar_core::event::capped(error, 500);
        self.each(ids, "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1", &|id| {
            vec![id.into(), error.clone().into()]
        })?;
        self.each(ids, "UPDATE deliveries SET state = 2 WHERE id = ?1 AND attempts >= ?2", &|id| {
            vec![id.into(), i64::from(max_attempts).into()]
        })
    }

    /// One more failed attempt for each `(id, next_ms)`: it is not taken again before `next_ms`
    /// (its own backoff; the others go on). Those at `max_attempts` become dead letters. Returns
    /// how many died.
    pub fn fail_each(&mut self, due: &[(i64, i64)], error: &str, max_attempts: u32) -> Result<usize, OutboxError> {
        let error = kevlar_core::event::capped(error, 500);
        let ids: Vec<i64> = due.iter().map(|(id, _)| *id).collect();
        let next: std::collections::HashMap<i64, i64> = due.iter().copied().collect();
        self.each(
            &ids,
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, next_ms = ?3 WHERE id = ?1",
            &|id| vec![id.into(), error.clone().into(), next.get(&id).copied().unwrap_or(0).into()],
        )?;
        self.each(&ids, "UPDATE deliveries SET state = 2 WHERE id = ?1 AND attempts >= ?2", &|id| {
            vec![id.into(), i64::from(max_attempts).into()]
        })
    }

    /// Not before `next_ms` (a budget said wait), without counting an attempt.
    pub fn defer(&mut self, due: &[(i64, i64)]) -> Result<usize, OutboxError> {
        let next: std::collections::HashMap<i64, i64> = due.iter().copied().collect();
        let ids: Vec<i64> = due.iter().map(|(id, _)| *id).collect();
        self.each(&ids, "UPDATE deliveries SET next_ms = ?2 WHERE id = ?1", &|id| {
            vec![id.into(), next.get(&id).copied().unwrap_or(0).into()]
        })
    }

    /// These can never be delivered (a permanent refusal): dead letters now.
    pub fn bury(&mut self, ids: &[i64], error: &str) -> Result<usize, OutboxError> {
        let error = kevlar_core::event::capped(error, 500);
        self.each(
            ids,
            "UPDATE deliveries SET attempts = attempts + 1, state = 2, last_error = ?2 WHERE id = ?1",
            &|id| vec![id.into(), error.clone().into()],
        )
    }

    /// The soonest `next_ms` among `sink`'s pending deliveries that wait on their own backoff.
    pub fn next_due(&self, sink: &str) -> Result<Option<i64>, OutboxError> {
        self.conn
            .query_row(
                "SELECT MIN(next_ms) FROM deliveries WHERE sink = ?1 AND state = 0 AND next_ms > ?2",
                params![sink, kevlar_core::time::now_ms()],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Deletes held rows of `sink` up to and including `max_id` (they left as one digest).
    pub fn delete_held(&mut self, sink: &str, max_id: i64) -> Result<usize, OutboxError> {
        self.conn
            .execute("DELETE FROM deliveries WHERE sink = ?1 AND state = 1 AND id <= ?2", params![sink, max_id])
            .map_err(|e| self.err(e))
    }

    /// Held rows of `sink`: how many, the highest id, and per action the count and up to five addresses.
    pub fn held_summary(&self, sink: &str) -> Result<Option<HeldSummary>, OutboxError> {
        let (count, max_id, first_ms): (i64, Option<i64>, Option<i64>) = self
            .conn
            .query_row(
                "SELECT COUNT(*), MAX(id), MIN(created_ms) FROM deliveries WHERE sink = ?1 AND state = 1",
                [sink],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.err(e))?;
        let Some(max_id) = max_id else { return Ok(None) };
        let mut groups = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT action, COUNT(*), COUNT(DISTINCT ip), MAX(id) FROM deliveries
                     WHERE sink = ?1 AND state = 1 AND id <= ?2 GROUP BY action ORDER BY COUNT(*) DESC LIMIT 20",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![sink, max_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
                })
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| OutboxError { path: self.path.clone(), source: e })?;
            for (action, n, addrs, last_id) in rows {
                let mut ips: Vec<String> = self
                    .conn
                    .prepare_cached(
                        "SELECT ip, COUNT(*) c FROM deliveries WHERE sink = ?1 AND state = 1 AND action = ?2
                         AND ip IS NOT NULL AND id <= ?3 GROUP BY ip ORDER BY c DESC LIMIT 5",
                    )
                    .and_then(|mut s| {
                        s.query_map(params![sink, action, max_id], |r| r.get::<_, String>(0))
                            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    })
                    .map_err(|e| self.err(e))?;
                ips.sort();
                let example: Option<String> = self
                    .conn
                    .query_row("SELECT doc FROM deliveries WHERE id = ?1", [last_id], |r| r.get(0))
                    .optional()
                    .map_err(|e| self.err(e))?;
                let message = example
                    .and_then(|d| serde_json::from_str::<Value>(&d).ok())
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                groups.push(HeldGroup {
                    action,
                    count: n as u64,
                    distinct_addresses: addrs as u64,
                    addresses: ips,
                    example: message,
                });
            }
        }
        Ok(Some(HeldSummary { count: count as u64, max_id, first_ms: first_ms.unwrap_or(0), groups }))
    }

    pub fn counts(&self) -> Result<Vec<(String, Counts)>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state ORDER BY sink")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| OutboxError { path: self.path.clone(), source: e })?;
        let mut out: Vec<(String, Counts)> = Vec::new();
        for (sink, state, n) in rows {
            if out.last().is_none_or(|(s, _)| *s != sink) {
                out.push((sink.clone(), Counts::default()));
            }
            if let Some((_, c)) = out.last_mut() {
                match state {
                    PENDING => c.pending = n as u64,
                    HELD => c.held = n as u64,
                    _ => c.dead = n as u64,
                }
            }
        }
        Ok(out)
    }

    /// Gives free pages back to the file system and truncates the write-ahead log (after a
    /// backlog drained), when at least `min_free` pages are free.
    pub fn give_back(&self, min_free: i64) -> Result<(), OutboxError> {
        let run = || -> rusqlite::Result<()> {
            let free: i64 = self.conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
            if free >= min_free {
                // One page per step: stepped to the end.
                let mut st = self.conn.prepare("PRAGMA incremental_vacuum")?;
                let mut rows = st.query([])?;
                while rows.next()?.is_some() {}
            }
            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        };
        run().map_err(|e| self.err(e))
    }

    /// Deliveries waiting (pending or held) per sink.
    pub fn waiting_per_sink(&self) -> Result<std::collections::HashMap<String, u64>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sink, COUNT(*) FROM deliveries WHERE state != 2 GROUP BY sink")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
            .and_then(|it| it.collect::<Result<std::collections::HashMap<_, _>, _>>());
        rows.map_err(|e| OutboxError { path: self.path.clone(), source: e })
    }

    /// Dead letters, newest first, as JSON for the CLI and the admin API.
    pub fn dead(&self, limit: usize) -> Result<Vec<DeadLetter>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, sink, attempts, created_ms, last_error, event_id, action, ip FROM deliveries
                 WHERE state = 2 ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    sink: r.get(1)?,
                    attempts: r.get(2)?,
                    created: kevlar_core::time::rfc3339_ms(r.get::<_, i64>(3)?),
                    last_error: r.get(4)?,
                    event_id: r.get(5)?,
                    action: r.get(6)?,
                    ip: r.get(7)?,
                })
            })
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| OutboxError { path: self.path.clone(), source: e })?;
        Ok(rows)
    }

    /// Puts dead letters back in the queue with a fresh attempt count: the given ids, or all.
    pub fn retry(&mut self, ids: Option<&[i64]>) -> Result<usize, OutboxError> {
        match ids {
            None => self
                .conn
                .execute("UPDATE deliveries SET state = 0, attempts = 0, next_ms = 0 WHERE state = 2", [])
                .map_err(|e| self.err(e)),
            Some(ids) => self.each(
                ids,
                "UPDATE deliveries SET state = 0, attempts = 0, next_ms = 0 WHERE id = ?1 AND state = 2",
                &|id| vec![id.into()],
            ),
        }
    }
}

/// What a digest says about the held deliveries of one sink.
#[derive(Debug, Clone)]
pub struct HeldSummary {
    pub count: u64,
    pub max_id: i64,
    pub first_ms: i64,
    pub groups: Vec<HeldGroup>,
}

#[derive(Debug, Clone)]
pub struct HeldGroup {
    pub action: String,
    pub count: u64,
    pub distinct_addresses: u64,
    pub addresses: Vec<String>,
    pub example: String,
}

/// A delivery that gave up, as `kevlar alerts`, the admin API and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub id: i64,
    pub sink: String,
    pub attempts: i64,
    pub created: String,
    pub last_error: Option<String>,
    pub event_id: String,
    pub action: String,
    pub ip: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kevlar_core::{Category, Severity};

    fn ev(action: &str, ip: &str) -> SecurityEvent {
        let mut e =
            SecurityEvent::new(action, Category::IntrusionDetection, Severity::Warning, format!("{action} from {ip}"));
        e.source_ip = ip.parse().ok();
        e
    }

    #[test]
    fn deliveries_move_through_their_states_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.cursor().unwrap(), None);
        let (a, b, c) = (
            ev("malicious_attack", "192.0.2.1"),
            ev("malicious_attack", "192.0.2.2"),
            ev("malicious_ban", "192.0.2.1"),
        );
        o.enqueue(&[("s", PENDING, &a), ("s", PENDING, &b), ("t", HELD, &c)], Some(7)).unwrap();
        drop(o);
        let mut o = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.cursor().unwrap(), Some(7));
        let got = o.take("s", PENDING, 10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].event.id, a.id);
        assert_eq!(o.fail(&[got[0].id], "down", 2).unwrap(), 0);
        assert_eq!(o.fail(&[got[0].id], "still down", 2).unwrap(), 1);
        o.delete(&[got[1].id]).unwrap();
        let counts = o.counts().unwrap();
        assert_eq!(
            counts,
            vec![
                ("s".into(), Counts { pending: 0, held: 0, dead: 1 }),
                ("t".into(), Counts { pending: 0, held: 1, dead: 0 })
            ]
        );
        let dead = o.dead(10).unwrap();
        assert_eq!(dead[0].last_error.as_deref(), Some("still down"));
        assert_eq!(o.retry(None).unwrap(), 1);
        assert_eq!(o.take("s", PENDING, 10).unwrap()[0].attempts, 0);
        let h = o.held_summary("t").unwrap().unwrap();
        assert_eq!(
            (h.count, h.groups[0].action.as_str(), h.groups[0].addresses.clone()),
            (1, "malicious_ban", vec!["192.0.2.1".to_owned()])
        );
        assert_eq!(o.delete_held("t", h.max_id).unwrap(), 1);
        assert!(o.held_summary("t").unwrap().is_none());
    }
}
