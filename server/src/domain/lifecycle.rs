//! The end-of-life rules a custodian or security officer applies by hand, and the ones the
//! sweep applies on their behalf: corrections of a carrier's register entry, reporting a
//! carrier missing and found, escalating an overdue loan to missing, what an unauthorised
//! removal's resolution means for the carrier, and the longest loan per level.
//!
//! Pure functions over plain types: times are Unix milliseconds passed in. Nothing here reads a
//! clock, the database or the title of a carrier into a message: the title can itself be
//! classified, so a correction's errors name the field, never its value.

use serde::{Deserialize, Serialize};

use super::carrier::{CarrierState, MAX_TAGS, Tag, check_copies};
use super::ids::is_valid_label;
use super::level::Level;
use super::sweep::DAY_MS;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// Why a carrier became missing: the incident record names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissingCause {
    /// Reported by a custodian or security officer by hand.
    Manual,
    /// Gone from its cabinet without a sign-out (the sweep).
    CabinetRemoval,
    /// A loan overdue past the escalation time of its level (the sweep).
    Overdue,
    /// An unauthorised removal at a gate not stopped there.
    UnauthorizedRemoval,
}

impl MissingCause {
    /// Every cause.
    pub const ALL: [MissingCause; 4] = [
        MissingCause::Manual,
        MissingCause::CabinetRemoval,
        MissingCause::Overdue,
        MissingCause::UnauthorizedRemoval,
    ];

    /// The storage and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            MissingCause::Manual => "manual",
            MissingCause::CabinetRemoval => "cabinet_removal",
            MissingCause::Overdue => "overdue",
            MissingCause::UnauthorizedRemoval => "unauthorized_removal",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<MissingCause> {
        MissingCause::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// How an unauthorised removal at a gate ended, as the guard who resolves it says (`outcome`
/// of `POST /alerts/{id}/resolve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovalOutcome {
    /// The person was stopped at the checkpoint with the carrier: it never left.
    StoppedAtGate,
    /// The carrier left and was brought back later: while it was out nobody knew where it was.
    BroughtBack,
    /// The person left with the carrier.
    PersonLeft,
}

impl RemovalOutcome {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalOutcome::StoppedAtGate => "stopped_at_gate",
            RemovalOutcome::BroughtBack => "brought_back",
            RemovalOutcome::PersonLeft => "person_left",
        }
    }

    /// Parse an API or form name.
    pub fn from_name(name: &str) -> Option<RemovalOutcome> {
        [
            RemovalOutcome::StoppedAtGate,
            RemovalOutcome::BroughtBack,
            RemovalOutcome::PersonLeft,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }

    /// Whether resolving an unauthorised removal this way makes the carrier missing: every
    /// outcome but "stopped at the gate" means the carrier was outside the secure area without
    /// anyone answerable for it, which is reported (泄密报告) rather than closed with a note. A
    /// carrier brought back is then found by hand, and its incident keeps both steps.
    pub fn marks_missing(self) -> bool {
        self != RemovalOutcome::StoppedAtGate
    }
}

/// Why a lifecycle step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The carrier is already missing (409).
    #[error("the carrier is already missing")]
    AlreadyMissing,
    /// Found needs a missing carrier (409).
    #[error("the carrier is {0}, not missing")]
    NotMissing(&'static str),
    /// The carrier is out of circulation (archived, destroyed, ...) (409).
    #[error("the carrier is {0} and out of circulation")]
    NotInCirculation(&'static str),
    /// The level and control number change only by reclassification (422).
    #[error("{0} changes only by reclassification, not by a correction")]
    NotEditable(&'static str),
    /// A correction that changes nothing (422).
    #[error("the correction changes nothing")]
    NothingToChange,
    /// A rule of the register breaks after the correction (422).
    #[error("{0}")]
    Register(super::carrier::CarrierRuleError),
    /// The due time is further away than the longest loan of the level (422).
    #[error("a {level} carrier may be lent for at most {max_days} days")]
    LoanTooLong {
        /// The level whose limit is exceeded (the strictest among the carriers).
        level: &'static str,
        /// Its limit in days.
        max_days: i64,
    },
}

impl LifecycleError {
    /// The machine-readable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            LifecycleError::AlreadyMissing => "already_missing",
            LifecycleError::NotMissing(_) => "not_missing",
            LifecycleError::NotInCirculation(_) => "not_in_circulation",
            LifecycleError::NotEditable(_) => "not_editable",
            LifecycleError::NothingToChange => "nothing_to_change",
            LifecycleError::Register(rule) => rule.code(),
            LifecycleError::LoanTooLong { .. } => "loan_too_long",
        }
    }

    /// Whether this is a conflict with the carrier's state (409) rather than a rule (422).
    pub fn is_state_conflict(&self) -> bool {
        matches!(
            self,
            LifecycleError::AlreadyMissing
                | LifecycleError::NotMissing(_)
                | LifecycleError::NotInCirculation(_)
        )
    }
}

