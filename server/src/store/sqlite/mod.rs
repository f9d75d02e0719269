//! The SQLite implementation of the persistence interface ([`super::Tx`]).
//!
//! [`SqliteTx`] is one transaction's view over a connection: the writer's inside a group
//! commit (see [`super::Store::transact`]) or a pooled read-only one
//! ([`super::Store::query`]). Each area's trait is implemented in the module of that area's
//! rows; everything `rusqlite` stays under `store/`.

use rusqlite::{Connection, Row};

use crate::domain::carrier::level_from_code;
use crate::domain::level::Level;
use crate::domain::time::Timestamp;

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

mod alerts;
pub(crate) mod audit;
mod carriers;
mod console;
mod devices;
mod ingest;
mod people;
mod policy;
mod sessions;
mod signouts;
pub(crate) mod sweeps;
mod users;
mod zones;

/// The sign-outs that still claim a carrier: requested or approved ones, and out ones the
/// carrier has not come back from. (Columns: `carrier_id`, `signout_id`.)
pub(crate) const LIVE_CLAIMS: &str = "SELECT sc.carrier_id, sc.signout_id
     FROM signout_carriers sc JOIN signouts so ON so.id = sc.signout_id
     WHERE so.state IN ('requested', 'approved')
        OR (so.state = 'out' AND sc.returned_at_ms IS NULL)";

fn conversion_failure(
    idx: usize,
    ty: rusqlite::types::Type,
    what: &str,
    text: &str,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        ty,
        format!("invalid stored {what}: {text:?}").into(),
    )
}

/// Read a level code column (`TS`, `S`, `C`).
pub(crate) fn level_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Level> {
    let text: String = r.get(idx)?;
    level_from_code(&text)
        .ok_or_else(|| conversion_failure(idx, rusqlite::types::Type::Text, "level", &text))
}

/// Read an optional `*_ms` column as a [`Timestamp`].
pub(crate) fn ms_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    let ms: Option<i64> = r.get(idx)?;
    ms.map(|ms| {
        Timestamp::from_unix_ms(ms).ok_or_else(|| {
            conversion_failure(idx, rusqlite::types::Type::Integer, "time", &ms.to_string())
        })
    })
    .transpose()
}

/// Read a NOT NULL `*_ms` column as a [`Timestamp`].
pub(crate) fn required_ms_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    ms_column(r, idx)?.ok_or(rusqlite::Error::InvalidColumnType(
        idx,
        "NULL time".to_owned(),
        rusqlite::types::Type::Null,
    ))
}
