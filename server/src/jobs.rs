//! Periodic jobs: the sweep ([`crate::service::sweep`]) on its timer.
//!
//! [`sweep_periodically`] runs a sweep every `sweep_interval`, starting one interval after
//! launch; if a sweep takes longer than the interval, the next one waits (no pile-up). A failed
//! sweep is logged and the next one tries again: every rule works from the database, so nothing
//! is lost by a failure. This module only keeps time: what a sweep does is the use case's.

use std::time::Instant;

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
