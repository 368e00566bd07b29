//! Versioned schema migrations, tracked in `PRAGMA user_version`. Append, never edit.

use std::path::Path;

use crate::StoreError;

/// Schema 1 alone (for the upgrade test).
#[cfg(test)]
pub(crate) const FIRST: &str = MIGRATIONS[0];

const MIGRATIONS: &[&str] = &[
    // 1: the events table.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        action TEXT NOT NULL,
        severity INTEGER NOT NULL,
        ip TEXT,
        user_name TEXT,
        request_id TEXT,
        doc TEXT NOT NULL
    );
    CREATE UNIQUE INDEX events_event_id ON events(event_id);
    CREATE INDEX events_ts ON events(ts_ms);
    CREATE INDEX events_action ON events(action, id);
    CREATE INDEX events_ip ON events(ip, id);",
    // 2: per-minute and per-hour counts by series (an action, `malicious_attack:FAMILY`, or
    // `requests`), for charts that do not scan the events; backfilled from what is stored. And the
    // events by user and a count per user, for the dashboard's login pages.
    "CREATE TABLE rollup_min (minute INTEGER NOT NULL, series TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (minute, series)) WITHOUT ROWID;
    CREATE TABLE rollup_hour (hour INTEGER NOT NULL, series TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (hour, series)) WITHOUT ROWID;
    INSERT INTO rollup_min SELECT ts_ms / 60000, CASE WHEN action = 'malicious_attack'
        THEN 'malicious_attack:' || COALESCE(json_extract(doc, '$.kevlar.family'), 'other') ELSE action END, COUNT(*)
        FROM events GROUP BY 1, 2;
    INSERT INTO rollup_hour SELECT minute / 60, series, SUM(n) FROM rollup_min GROUP BY 1, 2;
    CREATE INDEX events_user ON events(user_name, id) WHERE user_name IS NOT NULL;
    CREATE TABLE rollup_user (user_name TEXT PRIMARY KEY, n INTEGER NOT NULL, last_ms INTEGER NOT NULL) WITHOUT ROWID;
    CREATE INDEX rollup_user_last ON rollup_user(last_ms);
    INSERT INTO rollup_user SELECT user_name, COUNT(*), MAX(ts_ms) FROM events WHERE user_name IS NOT NULL GROUP BY 1;",
];

pub(crate) fn migrate(conn: &mut rusqlite::Connection, path: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Migrate { path: path.into(), source };
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew { path: path.into(), found: version, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}
