//! A person's page (security officer, `/people/{id}`): the record with its history of edits,
//! the edit form, and the departure sequence one step at a time: start leaving → the
//! carriers still held, each to return → clearance certificate (清退) once none remain →
//! departure with its decommissioning period (脱密期). Every step calls the same use case as
//! the API ([`crate::service::people`]); a refusal shows the person again with the reason.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::custodian::{carrier_link, frame, level_tag, not_found, query};
use super::form::FormData;
use super::i18n::{self, Key, Lang, t};
use super::layout::{self, csrf_field};
use super::officer::{Notice, OfficerDesk, status_change_notice};
use super::paging::{Errors, ListAsk, search_field, sort_fields};
use super::session::{Page, WebError, WebForm, WebSession, see_other};
use crate::AppState;
use crate::domain::ids::PersonId;
use crate::domain::level::Level;
use crate::domain::person::ReminderKind;
use crate::domain::person::{Category, PersonStatus};
use crate::domain::time::Date;
use crate::service::ServiceError;
use crate::service::people::{self, DepartInput, PersonEdit, PersonFile, PersonReminder};
use crate::service::travel;

/// `GET /people/{id}`.
pub async fn person(
    page: Page<OfficerDesk>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let Ok(id) = id.parse::<PersonId>() else {
        return Ok(not_found(&page.session, Key::PersonNotFound));
    };
    let notice = match query(&page.session).non_empty("done") {
        Some("leaving") => Some(Notice::ok("leaving", Key::PersonLeaving)),
        Some("cleared") => Some(Notice::ok("cleared", Key::PersonCleared)),
        Some("departed") => Some(Notice::ok("departed", Key::PersonDeparted)),
        Some("edited") => Some(Notice::ok("edited", Key::PersonEdited)),
        _ => None,
    };
    person_page(&state, &page, id, notice, StatusCode::OK).await
}

/// Which step of the sequence a form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Leave,
    Clear,
    Depart,
}

/// `POST /people/{id}/leave`, `/clearance`, `/depart`: one step, then the person's page.
async fn step(
    state: AppState,
    id: String,
    submitted: WebForm<OfficerDesk>,
    step: Step,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let Ok(id) = id.parse::<PersonId>() else {
        return Ok(not_found(&page.session, Key::PersonNotFound));
    };
    let cap = &page.cap.cap;
    let (result, done) = match step {
        Step::Leave => (people::leave(&state, cap, id).await, "leaving"),
        Step::Clear => (people::clear(&state, cap, id).await, "cleared"),
        Step::Depart => match depart_input(&form) {
            Ok(input) => (people::depart(&state, cap, id, input).await, "departed"),
            Err(()) => {
                let notice = Notice::bad("invalid_period", Key::ErrPeriodInput);
                return person_page(&state, &page, id, Some(notice), StatusCode::BAD_REQUEST).await;
            }
        },
    };
    let (status, notice) = match result {
        Ok(_) => return Ok(see_other(&format!("/people/{id}?done={done}"))),
        Err(ServiceError::StatusChange(e)) => status_change_notice(e),
        Err(ServiceError::Invalid(_)) => (
            StatusCode::BAD_REQUEST,
            Notice::bad("invalid_period", Key::ErrPeriodInput),
        ),
        Err(ServiceError::NotFound) => return Ok(not_found(&page.session, Key::PersonNotFound)),
        Err(e) => return Err(page.session.internal(e)),
    };
    person_page(&state, &page, id, Some(notice), status).await
}

/// The departure form's period: empty months and no lifelong tick = the category's minimum.
fn depart_input(form: &FormData) -> Result<DepartInput, ()> {
    let months = match form.non_empty("months") {
        None => None,
        Some(m) => Some(m.parse::<u32>().map_err(|_| ())?),
    };
    Ok(DepartInput {
        months,
        lifelong: form.non_empty("lifelong").is_some(),
    })
}

/// `POST /people/{id}/leave`.
pub async fn leave(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    step(state, id, submitted, Step::Leave).await
}

/// `POST /people/{id}/clearance`.
pub async fn clearance(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    step(state, id, submitted, Step::Clear).await
}

/// `POST /people/{id}/depart`.
pub async fn depart(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    step(state, id, submitted, Step::Depart).await
}

