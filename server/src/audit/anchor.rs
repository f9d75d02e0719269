//! Signed heads kept outside the database: the anchor file, and the heads devices witness.
//!
//! # Threat model (who controls what)
//!
//! - **The database file** (`custos.db`) is controlled by whoever has write access to the
//!   data directory with the server stopped: root on the server host, its backup operator, or
//!   whoever restores a backup. Such a person can drop the append-only triggers, delete or
//!   rewrite the tail of `audit` *and* the matching rows of `audit_heads`, and the trail still
//!   verifies against itself ("intact"), down to an empty trail ("intact: 0 entries"). Nothing
//!   kept only in that file can detect it.
//! - **The server key** (`server.key`) signs heads. The same person can read it, so a head's
//!   signature proves only that *some* holder of the key signed it; a witness therefore never
//!   accepts a head older than one it already holds (a cut-back trail yields genuinely signed,
//!   older heads), see [`custos_protocol::uplink::witness_audit_head`].
//! - **The anchor file** (`[audit] anchor_file`) receives every signed head, one line each,
//!   appended and fsynced ([`AnchorFile`]). The operator puts it on storage the database's
//!   administrator does not also control by default: an append-only (`chattr +a`) file, a
//!   separate disk or NFS export owned by the security office, a log shipper's spool. Truncating
//!   or rewriting the trail then needs that storage too.
//! - **Devices** (custosd) receive the latest signed head with every batch and heartbeat
//!   answer and keep the newest one in their own data directory (witness file). Hiding a
//!   truncation then also needs every gate's and cabinet's disk.
//!
//! `custos-server audit verify --anchor FILE --witness FILE...` checks the trail against every
//! such head: the trail must contain each head's entry with exactly that hash. A head beyond
//! the trail's end names the missing range (truncation, or a wholly emptied trail); a head whose
//! entry has another hash names the diverging range (a rewritten tail). What it cannot detect:
//! changes after the newest external head (bounded by `audit_head_interval_secs` and by how
//! often devices talk), and an attacker who also controls every external copy.
//!
//! Lines are [`AuditHead::to_line`] text; a line whose signature does not verify with the
//! server's key is an error of its own (the file is not trusted blindly either).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use custos_protocol::uplink::{AuditHead, HeadLineError};

use crate::keys::verify_signature;

/// Why an anchor or witness file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The file could not be opened, read, written or synced.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a head.
    #[error("{path} line {line}: {error}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        error: HeadLineError,
    },
    /// A line's signature does not verify with the server's key.
    #[error("{path} line {line}: the head's signature does not verify with the server key")]
    BadSignature {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// An append-only file of signed heads, opened by the server when `[audit] anchor_file` is set.
#[derive(Debug)]
pub struct AnchorFile {
    path: PathBuf,
    file: File,
    /// The newest head's seq written (or found at open).
    last_seq: u64,
}

impl AnchorFile {
    /// Open (creating it with mode 0600 if needed) the anchor file at `path` for appending.
    /// The existing heads are read (not verified) to learn the last one written.
    pub fn open(path: &Path) -> Result<AnchorFile, AnchorError> {
        let io = |source| AnchorError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .append(true)
            .read(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let last_seq = read_lines(path, &file)?
            .iter()
            .map(|(_, h)| h.seq)
            .max()
            .unwrap_or(0);
        Ok(AnchorFile {
            path: path.to_owned(),
            file,
            last_seq,
        })
    }

    /// The newest head's seq in the file (0: none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Append `head` as one line and fsync, unless a head at least as new is there already.
    /// True if written.
    pub fn append(&mut self, head: &AuditHead) -> Result<bool, AnchorError> {
        if head.seq <= self.last_seq {
            return Ok(false);
        }
        let mut line = head.to_line();
        line.push('\n');
        let io = |source| AnchorError::Io {
            path: self.path.clone(),
            source,
        };
        // One write of the whole line: O_APPEND puts it at the end even if another process
        // appends too, and a crash leaves at most a torn last line (refused at verify).
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.last_seq = head.seq;
        Ok(true)
    }
}

fn read_lines(path: &Path, file: &File) -> Result<Vec<(usize, AuditHead)>, AnchorError> {
    let mut heads = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| AnchorError::Io {
            path: path.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let head = AuditHead::parse_line(&line).map_err(|error| AnchorError::Malformed {
            path: path.to_owned(),
            line: i + 1,
            error,
        })?;
        heads.push((i + 1, head));
    }
    Ok(heads)
}

/// Read every head of an anchor or witness file and check each signature with `public_key`.
pub fn read_heads(path: &Path, public_key: &[u8; 32]) -> Result<Vec<AuditHead>, AnchorError> {
    let file = File::open(path).map_err(|source| AnchorError::Io {
        path: path.to_owned(),
        source,
    })?;
    read_lines(path, &file)?
        .into_iter()
        .map(|(line, head)| {
            if verify_signature(public_key, &head.signed_message(), &head.signature) {
                Ok(head)
            } else {
                Err(AnchorError::BadSignature {
                    path: path.to_owned(),
                    line,
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::keys::ServerKey;

    fn signed(key: &ServerKey, seq: u64, fill: u8) -> AuditHead {
        let hash = [fill; 32];
        AuditHead {
            seq,
            hash,
            signature: key.sign(&custos_protocol::uplink::audit_head_message(seq, &hash)),
        }
    }

    #[test]
    fn heads_are_appended_once_read_back_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::generate(&dir.path().join("k")).unwrap();
        let path = dir.path().join("anchor");
        let mut anchor = AnchorFile::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(anchor.append(&signed(&key, 2, 1)).unwrap());
        assert!(!anchor.append(&signed(&key, 2, 1)).unwrap(), "not twice");
        assert!(anchor.append(&signed(&key, 5, 2)).unwrap());
        drop(anchor);
        let reopened = AnchorFile::open(&path).unwrap();
        assert_eq!(reopened.last_seq(), 5);
        let heads = read_heads(&path, &key.public_key()).unwrap();
        assert_eq!(heads, vec![signed(&key, 2, 1), signed(&key, 5, 2)]);

        let other = ServerKey::generate(&dir.path().join("other")).unwrap();
        assert!(matches!(
            read_heads(&path, &other.public_key()),
            Err(AnchorError::BadSignature { line: 1, .. })
        ));
        std::fs::write(&path, "1 zz\n").unwrap();
        let err = read_heads(&path, &key.public_key()).unwrap_err();
        assert!(
            matches!(err, AnchorError::Malformed { line: 1, .. }),
            "{err}"
        );
    }
}
