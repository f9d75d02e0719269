//! Prometheus metrics (text exposition format 0.0.4, written by hand); `api::metrics` serves
//! them at `GET /metrics`.
//!
//! In-process counters live in [`Metrics`] (atomics, no locks): events ingested, the ingest
//! latency histogram, the last sweep's duration. Alert figures are read from the database at
//! scrape time, so they are exact and survive restarts:
//! `custos_alerts_raised_total{kind}` counts alert rows ever raised per kind (a counter: rows
//! are never deleted), `custos_open_alerts{kind}` the live (open or acknowledged) ones.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::alerts::AlertCounts;

/// Upper bounds (seconds) of the ingest latency histogram buckets; `+Inf` is implied.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The content type of the text exposition format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// In-process counters, shared through [`crate::AppState::metrics`].
#[derive(Debug, Default)]
pub struct Metrics {
    events_ingested: AtomicU64,
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_nanos: AtomicU64,
    latency_count: AtomicU64,
    sweeps: AtomicU64,
    last_sweep_nanos: AtomicU64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A value in seconds from nanoseconds (f64 is exact enough for a metric).
#[allow(clippy::cast_precision_loss)]
fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

impl Metrics {
    /// A device batch of `events` events was stored, `latency` after it arrived.
    pub fn observe_ingest(&self, events: u64, latency: Duration) {
        self.events_ingested.fetch_add(events, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_nanos
            .fetch_add(nanos(latency), Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// A sweep finished after `took`.
    pub fn observe_sweep(&self, took: Duration) {
        self.sweeps.fetch_add(1, Ordering::Relaxed);
        self.last_sweep_nanos.store(nanos(took), Ordering::Relaxed);
    }

    /// Events ingested so far.
    pub fn events_ingested(&self) -> u64 {
        self.events_ingested.load(Ordering::Relaxed)
    }

    /// Sweeps finished so far.
    pub fn sweeps(&self) -> u64 {
        self.sweeps.load(Ordering::Relaxed)
    }

    /// The text exposition of these counters and of `alerts`.
    pub fn render(&self, alerts: &AlertCounts) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write(&mut out, alerts);
        out
    }

    fn write(&self, out: &mut String, alerts: &AlertCounts) -> std::fmt::Result {
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            writeln!(out, "# HELP {name} {help}")?;
            writeln!(out, "# TYPE {name} {kind}")
        };
        header(
            out,
            "custos_events_ingested_total",
            "counter",
            "Device events stored by ingest.",
        )?;
        writeln!(
            out,
            "custos_events_ingested_total {}",
            self.events_ingested()
        )?;

        header(
            out,
            "custos_ingest_latency_seconds",
            "histogram",
            "Time from a batch's arrival to its stored answer.",
        )?;
        let mut cumulative = 0;
        for (i, slot) in self.latency_buckets.iter().enumerate() {
            cumulative += slot.load(Ordering::Relaxed);
            match LATENCY_BUCKETS.get(i) {
                Some(bound) => writeln!(
                    out,
                    "custos_ingest_latency_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
                )?,
                None => writeln!(
                    out,
                    "custos_ingest_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
                )?,
            }
        }
        writeln!(
            out,
            "custos_ingest_latency_seconds_sum {}",
            seconds(self.latency_sum_nanos.load(Ordering::Relaxed))
        )?;
        writeln!(
            out,
            "custos_ingest_latency_seconds_count {}",
            self.latency_count.load(Ordering::Relaxed)
        )?;

        header(
            out,
            "custos_alerts_raised_total",
            "counter",
            "Alerts raised, per kind.",
        )?;
        for (kind, n) in &alerts.raised {
            writeln!(out, "custos_alerts_raised_total{{kind=\"{kind}\"}} {n}")?;
        }
        header(
            out,
            "custos_open_alerts",
            "gauge",
            "Alerts open or acknowledged, per kind.",
        )?;
        for (kind, n) in &alerts.live {
            writeln!(out, "custos_open_alerts{{kind=\"{kind}\"}} {n}")?;
        }

        header(out, "custos_sweeps_total", "counter", "Sweeps finished.")?;
        writeln!(out, "custos_sweeps_total {}", self.sweeps())?;
        header(
            out,
            "custos_sweep_duration_seconds",
            "gauge",
            "Duration of the last sweep.",
        )?;
        writeln!(
            out,
            "custos_sweep_duration_seconds {}",
            seconds(self.last_sweep_nanos.load(Ordering::Relaxed))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::AlertKind;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_observation() {
        let m = Metrics::default();
        m.observe_ingest(3, Duration::from_micros(500));
        m.observe_ingest(2, Duration::from_millis(30));
        m.observe_ingest(1, Duration::from_secs(60));
        let text = m.render(&AlertCounts::default());
        assert_eq!(value(&text, "custos_events_ingested_total"), 6.0);
        let bucket = |le: &str| {
            value(
                &text,
                &format!("custos_ingest_latency_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.001"), 1.0);
        assert_eq!(bucket("0.025"), 1.0);
        assert_eq!(bucket("0.05"), 2.0);
        assert_eq!(bucket("5"), 2.0);
        assert_eq!(bucket("+Inf"), 3.0);
        assert_eq!(value(&text, "custos_ingest_latency_seconds_count"), 3.0);
        let sum = value(&text, "custos_ingest_latency_seconds_sum");
        assert!((sum - 60.0305).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn alert_figures_are_labelled_by_kind_and_sweeps_are_timed() {
        let m = Metrics::default();
        m.observe_sweep(Duration::from_millis(250));
        let counts = AlertCounts {
            raised: vec![(AlertKind::Overdue, 4)],
            live: vec![(AlertKind::Overdue, 1)],
        };
        let text = m.render(&counts);
        assert_eq!(
            value(&text, "custos_alerts_raised_total{kind=\"overdue\"}"),
            4.0
        );
        assert_eq!(value(&text, "custos_open_alerts{kind=\"overdue\"}"), 1.0);
        assert_eq!(value(&text, "custos_sweep_duration_seconds"), 0.25);
        assert_eq!(value(&text, "custos_sweeps_total"), 1.0);
    }
}
