//! People on the register (涉密人员): category, clearance and decommissioning.

use serde::{Deserialize, Serialize};

use super::level::Level;
use super::role::{EXCLUSIVE_ROLES, Role};
use super::time::Date;

/// The category of a person with access to classified carriers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 核心涉密人员: may hold up to Top Secret.
    Core,
    /// 重要涉密人员: may hold up to Secret.
    Important,
    /// 一般涉密人员: may hold up to Confidential.
    General,
}

impl Category {
    /// The highest level a person of this category may hold.
    pub fn max_level(self) -> Level {
        match self {
            Category::Core => Level::TopSecret,
            Category::Important => Level::Secret,
            Category::General => Level::Confidential,
        }
    }

    /// Whether this category may hold a carrier of `level`.
    pub fn may_hold(self, level: Level) -> bool {
        level <= self.max_level()
    }

    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Core => "core",
            Category::Important => "important",
            Category::General => "general",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<Category> {
        [Category::Core, Category::Important, Category::General]
            .into_iter()
            .find(|c| c.as_str() == name)
    }
}

/// Where a person stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    /// In post: the default for a new person.
    Active,
    /// Leaving the post or the unit (离岗/离职): returning what they hold (清退) before the
    /// departure is approved. May not sign out carriers.
    Leaving,
    /// Has left the post; a decommissioning period (脱密期) may be running.
    Departed,
}

impl PersonStatus {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonStatus::Active => "active",
            PersonStatus::Leaving => "leaving",
            PersonStatus::Departed => "departed",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<PersonStatus> {
        match name {
            "active" => Some(PersonStatus::Active),
            "leaving" => Some(PersonStatus::Leaving),
            "departed" => Some(PersonStatus::Departed),
            _ => None,
        }
    }
}

/// Why a change of a person's status is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StatusChangeError {
    /// The person is already leaving.
    #[error("the person is already leaving")]
    AlreadyLeaving,
    /// The person has already departed.
    #[error("the person has already departed")]
    AlreadyDeparted,
    /// The person still holds carriers: every one must be returned and verified (清退) first.
    #[error("the person still holds {held} carrier(s); they must be returned first")]
    CarriersOutstanding {
        /// How many carriers name the person as holder.
        held: u32,
    },
    /// The decommissioning period would end beyond the representable calendar.
    #[error("the decommissioning period ends beyond year 9999")]
    PeriodOutOfRange,
    /// The step needs a person who has started leaving (离岗/离职) first.
    #[error("the person has not started leaving")]
    NotLeaving,
    /// The departure needs the clearance certificate (清退) first.
    #[error("the return of every carrier (清退) has not been certified")]
    NotCleared,
    /// The clearance (清退) was already certified.
    #[error("the return of every carrier (清退) is already certified")]
    AlreadyCleared,
    /// The officer asked for a period shorter than the site's minimum for the category.
    #[error("the decommissioning period is shorter than the minimum for the category")]
    PeriodTooShort,
}

impl StatusChangeError {
    /// The machine-readable code the API answers with.
    pub fn code(self) -> &'static str {
        match self {
            StatusChangeError::AlreadyLeaving => "already_leaving",
            StatusChangeError::AlreadyDeparted => "already_departed",
            StatusChangeError::CarriersOutstanding { .. } => "carriers_outstanding",
            StatusChangeError::PeriodOutOfRange => "period_out_of_range",
            StatusChangeError::NotLeaving => "not_leaving",
            StatusChangeError::NotCleared => "not_cleared",
            StatusChangeError::AlreadyCleared => "already_cleared",
            StatusChangeError::PeriodTooShort => "period_too_short",
        }
    }
}

/// Start leaving (离岗/离职): only an active person can; the new status is `Leaving`.
pub fn leave(status: PersonStatus) -> Result<PersonStatus, StatusChangeError> {
    match status {
        PersonStatus::Active => Ok(PersonStatus::Leaving),
        PersonStatus::Leaving => Err(StatusChangeError::AlreadyLeaving),
        PersonStatus::Departed => Err(StatusChangeError::AlreadyDeparted),
    }
}

