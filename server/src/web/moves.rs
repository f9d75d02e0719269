//! The custodian's pages for carriers counted and moved (issue #11): stocktakes (清点) and
//! transfers (移交/签收). Thin handlers over [`crate::service::moves`] and
//! [`crate::service::transfers`]; the officer approves transfers on the approval page
//! (`web::approvals`, the one approval model).
//!
//! | path | what |
//! |---|---|
//! | `GET/POST /stocktakes` | the stocktakes and the form that opens one |
//! | `GET /stocktakes/{id}`, `POST /stocktakes/{id}/scans`, `/close`, `/resolutions` | one count: scans, expected against seen, close and sign, settle each missing carrier |
//! | `GET/POST /transfers`, `POST /transfers/{id}/handover`, `/receive` | transfers: ask, hand over, sign for |
//! | `GET/POST /collections`, `GET /collections/{id}`, `POST /collections/{id}/items/{carrier}` | year-end collections: the officer opens, the custodian closes each carrier |
//! | `GET /retention` | carriers past their retention |
//!
//! After a step the page redirects back with `?done=CODE` or `?refused=CODE`, shown as
//! `#moves-message[data-code]`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::custodian::{CustodianDesk, carrier_link, frame, level_tag, not_found, query};
use super::i18n::{self, Key, Lang, t};
use super::layout::{self, csrf_field};
use super::officer::OfficerDesk;
use super::session::{Page, WebError, WebForm, WebSession, refused_to, see_other};
use crate::AppState;
use crate::auth::capability::CustodyReader;
use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::ids::{CarrierId, CollectionId, PersonId, RequestId, StocktakeId};
use crate::domain::moves::{Outcome, Resolution, ScopeKind};
use crate::service::ServiceError;
use crate::service::moves::{self, ScopePlace, StocktakeView};
use crate::service::transfers::{self, Movement, NewTransfer};
use crate::store::moves::NewStocktake;

/// Back to `to` with `?done=CODE`, or with the refusal's code ([`refused_to`]).
pub(super) fn back(
    session: &WebSession,
    to: &str,
    result: Result<&'static str, ServiceError>,
) -> Result<Response, WebError> {
    match result {
        Ok(code) => Ok(see_other(&format!("{to}?done={code}"))),
        Err(e) => refused_to(session, to, e),
    }
}

/// `#moves-message[data-code]` from `?done=` or `?refused=`.
pub(super) fn message(lang: Lang, session: &WebSession) -> Markup {
    let q = query(session);
    html! {
        @if let Some(code) = q.non_empty("done") {
            div #moves-message .page-message .tone-ok data-code=(code) role="status" { (t(lang, Key::MovesDone)) }
        }
        @if let Some(code) = q.non_empty("refused") {
            div #moves-message .page-message .tone-bad data-code=(code) role="alert" {
                (t(lang, Key::MovesRefused)) " " code { (code) }
                @if code == "in_repair" { " " (t(lang, Key::ErrCarrierInRepair)) }
            }
        }
    }
}

