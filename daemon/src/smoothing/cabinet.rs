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
//! The first snapshot waits `appear_window_ms + holdoff_ms` after the first read or poll, so that every
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
    /// The first read or poll (internal time).
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
        self.started_ms.get_or_insert(at_ms);
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn epc(n: u16) -> Epc {
        Epc::new(&[0x30, 0x38, (n >> 8) as u8, n as u8]).unwrap()
    }

    fn cabinet() -> CabinetSmoother {
        CabinetSmoother::new("cab-1".into(), CabinetConfig::default())
    }

    /// (present, added, removed) of a snapshot.
    type Lists = (Vec<Epc>, Vec<Epc>, Vec<Epc>);

    fn lists(event: &NewEvent) -> Lists {
        match &event.body {
            EventBody::CabinetSnapshot {
                reader,
                present,
                added,
                removed,
            } => {
                assert_eq!(reader, "cab-1");
                (present.clone(), added.clone(), removed.clone())
            }
            other => panic!("not a snapshot: {other:?}"),
        }
    }

    fn ids(ns: &[u16]) -> Vec<Epc> {
        ns.iter().map(|&n| epc(n)).collect()
    }

    /// Reads `(at_ms, tag)` fed in order, with a poll every 100 ms from 0 to `until`.
    fn run(c: &mut CabinetSmoother, reads: &[(i64, u16)], until: i64) -> Vec<(i64, Lists)> {
        let mut out = Vec::new();
        let mut next = 0;
        for now in (0..=until).step_by(100) {
            while next < reads.len() && reads[next].0 <= now {
                let (at_ms, n) = reads[next];
                c.handle_read(TagRead {
                    at_ms,
                    epc: epc(n),
                    antenna: 1 + (n % 4) as u8,
                    rssi: 50,
                });
                next += 1;
            }
            if let Some(event) = c.poll(now) {
                assert_eq!(event.at_ms, now);
                assert_eq!(event.body.validate(), Ok(()));
                out.push((now, lists(&event)));
            }
        }
        out
    }

    /// `tags` on the shelves, each read every `period` ms from `from` to `to` (exclusive).
    fn shelved(tags: &[u16], from: i64, to: i64, period: i64) -> Vec<(i64, u16)> {
        let mut reads = Vec::new();
        let mut t = from;
        while t < to {
            for (i, &n) in tags.iter().enumerate() {
                reads.push((t + i as i64, n));
            }
            t += period;
        }
        reads
    }

    fn merge(parts: &[Vec<(i64, u16)>]) -> Vec<(i64, u16)> {
        let mut all = parts.concat();
        all.sort_unstable();
        all
    }

    #[test]
    fn the_first_count_waits_for_the_field_to_settle_then_full_snapshots_repeat() {
        let mut c = cabinet();
        let out = run(&mut c, &shelved(&[3, 1, 2], 0, 130_000, 200), 130_000);
        // First after appear window + hold-off (2.5 s), everything added.
        assert_eq!(out[0], (2_500, (ids(&[1, 2, 3]), ids(&[1, 2, 3]), vec![])));
        // Nothing changes: only the full snapshot every 60 s.
        assert_eq!(
            out[1..],
            [
                (62_500, (ids(&[1, 2, 3]), vec![], vec![])),
                (122_500, (ids(&[1, 2, 3]), vec![], vec![])),
            ]
        );
        assert_eq!(c.stats().snapshots, 3);
    }

    #[test]
    fn a_tag_flickering_at_the_edge_is_never_removed() {
        let mut c = cabinet();
        // Tag 9 at the edge of the field: read in pairs with 1.3 s gaps (below the hold-off).
        let mut edge = Vec::new();
        for k in 0..40 {
            edge.push((k * 1_300, 9));
            edge.push((k * 1_300 + 30, 9));
        }
        let reads = merge(&[shelved(&[1], 0, 52_000, 200), edge]);
        let out = run(&mut c, &reads, 52_000);
        assert_eq!(out, vec![(2_500, (ids(&[1, 9]), ids(&[1, 9]), vec![]))]);
    }

    #[test]
    fn a_real_removal_is_reported_exactly_once() {
        let mut c = cabinet();
        // Tag 2 is taken out at 10 s (last read at 9_801).
        let reads = merge(&[shelved(&[1], 0, 40_000, 200), shelved(&[2], 0, 10_000, 200)]);
        let out = run(&mut c, &reads, 40_000);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].1, (ids(&[1, 2]), ids(&[1, 2]), vec![]));
        // Removed once its last read is more than the hold-off old: 9_801 + 1_500, next poll.
        assert_eq!(out[1], (11_400, (ids(&[1]), vec![], ids(&[2]))));
    }

    #[test]
    fn a_document_put_back_is_added() {
        let mut c = cabinet();
        let reads = merge(&[
            shelved(&[1], 0, 20_000, 200),
            shelved(&[5], 8_000, 20_000, 200),
        ]);
        let out = run(&mut c, &reads, 20_000);
        assert_eq!(out[1], (8_200, (ids(&[1, 5]), ids(&[5]), vec![])));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_single_stray_read_is_never_added() {
        let mut c = cabinet();
        let reads = merge(&[shelved(&[1], 0, 20_000, 200), vec![(5_050, 7)]]);
        let out = run(&mut c, &reads, 20_000);
        assert_eq!(out, vec![(2_500, (ids(&[1]), ids(&[1]), vec![]))]);
    }

    #[test]
    fn changes_are_rate_limited_by_poll_but_not_by_snapshot() {
        let reads = merge(&[
            shelved(&[1], 0, 20_000, 200),
            shelved(&[5], 8_000, 20_000, 200),
            shelved(&[6], 8_400, 20_000, 200),
        ]);
        // Polled: tag 6 (8_600) waits until a hold-off after the snapshot for tag 5 (8_200).
        let mut c = cabinet();
        let out = run(&mut c, &reads, 20_000);
        assert_eq!(out[1], (8_200, (ids(&[1, 5]), ids(&[5]), vec![])));
        assert_eq!(out[2], (9_700, (ids(&[1, 5, 6]), ids(&[6]), vec![])));
        // `snapshot` reports it at once.
        let mut c = cabinet();
        let mut snaps = Vec::new();
        let mut next = 0;
        for now in (0..=9_000).step_by(100) {
            while next < reads.len() && reads[next].0 <= now {
                let (at_ms, n) = reads[next];
                c.handle_read(TagRead {
                    at_ms,
                    epc: epc(n),
                    antenna: 1,
                    rssi: 1,
                });
                next += 1;
            }
            snaps.extend(c.snapshot(now).map(|e| (now, lists(&e))));
        }
        assert_eq!(snaps[2], (8_600, (ids(&[1, 5, 6]), ids(&[6]), vec![])));
        // And without a change, `snapshot` reports nothing.
        assert_eq!(c.snapshot(9_100), None);
    }

    #[test]
    fn out_of_order_times_never_go_backwards() {
        let mut c = cabinet();
        let reads = [(1_000, 1), (1_100, 1), (900, 2), (1_050, 2)];
        for (at_ms, n) in reads {
            c.handle_read(TagRead {
                at_ms,
                epc: epc(n),
                antenna: 1,
                rssi: 1,
            });
        }
        assert_eq!(c.poll(1_000), None, "warming up");
        for (at_ms, n) in [(2_000, 1), (1_990, 2), (3_000, 2), (2_990, 1)] {
            c.handle_read(TagRead {
                at_ms,
                epc: epc(n),
                antenna: 1,
                rssi: 1,
            });
        }
        let first = c.poll(3_600).unwrap();
        assert_eq!(first.at_ms, 3_600);
        assert_eq!(lists(&first).0, ids(&[1, 2]));
        // A poll stamped in the past is taken as now: no event, no panic.
        assert_eq!(c.poll(3_000), None);
        assert_eq!(c.stats().clock_steps, 0);
    }

    #[test]
    fn a_full_cabinet_is_capped_at_the_list_limit() {
        let mut c = cabinet();
        for round in [0, 1_400, 2_800] {
            for n in 0..1_100u16 {
                for at_ms in [round, round + 10] {
                    c.handle_read(TagRead {
                        at_ms,
                        epc: epc(n),
                        antenna: 1,
                        rssi: 1,
                    });
                }
            }
        }
        let event = c.poll(3_000).unwrap();
        assert_eq!(event.body.validate(), Ok(()));
        assert_eq!(lists(&event).0, ids(&(0..1_024).collect::<Vec<_>>()));
        assert_eq!(
            c.stats().dropped_reads,
            6 * (1_100 - MAX_TAGS_PER_LIST as u64)
        );
    }

    proptest! {
        /// Arbitrary reads and polls with jittered times: never panics; every snapshot is valid,
        /// sorted, and follows from the previous one (present = previous + added − removed,
        /// added and removed disjoint, added ⊆ present, removed ∩ present = ∅).
        #[test]
        fn snapshots_chain(
            ops in proptest::collection::vec((any::<bool>(), -100i64..700, 0u16..8), 0..400),
        ) {
            let mut c = cabinet();
            let mut now = 0i64;
            let mut previous: Vec<Epc> = Vec::new();
            for (is_read, dt, n) in ops {
                now += dt;
                if is_read {
                    c.handle_read(TagRead { at_ms: now, epc: epc(n), antenna: 1, rssi: 1 });
                    continue;
                }
                let Some(event) = c.poll(now) else { continue };
                prop_assert_eq!(event.body.validate(), Ok(()));
                let (present, added, removed) = lists(&event);
                prop_assert!(present.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
                let mut expected: Vec<Epc> = previous
                    .iter()
                    .filter(|e| !removed.contains(e))
                    .chain(added.iter())
                    .copied()
                    .collect();
                expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                prop_assert_eq!(&expected, &present);
                prop_assert!(added.iter().all(|e| !removed.contains(e) && !previous.contains(e)));
                prop_assert!(removed.iter().all(|e| previous.contains(e)));
                previous = present;
            }
        }
    }
}
