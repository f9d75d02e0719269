//! The security officer's pages (保密员): the approval queue, the register of people with
//! their clearance, training and commitment, overdue sign-outs, missing carriers with the days
//! left before the leak deadline, and the history of handled alerts. The live alert console is
//! the guard console (`/guard`), which security officers also open.
//!
//! As everywhere, the handlers call the store functions the API handlers call, with the same
//! capabilities ([`OfficerDesk`]: the security officer's capability and the read capabilities
//! of people and alerts, which every security officer holds). The domain decides: an approval
//! by the requester or the borrower is refused by `domain::signout::approve` and the page
//! shows why; a departure while the person still holds carriers is refused by
//! `domain::person::depart` (清退 first); the leak deadline is
//! [`crate::domain::sweep::leak_deadline_ms`]. Approvals and status changes repeat harmlessly:
//! the store refuses a second one and the page says it was already done.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::custodian::{Errors, carrier_link, frame, level_tag, maybe_time, not_found, query};
use super::form::FormData;
use super::i18n::{self, Key, Lang, t};
use super::layout::{self, csrf_field, field_error, form_errors, invalid};
use super::paging::{
    ListAsk, ListSpec, fitting_page, pager, reset_notice, search_field, sort_header,
};
use super::replay::{self, Claim};
use super::session::{Page, WebError, WebForm, WebSession, see_other};
use crate::AppState;
use crate::api::error::ApiError;
use crate::auth::capability::CustodyReader;
use crate::auth::capability::{AlertReaderCap, PeopleReaderCap, SecurityOfficerCap};
use crate::domain::alert::{AlertKind, AlertState};
use crate::domain::carrier::CarrierState;
use crate::domain::ids::SignoutId;
use crate::domain::level::Level;
use crate::domain::person::{Category, PersonStatus, StatusChangeError};
use crate::domain::role::Role;
use crate::domain::signout::{SignoutRuleError, SignoutState};
use crate::domain::sweep::{DAY_MS, leak_deadline_ms};
use crate::domain::time::{Date, Timestamp};
use crate::service::{Problem, ServiceError, carriers, people, signouts};
use crate::store::alerts::{AlertFilter, AlertView};
use crate::store::carriers::{Carrier, CarrierFilter};
use crate::store::notify::DeliveryState;
use crate::store::people::{NewPerson, Person};
use crate::store::signouts::Signout;

/// A security officer, with the read capabilities of people and alerts that the officer's
/// pages also need. Every security officer holds both; the officer check runs first, so the
/// roles are exactly [`OfficerDesk::ROLES`].
#[derive(Debug, Clone)]
pub struct OfficerDesk {
    /// The security officer capability.
    pub cap: SecurityOfficerCap,
    /// Reading the register of people.
    pub people: PeopleReaderCap,
    /// Reading alerts.
    pub alerts: AlertReaderCap,
}

impl OfficerDesk {
    /// The roles that open the security officer's pages.
    pub const ROLES: &'static [Role] = SecurityOfficerCap::ROLES;

    /// The custody reader (carriers, sign-outs) of this officer.
    pub fn reader(&self) -> CustodyReader {
        CustodyReader::SecurityOfficer(self.cap.clone())
    }
}

impl FromRequestParts<AppState> for OfficerDesk {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let cap = SecurityOfficerCap::from_request_parts(parts, state).await?;
        let people = PeopleReaderCap::from_request_parts(parts, state).await?;
        let alerts = AlertReaderCap::from_request_parts(parts, state).await?;
        Ok(OfficerDesk {
            cap,
            people,
            alerts,
        })
    }
}

/// A message at the top of an officer page: `#NAME-message[data-code]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Notice {
    code: &'static str,
    bad: bool,
    text: Key,
    count: Option<u32>,
}

impl Notice {
    pub(super) fn bad(code: &'static str, text: Key) -> Notice {
        Notice {
            code,
            bad: true,
            text,
            count: None,
        }
    }

    pub(super) fn ok(code: &'static str, text: Key) -> Notice {
        Notice {
            code,
            bad: false,
            text,
            count: None,
        }
    }

