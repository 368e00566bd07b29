//! The breached-password index. Have I Been Pwned's Pwned Passwords download (`SHA1:COUNT` lines
//! in hash order) — or a plain list of common passwords — becomes 256 binary fuse filters sharded
//! by the first byte of the SHA-1, with 17-bit fingerprints: a false positive for 1 password in
//! 131,072 (7.6e-6), about 2.4 bytes per hash. A second, small filter holds the hashes seen at least
//! [`OFTEN`] times, for the count bucket told to the app.
//!
//! The import streams: the file is read once, one shard's keys in memory at a time. A password is
//! hashed (SHA-1, as the download is), looked up, and forgotten.
#![forbid(unsafe_code)]

pub mod fuse;
pub mod range;

use std::io::{BufRead, Read, Write};
use std::path::Path;

use fuse::Fuse;

/// Fingerprint bits of the membership filters: false positives 2^-17 ≈ 7.6e-6 (≤ 1e-5).
pub const BITS: u32 = 17;
/// A hash seen at least this many times is in the "often" bucket.
pub const OFTEN: u64 = 100;
/// In a plain list (ordered by popularity), the first this many are "often".
pub const PLAIN_OFTEN_RANK: usize = 10_000;
const MAGIC: &[u8; 8] = b"KVLBRCH1";
pub const INDEX_FILE: &str = "breach.idx";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BreachError {
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("line {line}: the hashes are not in order (the Pwned Passwords download is sorted by hash; use it as downloaded)")]
    NotSorted { line: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not a Kevlar breach index (or from another version): {0}")]
    Format(String),
    #[error("shard {0:02X}: {1}")]
    Build(u8, fuse::BuildError),
}

/// How often a breached password was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Seen (at least once).
    Seen,
    /// Seen at least [`OFTEN`] times (or among the most common of a plain list).
    Often,
}

impl Bucket {
    /// The value of `Kevlar-Breached-Count`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Seen => "1+",
            Bucket::Often => "100+",
        }
    }
}

pub fn sha1(password: &[u8]) -> [u8; 20] {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

fn key(h: &[u8; 20]) -> u64 {
    u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    shards: Vec<Fuse>,
    often: Fuse,
    pub hashes: u64,
}

/// Figures of an import.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub hashes: u64,
    pub often: u64,
    pub bytes: u64,
}

/// Builds the index from hashes given in order. Shards are built on a second thread while the
/// caller goes on reading the next one.
pub struct Builder {
    shard: u8,
    keys: Vec<u64>,
    often: Vec<u64>,
    closed: usize,
    to_worker: Option<std::sync::mpsc::Sender<(u8, Vec<u64>)>>,
    worker: Option<std::thread::JoinHandle<Result<Vec<Fuse>, BreachError>>>,
    last: Option<[u8; 20]>,
    hashes: u64,
}

const SEED: u64 = 0x243f_6a88_85a3_08d3;

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    pub fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<(u8, Vec<u64>)>();
        let worker = std::thread::Builder::new()
            .name("kevlar-breach-build".into())
            .spawn(move || {
                let mut out = Vec::with_capacity(256);
                for (s, keys) in rx {
                    out.push(Fuse::build(&keys, BITS, SEED ^ u64::from(s)).map_err(|e| BreachError::Build(s, e))?);
                }
                Ok(out)
            })
            .ok();
        Builder {
            shard: 0,
            keys: Vec::new(),
            often: Vec::new(),
            closed: 0,
            to_worker: worker.as_ref().map(|_| tx),
            worker,
            last: None,
            hashes: 0,
        }
    }

    fn close_shards_until(&mut self, upto: usize) -> Result<(), BreachError> {
        while self.closed < upto {
            let s = self.closed as u8;
            let keys = if s == self.shard { std::mem::take(&mut self.keys) } else { Vec::new() };
            match &self.to_worker {
                Some(tx) => {
                    if tx.send((s, keys)).is_err() {
                        // The worker stopped on an error; `finish` reports it.
                        self.to_worker = None;
                    }
                }
                None => return Err(BreachError::Io(std::io::Error::other("the index builder stopped"))),
            }
            self.closed += 1;
        }
        Ok(())
    }

    /// Adds one hash (in ascending order; a repeat of the previous one is ignored).
    pub fn add(&mut self, h: [u8; 20], count: u64, line: u64) -> Result<(), BreachError> {
        if let Some(last) = self.last {
            if h < last {
                return Err(BreachError::NotSorted { line });
            }
            if key(&h) == key(&last) {
                return Ok(());
            }
        }
        self.last = Some(h);
        if h[0] != self.shard {
            self.close_shards_until(usize::from(h[0]))?;
            self.shard = h[0];
        }
        self.keys.push(key(&h));
        if count >= OFTEN {
            self.often.push(key(&h));
        }
        self.hashes += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<Index, BreachError> {
        let closing = self.close_shards_until(256);
        self.to_worker = None;
        let shards = match self.worker.take().map(|w| w.join()) {
            Some(Ok(r)) => r?,
            _ => return Err(BreachError::Io(std::io::Error::other("the index builder stopped"))),
        };
        closing?;
        self.often.sort_unstable();
        self.often.dedup();
        let often = Fuse::build(&self.often, 8, SEED).map_err(|e| BreachError::Build(0xFF, e))?;
        Ok(Index { shards, often, hashes: self.hashes })
    }
}