pub(super) fn lines(text: &str) -> Vec<String> {
    text.split(['\n', ',', ' '])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Stocktakes

/// `GET /stocktakes`: the stocktakes and the form that opens one.
pub async fn stocktakes(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let list = moves::stocktakes_with_places(&state, &page.cap.reader())
        .await
        .map_err(|e| session.internal(e))?;
    let content = html! {
        h1 { (t(lang, Key::StocktakesTitle)) }
        (message(lang, session))
        form #stocktake-form .panel method="post" action="/stocktakes" {
            (csrf_field(session))
            h2 { (t(lang, Key::StocktakeOpen)) }
            label for="stocktake-scope-kind" { (t(lang, Key::StocktakeScope)) }
            select #stocktake-scope-kind name="scope_kind" {
                option value="device" { (t(lang, Key::ScopeDevice)) }
                option value="zone" { (t(lang, Key::ScopeZone)) }
                option value="custodian" { (t(lang, Key::ScopeCustodian)) }
            }
            label for="stocktake-scope-ref" { (t(lang, Key::StocktakeScopeRef)) }
            input #stocktake-scope-ref name="scope_ref" required maxlength="64";
            label for="stocktake-desk" { (t(lang, Key::StocktakeDesk)) }
            input #stocktake-desk name="desk_device" maxlength="64";
            button #stocktake-submit .primary type="submit" { (t(lang, Key::StocktakeOpen)) }
        }
        @if list.is_empty() {
            p #stocktake-empty .empty { (t(lang, Key::StocktakesNone)) }
        } @else {
            table #stocktake-table {
                thead { tr {
                    th { "#" } th { (t(lang, Key::StocktakeScope)) } th { (t(lang, Key::OpenedAt)) }
                    th { (t(lang, Key::StocktakeSignedBy)) }
                } }
                tbody {
                    @for (s, place) in &list {
                        tr.stocktake data-stocktake-id=(s.id) data-state=(if s.closed_at.is_some() { "closed" } else { "open" }) {
                            td { a href={ "/stocktakes/" (s.id) } { "#" (s.id) } }
                            td { (scope_words(lang, s.scope_kind, &s.scope_ref, place)) }
                            td { (layout::time(s.opened_at)) }
                            td { (s.closed_by.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::StocktakesTitle),
        "custodian",
        content,
    ))
}

pub(super) fn scope_name(lang: Lang, kind: ScopeKind) -> &'static str {
    t(
        lang,
        match kind {
            ScopeKind::Device => Key::ScopeDevice,
            ScopeKind::Zone => Key::ScopeZone,
            ScopeKind::Custodian => Key::ScopeCustodian,
        },
    )
}

/// A stocktake's scope as people read it (issue #15): the holder's or zone's name, or the
/// cabinet with the zone it stands in (`智能柜 cab-1 · 机要室`); the id only where no name
/// could be read. The kind and id stay on `.scope-words[data-scope-kind][data-scope-ref]`.
pub(super) fn scope_words(
    lang: Lang,
    kind: ScopeKind,
    scope_ref: &str,
    place: &ScopePlace,
) -> Markup {
    html! {
        span.scope-words data-scope-kind=(kind.as_str()) data-scope-ref=(scope_ref) {
            (scope_name(lang, kind)) " "
            @match (kind, &place.name) {
                (ScopeKind::Device, _) => {
                    span.device-id { (scope_ref) }
                    @if let Some(zone) = &place.zone { " · " span.place { (zone) } }
                }
                (_, Some(name)) => span.scope-name { (name) },
                (_, None) => span.scope-id { (scope_ref) },
            }
        }
    }
}

/// `POST /stocktakes`: open one, then its page.
pub async fn open_stocktake(
    State(state): State<AppState>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let form = submitted.form;
    let session = &page.session;
    let kind = ScopeKind::from_name(form.get("scope_kind")).unwrap_or(ScopeKind::Device);
    let desk = match moves::desk_field(form.non_empty("desk_device")) {
        Ok(d) => d,
        Err(e) => return back(session, "/stocktakes", Err(e)),
    };
    let new = NewStocktake {
        scope_kind: kind,
        scope_ref: form.get("scope_ref").trim().to_owned(),
        desk_device: desk,
    };
    match moves::open_stocktake(&state, &page.cap.cap, new).await {
        Ok(id) => Ok(see_other(&format!("/stocktakes/{id}"))),
        Err(e) => back(session, "/stocktakes", Err(e)),
    }
}

/// `GET /stocktakes/{id}`.
pub async fn stocktake(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let Ok(id) = id.parse::<StocktakeId>() else {
        return Ok(not_found(session, Key::StocktakeNotFound));
    };
    let view = match moves::stocktake(&state, &page.cap.reader(), id).await {
        Ok(v) => v,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::StocktakeNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    let title = format!("{} #{id}", t(lang, Key::StocktakeTitle));
    let content = stocktake_content(lang, session, &view, &title);
    Ok(frame(session, &title, "custodian", content).into_response())
}

fn stocktake_content(lang: Lang, session: &WebSession, v: &StocktakeView, title: &str) -> Markup {
    let id = v.head.id;
    let open = v.head.closed_at.is_none();
    let seen = |c: CarrierId| !v.result.missing.contains(&c);
    html! {
        h1 #stocktake-heading data-stocktake-id=(id) data-state=(v.state) { (title) }
        (message(lang, session))
        dl.facts #stocktake-facts {
            div.fact data-field="scope" { dt { (t(lang, Key::StocktakeScope)) } dd { (scope_words(lang, v.head.scope_kind, &v.head.scope_ref, &v.scope_place)) } }
            div.fact data-field="opened" { dt { (t(lang, Key::OpenedAt)) } dd { (v.head.opened_by) " " (layout::time(v.head.opened_at)) } }
            @if let (Some(by), Some(at)) = (&v.head.closed_by, v.head.closed_at) {
                div.fact data-field="signed" { dt { (t(lang, Key::StocktakeSignedBy)) } dd #stocktake-signed-by { (by) " " (layout::time(at)) } }
            }
        }
        p { a #stocktake-report-link .report-link href={ "/reports/stocktakes/" (id) } { (t(lang, Key::PrintReport)) } }
        p #stocktake-counts {
            (t(lang, Key::StocktakeExpected)) " " span.count-expected { (v.result.expected) } " · "
            (t(lang, Key::StocktakeSeen)) " " span.count-seen { (v.result.seen) } " · "
            (t(lang, Key::StocktakeMissing)) " " span.count-missing { (v.result.missing.len()) } " · "
            (t(lang, Key::StocktakeUnexpected)) " " span.count-unexpected { (v.result.unexpected.len()) }
        }
        @if open {
            form #stocktake-scan-form .panel method="post" action={ "/stocktakes/" (id) "/scans" } {
                (csrf_field(session))
                label for="stocktake-scan-input" { (t(lang, Key::StocktakeScanHint)) }
                textarea #stocktake-scan-input name="tags" rows="3" required autofocus {}
                button #stocktake-scan-submit .primary type="submit" { (t(lang, Key::StocktakeScan)) }
            }
            form #stocktake-close-form method="post" action={ "/stocktakes/" (id) "/close" } data-once {
                (csrf_field(session))
                button #stocktake-close type="submit" { (t(lang, Key::StocktakeClose)) }
            }
        }
        h2 { (t(lang, Key::StocktakeExpected)) }
        ul #stocktake-expected {
            @for c in &v.expected_carriers {
                li.expected-carrier data-carrier-id=(c.id) data-seen=(seen(c.id)) {
                    (carrier_link(c.id, &c.control_no)) " " (level_tag(lang, c.level))
                    " " span.carrier-state data-state=(c.state.as_str()) { (t(lang, i18n::carrier_state(c.state))) }
                }
            }
        }
        h2 { (t(lang, Key::StocktakeMissing)) }
        ul #stocktake-missing {
            @for c in v.expected_carriers.iter().filter(|c| !seen(c.id)) {
                li.missing-carrier data-carrier-id=(c.id) {
                    (carrier_link(c.id, &c.control_no)) " " (level_tag(lang, c.level))
                    @if let Some(r) = v.resolutions.iter().find(|r| r.carrier_id == c.id) {
                        " " span.resolution data-resolution=(r.resolution.as_str()) {
                            (t(lang, resolution_key(r.resolution))) ": " (r.note)
                        }
                    } @else if !open {
                        form.resolve method="post" action={ "/stocktakes/" (id) "/resolutions" } data-carrier-id=(c.id) {
                            (csrf_field(session))
                            input type="hidden" name="carrier_id" value=(c.id);
                            label { (t(lang, Key::ResolutionLabel)) " "
                                select.resolution-choice name="resolution" {
                                    option value="missing" { (t(lang, Key::ResolutionMissing)) }
                                    option value="correction" { (t(lang, Key::ResolutionCorrection)) }
                                }
                            }
                            label { (t(lang, Key::MoveNote)) " " input.resolution-note name="note" required maxlength="200"; }
                            button.resolve-submit type="submit" { (t(lang, Key::ResolveButton)) }
                        }
                    }
                }
            }
        }
        h2 { (t(lang, Key::StocktakeUnexpected)) }
        ul #stocktake-unexpected {
            @for tag in &v.result.unexpected {
                li.unexpected-tag data-tag=(tag) { code { (tag) } }
            }
        }
    }
}

