//! The gate's exit rule: whether a carrier may leave, given what permits it and the badges read.
//!
//! This is the only implementation of the rule. The daemon applies it offline to the entries
//! of the [`GatePolicy`] the server signed ([`GatePolicy::decide`]); the server applies it to
//! the sign-outs it holds when it judges a passage (`custos-server`, `domain::gate`). Each side
//! maps its own records to [`Permit`]s and calls [`check`], so they can differ only in *which*
//! permits a carrier has, never in what a permit means:
//! - a policy entry ([`AllowedCarrier`]) is a permit until its `until_ms` for its
//!   `borrower_badges` ([`AllowedCarrier::permit`]);
//! - on the server, a sign-out in state `out` is a permit only if it has `may_leave` and the
//!   carrier's own state is `out`; it lasts until the sign-out's due time and names the
//!   borrower's badge, or none if the borrower has no badge a gate can read. Those are exactly
//!   the sign-outs the server lists in a policy, one entry each.
//!
//! # The rule
//! A permit is *current* while `now_ms < until_ms` (exclusive: at `until_ms` it has expired).
//!
//! A permit that is `badge_required` *admits* the badges read in a passage only when one of its
//! borrower badges was read: no badge read at all, or a borrower without a badge a gate can
//! read, never lets the carrier leave on it. Otherwise (the carrier's level does not require a
//! badge at this gate) it admits them when no badge was read (the reader missed it, or the site
//! has no badges), or it names no borrower badge (the borrower has none a gate can read: no
//! badge check), or one of its borrower badges was read.
//!
//! Whether a badge is required is decided by the server alone, per carrier level and gate, and
//! carried on each permit (`badge_required` of a policy entry; the server's `[gate]` settings),
//! so the gate and the server apply the same requirement: see `custos-server`'s `domain::gate`.
//!
//! A carrier may leave on the first permit, in the order given, that is current and admits the
//! badges read. Otherwise the refusal names the nearest miss, whatever the order of the permits:
//! if some permit is current, [`AlarmReason::BadgeMissing`] when no badge was read at all, else
//! [`AlarmReason::BorrowerAbsent`]; else [`AlarmReason::SignoutExpired`] if there is any
//! permit, else [`AlarmReason::UnauthorizedRemoval`].
//!
//! [`GatePolicy`]: super::GatePolicy
//! [`GatePolicy::decide`]: super::GatePolicy::decide
//! [`AllowedCarrier`]: super::AllowedCarrier
//! [`AllowedCarrier::permit`]: super::AllowedCarrier::permit

use crate::epc::Epc;

use super::AlarmReason;

/// One thing that may let a carrier leave: a sign-out (on the server) or a policy entry (on a
/// gate), reduced to what the exit rule needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permit<'a, K> {
    /// What the caller calls this permit (a sign-out id, a policy entry); [`check`] hands it
    /// back when this permit allows the carrier to leave.
    pub id: K,
    /// The carrier may leave on it while `now_ms < until_ms`.
    pub until_ms: i64,
    /// The badges of the people it is for; empty means no badge check, unless
    /// `badge_required`.
    pub borrower_badges: &'a [Epc],
    /// Whether one of `borrower_badges` must be read for the carrier to leave on this permit
    /// (no badge read is then a refusal, not the benefit of the doubt).
    pub badge_required: bool,
}

impl<K> Permit<'_, K> {
    /// Whether the permit is still in time at `now_ms` (`now_ms < until_ms`).
    pub fn is_current(&self, now_ms: i64) -> bool {
        now_ms < self.until_ms
    }

    /// Whether the borrower counts as present given the badges read in the passage: one of
    /// its borrower badges was read; or, unless `badge_required`, none were read or the permit
    /// names no borrower badge.
    pub fn admits(&self, badges: &[Epc]) -> bool {
        let read = self.borrower_badges.iter().any(|b| badges.contains(b));
        read || (!self.badge_required && (badges.is_empty() || self.borrower_badges.is_empty()))
    }
}

