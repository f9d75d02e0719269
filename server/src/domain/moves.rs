//! Carriers counted and called in: the rules of stocktakes (清点), year-end collections (年底收缴)
//! and retention (保管期限). Plain functions over plain types; time is an argument.
//!
//! - A stocktake fixes at its opening the carriers it expects (a cabinet's, a zone's or a
//!   person's holdings) and then records what is scanned. [`reconcile`] compares the two:
//!   expected carriers not seen are *missing*, scans that are not expected are *unexpected*.
//!   Only an open stocktake takes scans, only a closed one has discrepancies to resolve, and
//!   each discrepancy is resolved once (a missing report or a correction).
//! - A collection calls in every carrier on loan when it opens; each is then closed as kept,
//!   archived or destroyed, but only once it is back (archived and kept) or has been destroyed
//!   through the destruction workflow: a collection never destroys anything by itself.
//! - A carrier is past its retention on the day after its retention date.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::carrier::CarrierState;
use super::ids::{CarrierId, PersonId};
use super::time::Date;

/// Why a stocktake, collection or retention step is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoveRuleError {
    /// The stocktake is closed: it takes no more scans and cannot close again.
    #[error("the stocktake is closed")]
    StocktakeClosed,
    /// The stocktake is still open: its discrepancies are known only once it is closed.
    #[error("the stocktake is still open")]
    StocktakeOpen,
    /// The carrier is not among the stocktake's missing carriers.
    #[error("the carrier is not a discrepancy of this stocktake")]
    NotADiscrepancy,
    /// The discrepancy was resolved already.
    #[error("the discrepancy is already resolved")]
    AlreadyResolved,
    /// The carrier's state does not allow reporting it missing (it is missing already,
    /// archived or destroyed).
    #[error("the carrier cannot be reported missing in its state")]
    CannotReportMissing,
    /// A collection for this year exists already.
    #[error("a collection for this year exists already")]
    CollectionExists,
    /// The carrier is not called in by this collection.
    #[error("the carrier is not part of this collection")]
    NotCollected,
    /// The carrier was closed in this collection already.
    #[error("the carrier is already closed in this collection")]
    AlreadyClosed,
    /// The carrier is still on loan: it must come back before it is kept or archived.
    #[error("the carrier is still on loan")]
    StillOnLoan,
    /// Closing as destroyed needs the destruction workflow to have destroyed it first.
    #[error("the carrier has not been destroyed through the destruction workflow")]
    NotDestroyed,
    /// A carrier to transfer or dispatch is not in storage (on loan, missing, already moving).
    #[error("a carrier is not in storage")]
    CarrierUnavailable,
    /// The step needs an approved request whose carriers were not handed over yet.
    #[error("the request is not approved, or its carriers were handed over already")]
    NotReadyToHandOver,
    /// Receipt (or delivery) needs the carriers handed over (or sent) first.
    #[error("the carriers have not been handed over")]
    NotHandedOver,
    /// The receipt (or delivery) was recorded already.
    #[error("the receipt is recorded already")]
    AlreadyReceived,
    /// Whoever handed the carriers over cannot also sign for them.
    #[error("the person who handed the carriers over cannot sign for them")]
    SelfReceipt,
    /// The transfer names a receiving custodian, and this is someone else.
    #[error("the transfer is for another custodian")]
    WrongReceiver,
    /// A dispatch window must end in the future.
    #[error("the dispatch window must end in the future")]
    WindowInPast,
    /// Only laptops, devices and hard disks go for repair.
    #[error("only a laptop, device or hard disk can be sent for repair")]
    NotRepairable,
    /// The repairer's qualification (资质) has lapsed by the day the carrier leaves.
    #[error("the repairer's qualification has expired")]
    RepairerNotQualified,
    /// A repair on site needs an escort (陪同) who is not the repairer.
    #[error("a repair on site needs an escort other than the repairer")]
    EscortRequired,
    /// A carrier leaving the site for repair leaves its storage media behind; a hard disk is
    /// the medium itself and is repaired on site only.
    #[error("storage media must be removed and kept before the carrier leaves the site")]
    MediaMustBeRemoved,
    /// The carrier is out for repair already.
    #[error("the carrier is already out for repair")]
    AlreadyInRepair,
    /// The repair has been recorded as returned already.
    #[error("the repair is closed already")]
    RepairClosed,
    /// A carrier is out for repair (维修中): nothing moves it until the repair returns.
    #[error("a carrier is out for repair until it returns")]
    InRepair,
    /// A transfer of a whole unit needs the unit to keep carriers (a rule about the
    /// register, not a malformed request).
    #[error("the unit keeps no carriers")]
    UnitEmpty,
}