/// Certify the return of every carrier (清退): only for a leaving person, once, and only
/// while no carrier names them as holder (`carriers_held`).
pub fn clear(
    status: PersonStatus,
    already_cleared: bool,
    carriers_held: u32,
) -> Result<(), StatusChangeError> {
    match status {
        PersonStatus::Active => return Err(StatusChangeError::NotLeaving),
        PersonStatus::Departed => return Err(StatusChangeError::AlreadyDeparted),
        PersonStatus::Leaving => {}
    }
    if already_cleared {
        return Err(StatusChangeError::AlreadyCleared);
    }
    if carriers_held > 0 {
        return Err(StatusChangeError::CarriersOutstanding {
            held: carriers_held,
        });
    }
    Ok(())
}

/// How long a decommissioning period (脱密期) lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A number of months from the approval of the departure.
    Months(u32),
    /// Lifelong restrictions (on travel abroad): no end date.
    Lifelong,
}

/// The decommissioning period a departure starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decommissioning {
    /// Its length.
    pub period: Period,
    /// Its last day; `None` for a lifelong period.
    pub ends_on: Option<Date>,
}

/// Approve a departure on `approved_on` (the sequence: start leaving → return every carrier →
/// clearance certificate (清退) → departure). Refused unless the person is leaving and
/// cleared, and (checked again) while any carrier names them as holder. `requested` is the
/// officer's choice of period, at least the site's minimum for the category (longer, up to
/// lifelong, is allowed); none = the minimum.
pub fn depart(
    status: PersonStatus,
    cleared: bool,
    category: Category,
    carriers_held: u32,
    approved_on: Date,
    policy: &DecommissioningPolicy,
    requested: Option<Period>,
) -> Result<Decommissioning, StatusChangeError> {
    match status {
        PersonStatus::Departed => return Err(StatusChangeError::AlreadyDeparted),
        PersonStatus::Active => return Err(StatusChangeError::NotLeaving),
        PersonStatus::Leaving => {}
    }
    if carriers_held > 0 {
        return Err(StatusChangeError::CarriersOutstanding {
            held: carriers_held,
        });
    }
    if !cleared {
        return Err(StatusChangeError::NotCleared);
    }
    let period = policy.period(category, requested)?;
    let ends_on = match period {
        Period::Months(months) => Some(
            approved_on
                .add_months(months)
                .ok_or(StatusChangeError::PeriodOutOfRange)?,
        ),
        Period::Lifelong => None,
    };
    Ok(Decommissioning { period, ends_on })
}

/// A range of months, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRange {
    /// Shortest period.
    pub min: u32,
    /// Longest period the regulation names (an officer may still set a longer one).
    pub max: u32,
}

/// The decommissioning period (脱密期) per category, in months: the site configures a range
/// per category (today's rules: core 36–60, important 24–36, general 12–24; older guidance
/// 6–36), and a departure gets the minimum unless the officer sets more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecommissioningPolicy {
    /// Core staff.
    pub core: MonthRange,
    /// Important staff.
    pub important: MonthRange,
    /// General staff.
    pub general: MonthRange,
}

/// The longest period in months an officer may set short of lifelong (100 years).
pub const MAX_PERIOD_MONTHS: u32 = 1200;

impl DecommissioningPolicy {
    /// The range for a category.
    pub fn range(&self, category: Category) -> MonthRange {
        match category {
            Category::Core => self.core,
            Category::Important => self.important,
            Category::General => self.general,
        }
    }

