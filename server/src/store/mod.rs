//! Storage: persistence only, behind [`Tx`] (the union of one small trait per area, each in
//! `store/<area>.rs` with its plain row types) and one owning handle, [`Store`]. The SQLite
//! implementation, one file `custos.db`, is [`sqlite`]: every SQL statement and every
//! `rusqlite` type is there (`ARCHITECTURE-NOTES.md` says what a second backend implements).
//!
//! # Concurrency
//! SQLite allows one writer at a time. Rather than let request tasks contend for the write lock,
//! one dedicated thread owns the only read-write [`rusqlite::Connection`] and takes jobs from a
//! channel (`sqlite/writer.rs`). It drains up to `write_batch_max` queued jobs into one transaction
//! (group commit: one fsync for many requests under load), runs each job inside its own
//! savepoint so that one job's failure (a duplicate name, say) undoes only that job, commits,
//! and only then answers each job through its oneshot. A caller therefore never sees a result
//! that is not durable (`synchronous=FULL`).
//!
//! Reads go to a small pool of read-only connections (`sqlite/reader.rs`) on tokio's blocking threads,
//! so no SQLite call ever runs on the async executor. WAL mode lets them read while the writer
//! writes.
//!
//! Checkpoints (copying committed WAL frames back into the database file) run on a thread of
//! their own (`sqlite/checkpointer.rs`) every [`CHECKPOINT_INTERVAL`], so the writer does not pay for
//! them inside a COMMIT; the writer's automatic checkpoint stays as a backstop at
//! 64 MiB of WAL. Checkpoints do not bear on durability: a transaction is
//! durable once its WAL frames are fsync'ed at COMMIT.
//!
//! A state change and the audit entry that describes it are written by the same job, so they
//! commit or roll back together.
//!
//! The audit chain's rows are the store's too: `audit` holds only the chain's logic. A
//! PostgreSQL backend would replace [`Store`]'s insides and [`sqlite`], not their callers.

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod carriers;
pub mod changes;
pub mod console;
pub mod devices;
pub mod ingest;
pub mod lifecycle;
pub mod notify;
pub mod people;
pub mod policy;
pub mod sessions;
pub mod signouts;
pub mod sqlite;
pub mod sweeps;
pub mod users;
pub mod zones;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;

use sqlite::checkpointer::Checkpointer;
pub use sqlite::migrations;
use sqlite::reader::ReadPool;
use sqlite::writer::Writer;

pub use alerts::AlertRows;
pub use approvals::ApprovalRows;
pub use audit::AuditLog;
pub use carriers::CarrierRows;
pub use changes::ChangeRows;
pub use console::ConsoleRows;
pub use devices::DeviceRows;
pub use ingest::IngestRows;
pub use lifecycle::LifecycleRows;
pub use notify::NotifyRows;
pub use people::PeopleRows;
pub use policy::PolicyRows;
pub use sessions::SessionRows;
pub use signouts::SignoutRows;
pub use sweeps::SweepRows;
pub use users::UserRows;
pub use zones::ZoneRows;

/// One transaction's view of the stored rows: everything a use case in `service/` may read or
/// write. A backend implements each area's trait for its transaction type; the union is
/// implemented for whatever implements them all. Use cases take `&mut dyn Tx`, so they name no
/// backend.
pub trait Tx:
    AlertRows
    + ApprovalRows
    + AuditLog
    + CarrierRows
    + ChangeRows
    + ConsoleRows
    + DeviceRows
    + IngestRows
    + LifecycleRows
    + NotifyRows
    + PeopleRows
    + PolicyRows
    + SessionRows
    + SignoutRows
    + SweepRows
    + UserRows
    + ZoneRows
{
}

impl<T> Tx for T where
    T: AlertRows
        + ApprovalRows
        + AuditLog
        + CarrierRows
        + ChangeRows
        + ConsoleRows
        + DeviceRows
        + IngestRows
        + LifecycleRows
        + NotifyRows
        + PeopleRows
        + PolicyRows
        + SessionRows
        + SignoutRows
        + SweepRows
        + UserRows
        + ZoneRows
        + ?Sized
{
}

/// The database file name inside the data directory.
pub const DB_FILE: &str = "custos.db";

/// How often the checkpointer thread copies the WAL back into the database file.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// The database engine's own failure, kept as its source so that no engine type crosses the
/// persistence interface.
#[derive(Debug)]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl BackendError {
    /// Wrap an engine's error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> BackendError {
        BackendError(Box::new(e))
    }
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database engine failed.
    #[error("database: {0}")]
    Backend(#[source] BackendError),
    /// A unique key is taken.
    #[error("{what} already exists")]
    Duplicate {
        /// What was duplicated, e.g. `username`.
        what: &'static str,
    },
    /// The request names a row that does not exist (a zone, a person).
    #[error("unknown {what}")]
    UnknownReference {
        /// What was not found.
        what: &'static str,
    },
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The database was written by a newer server.
    #[error(
        "database schema version {found} is newer than this server knows ({known}); refusing to downgrade"
    )]
    Downgrade {
        /// `user_version` in the file.
        found: i64,
        /// Number of migrations this build knows.
        known: usize,
    },
    /// The database file does not exist (and was not to be created).
    #[error("no database at {0}")]
    Missing(PathBuf),
    /// A stored value cannot be decoded; the database was edited outside the server.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The write transaction failed as a whole.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// The disk (or the database's size limit) is full: nothing of the write was kept, and
    /// writes keep failing until space is freed; reads still work.
    #[error("storage full: the database cannot grow")]
    StorageFull,
    /// The writer thread has stopped.
    #[error("the store writer has stopped")]
    WriterGone,
    /// A job panicked or a blocking task was cancelled.
    #[error("storage task failed: {0}")]
    Task(String),
    /// JSON encoding of an audit record failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Open options.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Create the file if missing (only `init` does).
    pub create: bool,
    /// Group commit size.
    pub write_batch_max: usize,
    /// Read connections.
    pub read_connections: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            create: false,
            write_batch_max: 64,
            read_connections: 4,
        }
    }
}

