//! Repair (维修) as the custodian sees it: the page that sends a laptop, device or hard disk
//! for repair and records its return, the "in repair" state wherever a carrier's state is
//! shown, and the open repair (with its removed media) on the carrier page. Thin handlers
//! over [`crate::service::moves`]; the rules are [`crate::domain::repair`].
//!
//! | path | what |
//! |---|---|
//! | `GET/POST /repairs` | open repairs first, the form that sends one |
//! | `POST /repairs/{id}/return` | record the carrier (and its removed media) back |
//!
//! After a step the page redirects back with `?done=CODE` or `?refused=CODE`, shown as
//! `#moves-message[data-code]` (the moves pages' one message).

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};

use super::custodian::{CustodianDesk, carrier_link, frame};
use super::i18n::{self, Key, Lang, t};
use super::layout::{self, csrf_field};
use super::moves::{back, message};
use super::session::{Page, WebError, WebForm, WebSession, see_other};
use crate::AppState;
use crate::auth::capability::CustodyReader;
use crate::domain::carrier::CarrierState;
use crate::domain::ids::RepairId;
use crate::domain::repair::{MediaHandling, RepairMode};
use crate::domain::time::Date;
use crate::service::moves::{self, ReturnRepair, SendForRepair};
use crate::store::carriers::CarrierSummary;
use crate::store::moves::RepairRow;

/// A carrier's state tag as every page shows it: `data-state="in_repair"` and 维修中 while a
/// repair is open, else its register state.
pub(super) fn state_tag(lang: Lang, s: &CarrierSummary) -> Markup {
    shown_state(lang, s.state, s.in_repair)
}

/// [`state_tag`] from the two facts.
pub(super) fn shown_state(lang: Lang, state: CarrierState, in_repair: bool) -> Markup {
    let name = if in_repair {
        "in_repair"
    } else {
        state.as_str()
    };
    html! {
        span.carrier-state data-state=(name) { (t(lang, i18n::carrier_state_shown(state, in_repair))) }
    }
}

/// `GET /repairs`: open repairs first (each with its return form), then the returned ones,
/// and the form that sends a carrier for repair.
pub async fn repairs_page(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let list = moves::repairs(&state, &page.cap.reader())
        .await
        .map_err(|e| session.internal(e))?;
    let today = state.now().date();
    let content = html! {
        h1 { (t(lang, Key::RepairsTitle)) }
        (message(lang, session))
        (send_form(lang, session, today))
        @if list.is_empty() {
            p #repair-empty .empty { (t(lang, Key::RepairsNone)) }
        }
        ul #repair-list {
            @for r in &list { (repair_item(lang, session, r)) }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::RepairsTitle),
        "custodian",
        content,
    ))
}

fn send_form(lang: Lang, session: &WebSession, today: Date) -> Markup {
    html! {
        form #repair-form .panel method="post" action="/repairs" {
            (csrf_field(session))
            h2 { (t(lang, Key::RepairSend)) }
            label for="repair-carrier" { (t(lang, Key::RepairCarrier)) }
            input #repair-carrier name="carrier" required maxlength="128" autocomplete="off";
            label for="repair-repairer" { (t(lang, Key::RepairRepairer)) }
            input #repair-repairer name="repairer" required maxlength="200";
            label for="repair-qualification" { (t(lang, Key::RepairQualificationNo)) }
            input #repair-qualification name="qualification_no" required maxlength="40";
            label for="repair-qualified-until" { (t(lang, Key::RepairQualifiedUntil)) }
            input #repair-qualified-until name="qualified_until" type="date" required min=(today.to_string());
            label for="repair-mode" { (t(lang, Key::RepairMode)) }
            select #repair-mode name="mode" {
                option value="on_site" { (t(lang, Key::RepairModeOnSite)) }
                option value="dispatch" { (t(lang, Key::RepairModeDispatch)) }
            }
            label for="repair-escort" { (t(lang, Key::RepairEscort)) }
            input #repair-escort name="escort" maxlength="200";
            label for="repair-media" { (t(lang, Key::RepairMedia)) }
            select #repair-media name="media" {
                option value="removed_and_kept" { (t(lang, Key::RepairMediaRemoved)) }
                option value="repaired_on_site" { (t(lang, Key::RepairMediaOnSite)) }
            }
            label for="repair-media-note" { (t(lang, Key::RepairMediaNote)) }
            input #repair-media-note name="media_note" required maxlength="200";
            label for="repair-reason" { (t(lang, Key::MoveReason)) }
            input #repair-reason name="reason" required maxlength="200";
            button #repair-submit .primary type="submit" { (t(lang, Key::RepairSubmit)) }
        }
    }
}

fn mode_name(lang: Lang, mode: RepairMode) -> &'static str {
    t(
        lang,
        match mode {
            RepairMode::OnSite => Key::RepairModeOnSite,
            RepairMode::Dispatch => Key::RepairModeDispatch,
        },
    )
}

fn media_name(lang: Lang, media: MediaHandling) -> &'static str {
    t(
        lang,
        match media {
            MediaHandling::RemovedAndKept => Key::RepairMediaRemoved,
            MediaHandling::RepairedOnSite => Key::RepairMediaOnSite,
        },
    )
}

