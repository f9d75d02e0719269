//! Simulation time: milliseconds on a clock that the caller owns.
//!
//! State machines never read a clock. The tokio drivers pass the milliseconds elapsed since the
//! device started; tests pass whatever they like (see [`crate::serial::VirtualSerial`]), so a
//! minute of reader behaviour runs in microseconds and the same inputs always give the same bytes.

use std::fmt;
use std::ops::Add;

/// A point on the simulation clock, in milliseconds since the device started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// The moment the device started.
    pub const ZERO: Millis = Millis(0);

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<u64> for Millis {
    type Output = Millis;

    /// Saturates instead of overflowing: a deadline that far away is "never".
    fn add(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_since_saturate() {
        assert_eq!(Millis(5) + 10, Millis(15));
        assert_eq!(Millis(u64::MAX) + 1, Millis(u64::MAX));
        assert_eq!(Millis(15).since(Millis(5)), 10);
        assert_eq!(Millis(5).since(Millis(15)), 0);
        assert_eq!(Millis(7).to_string(), "7ms");
    }
}
