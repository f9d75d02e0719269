//! Instants and calendar dates in UTC, without a clock.
//!
//! Times travel as RFC 3339 UTC strings (`2025-03-01T08:00:00Z`), dates as `YYYY-MM-DD`.
//! Calendar arithmetic uses Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms
//! (proleptic Gregorian). Reading the clock is the caller's business: the domain takes time as
//! an argument.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a time or date string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: expected {expected}")]
pub struct TimeParseError {
    what: &'static str,
    expected: &'static str,
}

const DATE_ERR: TimeParseError = TimeParseError {
    what: "date",
    expected: "YYYY-MM-DD",
};
const TIME_ERR: TimeParseError = TimeParseError {
    what: "time",
    expected: "RFC 3339, e.g. 2025-03-01T08:00:00Z",
};

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both casts are in range: day is 1..=31, month 1..=12 by construction.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parse exactly `n` ASCII digits.
fn digits(s: &[u8], n: usize) -> Option<u32> {
    if s.len() != n || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// A calendar date (no time zone), e.g. a training expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days: i64,
}

impl Date {
    /// A date from its parts; `None` if it does not exist or is outside years 1..=9999.
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<Date> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date {
            days: days_from_civil(year, month, day),
        })
    }

    /// Year, month, day.
    pub fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(self.days)
    }

    /// The same day `years` later; 29 February becomes 28 February in a common year.
    pub fn add_years(self, years: u32) -> Option<Date> {
        let (y, m, d) = self.ymd();
        let year = y + i64::from(years);
        Date::from_ymd(year, m, d.min(days_in_month(year, m)))
    }

    /// The same day `months` later; a day the target month lacks becomes its last day
    /// (31 January + 1 month = 28 or 29 February).
    pub fn add_months(self, months: u32) -> Option<Date> {
        let (y, m, d) = self.ymd();
        let index = y * 12 + i64::from(m) - 1 + i64::from(months);
        let (year, month) = (
            index.div_euclid(12),
            u32::try_from(index.rem_euclid(12)).ok()? + 1,
        );
        if !(1..=9999).contains(&year) {
            return None;
        }
        Date::from_ymd(year, month, d.min(days_in_month(year, month)))
    }

    /// The date `days` later (or earlier, when negative).
    pub fn plus_days(self, days: i64) -> Date {
        Date {
            days: self.days + days,
        }
    }

    /// Whole days from `self` to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: Date) -> i64 {
        later.days - self.days
    }

    /// The first instant of this day (midnight UTC), in Unix milliseconds: where a date-bound
    /// right that lasts "until the end of the day before" stops, for the rules that count in
    /// `*_ms` ([`Timestamp::date`] is the UTC date too, so both agree on when a day starts).
    pub fn start_unix_ms(self) -> i64 {
        // |days| < 2^22 within years 1..=9999, so this stays far inside i64.
        self.days.saturating_mul(86_400_000)
    }
}

impl FromStr for Date {
    type Err = TimeParseError;

    fn from_str(s: &str) -> Result<Date, TimeParseError> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(DATE_ERR);
        }
        let year = digits(&b[0..4], 4).ok_or(DATE_ERR)?;
        let month = digits(&b[5..7], 2).ok_or(DATE_ERR)?;
        let day = digits(&b[8..10], 2).ok_or(DATE_ERR)?;
        Date::from_ymd(i64::from(year), month, day).ok_or(DATE_ERR)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// An instant in UTC with one-second resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix: i64,
}

/// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the representable range.
const MIN_UNIX: i64 = -62_135_596_800;
const MAX_UNIX: i64 = 253_402_300_799;

impl Timestamp {
    /// An instant from seconds since the Unix epoch; `None` outside years 1..=9999.
    pub fn from_unix(unix: i64) -> Option<Timestamp> {
        (MIN_UNIX..=MAX_UNIX)
            .contains(&unix)
            .then_some(Timestamp { unix })
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.unix
    }

    /// This instant plus `secs` seconds, saturating at the representable range.
    pub fn plus_secs(self, secs: i64) -> Timestamp {
        Timestamp {
            unix: self.unix.saturating_add(secs).clamp(MIN_UNIX, MAX_UNIX),
        }
    }

    /// The UTC calendar date of this instant.
    pub fn date(self) -> Date {
        Date {
            days: self.unix.div_euclid(86_400),
        }
    }

    /// Milliseconds since the Unix epoch, as the rule columns (`*_ms`) store time.
    pub fn unix_ms(self) -> i64 {
        // |unix| < 2^38, so times 1000 stays far inside i64.
        self.unix * 1000
    }

    /// The instant of `ms` milliseconds since the Unix epoch, truncated to the whole second
    /// (towards the past); `None` outside years 1..=9999.
    pub fn from_unix_ms(ms: i64) -> Option<Timestamp> {
        Timestamp::from_unix(ms.div_euclid(1000))
    }

    /// Unix milliseconds, clamped into the representable range (0001-01-01 ..= 9999-12-31).
    pub fn from_unix_ms_saturating(ms: i64) -> Timestamp {
        Timestamp {
            unix: ms.div_euclid(1000).clamp(MIN_UNIX, MAX_UNIX),
        }
    }
}

impl FromStr for Timestamp {
    type Err = TimeParseError;

