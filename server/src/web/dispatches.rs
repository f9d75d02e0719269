//! The custodian's dispatch page (机要传递): ask for a dispatch through the confidential courier
//! channel, mark it sent once approved (its carriers may pass the gates until the window
//! ends), and record its delivery. Thin handlers over [`crate::service::transfers`], the same
//! use cases as `POST /api/v1/dispatches`, `/send` and `/delivered`; security officers approve
//! on `/approvals` (the one approval model).
//!
//! | path | what |
//! |---|---|
//! | `GET/POST /dispatches` | every dispatch with its next step, and the form that asks for one |
//! | `POST /dispatches/{id}/send`, `/delivered` | mark sent; record who received it |
//!
//! After a step the page redirects back with `?done=CODE` or `?refused=CODE`, shown as
//! `#moves-message[data-code]`.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};

use super::custodian::{CustodianDesk, carrier_link, frame};
use super::i18n::{self, Key, Lang, t};
use super::layout::{self, csrf_field};
use super::moves::{back, lines, message, request_id, step_name};
use super::session::{Page, WebError, WebForm, WebSession, see_other};
use crate::AppState;
use crate::domain::approval::{RequestKind, RequestState};
use crate::service::moves;
use crate::service::transfers::{self, Movement, NewDispatch};

/// The gate windows the form offers, in hours (the API takes any end in the future).
const WINDOW_HOURS: [i64; 5] = [2, 4, 8, 24, 72];

/// `GET /dispatches`: the form that asks for one, and every dispatch with its next step.
pub async fn dispatches_page(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let list = transfers::list(&state, &page.cap.reader(), RequestKind::Dispatch)
        .await
        .map_err(|e| session.internal(e))?;
    let content = html! {
        h1 { (t(lang, Key::DispatchesTitle)) }
        (message(lang, session))
        form #dispatch-form .panel method="post" action="/dispatches" {
            (csrf_field(session))
            h2 { (t(lang, Key::DispatchNew)) }
            label for="dispatch-carriers" { (t(lang, Key::TransferCarriers)) }
            textarea #dispatch-carriers name="carriers" rows="3" required {}
            label for="dispatch-destination" { (t(lang, Key::DispatchDestination)) }
            input #dispatch-destination name="destination" required maxlength="200";
            label for="dispatch-courier" { (t(lang, Key::DispatchCourier)) }
            input #dispatch-courier name="courier" required maxlength="200";
            label for="dispatch-sealed-by" { (t(lang, Key::DispatchSealedBy)) }
            input #dispatch-sealed-by name="sealed_by" required maxlength="200";
            label for="dispatch-window" { (t(lang, Key::DispatchWindowHours)) }
            select #dispatch-window name="window_hours" {
                @for h in WINDOW_HOURS {
                    option value=(h) selected[h == 4] { (h) }
                }
            }
            button #dispatch-submit .primary type="submit" { (t(lang, Key::DispatchSubmit)) }
        }
        @if list.is_empty() {
            p #dispatch-empty .empty { (t(lang, Key::DispatchesNone)) }
        }
        ul #dispatch-list {
            @for m in &list { (dispatch_item(lang, session, m)) }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::DispatchesTitle),
        "custodian",
        content,
    ))
}

