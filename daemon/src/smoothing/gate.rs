//! Gate passages: which tags went through a door together, and in which direction.
//!
//! # Direction from antenna order (the default)
//!
//! The presence rules of [`presence`](super::presence) are applied to each side separately: a
//! tag is *on* a side once it has been read `min_reads` times within `appear_window_ms` on that
//! side's antennas, and *leaves* the side after `holdoff_ms` without a read there. The side a tag
//! is first on is its *origin*. When it then comes onto the other side, the tag has *crossed*:
//! inner then outer is [`Direction::Out`], outer then inner is [`Direction::In`]. A tag that is
//! only ever on one side (a person who turned back before the door) never crosses and produces
//! nothing; a single stray read on the far side (below `min_reads`) does not count either.
//! Reads on antennas listed on neither side are ignored (counted in `ignored_reads`).
//!
//! Tags that cross in the same direction within `passage_gap_ms` of the first crossing of a
//! group form one passage (two people 5 s apart make two passages; two tags in one bag make
//! one). A passage holds at most `MAX_TAGS_PER_LIST` tags; more start another passage.
//!
//! # Two outputs: a fast provisional notice, then the final passage
//!
//! The alarm must sound while the person is still at the door, but a tag's final count and
//! whether the person really went through are only known once the tag has left the field. So
//! [`GateSmoother::poll`] emits, for one [`PassageId`]:
//! 1. [`Output::Crossing`] as soon as carrier tags have crossed (at the first poll after the read
//!    that established the crossing: latency = the daemon's poll period). It names the carriers
//!    and the badges seen so far, so the gate can decide with its cached policy and sound the
//!    alarm at once. It is not an event: nothing is stored for it.
//! 2. Then exactly one of: [`Output::Passage`], the event to store and upload (with final read
//!    counts, peak RSSI and the badges read during the passage), or [`Output::TurnedBack`] when
//!    every announced carrier went back to the side it came from. A passage is final once every
//!    one of its tags has left the field (`holdoff_ms` after its last read: latency ≈ the time
//!    the person takes to walk out of the field + `holdoff_ms`, and never less than
//!    `passage_gap_ms` after the first crossing, so that companions can join), or
//!    [`PASSAGE_LINGER_MS`] after a tag crossed if it stays in the field (a tag dropped in the
//!    doorway, a person waiting at the door).
//!
//! A tag's crossing is judged by the side it was last read on (among sides it was on): if that
//! is the side it crossed to, it is in the passage; if it went back, it is not (a person who
//! stepped into the outer field and turned back). So the final direction always agrees with the
//! tag's sighting: its `antenna_first` is on the side it came from, its `antenna_last` on the
//! side it went to. A tag in the middle of the gate, read on both sides at once, crosses once:
//! it crosses again only after its crossing has been judged.
//!
//! This design gives the fastest alarm (no wait for grouping or hold-off) without duplicate
//! events (one event per passage, written once with final counts). The cost: the server's
//! verdict, which needs the stored passage, comes about `holdoff_ms` later than the local one.
//!
//! # Badges
//!
//! [`GateSmoother::set_badges`] tells staff badges from carriers (the daemon learns badge EPCs
//! from the server). Badges go through the same rules but never raise a crossing notice or make
//! a passage on their own (a passage has at least one carrier tag). A passage lists every badge
//! read at the gate from `passage_gap_ms` before its first crossing until it is final, whether
//! or not the badge crossed (badges are often read on one side only).
//!
//! # Photo-eyes (`use_beams`)
//!
//! With photo-eyes, [`GateSmoother::handle_beam`] drives the passages and antennas do not matter
//! for direction: a passage starts when a beam breaks; the direction is established when the
//! other beam breaks ([`Output::Crossing`] then); it ends when both beams are restored, and is
//! final `holdoff_ms` later, with every tag that appeared (`min_reads`) and was read from the
//! first break until then. If the beam restored last is the one broken first, the person turned
//! back. A beam sequence without carrier tags yields no passage. A beam still broken
//! [`PASSAGE_LINGER_MS`] after the first break closes the passage as it stands (fail secure: an
//! established direction is reported). In this mode reads are never ignored for their antenna.

use std::collections::{HashMap, HashSet};

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{Direction, EventBody, MAX_TAGS_PER_LIST, TagSighting};

use super::beams::BeamGate;
use super::presence::{
    DEFAULT_MAX_TAGS, PresenceTracker, ReadOutcome, SmoothingConfig, TagSummary,
};
use super::{Clock, NewEvent, Side, SideMap, destination, epc_order};
use crate::model::{ReaderName, TagRead};

