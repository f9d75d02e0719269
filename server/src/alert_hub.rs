//! The fan-out of alert changes to live consoles (SSE).
//!
//! Writers call [`AlertHub::notify`] with the ids of alerts they raised or changed, after their
//! transaction committed. One publisher task (`service::alerts::publish`) takes the ids, reads
//! each alert **once**, encodes it to JSON **once**, and broadcasts the same shared bytes
//! ([`Frame`]) to every subscriber. Before, every subscriber read and encoded every change
//! itself: with 500 consoles open, one badly signed device request cost 500 database reads.
//!
//! Every subscriber of the live stream holds the same capability (guard or security officer:
//! `AlertHandlerCap`) and may see every alert in full, so one frame serves all of them. Should
//! roles ever differ in what they may see of an alert, build one frame per audience here, never
//! one per subscriber.
//!
//! Updates of one alert are coalesced ([`Coalescer`]): a new alert goes out at once; further
//! changes of the same alert within [`REPEAT_INTERVAL`] are sent once, when the interval is
//! over, with the alert's state as it is then. A deduplicated alert bumped a hundred times a
//! second (`device_auth_failed` under a flood) reaches the consoles once a second, with the
//! latest count; no change is lost, only intermediate states are skipped.
//!
//! A broadcast channel drops the oldest frames for a receiver that falls behind
//! (`RecvError::Lagged`): a subscriber that sees `Lagged` must NOT carry on as if nothing
//! happened — it tells its client to resynchronise once (re-read the alert list), so no alert
//! is ever silently missed. The alert rows in the database stay the source of truth.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

/// How many frames a slow subscriber may fall behind before it must resynchronise.
pub const HUB_CAPACITY: usize = 1024;

/// The shortest time between two frames of the same alert.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(1);

/// What every subscriber receives: built once, shared.
#[derive(Debug, Clone)]
pub enum Frame {
    /// An alert as it is now (the JSON of an `AlertView`).
    Alert {
        /// The alert's id.
        id: i64,
        /// Its JSON, shared by every subscriber.
        json: Arc<str>,
    },
    /// Alerts changed but could not be loaded: re-read the list.
    Resync,
}

/// The alert-change fan-out. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlertHub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    /// The bare ids, for in-process observers (the simulator's site).
    ids: broadcast::Sender<i64>,
    frames: broadcast::Sender<Frame>,
    pending: Mutex<BTreeSet<i64>>,
    wake: Notify,
    publisher: AtomicBool,
}

impl Default for AlertHub {
    fn default() -> Self {
        AlertHub::new()
    }
}

impl AlertHub {
    /// A hub with [`HUB_CAPACITY`].
    pub fn new() -> AlertHub {
        let (frames, _) = broadcast::channel(HUB_CAPACITY);
        let (ids, _) = broadcast::channel(HUB_CAPACITY);
        AlertHub {
            inner: Arc::new(HubInner {
                ids,
                frames,
                pending: Mutex::new(BTreeSet::new()),
                wake: Notify::new(),
                publisher: AtomicBool::new(false),
            }),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeSet<i64>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tell subscribers that these alerts were raised or changed (after commit). With nobody
    /// listening nothing is kept: a console that connects later reads the list.
    pub fn notify(&self, ids: impl IntoIterator<Item = i64>) {
        let ids: Vec<i64> = ids.into_iter().collect();
        if self.inner.ids.receiver_count() > 0 {
            for id in &ids {
                // An error only means nobody is listening right now.
                let _ = self.inner.ids.send(*id);
            }
        }
        if self.inner.frames.receiver_count() == 0 {
            return;
        }
        let mut pending = self.pending();
        let before = pending.len();
        pending.extend(ids);
        let grew = pending.len() > before;
        drop(pending);
        if grew {
            self.inner.wake.notify_one();
        }
    }

    /// The bare ids of changed alerts from now on, one message per notified id, uncoalesced
    /// (for in-process observers; the consoles use [`AlertHub::frames`]).
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.inner.ids.subscribe()
    }

    /// A new subscription to the consoles' frames; it sees frames sent from now on. The caller
    /// makes sure a publisher runs ([`AlertHub::claim_publisher`]).
    pub fn frames(&self) -> broadcast::Receiver<Frame> {
        self.inner.frames.subscribe()
    }

    /// Whether the caller becomes the publisher (true once, until the publisher's
    /// [`PublisherGuard`] is dropped).
    pub fn claim_publisher(&self) -> Option<PublisherGuard> {
        self.inner
            .publisher
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| PublisherGuard(self.clone()))
    }

    /// The publisher's side: the ids notified since the last call.
    pub fn take_pending(&self) -> Vec<i64> {
        std::mem::take(&mut *self.pending()).into_iter().collect()
    }

