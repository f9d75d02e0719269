//! The lifecycle parts of the custody pages: on a carrier's page the leak-deadline clock of a
//! missing carrier, the missing/found forms, the corrections with before and after, and the
//! incident records; the correction form (`/carriers/{id}/correct`, custodian); the printable
//! incident record (`/incidents/{id}`) with its "who was told" form.
//!
//! Every form posts with the session's CSRF field and calls the same use case as the API
//! ([`crate::service::lifecycle`]); a refusal comes back to the carrier page as
//! `#lifecycle-message[data-code]`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::custodian::{carrier_link, frame, level_tag, maybe_time, not_found, query};
use super::i18n::{Key, Lang, t};
use super::layout::{self, csrf_field};
use super::officer::{LeakClock, leak_clock};
use super::session::{Page, WebError, WebForm, WebSession, see_other};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader};
use crate::domain::carrier::CarrierState;
use crate::domain::ids::CarrierId;
use crate::domain::lifecycle::{CorrectionPatch, MissingCause};
use crate::domain::time::Timestamp;
use crate::service::ServiceError;
use crate::service::lifecycle::{self, Correction};
use crate::store::carriers::Carrier;
use crate::store::lifecycle::{CorrectionRecord, Incident};

fn carrier_id(text: &str) -> Option<CarrierId> {
    text.parse().ok()
}

/// The code a refusal shows as `#lifecycle-message[data-code]`.
fn refusal_code(e: &ServiceError) -> Option<&'static str> {
    match e {
        ServiceError::Lifecycle(e) => Some(e.code()),
        ServiceError::Invalid(problems) => Some(problems.first().map_or("invalid", |p| p.code)),
        ServiceError::UnknownReference { .. } => Some("unknown_reference"),
        ServiceError::Duplicate { .. } => Some("duplicate"),
        _ => None,
    }
}

fn refusal_text(lang: Lang, code: &str) -> &'static str {
    t(
        lang,
        match code {
            "already_missing" => Key::LcErrAlreadyMissing,
            "not_missing" => Key::LcErrNotMissing,
            "not_in_circulation" => Key::LcErrNotInCirculation,
            "nothing_to_change" => Key::LcErrNothingToChange,
            "duplicate" => Key::LcErrDuplicateTag,
            "secrecy_period_out_of_range" => Key::ErrSecrecyPeriod,
            "invalid" | "empty" | "too_long" | "too_many" => Key::LcErrInvalid,
            _ => Key::LcErrRule,
        },
    )
}

fn cause_text(lang: Lang, cause: MissingCause) -> &'static str {
    t(
        lang,
        match cause {
            MissingCause::Manual => Key::LcCauseManual,
            MissingCause::CabinetRemoval => Key::LcCauseCabinet,
            MissingCause::Overdue => Key::LcCauseOverdue,
            MissingCause::UnauthorizedRemoval => Key::LcCauseRemoval,
        },
    )
}

/// The leak-deadline clock of a missing carrier: `#leak-clock[data-passed][data-days-left]`.
pub fn clock(lang: Lang, clock: LeakClock) -> Markup {
    html! {
        p #leak-clock .leak-clock .passed[clock.passed] data-passed=(clock.passed)
            data-days-left=(clock.days_left) role="status" {
            strong { (t(lang, Key::LeakDeadline)) ": " }
            (maybe_time(lang, Timestamp::from_unix_ms(clock.deadline_ms))) " · "
            @if clock.passed {
                span.flag { (t(lang, Key::DeadlinePassed)) } " " (clock.days_over) " " (t(lang, Key::DaysUnit))
            } @else {
                (t(lang, Key::DaysLeft)) " " span.days-left { (clock.days_left) } " " (t(lang, Key::DaysUnit))
            }
        }
    }
}

