//! The custodian's counter: the scan desk (`/desk`) and sign-out requests (`/signouts/new`).
//!
//! # The scan desk
//! One autofocused input, `#scan-input`. A keyboard-wedge scanner types the label text and
//! presses Enter, which submits the form (`GET /desk?scan=TEXT`); the page resolves the text to
//! a carrier with the register's tag lookup ([`crate::service::carriers::resolve`], the one
//! the API's `by-tag` uses) and shows it with the actions possible now: issue the approved
//! sign-out that contains it (`button#issue`), or take it back if it is out (`button#return`).
//! Text is tried as a tag (`epc:…`, `barcode:…`, `em:…`), as scanned barcode text (a Custos
//! label `CU…`, a GS1 GIAI, any registered barcode), and as a typed control number. An unknown
//! barcode says so in the user's language and the input keeps the focus for the next scan.
//!
//! Issue and return are POSTs answered with 303 back to the desk (Post/Redirect/Get). A second
//! issue of the same sign-out (a double click, a resent form) is refused by the store, which
//! loads the committed state on its single writer; the desk answers it with a friendly
//! "already issued" (409) instead of an error, and nothing is issued twice. Returns likewise.
//!
//! # Sign-out requests
//! Carriers are given by scanning or typing into a text area (one per line, resolved like the
//! desk) and/or by ticking carriers that are free; the borrower is chosen from the register;
//! the due time is a local date and time (the script adds the browser's offset from UTC; without
//! the script it is read as UTC). The use case decides (`service::signouts::request`, the API's call);
//! the form only reports each problem on its field first. The form carries a one-time token
//! ([`super::replay`]): sent twice, it requests once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use custos_protocol::barcode::CarrierLabel;
use maud::{Markup, html};

use super::custodian::{CustodianDesk, Errors, carrier_link, frame, level_tag, maybe_time, query};
use super::form::{FormData, encode};
use super::i18n::{self, Key, Lang, t};
use super::layout::{self, csrf_field, field_error, form_errors, invalid};
use super::replay::{self, Claim};
use super::session::{Page, WebError, WebForm, see_other};
use crate::AppState;
use crate::domain::carrier::{CarrierState, ControlNo, MAX_BARCODE_TEXT, Tag};
use crate::domain::ids::{CarrierId, SignoutId};
use crate::domain::level::Level;
use crate::domain::signout::{self, SignoutRuleError, SignoutState};
use crate::domain::time::Timestamp;
use crate::service::{Problem, ServiceError, carriers, people, signouts};
use crate::store::carriers::{Carrier, CarrierFilter};
use crate::store::signouts::{NewSignout, Signout};

