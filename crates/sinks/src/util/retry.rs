//! Retry delays: exponential from `min` to `max`, with "full jitter" on the upper half so that many
//! Kevlars (or many sinks) recovering together do not retry in step.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before attempt `failures + 1`, after `failures` (≥ 1) failed attempts in a row.
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let base = self.min.saturating_mul(1u32 << exp.min(20)).min(self.max);
        let half = base / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_is_capped_with_jitter() {
        let b = Backoff { min: Duration::from_secs(1), max: Duration::from_secs(60) };
        for _ in 0..100 {
            let d1 = b.delay(1);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1));
            let d4 = b.delay(4);
            assert!(d4 >= Duration::from_secs(4) && d4 <= Duration::from_secs(8));
            let d30 = b.delay(1000);
            assert!(d30 >= Duration::from_secs(30) && d30 <= Duration::from_secs(60));
        }
    }
}
