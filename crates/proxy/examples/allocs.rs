//! Heap allocations per proxied request (`cargo run --release -p kevlar-proxy --example allocs`):
//! a counting global allocator around the system one (stats_alloc, process-wide), the guard in this process (one worker, default headers, no
//! detection: the proxy core alone), an upstream and a keep-alive client written by hand on raw
//! sockets with buffers allocated once, so that what is counted is Kevlar's. Prints allocations
//! and bytes per request for a GET with a 1 KB answer.
#![allow(clippy::unwrap_used)]

use std::alloc::System;
use std::io::{Read, Write};
use std::sync::Arc;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Reads one HTTP/1.1 message head (and a `Content-Length` body) into `buf`; returns its length,
/// or `None` when the connection closed.
fn read_message(s: &mut std::net::TcpStream, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    loop {
        let got = s.read(&mut buf[n..]).ok().filter(|g| *g > 0)?;
        n += got;
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = &buf[..end];
            let len = head
                .split(|b| *b == b'\n')
                .find_map(|l| {
                    let l = std::str::from_utf8(l).ok()?;
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while n < end + 4 + len {
                n += s.read(&mut buf[n..]).ok().filter(|g| *g > 0)?;
            }
            return Some(n);
        }
    }
}

fn upstream() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1024\r\n\r\n".to_vec();
    answer.extend(std::iter::repeat_n(b'k', 1024));
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let mut s = conn.unwrap();
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_message(&mut s, &mut buf)))
                        .is_err()
                    {
                        return;
                    }
                    if s.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let up = upstream();
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:{up}\"\nworkers = 1\n[access_log]\ntarget = \"off\"\n"
    );
    let config = kevlar_config::parse_str(&toml, "allocs.toml").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let addr = rt.block_on(async {
        let bus = kevlar_engine::BusBuilder::new().build();
        let upstream =
            Arc::new(kevlar_proxy::Upstream::new(config.proxy.upstream.as_ref().and_then(|u| u.authority().cloned())));
        let stats = Arc::new(kevlar_proxy::Stats::default());
        let guard = kevlar_proxy::Guard::new(&config, upstream, bus, None, stats, None);
        let listeners = guard.bind(&config).await.unwrap();
        let addr = listeners.http_addr().unwrap();
        tokio::spawn(guard.serve(listeners, std::future::pending(), std::time::Duration::from_secs(1)));
        addr
    });
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let request = format!(
        "GET /products/42?color=blue&size=m HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: allocs/1.0\r\nAccept: text/html\r\nAccept-Language: en\r\nCookie: theme=dark\r\n\r\n",
        addr.port()
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut round = |count: u64| {
        for _ in 0..count {
            s.write_all(request.as_bytes()).unwrap();
            let got = read_message(&mut s, &mut buf).expect("Kevlar closed the connection");
            assert!(buf[..got].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..got.min(200)]));
        }
    };
    // Warm: the pool's connection, the worker's caches.
    round(2_000);
    let region = Region::new(GLOBAL);
    round(n);
    let st = region.change();
    println!(
        "proxied GET (1 KB answer, default headers, no detection): {:.1} allocations ({:.1} reallocations) and {:.0} bytes allocated per request ({n} requests)",
        st.allocations as f64 / n as f64,
        st.reallocations as f64 / n as f64,
        st.bytes_allocated as f64 / n as f64
    );
    drop(rt);
}
