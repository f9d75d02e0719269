//! The audit trail: append-only, hash-chained, with signed heads.
//!
//! # Guarantees
//! - Append-only in the database: triggers abort every `UPDATE` and `DELETE` on `audit` and
//!   `audit_heads` (see `store::migrations`), whoever asks, the administrator included.
//! - Tamper-evident outside it: each entry's `hash` covers its content and the previous entry's
//!   hash, and the server periodically signs the head of the chain with its Ed25519 key. Editing
//!   a row with a raw SQLite connection breaks that row's hash; deleting one breaks the dense
//!   numbering; rewriting the whole tail breaks a signed head. `custos-server audit verify`
//!   recomputes all of it.
//! - An entry is written by the use case, in the same transaction as the state change it
//!   describes ([`crate::store::AuditLog::append_audit`]): both commit or neither.
//! - Entries never hold passwords, password hashes, session tokens or carrier titles.
//!
//! # Entry hash
//! The frozen layout is [`crate::domain::audit`]'s (the store computes it when it appends).
//!
//! # Signed head (frozen layout, version 1)
//! ```text
//! signature = Ed25519(server key, "custos-audit-head-v1" (20 bytes) || entry_id (8 bytes BE) || hash (32 bytes))
//! ```
//!
//! This module is the chain's logic over the store's rows ([`crate::store::AuditLog`]): head
//! signatures and verification. It has no SQL.

pub mod anchor;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use custos_protocol::uplink::AuditHead;

use crate::domain::audit::{GENESIS, entry_hash};
use crate::domain::ids::AuditId;
use crate::domain::time::Timestamp;
use crate::keys::{ServerKey, verify_signature};
use crate::store::{AuditLog, StoreError};

pub use crate::domain::audit::hex;
pub use crate::store::audit::{AuditRecord, NewEntry};

/// The most entries one `GET /audit` page returns.
pub const PAGE_MAX: u32 = 1000;

/// The signed bytes of a head (the layout is the protocol crate's, shared with the devices
/// that witness heads: [`custos_protocol::uplink::audit_head_message`]).
fn head_message(entry_id: i64, hash: &[u8]) -> Vec<u8> {
    // Entry ids are dense from 1: never negative.
    custos_protocol::uplink::audit_head_message(u64::try_from(entry_id).unwrap_or(0), hash)
}

/// The latest signed head as the devices and the anchor file get it, if one exists and its
/// stored hash and signature have the right lengths.
pub fn latest_head(log: &mut dyn AuditLog) -> Result<Option<AuditHead>, StoreError> {
    let Some(head) = log.audit_heads(Some(1))?.into_iter().next() else {
        return Ok(None);
    };
    Ok(as_head(&head.hash, &head.signature, head.entry_id))
}

fn as_head(hash: &[u8], signature: &[u8], entry_id: i64) -> Option<AuditHead> {
    Some(AuditHead {
        seq: u64::try_from(entry_id).ok()?,
        hash: hash.try_into().ok()?,
        signature: signature.try_into().ok()?,
    })
}

/// Sign the current chain head unless it is already signed. Returns the signed entry id.
pub fn sign_head(
    log: &mut dyn AuditLog,
    key: &ServerKey,
    at: Timestamp,
) -> Result<Option<AuditId>, StoreError> {
    let Some((id, hash)) = log.last_audit_entry()? else {
        return Ok(None);
    };
    if log.last_signed_head()? == Some(id) {
        return Ok(None);
    }
    let signature = key.sign(&head_message(id.0, &hash));
    log.insert_audit_head(id, &hash, &signature, at)?;
    Ok(Some(id))
}

