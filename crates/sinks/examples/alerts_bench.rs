//! Alert pipeline benchmark (run by `bench/alerts.sh`; release build):
//!
//! 1. events per second into the store (the writer thread, batched commits), against plain
//!    SQLite inserts of the same documents in one transaction — the floor — measured in the same run;
//! 2. events per second from the store to a syslog TCP receiver through the whole pipeline
//!    (feeder → outbox → syslog worker), against writing the same framed messages straight to the
//!    receiver;
//! 3. memory while the sink is down: N events go into the outbox (on disk), RSS sampled before
//!    and after.
//!
//!   alerts_bench [EVENTS]      (default 200000)
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kevlar_config::{AlertsConfig, Framing, SinkConfig, SinkKind, SyslogSink, Transport};
use kevlar_core::{Category, SecurityEvent, Severity};
use kevlar_engine::{Bus, BusBuilder, Envelope, Wake};
use kevlar_sinks::syslog::encoder;
use kevlar_sinks::Alerts;
use kevlar_store::{Retention, StoreWriter};

fn event(i: usize) -> SecurityEvent {
    let mut e = SecurityEvent::new(
        "malicious_attack",
        Category::IntrusionDetection,
        Severity::Warning,
        format!("sqli attempt in args.q (request {i})"),
    );
    e.source_ip = Some(std::net::IpAddr::from([198, 51, 100, (i % 250) as u8]));
    e.url_path = Some("/search".into());
    e.http_method = Some("GET".into());
    e.rule_id = Some("kevlar.sqli.union_select".into());
    e.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64)".into());
    e
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse().ok()))
        .unwrap_or(0)
}

