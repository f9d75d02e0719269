//! `custos-server backup --data-dir D --out FILE` and `restore --from FILE --data-dir D`.
//!
//! `backup` may run while the server serves `D`: it reads a consistent snapshot through
//! SQLite's online backup API (see [`crate::store::sqlite::backup`]) and never blocks the
//! server's writer. The snapshot is one file, mode 0600, holding the database and the server
//! key.
//!
//! `restore` fills an empty (or not yet existing) data directory from a snapshot, then opens
//! it and recomputes the audit chain and its signed heads with the snapshot's key; a chain
//! that is not intact is refused and everything the restore created is removed again, so a
//! tampered or damaged backup never becomes a serving database.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::Clock;
use crate::audit::Verdict;
use crate::keys::{KEY_FILE, KeyError, ServerKey};
use crate::service::{self, ServiceError};
use crate::store::sqlite::backup::{self as snapshot, SnapshotMeta};
use crate::store::{DB_FILE, Store, StoreError, StoreOptions};

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The data directory has no database.
    #[error("{0} is not initialised")]
    NotInitialised(PathBuf),
    /// The output file exists already (a backup never overwrites).
    #[error("{0} exists: choose a new file for the backup")]
    OutExists(PathBuf),
    /// The restore target is not empty.
    #[error("{0} is not empty: restore only into an empty data directory")]
    NotEmpty(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database or the snapshot failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The restored chain could not be read.
    #[error(transparent)]
    Read(#[from] ServiceError),
    /// The snapshot's audit chain is not intact: nothing was restored.
    #[error("the backup's audit chain is broken at entry {entry} ({problem}); nothing restored")]
    Broken {
        /// The first bad entry.
        entry: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `backup`: snapshot `data_dir`'s database and key into the new file `out`.
pub(super) async fn backup(data_dir: &Path, out: &Path) -> Result<ExitCode, BackupError> {
    let db = data_dir.join(DB_FILE);
    if !db.exists() {
        return Err(BackupError::NotInitialised(data_dir.to_owned()));
    }
    if out.exists() {
        return Err(BackupError::OutExists(out.to_owned()));
    }
    let key_path = data_dir.join(KEY_FILE);
    ServerKey::load(&key_path)?; // the same checks as the server's (a valid, private key)
    let meta = SnapshotMeta {
        key: std::fs::read(&key_path).map_err(io(&key_path))?,
        taken_at: Clock::system().now().to_string(),
    };
    let out_owned = out.to_owned();
    tokio::task::spawn_blocking(move || snapshot::snapshot(&db, &out_owned, &meta))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
    println!("backup written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Whether `dir` is missing or an empty directory.
fn is_empty_dir(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(dir)(e)),
    }
}

/// `restore`: fill the empty `data_dir` from the snapshot `from`, verified.
pub(super) async fn restore(from: &Path, data_dir: &Path) -> Result<ExitCode, BackupError> {
    if !is_empty_dir(data_dir)? {
        return Err(BackupError::NotEmpty(data_dir.to_owned()));
    }
    let from_owned = from.to_owned();
    let meta = tokio::task::spawn_blocking(move || snapshot::read_meta(&from_owned))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(io(data_dir))?;
    let result = restore_into(from, data_dir, &meta).await;
    if result.is_err() {
        // Leave the directory as it was found: empty.
        for name in [DB_FILE, KEY_FILE] {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(data_dir.join(format!("{name}{suffix}")));
            }
        }
    }
    result
}

async fn restore_into(
    from: &Path,
    data_dir: &Path,
    meta: &SnapshotMeta,
) -> Result<ExitCode, BackupError> {
    let key_path = data_dir.join(KEY_FILE);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(io(&key_path))?;
    file.write_all(&meta.key)
        .and_then(|()| file.sync_all())
        .map_err(io(&key_path))?;
    let public_key = ServerKey::load(&key_path)?.public_key();
    let db = data_dir.join(DB_FILE);
    let (from_owned, db_owned) = (from.to_owned(), db.clone());
    tokio::task::spawn_blocking(move || snapshot::restore(&from_owned, &db_owned))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
    let store = Store::open(
        &db,
        StoreOptions {
            create: false,
            write_batch_max: 1,
            read_connections: 1,
        },
    )
    .await?;
    let verdict = service::audit::verify_chain(&store, public_key).await?;
    drop(store);
    match verdict {
        Verdict::Intact {
            entries,
            signed_through,
        } => {
            let signed = signed_through.map_or_else(|| "none".to_owned(), |id| id.to_string());
            println!(
                "restored {} (backup of {}): audit chain intact, {entries} entries, signed through entry {signed}",
                data_dir.display(),
                meta.taken_at
            );
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken { entry, problem } => Err(BackupError::Broken {
            entry: entry.to_string(),
            problem: problem.to_string(),
        }),
    }
}
