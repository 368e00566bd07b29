//! Kevlar's data files (events, the black book, the outbox, the access log) hold addresses,
//! user names and request details: they are readable by their owner alone (0600, in a 0700 data
//! dir), whatever the umask.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `path` with mode 0600 if it is missing, or narrows an existing file to 0600. Done
/// before SQLite opens a database, whose `-wal` and `-shm` files then take the same mode. A
/// process that does not own the file (a reader run as another user) leaves it as it is: the
/// open that follows tells whether it may read it.
pub fn private_file(path: &Path) {
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(_) => {}
        Err(_) => {
            let _ = std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path);
        }
    }
}
