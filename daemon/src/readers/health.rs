//! What a reader driver knows about its reader's health, and the reports it sends about it.
//!
//! A [`Reporter`] is shared by the driver (which counts frames and sets faults) and the periodic
//! reporter of [`super::run_reader_on`] (which sends a snapshot every
//! [`super::HEALTH_INTERVAL`]). It sits behind a `std::sync::Mutex` that is never held across an
//! `.await`: every method takes the lock, updates or copies plain values, and lets go before
//! sending anything.
//!
//! The state is derived, never set directly:
//! - the link is down (no reply, port lost) → [`HealthState::Fault`] with that fault;
//! - every configured antenna is missing → `Fault` (the reader is blind); for a gate's reader
//!   ([`Reporter::for_gate`]) any missing antenna is: a gate blind on one side cannot tell an
//!   exit from an entry;
//! - some antenna has a problem, or the reader refused a setting → [`HealthState::Degraded`];
//! - otherwise [`HealthState::Ok`].
//!
//! A change of state or fault is reported at once; the counters travel with every report.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use custos_protocol::uplink::{HealthState, ReaderFault, ReaderHealth};
use tokio::sync::mpsc;

use super::ReaderError;
use crate::model::{ReaderName, ReaderOutput};

/// Whether the driver has reached its reader.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LinkState {
    /// No attempt has finished yet.
    Starting,
    /// The reader answered (or, for passive devices, the port is open).
    Up,
    /// The last attempt failed with this fault.
    Down(ReaderFault),
}

#[derive(Debug)]
struct Tracker {
    frames_ok: u64,
    checksum_errors: u64,
    dropped_bytes: u64,
    last_read_ms: Option<i64>,
    link: LinkState,
    /// Problems of single antennas (1-based key), cleared by a good inventory round.
    antenna_faults: BTreeMap<u8, ReaderFault>,
    /// A problem that does not stop reading (a refused setting, an unsupported card).
    other: Option<String>,
    /// How many antennas the reader inventories; all of them missing is a blind reader.
    antenna_count: usize,
    /// The reader watches a gate: any missing antenna is a fault.
    gate: bool,
    /// The state and fault last sent, to report changes only once.
    published: Option<(HealthState, Option<ReaderFault>)>,
    /// Set when the reader answers, taken by the supervisor to reset its backoff.
    answered: bool,
}

impl Tracker {
    fn verdict(&self) -> (HealthState, Option<ReaderFault>) {
        match &self.link {
            LinkState::Starting => return (HealthState::Fault, Some(ReaderFault::NoReply)),
            LinkState::Down(fault) => return (HealthState::Fault, Some(fault.clone())),
            LinkState::Up => {}
        }
        let missing = self
            .antenna_faults
            .values()
            .filter(|f| matches!(f, ReaderFault::AntennaMissing { .. }))
            .count();
        // A missing antenna says more than another antenna's problem: show it first.
        let shown = self
            .antenna_faults
            .values()
            .find(|f| matches!(f, ReaderFault::AntennaMissing { .. }))
            .or_else(|| self.antenna_faults.values().next());
        if let Some(first) = shown {
            let blind = (self.antenna_count > 0 && missing >= self.antenna_count)
                || (self.gate && missing > 0);
            let state = if blind {
                HealthState::Fault
            } else {
                HealthState::Degraded
            };
            return (state, Some(first.clone()));
        }
        match &self.other {
            Some(detail) => (
                HealthState::Degraded,
                Some(ReaderFault::Other {
                    detail: detail.clone(),
                }),
            ),
            None => (HealthState::Ok, None),
        }
    }

    fn health(&self) -> ReaderHealth {
        let (state, fault) = self.verdict();
        ReaderHealth {
            state,
            fault,
            frames_ok: self.frames_ok,
            checksum_errors: self.checksum_errors,
            dropped_bytes: self.dropped_bytes,
            last_read_ms: self.last_read_ms,
        }
    }
}

