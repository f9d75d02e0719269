//! [`DeviceRows`] over SQLite.

use rusqlite::OptionalExtension;

use super::SqliteTx;
use crate::domain::device::DeviceKind;
use crate::domain::ids::DeviceId;
use crate::store::StoreError;
use crate::store::devices::DeviceRows;

impl DeviceRows for SqliteTx<'_> {
    fn device_kind(&mut self, id: &DeviceId) -> Result<Option<DeviceKind>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT kind FROM devices WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }
}
