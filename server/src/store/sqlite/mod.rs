//! The SQLite implementation of the persistence interface ([`super::Tx`]).
//!
//! [`SqliteTx`] is one transaction's view over a connection: the writer's inside a group
//! commit (see [`super::Store::transact`]) or a pooled read-only one
//! ([`super::Store::query`]). Each area's trait is implemented in the module of that area's
//! rows; everything `rusqlite` stays under `store/`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Row};

use crate::domain::carrier::level_from_code;
use crate::domain::level::Level;
use crate::domain::time::Timestamp;
use crate::store::{BackendError, StoreError};

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
mod approvals;
pub(crate) mod audit;
pub mod backup;
mod carriers;
mod changes;
pub(super) mod checkpointer;
mod console;
mod devices;
mod exports;
mod ingest;
mod lifecycle;
pub mod migrations;
mod moves;
mod notify;
mod paging;
mod people;
mod policy;
pub(super) mod reader;
mod sessions;
mod signouts;
mod sql;
pub(crate) mod sweeps;
mod users;
pub(super) mod writer;
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

/// A stored `*_ms` time as a [`Timestamp`], never failing: a time the calendar cannot show
/// (written by an older version that accepted any device time, or by hand) is clamped to the
/// nearest representable instant (0001-01-01 or 9999-12-31, visibly wrong) and logged, so one
/// bad row shows degraded instead of taking a whole list down with a 500.
pub(crate) fn stored_time(ms: i64, what: &str) -> Timestamp {
    Timestamp::from_unix_ms(ms).unwrap_or_else(|| {
        tracing::warn!(ms, column = what, "stored time out of range; shown clamped");
        Timestamp::from_unix_ms_saturating(ms)
    })
}

/// Read an optional `*_ms` column as a [`Timestamp`] (see [`stored_time`]).
pub(crate) fn ms_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    let ms: Option<i64> = r.get(idx)?;
    Ok(ms.map(|ms| {
        let name = r.as_ref().column_name(idx).unwrap_or("?");
        stored_time(ms, name)
    }))
}

/// Read a NOT NULL `*_ms` column as a [`Timestamp`].
pub(crate) fn required_ms_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    ms_column(r, idx)?.ok_or(rusqlite::Error::InvalidColumnType(
        idx,
        "NULL time".to_owned(),
        rusqlite::types::Type::Null,
    ))
}

/// The writer's page cache, in KiB (SQLite's default is 2 MiB): the pages ingest touches
/// (carriers, tags, sign-outs, the tails of `events` and its indexes) stay in memory instead of
/// being read back from the file for every batch.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// WAL pages after which the writer checkpoints by itself (if the checkpointer fell behind):
/// 64 MiB of 4 KiB pages.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// Prepared statements the writer keeps (rusqlite's default of 16 is fewer than one batch job
/// uses, so statements were compiled again for every batch).
const WRITER_STATEMENT_CACHE: usize = 256;

/// How long a connection waits on a lock held by another process (e.g. `audit verify`).
pub(crate) const BUSY_TIMEOUT_MS: u32 = 5_000;

/// The database, its `-wal` and its `-shm` hold password hashes, titles and people: readable by
/// the server's user only (issue #9). SQLite creates the `-wal` and `-shm` files with the
/// database file's mode, so the database is created 0600 here before SQLite opens it, and a
/// file left more open by an older version is narrowed to 0600.
fn private_database_files(path: &Path, create: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let text = path.to_string_lossy();
    if text.starts_with("file:") || text.starts_with(':') {
        return Ok(()); // a URI or an in-memory database: nothing on disk to protect here
    }
    if create {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{text}{suffix}"));
        match std::fs::metadata(&file) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(super) fn open_writer_connection(path: &Path, create: bool) -> Result<Connection, StoreError> {
    private_database_files(path, create).map_err(|e| StoreError::Backend(BackendError::new(e)))?;
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_millis(u64::from(BUSY_TIMEOUT_MS)))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "journal_mode is {mode}, not wal"
        )));
    }
    // temp_store = MEMORY keeps the per-job savepoint journals (see `writer`) off the disk:
    // they only serve to roll one job back inside its group transaction; durability comes
    // from the WAL, fsync'ed at every COMMIT (synchronous = FULL).
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{WRITER_CACHE_KIB};
         PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES};"
    ))?;
    conn.set_prepared_statement_cache_capacity(WRITER_STATEMENT_CACHE);
    Ok(conn)
}

/// Map a unique/primary-key violation to [`StoreError::Duplicate`] and a foreign-key violation
/// to [`StoreError::UnknownReference`]; other errors pass through.
pub(crate) fn constraint(
    err: rusqlite::Error,
    duplicate: &'static str,
    reference: &'static str,
) -> StoreError {
    use rusqlite::ffi;
    if let rusqlite::Error::SqliteFailure(e, _) = &err {
        match e.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return StoreError::Duplicate { what: duplicate };
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                return StoreError::UnknownReference { what: reference };
            }
            _ => {}
        }
    }
    StoreError::from(err)
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return StoreError::StorageFull;
        }
        StoreError::Backend(BackendError::new(e))
    }
}
