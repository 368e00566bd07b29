//! The event bus: sensors publish, consumers (store, sinks, responders) read through bounded
//! queues. Publishing never waits on a consumer: when a queue is full the event is dropped for
//! that consumer only, the drop is counted, and the count becomes its own `sys_event_overflow`
//! event. The one exception is [`Bus::publish_acked`], for callers that promised a client an
//! acknowledgement: it waits for room in the durable consumer's queue and for the commit.

use kevlar_core::action;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kevlar_core::{Category, SecurityEvent, Severity};
use tokio::sync::{mpsc, oneshot};

/// An event on its way to one consumer; `ack`, when present, is answered once the event is durable.
pub struct Envelope {
    pub event: Arc<SecurityEvent>,
    pub ack: Option<oneshot::Sender<Result<i64, String>>>,
}

struct Subscriber {
    name: &'static str,
    tx: mpsc::Sender<Envelope>,
    durable: bool,
    dropped: AtomicU64,
}

/// Registers consumers before the bus starts carrying events.
#[derive(Default)]
pub struct BusBuilder {
    subs: Vec<Subscriber>,
}

impl BusBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A consumer with a queue of `capacity` events. The `durable` one (the store) answers acks.
    pub fn subscribe(&mut self, name: &'static str, capacity: usize, durable: bool) -> mpsc::Receiver<Envelope> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.subs.push(Subscriber { name, tx, durable, dropped: AtomicU64::new(0) });
        rx
    }

    pub fn build(self) -> Bus {
        Bus { subs: Arc::new(self.subs), published: Arc::new(AtomicU64::new(0)) }
    }
}

/// A cheap handle to publish events; clone it into every sensor.
#[derive(Clone)]
pub struct Bus {
    subs: Arc<Vec<Subscriber>>,
    published: Arc<AtomicU64>,
}

/// Per-consumer drop counts, for `/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusStats {
    pub published: u64,
    pub dropped: Vec<(&'static str, u64)>,
}

impl Bus {
    /// Hands the event to every consumer without waiting. Never blocks the caller.
    pub fn publish(&self, event: SecurityEvent) {
        self.published.fetch_add(1, Ordering::Relaxed);
        let event = Arc::new(event);
        for sub in self.subs.iter() {
            if sub.tx.try_send(Envelope { event: event.clone(), ack: None }).is_err() {
                sub.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands the event to every consumer and waits until the durable consumer has committed it.
    /// Returns the stored id.
    pub async fn publish_acked(&self, event: SecurityEvent) -> Result<i64, String> {
        self.published.fetch_add(1, Ordering::Relaxed);
        let event = Arc::new(event);
        let mut waiting = None;
        for sub in self.subs.iter() {
            if sub.durable && waiting.is_none() {
                let (tx, rx) = oneshot::channel();
                sub.tx
                    .send(Envelope { event: event.clone(), ack: Some(tx) })
                    .await
                    .map_err(|_| "the event store is shut down".to_owned())?;
                waiting = Some(rx);
            } else if sub.tx.try_send(Envelope { event: event.clone(), ack: None }).is_err() {
                sub.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        match waiting {
            Some(rx) => rx.await.map_err(|_| "the event store stopped before committing".to_owned())?,
            None => Err("no durable consumer is attached".to_owned()),
        }
    }

    pub fn stats(&self) -> BusStats {
        BusStats {
            published: self.published.load(Ordering::Relaxed),
            dropped: self.subs.iter().map(|s| (s.name, s.dropped.load(Ordering::Relaxed))).collect(),
        }
    }

    /// Every `every`, turns new drops into a `sys_event_overflow` event. Runs until the runtime stops.
    pub fn spawn_overflow_reporter(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let bus = self.clone();
        tokio::spawn(async move {
            let mut last: Vec<u64> = vec![0; bus.subs.len()];
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                for (i, sub) in bus.subs.iter().enumerate() {
                    let now = sub.dropped.load(Ordering::Relaxed);
                    if now > last[i] {
                        let lost = now - last[i];
                        last[i] = now;
                        tracing::warn!(consumer = sub.name, lost, "event queue overflowed");
                        bus.publish(
                            SecurityEvent::new(
                                action::SYS_EVENT_OVERFLOW,
                                Category::Configuration,
                                Severity::Alert,
                                format!("{lost} events were dropped for consumer `{}` whose queue was full", sub.name),
                            )
                            .with_kevlar("consumer", sub.name)
                            .with_kevlar("dropped", lost),
                        );
                    }
                }
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ev() -> SecurityEvent {
        SecurityEvent::new("sys_startup", Category::Process, Severity::Info, "x")
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_blocking() {
        let mut b = BusBuilder::new();
        let mut fast = b.subscribe("fast", 100, false);
        let _slow = b.subscribe("slow", 2, false);
        let bus = b.build();
        for _ in 0..5 {
            bus.publish(ev());
        }
        let stats = bus.stats();
        assert_eq!(stats.published, 5);
        assert_eq!(stats.dropped, vec![("fast", 0), ("slow", 3)]);
        let mut n = 0;
        while fast.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 5);
    }

    #[tokio::test]
    async fn acked_publish_waits_for_the_durable_consumer() {
        let mut b = BusBuilder::new();
        let mut store = b.subscribe("store", 4, true);
        let bus = b.build();
        let consumer = tokio::spawn(async move {
            let env = store.recv().await.unwrap();
            env.ack.unwrap().send(Ok(42)).unwrap();
        });
        assert_eq!(bus.publish_acked(ev()).await, Ok(42));
        consumer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn overflow_becomes_an_event() {
        let mut b = BusBuilder::new();
        let mut watch = b.subscribe("watch", 1000, false);
        let _tiny = b.subscribe("tiny", 1, false);
        let bus = b.build();
        bus.publish(ev());
        bus.publish(ev());
        let _r = bus.spawn_overflow_reporter(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut actions = Vec::new();
        while let Ok(e) = watch.try_recv() {
            actions.push(e.event.action.clone());
        }
        assert!(actions.contains(&"sys_event_overflow".to_string()), "{actions:?}");
    }
}