    pub(super) fn render(&self, lang: Lang, id: &str) -> Markup {
        html! {
            div id=(id) .page-message .tone-bad[self.bad] .tone-ok[!self.bad]
                data-code=(self.code) role=(if self.bad { "alert" } else { "status" }) {
                (t(lang, self.text))
                @if let Some(n) = self.count { " " span.count { (n) } }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Approvals

/// `GET /approvals`: sign-outs awaiting approval.
pub async fn approvals(
    page: Page<OfficerDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let q = query(&page.session);
    let notice = q
        .non_empty("approved")
        .map(|_| {
            if q.get("needed").parse::<u32>().unwrap_or(0) > 0 {
                Notice::ok("approved_partly", Key::ApprovedNeedsSecond)
            } else {
                Notice::ok("approved", Key::ApprovedDone)
            }
        })
        .or_else(|| {
            q.non_empty("rejected")
                .map(|_| Notice::ok("rejected", Key::RejectedDone))
        })
        .or_else(|| q.non_empty("refused").map(refused_notice));
    approvals_page(&state, &page, notice).await
}

/// The notice for a decision on a request refused by a rule (`?refused=CODE`, see
/// [`super::approvals`]).
fn refused_notice(code: &str) -> Notice {
    match code {
        "self_approval" => Notice::bad("self_approval", Key::ErrSelfApproval),
        "already_approved" => Notice::bad("already_approved", Key::ErrAlreadyApproved),
        "not_requested" => Notice::bad("not_requested", Key::ErrNotAwaitingApproval),
        "invalid_reason" => Notice::bad("invalid_reason", Key::ErrReason),
        _ => Notice::bad("not_found", Key::RequestNotFound),
    }
}

async fn approvals_page(
    state: &AppState,
    page: &Page<OfficerDesk>,
    notice: Option<Notice>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let queue = signouts::list(state, &page.cap.reader(), Some(SignoutState::Requested))
        .await
        .map_err(|e| session.internal(e))?;
    // The officer's home: the leak-deadline clocks of missing carriers come first.
    let leak_clocks = super::lifecycle::leak_clocks(state, &page.cap.reader(), session).await?;
    let content = html! {
        (leak_clocks)
        h1 { (t(lang, Key::ApprovalsTitle)) }
        @if let Some(n) = &notice { (n.render(lang, "approval-message")) }
        @if queue.is_empty() {
            p #approval-empty .empty { (t(lang, Key::NoApprovals)) }
        }
        ul #approval-list {
            @for so in &queue { (approval_item(lang, session, so)) }
        }
        (super::approvals::pending_section(state, page).await?)
    };
    Ok(frame(
        session,
        t(lang, Key::ApprovalsTitle),
        "officer",
        content,
    ))
}

fn approval_item(lang: Lang, session: &WebSession, so: &Signout) -> Markup {
    html! {
        li.approval.panel data-signout-id=(so.id) data-approvals-needed=(so.approvals_needed) {
            h2 {
                (t(lang, Key::Signout)) " #" (so.id) " "
                @if let Some(top) = so.carriers.iter().map(|c| c.level).max() { (level_tag(lang, top)) }
            }
            ul.approval-carriers {
                @for c in &so.carriers {
                    li data-carrier-id=(c.id) { (carrier_link(c.id, &c.control_no)) " " (level_tag(lang, c.level)) " " (t(lang, i18n::carrier_kind(c.kind))) }
                }
            }
            dl.facts {
                div.fact { dt { (t(lang, Key::Borrower)) } dd.borrower { (so.borrower.name) } }
                div.fact { dt { (t(lang, Key::Requester)) } dd.requester { (so.requester.username) } }
                div.fact { dt { (t(lang, Key::Purpose)) } dd { (so.purpose) } }
                div.fact { dt { (t(lang, Key::DueAt)) } dd { (layout::time(so.due_at)) } }
                div.fact { dt { (t(lang, Key::MayLeave)) } dd { (t(lang, if so.may_leave { Key::Yes } else { Key::No })) } }
                div.fact { dt { (t(lang, Key::ApprovalsSoFar)) } dd.approvals-so-far {
                    @if so.approvals.is_empty() { "—" }
                    @for a in &so.approvals { span.approver { (a.approver.username) } " " }
                } }
                @if let Some(note) = &so.override_note {
                    div.fact { dt { (t(lang, Key::NeedsOverride)) } dd.override-note { (note) } }
                }
                (override_reasons(lang, so))
                div.fact { dt { (t(lang, Key::ApprovalsNeeded)) } dd.approvals-needed { (so.approvals_needed) } }
            }
            @if let Some(codes) = &so.would_refuse {
                @if codes.is_empty() {
                    p.would-pass { (t(lang, Key::WouldPass)) }
                } @else {
                    p.notice { (t(lang, Key::WouldRefuse)) }
                    ul.would-refuse {
                        @for code in codes { li.refusal data-code=(code) { (t(lang, i18n::refusal(code))) } }
                    }
                }
            }
            @if so.approvals.iter().any(|a| a.approver.username == session.username()) {
                p.approved-by-you { (t(lang, Key::YouApprovedAlready)) }
            } @else {
                form.approve method="post" action={ "/approvals/" (so.id) "/approve" } data-once {
                    (csrf_field(session))
                    @if so.override_note.is_some() {
                        label for={ "override-reason-" (so.id) } { (t(lang, Key::OverrideReasonLabel)) }
                        input.override-reason id={ "override-reason-" (so.id) } type="text"
                            name="override_reason" required maxlength="200";
                    }
                    button.approve.primary type="submit" data-signout-id=(so.id) { (t(lang, Key::ApproveButton)) }
                }
            }
            (super::approvals::reject_form(lang, session, &format!("/approvals/{}/reject", so.id), "signout", so.id.0))
        }
    }
}

/// The written override reasons of a sign-out's approvals (one fact per approving officer),
/// shown wherever the approval is: the officer's queue and the custodian's desk.
pub(super) fn override_reasons(lang: Lang, so: &Signout) -> Markup {
    html! {
        @for a in so.approvals.iter().filter(|a| a.override_reason.is_some()) {
            div.fact.override {
                dt { (t(lang, Key::OverrideReason)) " · " (a.approver.username) }
                dd.override-reason { (a.override_reason.as_deref().unwrap_or_default()) }
            }
        }
    }
}

/// `POST /approvals/{id}/approve` (field `override_reason` for a sign-out that needs one).
pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Ok(id) = id.parse::<SignoutId>() else {
        return Ok(not_found(&page.session, Key::SignoutNotFound));
    };
    let reason = submitted.form.get("override_reason").trim().to_owned();
    let reason = (!reason.is_empty()).then_some(reason);
    let (status, notice) = match signouts::approve(&state, &page.cap.cap, id, reason).await {
        Ok(done) => {
            let to = format!("/approvals?approved={id}&needed={}", done.approvals_needed);
            return Ok(see_other(&to));
        }
        Err(ServiceError::Invalid(_)) => (
            StatusCode::BAD_REQUEST,
            Notice::bad("invalid_reason", Key::ErrReason),
        ),
        Err(ServiceError::Signout(SignoutRuleError::OverrideReasonRequired)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::bad("override_reason_required", Key::OverrideRequired),
        ),
        Err(ServiceError::Signout(SignoutRuleError::SelfApproval)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::bad("self_approval", Key::ErrSelfApproval),
        ),
        Err(ServiceError::Signout(SignoutRuleError::AlreadyApproved)) => (
            StatusCode::CONFLICT,
            Notice::bad("already_approved", Key::ErrAlreadyApproved),
        ),
        Err(ServiceError::Signout(SignoutRuleError::NotAwaitingApproval(_))) => (
            StatusCode::CONFLICT,
            Notice::bad("not_requested", Key::ErrNotAwaitingApproval),
        ),
        Err(ServiceError::Signout(other)) => (
            StatusCode::CONFLICT,
            Notice::bad(other.code(), Key::ErrNotAwaitingApproval),
        ),
        Err(ServiceError::NotFound) => return Ok(not_found(&page.session, Key::SignoutNotFound)),
        Err(e) => return Err(page.session.internal(e)),
    };
    let html = approvals_page(&state, &page, Some(notice)).await?;
    Ok((status, html).into_response())
}

/// `POST /approvals/{id}/reject` (field `reason`).
pub async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    let page = submitted.page;
    let Ok(id) = id.parse::<SignoutId>() else {
        return Ok(not_found(&page.session, Key::SignoutNotFound));
    };
    let reason = submitted.form.get("reason").trim().to_owned();
    let (status, notice) = match signouts::reject(&state, &page.cap.cap, id, reason).await {
        Ok(_) => return Ok(see_other(&format!("/approvals?rejected={id}"))),
        Err(ServiceError::Invalid(_)) => (
            StatusCode::BAD_REQUEST,
            Notice::bad("invalid_reason", Key::ErrReason),
        ),
        Err(ServiceError::Signout(SignoutRuleError::SelfApproval)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::bad("self_approval", Key::ErrSelfApproval),
        ),
        Err(ServiceError::Signout(other)) => (
            StatusCode::CONFLICT,
            Notice::bad(other.code(), Key::ErrNotAwaitingApproval),
        ),
        Err(ServiceError::NotFound) => return Ok(not_found(&page.session, Key::SignoutNotFound)),
        Err(e) => return Err(page.session.internal(e)),
    };
    let html = approvals_page(&state, &page, Some(notice)).await?;
    Ok((status, html).into_response())
}

// ---------------------------------------------------------------------------------------
// People

/// What the person form shows: the typed values and the errors.
#[derive(Debug, Default)]
struct PersonForm {
    name: String,
    department: String,
    category: String,
    badge_tag: String,
    training_valid_until: String,
    commitment_signed_on: String,
    nonce: String,
    errors: Errors,
}

impl PersonForm {
    fn from(form: &FormData) -> PersonForm {
        let field = |name| form.get(name).trim().to_owned();
        PersonForm {
            name: field("name"),
            department: field("department"),
            category: field("category"),
            badge_tag: field("badge_tag"),
            training_valid_until: field("training_valid_until"),
            commitment_signed_on: field("commitment_signed_on"),
            nonce: field(replay::NONCE_FIELD),
            errors: Vec::new(),
        }
    }

