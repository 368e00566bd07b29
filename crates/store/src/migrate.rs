//! Versioned schema migrations, tracked in `PRAGMA user_version`. Append, never edit.

use std::path::Path;

use crate::StoreError;

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
