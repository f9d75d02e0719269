//! Carriers: registration, the register and its search, tag lookups, a carrier's history.
//!
//! Registration input is checked here once ([`check_registration`]): every form problem of
//! the request, then the rules that need no database (both in
//! [`crate::domain::carrier`]); the home cabinet's kind is checked in the transaction. The API
//! and the registration form call the same functions and only translate the answer.
//!
//! # Titles
//! A title is read only for [`Carrier`] (custodians and security officers). A guard's tag
//! lookup answers a [`CarrierSummary`], which has no title; no audit entry carries one.

use serde_json::json;

use super::{Problem, ServiceError};
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::{CustodianCap, CustodyReader, GuardCap};
use crate::domain::carrier::CarrierState;
use crate::domain::carrier::{
    CarrierFields, CarrierKind, NewCarrier, RegistrationError, Tag, check_home, check_texts,
};
use crate::domain::ids::{CarrierId, DeviceId};
use crate::domain::level::Level;
use crate::domain::page::{self, Page, Sort};
use crate::domain::time::Timestamp;
use crate::service::lists::ListParams;
use crate::store::Tx;
use crate::store::carriers::{
    CARRIER_SORT_KEYS, Carrier, CarrierFilter, CarrierSummary, HistoryItem,
};

/// The longest search text of the register, in characters.
pub const SEARCH_MAX: usize = 200;

/// A carrier registration as submitted. `Debug` redacts the title.
#[derive(Clone)]
pub struct CarrierRegistration {
    /// The control number (编号) as typed.
    pub control_no: String,
    /// What the carrier physically is.
    pub kind: CarrierKind,
    /// Its classification level.
    pub level: Level,
    /// The title (sensitive: never logged or audited).
    pub title: String,
    /// Copy number.
    pub copy_no: Option<u32>,
    /// Number of copies.
    pub copies: Option<u32>,
    /// The owning unit.
    pub owner_unit: String,
    /// The cabinet it lives in.
    pub home_device: Option<DeviceId>,
    /// Its tags as typed (`epc:HEX`, `barcode:TEXT`, `em:HEX`).
    pub tags: Vec<String>,
    /// Its own secrecy period (保密期限) in years; `None`: the level's default.
    pub secrecy_years: Option<u32>,
}

impl std::fmt::Debug for CarrierRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierRegistration")
            .field("control_no", &self.control_no)
            .field("level", &self.level)
            .field("title", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Check a registration's free-text fields (control number, title, owning unit, tags), every
/// problem at once: for a form that cannot yet build a whole [`CarrierRegistration`].
pub fn check_texts_input(
    control_no: &str,
    title: &str,
    owner_unit: &str,
    tags: &[String],
) -> Result<(), ServiceError> {
    check_texts(control_no, title, owner_unit, tags)
        .map(|_| ())
        .map_err(|e| {
            ServiceError::Registration(e.into_iter().map(RegistrationError::Input).collect())
        })
}

/// Check a registration: every form problem, or if there is none every rule that needs no
/// database ([`NewCarrier::check`]); [`ServiceError::Registration`] names them.
pub fn check_registration(input: &CarrierRegistration) -> Result<NewCarrier, ServiceError> {
    NewCarrier::check(CarrierFields {
        control_no: &input.control_no,
        kind: input.kind,
        level: input.level,
        title: &input.title,
        copy_no: input.copy_no,
        copies: input.copies,
        owner_unit: &input.owner_unit,
        home_device: input.home_device.clone(),
        tags: &input.tags,
        secrecy_years: input.secrecy_years,
    })
    .map_err(ServiceError::Registration)
}

/// Register a carrier and its tags, with the audit entry (no title in it). A taken control
/// number or tag is [`ServiceError::Duplicate`] (`control_no`, `tag`); an unknown home
/// device [`ServiceError::UnknownReference`].
pub async fn register(
    app: &AppState,
    cap: &CustodianCap,
    input: CarrierRegistration,
) -> Result<CarrierId, ServiceError> {
    let carrier = check_registration(&input)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| register_in(tx, &actor, &carrier, at))
        .await
}

