//! The read side: filtered queries for `kevlar events` and the admin API.

use std::path::Path;

use rusqlite::{OpenFlags, OptionalExtension};
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

    /// The events matching `q`: without `after_id`, the newest `limit` (returned oldest first);
    /// with it, the first `limit` stored after that id, so that a follower never skips any.
    /// Only the filters given are in the SQL, so that SQLite can use the index each one has
    /// (action, address, user, time).
    pub fn query(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        if let (Some(prefix), None) = (&q.action_prefix, &q.action) {
            return self.query_prefix(q, prefix);
        }
        self.query_one(q)
    }

    /// An action prefix (`malicious_`): one query per action the store has counted under it,
    /// each on the (action, id) index, merged. One range over the index would have to sort
    /// every matching event before taking the newest.
    fn query_prefix(&self, q: &EventQuery, prefix: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT CASE WHEN instr(series, ':') > 0 THEN substr(series, 1, instr(series, ':') - 1)
                 ELSE series END FROM rollup_hour WHERE series >= ?1 AND series < ?1 || char(1114111)",
        )?;
        let actions: Vec<String> = stmt.query_map([prefix], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let limit = q.limit.unwrap_or(1000).min(100_000);
        let mut all = Vec::new();
        for a in actions.into_iter().filter(|a| a.starts_with(prefix)) {
            let one = EventQuery { action: Some(a), action_prefix: None, ..q.clone() };
            all.extend(self.query_one(&one)?);
        }
        all.sort_by_key(|e| e.id);
        if q.after_id.is_some() {
            all.truncate(limit);
        } else {
            let cut = all.len().saturating_sub(limit);
            all.drain(..cut);
        }
        Ok(all)
    }

    fn query_one(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        use rusqlite::types::Value as Sql;
        let limit = q.limit.unwrap_or(1000).min(100_000) as i64;
        let mut sql = String::from("SELECT id, doc FROM events WHERE 1");
        let mut args: Vec<Sql> = Vec::new();
        let mut add = |clause: &str, v: Sql| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(t) = q.since_ms {
            add(" AND ts_ms >= ?", Sql::Integer(t));
        }
        if let Some(a) = &q.action {
            add(" AND action = ?", Sql::Text(a.clone()));
        }
        if let Some(p) = &q.action_prefix {
            add(" AND action >= ?", Sql::Text(p.clone()));
            add(" AND action < ?", Sql::Text(format!("{p}\u{10FFFF}")));
        }
        if let Some(ip) = &q.ip {
            add(" AND ip = ?", Sql::Text(ip.clone()));
        }
        if let Some(u) = &q.user {
            add(" AND user_name = ?", Sql::Text(u.clone()));
        }
        if let Some(id) = q.after_id {
            add(" AND id > ?", Sql::Integer(id));
        }
        if let Some(id) = q.before_id {
            add(" AND id < ?", Sql::Integer(id));
        }
        if let Some(c) = &q.category {
            add(" AND EXISTS (SELECT 1 FROM json_each(doc, '$.event.category') WHERE value = ?)", Sql::Text(c.clone()));
        }
        if let Some(p) = &q.path {
            add(" AND substr(json_extract(doc, '$.url.path'), 1, ?) = ", Sql::Integer(p.chars().count() as i64));
            add("?", Sql::Text(p.clone()));
        }
        let ascending = q.after_id.is_some();
        add(if ascending { " ORDER BY id ASC LIMIT ?" } else { " ORDER BY id DESC LIMIT ?" }, Sql::Integer(limit));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
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
        if !ascending {
            out.reverse();
        }
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
    /// most first, counted over the newest 20,000 such events (read newest first, stopping
    /// there, so that the answer takes the same time on a store of any size).
    pub fn top_addresses(&self, prefix: &str, since_ms: i64, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        // The first event of the range, found on the time index (MIN(id) would walk the table
        // from its oldest row).
        let first: i64 = self
            .conn
            .query_row(
                "SELECT id FROM events INDEXED BY events_ts WHERE ts_ms >= ?1 ORDER BY ts_ms LIMIT 1",
                [since_ms],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(
            "SELECT ip, COUNT(*) FROM (SELECT ip FROM events WHERE id >= ?1
                 AND +action >= ?2 AND +action < ?2 || char(1114111) AND ip IS NOT NULL ORDER BY id DESC LIMIT 20000)
             GROUP BY ip ORDER BY 2 DESC, 1 LIMIT ?3",
        )?;
        let rows = stmt.query_map(rusqlite::params![first, prefix, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The users events named, most recently seen first: (name, events, newest event's time),
    /// from the per-user rollup kept beside the events.
    pub fn users(&self, limit: usize) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT user_name, n, last_ms FROM rollup_user ORDER BY last_ms DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
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
