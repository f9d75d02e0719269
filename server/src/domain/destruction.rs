//! Destruction (销毁): request, approval, the destruction record, and what a reader seeing a
//! destroyed carrier means.
//!
//! - The request names carriers, a method that fits every carrier's kind ([`methods_for`]:
//!   paper is shredded or incinerated; magnetic media degaussed (then shredded); flash,
//!   optical discs, hard disks and devices physically destroyed) and a reason. It is a request
//!   of the approval model: two approvers if a carrier is TS.
//! - Once approved, the destruction is recorded with two witnesses ([`check_record`]): two
//!   different people, neither the requester, at least one a security officer; the count of
//!   carriers destroyed must match the request, and every carrier must still be in storage.
//! - The carriers become `destroyed` and their tags are retired (kept on record, so a read of
//!   one is recognised): a destroyed carrier's tag read by any reader raises
//!   `destroyed_seen` ([`destroyed_seen_alert`]), because the record and the world disagree.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::alert::{AlertKind, NewAlert, cause};
use super::approval::Party;
use super::carrier::{CarrierKind, CarrierState};
use super::ids::{CarrierId, PersonId};
use super::level::Level;

/// How carriers are destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Shredder (paper).
    Shred,
    /// Incineration (paper).
    Incinerate,
    /// Degaussing, then shredding (magnetic media).
    Degauss,
    /// Physical destruction (flash, optical discs, hard disks, devices).
    Physical,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 4] = [
        Method::Shred,
        Method::Incinerate,
        Method::Degauss,
        Method::Physical,
    ];

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Shred => "shred",
            Method::Incinerate => "incinerate",
            Method::Degauss => "degauss",
            Method::Physical => "physical",
        }
    }

    /// Parse an API name.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// The methods that destroy a carrier of `kind` so nothing can be recovered.
pub fn methods_for(kind: CarrierKind) -> &'static [Method] {
    match kind {
        CarrierKind::Paper => &[Method::Shred, Method::Incinerate],
        CarrierKind::MagneticDisk => &[Method::Degauss],
        CarrierKind::OpticalDisc
        | CarrierKind::Flash
        | CarrierKind::HardDisk
        | CarrierKind::Laptop
        | CarrierKind::Device => &[Method::Physical],
    }
}

/// A carrier as the destruction rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToDestroy {
    /// The carrier.
    pub id: CarrierId,
    /// Its kind.
    pub kind: CarrierKind,
    /// Its state.
    pub state: CarrierState,
    /// Its level.
    pub level: Level,
}

/// A witness as the record rules see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Witness {
    /// The person.
    pub person: PersonId,
    /// Whether an account of theirs is a security officer.
    pub is_officer: bool,
}

/// Why a destruction request or record is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestructionError {
    /// A carrier is not in storage (out, missing, already destroyed, ...).
    #[error("carrier {carrier} is not in storage")]
    CarrierUnavailable {
        /// The carrier.
        carrier: CarrierId,
    },
    /// The method does not destroy a carrier of this kind.
    #[error("{method} does not destroy carrier {carrier} ({kind})")]
    MethodNotForKind {
        /// The carrier.
        carrier: CarrierId,
        /// Its kind.
        kind: &'static str,
        /// The method asked.
        method: &'static str,
    },
    /// Not exactly two witnesses, or the same person twice.
    #[error("a destruction needs two different witnesses")]
    TwoWitnessesNeeded,
    /// A witness is the requester.
    #[error("the requester may not witness the destruction")]
    WitnessIsRequester,
    /// Neither witness is a security officer.
    #[error("one witness must be a security officer")]
    NoOfficerWitness,
    /// The carriers counted at the destruction differ from the request.
    #[error("{counted} carriers counted, the request names {expected}")]
    CountMismatch {
        /// How many the request names.
        expected: u32,
        /// How many were counted.
        counted: u32,
    },
}

impl DestructionError {
    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DestructionError::CarrierUnavailable { .. } => "carrier_unavailable",
            DestructionError::MethodNotForKind { .. } => "method_not_for_kind",
            DestructionError::TwoWitnessesNeeded => "two_witnesses_needed",
            DestructionError::WitnessIsRequester => "witness_is_requester",
            DestructionError::NoOfficerWitness => "no_officer_witness",
            DestructionError::CountMismatch { .. } => "count_mismatch",
        }
    }
}

