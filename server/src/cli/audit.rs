//! `custos-server audit verify`: recompute the chain; exit 0 if intact, 1 at the first bad entry.
//!
//! With `--anchor FILE` / `--witness FILE...` the chain is also checked against signed heads
//! kept outside the database (see [`crate::audit::anchor`] for the threat model): a trail
//! shorter than, or different from, what they hold is broken, and the missing or diverging
//! range is named. A file that cannot be read or holds a badly signed head is an error (exit
//! 1 too, with one line saying why).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::audit::anchor::{AnchorError, read_heads};
use crate::audit::{Problem, Verdict};
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
    /// An anchor or witness file could not be used.
    #[error(transparent)]
    Anchor(#[from] AnchorError),
}

pub(super) async fn verify(data_dir: &Path, external: &[PathBuf]) -> Result<ExitCode, VerifyError> {
    let db = data_dir.join(DB_FILE);
    if !db.exists() {
        return Err(VerifyError::NotInitialised(data_dir.to_owned()));
    }
    let public_key = ServerKey::load(&data_dir.join(KEY_FILE))?.public_key();
    let mut heads = Vec::new();
    for path in external {
        heads.extend(read_heads(path, &public_key)?);
    }
    let store = Store::open(
        &db,
        StoreOptions {
            create: false,
            write_batch_max: 1,
            read_connections: 1,
        },
    )
    .await?;
    match service::audit::verify_chain_with(&store, public_key, heads).await? {
        Verdict::Intact {
            entries,
            signed_through,
        } => {
            let signed = signed_through.map_or_else(|| "none".to_owned(), |id| id.to_string());
            println!("audit chain intact: {entries} entries, signed through entry {signed}");
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken {
            entry,
            problem: problem @ (Problem::Truncated { through } | Problem::Diverges { through }),
        } => {
            let what = if matches!(problem, Problem::Truncated { .. }) {
                "missing"
            } else {
                "diverging"
            };
            println!(
                "audit chain broken: first bad entry {entry}; entries {entry}..={through} {what} ({problem})"
            );
            Ok(ExitCode::FAILURE)
        }
        Verdict::Broken { entry, problem } => {
            println!("audit chain broken: first bad entry {entry} ({problem})");
            Ok(ExitCode::FAILURE)
        }
    }
}
