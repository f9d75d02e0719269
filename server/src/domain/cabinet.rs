//! Cabinet reconciliation: what a cabinet's inventory snapshot means for each carrier.
//!
//! The server keeps what each cabinet last reported present (`cabinet_contents`). A snapshot's
//! `present` list is authoritative: it is the whole inventory of the cabinet (one inventory
//! reader per cabinet device, its antennas the shelves), so carriers taken out while the daemon
//! was down are still noticed; the device's own `added`/`removed` diffs are only cross-checked.
//! Comparing `present` with the stored contents ([`reconcile`]):
//!
//! - a carrier that **left** (stored, not present) without being `out` on a sign-out, and that
//!   is not present in another cabinet, gets a pending removal; after a grace period the alert
//!   sweep turns it into a `cabinet_removal` alert and marks the carrier missing. A carrier
//!   that is `out` left legitimately (its borrower took it).
//! - a carrier that **arrived** (present, not stored):
//!   - in its home cabinet while `out`: it has been returned (the sign-out is closed for it)
//!     if it had left the cabinet since the sign-out was issued ([`left_since_issue`]);
//!     otherwise only its presence is recorded;
//!   - in its home cabinet while `missing`: it has been found (back `in_storage`);
//!   - in a cabinet other than its home: `wrong_cabinet`.
//! - every present carrier's pending removals are cleared (it is accounted for), and so are
//!   this cabinet's pending removals of carriers that have since been signed out.
//!
//! Only transitions count: a carrier that sits in its home cabinet while `out` (issued, not yet
//! picked up) is not "returned" by every snapshot, and a carrier in the wrong cabinet raises
//! one alert when it arrives, not one per snapshot.
//!
//! "Arrived" only means "not in the stored contents". The stored contents can lack a carrier
//! that never left: the first snapshot a cabinet sends to a new (or freshly seeded) server lists
//! everything on its shelves as arriving. A carrier signed out while it sat on its shelf is not
//! returned by being seen there; it is returned once it comes back after having left, which
//! the server knows from its own records ([`SinceIssue`]).

use std::collections::BTreeSet;

use serde_json::json;

use super::alert::{AlertKind, NewAlert, cause};
use super::level::Level;

/// A carrier's custody state as far as a cabinet cares (`carriers.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Custody {
    /// `in_storage`.
    InStorage,
    /// `out` on a sign-out.
    Out,
    /// `missing`.
    Missing,
    /// `archived` or `destroyed`: no longer circulating.
    Retired,
}

impl Custody {
    /// From the stored state name.
    pub fn from_stored(state: &str) -> Option<Custody> {
        Some(match state {
            "in_storage" => Custody::InStorage,
            "out" => Custody::Out,
            "missing" => Custody::Missing,
            // Off the shelves by a recorded step (archived, destroyed, handed over, in the
            // courier channel, declassified): seen in a cabinet, it is an extra there.
            "archived" | "destroyed" | "in_transfer" | "dispatched" | "declassified" => {
                Custody::Retired
            }
            _ => return None,
        })
    }
}

/// A carrier seen in, or last stored as in, a cabinet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinetCarrier {
    /// The carrier.
    pub carrier_id: i64,
    /// Its control number.
    pub control_no: String,
    /// Its level.
    pub level: Level,
    /// Its home cabinet, if it has one.
    pub home_device: Option<String>,
    /// Its state.
    pub custody: Custody,
    /// Whether another cabinet currently holds it (per that cabinet's stored contents).
    pub in_other_cabinet: bool,
    /// For a carrier that is `out`: what the server recorded of it since its sign-out was
    /// issued (`None` when it is not `out` on an open sign-out, or was not looked up).
    pub since_issue: Option<SinceIssue>,
}

/// What the server has recorded of a signed-out carrier's movements, as far as deciding
/// whether it left a cabinet since its sign-out was issued. All times are Unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinceIssue {
    /// When its open sign-out was issued (`i64::MIN` if the record lacks the time: then any
    /// recorded departure counts).
    pub issued_at_ms: i64,
    /// The latest removal from this cabinet recorded for it (a snapshot without it, or a
    /// pending removal here), if any.
    pub last_removal_here_ms: Option<i64>,
    /// The latest arrival in this cabinet recorded for it, if any.
    pub last_arrival_here_ms: Option<i64>,
    /// The device it was last seen at before this snapshot, and when.
    pub last_seen: Option<(String, i64)>,
}

