//! Capped exponential backoff, for every retry loop of the daemon: reader reconnects, the
//! gate I/O link, uploads and policy fetches.

use std::time::Duration;

/// Capped exponential backoff without jitter: `first`, doubling, at most `max`.
///
/// Jitter spreads the retries of many clients of one server. Each reader and the gate I/O
/// module has a link of its own, and a daemon is one of a site's few clients of its server, so
/// a fixed sequence costs little and keeps tests deterministic.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff starting at `first` and doubling up to `max` (`max` wins if smaller).
    pub fn new(first: Duration, max: Duration) -> Self {
        let first = first.min(max);
        Self {
            first,
            next: first,
            max,
        }
    }

    /// The delay before the next attempt; each call doubles the following one, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let seq: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(seq, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
        // A cap between two doublings is reached exactly.
        let mut b = Backoff::new(ms(100), ms(350));
        let seq: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(seq, [ms(100), ms(200), ms(350), ms(350), ms(350)]);
        let mut tiny = Backoff::new(ms(100), ms(30));
        assert_eq!(tiny.next_delay(), ms(30));
    }
}