/// Default [`GateConfig::passage_gap_ms`].
pub const DEFAULT_PASSAGE_GAP_MS: i64 = 2_000;

/// The longest a passage waits for its tags to leave the field (or for the photo-eyes to be
/// restored) after a crossing before it is judged as it stands (10 s).
pub const PASSAGE_LINGER_MS: i64 = 10_000;

/// How a gate's reader is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    /// Antennas on the secure side (1-based). An antenna also listed as outer counts as inner.
    pub inner_antennas: Vec<u8>,
    /// Antennas on the public side (1-based).
    pub outer_antennas: Vec<u8>,
    /// The presence rules, applied per side (see the module docs).
    pub smoothing: SmoothingConfig,
    /// Tags crossing within this long of a passage's first crossing join it (default 2000 ms;
    /// negative counts as 0).
    pub passage_gap_ms: i64,
    /// Take the direction from the photo-eyes ([`GateSmoother::handle_beam`]) instead of the
    /// antenna order.
    pub use_beams: bool,
}

impl GateConfig {
    /// A gate with these antennas and every other setting at its default.
    pub fn new(inner_antennas: Vec<u8>, outer_antennas: Vec<u8>) -> Self {
        Self {
            inner_antennas,
            outer_antennas,
            smoothing: SmoothingConfig::default(),
            passage_gap_ms: DEFAULT_PASSAGE_GAP_MS,
            use_beams: false,
        }
    }
}

/// Names one passage across its [`Output::Crossing`] notices and its final output. Ids increase
/// within one smoother.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PassageId(pub u64);

/// Carrier tags have just crossed: the provisional notice that lets the gate alarm at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// The passage they belong to (several notices may name the same passage).
    pub passage: PassageId,
    /// When the first of these tags crossed (Unix ms).
    pub at_ms: i64,
    /// The direction.
    pub direction: Direction,
    /// The carrier tags that crossed since the last notice (never empty), by their bytes.
    pub tags: Vec<Epc>,
    /// Every badge read at the gate for this passage so far, by their bytes.
    pub badges: Vec<Epc>,
}

/// What [`GateSmoother::poll`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Provisional: carriers crossed (see the module docs). Not an event.
    Crossing(Crossing),
    /// Final: the passage event to store, always an [`EventBody::Passage`] with at least one
    /// carrier tag and `local_verdict: None`.
    Passage {
        /// The passage.
        passage: PassageId,
        /// The event (`at_ms` = the first crossing).
        event: NewEvent,
    },
    /// Final: the passage announced by earlier crossing notices did not happen (the carriers
    /// went back). Nothing is stored.
    TurnedBack {
        /// The passage.
        passage: PassageId,
    },
}

/// What a gate smoother has counted since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Reads on an antenna listed on neither side (or antenna 0), ignored.
    pub ignored_reads: u64,
    /// Reads of new tags dropped because the smoother was full.
    pub dropped_reads: u64,
    /// Candidate tags forgotten to make room.
    pub evicted: u64,
    /// Backward wall-clock steps seen.
    pub clock_steps: u64,
}

/// Turns one gate reader's reads (and photo-eye changes) into passages.
///
/// The daemon calls [`handle_read`](Self::handle_read) for every read,
/// [`handle_beam`](Self::handle_beam) for every photo-eye change, and [`poll`](Self::poll) after
/// every batch of reads and on a timer (every 100–250 ms).
#[derive(Debug)]
pub struct GateSmoother {
    shared: Shared,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Antennas(AntennaGate),
    Beams(BeamGate),
}

impl GateSmoother {
    /// A smoother for the gate reader `reader` (the name its passages carry).
    pub fn new(reader: ReaderName, config: GateConfig) -> Self {
        let config = GateConfig {
            smoothing: config.smoothing.normalized(),
            passage_gap_ms: config.passage_gap_ms.max(0),
            ..config
        };
        let mode = if config.use_beams {
            Mode::Beams(BeamGate::new(config.smoothing))
        } else {
            Mode::Antennas(AntennaGate::new(&config))
        };
        Self {
            shared: Shared {
                reader: reader.to_string(),
                config,
                clock: Clock::default(),
                badges: HashSet::new(),
                next_id: 1,
                stats: GateStats::default(),
                max_tags: DEFAULT_MAX_TAGS,
            },
            mode,
        }
    }