    /// RFC 3339: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; fractions are truncated.
    fn from_str(s: &str) -> Result<Timestamp, TimeParseError> {
        let b = s.as_bytes();
        if b.len() < 20 || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
            return Err(TIME_ERR);
        }
        let date: Date = s[..10].parse().map_err(|_| TIME_ERR)?;
        let hour = digits(&b[11..13], 2).ok_or(TIME_ERR)?;
        let minute = digits(&b[14..16], 2).ok_or(TIME_ERR)?;
        let second = digits(&b[17..19], 2).ok_or(TIME_ERR)?;
        if hour > 23 || minute > 59 || second > 59 {
            return Err(TIME_ERR);
        }
        let mut rest = &b[19..];
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return Err(TIME_ERR);
            }
            rest = &frac[n..];
        }
        let offset = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let h = digits(&[*h1, *h2], 2).ok_or(TIME_ERR)?;
                let m = digits(&[*m1, *m2], 2).ok_or(TIME_ERR)?;
                if h > 23 || m > 59 {
                    return Err(TIME_ERR);
                }
                let secs = i64::from(h * 3600 + m * 60);
                if *sign == b'+' { secs } else { -secs }
            }
            _ => return Err(TIME_ERR),
        };
        let local = date.days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        Timestamp::from_unix(local - offset).ok_or(TIME_ERR)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.unix.rem_euclid(86_400);
        write!(
            f,
            "{}T{:02}:{:02}:{:02}Z",
            self.date(),
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

macro_rules! serde_via_str {
    ($ty:ty, $expecting:literal) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

serde_via_str!(Date, "a date YYYY-MM-DD");
serde_via_str!(Timestamp, "an RFC 3339 UTC time");

/// A string of the given OpenAPI `format`, for the OpenAPI document.
fn string_schema(
    format: utoipa::openapi::KnownFormat,
    example: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(format)))
        .examples([serde_json::Value::from(example)])
        .into()
}

/// `YYYY-MM-DD`.
impl utoipa::PartialSchema for Date {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema(utoipa::openapi::KnownFormat::Date, "2026-03-01")
    }
}

impl utoipa::ToSchema for Date {}

/// RFC 3339; answers are always UTC with a `Z`.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema(
            utoipa::openapi::KnownFormat::DateTime,
            "2026-03-01T08:00:00Z",
        )
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_and_parse() {
        for (unix, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (MIN_UNIX, "0001-01-01T00:00:00Z"),
            (MAX_UNIX, "9999-12-31T23:59:59Z"),
        ] {
            let t = Timestamp::from_unix(unix).unwrap();
            assert_eq!(t.to_string(), text);
            assert_eq!(text.parse::<Timestamp>(), Ok(t));
        }
        assert_eq!(Timestamp::from_unix(MAX_UNIX + 1), None);
    }

    #[test]
    fn offsets_and_fractions_are_normalised_to_utc() {
        let t: Timestamp = "2025-03-01T08:00:00.123456+08:00".parse().unwrap();
        assert_eq!(t.to_string(), "2025-03-01T00:00:00Z");
        let t: Timestamp = "2025-03-01T23:30:00-01:00".parse().unwrap();
        assert_eq!(t.to_string(), "2025-03-02T00:30:00Z");
    }

    #[test]
    fn malformed_times_are_refused() {
        for bad in [
            "",
            "2025-03-01",
            "2025-03-01T08:00:00",
            "2025-03-01 08:00:00Z",
            "2025-02-30T08:00:00Z",
            "2025-03-01T24:00:00Z",
            "2025-03-01T08:60:00Z",
            "2025-03-01T08:00:00.Z",
            "2025-03-01T08:00:00+0800",
            "+2025-03-01T08:00:00Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!("2024-02-29".parse::<Date>().unwrap().ymd(), (2024, 2, 29));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "0000-01-01",
            "24-01-01",
            "2024-01-01T",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
    }

    #[test]
    fn add_years_clamps_leap_day() {
        let d: Date = "2024-02-29".parse().unwrap();
        assert_eq!(d.add_years(1).unwrap().to_string(), "2025-02-28");
        assert_eq!(d.add_years(4).unwrap().to_string(), "2028-02-29");
        let d: Date = "2025-06-30".parse().unwrap();
        assert_eq!(d.add_years(3).unwrap().to_string(), "2028-06-30");
        assert_eq!("9999-01-01".parse::<Date>().unwrap().add_years(1), None);
    }

    #[test]
    fn every_day_round_trips_through_the_calendar() {
        // Every day from 1600 to 2400: civil -> days -> civil is the identity, days are consecutive.
        let mut expected = days_from_civil(1600, 1, 1);
        for year in 1600..2400 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let days = days_from_civil(year, month, day);
                    assert_eq!(days, expected);
                    assert_eq!(civil_from_days(days), (year, month, day));
                    expected += 1;
                }
            }
        }
    }

    #[test]
    fn serde_uses_the_text_forms() {
        let t = Timestamp::from_unix(86_400).unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"1970-01-02T00:00:00Z\""
        );
        let d: Date = serde_json::from_str("\"2030-12-31\"").unwrap();
        assert_eq!(d.to_string(), "2030-12-31");
        assert!(serde_json::from_str::<Date>("20301231").is_err());
        assert_eq!(t.plus_secs(-86_400).unix(), 0);
    }

    #[test]
    fn milliseconds_convert_truncating_towards_the_past() {
        let t = Timestamp::from_unix(1_700_000_000).unwrap();
        assert_eq!(t.unix_ms(), 1_700_000_000_000);
        assert_eq!(Timestamp::from_unix_ms(1_700_000_000_999), Some(t));
        assert_eq!(Timestamp::from_unix_ms(-1).unwrap().unix(), -1);
        assert_eq!(Timestamp::from_unix_ms(i64::MAX), None);
        assert_eq!(
            Timestamp::from_unix_ms_saturating(i64::MAX).to_string(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms_saturating(i64::MIN).to_string(),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms_saturating(1_500),
            Timestamp::from_unix(1).unwrap()
        );
    }
}