    fn date(&mut self, field: &'static str) -> Result<Option<Date>, ()> {
        let text = if field == "training_valid_until" {
            &self.training_valid_until
        } else {
            &self.commitment_signed_on
        };
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            self.errors.push((field, Key::ErrDate));
        })
    }

    /// The fields only the form has (category, dates) parsed here; the rest checked by the
    /// use case's check ([`people::check_new_person`], the API's), every problem on its field.
    fn validate(&mut self) -> Option<NewPerson> {
        let badge_tag = (!self.badge_tag.is_empty()).then(|| self.badge_tag.clone());
        if let Err(ServiceError::Invalid(problems)) =
            people::check_new_person(&self.name, &self.department, badge_tag.as_deref())
        {
            self.input_problems(&problems);
        }
        let category = Category::from_name(&self.category);
        if category.is_none() {
            self.errors.push(("category", Key::ErrCategory));
        }
        let training = self.date("training_valid_until");
        let commitment = self.date("commitment_signed_on");
        let order = |field: &str| PERSON_FIELDS.iter().position(|f| *f == field);
        self.errors.sort_by_key(|(field, _)| order(field));
        let (Some(category), Ok(training), Ok(commitment)) = (category, training, commitment)
        else {
            return None;
        };
        Some(NewPerson {
            name: self.name.clone(),
            department: self.department.clone(),
            category,
            badge_tag,
            training_valid_until: training,
            commitment_signed_on: commitment,
        })
        .filter(|_| self.errors.is_empty())
    }

    /// Show the use case's input problems at their fields.
    fn input_problems(&mut self, problems: &[Problem]) {
        for p in problems {
            self.errors.push(match p.field {
                "name" => ("name", Key::ErrPersonName),
                "department" => ("department", Key::ErrDepartment),
                _ => ("badge_tag", Key::ErrBadgeTag),
            });
        }
    }
}

/// The person form's fields, in the order their errors are listed.
const PERSON_FIELDS: [&str; 6] = [
    "name",
    "department",
    "category",
    "badge_tag",
    "training_valid_until",
    "commitment_signed_on",
];