fn all_in_storage(carriers: &[ToDestroy]) -> Result<(), DestructionError> {
    match carriers.iter().find(|c| c.state != CarrierState::InStorage) {
        Some(c) => Err(DestructionError::CarrierUnavailable { carrier: c.id }),
        None => Ok(()),
    }
}

/// Check a request: every carrier in storage, and `method` fit for every carrier's kind.
pub fn check_request(carriers: &[ToDestroy], method: Method) -> Result<(), DestructionError> {
    all_in_storage(carriers)?;
    if let Some(c) = carriers
        .iter()
        .find(|c| !methods_for(c.kind).contains(&method))
    {
        return Err(DestructionError::MethodNotForKind {
            carrier: c.id,
            kind: c.kind.as_str(),
            method: method.as_str(),
        });
    }
    Ok(())
}

/// Whether the request needs two approvers (a TS carrier among them).
pub fn is_top_secret(carriers: &[ToDestroy]) -> bool {
    carriers.iter().any(|c| c.level == Level::TopSecret)
}

/// Check the destruction record: two different witnesses, neither the requester (any account
/// of theirs is one person), at least one a security officer; the count matches the request
/// (`counted`, if given); every carrier still in storage.
pub fn check_record(
    requester: Party,
    witnesses: &[Witness],
    counted: Option<u32>,
    carriers: &[ToDestroy],
) -> Result<(), DestructionError> {
    let [a, b] = witnesses else {
        return Err(DestructionError::TwoWitnessesNeeded);
    };
    if a.person == b.person {
        return Err(DestructionError::TwoWitnessesNeeded);
    }
    if requester
        .person
        .is_some_and(|p| p == a.person || p == b.person)
    {
        return Err(DestructionError::WitnessIsRequester);
    }
    if !a.is_officer && !b.is_officer {
        return Err(DestructionError::NoOfficerWitness);
    }
    let expected = u32::try_from(carriers.len()).unwrap_or(u32::MAX);
    if let Some(counted) = counted.filter(|n| *n != expected) {
        return Err(DestructionError::CountMismatch { expected, counted });
    }
    all_in_storage(carriers)
}