/// The lifecycle section of carrier `carrier`'s page.
pub async fn carrier_panel(
    state: &AppState,
    cap: &CustodyReader,
    session: &WebSession,
    carrier: &Carrier,
) -> Result<Markup, WebError> {
    let lang = session.lang;
    let s = &carrier.summary;
    let id = s.id;
    let corrections = lifecycle::corrections(state, cap, id)
        .await
        .map_err(|e| session.internal(e))?;
    let incidents = lifecycle::incidents(state, cap, id)
        .await
        .map_err(|e| session.internal(e))?;
    let now_ms = state.now().unix_ms();
    let q = query(session);
    let refused = q.non_empty("refused").map(str::to_owned);
    let done = q.non_empty("done").map(str::to_owned);
    let is_custodian = matches!(cap, CustodyReader::Custodian(_));
    Ok(html! {
        section.panel #lifecycle-panel {
            h2 { (t(lang, Key::LcTitle)) }
            @if let Some(code) = &refused {
                p #lifecycle-message .error data-code=(code) role="alert" { (refusal_text(lang, code)) }
            } @else if let Some(code) = &done {
                p #lifecycle-message .flash data-code=(code) role="status" { (t(lang, Key::LcDone)) }
            }
            @if let (CarrierState::Missing, Some(since)) = (s.state, s.missing_since) {
                (clock(lang, leak_clock(s.level, since.unix_ms(), now_ms)))
                form #found-form method="post" action={ "/carriers/" (id) "/found" } {
                    (csrf_field(session))
                    label for="found-note" { (t(lang, Key::LcFoundNote)) }
                    textarea #found-note name="note" rows="2" maxlength="2000" required {}
                    button #found-submit type="submit" { (t(lang, Key::LcFoundButton)) }
                }
            }
            @if matches!(s.state, CarrierState::InStorage | CarrierState::Out) {
                form #missing-form method="post" action={ "/carriers/" (id) "/missing" } {
                    (csrf_field(session))
                    label for="missing-note" { (t(lang, Key::LcMissingNote)) }
                    textarea #missing-note name="note" rows="2" maxlength="2000" required {}
                    button #missing-submit .danger type="submit" { (t(lang, Key::LcMissingButton)) }
                }
            }
            @if is_custodian {
                p { a.button #correct-link href={ "/carriers/" (id) "/correct" } { (t(lang, Key::LcCorrectLink)) } }
            }
            h3 { (t(lang, Key::LcCorrections)) }
            @if corrections.is_empty() {
                p #corrections-empty .empty { (t(lang, Key::LcNoCorrections)) }
            } @else {
                ol #corrections {
                    @for c in &corrections { (correction_item(lang, c)) }
                }
            }
            h3 { (t(lang, Key::LcIncidents)) }
            @if incidents.is_empty() {
                p #incidents-empty .empty { (t(lang, Key::LcNoIncidents)) }
            } @else {
                ul #incidents {
                    @for i in &incidents {
                        li.incident data-incident-id=(i.id) data-cause=(i.cause.as_str())
                            data-open=(i.found_at.is_none()) {
                            (cause_text(lang, i.cause)) " · " (layout::time(i.missing_since)) " · "
                            @if let Some(found) = i.found_at {
                                (t(lang, Key::LcFoundAt)) " " (layout::time(found))
                            } @else {
                                (t(lang, Key::LcOpen))
                            }
                            " · " a.incident-print href={ "/incidents/" (i.id) } { (t(lang, Key::LcIncidentRecord)) }
                        }
                    }
                }
            }
        }
    })
}

