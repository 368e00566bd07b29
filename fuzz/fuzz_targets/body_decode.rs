//! The decompression path on its own: Kevlar's decoder must give back exactly what the app's
//! inflater would (a gzip, zlib or raw deflate stream of the fuzzer's bytes, fed in the fuzzer's
//! chunk sizes, round-trips), never panic on a broken or hostile stream, keep its output bounded
//! (`MAX_DECODED`), and call a bomb a bomb in bounded time.
#![no_main]
use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

use kevlar_detect::body::decode::{Decoder, Problem, MAX_DECODED};
use libfuzzer_sys::fuzz_target;

/// 16 MiB of zeros, gzipped once per process (past 200:1 beyond the first MiB: a bomb).
fn bomb() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..16 {
            e.write_all(&zeros).unwrap();
        }
        e.finish().unwrap()
    })
}

fn run(encoding: &str, stream: &[u8], step: usize) -> (Result<(), Problem>, Vec<u8>) {
    let mut d = Decoder::new(encoding).unwrap().unwrap();
    let mut out = Vec::new();
    let mut keep = |b: &[u8]| {
        if out.len() < 1 << 20 {
            out.extend_from_slice(b);
        }
    };
    let mut total = 0u64;
    for c in stream.chunks(step.max(1)) {
        let r = d.feed(c, &mut |b| {
            total += b.len() as u64;
            keep(b)
        });
        if r.is_err() {
            assert!(total <= MAX_DECODED);
            return (r, out);
        }
    }
    let r = d.finish(&mut |b| {
        total += b.len() as u64;
        keep(b)
    });
    assert!(total <= MAX_DECODED, "{total} bytes decoded");
    (r, out)
}

fuzz_target!(|data: &[u8]| {
    let [sel, step, lvl, rest @ ..] = data else { return };
    let step = usize::from(*step) * 7 + 1;
    let level = flate2::Compression::new(u32::from(*lvl % 10));
    match sel % 8 {
        // Round trips: what the app's inflater reads, Kevlar reads.
        0 | 1 | 2 => {
            let (enc, stream) = match sel % 3 {
                0 => {
                    let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
                    e.write_all(rest).unwrap();
                    ("gzip", e.finish().unwrap())
                }
                1 => {
                    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
                    e.write_all(rest).unwrap();
                    ("deflate", e.finish().unwrap())
                }
                _ => {
                    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
                    e.write_all(rest).unwrap();
                    ("deflate", e.finish().unwrap())
                }
            };
            let (r, out) = run(enc, &stream, step);
            assert!(r.is_ok(), "{enc}: {r:?}");
            assert_eq!(out, rest, "{enc}: the decoded body differs from what was compressed");
        }
        // Stacked: gzip inside deflate.
        3 => {
            let mut g = flate2::write::GzEncoder::new(Vec::new(), level);
            g.write_all(rest).unwrap();
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), level);
            z.write_all(&g.finish().unwrap()).unwrap();
            let (r, out) = run("gzip, deflate", &z.finish().unwrap(), step);
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(out, rest);
        }
        // A bomb, in the fuzzer's chunk size: stopped, in bounded time.
        4 if rest.first() == Some(&0) => {
            let bomb = bomb();
            let started = Instant::now();
            let (r, _) = run("gzip", bomb, step);
            assert_eq!(r, Err(Problem::Bomb));
            assert!(started.elapsed().as_secs() < 5, "a bomb took {:?}", started.elapsed());
        }
        // Hostile streams of every encoding: an answer, never a panic.
        _ => {
            let enc = ["gzip", "deflate", "br", "br, gzip", "x-gzip"][usize::from(*lvl) % 5];
            let started = Instant::now();
            let _ = run(enc, rest, step);
            let kib = rest.len() as u128 / 1024 + 1;
            assert!(started.elapsed().as_millis() <= 100 * kib + 500);
        }
    }
});