/// `POST /people/{id}/edit`: the edit form; empty fields stay as they are.
pub async fn edit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<OfficerDesk>,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let Ok(id) = id.parse::<PersonId>() else {
        return Ok(not_found(&page.session, Key::PersonNotFound));
    };
    let Ok(edit) = edit_input(&form) else {
        let notice = Notice::bad("invalid", Key::ErrEditInput);
        return person_page(&state, &page, id, Some(notice), StatusCode::BAD_REQUEST).await;
    };
    let (status, notice) = match people::edit(&state, &page.cap.cap, id, edit).await {
        Ok(_) => return Ok(see_other(&format!("/people/{id}?done=edited"))),
        Err(ServiceError::Invalid(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::bad("invalid", Key::ErrEditInput),
        ),
        Err(ServiceError::Duplicate { .. }) => (
            StatusCode::CONFLICT,
            Notice::bad("badge_taken", Key::ErrBadgeTaken),
        ),
        Err(ServiceError::StatusChange(e)) => status_change_notice(e),
        Err(ServiceError::NotFound) => return Ok(not_found(&page.session, Key::PersonNotFound)),
        Err(e) => return Err(page.session.internal(e)),
    };
    person_page(&state, &page, id, Some(notice), status).await
}

/// The edit form as the use case's input; a date or choice that does not parse is `Err`.
fn edit_input(form: &FormData) -> Result<PersonEdit, ()> {
    let text = |name| form.non_empty(name).map(str::to_owned);
    let date = |name| -> Result<Option<Date>, ()> {
        form.non_empty(name)
            .map(|d| d.parse::<Date>().map_err(|_| ()))
            .transpose()
    };
    let category = form
        .non_empty("category")
        .map(|c| Category::from_name(c).ok_or(()))
        .transpose()?;
    let clearance = form
        .non_empty("clearance")
        .map(|c| match c {
            "TS" => Ok(Level::TopSecret),
            "S" => Ok(Level::Secret),
            "C" => Ok(Level::Confidential),
            _ => Err(()),
        })
        .transpose()?;
    Ok(PersonEdit {
        reason: form.get("reason").to_owned(),
        name: text("name"),
        department: text("department"),
        category,
        clearance,
        badge_tag: text("badge_tag"),
        training_valid_until: date("training_valid_until")?,
        commitment_signed_on: date("commitment_signed_on")?,
        vetted_on: date("vetted_on")?,
        vetting_outcome: text("vetting_outcome"),
        assessed_on: date("assessed_on")?,
        assessment_outcome: text("assessment_outcome"),
    })
}

async fn person_page(
    state: &AppState,
    page: &Page<OfficerDesk>,
    id: PersonId,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let session = &page.session;
    let file = match people::file(state, &page.cap.cap, id).await {
        Ok(file) => file,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::PersonNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    let trips = travel::of_person(state, &page.cap.cap, id)
        .await
        .map_err(|e| session.internal(e))?;
    let lang = session.lang;
    let content = html! {
        h1 #person-heading data-person-id=(id) data-status=(file.person.status.as_str()) {
            (file.person.name)
        }
        @if let Some(n) = &notice { (n.render(lang, "people-message")) }
        p { a href="/people" { (t(lang, Key::PeopleTitle)) } }
        (facts(lang, &file))
        (departure(lang, session, &file))
        (super::travel::person_section(lang, &trips, state.now().date()))
        (history(lang, &file))
        @if file.person.status != PersonStatus::Departed { (edit_form(lang, session, &file)) }
    };
    let html = frame(session, &file.person.name, "officer", content);
    Ok((status, html).into_response())
}

