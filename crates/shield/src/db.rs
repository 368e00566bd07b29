//! The route inventory's table in `<data-dir>/shield.db` (the black book's file, see
//! `kevlar_engine::book_db`), through a connection of its own, so that it outlives a restart.

use std::path::Path;

use kevlar_engine::book_db::DbError;
use rusqlite::{params, Connection};
use serde_json::Value;

use crate::routes::{RouteKey, RouteStats};

const ROUTES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS routes (method TEXT NOT NULL, route TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (method, route));
";

pub struct RoutesDb {
    conn: Connection,
}

impl RoutesDb {
    pub fn open(data_dir: &Path) -> Result<RoutesDb, DbError> {
        kevlar_engine::book_db::open_file(data_dir, ROUTES_SCHEMA).map(|conn| RoutesDb { conn })
    }

    pub fn save_routes<'a>(
        &mut self,
        routes: impl Iterator<Item = (&'a RouteKey, &'a RouteStats)>,
    ) -> Result<(), DbError> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO routes(method, route, json) VALUES (?1, ?2, ?3)
                 ON CONFLICT(method, route) DO UPDATE SET json = excluded.json",
            )?;
            for ((m, t), r) in routes {
                let j = serde_json::json!({
                    "hits": r.hits, "flagged": r.flagged, "first": r.first_seen_ms, "last": r.last_seen_ms, "login": r.login,
                    "statuses": r.statuses.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<serde_json::Map<_, _>>(),
                });
                st.execute(params![m, t, j.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn load_routes(&self) -> Result<Vec<(RouteKey, RouteStats)>, DbError> {
        let mut st = self.conn.prepare("SELECT method, route, json FROM routes")?;
        let rows =
            st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (m, t, j) = row?;
            let Ok(v) = serde_json::from_str::<Value>(&j) else { continue };
            let n = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
            let statuses = v
                .get("statuses")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, n)| Some((k.parse().ok()?, n.as_u64()?))).collect())
                .unwrap_or_default();
            out.push((
                (m, t),
                RouteStats {
                    hits: n("hits") as u64,
                    flagged: n("flagged") as u64,
                    statuses,
                    first_seen_ms: n("first"),
                    last_seen_ms: n("last"),
                    login: v.get("login").and_then(Value::as_str).map(str::to_owned),
                },
            ));
        }
        Ok(out)
    }
}
