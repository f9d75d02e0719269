//! Password guessing is slowed per account.
//!
//! Argon2id makes each guess cost the server tens of milliseconds, but nothing else stopped a
//! client from trying a guard's password thousands of times a day. So the server counts the
//! failed sign-ins of every username (existing or not: the answer must not tell which):
//! - the first [`FREE_FAILURES`] failures cost nothing more;
//! - each failure after them blocks the username for [`FIRST_BLOCK_SECS`], doubling with every
//!   further failure up to [`MAX_BLOCK_SECS`];
//! - an attempt while blocked is refused at once, *without* checking the password (so a right
//!   guess during the block tells nothing, and refusing costs no hashing), and does not
//!   lengthen the block;
//! - a successful sign-in clears the count; so does [`FORGET_AFTER_SECS`] without a failure
//!   (counted from the end of the last block).
//!
//! An attempt counts as a failure when it starts ([`LoginThrottle::attempt`]) and is taken back
//! when it succeeds ([`LoginThrottle::succeeded`]): guesses sent in parallel, which would all
//! pass a check made before any of them failed, are counted while their hashes are computed.
//!
//! An attacker can therefore keep a known username blocked for as long as they keep trying:
//! the price of not letting them guess. The block is short at first and an administrator can
//! still sign in under another account. Counting per source address too would not help behind
//! the reverse proxy a site puts in front of the server, so it is left out.
//!
//! Time is counted in whole seconds (the server's clock), so a block of N seconds lasts until
//! the start of the (N + 1)-th second after the failure's: at least N seconds, and
//! `retry_after_secs` says N + 1 when asked at once.
//!
//! Memory is bounded by [`MAX_USERNAMES`]: when full, the entries that are neither blocked nor
//! past the free failures go first, then the oldest. Pure: time is passed in.

use std::collections::HashMap;

use crate::domain::time::Timestamp;

/// Failures allowed before a block.
pub const FREE_FAILURES: u32 = 5;
/// The first block, in seconds; each further failure doubles it.
pub const FIRST_BLOCK_SECS: i64 = 1;
/// The longest block (15 minutes).
pub const MAX_BLOCK_SECS: i64 = 15 * 60;
/// A count is forgotten this long after its last failure or block ended (15 minutes).
pub const FORGET_AFTER_SECS: i64 = 15 * 60;
/// The most usernames counted at once.
pub const MAX_USERNAMES: usize = 10_000;

/// A sign-in refused without a password check: the username is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// Seconds until an attempt is taken again (at least 1).
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// The last failure.
    last: Timestamp,
    /// Attempts before this instant are refused.
    blocked_until: Timestamp,
}

impl Entry {
    fn forgotten(&self, now: Timestamp) -> bool {
        let from = self.last.unix().max(self.blocked_until.unix());
        now.unix() >= from.saturating_add(FORGET_AFTER_SECS)
    }
}

/// The failure counts (see the module doc).
#[derive(Debug, Default)]
pub struct LoginThrottle {
    entries: HashMap<String, Entry>,
}

impl LoginThrottle {
    /// An empty throttle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a sign-in attempt for `username` at `now`: refused while the username is blocked;
    /// otherwise counted as a failure until [`succeeded`](Self::succeeded) says otherwise, and
    /// `Ok(Some(block))` when that failure starts a block.
    pub fn attempt(&mut self, username: &str, now: Timestamp) -> Result<Option<Blocked>, Blocked> {
        self.check(username, now)?;
        Ok(self.failed(username, now))
    }

    fn check(&mut self, username: &str, now: Timestamp) -> Result<(), Blocked> {
        let Some(entry) = self.entries.get(username) else {
            return Ok(());
        };
        if entry.forgotten(now) {
            self.entries.remove(username);
            return Ok(());
        }
        let wait = entry.blocked_until.unix().saturating_sub(now.unix());
        if wait > 0 {
            return Err(Blocked {
                retry_after_secs: wait.unsigned_abs(),
            });
        }
        Ok(())
    }

