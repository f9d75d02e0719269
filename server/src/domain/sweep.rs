//! The rules of the periodic sweeps: overdue sign-outs, cabinet removals after their grace
//! period, missing carriers past their legal deadline, and silent readers.
//!
//! Every function here is pure: times are Unix milliseconds passed in, never read from a
//! clock, so each rule is a plain unit test. The sweep runner (`jobs`) asks the store for the
//! small "due" sets through indexes and applies these rules to each row.
//!
//! # When an alert is raised again
//! - `overdue`: one alert per sign-out (cause `overdue:signout:ID`). While it is live, every
//!   `overdue_reminder_ms` adds an occurrence (a reminder). If a guard resolved it and the
//!   sign-out is still out, a fresh alert comes at the next reminder time.
//! - `cabinet_removal` and `missing`: once per pending removal (the pending row is consumed).
//! - `leak_deadline`: once per carrier per missing episode, even if resolved while the carrier
//!   is still missing (the deadline passes only once).
//! - `reader_silent`: once per silence episode of a device. An episode starts at the last
//!   heartbeat (or at registration for a device that never sent one). When heartbeats resume,
//!   the alert is NOT resolved automatically — a silenced gate is the easiest attack, so a
//!   guard must look and resolve it — but its detail gets `resumed_at`. A new silence while
//!   the alert is still live counts as another occurrence and clears `resumed_at`.

use super::level::Level;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The sweeps' timing policy (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPolicy {
    /// Interval between reminders for a sign-out that stays overdue. Default 1 hour.
    pub overdue_reminder_ms: i64,
    /// How long a carrier may be gone from a cabinet before its removal, with no sign-out
    /// out for it, becomes an alert. Default 30 s.
    pub cabinet_removal_grace_ms: i64,
    /// How long a device may stay quiet before it counts as silent. Default 6 s.
    pub supervision_ms: i64,
}

impl Default for SweepPolicy {
    fn default() -> Self {
        SweepPolicy {
            overdue_reminder_ms: 3_600_000,
            cabinet_removal_grace_ms: 30_000,
            supervision_ms: 6_000,
        }
    }
}

/// How long a carrier may stay missing (查无下落) before it is handled and reported as a leak
/// incident (泄密事件): Top Secret 10 days, Secret and Confidential 60 days (DOMAIN.md).
pub fn leak_deadline_ms(level: Level) -> i64 {
    match level {
        Level::TopSecret => 10 * DAY_MS,
        Level::Secret | Level::Confidential => 60 * DAY_MS,
    }
}

/// The shortest [`leak_deadline_ms`] of any level: carriers missing for less than this cannot
/// be due, so the sweep's index range stops here.
pub const SHORTEST_LEAK_DEADLINE_MS: i64 = 10 * DAY_MS;

/// Whether a carrier of `level` missing since `missing_since_ms` has reached its deadline.
pub fn leak_deadline_passed(level: Level, missing_since_ms: i64, now_ms: i64) -> bool {
    missing_since_ms.saturating_add(leak_deadline_ms(level)) <= now_ms
}

/// Whether an overdue alert (or reminder) is due now for a sign-out that is out.
///
/// Due when the sign-out is past `due_at_ms` and either nobody was told yet, the last notice
/// came before the current due time (the due time was moved after a notice), or the last
/// notice is at least `reminder_ms` old.
pub fn overdue_notice_due(
    due_at_ms: i64,
    notified_at_ms: Option<i64>,
    now_ms: i64,
    reminder_ms: i64,
) -> bool {
    if due_at_ms >= now_ms {
        return false;
    }
    match notified_at_ms {
        None => true,
        Some(at) if at < due_at_ms => true,
        Some(at) => now_ms.saturating_sub(at) >= reminder_ms,
    }
}

/// Whether a removal seen at `removed_at_ms` is older than the grace period.
pub fn removal_grace_over(removed_at_ms: i64, now_ms: i64, grace_ms: i64) -> bool {
    now_ms.saturating_sub(removed_at_ms) > grace_ms
}

/// Where the register believes a carrier is, as far as the sweeps care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierStanding {
    /// `in_storage` or `out`: the register claims to know where it is.
    Accounted,
    /// Already `missing`.
    Missing,
    /// `archived` or `destroyed`: out of circulation.
    Retired,
    /// Away on a record of its own: handed over on a transfer, sent on a dispatch, or out for
    /// repair (an open repair, whatever the register's state).
    Moving,
}

impl CarrierStanding {
    /// The standing of a stored carrier state name.
    pub fn from_state(state: &str) -> Option<CarrierStanding> {
        match state {
            "in_storage" | "out" => Some(CarrierStanding::Accounted),
            "missing" => Some(CarrierStanding::Missing),
            "archived" | "destroyed" | "declassified" => Some(CarrierStanding::Retired),
            "in_transfer" | "dispatched" => Some(CarrierStanding::Moving),
            _ => None,
        }
    }
}

