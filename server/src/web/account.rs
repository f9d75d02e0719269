//! The change-password page every signed-in user can reach (`GET/POST /account/password`),
//! and the one page an account that must change its password is shown (after its creation
//! by an administrator, or a reset): every other page redirects here until it is done.
//!
//! It calls the API's use case ([`accounts::change_password`]): the same policy, the same
//! check of the current password and its throttle, the same audit entry.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::admin::password_error;
use super::i18n::{Key, t};
use super::layout::{self, csrf_field, field_error, form_errors, invalid};
use super::session::{PendingForm, PendingSession, WebError, WebSession, see_other};
use crate::AppState;
use crate::domain::user::AccountChangeError;
use crate::service::ServiceError;
use crate::service::accounts::{self, ChangePassword};

/// The page's path.
pub const PASSWORD_PAGE: &str = "/account/password";

/// `GET /account/password`.
pub async fn password_page(PendingSession(session): PendingSession) -> Markup {
    password_markup(&session, &[])
}

/// `POST /account/password`: change it, then home (or the form again with the reason).
pub async fn change_password(
    State(state): State<AppState>,
    submitted: PendingForm,
) -> Result<Response, WebError> {
    let PendingForm { session, form } = submitted;
    let mut errors: Vec<(&'static str, Key)> = Vec::new();
    if form.get("new") != form.get("confirm") {
        errors.push(("confirm", Key::ErrPasswordMismatch));
        let page = password_markup(&session, &errors);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let request = ChangePassword {
        old: form.get("old").to_owned(),
        new: form.get("new").to_owned(),
    };
    let status = match accounts::change_password(&state, session.caller(), request).await {
        Ok(()) => return Ok(see_other("/")),
        Err(ServiceError::AccountChange(AccountChangeError::WrongPassword)) => {
            errors.push(("old", Key::ErrWrongPassword));
            StatusCode::FORBIDDEN
        }
        Err(ServiceError::AccountChange(AccountChangeError::PasswordUnchanged)) => {
            errors.push(("new", Key::ErrPasswordUnchanged));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(ServiceError::AccountChange(AccountChangeError::Policy(e))) => {
            errors.push(("new", password_error(e)));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(ServiceError::LoginBlocked(_)) => {
            errors.push(("old", Key::ErrTooManyAttempts));
            StatusCode::TOO_MANY_REQUESTS
        }
        Err(e) => return Err(session.internal(e)),
    };
    Ok((status, password_markup(&session, &errors)).into_response())
}

fn password_markup(session: &WebSession, errors: &[(&'static str, Key)]) -> Markup {
    let lang = session.lang;
    let forced = session.caller().must_change_password();
    let content = html! {
        section.card.password-card {
            h1 { (t(lang, Key::ChangePasswordTitle)) }
            @if forced {
                p.notice #password-required role="status" { (t(lang, Key::PasswordChangeRequired)) }
            }
            (form_errors(lang, errors))
            form #password-form method="post" action=(PASSWORD_PAGE) data-once novalidate {
                (csrf_field(session))
                label for="password-old" { (t(lang, Key::CurrentPassword)) }
                input #password-old type="password" name="old" autocomplete="current-password"
                    required aria-invalid=[invalid(errors, "old")];
                (field_error(lang, errors, "old"))
                label for="password-new" { (t(lang, Key::NewPassword)) }
                input #password-new type="password" name="new" autocomplete="new-password"
                    required minlength="12" aria-invalid=[invalid(errors, "new")]
                    aria-describedby="password-new-hint";
                p.hint #password-new-hint { (t(lang, Key::PasswordHint)) }
                (field_error(lang, errors, "new"))
                label for="password-confirm" { (t(lang, Key::ConfirmPassword)) }
                input #password-confirm type="password" name="confirm" autocomplete="new-password"
                    required aria-invalid=[invalid(errors, "confirm")];
                (field_error(lang, errors, "confirm"))
                button #password-submit .primary type="submit" { (t(lang, Key::ChangePasswordButton)) }
            }
        }
    };
    layout::page(
        lang,
        Some(session),
        session.path(),
        t(lang, Key::ChangePasswordTitle),
        "account",
        content,
    )
}