/// The tags a scanned or typed text may stand for, in the order they are tried: a tag in its
/// text form; barcode text as a scanner sends it (normalised like the ingest path does); a
/// control number typed by hand (looked up through its label).
pub fn scan_candidates(text: &str) -> Vec<Tag> {
    let text = text.trim();
    let mut out = Vec::new();
    if text.is_empty() || text.len() > MAX_BARCODE_TEXT {
        return out;
    }
    if let Ok(tag) = Tag::parse(text) {
        out.push(tag);
        return out;
    }
    if let Ok(tag) = Tag::barcode(text) {
        out.push(tag);
    }
    if CarrierLabel::parse(text).is_ok() {
        // A label names its carrier itself; it is not also a typed control number.
        return out;
    }
    if let Ok(control) = ControlNo::new(&text.to_ascii_uppercase()) {
        if let Ok(tag) = Tag::barcode(&control.label()) {
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
    }
    out
}

/// The carrier a scanned text names, if any.
pub(super) async fn resolve(
    state: &AppState,
    desk: &CustodianDesk,
    text: &str,
) -> Result<Option<Carrier>, ServiceError> {
    carriers::resolve(state, &desk.cap, scan_candidates(text)).await
}

pub(super) fn refusal_list(lang: Lang, codes: &[&'static str]) -> Markup {
    html! {
        ul.would-refuse {
            @for code in codes {
                li.refusal data-code=(code) { (t(lang, i18n::refusal(code))) }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The scan desk

/// How a desk message looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Ok,
    Warn,
    Bad,
}

/// A message above the scan result: `#desk-message[data-kind]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Notice {
    kind: &'static str,
    tone: Tone,
    text: Key,
    reasons: Vec<&'static str>,
}

impl Notice {
    fn new(kind: &'static str, tone: Tone, text: Key) -> Notice {
        Notice {
            kind,
            tone,
            text,
            reasons: Vec::new(),
        }
    }
}

/// `GET /desk?scan=TEXT`.
pub async fn desk(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let q = query(&page.session);
    let notice = match q.get("done") {
        "issued" => Some(Notice::new("issued", Tone::Ok, Key::DeskIssued)),
        "returned" => Some(Notice::new("returned", Tone::Ok, Key::DeskReturned)),
        _ => None,
    };
    desk_page(&state, &page, q.get("scan"), notice).await
}

async fn desk_page(
    state: &AppState,
    page: &Page<CustodianDesk>,
    scan: &str,
    notice: Option<Notice>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let scan = scan.trim();
    let found = if scan.is_empty() {
        None
    } else {
        Some(
            resolve(state, &page.cap, scan)
                .await
                .map_err(|e| session.internal(e))?,
        )
    };
    let signout = match found.as_ref().and_then(|c| c.as_ref()) {
        Some(c) => match &c.summary.signout {
            Some(brief) => Some(
                signouts::one(state, &page.cap.reader(), brief.id)
                    .await
                    .map_err(|e| session.internal(e))?,
            ),
            None => None,
        },
        None => None,
    };
    let content = html! {
        h1 { (t(lang, Key::DeskTitle)) }
        section.panel.scan-panel {
            form #scan-form method="get" action="/desk" autocomplete="off" {
                label for="scan-input" { (t(lang, Key::ScanPrompt)) }
                div.scan-row {
                    input #scan-input type="text" name="scan" value="" autofocus required
                        autocomplete="off" autocapitalize="none" spellcheck="false"
                        enterkeyhint="go" aria-describedby="scan-hint";
                    button #scan-submit .primary type="submit" { (t(lang, Key::Look)) }
                }
                p.hint #scan-hint { (t(lang, Key::ScanHint)) }
            }
        }
        @if let Some(n) = &notice {
            div #desk-message .desk-message data-kind=(n.kind)
                .tone-ok[n.tone == Tone::Ok] .tone-warn[n.tone == Tone::Warn] .tone-bad[n.tone == Tone::Bad]
                role="status" {
                p { (t(lang, n.text)) }
                @if !n.reasons.is_empty() { (refusal_list(lang, &n.reasons)) }
            }
        }
        @match &found {
            None => {}
            Some(None) => {
                section #scan-result .panel data-found="false" {
                    p #scan-unknown .scan-unknown role="alert" {
                        (t(lang, Key::UnknownBarcode)) " " code.scanned { (scan) }
                    }
                }
            }
            Some(Some(carrier)) => {
                (scan_result(lang, session, scan, carrier, signout.as_ref()))
            }
        }
    };
    Ok(frame(session, t(lang, Key::DeskTitle), "desk", content))
}

fn scan_result(
    lang: Lang,
    session: &super::session::WebSession,
    scan: &str,
    carrier: &Carrier,
    signout: Option<&Signout>,
) -> Markup {
    let s = &carrier.summary;
    let outstanding = signout.is_some_and(|so| {
        so.state == SignoutState::Out
            && so
                .carriers
                .iter()
                .any(|c| c.id == s.id && c.returned_at.is_none())
    });
    let may_issue = signout.is_some_and(|so| so.state == SignoutState::Approved)
        && s.state == CarrierState::InStorage
        && !s.in_repair;
    let may_return = outstanding && s.state != CarrierState::InStorage;
    html! {
        section #scan-result .panel data-found="true" data-carrier-id=(s.id) data-state=(s.state.as_str()) {
            h2 {
                (carrier_link(s.id, &s.control_no)) " " (level_tag(lang, s.level))
                " " (super::repairs::state_tag(lang, s))
            }
            dl.facts {
                div.fact { dt { (t(lang, Key::CarrierKindLabel)) } dd { (t(lang, i18n::carrier_kind(s.kind))) } }
                div.fact { dt { (t(lang, Key::HomeCabinet)) } dd { @if let Some(h) = &s.home_device { (h) } @else { "—" } } }
                div.fact { dt { (t(lang, Key::Holder)) } dd.holder { @if let Some(h) = &s.holder { (h.name) } @else { "—" } } }
                div.fact { dt { (t(lang, Key::LastSeen)) } dd { (maybe_time(lang, s.last_seen.as_ref().map(|l| l.at))) } }
            }
            @if let Some(so) = signout {
                div.signout-box data-signout-id=(so.id) data-state=(so.state.as_str()) {
                    h3 {
                        (t(lang, Key::Signout)) " #" (so.id) " · "
                        span.signout-state data-state=(so.state.as_str()) { (t(lang, i18n::signout_state(so.state))) } (super::datetime::overdue_mark(lang, so.state, so.due_at))
                    }
                    dl.facts {
                        div.fact { dt { (t(lang, Key::Borrower)) } dd.borrower { (so.borrower.name) } }
                        div.fact { dt { (t(lang, Key::DueAt)) } dd { (layout::time(so.due_at)) } }
                        div.fact { dt { (t(lang, Key::MayLeave)) } dd { (t(lang, if so.may_leave { Key::Yes } else { Key::No })) } }
                        div.fact { dt { (t(lang, Key::Purpose)) } dd { (so.purpose) } }
                        @if let Some(note) = &so.override_note {
                            div.fact { dt { (t(lang, Key::NeedsOverride)) } dd.override-note { (note) } }
                        }
                        (super::officer::override_reasons(lang, so))
                    }
                    @if let Some(codes) = &so.would_refuse {
                        @if !codes.is_empty() {
                            p.notice { (t(lang, Key::WouldRefuse)) }
                            (refusal_list(lang, codes))
                        }
                    }
                }
            }
            div.desk-actions {
                @if may_issue {
                    @if let Some(so) = signout {
                        form #issue-form method="post" action="/desk/issue" data-once {
                            (csrf_field(session))
                            input type="hidden" name="signout" value=(so.id);
                            input type="hidden" name="scan" value=(scan);
                            button #issue .primary type="submit" data-signout-id=(so.id) { (t(lang, Key::IssueButton)) }
                        }
                    }
                }
                @if may_return {
                    @if let Some(so) = signout {
                        form #return-form method="post" action="/desk/return" data-once {
                            (csrf_field(session))
                            input type="hidden" name="signout" value=(so.id);
                            input type="hidden" name="carrier" value=(s.id);
                            input type="hidden" name="scan" value=(scan);
                            fieldset #return-condition {
                                legend { (t(lang, Key::ConditionCheck)) }
                                label for="return-seal" { (t(lang, Key::SealLabel)) }
                                select #return-seal name="seal" {
                                    option value="" { (t(lang, Key::NotChecked)) }
                                    option value="intact" { (t(lang, Key::SealIntact)) }
                                    option value="broken" { (t(lang, Key::SealBroken)) }
                                }
                                label for="return-pages" { (t(lang, Key::PagesCounted)) }
                                input #return-pages type="number" name="pages" min="0" max="100000" inputmode="numeric";
                                label for="return-note" { (t(lang, Key::ConditionNote)) }
                                input #return-note type="text" name="condition_note" maxlength="500";
                            }
                            button #return .primary type="submit" data-signout-id=(so.id) { (t(lang, Key::ReturnButton)) }
                        }
                    }
                }
                @if !may_issue && !may_return {
                    p #no-action .hint {
                        @match (signout.map(|so| so.state), s.state) {
                            (Some(SignoutState::Requested), _) => { (t(lang, Key::AwaitingApproval)) }
                            (None, CarrierState::InStorage) => {
                                (t(lang, Key::NoSignoutYet)) " "
                                a #request-link href={ "/signouts/new?carrier_id=" (s.id) } { (t(lang, Key::RequestSignout)) }
                            }
                            _ => { (t(lang, Key::NoActionNow)) }
                        }
                    }
                }
            }
        }
    }
}