/// Whether a carrier in `state` may be reported missing: only one the register claims to know
/// the whereabouts of (`in_storage`, `out`).
pub fn report_missing(state: CarrierState) -> Result<(), LifecycleError> {
    match state {
        CarrierState::InStorage | CarrierState::Out => Ok(()),
        CarrierState::Missing => Err(LifecycleError::AlreadyMissing),
        other => Err(LifecycleError::NotInCirculation(other.as_str())),
    }
}

/// The state a missing carrier returns to when found: `out` while a sign-out that is out still
/// has it outstanding (the borrower holds it again; the loan goes on), otherwise `in_storage`
/// (with or without a home cabinet: the finder hands it to the custodian).
pub fn found_state(
    state: CarrierState,
    outstanding_on_loan: bool,
) -> Result<CarrierState, LifecycleError> {
    if state != CarrierState::Missing {
        return Err(LifecycleError::NotMissing(state.as_str()));
    }
    Ok(if outstanding_on_loan {
        CarrierState::Out
    } else {
        CarrierState::InStorage
    })
}

/// The loan rules per level: the longest loan, and how long a loan may stay overdue before its
/// carriers count as missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoanPolicy {
    /// Longest loan of a TS, S, C carrier (ms), in that order.
    pub max_loan_ms: [i64; 3],
    /// Time after the due time when an overdue TS, S, C carrier becomes missing (ms).
    pub missing_after_ms: [i64; 3],
}

impl Default for LoanPolicy {
    /// TS: 7-day loans, missing 1 day after due; S: 30 days, 3 days; C: 90 days, 7 days.
    fn default() -> Self {
        LoanPolicy {
            max_loan_ms: [7 * DAY_MS, 30 * DAY_MS, 90 * DAY_MS],
            missing_after_ms: [DAY_MS, 3 * DAY_MS, 7 * DAY_MS],
        }
    }
}

fn level_index(level: Level) -> usize {
    match level {
        Level::TopSecret => 0,
        Level::Secret => 1,
        Level::Confidential => 2,
    }
}

impl LoanPolicy {
    /// The longest loan of a carrier of `level`, in ms.
    pub fn max_loan_ms(&self, level: Level) -> i64 {
        self.max_loan_ms[level_index(level)]
    }

    /// How long after its due time an overdue carrier of `level` becomes missing, in ms.
    pub fn missing_after_ms(&self, level: Level) -> i64 {
        self.missing_after_ms[level_index(level)]
    }

    /// The shortest escalation time of any level: loans overdue for less cannot escalate, so
    /// the sweep's index range stops there.
    pub fn shortest_missing_after_ms(&self) -> i64 {
        self.missing_after_ms.into_iter().min().unwrap_or(0)
    }

    /// Check a loan of carriers of `levels` from `now_ms` until `due_ms`: the strictest limit
    /// among the levels applies (a loan of a TS and a C carrier is a TS loan). At request and
    /// again at issue (an approved request issued days later must still end in time).
    pub fn check_loan(
        &self,
        levels: impl IntoIterator<Item = Level>,
        due_ms: i64,
        now_ms: i64,
    ) -> Result<(), LifecycleError> {
        let strictest = levels
            .into_iter()
            .min_by_key(|level| self.max_loan_ms(*level));
        let Some(level) = strictest else {
            return Ok(());
        };
        let max = self.max_loan_ms(level);
        if due_ms.saturating_sub(now_ms) > max {
            return Err(LifecycleError::LoanTooLong {
                level: level.code(),
                max_days: max / DAY_MS,
            });
        }
        Ok(())
    }

    /// When an overdue carrier of `level`, due at `due_ms`, becomes missing, if that moment has
    /// come by `now_ms`: the moment is the start of its missing episode (and of the leak clock).
    pub fn escalation(&self, level: Level, due_ms: i64, now_ms: i64) -> Option<i64> {
        let at = due_ms.saturating_add(self.missing_after_ms(level));
        (at <= now_ms).then_some(at)
    }
}

