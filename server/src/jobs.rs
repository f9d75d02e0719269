//! Periodic jobs: the sweep (overdue sign-outs, cabinet removals after their grace period,
//! leak deadlines of missing carriers, silent readers).
//!
//! A sweep is ONE store write job ([`crate::store::sweeps::run`]): it commits whole or not at
//! all, and it holds the writer only for indexed reads of the few rows that are due. Once it
//! has committed, the ids of the alerts it raised or changed go to the alert hub, so live
//! consoles hear of them. The rules themselves are pure functions in
//! [`crate::domain::sweep`].
//!
//! [`sweep_periodically`] runs a sweep every `sweep_interval`, starting one interval after
//! launch; if a sweep takes longer than the interval, the next one waits (no pile-up). A failed
//! sweep is logged and the next one tries again: every rule works from the database, so nothing
//! is lost by a failure.

use std::time::Instant;

use crate::AppState;
use crate::store::StoreError;
use crate::store::sweeps::{self, SweepOutcome};

/// Run one sweep now (tests call this directly, with a clock they move).
pub async fn sweep_once(state: &AppState) -> Result<SweepOutcome, StoreError> {
    let started = Instant::now();
    let at = state.now();
    let policy = state.settings().sweep;
    let outcome = state
        .store()
        .write(move |conn| sweeps::run(conn, at, policy))
        .await?;
    state.alerts().notify(outcome.changed.iter().copied());
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