fn desk_location(scan: &str, done: &str) -> String {
    format!("/desk?scan={}&done={done}", encode(scan))
}

/// `POST /desk/issue` (`signout`, `scan`): hand over an approved sign-out.
pub async fn issue(
    State(state): State<AppState>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let scan = form.get("scan").trim().to_owned();
    let Ok(id) = form.get("signout").trim().parse::<SignoutId>() else {
        let notice = Notice::new("not_found", Tone::Bad, Key::SignoutNotFound);
        let html = desk_page(&state, &page, &scan, Some(notice)).await?;
        return Ok((StatusCode::NOT_FOUND, html).into_response());
    };
    let (status, notice) = match signouts::issue(&state, &page.cap.cap, id).await {
        Ok(_) => return Ok(see_other(&desk_location(&scan, "issued"))),
        Err(ServiceError::Signout(SignoutRuleError::NotApproved(state_name))) => {
            let issued = matches!(state_name, "out" | "returned");
            let notice = if issued {
                Notice::new("already_issued", Tone::Warn, Key::AlreadyIssued)
            } else {
                Notice::new("not_approved", Tone::Bad, Key::NotApprovedYet)
            };
            (StatusCode::CONFLICT, notice)
        }
        Err(ServiceError::Signout(SignoutRuleError::Refused(reasons))) => {
            let mut notice = Notice::new("refused", Tone::Bad, Key::IssueRefused);
            notice.reasons = reasons.into_iter().map(|r| r.code()).collect();
            (StatusCode::UNPROCESSABLE_ENTITY, notice)
        }
        Err(ServiceError::Signout(SignoutRuleError::CarrierUnavailable { .. })) => (
            StatusCode::CONFLICT,
            Notice::new("carrier_unavailable", Tone::Bad, Key::CarrierUnavailable),
        ),
        Err(ServiceError::Moves(e)) => (
            StatusCode::CONFLICT,
            Notice::new(e.code(), Tone::Bad, Key::ErrCarrierInRepair),
        ),
        Err(ServiceError::Signout(other)) => (
            StatusCode::CONFLICT,
            Notice::new(other.code(), Tone::Bad, Key::NoActionNow),
        ),
        Err(ServiceError::NotFound) => (
            StatusCode::NOT_FOUND,
            Notice::new("not_found", Tone::Bad, Key::SignoutNotFound),
        ),
        Err(e) => return Err(page.session.internal(e)),
    };
    let html = desk_page(&state, &page, &scan, Some(notice)).await?;
    Ok((status, html).into_response())
}

