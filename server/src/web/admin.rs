//! The administrator's pages: users and roles, devices, zones (role `admin`).
//!
//! Each page lists what exists and holds a creation form. A form parses the fields only it has
//! as text and asks the use case's own checks (`service::accounts`, `devices`, `zones`: the
//! API's), so that every problem gets a message in the user's language under its field; then
//! it calls the same use case the API calls. A refused form is rendered
//! again with what was typed (never the password) and a 4xx status; an accepted one redirects
//! to the list (Post/Redirect/Get), so reloading does not submit again. A form submitted twice
//! creates one record: ids and usernames are unique, and the second submission is answered
//! with "already exists"; the script also disables a form's button once it is sent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::custodian::query;
use super::form::{FormData, encode};
use super::i18n::{self, Key, Lang, t};
use super::layout::{self, csrf_field, field_error, form_errors, invalid};
use super::paging::{
    ListAsk, ListSpec, fitting_page, pager, reset_notice, search_field, sort_fields, sort_header,
};
use super::session::{Page, WebError, WebForm, WebSession, see_other};
use crate::AppState;
use crate::auth::capability::AdminCap;
use crate::domain::device::{DeviceKind, PlacementError};
use crate::domain::ids::UserId;
use crate::domain::ids::{DeviceId, PersonId, ZoneId};
use crate::domain::level::ZoneLevel;
use crate::domain::person::Category;
use crate::domain::role::{EXCLUSIVE_ROLES, Role, RoleError};
use crate::domain::user::{AccountChangeError, AccountError, PasswordPolicyError};
use crate::service::ServiceError;
use crate::service::accounts::{self, CreateUser};
use crate::service::devices::{self, DeviceRegistration};
use crate::service::zones;
use crate::store::people::NewPerson;
use crate::store::users::User;
use crate::store::zones::{NewZone, Zone};

/// Field errors of a form: (field name, message).
type Errors = Vec<(&'static str, Key)>;

/// The `created` query parameter of a list page (set by the redirect after a creation).
fn created(session: &WebSession) -> Option<String> {
    let query = session.path().split_once('?').map_or("", |(_, q)| q);
    FormData::parse(query.as_bytes())
        .ok()
        .and_then(|f| f.non_empty("created").map(str::to_owned))
}

fn flash(lang: Lang, created: Option<&str>) -> Markup {
    html! {
        @if let Some(name) = created {
            p.flash #flash role="status" { (t(lang, Key::Created)) (name) }
        }
    }
}

fn admin_page(session: &WebSession, title: Key, content: Markup) -> Markup {
    let lang = session.lang;
    layout::page(
        lang,
        Some(session),
        session.path(),
        t(lang, title),
        "admin",
        content,
    )
}

// ---------------------------------------------------------------------------------------
// Users

/// What the user form shows: the typed values (never the password) and the errors.
#[derive(Debug, Default)]
struct UserForm {
    username: String,
    roles: Vec<Role>,
    person_id: String,
    errors: Errors,
}

impl UserForm {
    fn from(form: &FormData) -> (UserForm, String) {
        let roles = form.all("roles").filter_map(Role::from_name).collect();
        (
            UserForm {
                username: form.get("username").trim().to_owned(),
                roles,
                person_id: form.get("person_id").trim().to_owned(),
                errors: Vec::new(),
            },
            form.get("password").to_owned(),
        )
    }

    /// The account checked by the use case's check ([`accounts::check_new_user`], the API's),
    /// every problem at its field; the person id, which only the form has as text, parsed here.
    fn validate(&mut self, password: &str) -> Option<PersonId> {
        if let Err(ServiceError::Account(errors)) =
            accounts::check_new_user(&self.username, password, &self.roles)
        {
            self.account_errors(&errors);
        }
        if self.person_id.is_empty() {
            return None;
        }
        match self.person_id.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                self.errors.push(("person_id", Key::ErrPersonId));
                None
            }
        }
    }
}

impl UserForm {
    /// Show a refused account's problems at their fields, in the form's order.
    fn account_errors(&mut self, errors: &[AccountError]) {
        for field in ["username", "password", "roles"] {
            for e in errors {
                let error = match e {
                    AccountError::Username => ("username", Key::ErrUsername),
                    AccountError::Password(e) => ("password", password_error(*e)),
                    AccountError::Roles(e) => ("roles", role_error(*e)),
                };
                if error.0 == field {
                    self.errors.push(error);
                }
            }
        }
    }
}

/// A refused password's message (the account form and the change-password form).
pub(crate) fn password_error(e: PasswordPolicyError) -> Key {
    match e {
        PasswordPolicyError::TooShort => Key::ErrPasswordShort,
        PasswordPolicyError::TooLong => Key::ErrPasswordLong,
        PasswordPolicyError::OneCharacter => Key::ErrPasswordOneChar,
        PasswordPolicyError::ContainsUsername => Key::ErrPasswordUsername,
        PasswordPolicyError::Common => Key::ErrPasswordCommon,
    }
}