/// What to do with a cabinet removal whose grace period is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalOutcome {
    /// A sign-out that is out covers the carrier, or a transfer, dispatch or repair it left
    /// on: the removal was the hand-over; drop it.
    Covered,
    /// Nothing covers it: raise `cabinet_removal`; if `mark_missing`, the carrier becomes
    /// missing since the removal and a `missing` alert is raised too.
    Unaccounted {
        /// Whether the carrier's state changes to `missing`.
        mark_missing: bool,
    },
}

/// Decide a removal past its grace period.
pub fn removal_outcome(on_signout: bool, standing: CarrierStanding) -> RemovalOutcome {
    if on_signout || standing == CarrierStanding::Moving {
        return RemovalOutcome::Covered;
    }
    RemovalOutcome::Unaccounted {
        mark_missing: standing == CarrierStanding::Accounted,
    }
}

/// Whether a device last heard from at `heard_ms` is silent at `now_ms`: that was more than
/// `supervision_ms` ago (exactly `supervision_ms` ago is not yet silent).
///
/// The one silence rule: the sweep raises `reader_silent` by it ([`silent_since`]) and the
/// guard console shows a device as silent by it (`domain::liveness::liveness`), so the two never
/// disagree about a device.
pub fn is_silent(heard_ms: i64, now_ms: i64, supervision_ms: i64) -> bool {
    now_ms.saturating_sub(heard_ms) > supervision_ms
}

/// The first moment a device last heard from at `heard_ms` is silent ([`is_silent`]): one
/// millisecond past the supervision interval. The silence watch sleeps until the earliest of
/// these, so a quiet device is flagged at its own deadline, not at the next sweep tick.
pub fn silence_deadline(heard_ms: i64, supervision_ms: i64) -> i64 {
    heard_ms.saturating_add(supervision_ms).saturating_add(1)
}

/// When the current silence of a device began, if it is silent at `now_ms` ([`is_silent`]):
/// its last heartbeat, or its registration if it never sent one.
pub fn silent_since(
    last_heartbeat_ms: Option<i64>,
    registered_ms: i64,
    now_ms: i64,
    supervision_ms: i64,
) -> Option<i64> {
    let since = last_heartbeat_ms.unwrap_or(registered_ms);
    is_silent(since, now_ms, supervision_ms).then_some(since)
}

/// Whether a silence episode that began at `since_ms` already has its alert: the last alert of
/// the same cause was raised or repeated (`last_seen_at_ms`) after the episode began.
pub fn episode_alerted(last_alert_seen_ms: Option<i64>, since_ms: i64) -> bool {
    matches!(last_alert_seen_ms, Some(seen) if seen > since_ms)
}