pub(super) fn register_in(
    tx: &mut dyn Tx,
    actor: &str,
    carrier: &NewCarrier,
    at: Timestamp,
) -> Result<CarrierId, ServiceError> {
    if let Some(home) = &carrier.home_device {
        let kind = tx
            .device_kind(home)?
            .ok_or(ServiceError::UnknownReference {
                what: "home_device",
            })?;
        check_home(kind)
            .map_err(|rule| ServiceError::Registration(vec![RegistrationError::Rule(rule)]))?;
    }
    let id = tx.insert_carrier(carrier, at)?;
    let tags: Vec<String> = carrier.tags.iter().map(Tag::to_string).collect();
    // No title: the audit trail names carriers by control number, level and kind.
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "carrier.create",
        subject: format!("carrier:{id}"),
        before: None,
        after: Some(json!({
            "id": id,
            "control_no": carrier.control_no,
            "kind": carrier.kind,
            "level": carrier.level,
            "copy_no": carrier.copy_no,
            "copies": carrier.copies,
            "owner_unit": carrier.owner_unit,
            "home_device": carrier.home_device,
            "tags": tags,
            "secrecy_years": crate::domain::secrecy::effective_years(
                carrier.level,
                carrier.secrecy_years,
            ),
        })),
    })?;
    Ok(id)
}

/// A summary with its title.
fn full(tx: &mut dyn Tx, summary: CarrierSummary) -> Result<Carrier, ServiceError> {
    let title = tx.carrier_title(summary.id)?;
    Ok(Carrier { summary, title })
}

/// One carrier with its title.
pub async fn one(
    app: &AppState,
    _cap: &CustodyReader,
    id: CarrierId,
) -> Result<Carrier, ServiceError> {
    app.store()
        .query(move |tx| {
            let summary = tx.carrier_summary(id)?;
            full(tx, summary)
        })
        .await
}

/// Check a search: its text is at most [`SEARCH_MAX`] characters.
pub fn check_filter(filter: &CarrierFilter) -> Result<(), ServiceError> {
    if filter
        .q
        .as_ref()
        .is_some_and(|q| q.chars().count() > SEARCH_MAX)
    {
        return Err(ServiceError::Invalid(vec![Problem {
            field: "q",
            code: "too_long",
            message: "q is longer than 200 characters",
        }]));
    }
    Ok(())
}

/// Carriers matching `filter` (an empty search text matches all), by id, with titles.
pub async fn list(
    app: &AppState,
    _cap: &CustodyReader,
    mut filter: CarrierFilter,
) -> Result<Vec<Carrier>, ServiceError> {
    filter.q = filter.q.filter(|q| !q.is_empty());
    check_filter(&filter)?;
    app.store()
        .query(move |tx| {
            let found = tx.carrier_summaries(&filter)?;
            found.into_iter().map(|s| full(tx, s)).collect()
        })
        .await
}

/// The order of the register without a `sort`: by registration.
pub const CARRIER_DEFAULT_SORT: Sort = Sort {
    key: CARRIER_SORT_KEYS[0],
    descending: false,
};

/// One page of the register (custodian, security officer): carriers in `state` (if any)
/// matching every word of `params.q` in their control number, title, owning unit, holder's
/// name or department, or a tag; in `params.sort` order ([`CARRIER_SORT_KEYS`]); at most
/// `params.limit` (100 unless said, 500 at most), after `params.cursor`. Bad parameters are
/// [`ServiceError::Invalid`], every one named.
pub async fn page(
    app: &AppState,
    _cap: &CustodyReader,
    state: Option<CarrierState>,
    params: &ListParams,
) -> Result<Page<Carrier>, ServiceError> {
    let checked = params.check(CARRIER_SORT_KEYS, CARRIER_DEFAULT_SORT)?;
    let filter = CarrierFilter {
        state,
        q: checked.q,
    };
    let request = checked.page;
    app.store()
        .query(move |tx| {
            let rows = tx.carrier_page(&filter, &request)?;
            page::finish(rows, &request).try_map(|s| full(tx, s))
        })
        .await
}