fn role_error(e: RoleError) -> Key {
    match e {
        RoleError::Empty => Key::ErrRolesEmpty,
        RoleError::Exclusive(..) => Key::ErrRolesExclusive,
    }
}

/// `GET /admin/users`.
pub async fn users(
    page: Page<AdminCap>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let list = accounts::users(&state, &page.cap)
        .await
        .map_err(|e| page.session.internal(e))?;
    let done = created(&page.session);
    let mut html = users_page(&page.session, &list, &UserForm::default(), done.as_deref());
    if let Some(name) = updated(&page.session) {
        html = users_page_with(
            &page.session,
            &list,
            &UserForm::default(),
            None,
            Some(&name),
            None,
        );
    }
    Ok(html)
}

/// The `updated` query parameter of the user list (set after an account action).
fn updated(session: &WebSession) -> Option<String> {
    let query = session.path().split_once('?').map_or("", |(_, q)| q);
    FormData::parse(query.as_bytes())
        .ok()
        .and_then(|f| f.non_empty("updated").map(str::to_owned))
}

/// An account action from the user list: disable, enable, reset the password, end the
/// sessions. Each calls the API's use case; a refusal renders the list with the reason.
enum UserAction {
    Disable,
    Enable,
    ResetPassword,
    RevokeSessions,
}

async fn user_action(
    state: &AppState,
    id: &str,
    submitted: WebForm<AdminCap>,
    action: UserAction,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let Ok(id) = id.parse::<UserId>() else {
        return Ok(not_found_user(&page.session));
    };
    let result = match action {
        UserAction::Disable => accounts::disable_user(state, &page.cap, id).await,
        UserAction::Enable => accounts::enable_user(state, &page.cap, id).await,
        UserAction::ResetPassword => {
            accounts::reset_password(state, &page.cap, id, form.get("password").to_owned()).await
        }
        UserAction::RevokeSessions => accounts::revoke_sessions(state, &page.cap, id)
            .await
            .map(|_| ()),
    };
    let (status, error) = match result {
        Ok(()) => {
            let list = accounts::users(state, &page.cap)
                .await
                .map_err(|e| page.session.internal(e))?;
            let name = list
                .iter()
                .find(|u| u.id == id)
                .map_or_else(|| id.to_string(), |u| u.username.clone());
            return Ok(see_other(&format!(
                "/admin/users?updated={}",
                encode(&name)
            )));
        }
        Err(ServiceError::NotFound) => return Ok(not_found_user(&page.session)),
        Err(ServiceError::AccountChange(AccountChangeError::DisableSelf)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Key::ErrDisableSelf)
        }
        Err(ServiceError::AccountChange(AccountChangeError::PersonDeparted)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Key::ErrPersonDeparted)
        }
        Err(ServiceError::Account(errors)) => match errors.first() {
            Some(AccountError::Password(e)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, password_error(*e))
            }
            _ => (StatusCode::UNPROCESSABLE_ENTITY, Key::ErrPasswordShort),
        },
        Err(e) => return Err(page.session.internal(e)),
    };
    let list = accounts::users(state, &page.cap)
        .await
        .map_err(|e| page.session.internal(e))?;
    let html = users_page_with(
        &page.session,
        &list,
        &UserForm::default(),
        None,
        None,
        Some((id, error)),
    );
    Ok((status, html).into_response())
}

fn not_found_user(session: &WebSession) -> Response {
    let lang = session.lang;
    let page = layout::message_page(
        lang,
        Some(session),
        Key::NotFoundTitle,
        t(lang, Key::UserNotFound),
    );
    (StatusCode::NOT_FOUND, page).into_response()
}

/// `POST /admin/users/{id}/disable`.
pub async fn disable_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<AdminCap>,
) -> Result<Response, WebError> {
    user_action(&state, &id, submitted, UserAction::Disable).await
}

/// `POST /admin/users/{id}/enable`.
pub async fn enable_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<AdminCap>,
) -> Result<Response, WebError> {
    user_action(&state, &id, submitted, UserAction::Enable).await
}

/// `POST /admin/users/{id}/password`: a temporary password the holder must replace.
pub async fn reset_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<AdminCap>,
) -> Result<Response, WebError> {
    user_action(&state, &id, submitted, UserAction::ResetPassword).await
}

/// `POST /admin/users/{id}/sessions/revoke`.
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submitted: WebForm<AdminCap>,
) -> Result<Response, WebError> {
    user_action(&state, &id, submitted, UserAction::RevokeSessions).await
}

