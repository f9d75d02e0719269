//! Smoothing: from raw tag reads (hundreds per second) to movements.
//!
//! Three smoothers, one per reader:
//! - [`PresenceTracker`] ([`presence`]): a tag *appears* after `min_reads` reads within
//!   `appear_window_ms` and *disappears* after `holdoff_ms` without reads. The building block
//!   of the two others.
//! - [`GateSmoother`] ([`gate`]): passages through a gate, with their direction from antenna order
//!   (or photo-eye order), as [`EventBody::Passage`](custos_protocol::uplink::EventBody), plus an
//!   early [`Crossing`] notice so the alarm can sound while the person is still at the door.
//! - [`CabinetSmoother`] ([`cabinet`]): inventory snapshots of a cabinet and their differences,
//!   as [`EventBody::CabinetSnapshot`](custos_protocol::uplink::EventBody).
//!
//! # Purity and time
//!
//! Nothing here reads a clock, spawns a task or does I/O: time is passed in as `i64` Unix
//! milliseconds (on every read, and on every `poll(now_ms)`), so the smoothers are tested on
//! recorded read sequences and run unchanged on the simulator's virtual clock. The daemon feeds
//! reads with `handle_read` and calls `poll` after every batch of reads (for the fastest alarm)
//! and on a timer (every 100–250 ms, so hold-offs expire on time even when nothing is read).
//!
//! Time inside a smoother never runs backwards. Inputs are taken in arrival order; an input
//! stamped earlier than one already seen (reads from a driver thread arriving after the poll
//! tick, jitter) is taken as happening at the latest time seen, so a tag's `last_ms` never
//! decreases and `first_ms <= last_ms` always holds. A backward jump of more than
//! [`MAX_CLOCK_JITTER_MS`] is a wall-clock step: the smoother keeps running on its own continuous
//! time (hold-offs keep their length), counts the step (`clock_steps` in its stats, for a
//! `DeviceFault { kind: ClockStep }`), and from then on reports times in the new wall-clock frame.
//! A forward step cannot be told from a long silence: every hold-off elapses at once.
//!
//! # Memory
//!
//! Every map is bounded: a tracker holds at most [`DEFAULT_MAX_TAGS`] tags (configurable with
//! `with_max_tags`). When it is full, the not-yet-appeared candidate read least recently is
//! evicted (counted in `evicted`); when every tracked tag has appeared, the read of a new tag is
//! dropped (counted in `dropped_reads`): a tag that is present is never forgotten silently,
//! since that would report a removal that did not happen.

pub mod cabinet;
pub mod gate;
pub mod presence;

mod beams;

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{Direction, EventBody};

pub use cabinet::{CabinetConfig, CabinetSmoother, CabinetStats, DEFAULT_FULL_SNAPSHOT_MS};
pub use gate::{
    Crossing, DEFAULT_PASSAGE_GAP_MS, GateConfig, GateSmoother, GateStats, Output,
    PASSAGE_LINGER_MS, PassageId,
};
pub use presence::{
    DEFAULT_APPEAR_WINDOW_MS, DEFAULT_HOLDOFF_MS, DEFAULT_MAX_TAGS, DEFAULT_MIN_READS,
    MAX_MIN_READS, PresenceChange, PresenceStats, PresenceTracker, SideSeen, SmoothingConfig,
    TagSummary,
};

/// The smoothers' maps keyed by EPC hash every tag read (thousands a second at a busy gate):
/// they use foldhash, seeded per process, instead of std's SipHash, which was a fifth of the
/// daemon's CPU time at the wire ceiling. The maps are bounded (see *Memory*), so colliding
/// EPCs, even chosen by an attacker with writable tags, can only slow a bounded map.
pub(crate) type EpcMap<V> = HashMap<Epc, V, foldhash::fast::RandomState>;

/// A set of EPCs with the same (foldhash) hasher as the smoothers' EPC maps.
pub type EpcSet = HashSet<Epc, foldhash::fast::RandomState>;

/// How far an input may be stamped before the latest time already seen and still count as
/// jitter (taken as "now"); a larger backward jump is a wall-clock step (10 s).
pub const MAX_CLOCK_JITTER_MS: i64 = 10_000;

/// An event a smoother produced, not yet numbered: the outbox gives it its `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// When it happened (Unix ms): for a passage, when the first tag crossed; for a snapshot,
    /// when it was taken.
    pub at_ms: i64,
    /// What happened.
    pub body: EventBody,
}

/// A side of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The secure side (antennas `inner_antennas`, photo-eye `inner_beam_input`).
    Inner,
    /// The public side (antennas `outer_antennas`, photo-eye `outer_beam_input`).
    Outer,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Inner => Side::Outer,
            Side::Outer => Side::Inner,
        }
    }

    /// The direction of travel from this side to the other one.
    pub fn direction_from(self) -> Direction {
        match self {
            Side::Inner => Direction::Out,
            Side::Outer => Direction::In,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Inner => 0,
            Side::Outer => 1,
        }
    }
}

