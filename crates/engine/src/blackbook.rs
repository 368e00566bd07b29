//! The black book: one record per offending address — first and last seen, counts by family and
//! event, a score, a few sample requests, bans past and present. Bounded: past `max_records`,
//! the least recently seen records leave memory (they stay in the store and come back when the
//! address shows up again).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use kevlar_core::SecurityEvent;
use serde_json::Value;

use crate::key::IpKey;

pub const SAMPLES: usize = 5;
pub const HISTORY: usize = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub ts_ms: i64,
    pub action: String,
    pub family: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub location: Option<String>,
    pub excerpt: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BanRecord {
    pub since_ms: i64,
    pub until_ms: i64,
    pub reason: String,
    pub source: String,
    pub enforced: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// By event action and by family (`malicious_attack`, `family:sqli`).
    pub counts: BTreeMap<String, u64>,
    pub score: u64,
    pub samples: VecDeque<Sample>,
    pub bans: VecDeque<BanRecord>,
}

/// A black-book record as the admin API, the CLI and the dashboard show it (its JSON form is the
/// admin API's `/v1/blackbook` contract).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BookRecord {
    pub address: String,
    pub first_seen: String,
    pub last_seen: String,
    pub score: u64,
    /// By event action and by family (`malicious_attack`, `family:sqli`).
    pub counts: BTreeMap<String, u64>,
    pub banned: bool,
    /// The ban in force, if any.
    pub ban: Option<BanView>,
    pub samples: Vec<SampleView>,
    pub ban_history: Vec<BanView>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BanView {
    pub since: String,
    /// `None`: until lifted by hand.
    pub until: Option<String>,
    pub reason: String,
    /// `manual`, `jail:NAME`, `recidive`, `cluster:INSTANCE` …
    pub source: String,
    pub enforced: bool,
}

/// One remembered event of the address (excerpts redacted as in the store).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SampleView {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub action: String,
    pub family: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub location: Option<String>,
    pub excerpt: Option<String>,
    pub request_id: Option<String>,
}

impl Record {
    pub fn view(&self, key: &IpKey, now_ms: i64) -> BookRecord {
        let active = self.bans.back().filter(|b| b.until_ms > now_ms);
        BookRecord {
            address: key.to_string(),
            first_seen: kevlar_core::time::rfc3339_ms(self.first_seen_ms),
            last_seen: kevlar_core::time::rfc3339_ms(self.last_seen_ms),
            score: self.score,
            counts: self.counts.clone(),
            banned: active.is_some(),
            ban: active.map(ban_view),
            samples: self
                .samples
                .iter()
                .map(|s| SampleView {
                    timestamp: kevlar_core::time::rfc3339_ms(s.ts_ms),
                    action: s.action.clone(),
                    family: s.family.clone(),
                    method: s.method.clone(),
                    path: s.path.clone(),
                    location: s.location.clone(),
                    excerpt: s.excerpt.clone(),
                    request_id: s.request_id.clone(),
                })
                .collect(),
            ban_history: self.bans.iter().map(ban_view).collect(),
        }
    }

    pub fn to_json(&self, key: &IpKey, now_ms: i64) -> Value {
        serde_json::to_value(self.view(key, now_ms)).unwrap_or(Value::Null)
    }

    pub fn from_json(v: &Value) -> Option<(IpKey, Record)> {
        let key = IpKey::parse(v.get("address")?.as_str()?, 128).ok()?;
        let ts = |k: &str| v.get(k).and_then(Value::as_str).and_then(kevlar_core::time::parse_rfc3339_ms);
        let counts = v
            .get("counts")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, n)| n.as_u64().map(|n| (k.clone(), n))).collect())
            .unwrap_or_default();
        let samples = v
            .get("samples")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|s| {
                        let st = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
                        Sample {
                            ts_ms: st("@timestamp").and_then(|t| kevlar_core::time::parse_rfc3339_ms(&t)).unwrap_or(0),
                            action: st("action").unwrap_or_default(),
                            family: st("family"),
                            method: st("method"),
                            path: st("path"),
                            location: st("location"),
                            excerpt: st("excerpt"),
                            request_id: st("request_id"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let bans = v
            .get("ban_history")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(ban_from_json).collect())
            .unwrap_or_default();
        Some((
            key,
            Record {
                first_seen_ms: ts("first_seen").unwrap_or(0),
                last_seen_ms: ts("last_seen").unwrap_or(0),
                counts,
                score: v.get("score").and_then(Value::as_u64).unwrap_or(0),
                samples,
                bans,
            },
        ))
    }
}

fn ban_view(b: &BanRecord) -> BanView {
    BanView {
        since: kevlar_core::time::rfc3339_ms(b.since_ms),
        until: (b.until_ms != i64::MAX).then(|| kevlar_core::time::rfc3339_ms(b.until_ms)),
        reason: b.reason.clone(),
        source: b.source.clone(),
        enforced: b.enforced,
    }
}

fn ban_from_json(v: &Value) -> Option<BanRecord> {
    let t = |k: &str| v.get(k).and_then(Value::as_str).and_then(kevlar_core::time::parse_rfc3339_ms);
    Some(BanRecord {
        since_ms: t("since")?,
        until_ms: t("until").unwrap_or(i64::MAX),
        reason: v.get("reason").and_then(Value::as_str).unwrap_or("").to_owned(),
        source: v.get("source").and_then(Value::as_str).unwrap_or("").to_owned(),
        enforced: v.get("enforced").and_then(Value::as_bool).unwrap_or(true),
    })
}

