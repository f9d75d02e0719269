//! The server's Ed25519 signing key (signs audit chain heads; later also policies for daemons).
//!
//! Stored as a PKCS#8 v2 document in `server.key` inside the data directory, created by
//! `init` with mode 0600. Loading refuses a key file readable by group or others, like ssh does.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// The key file name inside the data directory.
pub const KEY_FILE: &str = "server.key";

/// Errors handling the key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 document.
    #[error("{0}: not an Ed25519 PKCS#8 key")]
    Malformed(PathBuf),
    /// The file is readable by group or others.
    #[error("{path}: permissions {mode:o} are too open; chmod 600")]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
}

/// The server's signing key pair.
pub struct ServerKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey")
            .field("public", &crate::domain::audit::hex(&self.public_key()))
            .finish_non_exhaustive()
    }
}

impl ServerKey {
    /// Generate a new key and write it to `path` (which must not exist) with mode 0600.
    pub fn generate(path: &Path) -> Result<ServerKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(pkcs8.as_ref()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map(|pair| ServerKey { pair })
            .map_err(|_| KeyError::Malformed(path.to_owned()))
    }

    /// Load the key from `path`.
    pub fn load(path: &Path) -> Result<ServerKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Ed25519KeyPair::from_pkcs8(&bytes)
            .map(|pair| ServerKey { pair })
            .map_err(|_| KeyError::Malformed(path.to_owned()))
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// Sign `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

/// Check an Ed25519 signature.
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_private_loads_back_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let key = ServerKey::generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = ServerKey::load(&path).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        let sig = loaded.sign(b"head");
        assert!(verify_signature(&key.public_key(), b"head", &sig));
        assert!(!verify_signature(&key.public_key(), b"tail", &sig));
        assert!(
            matches!(ServerKey::generate(&path), Err(KeyError::Io { .. })),
            "an existing key is never overwritten"
        );
    }

    #[test]
    fn a_world_readable_or_malformed_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        ServerKey::generate(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ServerKey::load(&path),
            Err(KeyError::TooOpen { .. })
        ));
        let junk = dir.path().join("junk.key");
        std::fs::write(&junk, b"not a key").unwrap();
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            ServerKey::load(&junk),
            Err(KeyError::Malformed(_))
        ));
    }
}
