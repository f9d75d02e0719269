//! The gate policy: what the server allows to leave through one gate, for offline decisions.

use crate::epc::Epc;

use super::exit::{self, Permit};
use super::{
    AlarmReason, LocalVerdict, MAX_POLICY_BADGES, MAX_POLICY_CARRIERS, MAX_TAGS_PER_LIST,
    UplinkError, check_count, check_id,
};

/// How far the device clock may lag the server's before a policy counts as "issued in the
/// future" and its time checks stop being trusted (5 minutes).
///
/// A gate whose real-time clock lost power and restarted at 1970 would otherwise see every
/// sign-out as still valid; this catches it without alarming on ordinary clock drift.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// How old an event may be when it reaches the server (366 days): an outbox holds what a gate
/// recorded while cut off, which can be days or weeks, never years.
pub const MAX_EVENT_AGE_MS: i64 = 366 * 24 * 60 * 60 * 1000;

/// Whether an event's `at_ms` is a time the register can hold, judged at `now_ms`: not more
/// than [`MAX_CLOCK_SKEW_MS`] in the future (the bound heartbeats get) and not older than
/// [`MAX_EVENT_AGE_MS`].
///
/// The server refuses a batch with an event outside this window (`clock_skew`), and the daemon
/// applies the same rule to its outbox before it signs a batch (an event recorded while its
/// clock was wrong, e.g. at 1970 after a power loss, is restamped and the fact reported), so a
/// poisoned time never enters the register and never blocks the events behind it. One rule,
/// one place.
pub fn event_time_plausible(at_ms: i64, now_ms: i64) -> bool {
    at_ms <= now_ms.saturating_add(MAX_CLOCK_SKEW_MS)
        && at_ms >= now_ms.saturating_sub(MAX_EVENT_AGE_MS)
}

/// Signed by the server: the carriers allowed to leave through one gate, until when, and by whom.
///
/// A policy is trusted only while `issued_at_ms - MAX_CLOCK_SKEW_MS <= now_ms < valid_until_ms`;
/// outside that window every carrier tag alarms. The server issues policies that expire soon
/// (minutes to hours) and the daemon refreshes them, so a gate cut off from the server fails
/// secure instead of honouring sign-outs that were revoked meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct GatePolicy {
    /// The gate this policy is for.
    pub device_id: String,
    /// Increases with every policy issued for the device; starts at 1 (0 means "no policy").
    pub version: u64,
    /// When the server issued it.
    pub issued_at_ms: i64,
    /// Not trusted from this instant on (exclusive).
    pub valid_until_ms: i64,
    /// The carriers that may leave (at most [`MAX_POLICY_CARRIERS`]).
    pub allowed: Vec<AllowedCarrier>,
    /// Every staff badge the server knows (at most [`MAX_POLICY_BADGES`]): a tag among them is
    /// a person, never a carrier, so a gate deciding offline does not alarm on someone walking
    /// out with only their badge. Absent in policies from before this field (empty).
    #[cfg_attr(feature = "serde", serde(default))]
    pub badges: Vec<Epc>,
}

/// One carrier that may leave, from an issued sign-out with `may_leave`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct AllowedCarrier {
    /// The carrier's tag.
    pub epc: Epc,
    /// It may leave while `now_ms < until_ms` (the sign-out's due time).
    pub until_ms: i64,
    /// The badges of the people it is signed out to; empty = no badge check, unless
    /// `badge_required`.
    pub borrower_badges: Vec<Epc>,
    /// Whether one of `borrower_badges` must be read for it to leave through this gate: set
    /// by the server from the carrier's level and its `[gate]` settings (by default for TS and
    /// S), so the gate requires exactly what the server's verdict requires. Absent in policies
    /// from before this field (`false`: the old rule) and left out of the JSON when `false`, so
    /// a policy requiring no badge is byte for byte what it was.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "std::ops::Not::not")
    )]
    pub badge_required: bool,
}

impl AllowedCarrier {
    /// This entry as a permit of the exit rule ([`exit::check`]): until `until_ms`, for its
    /// borrower badges, requiring one of them if `badge_required`; it names itself as the
    /// permit's id.
    pub fn permit(&self) -> Permit<'_, &Self> {
        Permit {
            id: self,
            until_ms: self.until_ms,
            borrower_badges: &self.borrower_badges,
            badge_required: self.badge_required,
        }
    }
}

