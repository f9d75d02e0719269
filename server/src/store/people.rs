//! The register of people (涉密人员): what the people use cases ([`crate::service::people`])
//! read and write.
//!
//! Plain types and one trait, [`PeopleRows`]; the SQLite implementation is in
//! [`super::sqlite`].

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::domain::ids::PersonId;
use crate::domain::person::{Category, PersonStatus};
use crate::domain::time::{Date, Timestamp};

/// A person to register (`POST /people`). New people are `active`. Its name, department and
/// badge tag are checked by [`crate::service::people::register`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    /// Full name: 1 to 200 characters, not blank, no control characters.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub name: String,
    /// Department or unit: 1 to 200 characters, not blank, no control characters.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub department: String,
    /// Category, which bounds the level they may hold.
    pub category: Category,
    /// Badge tag read at gates, if issued: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", min_length = 1, max_length = 64)]
    pub badge_tag: Option<String>,
    /// Last day the secrecy training is valid.
    #[serde(default)]
    pub training_valid_until: Option<Date>,
    /// Day the confidentiality commitment was signed.
    #[serde(default)]
    pub commitment_signed_on: Option<Date>,
}

/// A person as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Person {
    /// Id.
    pub id: PersonId,
    /// Full name.
    pub name: String,
    /// Department or unit.
    pub department: String,
    /// Category.
    pub category: Category,
    /// Badge tag.
    pub badge_tag: Option<String>,
    /// Training validity.
    pub training_valid_until: Option<Date>,
    /// Commitment date.
    pub commitment_signed_on: Option<Date>,
    /// Status.
    pub status: PersonStatus,
    /// When the person started leaving (离岗/离职), if they have.
    pub leaving_since: Option<Timestamp>,
    /// Last day of the decommissioning period (脱密期), once departed.
    pub decommissioning_ends_on: Option<Date>,
    /// Registered at.
    pub created_at: Timestamp,
}

/// Reading and writing the register of people.
pub trait PeopleRows {
    /// Person `id`; `NotFound` if there is none.
    fn person(&mut self, id: PersonId) -> Result<Person, StoreError>;
    /// Everyone on the register, by id.
    fn people(&mut self) -> Result<Vec<Person>, StoreError>;
    /// Write a new person with `status`; their id. A taken badge tag is
    /// `Duplicate { what: "badge_tag" }`.
    fn insert_person(
        &mut self,
        person: &NewPerson,
        status: PersonStatus,
        at: Timestamp,
    ) -> Result<PersonId, StoreError>;
    /// Person `id` starts leaving at `at`, now in `status`.
    fn set_leaving(
        &mut self,
        id: PersonId,
        status: PersonStatus,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Person `id` departed, their decommissioning period ending on `ends_on`.
    fn set_departed(&mut self, id: PersonId, ends_on: Date) -> Result<(), StoreError>;
    /// How many carriers name person `id` as their holder.
    fn carriers_held(&mut self, id: PersonId) -> Result<u32, StoreError>;
}
