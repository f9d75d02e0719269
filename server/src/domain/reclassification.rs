//! Reclassification and declassification (变更密级/解密).
//!
//! A request of the approval model names one carrier and its new level, or `declassified`.
//! Two approvers when TS is involved on either side (raising to TS or lowering from TS).
//! Carried out, the level changes at once (the gate policy and cabinet rules read the
//! carrier's level, so they follow with the next policy and the next judgement); a declassified
//! carrier leaves the secrecy register (state `declassified`, no longer guarded at the gates)
//! but keeps its level on record and its whole history.

use serde::{Deserialize, Serialize};

use super::carrier::CarrierState;
use super::level::Level;

/// The level asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Target {
    /// Top Secret.
    #[serde(rename = "TS")]
    TopSecret,
    /// Secret.
    #[serde(rename = "S")]
    Secret,
    /// Confidential.
    #[serde(rename = "C")]
    Confidential,
    /// Off the secrecy register.
    #[serde(rename = "declassified")]
    Declassified,
}

impl Target {
    /// The new level, unless declassified.
    pub fn level(self) -> Option<Level> {
        match self {
            Target::TopSecret => Some(Level::TopSecret),
            Target::Secret => Some(Level::Secret),
            Target::Confidential => Some(Level::Confidential),
            Target::Declassified => None,
        }
    }

    /// The API name (`TS`, `S`, `C`, `declassified`).
    pub fn as_str(self) -> &'static str {
        match self {
            Target::TopSecret => "TS",
            Target::Secret => "S",
            Target::Confidential => "C",
            Target::Declassified => "declassified",
        }
    }

    /// Parse an API name.
    pub fn from_name(name: &str) -> Option<Target> {
        [
            Target::TopSecret,
            Target::Secret,
            Target::Confidential,
            Target::Declassified,
        ]
        .into_iter()
        .find(|t| t.as_str() == name)
    }
}

/// Why a reclassification is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReclassifyError {
    /// The carrier is not in storage (a carrier out, missing, destroyed, already declassified,
    /// handed over or dispatched is not relabelled).
    #[error("the carrier is {0}; only a carrier in storage is reclassified")]
    NotInStorage(&'static str),
    /// The new level is the current one.
    #[error("the carrier is already at that level")]
    SameLevel,
}

impl ReclassifyError {
    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ReclassifyError::NotInStorage(_) => "carrier_unavailable",
            ReclassifyError::SameLevel => "same_level",
        }
    }
}

/// Check a request (and, again, the carrying out): the carrier in storage and the target
/// different from its level.
pub fn check(state: CarrierState, level: Level, target: Target) -> Result<(), ReclassifyError> {
    if state != CarrierState::InStorage {
        return Err(ReclassifyError::NotInStorage(state.as_str()));
    }
    if target.level() == Some(level) {
        return Err(ReclassifyError::SameLevel);
    }
    Ok(())
}

/// Whether the request needs two approvers: TS before or after.
pub fn is_top_secret(level: Level, target: Target) -> bool {
    level == Level::TopSecret || target == Target::TopSecret
}

/// What carrying it out writes: the new level (unchanged when declassified) and state.
pub fn outcome(level: Level, target: Target) -> (Level, CarrierState) {
    match target.level() {
        Some(new) => (new, CarrierState::InStorage),
        None => (level, CarrierState::Declassified),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stored_carrier_changes_level_and_never_to_its_own() {
        assert_eq!(
            check(CarrierState::InStorage, Level::Secret, Target::Confidential),
            Ok(())
        );
        assert_eq!(
            check(CarrierState::InStorage, Level::Secret, Target::Declassified),
            Ok(())
        );
        assert_eq!(
            check(CarrierState::InStorage, Level::Secret, Target::Secret),
            Err(ReclassifyError::SameLevel)
        );
        for state in [
            CarrierState::Out,
            CarrierState::Destroyed,
            CarrierState::Declassified,
        ] {
            assert_eq!(
                check(state, Level::Secret, Target::Confidential)
                    .unwrap_err()
                    .code(),
                "carrier_unavailable"
            );
        }
    }

    #[test]
    fn top_secret_on_either_side_needs_two() {
        assert!(is_top_secret(Level::TopSecret, Target::Secret));
        assert!(is_top_secret(Level::Secret, Target::TopSecret));
        assert!(is_top_secret(Level::TopSecret, Target::Declassified));
        assert!(!is_top_secret(Level::Secret, Target::Confidential));
    }

    #[test]
    fn declassified_keeps_its_level_on_record() {
        assert_eq!(
            outcome(Level::Secret, Target::Confidential),
            (Level::Confidential, CarrierState::InStorage)
        );
        assert_eq!(
            outcome(Level::Secret, Target::Declassified),
            (Level::Secret, CarrierState::Declassified)
        );
        for t in ["TS", "S", "C", "declassified"] {
            assert_eq!(Target::from_name(t).map(Target::as_str), Some(t));
        }
    }
}