fn dispatch_item(lang: Lang, session: &WebSession, m: &Movement) -> Markup {
    let r = &m.request;
    let step = super::moves::step_reached(m, &["delivered", "sent"]);
    let carriers = super::approvals::body_carriers(&r.body);
    let text = |field: &str| r.body[field].as_str().unwrap_or("").to_owned();
    html! {
        li.dispatch.panel data-request-id=(r.id) data-state=(r.state.as_str()) data-step=(step) {
            h3 { (t(lang, Key::RequestKindDispatch)) " #" (r.id) " "
                span.request-state data-state=(r.state.as_str()) { (t(lang, i18n::request_state(r.state))) } }
            ul.dispatch-carriers {
                @for (id, no, _) in &carriers { li data-carrier-id=(id) { (carrier_link(*id, no)) } }
            }
            dl.facts {
                div.fact data-field="destination" { dt { (t(lang, Key::DispatchDestination)) } dd { (text("destination")) } }
                div.fact data-field="courier" { dt { (t(lang, Key::DispatchCourier)) } dd { (text("courier")) } }
                div.fact data-field="sealed_by" { dt { (t(lang, Key::DispatchSealedBy)) } dd { (text("sealed_by")) } }
                div.fact data-field="window_until" { dt { (t(lang, Key::DispatchWindowUntil)) } dd { (layout::time_text(&text("window_until"))) } }
                div.fact data-field="requester" { dt { (t(lang, Key::Requester)) } dd { (r.requester.username) } }
                @for s in &m.steps {
                    div.fact data-field=(s.step) {
                        dt { (step_name(lang, &s.step)) }
                        dd { (s.by_username) " " (layout::time(s.at)) @if let Some(note) = &s.note { " — " (note) } }
                    }
                }
            }
            @if r.state == RequestState::Approved && step == "approved" {
                form.send method="post" action={ "/dispatches/" (r.id) "/send" } data-once {
                    (csrf_field(session))
                    button.send.primary type="submit" data-id=(r.id) { (t(lang, Key::SendButton)) }
                }
            }
            @if step == "sent" {
                form.delivered method="post" action={ "/dispatches/" (r.id) "/delivered" } data-once {
                    (csrf_field(session))
                    label for={ "dispatch-received-by-" (r.id) } { (t(lang, Key::DispatchReceivedBy)) }
                    input.received-by id={ "dispatch-received-by-" (r.id) } name="received_by" required maxlength="200";
                    button.delivered.primary type="submit" data-id=(r.id) { (t(lang, Key::DeliveredButton)) }
                }
            }
        }
    }
}

/// `POST /dispatches`: ask for a dispatch of the carriers typed or scanned (control numbers or
/// tags, one per line), its gate window ending the chosen number of hours from now.
pub async fn request_dispatch(
    State(state): State<AppState>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let form = submitted.form;
    let session = &page.session;
    let (carrier_ids, unknown) =
        match moves::carriers_by_text(&state, &page.cap.cap, lines(form.get("carriers"))).await {
            Ok(found) => found,
            Err(e) => return back(session, "/dispatches", Err(e)),
        };
    if !unknown.is_empty() {
        return Ok(see_other("/dispatches?refused=unknown_reference"));
    }
    let Some(hours) = form
        .get("window_hours")
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|h| WINDOW_HOURS.contains(h))
    else {
        return Ok(see_other("/dispatches?refused=invalid"));
    };
    let new = NewDispatch {
        carrier_ids,
        destination: form.get("destination").trim().to_owned(),
        courier: form.get("courier").trim().to_owned(),
        sealed_by: form.get("sealed_by").trim().to_owned(),
        window_until: state.now().plus_secs(hours * 3600),
    };
    let result = transfers::request_dispatch(&state, &page.cap.cap, new)
        .await
        .map(|_| "requested");
    back(session, "/dispatches", result)
}

/// `POST /dispatches/{id}/send`: the approved dispatch leaves (its carriers `dispatched`).
pub async fn send(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some(id) = request_id(&id) else {
        return Ok(see_other("/dispatches?refused=not_found"));
    };
    let result = transfers::send(&state, &page.cap.cap, id)
        .await
        .map(|_| "sent");
    back(&page.session, "/dispatches", result)
}

/// `POST /dispatches/{id}/delivered` (`received_by`): the receipt at the destination.
pub async fn delivered(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some(id) = request_id(&id) else {
        return Ok(see_other("/dispatches?refused=not_found"));
    };
    let received_by = submitted.form.get("received_by").trim().to_owned();
    let result = transfers::delivered(&state, &page.cap.cap, id, received_by)
        .await
        .map(|_| "delivered");
    back(&page.session, "/dispatches", result)
}