/// The leak-deadline clocks of every missing carrier, soonest deadline first, for the security
/// officer's home page: `#leak-clocks` with
/// `li.leak-clock-item[data-carrier-id][data-level][data-passed][data-days-left]`, or nothing
/// when no carrier is missing (the full list is `/missing`).
pub async fn leak_clocks(
    state: &AppState,
    cap: &CustodyReader,
    session: &WebSession,
) -> Result<Markup, WebError> {
    let lang = session.lang;
    let filter = crate::store::carriers::CarrierFilter {
        state: Some(CarrierState::Missing),
        q: None,
    };
    let missing = crate::service::carriers::list(state, cap, filter)
        .await
        .map_err(|e| session.internal(e))?;
    let now_ms = state.now().unix_ms();
    let mut rows: Vec<(&Carrier, LeakClock)> = missing
        .iter()
        .filter_map(|c| {
            let since = c.summary.missing_since?;
            Some((c, leak_clock(c.summary.level, since.unix_ms(), now_ms)))
        })
        .collect();
    rows.sort_by_key(|(_, clock)| clock.deadline_ms);
    Ok(html! {
        @if !rows.is_empty() {
            section.panel #leak-clocks role="status" {
                h2 { a href="/missing" { (t(lang, Key::MissingTitle)) } " (" (rows.len()) ")" }
                ul {
                    @for (c, k) in &rows {
                        @let s = &c.summary;
                        li.leak-clock-item .passed[k.passed] data-carrier-id=(s.id) data-level=(s.level.code())
                            data-passed=(k.passed) data-days-left=(k.days_left) {
                            (carrier_link(s.id, &s.control_no)) " " (level_tag(lang, s.level)) " · "
                            (t(lang, Key::LeakDeadline)) " " (maybe_time(lang, Timestamp::from_unix_ms(k.deadline_ms))) " · "
                            @if k.passed {
                                span.flag { (t(lang, Key::DeadlinePassed)) } " " (k.days_over) " " (t(lang, Key::DaysUnit))
                            } @else {
                                (t(lang, Key::DaysLeft)) " " (k.days_left) " " (t(lang, Key::DaysUnit))
                            }
                        }
                    }
                }
            }
        }
    })
}

fn json_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "—".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

fn correction_item(lang: Lang, c: &CorrectionRecord) -> Markup {
    let fields: Vec<&String> = c
        .after
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    html! {
        li.correction data-correction-id=(c.id) {
            (layout::time(c.at)) " · " span.actor { (c.actor) } " · "
            span.reason { (c.reason) }
            table.change {
                thead { tr { th { (t(lang, Key::LcField)) } th { (t(lang, Key::LcBefore)) } th { (t(lang, Key::LcAfter)) } } }
                tbody {
                    @for f in fields {
                        tr.changed-field data-field=(f) {
                            td { (f) }
                            td.before { (json_text(c.before.get(f))) }
                            td.after { (json_text(c.after.get(f))) }
                        }
                    }
                }
            }
        }
    }
}

async fn missing_or_found(
    state: &AppState,
    submitted: WebForm<CustodyReader>,
    id: &str,
    found: bool,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Some(id) = carrier_id(id) else {
        return Ok(not_found(&page.session, Key::CarrierNotFound));
    };
    let note = submitted.form.get("note");
    let result = if found {
        lifecycle::report_found(state, &page.cap, id, note).await
    } else {
        lifecycle::report_missing(state, &page.cap, id, note).await
    };
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/carriers/{id}?done={}",
            if found { "found" } else { "missing" }
        ))),
        Err(ServiceError::NotFound) => Ok(not_found(&page.session, Key::CarrierNotFound)),
        Err(e) => match refusal_code(&e) {
            Some(code) => Ok(see_other(&format!("/carriers/{id}?refused={code}"))),
            None => Err(page.session.internal(e)),
        },
    }
}

/// `POST /carriers/{id}/missing` (custodian, security officer).
pub async fn report_missing(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodyReader>,
) -> Result<Response, WebError> {
    missing_or_found(&state, submitted, &id, false).await
}

/// `POST /carriers/{id}/found` (custodian, security officer).
pub async fn report_found(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodyReader>,
) -> Result<Response, WebError> {
    missing_or_found(&state, submitted, &id, true).await
}