/// The first of `candidates` that names a carrier (a tag, or a Custos label), as its id.
fn first_named(tx: &mut dyn Tx, candidates: &[Tag]) -> Result<Option<CarrierId>, ServiceError> {
    for tag in candidates {
        if let Some(id) = tx.carrier_for_tag(tag)? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The carrier a scanned tag belongs to, with its title (custodians).
pub async fn by_tag(app: &AppState, cap: &CustodianCap, tag: Tag) -> Result<Carrier, ServiceError> {
    resolve(app, cap, vec![tag])
        .await?
        .ok_or(ServiceError::NotFound)
}

/// The carrier the first of `candidates` names (the readings of one scanned text, most
/// likely first), with its title (custodians); `None` if none names one.
pub async fn resolve(
    app: &AppState,
    _cap: &CustodianCap,
    candidates: Vec<Tag>,
) -> Result<Option<Carrier>, ServiceError> {
    app.store()
        .query(move |tx| match first_named(tx, &candidates)? {
            Some(id) => {
                let summary = tx.carrier_summary(id)?;
                full(tx, summary).map(Some)
            }
            None => Ok(None),
        })
        .await
}

/// The carrier a scanned tag belongs to, without its title (guards). The type has no title
/// field, so a guard's answer cannot carry one.
pub async fn summary_by_tag(
    app: &AppState,
    _cap: &GuardCap,
    tag: Tag,
) -> Result<CarrierSummary, ServiceError> {
    app.store()
        .query(move |tx| {
            let id = first_named(tx, &[tag])?.ok_or(ServiceError::NotFound)?;
            Ok(tx.carrier_summary(id)?)
        })
        .await
}

/// The asset number proposed for the next carrier's GIAI-96 EPC: the id it will most likely
/// get.
pub async fn next_number(app: &AppState, _cap: &CustodianCap) -> Result<u64, ServiceError> {
    app.store().query(|tx| Ok(tx.next_carrier_number()?)).await
}

/// A carrier's history, oldest first.
pub async fn history(
    app: &AppState,
    _cap: &CustodyReader,
    id: CarrierId,
) -> Result<Vec<HistoryItem>, ServiceError> {
    app.store()
        .query(move |tx| Ok(tx.carrier_history(id)?))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::carrier::{CarrierInputError, CarrierRuleError, CarrierState, ControlNo};
    use crate::store::CarrierRows;
    use crate::store::test_support::{MemoryDb, T0, t};

    fn input(control_no: &str, tags: &[&str]) -> CarrierRegistration {
        CarrierRegistration {
            control_no: control_no.into(),
            kind: CarrierKind::Paper,
            level: Level::Secret,
            title: "very secret title".into(),
            copy_no: None,
            copies: None,
            owner_unit: "U".into(),
            home_device: Some(DeviceId::new("cab-1").unwrap()),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            secrecy_years: None,
        }
    }

    fn register_at(db: &MemoryDb, input: &CarrierRegistration) -> Result<CarrierId, ServiceError> {
        let new = check_registration(input)?;
        register_in(&mut db.tx(), "cust", &new, t(T0))
    }

    #[test]
    fn registration_writes_the_carrier_its_tags_and_an_audit_entry_without_title() {
        let db = MemoryDb::custody(t(T0));
        let before = db.audit().len();
        let id = register_at(&db, &input("B-1", &["em:1a00b54e12"])).unwrap();
        let tx = &mut db.tx();
        let s = tx.carrier_summary(id).unwrap();
        assert_eq!(
            (s.control_no.as_str(), s.state, s.tags[0].tag.as_str()),
            ("B-1", CarrierState::InStorage, "em:1A00B54E12")
        );
        assert_eq!(tx.carrier_title(id).unwrap(), "very secret title");
        let entries = db.audit();
        assert_eq!(entries.len(), before + 1);
        let entry = entries.last().unwrap();
        assert_eq!(
            (entry.action.as_str(), entry.actor.as_str()),
            ("carrier.create", "cust")
        );
        assert_eq!(entry.after.as_ref().unwrap()["tags"][0], "em:1A00B54E12");
        assert!(
            !serde_json::to_string(entry)
                .unwrap()
                .contains("very secret")
        );
    }

    #[test]
    fn a_refused_registration_names_its_reason_and_audits_nothing() {
        let db = MemoryDb::custody(t(T0));
        db.add_gate("gate-1");
        let before = db.audit().len();
        let mut at_gate = input("B-1", &[]);
        at_gate.home_device = Some(DeviceId::new("gate-1").unwrap());
        assert!(matches!(
            register_at(&db, &at_gate),
            Err(ServiceError::Registration(e))
                if e == [RegistrationError::Rule(CarrierRuleError::HomeNotCabinet)]
        ));
        let mut nowhere = input("B-1", &[]);
        nowhere.home_device = Some(DeviceId::new("cab-9").unwrap());
        assert!(matches!(
            register_at(&db, &nowhere),
            Err(ServiceError::UnknownReference {
                what: "home_device"
            })
        ));
        assert!(matches!(
            register_at(&db, &input("A1", &[])),
            Err(ServiceError::Duplicate { what: "control_no" })
        ));
        register_at(&db, &input("B-2", &["em:1A00B54E12"])).unwrap();
        assert!(matches!(
            register_at(&db, &input("B-3", &["em:1a00b54e12"])),
            Err(ServiceError::Duplicate { what: "tag" })
        ));
        // (Undoing the rows of a refused insert is the writer's savepoint: see `store`.)
        assert_eq!(db.audit().len(), before + 1);
    }

    #[test]
    fn registration_input_names_every_problem_before_any_rule() {
        let mut bad = input("a b", &["epc:XYZ", "em:1A00B54E12", "em:1a00b54e12"]);
        bad.title = " ".into();
        bad.level = Level::TopSecret;
        let Err(ServiceError::Registration(errors)) = check_registration(&bad) else {
            panic!("accepted");
        };
        assert!(matches!(
            errors[..],
            [
                RegistrationError::Input(CarrierInputError::ControlNo(_)),
                RegistrationError::Input(CarrierInputError::Title),
                RegistrationError::Input(CarrierInputError::Tag { index: 0, .. }),
                RegistrationError::Input(CarrierInputError::RepeatedTag { index: 2 }),
            ]
        ));
        // Well-formed: every rule that needs no database.
        let other = ControlNo::new("A-8").unwrap().label();
        let mut rules = input("A-9", &[&format!("barcode:{other}")]);
        rules.level = Level::TopSecret;
        let Err(ServiceError::Registration(errors)) = check_registration(&rules) else {
            panic!("accepted");
        };
        assert_eq!(
            errors,
            [
                RegistrationError::Rule(CarrierRuleError::CopyNumberRequired),
                RegistrationError::Rule(CarrierRuleError::LabelMismatch),
            ]
        );
        assert!(check_texts_input("A-9", "T", "U", &[]).is_ok());
        assert!(matches!(
            check_texts_input("A-9", "T", "", &[]),
            Err(ServiceError::Registration(e))
                if e == [RegistrationError::Input(CarrierInputError::OwnerUnit)]
        ));
    }

    #[test]
    fn a_label_names_its_carrier_without_a_tag_row() {
        let db = MemoryDb::custody(t(T0));
        let tx = &mut db.tx();
        let label = crate::domain::carrier::ControlNo::new("A2")
            .unwrap()
            .label();
        let label = Tag::parse(&format!("barcode:{label}")).unwrap();
        let candidates = [Tag::parse("em:0000000001").unwrap(), label];
        assert_eq!(first_named(tx, &candidates).unwrap(), Some(CarrierId(2)));
        assert_eq!(first_named(tx, &candidates[..1]).unwrap(), None);
    }

    #[test]
    fn a_search_text_is_at_most_200_characters() {
        let filter = |q: String| CarrierFilter {
            state: None,
            q: Some(q),
        };
        assert!(check_filter(&filter("x".repeat(200))).is_ok());
        assert!(matches!(
            check_filter(&filter("机".repeat(201))),
            Err(ServiceError::Invalid(p)) if p[0].field == "q" && p[0].code == "too_long"
        ));
    }
}
