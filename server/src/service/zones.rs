//! Zones: creating one (administrators) and the list (anyone signed in: zones are not
//! secret). A zone's name is checked here once; its id and level are typed input.

use super::{Problem, ServiceError};
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::Authenticated;
use crate::auth::capability::AdminCap;
use crate::domain::ids::{ZoneId, is_valid_label};
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::zones::{NewZone, Zone};

/// Check a zone's name: a label. (The form checks it here too.)
pub fn check_name(name: &str) -> Result<(), ServiceError> {
    if is_valid_label(name) {
        Ok(())
    } else {
        Err(ServiceError::Invalid(vec![Problem {
            field: "name",
            code: "invalid",
            message: "name must be 1 to 200 printable characters",
        }]))
    }
}

/// Create a zone, with the audit entry; a taken id is [`ServiceError::Duplicate`].
pub async fn create(app: &AppState, cap: &AdminCap, zone: NewZone) -> Result<ZoneId, ServiceError> {
    check_name(&zone.name)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| create_in(tx, &actor, &zone, at))
        .await
}

fn create_in(
    tx: &mut dyn Tx,
    actor: &str,
    zone: &NewZone,
    at: Timestamp,
) -> Result<ZoneId, ServiceError> {
    tx.insert_zone(zone, at)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "zone.create",
        subject: format!("zone:{}", zone.id),
        before: None,
        after: Some(serde_json::json!(zone)),
    })?;
    Ok(zone.id.clone())
}

/// Every zone, by id.
pub async fn list(app: &AppState, _caller: &Authenticated) -> Result<Vec<Zone>, ServiceError> {
    app.store().query(|tx| Ok(tx.zones()?)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::level::{Level, ZoneLevel};
    use crate::store::ZoneRows;
    use crate::store::test_support::MemoryDb;

    fn t0() -> Timestamp {
        Timestamp::from_unix(1_750_000_000).unwrap()
    }

    #[test]
    fn a_zone_is_created_once_and_audited() {
        let db = MemoryDb::new();
        let lab = NewZone {
            id: ZoneId::new("lab").unwrap(),
            name: "实验室".into(),
            level: ZoneLevel::Classified(Level::TopSecret),
        };
        assert_eq!(create_in(&mut db.tx(), "root", &lab, t0()).unwrap(), lab.id);
        let entry = db.audit().pop().unwrap();
        assert_eq!(
            (entry.action.as_str(), entry.subject.as_str()),
            ("zone.create", "zone:lab")
        );
        assert_eq!(entry.after.unwrap()["level"], "TS");
        assert!(matches!(
            create_in(&mut db.tx(), "root", &lab, t0()),
            Err(ServiceError::Duplicate { what: "zone id" })
        ));
        assert_eq!(db.tx().zones().unwrap()[0].name, "实验室");
    }

    #[test]
    fn a_zone_name_is_a_label() {
        assert!(check_name("Vault").is_ok());
        assert!(matches!(
            check_name(" "),
            Err(ServiceError::Invalid(p)) if p[0].field == "name"
        ));
    }
}