/// The policy's decision on one carrier tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CarrierDecision {
    /// The tag.
    pub epc: Epc,
    /// `None` = may leave; otherwise why it alarms.
    pub alarm: Option<AlarmReason>,
}

/// The decision on a passage: one entry per carrier tag, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    /// The version of the policy used (0 = none).
    pub policy_version: u64,
    /// Each carrier tag's decision.
    pub carriers: Vec<CarrierDecision>,
}

impl PolicyDecision {
    /// The decision without any policy: every carrier tag alarms with [`AlarmReason::NoPolicy`].
    pub fn without_policy(tags: &[Epc]) -> Self {
        Self::all(0, tags, AlarmReason::NoPolicy)
    }

    fn all(policy_version: u64, tags: &[Epc], reason: AlarmReason) -> Self {
        let carriers = tags
            .iter()
            .map(|&epc| CarrierDecision {
                epc,
                alarm: Some(reason),
            })
            .collect();
        Self {
            policy_version,
            carriers,
        }
    }

    /// Whether any carrier alarms.
    pub fn alarm(&self) -> bool {
        self.reason().is_some()
    }

    /// The first alarming carrier's reason.
    pub fn reason(&self) -> Option<AlarmReason> {
        self.carriers.iter().find_map(|c| c.alarm)
    }

    /// The record of this decision for the passage event.
    pub fn local_verdict(&self) -> LocalVerdict {
        LocalVerdict {
            alarm: self.alarm(),
            policy_version: self.policy_version,
            reason: self.reason(),
        }
    }
}

impl GatePolicy {
    /// Checks a policy received for `device_id` (after its signature): the device matches,
    /// `version >= 1`, `issued_at_ms < valid_until_ms`, and the list sizes are within limits.
    ///
    /// Whether it is *current* is not checked here: that depends on the time of each decision.
    pub fn validate(&self, device_id: &str) -> Result<(), UplinkError> {
        check_id("device_id", &self.device_id)?;
        if self.device_id != device_id {
            return Err(UplinkError::Mismatch { field: "device_id" });
        }
        if self.version == 0 {
            return Err(UplinkError::Zero { field: "version" });
        }
        if self.issued_at_ms >= self.valid_until_ms {
            return Err(UplinkError::TimeOrder {
                field: "valid_until_ms",
            });
        }
        check_count("allowed", &self.allowed, MAX_POLICY_CARRIERS)?;
        check_count("badges", &self.badges, MAX_POLICY_BADGES)?;
        self.allowed
            .iter()
            .try_for_each(|a| check_count("borrower_badges", &a.borrower_badges, MAX_TAGS_PER_LIST))
    }

    /// Whether the policy may be trusted at `now_ms`; the reason if not.
    pub fn trusted_at(&self, now_ms: i64) -> Result<(), AlarmReason> {
        if now_ms >= self.valid_until_ms {
            Err(AlarmReason::PolicyExpired)
        } else if now_ms < self.issued_at_ms.saturating_sub(MAX_CLOCK_SKEW_MS) {
            Err(AlarmReason::ClockUntrusted)
        } else {
            Ok(())
        }
    }