pub(super) fn resolution_key(r: Resolution) -> Key {
    match r {
        Resolution::Missing => Key::ResolutionMissing,
        Resolution::Correction => Key::ResolutionCorrection,
    }
}

fn stocktake_path(id: &str) -> Option<(StocktakeId, String)> {
    let id: StocktakeId = id.parse().ok()?;
    Some((id, format!("/stocktakes/{id}")))
}

/// `POST /stocktakes/{id}/scans` (field `tags`: one scan per line).
pub async fn scan(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some((id, to)) = stocktake_path(&id) else {
        return Ok(not_found(&page.session, Key::StocktakeNotFound));
    };
    let texts = lines(submitted.form.get("tags"));
    let result = moves::scan(&state, &page.cap.cap, id, texts)
        .await
        .map(|_| "scanned");
    back(&page.session, &to, result)
}

/// `POST /stocktakes/{id}/close`.
pub async fn close(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some((id, to)) = stocktake_path(&id) else {
        return Ok(not_found(&page.session, Key::StocktakeNotFound));
    };
    let result = moves::close_stocktake(&state, &page.cap.cap, id)
        .await
        .map(|_| "closed");
    back(&page.session, &to, result)
}

/// `POST /stocktakes/{id}/resolutions` (fields `carrier_id`, `resolution`, `note`).
pub async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let form = submitted.form;
    let Some((id, to)) = stocktake_path(&id) else {
        return Ok(not_found(&page.session, Key::StocktakeNotFound));
    };
    let (Ok(carrier), Some(resolution)) = (
        form.get("carrier_id").parse::<CarrierId>(),
        Resolution::from_name(form.get("resolution")),
    ) else {
        return Ok(see_other(&format!("{to}?refused=invalid")));
    };
    let note = form.get("note").trim().to_owned();
    let result = moves::resolve(&state, &page.cap.cap, id, carrier, resolution, note)
        .await
        .map(|_| "resolved");
    back(&page.session, &to, result)
}

