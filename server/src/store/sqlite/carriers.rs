//! [`CarrierRows`] over SQLite.

use super::SqliteTx;
use crate::domain::ids::CarrierId;
use crate::store::StoreError;
use crate::store::carriers::{CarrierRows, audit_names};

impl CarrierRows for SqliteTx<'_> {
    fn carrier_audit_names(
        &mut self,
        ids: &[CarrierId],
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        audit_names(self.conn(), ids)
    }
}
