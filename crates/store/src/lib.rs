//! The embedded event store: SQLite in WAL mode under the data dir. One dedicated thread writes,
//! in batches; readers open their own connections. Schema changes are versioned migrations.
//!
//! Durability: a batch is committed before any of its acknowledgements are sent. In WAL mode with
//! `synchronous = NORMAL` a committed transaction survives the process being killed (`kill -9`);
//! surviving a power cut as well would need `FULL`, at a large cost per commit.
#![forbid(unsafe_code)]

mod migrate;
mod query;
mod writer;

use std::path::{Path, PathBuf};

pub use query::{Bucket, EventQuery, Reader, StoredEvent};
pub use writer::{series_of, Retention, StoreWriter};

/// A writable connection for counts that are not events (requests proxied per minute), added
/// to the same rollups as the events. Open it after the store writer has migrated the file.
pub struct Tally {
    conn: rusqlite::Connection,
}

impl Tally {
    pub fn open(data_dir: &Path) -> Result<Tally, StoreError> {
        Ok(Tally { conn: open_conn(&db_path(data_dir))? })
    }

    pub fn add(&self, series: &str, ts_ms: i64, n: i64) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        writer::tally(&tx, ts_ms, series, n)?;
        tx.commit()?;
        Ok(())
    }
}

pub const DB_FILE: &str = "events.db";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open the event store at {path}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("cannot migrate the event store at {path}")]
    Migrate { path: PathBuf, source: rusqlite::Error },
    #[error(
        "the event store at {path} has schema version {found}, newer than this Kevlar knows ({known}); upgrade Kevlar"
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("no event store at {0} (has Kevlar run with this --data-dir?)")]
    Missing(PathBuf),
    #[error("cannot read events")]
    Query(#[from] rusqlite::Error),
    #[error("cannot start the store writer: {0}")]
    Thread(std::io::Error),
}

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

fn open_conn(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    kevlar_core::private::private_file(path);
    let conn = rusqlite::Connection::open(path).map_err(|source| StoreError::Open { path: path.into(), source })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
        .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
        // 16 MiB of page cache (default 2): the indexes (event id, time, action, address) stay
        // in memory while a burst is written.
        .and_then(|_| conn.pragma_update(None, "cache_size", -16384))
        .map_err(|source| StoreError::Open { path: path.into(), source })?;
    Ok(conn)
}
