//! The black book's SQLite file beside the event store (`<data-dir>/shield.db`): records and bans,
//! so they outlive a restart. One writer (the correlator thread); the CLI reads it when Kevlar is
//! not running. The shield keeps its route inventory in the same file, through its own connection.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use crate::bans::Ban;
use crate::blackbook::{BookRecord, Record};
use crate::key::IpKey;

pub const FILE: &str = "shield.db";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error("cannot open {path}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("black book store")]
    Sql(#[from] rusqlite::Error),
}

pub struct BookDb {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blackbook (address TEXT PRIMARY KEY, last_seen INTEGER NOT NULL, banned_until INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS blackbook_seen ON blackbook(last_seen);
CREATE TABLE IF NOT EXISTS bans (address TEXT PRIMARY KEY, since INTEGER NOT NULL, until INTEGER NOT NULL, reason TEXT NOT NULL, source TEXT NOT NULL, enforced INTEGER NOT NULL);
";

/// Opens `<data_dir>/shield.db` (0600, WAL, freed pages given back) and creates `schema`'s
/// tables: the black book's here, the route inventory's in the shield, each on its own connection.
pub fn open_file(data_dir: &Path, schema: &str) -> Result<Connection, DbError> {
    let path = data_dir.join(FILE);
    kevlar_core::private::private_file(&path);
    let open = || -> rusqlite::Result<Connection> {
        let conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Freed pages go back to the file system (a file made before this is converted once).
        if conn.pragma_query_value(None, "auto_vacuum", |r| r.get::<_, i64>(0))? != 2 {
            conn.pragma_update(None, "auto_vacuum", 2)?;
            conn.execute_batch("VACUUM")?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(schema)?;
        Ok(conn)
    };
    open().map_err(|source| DbError::Open { path, source })
}

impl BookDb {
    pub fn open(data_dir: &Path) -> Result<BookDb, DbError> {
        open_file(data_dir, SCHEMA).map(|conn| BookDb { conn })
    }

    pub fn save_records(&mut self, recs: &[(IpKey, Record)], now_ms: i64) -> Result<(), DbError> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO blackbook(address, last_seen, banned_until, json) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(address) DO UPDATE SET last_seen = excluded.last_seen, banned_until = excluded.banned_until, json = excluded.json",
            )?;
            for (k, r) in recs {
                let until = r.bans.back().map_or(0, |b| b.until_ms);
                st.execute(params![k.to_string(), r.last_seen_ms, until, r.to_json(k, now_ms).to_string()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn load_record(&self, key: &IpKey) -> Result<Option<Record>, DbError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT json FROM blackbook WHERE address = ?1", [key.to_string()], |r| r.get(0))
            .optional()?;
        Ok(json
            .and_then(|j| serde_json::from_str::<Value>(&j).ok())
            .and_then(|v| Record::from_json(&v))
            .map(|(_, r)| r))
    }

    /// The most recently seen records (banned ones only with `banned`), re-rendered at `now_ms`.
    pub fn list(&self, limit: usize, banned: bool, now_ms: i64) -> Result<Vec<BookRecord>, DbError> {
        let sql = if banned {
            "SELECT json FROM blackbook WHERE banned_until > ?2 ORDER BY last_seen DESC LIMIT ?1"
        } else {
            "SELECT json FROM blackbook WHERE ?2 = ?2 ORDER BY last_seen DESC LIMIT ?1"
        };
        let mut st = self.conn.prepare(sql)?;
        let rows = st.query_map(params![limit as i64, now_ms], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for j in rows {
            if let Some((k, rec)) = serde_json::from_str::<Value>(&j?).ok().and_then(|v| Record::from_json(&v)) {
                out.push(rec.view(&k, now_ms));
            }
        }
        Ok(out)
    }

    pub fn save_ban(&mut self, key: &IpKey, b: &Ban) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO bans(address, since, until, reason, source, enforced) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(address) DO UPDATE SET since = excluded.since, until = excluded.until, reason = excluded.reason, source = excluded.source, enforced = excluded.enforced",
            params![key.to_string(), b.since_ms, b.until_ms, b.reason, b.source, b.enforced],
        )?;
        Ok(())
    }

    /// Forgets black-book records not seen since `seen_before_ms` and, beyond `max_stored`, the
    /// least recently seen — never a record whose address is banned now — and bans that ended;
    /// gives the space back. Returns how many records went.
    pub fn prune(&mut self, seen_before_ms: i64, max_stored: usize, now_ms: i64) -> Result<usize, DbError> {
        let mut gone = self.conn.execute(
            "DELETE FROM blackbook WHERE last_seen < ?1 AND banned_until <= ?2",
            params![seen_before_ms, now_ms],
        )?;
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM blackbook", [], |r| r.get(0))?;
        if n as usize > max_stored {
            gone += self.conn.execute(
                "DELETE FROM blackbook WHERE address IN (SELECT address FROM blackbook WHERE banned_until <= ?2
                 ORDER BY last_seen LIMIT ?1)",
                params![n - max_stored as i64, now_ms],
            )?;
        }
        self.conn.execute("DELETE FROM bans WHERE until <= ?1", [now_ms])?;
        let free: i64 = self.conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        if free > 0 {
            // One page per step: stepped to the end.
            let mut st = self.conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = st.query([])?;
            while rows.next()?.is_some() {}
            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(gone)
    }

    pub fn delete_ban(&mut self, key: &IpKey) -> Result<bool, DbError> {
        Ok(self.conn.execute("DELETE FROM bans WHERE address = ?1", [key.to_string()])? > 0)
    }

    /// Bans still running at `now_ms`.
    pub fn load_bans(&self, now_ms: i64) -> Result<Vec<(IpKey, Ban)>, DbError> {
        let mut st =
            self.conn.prepare("SELECT address, since, until, reason, source, enforced FROM bans WHERE until > ?1")?;
        let rows = st.query_map([now_ms], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Ban {
                    since_ms: r.get(1)?,
                    until_ms: r.get(2)?,
                    reason: r.get(3)?,
                    source: r.get(4)?,
                    enforced: r.get(5)?,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (addr, ban) = row?;
            if let Ok(k) = IpKey::parse(&addr, 128) {
                out.push((k, ban));
            }
        }
        Ok(out)
    }
}
