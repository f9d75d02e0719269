//! `custos-server init`: create the data directory's database, signing key and first admin.
//!
//! Refuses if `custos.db` or `server.key` already exists. Everything is checked before anything
//! is created, and on a later failure the files this run created are removed again, so a failed
//! `init` can simply be repeated.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::InitArgs;
use crate::auth::capability::AdminCap;
use crate::config::Config;
use crate::domain::role::Role;
use crate::keys::{KEY_FILE, KeyError, ServerKey};
use crate::service::ServiceError;
use crate::service::accounts::{self, CreateUser};
use crate::store::{DB_FILE, Store, StoreError, StoreOptions};
use crate::{AppState, Clock, Settings};

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
    /// The password file can be read by other users: the password may be known already.
    #[error(
        "the password file {path} is readable by group or others (mode {mode:o}): run chmod 600 on it"
    )]
    PasswordFileOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
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
    /// The admin account is refused (its username or password), or creating it failed.
    #[error(transparent)]
    Account(#[from] ServiceError),
    /// Signing the first audit head failed.
    #[error("signing the audit head failed: {0}")]
    SignHead(ServiceError),
}

pub(super) async fn run(args: InitArgs) -> Result<(), InitError> {
    let read_error = |source| InitError::PasswordFile {
        path: args.admin_password_file.clone(),
        source,
    };
    let mode = std::fs::metadata(&args.admin_password_file)
        .map_err(read_error)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o044 != 0 {
        return Err(InitError::PasswordFileOpen {
            path: args.admin_password_file.clone(),
            mode,
        });
    }
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
    // The use case checks again; checked first here so that nothing is created for nothing.
    accounts::check_new_user(admin_user, &password, &[Role::Admin])?;
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
        .and_then(|()| {
            // An existing directory (made by the operator) is narrowed to the server's user.
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        })
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
    let app = AppState::with_clock(
        store,
        key,
        Settings::from(&Config::default()),
        Clock::system(),
    );
    accounts::create_user(
        &app,
        &AdminCap::bootstrap(),
        CreateUser {
            username: admin_user.to_owned(),
            password,
            roles: vec![Role::Admin],
            person_id: None,
            new_person: None,
        },
    )
    .await?;
    crate::service::audit::sign_head(&app)
        .await
        .map_err(InitError::SignHead)?;
    Ok(())
}
