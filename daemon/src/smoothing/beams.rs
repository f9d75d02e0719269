//! Gate passages driven by the photo-eyes (`use_beams`); see the module docs of
//! [`gate`](super::gate) for the rules.

use custos_protocol::epc::Epc;
use custos_protocol::uplink::MAX_TAGS_PER_LIST;

use super::gate::{Output, PASSAGE_LINGER_MS, PassageId, Shared, Tally};
use super::presence::{DEFAULT_MAX_TAGS, PresenceTracker, ReadOutcome, SmoothingConfig};
use super::{EpcMap, Side};
use crate::model::TagRead;

/// Passages from photo-eye order.
#[derive(Debug)]
pub(super) struct BeamGate {
    /// Presence on every antenna: only tags that appeared (`min_reads`) are in a passage.
    all: PresenceTracker,
    /// Whether each beam is broken now (index: [`Side::index`]); both restored at start.
    broken: [bool; 2],
    /// The passage being gathered, from the first beam break until `holdoff_ms` after both
    /// beams are restored.
    active: Option<Window>,
    /// Outputs decided between polls (a passage superseded by the next person's beam break).
    queued: Vec<Output>,
}

#[derive(Debug)]
struct Window {
    id: PassageId,
    first_side: Side,
    start_ms: i64,
    /// When the other beam broke: the direction is established.
    crossed_ms: Option<i64>,
    last_restored: Option<Side>,
    /// When both beams were restored.
    restored_ms: Option<i64>,
    /// Tags read since the first break (at most `MAX_TAGS_PER_LIST`).
    seen: EpcMap<Seen>,
    announced: bool,
}

#[derive(Debug)]
struct Seen {
    tally: Tally,
    /// The tag has appeared (`min_reads`).
    confirmed: bool,
    /// A crossing notice named it.
    notified: bool,
}

impl BeamGate {
    pub(super) fn new(config: SmoothingConfig) -> Self {
        Self {
            all: PresenceTracker::new(config).with_max_tags(DEFAULT_MAX_TAGS),
            broken: [false; 2],
            active: None,
            queued: Vec::new(),
        }
    }

    pub(super) fn set_max_tags(&mut self, max_tags: usize) {
        self.all.set_max_tags(max_tags);
    }

    pub(super) fn tracker(&self) -> &PresenceTracker {
        &self.all
    }

    pub(super) fn handle_read(&mut self, sh: &mut Shared, read: TagRead) {
        if read.antenna == 0 {
            sh.stats.ignored_reads += 1;
            return;
        }
        let confirmed = match self.all.record(read) {
            ReadOutcome::Dropped => return,
            ReadOutcome::Candidate => false,
            ReadOutcome::Appeared(_) | ReadOutcome::Present => true,
        };
        let holdoff = sh.config.smoothing.holdoff_ms;
        let Some(window) = &mut self.active else {
            return;
        };
        let TagRead {
            at_ms: t,
            epc,
            antenna,
            rssi,
        } = read;
        if window
            .restored_ms
            .is_some_and(|r| t.saturating_sub(r) > holdoff)
        {
            return;
        }
        if let Some(seen) = window.seen.get_mut(&epc) {
            seen.tally.add(t, antenna, rssi);
            seen.confirmed |= confirmed;
        } else if window.seen.len() < MAX_TAGS_PER_LIST {
            window.seen.insert(
                epc,
                Seen {
                    tally: Tally::new(t, antenna, rssi),
                    confirmed,
                    notified: false,
                },
            );
        } else {
            sh.stats.dropped_reads += 1;
        }
    }

    pub(super) fn handle_beam(&mut self, sh: &mut Shared, t: i64, side: Side, broken: bool) {
        if self.broken[side.index()] == broken {
            return;
        }
        self.broken[side.index()] = broken;
        if broken {
            match &mut self.active {
                Some(window) if window.restored_ms.is_none() => {
                    if side != window.first_side && window.crossed_ms.is_none() {
                        window.crossed_ms = Some(t);
                    }
                }
                _ => {
                    // Nobody in the gate (or the last passage in its tail): a new passage.
                    if let Some(done) = self.active.take() {
                        self.finish(sh, done);
                    }
                    self.active = Some(Window {
                        id: sh.new_id(),
                        first_side: side,
                        start_ms: t,
                        crossed_ms: None,
                        last_restored: None,
                        restored_ms: None,
                        seen: EpcMap::default(),
                        announced: false,
                    });
                }
            }
        } else if let Some(window) = &mut self.active {
            if window.restored_ms.is_none() {
                window.last_restored = Some(side);
                if !self.broken.iter().any(|&b| b) {
                    window.restored_ms = Some(t);
                }
            }
        }
    }

    pub(super) fn poll(&mut self, sh: &mut Shared, t: i64, out: &mut Vec<Output>) {
        self.all.expire(t);
        out.append(&mut self.queued);
        let holdoff = sh.config.smoothing.holdoff_ms;
        let Some(window) = &mut self.active else {
            return;
        };
        if let Some(crossed_ms) = window.crossed_ms {
            let fresh: Vec<(Epc, i64, Tally)> = window
                .seen
                .iter()
                .filter(|(e, s)| s.confirmed && !s.notified && !sh.is_badge(e))
                .map(|(e, s)| (*e, crossed_ms, s.tally))
                .collect();
            let badges = window
                .seen
                .iter()
                .filter(|(_, s)| s.confirmed)
                .map(|(e, s)| (*e, s.tally));
            let direction = window.first_side.direction_from();
            if let Some(notice) = sh.crossing(window.id, direction, fresh, badges) {
                for epc in &notice.tags {
                    if let Some(seen) = window.seen.get_mut(epc) {
                        seen.notified = true;
                    }
                }
                window.announced = true;
                out.push(Output::Crossing(notice));
            }
        }
        let settled = window
            .restored_ms
            .is_some_and(|r| t.saturating_sub(r) > holdoff);
        let stuck = t.saturating_sub(window.start_ms) >= PASSAGE_LINGER_MS;
        if settled || stuck {
            if let Some(done) = self.active.take() {
                self.finish(sh, done);
            }
            out.append(&mut self.queued);
        }
    }

    /// Queues the final output of a passage.
    fn finish(&mut self, sh: &mut Shared, window: Window) {
        let went_through = match (window.crossed_ms, window.restored_ms) {
            // Both beams restored: through if the last one restored is the far one.
            (Some(crossed_ms), Some(_)) => {
                (window.last_restored == Some(window.first_side.other())).then_some(crossed_ms)
            }
            // Still blocked after the linger: report the established direction (fail secure).
            (Some(crossed_ms), None) => Some(crossed_ms),
            (None, _) => None,
        };
        if let Some(crossed_ms) = went_through {
            let sightings = window
                .seen
                .iter()
                .filter(|(_, s)| s.confirmed)
                .map(|(e, s)| (*e, s.tally))
                .collect();
            let direction = window.first_side.direction_from();
            if let Some(passage) = sh.passage(window.id, crossed_ms, direction, sightings) {
                self.queued.push(passage);
                return;
            }
        }
        if window.announced {
            self.queued.push(Output::TurnedBack { passage: window.id });
        }
    }
}
