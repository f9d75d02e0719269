//! The security officer's decisions on requests of every kind (issue #10 A): the reject form
//! shared by every queue, and the section of the approval page listing copies, destructions,
//! reclassifications (and the kinds other areas add: transfers, dispatches, travel) awaiting a
//! decision, with `POST /requests/{kind}/{id}/approve` and `/reject`.
//!
//! The handlers call the same use cases as the API ([`crate::service::approvals`]); the rules
//! (never the requester or beneficiary, TS two people, no second approval by the same officer)
//! decide, and a refusal comes back to the approval page as `#approval-message[data-code]`.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};

use super::custodian::{carrier_link, level_tag};
use super::i18n::{self, Key, Lang, t};
use super::layout::csrf_field;
use super::officer::OfficerDesk;
use super::session::{Page, WebError, WebForm, WebSession, see_other};
use crate::AppState;
use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::carrier::level_from_code;
use crate::domain::ids::{CarrierId, RequestId};
use crate::service::{ServiceError, approvals};
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
    match approvals::approve(&state, &page.cap.cap, kind, id).await {
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
