//! Copies (复制): the rules of making new carriers from an original.
//!
//! A copy request names the original and how many copies; it is a request of the approval
//! model ([`super::approval`]): S and C need one officer's approval, TS two different
//! officers', and a TS carrier can never be copied without them (carrying out checks the
//! request is `approved`, which for TS means two approvals). Making the copies registers new
//! carriers at the original's level and kind, linked to what they were copied from (lineage:
//! `original_id`), with copy numbers continuing the series of the first original (the root of
//! the chain: copying a copy keeps the chain and the one series) and new control numbers
//! `{root control number}-{copy number}`.

use super::carrier::{CarrierState, ControlNo};
use super::level::Level;

/// The most copies one request may ask for.
pub const MAX_COPIES: u32 = 50;

/// What the copy rules know of the carrier to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// Its state.
    pub state: CarrierState,
    /// Its level.
    pub level: Level,
}

/// Why a copy request or the making of copies is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    /// Only a carrier on the register, in storage or out, can be copied.
    #[error("the carrier is {0} and cannot be copied")]
    NotCopyable(&'static str),
    /// The new control number would not be a valid one (the root's is too long).
    #[error("the copies' control numbers would be too long")]
    ControlNoTooLong,
}

impl CopyError {
    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CopyError::NotCopyable(_) => "carrier_unavailable",
            CopyError::ControlNoTooLong => "control_no_too_long",
        }
    }
}

/// Check a copy request: the original is on the register (in storage or out). Whether TS
/// needs two approvals is the approval model's ([`is_top_secret`]).
pub fn check_request(original: &Original) -> Result<(), CopyError> {
    match original.state {
        CarrierState::InStorage | CarrierState::Out => Ok(()),
        other => Err(CopyError::NotCopyable(other.as_str())),
    }
}

/// Whether a copy of `original` needs two approvers.
pub fn is_top_secret(original: &Original) -> bool {
    original.level == Level::TopSecret
}

/// One copy to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCopy {
    /// Its copy number in the root's series.
    pub copy_no: u32,
    /// Its control number.
    pub control_no: ControlNo,
}

/// Plan `count` copies in the series of the chain's root: `series` holds the copy numbers of
/// every carrier of that series (the root and all copies of copies; `None` for a carrier
/// registered without one, counted as 1). Numbers continue after the highest.
pub fn plan(
    root_control_no: &str,
    series: &[Option<u32>],
    count: u32,
) -> Result<Vec<PlannedCopy>, CopyError> {
    let highest = series.iter().map(|n| n.unwrap_or(1)).max().unwrap_or(1);
    (1..=count)
        .map(|i| {
            let copy_no = highest.saturating_add(i);
            let control_no = ControlNo::new(&format!("{root_control_no}-{copy_no}"))
                .map_err(|_| CopyError::ControlNoTooLong)?;
            Ok(PlannedCopy {
                copy_no,
                control_no,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_carriers_on_the_register_are_copied() {
        for state in [CarrierState::InStorage, CarrierState::Out] {
            assert_eq!(
                check_request(&Original {
                    state,
                    level: Level::Secret
                }),
                Ok(())
            );
        }
        for state in [
            CarrierState::Missing,
            CarrierState::Destroyed,
            CarrierState::Archived,
            CarrierState::Declassified,
        ] {
            let err = check_request(&Original {
                state,
                level: Level::Secret,
            })
            .unwrap_err();
            assert_eq!(err.code(), "carrier_unavailable");
        }
    }

    #[test]
    fn top_secret_copies_need_two_approvers() {
        let ts = Original {
            state: CarrierState::InStorage,
            level: Level::TopSecret,
        };
        assert!(is_top_secret(&ts));
        assert_eq!(
            super::super::approval::approvals_required(is_top_secret(&ts)),
            2
        );
        let s = Original {
            level: Level::Secret,
            ..ts
        };
        assert_eq!(
            super::super::approval::approvals_required(is_top_secret(&s)),
            1
        );
    }

    #[test]
    fn copy_numbers_continue_the_roots_series() {
        let first = plan("DOC-7", &[Some(1)], 2).unwrap();
        let numbers: Vec<_> = first
            .iter()
            .map(|c| (c.copy_no, c.control_no.as_str().to_owned()))
            .collect();
        assert_eq!(
            numbers,
            [(2, "DOC-7-2".to_owned()), (3, "DOC-7-3".to_owned())]
        );
        // Copying a copy keeps the chain: the series is the root's, so numbering continues
        // after every copy made so far (1, 2, 3 here), whichever one is copied.
        let again = plan("DOC-7", &[Some(1), Some(2), Some(3)], 1).unwrap();
        assert_eq!(again[0].copy_no, 4);
        assert_eq!(again[0].control_no.as_str(), "DOC-7-4");
        // A root registered without a copy number counts as copy 1.
        assert_eq!(plan("X", &[None], 1).unwrap()[0].copy_no, 2);
        // A series that starts elsewhere continues from its highest number.
        assert_eq!(plan("X", &[Some(5), None], 1).unwrap()[0].copy_no, 6);
    }

    #[test]
    fn a_control_number_that_would_grow_too_long_is_refused() {
        let long = "A".repeat(24);
        assert_eq!(plan(&long, &[Some(1)], 1), Err(CopyError::ControlNoTooLong));
    }
}