/// `GET /admin/users/{id}/sessions`: an account's live sessions, with the button that ends
/// them.
pub async fn user_sessions(
    page: Page<AdminCap>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let Ok(id) = id.parse::<UserId>() else {
        return Ok(not_found_user(&page.session));
    };
    let sessions = match accounts::sessions(&state, &page.cap, id).await {
        Ok(list) => list,
        Err(ServiceError::NotFound) => return Ok(not_found_user(&page.session)),
        Err(e) => return Err(page.session.internal(e)),
    };
    let session = &page.session;
    let lang = session.lang;
    let content = html! {
        h1 { (t(lang, Key::SessionsTitle)) " #" (id) }
        section.panel {
            @if sessions.is_empty() {
                p #sessions-empty { (t(lang, Key::NoSessions)) }
            } @else {
                table #session-table {
                    thead { tr {
                        th { "#" } th { (t(lang, Key::CreatedAt)) } th { (t(lang, Key::ExpiresAt)) }
                    } }
                    tbody {
                        @for s in &sessions {
                            tr data-session-id=(s.id) {
                                td { code { (s.id) } }
                                td { (layout::time(s.created_at)) }
                                td { (layout::time(s.expires_at)) }
                            }
                        }
                    }
                }
            }
            form.revoke-sessions method="post" action={ "/admin/users/" (id) "/sessions/revoke" } {
                (csrf_field(session))
                button #revoke-sessions type="submit" { (t(lang, Key::RevokeSessions)) }
            }
            p { a href="/admin/users" { (t(lang, Key::UsersTitle)) } }
        }
    };
    Ok(admin_page(session, Key::SessionsTitle, content).into_response())
}