/// The side a direction of travel ends on.
fn destination(direction: Direction) -> Side {
    match direction {
        Direction::Out => Side::Outer,
        Direction::In => Side::Inner,
    }
}

/// Which side each antenna (1..=255) is on. Antenna 0 (not a valid 1-based number) and unlisted
/// antennas are on no side; an antenna listed on both sides counts as inner.
#[derive(Clone)]
struct SideMap([Option<Side>; 256]);

impl SideMap {
    fn none() -> Self {
        Self([None; 256])
    }

    fn new(inner: &[u8], outer: &[u8]) -> Self {
        let mut map = Self::none();
        for (list, side) in [(outer, Side::Outer), (inner, Side::Inner)] {
            for &antenna in list.iter().filter(|&&a| a != 0) {
                map.0[usize::from(antenna)] = Some(side);
            }
        }
        map
    }

    fn side(&self, antenna: u8) -> Option<Side> {
        self.0[usize::from(antenna)]
    }
}

impl std::fmt::Debug for SideMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |side| {
            (1..=255u8)
                .filter(|&a| self.side(a) == Some(side))
                .collect::<Vec<_>>()
        };
        f.debug_struct("SideMap")
            .field("inner", &list(Side::Inner))
            .field("outer", &list(Side::Outer))
            .finish()
    }
}

/// A smoother's own continuous time, fed with wall-clock inputs (see the module docs).
///
/// Internal time = wall time + `offset`; `offset` grows by the size of each backward step, so
/// internal time never decreases, and outputs are converted back with the current offset.
#[derive(Debug, Clone, Default)]
struct Clock {
    latest: Option<i64>,
    offset: i64,
    steps: u64,
}

impl Clock {
    /// Takes an input stamped `wall_ms` and returns its internal time (never below the latest).
    fn advance(&mut self, wall_ms: i64) -> i64 {
        let t = wall_ms.saturating_add(self.offset);
        let Some(latest) = self.latest else {
            self.latest = Some(t);
            return t;
        };
        if t >= latest {
            self.latest = Some(t);
            return t;
        }
        let back = latest.saturating_sub(t);
        if back > MAX_CLOCK_JITTER_MS {
            self.offset = self.offset.saturating_add(back);
            self.steps += 1;
        }
        latest
    }

    /// The wall time of an internal time, in the current wall-clock frame.
    fn wall(&self, internal_ms: i64) -> i64 {
        internal_ms.saturating_sub(self.offset)
    }
}

/// The order of EPCs in every list a smoother emits: by their bytes.
fn epc_order(a: &Epc, b: &Epc) -> Ordering {
    a.as_bytes().cmp(b.as_bytes())
}

fn sort_epcs(epcs: &mut [Epc]) {
    epcs.sort_unstable_by(epc_order);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_clamps_jitter_and_rebases_steps() {
        let mut c = Clock::default();
        assert_eq!(c.advance(1_000), 1_000);
        assert_eq!(c.advance(1_500), 1_500);
        // Jitter: earlier than the latest, taken as the latest.
        assert_eq!(c.advance(1_200), 1_500);
        assert_eq!(c.steps, 0);
        assert_eq!(c.wall(1_500), 1_500);
        // A step back by one hour: time continues from 1_500 internally.
        let t = c.advance(1_500 - 3_600_000);
        assert_eq!(t, 1_500);
        assert_eq!(c.steps, 1);
        // 100 ms later in the new frame is 100 ms later internally.
        assert_eq!(c.advance(1_600 - 3_600_000), 1_600);
        assert_eq!(c.wall(1_600), 1_600 - 3_600_000);
    }

    #[test]
    fn clock_never_panics_at_the_extremes() {
        let mut c = Clock::default();
        for t in [i64::MAX, i64::MIN, 0, i64::MIN, i64::MAX, -1] {
            let before = c.latest;
            let got = c.advance(t);
            assert!(before.is_none_or(|b| got >= b));
            let _ = c.wall(got);
        }
    }

    #[test]
    fn side_map_inner_wins_and_zero_is_nowhere() {
        let m = SideMap::new(&[0, 1, 2], &[2, 3]);
        assert_eq!(m.side(0), None);
        assert_eq!(m.side(1), Some(Side::Inner));
        assert_eq!(m.side(2), Some(Side::Inner));
        assert_eq!(m.side(3), Some(Side::Outer));
        assert_eq!(m.side(4), None);
        assert_eq!(Side::Inner.direction_from(), Direction::Out);
        assert_eq!(Side::Outer.direction_from(), Direction::In);
        assert_eq!(destination(Direction::Out), Side::Outer);
    }
}
