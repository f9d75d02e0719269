//! The client's source address, as far as the server can trust it.
//!
//! The throttles ([`super::throttle`], [`FailureBudget`]) count per source address. The address
//! is the TCP peer's, except when the peer is one of the configured reverse proxies
//! ([`TrustedProxies`]): then the client is read from the proxy's header (e.g.
//! `X-Forwarded-For`). The header is honoured from those addresses only, because anybody else
//! can write it: a client that could name its own address would escape every per-source limit
//! by changing it per request.
//!
//! `X-Forwarded-For: client, proxy1, proxy2` lists one address per hop, each appended by the
//! hop that received it; only the entries appended by trusted proxies are trustworthy. So the
//! list is read from the right, skipping trusted proxies; the first other address is the
//! client. No header, or no usable address in it, leaves the peer's address. Pure: no HTTP
//! types, no I/O.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::throttle::source_key;

/// The client's address as resolved for one request (`None`: unknown, e.g. an in-process
/// call without a socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

/// Which peers may name the client in a header, and the header (lower case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// The header naming the client; `None`: no header is honoured (the default).
    pub header: Option<String>,
    /// The proxies' own addresses.
    pub proxies: Vec<IpAddr>,
}

impl TrustedProxies {
    /// The client of a request from `peer` carrying `forwarded` (the header's values, in
    /// order).
    pub fn client(&self, peer: Option<IpAddr>, forwarded: &[&str]) -> Option<IpAddr> {
        let peer = peer?;
        if self.header.is_none() || !self.is_proxy(peer) {
            return Some(peer);
        }
        let hops = forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Ok(ip) = parse_hop(hop) else {
                // Garbage where an address should be: stop trusting the list here.
                return Some(peer);
            };
            if !self.is_proxy(ip) {
                return Some(ip);
            }
        }
        Some(peer)
    }

    fn is_proxy(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.proxies.iter().any(|p| p.to_canonical() == ip)
    }
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]:443`,
/// `192.0.2.1:8080`.
fn parse_hop(hop: &str) -> Result<IpAddr, std::net::AddrParseError> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
}

/// A token bucket per source address bounding how many *failed* unauthenticated requests (e.g.
/// badly signed device batches) a source may cause: each failure spends a token; tokens come
/// back at `refill_every`; with none left the source is refused before any work.
///
/// Why: every failed device request writes to the database (it raises or bumps a
/// `device_auth_failed` alert) and wakes every live console. A source that keeps failing is
/// then refused with 429 before the database is touched. Legitimate devices behind the same
/// address are refused too while the budget is empty; they retry from their outbox (nothing is
/// lost) once the flood stops. Memory: at most [`FailureBudget::MAX_SOURCES`] sources; when
/// full, the fullest buckets (the quietest sources) are forgotten first.
#[derive(Debug)]
pub struct FailureBudget {
    capacity: u32,
    refill_every: Duration,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the tokens were last counted.
    at: Instant,
}

/// Default burst of failures per source.
pub const FAILURE_BURST: u32 = 20;
/// Default interval at which a source earns back one failure.
pub const FAILURE_REFILL: Duration = Duration::from_millis(500);

impl Default for FailureBudget {
    fn default() -> Self {
        FailureBudget::new(FAILURE_BURST, FAILURE_REFILL)
    }
}

impl FailureBudget {
    /// The most sources tracked at once.
    pub const MAX_SOURCES: usize = 10_000;

    /// Buckets of `capacity` tokens, one back every `refill_every`.
    pub fn new(capacity: u32, refill_every: Duration) -> FailureBudget {
        FailureBudget {
            capacity: capacity.max(1),
            refill_every: refill_every.max(Duration::from_millis(1)),
            buckets: HashMap::new(),
        }
    }

    fn refreshed(&self, bucket: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(bucket.at);
        let earned = elapsed.as_nanos() / self.refill_every.as_nanos();
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        if earned == 0 {
            return bucket;
        }
        let tokens = bucket.tokens.saturating_add(earned).min(self.capacity);
        let at = if tokens == self.capacity {
            now
        } else {
            bucket.at + self.refill_every * earned
        };
        Bucket { tokens, at }
    }

    /// Whether `source` may be heard: `Err(retry_after)` when its budget is spent.
    pub fn check(&mut self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = source_key(source);
        let Some(bucket) = self.buckets.get(&key).copied() else {
            return Ok(());
        };
        let bucket = self.refreshed(bucket, now);
        self.buckets.insert(key, bucket);
        if bucket.tokens > 0 {
            Ok(())
        } else {
            Err(self
                .refill_every
                .saturating_sub(now.saturating_duration_since(bucket.at)))
        }
    }

    /// `source` caused a failure: one token spent.
    pub fn spend(&mut self, source: IpAddr, now: Instant) {
        let key = source_key(source);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= Self::MAX_SOURCES {
            self.make_room(now);
        }
        let full = Bucket {
            tokens: self.capacity,
            at: now,
        };
        let bucket = self.buckets.get(&key).copied().unwrap_or(full);
        let mut bucket = self.refreshed(bucket, now);
        bucket.tokens = bucket.tokens.saturating_sub(1);
        self.buckets.insert(key, bucket);
    }

    /// How many sources are tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn make_room(&mut self, now: Instant) {
        let capacity = self.capacity;
        let refreshed: Vec<(String, Bucket)> = self
            .buckets
            .iter()
            .map(|(k, b)| (k.clone(), self.refreshed(*b, now)))
            .collect();
        self.buckets = refreshed
            .into_iter()
            .filter(|(_, b)| b.tokens < capacity)
            .collect();
        if self.buckets.len() < Self::MAX_SOURCES {
            return;
        }
        // Still full of failing sources: forget the tenth with the most tokens left, at once
        // (one sort per thousand new sources, not a scan per source).
        let mut by_tokens: Vec<(String, u32)> = self
            .buckets
            .iter()
            .map(|(k, b)| (k.clone(), b.tokens))
            .collect();
        by_tokens.sort_by_key(|(_, tokens)| std::cmp::Reverse(*tokens));
        for (key, _) in by_tokens.into_iter().take(Self::MAX_SOURCES / 10) {
            self.buckets.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_is_honoured_only_from_a_configured_proxy() {
        let off = TrustedProxies::default();
        assert_eq!(
            off.client(Some(ip("192.0.2.9")), &["198.51.100.1"]),
            Some(ip("192.0.2.9")),
            "off by default"
        );
        let on = TrustedProxies {
            header: Some("x-forwarded-for".into()),
            proxies: vec![ip("10.0.0.1"), ip("10.0.0.2")],
        };
        assert_eq!(
            on.client(Some(ip("192.0.2.9")), &["198.51.100.1"]),
            Some(ip("192.0.2.9")),
            "a client naming itself is not believed"
        );
        assert_eq!(
            on.client(Some(ip("10.0.0.1")), &["198.51.100.1"]),
            Some(ip("198.51.100.1"))
        );
        // The rightmost untrusted hop: what the client wrote itself on the left is ignored.
        assert_eq!(
            on.client(Some(ip("10.0.0.1")), &["6.6.6.6, 198.51.100.1", "10.0.0.2"]),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            on.client(Some(ip("::ffff:10.0.0.1")), &["[2001:db8::7]:4711"]),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(
            on.client(Some(ip("10.0.0.1")), &["garbage"]),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(on.client(Some(ip("10.0.0.1")), &[]), Some(ip("10.0.0.1")));
        assert_eq!(on.client(None, &["198.51.100.1"]), None);
    }

    #[test]
    fn a_failing_source_is_refused_until_it_earns_tokens_back() {
        let t0 = Instant::now();
        let mut b = FailureBudget::new(3, Duration::from_secs(1));
        let bad = ip("203.0.113.5");
        for _ in 0..3 {
            assert_eq!(b.check(bad, t0), Ok(()));
            b.spend(bad, t0);
        }
        assert_eq!(b.check(bad, t0), Err(Duration::from_secs(1)));
        assert_eq!(b.check(ip("203.0.113.6"), t0), Ok(()), "per source");
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(b.check(bad, later), Ok(()), "one token back after 1 s");
        b.spend(bad, later);
        assert_eq!(
            b.check(bad, later),
            Err(Duration::from_millis(500)),
            "the half second already earned counts"
        );
        assert_eq!(b.check(bad, t0 + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut b = FailureBudget::new(2, Duration::from_secs(60));
        let target = ip("198.51.100.200");
        b.spend(target, t0);
        b.spend(target, t0);
        for n in 0..(FailureBudget::MAX_SOURCES as u32 * 2) {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            b.spend(source, t0);
            assert!(b.len() <= FailureBudget::MAX_SOURCES);
        }
        assert!(b.check(target, t0).is_err(), "the spent source is kept");
    }
}