    fn failed(&mut self, username: &str, now: Timestamp) -> Option<Blocked> {
        if !self.entries.contains_key(username) && self.entries.len() >= MAX_USERNAMES {
            self.make_room(now);
        }
        let entry = self.entries.entry(username.to_owned()).or_insert(Entry {
            failures: 0,
            last: now,
            blocked_until: now,
        });
        if entry.forgotten(now) {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        let over = entry.failures.saturating_sub(FREE_FAILURES);
        if over == 0 {
            return None;
        }
        let block = FIRST_BLOCK_SECS
            .checked_shl(over - 1)
            .filter(|b| *b > 0)
            .map_or(MAX_BLOCK_SECS, |b| b.min(MAX_BLOCK_SECS));
        let until = block.saturating_add(1);
        entry.blocked_until = now.plus_secs(until);
        Some(Blocked {
            retry_after_secs: until.unsigned_abs(),
        })
    }

    /// The attempt succeeded: the count starts over.
    pub fn succeeded(&mut self, username: &str) {
        self.entries.remove(username);
    }

    /// How many usernames are counted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no username is counted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self, now: Timestamp) {
        self.entries.retain(|_, e| !e.forgotten(now));
        if self.entries.len() < MAX_USERNAMES {
            return;
        }
        // Keep the blocked and nearly blocked ones: drop those still within the free failures.
        self.entries.retain(|_, e| e.failures >= FREE_FAILURES);
        if self.entries.len() < MAX_USERNAMES {
            return;
        }
        if let Some(oldest) = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.last.unix())
            .map(|(name, _)| name.clone())
        {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + secs).unwrap()
    }

    const fn blocked(secs: u64) -> Blocked {
        Blocked {
            retry_after_secs: secs,
        }
    }

    #[test]
    fn free_failures_then_doubling_blocks_up_to_the_cap() {
        let mut t = LoginThrottle::new();
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.attempt("guard1", at(0)), Ok(None));
        }
        // The sixth attempt is still taken; if it fails, the username is blocked for 1 s (to
        // the start of the second after next: whole seconds).
        assert_eq!(t.attempt("guard1", at(0)), Ok(Some(blocked(2))));
        assert_eq!(t.attempt("guard1", at(0)), Err(blocked(2)));
        // A refused attempt does not lengthen the block; other usernames are not affected.
        assert_eq!(t.attempt("guard1", at(1)), Err(blocked(1)));
        assert_eq!(t.attempt("guard2", at(0)), Ok(None));
        // The block ends; the next failure doubles it.
        assert_eq!(t.attempt("guard1", at(2)), Ok(Some(blocked(3))));
        assert_eq!(t.attempt("guard1", at(3)), Err(blocked(2)));
        let mut now = 5;
        let mut blocks = Vec::new();
        for _ in 0..12 {
            let b = t.attempt("guard1", at(now)).unwrap().unwrap();
            blocks.push(b.retry_after_secs);
            now += i64::try_from(b.retry_after_secs).unwrap();
        }
        assert_eq!(
            blocks,
            [5, 9, 17, 33, 65, 129, 257, 513, 901, 901, 901, 901]
        );
    }

    #[test]
    fn success_or_a_quiet_period_starts_the_count_over() {
        let mut t = LoginThrottle::new();
        for _ in 0..FREE_FAILURES {
            t.attempt("officer", at(0)).unwrap();
        }
        // The right password on the sixth try: taken, and the count starts over.
        assert!(t.attempt("officer", at(0)).unwrap().is_some());
        t.succeeded("officer");
        assert!(t.is_empty());
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.attempt("officer", at(0)), Ok(None));
        }
        assert_eq!(t.attempt("officer", at(0)), Ok(Some(blocked(2))));
        // Forgotten FORGET_AFTER_SECS after the block ended.
        assert_eq!(t.check("officer", at(1 + FORGET_AFTER_SECS)), Ok(()));
        assert_eq!(t.len(), 1);
        assert_eq!(t.attempt("officer", at(2 + FORGET_AFTER_SECS)), Ok(None));
        assert_eq!(t.len(), 1, "counting from one again");
    }

    #[test]
    fn parallel_guesses_are_counted_before_their_results() {
        let mut t = LoginThrottle::new();
        // Ten guesses arrive together: none has failed yet when the later ones start.
        let results: Vec<_> = (0..10).map(|_| t.attempt("custodian", at(0))).collect();
        assert_eq!(results[..5], [Ok(None); 5]);
        assert_eq!(results[5], Ok(Some(blocked(2))));
        assert!(results[6..].iter().all(|r| *r == Err(blocked(2))));
    }

    #[test]
    fn memory_is_bounded_and_blocked_usernames_are_kept() {
        let mut t = LoginThrottle::new();
        for _ in 0..=FREE_FAILURES {
            t.attempt("target", at(0)).unwrap();
        }
        for n in 0..MAX_USERNAMES * 2 {
            t.attempt(&format!("spray{n}"), at(0)).unwrap();
            assert!(t.len() <= MAX_USERNAMES);
        }
        assert!(
            t.attempt("target", at(0)).is_err(),
            "the block survives a spray"
        );
    }
}