/// Whether a signed-out carrier has left `cabinet` since its sign-out was issued, so that
/// seeing it there again is a return. It has when the server:
///
/// - recorded its removal from this cabinet after the issue; or
/// - recorded it as removed from this cabinet, and not back since (its latest movement here is
///   a removal): it was away when the sign-out was issued, or left after; or
/// - saw it at another device after the issue (a gate, a desk scanner, another cabinet).
///
/// Otherwise (the server never saw it leave, e.g. the first snapshot after a start lists a
/// carrier that was signed out on its shelf and is still there) it has not.
pub fn left_since_issue(cabinet: &str, s: &SinceIssue) -> bool {
    let removed_after_issue = s.last_removal_here_ms.is_some_and(|r| r > s.issued_at_ms);
    let away_since_removal = s
        .last_removal_here_ms
        .is_some_and(|r| s.last_arrival_here_ms.is_none_or(|a| a < r));
    let seen_elsewhere = s
        .last_seen
        .as_ref()
        .is_some_and(|(device, at)| device != cabinet && *at > s.issued_at_ms);
    removed_after_issue || away_since_removal || seen_elsewhere
}

/// One snapshot, resolved against the register.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// The cabinet.
    pub device_id: &'a str,
    /// Carriers present now (each once).
    pub present: &'a [CabinetCarrier],
    /// Carriers the cabinet held before this snapshot (`cabinet_contents`).
    pub previous: &'a [CabinetCarrier],
    /// This cabinet's pending removals: carrier and whether it is now `out`.
    pub pending_here: &'a [(i64, bool)],
    /// When the snapshot was taken (Unix ms).
    pub at_ms: i64,
}

/// What to change after a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciliation {
    /// Add to this cabinet's contents (since `at_ms`).
    pub arrived: Vec<i64>,
    /// Remove from this cabinet's contents.
    pub departed: Vec<i64>,
    /// Insert a pending removal at this cabinet (at `at_ms`).
    pub pending_add: Vec<i64>,
    /// Delete these carriers' pending removals at every cabinet (they are present here).
    pub pending_clear: Vec<i64>,
    /// Delete these carriers' pending removals at this cabinet (signed out since).
    pub pending_clear_here: Vec<i64>,
    /// Signed-out carriers back in their home cabinet: record the return.
    pub returned: Vec<i64>,
    /// Missing carriers back in their home cabinet: back in storage.
    pub found: Vec<i64>,
    /// Alerts to raise.
    pub alerts: Vec<NewAlert>,
}

/// Reconcile a snapshot with the stored contents (see the module docs).
pub fn reconcile(s: &Snapshot<'_>) -> Reconciliation {
    let present: BTreeSet<i64> = s.present.iter().map(|c| c.carrier_id).collect();
    let previous: BTreeSet<i64> = s.previous.iter().map(|c| c.carrier_id).collect();
    let mut r = Reconciliation::default();
    let mut seen = BTreeSet::new();
    for c in s.present {
        if !seen.insert(c.carrier_id) {
            continue;
        }
        r.pending_clear.push(c.carrier_id);
        if previous.contains(&c.carrier_id) {
            continue;
        }
        r.arrived.push(c.carrier_id);
        match c.home_device.as_deref() {
            Some(home) if home == s.device_id => match c.custody {
                Custody::Out => {
                    if c.since_issue
                        .as_ref()
                        .is_some_and(|since| left_since_issue(s.device_id, since))
                    {
                        r.returned.push(c.carrier_id);
                    }
                }
                Custody::Missing => r.found.push(c.carrier_id),
                Custody::InStorage | Custody::Retired => {}
            },
            Some(home) => r.alerts.push(wrong_cabinet_alert(c, home, s)),
            None => {}
        }
    }
    let mut gone = BTreeSet::new();
    for c in s.previous {
        if present.contains(&c.carrier_id) || !gone.insert(c.carrier_id) {
            continue;
        }
        r.departed.push(c.carrier_id);
        if c.custody == Custody::InStorage && !c.in_other_cabinet {
            r.pending_add.push(c.carrier_id);
        }
    }
    r.pending_clear_here = s
        .pending_here
        .iter()
        .filter(|(id, out)| *out && !present.contains(id))
        .map(|(id, _)| *id)
        .collect();
    r
}