/// `POST /admin/users`.
pub async fn create_user(
    State(state): State<AppState>,
    submitted: WebForm<AdminCap>,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let (mut user, password) = UserForm::from(&form);
    let person_id = user.validate(&password);
    let status = if user.errors.is_empty() {
        let request = CreateUser {
            username: user.username.clone(),
            password,
            roles: user.roles.clone(),
            person_id,
            new_person: new_person(&form, person_id.is_none()),
        };
        match accounts::create_user(&state, &page.cap, request).await {
            Ok(_) => {
                let to = format!("/admin/users?created={}", encode(&user.username));
                return Ok(see_other(&to));
            }
            Err(ServiceError::Duplicate { .. }) => {
                user.errors.push(("username", Key::ErrUsernameTaken));
                StatusCode::CONFLICT
            }
            Err(ServiceError::UnknownReference { .. }) => {
                user.errors.push(("person_id", Key::ErrUnknownPerson));
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(ServiceError::Account(errors)) => {
                user.account_errors(&errors);
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(ServiceError::Duty(_)) => {
                user.errors.push(("person_id", Key::ErrPersonDuties));
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(ServiceError::Invalid(_)) => {
                user.errors.push(("person_id", Key::ErrNewPerson));
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(other) => return Err(page.session.internal(other)),
        }
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let list = accounts::users(&state, &page.cap)
        .await
        .map_err(|e| page.session.internal(e))?;
    Ok((status, users_page(&page.session, &list, &user, None)).into_response())
}

/// The account holder to register with the account (`person_name`, `person_department`,
/// `person_category`), when no person id was given and a name was.
fn new_person(form: &FormData, no_id: bool) -> Option<NewPerson> {
    let name = form.non_empty("person_name").filter(|_| no_id)?;
    Some(NewPerson {
        name: name.to_owned(),
        department: form.get("person_department").trim().to_owned(),
        category: Category::from_name(form.get("person_category")).unwrap_or(Category::General),
        badge_tag: None,
        training_valid_until: None,
        commitment_signed_on: None,
    })
}

fn users_page(session: &WebSession, list: &[User], form: &UserForm, done: Option<&str>) -> Markup {
    users_page_with(session, list, form, done, None, None)
}

fn users_page_with(
    session: &WebSession,
    list: &[User],
    form: &UserForm,
    done: Option<&str>,
    updated: Option<&str>,
    action_error: Option<(UserId, Key)>,
) -> Markup {
    let lang = session.lang;
    let errors = &form.errors;
    let content = html! {
        h1 { (t(lang, Key::UsersTitle)) }
        (flash(lang, done))
        @if let Some(name) = updated {
            p.flash #flash role="status" { (t(lang, Key::AccountUpdated)) (name) }
        }
        @if let Some((id, key)) = action_error {
            p.form-errors #user-action-error data-user-id=(id) role="alert" { (t(lang, key)) }
        }
        div.admin-grid {
            section.panel {
                table #user-table {
                    thead { tr {
                        th { "#" } th { (t(lang, Key::Username)) } th { (t(lang, Key::Roles)) }
                        th { (t(lang, Key::PersonId)) } th { (t(lang, Key::CreatedAt)) }
                        th { (t(lang, Key::UserActions)) }
                    } }
                    tbody {
                        @for u in list {
                            tr data-user-id=(u.id) .disabled[u.disabled] {
                                td { (u.id) }
                                td.username { (u.username)
                                    @if u.disabled { " " span.tag.disabled-tag { (t(lang, Key::Disabled)) } }
                                    @if u.must_change_password { " " span.tag.must-change-tag { (t(lang, Key::MustChangePassword)) } } }
                                td { @for r in u.roles.to_vec() {
                                    span.role-tag data-role=(r.as_str()) { (t(lang, i18n::role(r))) } " "
                                } }
                                td { @if let Some(p) = u.person_id { (p) } }
                                td { (layout::time(u.created_at)) }
                                td.user-actions {
                                    @if u.disabled {
                                        form.user-enable method="post" action={ "/admin/users/" (u.id) "/enable" } {
                                            (csrf_field(session))
                                            button type="submit" { (t(lang, Key::EnableUser)) }
                                        }
                                    } @else {
                                        form.user-disable method="post" action={ "/admin/users/" (u.id) "/disable" } {
                                            (csrf_field(session))
                                            button type="submit" { (t(lang, Key::DisableUser)) }
                                        }
                                    }
                                    form.user-reset method="post" action={ "/admin/users/" (u.id) "/password" } {
                                        (csrf_field(session))
                                        input type="password" name="password" autocomplete="new-password"
                                            aria-label=(t(lang, Key::TemporaryPassword))
                                            placeholder=(t(lang, Key::TemporaryPassword)) required minlength="12";
                                        button type="submit" { (t(lang, Key::ResetPassword)) }
                                    }
                                    a.user-sessions href={ "/admin/users/" (u.id) "/sessions" } { (t(lang, Key::Sessions)) }
                                }
                            }
                        }
                    }
                }
            }
            section.panel.form-panel {
                h2 { (t(lang, Key::CreateUser)) }
                (form_errors(lang, errors))
                form #user-form method="post" action="/admin/users" data-once novalidate {
                    (csrf_field(session))
                    label for="user-username" { (t(lang, Key::Username)) }
                    input #user-username type="text" name="username" value=(form.username)
                        autocomplete="off" autocapitalize="none" spellcheck="false" required
                        aria-invalid=[invalid(errors, "username")];
                    (field_error(lang, errors, "username"))
                    label for="user-password" { (t(lang, Key::Password)) }
                    input #user-password type="password" name="password" autocomplete="new-password"
                        required minlength="12" aria-invalid=[invalid(errors, "password")]
                        aria-describedby="user-password-hint";
                    p.hint #user-password-hint { (t(lang, Key::PasswordHint)) }
                    (field_error(lang, errors, "password"))
                    fieldset #user-roles aria-invalid=[invalid(errors, "roles")] {
                        legend { (t(lang, Key::Roles)) }
                        @for role in Role::ALL {
                            label.check {
                                input.role id={"user-role-" (role.as_str())} type="checkbox" name="roles"
                                    value=(role.as_str()) checked[form.roles.contains(&role)]
                                    data-exclusive[EXCLUSIVE_ROLES.contains(&role)];
                                span { (t(lang, i18n::role(role))) }
                            }
                        }
                        p.hint #roles-exclusive-hint { (t(lang, Key::ExclusiveHint)) }
                        p.field-error #roles-conflict role="alert" hidden { (t(lang, Key::ErrRolesExclusive)) }
                        (field_error(lang, errors, "roles"))
                    }
                    label for="user-person-id" { (t(lang, Key::PersonId)) " " span.hint { (t(lang, Key::Optional)) } }
                    input #user-person-id type="text" name="person_id" value=(form.person_id)
                        inputmode="numeric" aria-invalid=[invalid(errors, "person_id")];
                    (field_error(lang, errors, "person_id"))
                    fieldset #user-new-person {
                        legend { (t(lang, Key::NewPersonLegend)) " " span.hint { (t(lang, Key::Optional)) } }
                        label for="user-person-name" { (t(lang, Key::PersonName)) }
                        input #user-person-name type="text" name="person_name" maxlength="200" autocomplete="off";
                        label for="user-person-department" { (t(lang, Key::Department)) }
                        input #user-person-department type="text" name="person_department" maxlength="200";
                        label for="user-person-category" { (t(lang, Key::Category)) }
                        select #user-person-category name="person_category" {
                            @for c in [Category::Core, Category::Important, Category::General] {
                                option value=(c.as_str()) { (t(lang, i18n::category(c))) }
                            }
                        }
                    }
                    button #user-submit .primary type="submit" { (t(lang, Key::Create)) }
                }
            }
        }
    };
    admin_page(session, Key::UsersTitle, content)
}