/// `POST /desk/return` (`signout`, `carrier`, `scan`): take one carrier back.
pub async fn return_carrier(
    State(state): State<AppState>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let scan = form.get("scan").trim().to_owned();
    let ids = (
        form.get("signout").trim().parse::<SignoutId>(),
        form.get("carrier").trim().parse::<CarrierId>(),
    );
    let (Ok(id), Ok(carrier)) = ids else {
        let notice = Notice::new("not_found", Tone::Bad, Key::SignoutNotFound);
        let html = desk_page(&state, &page, &scan, Some(notice)).await?;
        return Ok((StatusCode::NOT_FOUND, html).into_response());
    };
    let condition = return_condition(&form);
    let (status, notice) =
        match signouts::return_checked(&state, &page.cap.cap, id, Some(vec![carrier]), condition)
            .await
        {
            Ok(_) => return Ok(see_other(&desk_location(&scan, "returned"))),
            Err(ServiceError::Invalid(_)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Notice::new("condition_invalid", Tone::Bad, Key::ConditionInvalid),
            ),
            Err(ServiceError::Signout(
                SignoutRuleError::CarrierNotOut { .. } | SignoutRuleError::NotOut(_),
            )) => (
                StatusCode::CONFLICT,
                Notice::new("already_returned", Tone::Warn, Key::AlreadyReturned),
            ),
            Err(ServiceError::Signout(other)) => (
                StatusCode::CONFLICT,
                Notice::new(other.code(), Tone::Bad, Key::NoActionNow),
            ),
            Err(ServiceError::NotFound) => (
                StatusCode::NOT_FOUND,
                Notice::new("not_found", Tone::Bad, Key::SignoutNotFound),
            ),
            Err(e) => return Err(page.session.internal(e)),
        };
    let html = desk_page(&state, &page, &scan, Some(notice)).await?;
    Ok((status, html).into_response())
}

