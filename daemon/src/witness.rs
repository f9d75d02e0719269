//! The witness of the server's audit trail: the newest signed audit head this device has seen.
//!
//! The server answers batches and heartbeats with its latest signed audit head (header
//! `custos-audit-head`, see `custos_protocol::uplink::AuditHead`). Someone holding the server's
//! database can cut or rewrite the trail together with the heads stored beside it; a head kept
//! on the devices' disks survives that, and `custos-server audit verify --witness FILE` checks
//! the trail against it. So the daemon
//! - verifies the head's signature with the pinned server key (without a pin nothing is kept:
//!   an unverifiable head proves nothing);
//! - keeps the newest one in `audit-witness` in its data directory (one line, mode 0600,
//!   written atomically: temporary file, fsync, rename, fsync of the directory);
//! - refuses to go backwards: a head with a lower seq than the one held, or another hash for
//!   the same seq, is a fork (`custos_protocol::uplink::witness_audit_head`). The held head is
//!   kept, the fork is logged as an error and reported in every heartbeat from then on as a
//!   device fault, until an operator looks (a restart re-detects it at the next answer).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use custos_protocol::uplink::{AuditHead, HeadLineError, Witnessed, witness_audit_head};
use ring::signature::{ED25519, UnparsedPublicKey};

use crate::keys::PublicKey;

/// The witness file's name in the data directory.
pub const FILE_NAME: &str = "audit-witness";

/// Why a head was not taken, or the witness file failed.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The header is not a head.
    #[error("malformed audit head: {0}")]
    Malformed(#[from] HeadLineError),
    /// The head's signature does not verify with the pinned server key.
    #[error("audit head {seq}: signature does not verify with the pinned server key")]
    BadSignature {
        /// The head's entry.
        seq: u64,
    },
    /// The witness file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The newest head witnessed, and where it is kept.
#[derive(Debug)]
pub struct Witness {
    path: PathBuf,
    server_key: PublicKey,
    held: Option<AuditHead>,
    fork: Option<(i64, String)>,
}

impl Witness {
    /// Load the witness kept in `data_dir` (none yet is fine), checking it with `server_key`.
    pub fn open(data_dir: &Path, server_key: PublicKey) -> Result<Witness, WitnessError> {
        let path = data_dir.join(FILE_NAME);
        let held = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let head = AuditHead::parse_line(&text)?;
                check_signature(&server_key, &head)?;
                Some(head)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(WitnessError::Io { path, source }),
        };
        Ok(Witness {
            path,
            server_key,
            held,
            fork: None,
        })
    }

    /// The head held, if any.
    pub fn held(&self) -> Option<&AuditHead> {
        self.held.as_ref()
    }

    /// The standing fork, if one was seen: since when (ms) and what.
    pub fn fork(&self) -> Option<&(i64, String)> {
        self.fork.as_ref()
    }

    /// Take the head in `line` (a `custos-audit-head` header) seen at `now_ms`: kept on disk
    /// if newer; a fork is remembered and logged.
    pub fn observe(&mut self, line: &str, now_ms: i64) -> Result<Witnessed, WitnessError> {
        let head = AuditHead::parse_line(line)?;
        check_signature(&self.server_key, &head)?;
        let seen = witness_audit_head(self.held.as_ref(), &head);
        match seen {
            Witnessed::Newer => {
                self.save(&head)?;
                self.held = Some(head);
            }
            Witnessed::Same => {}
            Witnessed::Fork { held_seq } => {
                let detail = format!(
                    "audit trail fork: the server offered audit head {} after this device witnessed head {held_seq}",
                    head.seq
                );
                tracing::error!(offered = head.seq, held = held_seq, "{detail}");
                if self.fork.is_none() {
                    self.fork = Some((now_ms, detail));
                }
            }
        }
        Ok(seen)
    }

    fn save(&self, head: &AuditHead) -> Result<(), WitnessError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| WitnessError::Io { path, source }
        };
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(format!("{}\n", head.to_line()).as_bytes())
                .map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }
}

fn check_signature(key: &PublicKey, head: &AuditHead) -> Result<(), WitnessError> {
    UnparsedPublicKey::new(&ED25519, key.as_bytes())
        .verify(&head.signed_message(), &head.signature)
        .map_err(|_| WitnessError::BadSignature { seq: head.seq })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair as _};

    use super::*;

    fn server() -> (Ed25519KeyPair, PublicKey) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = PublicKey::from_bytes(pair.public_key().as_ref().try_into().unwrap());
        (pair, public)
    }

    fn head(pair: &Ed25519KeyPair, seq: u64, fill: u8) -> String {
        let hash = [fill; 32];
        let msg = custos_protocol::uplink::audit_head_message(seq, &hash);
        AuditHead {
            seq,
            hash,
            signature: pair.sign(&msg).as_ref().try_into().unwrap(),
        }
        .to_line()
    }

    #[test]
    fn the_newest_head_is_kept_privately_and_a_step_back_is_a_fork() {
        let dir = tempfile::tempdir().unwrap();
        let (pair, public) = server();
        let mut w = Witness::open(dir.path(), public).unwrap();
        assert!(w.held().is_none());
        assert_eq!(w.observe(&head(&pair, 3, 1), 10).unwrap(), Witnessed::Newer);
        assert_eq!(w.observe(&head(&pair, 7, 2), 20).unwrap(), Witnessed::Newer);
        assert_eq!(w.observe(&head(&pair, 7, 2), 30).unwrap(), Witnessed::Same);
        let path = dir.path().join(FILE_NAME);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(w.fork().is_none());
        // The server's database was cut back: genuinely signed, older heads.
        assert_eq!(
            w.observe(&head(&pair, 5, 9), 40).unwrap(),
            Witnessed::Fork { held_seq: 7 }
        );
        assert_eq!(
            w.observe(&head(&pair, 7, 9), 50).unwrap(),
            Witnessed::Fork { held_seq: 7 }
        );
        let (since, detail) = w.fork().unwrap();
        assert_eq!(*since, 40);
        assert!(detail.contains("fork"), "{detail}");
        // The held head stays, on disk too.
        let reopened = Witness::open(dir.path(), public).unwrap();
        assert_eq!(reopened.held().unwrap().seq, 7);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            head(&pair, 7, 2)
        );
    }

    #[test]
    fn a_head_signed_by_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, public) = server();
        let (other, _) = server();
        let mut w = Witness::open(dir.path(), public).unwrap();
        assert!(matches!(
            w.observe(&head(&other, 3, 1), 10),
            Err(WitnessError::BadSignature { seq: 3 })
        ));
        assert!(matches!(
            w.observe("3 00", 10),
            Err(WitnessError::Malformed(_))
        ));
        assert!(w.held().is_none());
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}
