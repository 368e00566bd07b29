//! The local advisory index: OSV records imported into SQLite (`<db-dir>/advisories.db`), looked
//! up by (ecosystem, package). Once imported, everything works offline.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use crate::osv::Advisory;

pub const DB_FILE: &str = "advisories.db";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error("no advisory database at {0}; import one with `kevlar db update --from PATH`")]
    Missing(PathBuf),
    #[error("advisory database {path}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error("cannot read {path}")]
    Read { path: PathBuf, source: std::io::Error },
}

#[derive(Debug, Default)]
pub struct ImportStats {
    pub records: usize,
    pub skipped_files: usize,
    /// RustSec notices that are not vulnerabilities (unmaintained, unsound): not imported.
    pub informational: usize,
    /// Node.js core advisories (security WG format) and release schedules imported.
    pub runtime_records: usize,
    /// Files in a format that is not an advisory Kevlar reads (the WG's legacy npm advisories).
    pub not_advisories: usize,
    /// Records or ranges that could not be read, each naming the record.
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// One record larger than this (inside an archive) is cut, and then fails to parse.
const MAX_RECORD_BYTES: u64 = 16 << 20;

pub struct AdvisoryDb {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS advisories (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS affected (ecosystem TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (ecosystem, name, id));
CREATE INDEX IF NOT EXISTS affected_by_id ON affected (id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runtime_vulns (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
";

impl AdvisoryDb {
    /// Opens (creating) the database in `dir`.
    pub fn create(dir: &Path) -> Result<Self, DbError> {
        std::fs::create_dir_all(dir).map_err(|source| DbError::Read { path: dir.to_path_buf(), source })?;
        let path = dir.join(DB_FILE);
        let sql = |source| DbError::Sql { path: path.clone(), source };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(AdvisoryDb { conn, path })
    }

    /// Opens an existing database; a missing one is an error that says how to make it.
    pub fn open(dir: &Path) -> Result<Self, DbError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(DbError::Missing(dir.to_path_buf()));
        }
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| DbError::Sql { path: path.clone(), source })?;
        Ok(AdvisoryDb { conn, path })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> DbError + '_ {
        move |source| DbError::Sql { path: self.path.clone(), source }
    }

    /// Imports every `.json` OSV record under `dir` (recursively). Unreadable files and records
    /// are counted and warned about; they never stop the import.
    pub fn import_dir(&mut self, dir: &Path) -> Result<ImportStats, DbError> {
        let is_zip = dir.is_file()
            && std::fs::File::open(dir)
                .and_then(|mut f| {
                    let mut magic = [0u8; 4];
                    std::io::Read::read_exact(&mut f, &mut magic).map(|_| magic == *b"PK\x03\x04")
                })
                .unwrap_or(false);
        if is_zip {
            let file = std::fs::File::open(dir).map_err(|source| DbError::Read { path: dir.to_path_buf(), source })?;
            let mut archive = zip::ZipArchive::new(file).map_err(|e| DbError::Read {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            })?;
            let base = dir.to_path_buf();
            let n = archive.len();
            let entries = (0..n).filter_map(move |i| {
                use std::io::Read;
                let mut e = archive.by_index(i).ok()?;
                if !e.is_file() {
                    return None;
                }
                let name = base.join(e.name());
                let ok = name.extension().is_some_and(|x| x == "json" || x == "md" || x == "yaml" || x == "yml");
                if !ok {
                    return None;
                }
                let mut text = String::new();
                let res = e
                    .by_ref()
                    .take(MAX_RECORD_BYTES)
                    .read_to_string(&mut text)
                    .map(|_| text)
                    .map_err(|err| err.to_string());
                Some((name, res))
            });
            return self.import_entries(Box::new(entries));
        }
        let mut files = Vec::new();
        collect_json(dir, &mut files).map_err(|source| DbError::Read { path: dir.to_path_buf(), source })?;
        files.sort();
        let entries = files.into_iter().map(|f| {
            let text = std::fs::read_to_string(&f).map_err(|e| e.to_string());
            (f, text)
        });
        self.import_entries(Box::new(entries))
    }

    /// Imports records one at a time from `entries` (a file's path, its text or why it could not
    /// be read), in one transaction.
    fn import_entries(
        &mut self,
        entries: Box<dyn Iterator<Item = (PathBuf, Result<String, String>)> + '_>,
    ) -> Result<ImportStats, DbError> {
        let started = Instant::now();
        let mut stats = ImportStats::default();
        let path = self.path.clone();
        let sql = |source| DbError::Sql { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut put = tx.prepare("INSERT OR REPLACE INTO advisories (id, doc) VALUES (?1, ?2)").map_err(sql)?;
            let mut del = tx.prepare("DELETE FROM affected WHERE id = ?1").map_err(sql)?;
            let mut aff =
                tx.prepare("INSERT OR IGNORE INTO affected (ecosystem, name, id) VALUES (?1, ?2, ?3)").map_err(sql)?;
            for (f, text) in entries {
                let f = &f;
                let text = match text {
                    Ok(t) => t,
                    Err(e) => {
                        stats.skipped_files += 1;
                        stats.warnings.push(format!("{}: {e}", f.display()));
                        continue;
                    }
                };
                let (v, text) = match classify(f, text) {
                    Entry::Readme => continue,
                    Entry::Informational => {
                        stats.informational += 1;
                        continue;
                    }
                    Entry::NotAdvisory => {
                        stats.not_advisories += 1;
                        continue;
                    }
                    Entry::Bad(why) => {
                        stats.skipped_files += 1;
                        stats.warnings.push(why);
                        continue;
                    }
                    Entry::RuntimeVuln(id, text) => {
                        tx.execute(
                            "INSERT OR REPLACE INTO runtime_vulns (id, doc) VALUES (?1, ?2)",
                            params![format!("NODE-CORE-{id}"), text],
                        )
                        .map_err(sql)?;
                        stats.runtime_records += 1;
                        continue;
                    }
                    Entry::Schedule(text) => {
                        tx.execute(
                            "INSERT OR REPLACE INTO meta (key, value) VALUES ('node_schedule', ?1)",
                            params![text],
                        )
                        .map_err(sql)?;
                        stats.runtime_records += 1;
                        continue;
                    }
                    Entry::Osv(v, text) => (v, text),
                };
                let adv = match Advisory::from_json(&v, &mut stats.warnings) {
                    Ok(a) => a,
                    Err(e) => {
                        stats.skipped_files += 1;
                        stats.warnings.push(format!("{}: {e}", f.display()));
                        continue;
                    }
                };
                put.execute(params![adv.id, text]).map_err(sql)?;
                del.execute(params![adv.id]).map_err(sql)?;
                for a in &adv.affected {
                    aff.execute(params![a.ecosystem, index_name(&a.ecosystem, &a.name), adv.id]).map_err(sql)?;
                }
                stats.records += 1;
            }
        }
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('updated_ms', ?1)", params![now_ms().to_string()])
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        stats.seconds = started.elapsed().as_secs_f64();
        Ok(stats)
    }

    /// The advisories naming this package.
    pub fn lookup(&self, ecosystem: &str, name: &str) -> Result<Vec<Advisory>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT a.doc FROM affected f JOIN advisories a ON a.id = f.id WHERE f.ecosystem = ?1 AND f.name = ?2",
            )
            .map_err(self.sql())?;
        let docs: Vec<String> = stmt
            .query_map(params![ecosystem, index_name(ecosystem, name)], |r| r.get(0))
            .map_err(self.sql())?
            .collect::<Result<_, _>>()
            .map_err(self.sql())?;
        let mut ignored = Vec::new();
        Ok(docs
            .iter()
            .filter_map(|d| serde_json::from_str(d).ok())
            .filter_map(|v: Value| Advisory::from_json(&v, &mut ignored).ok())
            .collect())
    }