/// One repair's facts: to whom, how, and what became of the media (shown here and on the
/// carrier page until the return).
fn repair_facts(lang: Lang, r: &RepairRow) -> Markup {
    let fact = |field: &'static str, label: Key, value: Markup| {
        html! { div.fact data-field=(field) { dt { (t(lang, label)) } dd { (value) } } }
    };
    html! {
        dl.facts {
            (fact("repairer", Key::RepairRepairer, html! { (r.repairer) }))
            (fact("qualification_no", Key::RepairQualificationNo, html! { (r.qualification_no) " · " (r.qualified_until.to_string()) }))
            (fact("mode", Key::RepairMode, html! { (mode_name(lang, r.mode)) }))
            @if let Some(escort) = &r.escort {
                (fact("escort", Key::RepairEscort, html! { (escort) }))
            }
            (fact("media", Key::RepairMedia, html! {
                span.repair-media data-media=(r.media.as_str()) { (media_name(lang, r.media)) }
                @if let Some(note) = &r.media_note { " — " span.repair-media-note { (note) } }
            }))
            (fact("reason", Key::MoveReason, html! { (r.reason) }))
            (fact("sent", Key::RepairSentAt, html! { (r.sent_by) " " (layout::time(r.sent_at)) }))
            @if let (Some(by), Some(at)) = (&r.returned_by, r.returned_at) {
                (fact("returned", Key::RepairsReturned, html! {
                    (by) " " (layout::time(at))
                    @if let Some(note) = &r.return_note { " — " (note) }
                }))
            }
        }
    }
}

fn repair_item(lang: Lang, session: &WebSession, r: &RepairRow) -> Markup {
    let open = r.returned_at.is_none();
    html! {
        li.repair.panel data-repair-id=(r.id) data-carrier-id=(r.carrier.id)
            data-state=(if open { "open" } else { "returned" }) {
            h3 {
                (carrier_link(r.carrier.id, &r.carrier.control_no)) " "
                (shown_state(lang, r.carrier.state, open))
            }
            (repair_facts(lang, r))
            @if open {
                form.repair-return method="post" action={ "/repairs/" (r.id) "/return" } data-once {
                    (csrf_field(session))
                    label for={ "repair-return-note-" (r.id) } { (t(lang, Key::RepairReturnNote)) }
                    input.repair-return-note id={ "repair-return-note-" (r.id) } name="note" required maxlength="200";
                    button.repair-return-submit.primary type="submit" data-id=(r.id) { (t(lang, Key::RepairReturnButton)) }
                }
            }
        }
    }
}

/// `POST /repairs`: send the carrier typed or scanned for repair.
pub async fn send(
    State(state): State<AppState>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let form = submitted.form;
    let session = &page.session;
    let text = form.get("carrier").trim().to_owned();
    let (found, _) = match moves::carriers_by_text(&state, &page.cap.cap, vec![text]).await {
        Ok(found) => found,
        Err(e) => return back(session, "/repairs", Err(e)),
    };
    let Some(carrier_id) = found.first().copied() else {
        return Ok(see_other("/repairs?refused=unknown_reference"));
    };
    let (Some(mode), Some(media), Ok(qualified_until)) = (
        RepairMode::from_name(form.get("mode")),
        MediaHandling::from_name(form.get("media")),
        form.get("qualified_until").trim().parse::<Date>(),
    ) else {
        return Ok(see_other("/repairs?refused=invalid"));
    };
    let input = SendForRepair {
        carrier_id,
        repairer: form.get("repairer").to_owned(),
        qualification_no: form.get("qualification_no").trim().to_owned(),
        qualified_until,
        mode,
        escort: form.non_empty("escort").map(str::to_owned),
        media,
        media_note: form.get("media_note").to_owned(),
        reason: form.get("reason").to_owned(),
    };
    let result = moves::send_for_repair(&state, &page.cap.cap, input)
        .await
        .map(|_| "sent");
    back(session, "/repairs", result)
}

/// `POST /repairs/{id}/return`: the carrier is back (and its removed media with it).
pub async fn return_repair(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Ok(id) = id.parse::<RepairId>() else {
        return Ok(see_other("/repairs?refused=not_found"));
    };
    let input = ReturnRepair {
        note: submitted.form.get("note").to_owned(),
    };
    let result = moves::return_repair(&state, &page.cap.cap, id, input)
        .await
        .map(|_| "returned");
    back(&page.session, "/repairs", result)
}

/// The carrier page's repair panel (`#repair-panel`): shown while a repair is open, with its
/// removed media, so whoever opens the carrier sees where it is and what the custodian keeps.
pub(super) async fn carrier_panel(
    state: &AppState,
    session: &WebSession,
    reader: &CustodyReader,
    s: &CarrierSummary,
) -> Result<Markup, WebError> {
    if !s.in_repair {
        return Ok(html! {});
    }
    let lang = session.lang;
    let open = moves::open_repair_of(state, reader, s.id)
        .await
        .map_err(|e| session.internal(e))?;
    Ok(html! {
        @if let Some(r) = open {
            section.panel #repair-panel data-repair-id=(r.id) {
                h2 { (t(lang, Key::RepairOpenOne)) }
                (repair_facts(lang, &r))
                p { a href="/repairs" { (t(lang, Key::RepairsTitle)) } }
            }
        }
    })
}