    /// Sets how many tags are tracked at most per side (default [`DEFAULT_MAX_TAGS`]).
    pub fn with_max_tags(mut self, max_tags: usize) -> Self {
        let max_tags = max_tags.max(1);
        self.shared.max_tags = max_tags;
        match &mut self.mode {
            Mode::Antennas(gate) => gate.set_max_tags(max_tags),
            Mode::Beams(gate) => gate.set_max_tags(max_tags),
        }
        self
    }

    /// Replaces the set of staff badge EPCs; it applies to every output from the next poll on.
    pub fn set_badges(&mut self, badges: HashSet<Epc>) {
        self.shared.badges = badges;
    }

    /// Takes one read of the gate's reader.
    pub fn handle_read(&mut self, read: TagRead) {
        let at_ms = self.shared.clock.advance(read.at_ms);
        let read = TagRead { at_ms, ..read };
        match &mut self.mode {
            Mode::Antennas(gate) => gate.handle_read(&mut self.shared, read),
            Mode::Beams(gate) => gate.handle_read(&mut self.shared, read),
        }
    }

    /// Takes a photo-eye change at `now_ms`: the beam on `side` is now broken (or restored).
    /// Repeating the current state is harmless. Ignored unless `use_beams` is set.
    pub fn handle_beam(&mut self, now_ms: i64, side: Side, broken: bool) {
        let t = self.shared.clock.advance(now_ms);
        if let Mode::Beams(gate) = &mut self.mode {
            gate.handle_beam(&mut self.shared, t, side, broken);
        }
    }

    /// What happened up to `now_ms`: crossing notices first, then final passages, oldest first.
    pub fn poll(&mut self, now_ms: i64) -> Vec<Output> {
        let t = self.shared.clock.advance(now_ms);
        let mut out = Vec::new();
        match &mut self.mode {
            Mode::Antennas(gate) => gate.poll(&mut self.shared, t, &mut out),
            Mode::Beams(gate) => gate.poll(&mut self.shared, t, &mut out),
        }
        out
    }

    /// What the smoother has counted.
    pub fn stats(&self) -> GateStats {
        let mut stats = GateStats {
            clock_steps: self.shared.clock.steps,
            ..self.shared.stats
        };
        let trackers: Vec<&PresenceTracker> = match &self.mode {
            Mode::Antennas(gate) => gate.trackers.iter().collect(),
            Mode::Beams(gate) => vec![gate.tracker()],
        };
        for tracker in trackers {
            let s = tracker.stats();
            stats.dropped_reads += s.dropped_reads;
            stats.evicted += s.evicted;
        }
        stats
    }
}

/// What both modes share: configuration, clock, badges, passage ids, counters.
#[derive(Debug)]
pub(super) struct Shared {
    reader: String,
    pub(super) config: GateConfig,
    pub(super) clock: Clock,
    badges: HashSet<Epc>,
    next_id: u64,
    pub(super) stats: GateStats,
    max_tags: usize,
}

impl Shared {
    pub(super) fn new_id(&mut self) -> PassageId {
        let id = PassageId(self.next_id);
        self.next_id += 1;
        id
    }

    pub(super) fn is_badge(&self, epc: &Epc) -> bool {
        self.badges.contains(epc)
    }

    /// The final output for a passage, if it has a carrier tag: the sightings split into
    /// carriers and badges, each ordered by first read then EPC, times in wall-clock ms.
    pub(super) fn passage(
        &self,
        passage: PassageId,
        at_ms: i64,
        direction: Direction,
        sightings: Vec<(Epc, Tally)>,
    ) -> Option<Output> {
        let (badges, tags): (Vec<_>, Vec<_>) =
            sightings.into_iter().partition(|(e, _)| self.is_badge(e));
        if tags.is_empty() {
            return None;
        }
        let list = |mut items: Vec<(Epc, Tally)>| -> Vec<TagSighting> {
            items.sort_unstable_by(|(ea, a), (eb, b)| {
                a.first_ms.cmp(&b.first_ms).then(epc_order(ea, eb))
            });
            items.truncate(MAX_TAGS_PER_LIST);
            items
                .iter()
                .map(|(epc, tally)| tally.sighting(*epc, &self.clock))
                .collect()
        };
        Some(Output::Passage {
            passage,
            event: NewEvent {
                at_ms: self.clock.wall(at_ms),
                body: EventBody::Passage {
                    reader: self.reader.clone(),
                    direction,
                    tags: list(tags),
                    badges: list(badges),
                    local_verdict: None,
                },
            },
        })
    }