// ---------------------------------------------------------------------------------------
// Devices

#[derive(Debug, Default)]
struct DeviceForm {
    id: String,
    kind: String,
    public_key: String,
    inside_zone: String,
    outside_zone: String,
    zone: String,
    errors: Errors,
}

impl DeviceForm {
    fn from(form: &FormData) -> DeviceForm {
        let field = |name| form.get(name).trim().to_owned();
        DeviceForm {
            id: field("id"),
            kind: field("kind"),
            public_key: field("public_key"),
            inside_zone: field("inside_zone"),
            outside_zone: field("outside_zone"),
            zone: field("zone"),
            errors: Vec::new(),
        }
    }

    fn zone(&mut self, field: &'static str) -> Option<ZoneId> {
        let text = match field {
            "inside_zone" => &self.inside_zone,
            "outside_zone" => &self.outside_zone,
            _ => &self.zone,
        };
        if text.is_empty() {
            return None;
        }
        match ZoneId::new(text) {
            Ok(id) => Some(id),
            Err(_) => {
                self.errors.push((field, Key::ErrUnknownZone));
                None
            }
        }
    }

    /// The form's fields parsed, and the registration as the use case takes it.
    fn validate(&mut self) -> Option<DeviceRegistration> {
        let id = DeviceId::new(&self.id).ok();
        if id.is_none() {
            self.errors.push(("id", Key::ErrDeviceId));
        }
        let kind = DeviceKind::from_name(&self.kind);
        if kind.is_none() {
            self.errors.push(("kind", Key::ErrDeviceKind));
        }
        // The key and the placement: the use case's own checks, each said at its field.
        let key = devices::public_key(&self.public_key).ok();
        if key.is_none() {
            self.errors.push(("public_key", Key::ErrPublicKey));
        }
        let inside = self.zone("inside_zone");
        let outside = self.zone("outside_zone");
        let zone = self.zone("zone");
        let placement = match kind.map(|k| devices::placement(k, inside, outside, zone)) {
            Some(Ok(p)) => Some(p),
            Some(Err(ServiceError::Placement(e))) => {
                self.errors.push(placement_error(&e));
                None
            }
            Some(Err(_)) | None => None,
        };
        if !self.errors.is_empty() {
            return None;
        }
        placement?;
        key?;
        Some(DeviceRegistration {
            id: id?,
            kind: kind?,
            public_key: self.public_key.clone(),
            inside_zone: self.zone("inside_zone"),
            outside_zone: self.zone("outside_zone"),
            zone: self.zone("zone"),
        })
    }
}

fn placement_error(e: &PlacementError) -> (&'static str, Key) {
    match e {
        PlacementError::GateNeedsBothSides => ("inside_zone", Key::ErrGateNeedsBothSides),
        PlacementError::GateSidesEqual => ("outside_zone", Key::ErrGateSidesEqual),
        PlacementError::CabinetNeedsZone => ("zone", Key::ErrCabinetNeedsZone),
        PlacementError::NotApplicable { field, .. } => match *field {
            "inside_zone" => ("inside_zone", Key::ErrNotApplicable),
            "outside_zone" => ("outside_zone", Key::ErrNotApplicable),
            _ => ("zone", Key::ErrNotApplicable),
        },
    }
}

/// The administrator's devices as a list page: 50 a page, by id unless sorted by kind;
/// search words in the id, kind or zones.
static DEVICE_LIST: ListSpec = ListSpec {
    path: "/admin/devices",
    prefix: "device",
    page_size: 50,
    default_sort: "id",
    filters: &[],
    sorts: &[("id", Key::DeviceId), ("kind", Key::DeviceKind)],
    focus_search: false,
};

/// `GET /admin/devices?q=&sort=&order=&cursor=`.
pub async fn devices(
    page: Page<AdminCap>,
    State(state): State<AppState>,
) -> Result<(StatusCode, Markup), WebError> {
    let done = created(&page.session);
    devices_page(&state, &page, &DeviceForm::default(), done.as_deref()).await
}

