//! People on the register (涉密人员): category, clearance and decommissioning.

use serde::{Deserialize, Serialize};

use super::level::Level;
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
}

impl StatusChangeError {
    /// The machine-readable code the API answers with.
    pub fn code(self) -> &'static str {
        match self {
            StatusChangeError::AlreadyLeaving => "already_leaving",
            StatusChangeError::AlreadyDeparted => "already_departed",
            StatusChangeError::CarriersOutstanding { .. } => "carriers_outstanding",
            StatusChangeError::PeriodOutOfRange => "period_out_of_range",
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

/// Approve a departure on `approved_on`: refused while the person holds any carrier
/// (`carriers_held`, the carriers naming them as holder: 清退 must be verified first). An
/// active or leaving person may depart. Returns the last day of the decommissioning period
/// (脱密期), counted from the approval.
pub fn depart(
    status: PersonStatus,
    category: Category,
    carriers_held: u32,
    approved_on: Date,
    policy: &DecommissioningPolicy,
) -> Result<Date, StatusChangeError> {
    if status == PersonStatus::Departed {
        return Err(StatusChangeError::AlreadyDeparted);
    }
    if carriers_held > 0 {
        return Err(StatusChangeError::CarriersOutstanding {
            held: carriers_held,
        });
    }
    policy
        .ends_on(category, approved_on)
        .ok_or(StatusChangeError::PeriodOutOfRange)
}

/// Length of the decommissioning period (脱密期) per category, in whole years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecommissioningPolicy {
    /// Years for core staff.
    pub core_years: u32,
    /// Years for important staff.
    pub important_years: u32,
    /// Years for general staff.
    pub general_years: u32,
}

impl DecommissioningPolicy {
    /// Years for a category.
    pub fn years(&self, category: Category) -> u32 {
        match category {
            Category::Core => self.core_years,
            Category::Important => self.important_years,
            Category::General => self.general_years,
        }
    }

    /// The last day of the period, counted from the approval of the departure.
    pub fn ends_on(&self, category: Category, departure_approved: Date) -> Option<Date> {
        departure_approved.add_years(self.years(category))
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

    #[test]
    fn decommissioning_ends_after_the_category_years() {
        let policy = DecommissioningPolicy {
            core_years: 3,
            important_years: 2,
            general_years: 1,
        };
        let approved = date("2024-02-29");
        assert_eq!(
            policy.ends_on(Category::Core, approved),
            Some(date("2027-02-28"))
        );
        assert_eq!(
            policy.ends_on(Category::Important, approved),
            Some(date("2026-02-28"))
        );
        assert_eq!(
            policy.ends_on(Category::General, approved),
            Some(date("2025-02-28"))
        );
    }

    const POLICY: DecommissioningPolicy = DecommissioningPolicy {
        core_years: 3,
        important_years: 2,
        general_years: 1,
    };

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
    fn departure_waits_for_every_carrier_and_starts_the_period() {
        let approved = date("2025-03-10");
        for status in [PersonStatus::Active, PersonStatus::Leaving] {
            assert_eq!(
                depart(status, Category::Important, 0, approved, &POLICY),
                Ok(date("2027-03-10"))
            );
            let refused = depart(status, Category::Core, 2, approved, &POLICY).unwrap_err();
            assert_eq!(refused, StatusChangeError::CarriersOutstanding { held: 2 });
            assert_eq!(refused.code(), "carriers_outstanding");
        }
        assert_eq!(
            depart(PersonStatus::Leaving, Category::Core, 0, approved, &POLICY),
            Ok(date("2028-03-10"))
        );
        assert_eq!(
            depart(
                PersonStatus::Departed,
                Category::General,
                0,
                approved,
                &POLICY
            ),
            Err(StatusChangeError::AlreadyDeparted)
        );
        assert_eq!(
            depart(
                PersonStatus::Active,
                Category::Core,
                0,
                date("9998-01-01"),
                &POLICY
            ),
            Err(StatusChangeError::PeriodOutOfRange)
        );
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