    /// A crossing notice for the carriers among `crossed` (tag, crossing time), if any.
    pub(super) fn crossing(
        &self,
        passage: PassageId,
        direction: Direction,
        crossed: impl IntoIterator<Item = (Epc, i64)>,
        badges: impl IntoIterator<Item = Epc>,
    ) -> Option<Crossing> {
        let mut at_ms = i64::MAX;
        let mut tags: Vec<Epc> = crossed
            .into_iter()
            .filter(|(e, _)| !self.is_badge(e))
            .map(|(e, t)| {
                at_ms = at_ms.min(t);
                e
            })
            .collect();
        if tags.is_empty() {
            return None;
        }
        let mut badges: Vec<Epc> = badges.into_iter().filter(|e| self.is_badge(e)).collect();
        super::sort_epcs(&mut tags);
        super::sort_epcs(&mut badges);
        badges.dedup();
        Some(Crossing {
            passage,
            at_ms: self.clock.wall(at_ms),
            direction,
            tags,
            badges,
        })
    }
}

/// Reads of one tag, summarised (internal times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) first_ms: i64,
    first_antenna: u8,
    pub(super) last_ms: i64,
    last_antenna: u8,
    reads: u32,
    peak_rssi: u8,
}

impl Tally {
    pub(super) fn new(t: i64, antenna: u8, rssi: u8) -> Self {
        Self {
            first_ms: t,
            first_antenna: antenna,
            last_ms: t,
            last_antenna: antenna,
            reads: 1,
            peak_rssi: rssi,
        }
    }

    pub(super) fn from_summary(s: &TagSummary) -> Self {
        Self {
            first_ms: s.first_ms,
            first_antenna: s.antenna_first,
            last_ms: s.last_ms,
            last_antenna: s.antenna_last,
            reads: s.reads,
            peak_rssi: s.peak_rssi,
        }
    }

    pub(super) fn add(&mut self, t: i64, antenna: u8, rssi: u8) {
        self.last_ms = self.last_ms.max(t);
        self.last_antenna = antenna;
        self.reads = self.reads.saturating_add(1);
        self.peak_rssi = self.peak_rssi.max(rssi);
    }

    fn sighting(&self, epc: Epc, clock: &Clock) -> TagSighting {
        let first_ms = clock.wall(self.first_ms);
        TagSighting {
            epc,
            antenna_first: self.first_antenna,
            antenna_last: self.last_antenna,
            reads: self.reads.max(1),
            peak_rssi: self.peak_rssi,
            first_ms,
            last_ms: clock.wall(self.last_ms).max(first_ms),
        }
    }
}

/// Direction from antenna order (see the module docs).
#[derive(Debug)]
struct AntennaGate {
    sides: SideMap,
    /// Presence per side: index 0 inner, 1 outer (see [`Side::index`]).
    trackers: [PresenceTracker; 2],
    /// Every tag on at least one side, or with a crossing not judged yet.
    tags: HashMap<Epc, GateTag>,
    /// Passages not final yet, oldest first.
    groups: Vec<Group>,
    /// Badges that left the field recently, kept to be listed in passages.
    recent_badges: Vec<(Epc, Tally)>,
    max_tags: usize,
}

/// One tag at an antenna-order gate.
#[derive(Debug, Clone)]
struct GateTag {
    /// Every read since the tag first came onto a side (for badge sightings).
    life: Tally,
    /// The side it came from.
    origin: Side,
    /// The first read on the origin side (time, antenna) since it came from there.
    span_first: (i64, u8),
    /// Reads and peak RSSI since it came from the origin side.
    span_reads: u32,
    span_peak: u8,
    /// The last read on each side while the tag was on that side.
    last_held: [Option<(i64, u8)>; 2],
    /// The side of the most recent of those reads.
    last_held_side: Side,
    /// The crossing waiting to be judged.
    pending: Option<Pending>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    direction: Direction,
    crossed_ms: i64,
    passage: PassageId,
}

/// A passage being gathered.
#[derive(Debug)]
struct Group {
    id: PassageId,
    direction: Direction,
    first_ms: i64,
    members: Vec<Epc>,
    unjudged: usize,
    judged: Vec<(Epc, Tally)>,
    /// Crossed since the last poll: not announced yet.
    fresh: Vec<(Epc, i64)>,
    announced: bool,
}