// ---------------------------------------------------------------------------------------
// Transfers

/// `GET /transfers`: the form that asks for one, and every transfer with its next step.
pub async fn transfers_page(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let list = transfers::list(&state, &page.cap.reader(), RequestKind::Transfer)
        .await
        .map_err(|e| session.internal(e))?;
    let content = html! {
        h1 { (t(lang, Key::TransfersTitle)) }
        (message(lang, session))
        form #transfer-form .panel method="post" action="/transfers" {
            (csrf_field(session))
            h2 { (t(lang, Key::TransferNew)) }
            label for="transfer-carriers" { (t(lang, Key::TransferCarriers)) }
            textarea #transfer-carriers name="carriers" rows="3" {}
            label for="transfer-from-unit" { (t(lang, Key::TransferFromUnit)) }
            input #transfer-from-unit name="from_unit" maxlength="200";
            label for="transfer-to-unit" { (t(lang, Key::TransferToUnit)) }
            input #transfer-to-unit name="to_unit" required maxlength="200";
            label for="transfer-to-custodian" { (t(lang, Key::TransferToCustodian)) }
            input #transfer-to-custodian name="to_custodian" inputmode="numeric" maxlength="20";
            label for="transfer-reason" { (t(lang, Key::MoveReason)) }
            input #transfer-reason name="reason" required maxlength="200";
            button #transfer-submit .primary type="submit" { (t(lang, Key::TransferSubmit)) }
        }
        @if list.is_empty() {
            p #transfer-empty .empty { (t(lang, Key::TransfersNone)) }
        }
        ul #transfer-list {
            @for m in &list { (transfer_item(lang, session, m)) }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::TransfersTitle),
        "custodian",
        content,
    ))
}

