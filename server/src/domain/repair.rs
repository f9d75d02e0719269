//! Repair (维修) of classified laptops, devices and hard disks: who may take one, how, and
//! what happens to its storage media. Plain functions; the day is an argument.
//!
//! - Only a laptop, a device or a hard disk goes for repair, from storage, one repair at a time.
//! - Only to a qualified repairer: one whose qualification (资质) runs at least to the day the
//!   carrier leaves.
//! - On site under escort (the escort is not the repairer), or by dispatch off site.
//! - Its storage media are removed and kept by the custodian, or the repair is recorded as done
//!   on site with the media in place. Off site the media never go along, and a hard disk, being
//!   the medium itself, is repaired on site only.
//! - The repair stays open (the carrier "in repair", its removed media kept) until it returns.

use serde::{Deserialize, Serialize};

use super::carrier::{CarrierKind, CarrierState};
use super::ids::CarrierId;
use super::moves::MoveRuleError;
use super::time::Date;

/// Where the repair is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RepairMode {
    /// On site, the repairer escorted throughout.
    OnSite,
    /// Off site, sent through the confidential courier channel.
    Dispatch,
}

/// What happens to the carrier's storage media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaHandling {
    /// Removed before the repair and kept by the custodian until the carrier returns.
    RemovedAndKept,
    /// Left in place: the repair is done on site.
    RepairedOnSite,
}

