//! Cabinet inventories: what is on the shelves, and what changed.
//!
//! The present set follows the presence rules of [`presence`](super::presence): a tag on a
//! shelf appears after `min_reads` reads within the window and is removed only after
//! `holdoff_ms` without a read, so a tag flickering at the edge of the field (gaps shorter than
//! the hold-off) produces no event at all.
//!
//! Each [`EventBody::CabinetSnapshot`] lists every tag present and the differences from the
//! last snapshot this smoother emitted. [`CabinetSmoother::poll`] emits one:
//! - on a change, at once (a removal is known `holdoff_ms` after the tag's last read), but at
//!   most one change snapshot per `holdoff_ms`, so a custodian filling a shelf makes a few
//!   snapshots, not one per document;
//! - without a change, a full snapshot every `full_snapshot_ms` (default 60 s), so the server
//!   can reconcile the count (清点) even if an event was lost or the server restarted.
//!
//! The first snapshot waits `appear_window_ms + holdoff_ms` after the first poll, so that every
//! tag on the shelves has had time to appear: a partial first count would report documents as
//! missing. It lists everything present as `added` (the smoother does not know what the server
//! last saw). A snapshot holds at most `MAX_TAGS_PER_LIST` tags: the tracker is capped there.
//!
//! A reader that stops reading makes every tag disappear after the hold-off; the daemon should
//! not poll a cabinet whose reader is in fault (its health event says why).

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{EventBody, MAX_TAGS_PER_LIST};

use super::presence::{PresenceTracker, SmoothingConfig};
use super::{Clock, NewEvent, epc_order};
use crate::model::{ReaderName, TagRead};

/// Default [`CabinetConfig::full_snapshot_ms`] (60 s).
pub const DEFAULT_FULL_SNAPSHOT_MS: i64 = 60_000;

/// How a cabinet's reader is smoothed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CabinetConfig {
    /// The presence rules.
    pub smoothing: SmoothingConfig,
    /// A snapshot is emitted at least this often, changed or not (default 60 000 ms; at least
    /// 1 ms).
    pub full_snapshot_ms: i64,
}

impl Default for CabinetConfig {
    fn default() -> Self {
        Self {
            smoothing: SmoothingConfig::default(),
            full_snapshot_ms: DEFAULT_FULL_SNAPSHOT_MS,
        }
    }
}

/// What a cabinet smoother has counted since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CabinetStats {
    /// Reads of new tags dropped because `MAX_TAGS_PER_LIST` tags were present.
    pub dropped_reads: u64,
    /// Candidate tags forgotten to make room.
    pub evicted: u64,
    /// Backward wall-clock steps seen.
    pub clock_steps: u64,
    /// Snapshots emitted.
    pub snapshots: u64,
}

/// Turns one cabinet reader's reads into inventory snapshots.
#[derive(Debug, Clone)]
pub struct CabinetSmoother {
    reader: String,
    config: CabinetConfig,
    clock: Clock,
    tracker: PresenceTracker,
    /// The present set of the last snapshot emitted, by bytes.
    reported: Vec<Epc>,
    /// The first poll (internal time).
    started_ms: Option<i64>,
    last_change_ms: Option<i64>,
    last_snapshot_ms: Option<i64>,
    snapshots: u64,
}

impl CabinetSmoother {
    /// A smoother for the cabinet reader `reader` (the name its snapshots carry).
    pub fn new(reader: ReaderName, config: CabinetConfig) -> Self {
        let config = CabinetConfig {
            smoothing: config.smoothing.normalized(),
            full_snapshot_ms: config.full_snapshot_ms.max(1),
        };
        Self {
            reader: reader.to_string(),
            config,
            clock: Clock::default(),
            tracker: PresenceTracker::new(config.smoothing).with_max_tags(MAX_TAGS_PER_LIST),
            reported: Vec::new(),
            started_ms: None,
            last_change_ms: None,
            last_snapshot_ms: None,
            snapshots: 0,
        }
    }

    /// Takes one read of the cabinet's reader.
    pub fn handle_read(&mut self, read: TagRead) {
        let at_ms = self.clock.advance(read.at_ms);
        self.tracker.record(TagRead { at_ms, ..read });
    }

    /// The snapshot due at `now_ms`, if any (see the module docs). Call it on a timer (every
    /// 100 ms–1 s) and after batches of reads.
    pub fn poll(&mut self, now_ms: i64) -> Option<NewEvent> {
        self.emit(now_ms, false)
    }

    /// Like [`poll`](Self::poll), but a change is reported now even if a change snapshot was
    /// emitted less than `holdoff_ms` ago (for the daemon's periodic count, e.g. every 5 s).
    /// Still nothing when nothing changed and no full snapshot is due.
    pub fn snapshot(&mut self, now_ms: i64) -> Option<NewEvent> {
        self.emit(now_ms, true)
    }

    /// The tags present now, by their bytes (may differ from the last snapshot).
    pub fn present(&self) -> Vec<Epc> {
        self.tracker.present()
    }

    /// What the smoother has counted.
    pub fn stats(&self) -> CabinetStats {
        let tracker = self.tracker.stats();
        CabinetStats {
            dropped_reads: tracker.dropped_reads,
            evicted: tracker.evicted,
            clock_steps: self.clock.steps,
            snapshots: self.snapshots,
        }
    }

    fn emit(&mut self, now_ms: i64, now_for_changes: bool) -> Option<NewEvent> {
        let t = self.clock.advance(now_ms);
        self.tracker.expire(t);
        let started = *self.started_ms.get_or_insert(t);
        let warmup = self
            .config
            .smoothing
            .appear_window_ms
            .saturating_add(self.config.smoothing.holdoff_ms);
        if t.saturating_sub(started) < warmup {
            return None;
        }
        let present = self.tracker.present();
        let added = difference(&present, &self.reported);
        let removed = difference(&self.reported, &present);
        let changed = !added.is_empty() || !removed.is_empty();
        let full_due = self
            .last_snapshot_ms
            .is_none_or(|last| t.saturating_sub(last) >= self.config.full_snapshot_ms);
        let change_allowed = now_for_changes
            || self
                .last_change_ms
                .is_none_or(|last| t.saturating_sub(last) >= self.config.smoothing.holdoff_ms);
        if !(full_due || changed && change_allowed) {
            return None;
        }
        if changed {
            self.last_change_ms = Some(t);
        }
        self.last_snapshot_ms = Some(t);
        self.snapshots += 1;
        self.reported.clone_from(&present);
        Some(NewEvent {
            at_ms: self.clock.wall(t),
            body: EventBody::CabinetSnapshot {
                reader: self.reader.clone(),
                present,
                added,
                removed,
            },
        })
    }
}

/// The EPCs of `a` not in `b`; both ordered by bytes, and so is the result.
fn difference(a: &[Epc], b: &[Epc]) -> Vec<Epc> {
    a.iter()
        .filter(|e| b.binary_search_by(|x| epc_order(x, e)).is_err())
        .copied()
        .collect()
}
