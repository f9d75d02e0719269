//! Snapshots of the database for `custos-server backup` / `restore`, with SQLite's online
//! backup API.
//!
//! # Why one step
//! The backup API copies pages from a source connection. Copied in several steps, a write by
//! another connection (the running server's writer) between two steps makes SQLite restart
//! the copy, so under steady load a stepwise backup may never finish. Copied in ONE step
//! (`step(-1)`), the source connection holds one read transaction for the whole copy: in WAL
//! mode that is a consistent snapshot (every transaction committed before it, nothing after)
//! and it never blocks the server's writer, which keeps appending to the WAL meanwhile.
//!
//! # The snapshot file
//! A standalone SQLite database (rollback journal, not WAL, so the one file is everything),
//! mode 0600, with one extra table, [`BACKUP_TABLE`], holding the server's signing key (the
//! snapshot already holds every secret of the database; without the key a restored server
//! could not prove its audit heads or keep its daemons' pins). `restore` takes the key out
//! and drops the table again, so the restored database is exactly what the server had.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::private_database_files;
use crate::store::{BackendError, StoreError};

/// The table inside a snapshot that carries the server key and when the snapshot was taken.
pub const BACKUP_TABLE: &str = "custos_backup";

/// How often a busy or locked step is retried before giving up (each after [`RETRY_PAUSE`]).
const RETRIES: u32 = 200;
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// What a snapshot holds besides the database.
#[derive(Debug)]
pub struct SnapshotMeta {
    /// The server key file's bytes (PKCS#8).
    pub key: Vec<u8>,
    /// When the snapshot was taken (RFC 3339).
    pub taken_at: String,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Backend(BackendError::new(e))
}

/// Copy `src` into `dst` in one step (see the module doc), retrying while busy or locked.
fn copy_all(src: &Connection, dst: &mut Connection) -> Result<(), StoreError> {
    let backup = Backup::new(src, dst)?;
    for _ in 0..RETRIES {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(RETRY_PAUSE);
            }
            _ => std::thread::sleep(RETRY_PAUSE),
        }
    }
    Err(StoreError::CommitFailed(
        "the database stayed locked; backup gave up".to_owned(),
    ))
}

/// Write a consistent snapshot of the database at `db` (which a server may be writing) to
/// `out`, a new file (an existing one is refused, never overwritten), with `meta` inside.
pub fn snapshot(db: &Path, out: &Path, meta: &SnapshotMeta) -> Result<(), StoreError> {
    if !db.exists() {
        return Err(StoreError::Missing(db.to_owned()));
    }
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(Duration::from_millis(u64::from(super::BUSY_TIMEOUT_MS)))?;
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(io)?;
    }
    let result = (|| {
        let mut dst = Connection::open(out)?;
        copy_all(&src, &mut dst)?;
        // A standalone file: no -wal/-shm beside it.
        let _: String = dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
        dst.execute_batch(&format!(
            "CREATE TABLE {BACKUP_TABLE} (key BLOB NOT NULL, taken_at TEXT NOT NULL) STRICT;"
        ))?;
        dst.execute(
            &format!("INSERT INTO {BACKUP_TABLE} (key, taken_at) VALUES (?1, ?2)"),
            rusqlite::params![meta.key, meta.taken_at],
        )?;
        dst.close().map_err(|(_, e)| StoreError::from(e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

/// Read a snapshot's [`SnapshotMeta`] (the file is not changed).
pub fn read_meta(snapshot: &Path) -> Result<SnapshotMeta, StoreError> {
    if !snapshot.exists() {
        return Err(StoreError::Missing(snapshot.to_owned()));
    }
    let conn = Connection::open_with_flags(
        snapshot,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.query_row(
        &format!("SELECT key, taken_at FROM {BACKUP_TABLE}"),
        [],
        |r| {
            Ok(SnapshotMeta {
                key: r.get(0)?,
                taken_at: r.get(1)?,
            })
        },
    )
    .map_err(|e| match e {
        rusqlite::Error::QueryReturnedNoRows | rusqlite::Error::SqliteFailure(..) => {
            StoreError::Corrupt(format!(
                "{} is not a custos-server backup",
                snapshot.display()
            ))
        }
        other => StoreError::from(other),
    })
}

/// Copy the snapshot at `snapshot` into a new database at `db` (created 0600; must not
/// exist), without the [`BACKUP_TABLE`], in WAL mode as the server runs it.
pub fn restore(snapshot: &Path, db: &Path) -> Result<(), StoreError> {
    if db.exists() {
        return Err(StoreError::Duplicate { what: "database" });
    }
    let src = Connection::open_with_flags(
        snapshot,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    private_database_files(db, true).map_err(io)?;
    let mut dst = Connection::open(db)?;
    copy_all(&src, &mut dst)?;
    dst.execute_batch(&format!("DROP TABLE {BACKUP_TABLE};"))?;
    let _: String = dst.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    dst.close().map_err(|(_, e)| StoreError::from(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            key: vec![1, 2, 3],
            taken_at: "2026-12-07T10:00:00Z".to_owned(),
        }
    }

    #[test]
    fn a_snapshot_round_trips_without_its_extra_table() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (7);",
        )
        .unwrap();
        let out = dir.path().join("snap");
        snapshot(&db, &out, &meta()).unwrap();
        assert!(snapshot(&db, &out, &meta()).is_err(), "never overwrites");
        assert_eq!(read_meta(&out).unwrap().key, vec![1, 2, 3]);
        let restored = dir.path().join("b.db");
        restore(&out, &restored).unwrap();
        let back = Connection::open(&restored).unwrap();
        let x: i64 = back.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 7);
        let extra: i64 = back
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = ?1",
                [BACKUP_TABLE],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(extra, 0);
        assert!(restore(&out, &restored).is_err(), "never overwrites");
    }

    #[test]
    fn a_plain_database_is_not_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(read_meta(&db), Err(StoreError::Corrupt(_))));
    }
}