/// Whether a carrier holding `permits` may leave at `now_ms` when `badges` were read: the id of
/// the first permit that is current and admits the badges, or the reason to alarm (see the
/// [module docs](self) for the rule and the order of reasons).
///
/// No permits at all is [`AlarmReason::UnauthorizedRemoval`].
pub fn check<'a, K>(
    permits: impl IntoIterator<Item = Permit<'a, K>>,
    badges: &[Epc],
    now_ms: i64,
) -> Result<K, AlarmReason> {
    let mut reason = AlarmReason::UnauthorizedRemoval;
    for permit in permits {
        if !permit.is_current(now_ms) {
            if reason == AlarmReason::UnauthorizedRemoval {
                reason = AlarmReason::SignoutExpired;
            }
            continue;
        }
        if permit.admits(badges) {
            return Ok(permit.id);
        }
        reason = if badges.is_empty() {
            AlarmReason::BadgeMissing
        } else {
            AlarmReason::BorrowerAbsent
        };
    }
    Err(reason)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const HOUR: i64 = 3_600_000;

    fn alice() -> Epc {
        Epc::from_hex("E20000000000000000000A11").unwrap()
    }
    fn bob() -> Epc {
        Epc::from_hex("E20000000000000000000B0B").unwrap()
    }

    fn permit(id: u32, until_ms: i64, borrower_badges: &[Epc]) -> Permit<'_, u32> {
        Permit {
            id,
            until_ms,
            borrower_badges,
            badge_required: false,
        }
    }

    fn required(id: u32, until_ms: i64, borrower_badges: &[Epc]) -> Permit<'_, u32> {
        Permit {
            badge_required: true,
            ..permit(id, until_ms, borrower_badges)
        }
    }

    #[test]
    fn a_required_badge_must_be_read() {
        let alices = [alice()];
        // Required and no badge read at all: refused, with its own reason.
        let p = [required(1, NOW + HOUR, &alices)];
        assert_eq!(check(p, &[], NOW), Err(AlarmReason::BadgeMissing));
        // Required and the borrower's badge read: allowed.
        assert_eq!(check(p, &[alice()], NOW), Ok(1));
        assert_eq!(check(p, &[bob(), alice()], NOW), Ok(1));
        // Required and only someone else's badge: the borrower is absent.
        assert_eq!(check(p, &[bob()], NOW), Err(AlarmReason::BorrowerAbsent));
        // Required, but the borrower has no badge a gate can read: never admitted.
        let p = [required(2, NOW + HOUR, &[])];
        assert_eq!(check(p, &[], NOW), Err(AlarmReason::BadgeMissing));
        assert_eq!(check(p, &[bob()], NOW), Err(AlarmReason::BorrowerAbsent));
        // Not required (a C carrier under the default setting): no badge read still leaves.
        assert_eq!(check([permit(3, NOW + HOUR, &alices)], &[], NOW), Ok(3));
        // An expired required permit is still just expired.
        assert_eq!(
            check([required(4, NOW, &alices)], &[], NOW),
            Err(AlarmReason::SignoutExpired)
        );
        // One permit not requiring the badge is enough.
        let p = [
            required(5, NOW + HOUR, &alices),
            permit(6, NOW + HOUR, &alices),
        ];
        assert_eq!(check(p, &[], NOW), Ok(6));
    }

    #[test]
    fn no_permit_is_an_unauthorized_removal() {
        let none: [Permit<'_, u32>; 0] = [];
        assert_eq!(
            check(none, &[alice()], NOW),
            Err(AlarmReason::UnauthorizedRemoval)
        );
    }

    #[test]
    fn a_permit_is_current_until_its_until_ms_exclusive() {
        let p = [permit(1, NOW, &[])];
        assert_eq!(check(p, &[], NOW - 1), Ok(1));
        assert_eq!(check(p, &[], NOW), Err(AlarmReason::SignoutExpired));
        assert!(p[0].is_current(NOW - 1) && !p[0].is_current(NOW));
    }

    #[test]
    fn borrower_badges_are_checked_only_when_badges_were_read() {
        let alices = [alice()];
        let p = [permit(1, NOW + HOUR, &alices)];
        // No badge read (reader missed it, or the site has no badges): allowed.
        assert_eq!(check(p, &[], NOW), Ok(1));
        // The borrower's badge among others: allowed.
        assert_eq!(check(p, &[bob(), alice()], NOW), Ok(1));
        // Only someone else's badge: alarm.
        assert_eq!(check(p, &[bob()], NOW), Err(AlarmReason::BorrowerAbsent));
        // A borrower without a badge is not badge-checked.
        assert_eq!(check([permit(2, NOW + HOUR, &[])], &[bob()], NOW), Ok(2));
    }

    #[test]
    fn any_current_permit_allows_and_refusals_name_the_nearest_miss() {
        // An expired permit for Bob and a current one for Alice.
        let (bobs, alices) = ([bob()], [alice()]);
        let p = [
            permit(1, NOW - 1, &bobs),
            permit(2, NOW + HOUR / 2, &alices),
        ];
        assert_eq!(check(p, &[alice()], NOW), Ok(2));
        // Bob's badge: his permit has expired, Alice's is current but she is absent.
        assert_eq!(check(p, &[bob()], NOW), Err(AlarmReason::BorrowerAbsent));
        // After both: expired.
        assert_eq!(
            check(p, &[alice()], NOW + HOUR / 2),
            Err(AlarmReason::SignoutExpired)
        );
    }

    #[test]
    fn the_first_allowing_permit_is_named() {
        let p = [
            permit(1, NOW - 1, &[]),
            permit(2, NOW + 1, &[]),
            permit(3, NOW + 2, &[]),
        ];
        assert_eq!(check(p, &[], NOW), Ok(2));
    }

    fn small_epc() -> impl Strategy<Value = Epc> {
        // A few distinct badges, so that borrower badges and reads collide often.
        (0u8..5).prop_map(|n| Epc::new(&[0xE2, n]).unwrap())
    }

    /// Permits as (until offset from now, borrower badges, badge required), some current and
    /// some not.
    fn permits() -> impl Strategy<Value = Vec<(i64, Vec<Epc>, bool)>> {
        proptest::collection::vec(
            (
                -2i64..3,
                proptest::collection::vec(small_epc(), 0..3),
                any::<bool>(),
            ),
            0..6,
        )
    }

    fn badges() -> impl Strategy<Value = Vec<Epc>> {
        proptest::collection::vec(small_epc(), 0..3)
    }

    /// The permits of `rows`, numbered by position, at `NOW`.
    fn to_permits(rows: &[(i64, Vec<Epc>, bool)]) -> Vec<Permit<'_, usize>> {
        rows.iter()
            .enumerate()
            .map(|(id, (offset, borrowers, required))| Permit {
                id,
                until_ms: NOW + offset,
                borrower_badges: borrowers,
                badge_required: *required,
            })
            .collect()
    }

    /// Whether a permit that is current and whose borrower is present lets the carrier leave.
    fn entitles(p: &Permit<'_, usize>, badges: &[Epc]) -> bool {
        NOW < p.until_ms
            && (p.borrower_badges.iter().any(|b| badges.contains(b))
                || (!p.badge_required && (badges.is_empty() || p.borrower_badges.is_empty())))
    }

    proptest! {
        /// A carrier may leave exactly when some permit is current (`now < until_ms`) and its
        /// borrower is present (no badges were read, or it names no borrower badge, or one of
        /// them was read); the permit named is the first such one in the order given.
        #[test]
        fn a_current_permit_with_its_borrower_present_allows(rows in permits(), read in badges()) {
            let ps = to_permits(&rows);
            let first = ps.iter().find(|p| entitles(p, &read)).map(|p| p.id);
            match check(ps.iter().copied(), &read, NOW) {
                Ok(id) => prop_assert_eq!(Some(id), first),
                Err(_) => prop_assert_eq!(first, None),
            }
        }

        /// A refusal names the nearest miss: if some permit is current, `badge_missing` when no
        /// badge was read, else `borrower_absent`; else `signout_expired` if there is any
        /// permit, else `unauthorized_removal`.
        #[test]
        fn refusals_name_the_nearest_miss(rows in permits(), read in badges()) {
            let ps = to_permits(&rows);
            if let Err(reason) = check(ps.iter().copied(), &read, NOW) {
                let expected = if ps.iter().any(|p| p.is_current(NOW)) {
                    if read.is_empty() {
                        AlarmReason::BadgeMissing
                    } else {
                        AlarmReason::BorrowerAbsent
                    }
                } else if !ps.is_empty() {
                    AlarmReason::SignoutExpired
                } else {
                    AlarmReason::UnauthorizedRemoval
                };
                prop_assert_eq!(reason, expected);
            }
        }

        /// Permits that have all expired never allow, whatever badges were read, and only
        /// ever yield `signout_expired` (or `unauthorized_removal` when there are none).
        #[test]
        fn expired_permits_never_allow(rows in permits(), read in badges(), later in 2i64..10) {
            let ps = to_permits(&rows);
            let reason = check(ps.iter().copied(), &read, NOW + later);
            let expected = if ps.is_empty() {
                AlarmReason::UnauthorizedRemoval
            } else {
                AlarmReason::SignoutExpired
            };
            prop_assert_eq!(reason, Err(expected));
        }

        /// The order of the permits changes only which allowing permit is named: whether the
        /// carrier may leave, and the reason if not, are the same in any order.
        #[test]
        fn the_result_does_not_depend_on_permit_order(
            (rows, shuffled) in permits().prop_flat_map(|rows| {
                let order = Just((0..rows.len()).collect::<Vec<_>>()).prop_shuffle();
                (Just(rows), order)
            }),
            read in badges(),
        ) {
            let ps = to_permits(&rows);
            let reordered: Vec<Permit<'_, usize>> = shuffled.iter().map(|&i| ps[i]).collect();
            let a = check(ps.iter().copied(), &read, NOW);
            let b = check(reordered.iter().copied(), &read, NOW);
            match (a, b) {
                (Ok(i), Ok(j)) => {
                    prop_assert!(entitles(&ps[i], &read));
                    prop_assert!(entitles(&ps[j], &read));
                }
                (a, b) => prop_assert_eq!(a, b),
            }
        }
    }
}