/// The values the correction form shows.
struct CorrectionForm {
    reason: String,
    title: String,
    owner_unit: String,
    home: String,
    tags: String,
    copy_no: String,
    secrecy_years: String,
}

fn correction_page(
    session: &WebSession,
    carrier: &Carrier,
    form: &CorrectionForm,
    refused: Option<&str>,
) -> Markup {
    let lang = session.lang;
    let s = &carrier.summary;
    let content = html! {
        h1 #correct-heading data-carrier-id=(s.id) {
            (t(lang, Key::LcCorrectTitle)) " " (carrier_link(s.id, &s.control_no)) " " (level_tag(lang, s.level))
        }
        p.hint { (t(lang, Key::LcCorrectHint)) }
        @if let Some(code) = refused {
            p #correct-error .error data-code=(code) role="alert" { (refusal_text(lang, code)) }
        }
        section.panel {
            form #correct-form method="post" action={ "/carriers/" (s.id) "/correct" } {
                (csrf_field(session))
                label for="correct-title" { (t(lang, Key::CarrierTitle)) }
                input #correct-title name="title" value=(form.title) maxlength="200" required;
                label for="correct-owner-unit" { (t(lang, Key::OwnerUnit)) }
                input #correct-owner-unit name="owner_unit" value=(form.owner_unit) maxlength="200" required;
                label for="correct-home" { (t(lang, Key::HomeCabinet)) }
                input #correct-home name="home_device" value=(form.home);
                label for="correct-tags" { (t(lang, Key::Tags)) }
                textarea #correct-tags name="tags" rows="3" { (form.tags) }
                label for="correct-copy-no" { (t(lang, Key::CopyNo)) }
                input #correct-copy-no name="copy_no" inputmode="numeric" value=(form.copy_no);
                label for="correct-secrecy-years" { (t(lang, Key::SecrecyPeriod)) }
                input #correct-secrecy-years name="secrecy_years" inputmode="numeric" maxlength="2"
                    value=(form.secrecy_years) aria-describedby="correct-secrecy-years-hint";
                p.hint #correct-secrecy-years-hint { (t(lang, Key::SecrecyPeriodHint)) }
                label for="correct-reason" { (t(lang, Key::LcReason)) }
                textarea #correct-reason name="reason" rows="2" maxlength="500" required { (form.reason) }
                button #correct-submit type="submit" { (t(lang, Key::LcCorrectButton)) }
            }
        }
    };
    let title = format!("{} · {}", t(lang, Key::LcCorrectTitle), s.control_no);
    frame(session, &title, "custody", content)
}

