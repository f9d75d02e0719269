//! Capability types: proof that the caller holds a role.
//!
//! Each type has a private field, so it can only be obtained through [`Capability::grant`],
//! which checks an [`Authenticated`] caller's roles. Use cases take the capability as an
//! argument and use it as the audit actor, so a handler that forgets the check does not
//! compile, and the audit trail always names who was checked. Model: lldap's
//! `get_admin_handler`.
//!
//! Nothing here knows HTTP: `api::auth` turns a request into an [`Authenticated`] caller and
//! then into a capability, answering 401 or 403.

use super::{Actor, Authenticated};
use crate::domain::role::Role;

/// The caller lacks every role that grants a capability, or must first change their password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not allowed for your roles")]
pub struct Forbidden;

/// A proof of role: obtained only by [`Capability::grant`].
pub trait Capability: Sized {
    /// The roles any one of which grants this capability.
    const ROLES: &'static [Role];

    /// The capability, if `caller` holds one of [`Capability::ROLES`].
    fn grant(caller: &Authenticated) -> Result<Self, Forbidden>;

    /// The checked caller, for the audit trail.
    fn actor(&self) -> &Actor;
}

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
        }

        impl Capability for $name {
            const ROLES: &'static [Role] = $name::ROLES;

            fn grant(caller: &Authenticated) -> Result<$name, Forbidden> {
                if caller.must_change_password() {
                    // Separation of duties: a password the administrator chose (a new
                    // account, a reset) grants nothing until its holder has replaced it.
                    tracing::info!(
                        user = %caller.user_id(),
                        capability = stringify!($name),
                        "forbidden until the password is changed"
                    );
                    Err(Forbidden)
                } else if caller.roles().any_of(Self::ROLES) {
                    Ok($name { actor: caller.actor() })
                } else {
                    tracing::info!(
                        user = %caller.user_id(),
                        capability = stringify!($name),
                        "forbidden"
                    );
                    Err(Forbidden)
                }
            }

            fn actor(&self) -> &Actor {
                &self.actor
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

capability!(
    /// Exporting the movement record (EPCIS): auditors, who review it, and security officers,
    /// who answer for it.
    EventExportCap: Auditor, SecurityOfficer
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

    /// Whether this is `init`'s capability (the first administrator chooses their own
    /// password, so their account need not change it).
    pub(crate) fn is_bootstrap(&self) -> bool {
        self.actor == Actor::system("init")
    }
}

/// A custodian or a security officer: reads carriers (with titles), sign-outs and
/// histories, and cancels sign-outs. Rather than a capability type of its own, it holds one of
/// the existing ones, each obtained through its own role check.
#[derive(Debug, Clone)]
pub enum CustodyReader {
    /// Checked as a custodian.
    Custodian(CustodianCap),
    /// Checked as a security officer.
    SecurityOfficer(SecurityOfficerCap),
}

impl Capability for CustodyReader {
    const ROLES: &'static [Role] = &[Role::Custodian, Role::SecurityOfficer];

    fn grant(caller: &Authenticated) -> Result<Self, Forbidden> {
        if caller.roles().contains(Role::Custodian) {
            CustodianCap::grant(caller).map(CustodyReader::Custodian)
        } else {
            SecurityOfficerCap::grant(caller).map(CustodyReader::SecurityOfficer)
        }
    }

    fn actor(&self) -> &Actor {
        match self {
            CustodyReader::Custodian(cap) => cap.actor(),
            CustodyReader::SecurityOfficer(cap) => cap.actor(),
        }
    }
}

impl CustodyReader {
    /// The checked caller, for the audit trail.
    pub fn actor(&self) -> &Actor {
        Capability::actor(self)
    }
}

/// A custodian (full answer) or a guard (answer without title): resolves a scanned tag.
#[derive(Debug, Clone)]
pub enum TagReader {
    /// Checked as a custodian.
    Custodian(CustodianCap),
    /// Checked as a guard.
    Guard(GuardCap),
}

impl Capability for TagReader {
    const ROLES: &'static [Role] = &[Role::Custodian, Role::Guard];

    fn grant(caller: &Authenticated) -> Result<Self, Forbidden> {
        if caller.roles().contains(Role::Custodian) {
            CustodianCap::grant(caller).map(TagReader::Custodian)
        } else {
            GuardCap::grant(caller).map(TagReader::Guard)
        }
    }

    fn actor(&self) -> &Actor {
        match self {
            TagReader::Custodian(cap) => cap.actor(),
            TagReader::Guard(cap) => cap.actor(),
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

    #[test]
    fn a_password_to_change_grants_nothing() {
        let caller = |must_change_password| Authenticated {
            user_id: crate::domain::ids::UserId(2),
            username: "officer".into(),
            roles: crate::domain::role::Roles::new(&[Role::SecurityOfficer]).unwrap(),
            token_hash: [0; 32],
            expires_at: crate::domain::time::Timestamp::from_unix(0).unwrap(),
            must_change_password,
        };
        assert!(SecurityOfficerCap::grant(&caller(false)).is_ok());
        assert_eq!(
            SecurityOfficerCap::grant(&caller(true)).err(),
            Some(Forbidden)
        );
        assert!(CustodyReader::grant(&caller(true)).is_err());
    }
}