    /// The period for a category: the requested one if it is at least the minimum, else
    /// the minimum. A request below the minimum (or above [`MAX_PERIOD_MONTHS`]) is refused.
    pub fn period(
        &self,
        category: Category,
        requested: Option<Period>,
    ) -> Result<Period, StatusChangeError> {
        let range = self.range(category);
        match requested {
            None => Ok(Period::Months(range.min)),
            Some(Period::Lifelong) => Ok(Period::Lifelong),
            Some(Period::Months(m)) if m < range.min => Err(StatusChangeError::PeriodTooShort),
            Some(Period::Months(m)) if m > MAX_PERIOD_MONTHS => {
                Err(StatusChangeError::PeriodOutOfRange)
            }
            Some(p) => Ok(p),
        }
    }

    /// The last day of the default period, counted from the approval of the departure.
    pub fn ends_on(&self, category: Category, departure_approved: Date) -> Option<Date> {
        departure_approved.add_months(self.range(category).min)
    }
}

/// The highest level a person is cleared for: the officer's clearance, at most the category's
/// level; nothing once departed.
pub fn effective_clearance(
    status: PersonStatus,
    category: Category,
    clearance: Option<Level>,
) -> Option<Level> {
    if status == PersonStatus::Departed {
        return None;
    }
    let max = category.max_level();
    Some(clearance.map_or(max, |c| c.min(max)))
}

/// A level from its code (`TS`, `S`, `C`).
pub fn level_of_code(code: &str) -> Option<Level> {
    match code {
        "TS" => Some(Level::TopSecret),
        "S" => Some(Level::Secret),
        "C" => Some(Level::Confidential),
        _ => None,
    }
}

/// Whether a person may sign out carriers on `today` as far as training and commitment go:
/// both must exist, and the training must still be valid on `today`.
pub fn is_certified(
    training_valid_until: Option<Date>,
    commitment_signed_on: Option<Date>,
    today: Date,
) -> bool {
    matches!(training_valid_until, Some(until) if until >= today)
        && commitment_signed_on.is_some_and(|signed| signed <= today)
}

/// The last day a commitment signed on `signed_on` holds, when the site makes commitments
/// expire (`valid_months` > 0); `None` = it does not expire.
pub fn commitment_expires_on(signed_on: Option<Date>, valid_months: u32) -> Option<Date> {
    if valid_months == 0 {
        return None;
    }
    signed_on.and_then(|d| d.add_months(valid_months))
}

/// What a reminder to the officer is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// The training certificate runs out soon (re-examination due).
    TrainingExpiring,
    /// The confidentiality commitment runs out soon.
    CommitmentExpiring,
    /// A departed person's decommissioning period (脱密期) ends soon.
    DecommissioningEnding,
}

/// A reminder: what, and the last day it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reminder {
    /// What.
    pub kind: ReminderKind,
    /// The last valid day (training, commitment) or the period's last day.
    pub due_on: Date,
    /// Days from today to `due_on` (0 = today).
    pub days_left: i64,
}

/// The dates of a person the reminders look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonDates {
    /// Status.
    pub status: PersonStatus,
    /// Last valid day of the training.
    pub training_valid_until: Option<Date>,
    /// Last valid day of the commitment (see [`commitment_expires_on`]).
    pub commitment_expires_on: Option<Date>,
    /// Last day of the decommissioning period.
    pub decommissioning_ends_on: Option<Date>,
}

/// The reminder windows, in days before the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReminderWindows {
    /// Before a training or commitment runs out.
    pub certificate_days: u32,
    /// Before a decommissioning period ends.
    pub decommissioning_days: u32,
}

/// The reminders due on `today`: a training or commitment of a person in post running out
/// within the window (still valid today), and a departed person's decommissioning period
/// ending within its window. Something already past is not a reminder (expired people are
/// refused at issue and, while holding carriers, alerted: [`expired_while_holding`]).
pub fn reminders(p: &PersonDates, today: Date, windows: &ReminderWindows) -> Vec<Reminder> {
    let within = |due: Date, window: u32| {
        let days_left = today.days_until(due);
        (0..=i64::from(window))
            .contains(&days_left)
            .then_some(days_left)
    };
    let mut out = Vec::new();
    let mut push = |kind, due: Option<Date>, window| {
        if let Some(due_on) = due
            && let Some(days_left) = within(due_on, window)
        {
            out.push(Reminder {
                kind,
                due_on,
                days_left,
            });
        }
    };
    if p.status == PersonStatus::Departed {
        push(
            ReminderKind::DecommissioningEnding,
            p.decommissioning_ends_on,
            windows.decommissioning_days,
        );
    } else {
        push(
            ReminderKind::TrainingExpiring,
            p.training_valid_until,
            windows.certificate_days,
        );
        push(
            ReminderKind::CommitmentExpiring,
            p.commitment_expires_on,
            windows.certificate_days,
        );
    }
    out
}