impl MoveRuleError {
    /// The machine-readable code (the API's `error`).
    pub fn code(self) -> &'static str {
        match self {
            MoveRuleError::StocktakeClosed => "stocktake_closed",
            MoveRuleError::StocktakeOpen => "stocktake_open",
            MoveRuleError::NotADiscrepancy => "not_a_discrepancy",
            MoveRuleError::AlreadyResolved => "already_resolved",
            MoveRuleError::CannotReportMissing => "cannot_report_missing",
            MoveRuleError::CollectionExists => "collection_exists",
            MoveRuleError::NotCollected => "not_collected",
            MoveRuleError::AlreadyClosed => "already_closed",
            MoveRuleError::StillOnLoan => "still_on_loan",
            MoveRuleError::NotDestroyed => "not_destroyed",
            MoveRuleError::CarrierUnavailable => "carrier_unavailable",
            MoveRuleError::NotReadyToHandOver => "not_ready",
            MoveRuleError::NotHandedOver => "not_handed_over",
            MoveRuleError::AlreadyReceived => "already_received",
            MoveRuleError::SelfReceipt => "self_receipt",
            MoveRuleError::WrongReceiver => "wrong_receiver",
            MoveRuleError::WindowInPast => "window_in_past",
            MoveRuleError::NotRepairable => "not_repairable",
            MoveRuleError::RepairerNotQualified => "repairer_not_qualified",
            MoveRuleError::EscortRequired => "escort_required",
            MoveRuleError::MediaMustBeRemoved => "media_must_be_removed",
            MoveRuleError::AlreadyInRepair => "already_in_repair",
            MoveRuleError::RepairClosed => "repair_closed",
            MoveRuleError::InRepair => "in_repair",
            MoveRuleError::UnitEmpty => "unit_empty",
        }
    }

    /// Whether the refusal is about the current state (409) rather than a rule of the
    /// request itself (422).
    pub fn is_state_conflict(self) -> bool {
        !matches!(
            self,
            MoveRuleError::NotADiscrepancy
                | MoveRuleError::NotCollected
                | MoveRuleError::SelfReceipt
                | MoveRuleError::WrongReceiver
                | MoveRuleError::WindowInPast
                | MoveRuleError::NotRepairable
                | MoveRuleError::RepairerNotQualified
                | MoveRuleError::EscortRequired
                | MoveRuleError::MediaMustBeRemoved
                | MoveRuleError::UnitEmpty
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Stocktake (清点)

/// What a stocktake counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    /// The carriers whose home is one cabinet and that are in storage.
    Device,
    /// The carriers in storage whose home cabinet is in one zone.
    Zone,
    /// The carriers a person holds (on loan to them, or in their custody).
    Custodian,
}

impl ScopeKind {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Device => "device",
            ScopeKind::Zone => "zone",
            ScopeKind::Custodian => "custodian",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<ScopeKind> {
        [ScopeKind::Device, ScopeKind::Zone, ScopeKind::Custodian]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// One scan of a stocktake: the tag as read or typed, and the carrier it names if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedScan {
    /// The normalised tag (or the text typed, when it names no tag).
    pub tag: String,
    /// The carrier it belongs to.
    pub carrier: Option<CarrierId>,
}

/// Expected against seen.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    /// How many carriers were expected.
    pub expected: usize,
    /// How many of the expected carriers were seen.
    pub seen: usize,
    /// Expected carriers not seen, by id.
    pub missing: Vec<CarrierId>,
    /// Scans of carriers not expected, and scans that name no carrier, as tags.
    pub unexpected: Vec<String>,
}

/// Compare what a stocktake expected with what it scanned. A carrier scanned several times
/// (by two tags, or twice) counts once; an unexpected carrier is listed by its first tag.
pub fn reconcile(expected: &[CarrierId], scans: &[CountedScan]) -> Reconciliation {
    let expected_set: BTreeSet<CarrierId> = expected.iter().copied().collect();
    let mut seen = BTreeSet::new();
    let mut unexpected_carriers = BTreeSet::new();
    let mut unexpected = Vec::new();
    for scan in scans {
        match scan.carrier {
            Some(id) if expected_set.contains(&id) => {
                seen.insert(id);
            }
            Some(id) => {
                if unexpected_carriers.insert(id) {
                    unexpected.push(scan.tag.clone());
                }
            }
            None => {
                if !unexpected.contains(&scan.tag) {
                    unexpected.push(scan.tag.clone());
                }
            }
        }
    }
    Reconciliation {
        expected: expected_set.len(),
        seen: seen.len(),
        missing: expected_set.difference(&seen).copied().collect(),
        unexpected,
    }
}

/// A scan is recorded only while the stocktake is open.
pub fn check_scan(closed: bool) -> Result<(), MoveRuleError> {
    if closed {
        Err(MoveRuleError::StocktakeClosed)
    } else {
        Ok(())
    }
}

/// How a stocktake's missing carrier is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Report it missing (查无下落): its state becomes `missing` and the leak clock starts.
    Missing,
    /// The count was wrong, or the carrier is known to be elsewhere: a note explains it.
    Correction,
}

