//! Per-reader tag presence: when a tag appears, and when it disappears.
//!
//! A tag *appears* once it has been read `min_reads` times within `appear_window_ms` (a single
//! stray read, a reflection or a tag passing by in the corridor, is not a presence). It
//! *disappears* once it has not been read for more than `holdoff_ms`, so a tag flickering at the
//! edge of the field (gaps shorter than the hold-off) stays present. Disappearance is therefore
//! reported `holdoff_ms` after the last read: that is the latency of every "gone" decision.
//!
//! Reads of a tag that has not appeared yet (a *candidate*) are forgotten once they are older
//! than the window. The summary of a presence ([`TagSummary`]) keeps the raw read count, the peak
//! RSSI, the first and last antenna and, when the tracker knows the gate's sides, when the tag
//! was first and last read on each side.

use std::collections::VecDeque;

use custos_protocol::epc::Epc;
use custos_protocol::uplink::TagSighting;

use super::{Clock, EpcMap, Side, SideMap, epc_order};
use crate::model::TagRead;

/// Default [`SmoothingConfig::min_reads`].
pub const DEFAULT_MIN_READS: u32 = 2;
/// Default [`SmoothingConfig::appear_window_ms`].
pub const DEFAULT_APPEAR_WINDOW_MS: i64 = 1_000;
/// Default [`SmoothingConfig::holdoff_ms`].
pub const DEFAULT_HOLDOFF_MS: i64 = 1_500;
/// The largest `min_reads` honoured (larger values count as this): bounds the read times kept
/// per candidate tag.
pub const MAX_MIN_READS: u32 = 64;
/// How many tags one tracker follows at most, unless set with `with_max_tags`.
pub const DEFAULT_MAX_TAGS: usize = 4_096;

/// The presence rules, shared by every smoother.
///
/// Out-of-range values are not errors: `min_reads` counts as 1..=[`MAX_MIN_READS`] and
/// negative durations as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmoothingConfig {
    /// Reads needed within `appear_window_ms` before a tag counts as present (default 2).
    pub min_reads: u32,
    /// The window those reads must fall in, in ms (default 1000).
    pub appear_window_ms: i64,
    /// A present tag disappears after this long without a read, in ms (default 1500). This is
    /// the latency of every disappearance, and so of a gate passage's final report.
    pub holdoff_ms: i64,
}

impl Default for SmoothingConfig {
    fn default() -> Self {
        Self {
            min_reads: DEFAULT_MIN_READS,
            appear_window_ms: DEFAULT_APPEAR_WINDOW_MS,
            holdoff_ms: DEFAULT_HOLDOFF_MS,
        }
    }
}

impl SmoothingConfig {
    pub(super) fn normalized(self) -> Self {
        Self {
            min_reads: self.min_reads.clamp(1, MAX_MIN_READS),
            appear_window_ms: self.appear_window_ms.max(0),
            holdoff_ms: self.holdoff_ms.max(0),
        }
    }
}

/// When a tag was read on one side of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideSeen {
    /// The first read on this side (Unix ms).
    pub first_ms: i64,
    /// The last read on this side (Unix ms).
    pub last_ms: i64,
    /// The antenna of the first read on this side.
    pub antenna_first: u8,
    /// The antenna of the last read on this side.
    pub antenna_last: u8,
    /// Reads on this side.
    pub reads: u32,
}

impl SideSeen {
    fn new(t: i64, antenna: u8) -> Self {
        Self {
            first_ms: t,
            last_ms: t,
            antenna_first: antenna,
            antenna_last: antenna,
            reads: 1,
        }
    }

    fn record(&mut self, t: i64, antenna: u8) {
        self.last_ms = self.last_ms.max(t);
        self.antenna_last = antenna;
        self.reads = self.reads.saturating_add(1);
    }
}

/// One presence of a tag, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagSummary {
    /// The tag.
    pub epc: Epc,
    /// The first read (Unix ms).
    pub first_ms: i64,
    /// The last read (Unix ms), never before `first_ms`.
    pub last_ms: i64,
    /// The antenna of the first read.
    pub antenna_first: u8,
    /// The antenna of the last read.
    pub antenna_last: u8,
    /// Raw reads (at least 1).
    pub reads: u32,
    /// The strongest RSSI byte read (higher is stronger).
    pub peak_rssi: u8,
    /// Reads on the inner antennas, if the tracker knows the sides and there were any.
    pub inner: Option<SideSeen>,
    /// Reads on the outer antennas, if the tracker knows the sides and there were any.
    pub outer: Option<SideSeen>,
}

