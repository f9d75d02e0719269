//! The server's Ed25519 signing key (signs audit chain heads; later also policies for daemons).
//!
//! Stored as a PKCS#8 v2 document in `server.key` inside the data directory, created by
//! `init` with mode 0600. Loading refuses a key file readable by group or others, like ssh does.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use curve25519_dalek::edwards::CompressedEdwardsY;
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

/// A valid public key for tests: the public half of the Ed25519 key whose seed is `[n; 32]`.
#[cfg(test)]
pub(crate) fn test_key(n: u8) -> [u8; 32] {
    let pair = Ed25519KeyPair::from_seed_unchecked(&[n; 32]).expect("a 32-byte seed");
    let mut out = [0; 32];
    out.copy_from_slice(pair.public_key().as_ref());
    out
}

/// Why a public key (or a signature's `R`) cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakKey {
    /// The bytes are not the encoding of a curve point.
    #[error("not an Ed25519 point")]
    NotAPoint,
    /// The point has another, shorter-lived encoding: the bytes are not its canonical one
    /// (y not reduced mod p, or the sign of x = 0 set).
    #[error("non-canonical encoding")]
    NonCanonical,
    /// A point of order 1, 2, 4 or 8 (such as `01 00..00`, the identity, or all zeros): a
    /// signature under it verifies for any message without a private key.
    #[error("small-order point")]
    SmallOrder,
}

/// Whether `bytes` are the canonical encoding of an Ed25519 point outside the small-order
/// subgroup: what a device's public key, and a signature's `R`, must be.
pub fn check_point(bytes: &[u8; 32]) -> Result<(), WeakKey> {
    let compressed = CompressedEdwardsY(*bytes);
    let point = compressed.decompress().ok_or(WeakKey::NotAPoint)?;
    if point.compress() != compressed {
        return Err(WeakKey::NonCanonical);
    }
    if point.is_small_order() {
        return Err(WeakKey::SmallOrder);
    }
    Ok(())
}

/// Check an Ed25519 signature strictly, as ed25519-dalek's `verify_strict` does: the public
/// key and the signature's `R` must pass [`check_point`] (ring checks that `S` is reduced and
/// compares `R` by its encoding, but accepts small-order keys and `R`s: with the key
/// `01 00..00` the signature `01 00..00 ‖ 00..00` verifies for every message). Keys are
/// refused at registration too; checking here again covers keys stored before that check.
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Some(r) = signature
        .get(..32)
        .and_then(|r| <&[u8; 32]>::try_from(r).ok())
    else {
        return false;
    };
    check_point(public_key).is_ok()
        && check_point(r).is_ok()
        && UnparsedPublicKey::new(&ED25519, public_key)
            .verify(message, signature)
            .is_ok()
}

#[cfg(test)]
mod tests {

    /// Standard base64 of the weak keys of the finding and their non-canonical cousins.
    fn small_order_and_non_canonical() -> Vec<([u8; 32], WeakKey)> {
        let mut one = [0u8; 32];
        one[0] = 1;
        // p - 1 (y = -1, order 2), and p + 1 (a non-canonical encoding of y = 1).
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        let mut p_plus_1 = [0xff; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        // y = 1 with the sign bit of x set: x = 0 has no negative, so non-canonical.
        let mut one_negative = one;
        one_negative[31] = 0x80;
        vec![
            (one, WeakKey::SmallOrder),
            ([0; 32], WeakKey::SmallOrder),
            (p_minus_1, WeakKey::SmallOrder),
            (p_plus_1, WeakKey::NonCanonical),
            (one_negative, WeakKey::NonCanonical),
        ]
    }

    #[test]
    fn small_order_and_non_canonical_points_are_refused() {
        for (bytes, why) in small_order_and_non_canonical() {
            assert_eq!(check_point(&bytes), Err(why), "{bytes:02x?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::generate(&dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(check_point(&key.public_key()), Ok(()));
    }

    /// The forgery of the finding: key `01 00..00`, signature `01 00..00 ‖ 00..00`. ring
    /// alone accepts it for any message; the strict check does not.
    #[test]
    fn the_identity_key_forgery_does_not_verify() {
        let mut key = [0u8; 32];
        key[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let message = b"custos-uplink-v1\0batch\0{}";
        assert!(
            UnparsedPublicKey::new(&ED25519, &key)
                .verify(message, &sig)
                .is_ok(),
            "ring accepts the forgery (the reason for the strict check)"
        );
        assert!(!verify_signature(&key, message, &sig));
        // A real key's signature still verifies, and a small-order R is refused even so.
        let dir = tempfile::tempdir().unwrap();
        let server = ServerKey::generate(&dir.path().join(KEY_FILE)).unwrap();
        let good = server.sign(message);
        assert!(verify_signature(&server.public_key(), message, &good));
        assert!(!verify_signature(
            &server.public_key(),
            message,
            &good[..63]
        ));
    }
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
