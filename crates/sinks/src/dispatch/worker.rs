//! One sink's delivery thread: it takes pending deliveries from the outbox in batches and sends
//! them, keeps to the sink's budget (holding the rest for a digest), to the budgets of notices to
//! users, retries with backoff when the peer cannot be reached, buries what the peer refuses for
//! good, and checks the sink's health while idle.

use super::*;

pub(super) fn worker(inner: &Inner, idx: usize, sink: Box<dyn Sink>, outbox: Outbox) {
    let slot = &inner.slots[idx];
    let mut w = Worker {
        inner,
        slot,
        name: slot.cfg.name.as_str(),
        backoff: Backoff { min: inner.cfg.backoff_min, max: inner.cfg.backoff_max },
        budget: slot.cfg.rate_limit.map(|(n, per)| Budget::new(n, per)),
        notices: Notices::new(inner.cfg.user_notices, inner.cfg.user_notices_total),
        batch: sink.batch_size().max(1),
        sink,
        outbox,
        failures: 0,
        retry_at: None,
        next_health: Instant::now(),
        next_digest: slot.cfg.digest.map(|d| Instant::now() + d),
        seen: 0,
    };
    while w.step() {}
}

struct Worker<'a> {
    inner: &'a Inner,
    slot: &'a Slot,
    name: &'a str,
    backoff: Backoff,
    budget: Option<Budget>,
    notices: Notices,
    batch: usize,
    sink: Box<dyn Sink>,
    outbox: Outbox,
    /// Failures in a row (the sink's backoff).
    failures: u32,
    retry_at: Option<Instant>,
    next_health: Instant,
    next_digest: Option<Instant>,
    /// The wake counter last seen.
    seen: u64,
}

fn outbox_error(e: &OutboxError, what: &str) {
    tracing::error!(error = %kevlar_core::error::chain(e), "alerts: cannot {what} the outbox");
}