fn wrong_cabinet_alert(c: &CabinetCarrier, home: &str, s: &Snapshot<'_>) -> NewAlert {
    let mut a = NewAlert::new(
        AlertKind::WrongCabinet,
        cause(
            AlertKind::WrongCabinet,
            &[
                ("carrier", &c.carrier_id.to_string()),
                ("device", s.device_id),
            ],
        ),
        s.at_ms,
    );
    a.carrier_id = Some(c.carrier_id);
    a.device_id = Some(s.device_id.to_owned());
    a.detail = json!({
        "control_no": c.control_no,
        "level": c.level,
        "cabinet": s.device_id,
        "home_device": home,
    });
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i64 = 1_767_225_600_000;

    fn c(id: i64, home: Option<&str>, custody: Custody) -> CabinetCarrier {
        CabinetCarrier {
            carrier_id: id,
            control_no: format!("CUS-{id}"),
            level: Level::Secret,
            home_device: home.map(str::to_owned),
            custody,
            in_other_cabinet: false,
            since_issue: None,
        }
    }

    const ISSUED: i64 = AT - 3_600_000;

    fn since(
        removal: Option<i64>,
        arrival: Option<i64>,
        last_seen: Option<(&str, i64)>,
    ) -> SinceIssue {
        SinceIssue {
            issued_at_ms: ISSUED,
            last_removal_here_ms: removal,
            last_arrival_here_ms: arrival,
            last_seen: last_seen.map(|(d, at)| (d.to_owned(), at)),
        }
    }

    /// A signed-out carrier of cab-1 with what the server recorded since its issue.
    fn out(id: i64, since_issue: SinceIssue) -> CabinetCarrier {
        CabinetCarrier {
            since_issue: Some(since_issue),
            ..c(id, Some("cab-1"), Custody::Out)
        }
    }

    fn snap<'a>(
        present: &'a [CabinetCarrier],
        previous: &'a [CabinetCarrier],
        pending_here: &'a [(i64, bool)],
    ) -> Snapshot<'a> {
        Snapshot {
            device_id: "cab-1",
            present,
            previous,
            pending_here,
            at_ms: AT,
        }
    }

    #[test]
    fn a_carrier_leaving_without_a_signout_becomes_a_pending_removal() {
        let stored = [c(1, Some("cab-1"), Custody::InStorage)];
        let r = reconcile(&snap(&[], &stored, &[]));
        assert_eq!(r.departed, [1]);
        assert_eq!(r.pending_add, [1]);
        assert!(r.alerts.is_empty());
    }

    #[test]
    fn a_signed_out_carrier_leaves_legitimately() {
        let stored = [c(1, Some("cab-1"), Custody::Out)];
        let r = reconcile(&snap(&[], &stored, &[]));
        assert_eq!(r.departed, [1]);
        assert!(r.pending_add.is_empty());
    }

    #[test]
    fn a_carrier_moved_to_another_cabinet_is_not_pending() {
        let mut moved = c(1, Some("cab-1"), Custody::InStorage);
        moved.in_other_cabinet = true;
        let r = reconcile(&snap(&[], &[moved], &[]));
        assert_eq!(r.departed, [1]);
        assert!(r.pending_add.is_empty());
    }

    #[test]
    fn a_carrier_that_reappears_clears_its_pending_removal() {
        let here = [c(1, Some("cab-1"), Custody::InStorage)];
        let r = reconcile(&snap(&here, &[], &[(1, false)]));
        assert_eq!(r.arrived, [1]);
        assert_eq!(r.pending_clear, [1]);
        assert!(r.pending_clear_here.is_empty());
        assert!(r.returned.is_empty() && r.found.is_empty() && r.alerts.is_empty());
    }

    #[test]
    fn pending_removals_of_carriers_signed_out_since_are_cleared() {
        let r = reconcile(&snap(&[], &[], &[(1, true), (2, false)]));
        assert_eq!(r.pending_clear_here, [1]);
    }

    #[test]
    fn back_home_while_out_is_a_return_and_while_missing_a_find() {
        let present = [
            out(1, since(Some(ISSUED + 1), Some(ISSUED - 5), None)),
            c(2, Some("cab-1"), Custody::Missing),
            c(3, Some("cab-1"), Custody::InStorage),
        ];
        let r = reconcile(&snap(&present, &[], &[]));
        assert_eq!(r.arrived, [1, 2, 3]);
        assert_eq!(r.returned, [1]);
        assert_eq!(r.found, [2]);
        assert!(r.alerts.is_empty());
    }

    #[test]
    fn a_carrier_signed_out_on_its_shelf_is_not_returned_by_a_first_count() {
        // Never seen leaving: the server has no contents yet (first snapshot after a start).
        let never = out(1, since(None, None, None));
        // Seen here before and after the issue, never elsewhere, never removed.
        let stayed = out(
            2,
            since(None, Some(ISSUED - 10), Some(("cab-1", ISSUED + 10))),
        );
        // Removed once and back before the issue; seen elsewhere only before it.
        let before = out(
            3,
            since(
                Some(ISSUED - 20),
                Some(ISSUED - 10),
                Some(("gate-1", ISSUED - 15)),
            ),
        );
        let present = [never, stayed, before];
        let r = reconcile(&snap(&present, &[], &[]));
        assert_eq!(r.arrived, [1, 2, 3], "their presence is recorded");
        assert!(r.returned.is_empty(), "{:?}", r.returned);
        assert!(r.alerts.is_empty() && r.pending_add.is_empty());
        // Without a record of the sign-out (no open one found) nothing is returned either.
        let unknown = [c(4, Some("cab-1"), Custody::Out)];
        assert!(reconcile(&snap(&unknown, &[], &[])).returned.is_empty());
    }

    #[test]
    fn a_carrier_that_left_since_the_issue_is_returned() {
        let present = [
            // Removed from this cabinet after the issue (the borrower took it).
            out(1, since(Some(ISSUED + 60_000), Some(ISSUED - 10), None)),
            // Taken off the shelf before the issue (to the desk), not back since.
            out(
                2,
                since(Some(ISSUED - 60_000), Some(ISSUED - 120_000), None),
            ),
            // Never recorded here, but seen at the gate after the issue.
            out(3, since(None, None, Some(("gate-1", ISSUED + 1)))),
            // A pending removal here recorded after the issue, no arrival on record.
            out(
                4,
                since(Some(ISSUED + 5), None, Some(("cab-1", ISSUED - 1))),
            ),
        ];
        let r = reconcile(&snap(&present, &[], &[]));
        assert_eq!(r.arrived, [1, 2, 3, 4]);
        assert_eq!(r.returned, [1, 2, 3, 4]);
    }

    #[test]
    fn left_since_issue_edges() {
        let cab = "cab-1";
        // Seen at another device exactly at the issue, or here after it: not left.
        assert!(!left_since_issue(
            cab,
            &since(None, None, Some(("gate-1", ISSUED)))
        ));
        assert!(!left_since_issue(
            cab,
            &since(None, None, Some(("cab-1", ISSUED + 9)))
        ));
        assert!(left_since_issue(
            cab,
            &since(None, None, Some(("cab-2", ISSUED + 9)))
        ));
        // A removal exactly at the issue counts only if it was not followed by an arrival.
        assert!(left_since_issue(cab, &since(Some(ISSUED), None, None)));
        assert!(!left_since_issue(
            cab,
            &since(Some(ISSUED), Some(ISSUED), None)
        ));
        assert!(!left_since_issue(
            cab,
            &since(Some(ISSUED), Some(ISSUED + 1), None)
        ));
        // A removal after the issue counts even if an arrival was recorded after it.
        assert!(left_since_issue(
            cab,
            &since(Some(ISSUED + 1), Some(ISSUED + 2), None)
        ));
        // Issue time unknown: any recorded departure counts, a mere sighting here does not.
        let unknown = |removal, seen: Option<(&str, i64)>| SinceIssue {
            issued_at_ms: i64::MIN,
            ..since(removal, Some(0), seen)
        };
        assert!(left_since_issue(cab, &unknown(Some(1), None)));
        assert!(!left_since_issue(cab, &unknown(None, Some(("cab-1", 5)))));
    }

    #[test]
    fn only_arrivals_count() {
        // Back on the shelf (a return when it arrived): not a return on every snapshot.
        let here = [out(1, since(Some(ISSUED + 1), None, None))];
        let r = reconcile(&snap(&here, &here, &[]));
        assert!(r.arrived.is_empty() && r.returned.is_empty() && r.departed.is_empty());
        // Staying in the wrong cabinet raises nothing new.
        let wrong = [c(2, Some("cab-9"), Custody::InStorage)];
        assert!(reconcile(&snap(&wrong, &wrong, &[])).alerts.is_empty());
    }

    #[test]
    fn arriving_in_a_cabinet_other_than_home_is_wrong_cabinet() {
        let present = [
            c(1, Some("cab-9"), Custody::InStorage),
            c(2, Some("cab-9"), Custody::Out),
            c(3, None, Custody::Out),
        ];
        let r = reconcile(&snap(&present, &[], &[]));
        assert_eq!(r.alerts.len(), 2);
        assert!(r.returned.is_empty());
        let a = &r.alerts[0];
        assert_eq!(a.kind, AlertKind::WrongCabinet);
        assert_eq!(a.cause, "wrong_cabinet:carrier:1:device:cab-1");
        assert_eq!(a.detail["home_device"], "cab-9");
        assert_eq!(a.detail["control_no"], "CUS-1");
        assert_eq!(
            (a.carrier_id, a.device_id.as_deref()),
            (Some(1), Some("cab-1"))
        );
    }

    #[test]
    fn duplicates_in_a_snapshot_count_once() {
        let x = c(1, Some("cab-9"), Custody::InStorage);
        let r = reconcile(&snap(&[x.clone(), x], &[], &[]));
        assert_eq!(r.arrived, [1]);
        assert_eq!(r.alerts.len(), 1);
    }

    #[test]
    fn custody_names() {
        assert_eq!(Custody::from_stored("in_storage"), Some(Custody::InStorage));
        assert_eq!(Custody::from_stored("out"), Some(Custody::Out));
        assert_eq!(Custody::from_stored("missing"), Some(Custody::Missing));
        assert_eq!(Custody::from_stored("destroyed"), Some(Custody::Retired));
        assert_eq!(Custody::from_stored("archived"), Some(Custody::Retired));
        assert_eq!(Custody::from_stored("lost"), None);
    }
}
