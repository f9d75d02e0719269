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
//!   - in its home cabinet while `out`: it has been returned (the sign-out is closed for it);
//!   - in its home cabinet while `missing`: it has been found (back `in_storage`);
//!   - in a cabinet other than its home: `wrong_cabinet`.
//! - every present carrier's pending removals are cleared (it is accounted for), and so are
//!   this cabinet's pending removals of carriers that have since been signed out.
//!
//! Only transitions count: a carrier that sits in its home cabinet while `out` (issued, not yet
//! picked up) is not "returned" by every snapshot, and a carrier in the wrong cabinet raises
//! one alert when it arrives, not one per snapshot.

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
            "archived" | "destroyed" => Custody::Retired,
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
                Custody::Out => r.returned.push(c.carrier_id),
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
            c(1, Some("cab-1"), Custody::Out),
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
    fn only_arrivals_count() {
        // Issued but still on the shelf: not a return on every snapshot.
        let here = [c(1, Some("cab-1"), Custody::Out)];
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