/// The last day a person's training and commitment both still hold: the earlier of the
/// training's last valid day and the commitment's ([`commitment_expires_on`]; a commitment that
/// does not expire does not bound it); `None` when no training is recorded (never certified).
///
/// This is what "expired" means for a person in post, in one place: past this day they are
/// alerted while holding carriers ([`expired_while_holding`]) and their badge no longer lets
/// anything leave through a gate (`domain::gate::permit_until_ms`, on the server and in the
/// gate policy alike).
pub fn certified_through(
    training_valid_until: Option<Date>,
    commitment_expires_on: Option<Date>,
) -> Option<Date> {
    let training = training_valid_until?;
    Some(commitment_expires_on.map_or(training, |c| c.min(training)))
}

/// A person's certificates as the register holds them (what [`certified_through`] needs
/// besides the site's commitment validity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Certificates {
    /// Last valid day of the training.
    pub training_valid_until: Option<Date>,
    /// Day the confidentiality commitment was signed.
    pub commitment_signed_on: Option<Date>,
}

impl Certificates {
    /// The last day these certificates hold when commitments last `commitment_valid_months`
    /// (0 = they do not expire): [`certified_through`].
    pub fn valid_through(&self, commitment_valid_months: u32) -> Option<Date> {
        certified_through(
            self.training_valid_until,
            commitment_expires_on(self.commitment_signed_on, commitment_valid_months),
        )
    }
}

/// Whether a person holding `carriers_held` carriers has a training or commitment that has
/// run out (or was never recorded) on `today`: the `training_expired_holding` alert.
pub fn expired_while_holding(p: &PersonDates, carriers_held: u32, today: Date) -> bool {
    let certified = certified_through(p.training_valid_until, p.commitment_expires_on)
        .is_some_and(|d| d >= today);
    carriers_held > 0 && !certified
}

/// Whether the decommissioning period is running on `today`.
pub fn in_decommissioning(
    status: PersonStatus,
    ends_on: Option<Date>,
    lifelong: bool,
    today: Date,
) -> bool {
    status == PersonStatus::Departed && (lifelong || ends_on.is_some_and(|d| d >= today))
}

/// Where a trip abroad stands on a day: the register of who is abroad when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TripPhase {
    /// It starts after that day.
    Upcoming,
    /// The traveller is abroad that day (first and last days included).
    Abroad,
    /// It ended before that day.
    Back,
}

impl TripPhase {
    /// The name used on pages (`data-phase`).
    pub fn as_str(self) -> &'static str {
        match self {
            TripPhase::Upcoming => "upcoming",
            TripPhase::Abroad => "abroad",
            TripPhase::Back => "back",
        }
    }
}

/// Where a trip from `from` to `until` (both days abroad) stands on `today`.
pub fn trip_phase(from: Date, until: Date, today: Date) -> TripPhase {
    if today < from {
        TripPhase::Upcoming
    } else if today <= until {
        TripPhase::Abroad
    } else {
        TripPhase::Back
    }
}

/// Why a travel request (出境审批) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TravelError {
    /// The return is before the departure.
    #[error("the travel ends before it starts")]
    EndsBeforeStart,
    /// A departed person whose decommissioning period is over is no longer restricted.
    #[error("the person is no longer restricted; no approval is needed")]
    NotRestricted,
}

