//! Roles and the separation-of-duties rule (监管分离).
//!
//! Whoever administers the system, whoever sets policy and approves, and whoever audits must be
//! different people: no account holds two of `admin`, `security_officer`, `auditor`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A role a user account can hold.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System administrator: users, zones, devices.
    Admin,
    /// Security officer: approvals, people, policy.
    SecurityOfficer,
    /// Custodian: registers carriers, signs them in and out.
    Custodian,
    /// Guard at a checkpoint.
    Guard,
    /// Auditor: reads the audit trail.
    Auditor,
}

/// Roles of which one account may hold at most one.
pub const EXCLUSIVE_ROLES: [Role; 3] = [Role::Admin, Role::SecurityOfficer, Role::Auditor];

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::SecurityOfficer,
        Role::Custodian,
        Role::Guard,
        Role::Auditor,
    ];

    /// The wire and storage name, e.g. `security_officer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SecurityOfficer => "security_officer",
            Role::Custodian => "custodian",
            Role::Guard => "guard",
            Role::Auditor => "auditor",
        }
    }

    /// Parse a wire or storage name.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a set of roles is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// An account needs at least one role.
    #[error("at least one role is required")]
    Empty,
    /// Two mutually exclusive roles were requested.
    #[error("roles {0} and {1} exclude one another")]
    Exclusive(Role, Role),
}

/// The separation-of-duties rule: at most one of [`EXCLUSIVE_ROLES`], at least one role overall.
pub fn check_roles(roles: &[Role]) -> Result<(), RoleError> {
    if roles.is_empty() {
        return Err(RoleError::Empty);
    }
    let mut held = EXCLUSIVE_ROLES.into_iter().filter(|r| roles.contains(r));
    match (held.next(), held.next()) {
        (Some(a), Some(b)) => Err(RoleError::Exclusive(a, b)),
        _ => Ok(()),
    }
}

/// A validated, duplicate-free set of roles (checked by [`check_roles`] on construction).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Roles(u8);

impl Roles {
    /// Validate a list of roles; duplicates collapse.
    pub fn new(roles: &[Role]) -> Result<Roles, RoleError> {
        check_roles(roles)?;
        Ok(Roles(roles.iter().fold(0, |bits, r| bits | r.bit())))
    }

    /// Whether `role` is held.
    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Whether any of `roles` is held.
    pub fn any_of(self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.contains(*r))
    }

    /// The held roles in [`Role::ALL`] order.
    pub fn to_vec(self) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|r| self.contains(*r))
            .collect()
    }

    /// Storage form: names joined by commas, e.g. `custodian,guard`.
    pub fn to_stored(self) -> String {
        self.to_vec()
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parse the storage form; `None` if a name is unknown or the set breaks the rule.
    pub fn from_stored(text: &str) -> Option<Roles> {
        let roles = text
            .split(',')
            .map(Role::from_name)
            .collect::<Option<Vec<_>>>()?;
        Roles::new(&roles).ok()
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.to_vec()).finish()
    }
}

impl Serialize for Roles {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_vec().serialize(serializer)
    }
}

/// In the OpenAPI document: an array of distinct roles, as serialised above.
impl utoipa::PartialSchema for Roles {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name(
                <Role as utoipa::ToSchema>::name(),
            ))
            .min_items(Some(1))
            .unique_items(true)
            .into()
    }
}

impl utoipa::ToSchema for Roles {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            <Role as utoipa::ToSchema>::name().into_owned(),
            <Role as utoipa::PartialSchema>::schema(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_of_exclusive_roles_is_refused() {
        for a in EXCLUSIVE_ROLES {
            for b in EXCLUSIVE_ROLES {
                let result = check_roles(&[a, b]);
                if a == b {
                    assert_eq!(result, Ok(()));
                } else {
                    assert!(matches!(result, Err(RoleError::Exclusive(..))), "{a} {b}");
                }
            }
        }
    }

    #[test]
    fn exclusive_roles_combine_with_operational_roles() {
        for a in EXCLUSIVE_ROLES {
            assert_eq!(check_roles(&[a, Role::Custodian, Role::Guard]), Ok(()));
        }
        assert_eq!(check_roles(&[Role::Custodian, Role::Guard]), Ok(()));
    }

    #[test]
    fn an_empty_role_list_is_refused() {
        assert_eq!(check_roles(&[]), Err(RoleError::Empty));
        assert_eq!(Roles::new(&[]), Err(RoleError::Empty));
    }

    #[test]
    fn all_three_exclusive_roles_name_the_first_pair() {
        assert_eq!(
            check_roles(&[Role::Auditor, Role::Admin, Role::SecurityOfficer]),
            Err(RoleError::Exclusive(Role::Admin, Role::SecurityOfficer))
        );
    }

    #[test]
    fn roles_round_trip_through_storage_and_collapse_duplicates() {
        let roles = Roles::new(&[Role::Guard, Role::Custodian, Role::Guard]).unwrap();
        assert_eq!(roles.to_stored(), "custodian,guard");
        assert_eq!(Roles::from_stored("custodian,guard"), Some(roles));
        assert!(roles.contains(Role::Guard));
        assert!(!roles.contains(Role::Admin));
        assert!(roles.any_of(&[Role::Admin, Role::Custodian]));
        assert_eq!(Roles::from_stored("admin,auditor"), None);
        assert_eq!(Roles::from_stored("root"), None);
        assert_eq!(Roles::from_stored(""), None);
    }

    #[test]
    fn role_names_match_the_interface() {
        let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            ["admin", "security_officer", "custodian", "guard", "auditor"]
        );
        for role in Role::ALL {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
    }
}
