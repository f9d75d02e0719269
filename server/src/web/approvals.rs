//! The security officer's decisions on requests of every kind (issue #10 A): the reject form
//! shared by every queue, and the section of the approval page listing copies, destructions,
//! reclassifications (and the kinds other areas add: transfers, dispatches, travel) awaiting a
//! decision, with `POST /requests/{kind}/{id}/approve` and `/reject`.
//!
//! The handlers call the same use cases as the API ([`crate::service::approvals`]); the rules
//! (never the requester or beneficiary, TS two people, no second approval by the same officer)
//! decide, and a refusal comes back to the approval page as `#approval-message[data-code]`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::custodian::{CustodianDesk, carrier_link, level_tag};
use super::i18n::{self, Key, Lang, t};
use super::layout::csrf_field;
use super::officer::OfficerDesk;
use super::session::{Page, WebError, WebForm, WebSession, see_other};
use crate::AppState;
use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::carrier::level_from_code;
use crate::domain::ids::{CarrierId, RequestId};
use crate::service::{ServiceError, approvals, reclassifications};
use crate::store::approvals::Request;

/// The reject form: a required reason and a button, posting to `action`.
/// Hooks: `form.reject[data-kind][data-id]` with `textarea.reject-reason[name=reason]` and
/// `button.reject`.
pub fn reject_form(lang: Lang, session: &WebSession, action: &str, kind: &str, id: i64) -> Markup {
    let field = format!("reject-reason-{kind}-{id}");
    html! {
        form.reject method="post" action=(action) data-kind=(kind) data-id=(id) data-once {
            (csrf_field(session))
            label for=(field) { (t(lang, Key::RejectReason)) }
            textarea.reject-reason id=(field) name="reason" required maxlength="200" rows="2" {}
            button.reject type="submit" data-kind=(kind) data-id=(id) { (t(lang, Key::RejectButton)) }
        }
    }
}

/// The section listing requests (not sign-outs) awaiting a decision:
/// `#request-list > li.request[data-kind][data-request-id][data-approvals-needed]`, or
/// `#request-empty`.
pub async fn pending_section(
    state: &AppState,
    page: &Page<OfficerDesk>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let queue = approvals::list(
        state,
        &page.cap.reader(),
        None,
        Some(RequestState::Requested),
    )
    .await
    .map_err(|e| session.internal(e))?;
    Ok(html! {
        h2 #requests-title { (t(lang, Key::RequestsTitle)) }
        @if queue.is_empty() {
            p #request-empty .empty { (t(lang, Key::NoRequests)) }
        }
        ul #request-list {
            @for req in &queue { (request_item(lang, session, req)) }
        }
    })
}

/// The carriers of a request as its body lists them (`carriers`: id, control_no, level).
pub fn body_carriers(body: &serde_json::Value) -> Vec<(CarrierId, String, Option<&str>)> {
    body.get("carriers")
        .and_then(|c| c.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|c| {
                    let id = c.get("id")?.as_str()?.parse().ok()?;
                    let no = c.get("control_no")?.as_str()?.to_owned();
                    Some((CarrierId(id), no, c.get("level").and_then(|l| l.as_str())))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn request_item(lang: Lang, session: &WebSession, req: &Request) -> Markup {
    let kind = req.kind.path();
    html! {
        li.request.panel data-kind=(kind) data-request-id=(req.id) data-state=(req.state.as_str())
            data-approvals-needed=(req.approvals_needed) {
            h3 { (t(lang, i18n::request_kind(req.kind))) " #" (req.id) }
            ul.request-carriers {
                @for (id, no, level) in body_carriers(&req.body) {
                    li data-carrier-id=(id) {
                        (carrier_link(id, &no))
                        @if let Some(level) = level.and_then(level_from_code) { " " (level_tag(lang, level)) }
                    }
                }
            }
            dl.facts {
                div.fact { dt { (t(lang, Key::Requester)) } dd.requester { (req.requester.username) } }
                @for (name, value) in details(&req.body) {
                    div.fact data-field=(name) { dt { (name) } dd { (value) } }
                }
                div.fact { dt { (t(lang, Key::ApprovalsSoFar)) } dd.approvals-so-far {
                    @if req.approvals.is_empty() { "—" }
                    @for a in &req.approvals { span.approver { (a.approver.username) } " " }
                } }
                div.fact { dt { (t(lang, Key::ApprovalsNeeded)) } dd.approvals-needed { (req.approvals_needed) } }
            }
            @if req.approvals.iter().any(|a| a.approver.username == session.username()) {
                p.approved-by-you { (t(lang, Key::YouApprovedAlready)) }
            } @else {
                form.approve method="post" action={ "/requests/" (kind) "/" (req.id) "/approve" } data-once {
                    (csrf_field(session))
                    button.approve.primary type="submit" data-kind=(kind) data-id=(req.id) { (t(lang, Key::ApproveButton)) }
                }
            }
            (reject_form(lang, session, &format!("/requests/{kind}/{}/reject", req.id), kind, req.id.0))
        }
    }
}

/// The simple fields of a request body other than its carriers (count, method, level,
/// reason, purpose), as shown.
fn details(body: &serde_json::Value) -> Vec<(&str, String)> {
    let Some(map) = body.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| k.as_str() != "carriers")
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k.as_str(), s.clone())),
            serde_json::Value::Number(n) => Some((k.as_str(), n.to_string())),
            _ => None,
        })
        .collect()
}