impl RepairMode {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            RepairMode::OnSite => "on_site",
            RepairMode::Dispatch => "dispatch",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<RepairMode> {
        [RepairMode::OnSite, RepairMode::Dispatch]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

impl MediaHandling {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaHandling::RemovedAndKept => "removed_and_kept",
            MediaHandling::RepairedOnSite => "repaired_on_site",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<MediaHandling> {
        [MediaHandling::RemovedAndKept, MediaHandling::RepairedOnSite]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// A repair as asked, with what the register says about the carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairPlan<'a> {
    /// The carrier's kind.
    pub kind: CarrierKind,
    /// Its state now.
    pub state: CarrierState,
    /// Whether it is out for repair already.
    pub in_repair: bool,
    /// On site or by dispatch.
    pub mode: RepairMode,
    /// What happens to its media.
    pub media: MediaHandling,
    /// The repairer's name.
    pub repairer: &'a str,
    /// The last day the repairer's qualification is valid.
    pub qualified_until: Date,
    /// Who escorts the repairer on site.
    pub escort: Option<&'a str>,
    /// The day the repair starts.
    pub today: Date,
}

/// Check a repair against every rule; the first broken one.
pub fn check_repair(plan: &RepairPlan<'_>) -> Result<(), MoveRuleError> {
    if !matches!(
        plan.kind,
        CarrierKind::Laptop | CarrierKind::Device | CarrierKind::HardDisk
    ) {
        return Err(MoveRuleError::NotRepairable);
    }
    if plan.in_repair {
        return Err(MoveRuleError::AlreadyInRepair);
    }
    if plan.state != CarrierState::InStorage {
        return Err(MoveRuleError::CarrierUnavailable);
    }
    if plan.qualified_until < plan.today {
        return Err(MoveRuleError::RepairerNotQualified);
    }
    match plan.mode {
        RepairMode::OnSite => {
            let escort = plan.escort.map(str::trim).unwrap_or("");
            if escort.is_empty() || escort == plan.repairer.trim() {
                return Err(MoveRuleError::EscortRequired);
            }
        }
        RepairMode::Dispatch => {
            if plan.media != MediaHandling::RemovedAndKept || plan.kind == CarrierKind::HardDisk {
                return Err(MoveRuleError::MediaMustBeRemoved);
            }
        }
    }
    Ok(())
}

/// The one rule that makes repair a carrier state (维修中): a carrier with an open repair is
/// not available to be signed out, issued, copied, transferred, dispatched or destroyed until
/// it returns. `in_repair` lists the carriers of the step that have an open repair; every use
/// case that moves a carrier calls this, so the rule exists once.
///
/// The state is derived from the open repair rather than stored in `carriers.state`: the
/// carrier never leaves the register's `in_storage` custody (the custodian still answers for
/// it and keeps its removed media), and the open repair is the record of where it is.
pub fn check_available(in_repair: &[CarrierId]) -> Result<(), MoveRuleError> {
    if in_repair.is_empty() {
        Ok(())
    } else {
        Err(MoveRuleError::InRepair)
    }
}

/// A repair comes back once.
pub fn check_return(returned: bool) -> Result<(), MoveRuleError> {
    if returned {
        Err(MoveRuleError::RepairClosed)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> Date {
        Date::from_ymd(2026, 12, d).unwrap()
    }

    fn plan() -> RepairPlan<'static> {
        RepairPlan {
            kind: CarrierKind::Laptop,
            state: CarrierState::InStorage,
            in_repair: false,
            mode: RepairMode::OnSite,
            media: MediaHandling::RemovedAndKept,
            repairer: "Wang Repair",
            qualified_until: day(31),
            escort: Some("Li Escort"),
            today: day(7),
        }
    }

    #[test]
    fn a_laptop_repaired_on_site_under_escort_is_allowed() {
        assert_eq!(check_repair(&plan()), Ok(()));
        let in_place = RepairPlan {
            media: MediaHandling::RepairedOnSite,
            ..plan()
        };
        assert_eq!(check_repair(&in_place), Ok(()));
    }

    #[test]
    fn only_laptops_devices_and_hard_disks_go_for_repair() {
        for kind in [
            CarrierKind::Paper,
            CarrierKind::Flash,
            CarrierKind::OpticalDisc,
        ] {
            let p = RepairPlan { kind, ..plan() };
            assert_eq!(check_repair(&p), Err(MoveRuleError::NotRepairable));
        }
        for kind in [CarrierKind::Device, CarrierKind::HardDisk] {
            assert_eq!(check_repair(&RepairPlan { kind, ..plan() }), Ok(()));
        }
    }

    #[test]
    fn the_qualification_must_run_to_the_day_it_leaves() {
        let last_day = RepairPlan {
            qualified_until: day(7),
            ..plan()
        };
        assert_eq!(check_repair(&last_day), Ok(()));
        let lapsed = RepairPlan {
            qualified_until: day(6),
            ..plan()
        };
        assert_eq!(
            check_repair(&lapsed),
            Err(MoveRuleError::RepairerNotQualified)
        );
    }

    #[test]
    fn on_site_needs_an_escort_who_is_not_the_repairer() {
        for escort in [None, Some(""), Some(" Wang Repair ")] {
            let p = RepairPlan { escort, ..plan() };
            assert_eq!(check_repair(&p), Err(MoveRuleError::EscortRequired));
        }
    }

    #[test]
    fn off_site_the_media_stay_behind_and_hard_disks_never_leave() {
        let dispatched = RepairPlan {
            mode: RepairMode::Dispatch,
            escort: None,
            ..plan()
        };
        assert_eq!(check_repair(&dispatched), Ok(()));
        let with_media = RepairPlan {
            media: MediaHandling::RepairedOnSite,
            ..dispatched
        };
        assert_eq!(
            check_repair(&with_media),
            Err(MoveRuleError::MediaMustBeRemoved)
        );
        let disk = RepairPlan {
            kind: CarrierKind::HardDisk,
            ..dispatched
        };
        assert_eq!(check_repair(&disk), Err(MoveRuleError::MediaMustBeRemoved));
    }

    #[test]
    fn one_repair_at_a_time_from_storage_and_it_returns_once() {
        let twice = RepairPlan {
            in_repair: true,
            ..plan()
        };
        assert_eq!(check_repair(&twice), Err(MoveRuleError::AlreadyInRepair));
        let on_loan = RepairPlan {
            state: CarrierState::Out,
            ..plan()
        };
        assert_eq!(
            check_repair(&on_loan),
            Err(MoveRuleError::CarrierUnavailable)
        );
        assert_eq!(check_return(false), Ok(()));
        assert_eq!(check_return(true), Err(MoveRuleError::RepairClosed));
    }

    #[test]
    fn a_carrier_in_repair_is_not_available_until_it_returns() {
        assert_eq!(check_available(&[]), Ok(()));
        assert_eq!(
            check_available(&[CarrierId(7)]),
            Err(MoveRuleError::InRepair)
        );
        let refused = MoveRuleError::InRepair;
        assert_eq!(refused.code(), "in_repair");
        assert!(refused.is_state_conflict(), "a state conflict answers 409");
    }
}