/// Hex digit values; 0xFF for anything else.
const HEX: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn hex20(s: &[u8]) -> Option<[u8; 20]> {
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    let mut bad = 0u8;
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let (h, l) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        bad |= (h | l) & 0xF0;
        out[i] = (h << 4) | (l & 0x0F);
    }
    (bad == 0).then_some(out)
}

/// Reads the Pwned Passwords download: `SHA1:COUNT` per line, in hash order (CRLF accepted).
pub fn import_hibp(r: impl BufRead) -> Result<Index, BreachError> {
    let mut b = Builder::new();
    let mut line_no = 0u64;
    let mut r = r;
    let mut buf = Vec::with_capacity(64);
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (hash, count) = match line.iter().position(|c| *c == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b"1"[..]),
        };
        let h = hex20(hash).ok_or_else(|| BreachError::Line {
            line: line_no,
            message: "expected 40 hexadecimal digits (a SHA-1), then `:COUNT`".into(),
        })?;
        let count = std::str::from_utf8(count).ok().and_then(|c| c.trim().parse::<u64>().ok()).ok_or_else(|| {
            BreachError::Line { line: line_no, message: "the count after `:` is not a number".into() }
        })?;
        b.add(h, count, line_no)?;
    }
    b.finish()
}

/// Reads a plain list of passwords, one per line, most common first (the first
/// [`PLAIN_OFTEN_RANK`] go in the "often" bucket).
pub fn import_plain(r: impl BufRead) -> Result<Index, BreachError> {
    let mut hashes: Vec<([u8; 20], u64)> = Vec::new();
    for (i, line) in r.split(b'\n').enumerate() {
        let line = line?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.is_empty() {
            continue;
        }
        hashes.push((sha1(line), if i < PLAIN_OFTEN_RANK { OFTEN } else { 1 }));
    }
    hashes.sort_unstable();
    let mut b = Builder::new();
    for (i, (h, c)) in hashes.into_iter().enumerate() {
        b.add(h, c, i as u64 + 1)?;
    }
    b.finish()
}

impl Index {
    pub fn lookup(&self, h: &[u8; 20]) -> Option<Bucket> {
        let k = key(h);
        if !self.shards.get(usize::from(h[0]))?.contains(k) {
            return None;
        }
        Some(if self.often.contains(k) { Bucket::Often } else { Bucket::Seen })
    }

    pub fn check(&self, password: &[u8]) -> Option<Bucket> {
        self.lookup(&sha1(password))
    }

    pub fn bytes(&self) -> u64 {
        self.shards.iter().chain(std::iter::once(&self.often)).map(|f| f.words.len() as u64 * 8 + 32).sum::<u64>() + 32
    }