fn parse(kind: &str, id: &str) -> Option<(RequestKind, RequestId)> {
    let kind = RequestKind::from_path(kind).filter(|k| *k != RequestKind::Signout)?;
    Some((kind, id.parse().ok()?))
}

fn refused(e: ServiceError, session: &WebSession) -> Result<Response, WebError> {
    let code = match e {
        ServiceError::Approval(e) => e.code(),
        ServiceError::EndOfLife { code, .. } => code,
        ServiceError::Moves(e) => e.code(),
        ServiceError::Invalid(_) => "invalid_reason",
        ServiceError::NotFound => "not_found",
        other => return Err(session.internal(other)),
    };
    Ok(see_other(&format!("/approvals?refused={code}")))
}

/// `POST /requests/{kind}/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some((kind, id)) = parse(&kind, &id) else {
        return Ok(see_other("/approvals?refused=not_found"));
    };
    let decided = if kind == RequestKind::Reclassification {
        // Its final approval changes the level at once.
        reclassifications::approve(&state, &page.cap.cap, id).await
    } else {
        approvals::approve(&state, &page.cap.cap, kind, id).await
    };
    match decided {
        Ok(done) => Ok(see_other(&format!(
            "/approvals?approved={id}&needed={}",
            done.approvals_needed
        ))),
        Err(e) => refused(e, &page.session),
    }
}

/// `POST /requests/{kind}/{id}/reject` (field `reason`).
pub async fn reject(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some((kind, id)) = parse(&kind, &id) else {
        return Ok(see_other("/approvals?refused=not_found"));
    };
    let reason = submitted.form.get("reason").trim().to_owned();
    match approvals::reject(&state, &page.cap.cap, kind, id, reason).await {
        Ok(_) => Ok(see_other(&format!("/approvals?rejected={id}"))),
        Err(e) => refused(e, &page.session),
    }
}

// ---------------------------------------------------------------------------------------
// The carrier page: lineage, requests about this carrier, and the custodian's request forms.

/// The lineage and requests panel of a carrier's page (`#lineage-panel`): where it was
/// copied from (`#lineage-original a.carrier-no`), the first original of its chain
/// (`#lineage-root`), its copies (`#lineage-copies li[data-carrier-id]`), the requests that
/// name it (`#carrier-requests li.request[data-kind][data-request-id][data-state]`, with
/// `button.make-copies` on an approved copy request and `a.record-destruction` on an approved
/// destruction), and for a custodian the forms `#copy-form`, `#destruction-form`,
/// `#reclass-form`.
pub async fn carrier_panel(
    state: &AppState,
    session: &WebSession,
    cap: &crate::auth::capability::CustodyReader,
    id: CarrierId,
    kind: crate::domain::carrier::CarrierKind,
) -> Result<Markup, WebError> {
    let lang = session.lang;
    let lineage = crate::service::copies::lineage(state, cap, id)
        .await
        .map_err(|e| session.internal(e))?;
    let requests = approvals::for_carrier(state, cap, id)
        .await
        .map_err(|e| session.internal(e))?;
    let custodian = session.may(crate::auth::capability::CustodianCap::ROLES);
    let q = super::custodian::query(session);
    Ok(html! {
        section.panel #lineage-panel {
            h2 { (t(lang, Key::LineageTitle)) }
            @if let Some(code) = q.non_empty("refused") {
                p #request-error .tone-bad role="alert" data-code=(code) { (t(lang, Key::RequestRefused)) " (" (code) ")" }
            }
            @if let Some(n) = q.non_empty("requested") {
                p #flash .flash role="status" data-request-id=(n) { (t(lang, Key::RequestSent)) }
            }
            dl.facts {
                div.fact data-field="original" { dt { (t(lang, Key::CopiedFrom)) } dd #lineage-original {
                    @if let Some(o) = &lineage.original { (carrier_link(o.id, &o.control_no)) } @else { "—" }
                } }
                div.fact data-field="root" { dt { (t(lang, Key::LineageRoot)) } dd #lineage-root {
                    (carrier_link(lineage.root.id, &lineage.root.control_no))
                } }
                div.fact data-field="copies" { dt { (t(lang, Key::CopiesMade)) } dd {
                    @if lineage.copies.is_empty() { span #lineage-no-copies { "—" } }
                    ul #lineage-copies {
                        @for c in &lineage.copies {
                            li data-carrier-id=(c.id) data-copy-no=[c.copy_no] { (carrier_link(c.id, &c.control_no)) }
                        }
                    }
                } }
            }
            @if !requests.is_empty() {
                h3 { (t(lang, Key::RequestsAboutCarrier)) }
                ul #carrier-requests {
                    @for r in &requests { (carrier_request(lang, session, custodian, r)) }
                }
            }
            @if custodian { (request_forms(lang, session, id, kind)) }
        }
    })
}

