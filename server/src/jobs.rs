//! Periodic jobs: the sweep ([`crate::service::sweep`]) on its timer, and the silence watch.
//!
//! [`sweep_periodically`] runs a sweep every `sweep_interval`, starting one interval after
//! launch; if a sweep takes longer than the interval, the next one waits (no pile-up). A failed
//! sweep is logged and the next one tries again: every rule works from the database, so nothing
//! is lost by a failure. This module only keeps time: what a sweep does is the use case's.
//!
//! [`watch_silence`] (config `silence_watch`, on by default) flags a device that goes quiet at
//! its own deadline (last heartbeat + supervision interval) instead of at the next sweep tick,
//! which could add up to a whole `sweep_interval`: a silenced gate is the easiest attack. It
//! sleeps until the earliest deadline of the devices still heard (at most [`SILENCE_REPLAN`],
//! so a device heard for the first time is planned for long before its deadline), then runs
//! the sweep's silence rules alone. A heartbeat that arrives meanwhile only makes that check find nothing.

use std::time::{Duration, Instant};

use crate::AppState;
use crate::service::ServiceError;
use crate::service::sweep::{self, SweepOutcome};

/// Run one sweep now and time it (tests call this directly, with a clock they move).
pub async fn sweep_once(state: &AppState) -> Result<SweepOutcome, ServiceError> {
    let started = Instant::now();
    let outcome = sweep::sweep(state).await?;
    let took = started.elapsed();
    state.metrics().observe_sweep(took);
    if !outcome.changed.is_empty() {
        tracing::info!(
            raised = outcome.raised,
            changed = outcome.changed.len(),
            marked_missing = outcome.marked_missing,
            micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "sweep"
        );
    }
    Ok(outcome)
}

/// Sweep every `sweep_interval` until the task is aborted.
pub(crate) async fn sweep_periodically(state: AppState) {
    let period = state.settings().sweep_interval;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = sweep_once(&state).await {
            tracing::error!(error = %e, "sweep failed");
        }
    }
}

/// The shortest wait between two silence checks: a clock that does not move (tests) or a
/// deadline a millisecond away cannot make the watch spin.
const SILENCE_MIN_WAIT: Duration = Duration::from_millis(50);

/// How long to sleep before the next silence check, and whether a deadline falls due then
/// (`next_ms`: the earliest deadline, if any device is heard; `longest`: the sweep interval).
fn silence_wait(next_ms: Option<i64>, now_ms: i64, longest: Duration) -> (Duration, bool) {
    let Some(at_ms) = next_ms else {
        return (longest, false);
    };
    let wait = Duration::from_millis(u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0));
    if wait > longest {
        (longest, false)
    } else {
        (wait.max(SILENCE_MIN_WAIT), true)
    }
}

/// The longest the silence watch sleeps without looking again: a device heard for the first
/// time (or again after a silence) is planned for within this, long before its deadline. One
/// indexed read of one row each time.
const SILENCE_REPLAN: Duration = Duration::from_millis(500);

/// Watch every device's silence deadline until the task is aborted (see the module docs).
pub(crate) async fn watch_silence(state: AppState) {
    let longest = state.settings().sweep_interval.min(SILENCE_REPLAN);
    loop {
        let next = match sweep::next_silence_at(&state).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "silence watch: cannot plan");
                None
            }
        };
        let (wait, due) = silence_wait(next, state.now().unix_ms(), longest);
        tokio::time::sleep(wait).await;
        if !due {
            continue;
        }
        match sweep::silent_readers(&state).await {
            Ok(outcome) if outcome.raised > 0 => {
                tracing::info!(raised = outcome.raised, "silence watch: device silent");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "silence watch failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_sleeps_until_the_deadline_within_bounds() {
        let longest = Duration::from_secs(2);
        assert_eq!(silence_wait(None, 0, longest), (longest, false));
        assert_eq!(
            silence_wait(Some(1_500), 1_000, longest),
            (Duration::from_millis(500), true)
        );
        assert_eq!(silence_wait(Some(9_000), 1_000, longest), (longest, false));
        // Due now or already past: a short pause, never a spin.
        assert_eq!(
            silence_wait(Some(1_000), 1_000, longest),
            (SILENCE_MIN_WAIT, true)
        );
        assert_eq!(
            silence_wait(Some(0), 1_000, longest),
            (SILENCE_MIN_WAIT, true)
        );
    }
}
