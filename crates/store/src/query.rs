//! The read side: filtered queries for `kevlar events` and the admin API.

use std::path::Path;

use rusqlite::OpenFlags;
use serde_json::Value;

use crate::{db_path, StoreError};

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since_ms: Option<i64>,
    pub action: Option<String>,
    pub ip: Option<String>,
    /// Only events stored after this id (for following).
    pub after_id: Option<i64>,
    /// Newest `limit` events (in ascending order); `None` means 1000.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: i64,
    pub doc: Value,
}

/// A read-only connection to the store.
pub struct Reader {
    conn: rusqlite::Connection,
}

impl Reader {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = db_path(data_dir);
        if !path.exists() {
            return Err(StoreError::Missing(path));
        }
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open { path: path.clone(), source })?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|source| StoreError::Open { path, source })?;
        Ok(Reader { conn })
    }

    pub fn query(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = q.limit.unwrap_or(1000).min(100_000) as i64;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, doc FROM events
             WHERE (?1 IS NULL OR ts_ms >= ?1) AND (?2 IS NULL OR action = ?2)
               AND (?3 IS NULL OR ip = ?3) AND (?4 IS NULL OR id > ?4)
             ORDER BY id DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(rusqlite::params![q.since_ms, q.action, q.ip, q.after_id, limit], |r| {
            let id: i64 = r.get(0)?;
            let doc: String = r.get(1)?;
            Ok((id, doc))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, doc) = row?;
            let doc = serde_json::from_str(&doc).unwrap_or(Value::Null);
            out.push(StoredEvent { id, doc });
        }
        out.reverse();
        Ok(out)
    }

    /// The event with this `event.id`, or every event of the request with this id (oldest first).
    pub fn find(&self, id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, doc FROM events WHERE event_id = ?1 OR request_id = ?1 ORDER BY id LIMIT 100",
        )?;
        let rows = stmt.query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, doc) = row?;
            out.push(StoredEvent { id, doc: serde_json::from_str(&doc).unwrap_or(Value::Null) });
        }
        Ok(out)
    }

    pub fn count(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?)
    }
}