fn facts(lang: Lang, file: &PersonFile) -> Markup {
    let p = &file.person;
    let date = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
    html! {
        section.panel {
            dl #person-facts .facts {
                div.fact data-field="department" { dt { (t(lang, Key::Department)) } dd { (p.department) } }
                div.fact data-field="category" {
                    dt { (t(lang, Key::Category)) }
                    dd { (t(lang, i18n::category(p.category))) }
                }
                div.fact data-field="clearance" {
                    dt { (t(lang, Key::Clearance)) }
                    dd { (level_tag(lang, p.clearance.unwrap_or(p.category.max_level()))) }
                }
                div.fact data-field="badge_tag" {
                    dt { (t(lang, Key::BadgeTag)) }
                    dd { @if let Some(b) = &p.badge_tag { code { (b) } } }
                }
                div.fact data-field="training_valid_until" {
                    dt { (t(lang, Key::TrainingValidUntil)) } dd { (date(p.training_valid_until)) }
                }
                div.fact data-field="commitment_signed_on" {
                    dt { (t(lang, Key::CommitmentSignedOn)) } dd { (date(p.commitment_signed_on)) }
                }
                div.fact data-field="vetting" {
                    dt { (t(lang, Key::Vetting)) }
                    dd { (date(p.vetted_on)) " " (p.vetting_outcome.clone().unwrap_or_default()) }
                }
                div.fact data-field="assessment" {
                    dt { (t(lang, Key::Assessment)) }
                    dd { (date(p.assessed_on)) " " (p.assessment_outcome.clone().unwrap_or_default()) }
                }
                div.fact data-field="status" {
                    dt { (t(lang, Key::PersonStatusLabel)) }
                    dd { span.person-status data-status=(p.status.as_str()) { (t(lang, i18n::person_status(p.status))) } }
                }
                @if let Some(at) = p.cleared_at {
                    div.fact data-field="cleared_at" { dt { (t(lang, Key::ClearedAt)) } dd { (layout::time(at)) } }
                }
                @if p.status == PersonStatus::Departed {
                    div.fact data-field="decommissioning_ends_on" {
                        dt { (t(lang, Key::DecommissioningEnds)) }
                        dd {
                            @match p.decommissioning_ends_on {
                                Some(d) => { span.date data-date=(d.to_string()) { (d.to_string()) } }
                                None => { (t(lang, Key::Lifelong)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn departure(lang: Lang, session: &WebSession, file: &PersonFile) -> Markup {
    let p = &file.person;
    let id = p.id;
    html! {
        section.panel #departure {
            h2 { (t(lang, Key::DepartureSequence)) }
            p.hint { (t(lang, Key::DepartHint)) }
            @if p.status != PersonStatus::Departed {
                h3 { (t(lang, Key::CarriersHeld)) }
                @if file.holding.is_empty() {
                    p #holding-empty { (t(lang, Key::NothingHeld)) }
                } @else {
                    ul #holding-list {
                        @for c in &file.holding {
                            li.held data-carrier-id=(c.id) {
                                (carrier_link(c.id, &c.control_no)) " " (level_tag(lang, c.level))
                                @if let Some(s) = c.signout_id {
                                    " " span.held-signout data-signout-id=(s) { (t(lang, Key::ReturnOnSignout)) " #" (s) }
                                }
                            }
                        }
                    }
                }
            }
            @match p.status {
                PersonStatus::Active => {
                    form.leave method="post" action={ "/people/" (id) "/leave" } data-once {
                        (csrf_field(session))
                        button #leave .leave type="submit" data-person-id=(id) { (t(lang, Key::LeaveButton)) }
                    }
                }
                PersonStatus::Leaving => {
                    @if p.cleared_at.is_none() {
                        form.clearance method="post" action={ "/people/" (id) "/clearance" } data-once {
                            (csrf_field(session))
                            button #clearance .clearance type="submit" data-person-id=(id) { (t(lang, Key::ClearanceButton)) }
                        }
                    } @else {
                        form #depart-form .depart method="post" action={ "/people/" (id) "/depart" } data-once {
                            (csrf_field(session))
                            label for="depart-months" { (t(lang, Key::PeriodMonths)) " " span.hint { (t(lang, Key::Optional)) } }
                            input #depart-months type="number" name="months" min="1" max="1200" inputmode="numeric";
                            label { input #depart-lifelong type="checkbox" name="lifelong" value="1"; " " (t(lang, Key::Lifelong)) }
                            button #depart .depart .primary type="submit" data-person-id=(id) { (t(lang, Key::DepartButton)) }
                        }
                    }
                }
                PersonStatus::Departed => {}
            }
        }
    }
}

fn history(lang: Lang, file: &PersonFile) -> Markup {
    html! {
        section.panel {
            h2 { (t(lang, Key::PersonHistory)) }
            @if file.history.is_empty() {
                p #history-empty { (t(lang, Key::NoRecord)) }
            } @else {
                ol #person-history {
                    @for c in &file.history {
                        li.change {
                            (layout::time(c.at)) " " span.actor { (c.actor) } " — "
                            span.reason { (c.reason) } ": "
                            code.fields { (c.before) " → " (c.after) }
                        }
                    }
                }
            }
        }
    }
}

fn edit_form(lang: Lang, session: &WebSession, file: &PersonFile) -> Markup {
    let p = &file.person;
    let input = |id: &str, name: &str, kind: &str, key: Key| {
        html! {
            div {
                label for=(id) { (t(lang, key)) }
                input id=(id) type=(kind) name=(name);
            }
        }
    };
    html! {
        section.panel.form-panel {
            h2 { (t(lang, Key::EditPerson)) }
            p.hint { (t(lang, Key::EditHint)) }
            form #person-edit-form method="post" action={ "/people/" (p.id) "/edit" } data-once {
                (csrf_field(session))
                div.form-grid {
                    div {
                        label for="edit-reason" { (t(lang, Key::Reason)) }
                        input #edit-reason type="text" name="reason" required maxlength="200";
                    }
                    (input("edit-name", "name", "text", Key::PersonName))
                    (input("edit-department", "department", "text", Key::Department))
                    div {
                        label for="edit-category" { (t(lang, Key::Category)) }
                        select #edit-category name="category" {
                            option value="" { "—" }
                            @for c in [Category::Core, Category::Important, Category::General] {
                                option value=(c.as_str()) { (t(lang, i18n::category(c))) }
                            }
                        }
                    }
                    div {
                        label for="edit-clearance" { (t(lang, Key::Clearance)) }
                        select #edit-clearance name="clearance" {
                            option value="" { "—" }
                            @for l in [Level::TopSecret, Level::Secret, Level::Confidential] {
                                option value=(l.code()) { (t(lang, i18n::level(l))) }
                            }
                        }
                    }
                    (input("edit-badge", "badge_tag", "text", Key::BadgeTag))
                    (input("edit-training", "training_valid_until", "date", Key::TrainingValidUntil))
                    (input("edit-commitment", "commitment_signed_on", "date", Key::CommitmentSignedOn))
                    (input("edit-vetted-on", "vetted_on", "date", Key::Vetting))
                    (input("edit-vetting-outcome", "vetting_outcome", "text", Key::Outcome))
                    (input("edit-assessed-on", "assessed_on", "date", Key::Assessment))
                    (input("edit-assessment-outcome", "assessment_outcome", "text", Key::Outcome))
                }
                button #edit-submit .primary type="submit" { (t(lang, Key::Save)) }
            }
        }
    }
}

/// The reminders due today: `#reminder-list li.reminder[data-kind][data-person-id]`.
pub(super) fn reminder_list(lang: Lang, reminders: &[PersonReminder]) -> Markup {
    let kind_key = |k: ReminderKind| match k {
        ReminderKind::TrainingExpiring => Key::ReminderTraining,
        ReminderKind::CommitmentExpiring => Key::ReminderCommitment,
        ReminderKind::DecommissioningEnding => Key::ReminderDecommissioning,
    };
    let kind_name = |k: ReminderKind| match k {
        ReminderKind::TrainingExpiring => "training_expiring",
        ReminderKind::CommitmentExpiring => "commitment_expiring",
        ReminderKind::DecommissioningEnding => "decommissioning_ending",
    };
    html! {
        @if !reminders.is_empty() {
            section.panel #reminders {
                h2 { (t(lang, Key::Reminders)) }
                ul #reminder-list {
                    @for r in reminders {
                        li.reminder data-kind=(kind_name(r.reminder.kind)) data-person-id=(r.person_id) {
                            a href={ "/people/" (r.person_id) } { (r.name) } " — "
                            (t(lang, kind_key(r.reminder.kind))) " "
                            span.date data-date=(r.reminder.due_on.to_string()) { (r.reminder.due_on.to_string()) }
                            " (" span.days-left data-days=(r.reminder.days_left) { (r.reminder.days_left) } " " (t(lang, Key::DaysLeft)) ")"
                        }
                    }
                }
            }
        }
    }
}

/// The register's search, filters and sort (`GET /people?q=&category=&state=&expiring=1&sort=`):
/// the search box and sort menus are the shared list component's ([`super::paging`]).
pub(super) fn filter_form(
    lang: Lang,
    f: &people::PeopleFilter,
    ask: &ListAsk,
    errors: &Errors,
) -> Markup {
    let state = f.state.as_deref().unwrap_or("");
    html! {
        form #people-filter .filters method="get" action="/people" role="search" {
            (search_field(lang, ask, errors, Key::Search))
            div {
                label for="people-category" { (t(lang, Key::Category)) }
                select #people-category name="category" {
                    option value="" { "—" }
                    @for c in [Category::Core, Category::Important, Category::General] {
                        option value=(c.as_str()) selected[f.category == Some(c)] { (t(lang, i18n::category(c))) }
                    }
                }
            }
            div {
                label for="people-state" { (t(lang, Key::PersonStatusLabel)) }
                select #people-state name="state" {
                    option value="" { "—" }
                    @for (value, key) in [
                        ("active", Key::StateActive),
                        ("leaving", Key::StateLeaving),
                        ("decommissioning", Key::StateDecommissioning),
                        ("departed", Key::StateDeparted),
                    ] {
                        option value=(value) selected[state == value] { (t(lang, key)) }
                    }
                }
            }
            div {
                label { input #people-expiring type="checkbox" name="expiring" value="1" checked[f.expiring]; " " (t(lang, Key::ExpiringTraining)) }
            }
            (sort_fields(lang, ask))
            div.filter-buttons {
                button #people-filter-apply .primary type="submit" { (t(lang, Key::Search)) }
                a href="/people" { (t(lang, Key::ClearFilter)) }
            }
        }
    }
}
