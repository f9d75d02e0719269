//! First-run guidance for the administrator (`/admin/start`, the administrator's home): on an
//! empty server it says what to do next, in order, with links: zones → devices → the people
//! who register people (a security officer) and carriers (a custodian), a guard and an
//! auditor. Each step is ticked once done, from the lists the administrator's pages already
//! read, so the page stays useful as a checklist after the first day.

use axum::extract::State;
use maud::{Markup, html};

use super::i18n::{Key, t};
use super::layout;
use super::session::{Page, WebError};
use crate::AppState;
use crate::auth::capability::AdminCap;
use crate::domain::role::Role;
use crate::service::{accounts, devices, zones};

/// One step of the setup: its name, the page that does it, and whether it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// `data-step`.
    pub id: &'static str,
    /// What to do.
    pub text: Key,
    /// Where.
    pub href: &'static str,
    /// Done already.
    pub done: bool,
}

/// The steps in order, from what exists: zones, devices, and accounts with each role.
pub fn steps(zones: usize, devices: usize, roles: &[Role]) -> [Step; 6] {
    let has = |role| roles.contains(&role);
    [
        Step {
            id: "zones",
            text: Key::StepZones,
            href: "/admin/zones",
            done: zones > 0,
        },
        Step {
            id: "devices",
            text: Key::StepDevices,
            href: "/admin/devices",
            done: devices > 0,
        },
        Step {
            id: "officer",
            text: Key::StepOfficer,
            href: "/admin/users",
            done: has(Role::SecurityOfficer),
        },
        Step {
            id: "custodian",
            text: Key::StepCustodian,
            href: "/admin/users",
            done: has(Role::Custodian),
        },
        Step {
            id: "guard",
            text: Key::StepGuard,
            href: "/admin/users",
            done: has(Role::Guard),
        },
        Step {
            id: "auditor",
            text: Key::StepAuditor,
            href: "/admin/users",
            done: has(Role::Auditor),
        },
    ]
}

/// `GET /admin/start`.
pub async fn start(
    page: Page<AdminCap>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let fail = |e| session.internal(e);
    let zone_count = zones::list(&state, session.caller())
        .await
        .map_err(fail)?
        .len();
    let device_count = devices::list_with_heartbeat(&state, &page.cap)
        .await
        .map_err(fail)?
        .len();
    let roles: Vec<Role> = accounts::users(&state, &page.cap)
        .await
        .map_err(fail)?
        .iter()
        .filter(|u| !u.disabled)
        .flat_map(|u| u.roles.to_vec())
        .collect();
    let steps = steps(zone_count, device_count, &roles);
    let next = steps.iter().find(|s| !s.done);
    let content = html! {
        h1 { (t(lang, Key::SetupTitle)) }
        section.panel #first-run data-complete=(next.is_none()) {
            @match next {
                Some(step) => p #next-step data-step=(step.id) {
                    (t(lang, Key::SetupNext)) " "
                    a href=(step.href) { (t(lang, step.text)) }
                },
                None => p #next-step data-step="none" { (t(lang, Key::SetupDone)) },
            }
            ol #setup-steps {
                @for step in &steps {
                    li.step data-step=(step.id) data-done=(step.done) .done[step.done] {
                        a href=(step.href) { (t(lang, step.text)) }
                        " "
                        span.step-state { (t(lang, if step.done { Key::StepDone } else { Key::StepTodo })) }
                    }
                }
            }
            p.hint { (t(lang, Key::SetupPeopleCarriers)) }
        }
    };
    Ok(layout::page(
        lang,
        Some(session),
        session.path(),
        t(lang, Key::SetupTitle),
        "admin",
        content,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_server_starts_with_zones_and_ticks_steps_off_in_order() {
        let empty = steps(0, 0, &[Role::Admin]);
        assert_eq!(empty.iter().find(|s| !s.done).map(|s| s.id), Some("zones"));
        let zoned = steps(2, 0, &[Role::Admin]);
        assert_eq!(
            zoned.iter().find(|s| !s.done).map(|s| s.id),
            Some("devices")
        );
        let all = [
            Role::SecurityOfficer,
            Role::Custodian,
            Role::Guard,
            Role::Auditor,
        ];
        assert!(steps(1, 1, &all).iter().all(|s| s.done));
    }
}