fn carrier_request(lang: Lang, session: &WebSession, custodian: bool, r: &Request) -> Markup {
    let kind = r.kind.path();
    html! {
        li.request data-kind=(kind) data-request-id=(r.id) data-state=(r.state.as_str()) {
            (t(lang, i18n::request_kind(r.kind))) " #" (r.id) " · "
            span.request-state data-state=(r.state.as_str()) { (t(lang, i18n::request_state(r.state))) }
            @if let Some(rej) = &r.rejection {
                " · " span.rejection-reason { (t(lang, Key::RejectedBecause)) ": " (rej.reason) }
            }
            @if custodian && r.state == RequestState::Approved && r.kind == RequestKind::Copy {
                form.make-copies method="post" action={ "/requests/copies/" (r.id) "/make" } data-once {
                    (csrf_field(session))
                    button.make-copies.primary type="submit" data-request-id=(r.id) { (t(lang, Key::MakeCopies)) }
                }
            }
            @if custodian && r.state == RequestState::Approved && r.kind == RequestKind::Destruction {
                " " a.record-destruction.button href={ "/destructions/" (r.id) "/record" } { (t(lang, Key::RecordDestruction)) }
            }
            @if r.kind == RequestKind::Destruction && r.state != RequestState::Rejected {
                " " a.destruction-report href={ "/reports/destructions/" (r.id) } { (t(lang, Key::PrintRecord)) }
            }
        }
    }
}

fn request_forms(
    lang: Lang,
    session: &WebSession,
    id: CarrierId,
    kind: crate::domain::carrier::CarrierKind,
) -> Markup {
    let methods = crate::domain::destruction::methods_for(kind);
    html! {
        details.request-forms {
            summary { (t(lang, Key::NewRequest)) }
            form #copy-form method="post" action={ "/carriers/" (id) "/copies" } data-once {
                h3 { (t(lang, Key::RequestKindCopy)) }
                (csrf_field(session))
                label for="copy-count" { (t(lang, Key::CopyCount)) }
                input #copy-count type="number" name="count" min="1" max="50" value="1" required;
                label for="copy-purpose" { (t(lang, Key::Purpose)) }
                input #copy-purpose type="text" name="purpose" maxlength="200" required;
                button #copy-submit type="submit" { (t(lang, Key::SendRequest)) }
            }
            form #destruction-form method="post" action={ "/carriers/" (id) "/destructions" } data-once {
                h3 { (t(lang, Key::RequestKindDestruction)) }
                (csrf_field(session))
                label for="destruction-method" { (t(lang, Key::DestructionMethod)) }
                select #destruction-method name="method" {
                    @for m in methods { option value=(m.as_str()) { (t(lang, method_key(*m))) } }
                }
                label for="destruction-reason" { (t(lang, Key::Reason)) }
                input #destruction-reason type="text" name="reason" maxlength="200" required;
                button #destruction-submit type="submit" { (t(lang, Key::SendRequest)) }
            }
            form #reclass-form method="post" action={ "/carriers/" (id) "/reclassifications" } data-once {
                h3 { (t(lang, Key::RequestKindReclassification)) }
                (csrf_field(session))
                label for="reclass-level" { (t(lang, Key::NewLevel)) }
                select #reclass-level name="level" {
                    option value="TS" { (t(lang, Key::LevelTopSecret)) }
                    option value="S" { (t(lang, Key::LevelSecret)) }
                    option value="C" { (t(lang, Key::LevelConfidential)) }
                    option value="declassified" { (t(lang, Key::CarrierStateDeclassified)) }
                }
                label for="reclass-reason" { (t(lang, Key::Reason)) }
                input #reclass-reason type="text" name="reason" maxlength="200" required;
                button #reclass-submit type="submit" { (t(lang, Key::SendRequest)) }
            }
        }
    }
}

