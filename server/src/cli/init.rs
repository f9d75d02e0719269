//! `custos-server init`: create the data directory's database, signing key and first admin.
//!
//! Refuses if `custos.db` or `server.key` already exists. Everything is checked before anything
//! is created, and on a later failure the files this run created are removed again, so a failed
//! `init` can simply be repeated.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::InitArgs;
use crate::Clock;
use crate::auth::capability::AdminCap;
use crate::auth::{self, AuthError, CreateUser};
use crate::domain::role::Role;
use crate::domain::user::{PasswordPolicyError, check_password, is_valid_username};
use crate::keys::{KEY_FILE, KeyError, ServerKey};
use crate::store::{DB_FILE, Store, StoreError, StoreOptions};

/// Why `init` failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The data directory already holds a database or a key.
    #[error("{0} exists: this data directory is already initialised")]
    AlreadyInitialised(PathBuf),
    /// The password file could not be read.
    #[error("cannot read the password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The username is not acceptable.
    #[error("invalid admin username: must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    Username,
    /// The password breaks the policy.
    #[error(transparent)]
    Password(#[from] PasswordPolicyError),
    /// The data directory could not be created.
    #[error("cannot create {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Key generation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Creating the account failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

pub(super) async fn run(args: InitArgs) -> Result<(), InitError> {
    let text = std::fs::read_to_string(&args.admin_password_file).map_err(|source| {
        InitError::PasswordFile {
            path: args.admin_password_file.clone(),
            source,
        }
    })?;
    let password = text
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&text)
        .to_owned();
    initialise(&args.data_dir, &args.admin_user, password).await?;
    println!("initialised {}", args.data_dir.display());
    Ok(())
}

/// Initialise `data_dir`: database, signing key (mode 0600), and `admin_user` holding the
/// `admin` role, whose creation is the first audit entry; the chain head is signed at once.
pub async fn initialise(
    data_dir: &Path,
    admin_user: &str,
    password: String,
) -> Result<(), InitError> {
    if !is_valid_username(admin_user) {
        return Err(InitError::Username);
    }
    check_password(&password)?;
    let db = data_dir.join(DB_FILE);
    let key_path = data_dir.join(KEY_FILE);
    for path in [&db, &key_path] {
        if path.exists() {
            return Err(InitError::AlreadyInitialised(path.clone()));
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|source| InitError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
    let key = ServerKey::generate(&key_path)?;
    let result = fill(&db, key, admin_user, password).await;
    if result.is_err() {
        // Leave the directory as it was so that init can be run again.
        for path in [&db, &key_path] {
            let _ = std::fs::remove_file(path);
        }
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(data_dir.join(format!("{DB_FILE}{suffix}")));
        }
    }
    result
}

async fn fill(
    db: &Path,
    key: ServerKey,
    admin_user: &str,
    password: String,
) -> Result<(), InitError> {
    let store = Store::open(
        db,
        StoreOptions {
            create: true,
            write_batch_max: 1,
            read_connections: 1,
        },
    )
    .await?;
    let now = Clock::system().now();
    auth::create_user(
        &store,
        &AdminCap::bootstrap(),
        CreateUser {
            username: admin_user.to_owned(),
            password,
            roles: vec![Role::Admin],
            person_id: None,
        },
        now,
    )
    .await?;
    store.sign_audit_head(Arc::new(key), now).await?;
    Ok(())
}