    pub fn save(&self, path: &Path) -> Result<(), BreachError> {
        let tmp = path.with_extension("idx.tmp");
        {
            let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            w.write_all(MAGIC)?;
            w.write_all(&self.hashes.to_le_bytes())?;
            w.write_all(&(self.shards.len() as u32 + 1).to_le_bytes())?;
            for f in self.shards.iter().chain(std::iter::once(&self.often)) {
                w.write_all(&f.seed.to_le_bytes())?;
                for v in [f.bits, f.segment_length, f.segment_count_length, f.array_length] {
                    w.write_all(&v.to_le_bytes())?;
                }
                w.write_all(&(f.words.len() as u64).to_le_bytes())?;
                for word in &f.words {
                    w.write_all(&word.to_le_bytes())?;
                }
            }
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Index, BreachError> {
        let r = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        Self::read(r).map_err(|e| match e {
            BreachError::Format(m) => BreachError::Format(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    /// Reads an index written by [`Index::save`]; anything else is a `Format` error.
    pub fn read(mut r: impl Read) -> Result<Index, BreachError> {
        let bad = |m: &str| BreachError::Format(m.to_owned());
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(|_| bad("too short"))?;
        if &magic != MAGIC {
            return Err(bad("wrong magic"));
        }
        let mut u64b = [0u8; 8];
        let mut u32b = [0u8; 4];
        let mut rd64 = |r: &mut dyn Read| -> Result<u64, BreachError> {
            r.read_exact(&mut u64b).map_err(|_| bad("truncated"))?;
            Ok(u64::from_le_bytes(u64b))
        };
        let hashes = rd64(&mut r)?;
        r.read_exact(&mut u32b).map_err(|_| bad("truncated"))?;
        let n = u32::from_le_bytes(u32b);
        if n != 257 {
            return Err(bad("unexpected shard count"));
        }
        let mut filters = Vec::with_capacity(257);
        for _ in 0..n {
            let seed = rd64(&mut r)?;
            let mut f4 = [0u32; 4];
            for v in &mut f4 {
                r.read_exact(&mut u32b).map_err(|_| bad("truncated"))?;
                *v = u32::from_le_bytes(u32b);
            }
            let [bits, segment_length, segment_count_length, array_length] = f4;
            let nwords = rd64(&mut r)?;
            let need = (u64::from(array_length) * u64::from(bits)).div_ceil(64) + 1;
            let sane = (1..=32).contains(&bits)
                && segment_length.is_power_of_two()
                && u64::from(segment_count_length) + 2 * u64::from(segment_length)
                    <= u64::from(array_length).max(u64::from(segment_length) * 3)
                && nwords == need
                && nwords < (1 << 34);
            if !sane {
                return Err(bad("corrupt filter header"));
            }
            let mut bytes = Vec::new();
            (&mut r).take(nwords * 8).read_to_end(&mut bytes)?;
            if bytes.len() as u64 != nwords * 8 {
                return Err(bad("truncated"));
            }
            let words = bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            filters.push(Fuse { seed, bits, segment_length, segment_count_length, array_length, words });
        }
        let often = filters.pop().ok_or_else(|| bad("no filters"))?;
        Ok(Index { shards: filters, often, hashes })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(h: &[u8; 20]) -> String {
        h.iter().map(|b| format!("{b:02X}")).collect()
    }

    #[test]
    fn hibp_lines_round_trip_through_a_file() {
        let mut rows: Vec<([u8; 20], u64)> = (0..5000).map(|i| (sha1(format!("pw{i}").as_bytes()), i % 300)).collect();
        rows.push((sha1(b"password"), 9_000_000));
        rows.sort();
        let text: String = rows.iter().map(|(h, c)| format!("{}:{c}\r\n", hex(h))).collect();
        let idx = import_hibp(text.as_bytes()).unwrap();
        assert_eq!(idx.hashes, 5001);
        assert_eq!(idx.check(b"password"), Some(Bucket::Often));
        assert_eq!(idx.check(b"pw1"), Some(Bucket::Seen));
        assert_eq!(idx.check(b"pw299"), Some(Bucket::Often));
        assert_eq!(idx.check(b"correct horse battery staple 42"), None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(INDEX_FILE);
        idx.save(&p).unwrap();
        assert_eq!(Index::load(&p).unwrap(), idx);
        std::fs::write(&p, b"KVLBRCH1garbage").unwrap();
        assert!(matches!(Index::load(&p), Err(BreachError::Format(_))));
    }

    #[test]
    fn bad_input_is_named_by_line() {
        let e = import_hibp("0000000000000000000000000000000000000001:1\nnot a hash:1\n".as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 2: expected 40 hexadecimal digits"), "{e}");
        let e = import_hibp(
            "0000000000000000000000000000000000000002:1\n0000000000000000000000000000000000000001:1\n".as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(e, BreachError::NotSorted { line: 2 }));
        let e = import_hibp("0000000000000000000000000000000000000002:x\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("count"));
    }

    #[test]
    fn plain_lists_rank_the_first_as_often() {
        let list =
            "123456\npassword\nqwerty\n".to_owned() + &(0..20_000).map(|i| format!("rare{i}\n")).collect::<String>();
        let idx = import_plain(list.as_bytes()).unwrap();
        assert_eq!(idx.check(b"123456"), Some(Bucket::Often));
        assert_eq!(idx.check(b"rare19999"), Some(Bucket::Seen));
        assert_eq!(idx.check(b"not in the list at all"), None);
    }
}