fn current_form(carrier: &Carrier) -> CorrectionForm {
    let s = &carrier.summary;
    CorrectionForm {
        reason: String::new(),
        title: carrier.title.clone(),
        owner_unit: s.owner_unit.clone(),
        home: s.home_device.clone().unwrap_or_default(),
        tags: s
            .tags
            .iter()
            .map(|t| t.tag.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        copy_no: s.copy_no.map(|n| n.to_string()).unwrap_or_default(),
        secrecy_years: s.secrecy_years.to_string(),
    }
}

/// `GET /carriers/{id}/correct`: the correction form, filled with the entry as it is.
pub async fn correct_form(
    page: Page<CustodianCap>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let Some(id) = carrier_id(&id) else {
        return Ok(not_found(session, Key::CarrierNotFound));
    };
    let reader = CustodyReader::Custodian(page.cap.clone());
    let carrier = match crate::service::carriers::one(&state, &reader, id).await {
        Ok(c) => c,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::CarrierNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    Ok(correction_page(session, &carrier, &current_form(&carrier), None).into_response())
}

/// `POST /carriers/{id}/correct`: every field as shown, so the correction is what differs.
pub async fn correct(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodianCap>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let f = submitted.form;
    let session = &page.session;
    let Some(id) = carrier_id(&id) else {
        return Ok(not_found(session, Key::CarrierNotFound));
    };
    let home = f.get("home_device").trim();
    let copy_no = f.get("copy_no").trim();
    let secrecy_years = f.get("secrecy_years").trim();
    let patch = CorrectionPatch {
        title: Some(f.get("title").to_owned()),
        owner_unit: Some(f.get("owner_unit").to_owned()),
        home_device: Some((!home.is_empty()).then(|| home.to_owned())),
        tags: Some(
            f.get("tags")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        copy_no: copy_no.parse().ok(),
        // Empty keeps the period as it is.
        secrecy_years: secrecy_years.parse().ok(),
    };
    let input = Correction {
        reason: f.get("reason").to_owned(),
        patch,
        ..Correction::default()
    };
    let bad_copy_no = !copy_no.is_empty() && copy_no.parse::<u32>().is_err();
    let bad_secrecy = !secrecy_years.is_empty() && secrecy_years.parse::<u32>().is_err();
    let result = if bad_copy_no {
        Err(ServiceError::invalid(
            "copy_no",
            "invalid",
            "copy_no must be a number",
        ))
    } else if bad_secrecy {
        Err(ServiceError::invalid(
            "secrecy_years",
            "invalid",
            "secrecy_years must be a number",
        ))
    } else {
        lifecycle::correct(&state, &page.cap, id, input).await
    };
    let e = match result {
        Ok(_) => return Ok(see_other(&format!("/carriers/{id}?done=corrected"))),
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::CarrierNotFound)),
        Err(e) => e,
    };
    let Some(code) = refusal_code(&e) else {
        return Err(session.internal(e));
    };
    let status = match &e {
        ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
        ServiceError::Duplicate { .. } => StatusCode::CONFLICT,
        ServiceError::Lifecycle(l) if l.is_state_conflict() => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let reader = CustodyReader::Custodian(page.cap.clone());
    let carrier = crate::service::carriers::one(&state, &reader, id)
        .await
        .map_err(|e| session.internal(e))?;
    let form = CorrectionForm {
        reason: f.get("reason").to_owned(),
        title: f.get("title").to_owned(),
        owner_unit: f.get("owner_unit").to_owned(),
        home: home.to_owned(),
        tags: f.get("tags").to_owned(),
        copy_no: copy_no.to_owned(),
        secrecy_years: secrecy_years.to_owned(),
    };
    Ok((
        status,
        correction_page(session, &carrier, &form, Some(code)),
    )
        .into_response())
}

fn fact(lang: Lang, label: Key, field: &'static str, value: Markup) -> Markup {
    html! { div.fact data-field=(field) { dt { (t(lang, label)) } dd { (value) } } }
}

fn opt_text(text: Option<&str>) -> Markup {
    html! { @if let Some(text) = text { (text) } @else { "—" } }
}

/// `GET /incidents/{id}`: the incident record, laid out to be printed for the report to the
/// secrecy bureau (what happened, who was told and when, how it ended), with the form to
/// record who was told.
pub async fn incident(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let Ok(id) = id.parse::<i64>() else {
        return Ok(not_found(session, Key::LcIncidentNotFound));
    };
    let i: Incident = match lifecycle::incident(&state, &page.cap, id).await {
        Ok(i) => i,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::LcIncidentNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    let clock = leak_clock(i.level, i.missing_since.unix_ms(), state.now().unix_ms());
    let refused = query(session).non_empty("refused").map(str::to_owned);
    let content = html! {
        article #incident data-incident-id=(i.id) data-cause=(i.cause.as_str()) {
            h1 #incident-heading { (t(lang, Key::LcIncidentRecord)) " #" (i.id) }
            dl #incident-facts .facts {
                (fact(lang, Key::Carrier, "carrier", html! { (carrier_link(i.carrier_id, &i.control_no)) " " (level_tag(lang, i.level)) }))
                (fact(lang, Key::LcCause, "cause", html! { (cause_text(lang, i.cause)) }))
                (fact(lang, Key::MissingSince, "missing_since", layout::time(i.missing_since)))
                (fact(lang, Key::LeakDeadline, "leak_deadline", maybe_time(lang, Timestamp::from_unix_ms(clock.deadline_ms))))
                (fact(lang, Key::LcReportedBy, "reported_by", html! { (i.reported_by) " · " (layout::time(i.reported_at)) }))
                (fact(lang, Key::LcWhatHappened, "what_happened", html! { (i.what_happened) }))
                (fact(lang, Key::LcTold, "told", opt_text(i.told.as_deref())))
                (fact(lang, Key::LcToldAt, "told_at", maybe_time(lang, i.told_at)))
                (fact(lang, Key::LcFoundAt, "found_at", maybe_time(lang, i.found_at)))
                (fact(lang, Key::LcFoundBy, "found_by", opt_text(i.found_by.as_deref())))
                (fact(lang, Key::LcFoundNote, "found_note", opt_text(i.found_note.as_deref())))
            }
            @if i.found_at.is_none() { (self::clock(lang, clock)) }
            p.hint.no-print { (t(lang, Key::LcPrintHint)) }
        }
        section.panel.no-print {
            h2 { (t(lang, Key::LcTold)) }
            @if let Some(code) = &refused {
                p #told-error .error data-code=(code) role="alert" { (refusal_text(lang, code)) }
            }
            form #told-form method="post" action={ "/incidents/" (i.id) "/told" } {
                (csrf_field(session))
                label for="told-text" { (t(lang, Key::LcToldWho)) }
                textarea #told-text name="told" rows="2" maxlength="2000" required { (i.told.as_deref().unwrap_or_default()) }
                label for="told-at" { (t(lang, Key::LcToldAt)) " (UTC, " (t(lang, Key::LcDefaultNow)) ")" }
                input #told-at name="told_at" placeholder="2026-01-31T09:00:00Z";
                button #told-submit type="submit" { (t(lang, Key::LcToldButton)) }
            }
        }
    };
    let title = format!("{} #{}", t(lang, Key::LcIncidentRecord), i.id);
    Ok(frame(session, &title, "custody incident-print", content).into_response())
}

