//! Latency summaries: count, median, 99th percentile and maximum of a set of samples.

use std::time::Duration;

use serde::Serialize;

/// A latency distribution in milliseconds (nearest-rank percentiles over every sample).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: usize,
    /// Median, if any sample.
    pub p50_ms: Option<f64>,
    /// 90th percentile, if any sample.
    pub p90_ms: Option<f64>,
    /// 99th percentile, if any sample (with fewer than 100 samples it is the largest but one
    /// at most, and often the maximum itself).
    pub p99_ms: Option<f64>,
    /// Largest sample, if any.
    pub max_ms: Option<f64>,
}

impl Latency {
    /// The summary of `samples` (any order).
    #[must_use]
    pub fn of(samples: &[Duration]) -> Latency {
        let mut sorted: Vec<Duration> = samples.to_vec();
        sorted.sort_unstable();
        let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        Latency {
            count: sorted.len(),
            p50_ms: quantile(&sorted, 0.50).map(ms),
            p90_ms: quantile(&sorted, 0.90).map(ms),
            p99_ms: quantile(&sorted, 0.99).map(ms),
            max_ms: sorted.last().copied().map(ms),
        }
    }

    /// `p50 / p99 / max ms (n)`, or `-` without samples.
    #[must_use]
    pub fn cell(&self) -> String {
        match (self.p50_ms, self.p99_ms, self.max_ms) {
            (Some(p50), Some(p99), Some(max)) => {
                format!("{p50:.1} / {p99:.1} / {max:.1} (n={})", self.count)
            }
            _ => "- (n=0)".to_owned(),
        }
    }
}

/// The nearest-rank `q` quantile of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=200).rev().collect();
        let l = Latency::of(&ms(&samples));
        assert_eq!(l.count, 200);
        assert_eq!(l.p50_ms, Some(100.0));
        assert_eq!(l.p90_ms, Some(180.0));
        assert_eq!(l.p99_ms, Some(198.0));
        assert_eq!(l.max_ms, Some(200.0));
    }

    #[test]
    fn small_and_empty_sets() {
        let l = Latency::of(&ms(&[7]));
        assert_eq!(
            (l.p50_ms, l.p99_ms, l.max_ms),
            (Some(7.0), Some(7.0), Some(7.0))
        );
        let l = Latency::of(&ms(&[1, 2, 3, 40]));
        assert_eq!(l.p50_ms, Some(2.0));
        assert_eq!(l.p99_ms, Some(40.0));
        let none = Latency::of(&[]);
        assert_eq!(none.count, 0);
        assert_eq!(none.p99_ms, None);
        assert_eq!(none.cell(), "- (n=0)");
    }

    #[test]
    fn sub_millisecond_values_keep_a_tenth() {
        let l = Latency::of(&[Duration::from_micros(1_250)]);
        assert_eq!(l.max_ms, Some(1.3));
        assert_eq!(l.cell(), "1.3 / 1.3 / 1.3 (n=1)");
    }
}