/// The alert for a destroyed carrier's tag read by `device` at `at_ms`, or `None` when the
/// carrier is not destroyed. One live alert per carrier (the cause names the carrier); the
/// detail names the control number and level, never the title.
pub fn destroyed_seen_alert(
    carrier: CarrierId,
    state: CarrierState,
    control_no: &str,
    level: Level,
    device: &str,
    at_ms: i64,
) -> Option<NewAlert> {
    if state != CarrierState::Destroyed {
        return None;
    }
    let id = carrier.to_string();
    let mut alert = NewAlert::new(
        AlertKind::DestroyedSeen,
        cause(AlertKind::DestroyedSeen, &[("carrier", &id)]),
        at_ms,
    );
    alert.carrier_id = Some(carrier.0);
    alert.device_id = Some(device.to_owned());
    alert.detail = json!({
        "control_no": control_no,
        "level": level.code(),
        "device": device,
        "at_ms": at_ms,
    });
    Some(alert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::UserId;

    fn carrier(id: i64, kind: CarrierKind) -> ToDestroy {
        ToDestroy {
            id: CarrierId(id),
            kind,
            state: CarrierState::InStorage,
            level: Level::Secret,
        }
    }

    fn witness(person: i64, is_officer: bool) -> Witness {
        Witness {
            person: PersonId(person),
            is_officer,
        }
    }

    fn requester() -> Party {
        Party {
            user: UserId(1),
            person: Some(PersonId(10)),
        }
    }

    #[test]
    fn the_method_must_fit_every_kind() {
        let paper = carrier(1, CarrierKind::Paper);
        assert_eq!(check_request(&[paper], Method::Shred), Ok(()));
        assert_eq!(check_request(&[paper], Method::Incinerate), Ok(()));
        assert_eq!(
            check_request(&[carrier(2, CarrierKind::MagneticDisk)], Method::Degauss),
            Ok(())
        );
        for kind in [
            CarrierKind::Flash,
            CarrierKind::OpticalDisc,
            CarrierKind::HardDisk,
        ] {
            assert_eq!(check_request(&[carrier(3, kind)], Method::Physical), Ok(()));
            assert_eq!(
                check_request(&[carrier(3, kind)], Method::Shred)
                    .unwrap_err()
                    .code(),
                "method_not_for_kind"
            );
        }
        // One method for the whole request: a paper and a flash carrier cannot share one.
        let err =
            check_request(&[paper, carrier(4, CarrierKind::Flash)], Method::Shred).unwrap_err();
        assert_eq!(
            err,
            DestructionError::MethodNotForKind {
                carrier: CarrierId(4),
                kind: "flash",
                method: "shred"
            }
        );
    }

    #[test]
    fn only_stored_carriers_are_destroyed() {
        let mut out = carrier(1, CarrierKind::Paper);
        out.state = CarrierState::Out;
        assert_eq!(
            check_request(&[out], Method::Shred),
            Err(DestructionError::CarrierUnavailable {
                carrier: CarrierId(1)
            })
        );
        let mut ts = carrier(2, CarrierKind::Paper);
        assert!(!is_top_secret(&[ts]));
        ts.level = Level::TopSecret;
        assert!(is_top_secret(&[carrier(1, CarrierKind::Paper), ts]));
    }

    #[test]
    fn two_different_witnesses_neither_the_requester_one_an_officer() {
        let carriers = [
            carrier(1, CarrierKind::Paper),
            carrier(2, CarrierKind::Paper),
        ];
        let ok = [witness(20, true), witness(21, false)];
        assert_eq!(check_record(requester(), &ok, Some(2), &carriers), Ok(()));
        assert_eq!(check_record(requester(), &ok, None, &carriers), Ok(()));
        assert_eq!(
            check_record(requester(), &[witness(20, true)], None, &carriers),
            Err(DestructionError::TwoWitnessesNeeded)
        );
        assert_eq!(
            check_record(
                requester(),
                &[witness(20, true), witness(20, true)],
                None,
                &carriers
            ),
            Err(DestructionError::TwoWitnessesNeeded)
        );
        assert_eq!(
            check_record(
                requester(),
                &[witness(10, true), witness(21, false)],
                None,
                &carriers
            ),
            Err(DestructionError::WitnessIsRequester)
        );
        assert_eq!(
            check_record(
                requester(),
                &[witness(20, false), witness(21, false)],
                None,
                &carriers
            ),
            Err(DestructionError::NoOfficerWitness)
        );
    }

    #[test]
    fn the_count_is_checked_against_the_request() {
        let carriers = [
            carrier(1, CarrierKind::Paper),
            carrier(2, CarrierKind::Paper),
        ];
        let ok = [witness(20, true), witness(21, false)];
        assert_eq!(
            check_record(requester(), &ok, Some(1), &carriers),
            Err(DestructionError::CountMismatch {
                expected: 2,
                counted: 1
            })
        );
        let mut gone = carriers;
        gone[1].state = CarrierState::Missing;
        assert_eq!(
            check_record(requester(), &ok, Some(2), &gone)
                .unwrap_err()
                .code(),
            "carrier_unavailable"
        );
    }

    #[test]
    fn a_destroyed_carriers_tag_seen_raises_destroyed_seen() {
        let alert = destroyed_seen_alert(
            CarrierId(7),
            CarrierState::Destroyed,
            "DOC-7",
            Level::Secret,
            "gate-1",
            1_000,
        )
        .unwrap();
        assert_eq!(alert.kind, AlertKind::DestroyedSeen);
        assert_eq!(alert.carrier_id, Some(7));
        assert_eq!(alert.cause, "destroyed_seen:carrier:7");
        assert_eq!(alert.detail["control_no"], "DOC-7");
        assert!(alert.detail.get("title").is_none());
        for state in [
            CarrierState::InStorage,
            CarrierState::Out,
            CarrierState::Missing,
        ] {
            assert!(
                destroyed_seen_alert(CarrierId(7), state, "DOC-7", Level::Secret, "g", 1).is_none()
            );
        }
    }
}
