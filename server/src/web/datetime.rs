//! One date-time format per language, in the site's time zone (`time_zone` in the server
//! configuration), for every page.
//!
//! Pages used to print ISO UTC and let the script rewrite it in the browser's zone and locale:
//! a Beijing user saw times 8 hours off wherever the script did not run, and two browsers
//! showed the same instant differently. Now the server writes the final text: `zh`
//! `2026-03-01 16:05:09`, `en` `1 Mar 2026 16:05:09`, both in the site's zone, and the script
//! formats times it builds itself (the guard console's live alerts) the same way from the
//! zone named on `<body data-tz>`.
//!
//! The formatter itself is [`crate::domain::datetime::format`] (pure, so the CSV exports use
//! the same one); this module picks its style from the page language.
//!
//! The zone and language reach [`super::layout::time`] through a task-local set by
//! [`scope`] for each page request, so the many call sites keep their one-argument form and
//! every page uses the same formatter. Outside a request (unit tests) the face is UTC in
//! Chinese.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use jiff::tz::TimeZone;

use maud::{Markup, html};

use super::i18n::{Key, Lang, t};
use crate::AppState;
use crate::domain::datetime::{self, Style};
use crate::domain::signout::SignoutState;
use crate::domain::time::Timestamp;

/// The language and time zone a page is rendered in.
#[derive(Debug, Clone)]
pub struct Face {
    /// The page language.
    pub lang: Lang,
    /// The site's time zone.
    pub zone: TimeZone,
    /// The request's "now" from the application clock (the fake clock in tests), for
    /// lateness marks.
    pub now: Option<Timestamp>,
}

impl Default for Face {
    fn default() -> Self {
        Face {
            lang: Lang::default(),
            zone: TimeZone::UTC,
            now: None,
        }
    }
}

tokio::task_local! {
    static FACE: Face;
}

/// The face of the page being rendered (UTC and Chinese outside a page request).
pub fn current() -> Face {
    FACE.try_with(Face::clone).unwrap_or_default()
}

/// Middleware of the pages: render the request in its language and the site's zone.
pub async fn scope(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let face = Face {
        lang: Lang::of(request.headers()),
        zone: state.settings().time_zone.clone(),
        now: Some(state.now()),
    };
    FACE.scope(face, next.run(request)).await
}

/// The IANA name of a zone for the script (`None` for a zone known only by its rules).
pub fn zone_name(zone: &TimeZone) -> Option<&str> {
    zone.iana_name()
}

/// `at` in `zone` in the one format of `lang` ([`crate::domain::datetime::format`], which
/// the CSV files use too).
pub fn format(lang: Lang, zone: &TimeZone, at: Timestamp) -> String {
    let style = match lang {
        Lang::Zh => Style::Numeric,
        Lang::En => Style::Named,
    };
    datetime::format(style, zone, at)
}

/// `at` formatted for the page being rendered.
pub fn format_current(at: Timestamp) -> String {
    let face = current();
    format(face.lang, &face.zone, at)
}

/// An hour and a day in milliseconds.
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How late something is, in the largest unit that is not zero: minutes under an hour, hours
/// under a day, whole days after ("0 days" for three hours late told the officer nothing).
pub fn lateness(lang: Lang, late_ms: i64) -> String {
    let late_ms = late_ms.max(0);
    let (n, key) = if late_ms < HOUR_MS {
        ((late_ms / 60_000).max(1), Key::MinutesUnit)
    } else if late_ms < DAY_MS {
        (late_ms / HOUR_MS, Key::HoursUnit)
    } else {
        (late_ms / DAY_MS, Key::DaysUnit)
    };
    format!("{n} {}", t(lang, key))
}

/// The overdue mark beside a sign-out's state: `span.overdue-mark[data-hours]` "逾期 5 小时"
/// when it is out past `due_at` at the page's "now"; nothing otherwise.
pub fn overdue_mark(lang: Lang, state: SignoutState, due_at: Timestamp) -> Markup {
    let Some(now) = current().now else {
        return html! {};
    };
    let late_ms = now.unix_ms().saturating_sub(due_at.unix_ms());
    html! {
        @if state == SignoutState::Out && late_ms > 0 {
            " "
            span.overdue-mark data-hours=(late_ms / HOUR_MS) {
                (t(lang, Key::OverdueMark)) " " span.lateness { (lateness(lang, late_ms)) }
            }
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
    fn beijing_is_eight_hours_ahead_in_both_languages() {
        let zone = TimeZone::get("Asia/Shanghai").unwrap();
        let t = at("2026-03-01T20:05:09Z");
        assert_eq!(format(Lang::Zh, &zone, t), "2026-03-02 04:05:09");
        assert_eq!(format(Lang::En, &zone, t), "2 Mar 2026 04:05:09");
    }

    #[test]
    fn a_zone_with_summer_time_follows_it() {
        let zone = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            format(Lang::Zh, &zone, at("2026-07-01T10:00:00Z")),
            "2026-07-01 12:00:00"
        );
        assert_eq!(
            format(Lang::En, &zone, at("2026-12-01T10:00:00Z")),
            "1 Dec 2026 11:00:00"
        );
    }

    #[test]
    fn lateness_uses_hours_under_a_day() {
        assert_eq!(lateness(Lang::En, 3 * HOUR_MS + 5), "3 hours");
        assert_eq!(lateness(Lang::Zh, 3 * HOUR_MS), "3 小时");
        assert_eq!(lateness(Lang::En, 20 * 60_000), "20 minutes");
        assert_eq!(lateness(Lang::En, 2 * DAY_MS + HOUR_MS), "2 days");
    }

    #[test]
    fn outside_a_page_the_face_is_utc() {
        assert_eq!(
            format_current(at("2026-03-01T08:00:00Z")),
            "2026-03-01 08:00:00"
        );
    }
}
