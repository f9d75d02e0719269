//! The site's one way of writing a date-time for people: pages (`web::datetime`) and CSV
//! files (`service::exports`) both call [`format`], so a time reads the same on a page and in
//! the spreadsheet made from it.
//!
//! A pure function: the zone (the server's `time_zone` setting) and the style are arguments.
//! The Chinese pages use [`Style::Numeric`] (`2026-03-01 16:05:09`), the English pages
//! [`Style::Named`] (`1 Mar 2026 16:05:09`); both in the site's zone, whole seconds.

use jiff::tz::TimeZone;

use crate::domain::time::Timestamp;

/// How a date-time is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `2026-03-01 16:05:09`: the Chinese pages, and every CSV (spreadsheets read it as a
    /// date-time in any locale, and it sorts as text).
    Numeric,
    /// `1 Mar 2026 16:05:09`: the English pages.
    Named,
}

/// The month names of [`Style::Named`].
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `at` in `zone`, written in `style`.
pub fn format(style: Style, zone: &TimeZone, at: Timestamp) -> String {
    let Ok(instant) = jiff::Timestamp::from_second(at.unix()) else {
        // Timestamps are years 1 to 9999, which jiff covers; keep the UTC text otherwise.
        return at.to_string();
    };
    let local = instant.to_zoned(zone.clone()).datetime();
    let (h, m, s) = (local.hour(), local.minute(), local.second());
    match style {
        Style::Numeric => format!(
            "{:04}-{:02}-{:02} {h:02}:{m:02}:{s:02}",
            local.year(),
            local.month(),
            local.day()
        ),
        Style::Named => {
            let month = MONTHS[usize::try_from(local.month() - 1).unwrap_or(0) % 12];
            format!(
                "{} {month} {:04} {h:02}:{m:02}:{s:02}",
                local.day(),
                local.year()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn both_styles_write_the_local_time_of_the_zone() {
        let beijing = TimeZone::get("Asia/Shanghai").unwrap();
        let t = at("2026-12-31T20:05:09Z");
        assert_eq!(
            format(Style::Numeric, &beijing, t),
            "2027-01-01 04:05:09",
            "eight hours ahead, into the next year"
        );
        assert_eq!(format(Style::Named, &beijing, t), "1 Jan 2027 04:05:09");
        assert_eq!(
            format(Style::Numeric, &TimeZone::UTC, t),
            "2026-12-31 20:05:09"
        );
    }
}