/// Counts octet-counted syslog frames arriving on a TCP listener.
fn receiver() -> (u16, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let n3 = n2.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::with_capacity(1 << 16, c);
                let mut len = Vec::new();
                loop {
                    len.clear();
                    if r.read_until(b' ', &mut len).map(|k| k == 0).unwrap_or(true) {
                        break;
                    }
                    let Ok(k) = std::str::from_utf8(&len[..len.len() - 1]).unwrap_or("x").parse::<usize>() else {
                        break;
                    };
                    let mut buf = vec![0; k];
                    if std::io::Read::read_exact(&mut r, &mut buf).is_err() {
                        break;
                    }
                    n3.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (port, n)
}

fn wait_for(n: &AtomicU64, target: u64, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while n.load(Ordering::Relaxed) < target {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

fn syslog_sink(name: &str, port: u16) -> SinkConfig {
    SinkConfig {
        name: name.into(),
        kind: SinkKind::Syslog(SyslogSink {
            address: format!("127.0.0.1:{port}"),
            transport: Transport::Tcp,
            framing: Framing::OctetCounting,
            app_name: "kevlar".into(),
            hostname: Some("bench".into()),
            facility: 10,
            ca_file: None,
        }),
        dedup: None,
        digest: None,
        rate_limit: None,
    }
}

/// A store writer and the alert pipeline with one sink, as `kevlar` wires them.
fn pipeline(sink: SinkConfig) -> (tempfile::TempDir, Bus, StoreWriter, Alerts) {
    let data = tempfile::tempdir().unwrap();
    let mut bb = BusBuilder::new();
    let store_rx = bb.subscribe("store", 65_536, true);
    let bus = bb.build();
    let wake = Wake::new();
    let store = StoreWriter::start_with_wake(
        data.path(),
        Retention { max_age: Duration::from_secs(86400), max_size_bytes: u64::MAX },
        store_rx,
        Some(wake.clone()),
    )
    .unwrap();
    let cfg = AlertsConfig { sinks: vec![sink], ..Default::default() };
    let alerts = Alerts::start(&cfg, data.path(), store.path(), wake, bus.clone()).unwrap();
    (data, bus, store, alerts)
}

/// Publishes every event (and one more, acknowledged); the bus drops when the store's queue is
/// full, so every 8192nd waits for the store.
fn publish_all(rt: &tokio::runtime::Runtime, bus: &Bus, events: &[Arc<SecurityEvent>], mut each: impl FnMut(usize)) {
    for (i, e) in events.iter().enumerate() {
        if i % 8192 == 8191 {
            rt.block_on(bus.publish_acked((**e).clone())).unwrap();
        } else {
            bus.publish((**e).clone());
        }
        each(i);
    }
    rt.block_on(bus.publish_acked(event(events.len()))).unwrap();
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let events: Vec<Arc<SecurityEvent>> = (0..n).map(|i| Arc::new(event(i))).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    store_against_sqlite(&events);
    syslog_against_direct(&events, &rt);
    sink_down(&events, &rt);
}

/// 1. Into the store, against plain SQLite inserts.
fn store_against_sqlite(events: &[Arc<SecurityEvent>]) {
    let n = events.len();
    let dir = tempfile::tempdir().unwrap();
    let raw = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    raw.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE e (id INTEGER PRIMARY KEY, doc TEXT)",
    )
    .unwrap();
    let t = Instant::now();
    for chunk in events.chunks(1024) {
        let tx = raw.unchecked_transaction().unwrap();
        for e in chunk {
            tx.execute("INSERT INTO e (doc) VALUES (?1)", [e.to_json().to_string()]).unwrap();
        }
        tx.commit().unwrap();
    }
    let raw_rate = n as f64 / t.elapsed().as_secs_f64();

    let store_dir = tempfile::tempdir().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Envelope>(65_536);
    let wake = Wake::new();
    let store = StoreWriter::start_with_wake(
        store_dir.path(),
        Retention { max_age: Duration::from_secs(86400), max_size_bytes: u64::MAX },
        rx,
        Some(wake.clone()),
    )
    .unwrap();
    let t = Instant::now();
    for e in events {
        tx.blocking_send(Envelope { event: e.clone(), ack: None }).unwrap();
    }
    drop(tx);
    store.join();
    let store_rate = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "store:   {:>9.0} events/s   (plain SQLite inserts of the same documents: {:>9.0}/s; ratio {:.2})",
        store_rate,
        raw_rate,
        store_rate / raw_rate
    );
}

/// 2. Store → outbox → syslog TCP, against writing the framed messages straight to the receiver.
fn syslog_against_direct(events: &[Arc<SecurityEvent>], rt: &tokio::runtime::Runtime) {
    let n = events.len();
    let (port, received) = receiver();
    let header = encoder::Header { facility: 10, hostname: "bench", app_name: "kevlar", procid: 1 };
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut buf = Vec::with_capacity(1 << 20);
    for chunk in events.chunks(500) {
        buf.clear();
        for e in chunk {
            encoder::frame(&encoder::encode(e, &header), Framing::OctetCounting, &mut buf);
        }
        s.write_all(&buf).unwrap();
    }
    assert!(wait_for(&received, n as u64, Duration::from_secs(120)));
    let direct_rate = n as f64 / t.elapsed().as_secs_f64();
    drop(s);
    received.store(0, Ordering::SeqCst);

    let (_data, bus, store, alerts) = pipeline(syslog_sink("bench", port));
    let t = Instant::now();
    publish_all(rt, &bus, events, |_| {});
    let dropped: u64 = bus.stats().dropped.iter().map(|d| d.1).sum();
    let target = (n as u64 + 1).saturating_sub(dropped);
    let ok = wait_for(&received, target, Duration::from_secs(300));
    let pipe_rate = received.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    println!(
        "syslog:  {:>9.0} events/s   through store → outbox → TCP (direct writes of the same messages: {:>9.0}/s; ratio {:.2}){}{}",
        pipe_rate,
        direct_rate,
        pipe_rate / direct_rate,
        if dropped > 0 { format!("; {dropped} dropped by the bus") } else { String::new() },
        if ok { "" } else { "; TIMED OUT" }
    );
    alerts.close(Duration::from_secs(2));
    drop(bus);
    store.join();
}

/// 3. The sink down: the backlog goes to disk, not memory.
fn sink_down(events: &[Arc<SecurityEvent>], rt: &tokio::runtime::Runtime) {
    let n = events.len();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (data, bus, store, alerts) = pipeline(syslog_sink("down", closed));
    let mut samples = Vec::new();
    let before = rss_kb();
    publish_all(rt, &bus, events, |i| {
        if i % (n / 4).max(1) == 0 {
            samples.push(rss_kb());
        }
    });
    let pending = || -> u64 { alerts.status().sinks.first().map_or(0, |s| s.pending) };
    let end = Instant::now() + Duration::from_secs(120);
    while pending() < n as u64 * 9 / 10 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = rss_kb();
    let outbox = std::fs::metadata(data.path().join("outbox.db")).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(data.path().join("outbox.db-wal")).map(|m| m.len()).unwrap_or(0);
    println!(
        "down:    {} deliveries waiting on disk ({:.0} MB outbox); RSS {:.0} MB before → {:.0} MB after (samples: {}); {}",
        pending(),
        outbox as f64 / 1e6,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        samples.iter().map(|s| format!("{:.0}", *s as f64 / 1024.0)).collect::<Vec<_>>().join(" "),
        alerts.status().sinks.first().map_or("-".to_owned(), |s| s.state.clone())
    );
    alerts.close(Duration::from_millis(100));
    drop(bus);
    store.join();
}