/// The health of one reader and the channel its outputs go to. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    name: ReaderName,
    out: mpsc::Sender<ReaderOutput>,
    shared: Arc<Mutex<Tracker>>,
}

impl Reporter {
    /// A reporter for a reader that inventories `antenna_count` antennas (0 when it has none).
    pub(crate) fn new(
        name: ReaderName,
        out: mpsc::Sender<ReaderOutput>,
        antenna_count: usize,
    ) -> Self {
        Self {
            name,
            out,
            shared: Arc::new(Mutex::new(Tracker {
                frames_ok: 0,
                checksum_errors: 0,
                dropped_bytes: 0,
                last_read_ms: None,
                link: LinkState::Starting,
                antenna_faults: BTreeMap::new(),
                other: None,
                antenna_count,
                gate: false,
                published: None,
                answered: false,
            })),
        }
    }

    /// Marks the reader as a gate's (see the module docs); call before sharing clones.
    pub(crate) fn for_gate(self, gate: bool) -> Self {
        self.lock().gate = gate;
        self
    }

    /// Bytes that did not decode so far: dropped bytes plus checksum errors. A rise while no
    /// frame arrives means the reader speaks, but not what the link expects.
    pub(crate) fn garbage(&self) -> u64 {
        let t = self.lock();
        t.dropped_bytes + t.checksum_errors
    }

    fn lock(&self) -> MutexGuard<'_, Tracker> {
        // A panic while holding the lock leaves plain counters behind; they are still usable.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reader's name.
    pub(crate) fn name(&self) -> &ReaderName {
        &self.name
    }

    /// A frame was decoded.
    pub(crate) fn frame_ok(&self) {
        self.lock().frames_ok += 1;
    }

    /// A frame was refused for its checksum.
    pub(crate) fn checksum_error(&self) {
        self.lock().checksum_errors += 1;
    }

    /// `n` bytes were dropped while resynchronising.
    pub(crate) fn dropped(&self, n: u64) {
        if n > 0 {
            self.lock().dropped_bytes += n;
        }
    }

