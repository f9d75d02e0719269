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
//! still sign in under another account.
//!
//! # Per source address
//! The same rules count the failures of every source address too ([`LoginThrottle::per_source`],
//! keyed by [`source_key`]), with [`SOURCE_FREE_FAILURES`] free failures: a source spraying
//! many usernames (or names that are no username at all) is blocked although no single name
//! is. A success takes back only its own attempt ([`LoginThrottle::taken_back`]), so signing
//! in with one known account between guesses does not reset the count. Behind a reverse proxy
//! every client has the proxy's address: the server then reads the client's address from the
//! proxy's header, but only when the request comes from a configured proxy
//! (`trusted_proxy_header`, `trusted_proxies`); otherwise one blocked "source" would be every
//! user at once. IPv6 sources count per /64, the block a single host is normally given.
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
/// Failures allowed per source address before a block (a site's shared terminal may see a few
/// people mistype).
pub const SOURCE_FREE_FAILURES: u32 = 20;

/// The key a source address is counted under: the address itself for IPv4 (also when mapped
/// into IPv6), its /64 prefix for IPv6.
pub fn source_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => format!("ip:{v4}"),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

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
#[derive(Debug)]
pub struct LoginThrottle {
    entries: HashMap<String, Entry>,
    free_failures: u32,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new()
    }
}

impl LoginThrottle {
    /// An empty throttle of usernames ([`FREE_FAILURES`]).
    pub fn new() -> Self {
        LoginThrottle {
            entries: HashMap::new(),
            free_failures: FREE_FAILURES,
        }
    }

    /// An empty throttle of source addresses ([`SOURCE_FREE_FAILURES`], keys from
    /// [`source_key`]).
    pub fn per_source() -> Self {
        LoginThrottle {
            entries: HashMap::new(),
            free_failures: SOURCE_FREE_FAILURES,
        }
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
        let over = entry.failures.saturating_sub(self.free_failures);
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

    /// The attempt succeeded, but only it is taken back (a source address: one success among
    /// many failures must not wipe them).
    pub fn taken_back(&mut self, key: &str) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.failures = entry.failures.saturating_sub(1);
        }
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
        let free = self.free_failures;
        self.entries.retain(|_, e| e.failures >= free);
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
    fn a_source_is_blocked_after_its_own_free_failures_across_usernames() {
        let mut t = LoginThrottle::per_source();
        let source = source_key("192.0.2.7".parse().unwrap());
        for _ in 0..SOURCE_FREE_FAILURES {
            assert_eq!(t.attempt(&source, at(0)), Ok(None));
        }
        assert_eq!(t.attempt(&source, at(0)), Ok(Some(blocked(2))));
        assert_eq!(t.attempt(&source, at(1)), Err(blocked(1)));
        // Another source is not affected.
        let other = source_key("192.0.2.8".parse().unwrap());
        assert_eq!(t.attempt(&other, at(1)), Ok(None));
    }

    #[test]
    fn a_success_takes_back_only_its_own_attempt() {
        let mut t = LoginThrottle::per_source();
        let source = source_key("198.51.100.1".parse().unwrap());
        for _ in 1..SOURCE_FREE_FAILURES {
            // A guess, then the right password of an account the attacker knows.
            assert_eq!(t.attempt(&source, at(0)), Ok(None));
            assert_eq!(t.attempt(&source, at(0)), Ok(None));
            t.taken_back(&source);
        }
        assert_eq!(t.attempt(&source, at(0)), Ok(None));
        assert_eq!(
            t.attempt(&source, at(0)),
            Ok(Some(blocked(2))),
            "interleaved successes do not reset the source"
        );
    }

    #[test]
    fn sources_are_keyed_per_address_and_per_ipv6_64() {
        let k = |s: &str| source_key(s.parse().unwrap());
        assert_eq!(k("192.0.2.1"), "ip:192.0.2.1");
        assert_eq!(k("::ffff:192.0.2.1"), "ip:192.0.2.1");
        assert_eq!(k("2001:db8:1:2:aaaa::1"), k("2001:db8:1:2:bbbb::2"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
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