impl TagSummary {
    fn new(epc: Epc, t: i64, antenna: u8, rssi: u8, side: Option<Side>) -> Self {
        let mut summary = Self {
            epc,
            first_ms: t,
            last_ms: t,
            antenna_first: antenna,
            antenna_last: antenna,
            reads: 1,
            peak_rssi: rssi,
            inner: None,
            outer: None,
        };
        if let Some(side) = side {
            *summary.side_mut(side) = Some(SideSeen::new(t, antenna));
        }
        summary
    }

    fn record(&mut self, t: i64, antenna: u8, rssi: u8, side: Option<Side>) {
        self.last_ms = self.last_ms.max(t);
        self.antenna_last = antenna;
        self.reads = self.reads.saturating_add(1);
        self.peak_rssi = self.peak_rssi.max(rssi);
        if let Some(side) = side {
            match self.side_mut(side) {
                Some(seen) => seen.record(t, antenna),
                slot => *slot = Some(SideSeen::new(t, antenna)),
            }
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Option<SideSeen> {
        match side {
            Side::Inner => &mut self.inner,
            Side::Outer => &mut self.outer,
        }
    }

    /// The reads on one side, if any.
    pub fn side(&self, side: Side) -> Option<&SideSeen> {
        match side {
            Side::Inner => self.inner.as_ref(),
            Side::Outer => self.outer.as_ref(),
        }
    }

    /// The summary as an uplink [`TagSighting`].
    pub fn sighting(&self) -> TagSighting {
        TagSighting {
            epc: self.epc,
            antenna_first: self.antenna_first,
            antenna_last: self.antenna_last,
            reads: self.reads.max(1),
            peak_rssi: self.peak_rssi,
            first_ms: self.first_ms,
            last_ms: self.last_ms.max(self.first_ms),
        }
    }

    fn to_wall(mut self, clock: &Clock) -> Self {
        self.first_ms = clock.wall(self.first_ms);
        self.last_ms = clock.wall(self.last_ms);
        for seen in [&mut self.inner, &mut self.outer].into_iter().flatten() {
            seen.first_ms = clock.wall(seen.first_ms);
            seen.last_ms = clock.wall(seen.last_ms);
        }
        self
    }
}

/// A change of presence, reported by [`PresenceTracker::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceChange {
    /// The tag reached `min_reads` within the window; the summary so far (its `last_ms` is the
    /// read that made it appear).
    Appeared(TagSummary),
    /// The tag was not read for more than the hold-off; the summary of the whole presence.
    Disappeared(TagSummary),
}

impl PresenceChange {
    /// The tag's summary.
    pub fn summary(&self) -> &TagSummary {
        match self {
            PresenceChange::Appeared(s) | PresenceChange::Disappeared(s) => s,
        }
    }
}

/// What a tracker has counted since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PresenceStats {
    /// Candidate tags forgotten to make room for a new tag (the tracker was full).
    pub evicted: u64,
    /// Reads of new tags dropped because every tracked tag was present (the tracker was full).
    pub dropped_reads: u64,
    /// Backward wall-clock steps seen (see the module docs of [`crate::smoothing`]).
    pub clock_steps: u64,
}

/// What one read did to the tracker (for the smoothers built on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadOutcome {
    /// The tracker was full of present tags: the read was dropped.
    Dropped,
    /// The tag is a candidate: not enough reads yet.
    Candidate,
    /// This read made the tag appear.
    Appeared(TagSummary),
    /// The tag was already present.
    Present,
}

#[derive(Debug, Clone)]
struct Track {
    appeared: bool,
    /// A candidate's read times within the window (at most `min_reads`); empty once appeared.
    window: VecDeque<i64>,
    summary: TagSummary,
}