/// `POST /incidents/{id}/told`: who was told, and when (empty: now).
pub async fn told(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<CustodyReader>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let session = &page.session;
    let Ok(id) = id.parse::<i64>() else {
        return Ok(not_found(session, Key::LcIncidentNotFound));
    };
    let at_text = submitted.form.get("told_at").trim();
    let told_at = if at_text.is_empty() {
        None
    } else {
        match at_text.parse::<Timestamp>() {
            Ok(at) => Some(at),
            Err(_) => return Ok(see_other(&format!("/incidents/{id}?refused=invalid"))),
        }
    };
    match lifecycle::record_told(&state, &page.cap, id, submitted.form.get("told"), told_at).await {
        Ok(_) => Ok(see_other(&format!("/incidents/{id}"))),
        Err(ServiceError::NotFound) => Ok(not_found(session, Key::LcIncidentNotFound)),
        Err(e) => match refusal_code(&e) {
            Some(code) => Ok(see_other(&format!("/incidents/{id}?refused={code}"))),
            None => Err(session.internal(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::LifecycleError;

    #[test]
    fn every_refusal_has_words() {
        for e in [
            LifecycleError::AlreadyMissing,
            LifecycleError::NotMissing("in_storage"),
            LifecycleError::NotInCirculation("destroyed"),
            LifecycleError::NothingToChange,
        ] {
            let code = refusal_code(&ServiceError::Lifecycle(e)).unwrap();
            assert_ne!(refusal_text(Lang::En, code), t(Lang::En, Key::LcErrRule));
        }
        assert_eq!(
            refusal_text(Lang::Zh, "loan_too_long"),
            t(Lang::Zh, Key::LcErrRule)
        );
    }
}