impl TravelError {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            TravelError::EndsBeforeStart => "ends_before_start",
            TravelError::NotRestricted => "not_restricted",
        }
    }
}

/// What a travel request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TravelTerms {
    /// Approvals by different officers: two for core personnel, one otherwise.
    pub approvals_needed: u8,
    /// The trip overlaps the person's decommissioning period (marked on the request).
    pub during_decommissioning: bool,
}

/// The terms of travel abroad from `from` to `until` (inclusive) for a person: classified
/// people (in post or leaving) and departed people in their decommissioning period need an
/// approved request; core personnel need two approvals.
pub fn travel_terms(
    status: PersonStatus,
    category: Category,
    decommissioning_ends_on: Option<Date>,
    lifelong: bool,
    from: Date,
    until: Date,
) -> Result<TravelTerms, TravelError> {
    if until < from {
        return Err(TravelError::EndsBeforeStart);
    }
    let during_decommissioning = status == PersonStatus::Departed
        && (lifelong || decommissioning_ends_on.is_some_and(|end| end >= from));
    if status == PersonStatus::Departed && !during_decommissioning {
        return Err(TravelError::NotRestricted);
    }
    Ok(TravelTerms {
        approvals_needed: if category == Category::Core { 2 } else { 1 },
        during_decommissioning,
    })
}

/// Why a person may not hold an account's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DutyError {
    /// An account with admin, security officer or auditor must belong to a person.
    #[error("an account with a privileged role must be linked to a person")]
    PersonRequired,
    /// The person already holds another of admin / security officer / auditor through
    /// another account.
    #[error("the person already holds {held} through another account; {wanted} excludes it")]
    PersonHoldsExclusive {
        /// The role the person already holds.
        held: Role,
        /// The role asked for.
        wanted: Role,
    },
}

impl DutyError {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            DutyError::PersonRequired => "person_required",
            DutyError::PersonHoldsExclusive { .. } => "person_roles_exclusive",
        }
    }
}