/// A register entry as a correction sees it: every field a correction may change. `Debug`
/// redacts the title.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Correctable {
    /// The title (sensitive).
    pub title: String,
    /// Owning unit.
    pub owner_unit: String,
    /// Home cabinet id.
    pub home_device: Option<String>,
    /// Normalised tags, in stored order.
    pub tags: Vec<String>,
    /// Copy number.
    pub copy_no: Option<u32>,
    /// Secrecy period (保密期限) in years, as it is now (its own or the level's default).
    pub secrecy_years: u32,
}

impl std::fmt::Debug for Correctable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Correctable")
            .field("title", &"<redacted>")
            .field("owner_unit", &self.owner_unit)
            .field("home_device", &self.home_device)
            .field("tags", &self.tags)
            .field("copy_no", &self.copy_no)
            .field("secrecy_years", &self.secrecy_years)
            .finish()
    }
}

/// The fields a correction asks to change (`None`: keep). `home_device: Some(None)` clears the
/// home cabinet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorrectionPatch {
    /// New title.
    pub title: Option<String>,
    /// New owning unit.
    pub owner_unit: Option<String>,
    /// New home cabinet, or none.
    pub home_device: Option<Option<String>>,
    /// The whole new tag list (as typed).
    pub tags: Option<Vec<String>>,
    /// New copy number.
    pub copy_no: Option<u32>,
    /// New secrecy period in years (1 to the level's longest).
    pub secrecy_years: Option<u32>,
}

/// One malformed field of a correction: the field name and what is wrong (never its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field as the API names it.
    pub field: &'static str,
    /// Machine-readable reason.
    pub code: &'static str,
    /// The reason in words.
    pub message: &'static str,
}

/// The longest correction reason, in characters.
pub const REASON_MAX_CHARS: usize = 500;

/// Every form problem of a correction: a reason (required, 1 to 500 characters, no control
/// characters but line breaks), a title and owning unit that are labels, tags that parse, at
/// most [`MAX_TAGS`], without repeats.
pub fn correction_problems(reason: &str, patch: &CorrectionPatch) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > REASON_MAX_CHARS
        || reason
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        problems.push(FieldProblem {
            field: "reason",
            code: "invalid",
            message: "reason is required: 1 to 500 printable characters",
        });
    }
    if patch.title.as_deref().is_some_and(|t| !is_valid_label(t)) {
        problems.push(FieldProblem {
            field: "title",
            code: "invalid",
            message: "title must be 1 to 200 printable characters",
        });
    }
    if patch
        .owner_unit
        .as_deref()
        .is_some_and(|u| !is_valid_label(u))
    {
        problems.push(FieldProblem {
            field: "owner_unit",
            code: "invalid",
            message: "owner_unit must be 1 to 200 printable characters",
        });
    }
    if let Some(tags) = &patch.tags {
        if tags.len() > MAX_TAGS {
            problems.push(FieldProblem {
                field: "tags",
                code: "too_many",
                message: "at most 16 tags",
            });
        } else if normalised_tags(tags).is_none() {
            problems.push(FieldProblem {
                field: "tags",
                code: "invalid",
                message: "tags must be epc:HEX, barcode:TEXT or em:HEX, without repeats",
            });
        }
    }
    problems
}

/// The tags in normal form, or `None` if one is malformed or repeated.
fn normalised_tags(tags: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for text in tags {
        let tag = Tag::parse(text).ok()?.to_string();
        if out.contains(&tag) {
            return None;
        }
        out.push(tag);
    }
    Some(out)
}

/// Apply a well-formed patch (see [`correction_problems`]) to `current`: the entry after it,
/// checked against the register's rules (copy numbering for `level` and `copies`, a Custos
/// label tag naming this carrier's `control_no`). Refused when nothing would change.
pub fn correct(
    current: &Correctable,
    patch: &CorrectionPatch,
    level: Level,
    copies: Option<u32>,
    control_no: &str,
) -> Result<Correctable, LifecycleError> {
    let mut after = current.clone();
    if let Some(title) = &patch.title {
        title.trim().clone_into(&mut after.title);
    }
    if let Some(unit) = &patch.owner_unit {
        unit.trim().clone_into(&mut after.owner_unit);
    }
    if let Some(home) = &patch.home_device {
        after.home_device.clone_from(home);
    }
    if let Some(tags) = &patch.tags {
        after.tags = normalised_tags(tags).unwrap_or_default();
    }
    if let Some(copy_no) = patch.copy_no {
        after.copy_no = Some(copy_no);
    }
    if let Some(years) = patch.secrecy_years {
        super::secrecy::check_years(level, years).map_err(|_| {
            LifecycleError::Register(super::carrier::CarrierRuleError::SecrecyPeriodOutOfRange)
        })?;
        after.secrecy_years = years;
    }
    check_copies(level, after.copy_no, copies).map_err(LifecycleError::Register)?;
    let foreign_label = after
        .tags
        .iter()
        .filter_map(|t| Tag::parse(t).ok()?.labelled_control_no())
        .any(|labelled| labelled != control_no);
    if foreign_label {
        return Err(LifecycleError::Register(
            super::carrier::CarrierRuleError::LabelMismatch,
        ));
    }
    if after == *current {
        return Err(LifecycleError::NothingToChange);
    }
    Ok(after)
}

