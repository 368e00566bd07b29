//! A per-sink message budget: a token bucket of `count` tokens refilled over `per`.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Budget {
    capacity: f64,
    per_token: Duration,
    tokens: f64,
    at: Instant,
}

impl Budget {
    pub fn new(count: u32, per: Duration) -> Self {
        let count = count.max(1);
        Budget { capacity: count as f64, per_token: per / count, tokens: count as f64, at: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at);
        if !self.per_token.is_zero() {
            self.tokens = (self.tokens + elapsed.as_secs_f64() / self.per_token.as_secs_f64()).min(self.capacity);
        }
        self.at = now;
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a token is there, without taking it.
    pub fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Whether the bucket is whole again (nothing spent that has not come back).
    pub fn is_full(&mut self, now: Instant, capacity: f64) -> bool {
        self.refill(now);
        self.tokens >= capacity
    }

    /// How long until the next token.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            self.per_token.mul_f64(1.0 - self.tokens)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_then_refills() {
        let t0 = Instant::now();
        let mut b = Budget::new(3, Duration::from_secs(3));
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(b.wait(t0) > Duration::from_millis(900));
        assert!(b.take(t0 + Duration::from_secs(1)));
        assert!(!b.ready(t0 + Duration::from_secs(1)));
        assert!(b.ready(t0 + Duration::from_secs(10)));
    }
}