/// When a silent device spoke again: its last heartbeat, if that is after the silence began.
pub fn resumed_at(silent_since_ms: i64, last_heartbeat_ms: Option<i64>) -> Option<i64> {
    last_heartbeat_ms.filter(|h| *h > silent_since_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    #[test]
    fn leak_deadlines_follow_the_level_table() {
        assert_eq!(leak_deadline_ms(Level::TopSecret), 10 * DAY_MS);
        assert_eq!(leak_deadline_ms(Level::Secret), 60 * DAY_MS);
        assert_eq!(leak_deadline_ms(Level::Confidential), 60 * DAY_MS);
        let shortest = [Level::TopSecret, Level::Secret, Level::Confidential]
            .map(leak_deadline_ms)
            .into_iter()
            .min();
        assert_eq!(shortest, Some(SHORTEST_LEAK_DEADLINE_MS));
    }

    #[test]
    fn the_deadline_passes_exactly_at_since_plus_deadline() {
        let ts = 10 * DAY_MS;
        assert!(!leak_deadline_passed(Level::TopSecret, T, T + ts - 1));
        assert!(leak_deadline_passed(Level::TopSecret, T, T + ts));
        assert!(!leak_deadline_passed(Level::Secret, T, T + ts));
        assert!(!leak_deadline_passed(
            Level::Confidential,
            T,
            T + 60 * DAY_MS - 1
        ));
        assert!(leak_deadline_passed(
            Level::Confidential,
            T,
            T + 60 * DAY_MS
        ));
        // No wrap-around near the end of time.
        assert!(!leak_deadline_passed(
            Level::TopSecret,
            i64::MAX - 5,
            i64::MAX - 1
        ));
    }

    #[test]
    fn overdue_is_noticed_once_then_reminded_per_interval() {
        let hour = 3_600_000;
        let due = T;
        assert!(
            !overdue_notice_due(due, None, due, hour),
            "due, not past due"
        );
        assert!(overdue_notice_due(due, None, due + 1, hour));
        let told = due + 1;
        assert!(!overdue_notice_due(due, Some(told), told, hour));
        assert!(!overdue_notice_due(due, Some(told), told + hour - 1, hour));
        assert!(overdue_notice_due(due, Some(told), told + hour, hour));
    }

    #[test]
    fn a_moved_due_time_starts_a_new_overdue_episode() {
        let hour = 3_600_000;
        let told = T;
        let new_due = T + 10 * hour;
        assert!(!overdue_notice_due(new_due, Some(told), new_due, hour));
        assert!(overdue_notice_due(new_due, Some(told), new_due + 1, hour));
    }

    #[test]
    fn removals_wait_out_the_grace_period() {
        assert!(!removal_grace_over(T, T + 30_000, 30_000));
        assert!(removal_grace_over(T, T + 30_001, 30_000));
        assert!(
            !removal_grace_over(T, T - 5, 30_000),
            "clock skew is not a removal"
        );
    }

    #[test]
    fn a_covered_removal_is_dropped_and_an_unaccounted_one_marks_the_carrier_missing() {
        use CarrierStanding::*;
        for standing in [Accounted, Missing, Retired, Moving] {
            assert_eq!(removal_outcome(true, standing), RemovalOutcome::Covered);
        }
        assert_eq!(
            removal_outcome(false, Moving),
            RemovalOutcome::Covered,
            "a carrier taken out for a transfer, dispatch or repair left on its record"
        );
        assert_eq!(
            removal_outcome(false, Accounted),
            RemovalOutcome::Unaccounted { mark_missing: true }
        );
        assert_eq!(
            removal_outcome(false, Missing),
            RemovalOutcome::Unaccounted {
                mark_missing: false
            }
        );
        assert_eq!(
            removal_outcome(false, Retired),
            RemovalOutcome::Unaccounted {
                mark_missing: false
            }
        );
    }

    #[test]
    fn carrier_states_map_to_standings() {
        assert_eq!(
            CarrierStanding::from_state("in_storage"),
            Some(CarrierStanding::Accounted)
        );
        assert_eq!(
            CarrierStanding::from_state("out"),
            Some(CarrierStanding::Accounted)
        );
        assert_eq!(
            CarrierStanding::from_state("missing"),
            Some(CarrierStanding::Missing)
        );
        assert_eq!(
            CarrierStanding::from_state("destroyed"),
            Some(CarrierStanding::Retired)
        );
        for moving in ["in_transfer", "dispatched"] {
            assert_eq!(
                CarrierStanding::from_state(moving),
                Some(CarrierStanding::Moving)
            );
        }
        assert_eq!(
            CarrierStanding::from_state("declassified"),
            Some(CarrierStanding::Retired)
        );
        assert_eq!(CarrierStanding::from_state("lost"), None);
    }

    #[test]
    fn silent_only_after_more_than_the_supervision_interval() {
        let sup = 6_000;
        let due = silence_deadline(T, sup);
        assert!(is_silent(T, due, sup) && !is_silent(T, due - 1, sup));
        assert_eq!(silence_deadline(i64::MAX, sup), i64::MAX);
        assert!(!is_silent(T, T, sup));
        assert!(!is_silent(T, T + sup, sup));
        assert!(is_silent(T, T + sup + 1, sup));
        // A heartbeat stamped after `now` (clock skew) is not silence.
        assert!(!is_silent(T + 1, T, sup));
        // No wrap-around at the ends of time.
        assert!(is_silent(i64::MIN, i64::MAX, sup));
        assert!(!is_silent(i64::MAX, i64::MIN, sup));
    }

    #[test]
    fn silence_starts_at_the_last_heartbeat_or_the_registration() {
        let sup = 6_000;
        assert_eq!(silent_since(Some(T), T - 99, T + sup, sup), None);
        assert_eq!(silent_since(Some(T), T - 99, T + sup + 1, sup), Some(T));
        assert_eq!(silent_since(None, T, T + sup, sup), None);
        assert_eq!(silent_since(None, T, T + sup + 1, sup), Some(T));
    }

    #[test]
    fn one_alert_per_silence_episode() {
        assert!(!episode_alerted(None, T));
        assert!(!episode_alerted(Some(T - 1), T), "an older episode's alert");
        assert!(
            !episode_alerted(Some(T), T),
            "a heartbeat in the alert's own millisecond starts a new episode"
        );
        assert!(episode_alerted(Some(T + 1), T));
    }

    #[test]
    fn resumption_is_a_heartbeat_after_the_silence_began() {
        assert_eq!(resumed_at(T, None), None);
        assert_eq!(resumed_at(T, Some(T)), None);
        assert_eq!(resumed_at(T, Some(T + 1)), Some(T + 1));
    }
}