    /// The current health.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> ReaderHealth {
        self.lock().health()
    }

    /// Whether the reader answered since the last call (resets the flag).
    pub(crate) fn take_answered(&self) -> bool {
        std::mem::take(&mut self.lock().answered)
    }

    /// Sends a read or scan to the daemon, noting its time as the last read.
    pub(crate) async fn emit(&self, output: ReaderOutput) -> Result<(), ReaderError> {
        let at_ms = match &output {
            ReaderOutput::Tag { read, .. } => Some(read.at_ms),
            ReaderOutput::Scan { at_ms, .. } => Some(*at_ms),
            ReaderOutput::Health { .. } | ReaderOutput::Input { .. } => None,
        };
        if let Some(at_ms) = at_ms {
            self.lock().last_read_ms = Some(at_ms);
        }
        self.out
            .send(output)
            .await
            .map_err(|_| ReaderError::OutputClosed)
    }

    /// The reader answered: the link is up.
    pub(crate) async fn answered(&self) -> Result<(), ReaderError> {
        {
            let mut t = self.lock();
            t.link = LinkState::Up;
            t.answered = true;
        }
        self.publish_if_changed().await
    }

    /// The link failed with `fault`.
    pub(crate) async fn link_down(&self, fault: ReaderFault) -> Result<(), ReaderError> {
        self.lock().link = LinkState::Down(fault);
        self.publish_if_changed().await
    }

    /// Sets (`Some`) or clears (`None`) the problem of one antenna (1-based).
    pub(crate) async fn antenna_fault(
        &self,
        antenna: u8,
        fault: Option<ReaderFault>,
    ) -> Result<(), ReaderError> {
        {
            let mut t = self.lock();
            match fault {
                Some(f) => t.antenna_faults.insert(antenna, f),
                None => t.antenna_faults.remove(&antenna),
            };
        }
        self.publish_if_changed().await
    }

    /// Sets or clears a problem that does not stop reading.
    pub(crate) async fn other(&self, detail: Option<String>) -> Result<(), ReaderError> {
        self.lock().other = detail;
        self.publish_if_changed().await
    }

    /// Sends the health if its state or fault differs from the last one sent.
    pub(crate) async fn publish_if_changed(&self) -> Result<(), ReaderError> {
        let health = {
            let mut t = self.lock();
            let health = t.health();
            let key = (health.state, health.fault.clone());
            if t.published.as_ref() == Some(&key) {
                return Ok(());
            }
            t.published = Some(key);
            health
        };
        self.send_health(health).await
    }

    /// Sends the health as it is now (the periodic report).
    pub(crate) async fn publish(&self) -> Result<(), ReaderError> {
        let health = {
            let mut t = self.lock();
            let health = t.health();
            t.published = Some((health.state, health.fault.clone()));
            health
        };
        self.send_health(health).await
    }

    async fn send_health(&self, health: ReaderHealth) -> Result<(), ReaderError> {
        tracing::debug!(state = ?health.state, fault = ?health.fault, "reader health");
        self.out
            .send(ReaderOutput::Health {
                reader: self.name.clone(),
                health,
            })
            .await
            .map_err(|_| ReaderError::OutputClosed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter(antennas: usize) -> (Reporter, mpsc::Receiver<ReaderOutput>) {
        let (tx, rx) = mpsc::channel(16);
        (Reporter::new("r".into(), tx, antennas), rx)
    }

    fn health_of(output: ReaderOutput) -> ReaderHealth {
        match output {
            ReaderOutput::Health { health, .. } => health,
            other => panic!("expected health, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn changes_are_reported_once_and_state_follows_faults() {
        let (r, mut rx) = reporter(2);
        r.answered().await.unwrap();
        let h = health_of(rx.try_recv().unwrap());
        assert_eq!((h.state, h.fault), (HealthState::Ok, None));
        // The same state again is not reported.
        r.answered().await.unwrap();
        assert!(rx.try_recv().is_err());
        assert!(r.take_answered());
        assert!(!r.take_answered());

        let missing = |antenna| Some(ReaderFault::AntennaMissing { antenna });
        r.antenna_fault(2, missing(2)).await.unwrap();
        let h = health_of(rx.try_recv().unwrap());
        assert_eq!((h.state, h.fault), (HealthState::Degraded, missing(2)));
        // Both antennas missing: the reader is blind.
        r.antenna_fault(1, missing(1)).await.unwrap();
        let h = health_of(rx.try_recv().unwrap());
        assert_eq!((h.state, h.fault), (HealthState::Fault, missing(1)));
        r.antenna_fault(1, None).await.unwrap();
        r.antenna_fault(2, None).await.unwrap();
        let states: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|o| health_of(o).state)
            .collect();
        assert_eq!(states, [HealthState::Degraded, HealthState::Ok]);

        r.link_down(ReaderFault::NoReply).await.unwrap();
        let h = health_of(rx.try_recv().unwrap());
        assert_eq!(
            (h.state, h.fault),
            (HealthState::Fault, Some(ReaderFault::NoReply))
        );
    }

    #[tokio::test]
    async fn counters_travel_with_the_periodic_report() {
        let (r, mut rx) = reporter(1);
        r.frame_ok();
        r.frame_ok();
        r.checksum_error();
        r.dropped(5);
        r.dropped(0);
        r.publish().await.unwrap();
        let h = health_of(rx.try_recv().unwrap());
        assert_eq!((h.frames_ok, h.checksum_errors, h.dropped_bytes), (2, 1, 5));
        // Before any attempt finished the reader counts as not answering.
        assert_eq!(h.fault, Some(ReaderFault::NoReply));
        drop(rx);
        assert!(matches!(r.publish().await, Err(ReaderError::OutputClosed)));
    }
}