    /// Decides an exit at `now_ms` for the carrier `tags` read, given the staff `badges` read.
    ///
    /// Fail secure, in this order:
    /// 1. a policy not trusted at `now_ms` ([`trusted_at`](Self::trusted_at)) alarms for every
    ///    carrier tag, with [`AlarmReason::PolicyExpired`] or [`AlarmReason::ClockUntrusted`];
    /// 2. otherwise each tag is judged by the exit rule ([`exit::check`], the same function
    ///    the server judges with) over its entries in `allowed` as permits: it may leave if one
    ///    of them has `now_ms < until_ms` and one of its borrower badges was read, or, when the
    ///    entry is not `badge_required`, no badges were read or it has no borrower badges.
    ///    Otherwise it alarms, if some entry was still in time, with
    ///    [`AlarmReason::BadgeMissing`] when no badge was read, else
    ///    [`AlarmReason::BorrowerAbsent`]; else with
    ///    [`AlarmReason::SignoutExpired`] if it has any entry, else with
    ///    [`AlarmReason::UnauthorizedRemoval`].
    ///
    /// `tags` should be carrier tags only (badges go in `badges`); a tag that is one of the
    /// policy's staff [`badges`](Self::badges) counts as a badge read, not a carrier. The policy
    /// cannot tell a foreign tag from an unregistered carrier, so any other tag passed in that
    /// it does not allow alarms. No carrier tags means no alarm: a person without carriers may
    /// always leave.
    pub fn decide(&self, tags: &[Epc], badges: &[Epc], now_ms: i64) -> PolicyDecision {
        let (people, tags): (Vec<Epc>, Vec<Epc>) =
            tags.iter().partition(|epc| self.badges.contains(epc));
        let mut read = badges.to_vec();
        read.extend(people);
        let badges = read.as_slice();
        if let Err(reason) = self.trusted_at(now_ms) {
            return PolicyDecision::all(self.version, &tags, reason);
        }
        let carriers = tags
            .iter()
            .map(|&epc| CarrierDecision {
                epc,
                alarm: self.decide_one(&epc, badges, now_ms),
            })
            .collect();
        PolicyDecision {
            policy_version: self.version,
            carriers,
        }
    }

    /// The exit rule ([`exit::check`]) for one carrier tag, over this policy's entries for it.
    fn decide_one(&self, epc: &Epc, badges: &[Epc], now_ms: i64) -> Option<AlarmReason> {
        let entries = self.allowed.iter().filter(|a| a.epc == *epc);
        exit::check(entries.map(AllowedCarrier::permit), badges, now_ms).err()
    }
}

#[cfg(test)]
mod tests {

    /// An event time is plausible exactly inside [now - MAX_EVENT_AGE_MS, now + MAX_CLOCK_SKEW_MS].
    #[test]
    fn event_time_plausible_is_bounded_both_ways() {
        let now = 1_767_225_600_000;
        assert!(event_time_plausible(now, now));
        assert!(event_time_plausible(now + MAX_CLOCK_SKEW_MS, now));
        assert!(!event_time_plausible(now + MAX_CLOCK_SKEW_MS + 1, now));
        assert!(event_time_plausible(now - MAX_EVENT_AGE_MS, now));
        assert!(!event_time_plausible(now - MAX_EVENT_AGE_MS - 1, now));
        // The poisoned times of the finding: i64 limits, the year 10000, the epoch.
        for bad in [i64::MIN, i64::MAX, 253_402_300_800_000, 0, -1] {
            assert!(!event_time_plausible(bad, now), "{bad}");
        }
        // No overflow at the edges of the clock itself.
        assert!(event_time_plausible(i64::MAX, i64::MAX));
        assert!(event_time_plausible(i64::MIN, i64::MIN));
    }
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const HOUR: i64 = 3_600_000;

    fn epc(hex: &str) -> Epc {
        Epc::from_hex(hex).unwrap()
    }

    fn doc() -> Epc {
        epc("3474257BF40000000000162E")
    }
    fn disk() -> Epc {
        epc("3474257BF40000000000162F")
    }
    fn alice() -> Epc {
        epc("E20000000000000000000A11")
    }
    fn bob() -> Epc {
        epc("E20000000000000000000B0B")
    }

    fn policy(allowed: Vec<AllowedCarrier>) -> GatePolicy {
        GatePolicy {
            device_id: "gate-1".into(),
            version: 7,
            issued_at_ms: NOW - HOUR,
            valid_until_ms: NOW + HOUR,
            allowed,
            badges: vec![],
        }
    }

    fn allow(e: Epc, until_ms: i64, borrowers: &[Epc]) -> AllowedCarrier {
        AllowedCarrier {
            epc: e,
            until_ms,
            borrower_badges: borrowers.to_vec(),
            badge_required: false,
        }
    }

    fn allow_with_badge(e: Epc, until_ms: i64, borrowers: &[Epc]) -> AllowedCarrier {
        AllowedCarrier {
            badge_required: true,
            ..allow(e, until_ms, borrowers)
        }
    }

