//! Travel abroad (出境) on the officer's pages: the register of who is abroad when
//! (`GET /travel`, every approved trip by its first day, marked abroad today / upcoming /
//! back), and the travel section of a person's page (their requests in every state). A trip
//! overlapping the traveller's decommissioning period (脱密期) is marked as such on both.
//! Requests are filed and decided through the API and the approvals page; these pages read
//! [`crate::service::travel`].

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::custodian::frame;
use super::i18n::{self, Key, Lang, t};
use super::officer::OfficerDesk;
use super::session::{Page, WebError};
use crate::AppState;
use crate::domain::person::{TripPhase, trip_phase};
use crate::domain::time::Date;
use crate::service::travel::{self, Trip};

/// `GET /travel`: who is abroad when.
pub async fn register(
    page: Page<OfficerDesk>,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let trips = travel::register(&state, &page.cap.cap)
        .await
        .map_err(|e| session.internal(e))?;
    let lang = session.lang;
    let today = state.now().date();
    let content = html! {
        h1 { (t(lang, Key::TravelRegisterTitle)) }
        p.hint { (t(lang, Key::TravelRegisterHint)) }
        section.panel {
            @if trips.is_empty() {
                p #travel-register-empty { (t(lang, Key::NoTravel)) }
            } @else {
                (table(lang, &trips, today, "travel-register", true))
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::TravelRegisterTitle),
        "officer",
        content,
    )
    .into_response())
}

/// The travel section of a person's page: their requests, newest first.
pub(super) fn person_section(lang: Lang, trips: &[Trip], today: Date) -> Markup {
    html! {
        section.panel #person-travel {
            h2 { (t(lang, Key::TravelSection)) }
            @if trips.is_empty() {
                p #person-travel-empty { (t(lang, Key::NoTravel)) }
            } @else {
                (table(lang, trips, today, "person-travel-list", false))
            }
            p { a href="/travel" { (t(lang, Key::TravelRegisterTitle)) } }
        }
    }
}

/// A table of trips: one row per request (`tr.trip`, `data-request-id`, `data-state`,
/// `data-phase`, `data-during-decommissioning`), with the traveller when `with_person`.
fn table(lang: Lang, trips: &[Trip], today: Date, id: &str, with_person: bool) -> Markup {
    html! {
        table #(id) .trips {
            thead {
                tr {
                    @if with_person { th scope="col" { (t(lang, Key::PersonName)) } }
                    th scope="col" { (t(lang, Key::TravelDestination)) }
                    th scope="col" { (t(lang, Key::TravelFrom)) }
                    th scope="col" { (t(lang, Key::TravelUntil)) }
                    th scope="col" { (t(lang, Key::TravelState)) }
                }
            }
            tbody {
                @for trip in trips {
                    @let phase = trip_phase(trip.from, trip.until, today);
                    tr.trip data-request-id=(trip.id) data-person-id=(trip.person_id)
                        data-state=(trip.state.as_str()) data-phase=(phase.as_str())
                        data-during-decommissioning=(trip.during_decommissioning) {
                        @if with_person {
                            td { a href={ "/people/" (trip.person_id) } { (trip.name) } }
                        }
                        td.destination { (trip.destination) }
                        td { span.date data-date=(trip.from.to_string()) { (trip.from.to_string()) } }
                        td { span.date data-date=(trip.until.to_string()) { (trip.until.to_string()) } }
                        td {
                            span.request-state { (t(lang, i18n::request_state(trip.state))) }
                            @if phase == TripPhase::Abroad {
                                " " span.trip-abroad { (t(lang, Key::TripAbroadNow)) }
                            }
                            @if trip.during_decommissioning {
                                " " span.trip-decommissioning { (t(lang, Key::TripDuringDecommissioning)) }
                            }
                        }
                    }
                }
            }
        }
    }
}
