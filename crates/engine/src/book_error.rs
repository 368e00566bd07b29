//! What the black book's control calls (ban, unban, list, show) can fail with: the caller's mistake
//! (an address that is not one, an allow-listed address) or Kevlar's own trouble (its store), so
//! that the admin API answers 400 for the first and 500 for the second.

use crate::book_db::DbError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BookError {
    /// The request cannot be done as asked: the message says why, for the caller.
    #[error("{0}")]
    Refused(String),
    /// The black book's store failed.
    #[error("black book store")]
    Store(#[from] DbError),
    /// The black book's lock was poisoned by a panic elsewhere.
    #[error("black book unavailable")]
    Unavailable,
}

impl BookError {
    /// Whether the caller asked for something that cannot be (HTTP 4xx), not Kevlar failing (5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(self, BookError::Refused(_))
    }
}

impl From<rusqlite::Error> for BookError {
    fn from(e: rusqlite::Error) -> Self {
        BookError::Store(DbError::Sql(e))
    }
}