/// The fields that differ between `before` and `after`, as `(name, before, after)` JSON, for the
/// history; the title's values are included only if `with_title` (the carrier page), never for
/// the audit trail, which names the field as changed.
pub fn changed_fields(
    before: &Correctable,
    after: &Correctable,
    with_title: bool,
) -> (serde_json::Value, serde_json::Value) {
    use serde_json::{Map, Value, json};
    let mut old = Map::new();
    let mut new = Map::new();
    if before.title != after.title {
        let (a, b) = if with_title {
            (json!(before.title), json!(after.title))
        } else {
            (json!("(changed)"), json!("(changed)"))
        };
        old.insert("title".to_owned(), a);
        new.insert("title".to_owned(), b);
    }
    let pairs = [
        (
            "owner_unit",
            json!(before.owner_unit),
            json!(after.owner_unit),
        ),
        (
            "home_device",
            json!(before.home_device),
            json!(after.home_device),
        ),
        ("tags", json!(before.tags), json!(after.tags)),
        ("copy_no", json!(before.copy_no), json!(after.copy_no)),
        (
            "secrecy_years",
            json!(before.secrecy_years),
            json!(after.secrecy_years),
        ),
    ];
    for (name, a, b) in pairs {
        if a != b {
            old.insert(name.to_owned(), a);
            new.insert(name.to_owned(), b);
        }
    }
    (Value::Object(old), Value::Object(new))
}

/// The longest incident note or "who was told" text, in characters.
pub const NOTE_MAX_CHARS: usize = 2000;

/// Why a free-text note is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteError {
    /// Blank.
    Empty,
    /// More than [`NOTE_MAX_CHARS`] characters.
    TooLong,
    /// A control character other than a line break or a tab.
    Control,
}

/// A free-text note (what happened, who was told, an alert's resolution), trimmed, if
/// acceptable: 1 to 2000 characters, no control characters but line breaks and tabs. The one
/// rule for every such note.
pub fn note(text: &str) -> Result<String, NoteError> {
    let text = text.trim();
    if text.is_empty() {
        Err(NoteError::Empty)
    } else if text.chars().count() > NOTE_MAX_CHARS {
        Err(NoteError::TooLong)
    } else if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Err(NoteError::Control)
    } else {
        Ok(text.to_owned())
    }
}