impl Worker<'_> {
    /// One round; false when the worker is done (stopping, nothing left or no time left).
    fn step(&mut self) -> bool {
        let now = Instant::now();
        if self.inner.stop.load(Ordering::SeqCst) {
            let past = self.inner.deadline.lock().ok().and_then(|d| *d).is_none_or(|d| now >= d);
            if past || self.retry_at.is_some() {
                return false;
            }
        }
        if let Some(t) = self.retry_at {
            if now < t {
                self.slot.wake.wait(&mut self.seen, (t - now).min(IDLE));
                return true;
            }
            self.retry_at = None;
        }
        if !self.digest(now) {
            return true;
        }
        let rows = match self.outbox.take(self.name, PENDING, self.batch) {
            Ok(r) => r,
            Err(e) => {
                outbox_error(&e, "read");
                self.slot.wake.wait(&mut self.seen, IDLE);
                return true;
            }
        };
        if rows.is_empty() {
            if self.inner.stop.load(Ordering::SeqCst) {
                return false;
            }
            self.idle();
            return true;
        }
        let send = self.admit(rows, now);
        if !send.is_empty() {
            self.deliver(send);
        }
        true
    }

    /// The sink failed (a delivery, or its health check): counted, and it waits its backoff.
    fn fail(&mut self, e: &SinkError, attempted: bool) {
        record_failure(self.inner, self.slot, e, attempted);
        self.failures += 1;
        self.retry_at = Some(Instant::now() + self.backoff.delay(self.failures));
    }

    /// Held deliveries leave as one digest: at the digest interval, or when the budget allows.
    /// False when sending it failed (the sink waits its backoff).
    fn digest(&mut self, now: Instant) -> bool {
        let due = match (self.slot.cfg.digest, self.next_digest) {
            (Some(_), Some(t)) => now >= t,
            _ => self.budget.as_mut().is_some_and(|b| b.ready(now)),
        };
        if !due {
            return true;
        }
        match self.outbox.held_summary(self.name) {
            Ok(Some(h)) => {
                let ev = render::digest(self.name, &h);
                if let Err(e) = self.sink.send(std::slice::from_ref(&ev)) {
                    self.fail(&e, true);
                    return false;
                }
                if let Err(e) = self.outbox.delete_held(self.name, h.max_id) {
                    outbox_error(&e, "update");
                }
                if let Some(b) = self.budget.as_mut() {
                    b.take(now);
                }
                if let Ok(mut hh) = self.slot.health.lock() {
                    hh.digests += 1;
                }
                record_ok(self.inner, self.slot, h.count);
                self.failures = 0;
            }
            Ok(None) => {}
            Err(e) => outbox_error(&e, "read"),
        }
        if let Some(d) = self.slot.cfg.digest {
            self.next_digest = Some(now + d);
        }
        true
    }

    /// Nothing to send: the health check when it is due, then a wait for new deliveries.
    fn idle(&mut self) {
        if Instant::now() >= self.next_health {
            match self.sink.health() {
                Ok(()) => record_ok(self.inner, self.slot, 0),
                Err(e) => record_failure(self.inner, self.slot, &e, false),
            }
            self.next_health = Instant::now() + self.inner.cfg.health_interval;
        }
        let mut sleep = IDLE.min(self.next_health.saturating_duration_since(Instant::now()));
        if let Some(t) = self.next_digest {
            sleep = sleep.min(t.saturating_duration_since(Instant::now()));
        }
        self.slot.wake.wait(&mut self.seen, sleep.max(Duration::from_millis(5)));
    }

    /// What of a batch goes now. Notices to users never draw on the owner's budget and are never
    /// folded into a digest: they have budgets of their own, per mailbox and in all. The owner's
    /// deliveries over the sink's budget are held for the digest.
    fn admit(&mut self, rows: Vec<Delivery>, now: Instant) -> Vec<Delivery> {
        let (users, ops): (Vec<_>, Vec<_>) = rows.into_iter().partition(|d| d.event.kevlar.contains_key("deliver_to"));
        let mut send = Vec::new();
        if !users.is_empty() {
            let (mut dropped, mut later) = (Vec::new(), Vec::new());
            for d in users {
                let to = d.event.kevlar.get("deliver_to").and_then(Value::as_str).unwrap_or("");
                match self.notices.admit(to, now) {
                    Notice::Send => send.push(d),
                    Notice::Drop => dropped.push(d.id),
                    Notice::Later(wait) => later.push((d.id, now_ms() + wait.as_millis() as i64)),
                }
            }
            if !dropped.is_empty() {
                tracing::warn!(
                    sink = self.name,
                    n = dropped.len(),
                    "alerts: user notices over their mailbox's budget dropped"
                );
                if let Ok(mut h) = self.slot.health.lock() {
                    h.notices_dropped += dropped.len() as u64;
                }
                if let Err(e) = self.outbox.delete(&dropped) {
                    outbox_error(&e, "update");
                }
            }
            if let Err(e) = self.outbox.defer(&later) {
                outbox_error(&e, "update");
            }
        }
        let (ops_send, hold): (Vec<_>, Vec<_>) = match self.budget.as_mut() {
            Some(b) => ops.into_iter().partition(|_| b.take(now)),
            None => (ops, Vec::new()),
        };
        send.extend(ops_send);
        if !hold.is_empty() {
            let ids: Vec<i64> = hold.iter().map(|d| d.id).collect();
            if let Err(e) = self.outbox.hold(&ids) {
                outbox_error(&e, "update");
            }
        }
        send
    }

    /// Sends a batch and records what became of each delivery.
    fn deliver(&mut self, send: Vec<Delivery>) {
        let ids: Vec<i64> = send.iter().map(|d| d.id).collect();
        let attempts: Vec<u32> = send.iter().map(|d| d.attempts).collect();
        let events: Vec<SecurityEvent> = send.into_iter().map(|d| d.event).collect();
        let e = match self.sink.send(&events) {
            Ok(()) => {
                if let Err(e) = self.outbox.delete(&ids) {
                    outbox_error(&e, "update");
                }
                record_ok(self.inner, self.slot, ids.len() as u64);
                self.failures = 0;
                self.next_health = Instant::now() + self.inner.cfg.health_interval;
                return;
            }
            Err(e) => e,
        };
        if e.is_permanent() {
            // This delivery can never succeed: a dead letter now, and the next one goes on.
            match self.outbox.bury(&ids, &e.message) {
                Ok(n) => {
                    tracing::warn!(sink = self.name, dead = n, error = %kevlar_core::error::chain(&e), "alerts: a delivery was refused for good")
                }
                Err(e) => outbox_error(&e, "update"),
            }
            record_delivery_failure(self.slot, &e);
        } else if e.is_per_delivery() {
            // The peer refused this one for now: it waits on its own backoff, the others go on.
            let now_ms = now_ms();
            let due: Vec<(i64, i64)> = ids
                .iter()
                .zip(&attempts)
                .map(|(id, a)| (*id, now_ms + self.backoff.delay(a + 1).as_millis() as i64))
                .collect();
            self.fail_each(&due, &e);
            record_delivery_failure(self.slot, &e);
        } else {
            // The peer cannot be reached: everything for it waits, with the sink's backoff.
            let due: Vec<(i64, i64)> = ids.iter().map(|id| (*id, 0)).collect();
            self.fail_each(&due, &e);
            self.fail(&e, true);
        }
    }

    fn fail_each(&mut self, due: &[(i64, i64)], e: &SinkError) {
        match self.outbox.fail_each(due, &e.message, self.inner.cfg.max_attempts) {
            Ok(dead) if dead > 0 => {
                tracing::warn!(sink = self.name, dead, "alerts: deliveries moved to the dead letters")
            }
            Ok(_) => {}
            Err(e) => outbox_error(&e, "update"),
        }
    }
}

