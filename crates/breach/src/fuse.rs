//! A binary fuse filter (Graf & Lemire, "Binary Fuse Filters: Fast and Smaller Than Xor Filters",
//! 2022), 3-wise, with fingerprints of any width from 1 to 32 bits packed in a bit array.
//!
//! Membership of a 64-bit key: the XOR of the fingerprints at three positions (one in each of three
//! consecutive segments) equals the key's fingerprint. False positives: 2^-bits. Space: about
//! 1.125 × bits per key for large sets.

/// Mixes a key with the seed (murmur3's finaliser).
fn mix(key: u64, seed: u64) -> u64 {
    let mut h = key.wrapping_add(seed);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn mulhi(a: u64, b: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) >> 64) as u64
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fuse {
    pub seed: u64,
    pub bits: u32,
    pub segment_length: u32,
    pub segment_count_length: u32,
    pub array_length: u32,
    /// Packed fingerprints, plus one padding word.
    pub words: Vec<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("the filter could not be built (duplicate keys?)")]
    Failed,
}

impl Fuse {
    fn positions(&self, h: u64) -> [u32; 3] {
        let hi = mulhi(h, u64::from(self.segment_count_length));
        let mask = u64::from(self.segment_length - 1);
        let h0 = hi;
        let h1 = (h0 + u64::from(self.segment_length)) ^ ((h >> 18) & mask);
        let h2 = (h0 + 2 * u64::from(self.segment_length)) ^ (h & mask);
        [h0 as u32, h1 as u32, h2 as u32]
    }

    fn fingerprint(&self, h: u64) -> u32 {
        ((h ^ (h >> 32)) as u32) & self.mask()
    }

    fn mask(&self) -> u32 {
        if self.bits >= 32 {
            u32::MAX
        } else {
            (1u32 << self.bits) - 1
        }
    }

    fn get(&self, i: u32) -> u32 {
        let pos = u64::from(i) * u64::from(self.bits);
        let (w, off) = ((pos / 64) as usize, (pos % 64) as u32);
        let lo = self.words[w] >> off;
        let v = if off + self.bits > 64 { lo | (self.words[w + 1] << (64 - off)) } else { lo };
        (v as u32) & self.mask()
    }

    fn set(&mut self, i: u32, v: u32) {
        let pos = u64::from(i) * u64::from(self.bits);
        let (w, off) = ((pos / 64) as usize, (pos % 64) as u32);
        let m = u64::from(self.mask());
        self.words[w] = (self.words[w] & !(m << off)) | (u64::from(v) << off);
        if off + self.bits > 64 {
            let spill = 64 - off;
            self.words[w + 1] = (self.words[w + 1] & !(m >> spill)) | (u64::from(v) >> spill);
        }
    }

    pub fn contains(&self, key: u64) -> bool {
        if self.array_length == 0 {
            return false;
        }
        let h = mix(key, self.seed);
        let [a, b, c] = self.positions(h);
        self.get(a) ^ self.get(b) ^ self.get(c) == self.fingerprint(h)
    }