impl Resolution {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Missing => "missing",
            Resolution::Correction => "correction",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<Resolution> {
        [Resolution::Missing, Resolution::Correction]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// Whether a discrepancy may be resolved: the stocktake is closed, the carrier is one it
/// found missing, not yet resolved, and (for a missing report) in a state that can go missing.
pub fn check_resolution(
    closed: bool,
    missing: &[CarrierId],
    carrier: CarrierId,
    already: bool,
    resolution: Resolution,
    state: CarrierState,
) -> Result<(), MoveRuleError> {
    if !closed {
        return Err(MoveRuleError::StocktakeOpen);
    }
    if !missing.contains(&carrier) {
        return Err(MoveRuleError::NotADiscrepancy);
    }
    if already {
        return Err(MoveRuleError::AlreadyResolved);
    }
    if resolution == Resolution::Missing
        && !matches!(state, CarrierState::InStorage | CarrierState::Out)
    {
        return Err(MoveRuleError::CannotReportMissing);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Year-end collection (年底收缴)

/// How a called-in carrier ends the collection. Named `CollectionOutcome` in the OpenAPI
/// document: the gate decision's `Outcome` has the short name there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CollectionOutcome)]
pub enum Outcome {
    /// Back in storage and kept there.
    Kept,
    /// Back and archived (state `archived`).
    Archived,
    /// Destroyed through the destruction workflow.
    Destroyed,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 3] = [Outcome::Kept, Outcome::Archived, Outcome::Destroyed];

    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::Archived => "archived",
            Outcome::Destroyed => "destroyed",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// Whether a called-in carrier may be closed with `outcome`, and the carrier state it then
/// takes (`None`: unchanged).
pub fn close_item(
    already: Option<Outcome>,
    state: CarrierState,
    outcome: Outcome,
) -> Result<Option<CarrierState>, MoveRuleError> {
    if already.is_some() {
        return Err(MoveRuleError::AlreadyClosed);
    }
    match (outcome, state) {
        (Outcome::Destroyed, CarrierState::Destroyed) => Ok(None),
        (Outcome::Destroyed, _) => Err(MoveRuleError::NotDestroyed),
        (_, CarrierState::InStorage) => Ok(match outcome {
            Outcome::Archived => Some(CarrierState::Archived),
            _ => None,
        }),
        (Outcome::Archived, CarrierState::Archived) => Ok(None),
        _ => Err(MoveRuleError::StillOnLoan),
    }
}

/// One department's progress in a collection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct DepartmentProgress {
    /// The borrowers' department.
    pub department: String,
    /// Carriers called in.
    pub called_in: usize,
    /// Of those, back (no longer on loan).
    pub returned: usize,
    /// Closed as kept.
    pub kept: usize,
    /// Closed as archived.
    pub archived: usize,
    /// Closed as destroyed.
    pub destroyed: usize,
    /// Not yet closed.
    pub open: usize,
}

/// One called-in carrier, as the progress needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledIn {
    /// The borrower's department.
    pub department: String,
    /// Whether it is still on loan.
    pub on_loan: bool,
    /// How it was closed.
    pub outcome: Option<Outcome>,
}

/// Progress per department, by department name.
pub fn progress(items: &[CalledIn]) -> Vec<DepartmentProgress> {
    let mut by_dept: std::collections::BTreeMap<&str, DepartmentProgress> = Default::default();
    for item in items {
        let p = by_dept
            .entry(&item.department)
            .or_insert_with(|| DepartmentProgress {
                department: item.department.clone(),
                ..Default::default()
            });
        p.called_in += 1;
        if !item.on_loan {
            p.returned += 1;
        }
        match item.outcome {
            Some(Outcome::Kept) => p.kept += 1,
            Some(Outcome::Archived) => p.archived += 1,
            Some(Outcome::Destroyed) => p.destroyed += 1,
            None => p.open += 1,
        }
    }
    by_dept.into_values().collect()
}

/// The holders a new collection tells (one notice each, however many carriers they hold),
/// with how many of the called-in carriers each holds, in person order. `holders` has one
/// entry per carrier called in: its holder, if the loan names one.
pub fn holders_to_tell(holders: &[Option<PersonId>]) -> Vec<(PersonId, usize)> {
    let mut counts: BTreeMap<PersonId, usize> = BTreeMap::new();
    for holder in holders.iter().flatten() {
        *counts.entry(*holder).or_default() += 1;
    }
    counts.into_iter().collect()
}

/// A collection is complete when every carrier it called in is closed.
pub fn is_complete(items: &[CalledIn]) -> bool {
    items.iter().all(|i| i.outcome.is_some())
}

// ---------------------------------------------------------------------------------------------
// Transfer (移交/签收) and dispatch (机要传递)
//
// Both are requests of the one approval model (`domain::approval`): requested, approved (or
// rejected), then carried out in two steps recorded by different people. A transfer is handed
// over (its carriers become `in_transfer`, custody unchanged) and then received by the
// receiving custodian, and only that receipt changes custody. A dispatch is sent (carriers
// `dispatched`, allowed through gates until its window ends) and its delivery recorded by hand.

/// Carriers may start moving only from storage.
pub fn check_movable(states: &[CarrierState]) -> Result<(), MoveRuleError> {
    if states.iter().all(|s| *s == CarrierState::InStorage) {
        Ok(())
    } else {
        Err(MoveRuleError::CarrierUnavailable)
    }
}

/// Handing over (a transfer) or sending (a dispatch) needs an approved request not yet handed
/// over; the carriers then take `moving` (`in_transfer` or `dispatched`) and nothing else of
/// their custody changes.
pub fn hand_over(
    approved: bool,
    handed_over: bool,
    moving: CarrierState,
) -> Result<CarrierState, MoveRuleError> {
    if approved && !handed_over {
        Ok(moving)
    } else {
        Err(MoveRuleError::NotReadyToHandOver)
    }
}

/// What a receipt does to each carrier's custody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodyChange {
    /// The carriers' state after it.
    pub state: CarrierState,
    /// Their owning unit after it.
    pub owner_unit: String,
}

/// Sign for a transfer: only after the hand-over, never by whoever handed over (nor another
/// account of the same person), and by the named custodian when the transfer names one. Only
/// then does custody change: the carriers are in storage again, owned by `to_unit`.
pub fn receive(
    handed_over_by: Option<(i64, Option<i64>)>,
    received: bool,
    receiver: (i64, Option<i64>),
    to_custodian: Option<i64>,
    to_unit: &str,
) -> Result<CustodyChange, MoveRuleError> {
    let Some(sender) = handed_over_by else {
        return Err(MoveRuleError::NotHandedOver);
    };
    if received {
        return Err(MoveRuleError::AlreadyReceived);
    }
    if sender.0 == receiver.0 || (sender.1.is_some() && sender.1 == receiver.1) {
        return Err(MoveRuleError::SelfReceipt);
    }
    if to_custodian.is_some() && to_custodian != receiver.1 {
        return Err(MoveRuleError::WrongReceiver);
    }
    Ok(CustodyChange {
        state: CarrierState::InStorage,
        owner_unit: to_unit.to_owned(),
    })
}

/// A dispatch window must end after `now_ms`.
pub fn check_window(window_until_ms: i64, now_ms: i64) -> Result<(), MoveRuleError> {
    if window_until_ms > now_ms {
        Ok(())
    } else {
        Err(MoveRuleError::WindowInPast)
    }
}

/// Recording a dispatch's delivery needs it sent and not yet delivered.
pub fn check_delivery(sent: bool, delivered: bool) -> Result<(), MoveRuleError> {
    match (sent, delivered) {
        (false, _) => Err(MoveRuleError::NotHandedOver),
        (true, true) => Err(MoveRuleError::AlreadyReceived),
        (true, false) => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Retention (保管期限)

/// Whether a carrier is past its retention on `today`: the retention date has passed, and the
/// carrier is still kept (not archived or destroyed already).
pub fn past_retention(retention_until: Option<Date>, state: CarrierState, today: Date) -> bool {
    retention_until.is_some_and(|until| until < today)
        && !matches!(state, CarrierState::Archived | CarrierState::Destroyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: i64) -> CarrierId {
        CarrierId(n)
    }

    fn scan(tag: &str, carrier: Option<i64>) -> CountedScan {
        CountedScan {
            tag: tag.into(),
            carrier: carrier.map(CarrierId),
        }
    }

    #[test]
    fn a_stocktake_lists_expected_carriers_not_seen_and_scans_not_expected() {
        let r = reconcile(
            &[c(1), c(2), c(3)],
            &[
                scan("epc:01", Some(1)),
                scan("barcode:CU3", Some(3)),
                scan("epc:03", Some(3)),
                scan("epc:09", Some(9)),
                scan("epc:0A", Some(9)),
                scan("epc:FF", None),
                scan("epc:FF", None),
            ],
        );
        assert_eq!(r.expected, 3);
        assert_eq!(r.seen, 2);
        assert_eq!(r.missing, [c(2)]);
        assert_eq!(r.unexpected, ["epc:09", "epc:FF"]);
    }

    #[test]
    fn an_empty_count_misses_everything_and_an_empty_scope_expects_nothing() {
        let r = reconcile(&[c(2), c(1)], &[]);
        assert_eq!((r.expected, r.seen), (2, 0));
        assert_eq!(r.missing, [c(1), c(2)]);
        assert_eq!(
            reconcile(&[], &[scan("epc:01", Some(1))]).unexpected,
            ["epc:01"]
        );
    }

    #[test]
    fn a_closed_stocktake_takes_no_scans() {
        assert!(check_scan(false).is_ok());
        assert_eq!(check_scan(true), Err(MoveRuleError::StocktakeClosed));
    }

    #[test]
    fn a_discrepancy_is_resolved_once_after_closing() {
        let missing = [c(2)];
        let ok = |closed, carrier, already, res, state| {
            check_resolution(closed, &missing, carrier, already, res, state)
        };
        use CarrierState::{Archived, InStorage, Out};
        assert_eq!(
            ok(false, c(2), false, Resolution::Missing, InStorage),
            Err(MoveRuleError::StocktakeOpen)
        );
        assert_eq!(
            ok(true, c(1), false, Resolution::Missing, InStorage),
            Err(MoveRuleError::NotADiscrepancy)
        );
        assert_eq!(
            ok(true, c(2), true, Resolution::Correction, InStorage),
            Err(MoveRuleError::AlreadyResolved)
        );
        assert_eq!(
            ok(
                true,
                c(2),
                false,
                Resolution::Missing,
                CarrierState::Missing
            ),
            Err(MoveRuleError::CannotReportMissing)
        );
        assert!(ok(true, c(2), false, Resolution::Missing, Out).is_ok());
        assert!(ok(true, c(2), false, Resolution::Correction, Archived).is_ok());
    }

    #[test]
    fn a_loan_is_closed_only_once_it_is_back_or_destroyed() {
        use CarrierState::{Archived, Destroyed, InStorage, Out};
        assert_eq!(
            close_item(None, Out, Outcome::Kept),
            Err(MoveRuleError::StillOnLoan)
        );
        assert_eq!(
            close_item(None, Out, Outcome::Archived),
            Err(MoveRuleError::StillOnLoan)
        );
        assert_eq!(
            close_item(None, InStorage, Outcome::Destroyed),
            Err(MoveRuleError::NotDestroyed)
        );
        assert_eq!(close_item(None, InStorage, Outcome::Kept), Ok(None));
        assert_eq!(
            close_item(None, InStorage, Outcome::Archived),
            Ok(Some(Archived))
        );
        assert_eq!(close_item(None, Destroyed, Outcome::Destroyed), Ok(None));
        assert_eq!(
            close_item(Some(Outcome::Kept), InStorage, Outcome::Archived),
            Err(MoveRuleError::AlreadyClosed)
        );
    }

    #[test]
    fn every_loan_must_be_closed_for_the_collection_to_be_complete() {
        let item = |d: &str, on_loan, outcome| CalledIn {
            department: d.into(),
            on_loan,
            outcome,
        };
        let mut items = vec![
            item("R&D", false, Some(Outcome::Kept)),
            item("R&D", true, None),
            item("Finance", false, Some(Outcome::Archived)),
        ];
        assert!(!is_complete(&items));
        let p = progress(&items);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].department, "Finance");
        assert_eq!(
            (p[1].called_in, p[1].returned, p[1].kept, p[1].open),
            (2, 1, 1, 1)
        );
        items[1] = item("R&D", false, Some(Outcome::Destroyed));
        assert!(is_complete(&items));
        assert!(is_complete(&[]));
    }

    #[test]
    fn custody_changes_only_at_receipt_by_someone_else() {
        // Hand-over: only the state changes, and only for an approved request, once.
        assert_eq!(
            hand_over(true, false, CarrierState::InTransfer),
            Ok(CarrierState::InTransfer)
        );
        assert_eq!(
            hand_over(false, false, CarrierState::InTransfer),
            Err(MoveRuleError::NotReadyToHandOver)
        );
        assert_eq!(
            hand_over(true, true, CarrierState::InTransfer),
            Err(MoveRuleError::NotReadyToHandOver)
        );
        // Receipt before hand-over, by the sender or another account of theirs, by the wrong
        // custodian, twice: refused.
        let sender = (1, Some(10));
        assert_eq!(
            receive(None, false, (2, Some(20)), None, "B"),
            Err(MoveRuleError::NotHandedOver)
        );
        assert_eq!(
            receive(Some(sender), false, (1, Some(10)), None, "B"),
            Err(MoveRuleError::SelfReceipt)
        );
        assert_eq!(
            receive(Some(sender), false, (3, Some(10)), None, "B"),
            Err(MoveRuleError::SelfReceipt)
        );
        assert_eq!(
            receive(Some(sender), false, (2, Some(20)), Some(30), "B"),
            Err(MoveRuleError::WrongReceiver)
        );
        assert_eq!(
            receive(Some(sender), true, (2, Some(20)), None, "B"),
            Err(MoveRuleError::AlreadyReceived)
        );
        assert_eq!(
            receive(Some(sender), false, (2, Some(20)), Some(20), "B"),
            Ok(CustodyChange {
                state: CarrierState::InStorage,
                owner_unit: "B".into()
            })
        );
    }

    #[test]
    fn only_carriers_in_storage_move_and_a_window_ends_in_the_future() {
        assert!(check_movable(&[CarrierState::InStorage, CarrierState::InStorage]).is_ok());
        for s in [
            CarrierState::Out,
            CarrierState::Missing,
            CarrierState::InTransfer,
        ] {
            assert_eq!(
                check_movable(&[CarrierState::InStorage, s]),
                Err(MoveRuleError::CarrierUnavailable)
            );
        }
        assert!(check_window(1_001, 1_000).is_ok());
        assert_eq!(check_window(1_000, 1_000), Err(MoveRuleError::WindowInPast));
        assert_eq!(
            check_delivery(false, false),
            Err(MoveRuleError::NotHandedOver)
        );
        assert_eq!(
            check_delivery(true, true),
            Err(MoveRuleError::AlreadyReceived)
        );
        assert!(check_delivery(true, false).is_ok());
    }

    #[test]
    fn a_carrier_is_past_retention_the_day_after_its_date_until_archived() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        let until = Some(d("2026-12-31"));
        assert!(!past_retention(
            until,
            CarrierState::InStorage,
            d("2026-12-31")
        ));
        assert!(past_retention(
            until,
            CarrierState::InStorage,
            d("2027-01-01")
        ));
        assert!(past_retention(until, CarrierState::Out, d("2027-01-01")));
        assert!(!past_retention(
            until,
            CarrierState::Archived,
            d("2027-01-01")
        ));
        assert!(!past_retention(
            None,
            CarrierState::InStorage,
            d("2027-01-01")
        ));
    }

    #[test]
    fn a_collection_tells_each_holder_once_with_what_they_hold() {
        let (a, b) = (PersonId(4), PersonId(2));
        assert_eq!(
            holders_to_tell(&[Some(a), None, Some(b), Some(a)]),
            vec![(b, 1), (a, 2)]
        );
        assert!(holders_to_tell(&[None]).is_empty());
    }
}