    /// The stored Node.js core advisories, `(id, record)`.
    pub fn runtime_vulns(&self) -> Result<Vec<(String, Value)>, DbError> {
        let mut stmt = self.conn.prepare("SELECT id, doc FROM runtime_vulns").map_err(self.sql())?;
        let rows: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.sql())?
            .collect::<Result<_, _>>()
            .map_err(self.sql())?;
        Ok(rows.into_iter().filter_map(|(id, d)| serde_json::from_str(&d).ok().map(|v| (id, v))).collect())
    }

    /// The stored Node.js release schedule.
    pub fn node_schedule(&self) -> Result<Option<Value>, DbError> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'node_schedule'", [], |r| r.get(0))
            .optional()
            .map_err(self.sql())?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    pub fn count(&self) -> Result<i64, DbError> {
        self.conn.query_row("SELECT COUNT(*) FROM advisories", [], |r| r.get(0)).map_err(self.sql())
    }

    /// When the last import finished, in milliseconds since the epoch.
    pub fn updated_ms(&self) -> Result<Option<i64>, DbError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'updated_ms'", [], |r| r.get(0))
            .optional()
            .map_err(self.sql())?;
        Ok(v.and_then(|s| s.parse().ok()))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The name a package is indexed under: PyPI's normalised (PEP 503), others as they are.
