//! The SQLite implementation of the persistence interface ([`super::Tx`]).
//!
//! [`SqliteTx`] is one transaction's view over a connection: the writer's inside a group
//! commit (see [`super::Store::transact`]) or a pooled read-only one
//! ([`super::Store::query`]). Each area's trait is implemented in the module of that area's
//! rows; everything `rusqlite` stays under `store/`.

use rusqlite::Connection;

use super::{AuditLog, StoreError};
use crate::audit::{self, NewEntry};
use crate::domain::ids::AuditId;

/// One transaction over a SQLite connection.
pub struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteTx<'c> {
    /// A view of `conn`, which the caller has inside a transaction (or read-only).
    pub(crate) fn new(conn: &'c Connection) -> SqliteTx<'c> {
        SqliteTx { conn }
    }

    /// The connection.
    pub(crate) fn conn(&self) -> &'c Connection {
        self.conn
    }
}

impl AuditLog for SqliteTx<'_> {
    fn append_audit(&mut self, entry: &NewEntry) -> Result<AuditId, StoreError> {
        audit::append(self.conn, entry)
    }
}
mod alerts;
mod carriers;
mod console;
mod ingest;
mod policy;
mod signouts;
pub(crate) mod sweeps;