impl Track {
    /// The first internal time at which the track expires: a presence more than `holdoff_ms`
    /// after its last read, a candidate more than `appear_window_ms` after its last read.
    fn due(&self, config: &SmoothingConfig) -> i64 {
        let wait = if self.appeared {
            config.holdoff_ms
        } else {
            config.appear_window_ms
        };
        self.summary.last_ms.saturating_add(wait).saturating_add(1)
    }
}

/// Tracks which tags one reader sees (see the module docs).
///
/// ```
/// use custos_daemon::model::TagRead;
/// use custos_daemon::smoothing::{PresenceChange, PresenceTracker, SmoothingConfig};
/// use custos_protocol::epc::Epc;
///
/// let mut tracker = PresenceTracker::new(SmoothingConfig::default());
/// let epc = Epc::from_hex("E2001234").unwrap();
/// for at_ms in [0, 100] {
///     tracker.handle_read(TagRead { at_ms, epc, antenna: 1, rssi: 60 });
/// }
/// assert!(matches!(tracker.poll(100)[..], [PresenceChange::Appeared(_)]));
/// assert!(tracker.poll(1_600).is_empty()); // 1500 ms without a read: still within hold-off
/// assert!(matches!(tracker.poll(1_601)[..], [PresenceChange::Disappeared(_)]));
/// ```
#[derive(Debug, Clone)]
pub struct PresenceTracker {
    config: SmoothingConfig,
    clock: Clock,
    sides: SideMap,
    max_tags: usize,
    tracks: EpcMap<Track>,
    /// No track can expire before this internal time: a lower bound, lowered by every read
    /// that sets a track's deadline and recomputed by every full sweep, so `expire` walks the
    /// tracks only when one may be due (not after every read).
    next_due: i64,
    /// Appearances not yet returned by `poll` (internal time); at most one per present tag.
    changes: Vec<PresenceChange>,
    stats: PresenceStats,
}

impl PresenceTracker {
    /// A tracker that does not know about gate sides (a cabinet, a desk).
    pub fn new(config: SmoothingConfig) -> Self {
        Self {
            config: config.normalized(),
            clock: Clock::default(),
            sides: SideMap::none(),
            max_tags: DEFAULT_MAX_TAGS,
            tracks: EpcMap::default(),
            next_due: i64::MAX,
            changes: Vec::new(),
            stats: PresenceStats::default(),
        }
    }

    /// A tracker whose summaries also say when each tag was read on each side of a gate.
    /// Antennas in neither list count for the tag but for no side; an antenna in both is inner.
    pub fn with_sides(config: SmoothingConfig, inner: &[u8], outer: &[u8]) -> Self {
        Self {
            sides: SideMap::new(inner, outer),
            ..Self::new(config)
        }
    }

    /// Sets how many tags are tracked at most (at least 1; default [`DEFAULT_MAX_TAGS`]).
    pub fn with_max_tags(mut self, max_tags: usize) -> Self {
        self.set_max_tags(max_tags);
        self
    }

    pub(super) fn set_max_tags(&mut self, max_tags: usize) {
        self.max_tags = max_tags.max(1);
    }

    /// Takes one read. Appearances are reported by the next [`poll`](Self::poll).
    pub fn handle_read(&mut self, read: TagRead) {
        let at_ms = self.clock.advance(read.at_ms);
        if let ReadOutcome::Appeared(summary) = self.record(TagRead { at_ms, ..read }) {
            self.changes.push(PresenceChange::Appeared(summary));
        }
    }

    /// The changes since the last poll, as of `now_ms`: appearances in the order they happened,
    /// then the tags whose hold-off has elapsed (by last read, then EPC).
    pub fn poll(&mut self, now_ms: i64) -> Vec<PresenceChange> {
        let t = self.clock.advance(now_ms);
        let gone = self.expire(t);
        let mut out = std::mem::take(&mut self.changes);
        out.extend(gone.into_iter().map(PresenceChange::Disappeared));
        for change in &mut out {
            *change = match *change {
                PresenceChange::Appeared(s) => PresenceChange::Appeared(s.to_wall(&self.clock)),
                PresenceChange::Disappeared(s) => {
                    PresenceChange::Disappeared(s.to_wall(&self.clock))
                }
            };
        }
        out
    }