impl GateTag {
    fn new(side: Side, s: &TagSummary) -> Self {
        let mut last_held = [None; 2];
        last_held[side.index()] = Some((s.last_ms, s.antenna_last));
        Self {
            life: Tally::from_summary(s),
            origin: side,
            span_first: (s.first_ms, s.antenna_first),
            span_reads: s.reads,
            span_peak: s.peak_rssi,
            last_held,
            last_held_side: side,
            pending: None,
        }
    }

    fn add(&mut self, side: Side, t: i64, antenna: u8, rssi: u8, held: bool) {
        self.life.add(t, antenna, rssi);
        self.span_reads = self.span_reads.saturating_add(1);
        self.span_peak = self.span_peak.max(rssi);
        if held {
            self.last_held[side.index()] = Some((t, antenna));
            self.last_held_side = side;
        }
    }

    /// Judges the pending crossing: the sighting if the tag ended on the side it crossed to.
    /// The tag then starts over from the side it is on.
    fn judge(&mut self) -> Option<Tally> {
        let pending = self.pending.take()?;
        let dest = destination(pending.direction);
        let end = self.last_held_side;
        let (first_ms, first_antenna) = self.span_first;
        let result = match self.last_held[dest.index()] {
            Some((last_ms, last_antenna)) if end == dest => Some(Tally {
                first_ms,
                first_antenna,
                last_ms: last_ms.max(first_ms),
                last_antenna,
                reads: self.span_reads.max(1),
                peak_rssi: self.span_peak,
            }),
            _ => None,
        };
        self.origin = end;
        if let Some(first) = self.last_held[end.index()] {
            self.span_first = first;
        }
        self.span_reads = 0;
        self.span_peak = 0;
        result
    }
}

impl Group {
    fn new(id: PassageId, direction: Direction, first_ms: i64) -> Self {
        Self {
            id,
            direction,
            first_ms,
            members: Vec::new(),
            unjudged: 0,
            judged: Vec::new(),
            fresh: Vec::new(),
            announced: false,
        }
    }

    fn add(&mut self, epc: Epc, t: i64) {
        self.members.push(epc);
        self.unjudged += 1;
        self.fresh.push((epc, t));
    }
}

impl AntennaGate {
    fn new(config: &GateConfig) -> Self {
        let tracker = || PresenceTracker::new(config.smoothing);
        Self {
            sides: SideMap::new(&config.inner_antennas, &config.outer_antennas),
            trackers: [tracker(), tracker()],
            tags: HashMap::new(),
            groups: Vec::new(),
            recent_badges: Vec::new(),
            max_tags: DEFAULT_MAX_TAGS,
        }
    }

    fn set_max_tags(&mut self, max_tags: usize) {
        self.max_tags = max_tags;
        for tracker in &mut self.trackers {
            tracker.set_max_tags(max_tags);
        }
    }

    fn handle_read(&mut self, sh: &mut Shared, read: TagRead) {
        let Some(side) = self.sides.side(read.antenna) else {
            sh.stats.ignored_reads += 1;
            return;
        };
        let tracker = &mut self.trackers[side.index()];
        let outcome = tracker.record(read);
        let held = match outcome {
            ReadOutcome::Dropped => return,
            ReadOutcome::Candidate => false,
            ReadOutcome::Appeared(_) | ReadOutcome::Present => true,
        };
        let TagRead {
            at_ms: t,
            epc,
            antenna,
            rssi,
        } = read;
        if let Some(tag) = self.tags.get_mut(&epc) {
            tag.add(side, t, antenna, rssi, held);
            let came_onto_side = matches!(outcome, ReadOutcome::Appeared(_));
            if came_onto_side && tag.pending.is_none() && side != tag.origin {
                let direction = tag.origin.direction_from();
                let passage = join_group(&mut self.groups, sh, epc, direction, t);
                tag.pending = Some(Pending {
                    direction,
                    crossed_ms: t,
                    passage,
                });
            }
        } else if held {
            if let Some(summary) = tracker.summary(&epc) {
                self.tags.insert(epc, GateTag::new(side, summary));
            }
        }
    }