/// Separation of duties per person, not per account (监管分离): an account holding any of
/// admin / security officer / auditor must be linked to a person (`linked`), and across all of
/// that person's accounts (`held_elsewhere`: the roles of their other accounts) at most one of
/// the three appears. (Within one account the rule is [`super::role::check_roles`].)
pub fn check_person_duties(
    roles: &[Role],
    linked: bool,
    held_elsewhere: &[Role],
) -> Result<(), DutyError> {
    let privileged = EXCLUSIVE_ROLES.into_iter().filter(|r| roles.contains(r));
    for wanted in privileged {
        if !linked {
            return Err(DutyError::PersonRequired);
        }
        if let Some(held) = EXCLUSIVE_ROLES
            .into_iter()
            .find(|r| *r != wanted && held_elsewhere.contains(r))
        {
            return Err(DutyError::PersonHoldsExclusive { held, wanted });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn category_max_levels_follow_the_regulation() {
        assert_eq!(Category::Core.max_level(), Level::TopSecret);
        assert_eq!(Category::Important.max_level(), Level::Secret);
        assert_eq!(Category::General.max_level(), Level::Confidential);
        assert!(Category::Important.may_hold(Level::Confidential));
        assert!(!Category::Important.may_hold(Level::TopSecret));
        assert!(!Category::General.may_hold(Level::Secret));
    }

    #[test]
    fn category_and_status_names_round_trip() {
        for c in [Category::Core, Category::Important, Category::General] {
            assert_eq!(Category::from_name(c.as_str()), Some(c));
        }
        for s in [
            PersonStatus::Active,
            PersonStatus::Leaving,
            PersonStatus::Departed,
        ] {
            assert_eq!(PersonStatus::from_name(s.as_str()), Some(s));
        }
        assert_eq!(Category::from_name("Core"), None);
    }

    const POLICY: DecommissioningPolicy = DecommissioningPolicy {
        core: MonthRange { min: 36, max: 60 },
        important: MonthRange { min: 24, max: 36 },
        general: MonthRange { min: 6, max: 24 },
    };

    #[test]
    fn decommissioning_lengths_are_months_from_the_configured_ranges() {
        let approved = date("2024-02-29");
        assert_eq!(
            POLICY.ends_on(Category::Core, approved),
            Some(date("2027-02-28"))
        );
        assert_eq!(
            POLICY.ends_on(Category::Important, approved),
            Some(date("2026-02-28"))
        );
        // Older guidance: six months, not a whole year.
        assert_eq!(
            POLICY.ends_on(Category::General, approved),
            Some(date("2024-08-29"))
        );
        assert_eq!(date("2025-01-31").add_months(1), Some(date("2025-02-28")));
        assert_eq!(date("2025-11-30").add_months(3), Some(date("2026-02-28")));
        assert_eq!(date("9999-06-01").add_months(7), None);
        // An officer may set more (beyond the range's top too), never less, or lifelong.
        assert_eq!(
            POLICY.period(Category::Core, Some(Period::Months(72))),
            Ok(Period::Months(72))
        );
        assert_eq!(
            POLICY.period(Category::Core, Some(Period::Months(35))),
            Err(StatusChangeError::PeriodTooShort)
        );
        assert_eq!(
            POLICY.period(Category::General, Some(Period::Lifelong)),
            Ok(Period::Lifelong)
        );
        assert_eq!(
            POLICY.period(
                Category::General,
                Some(Period::Months(MAX_PERIOD_MONTHS + 1))
            ),
            Err(StatusChangeError::PeriodOutOfRange)
        );
    }

    #[test]
    fn only_an_active_person_can_start_leaving() {
        assert_eq!(leave(PersonStatus::Active), Ok(PersonStatus::Leaving));
        assert_eq!(
            leave(PersonStatus::Leaving),
            Err(StatusChangeError::AlreadyLeaving)
        );
        assert_eq!(
            leave(PersonStatus::Departed),
            Err(StatusChangeError::AlreadyDeparted)
        );
    }

    #[test]
    fn clearance_needs_a_leaving_person_holding_nothing() {
        assert_eq!(clear(PersonStatus::Leaving, false, 0), Ok(()));
        assert_eq!(
            clear(PersonStatus::Active, false, 0),
            Err(StatusChangeError::NotLeaving)
        );
        assert_eq!(
            clear(PersonStatus::Leaving, false, 2),
            Err(StatusChangeError::CarriersOutstanding { held: 2 })
        );
        assert_eq!(
            clear(PersonStatus::Leaving, true, 0),
            Err(StatusChangeError::AlreadyCleared)
        );
        assert_eq!(
            clear(PersonStatus::Departed, true, 0),
            Err(StatusChangeError::AlreadyDeparted)
        );
    }

    #[test]
    fn departure_follows_leaving_and_clearance_and_starts_the_period() {
        let approved = date("2025-03-10");
        let go = |status, cleared, held, requested| {
            depart(
                status,
                cleared,
                Category::Important,
                held,
                approved,
                &POLICY,
                requested,
            )
        };
        assert_eq!(
            go(PersonStatus::Leaving, true, 0, None),
            Ok(Decommissioning {
                period: Period::Months(24),
                ends_on: Some(date("2027-03-10"))
            })
        );
        assert_eq!(
            go(PersonStatus::Active, true, 0, None),
            Err(StatusChangeError::NotLeaving)
        );
        assert_eq!(
            go(PersonStatus::Leaving, false, 0, None),
            Err(StatusChangeError::NotCleared)
        );
        let refused = go(PersonStatus::Leaving, true, 1, None).unwrap_err();
        assert_eq!(refused, StatusChangeError::CarriersOutstanding { held: 1 });
        assert_eq!(refused.code(), "carriers_outstanding");
        assert_eq!(
            go(PersonStatus::Departed, true, 0, None),
            Err(StatusChangeError::AlreadyDeparted)
        );
        assert_eq!(
            go(PersonStatus::Leaving, true, 0, Some(Period::Lifelong)),
            Ok(Decommissioning {
                period: Period::Lifelong,
                ends_on: None
            })
        );
        assert_eq!(
            go(PersonStatus::Leaving, true, 0, Some(Period::Months(30))),
            Ok(Decommissioning {
                period: Period::Months(30),
                ends_on: Some(date("2027-09-10"))
            })
        );
        assert_eq!(
            depart(
                PersonStatus::Leaving,
                true,
                Category::Core,
                0,
                date("9998-01-01"),
                &POLICY,
                None
            ),
            Err(StatusChangeError::PeriodOutOfRange)
        );
    }

    const WINDOWS: ReminderWindows = ReminderWindows {
        certificate_days: 30,
        decommissioning_days: 60,
    };

    fn dates(status: PersonStatus, training: &str, decom: Option<&str>) -> PersonDates {
        PersonDates {
            status,
            training_valid_until: Some(date(training)),
            commitment_expires_on: None,
            decommissioning_ends_on: decom.map(date),
        }
    }

    #[test]
    fn reminders_fall_inside_their_windows_only() {
        let today = date("2025-06-01");
        let kinds = |p: &PersonDates| -> Vec<(ReminderKind, i64)> {
            reminders(p, today, &WINDOWS)
                .into_iter()
                .map(|r| (r.kind, r.days_left))
                .collect()
        };
        let active = |training| dates(PersonStatus::Active, training, None);
        assert_eq!(
            kinds(&active("2025-07-01")),
            [(ReminderKind::TrainingExpiring, 30)]
        );
        assert_eq!(
            kinds(&active("2025-06-01")),
            [(ReminderKind::TrainingExpiring, 0)]
        );
        assert!(kinds(&active("2025-07-02")).is_empty(), "31 days out");
        assert!(kinds(&active("2025-05-31")).is_empty(), "already expired");
        let mut committed = active("2030-01-01");
        committed.commitment_expires_on = commitment_expires_on(Some(date("2020-06-15")), 60);
        assert_eq!(kinds(&committed), [(ReminderKind::CommitmentExpiring, 14)]);
        assert_eq!(commitment_expires_on(Some(date("2020-06-15")), 0), None);
        let departed = dates(PersonStatus::Departed, "2020-01-01", Some("2025-07-31"));
        assert_eq!(
            kinds(&departed),
            [(ReminderKind::DecommissioningEnding, 60)]
        );
        let later = dates(PersonStatus::Departed, "2025-06-10", Some("2025-08-01"));
        assert!(
            kinds(&later).is_empty(),
            "a departed person's training is not reminded"
        );
    }

    #[test]
    fn expired_training_or_commitment_while_holding_is_flagged() {
        let today = date("2025-06-01");
        let expired = dates(PersonStatus::Active, "2025-05-31", None);
        assert!(expired_while_holding(&expired, 1, today));
        assert!(!expired_while_holding(&expired, 0, today));
        let valid = dates(PersonStatus::Active, "2025-06-01", None);
        assert!(!expired_while_holding(&valid, 3, today));
        let mut lapsed = valid;
        lapsed.commitment_expires_on = Some(date("2025-05-01"));
        assert!(expired_while_holding(&lapsed, 1, today));
    }

    /// Certified through the earlier of the training's and the commitment's last day; never
    /// without a training; a commitment that does not expire bounds nothing.
    #[test]
    fn certification_ends_with_the_earlier_of_training_and_commitment() {
        let training = Some(date("2026-03-31"));
        assert_eq!(certified_through(training, None), training);
        assert_eq!(
            certified_through(training, Some(date("2026-01-15"))),
            Some(date("2026-01-15"))
        );
        assert_eq!(
            certified_through(training, Some(date("2027-01-01"))),
            training
        );
        assert_eq!(certified_through(None, Some(date("2027-01-01"))), None);
        let certs = Certificates {
            training_valid_until: training,
            commitment_signed_on: Some(date("2021-01-10")),
        };
        assert_eq!(
            certs.valid_through(0),
            training,
            "commitments do not expire"
        );
        assert_eq!(certs.valid_through(60), Some(date("2026-01-10")));
        assert_eq!(Certificates::default().valid_through(60), None);
    }

    #[test]
    fn a_trip_is_upcoming_abroad_from_its_first_to_its_last_day_then_back() {
        let (from, until) = (date("2026-03-01"), date("2026-03-10"));
        let phase = |d| trip_phase(from, until, date(d));
        assert_eq!(phase("2026-02-28"), TripPhase::Upcoming);
        assert_eq!(phase("2026-03-01"), TripPhase::Abroad);
        assert_eq!(phase("2026-03-10"), TripPhase::Abroad);
        assert_eq!(phase("2026-03-11"), TripPhase::Back);
    }

    #[test]
    fn duties_are_kept_apart_per_person() {
        use Role::*;
        assert_eq!(check_person_duties(&[Custodian, Guard], false, &[]), Ok(()));
        assert_eq!(
            check_person_duties(&[SecurityOfficer], false, &[]),
            Err(DutyError::PersonRequired)
        );
        assert_eq!(check_person_duties(&[Admin], true, &[Custodian]), Ok(()));
        assert_eq!(check_person_duties(&[Admin], true, &[Admin]), Ok(()));
        let refused = check_person_duties(&[Auditor, Guard], true, &[SecurityOfficer]);
        assert_eq!(
            refused,
            Err(DutyError::PersonHoldsExclusive {
                held: SecurityOfficer,
                wanted: Auditor
            })
        );
        assert_eq!(refused.unwrap_err().code(), "person_roles_exclusive");
        assert_eq!(check_person_duties(&[Custodian], true, &[Admin]), Ok(()));
    }

    #[test]
    fn travel_needs_approval_and_is_marked_during_decommissioning() {
        let (from, until) = (date("2026-01-10"), date("2026-01-20"));
        let terms = |status, category, ends: Option<&str>, lifelong| {
            travel_terms(status, category, ends.map(date), lifelong, from, until)
        };
        assert_eq!(
            terms(PersonStatus::Active, Category::Core, None, false),
            Ok(TravelTerms {
                approvals_needed: 2,
                during_decommissioning: false
            })
        );
        assert_eq!(
            terms(
                PersonStatus::Departed,
                Category::General,
                Some("2026-01-10"),
                false
            ),
            Ok(TravelTerms {
                approvals_needed: 1,
                during_decommissioning: true
            })
        );
        assert_eq!(
            terms(PersonStatus::Departed, Category::Important, None, true)
                .map(|t| t.during_decommissioning),
            Ok(true)
        );
        assert_eq!(
            terms(
                PersonStatus::Departed,
                Category::General,
                Some("2026-01-09"),
                false
            ),
            Err(TravelError::NotRestricted)
        );
        assert_eq!(
            travel_terms(
                PersonStatus::Active,
                Category::General,
                None,
                false,
                until,
                from
            ),
            Err(TravelError::EndsBeforeStart)
        );
        assert!(in_decommissioning(
            PersonStatus::Departed,
            Some(from),
            false,
            from
        ));
        assert!(!in_decommissioning(
            PersonStatus::Departed,
            Some(from),
            false,
            until
        ));
    }

    #[test]
    fn certification_needs_valid_training_and_a_signed_commitment() {
        let today = date("2025-06-01");
        assert!(is_certified(
            Some(date("2025-06-01")),
            Some(date("2020-01-01")),
            today
        ));
        assert!(!is_certified(
            Some(date("2025-05-31")),
            Some(date("2020-01-01")),
            today
        ));
        assert!(!is_certified(None, Some(date("2020-01-01")), today));
        assert!(!is_certified(Some(date("2030-01-01")), None, today));
        assert!(!is_certified(
            Some(date("2030-01-01")),
            Some(date("2025-06-02")),
            today
        ));
    }
}