/// `POST /admin/devices`.
pub async fn register_device(
    State(state): State<AppState>,
    submitted: WebForm<AdminCap>,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let mut device = DeviceForm::from(&form);
    let status = match device.validate() {
        None => StatusCode::UNPROCESSABLE_ENTITY,
        Some(new) => match devices::register(&state, &page.cap, new).await {
            Ok(_) => {
                let to = format!("/admin/devices?created={}", encode(&device.id));
                return Ok(see_other(&to));
            }
            Err(ServiceError::Duplicate { .. }) => {
                device.errors.push(("id", Key::ErrDeviceTaken));
                StatusCode::CONFLICT
            }
            Err(ServiceError::UnknownReference { .. }) => {
                device.errors.push(("zone", Key::ErrUnknownZone));
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(e) => return Err(page.session.internal(e)),
        },
    };
    let (_, html) = devices_page(&state, &page, &device, None).await?;
    Ok((status, html).into_response())
}

fn zone_select(
    lang: Lang,
    id: &str,
    name: &str,
    zones: &[Zone],
    selected: &str,
    errors: &Errors,
) -> Markup {
    html! {
        select id=(id) name=(name) aria-invalid=[invalid(errors, name)] {
            option value="" selected[selected.is_empty()] { (t(lang, Key::NoneOption)) }
            @for z in zones {
                option value=(z.id) selected[z.id.as_str() == selected] {
                    (z.id) " — " (z.name) " (" (t(lang, i18n::zone_level(z.level))) ")"
                }
            }
        }
        (field_error(lang, errors, name))
    }
}

async fn devices_page(
    state: &AppState,
    page: &Page<AdminCap>,
    form: &DeviceForm,
    done: Option<&str>,
) -> Result<(StatusCode, Markup), WebError> {
    let session = &page.session;
    let lang = session.lang;
    let mut ask = ListAsk::read(&query(session), &DEVICE_LIST);
    let mut list_errors = Errors::new();
    let cap = &page.cap;
    let found = fitting_page(&mut ask, &mut list_errors, |params| async move {
        devices::page_with_heartbeat(state, cap, &params).await
    })
    .await
    .map_err(|e| session.internal(e))?;
    let zones = zones::list(state, session.caller())
        .await
        .map_err(|e| session.internal(e))?;
    let errors = &form.errors;
    let content = html! {
        h1 { (t(lang, Key::DevicesTitle)) }
        (flash(lang, done))
        section.panel {
            form #device-search .filters method="get" action="/admin/devices" role="search" {
                (search_field(lang, &ask, &list_errors, Key::SearchDeviceWords))
                (sort_fields(lang, &ask))
                div.filter-buttons {
                    button #device-search-submit .primary type="submit" { (t(lang, Key::Search)) }
                    a href="/admin/devices" { (t(lang, Key::ClearFilter)) }
                }
            }
        }
        section.panel {
            (reset_notice(lang, &ask, found.refused))
            table #device-table {
                thead { tr {
                    (sort_header(lang, &ask, "id", Key::DeviceId))
                    (sort_header(lang, &ask, "kind", Key::DeviceKind))
                    th { (t(lang, Key::Zone)) } th { (t(lang, Key::PublicKey)) }
                    th { (t(lang, Key::LastHeartbeat)) } th { (t(lang, Key::CreatedAt)) }
                } }
                tbody {
                    @for d in &found.page.items {
                        tr data-device-id=(d.id) data-revoked=(d.revoked_at.is_some()) {
                            td {
                                (d.id)
                                @if d.revoked_at.is_some() {
                                    " " span.revoked { (t(lang, Key::DeviceRevoked)) }
                                }
                            }
                            td { (t(lang, i18n::device_kind(d.kind))) }
                            td {
                                @match (&d.inside_zone, &d.outside_zone, &d.zone) {
                                    (Some(i), Some(o), _) => { (i) " ⇄ " (o) }
                                    (_, _, Some(z)) => { (z) }
                                    _ => {}
                                }
                            }
                            td { code.key { (d.public_key) } }
                            td { @match d.last_heartbeat {
                                Some(at) => (layout::time(at)),
                                None => (t(lang, Key::Never)),
                            } }
                            td { (layout::time(d.created_at)) }
                        }
                    }
                }
            }
            (pager(lang, &ask, found.page.next.as_deref()))
        }
        section.panel.form-panel {
            h2 { (t(lang, Key::RegisterDevice)) }
            (form_errors(lang, errors))
            form #device-form method="post" action="/admin/devices" data-once novalidate {
                (csrf_field(session))
                div.form-grid {
                    div {
                        label for="device-id" { (t(lang, Key::DeviceId)) }
                        input #device-id type="text" name="id" value=(form.id) required
                            autocomplete="off" spellcheck="false" aria-invalid=[invalid(errors, "id")];
                        (field_error(lang, errors, "id"))
                    }
                    div {
                        label for="device-kind" { (t(lang, Key::DeviceKind)) }
                        select #device-kind name="kind" aria-invalid=[invalid(errors, "kind")] {
                            option value="" selected[form.kind.is_empty()] { (t(lang, Key::NoneOption)) }
                            @for k in [DeviceKind::Gate, DeviceKind::Cabinet, DeviceKind::Desk] {
                                option value=(k.as_str()) selected[form.kind == k.as_str()] {
                                    (t(lang, i18n::device_kind(k)))
                                }
                            }
                        }
                        (field_error(lang, errors, "kind"))
                    }
                    div.wide {
                        label for="device-public-key" { (t(lang, Key::PublicKey)) }
                        input #device-public-key type="text" name="public_key" value=(form.public_key)
                            required autocomplete="off" spellcheck="false"
                            aria-invalid=[invalid(errors, "public_key")];
                        p.hint { (t(lang, Key::PublicKeyHint)) }
                        (field_error(lang, errors, "public_key"))
                    }
                    div {
                        label for="device-inside-zone" { (t(lang, Key::InsideZone)) }
                        (zone_select(lang, "device-inside-zone", "inside_zone", &zones, &form.inside_zone, errors))
                    }
                    div {
                        label for="device-outside-zone" { (t(lang, Key::OutsideZone)) }
                        (zone_select(lang, "device-outside-zone", "outside_zone", &zones, &form.outside_zone, errors))
                    }
                    div {
                        label for="device-zone" { (t(lang, Key::Zone)) }
                        (zone_select(lang, "device-zone", "zone", &zones, &form.zone, errors))
                    }
                }
                button #device-submit .primary type="submit" { (t(lang, Key::Register)) }
            }
        }
    };
    Ok((
        found.status(),
        admin_page(session, Key::DevicesTitle, content),
    ))
}