pub(super) fn method_key(m: crate::domain::destruction::Method) -> Key {
    use crate::domain::destruction::Method;
    match m {
        Method::Shred => Key::MethodShred,
        Method::Incinerate => Key::MethodIncinerate,
        Method::Degauss => Key::MethodDegauss,
        Method::Physical => Key::MethodPhysical,
    }
}

fn refused_at(
    carrier: CarrierId,
    e: ServiceError,
    session: &WebSession,
) -> Result<Response, WebError> {
    let code = match e {
        ServiceError::Approval(e) => e.code(),
        ServiceError::EndOfLife { code, .. } => code,
        ServiceError::Moves(e) => e.code(),
        ServiceError::Invalid(problems) => problems.first().map_or("invalid", |p| p.code),
        ServiceError::UnknownReference { .. } => "unknown_reference",
        ServiceError::Duplicate { .. } => "conflict",
        ServiceError::NotFound => "not_found",
        other => return Err(session.internal(other)),
    };
    Ok(see_other(&format!("/carriers/{carrier}?refused={code}")))
}

fn carrier_of(id: &str) -> Option<CarrierId> {
    id.parse().ok()
}

/// `POST /carriers/{id}/copies` (fields `count`, `purpose`).
pub async fn request_copies(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some(carrier) = carrier_of(&id) else {
        return Ok(see_other("/carriers"));
    };
    let new = crate::service::copies::NewCopies {
        original_id: carrier,
        count: submitted.form.get("count").trim().parse().unwrap_or(0),
        purpose: submitted.form.get("purpose").trim().to_owned(),
    };
    match crate::service::copies::request(&state, &page.cap.cap, new).await {
        Ok(d) => Ok(see_other(&format!(
            "/carriers/{carrier}?requested={}",
            d.id
        ))),
        Err(e) => refused_at(carrier, e, &page.session),
    }
}

/// `POST /carriers/{id}/destructions` (fields `method`, `reason`).
pub async fn request_destruction(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some(carrier) = carrier_of(&id) else {
        return Ok(see_other("/carriers"));
    };
    let Some(method) = crate::domain::destruction::Method::from_name(submitted.form.get("method"))
    else {
        return Ok(see_other(&format!("/carriers/{carrier}?refused=method")));
    };
    let new = crate::service::destructions::NewDestruction {
        carrier_ids: vec![carrier],
        method,
        reason: submitted.form.get("reason").trim().to_owned(),
    };
    match crate::service::destructions::request(&state, &page.cap.cap, new).await {
        Ok(d) => Ok(see_other(&format!(
            "/carriers/{carrier}?requested={}",
            d.id
        ))),
        Err(e) => refused_at(carrier, e, &page.session),
    }
}

/// `POST /carriers/{id}/reclassifications` (fields `level`, `reason`).
pub async fn request_reclassification(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some(carrier) = carrier_of(&id) else {
        return Ok(see_other("/carriers"));
    };
    let Some(level) =
        crate::domain::reclassification::Target::from_name(submitted.form.get("level"))
    else {
        return Ok(see_other(&format!("/carriers/{carrier}?refused=level")));
    };
    let new = crate::service::reclassifications::NewReclassification {
        carrier_id: carrier,
        level,
        reason: submitted.form.get("reason").trim().to_owned(),
    };
    match crate::service::reclassifications::request(&state, &page.cap.cap, new).await {
        Ok(d) => Ok(see_other(&format!(
            "/carriers/{carrier}?requested={}",
            d.id
        ))),
        Err(e) => refused_at(carrier, e, &page.session),
    }
}

/// `POST /requests/copies/{id}/make`: make the copies, then show the first new carrier
/// (its lineage names the original).
pub async fn make_copies(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Ok(id) = id.parse::<RequestId>() else {
        return Ok(see_other("/carriers"));
    };
    match crate::service::copies::make(&state, &page.cap.cap, id).await {
        Ok(made) => match made.carrier_ids.first() {
            Some(first) => Ok(see_other(&format!("/carriers/{first}?copied={id}"))),
            None => Ok(see_other("/carriers")),
        },
        Err(e) => {
            let code = match e {
                ServiceError::Approval(e) => e.code(),
                ServiceError::EndOfLife { code, .. } => code,
                ServiceError::Moves(e) => e.code(),
                ServiceError::NotFound => "not_found",
                other => return Err(page.session.internal(other)),
            };
            Ok(see_other(&format!("/carriers?refused={code}")))
        }
    }
}