    fn poll(&mut self, sh: &mut Shared, t: i64, out: &mut Vec<Output>) {
        for tracker in &mut self.trackers {
            tracker.expire(t);
        }
        let gap = sh.config.passage_gap_ms;

        // Judge crossings whose tag left the field, or lingered too long; forget gone tags.
        let mut verdicts = Vec::new();
        let [inner, outer] = &self.trackers;
        let recent = &mut self.recent_badges;
        let shared = &*sh;
        self.tags.retain(|epc, tag| {
            let present = inner.is_present(epc) || outer.is_present(epc);
            let due = tag.pending.filter(|p| {
                !present || t.saturating_sub(p.crossed_ms) >= PASSAGE_LINGER_MS
            });
            if let Some(p) = due {
                verdicts.push((p.passage, *epc, tag.judge()));
            }
            if !present && shared.is_badge(epc) {
                recent.push((*epc, tag.life));
            }
            present
        });
        let keep_from = t.saturating_sub(gap.saturating_add(PASSAGE_LINGER_MS));
        self.recent_badges.retain(|(_, b)| b.last_ms >= keep_from);
        if self.recent_badges.len() > self.max_tags {
            self.recent_badges.sort_unstable_by_key(|(_, b)| b.last_ms);
            let excess = self.recent_badges.len() - self.max_tags;
            self.recent_badges.drain(..excess);
        }
        for (id, epc, result) in verdicts {
            if let Some(group) = self.groups.iter_mut().find(|g| g.id == id) {
                group.unjudged = group.unjudged.saturating_sub(1);
                if let Some(tally) = result {
                    group.judged.push((epc, tally));
                }
            }
        }

        // Announce fresh crossings.
        for i in 0..self.groups.len() {
            if self.groups[i].fresh.is_empty() {
                continue;
            }
            let fresh = std::mem::take(&mut self.groups[i].fresh);
            let from = self.groups[i].first_ms.saturating_sub(gap);
            let badges = self.badges_since(sh, from).into_iter().map(|(e, _)| e);
            let group = &mut self.groups[i];
            if let Some(notice) = sh.crossing(group.id, group.direction, fresh, badges) {
                group.announced = true;
                out.push(Output::Crossing(notice));
            }
        }

        // Close the passages that are final.
        let mut i = 0;
        while i < self.groups.len() {
            let group = &self.groups[i];
            if group.unjudged > 0 || t <= group.first_ms.saturating_add(gap) {
                i += 1;
                continue;
            }
            let group = self.groups.remove(i);
            let mut sightings = group.judged;
            for (epc, tally) in self.badges_since(sh, group.first_ms.saturating_sub(gap)) {
                if !sightings.iter().any(|(e, _)| *e == epc) {
                    sightings.push((epc, tally));
                }
            }
            match sh.passage(group.id, group.first_ms, group.direction, sightings) {
                Some(passage) => out.push(passage),
                None if group.announced => out.push(Output::TurnedBack { passage: group.id }),
                None => {}
            }
        }
    }

    /// Badges read at the gate since internal time `from`: present ones and recent ones.
    fn badges_since(&self, sh: &Shared, from: i64) -> Vec<(Epc, Tally)> {
        let present = self
            .tags
            .iter()
            .filter(|(e, tag)| sh.is_badge(e) && tag.life.last_ms >= from)
            .map(|(e, tag)| (*e, tag.life));
        let recent = self
            .recent_badges
            .iter()
            .filter(|(e, b)| sh.is_badge(e) && b.last_ms >= from)
            .copied();
        let mut badges: Vec<(Epc, Tally)> = Vec::new();
        for (epc, tally) in present.chain(recent) {
            match badges.iter_mut().find(|(e, _)| *e == epc) {
                // A badge that left and came back: keep its latest presence.
                Some(slot) if slot.1.last_ms < tally.last_ms => *slot = (epc, tally),
                Some(_) => {}
                None => badges.push((epc, tally)),
            }
        }
        badges
    }
}

/// The passage a tag crossing at `t` joins: the newest one in the same direction whose first
/// crossing is within the gap, with room, and without this tag; else a new one.
fn join_group(
    groups: &mut Vec<Group>,
    sh: &mut Shared,
    epc: Epc,
    direction: Direction,
    t: i64,
) -> PassageId {
    let gap = sh.config.passage_gap_ms;
    let open = groups.iter_mut().rev().find(|g| {
        g.direction == direction
            && t <= g.first_ms.saturating_add(gap)
            && g.members.len() < MAX_TAGS_PER_LIST
            && !g.members.contains(&epc)
    });
    if let Some(group) = open {
        group.add(epc, t);
        return group.id;
    }
    let mut group = Group::new(sh.new_id(), direction, t);
    group.add(epc, t);
    let id = group.id;
    groups.push(group);
    id
}