fn index_name(ecosystem: &str, name: &str) -> String {
    if crate::version::is_python(ecosystem) {
        crate::pep440::normalize_name(name)
    } else {
        name.to_owned()
    }
}

/// What one file of an advisory database is.
enum Entry {
    /// A README or other Markdown without an advisory.
    Readme,
    /// A RustSec informational notice (unmaintained, unsound): not a vulnerability.
    Informational,
    /// Legacy npm advisories, the core index, "not affected" assessments.
    NotAdvisory,
    /// Unreadable: the warning says why.
    Bad(String),
    /// A Node.js core vulnerability (the security WG's `vuln/core`), by file stem.
    RuntimeVuln(String, String),
    /// The Node.js release schedule.
    Schedule(String),
    /// An OSV record (from JSON, YAML or RustSec Markdown), parsed and as text.
    Osv(Value, String),
}

/// Reads one file of an advisory database by its kind: RustSec Markdown, OSV as YAML, or JSON
/// (OSV, or the Node.js security WG's formats).
fn classify(f: &Path, text: String) -> Entry {
    let is_md = f.extension().is_some_and(|e| e == "md");
    let is_yaml = f.extension().is_some_and(|e| e == "yaml" || e == "yml");
    if is_md && !text.contains("```toml") {
        return Entry::Readme;
    }
    if is_md {
        return match crate::rustsec::to_osv(&text) {
            Ok(Some(v)) => {
                let t = v.to_string();
                Entry::Osv(v, t)
            }
            Ok(None) => Entry::Informational,
            Err(e) => Entry::Bad(format!("{}: {e}", f.display())),
        };
    }
    if is_yaml {
        // OSV written as YAML (pypa/advisory-database).
        return match yaml_to_json(&text) {
            Ok(v) => {
                let t = v.to_string();
                Entry::Osv(v, t)
            }
            Err(e) => Entry::Bad(format!("{}: {e}", f.display())),
        };
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(v) if crate::runtime::is_core_advisory(&v) => {
            Entry::RuntimeVuln(f.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_owned(), text)
        }
        Ok(v) if crate::runtime::is_schedule(&v) => Entry::Schedule(text),
        // The security WG's legacy npm advisories (`module_name`) and its core index (the same
        // records as the per-file ones) are not OSV. Its dependency assessments (`reason`: not
        // affected) say what does not apply.
        Ok(v)
            if v.get("module_name").is_some()
                || (v.get("cve").is_some() && v.get("reason").is_some() && v.get("id").is_none())
                || f.file_name().is_some_and(|n| n == "index.json") =>
        {
            Entry::NotAdvisory
        }
        Ok(v) => Entry::Osv(v, text),
        Err(e) => Entry::Bad(format!("{}:{}: {e}", f.display(), e.line())),
    }
}

/// A YAML document as JSON; scalars stay text (`2.6` is a version, not a number).
fn yaml_to_json(text: &str) -> Result<Value, String> {
    use yaml_rust2::Yaml;
    fn conv(y: &Yaml, depth: usize) -> Value {
        if depth > 64 {
            return Value::Null;
        }
        match y {
            Yaml::String(s) | Yaml::Real(s) => Value::String(s.clone()),
            Yaml::Integer(i) => Value::String(i.to_string()),
            Yaml::Boolean(b) => Value::Bool(*b),
            Yaml::Array(a) => Value::Array(a.iter().map(|x| conv(x, depth + 1)).collect()),
            Yaml::Hash(h) => Value::Object(
                h.iter()
                    .filter_map(|(k, v)| {
                        let key = match k {
                            Yaml::String(s) | Yaml::Real(s) => s.clone(),
                            Yaml::Integer(i) => i.to_string(),
                            _ => return None,
                        };
                        Some((key, conv(v, depth + 1)))
                    })
                    .collect(),
            ),
            _ => Value::Null,
        }
    }
    let docs = crate::yaml::load(text).map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let doc = docs.first().ok_or("an empty YAML document")?;
    Ok(conv(doc, 0))
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            collect_json(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "json" || e == "md" || e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(())
}
