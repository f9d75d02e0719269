//! Identifier newtypes.
//!
//! Interfaces speak of ids as strings. Server-assigned ids (users, people, audit entries) are
//! sequential integers written as decimal strings; ids chosen by an administrator (zones,
//! devices) are short names of `[A-Za-z0-9._-]`, 1 to 64 characters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A client-chosen id or name broke the allowed alphabet or length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
pub struct NameError;

/// Whether `s` is a valid client-chosen id: 1..=64 of `[A-Za-z0-9._-]`.
pub fn is_valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `s` is an acceptable free-text label (a person's name, a department, a zone name):
/// 1 to 200 characters, not blank, no control characters.
pub fn is_valid_label(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= 200 && !s.chars().any(char::is_control)
}

/// The OpenAPI schema of an id: a string matching `pattern`.
fn id_schema(
    pattern: &str,
    example: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(pattern))
        .examples([serde_json::Value::from(example)])
        .into()
}

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(|_| serde::de::Error::custom("expected a numeric id string"))
            }
        }

        /// In the OpenAPI document: a decimal string, as serialised above.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema("^(0|-?[1-9][0-9]{0,17})$", "1")
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validate a client-chosen id.
            pub fn new(s: &str) -> Result<Self, NameError> {
                if is_valid_name(s) { Ok($name(s.to_owned())) } else { Err(NameError) }
            }

            /// The id text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::new(&text).map_err(serde::de::Error::custom)
            }
        }

        /// In the OpenAPI document: the name alphabet of [`is_valid_name`].
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema("^[A-Za-z0-9._-]{1,64}$", "gate-1")
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

int_id!(
    /// A user account.
    UserId
);
int_id!(
    /// A person (涉密人员) on the register; not necessarily a user.
    PersonId
);
int_id!(
    /// An entry of the audit trail; entries are numbered 1, 2, 3, ... without gaps.
    AuditId
);
int_id!(
    /// A registered carrier (秘密载体).
    CarrierId
);
int_id!(
    /// A sign-out (a loan of carriers to a borrower).
    SignoutId
);
int_id!(
    /// A request that officers approve (copy, destruction, transfer, dispatch,
    /// reclassification, travel): see [`crate::domain::approval`].
    RequestId
);
int_id!(
    /// A stocktake (清点): one counting session.
    StocktakeId
);
int_id!(
    /// A year-end collection (年底收缴).
    CollectionId
);
int_id!(
    /// A repair (维修) of a laptop, device or hard disk.
    RepairId
);
name_id!(
    /// A zone (secure area or public side), chosen by the administrator.
    ZoneId
);
name_id!(
    /// A reader device (gate, cabinet, desk), chosen by the administrator.
    DeviceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_only_the_documented_alphabet() {
        assert!(ZoneId::new("lab-2.north_A").is_ok());
        assert!(ZoneId::new(&"x".repeat(64)).is_ok());
        for bad in ["", "a b", "zone/1", "é", &"x".repeat(65)] {
            assert_eq!(ZoneId::new(bad), Err(NameError), "{bad:?}");
        }
        assert!(serde_json::from_str::<DeviceId>("\"gate 1\"").is_err());
    }

    #[test]
    fn labels_must_be_printable_and_not_blank() {
        assert!(is_valid_label("保密办公室"));
        assert!(is_valid_label("R&D 2"));
        for bad in ["", "   ", "a\nb", "tab\there", &"x".repeat(201)] {
            assert!(!is_valid_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn integer_ids_travel_as_strings() {
        assert_eq!(serde_json::to_string(&UserId(7)).unwrap(), "\"7\"");
        assert_eq!(
            serde_json::from_str::<PersonId>("\"42\"").unwrap(),
            PersonId(42)
        );
        assert!(serde_json::from_str::<PersonId>("42").is_err());
        assert!(serde_json::from_str::<PersonId>("\"x\"").is_err());
    }
}
