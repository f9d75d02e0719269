//! The secrecy period (保密期限) of a carrier: how many years its content stays secret.
//!
//! The law sets a longest period per level unless a special rule says otherwise (保守国家秘密法:
//! 绝密级不超过三十年，机密级不超过二十年，秘密级不超过十年), and a carrier whose period was not
//! marked has exactly that longest period ([`Level::default_secrecy_years`]). DOMAIN.md names no
//! "long-term" (长期) period, so a period here is always a whole number of years. The label
//! prints it as the period mark after the level: 机密★10年.
//!
//! A carrier keeps the period it was registered (or corrected) with; when it is reclassified to
//! a lower level whose longest period is shorter, [`effective_years`] caps what is shown and
//! printed at the new level's longest period, so a label never claims more than the law allows.

use super::level::Level;

/// The longest secrecy period of `level`, in years: TS 30, S 20, C 10.
pub fn max_years(level: Level) -> u32 {
    level.default_secrecy_years()
}

/// Why a secrecy period is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecrecyPeriodError {
    /// Not between one year and the level's longest period.
    #[error("secrecy_years must be between 1 and {max} for this level")]
    OutOfRange {
        /// The level's longest period.
        max: u32,
    },
}

/// Check that `years` is a secrecy period a carrier of `level` may have: 1 to
/// [`max_years`] whole years.
pub fn check_years(level: Level, years: u32) -> Result<(), SecrecyPeriodError> {
    let max = max_years(level);
    if (1..=max).contains(&years) {
        Ok(())
    } else {
        Err(SecrecyPeriodError::OutOfRange { max })
    }
}

/// The period a carrier of `level` has: its own (`stored`, capped at the level's longest
/// period after a reclassification lowered it) or, when none was set, the level's default.
pub fn effective_years(level: Level, stored: Option<u32>) -> u32 {
    let max = max_years(level);
    stored.map_or(max, |years| years.clamp(1, max))
}

/// The period mark a label prints after the level name: `机密★10年`.
pub fn mark(level_name_zh: &str, years: u32) -> String {
    format!("{level_name_zh}★{years}年")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_one_year_up_to_the_levels_longest() {
        assert_eq!(check_years(Level::Secret, 10), Ok(()));
        assert_eq!(check_years(Level::Secret, 1), Ok(()));
        assert_eq!(check_years(Level::Secret, 20), Ok(()));
        assert_eq!(
            check_years(Level::Secret, 21),
            Err(SecrecyPeriodError::OutOfRange { max: 20 })
        );
        assert_eq!(
            check_years(Level::Confidential, 0),
            Err(SecrecyPeriodError::OutOfRange { max: 10 })
        );
        assert_eq!(
            check_years(Level::Confidential, 11),
            Err(SecrecyPeriodError::OutOfRange { max: 10 })
        );
        assert_eq!(check_years(Level::TopSecret, 30), Ok(()));
        assert_eq!(
            check_years(Level::TopSecret, 31),
            Err(SecrecyPeriodError::OutOfRange { max: 30 })
        );
    }

    #[test]
    fn an_unmarked_carrier_has_its_levels_longest_period() {
        assert_eq!(effective_years(Level::TopSecret, None), 30);
        assert_eq!(effective_years(Level::Secret, None), 20);
        assert_eq!(effective_years(Level::Confidential, None), 10);
        assert_eq!(effective_years(Level::Secret, Some(10)), 10);
    }

    #[test]
    fn a_lowered_level_caps_a_longer_period() {
        // Registered TS★25年, then reclassified to C: at most C's ten years.
        assert_eq!(effective_years(Level::Confidential, Some(25)), 10);
        assert_eq!(effective_years(Level::Confidential, Some(0)), 1);
    }

    #[test]
    fn the_mark_follows_the_level_name() {
        assert_eq!(mark("机密", 10), "机密★10年");
    }
}