/// The storage handle: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Store {
    writer: Writer,
    readers: Arc<ReadPool>,
    /// Stops the checkpointer thread when the last clone is dropped.
    _checkpointer: Arc<Checkpointer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Open (or with `options.create`, create) the database at `path`, apply migrations, start
    /// the writer thread and the reader pool.
    pub async fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Store::open_blocking(&path, options))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn open_blocking(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        if !options.create && !path.exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        let mut conn = sqlite::open_writer_connection(path, options.create)?;
        migrations::migrate(&mut conn)?;
        let readers = ReadPool::open(path, options.read_connections.max(1))?;
        let checkpointer = Checkpointer::spawn(path, CHECKPOINT_INTERVAL)?;
        let writer = Writer::spawn(conn, options.write_batch_max.max(1))?;
        Ok(Store {
            writer,
            readers: Arc::new(readers),
            _checkpointer: Arc::new(checkpointer),
        })
    }

    /// Run a use case's `job` in the next group transaction on the writer thread; resolves
    /// after COMMIT, so a result the caller sees is durable.
    ///
    /// If the job returns an error (of any type that a [`StoreError`] converts into), its own
    /// changes are rolled back and the other jobs of the group are unaffected. This is the
    /// write half of the persistence seam: the job sees only [`Tx`].
    pub async fn transact<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer
            .submit(move |conn| job(&mut sqlite::SqliteTx::new(conn)))
            .await
    }

    /// Test support: cap the database at `pages` pages (`PRAGMA max_page_count` on the writer;
    /// SQLite never sets it below the current size), so that writes fail as on a full disk; a
    /// large value lifts the cap. Returns the cap in force.
    #[doc(hidden)]
    pub async fn cap_pages_for_tests(&self, pages: u64) -> Result<u64, StoreError> {
        self.writer
            .submit(move |conn| {
                Ok(
                    conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await
    }

    /// Run a read-only `job` on a pooled connection on a blocking thread. The job sees the
    /// same [`Tx`] as [`Store::transact`]'s, over a connection that refuses writes, inside one
    /// read transaction: all its reads see the same snapshot (a verification of the audit
    /// chain cannot see half of a concurrent append).
    pub async fn query<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.readers
            .run(move |conn| {
                let snapshot = conn.unchecked_transaction().map_err(StoreError::from)?;
                let result = job(&mut sqlite::SqliteTx::new(&snapshot));
                // Read-only: ending the transaction (commit or the rollback of drop) changes
                // nothing.
                drop(snapshot);
                result
            })
            .await
    }

    /// Whether the database answers a query (the health check).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(drop)?)
        })
        .await
    }

    /// Run `job` on the writer's raw SQLite connection, in the next group transaction: for the
    /// SQLite implementation's own code, and for tests and benchmarks that set up or inspect
    /// rows directly. Use cases go through [`Store::transact`].
    pub async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.submit(job).await
    }

    /// Run `query` on a raw read-only SQLite connection (as [`Store::write`]: the store's own
    /// code, tests and benchmarks).
    pub async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.readers.run(query).await
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::temp_store;

    #[tokio::test]
    async fn opening_a_missing_file_without_create_fails() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open(&dir.path().join(DB_FILE), StoreOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Missing(_)), "{err}");
        assert!(!dir.path().join(DB_FILE).exists());
    }

    #[tokio::test]
    async fn pragmas_are_set_on_the_writer() {
        let (store, _dir) = temp_store().await;
        let (mode, sync, fk) = store
            .write(|c| {
                let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                let fk: i64 = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                Ok((mode, sync, fk))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
    }

    #[tokio::test]
    async fn a_failing_job_rolls_back_only_itself() {
        let (store, _dir) = temp_store().await;
        store
            .write(|c| Ok(c.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")?))
            .await
            .unwrap();
        // Queue many jobs at once so that they share transactions; every even one fails after
        // inserting its row.
        let mut handles = Vec::new();
        for i in 0..40_i64 {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                store
                    .write(move |c| {
                        c.execute("INSERT INTO t (x) VALUES (?1)", [i])?;
                        if i % 2 == 0 {
                            Err(StoreError::NotFound)
                        } else {
                            Ok(i)
                        }
                    })
                    .await
            }));
        }
        for (i, h) in handles.into_iter().enumerate() {
            let result = h.await.unwrap();
            assert_eq!(result.is_ok(), i % 2 == 1, "job {i}: {result:?}");
        }
        let rows: Vec<i64> = store
            .read(|c| {
                let mut stmt = c.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, (0..40).filter(|i| i % 2 == 1).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn readers_cannot_write() {
        let (store, _dir) = temp_store().await;
        let err = store
            .read(|c| Ok(c.execute_batch("CREATE TABLE nope (x)")?))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_kill_the_writer() {
        let (store, _dir) = temp_store().await;
        let err = store
            .write(|_| -> Result<(), StoreError> { panic!("boom") })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Task(_)), "{err}");
        assert_eq!(store.write(|_| Ok(7)).await.unwrap(), 7);
    }
}
