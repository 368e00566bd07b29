//! Breached-password index benchmark (run by `bench/breach.sh`; release build):
//!
//!   breach_bench build N DIR   writes N random SHA-1 hashes in the Pwned Passwords format to
//!                              DIR/pwned.txt, imports it (parse + build, timed) into
//!                              DIR/breach.idx; prints hashes/s and bytes per hash, then the
//!                              single-threaded lookup rate and the false-positive rate measured
//!   breach_bench serve DIR     loads DIR/breach.idx as Kevlar does and prints the RSS
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Instant;

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()))
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("build") => {
            let n: u64 = args[2].parse().unwrap();
            let dir = std::path::PathBuf::from(&args[3]);
            let file = dir.join("pwned.txt");
            let t = Instant::now();
            {
                let mut w = std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(&file).unwrap());
                // Evenly spread, increasing first 8 bytes; random rest: sorted like the real file.
                let step = u64::MAX / n;
                let mut line = Vec::with_capacity(64);
                for i in 0..n {
                    let head = i * step + fastrand::u64(..step.max(1));
                    line.clear();
                    for b in head
                        .to_be_bytes()
                        .iter()
                        .chain(fastrand::u64(..).to_be_bytes().iter())
                        .chain(fastrand::u32(..).to_be_bytes().iter())
                    {
                        line.extend_from_slice(format!("{b:02X}").as_bytes());
                    }
                    // Counts skewed as in the real file: most hashes seen a few times, about 1 in 50 at least 100 times.
                    let count =
                        if fastrand::u8(..50) == 0 { 100 + fastrand::u64(..100_000) } else { 1 + fastrand::u64(..20) };
                    line.extend_from_slice(format!(":{count}\r\n").as_bytes());
                    w.write_all(&line).unwrap();
                }
                w.flush().unwrap();
            }
            let size = std::fs::metadata(&file).unwrap().len();
            println!("generated {n} hashes ({:.1} GB) in {:.1} s", size as f64 / 1e9, t.elapsed().as_secs_f64());
            let t = Instant::now();
            let r = std::io::BufReader::with_capacity(1 << 22, std::fs::File::open(&file).unwrap());
            let idx = kevlar_breach::import_hibp(r).unwrap();
            let secs = t.elapsed().as_secs_f64();
            idx.save(&dir.join(kevlar_breach::INDEX_FILE)).unwrap();
            println!(
                "import: {:.2} M hashes/s (parse + build, {secs:.1} s); {:.3} bytes per hash ({:.0} MB); build RSS peak {:.0} MB",
                n as f64 / secs / 1e6,
                idx.bytes() as f64 / n as f64,
                idx.bytes() as f64 / 1e6,
                rss_mb()
            );
            std::fs::remove_file(&file).unwrap();
            // Lookups of random hashes (strangers): the rate, and how many are false positives.
            let m = 10_000_000u64;
            let probes: Vec<[u8; 20]> = (0..m)
                .map(|_| {
                    let mut h = [0u8; 20];
                    h[..8].copy_from_slice(&fastrand::u64(..).to_be_bytes());
                    h[8..16].copy_from_slice(&fastrand::u64(..).to_be_bytes());
                    h
                })
                .collect();
            let t = Instant::now();
            let hits = probes.iter().filter(|h| idx.lookup(h).is_some()).count();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "lookup: {:.1} M lookups/s on one thread; false positives {hits} of {m} ({:.1e}; stated 2^-17 = 7.6e-6)",
                m as f64 / secs / 1e6,
                hits as f64 / m as f64
            );
            let t = Instant::now();
            let mut n_pw = 0;
            for i in 0..1_000_000u32 {
                n_pw += usize::from(idx.check(format!("password{i}").as_bytes()).is_some());
            }
            println!(
                "password check (SHA-1 + lookup): {:.2} M/s on one thread ({n_pw} hits)",
                1.0 / t.elapsed().as_secs_f64()
            );
        }
        Some("serve") => {
            let dir = std::path::PathBuf::from(&args[2]);
            let before = rss_mb();
            let t = Instant::now();
            let idx = kevlar_breach::Index::load(&dir.join(kevlar_breach::INDEX_FILE)).unwrap();
            println!(
                "serve: {} hashes loaded in {:.1} s; RSS {:.0} MB → {:.0} MB",
                idx.hashes,
                t.elapsed().as_secs_f64(),
                before,
                rss_mb()
            );
        }
        _ => eprintln!("usage: breach_bench build N DIR | serve DIR"),
    }
}