/// The condition check of the return form (`seal` intact|broken, `pages`, `condition_note`);
/// none when nothing was checked. Unreadable page counts count as not counted.
fn return_condition(form: &FormData) -> Option<signouts::ReturnCondition> {
    let seal_intact = match form.get("seal").trim() {
        "intact" => Some(true),
        "broken" => Some(false),
        _ => None,
    };
    let pages_counted = form.get("pages").trim().parse().ok();
    let note = form
        .non_empty("condition_note")
        .map(|n| n.trim().to_owned());
    (seal_intact.is_some() || pages_counted.is_some() || note.is_some()).then_some(
        signouts::ReturnCondition {
            seal_intact,
            pages_counted,
            note,
        },
    )
}

// ---------------------------------------------------------------------------------------
// Sign-out requests

/// Bounds of the browser's offset from UTC, in minutes (UTC-14 to UTC+14, with margin).
const TZ_OFFSET_MAX: i64 = 15 * 60;

/// Read a `datetime-local` value (`YYYY-MM-DDTHH:MM[:SS]`) typed in a browser whose
/// `Date.getTimezoneOffset()` is `offset_min` (UTC = local + offset).
pub fn parse_local(text: &str, offset_min: i64) -> Option<Timestamp> {
    let text = text.trim().replace(' ', "T");
    let with_seconds = match text.len() {
        16 => format!("{text}:00Z"),
        19 => format!("{text}Z"),
        _ => return None,
    };
    let local: Timestamp = with_seconds.parse().ok()?;
    if offset_min.abs() > TZ_OFFSET_MAX {
        return None;
    }
    Some(local.plus_secs(offset_min * 60))
}

/// What the request form shows: the typed values and the errors.
#[derive(Debug, Default)]
struct SignoutForm {
    scanned: String,
    chosen: Vec<CarrierId>,
    borrower: String,
    purpose: String,
    due: String,
    tz_offset: String,
    may_leave: bool,
    /// The "needs override" note as typed (empty: a plain request).
    override_note: String,
    nonce: String,
    errors: Errors,
    unknown: Vec<String>,
    /// Carriers the request refused as not in storage or already on a sign-out, named in the
    /// error summary (it used to end in an empty "…已有借出单：" list).
    busy: Vec<String>,
}

impl SignoutForm {
    fn from(form: &FormData) -> SignoutForm {
        SignoutForm {
            scanned: form.get("carriers").to_owned(),
            chosen: form
                .all("carrier_id")
                .filter_map(|v| v.trim().parse().ok())
                .collect(),
            borrower: form.get("borrower").trim().to_owned(),
            purpose: form.get("purpose").trim().to_owned(),
            due: form.get("due").trim().to_owned(),
            tz_offset: form.get("tz_offset").trim().to_owned(),
            may_leave: !form.get("may_leave").is_empty(),
            override_note: form.get("override_note").trim().to_owned(),
            nonce: form.get(replay::NONCE_FIELD).trim().to_owned(),
            errors: Vec::new(),
            unknown: Vec::new(),
            busy: Vec::new(),
        }
    }

    /// The "needs override" note, if one was typed.
    fn override_note(&self) -> Option<String> {
        (!self.override_note.is_empty()).then(|| self.override_note.clone())
    }

    /// Show the use case's input problems at their fields (carrier problems only when every
    /// scanned line was a carrier: an unknown one is said already).
    fn input_problems(&mut self, problems: &[Problem]) {
        for p in problems {
            let error = match (p.field, p.code) {
                ("purpose", _) => ("purpose", Key::ErrPurpose),
                ("override_note", _) => ("override_note", Key::ErrOverrideNote),
                _ if !self.unknown.is_empty() => continue,
                (_, "too_many") => ("carriers", Key::ErrTooManyCarriers),
                _ => ("carriers", Key::ErrNoCarriers),
            };
            self.errors.push(error);
        }
    }