/// The furthest step a movement has reached, from `steps` listed furthest first (a transfer:
/// `received`, `handed_over`), or its request's state before any of them.
pub(super) fn step_reached(m: &Movement, steps: &[&'static str]) -> &'static str {
    steps
        .iter()
        .find(|&&step| m.steps.iter().any(|s| s.step == step))
        .copied()
        .unwrap_or_else(|| m.request.state.as_str())
}

fn transfer_item(lang: Lang, session: &WebSession, m: &Movement) -> Markup {
    let r = &m.request;
    let step = step_reached(m, &["received", "handed_over"]);
    let carriers = super::approvals::body_carriers(&r.body);
    html! {
        li.transfer.panel data-request-id=(r.id) data-state=(r.state.as_str()) data-step=(step) {
            h3 { (t(lang, Key::RequestKindTransfer)) " #" (r.id) " "
                span.request-state data-state=(r.state.as_str()) { (t(lang, i18n::request_state(r.state))) } }
            ul.transfer-carriers {
                @for (id, no, _) in &carriers { li data-carrier-id=(id) { (carrier_link(*id, no)) } }
            }
            dl.facts {
                div.fact data-field="to_unit" { dt { (t(lang, Key::TransferToUnit)) } dd { (r.body["to_unit"].as_str().unwrap_or("")) } }
                div.fact data-field="requester" { dt { (t(lang, Key::Requester)) } dd { (r.requester.username) } }
                @for s in &m.steps {
                    div.fact data-field=(s.step) { dt { (step_name(lang, &s.step)) } dd { (s.by_username) " " (layout::time(s.at)) } }
                }
            }
            @if r.state == RequestState::Approved && step == "approved" {
                form.handover method="post" action={ "/transfers/" (r.id) "/handover" } data-once {
                    (csrf_field(session))
                    button.handover.primary type="submit" data-id=(r.id) { (t(lang, Key::HandOverButton)) }
                }
            }
            @if step == "handed_over" {
                form.receive method="post" action={ "/transfers/" (r.id) "/receive" } data-once {
                    (csrf_field(session))
                    button.receive.primary type="submit" data-id=(r.id) { (t(lang, Key::ReceiveButton)) }
                }
            }
        }
    }
}

pub(super) fn step_name(lang: Lang, step: &str) -> &'static str {
    t(
        lang,
        match step {
            "handed_over" => Key::StepHandedOver,
            "received" => Key::StepReceived,
            "sent" => Key::StepSent,
            _ => Key::StepDelivered,
        },
    )
}

/// `POST /transfers`: ask for a transfer of the carriers typed or scanned (control numbers or
/// tags, one per line), or of everything a unit keeps.
pub async fn request_transfer(
    State(state): State<AppState>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let form = submitted.form;
    let session = &page.session;
    let (carrier_ids, unknown) =
        match moves::carriers_by_text(&state, &page.cap.cap, lines(form.get("carriers"))).await {
            Ok(found) => found,
            Err(e) => return back(session, "/transfers", Err(e)),
        };
    if !unknown.is_empty() {
        return Ok(see_other("/transfers?refused=unknown_reference"));
    }
    let to_custodian = match form
        .non_empty("to_custodian")
        .map(|p| p.trim().parse::<PersonId>())
    {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return Ok(see_other("/transfers?refused=invalid")),
    };
    let new = NewTransfer {
        carrier_ids,
        from_unit: form.non_empty("from_unit").map(|u| u.trim().to_owned()),
        to_unit: form.get("to_unit").trim().to_owned(),
        to_custodian,
        reason: form.get("reason").trim().to_owned(),
    };
    let result = transfers::request_transfer(&state, &page.cap.cap, new)
        .await
        .map(|_| "requested");
    back(session, "/transfers", result)
}

pub(super) fn request_id(id: &str) -> Option<RequestId> {
    id.parse().ok()
}

/// `POST /transfers/{id}/handover`.
pub async fn handover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some(id) = request_id(&id) else {
        return Ok(see_other("/transfers?refused=not_found"));
    };
    let result = transfers::hand_over(&state, &page.cap.cap, id)
        .await
        .map(|_| "handed_over");
    back(&page.session, "/transfers", result)
}