// ---------------------------------------------------------------------------------------
// Zones

#[derive(Debug, Default)]
struct ZoneForm {
    id: String,
    name: String,
    level: String,
    errors: Errors,
}

impl ZoneForm {
    fn from(form: &FormData) -> ZoneForm {
        ZoneForm {
            id: form.get("id").trim().to_owned(),
            name: form.get("name").trim().to_owned(),
            level: form.get("level").trim().to_owned(),
            errors: Vec::new(),
        }
    }

    /// The id and level parsed here; the name checked by the use case's check.
    fn validate(&mut self) -> Option<NewZone> {
        let id = ZoneId::new(&self.id).ok();
        if id.is_none() {
            self.errors.push(("id", Key::ErrZoneId));
        }
        if zones::check_name(&self.name).is_err() {
            self.errors.push(("name", Key::ErrZoneName));
        }
        let level = ZoneLevel::from_code(&self.level);
        if level.is_none() {
            self.errors.push(("level", Key::ErrLevel));
        }
        Some(NewZone {
            id: id?,
            name: self.name.clone(),
            level: level?,
        })
        .filter(|_| self.errors.is_empty())
    }
}

/// `GET /admin/zones`.
pub async fn zones(
    page: Page<AdminCap>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let done = created(&page.session);
    zones_page(&state, &page.session, &ZoneForm::default(), done.as_deref()).await
}

