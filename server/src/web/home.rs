//! The security officer's home page (`/officer`): "what needs me now" on one screen, built
//! from the queries the officer's lists already use (no query of its own):
//! sign-outs awaiting approval, open alarms, missing carriers with the days left before the
//! leak deadline, overdue loans with their lateness, and people whose training has expired
//! or expires within [`TRAINING_SOON_DAYS`] days. Each block links to the full list; other
//! areas add blocks the same way.

use axum::extract::State;
use maud::{Markup, html};

use super::custodian::{carrier_link, frame, level_tag};
use super::datetime;
use super::i18n::{self, Key, Lang, t};
use super::layout;
use super::officer::{OfficerDesk, leak_clock};
use super::session::{Page, WebError};
use crate::AppState;
use crate::domain::alert::AlertState;
use crate::domain::carrier::CarrierState;
use crate::domain::person::PersonStatus;
use crate::domain::signout::SignoutState;
use crate::domain::time::Date;
use crate::service::{alerts, carriers, people, signouts};
use crate::store::alerts::AlertFilter;
use crate::store::carriers::CarrierFilter;
use crate::store::people::Person;

/// Training that expires within this many days is listed (re-examination takes time).
pub const TRAINING_SOON_DAYS: i64 = 30;
/// Rows shown per block; the block's link opens the whole list.
const SHOWN: usize = 8;

/// Whether a person's training needs the officer: expired (or never recorded) for someone in
/// post, or expiring before `soon`. Departed people are past caring.
pub fn training_needs_attention(
    status: PersonStatus,
    valid_until: Option<Date>,
    today: Date,
    soon: Date,
) -> bool {
    if status == PersonStatus::Departed {
        return false;
    }
    match valid_until {
        None => true,
        Some(until) => until < today || until <= soon,
    }
}

/// `GET /officer`.
pub async fn officer_home(
    page: Page<OfficerDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let now = state.now();
    let fail = |e| session.internal(e);
    let reader = page.cap.reader();
    let pending = signouts::list(&state, &reader, Some(SignoutState::Requested))
        .await
        .map_err(fail)?;
    let mut overdue: Vec<_> = signouts::list(&state, &reader, Some(SignoutState::Out))
        .await
        .map_err(fail)?
        .into_iter()
        .filter(|so| so.due_at < now)
        .collect();
    overdue.sort_by_key(|so| so.due_at);
    let open = alerts::list(
        &state,
        &page.cap.alerts,
        AlertFilter {
            state: Some(AlertState::Open),
            limit: 500,
            ..AlertFilter::default()
        },
    )
    .await
    .map_err(fail)?;
    let missing_filter = CarrierFilter {
        state: Some(CarrierState::Missing),
        q: None,
    };
    let missing = carriers::list(&state, &reader, missing_filter)
        .await
        .map_err(fail)?;
    let mut missing: Vec<_> = missing
        .iter()
        .map(|c| {
            let s = &c.summary;
            let clock = s
                .missing_since
                .map(|since| leak_clock(s.level, since.unix_ms(), now.unix_ms()));
            (s, clock)
        })
        .collect();
    missing.sort_by_key(|(_, clock)| clock.map_or(i64::MIN, |c| c.deadline_ms));
    let today = now.date();
    let soon = now.plus_secs(TRAINING_SOON_DAYS * 86_400).date();
    let mut training: Vec<Person> = people::list(&state, &page.cap.people)
        .await
        .map_err(fail)?
        .into_iter()
        .filter(|p| training_needs_attention(p.status, p.training_valid_until, today, soon))
        .collect();
    training.sort_by_key(|p| p.training_valid_until);

    let content = html! {
        h1 { (t(lang, Key::OfficerHomeTitle)) }
        div #officer-home .home-grid {
            (block(lang, "approvals", Key::NeedsApproval, pending.len(), "/approvals", html! {
                @for so in pending.iter().take(SHOWN) {
                    li data-signout-id=(so.id) {
                        "#" (so.id) " · " (so.borrower.name) " · "
                        @for c in &so.carriers { (carrier_link(c.id, &c.control_no)) " " (level_tag(lang, c.level)) " " }
                    }
                }
            }))
            (block(lang, "alarms", Key::OpenAlarms, open.len(), "/guard", html! {
                @for a in open.iter().take(SHOWN) {
                    li data-alert-id=(a.id) data-kind=(a.kind.as_str()) {
                        span.alert-kind { (t(lang, i18n::alert_kind(a.kind))) } " "
                        @if let Some(no) = &a.carrier_control_no { span.carrier-no { (no) } " " }
                        (layout::time(a.raised_at))
                    }
                }
            }))
            (block(lang, "missing", Key::NavMissing, missing.len(), "/missing", html! {
                @for (s, clock) in missing.iter().take(SHOWN) {
                    li data-carrier-id=(s.id) {
                        (carrier_link(s.id, &s.control_no)) " " (level_tag(lang, s.level)) " · "
                        @match clock {
                            Some(k) if k.passed => span.days-left.flag data-days="0" { (t(lang, Key::DeadlinePassed)) },
                            Some(k) => span.days-left data-days=(k.days_left) {
                                (t(lang, Key::DaysLeft)) " " (k.days_left) " " (t(lang, Key::DaysUnit))
                            },
                            None => span.days-left { "—" },
                        }
                    }
                }
            }))
            (block(lang, "overdue", Key::NavOverdue, overdue.len(), "/overdue", html! {
                @for so in overdue.iter().take(SHOWN) {
                    li data-signout-id=(so.id) {
                        "#" (so.id) " · " (so.borrower.name) " · "
                        span.overdue-mark { (t(lang, Key::OverdueMark)) } " "
                        span.lateness { (datetime::lateness(lang, now.unix_ms().saturating_sub(so.due_at.unix_ms()))) }
                    }
                }
            }))
            (block(lang, "training", Key::TrainingExpiring, training.len(), "/people", html! {
                @for p in training.iter().take(SHOWN) {
                    li data-person-id=(p.id) data-expired=(p.training_valid_until.is_none_or(|d| d < today)) {
                        (p.name) " · " (p.department) " · "
                        @match p.training_valid_until {
                            Some(d) => span.until { (d.to_string()) },
                            None => span.until { (t(lang, Key::Never)) },
                        }
                    }
                }
            }))
        }
    };
    Ok(frame(
        session,
        t(lang, Key::OfficerHomeTitle),
        "officer",
        content,
    ))
}

/// One block: `section.home-block[data-block][data-count]` with a count, its list (or "none")
/// and a link to the whole list.
fn block(lang: Lang, name: &str, title: Key, count: usize, href: &str, items: Markup) -> Markup {
    html! {
        section.panel.home-block data-block=(name) data-count=(count) {
            h2 {
                a href=(href) { (t(lang, title)) }
                " " span.count.zero[count == 0] { (count) }
            }
            @if count == 0 {
                p.empty { (t(lang, Key::NothingNow)) }
            } @else {
                ul { (items) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn expired_missing_and_soon_expiring_training_need_the_officer() {
        let (today, soon) = (date("2026-03-01"), date("2026-03-31"));
        let needs = |until: Option<&str>, status| {
            training_needs_attention(status, until.map(date), today, soon)
        };
        assert!(needs(Some("2026-02-28"), PersonStatus::Active));
        assert!(needs(None, PersonStatus::Active));
        assert!(needs(Some("2026-03-20"), PersonStatus::Leaving));
        assert!(!needs(Some("2026-06-01"), PersonStatus::Active));
        assert!(!needs(Some("2020-01-01"), PersonStatus::Departed));
    }
}