    #[test]
    fn a_required_badge_must_be_read_offline_too() {
        // A TS document and a C disk, both signed out to Alice; the server requires her badge
        // for the document only (the default: TS and S).
        let p = policy(vec![
            allow_with_badge(doc(), NOW + HOUR, &[alice()]),
            allow(disk(), NOW + HOUR, &[alice()]),
        ]);
        // No badge read at all: the document alarms, the disk leaves.
        let d = p.decide(&[doc(), disk()], &[], NOW);
        assert_eq!(reasons(&d), [Some(AlarmReason::BadgeMissing), None]);
        assert_eq!(d.local_verdict().reason, Some(AlarmReason::BadgeMissing));
        // Alice's badge read (as a badge, or filed among the tags): both leave.
        assert_eq!(
            reasons(&p.decide(&[doc(), disk()], &[alice()], NOW)),
            [None, None]
        );
        let mut staff = p.clone();
        staff.badges = vec![alice()];
        assert_eq!(reasons(&staff.decide(&[doc(), alice()], &[], NOW)), [None]);
        // Bob's badge only: the borrower is absent.
        assert_eq!(
            reasons(&p.decide(&[doc()], &[bob()], NOW)),
            [Some(AlarmReason::BorrowerAbsent)]
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn policies_without_badge_required_still_load() {
        // An entry as cached by a gate before the field existed: no badge required.
        let old = r#"{"epc":"3474257BF40000000000162E","until_ms":1767229200000,"borrower_badges":["E20000000000000000000A11"]}"#;
        let entry: AllowedCarrier = serde_json::from_str(old).unwrap();
        assert_eq!(entry, allow(doc(), NOW + HOUR, &[alice()]));
        // Written back, an entry not requiring a badge is the same bytes (same content hash,
        // same signature); one requiring it says so.
        assert_eq!(serde_json::to_string(&entry).unwrap(), old);
        let new = allow_with_badge(doc(), NOW + HOUR, &[alice()]);
        let json = serde_json::to_string(&new).unwrap();
        assert!(json.ends_with(r#","badge_required":true}"#), "{json}");
        assert_eq!(serde_json::from_str::<AllowedCarrier>(&json).unwrap(), new);
    }

    fn reasons(d: &PolicyDecision) -> Vec<Option<AlarmReason>> {
        d.carriers.iter().map(|c| c.alarm).collect()
    }

    #[test]
    fn allowed_carrier_leaves() {
        let p = policy(vec![allow(doc(), NOW + HOUR, &[])]);
        let d = p.decide(&[doc()], &[], NOW);
        assert_eq!(reasons(&d), [None]);
        assert!(!d.alarm());
        assert_eq!(
            d.local_verdict(),
            LocalVerdict {
                alarm: false,
                policy_version: 7,
                reason: None
            }
        );
    }

    #[test]
    fn carrier_not_allowed_alarms() {
        let p = policy(vec![allow(doc(), NOW + HOUR, &[])]);
        let d = p.decide(&[doc(), disk()], &[], NOW);
        assert_eq!(reasons(&d), [None, Some(AlarmReason::UnauthorizedRemoval)]);
        assert_eq!(d.carriers[1].epc, disk());
        assert_eq!(
            d.local_verdict(),
            LocalVerdict {
                alarm: true,
                policy_version: 7,
                reason: Some(AlarmReason::UnauthorizedRemoval)
            }
        );
    }

    #[test]
    fn no_tags_no_alarm_even_with_expired_policy() {
        let p = policy(vec![]);
        assert!(!p.decide(&[], &[alice()], NOW).alarm());
        assert!(!p.decide(&[], &[], NOW + 10 * HOUR).alarm());
        assert!(!PolicyDecision::without_policy(&[]).alarm());
    }

    #[test]
    fn sign_out_window_is_exclusive_at_until() {
        let p = policy(vec![allow(doc(), NOW, &[])]);
        assert_eq!(reasons(&p.decide(&[doc()], &[], NOW - 1)), [None]);
        assert_eq!(
            reasons(&p.decide(&[doc()], &[], NOW)),
            [Some(AlarmReason::SignoutExpired)]
        );
    }

    #[test]
    fn expired_policy_alarms_for_every_carrier() {
        let p = policy(vec![
            allow(doc(), NOW + 10 * HOUR, &[]),
            allow(disk(), NOW + 10 * HOUR, &[]),
        ]);
        let at_end = p.valid_until_ms;
        assert_eq!(
            reasons(&p.decide(&[doc(), disk()], &[], at_end - 1)),
            [None, None]
        );
        let d = p.decide(&[doc(), disk()], &[], at_end);
        assert_eq!(reasons(&d), [Some(AlarmReason::PolicyExpired); 2]);
        assert_eq!(d.policy_version, 7);
        assert_eq!(p.trusted_at(at_end), Err(AlarmReason::PolicyExpired));
    }

    #[test]
    fn clock_far_behind_the_policy_is_not_trusted() {
        // A gate whose clock restarted at 1970 must not see every sign-out as valid.
        let p = policy(vec![allow(doc(), NOW + HOUR, &[])]);
        assert_eq!(
            reasons(&p.decide(&[doc()], &[], 0)),
            [Some(AlarmReason::ClockUntrusted)]
        );
        let earliest = p.issued_at_ms - MAX_CLOCK_SKEW_MS;
        assert_eq!(p.trusted_at(earliest), Ok(()));
        assert_eq!(p.trusted_at(earliest - 1), Err(AlarmReason::ClockUntrusted));
        // Ordinary drift (the device a minute behind the server) is tolerated.
        assert_eq!(
            reasons(&p.decide(&[doc()], &[], p.issued_at_ms - 60_000)),
            [None]
        );
    }

    #[test]
    fn no_policy_alarms_for_every_carrier() {
        let d = PolicyDecision::without_policy(&[doc(), disk()]);
        assert_eq!(reasons(&d), [Some(AlarmReason::NoPolicy); 2]);
        assert_eq!(d.local_verdict().policy_version, 0);
    }

    #[test]
    fn borrower_badges_are_checked_only_when_badges_were_read() {
        let p = policy(vec![allow(doc(), NOW + HOUR, &[alice()])]);
        // No badge read (reader missed it, or the site has no badges): allowed.
        assert_eq!(reasons(&p.decide(&[doc()], &[], NOW)), [None]);
        // The borrower's badge among others: allowed.
        assert_eq!(reasons(&p.decide(&[doc()], &[bob(), alice()], NOW)), [None]);
        // Only someone else's badge: alarm.
        assert_eq!(
            reasons(&p.decide(&[doc()], &[bob()], NOW)),
            [Some(AlarmReason::BorrowerAbsent)]
        );
        // A carrier with no borrower badges is not badge-checked.
        let p = policy(vec![allow(doc(), NOW + HOUR, &[])]);
        assert_eq!(reasons(&p.decide(&[doc()], &[bob()], NOW)), [None]);
    }

    #[test]
    fn any_valid_entry_allows_and_reasons_prefer_the_nearest_miss() {
        // Two sign-outs for one carrier: an expired one for Bob and a current one for Alice.
        let p = policy(vec![
            allow(doc(), NOW - 1, &[bob()]),
            allow(doc(), NOW + HOUR / 2, &[alice()]),
        ]);
        assert_eq!(reasons(&p.decide(&[doc()], &[alice()], NOW)), [None]);
        // Bob's badge: his sign-out has expired, Alice's is current but she is absent.
        assert_eq!(
            reasons(&p.decide(&[doc()], &[bob()], NOW)),
            [Some(AlarmReason::BorrowerAbsent)]
        );
        // After both: expired.
        let later = NOW + HOUR / 2;
        assert_eq!(
            reasons(&p.decide(&[doc()], &[alice()], later)),
            [Some(AlarmReason::SignoutExpired)]
        );
    }

    #[test]
    fn a_staff_badge_is_a_person_not_a_carrier() {
        // Alice is staff (her badge is in the policy) with nothing signed out; Bob borrowed
        // the document.
        let mut p = policy(vec![allow(doc(), NOW + HOUR, &[bob()])]);
        p.badges = vec![alice(), bob()];
        // Alice's badge among the tags (a daemon that did not know it): no alarm.
        assert_eq!(p.decide(&[alice()], &[], NOW).carriers, []);
        assert!(!p.decide(&[alice()], &[], NOW).alarm());
        // Bob's badge filed among the tags still counts as his badge read.
        assert_eq!(reasons(&p.decide(&[doc(), bob()], &[], NOW)), [None]);
        assert_eq!(reasons(&p.decide(&[doc(), bob()], &[alice()], NOW)), [None]);
        assert_eq!(
            reasons(&p.decide(&[doc(), alice()], &[], NOW)),
            [Some(AlarmReason::BorrowerAbsent)]
        );
        // A tag the policy does not know as a badge is still a carrier: fail secure.
        assert_eq!(
            reasons(&p.decide(&[disk()], &[], NOW)),
            [Some(AlarmReason::UnauthorizedRemoval)]
        );
        // An expired policy still knows its staff badges.
        assert!(!p.decide(&[alice()], &[], p.valid_until_ms).alarm());
    }

    #[test]
    fn validate_policy() {
        let p = policy(vec![allow(doc(), NOW, &[])]);
        assert_eq!(p.validate("gate-1"), Ok(()));
        assert_eq!(
            p.validate("gate-2"),
            Err(UplinkError::Mismatch { field: "device_id" })
        );
        let bad = GatePolicy {
            version: 0,
            ..p.clone()
        };
        assert_eq!(
            bad.validate("gate-1"),
            Err(UplinkError::Zero { field: "version" })
        );
        let bad = GatePolicy {
            valid_until_ms: p.issued_at_ms,
            ..p.clone()
        };
        assert_eq!(
            bad.validate("gate-1"),
            Err(UplinkError::TimeOrder {
                field: "valid_until_ms"
            })
        );
        let bad = GatePolicy {
            allowed: vec![allow(doc(), NOW, &[alice(); 1025])],
            ..p.clone()
        };
        assert_eq!(
            bad.validate("gate-1"),
            Err(UplinkError::TooMany {
                field: "borrower_badges",
                max: 1024
            })
        );
        let bad = GatePolicy {
            badges: vec![alice(); crate::uplink::MAX_POLICY_BADGES + 1],
            ..p.clone()
        };
        assert_eq!(
            bad.validate("gate-1"),
            Err(UplinkError::TooMany {
                field: "badges",
                max: crate::uplink::MAX_POLICY_BADGES
            })
        );
        let bad = GatePolicy {
            device_id: String::new(),
            ..p
        };
        assert_eq!(
            bad.validate(""),
            Err(UplinkError::Empty { field: "device_id" })
        );
    }

    fn small_epc() -> impl Strategy<Value = Epc> {
        // A few distinct tags, so that policy entries and reads collide often.
        (0u8..6).prop_map(|n| Epc::new(&[0x30, n]).unwrap())
    }

    proptest! {
        /// Fail secure: whatever the policy and reads, a tag is allowed only if the policy is
        /// trusted now and some entry for that tag is in time and (when badges were read and the
        /// entry names borrowers) names a badge that was read. Every tag gets exactly one
        /// decision, in order.
        #[test]
        fn allowed_only_with_a_matching_current_entry(
            entries in proptest::collection::vec(
                (small_epc(), -3i64..3, proptest::collection::vec(small_epc(), 0..3)), 0..8),
            tags in proptest::collection::vec(small_epc(), 0..6),
            badges in proptest::collection::vec(small_epc(), 0..3),
            now_offset in -2i64..4,
        ) {
            let p = GatePolicy {
                device_id: "gate-1".into(),
                version: 1,
                issued_at_ms: NOW,
                valid_until_ms: NOW + 2,
                allowed: entries
                    .iter()
                    .map(|(e, u, b)| AllowedCarrier { epc: *e, until_ms: NOW + u, borrower_badges: b.clone(), badge_required: false })
                    .collect(),
                badges: vec![],
            };
            let now = NOW + now_offset;
            let d = p.decide(&tags, &badges, now);
            prop_assert_eq!(d.carriers.len(), tags.len());
            for (c, t) in d.carriers.iter().zip(&tags) {
                prop_assert_eq!(c.epc, *t);
                let entitled = now < p.valid_until_ms
                    && p.allowed.iter().any(|a| {
                        a.epc == *t
                            && now < a.until_ms
                            && (badges.is_empty()
                                || a.borrower_badges.is_empty()
                                || a.borrower_badges.iter().any(|b| badges.contains(b)))
                    });
                prop_assert_eq!(c.alarm.is_none(), entitled);
            }
            prop_assert_eq!(d.alarm(), d.carriers.iter().any(|c| c.alarm.is_some()));
            prop_assert!(d.local_verdict().validate().is_ok());
        }
    }
}
