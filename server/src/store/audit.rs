//! The audit trail's rows: what a use case appends in its own transaction.
//!
//! The chain itself (hashing, head signatures, verification) is [`crate::audit`]; a backend
//! only stores and returns its rows.

use super::StoreError;
use crate::audit::NewEntry;
use crate::domain::ids::AuditId;

/// Appending to the hash-chained audit trail.
pub trait AuditLog {
    /// Append `entry` after the current head, in this transaction: it commits or rolls back
    /// with the change it describes.
    fn append_audit(&mut self, entry: &NewEntry) -> Result<AuditId, StoreError>;
}