/// `GET /destructions/{id}/record`: the destruction record form (`#record-form` with
/// `#witness-1`, `#witness-2`, `#record-count`, `#record-submit`; `#record-error[data-code]`
/// after a refusal).
pub async fn record_page(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let Ok(id) = id.parse::<RequestId>() else {
        return Ok(super::custodian::not_found(session, Key::RequestNotFound));
    };
    let req = match approvals::show(&state, &page.cap.reader(), RequestKind::Destruction, id).await
    {
        Ok(r) => r,
        Err(ServiceError::NotFound) => {
            return Ok(super::custodian::not_found(session, Key::RequestNotFound));
        }
        Err(e) => return Err(session.internal(e)),
    };
    let people = crate::service::people::list(&state, &page.cap.people)
        .await
        .map_err(|e| session.internal(e))?;
    let q = super::custodian::query(session);
    let witness_select = |field: &str| {
        html! {
            select id=(field) name=(field) required {
                option value="" { "—" }
                @for p in &people { option value=(p.id) { (p.name) " · " (p.department) } }
            }
        }
    };
    let content = html! {
        h1 #record-heading data-request-id=(req.id) data-state=(req.state.as_str()) {
            (t(lang, Key::RecordDestruction)) " #" (req.id)
        }
        @if let Some(code) = q.non_empty("refused") {
            p #record-error .tone-bad role="alert" data-code=(code) { (t(lang, Key::RequestRefused)) " (" (code) ")" }
        }
        ul.request-carriers {
            @for (cid, no, level) in body_carriers(&req.body) {
                li data-carrier-id=(cid) {
                    (carrier_link(cid, &no))
                    @if let Some(level) = level.and_then(level_from_code) { " " (level_tag(lang, level)) }
                }
            }
        }
        @if req.state == RequestState::Approved {
            form #record-form method="post" action={ "/destructions/" (req.id) "/record" } data-once {
                (csrf_field(session))
                p.hint { (t(lang, Key::WitnessRules)) }
                label for="witness-1" { (t(lang, Key::Witness)) " 1" }
                (witness_select("witness-1"))
                label for="witness-2" { (t(lang, Key::Witness)) " 2" }
                (witness_select("witness-2"))
                label for="record-count" { (t(lang, Key::CountedCarriers)) }
                input #record-count type="number" name="count" min="0" required;
                label for="record-place" { (t(lang, Key::DestructionPlace)) }
                input #record-place type="text" name="place" maxlength="200";
                button #record-submit.primary type="submit" { (t(lang, Key::RecordDestruction)) }
            }
        } @else {
            p #record-state .notice data-state=(req.state.as_str()) { (t(lang, i18n::request_state(req.state))) }
        }
        p { a #destruction-report-link .report-link href={ "/reports/destructions/" (req.id) } { (t(lang, Key::PrintRecord)) } }
    };
    Ok(
        super::custodian::frame(session, t(lang, Key::RecordDestruction), "custody", content)
            .into_response(),
    )
}

/// `POST /destructions/{id}/record` (fields `witness-1`, `witness-2`, `count`; the time is
/// now).
pub async fn record(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Ok(id) = id.parse::<RequestId>() else {
        return Ok(see_other("/carriers"));
    };
    let witnesses = ["witness-1", "witness-2"]
        .iter()
        .filter_map(|f| submitted.form.get(f).trim().parse().ok())
        .collect();
    let record = crate::service::destructions::DestructionRecord {
        witnesses,
        at: state.now(),
        count: submitted.form.get("count").trim().parse().ok(),
        place: Some(submitted.form.get("place").trim())
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    };
    match crate::service::destructions::record(&state, &page.cap.cap, id, record).await {
        Ok(ids) => match ids.first() {
            Some(first) => Ok(see_other(&format!("/carriers/{first}?destroyed={id}"))),
            None => Ok(see_other("/carriers")),
        },
        Err(e) => {
            let code = match e {
                ServiceError::Approval(e) => e.code(),
                ServiceError::EndOfLife { code, .. } => code,
                ServiceError::Moves(e) => e.code(),
                ServiceError::UnknownReference { .. } => "unknown_reference",
                ServiceError::Invalid(_) => "invalid",
                ServiceError::NotFound => "not_found",
                other => return Err(page.session.internal(other)),
            };
            Ok(see_other(&format!(
                "/destructions/{id}/record?refused={code}"
            )))
        }
    }
}