/// `GET /people`.
pub async fn people(
    page: Page<OfficerDesk>,
    State(state): State<AppState>,
) -> Result<(StatusCode, Markup), WebError> {
    let q = query(&page.session);
    let notice = if q.non_empty("created").is_some() {
        Some(Notice::ok("created", Key::PersonCreated))
    } else if q.non_empty("left").is_some() {
        Some(Notice::ok("leaving", Key::PersonLeaving))
    } else if q.non_empty("departed").is_some() {
        Some(Notice::ok("departed", Key::PersonDeparted))
    } else {
        None
    };
    let form = PersonForm {
        nonce: replay::fresh(),
        ..PersonForm::default()
    };
    people_page(&state, &page, &form, notice).await
}

/// The officer's register of people: 25 a page, by name unless sorted otherwise; search
/// words and the category, state and expiring filters are kept in every link.
static PEOPLE_LIST: ListSpec = ListSpec {
    path: "/people",
    prefix: "people",
    page_size: 25,
    default_sort: "name",
    filters: &["category", "state", "expiring"],
    sorts: &[
        ("name", Key::PersonName),
        ("department", Key::Department),
        ("category", Key::Category),
        ("status", Key::PersonStatusLabel),
        ("id", Key::SortRegistered),
    ],
    focus_search: false,
};

/// `POST /people`: register a person.
pub async fn create_person(
    State(state): State<AppState>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let mut person = PersonForm::from(&form);
    let guard = match state
        .form_tokens()
        .claim(page.session.username(), &person.nonce)
    {
        Claim::Replay(to) => return Ok(see_other(&to)),
        Claim::InFlight => return Ok(see_other("/people")),
        Claim::Fresh(guard) => Some(guard),
        Claim::Unguarded => None,
    };
    let status = match person.validate() {
        None => StatusCode::UNPROCESSABLE_ENTITY,
        Some(new) => match people::register(&state, &page.cap.cap, new).await {
            Ok(id) => {
                let to = format!("/people?created={id}");
                if let Some(guard) = guard {
                    guard.done(&to);
                }
                return Ok(see_other(&to));
            }
            Err(ServiceError::Duplicate { .. }) => {
                person.errors.push(("badge_tag", Key::ErrBadgeTaken));
                StatusCode::CONFLICT
            }
            Err(ServiceError::Invalid(problems)) => {
                person.input_problems(&problems);
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(e) => return Err(page.session.internal(e)),
        },
    };
    let (_, html) = people_page(&state, &page, &person, None).await?;
    Ok((status, html).into_response())
}

pub(super) fn status_change_notice(e: StatusChangeError) -> (StatusCode, Notice) {
    match e {
        StatusChangeError::AlreadyLeaving => (
            StatusCode::CONFLICT,
            Notice::bad("already_leaving", Key::ErrAlreadyLeaving),
        ),
        StatusChangeError::AlreadyDeparted => (
            StatusCode::CONFLICT,
            Notice::bad("already_departed", Key::ErrAlreadyDeparted),
        ),
        StatusChangeError::CarriersOutstanding { held } => (
            StatusCode::CONFLICT,
            Notice {
                count: Some(held),
                ..Notice::bad("carriers_outstanding", Key::ErrCarriersOutstanding)
            },
        ),
        StatusChangeError::PeriodOutOfRange => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::bad("period_out_of_range", Key::ErrPeriodOutOfRange),
        ),
        StatusChangeError::PeriodTooShort => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::bad("period_too_short", Key::ErrPeriodTooShort),
        ),
        StatusChangeError::NotLeaving => (
            StatusCode::CONFLICT,
            Notice::bad("not_leaving", Key::ErrNotLeaving),
        ),
        StatusChangeError::NotCleared => (
            StatusCode::CONFLICT,
            Notice::bad("not_cleared", Key::ErrNotCleared),
        ),
        StatusChangeError::AlreadyCleared => (
            StatusCode::CONFLICT,
            Notice::bad("already_cleared", Key::ErrAlreadyCleared),
        ),
    }
}

fn person_row(lang: Lang, session: &WebSession, p: &Person, today: Date) -> Markup {
    let training_expired = p.training_valid_until.is_none_or(|d| d < today);
    let commitment_missing = p.commitment_signed_on.is_none_or(|d| d > today);
    html! {
        tr.person data-person-id=(p.id) data-status=(p.status.as_str()) data-category=(p.category.as_str()) {
            td.person-name { a.person-link href={ "/people/" (p.id) } { (p.name) } }
            td { (p.department) }
            td {
                (t(lang, i18n::category(p.category))) " "
                span.hint { (t(lang, Key::UpTo)) " " } (level_tag(lang, p.category.max_level()))
            }
            td { @if let Some(b) = &p.badge_tag { code { (b) } } }
            td.training .expired[training_expired] data-expired=(training_expired) {
                @match p.training_valid_until {
                    Some(d) => { (d.to_string()) }
                    None => { (t(lang, Key::NoRecord)) }
                }
                @if training_expired { " " span.flag { (t(lang, Key::Expired)) } }
            }
            td.commitment .expired[commitment_missing] data-missing=(commitment_missing) {
                @match p.commitment_signed_on {
                    Some(d) => { (d.to_string()) }
                    None => { (t(lang, Key::NoRecord)) }
                }
            }
            td { span.person-status data-status=(p.status.as_str()) { (t(lang, i18n::person_status(p.status))) } }
            td { @if let Some(at) = p.leaving_since { (layout::time(at)) } }
            td.decommissioning { @if let Some(d) = p.decommissioning_ends_on { (d.to_string()) } }
            td.person-actions {
                @if p.status == PersonStatus::Active {
                    form.leave method="post" action={ "/people/" (p.id) "/leave" } data-once {
                        (csrf_field(session))
                        button.leave type="submit" data-person-id=(p.id) { (t(lang, Key::LeaveButton)) }
                    }
                }
                @if p.status == PersonStatus::Leaving && p.cleared_at.is_some() {
                    form.depart method="post" action={ "/people/" (p.id) "/depart" } data-once {
                        (csrf_field(session))
                        button.depart type="submit" data-person-id=(p.id) { (t(lang, Key::DepartButton)) }
                    }
                }
            }
        }
    }
}

