//! The device's Ed25519 key pair (signs everything the daemon sends) and the server's public key
//! (verifies what the server answers, when pinned).
//!
//! The key file is a PKCS#8 v2 document (DER, the bytes ring's `generate_pkcs8` produces, the
//! same format as the server's `server.key`). `custosd keygen` creates it with mode 0600 and never
//! overwrites an existing file: a replaced key would lock the device out until an administrator
//! re-registers it. Loading refuses a file readable by group or others, as ssh does, so a key that
//! leaked through permissions is noticed at start rather than in an audit.
//!
//! Public keys travel as standard base64 with padding (RFC 4648, section 4) of the 32 raw bytes,
//! which is what `POST /devices {public_key}` takes and what `server_public_key` pins.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custos_protocol::uplink::{SIGNATURE_LEN, SignedKind, signing_bytes};
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

/// The length of an Ed25519 public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Creating or loading a key file failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file already exists; keygen never overwrites a key.
    #[error("{}: already exists; refusing to overwrite a key", path.display())]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 v2 document.
    #[error("{}: not an Ed25519 PKCS#8 key (create one with `custosd keygen`)", path.display())]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
    /// The file is readable or writable by group or others.
    #[error("{}: permissions {mode:o} are too open; chmod 600", path.display())]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The system random generator failed.
    #[error("system random generator failed")]
    Random,
}

/// A public key could not be read from its base64 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyError {
    /// Not standard base64 with padding.
    #[error("not standard base64")]
    Base64,
    /// Decoded to the wrong number of bytes.
    #[error("{0} bytes where an Ed25519 public key has 32")]
    Length(usize),
}

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The answer carries no signature header.
    #[error("no signature")]
    Missing,
    /// The header is not standard base64 of 64 bytes.
    #[error("malformed signature")]
    Malformed,
    /// The signature does not match the key and the bytes.
    #[error("signature does not verify")]
    Invalid,
}

/// The device's signing key. `Debug` shows the public half only.
pub struct DeviceKey {
    pair: Ed25519KeyPair,
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// Generates a new key pair and writes it to `path`, which must not exist, with mode 0600
    /// (`custosd keygen`). The file is fsync'ed before this returns.
    pub fn generate(path: &Path) -> Result<DeviceKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Malformed {
            path: path.to_owned(),
        })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => KeyError::Exists {
                    path: path.to_owned(),
                },
                _ => io(source),
            })?;
        file.write_all(pkcs8.as_ref()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DeviceKey { pair })
    }

    /// Loads the key from `path`: the file must be private to its owner (no group or other
    /// permission bits) and hold an Ed25519 PKCS#8 v2 document.
    pub fn load(path: &Path) -> Result<DeviceKey, KeyError> {
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
        Self::from_pkcs8(&bytes).ok_or_else(|| KeyError::Malformed {
            path: path.to_owned(),
        })
    }

    /// A key from the bytes of a PKCS#8 v2 document (`None` if they are not one).
    pub fn from_pkcs8(bytes: &[u8]) -> Option<DeviceKey> {
        Ed25519KeyPair::from_pkcs8(bytes)
            .ok()
            .map(|pair| DeviceKey { pair })
    }

    /// The public half, to register the device on the server.
    pub fn public_key(&self) -> PublicKey {
        let mut out = [0; PUBLIC_KEY_LEN];
        out.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(out)
    }

    /// Signs `body` (the HTTP body exactly as sent) as a message of `kind`; the result is the
    /// base64 value of the `custos-signature` header.
    pub fn sign(&self, kind: SignedKind, body: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(&signing_bytes(kind, body)))
    }
}

/// An Ed25519 public key: the server's pinned key, or a device's.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// The key from its 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; PUBLIC_KEY_LEN]) -> Self {
        PublicKey(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// Verifies `signature` (the `custos-signature` header value: base64 of 64 bytes) over `body`
    /// as a message of `kind`. Call it on the raw received bytes before parsing them.
    pub fn verify(
        &self,
        kind: SignedKind,
        body: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let raw = STANDARD
            .decode(signature)
            .map_err(|_| SignatureError::Malformed)?;
        if raw.len() != SIGNATURE_LEN {
            return Err(SignatureError::Malformed);
        }
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&signing_bytes(kind, body), &raw)
            .map_err(|_| SignatureError::Invalid)
    }
}

impl fmt::Display for PublicKey {
    /// Standard base64 with padding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = PublicKeyError;

    /// Standard base64 with padding of exactly 32 bytes (surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw = STANDARD
            .decode(s.trim())
            .map_err(|_| PublicKeyError::Base64)?;
        let bytes: [u8; PUBLIC_KEY_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| PublicKeyError::Length(raw.len()))?;
        Ok(PublicKey(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_private_loads_back_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate-1.key");
        let key = DeviceKey::generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = DeviceKey::load(&path).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            DeviceKey::generate(&path),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before, "file untouched");
    }

    #[test]
    fn signatures_verify_only_for_the_same_kind_body_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = DeviceKey::generate(&dir.path().join("a.key")).unwrap();
        let other = DeviceKey::generate(&dir.path().join("b.key")).unwrap();
        let sig = key.sign(SignedKind::Batch, b"{\"x\":1}");
        let public = key.public_key();
        assert_eq!(
            public.verify(SignedKind::Batch, b"{\"x\":1}", sig.as_bytes()),
            Ok(())
        );
        assert_eq!(
            public.verify(SignedKind::Heartbeat, b"{\"x\":1}", sig.as_bytes()),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            public.verify(SignedKind::Batch, b"{\"x\":2}", sig.as_bytes()),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            other
                .public_key()
                .verify(SignedKind::Batch, b"{\"x\":1}", sig.as_bytes()),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            public.verify(SignedKind::Batch, b"{}", b"not base64!"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            public.verify(
                SignedKind::Batch,
                b"{}",
                STANDARD.encode([0; 63]).as_bytes()
            ),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn open_or_malformed_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        DeviceKey::generate(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = DeviceKey::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::TooOpen { mode: 0o640, .. }),
            "{err}"
        );
        let junk = dir.path().join("junk.key");
        std::fs::write(&junk, b"not a key").unwrap();
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = DeviceKey::load(&junk).unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. }));
        assert!(err.to_string().contains("junk.key"), "{err}");
        let err = DeviceKey::load(&dir.path().join("absent.key")).unwrap_err();
        assert!(matches!(err, KeyError::Io { .. }));
        assert!(err.to_string().contains("absent.key"), "{err}");
    }

    #[test]
    fn public_keys_are_standard_base64_of_32_bytes() {
        let key = PublicKey::from_bytes([7; 32]);
        let text = key.to_string();
        assert_eq!(text, STANDARD.encode([7; 32]));
        assert_eq!(text.parse::<PublicKey>(), Ok(key));
        assert_eq!(
            STANDARD.encode([7; 31]).parse::<PublicKey>(),
            Err(PublicKeyError::Length(31))
        );
        assert_eq!(
            "not base64!".parse::<PublicKey>(),
            Err(PublicKeyError::Base64)
        );
    }
}