pub struct BlackBook {
    records: HashMap<IpKey, Record>,
    max: usize,
    /// Changed since the last flush to the store.
    dirty: HashSet<IpKey>,
}

impl BlackBook {
    pub fn new(max: usize) -> Self {
        BlackBook { records: HashMap::new(), max: max.max(1), dirty: HashSet::new() }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, key: &IpKey) -> Option<&Record> {
        self.records.get(key)
    }

    pub fn contains(&self, key: &IpKey) -> bool {
        self.records.contains_key(key)
    }

    /// Puts back a record read from the store (when the address shows up again).
    pub fn restore(&mut self, key: IpKey, rec: Record) -> Vec<(IpKey, Record)> {
        self.records.insert(key, rec);
        self.evict()
    }

    pub fn entry(&mut self, key: IpKey, now_ms: i64) -> &mut Record {
        self.dirty.insert(key);
        self.records.entry(key).or_insert_with(|| Record {
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            ..Default::default()
        })
    }

    /// Counts an event against its address.
    pub fn record(&mut self, key: IpKey, ev: &SecurityEvent) {
        let r = self.entry(key, ev.timestamp_ms);
        r.last_seen_ms = r.last_seen_ms.max(ev.timestamp_ms);
        *r.counts.entry(ev.action.clone()).or_default() += 1;
        let family = ev.kevlar.get("family").and_then(Value::as_str).map(str::to_owned);
        if let Some(f) = &family {
            *r.counts.entry(format!("family:{f}")).or_default() += 1;
        }
        let score = ev.kevlar.get("score").and_then(Value::as_u64).unwrap_or(ev.severity as u64);
        r.score = r.score.saturating_add(score);
        if r.samples.len() >= SAMPLES {
            r.samples.pop_front();
        }
        let s = |k: &str| ev.kevlar.get(k).and_then(Value::as_str).map(str::to_owned);
        r.samples.push_back(Sample {
            ts_ms: ev.timestamp_ms,
            action: ev.action.clone(),
            family,
            method: ev.http_method.clone(),
            path: ev.url_path.clone(),
            location: s("location"),
            excerpt: s("excerpt"),
            request_id: ev.request_id.clone(),
        });
    }

    pub fn add_ban(&mut self, key: IpKey, ban: BanRecord) {
        let r = self.entry(key, ban.since_ms);
        if r.bans.len() >= HISTORY {
            r.bans.pop_front();
        }
        r.bans.push_back(ban);
    }

    /// Ends the running ban, if any, at `now_ms` (keeps it in the history).
    pub fn end_ban(&mut self, key: IpKey, now_ms: i64) {
        let r = self.entry(key, now_ms);
        if let Some(b) = r.bans.back_mut() {
            if b.until_ms > now_ms {
                b.until_ms = now_ms;
            }
        }
    }

    /// Records beyond the bound, least recently seen first, to be written out before they go.
    pub fn evict(&mut self) -> Vec<(IpKey, Record)> {
        if self.records.len() <= self.max {
            return Vec::new();
        }
        // Drop a tenth at once so eviction is rare.
        let target = self.max - self.max / 10;
        let mut by_age: Vec<(i64, IpKey)> = self.records.iter().map(|(k, r)| (r.last_seen_ms, *k)).collect();
        by_age.sort_unstable();
        let n = self.records.len() - target;
        by_age
            .into_iter()
            .take(n)
            .filter_map(|(_, k)| {
                self.dirty.remove(&k);
                self.records.remove(&k).map(|r| (k, r))
            })
            .collect()
    }

    pub fn take_dirty(&mut self) -> Vec<(IpKey, Record)> {
        let keys: Vec<IpKey> = self.dirty.drain().collect();
        keys.into_iter().filter_map(|k| self.records.get(&k).map(|r| (k, r.clone()))).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpKey, &Record)> {
        self.records.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kevlar_core::{Category, Severity};

    #[test]
    fn bounded_and_least_recent_leave_first() {
        let mut b = BlackBook::new(1000);
        let mut evicted = 0;
        for i in 0..100_000u32 {
            let mut ev = SecurityEvent::new("malicious_probe", Category::IntrusionDetection, Severity::Notice, "x");
            ev.timestamp_ms = i64::from(i);
            b.record(IpKey::V4(i), &ev);
            evicted += b.evict().len();
        }
        assert!(b.len() <= 1000);
        assert_eq!(evicted + b.len(), 100_000);
        assert!(b.get(&IpKey::V4(99_999)).is_some());
        assert!(b.get(&IpKey::V4(0)).is_none());
    }

    #[test]
    fn json_round_trip() {
        let mut b = BlackBook::new(10);
        let mut ev = SecurityEvent::new("malicious_attack", Category::IntrusionDetection, Severity::Warning, "x")
            .with_kevlar("family", "sqli")
            .with_kevlar("score", 9);
        ev.url_path = Some("/search".into());
        let k = IpKey::V4(0x0a000001);
        b.record(k, &ev);
        b.add_ban(
            k,
            BanRecord { since_ms: 1000, until_ms: 2000, reason: "r".into(), source: "manual".into(), enforced: true },
        );
        let rec = b.get(&k).unwrap().clone();
        let (k2, back) = Record::from_json(&rec.to_json(&k, 0)).unwrap();
        assert_eq!(k2, k);
        assert_eq!(back.counts, rec.counts);
        assert_eq!(back.score, 9);
        assert_eq!(back.bans.len(), 1);
        assert_eq!(back.samples[0].path.as_deref(), Some("/search"));
    }
}