async fn people_page(
    state: &AppState,
    page: &Page<OfficerDesk>,
    form: &PersonForm,
    notice: Option<Notice>,
) -> Result<(StatusCode, Markup), WebError> {
    let session = &page.session;
    let lang = session.lang;
    let mut ask = ListAsk::read(&query(session), &PEOPLE_LIST);
    // The search words are the list's `q` (paging::ListAsk), not the filter's.
    let filter = people::PeopleFilter {
        q: None,
        category: Category::from_name(ask.filter("category")),
        state: Some(ask.filter("state").to_owned()).filter(|s| !s.is_empty()),
        expiring: !ask.filter("expiring").is_empty(),
    };
    let mut list_errors = Errors::new();
    let (cap, filter_ref) = (&page.cap.people, &filter);
    let found = fitting_page(&mut ask, &mut list_errors, |params| async move {
        people::search_page(state, cap, filter_ref, &params).await
    })
    .await
    .map_err(|e| session.internal(e))?;
    let list = &found.page.items;
    let reminders = people::reminders(state, &page.cap.cap)
        .await
        .map_err(|e| session.internal(e))?;
    let today = state.now().date();
    let errors = &form.errors;
    let content = html! {
        h1 { (t(lang, Key::PeopleTitle)) }
        @if let Some(n) = &notice { (n.render(lang, "people-message")) }
        p.hint { (t(lang, Key::DepartHint)) }
        (super::people::reminder_list(lang, &reminders))
        (super::people::filter_form(lang, &filter, &ask, &list_errors))
        section.panel.wide-table {
            (reset_notice(lang, &ask, found.refused))
            table #people-table {
                thead { tr {
                    (sort_header(lang, &ask, "name", Key::PersonName))
                    (sort_header(lang, &ask, "department", Key::Department))
                    (sort_header(lang, &ask, "category", Key::Category))
                    th { (t(lang, Key::BadgeTag)) }
                    th { (t(lang, Key::TrainingValidUntil)) } th { (t(lang, Key::CommitmentSignedOn)) }
                    (sort_header(lang, &ask, "status", Key::PersonStatusLabel))
                    th { (t(lang, Key::LeavingSince)) }
                    th { (t(lang, Key::DecommissioningEnds)) } th { (t(lang, Key::Action)) }
                } }
                tbody {
                    @for p in list { (person_row(lang, session, p, today)) }
                }
            }
            (pager(lang, &ask, found.page.next.as_deref()))
        }
        section.panel.form-panel {
            h2 { (t(lang, Key::AddPerson)) }
            (form_errors(lang, errors))
            form #person-form method="post" action="/people" data-once novalidate {
                (csrf_field(session))
                (replay::field(&form.nonce))
                div.form-grid {
                    div {
                        label for="person-name" { (t(lang, Key::PersonName)) }
                        input #person-name type="text" name="name" value=(form.name) required maxlength="200"
                            autocomplete="off" aria-invalid=[invalid(errors, "name")];
                        (field_error(lang, errors, "name"))
                    }
                    div {
                        label for="person-department" { (t(lang, Key::Department)) }
                        input #person-department type="text" name="department" value=(form.department)
                            required maxlength="200" aria-invalid=[invalid(errors, "department")];
                        (field_error(lang, errors, "department"))
                    }
                    div {
                        label for="person-category" { (t(lang, Key::Category)) }
                        select #person-category name="category" aria-invalid=[invalid(errors, "category")] {
                            option value="" selected[form.category.is_empty()] { (t(lang, Key::NoneOption)) }
                            @for c in [Category::Core, Category::Important, Category::General] {
                                option value=(c.as_str()) selected[form.category == c.as_str()] {
                                    (t(lang, i18n::category(c))) " — " (t(lang, Key::UpTo)) " " (t(lang, i18n::level(c.max_level())))
                                }
                            }
                        }
                        (field_error(lang, errors, "category"))
                    }
                    div {
                        label for="person-badge" { (t(lang, Key::BadgeTag)) " " span.hint { (t(lang, Key::Optional)) } }
                        input #person-badge type="text" name="badge_tag" value=(form.badge_tag)
                            maxlength="64" autocomplete="off" spellcheck="false"
                            aria-invalid=[invalid(errors, "badge_tag")];
                        (field_error(lang, errors, "badge_tag"))
                    }
                    div {
                        label for="person-training" { (t(lang, Key::TrainingValidUntil)) }
                        input #person-training type="date" name="training_valid_until"
                            value=(form.training_valid_until) aria-invalid=[invalid(errors, "training_valid_until")];
                        (field_error(lang, errors, "training_valid_until"))
                    }
                    div {
                        label for="person-commitment" { (t(lang, Key::CommitmentSignedOn)) }
                        input #person-commitment type="date" name="commitment_signed_on"
                            value=(form.commitment_signed_on) aria-invalid=[invalid(errors, "commitment_signed_on")];
                        (field_error(lang, errors, "commitment_signed_on"))
                    }
                }
                button #person-submit .primary type="submit" { (t(lang, Key::Register)) }
            }
        }
    };
    Ok((
        found.status(),
        frame(session, t(lang, Key::PeopleTitle), "officer", content),
    ))
}