/// What the user-notice budgets say of one notice.
enum Notice {
    Send,
    /// Over this mailbox's budget: dropped (counted); a flood must not turn into mail to one person.
    Drop,
    /// Over the budget of all notices: it waits this long.
    Later(Duration),
}

/// The budgets of notices to users (`alerts.user_notices` per mailbox, `alerts.user_notices_total`
/// in all), apart from the owner's.
struct Notices {
    per: (u32, Duration),
    total: Budget,
    boxes: std::collections::HashMap<String, Budget>,
}

const MAX_MAILBOXES: usize = 10_000;

impl Notices {
    fn new(per: (u32, Duration), total: (u32, Duration)) -> Self {
        Notices { per, total: Budget::new(total.0, total.1), boxes: Default::default() }
    }

    /// One mailbox however it is written: lower case, without a `+tag` in the local part.
    fn mailbox(to: &str) -> String {
        let to = to.to_lowercase();
        match to.rsplit_once('@') {
            Some((local, domain)) => format!("{}@{domain}", local.split('+').next().unwrap_or(local)),
            None => to,
        }
    }

    fn admit(&mut self, to: &str, now: Instant) -> Notice {
        let key = Self::mailbox(to);
        if !self.boxes.contains_key(&key) && self.boxes.len() >= MAX_MAILBOXES {
            // Forget the mailboxes whose budget is whole again (they would start whole anyway).
            let cap = f64::from(self.per.0);
            self.boxes.retain(|_, b| !b.is_full(now, cap));
        }
        let per = self.per;
        if self.boxes.len() >= MAX_MAILBOXES && !self.boxes.contains_key(&key) {
            return Notice::Later(Duration::from_secs(60));
        }
        let b = self.boxes.entry(key).or_insert_with(|| Budget::new(per.0, per.1));
        if !b.ready(now) {
            return Notice::Drop;
        }
        if !self.total.ready(now) {
            return Notice::Later(self.total.wait(now).max(Duration::from_millis(100)));
        }
        b.take(now);
        self.total.take(now);
        Notice::Send
    }
}

/// A delivery the peer refused (for now or for good): counted and shown as the last error, but the
/// sink is not "failing" for it — it answers, and the deliveries behind it go on. (An outsider who
/// can get one bad delivery queued must not be able to make a sink flap.)
fn record_delivery_failure(slot: &Slot, err: &SinkError) {
    if let Ok(mut h) = slot.health.lock() {
        h.failed_attempts += 1;
        h.last_error = Some(err.message.clone());
        h.last_error_ms = Some(now_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_notices_have_a_budget_per_mailbox_however_written_and_in_all() {
        let hour = Duration::from_secs(3600);
        let mut n = Notices::new((2, hour), (3, hour));
        let t = Instant::now();
        assert!(matches!(n.admit("Alice@Example.com", t), Notice::Send));
        assert!(matches!(n.admit("alice+1@example.com", t), Notice::Send));
        assert!(matches!(n.admit("ALICE+x@example.COM", t), Notice::Drop), "one mailbox, plus-tags or not");
        assert!(matches!(n.admit("bob@example.com", t), Notice::Send));
        assert!(matches!(n.admit("carol@example.com", t), Notice::Later(_)), "the total waits, it does not drop");
    }
}
