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
//!    and the badges seen so far, with their sightings so far (first read on the side they came
//!    from, reads up to this poll), so the gate can store it at once as a provisional passage
//!    event (which is how the server's verdict arrives within the gate's deadline), decide with
//!    its cached policy and sound the alarm. The smoother itself stores nothing; what the daemon
//!    does with the notice and the final output is documented in its `gate` module.
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
//! established direction is reported). In this mode only reads on antenna 0 are ignored.

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{Direction, EventBody, MAX_TAGS_PER_LIST, TagSighting};

use super::beams::BeamGate;
use super::presence::{
    DEFAULT_MAX_TAGS, PresenceTracker, ReadOutcome, SmoothingConfig, TagSummary,
};
use super::{Clock, EpcMap, EpcSet, NewEvent, Side, SideMap, destination, epc_order};
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
    /// What was read of each of `tags` so far, in the same order: the first read on the side it
    /// came from, the reads up to this notice (the final passage has the complete counts).
    pub sightings: Vec<TagSighting>,
    /// What was read of each of `badges` so far, in the same order.
    pub badge_sightings: Vec<TagSighting>,
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
    /// went back). The daemon records that its provisional passage did not complete.
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
    Antennas(Box<AntennaGate>),
    Beams(Box<BeamGate>),
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
            Mode::Beams(Box::new(BeamGate::new(config.smoothing)))
        } else {
            Mode::Antennas(Box::new(AntennaGate::new(&config)))
        };
        Self {
            shared: Shared {
                reader: reader.to_string(),
                config,
                clock: Clock::default(),
                badges: EpcSet::default(),
                next_id: 1,
                stats: GateStats::default(),
            },
            mode,
        }
    }

    /// Sets how many tags are tracked at most per side (default [`DEFAULT_MAX_TAGS`]).
    pub fn with_max_tags(mut self, max_tags: usize) -> Self {
        let max_tags = max_tags.max(1);
        match &mut self.mode {
            Mode::Antennas(gate) => gate.set_max_tags(max_tags),
            Mode::Beams(gate) => gate.set_max_tags(max_tags),
        }
        self
    }

    /// Replaces the set of staff badge EPCs; it applies to every output from the next poll on.
    pub fn set_badges(&mut self, badges: impl IntoIterator<Item = Epc>) {
        self.shared.badges = badges.into_iter().collect();
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
    badges: EpcSet,
    next_id: u64,
    pub(super) stats: GateStats,
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

    /// A crossing notice for the carriers among `crossed` (tag, crossing time, reads so far),
    /// if any, with the badges among `badges` (tag, reads so far).
    pub(super) fn crossing(
        &self,
        passage: PassageId,
        direction: Direction,
        crossed: impl IntoIterator<Item = (Epc, i64, Tally)>,
        badges: impl IntoIterator<Item = (Epc, Tally)>,
    ) -> Option<Crossing> {
        let mut at_ms = i64::MAX;
        let mut tags: Vec<(Epc, Tally)> = crossed
            .into_iter()
            .filter(|(e, ..)| !self.is_badge(e))
            .map(|(e, t, tally)| {
                at_ms = at_ms.min(t);
                (e, tally)
            })
            .collect();
        if tags.is_empty() {
            return None;
        }
        let mut badges: Vec<(Epc, Tally)> = badges
            .into_iter()
            .filter(|(e, _)| self.is_badge(e))
            .collect();
        tags.sort_unstable_by(|(a, _), (b, _)| epc_order(a, b));
        tags.dedup_by(|(a, _), (b, _)| a == b);
        badges.sort_unstable_by(|(a, _), (b, _)| epc_order(a, b));
        badges.dedup_by(|(a, _), (b, _)| a == b);
        tags.truncate(MAX_TAGS_PER_LIST);
        badges.truncate(MAX_TAGS_PER_LIST);
        let sightings = |list: &[(Epc, Tally)]| -> Vec<TagSighting> {
            list.iter()
                .map(|(epc, tally)| tally.sighting(*epc, &self.clock))
                .collect()
        };
        Some(Crossing {
            passage,
            at_ms: self.clock.wall(at_ms),
            direction,
            sightings: sightings(&tags),
            badge_sightings: sightings(&badges),
            tags: tags.into_iter().map(|(e, _)| e).collect(),
            badges: badges.into_iter().map(|(e, _)| e).collect(),
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
    tags: EpcMap<GateTag>,
    /// Passages not final yet, oldest first.
    groups: Vec<Group>,
    /// Badges that left the field recently, kept to be listed in passages.
    recent_badges: Vec<(Epc, Tally)>,
    max_tags: usize,
    /// No pending crossing reaches [`PASSAGE_LINGER_MS`] before this internal time (a lower
    /// bound). With it, a poll sweeps `tags` only when a presence ended or a linger may be due.
    linger_due: i64,
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
    /// Crossed since the last poll: not announced yet (tag, crossing time, reads at crossing).
    fresh: Vec<(Epc, i64, Tally)>,
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

    /// The reads since the tag came from its origin side, as they stand (for a crossing notice):
    /// from the first read on the origin side to the latest read on any side.
    fn so_far(&self) -> Tally {
        let (first_ms, first_antenna) = self.span_first;
        Tally {
            first_ms,
            first_antenna,
            last_ms: self.life.last_ms.max(first_ms),
            last_antenna: self.life.last_antenna,
            reads: self.span_reads.max(1),
            peak_rssi: self.span_peak,
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

    fn add(&mut self, epc: Epc, t: i64, so_far: Tally) {
        self.members.push(epc);
        self.unjudged += 1;
        self.fresh.push((epc, t, so_far));
    }
}

impl AntennaGate {
    fn new(config: &GateConfig) -> Self {
        let tracker = || PresenceTracker::new(config.smoothing);
        Self {
            sides: SideMap::new(&config.inner_antennas, &config.outer_antennas),
            trackers: [tracker(), tracker()],
            tags: EpcMap::default(),
            groups: Vec::new(),
            recent_badges: Vec::new(),
            max_tags: DEFAULT_MAX_TAGS,
            linger_due: i64::MAX,
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
                let passage = join_group(&mut self.groups, sh, epc, direction, t, tag.so_far());
                tag.pending = Some(Pending {
                    direction,
                    crossed_ms: t,
                    passage,
                });
                self.linger_due = self.linger_due.min(t.saturating_add(PASSAGE_LINGER_MS));
            }
        } else if held {
            if let Some(summary) = tracker.summary(&epc) {
                self.tags.insert(epc, GateTag::new(side, summary));
            }
        }
    }

    fn poll(&mut self, sh: &mut Shared, t: i64, out: &mut Vec<Output>) {
        let mut ended = false;
        for tracker in &mut self.trackers {
            ended |= !tracker.expire(t).is_empty();
        }
        // Only an ended presence or a linger reached can judge a crossing or forget a tag.
        if ended || t >= self.linger_due {
            self.sweep(sh, t);
        }
        let gap = sh.config.passage_gap_ms;
        let keep_from = t.saturating_sub(gap.saturating_add(PASSAGE_LINGER_MS));
        self.recent_badges.retain(|(_, b)| b.last_ms >= keep_from);
        if self.recent_badges.len() > self.max_tags {
            self.recent_badges.sort_unstable_by_key(|(_, b)| b.last_ms);
            let excess = self.recent_badges.len() - self.max_tags;
            self.recent_badges.drain(..excess);
        }
        self.emit(sh, t, out);
    }

    /// Judges crossings whose tag left the field, or lingered too long; forgets gone tags.
    fn sweep(&mut self, sh: &Shared, t: i64) {
        let mut verdicts = Vec::new();
        let [inner, outer] = &self.trackers;
        let recent = &mut self.recent_badges;
        self.tags.retain(|epc, tag| {
            let present = inner.is_present(epc) || outer.is_present(epc);
            let due = tag
                .pending
                .filter(|p| !present || t.saturating_sub(p.crossed_ms) >= PASSAGE_LINGER_MS);
            if let Some(p) = due {
                verdicts.push((p.passage, *epc, tag.judge()));
            }
            if !present && sh.is_badge(epc) {
                recent.push((*epc, tag.life));
            }
            present
        });
        self.linger_due = self
            .tags
            .values()
            .filter_map(|tag| tag.pending)
            .map(|p| p.crossed_ms.saturating_add(PASSAGE_LINGER_MS))
            .min()
            .unwrap_or(i64::MAX);
        for (id, epc, result) in verdicts {
            if let Some(group) = self.groups.iter_mut().find(|g| g.id == id) {
                group.unjudged = group.unjudged.saturating_sub(1);
                if let Some(tally) = result {
                    group.judged.push((epc, tally));
                }
            }
        }
    }

    /// Announces fresh crossings and closes the passages that are final.
    fn emit(&mut self, sh: &mut Shared, t: i64, out: &mut Vec<Output>) {
        let gap = sh.config.passage_gap_ms;

        // Announce fresh crossings.
        for i in 0..self.groups.len() {
            if self.groups[i].fresh.is_empty() {
                continue;
            }
            let id = self.groups[i].id;
            // The reads so far: the tag's current ones while its crossing is pending, else
            // those at the crossing.
            let fresh: Vec<(Epc, i64, Tally)> = std::mem::take(&mut self.groups[i].fresh)
                .into_iter()
                .map(|(epc, t, at_crossing)| {
                    let now = self
                        .tags
                        .get(&epc)
                        .filter(|tag| tag.pending.is_some_and(|p| p.passage == id))
                        .map_or(at_crossing, GateTag::so_far);
                    (epc, t, now)
                })
                .collect();
            let from = self.groups[i].first_ms.saturating_sub(gap);
            let badges = self.badges_since(sh, from);
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
    so_far: Tally,
) -> PassageId {
    let gap = sh.config.passage_gap_ms;
    let open = groups.iter_mut().rev().find(|g| {
        g.direction == direction
            && t <= g.first_ms.saturating_add(gap)
            && g.members.len() < MAX_TAGS_PER_LIST
            && !g.members.contains(&epc)
    });
    if let Some(group) = open {
        group.add(epc, t, so_far);
        return group.id;
    }
    let mut group = Group::new(sh.new_id(), direction, t);
    group.add(epc, t, so_far);
    let id = group.id;
    groups.push(group);
    id
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const INNER: [u8; 2] = [1, 2];
    const OUTER: [u8; 2] = [3, 4];

    fn epc(n: u16) -> Epc {
        Epc::new(&[0x30, 0x34, (n >> 8) as u8, n as u8]).unwrap()
    }

    fn gate() -> GateSmoother {
        GateSmoother::new(
            "gate-1".into(),
            GateConfig::new(INNER.to_vec(), OUTER.to_vec()),
        )
    }

    /// One input of a recorded sequence.
    #[derive(Debug, Clone, Copy)]
    enum Ev {
        /// (at_ms, tag number, antenna)
        Read(i64, u16, u8),
        /// (at_ms, side, broken)
        Beam(i64, Side, bool),
    }

    impl Ev {
        fn at(&self) -> i64 {
            match *self {
                Ev::Read(t, ..) | Ev::Beam(t, ..) => t,
            }
        }
    }

    /// Feeds a recorded sequence in the given order, polling after every input (at its time)
    /// and every 50 ms from the first input until `until`: what the daemon does. Returns each
    /// output with the time of the poll that produced it.
    fn run(g: &mut GateSmoother, events: &[Ev], until: i64) -> Vec<(i64, Output)> {
        let mut out = Vec::new();
        let mut now = events.first().map_or(0, Ev::at);
        let mut next = 0;
        loop {
            while next < events.len() && events[next].at() <= now {
                let ev = events[next];
                match ev {
                    Ev::Read(at_ms, n, antenna) => g.handle_read(TagRead {
                        at_ms,
                        epc: epc(n),
                        antenna,
                        rssi: 40 + (at_ms % 50) as u8,
                    }),
                    Ev::Beam(at_ms, side, broken) => g.handle_beam(at_ms, side, broken),
                }
                out.extend(g.poll(ev.at()).into_iter().map(|o| (ev.at(), o)));
                next += 1;
            }
            out.extend(g.poll(now).into_iter().map(|o| (now, o)));
            if now >= until {
                return out;
            }
            now += 50;
        }
    }

    /// A person carrying `tag` walks through the gate from side `from`, starting at `start`:
    /// read by `from`'s antennas for 600 ms, by both sides for 300 ms, then by the other
    /// side's for 600 ms; one read per side every 40 ms, alternating the side's two antennas.
    fn walk(start: i64, tag: u16, from: Side) -> Vec<Ev> {
        let (near, far) = match from {
            Side::Inner => (INNER, OUTER),
            Side::Outer => (OUTER, INNER),
        };
        let mut reads = Vec::new();
        for k in 0..23 {
            reads.push(Ev::Read(start + k * 40, tag, near[(k % 2) as usize]));
        }
        for k in 0..22 {
            reads.push(Ev::Read(start + 620 + k * 40, tag, far[(k % 2) as usize]));
        }
        reads.sort_by_key(Ev::at);
        reads
    }

    fn merge(parts: &[Vec<Ev>]) -> Vec<Ev> {
        let mut all: Vec<Ev> = parts.concat();
        all.sort_by_key(Ev::at);
        all
    }

    /// The final passages: (poll time, id, direction, tags, badges, event at_ms).
    #[allow(clippy::type_complexity)]
    fn passages(
        out: &[(i64, Output)],
    ) -> Vec<(
        i64,
        PassageId,
        Direction,
        Vec<TagSighting>,
        Vec<TagSighting>,
        i64,
    )> {
        out.iter()
            .filter_map(|(now, o)| match o {
                Output::Passage {
                    passage,
                    event:
                        NewEvent {
                            at_ms,
                            body:
                                EventBody::Passage {
                                    reader,
                                    direction,
                                    tags,
                                    badges,
                                    local_verdict,
                                },
                        },
                } => {
                    assert_eq!(reader, "gate-1");
                    assert_eq!(*local_verdict, None);
                    Some((
                        *now,
                        *passage,
                        *direction,
                        tags.clone(),
                        badges.clone(),
                        *at_ms,
                    ))
                }
                Output::Passage { event, .. } => panic!("not a passage body: {event:?}"),
                _ => None,
            })
            .collect()
    }

    fn crossings(out: &[(i64, Output)]) -> Vec<(i64, Crossing)> {
        out.iter()
            .filter_map(|(now, o)| match o {
                Output::Crossing(c) => Some((*now, c.clone())),
                _ => None,
            })
            .collect()
    }

    fn turned_back(out: &[(i64, Output)]) -> Vec<PassageId> {
        out.iter()
            .filter_map(|(_, o)| match o {
                Output::TurnedBack { passage } => Some(*passage),
                _ => None,
            })
            .collect()
    }

    fn epcs(sightings: &[TagSighting]) -> Vec<Epc> {
        sightings.iter().map(|s| s.epc).collect()
    }

    /// Walking out, as recorded: inner antennas, both, then outer.
    const OUT_WALK: &[(i64, u16, u8)] = &[
        (10_000, 1, 1),
        (10_040, 1, 2),
        (10_080, 1, 1),
        (10_150, 1, 2),
        (10_190, 1, 1),
        (10_260, 1, 1),
        (10_300, 1, 3), // first outer read: one is not enough
        (10_330, 1, 2),
        (10_350, 1, 4), // second outer read: crossed
        (10_400, 1, 1),
        (10_420, 1, 3),
        (10_480, 1, 4),
        (10_520, 1, 3),
        (10_600, 1, 4),
    ];

    #[test]
    fn walking_out_is_announced_at_once_and_final_after_the_holdoff() {
        let mut g = gate();
        let events: Vec<Ev> = OUT_WALK
            .iter()
            .map(|&(t, n, a)| Ev::Read(t, n, a))
            .collect();
        let out = run(&mut g, &events, 15_000);

        let notices = crossings(&out);
        assert_eq!(notices.len(), 1);
        let (polled, notice) = &notices[0];
        assert_eq!(
            *polled, 10_350,
            "announced at the poll after the crossing read"
        );
        assert_eq!(
            *notice,
            Crossing {
                passage: notice.passage,
                at_ms: 10_350,
                direction: Direction::Out,
                tags: vec![epc(1)],
                badges: vec![],
                // The reads so far: from the first inner read to the crossing read.
                sightings: vec![TagSighting {
                    epc: epc(1),
                    antenna_first: 1,
                    antenna_last: 4,
                    reads: 9,
                    peak_rssi: 80,
                    first_ms: 10_000,
                    last_ms: 10_350,
                }],
                badge_sightings: vec![],
            }
        );

        let done = passages(&out);
        assert_eq!(done.len(), 1);
        let (polled, id, direction, tags, badges, at_ms) = &done[0];
        assert_eq!(*id, notice.passage);
        assert_eq!(*direction, Direction::Out);
        assert_eq!(*at_ms, 10_350);
        // Final once the last read is more than the hold-off old (10_600 + 1_500) and the
        // passage's window for companions has passed (10_350 + 2_000): the next poll.
        assert_eq!(*polled, 12_400);
        assert!(badges.is_empty());
        assert_eq!(tags.len(), 1);
        let s = tags[0];
        assert_eq!((s.epc, s.antenna_first, s.antenna_last), (epc(1), 1, 4));
        assert_eq!((s.first_ms, s.last_ms), (10_000, 10_600));
        assert_eq!(s.reads, OUT_WALK.len() as u32);
        assert!(turned_back(&out).is_empty());
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn walking_in_is_a_passage_in() {
        let mut g = gate();
        let out = run(&mut g, &walk(0, 1, Side::Outer), 6_000);
        let done = passages(&out);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].2, Direction::In);
        let s = done[0].3[0];
        assert!(OUTER.contains(&s.antenna_first) && INNER.contains(&s.antenna_last));
        assert_eq!((s.first_ms, s.last_ms, s.reads), (0, 620 + 21 * 40, 45));
        assert_eq!(crossings(&out)[0].1.direction, Direction::In);
    }

    #[test]
    fn turning_back_before_the_door_produces_nothing() {
        let mut g = gate();
        // Read on the inner side only, for two seconds, then gone.
        let events: Vec<Ev> = (0..50)
            .map(|k| Ev::Read(k * 40, 1, INNER[(k % 2) as usize]))
            .collect();
        let out = run(&mut g, &events, 20_000);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn turning_back_inside_the_gate_withdraws_the_crossing() {
        let mut g = gate();
        // Inner, a step into the outer field (3 outer reads), back to inner, gone.
        let mut events: Vec<Ev> = (0..15).map(|k| Ev::Read(k * 40, 1, 1)).collect();
        events.extend([
            Ev::Read(610, 1, 3),
            Ev::Read(650, 1, 4),
            Ev::Read(690, 1, 3),
        ]);
        events.extend((0..15).map(|k| Ev::Read(720 + k * 40, 1, 2)));
        let out = run(&mut g, &events, 20_000);
        let notices = crossings(&out);
        assert_eq!(
            notices.len(),
            1,
            "the alarm may sound while they stand in the gate"
        );
        assert!(passages(&out).is_empty());
        assert_eq!(turned_back(&out), vec![notices[0].1.passage]);
    }

    #[test]
    fn two_people_five_seconds_apart_make_two_passages() {
        let mut g = gate();
        let events = merge(&[walk(0, 1, Side::Inner), walk(5_000, 2, Side::Inner)]);
        let out = run(&mut g, &events, 12_000);
        let done = passages(&out);
        assert_eq!(done.len(), 2);
        assert_ne!(done[0].1, done[1].1);
        assert_eq!(epcs(&done[0].3), vec![epc(1)]);
        assert_eq!(epcs(&done[1].3), vec![epc(2)]);
        assert_eq!((done[0].5, done[1].5), (660, 5_660));
    }

    #[test]
    fn two_tags_crossing_together_make_one_passage() {
        let mut g = gate();
        // Two documents in one bag; the second is read a little later.
        let events = merge(&[walk(0, 1, Side::Inner), walk(300, 2, Side::Inner)]);
        let out = run(&mut g, &events, 8_000);
        let done = passages(&out);
        assert_eq!(done.len(), 1, "{out:?}");
        assert_eq!(epcs(&done[0].3), vec![epc(1), epc(2)]);
        // Each was announced as it crossed, under the same passage.
        let notices = crossings(&out);
        assert_eq!(notices.len(), 2);
        assert!(notices.iter().all(|(_, c)| c.passage == done[0].1));
        assert_eq!(notices[1].1.tags, vec![epc(2)]);
    }

    #[test]
    fn people_crossing_opposite_ways_at_once_make_two_passages() {
        let mut g = gate();
        let events = merge(&[walk(0, 1, Side::Inner), walk(100, 2, Side::Outer)]);
        let out = run(&mut g, &events, 8_000);
        let done = passages(&out);
        assert_eq!(done.len(), 2);
        let by_dir = |d| done.iter().find(|p| p.2 == d).map(|p| epcs(&p.3));
        assert_eq!(by_dir(Direction::Out), Some(vec![epc(1)]));
        assert_eq!(by_dir(Direction::In), Some(vec![epc(2)]));
    }

    #[test]
    fn a_single_stray_read_on_the_far_side_is_no_crossing() {
        let mut g = gate();
        // A tag lying inside near the gate, read all the time, with one reflection outside.
        let mut events: Vec<Ev> = (0..100).map(|k| Ev::Read(k * 50, 1, 2)).collect();
        events.push(Ev::Read(2_510, 1, 3));
        events.sort_by_key(Ev::at);
        let out = run(&mut g, &events, 20_000);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_tag_left_in_the_doorway_is_judged_after_the_linger() {
        let mut g = gate();
        // Carried out, then dropped within reach of the outer antennas: read for 30 s.
        let mut events = walk(0, 1, Side::Inner);
        events.extend((0..600).map(|k| Ev::Read(1_500 + k * 50, 1, 3)));
        let out = run(&mut g, &events, 40_000);
        let done = passages(&out);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].2, Direction::Out);
        // Judged at the first poll at least the linger after the crossing (polls every 50 ms).
        assert_eq!(done[0].0, 10_700);
        // Still present afterwards, but no second passage.
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_reflection_burst_from_a_parked_tag_is_withdrawn() {
        let mut g = gate();
        let mut events: Vec<Ev> = (0..400).map(|k| Ev::Read(k * 50, 1, 1)).collect();
        events.extend([Ev::Read(5_010, 1, 4), Ev::Read(5_030, 1, 4)]);
        events.sort_by_key(Ev::at);
        let out = run(&mut g, &events, 30_000);
        assert_eq!(crossings(&out).len(), 1);
        assert_eq!(turned_back(&out).len(), 1);
        assert!(passages(&out).is_empty());
    }

    #[test]
    fn badges_are_split_from_carriers_and_never_pass_alone() {
        let mut g = gate();
        g.set_badges([epc(9), epc(8)]);
        // A badge crossing with the carrier, and a badge read on the outer side only.
        let one_sided: Vec<Ev> = (0..10).map(|k| Ev::Read(900 + k * 40, 8, 3)).collect();
        let events = merge(&[
            walk(0, 1, Side::Inner),
            walk(100, 9, Side::Inner),
            one_sided,
        ]);
        let out = run(&mut g, &events, 8_000);
        let done = passages(&out);
        assert_eq!(done.len(), 1);
        assert_eq!(epcs(&done[0].3), vec![epc(1)]);
        let mut badges = epcs(&done[0].4);
        sort_epcs_for_test(&mut badges);
        assert_eq!(badges, vec![epc(8), epc(9)]);
        let notices = crossings(&out);
        assert_eq!(notices.len(), 1, "badges raise no notice");
        assert_eq!(notices[0].1.tags, vec![epc(1)]);
        assert!(notices[0].1.badges.contains(&epc(9)));

        // A badge alone makes no passage.
        let mut g = gate();
        g.set_badges([epc(9)]);
        let out = run(&mut g, &walk(0, 9, Side::Inner), 8_000);
        assert!(out.is_empty(), "{out:?}");
    }

    fn sort_epcs_for_test(epcs: &mut [Epc]) {
        epcs.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    }

    fn beam_gate() -> GateSmoother {
        let config = GateConfig {
            use_beams: true,
            ..GateConfig::new(INNER.to_vec(), OUTER.to_vec())
        };
        GateSmoother::new("gate-1".into(), config)
    }

    /// A walk past the photo-eyes from `from`: near beam broken 0..900, far beam 700..1600;
    /// `tags` read (on antenna 5, unlisted: antennas do not matter with beams) every 40 ms
    /// from 100 to 1500.
    fn beam_walk(start: i64, from: Side, turn_back: bool, tags: &[u16]) -> Vec<Ev> {
        let far = from.other();
        let mut events = vec![
            Ev::Beam(start, from, true),
            Ev::Beam(start + 700, far, true),
        ];
        if turn_back {
            events.push(Ev::Beam(start + 900, far, false));
            events.push(Ev::Beam(start + 1_600, from, false));
        } else {
            events.push(Ev::Beam(start + 900, from, false));
            events.push(Ev::Beam(start + 1_600, far, false));
        }
        for &tag in tags {
            events.extend((0..36).map(|k| Ev::Read(start + 100 + k * 40, tag, 5)));
        }
        events.sort_by_key(Ev::at);
        events
    }

    #[test]
    fn beams_give_the_direction() {
        for (from, direction) in [(Side::Inner, Direction::Out), (Side::Outer, Direction::In)] {
            let mut g = beam_gate();
            let out = run(&mut g, &beam_walk(0, from, false, &[1, 2]), 8_000);
            let notices = crossings(&out);
            assert_eq!(notices.len(), 1);
            assert_eq!(notices[0].0, 700, "announced when the far beam breaks");
            assert_eq!(notices[0].1.direction, direction);
            assert_eq!(notices[0].1.tags, vec![epc(1), epc(2)]);
            let done = passages(&out);
            assert_eq!(done.len(), 1);
            assert_eq!(done[0].2, direction);
            assert_eq!(done[0].5, 700);
            assert_eq!(
                done[0].0,
                1_600 + 1_550,
                "both restored + hold-off, next poll"
            );
            assert_eq!(epcs(&done[0].3), vec![epc(1), epc(2)]);
            assert_eq!(done[0].3[0].reads, 36);
        }
    }

    #[test]
    fn beams_turned_back_or_without_tags_make_no_passage() {
        let mut g = beam_gate();
        let out = run(&mut g, &beam_walk(0, Side::Inner, true, &[1]), 8_000);
        assert_eq!(crossings(&out).len(), 1);
        assert!(passages(&out).is_empty());
        assert_eq!(turned_back(&out).len(), 1);

        let mut g = beam_gate();
        let out = run(&mut g, &beam_walk(0, Side::Inner, false, &[]), 8_000);
        assert!(out.is_empty());

        // One beam only: nobody went through; tags read nearby do not pass.
        let mut g = beam_gate();
        let mut events = vec![
            Ev::Beam(0, Side::Inner, true),
            Ev::Beam(800, Side::Inner, false),
        ];
        events.extend((0..20).map(|k| Ev::Read(k * 40, 1, 1)));
        events.sort_by_key(Ev::at);
        assert!(run(&mut g, &events, 8_000).is_empty());
    }

    #[test]
    fn beams_two_people_back_to_back() {
        let mut g = beam_gate();
        let events = merge(&[
            beam_walk(0, Side::Inner, false, &[1]),
            beam_walk(2_000, Side::Inner, false, &[2]),
        ]);
        let out = run(&mut g, &events, 10_000);
        let done = passages(&out);
        assert_eq!(done.len(), 2);
        assert_eq!(epcs(&done[0].3), vec![epc(1)]);
        // The second person's beam break ends the first passage's tail: tag 2, read after
        // it, belongs to the second passage only.
        assert_eq!(epcs(&done[1].3), vec![epc(2)]);
    }

    #[test]
    fn out_of_order_timestamps_are_tolerated() {
        let mut g = gate();
        // The recorded walk, delivered with jitter: some reads late, a poll stamped early.
        let mut events: Vec<Ev> = OUT_WALK
            .iter()
            .map(|&(t, n, a)| Ev::Read(t, n, a))
            .collect();
        events.swap(3, 4);
        events.swap(9, 11);
        events.insert(6, Ev::Read(9_990, 1, 2));
        let mut out = Vec::new();
        for ev in &events {
            if let Ev::Read(at_ms, n, antenna) = *ev {
                g.handle_read(TagRead {
                    at_ms,
                    epc: epc(n),
                    antenna,
                    rssi: 1,
                });
            }
            out.extend(g.poll(ev.at() - 100).into_iter().map(|o| (0, o)));
        }
        for now in (10_600..15_000).step_by(50) {
            out.extend(g.poll(now).into_iter().map(|o| (now, o)));
        }
        let done = passages(&out);
        assert_eq!(done.len(), 1);
        let s = done[0].3[0];
        assert_eq!(done[0].2, Direction::Out);
        assert_eq!((s.first_ms, s.last_ms), (10_000, 10_600));
        assert_eq!(s.reads, OUT_WALK.len() as u32 + 1);
        assert_eq!(g.stats().clock_steps, 0);
    }

    #[test]
    fn reads_on_unlisted_antennas_are_ignored() {
        let mut g = gate();
        let events: Vec<Ev> = (0..20)
            .map(|k| Ev::Read(k * 40, 1, 7 + (k % 2) as u8))
            .collect();
        assert!(run(&mut g, &events, 5_000).is_empty());
        assert_eq!(g.stats().ignored_reads, 20);
    }

    #[test]
    fn memory_is_capped_and_a_real_crossing_still_found() {
        let mut g = gate().with_max_tags(16);
        // 500 stray tags read once each on the inner side, then a real walk.
        let mut events: Vec<Ev> = (0..500)
            .map(|n| Ev::Read(i64::from(n), 1_000 + n, 1))
            .collect();
        events.extend(walk(1_000, 1, Side::Inner));
        let out = run(&mut g, &events, 6_000);
        let done = passages(&out);
        assert_eq!(done.len(), 1);
        assert_eq!(epcs(&done[0].3), vec![epc(1)]);
        // The strays beyond the cap, and one more for the walker's first read (the tracker is
        // full of candidates still within their window then).
        assert_eq!(g.stats().evicted, 500 - 16 + 1);
        // Full of present tags: a new tag's reads are dropped, not the present ones.
        let mut g = gate().with_max_tags(2);
        let mut events = merge(&[walk(0, 1, Side::Inner), walk(0, 2, Side::Inner)]);
        events.extend((0..5).map(|k| Ev::Read(300 + k, 3, 1)));
        events.sort_by_key(Ev::at);
        let out = run(&mut g, &events, 6_000);
        assert_eq!(passages(&out)[0].3.len(), 2);
        assert_eq!(g.stats().dropped_reads, 5);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Read {
            dt: i64,
            tag: u16,
            antenna: u8,
            rssi: u8,
        },
        Poll {
            dt: i64,
        },
        Beam {
            dt: i64,
            inner: bool,
            broken: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (-50i64..120, 0u16..6, 0u8..7, any::<u8>())
                .prop_map(|(dt, tag, antenna, rssi)| Op::Read { dt, tag, antenna, rssi }),
            3 => (0i64..400).prop_map(|dt| Op::Poll { dt }),
            1 => (0i64..400, any::<bool>(), any::<bool>())
                .prop_map(|(dt, inner, broken)| Op::Beam { dt, inner, broken }),
        ]
    }

    fn side_of(antenna: u8) -> Option<Side> {
        if INNER.contains(&antenna) {
            Some(Side::Inner)
        } else if OUTER.contains(&antenna) {
            Some(Side::Outer)
        } else {
            None
        }
    }

    proptest! {
        /// Arbitrary reads, polls and beam changes, with jittered (out-of-order) times, in both
        /// modes: never panics; every passage is a valid event with at least one carrier tag,
        /// only carriers in `tags` and only badges in `badges`; with antenna order, every tag's
        /// first antenna is on the side its direction comes from and its last antenna on the
        /// side it goes to; every passage id ends at most once (passage or turned back), a
        /// turned-back id (and, with antennas, a passage id) was announced first, and once the
        /// gate is quiet every announced passage has ended.
        #[test]
        fn arbitrary_sequences_give_consistent_passages(
            ops in proptest::collection::vec(op(), 0..400),
            use_beams in any::<bool>(),
        ) {
            let config = GateConfig { use_beams, ..GateConfig::new(INNER.to_vec(), OUTER.to_vec()) };
            let mut g = GateSmoother::new("gate-1".into(), config).with_max_tags(6);
            let badges: std::collections::HashSet<Epc> = [epc(5)].into_iter().collect();
            g.set_badges(badges.clone());
            let mut now = 1_000_000i64;
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Read { dt, tag, antenna, rssi } => {
                        now += dt;
                        g.handle_read(TagRead { at_ms: now, epc: epc(tag), antenna, rssi });
                    }
                    Op::Poll { dt } => {
                        now += dt;
                        out.extend(g.poll(now));
                        // What a full sweep after every poll guaranteed still holds with the
                        // sweep skipped: every tag kept is present on a side, no pending
                        // crossing has lingered past its limit, and the skip bound is a bound.
                        if let Mode::Antennas(gate) = &g.mode {
                            let t = g.shared.clock.latest.unwrap_or(i64::MIN);
                            let [inner, outer] = &gate.trackers;
                            for (e, tag) in &gate.tags {
                                prop_assert!(inner.is_present(e) || outer.is_present(e));
                                if let Some(p) = tag.pending {
                                    prop_assert!(t.saturating_sub(p.crossed_ms) < PASSAGE_LINGER_MS);
                                    prop_assert!(gate.linger_due <= p.crossed_ms + PASSAGE_LINGER_MS);
                                }
                            }
                        }
                    }
                    Op::Beam { dt, inner, broken } => {
                        now += dt;
                        let side = if inner { Side::Inner } else { Side::Outer };
                        g.handle_beam(now, side, broken);
                    }
                }
            }
            // Quiet: restore the beams and let every hold-off and linger elapse.
            g.handle_beam(now, Side::Inner, false);
            g.handle_beam(now, Side::Outer, false);
            out.extend(g.poll(now + 60_000));
            out.extend(g.poll(now + 120_000));

            let mut announced = std::collections::HashSet::new();
            let mut ended = std::collections::HashSet::new();
            for o in &out {
                match o {
                    Output::Crossing(c) => {
                        prop_assert!(!c.tags.is_empty());
                        prop_assert!(!ended.contains(&c.passage));
                        prop_assert!(c.tags.iter().all(|e| !badges.contains(e)));
                        prop_assert!(c.badges.iter().all(|e| badges.contains(e)));
                        // The sightings so far name the same tags, in order, and would make a
                        // valid passage event on their own (the daemon stores them at once).
                        let named: Vec<Epc> = c.sightings.iter().map(|s| s.epc).collect();
                        prop_assert_eq!(&named, &c.tags);
                        let named: Vec<Epc> = c.badge_sightings.iter().map(|s| s.epc).collect();
                        prop_assert_eq!(&named, &c.badges);
                        let provisional = EventBody::Passage {
                            reader: "gate-1".into(),
                            direction: c.direction,
                            tags: c.sightings.clone(),
                            badges: c.badge_sightings.clone(),
                            local_verdict: None,
                        };
                        prop_assert_eq!(provisional.validate(), Ok(()));
                        announced.insert(c.passage);
                    }
                    Output::TurnedBack { passage } => {
                        prop_assert!(announced.contains(passage));
                        prop_assert!(ended.insert(*passage));
                    }
                    Output::Passage { passage, event } => {
                        prop_assert!(ended.insert(*passage));
                        prop_assert!(use_beams || announced.contains(passage));
                        prop_assert_eq!(event.body.validate(), Ok(()));
                        let EventBody::Passage { direction, tags, badges: bs, .. } = &event.body
                        else {
                            return Err(TestCaseError::fail("not a passage"));
                        };
                        prop_assert!(!tags.is_empty());
                        prop_assert!(tags.iter().all(|s| !badges.contains(&s.epc)));
                        prop_assert!(bs.iter().all(|s| badges.contains(&s.epc)));
                        if !use_beams {
                            let (from, to) = match direction {
                                Direction::Out => (Side::Inner, Side::Outer),
                                Direction::In => (Side::Outer, Side::Inner),
                            };
                            for s in tags {
                                prop_assert_eq!(side_of(s.antenna_first), Some(from));
                                prop_assert_eq!(side_of(s.antenna_last), Some(to));
                            }
                        }
                    }
                }
            }
            prop_assert!(announced.is_subset(&ended));
        }

        /// Reads, polls and beams at arbitrary i64 times (wild clock steps both ways): never
        /// panics, and every passage is still a valid event.
        #[test]
        fn wild_times_never_panic(
            ops in proptest::collection::vec((any::<i64>(), 0u8..3, 0u16..4, 0u8..6), 0..200),
            use_beams in any::<bool>(),
        ) {
            let config = GateConfig { use_beams, ..GateConfig::new(INNER.to_vec(), OUTER.to_vec()) };
            let mut g = GateSmoother::new("gate-1".into(), config);
            for (t, kind, tag, antenna) in ops {
                let outputs = match kind {
                    0 => {
                        g.handle_read(TagRead { at_ms: t, epc: epc(tag), antenna, rssi: 0 });
                        continue;
                    }
                    1 => {
                        g.handle_beam(t, if tag % 2 == 0 { Side::Inner } else { Side::Outer }, antenna % 2 == 0);
                        continue;
                    }
                    _ => g.poll(t),
                };
                for o in outputs {
                    if let Output::Passage { event, .. } = o {
                        prop_assert_eq!(event.body.validate(), Ok(()));
                    }
                }
            }
        }
    }
}
