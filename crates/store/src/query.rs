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
    /// `user.name`.
    pub user: Option<String>,
    /// `event.category` (ECS: `intrusion_detection`, `authentication`, …).
    pub category: Option<String>,
    /// A `url.path` prefix.
    pub path: Option<String>,
    /// Actions starting with this (`malicious_`, `authn_`).
    pub action_prefix: Option<String>,
    /// Only events stored before this id (older pages).
    pub before_id: Option<i64>,
    /// Only events stored after this id (for following).
    pub after_id: Option<i64>,
    /// Newest `limit` events (in ascending order); `None` means 1000.
    pub limit: Option<usize>,
}

/// One bar of a chart: the count of a series in the bucket starting at `start_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub start_ms: i64,
    pub series: String,
    pub n: i64,
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
               AND (?6 IS NULL OR user_name = ?6) AND (?7 IS NULL OR id < ?7)
               AND (?8 IS NULL OR action >= ?8 AND action < ?8 || char(1114111))
               AND (?9 IS NULL OR json_extract(doc, '$.event.category') LIKE '%\"' || ?9 || '\"%')
               AND (?10 IS NULL OR substr(json_extract(doc, '$.url.path'), 1, length(?10)) = ?10)
             ORDER BY id DESC LIMIT ?5",
        )?;
        let params = rusqlite::params![
            q.since_ms,
            q.action,
            q.ip,
            q.after_id,
            limit,
            q.user,
            q.before_id,
            q.action_prefix,
            q.category,
            q.path
        ];
        let rows = stmt.query_map(params, |r| {
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

    /// Counts per series in buckets of `bucket_ms` (a whole number of minutes) from `since_ms`,
    /// read from the hourly rollup when the buckets are hours or longer.
    pub fn series(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>, StoreError> {
        let (table, col, unit) =
            if bucket_ms >= 3_600_000 { ("rollup_hour", "hour", 3_600_000) } else { ("rollup_min", "minute", 60_000) };
        let per = (bucket_ms / unit).max(1);
        let sql =
            format!("SELECT ({col} / ?2) * ?2, series, SUM(n) FROM {table} WHERE {col} >= ?1 GROUP BY 1, 2 ORDER BY 1");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params![since_ms.div_euclid(unit), per], |r| {
            Ok(Bucket { start_ms: r.get::<_, i64>(0)? * unit, series: r.get(1)?, n: r.get(2)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The addresses with the most events whose action starts with `prefix` since `since_ms`,
    /// most first (at most the newest 50,000 such events are counted).
    pub fn top_addresses(&self, prefix: &str, since_ms: i64, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT ip, COUNT(*) FROM (SELECT ip FROM events WHERE ts_ms >= ?1
                 AND action >= ?2 AND action < ?2 || char(1114111) AND ip IS NOT NULL ORDER BY id DESC LIMIT 50000)
             GROUP BY ip ORDER BY 2 DESC, 1 LIMIT ?3",
        )?;
        let rows = stmt.query_map(rusqlite::params![since_ms, prefix, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The users named by events whose action starts with `prefix`, with their newest event's time.
    pub fn users(&self, prefix: &str, limit: usize) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_name, COUNT(*), MAX(ts_ms) FROM (SELECT user_name, ts_ms FROM events
                 WHERE user_name IS NOT NULL AND action >= ?1 AND action < ?1 || char(1114111)
                 ORDER BY id DESC LIMIT 50000)
             GROUP BY user_name ORDER BY 3 DESC LIMIT ?2",
        )?;
        let rows =
            stmt.query_map(rusqlite::params![prefix, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The event stored under this row id.
    pub fn get(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT id, doc FROM events WHERE id = ?1")?;
        let mut rows = stmt.query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        match rows.next() {
            Some(row) => {
                let (id, doc) = row?;
                Ok(Some(StoredEvent { id, doc: serde_json::from_str(&doc).unwrap_or(Value::Null) }))
            }
            None => Ok(None),
        }
    }

    /// The newest row id (0 when empty).
    pub fn last_id(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?)
    }

    pub fn count(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?)
    }
}