    fn lines(&self) -> Vec<&str> {
        self.scanned
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// `GET /signouts/new[?carrier_id=N]`.
pub async fn new_signout(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let q = query(&page.session);
    let form = SignoutForm {
        chosen: q
            .all("carrier_id")
            .filter_map(|v| v.trim().parse().ok())
            .collect(),
        nonce: replay::fresh(),
        ..SignoutForm::default()
    };
    let requested = q.non_empty("requested").map(str::to_owned);
    signout_page(&state, &page, &form, requested.as_deref()).await
}

/// `POST /signouts/new`: request; on success 303 back to the form with a note.
pub async fn request_signout(
    State(state): State<AppState>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let mut f = SignoutForm::from(&form);
    let guard = match state.form_tokens().claim(page.session.username(), &f.nonce) {
        Claim::Replay(to) => return Ok(see_other(&to)),
        Claim::InFlight => return Ok(see_other("/signouts/new")),
        Claim::Fresh(guard) => Some(guard),
        Claim::Unguarded => None,
    };
    // Carriers: the ticked ones, then each scanned line resolved like the desk does.
    let mut ids: Vec<CarrierId> = Vec::new();
    let mut names: Vec<(CarrierId, String)> = Vec::new();
    for id in &f.chosen {
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    let lines: Vec<String> = f.lines().into_iter().map(str::to_owned).collect();
    for line in &lines {
        match resolve(&state, &page.cap, line)
            .await
            .map_err(|e| page.session.internal(e))?
        {
            Some(c) => {
                names.push((c.summary.id, c.summary.control_no.clone()));
                if !ids.contains(&c.summary.id) {
                    ids.push(c.summary.id);
                }
            }
            None => f.unknown.push(line.clone()),
        }
    }
    // What only the form can get wrong (unreadable fields, labels that are no carrier);
    // the request's own checks are the use case's.
    if !f.unknown.is_empty() {
        f.errors.push(("carriers", Key::ErrUnknownBarcodes));
    }
    let everyone = people::list(&state, &page.cap.people)
        .await
        .map_err(|e| page.session.internal(e))?;
    let candidates: Vec<_> = everyone
        .iter()
        .map(super::borrower::Candidate::of)
        .collect();
    let borrower = match super::borrower::find(&f.borrower, &candidates) {
        Ok(id) => Some(id),
        Err(key) => {
            f.errors.push(("borrower", key));
            None
        }
    };
    let offset = if f.tz_offset.is_empty() {
        Some(0)
    } else {
        f.tz_offset.parse::<i64>().ok()
    };
    let due = offset.and_then(|o| parse_local(&f.due, o));
    if due.is_none() {
        f.errors.push(("due", Key::ErrDue));
    }
    if !f.errors.is_empty() {
        // Say everything wrong at once: the request's own checks on what could be read.
        if let Err(ServiceError::Invalid(problems)) =
            signouts::check_request_input(&ids, &f.purpose)
        {
            f.input_problems(&problems);
        }
        if due.is_some_and(|due| signout::check_due(due, state.now()).is_err()) {
            f.errors.push(("due", Key::ErrDueInPast));
        }
    }
    let status = match (borrower, due) {
        (Some(borrower), Some(due_at)) if f.errors.is_empty() => {
            let new = NewSignout {
                carrier_ids: ids,
                borrower,
                purpose: f.purpose.clone(),
                due_at,
                may_leave: f.may_leave,
                override_note: f.override_note(),
            };
            match signouts::request(&state, &page.cap.cap, new).await {
                Ok(id) => {
                    let to = format!("/signouts/new?requested={id}");
                    if let Some(guard) = guard {
                        guard.done(&to);
                    }
                    return Ok(see_other(&to));
                }
                Err(ServiceError::Signout(SignoutRuleError::CarrierUnavailable { carrier })) => {
                    f.errors.push(("carriers", Key::ErrCarrierBusy));
                    if let Some((_, name)) = names.iter().find(|(id, _)| *id == carrier) {
                        f.busy.push(name.clone());
                    } else {
                        f.busy.push(carrier.to_string());
                    }
                    StatusCode::CONFLICT
                }
                Err(ServiceError::Invalid(problems)) => {
                    f.input_problems(&problems);
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                Err(ServiceError::Moves(_)) => {
                    f.errors.push(("carriers", Key::ErrCarrierInRepair));
                    StatusCode::CONFLICT
                }
                Err(ServiceError::Signout(SignoutRuleError::DueNotInFuture)) => {
                    f.errors.push(("due", Key::ErrDueInPast));
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                Err(ServiceError::Signout(_)) => {
                    f.errors.push(("carriers", Key::ErrNoCarriers));
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                Err(ServiceError::UnknownReference { what }) => {
                    if what == "borrower" {
                        f.errors.push(("borrower", Key::ErrBorrower));
                    } else {
                        f.errors.push(("carriers", Key::ErrNoCarriers));
                    }
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                Err(e) => return Err(page.session.internal(e)),
            }
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let html = signout_page(&state, &page, &f, None).await?;
    Ok((status, html).into_response())
}

async fn signout_page(
    state: &AppState,
    page: &Page<CustodianDesk>,
    form: &SignoutForm,
    requested: Option<&str>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let reader = page.cap.reader();
    let people = people::list(state, &page.cap.people)
        .await
        .map_err(|e| session.internal(e))?;
    let in_storage = CarrierFilter {
        state: Some(CarrierState::InStorage),
        q: None,
    };
    let free: Vec<Carrier> = carriers::list(state, &reader, in_storage)
        .await
        .map_err(|e| session.internal(e))?
        .into_iter()
        .filter(|c| c.summary.signout.is_none() || form.chosen.contains(&c.summary.id))
        .collect();
    let live: Vec<Signout> = signouts::list(state, &reader, None)
        .await
        .map_err(|e| session.internal(e))?
        .into_iter()
        .filter(|s| s.state.is_live())
        .rev()
        .collect();
    let errors = &form.errors;
    let content = html! {
        h1 { (t(lang, Key::RequestSignout)) }
        @if let Some(id) = requested {
            p.flash #flash role="status" data-signout-id=(id) { (t(lang, Key::SignoutRequested)) " #" (id) }
        }
        div.admin-grid {
            section.panel.form-panel {
                (form_errors(lang, errors))
                @if !form.busy.is_empty() {
                    ul #signout-busy .form-errors role="alert" {
                        @for name in &form.busy { li.busy-carrier data-field="carriers" { code { (name) } } }
                    }
                }
                form #signout-form method="post" action="/signouts/new" data-once novalidate {
                    (csrf_field(session))
                    (replay::field(&form.nonce))
                    input #signout-tz type="hidden" name="tz_offset" value=(form.tz_offset);
                    label for="signout-carriers" { (t(lang, Key::CarriersToLend)) }
                    textarea #signout-carriers name="carriers" rows="4" spellcheck="false"
                        autofocus aria-invalid=[invalid(errors, "carriers")]
                        aria-describedby="signout-carriers-hint" { (form.scanned) }
                    p.hint #signout-carriers-hint { (t(lang, Key::CarriersHint)) }
                    (field_error(lang, errors, "carriers"))
                    @if !form.unknown.is_empty() {
                        ul #signout-unknown .field-error {
                            @for u in &form.unknown { li { code { (u) } } }
                        }
                    }
                    fieldset #signout-choose {
                        legend { (t(lang, Key::OrChoose)) }
                        @if free.is_empty() {
                            p.empty { (t(lang, Key::NoFreeCarriers)) }
                        }
                        div.choose-list {
                            @for c in &free {
                                label.check {
                                    input type="checkbox" name="carrier_id" value=(c.summary.id)
                                        data-level=(c.summary.level.code())
                                        id={ "signout-carrier-" (c.summary.id) }
                                        checked[form.chosen.contains(&c.summary.id)];
                                    span { span.carrier-no { (c.summary.control_no) } " " (level_tag(lang, c.summary.level)) }
                                }
                            }
                        }
                    }
                    label for="signout-borrower" { (t(lang, Key::Borrower)) }
                    (super::borrower::field(&form.borrower, &people, invalid(errors, "borrower")))
                    p.hint #signout-borrower-hint { (t(lang, Key::BorrowerHint)) }
                    div #signout-check data-state="idle" aria-live="polite"
                        data-ok-text=(t(lang, Key::CheckPassed)) data-refused-text=(t(lang, Key::CheckRefused)) {}
                    (field_error(lang, errors, "borrower"))
                    label for="signout-purpose" { (t(lang, Key::Purpose)) }
                    input #signout-purpose type="text" name="purpose" value=(form.purpose) required
                        maxlength="200" aria-invalid=[invalid(errors, "purpose")];
                    (field_error(lang, errors, "purpose"))
                    label for="signout-due" { (t(lang, Key::DueAt)) }
                    input #signout-due type="datetime-local" name="due" value=(form.due) required
                        aria-invalid=[invalid(errors, "due")] aria-describedby="signout-due-hint"
                        data-default-hours-ts=(Level::TopSecret.default_loan_hours())
                        data-default-hours-s=(Level::Secret.default_loan_hours())
                        data-default-hours-c=(Level::Confidential.default_loan_hours());
                    p.hint #signout-due-hint { (t(lang, Key::DueHint)) }
                    (field_error(lang, errors, "due"))
                    label.check {
                        input #signout-may-leave type="checkbox" name="may_leave" value="on" checked[form.may_leave];
                        span { (t(lang, Key::MayLeave)) }
                    }
                    label for="signout-override-note" { (t(lang, Key::OverrideNoteLabel)) }
                    input #signout-override-note type="text" name="override_note" value=(form.override_note)
                        maxlength="200" aria-describedby="signout-override-hint"
                        aria-invalid=[invalid(errors, "override_note")];
                    p.hint #signout-override-hint { (t(lang, Key::OverrideNoteHint)) }
                    (field_error(lang, errors, "override_note"))
                    button #signout-submit .primary type="submit" { (t(lang, Key::SubmitRequest)) }
                }
            }
            section.panel {
                h2 { (t(lang, Key::LiveSignouts)) }
                p { a #all-signouts href="/signouts/list" { (t(lang, Key::AllSignouts)) } }
                @if live.is_empty() {
                    p.empty { (t(lang, Key::NoLiveSignouts)) }
                } @else {
                    ul #live-signouts {
                        @for so in &live {
                            li.signout data-signout-id=(so.id) data-state=(so.state.as_str()) {
                                strong { "#" (so.id) } " "
                                span.signout-state data-state=(so.state.as_str()) { (t(lang, i18n::signout_state(so.state))) } (super::datetime::overdue_mark(lang, so.state, so.due_at))
                                " · " (so.borrower.name) " · "
                                @for c in &so.carriers { (carrier_link(c.id, &c.control_no)) " " }
                                " · " (t(lang, Key::DueAt)) " " (layout::time(so.due_at))
                                @if let Some(codes) = &so.would_refuse {
                                    @if !codes.is_empty() { (refusal_list(lang, codes)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::RequestSignout),
        "custody",
        content,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_are_tried_as_tags_labels_and_control_numbers() {
        let label = ControlNo::new("2024-0017").unwrap().label();
        assert_eq!(
            scan_candidates(&label),
            [Tag::barcode(&label).unwrap()],
            "a label is itself, once"
        );
        assert_eq!(
            scan_candidates(&format!("  {}  ", label.to_lowercase())),
            [Tag::barcode(&label).unwrap()]
        );
        assert_eq!(
            scan_candidates("2024-0017"),
            [
                Tag::barcode("2024-0017").unwrap(),
                Tag::barcode(&label).unwrap()
            ],
            "raw barcode text first, then the control number's label"
        );
        assert_eq!(
            scan_candidates("epc:3474257bf40000000000162e"),
            [Tag::parse("epc:3474257BF40000000000162E").unwrap()]
        );
        assert!(scan_candidates("   ").is_empty());
        assert!(scan_candidates(&"x".repeat(2000)).is_empty());
    }

    #[test]
    fn local_due_times_take_the_browser_offset() {
        let utc: Timestamp = "2030-05-01T10:00:00Z".parse().unwrap();
        assert_eq!(parse_local("2030-05-01T10:00", 0), Some(utc));
        // Beijing: getTimezoneOffset() = -480; 18:00 local is 10:00 UTC.
        assert_eq!(parse_local("2030-05-01T18:00", -480), Some(utc));
        assert_eq!(parse_local("2030-05-01T18:00:00", -480), Some(utc));
        assert_eq!(parse_local("2030-05-01 10:00", 0), Some(utc));
        for bad in ["", "2030-05-01", "2030-13-01T10:00", "tomorrow"] {
            assert_eq!(parse_local(bad, 0), None, "{bad}");
        }
        assert_eq!(parse_local("2030-05-01T10:00", 10_000), None);
    }

    #[test]
    fn the_request_form_keeps_what_was_typed() {
        let form = FormData::parse(
            b"carriers=CU1%0D%0A2&carrier_id=4&carrier_id=x&borrower=2&purpose=review&due=2030-01-01T10%3A00&may_leave=on",
        )
        .unwrap();
        let f = SignoutForm::from(&form);
        assert_eq!(f.lines(), ["CU1", "2"]);
        assert_eq!(f.chosen, [CarrierId(4)]);
        assert!(f.may_leave);
        assert_eq!(f.due, "2030-01-01T10:00");
    }
}