// ---------------------------------------------------------------------------------------
// Overdue and missing

/// Whole days from `from_ms` to `to_ms`, rounded down (0 if `to` is not after `from`).
pub fn whole_days(from_ms: i64, to_ms: i64) -> i64 {
    to_ms.saturating_sub(from_ms).max(0) / DAY_MS
}

/// Where a missing carrier stands against its leak deadline (查无下落 → 泄密).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeakClock {
    /// When the deadline falls (Unix ms).
    pub deadline_ms: i64,
    /// Days left, rounded up (a carrier with 3.5 days left shows 4); 0 once passed.
    pub days_left: i64,
    /// Whole days since the deadline passed (0 before).
    pub days_over: i64,
    /// Whether the deadline has passed.
    pub passed: bool,
}

/// The leak clock of a carrier of `level` missing since `missing_since_ms`, at `now_ms`
/// ([`leak_deadline_ms`]: TS 10 days, S and C 60 days).
pub fn leak_clock(level: Level, missing_since_ms: i64, now_ms: i64) -> LeakClock {
    let deadline_ms = missing_since_ms.saturating_add(leak_deadline_ms(level));
    let remaining = deadline_ms.saturating_sub(now_ms);
    let passed = remaining <= 0;
    LeakClock {
        deadline_ms,
        days_left: if passed {
            0
        } else {
            (remaining + DAY_MS - 1) / DAY_MS
        },
        days_over: if passed { -remaining / DAY_MS } else { 0 },
        passed,
    }
}

fn days(lang: Lang, n: i64) -> Markup {
    html! { (n) " " (t(lang, Key::DaysUnit)) }
}

