//! A wake-up signal between threads: one side says "there is new work", the other sleeps until it
//! is told or a timeout passes. Signals are counted, so one sent before the sleeper arrives is not
//! lost.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Wake(Arc<(Mutex<u64>, Condvar)>);

impl Wake {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every sleeper.
    pub fn notify(&self) {
        let (m, c) = &*self.0;
        if let Ok(mut n) = m.lock() {
            *n = n.wrapping_add(1);
        }
        c.notify_all();
    }

    /// Sleeps until a signal newer than `seen` arrives or `timeout` passes; updates `seen`.
    /// Returns whether a signal arrived.
    pub fn wait(&self, seen: &mut u64, timeout: Duration) -> bool {
        let (m, c) = &*self.0;
        let Ok(guard) = m.lock() else { return false };
        let Ok((guard, _)) = c.wait_timeout_while(guard, timeout, |n| *n == *seen) else { return false };
        let woke = *guard != *seen;
        *seen = *guard;
        woke
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_before_the_wait_is_not_lost() {
        let w = Wake::new();
        let mut seen = 0;
        w.notify();
        assert!(w.wait(&mut seen, Duration::from_secs(5)));
        assert!(!w.wait(&mut seen, Duration::from_millis(10)));
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.notify());
        assert!(w.wait(&mut seen, Duration::from_secs(5)));
        t.join().unwrap();
    }
}
