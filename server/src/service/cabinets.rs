//! Cabinets (智能柜) as the custodian counts them (清点): what each should hold (its carriers
//! in storage) and what it last reported. Comparing the two is the page's
//! (`web::custodian::compare`); no titles are read.

use super::ServiceError;
use crate::AppState;
use crate::auth::capability::CustodianCap;
use crate::domain::ids::DeviceId;
use crate::store::carriers::ShelfCarrier;
use crate::store::devices::CabinetRow;

/// What a cabinet should hold and what it last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinetContents {
    /// The cabinet.
    pub cabinet: CabinetRow,
    /// Carriers whose home is this cabinet and that are in storage.
    pub expected: Vec<ShelfCarrier>,
    /// Carriers the cabinet last reported present (`cabinet_contents`).
    pub reported: Vec<ShelfCarrier>,
}

/// Every cabinet, by id, with the time of its last snapshot.
pub async fn list(app: &AppState, _cap: &CustodianCap) -> Result<Vec<CabinetRow>, ServiceError> {
    app.store().query(|tx| Ok(tx.cabinets()?)).await
}

/// The expected and reported contents of cabinet `id`, read together; `None` if there is no
/// such cabinet.
pub async fn contents(
    app: &AppState,
    _cap: &CustodianCap,
    id: DeviceId,
) -> Result<Option<CabinetContents>, ServiceError> {
    app.store()
        .query(move |tx| {
            let Some(cabinet) = tx.cabinets()?.into_iter().find(|c| c.id == id) else {
                return Ok(None);
            };
            let expected = tx.carriers_at_home(&cabinet.id)?;
            let reported = tx.carriers_reported(&cabinet.id)?;
            Ok(Some(CabinetContents {
                cabinet,
                expected,
                reported,
            }))
        })
        .await
}

#[cfg(test)]
mod tests {
    use crate::domain::carrier::CarrierState;
    use crate::domain::ids::CarrierId;
    use crate::domain::time::Timestamp;
    use crate::store::test_support::MemoryDb;
    use crate::store::{CarrierRows, DeviceRows};

    use super::*;

    #[test]
    fn a_cabinet_expects_its_carriers_in_storage() {
        let db = MemoryDb::custody(Timestamp::from_unix(1_750_000_000).unwrap());
        let tx = &mut db.tx();
        let cabinets: Vec<_> = tx.cabinets().unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(
            cabinets,
            [
                DeviceId::new("cab-1").unwrap(),
                DeviceId::new("cab-2").unwrap()
            ]
        );
        db.set_holder(2, 1);
        let cab1 = DeviceId::new("cab-1").unwrap();
        let home = tx.carriers_at_home(&cab1).unwrap();
        assert_eq!(
            home.iter().map(|c| (c.id, c.state)).collect::<Vec<_>>(),
            [(CarrierId(1), CarrierState::InStorage)]
        );
        assert!(tx.carriers_reported(&cab1).unwrap().is_empty());
        assert_eq!(tx.next_carrier_number().unwrap(), 3);
    }
}