    /// Whether the tag is present (appeared, hold-off not elapsed at the last poll).
    pub fn is_present(&self, epc: &Epc) -> bool {
        self.tracks.get(epc).is_some_and(|t| t.appeared)
    }

    /// The present tags, ordered by their bytes.
    pub fn present(&self) -> Vec<Epc> {
        let mut epcs: Vec<Epc> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.appeared)
            .map(|(e, _)| *e)
            .collect();
        super::sort_epcs(&mut epcs);
        epcs
    }

    /// How many tags are tracked (present and candidates); never above the maximum.
    pub fn tracked(&self) -> usize {
        self.tracks.len()
    }

    /// What the tracker has counted.
    pub fn stats(&self) -> PresenceStats {
        PresenceStats {
            clock_steps: self.clock.steps,
            ..self.stats
        }
    }

    /// Records a read whose time is already internal (monotonic): the core of `handle_read`,
    /// used directly by the gate and cabinet smoothers, which keep their own clock.
    pub(super) fn record(&mut self, read: TagRead) -> ReadOutcome {
        let TagRead {
            at_ms: t,
            epc,
            antenna,
            rssi,
        } = read;
        let side = self.sides.side(antenna);
        let min_reads = self.config.min_reads as usize;
        let config = self.config;
        // A read moves its track's due time later, except when a candidate appears (a hold-off
        // shorter than the window) or a track is new: only those can lower the skip bound.
        if let Some(track) = self.tracks.get_mut(&epc) {
            if track.appeared {
                track.summary.record(t, antenna, rssi, side);
                return ReadOutcome::Present;
            }
            let floor = t.saturating_sub(self.config.appear_window_ms);
            while track.window.front().is_some_and(|&w| w < floor) {
                track.window.pop_front();
            }
            if track.window.is_empty() {
                // Every earlier read fell out of the window: a fresh candidacy.
                track.summary = TagSummary::new(epc, t, antenna, rssi, side);
            } else {
                track.summary.record(t, antenna, rssi, side);
            }
            track.window.push_back(t);
            if track.window.len() >= min_reads {
                track.appeared = true;
                track.window = VecDeque::new();
                self.next_due = self.next_due.min(track.due(&config));
                return ReadOutcome::Appeared(track.summary);
            }
            return ReadOutcome::Candidate;
        }
        if self.tracks.len() >= self.max_tags && !self.evict_candidate() {
            self.stats.dropped_reads += 1;
            return ReadOutcome::Dropped;
        }
        let summary = TagSummary::new(epc, t, antenna, rssi, side);
        let appeared = min_reads <= 1;
        let mut window = VecDeque::new();
        if !appeared {
            window.reserve_exact(min_reads);
            window.push_back(t);
        }
        let track = Track {
            appeared,
            window,
            summary,
        };
        self.next_due = self.next_due.min(track.due(&config));
        self.tracks.insert(epc, track);
        if appeared {
            ReadOutcome::Appeared(summary)
        } else {
            ReadOutcome::Candidate
        }
    }

    /// Ends the presences whose hold-off has elapsed at internal time `t` (returned, by last
    /// read then EPC) and forgets candidates whose reads fell out of the window.
    pub(super) fn expire(&mut self, t: i64) -> Vec<TagSummary> {
        let mut gone = Vec::new();
        if t < self.next_due {
            return gone;
        }
        let config = self.config;
        let mut next_due = i64::MAX;
        self.tracks.retain(|_, track| {
            let due = track.due(&config);
            if t < due {
                next_due = next_due.min(due);
                return true;
            }
            if track.appeared {
                gone.push(track.summary);
            }
            false
        });
        self.next_due = next_due;
        gone.sort_unstable_by(|a, b| a.last_ms.cmp(&b.last_ms).then(epc_order(&a.epc, &b.epc)));
        gone
    }

    /// The summary of a tracked tag, present or candidate (internal times).
    pub(super) fn summary(&self, epc: &Epc) -> Option<&TagSummary> {
        self.tracks.get(epc).map(|t| &t.summary)
    }

    /// Removes the least recently read candidate; false if every tracked tag is present.
    fn evict_candidate(&mut self) -> bool {
        let victim = self
            .tracks
            .iter()
            .filter(|(_, t)| !t.appeared)
            .min_by(|(ea, a), (eb, b)| {
                a.summary
                    .last_ms
                    .cmp(&b.summary.last_ms)
                    .then(epc_order(ea, eb))
            })
            .map(|(e, _)| *e);
        match victim {
            Some(epc) => {
                self.tracks.remove(&epc);
                self.stats.evicted += 1;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn epc(n: u16) -> Epc {
        Epc::new(&[0xE2, 0x00, (n >> 8) as u8, n as u8]).unwrap()
    }

    /// A recorded sequence: (at_ms, tag number, antenna, rssi).
    fn feed(tracker: &mut PresenceTracker, reads: &[(i64, u16, u8, u8)]) {
        for &(at_ms, n, antenna, rssi) in reads {
            tracker.handle_read(TagRead {
                at_ms,
                epc: epc(n),
                antenna,
                rssi,
            });
        }
    }

    fn appeared(changes: &[PresenceChange]) -> Vec<Epc> {
        changes
            .iter()
            .filter(|c| matches!(c, PresenceChange::Appeared(_)))
            .map(|c| c.summary().epc)
            .collect()
    }

    fn disappeared(changes: &[PresenceChange]) -> Vec<Epc> {
        changes
            .iter()
            .filter(|c| matches!(c, PresenceChange::Disappeared(_)))
            .map(|c| c.summary().epc)
            .collect()
    }

    #[test]
    fn a_single_stray_read_never_appears() {
        let mut t = PresenceTracker::new(SmoothingConfig::default());
        feed(&mut t, &[(1_000, 1, 1, 50)]);
        assert!(t.poll(1_000).is_empty());
        assert!(t.poll(1_900).is_empty());
        assert_eq!(t.tracked(), 1);
        // Once the read is older than the window, the candidate is forgotten.
        assert!(t.poll(2_001).is_empty());
        assert_eq!(t.tracked(), 0);
        assert!(t.poll(10_000).is_empty());
    }

    #[test]
    fn two_reads_further_apart_than_the_window_do_not_appear() {
        let mut t = PresenceTracker::new(SmoothingConfig::default());
        // No poll in between: the second read starts a fresh candidacy.
        feed(&mut t, &[(0, 1, 1, 50), (1_001, 1, 1, 50)]);
        assert!(t.poll(1_001).is_empty());
        feed(&mut t, &[(1_500, 1, 2, 70)]);
        let changes = t.poll(1_500);
        assert_eq!(appeared(&changes), vec![epc(1)]);
        let s = changes[0].summary();
        assert_eq!((s.first_ms, s.last_ms, s.reads), (1_001, 1_500, 2));
        assert_eq!((s.antenna_first, s.antenna_last, s.peak_rssi), (1, 2, 70));
    }

    #[test]
    fn appears_after_min_reads_and_disappears_once_after_the_holdoff() {
        let config = SmoothingConfig {
            min_reads: 3,
            ..SmoothingConfig::default()
        };
        let mut t = PresenceTracker::new(config);
        feed(&mut t, &[(0, 7, 1, 40), (300, 7, 2, 90)]);
        assert!(t.poll(300).is_empty());
        assert!(!t.is_present(&epc(7)));
        feed(&mut t, &[(600, 7, 1, 60)]);
        let changes = t.poll(600);
        assert_eq!(appeared(&changes), vec![epc(7)]);
        assert!(t.is_present(&epc(7)));
        feed(&mut t, &[(900, 7, 3, 10)]);
        assert!(
            t.poll(2_400).is_empty(),
            "exactly the hold-off: still present"
        );
        let changes = t.poll(2_401);
        assert_eq!(disappeared(&changes), vec![epc(7)]);
        assert_eq!(
            changes[0].summary().sighting(),
            TagSighting {
                epc: epc(7),
                antenna_first: 1,
                antenna_last: 3,
                reads: 4,
                peak_rssi: 90,
                first_ms: 0,
                last_ms: 900,
            }
        );
        assert!(t.poll(5_000).is_empty());
        assert_eq!(t.present(), Vec::<Epc>::new());
    }

    #[test]
    fn flicker_within_the_holdoff_keeps_the_tag_present() {
        let mut t = PresenceTracker::new(SmoothingConfig::default());
        // Read in bursts with 1.4 s gaps (below the 1.5 s hold-off), polled every 100 ms.
        let mut reads = Vec::new();
        for burst in 0..10i64 {
            let at = burst * 1_400;
            reads.push((at, 1, 1, 30));
            reads.push((at + 20, 1, 1, 31));
        }
        let mut all = Vec::new();
        let mut next = 0;
        for now in (0..14_000).step_by(100) {
            while next < reads.len() && reads[next].0 <= now {
                feed(&mut t, &reads[next..=next]);
                next += 1;
            }
            all.extend(t.poll(now));
        }
        assert_eq!(appeared(&all), vec![epc(1)]);
        assert!(disappeared(&all).is_empty());
        let gone = t.poll(12_620 + 1_501);
        assert_eq!(disappeared(&gone), vec![epc(1)]);
        assert_eq!(gone[0].summary().reads, 20);
    }

    #[test]
    fn sides_are_summarised() {
        let mut t = PresenceTracker::with_sides(SmoothingConfig::default(), &[1, 2], &[3, 4]);
        feed(
            &mut t,
            &[(0, 1, 1, 1), (100, 1, 2, 1), (200, 1, 9, 1), (300, 1, 3, 1)],
        );
        let gone = t.poll(5_000);
        assert_eq!(gone.len(), 2, "appeared, then disappeared");
        let s = gone[1].summary();
        assert_eq!(
            s.side(Side::Inner),
            Some(&SideSeen {
                first_ms: 0,
                last_ms: 100,
                antenna_first: 1,
                antenna_last: 2,
                reads: 2
            })
        );
        assert_eq!(s.outer.map(|o| (o.first_ms, o.reads)), Some((300, 1)));
        assert_eq!(s.reads, 4);
        let plain = {
            let mut t = PresenceTracker::new(SmoothingConfig::default());
            feed(&mut t, &[(0, 1, 1, 1), (100, 1, 3, 1)]);
            t.poll(5_000)
        };
        assert_eq!(plain[1].summary().inner, None);
    }

    #[test]
    fn out_of_order_reads_are_clamped_never_backwards() {
        let mut t = PresenceTracker::new(SmoothingConfig::default());
        feed(
            &mut t,
            &[(1_000, 1, 1, 1), (1_200, 1, 2, 1), (900, 1, 3, 1)],
        );
        let changes = t.poll(1_100);
        let s = changes[0].summary();
        assert_eq!((s.first_ms, s.last_ms), (1_000, 1_200));
        // The late read (900) counts, taken at 1_200; the poll at 1_100 is taken at 1_200 too.
        assert!(t.poll(2_700).is_empty());
        let gone = t.poll(2_701);
        let s = gone[0].summary();
        assert_eq!(
            (s.first_ms, s.last_ms, s.reads, s.antenna_last),
            (1_000, 1_200, 3, 3)
        );
        assert_eq!(t.stats().clock_steps, 0);
    }

    #[test]
    fn a_clock_step_back_keeps_holdoffs_and_reports_in_the_new_frame() {
        let mut t = PresenceTracker::new(SmoothingConfig::default());
        let hour = 3_600_000;
        feed(&mut t, &[(hour, 1, 1, 1), (hour + 100, 1, 1, 1)]);
        assert_eq!(appeared(&t.poll(hour + 100)), vec![epc(1)]);
        // The wall clock steps back one hour; reads continue.
        feed(&mut t, &[(200, 1, 1, 1)]);
        assert_eq!(t.stats().clock_steps, 1);
        assert!(t.poll(1_700).is_empty(), "1.5 s after the last read");
        let gone = t.poll(1_701);
        let s = gone[0].summary();
        // The stepped read is taken at the latest time seen: internal reads at +0, +100, +100,
        // reported in the new frame (the step absorbed the 100 ms between the last two).
        assert_eq!((s.first_ms, s.last_ms, s.reads), (100, 200, 3));
    }

    #[test]
    fn min_reads_one_appears_at_once_and_zero_counts_as_one() {
        for min_reads in [0, 1] {
            let mut t = PresenceTracker::new(SmoothingConfig {
                min_reads,
                ..SmoothingConfig::default()
            });
            feed(&mut t, &[(5, 3, 1, 1)]);
            assert_eq!(appeared(&t.poll(5)), vec![epc(3)]);
        }
    }

    #[test]
    fn memory_cap_evicts_the_oldest_candidate_then_drops_reads() {
        let mut t = PresenceTracker::new(SmoothingConfig::default()).with_max_tags(3);
        // Tags 1 and 2 present; tag 3 a candidate.
        feed(
            &mut t,
            &[
                (0, 1, 1, 1),
                (1, 1, 1, 1),
                (2, 2, 1, 1),
                (3, 2, 1, 1),
                (4, 3, 1, 1),
            ],
        );
        // Tag 4 evicts candidate 3.
        feed(&mut t, &[(5, 4, 1, 1)]);
        assert_eq!(t.tracked(), 3);
        assert_eq!(t.stats().evicted, 1);
        feed(&mut t, &[(6, 4, 1, 1)]);
        assert_eq!(appeared(&t.poll(6)), vec![epc(1), epc(2), epc(4)]);
        // Full of present tags: a new tag's reads are dropped, the present ones kept.
        feed(&mut t, &[(7, 5, 1, 1), (8, 5, 1, 1)]);
        assert_eq!(t.stats().dropped_reads, 2);
        assert_eq!(t.present(), vec![epc(1), epc(2), epc(4)]);
        // Once they are gone there is room again.
        assert_eq!(t.poll(2_000).len(), 3);
        feed(&mut t, &[(2_001, 5, 1, 1), (2_002, 5, 1, 1)]);
        assert_eq!(appeared(&t.poll(2_002)), vec![epc(5)]);
    }

    #[test]
    fn default_cap_bounds_a_flood_of_stray_tags() {
        let mut t = PresenceTracker::new(SmoothingConfig::default());
        for n in 0..6_000u16 {
            feed(&mut t, &[(i64::from(n) / 10, n, 1, 1)]);
        }
        assert_eq!(t.tracked(), DEFAULT_MAX_TAGS);
        assert_eq!(t.stats().evicted, 6_000 - DEFAULT_MAX_TAGS as u64);
        // The survivors are the newest.
        assert!(t.summary(&epc(5_999)).is_some());
        assert!(t.summary(&epc(0)).is_none());
    }

    proptest! {
        /// Arbitrary reads and polls, at arbitrary (even wild, out-of-order) times: never
        /// panics, never tracks more than the cap, every presence appears before it disappears
        /// and at most once at a time, and every summary has `first_ms <= last_ms`, reads >= 1.
        #[test]
        fn arbitrary_sequences_keep_the_invariants(
            ops in proptest::collection::vec(
                (any::<bool>(), -2_000i64..3_000, 0u16..12, any::<u8>(), any::<u8>()), 0..300),
            wild in proptest::option::of(any::<i64>()),
        ) {
            let mut t = PresenceTracker::new(SmoothingConfig::default()).with_max_tags(8);
            let mut now = 0i64;
            let mut present = std::collections::HashSet::new();
            for (i, (is_read, dt, n, antenna, rssi)) in ops.into_iter().enumerate() {
                now = now.saturating_add(dt);
                if i == 7 {
                    if let Some(w) = wild { now = w; }
                }
                if is_read {
                    t.handle_read(TagRead { at_ms: now, epc: epc(n), antenna, rssi });
                } else {
                    for change in t.poll(now) {
                        let s = change.summary();
                        prop_assert!(s.first_ms <= s.last_ms);
                        prop_assert!(s.reads >= 1);
                        match change {
                            PresenceChange::Appeared(_) => prop_assert!(present.insert(s.epc)),
                            PresenceChange::Disappeared(_) => prop_assert!(present.remove(&s.epc)),
                        }
                    }
                    // As if every track were swept at every poll: none is kept past its due
                    // time, and the skip bound is never later than the earliest due time.
                    let internal = t.clock.latest.unwrap_or(i64::MIN);
                    let config = t.config;
                    let earliest = t.tracks.values().map(|tr| tr.due(&config)).min();
                    prop_assert!(earliest.is_none_or(|due| internal < due));
                    prop_assert!(t.next_due <= earliest.unwrap_or(i64::MAX));
                }
                prop_assert!(t.tracked() <= 8);
            }
        }
    }
}
