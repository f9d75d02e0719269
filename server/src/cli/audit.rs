//! `custos-server audit verify`: recompute the chain; exit 0 if intact, 1 at the first bad entry.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::audit::Verdict;
use crate::keys::{KEY_FILE, KeyError, ServerKey};
use crate::service::{self, ServiceError};
use crate::store::{DB_FILE, Store, StoreError, StoreOptions};

/// Why verification could not run at all (a broken chain is not an error: it is exit 1).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The data directory has no database.
    #[error("{0} is not initialised")]
    NotInitialised(PathBuf),
    /// The key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain could not be read.
    #[error(transparent)]
    Read(#[from] ServiceError),
}

pub(super) async fn verify(data_dir: &Path) -> Result<ExitCode, VerifyError> {
    let db = data_dir.join(DB_FILE);
    if !db.exists() {
        return Err(VerifyError::NotInitialised(data_dir.to_owned()));
    }
    let public_key = ServerKey::load(&data_dir.join(KEY_FILE))?.public_key();
    let store = Store::open(
        &db,
        StoreOptions {
            create: false,
            write_batch_max: 1,
            read_connections: 1,
        },
    )
    .await?;
    match service::audit::verify_chain(&store, public_key).await? {
        Verdict::Intact {
            entries,
            signed_through,
        } => {
            let signed = signed_through.map_or_else(|| "none".to_owned(), |id| id.to_string());
            println!("audit chain intact: {entries} entries, signed through entry {signed}");
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken { entry, problem } => {
            println!("audit chain broken: first bad entry {entry} ({problem})");
            Ok(ExitCode::FAILURE)
        }
    }
}
