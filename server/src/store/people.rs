//! The register of people (涉密人员): what the people use cases ([`crate::service::people`])
//! read and write.
//!
//! Plain types and one trait, [`PeopleRows`]; the SQLite implementation is in
//! [`super::sqlite`].

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::domain::ids::{CarrierId, PersonId, SignoutId};
use crate::domain::level::Level;
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
    /// Clearance set by the officer, at most the category's level; `None` = the category's.
    pub clearance: Option<Level>,
    /// Vetting (资格审查): date and outcome.
    pub vetted_on: Option<Date>,
    /// Vetting outcome.
    pub vetting_outcome: Option<String>,
    /// Periodic assessment (考核): date and outcome.
    pub assessed_on: Option<Date>,
    /// Assessment outcome.
    pub assessment_outcome: Option<String>,
    /// When the return of every carrier (清退) was certified, while leaving.
    pub cleared_at: Option<Timestamp>,
    /// The day the departure was approved.
    pub departed_on: Option<Date>,
    /// The decommissioning period's length in months (`None` when lifelong or not departed).
    pub decommissioning_months: Option<u32>,
    /// Lifelong restrictions (on travel abroad) after the departure.
    pub decommissioning_lifelong: bool,
}

/// The fields of a person an officer may change (`PATCH /people/{id}`), as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonRecord {
    /// Full name.
    pub name: String,
    /// Department.
    pub department: String,
    /// Category.
    pub category: Category,
    /// Clearance (`None` = the category's).
    pub clearance: Option<Level>,
    /// Badge tag.
    pub badge_tag: Option<String>,
    /// Training validity.
    pub training_valid_until: Option<Date>,
    /// Commitment date.
    pub commitment_signed_on: Option<Date>,
    /// Vetting date.
    pub vetted_on: Option<Date>,
    /// Vetting outcome.
    pub vetting_outcome: Option<String>,
    /// Assessment date.
    pub assessed_on: Option<Date>,
    /// Assessment outcome.
    pub assessment_outcome: Option<String>,
}

impl Person {
    /// The editable fields as they are.
    pub fn record(&self) -> PersonRecord {
        PersonRecord {
            name: self.name.clone(),
            department: self.department.clone(),
            category: self.category,
            clearance: self.clearance,
            badge_tag: self.badge_tag.clone(),
            training_valid_until: self.training_valid_until,
            commitment_signed_on: self.commitment_signed_on,
            vetted_on: self.vetted_on,
            vetting_outcome: self.vetting_outcome.clone(),
            assessed_on: self.assessed_on,
            assessment_outcome: self.assessment_outcome.clone(),
        }
    }
}

/// One edit of a person: who, when, why, and the changed fields before and after.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PersonChange {
    /// When.
    pub at: Timestamp,
    /// Who (username).
    pub actor: String,
    /// Why.
    pub reason: String,
    /// The changed fields before.
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    /// The changed fields after.
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
}

/// A carrier a person holds (no title: the departure list is shown beyond the custodians).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HeldCarrier {
    /// Carrier id.
    pub id: CarrierId,
    /// Control number.
    pub control_no: String,
    /// Level.
    pub level: Level,
    /// The open sign-out it is out on, if any (return it there).
    pub signout_id: Option<SignoutId>,
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
    /// Person `id` departed on `on`: the period's months (`None` when lifelong) and last
    /// day (`None` when lifelong).
    fn set_departed(
        &mut self,
        id: PersonId,
        on: Date,
        months: Option<u32>,
        ends_on: Option<Date>,
    ) -> Result<(), StoreError>;
    /// The return of every carrier of person `id` (清退) was certified at `at`.
    fn set_cleared(&mut self, id: PersonId, at: Timestamp) -> Result<(), StoreError>;
    /// Write the editable fields of person `id`. A taken badge tag is
    /// `Duplicate { what: "badge_tag" }`.
    fn update_person(&mut self, id: PersonId, record: &PersonRecord) -> Result<(), StoreError>;
    /// Record an edit of person `id` in their history.
    fn insert_person_change(
        &mut self,
        id: PersonId,
        change: &PersonChange,
    ) -> Result<(), StoreError>;
    /// Person `id`'s edits, oldest first.
    fn person_changes(&mut self, id: PersonId) -> Result<Vec<PersonChange>, StoreError>;
    /// The carriers naming person `id` as holder, by control number.
    fn held_carriers(&mut self, id: PersonId) -> Result<Vec<HeldCarrier>, StoreError>;
    /// Everyone in post or leaving who holds at least one carrier, with how many.
    fn holders(&mut self) -> Result<Vec<(PersonId, u32)>, StoreError>;
    /// How many carriers name person `id` as their holder.
    fn carriers_held(&mut self, id: PersonId) -> Result<u32, StoreError>;
}