/// `POST /transfers/{id}/receive`.
pub async fn receive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some(id) = request_id(&id) else {
        return Ok(see_other("/transfers?refused=not_found"));
    };
    let result = transfers::receive(&state, &page.cap.cap, id)
        .await
        .map(|_| "received");
    back(&page.session, "/transfers", result)
}

// ---------------------------------------------------------------------------------------
// Year-end collections and the retention review

/// `GET /collections`: every collection; a security officer also gets the form that opens
/// this year's.
pub async fn collections_page(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let list = moves::collections(&state, &page.cap)
        .await
        .map_err(|e| session.internal(e))?;
    let officer = matches!(page.cap, CustodyReader::SecurityOfficer(_));
    let content = html! {
        h1 { (t(lang, Key::CollectionsTitle)) }
        (message(lang, session))
        @if officer {
            form #collection-form .panel method="post" action="/collections" {
                (csrf_field(session))
                label for="collection-year" { (t(lang, Key::CollectionYear)) }
                input #collection-year name="year" required inputmode="numeric" maxlength="4"
                    value=(state.now().date().ymd().0);
                button #collection-submit .primary type="submit" { (t(lang, Key::CollectionOpen)) }
            }
        }
        @if list.is_empty() {
            p #collection-empty .empty { (t(lang, Key::CollectionsNone)) }
        }
        ul #collection-list {
            @for c in &list {
                li.collection data-collection-id=(c.id) data-year=(c.year) {
                    a href={ "/collections/" (c.id) } { (c.year) " " (t(lang, Key::CollectionsTitle)) }
                    " " (c.opened_by) " " (layout::time(c.opened_at))
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::CollectionsTitle),
        "custodian",
        content,
    ))
}

/// `POST /collections` (security officer; field `year`).
pub async fn open_collection(
    State(state): State<AppState>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Ok(year) = submitted.form.get("year").trim().parse::<i64>() else {
        return Ok(see_other("/collections?refused=invalid"));
    };
    match moves::open_collection(&state, &page.cap.cap, year).await {
        Ok(id) => Ok(see_other(&format!("/collections/{id}?done=opened"))),
        Err(e) => back(&page.session, "/collections", Err(e)),
    }
}