    /// The publisher's side: resolves when ids were notified since the last
    /// [`take_pending`](Self::take_pending) (at once if some were meanwhile).
    pub async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// The publisher's side: send one frame to every subscriber.
    pub fn send(&self, frame: Frame) {
        // An error only means nobody is listening right now; the rows are in the database.
        let _ = self.inner.frames.send(frame);
    }
}

/// Held by the running publisher; dropping it (the task ended, panicked or was aborted) lets
/// the next subscriber start another.
#[derive(Debug)]
pub struct PublisherGuard(AlertHub);

impl Drop for PublisherGuard {
    fn drop(&mut self) {
        self.0.inner.publisher.store(false, Ordering::Release);
    }
}

/// Which notified alerts are due to be sent, and when the deferred ones are (see the module
/// doc). Pure: time is passed in.
#[derive(Debug)]
pub struct Coalescer {
    interval: Duration,
    /// When each alert was last sent (only those within the interval are kept).
    last: HashMap<i64, Instant>,
    /// Alerts waiting to be sent, and when.
    waiting: BTreeMap<i64, Instant>,
}

impl Coalescer {
    /// Nothing sent yet; one frame per alert per `interval`.
    pub fn new(interval: Duration) -> Coalescer {
        Coalescer {
            interval,
            last: HashMap::new(),
            waiting: BTreeMap::new(),
        }
    }

    /// These alerts changed at `now`.
    pub fn push(&mut self, ids: impl IntoIterator<Item = i64>, now: Instant) {
        for id in ids {
            if self.waiting.contains_key(&id) {
                continue;
            }
            let due = match self.last.get(&id) {
                Some(sent) if now < *sent + self.interval => *sent + self.interval,
                _ => now,
            };
            self.waiting.insert(id, due);
        }
    }

    /// The alerts to send at `now`, by id; they count as sent at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<i64> {
        let due: Vec<i64> = self
            .waiting
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            self.waiting.remove(id);
            self.last.insert(*id, now);
        }
        let interval = self.interval;
        self.last.retain(|_, sent| now < *sent + interval);
        due
    }

    /// When the next waiting alert is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.values().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::RecvError;

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_so() {
        let hub = AlertHub::new();
        let mut rx = hub.frames();
        for id in 0..(HUB_CAPACITY as i64 + 10) {
            hub.send(Frame::Alert {
                id,
                json: Arc::from("{}"),
            });
        }
        assert!(matches!(rx.recv().await, Err(RecvError::Lagged(10))));
        assert!(matches!(rx.recv().await, Ok(Frame::Alert { id: 10, .. })));
    }

    #[tokio::test]
    async fn notified_ids_are_collected_once_and_only_while_somebody_listens() {
        let hub = AlertHub::new();
        hub.notify([1, 2]);
        assert!(
            hub.take_pending().is_empty(),
            "nobody listening: nothing kept"
        );
        let mut ids = hub.subscribe();
        hub.notify([4]);
        assert!(
            hub.take_pending().is_empty(),
            "an id observer is no console"
        );
        assert_eq!(ids.recv().await.unwrap(), 4);
        let _rx = hub.frames();
        hub.notify([3, 1, 3]);
        hub.notify([1]);
        hub.woken().await;
        assert_eq!(hub.take_pending(), [1, 3]);
        assert!(hub.take_pending().is_empty());
    }

    #[test]
    fn one_publisher_at_a_time() {
        let hub = AlertHub::new();
        let guard = hub.claim_publisher().expect("the first claims it");
        assert!(hub.claim_publisher().is_none());
        drop(guard);
        assert!(hub.claim_publisher().is_some(), "free again once it ended");
    }

    #[test]
    fn updates_of_one_alert_are_coalesced_and_new_alerts_go_at_once() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut c = Coalescer::new(Duration::from_secs(1));
        c.push([7], t0);
        assert_eq!(c.due(t0), [7], "a first change goes out at once");
        // A hundred more changes within the second: one frame, when the second is over.
        for n in 1..=100 {
            c.push([7], ms(n * 5));
        }
        c.push([8], ms(500));
        assert_eq!(c.due(ms(500)), [8], "another alert is not held back");
        assert!(c.due(ms(999)).is_empty());
        assert_eq!(c.next_due(), Some(ms(1000)));
        assert_eq!(c.due(ms(1000)), [7]);
        assert_eq!(c.next_due(), None);
        // Quiet for a while: the next change goes out at once again.
        c.push([7], ms(2500));
        assert_eq!(c.due(ms(2500)), [7]);
        assert!(c.last.len() <= 2, "memory: only recently sent alerts");
    }
}