/// `GET /overdue`: sign-outs out past their due time.
pub async fn overdue(
    page: Page<OfficerDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let now = state.now();
    let mut list: Vec<Signout> =
        signouts::list(&state, &page.cap.reader(), Some(SignoutState::Out))
            .await
            .map_err(|e| session.internal(e))?
            .into_iter()
            .filter(|so| so.due_at < now)
            .collect();
    list.sort_by_key(|so| so.due_at);
    let content = html! {
        h1 { (t(lang, Key::OverdueTitle)) }
        section.panel {
            @if list.is_empty() {
                p #overdue-empty .empty { (t(lang, Key::NoOverdue)) }
            } @else {
                table #overdue-table {
                    thead { tr {
                        th { (t(lang, Key::Signout)) } th { (t(lang, Key::Borrower)) }
                        th { (t(lang, Key::CarriersOut)) } th { (t(lang, Key::DueAt)) }
                        th { (t(lang, Key::DaysOverdue)) } th { (t(lang, Key::MayLeave)) }
                    } }
                    tbody {
                        @for so in &list {
                            tr.overdue data-signout-id=(so.id) {
                                td { "#" (so.id) }
                                td.borrower { (so.borrower.name) }
                                td {
                                    @for c in so.carriers.iter().filter(|c| c.returned_at.is_none()) {
                                        (carrier_link(c.id, &c.control_no)) " " (level_tag(lang, c.level)) " "
                                    }
                                }
                                td { (layout::time(so.due_at)) }
                                td.days-overdue data-days=(whole_days(so.due_at.unix_ms(), now.unix_ms()))
                                    data-hours=(now.unix_ms().saturating_sub(so.due_at.unix_ms()) / 3_600_000) {
                                    span.overdue-mark { (t(lang, Key::OverdueMark)) } " "
                                    span.lateness { (super::datetime::lateness(lang, now.unix_ms().saturating_sub(so.due_at.unix_ms()))) }
                                }
                                td { (t(lang, if so.may_leave { Key::Yes } else { Key::No })) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::OverdueTitle),
        "officer",
        content,
    ))
}

/// `GET /missing`: carriers whose whereabouts are unknown, with the days left before the
/// leak deadline.
pub async fn missing(
    page: Page<OfficerDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let now_ms = state.now().unix_ms();
    let filter = CarrierFilter {
        state: Some(CarrierState::Missing),
        q: None,
    };
    let list: Vec<Carrier> = carriers::list(&state, &page.cap.reader(), filter)
        .await
        .map_err(|e| session.internal(e))?;
    let mut rows: Vec<(&Carrier, Option<LeakClock>)> = list
        .iter()
        .map(|c| {
            let s = &c.summary;
            (
                c,
                s.missing_since
                    .map(|since| leak_clock(s.level, since.unix_ms(), now_ms)),
            )
        })
        .collect();
    rows.sort_by_key(|(_, clock)| clock.map_or(i64::MIN, |c| c.deadline_ms));
    let content = html! {
        h1 { (t(lang, Key::MissingTitle)) }
        p.hint { (t(lang, Key::LeakDeadlineHint)) }
        section.panel {
            @if rows.is_empty() {
                p #missing-empty .empty { (t(lang, Key::NoMissing)) }
            } @else {
                table #missing-table {
                    thead { tr {
                        th { (t(lang, Key::CarrierControlNo)) } th { (t(lang, Key::Level)) }
                        th { (t(lang, Key::MissingSince)) } th { (t(lang, Key::LeakDeadline)) }
                        th { (t(lang, Key::DaysLeft)) } th { (t(lang, Key::LastSeen)) }
                    } }
                    tbody {
                        @for (c, clock) in &rows {
                            @let s = &c.summary;
                            tr.missing data-carrier-id=(s.id) data-level=(s.level.code())
                                data-passed=(clock.is_some_and(|k| k.passed))
                                .passed[clock.is_some_and(|k| k.passed)] {
                                td { (carrier_link(s.id, &s.control_no)) }
                                td { (level_tag(lang, s.level)) }
                                td { (maybe_time(lang, s.missing_since)) }
                                td { @if let Some(k) = clock { (maybe_time(lang, Timestamp::from_unix_ms(k.deadline_ms))) } }
                                @match clock {
                                    Some(k) if k.passed => {
                                        td.days-left data-days="0" {
                                            span.flag { (t(lang, Key::DeadlinePassed)) } " " (days(lang, k.days_over))
                                        }
                                    }
                                    Some(k) => { td.days-left data-days=(k.days_left) { (days(lang, k.days_left)) } }
                                    None => { td.days-left { "—" } }
                                }
                                td { @if let Some(seen) = &s.last_seen { (seen.device_id) " · " (layout::time(seen.at)) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::MissingTitle),
        "officer",
        content,
    ))
}

// ---------------------------------------------------------------------------------------
// Alert history

/// The alert history as a list page: 50 a page, newest first; the number header turns it
/// oldest first (alerts sort by id only, as in the API). Search words, the filters and the
/// order are kept in the pager's links.
static HISTORY_LIST: ListSpec = ListSpec {
    path: "/alerts/history",
    prefix: "history",
    page_size: 50,
    default_sort: "-id",
    filters: &["kind", "state"],
    sorts: &[("id", Key::AlertNumber)],
    focus_search: true,
};

/// `GET /alerts/history?q=&kind=&state=&sort=&cursor=`: acknowledged and resolved alerts,
/// newest first (or oldest first), one page at a time.
pub async fn alert_history(
    page: Page<OfficerDesk>,
    State(state): State<AppState>,
) -> Result<(StatusCode, Markup), WebError> {
    let session = &page.session;
    let lang = session.lang;
    let mut ask = ListAsk::read(&query(session), &HISTORY_LIST);
    let state_text = ask.filter("state").to_owned();
    let kind = AlertKind::from_name(ask.filter("kind"));
    let filter = AlertFilter {
        state: match AlertState::from_name(&state_text) {
            Some(s @ (AlertState::Acknowledged | AlertState::Resolved)) => Some(s),
            _ => None,
        },
        kind,
        handled_only: true,
        ..AlertFilter::default()
    };
    let mut errors = Errors::new();
    let (app, cap, filter) = (&state, &page.cap.alerts, &filter);
    let found = fitting_page(&mut ask, &mut errors, |params| async move {
        crate::service::alerts::search_page(app, cap, filter.clone(), &params).await
    })
    .await
    .map_err(|e| session.internal(e))?;
    let list = &found.page.items;
    let content = html! {
        h1 { (t(lang, Key::AlertHistoryTitle)) }
        section.panel {
            form #history-filter .filters method="get" action="/alerts/history" role="search" {
                (search_field(lang, &ask, &errors, Key::SearchAlertWords))
                div {
                    label for="history-kind" { (t(lang, Key::AlertKindLabel)) }
                    select #history-kind name="kind" {
                        option value="" selected[kind.is_none()] { (t(lang, Key::AnyOption)) }
                        @for k in AlertKind::ALL {
                            option value=(k.as_str()) selected[kind == Some(k)] { (t(lang, i18n::alert_kind(k))) }
                        }
                    }
                }
                div {
                    label for="history-state" { (t(lang, Key::AlertStateLabel)) }
                    select #history-state name="state" {
                        option value="" selected[state_text.is_empty()] { (t(lang, Key::AnyOption)) }
                        @for s in [AlertState::Resolved, AlertState::Acknowledged] {
                            option value=(s.as_str()) selected[state_text == s.as_str()] { (t(lang, i18n::alert_state(s))) }
                        }
                    }
                }
                div.filter-buttons {
                    button #history-apply .primary type="submit" { (t(lang, Key::Filter)) }
                    a href="/alerts/history" { (t(lang, Key::ClearFilter)) }
                }
            }
        }
        section.panel.wide-table {
            (reset_notice(lang, &ask, found.refused))
            @if list.is_empty() {
                p #history-empty .empty { (t(lang, Key::NoHandledAlerts)) }
            } @else {
                table #history-table {
                    thead { tr {
                        (sort_header(lang, &ask, "id", Key::AlertNumber))
                        th { (t(lang, Key::AlertKindLabel)) } th { (t(lang, Key::AlertStateLabel)) }
                        th { (t(lang, Key::Carrier)) } th { (t(lang, Key::Device)) }
                        th { (t(lang, Key::RaisedAt)) } th { (t(lang, Key::AcknowledgedBy)) }
                        th { (t(lang, Key::ResolvedBy)) } th { (t(lang, Key::ResolveNote)) }
                    } }
                    tbody {
                        @for a in list { (history_row(lang, a)) }
                    }
                }
            }
            (pager(lang, &ask, found.page.next.as_deref()))
        }
    };
    Ok((
        found.status(),
        frame(session, t(lang, Key::AlertHistoryTitle), "officer", content),
    ))
}

// ---------------------------------------------------------------------------------------
// Notification deliveries

/// How many deliveries the page shows.
const DELIVERIES_SHOWN: u32 = 200;

/// `GET /notifications`: the latest e-mail and webhook deliveries of alerts and their state.
pub async fn notifications(
    page: Page<OfficerDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let list = crate::service::notify::list(&state, &page.cap.cap, None, DELIVERIES_SHOWN)
        .await
        .map_err(|e| session.internal(e))?;
    let state_key = |s: DeliveryState| match s {
        DeliveryState::Pending => Key::DeliveryPending,
        DeliveryState::Retrying => Key::DeliveryRetrying,
        DeliveryState::Sent => Key::DeliverySent,
        DeliveryState::Failed => Key::DeliveryFailed,
    };
    let content = html! {
        h1 { (t(lang, Key::NotificationsTitle)) }
        section.panel.wide-table {
            @if list.is_empty() {
                p #delivery-empty .empty { (t(lang, Key::NoDeliveries)) }
            } @else {
                table #delivery-table {
                    thead { tr {
                        th { "#" } th { (t(lang, Key::DeliveryChannel)) } th { (t(lang, Key::DeliveryTarget)) }
                        th { (t(lang, Key::DeliveryState)) } th { (t(lang, Key::DeliveryAttempts)) }
                        th { (t(lang, Key::RaisedAt)) } th { (t(lang, Key::DeliveryLastError)) }
                    } }
                    tbody {
                        @for d in &list {
                            tr.delivery data-delivery-id=(d.delivery_id) data-state=(d.state.as_str()) data-alert-id=(d.alert_id) {
                                td { (d.alert_id) " · " (d.change) }
                                td { (d.channel.as_str()) }
                                td { (d.target) }
                                td { span.state data-state=(d.state.as_str()) { (t(lang, state_key(d.state))) } }
                                td { (d.attempts) }
                                td { (layout::time(d.created_at)) }
                                td.error { @if let Some(e) = &d.last_error { (e) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::NotificationsTitle),
        "officer",
        content,
    ))
}

fn history_row(lang: Lang, a: &AlertView) -> Markup {
    html! {
        tr.alert-row data-alert-id=(a.id) data-kind=(a.kind.as_str()) data-state=(a.state.as_str()) {
            td { (a.id) }
            td {
                span.alert-kind { (t(lang, i18n::alert_kind(a.kind))) } " "
                span.severity data-severity=(a.severity.as_str()) { (t(lang, i18n::severity(a.severity))) }
            }
            td { span.state data-state=(a.state.as_str()) { (t(lang, i18n::alert_state(a.state))) } }
            td {
                @if let Some(no) = &a.carrier_control_no {
                    @match a.carrier_id.as_deref().and_then(|id| id.parse().ok()) {
                        Some(id) => (carrier_link(id, no)),
                        None => span.carrier-no { (no) },
                    }
                    @if let Some(code) = &a.carrier_level {
                        " " span.level data-level=(code) { (i18n::level_code(code).map_or("", |k| t(lang, k))) }
                    }
                }
            }
            td { @if let Some(d) = &a.device_id { (d) } }
            td { (layout::time(a.raised_at)) }
            td.acknowledged {
                @if let Some(by) = &a.acknowledged_by { (by) " · " (maybe_time(lang, a.acknowledged_at)) }
            }
            td.resolved {
                @if let Some(by) = &a.resolved_by { (by) " · " (maybe_time(lang, a.resolved_at)) }
            }
            td.note { @if let Some(note) = &a.note { (note) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;

    #[test]
    fn the_leak_clock_counts_ten_days_for_ts_and_sixty_for_the_others() {
        let since = 1_000 * DAY;
        let ts = leak_clock(Level::TopSecret, since, since + 3 * DAY);
        assert_eq!((ts.days_left, ts.passed), (7, false));
        assert_eq!(ts.deadline_ms, since + 10 * DAY);
        let ts = leak_clock(Level::TopSecret, since, since + 3 * DAY + 1);
        assert_eq!(ts.days_left, 7, "part of a day left counts as a day");
        let s = leak_clock(Level::Secret, since, since + 3 * DAY);
        assert_eq!(s.days_left, 57);
        let c = leak_clock(Level::Confidential, since, since + 60 * DAY);
        assert!(c.passed);
        assert_eq!((c.days_left, c.days_over), (0, 0));
        let late = leak_clock(Level::TopSecret, since, since + 12 * DAY + 5);
        assert_eq!((late.passed, late.days_over), (true, 2));
    }

    #[test]
    fn overdue_days_are_whole_days() {
        assert_eq!(whole_days(0, DAY - 1), 0);
        assert_eq!(whole_days(0, 3 * DAY + 10), 3);
        assert_eq!(whole_days(5, 0), 0);
    }

    #[test]
    fn the_person_form_checks_what_the_api_checks() {
        let form = FormData::parse(
            b"name=&department=D&category=boss&badge_tag=a+b&training_valid_until=2030-13-01",
        )
        .unwrap();
        let mut p = PersonForm::from(&form);
        assert!(p.validate().is_none());
        let fields: Vec<_> = p.errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            ["name", "category", "badge_tag", "training_valid_until"]
        );
        assert_eq!(p.badge_tag, "a b", "kept as typed");
        let form = FormData::parse(
            b"name=Li&department=D&category=core&training_valid_until=2030-01-01&commitment_signed_on=2020-01-01",
        )
        .unwrap();
        let mut p = PersonForm::from(&form);
        let new = p.validate().unwrap();
        assert_eq!(new.category, Category::Core);
        assert_eq!(new.badge_tag, None);
        assert_eq!(
            new.training_valid_until,
            Some("2030-01-01".parse().unwrap())
        );
    }
}