/// `GET /collections/{id}`: progress and report per department, and every carrier called
/// in; a custodian closes each one here.
pub async fn collection_page(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let Ok(id) = id.parse::<CollectionId>() else {
        return Ok(not_found(session, Key::CollectionNotFound));
    };
    let report = match moves::collection(&state, &page.cap, id).await {
        Ok(r) => r,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::CollectionNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    let custodian = matches!(page.cap, CustodyReader::Custodian(_));
    let title = format!("{} {}", report.head.year, t(lang, Key::CollectionsTitle));
    let content = html! {
        h1 #collection-heading data-collection-id=(id) data-complete=(report.complete) { (title) }
        (message(lang, session))
        p { a #collection-report-link .report-link href={ "/reports/collections/" (id) } { (t(lang, Key::PrintReport)) } }
        table #department-table {
            thead { tr {
                th { (t(lang, Key::Department)) } th { (t(lang, Key::CalledIn)) } th { (t(lang, Key::Returned)) }
                th { (t(lang, Key::OutcomeKept)) } th { (t(lang, Key::OutcomeArchived)) }
                th { (t(lang, Key::OutcomeDestroyed)) } th { (t(lang, Key::StillOpen)) }
                th { (t(lang, Key::NavReports)) }
            } }
            tbody {
                @for d in &report.departments {
                    tr.department data-department=(d.department) {
                        td { (d.department) } td.called-in { (d.called_in) } td.returned { (d.returned) }
                        td.kept { (d.kept) } td.archived { (d.archived) } td.destroyed { (d.destroyed) }
                        td.open { (d.open) }
                        td { a.department-report href={ "/reports/collections/" (id) "?department=" (super::form::encode(&d.department)) } { (t(lang, Key::PrintDepartment)) } }
                    }
                }
            }
        }
        table #collection-items {
            tbody {
                @for item in &report.items {
                    tr.collection-item data-carrier-id=(item.carrier.id)
                        data-outcome=(item.outcome.map_or("", |o| o.as_str())) {
                        td { (carrier_link(item.carrier.id, &item.carrier.control_no)) " " (level_tag(lang, item.carrier.level)) }
                        td { (item.department) } td { (item.holder_name.as_deref().unwrap_or("—")) }
                        td { span.carrier-state data-state=(item.carrier.state.as_str()) { (t(lang, i18n::carrier_state(item.carrier.state))) } }
                        td {
                            @if let Some(o) = item.outcome {
                                span.outcome data-outcome=(o.as_str()) { (t(lang, outcome_key(o))) }
                            } @else if custodian {
                                form.close-item method="post" action={ "/collections/" (id) "/items/" (item.carrier.id) } {
                                    (csrf_field(session))
                                    select.outcome-choice name="outcome" aria-label=(t(lang, Key::CollectionOutcome)) {
                                        @for o in Outcome::ALL { option value=(o.as_str()) { (t(lang, outcome_key(o))) } }
                                    }
                                    button.close-item-submit type="submit" { (t(lang, Key::CloseItem)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(session, &title, "custodian", content).into_response())
}

pub(super) fn outcome_key(o: Outcome) -> Key {
    match o {
        Outcome::Kept => Key::OutcomeKept,
        Outcome::Archived => Key::OutcomeArchived,
        Outcome::Destroyed => Key::OutcomeDestroyed,
    }
}

/// `POST /collections/{id}/items/{carrier_id}` (custodian; field `outcome`).
pub async fn close_collection_item(
    State(state): State<AppState>,
    Path((id, carrier)): Path<(String, String)>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let (Ok(id), Ok(carrier), Some(outcome)) = (
        id.parse::<CollectionId>(),
        carrier.parse::<CarrierId>(),
        Outcome::from_name(submitted.form.get("outcome")),
    ) else {
        return Ok(see_other("/collections?refused=invalid"));
    };
    let result = moves::close_item(&state, &page.cap.cap, id, carrier, outcome)
        .await
        .map(|_| "closed");
    back(&page.session, &format!("/collections/{id}"), result)
}

/// `GET /retention`: carriers past their retention (保管期限), for archive or destruction.
pub async fn retention_page(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let due = moves::retention_review(&state, &page.cap)
        .await
        .map_err(|e| session.internal(e))?;
    let content = html! {
        h1 { (t(lang, Key::RetentionTitle)) }
        @if due.is_empty() {
            p #retention-empty .empty { (t(lang, Key::RetentionNone)) }
        } @else {
            table #retention-table {
                tbody {
                    @for l in &due {
                        tr.retention data-carrier-id=(l.carrier.id) {
                            td { (carrier_link(l.carrier.id, &l.carrier.control_no)) " " (level_tag(lang, l.carrier.level)) }
                            td { (l.carrier.owner_unit) }
                            td.retention-until { (l.retention_until.map(|d| d.to_string()).unwrap_or_default()) }
                            td.distribution-scope { (l.distribution_scope.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::RetentionTitle),
        "custodian",
        content,
    ))
}