/// [`note`], when only acceptance matters.
pub fn check_note(text: &str) -> Option<String> {
    note(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    fn entry() -> Correctable {
        Correctable {
            title: "年度计划".into(),
            owner_unit: "Office 1".into(),
            home_device: Some("cab-1".into()),
            tags: vec!["em:1A00B54E12".into()],
            copy_no: Some(1),
            secrecy_years: 20,
        }
    }

    #[test]
    fn a_correction_sets_the_secrecy_period_within_the_levels_longest() {
        let patch = |years| CorrectionPatch {
            secrecy_years: Some(years),
            ..CorrectionPatch::default()
        };
        let after = correct(&entry(), &patch(10), Level::Secret, Some(3), "A1").unwrap();
        assert_eq!(after.secrecy_years, 10);
        let (old, new) = changed_fields(&entry(), &after, false);
        assert_eq!(old, serde_json::json!({"secrecy_years": 20}));
        assert_eq!(new, serde_json::json!({"secrecy_years": 10}));
        assert_eq!(
            correct(&entry(), &patch(21), Level::Secret, Some(3), "A1"),
            Err(LifecycleError::Register(
                crate::domain::carrier::CarrierRuleError::SecrecyPeriodOutOfRange
            ))
        );
        assert_eq!(
            correct(&entry(), &patch(20), Level::Secret, Some(3), "A1"),
            Err(LifecycleError::NothingToChange)
        );
    }

    #[test]
    fn only_carriers_in_circulation_go_missing_and_only_missing_ones_are_found() {
        assert_eq!(report_missing(CarrierState::InStorage), Ok(()));
        assert_eq!(report_missing(CarrierState::Out), Ok(()));
        assert_eq!(
            report_missing(CarrierState::Missing),
            Err(LifecycleError::AlreadyMissing)
        );
        assert_eq!(
            report_missing(CarrierState::Destroyed),
            Err(LifecycleError::NotInCirculation("destroyed"))
        );
        assert_eq!(
            found_state(CarrierState::Missing, false),
            Ok(CarrierState::InStorage)
        );
        assert_eq!(
            found_state(CarrierState::Missing, true),
            Ok(CarrierState::Out),
            "a carrier still on a loan goes back to its borrower's hands"
        );
        assert_eq!(
            found_state(CarrierState::InStorage, false),
            Err(LifecycleError::NotMissing("in_storage"))
        );
        assert!(LifecycleError::AlreadyMissing.is_state_conflict());
        assert!(!LifecycleError::NothingToChange.is_state_conflict());
    }

    #[test]
    fn every_removal_outcome_but_stopped_at_the_gate_marks_the_carrier_missing() {
        assert!(!RemovalOutcome::StoppedAtGate.marks_missing());
        assert!(RemovalOutcome::BroughtBack.marks_missing());
        assert!(RemovalOutcome::PersonLeft.marks_missing());
        for o in [
            RemovalOutcome::StoppedAtGate,
            RemovalOutcome::BroughtBack,
            RemovalOutcome::PersonLeft,
        ] {
            assert_eq!(RemovalOutcome::from_name(o.as_str()), Some(o));
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
        assert_eq!(RemovalOutcome::from_name("escaped"), None);
        for c in MissingCause::ALL {
            assert_eq!(MissingCause::from_name(c.as_str()), Some(c));
        }
    }

    #[test]
    fn loans_are_limited_by_the_strictest_level() {
        let p = LoanPolicy::default();
        let week = 7 * DAY_MS;
        assert_eq!(p.check_loan([Level::TopSecret], T + week, T), Ok(()));
        assert_eq!(
            p.check_loan([Level::TopSecret], T + week + 1, T),
            Err(LifecycleError::LoanTooLong {
                level: "TS",
                max_days: 7
            })
        );
        assert_eq!(
            p.check_loan([Level::Confidential], T + 90 * DAY_MS, T),
            Ok(())
        );
        assert_eq!(
            p.check_loan([Level::Confidential, Level::Secret], T + 31 * DAY_MS, T),
            Err(LifecycleError::LoanTooLong {
                level: "S",
                max_days: 30
            })
        );
        // The 9999-12-31 due time of old is refused.
        assert!(p.check_loan([Level::Confidential], i64::MAX, T).is_err());
        assert_eq!(p.check_loan([], i64::MAX, T), Ok(()));
        assert_eq!(
            LifecycleError::LoanTooLong {
                level: "S",
                max_days: 30
            }
            .code(),
            "loan_too_long"
        );
    }

    #[test]
    fn an_overdue_loan_escalates_to_missing_after_its_levels_time() {
        let p = LoanPolicy::default();
        let due = T;
        assert_eq!(p.escalation(Level::TopSecret, due, due + DAY_MS - 1), None);
        assert_eq!(
            p.escalation(Level::TopSecret, due, due + DAY_MS),
            Some(due + DAY_MS)
        );
        assert_eq!(p.escalation(Level::Secret, due, due + DAY_MS), None);
        assert_eq!(
            p.escalation(Level::Secret, due, due + 5 * DAY_MS),
            Some(due + 3 * DAY_MS),
            "the missing episode starts at the escalation time, not at the sweep"
        );
        assert_eq!(
            p.escalation(Level::Confidential, due, due + 7 * DAY_MS),
            Some(due + 7 * DAY_MS)
        );
        assert_eq!(p.shortest_missing_after_ms(), DAY_MS);
        let custom = LoanPolicy {
            max_loan_ms: [DAY_MS; 3],
            missing_after_ms: [2 * HOUR_MS, 5 * HOUR_MS, HOUR_MS],
        };
        assert_eq!(custom.shortest_missing_after_ms(), HOUR_MS);
        assert_eq!(
            p.escalation(Level::TopSecret, i64::MAX - 1, i64::MAX - 1),
            None,
            "no wrap-around near the end of time"
        );
    }

    #[test]
    fn a_correction_needs_a_reason_and_well_formed_fields() {
        let ok = CorrectionPatch {
            owner_unit: Some("Office 2".into()),
            ..CorrectionPatch::default()
        };
        assert!(correction_problems("moved to office 2", &ok).is_empty());
        let fields = |reason: &str, patch: &CorrectionPatch| {
            correction_problems(reason, patch)
                .iter()
                .map(|p| p.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields("  ", &ok), ["reason"]);
        assert_eq!(fields(&"r".repeat(501), &ok), ["reason"]);
        let bad = CorrectionPatch {
            title: Some(" ".into()),
            owner_unit: Some("a\u{7}".into()),
            tags: Some(vec!["em:1".into()]),
            ..CorrectionPatch::default()
        };
        assert_eq!(fields("", &bad), ["reason", "title", "owner_unit", "tags"]);
        let repeated = CorrectionPatch {
            tags: Some(vec!["em:1a00b54e12".into(), "em:1A00B54E12".into()]),
            ..CorrectionPatch::default()
        };
        assert_eq!(fields("typo", &repeated), ["tags"]);
        let many = CorrectionPatch {
            tags: Some((0..17).map(|i| format!("em:{i:010X}")).collect()),
            ..CorrectionPatch::default()
        };
        assert_eq!(correction_problems("x", &many)[0].code, "too_many");
    }

    #[test]
    fn a_correction_changes_the_entry_within_the_register_rules() {
        let before = entry();
        let patch = CorrectionPatch {
            title: Some(" 年度计划（修订） ".into()),
            home_device: Some(None),
            tags: Some(vec!["em:1a00b54e13".into()]),
            copy_no: Some(2),
            ..CorrectionPatch::default()
        };
        let after = correct(&before, &patch, Level::TopSecret, Some(3), "A1").unwrap();
        assert_eq!(after.title, "年度计划（修订）");
        assert_eq!(after.home_device, None);
        assert_eq!(after.tags, ["em:1A00B54E13"]);
        assert_eq!(after.copy_no, Some(2));
        assert_eq!(after.owner_unit, before.owner_unit);

        let beyond = CorrectionPatch {
            copy_no: Some(4),
            ..CorrectionPatch::default()
        };
        assert_eq!(
            correct(&before, &beyond, Level::TopSecret, Some(3), "A1"),
            Err(LifecycleError::Register(
                super::super::carrier::CarrierRuleError::CopyNumberOutOfRange
            ))
        );
        let label = custos_protocol::barcode::CarrierLabel::new("B2")
            .unwrap()
            .to_string();
        let foreign = CorrectionPatch {
            tags: Some(vec![format!("barcode:{label}")]),
            ..CorrectionPatch::default()
        };
        assert_eq!(
            correct(&before, &foreign, Level::Secret, None, "A1")
                .unwrap_err()
                .code(),
            "label_mismatch"
        );
        let same = CorrectionPatch {
            owner_unit: Some("Office 1".into()),
            ..CorrectionPatch::default()
        };
        assert_eq!(
            correct(&before, &same, Level::Secret, None, "A1"),
            Err(LifecycleError::NothingToChange)
        );
    }

    #[test]
    fn the_history_shows_before_and_after_and_the_audit_never_the_title() {
        let before = entry();
        let mut after = entry();
        after.title = "新标题".into();
        after.owner_unit = "Office 2".into();
        let (old, new) = changed_fields(&before, &after, true);
        assert_eq!(old["title"], "年度计划");
        assert_eq!(new["title"], "新标题");
        assert_eq!(old["owner_unit"], "Office 1");
        assert_eq!(new["owner_unit"], "Office 2");
        assert!(old.get("tags").is_none(), "unchanged fields are left out");
        let (old, new) = changed_fields(&before, &after, false);
        let text = format!("{old}{new}");
        assert!(
            !text.contains("年度计划") && !text.contains("新标题"),
            "{text}"
        );
        assert_eq!(new["title"], "(changed)");
        assert!(!format!("{before:?}").contains("年度计划"));
    }

    #[test]
    fn notes_are_bounded_and_printable() {
        assert_eq!(
            check_note("  told the bureau \n").as_deref(),
            Some("told the bureau")
        );
        assert_eq!(check_note(" "), None);
        assert_eq!(check_note("a\u{1b}b"), None);
        assert!(check_note(&"字".repeat(NOTE_MAX_CHARS)).is_some());
        assert!(check_note(&"字".repeat(NOTE_MAX_CHARS + 1)).is_none());
    }
}
