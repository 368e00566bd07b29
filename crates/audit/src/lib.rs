//! `kevlar audit`: which installed packages have known vulnerabilities. Parsing (`lockfile/`),
//! the advisory index (`osv`, `db`), matching (`matching`) and presenting (`present`) are kept
//! apart: the matching returns typed findings and reports, the presenters only write them.
//!
//! Covered so far: npm `package-lock.json` v1/v2/v3, `npm-shrinkwrap.json`, pnpm 5/6/9, yarn v1 and berry, and bun.lock; OSV records for the
//! npm ecosystem (`SEMVER` and `ECOSYSTEM` ranges, `versions` lists, withdrawn records, aliases).
#![forbid(unsafe_code)]

pub mod cvss;
pub mod db;
pub mod known;
pub mod lockfile;
pub mod matching;
pub mod npm_range;
pub mod osv;
pub mod pep440;
pub mod present;
pub mod runtime;
pub mod rustsec;
pub mod version;
pub mod yaml;

pub use db::{AdvisoryDb, ImportStats};
pub use lockfile::{Package, Project};
pub use matching::{audit, Finding};
pub use osv::{Advisory, Severity};