/// `POST /admin/zones`.
pub async fn create_zone(
    State(state): State<AppState>,
    submitted: WebForm<AdminCap>,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let mut zone = ZoneForm::from(&form);
    let status = match zone.validate() {
        None => StatusCode::UNPROCESSABLE_ENTITY,
        Some(new) => match zones::create(&state, &page.cap, new).await {
            Ok(_) => {
                let to = format!("/admin/zones?created={}", encode(&zone.id));
                return Ok(see_other(&to));
            }
            Err(ServiceError::Invalid(_)) => {
                zone.errors.push(("name", Key::ErrZoneName));
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(ServiceError::Duplicate { .. }) => {
                zone.errors.push(("id", Key::ErrZoneTaken));
                StatusCode::CONFLICT
            }
            Err(e) => return Err(page.session.internal(e)),
        },
    };
    let html = zones_page(&state, &page.session, &zone, None).await?;
    Ok((status, html).into_response())
}

async fn zones_page(
    state: &AppState,
    session: &WebSession,
    form: &ZoneForm,
    done: Option<&str>,
) -> Result<Markup, WebError> {
    let lang = session.lang;
    let list = zones::list(state, session.caller())
        .await
        .map_err(|e| session.internal(e))?;
    let errors = &form.errors;
    let levels = [
        ZoneLevel::Public,
        ZoneLevel::Classified(crate::domain::level::Level::Confidential),
        ZoneLevel::Classified(crate::domain::level::Level::Secret),
        ZoneLevel::Classified(crate::domain::level::Level::TopSecret),
    ];
    let content = html! {
        h1 { (t(lang, Key::ZonesTitle)) }
        (flash(lang, done))
        div.admin-grid {
            section.panel {
                table #zone-table {
                    thead { tr {
                        th { (t(lang, Key::ZoneId)) } th { (t(lang, Key::ZoneName)) }
                        th { (t(lang, Key::Level)) } th { (t(lang, Key::CreatedAt)) }
                    } }
                    tbody {
                        @for z in &list {
                            tr data-zone-id=(z.id) {
                                td { (z.id) }
                                td { (z.name) }
                                td { span.level data-level=(z.level.code()) { (t(lang, i18n::zone_level(z.level))) } }
                                td { (layout::time(z.created_at)) }
                            }
                        }
                    }
                }
            }
            section.panel.form-panel {
                h2 { (t(lang, Key::CreateZone)) }
                (form_errors(lang, errors))
                form #zone-form method="post" action="/admin/zones" data-once novalidate {
                    (csrf_field(session))
                    label for="zone-id" { (t(lang, Key::ZoneId)) }
                    input #zone-id type="text" name="id" value=(form.id) required autocomplete="off"
                        spellcheck="false" aria-invalid=[invalid(errors, "id")];
                    (field_error(lang, errors, "id"))
                    label for="zone-name" { (t(lang, Key::ZoneName)) }
                    input #zone-name type="text" name="name" value=(form.name) required maxlength="200"
                        aria-invalid=[invalid(errors, "name")];
                    (field_error(lang, errors, "name"))
                    label for="zone-level" { (t(lang, Key::Level)) }
                    select #zone-level name="level" aria-invalid=[invalid(errors, "level")] {
                        option value="" selected[form.level.is_empty()] { (t(lang, Key::NoneOption)) }
                        @for l in levels {
                            option value=(l.code()) selected[form.level == l.code()] {
                                (t(lang, i18n::zone_level(l)))
                            }
                        }
                    }
                    (field_error(lang, errors, "level"))
                    button #zone-submit .primary type="submit" { (t(lang, Key::Create)) }
                }
            }
        }
    };
    Ok(admin_page(session, Key::ZonesTitle, content))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn form(body: &str) -> FormData {
        FormData::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn the_user_form_reports_every_problem_and_keeps_the_values() {
        let (mut user, password) = UserForm::from(&form(
            "username=bad+name&password=short&roles=admin&roles=auditor&person_id=x",
        ));
        assert_eq!(user.validate(&password), None);
        let fields: Vec<_> = user.errors.iter().map(|(f, k)| (*f, *k)).collect();
        assert_eq!(
            fields,
            [
                ("username", Key::ErrUsername),
                ("password", Key::ErrPasswordShort),
                ("roles", Key::ErrRolesExclusive),
                ("person_id", Key::ErrPersonId)
            ]
        );
        assert_eq!(user.username, "bad name");
        assert_eq!(user.roles, [Role::Admin, Role::Auditor]);
        let (mut ok, password) = UserForm::from(&form(
            "username=li.wei&password=long+enough+pass&roles=guard&person_id=4",
        ));
        assert_eq!(ok.validate(&password), Some(PersonId(4)));
        assert!(ok.errors.is_empty());
        let (mut none, password) = UserForm::from(&form("username=a&password=long+enough+pass"));
        none.validate(&password);
        assert_eq!(none.errors, [("roles", Key::ErrRolesEmpty)]);
    }

    #[test]
    fn the_device_form_checks_placement_and_key() {
        let key = STANDARD.encode(crate::keys::test_key(9));
        let mut d = DeviceForm::from(&form(&format!(
            "id=gate-1&kind=gate&public_key={}&inside_zone=in&outside_zone=in",
            super::super::form::encode(&key)
        )));
        assert!(d.validate().is_none());
        assert_eq!(d.errors, [("outside_zone", Key::ErrGateSidesEqual)]);
        let mut d = DeviceForm::from(&form("id=a b&kind=robot&public_key=abc"));
        assert!(d.validate().is_none());
        assert_eq!(
            d.errors,
            [
                ("id", Key::ErrDeviceId),
                ("kind", Key::ErrDeviceKind),
                ("public_key", Key::ErrPublicKey)
            ]
        );
        let mut d = DeviceForm::from(&form(&format!(
            "id=cab-1&kind=cabinet&public_key={}&zone=vault",
            super::super::form::encode(&key)
        )));
        let new = devices::check_registration(d.validate().unwrap()).unwrap();
        assert_eq!(new.public_key, crate::keys::test_key(9));
        assert_eq!(new.placement.kind(), DeviceKind::Cabinet);
    }

    #[test]
    fn the_zone_form_checks_every_field() {
        let mut z = ZoneForm::from(&form("id=&name=+&level=secret"));
        assert!(z.validate().is_none());
        assert_eq!(
            z.errors,
            [
                ("id", Key::ErrZoneId),
                ("name", Key::ErrZoneName),
                ("level", Key::ErrLevel)
            ]
        );
        let mut z = ZoneForm::from(&form("id=lab&name=%E5%AE%9E%E9%AA%8C%E5%AE%A4&level=TS"));
        let new = z.validate().unwrap();
        assert_eq!((new.id.as_str(), new.name.as_str()), ("lab", "实验室"));
    }
}