/// What is wrong at the first bad entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The entry with this id is missing (ids must be dense).
    Missing,
    /// `prev_hash` is not the previous entry's hash.
    BrokenLink,
    /// The content does not match `hash`.
    HashMismatch,
    /// A signed head for this entry carries a bad signature.
    BadHeadSignature,
    /// A correctly signed head for this entry names a different hash.
    HeadMismatch,
    /// The trail ends before an external signed head (anchor file, witness): every entry
    /// from this one through `through` is missing (the tail was cut off, or all of it).
    Truncated {
        /// The newest external head's entry.
        through: AuditId,
    },
    /// An external signed head for entry `through` names a different hash: the trail was
    /// rewritten somewhere from this entry (the one after the last external head that
    /// matched) through `through`.
    Diverges {
        /// The external head's entry that does not match.
        through: AuditId,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Problem::Missing => "entry missing",
            Problem::BrokenLink => "prev_hash does not link to the previous entry",
            Problem::HashMismatch => "content does not match its hash",
            Problem::BadHeadSignature => "signed head has an invalid signature",
            Problem::HeadMismatch => "signed head does not match the chain",
            Problem::Truncated { through } => {
                return write!(
                    f,
                    "entries missing through {through}, which an external signed head holds"
                );
            }
            Problem::Diverges { through } => {
                return write!(
                    f,
                    "the chain differs, at or before entry {through}, from an external signed head"
                );
            }
        })
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry and every signed head checks out.
    Intact {
        /// Entries checked.
        entries: i64,
        /// The latest signed entry, if any head exists.
        signed_through: Option<AuditId>,
    },
    /// The first entry that fails, and why.
    Broken {
        /// The first bad entry.
        entry: AuditId,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// Recompute the whole chain and check every signed head against `public_key`, and the chain
/// against `external` heads kept outside the database (anchor file, device witnesses; their
/// signatures already checked, see [`anchor::read_heads`]): the chain must hold each one's
/// entry with exactly its hash.
///
/// Call it inside one read transaction ([`crate::store::Store::query`] is one), so a
/// concurrent append cannot make a consistent chain look broken.
pub fn verify(
    log: &mut dyn AuditLog,
    public_key: &[u8; 32],
    external: &[AuditHead],
) -> Result<Verdict, StoreError> {
    // Two validly signed external heads with different hashes for one entry are a fork in
    // themselves: the one the chain does not hold is reported when its entry is reached.
    let mut outside: BTreeMap<i64, Vec<[u8; 32]>> = BTreeMap::new();
    for head in external {
        let seq = i64::try_from(head.seq).unwrap_or(i64::MAX);
        outside.entry(seq).or_default().push(head.hash);
    }
    // The entry after the last external head the chain matched: where a divergence begins.
    let mut confirmed_through = 0_i64;
    let heads: BTreeMap<i64, (Vec<u8>, Vec<u8>)> = log
        .audit_heads(None)?
        .into_iter()
        .map(|h| (h.entry_id, (h.hash, h.signature)))
        .collect();
    let mut prev = GENESIS.to_vec();
    let mut expected_id = 1_i64;
    let mut broken = None;
    log.scan_audit(&mut |entry| {
        let id = entry.id;
        let problem = if id != expected_id {
            Some((expected_id, Problem::Missing))
        } else if entry.prev_hash != prev {
            Some((id, Problem::BrokenLink))
        } else {
            let computed = entry_hash(&prev, id, &entry.fields());
            if computed[..] != entry.hash[..] {
                Some((id, Problem::HashMismatch))
            } else {
                match heads.get(&id) {
                    Some((head_hash, signature))
                        if !verify_signature(
                            public_key,
                            &head_message(id, head_hash),
                            signature,
                        ) =>
                    {
                        Some((id, Problem::BadHeadSignature))
                    }
                    Some((head_hash, _)) if head_hash[..] != computed[..] => {
                        Some((id, Problem::HeadMismatch))
                    }
                    _ => match outside.get(&id) {
                        Some(hashes) if hashes.iter().any(|h| h[..] != computed[..]) => Some((
                            confirmed_through + 1,
                            Problem::Diverges {
                                through: AuditId(id),
                            },
                        )),
                        Some(_) => {
                            confirmed_through = id;
                            None
                        }
                        None => None,
                    },
                }
            }
        };
        if let Some(found) = problem {
            broken = Some(found);
            return ControlFlow::Break(());
        }
        prev = entry.hash;
        expected_id += 1;
        ControlFlow::Continue(())
    })?;
    if let Some((id, problem)) = broken {
        return Ok(Verdict::Broken {
            entry: AuditId(id),
            problem,
        });
    }
    // An external head beyond the last entry: the tail (or everything) was cut off, heads
    // and all.
    if let Some((&through, _)) = outside.range(expected_id..).next_back() {
        return Ok(Verdict::Broken {
            entry: AuditId(expected_id),
            problem: Problem::Truncated {
                through: AuditId(through),
            },
        });
    }
    // A signed head beyond the last entry means the tail was cut off.
    if heads.range(expected_id..).next().is_some() {
        return Ok(Verdict::Broken {
            entry: AuditId(expected_id),
            problem: Problem::Missing,
        });
    }
    Ok(Verdict::Intact {
        entries: expected_id - 1,
        signed_through: heads.keys().next_back().copied().map(AuditId),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::audit::EntryFields;
    use crate::store::audit::StoredEntry;
    use crate::store::test_support::MemoryDb;

    fn t(unix: i64) -> Timestamp {
        Timestamp::from_unix(unix).unwrap()
    }

    fn entry(n: i64) -> NewEntry {
        NewEntry {
            at: t(1_700_000_000 + n),
            actor: "alice".to_owned(),
            action: "zone.create",
            subject: format!("zone:z{n}"),
            before: None,
            after: Some(json!({"id": format!("z{n}"), "level": "S"})),
        }
    }

    fn chain(n: i64) -> (MemoryDb, ServerKey, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::generate(&dir.path().join("k")).unwrap();
        let db = MemoryDb::new();
        for i in 1..=n {
            assert_eq!(db.tx().append_audit(&entry(i)).unwrap(), AuditId(i));
        }
        (db, key, dir)
    }

    fn verified(db: &MemoryDb, key: &ServerKey) -> Verdict {
        verify(&mut db.tx(), &key.public_key(), &[]).unwrap()
    }

    fn stored(db: &MemoryDb, id: i64) -> StoredEntry {
        let mut found = None;
        db.tx()
            .scan_audit(&mut |e| {
                if e.id == id {
                    found = Some(e);
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        found.unwrap()
    }

    #[test]
    fn entries_link_to_their_predecessor() {
        let (db, key, _dir) = chain(3);
        let rows = db.tx().audit_after(AuditId(0), 10).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].prev_hash, hex(&GENESIS));
        assert_eq!(rows[1].prev_hash, rows[0].hash);
        assert_eq!(rows[2].prev_hash, rows[1].hash);
        assert_eq!(rows[2].after, Some(json!({"id": "z3", "level": "S"})));
        assert_eq!(db.tx().audit_after(AuditId(2), 10).unwrap().len(), 1);
        assert_eq!(db.tx().audit_count().unwrap(), 3);
        assert_eq!(
            verified(&db, &key),
            Verdict::Intact {
                entries: 3,
                signed_through: None
            }
        );
    }

    #[test]
    fn heads_are_signed_once_per_new_entry() {
        let (db, key, _dir) = chain(2);
        assert_eq!(
            sign_head(&mut db.tx(), &key, t(1)).unwrap(),
            Some(AuditId(2))
        );
        assert_eq!(sign_head(&mut db.tx(), &key, t(2)).unwrap(), None);
        db.tx().append_audit(&entry(3)).unwrap();
        assert_eq!(
            sign_head(&mut db.tx(), &key, t(3)).unwrap(),
            Some(AuditId(3))
        );
        assert_eq!(
            verified(&db, &key),
            Verdict::Intact {
                entries: 3,
                signed_through: Some(AuditId(3))
            }
        );
        let empty = MemoryDb::new();
        assert_eq!(sign_head(&mut empty.tx(), &key, t(1)).unwrap(), None);
    }

    #[test]
    fn an_edited_entry_is_reported_at_its_own_id() {
        for column in [
            "actor = 'mallory'",
            "after_json = '{}'",
            "before_json = '{}'",
            "at = '2020-01-01T00:00:00Z'",
        ] {
            let (db, key, _dir) = chain(5);
            db.tamper(&format!("UPDATE audit SET {column} WHERE id = 3"));
            assert_eq!(
                verified(&db, &key),
                Verdict::Broken {
                    entry: AuditId(3),
                    problem: Problem::HashMismatch
                },
                "{column}"
            );
        }
    }

    #[test]
    fn a_deleted_entry_is_reported_as_missing() {
        let (db, key, _dir) = chain(5);
        db.tamper("DELETE FROM audit WHERE id = 2");
        assert_eq!(
            verified(&db, &key),
            Verdict::Broken {
                entry: AuditId(2),
                problem: Problem::Missing
            }
        );
    }

    #[test]
    fn a_rehashed_entry_breaks_the_next_link() {
        let (db, key, _dir) = chain(4);
        // Rewrite entry 2 and recompute its own hash consistently: entry 3 no longer links.
        let prev = stored(&db, 1).hash;
        let forged = entry_hash(
            &prev,
            2,
            &EntryFields {
                at: &t(1_700_000_002).to_string(),
                actor: "mallory",
                action: "zone.create",
                subject: "zone:z2",
                before: None,
                after: Some(r#"{"id":"z2","level":"S"}"#),
            },
        );
        db.tamper(&format!(
            "UPDATE audit SET actor = 'mallory', hash = X'{}' WHERE id = 2",
            hex(&forged)
        ));
        assert_eq!(stored(&db, 2).hash, forged);
        assert_eq!(
            verified(&db, &key),
            Verdict::Broken {
                entry: AuditId(3),
                problem: Problem::BrokenLink
            }
        );
    }

    #[test]
    fn a_cut_off_tail_is_caught_by_the_signed_head() {
        let (db, key, _dir) = chain(4);
        sign_head(&mut db.tx(), &key, t(1)).unwrap();
        db.tamper("DELETE FROM audit WHERE id = 4");
        assert_eq!(
            verified(&db, &key),
            Verdict::Broken {
                entry: AuditId(4),
                problem: Problem::Missing
            }
        );
    }

    #[test]
    fn a_forged_head_signature_or_foreign_key_is_refused() {
        let (db, key, dir) = chain(2);
        sign_head(&mut db.tx(), &key, t(1)).unwrap();
        let other = ServerKey::generate(&dir.path().join("other")).unwrap();
        assert_eq!(
            verified(&db, &other),
            Verdict::Broken {
                entry: AuditId(2),
                problem: Problem::BadHeadSignature
            }
        );
        db.tamper("UPDATE audit_heads SET signature = zeroblob(64)");
        assert_eq!(
            verified(&db, &key),
            Verdict::Broken {
                entry: AuditId(2),
                problem: Problem::BadHeadSignature
            }
        );
    }

    fn external(db: &MemoryDb) -> Vec<AuditHead> {
        db.tx()
            .audit_heads(None)
            .unwrap()
            .iter()
            .filter_map(|h| as_head(&h.hash, &h.signature, h.entry_id))
            .collect()
    }

    #[test]
    fn external_heads_catch_a_cut_tail_an_empty_trail_and_a_rewrite() {
        let (db, key, _dir) = chain(5);
        sign_head(&mut db.tx(), &key, t(1)).unwrap();
        let anchored = external(&db);
        assert_eq!(
            latest_head(&mut db.tx()).unwrap(),
            anchored.first().copied()
        );
        let check = |db: &MemoryDb| verify(&mut db.tx(), &key.public_key(), &anchored).unwrap();
        assert_eq!(
            check(&db),
            Verdict::Intact {
                entries: 5,
                signed_through: Some(AuditId(5))
            }
        );
        db.tamper(
            "DELETE FROM audit WHERE id > 2; DELETE FROM audit_heads;
             CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT 1; END;
             CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT 1; END;
             CREATE TRIGGER audit_heads_no_update BEFORE UPDATE ON audit_heads BEGIN SELECT 1; END;
             CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads BEGIN SELECT 1; END;",
        );
        assert_eq!(
            check(&db),
            Verdict::Broken {
                entry: AuditId(3),
                problem: Problem::Truncated {
                    through: AuditId(5)
                }
            }
        );
        db.tamper("DELETE FROM audit");
        assert_eq!(
            check(&db),
            Verdict::Broken {
                entry: AuditId(1),
                problem: Problem::Truncated {
                    through: AuditId(5)
                }
            }
        );

        // A rewrite after a confirmed head names the range from the entry after it.
        let (db, key, _dir) = chain(3);
        sign_head(&mut db.tx(), &key, t(1)).unwrap();
        db.tx().append_audit(&entry(4)).unwrap();
        db.tx().append_audit(&entry(5)).unwrap();
        sign_head(&mut db.tx(), &key, t(2)).unwrap();
        let anchored = external(&db);
        let prev = stored(&db, 4).hash;
        let mut fields = stored(&db, 5);
        fields.actor = "mallory".to_owned();
        let forged = entry_hash(&prev, 5, &fields.fields());
        db.tamper(&format!(
            "UPDATE audit SET actor = 'mallory', hash = X'{}' WHERE id = 5;
             DELETE FROM audit_heads WHERE entry_id = 5;",
            hex(&forged)
        ));
        assert_eq!(
            verify(&mut db.tx(), &key.public_key(), &[]).unwrap(),
            Verdict::Intact {
                entries: 5,
                signed_through: Some(AuditId(3))
            },
            "without the external heads the rewrite passes"
        );
        assert_eq!(
            verify(&mut db.tx(), &key.public_key(), &anchored).unwrap(),
            Verdict::Broken {
                entry: AuditId(4),
                problem: Problem::Diverges {
                    through: AuditId(5)
                }
            }
        );
    }
}