    /// Builds a filter of `keys` (distinct) with `bits`-bit fingerprints.
    pub fn build(keys: &[u64], bits: u32, mut seed: u64) -> Result<Fuse, BuildError> {
        let size = keys.len() as u32;
        let segment_length: u32 = if size == 0 {
            4
        } else {
            (1u32 << ((f64::from(size).ln() / 3.33f64.ln() + 2.25).floor() as u32).min(18)).max(4)
        };
        let size_factor =
            if size <= 1 { 0.0 } else { (0.875 + 0.25 * 1_000_000f64.ln() / f64::from(size).ln()).max(1.125) };
        let capacity = if size <= 1 { 0 } else { (f64::from(size) * size_factor).round() as u32 };
        let init_segment_count = capacity.div_ceil(segment_length);
        let init_segment_count = init_segment_count.saturating_sub(2);
        let mut array_length = (init_segment_count + 2) * segment_length;
        let mut segment_count = array_length.div_ceil(segment_length);
        segment_count = if segment_count <= 2 { 1 } else { segment_count - 2 };
        array_length = (segment_count + 2) * segment_length;
        let segment_count_length = segment_count * segment_length;
        let nwords = (u64::from(array_length) * u64::from(bits)).div_ceil(64) as usize + 1;
        let mut f = Fuse { seed, bits, segment_length, segment_count_length, array_length, words: vec![0; nwords] };
        if size == 0 {
            return Ok(f);
        }
        let n = array_length as usize;
        let mut t2count = vec![0u8; n];
        let mut t2hash = vec![0u64; n];
        let mut alone: Vec<u32> = Vec::with_capacity(n);
        let mut order: Vec<u64> = Vec::with_capacity(keys.len());
        let mut order_h: Vec<u8> = Vec::with_capacity(keys.len());
        for _attempt in 0..64 {
            f.seed = seed;
            t2count.iter_mut().for_each(|c| *c = 0);
            t2hash.iter_mut().for_each(|c| *c = 0);
            let mut overflow = false;
            for &k in keys {
                let h = mix(k, seed);
                let p = f.positions(h);
                for (slot, &i) in p.iter().enumerate() {
                    let c = &mut t2count[i as usize];
                    if *c >= 252 {
                        overflow = true;
                    }
                    *c = c.wrapping_add(4) ^ slot as u8;
                    t2hash[i as usize] ^= h;
                }
            }
            alone.clear();
            order.clear();
            order_h.clear();
            if !overflow {
                for (i, c) in t2count.iter().enumerate() {
                    if c >> 2 == 1 {
                        alone.push(i as u32);
                    }
                }
                while let Some(i) = alone.pop() {
                    let i = i as usize;
                    if t2count[i] >> 2 != 1 {
                        continue;
                    }
                    let h = t2hash[i];
                    let found = t2count[i] & 3;
                    order.push(h);
                    order_h.push(found);
                    let p = f.positions(h);
                    for step in 1..3u8 {
                        let slot = (found + step) % 3;
                        let other = p[slot as usize] as usize;
                        if t2count[other] >> 2 == 2 {
                            alone.push(other as u32);
                        }
                        t2count[other] = t2count[other].wrapping_sub(4) ^ slot;
                        t2hash[other] ^= h;
                    }
                }
                if order.len() == keys.len() {
                    f.words.iter_mut().for_each(|w| *w = 0);
                    for (h, found) in order.iter().zip(order_h.iter()).rev() {
                        let p = f.positions(*h);
                        let (a, b, c) =
                            (p[*found as usize], p[((*found + 1) % 3) as usize], p[((*found + 2) % 3) as usize]);
                        let v = f.fingerprint(*h) ^ f.get(b) ^ f.get(c);
                        f.set(a, v);
                    }
                    return Ok(f);
                }
            }
            seed = mix(seed, 0x9e37_79b9_7f4a_7c15);
        }
        Err(BuildError::Failed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_and_strangers_rarely() {
        for (n, bits) in [(0usize, 17u32), (1, 17), (2, 8), (1000, 17), (200_000, 17), (50_000, 8)] {
            let mut keys: Vec<u64> = (0..n).map(|_| fastrand::u64(..)).collect();
            keys.sort_unstable();
            keys.dedup();
            let f = Fuse::build(&keys, bits, 42).unwrap();
            assert!(keys.iter().all(|k| f.contains(*k)), "n={n} bits={bits}");
            let trials = 200_000;
            let fp = (0..trials).filter(|_| f.contains(fastrand::u64(..))).count();
            let expect = trials as f64 / f64::from(1u32 << bits);
            assert!(
                (fp as f64) < expect * 2.0 + 10.0,
                "n={n} bits={bits}: {fp} false positives, expected about {expect}"
            );
            if n >= 50_000 {
                let bytes = f.words.len() * 8;
                let per_key = bytes as f64 / n as f64;
                assert!(per_key < f64::from(bits) / 8.0 * 1.3, "{per_key} bytes per key");
            }
        }
    }

    #[test]
    fn duplicates_are_an_error_not_a_hang() {
        assert_eq!(Fuse::build(&[7, 7, 9], 17, 1).unwrap_err(), BuildError::Failed);
    }
}
