//! Capability types: proof that the caller holds a role.
//!
//! Each type has a private field, so outside this module it can only be obtained through its
//! `FromRequestParts` implementation, which checks the session's roles (401 without a session,
//! 403 without the role). Privileged store operations take the capability as an argument and
//! use it as the audit actor, so a handler that forgets the check does not compile, and the
//! audit trail always names who was checked. Model: lldap's `get_admin_handler`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::Actor;
use super::extract::Authenticated;
use crate::AppState;
use crate::api::error::ApiError;
use crate::domain::role::Role;

macro_rules! capability {
    ($(#[$doc:meta])* $name:ident: $($role:ident),+) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            actor: Actor,
        }

        impl $name {
            /// The roles any one of which grants this capability.
            pub const ROLES: &'static [Role] = &[$(Role::$role),+];

            /// The checked caller, for the audit trail.
            pub fn actor(&self) -> &Actor {
                &self.actor
            }

            fn check(session: &Authenticated) -> Result<$name, ApiError> {
                if session.roles().any_of(Self::ROLES) {
                    Ok($name { actor: session.actor() })
                } else {
                    tracing::info!(user = %session.user_id(), capability = stringify!($name), "forbidden");
                    Err(ApiError::Forbidden)
                }
            }
        }

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                let session = Authenticated::from_request_parts(parts, state).await?;
                $name::check(&session)
            }
        }
    };
}

capability!(
    /// The system administrator: users, zones, devices.
    AdminCap: Admin
);
capability!(
    /// The security officer: people, approvals, policy.
    SecurityOfficerCap: SecurityOfficer
);
capability!(
    /// The auditor: reads the audit trail.
    AuditorCap: Auditor
);
capability!(
    /// A custodian: carriers and sign-outs.
    CustodianCap: Custodian
);
capability!(
    /// A guard at a checkpoint.
    GuardCap: Guard
);
capability!(
    /// Reading the register of people: security officers (who keep it), custodians (who lend
    /// to people) and administrators (who link accounts to people).
    PeopleReaderCap: SecurityOfficer, Custodian, Admin
);
capability!(
    /// Reading the device list: administrators and security officers.
    DeviceReaderCap: Admin, SecurityOfficer
);
capability!(
    /// Handling alerts (acknowledge, resolve, watch the live stream): guards at the checkpoint
    /// and security officers.
    AlertHandlerCap: Guard, SecurityOfficer
);
capability!(
    /// Reading alerts: guards, custodians (whose carriers they concern) and security officers.
    AlertReaderCap: Guard, Custodian, SecurityOfficer
);

impl AlertHandlerCap {
    /// Whoever may handle alerts may read them: every role of [`AlertHandlerCap::ROLES`] is
    /// among [`AlertReaderCap::ROLES`] (tested).
    pub fn reader(&self) -> AlertReaderCap {
        AlertReaderCap {
            actor: self.actor.clone(),
        }
    }
}

impl AdminCap {
    /// The capability `init` uses to create the first administrator, before any session can
    /// exist. Only the bootstrap path in `cli` calls this.
    pub(crate) fn bootstrap() -> AdminCap {
        AdminCap {
            actor: Actor::system("init"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_handlers_are_alert_readers() {
        for role in AlertHandlerCap::ROLES {
            assert!(AlertReaderCap::ROLES.contains(role), "{role}");
        }
        for role in [Role::Admin, Role::Auditor] {
            assert!(!AlertReaderCap::ROLES.contains(&role), "{role}");
            assert!(!AlertHandlerCap::ROLES.contains(&role), "{role}");
        }
    }
}
