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
//! - An entry is written by the same store job, in the same transaction, as the state change it
//!   describes: both commit or neither.
//! - Entries never hold passwords, password hashes, session tokens or carrier titles.
//!
//! # Entry hash (frozen layout, version 1)
//! ```text
//! hash = SHA-256(
//!     "custos-audit-entry-v1"         21 bytes, domain separation
//!     prev_hash                       32 bytes (entry 1: 32 zero bytes)
//!     id                              8 bytes, big-endian signed
//!     field(at)                       RFC 3339 text as stored
//!     field(actor)
//!     field(action)
//!     field(subject)
//!     opt(before_json)                JSON text as stored
//!     opt(after_json)
//! )
//! field(s) = u32 big-endian byte length of s || UTF-8 bytes of s
//! opt(x)   = 0x00 if absent | 0x01 || field(x) if present
//! ```
//! # Signed head (frozen layout, version 1)
//! ```text
//! signature = Ed25519(server key, "custos-audit-head-v1" (20 bytes) || entry_id (8 bytes BE) || hash (32 bytes))
//! ```

use std::sync::Arc;

use ring::digest::{Context, SHA256};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use crate::auth::capability::AuditorCap;
use crate::domain::ids::AuditId;
use crate::domain::time::Timestamp;
use crate::keys::{ServerKey, verify_signature};
use crate::store::{Store, StoreError};

/// The `prev_hash` of entry 1.
pub const GENESIS: [u8; 32] = [0; 32];
const ENTRY_TAG: &[u8] = b"custos-audit-entry-v1";
const HEAD_TAG: &[u8] = b"custos-audit-head-v1";

/// The most entries one `GET /audit` page returns.
pub const PAGE_MAX: u32 = 1000;

/// A new entry, before it has an id and a hash.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// When the change happened.
    pub at: Timestamp,
    /// Who made it: a username, or `@init` / `@server` for the system.
    pub actor: String,
    /// What was done, e.g. `user.create`.
    pub action: &'static str,
    /// What it was done to, e.g. `user:3`.
    pub subject: String,
    /// State before (absent for a creation).
    pub before: Option<Value>,
    /// State after (absent for a deletion).
    pub after: Option<Value>,
}

pub use crate::keys::hex;

/// The text fields of an entry exactly as stored, which is what the hash covers.
struct Fields<'a> {
    at: &'a str,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    before: Option<&'a str>,
    after: Option<&'a str>,
}

fn entry_hash(prev: &[u8], id: i64, f: &Fields<'_>) -> [u8; 32] {
    fn field(ctx: &mut Context, s: &str) {
        // Lengths beyond u32 cannot occur: request bodies are limited far below 4 GiB.
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        ctx.update(&len.to_be_bytes());
        ctx.update(s.as_bytes());
    }
    fn opt(ctx: &mut Context, s: Option<&str>) {
        match s {
            None => ctx.update(&[0]),
            Some(s) => {
                ctx.update(&[1]);
                field(ctx, s);
            }
        }
    }
    let mut ctx = Context::new(&SHA256);
    ctx.update(ENTRY_TAG);
    ctx.update(prev);
    ctx.update(&id.to_be_bytes());
    field(&mut ctx, f.at);
    field(&mut ctx, f.actor);
    field(&mut ctx, f.action);
    field(&mut ctx, f.subject);
    opt(&mut ctx, f.before);
    opt(&mut ctx, f.after);
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn head_message(entry_id: i64, hash: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEAD_TAG.len() + 8 + hash.len());
    msg.extend_from_slice(HEAD_TAG);
    msg.extend_from_slice(&entry_id.to_be_bytes());
    msg.extend_from_slice(hash);
    msg
}

fn last_entry(conn: &Connection) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Append an entry. Call only from a store write job, in the transaction of the change.
pub fn append(conn: &Connection, entry: &NewEntry) -> Result<AuditId, StoreError> {
    let (id, prev) = match last_entry(conn)? {
        Some((id, hash)) => (id + 1, hash),
        None => (1, GENESIS.to_vec()),
    };
    let at = entry.at.to_string();
    let before = entry.before.as_ref().map(Value::to_string);
    let after = entry.after.as_ref().map(Value::to_string);
    let hash = entry_hash(
        &prev,
        id,
        &Fields {
            at: &at,
            actor: &entry.actor,
            action: entry.action,
            subject: &entry.subject,
            before: before.as_deref(),
            after: after.as_deref(),
        },
    );
    conn.prepare_cached(
        "INSERT INTO audit (id, at, actor, action, subject, before_json, after_json, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(rusqlite::params![
        id,
        at,
        entry.actor,
        entry.action,
        entry.subject,
        before,
        after,
        prev,
        &hash[..]
    ])?;
    Ok(AuditId(id))
}

/// Sign the current chain head unless it is already signed. Returns the signed entry id.
pub fn sign_head(
    conn: &Connection,
    key: &ServerKey,
    at: Timestamp,
) -> Result<Option<AuditId>, StoreError> {
    let Some((id, hash)) = last_entry(conn)? else {
        return Ok(None);
    };
    let signed: Option<i64> = conn
        .prepare_cached("SELECT max(entry_id) FROM audit_heads")?
        .query_row([], |r| r.get(0))?;
    if signed == Some(id) {
        return Ok(None);
    }
    let signature = key.sign(&head_message(id, &hash));
    conn.prepare_cached(
        "INSERT INTO audit_heads (entry_id, hash, signature, at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![id, hash, &signature[..], at])?;
    Ok(Some(AuditId(id)))
}

/// One entry as the auditor sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Position in the chain.
    pub id: AuditId,
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub subject: String,
    /// State before.
    pub before: Option<Value>,
    /// State after.
    pub after: Option<Value>,
    /// Previous entry's hash, hex.
    pub prev_hash: String,
    /// This entry's hash, hex.
    pub hash: String,
}

fn parse_json(text: Option<String>) -> Result<Option<Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(StoreError::from)
}

/// Entries with id greater than `after`, oldest first, at most `limit`.
pub fn list_after(
    conn: &Connection,
    after: AuditId,
    limit: u32,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor, action, subject, before_json, after_json, prev_hash, hash
         FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![after, limit], |r| {
        Ok((
            r.get::<_, AuditId>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Vec<u8>>(7)?,
            r.get::<_, Vec<u8>>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at, actor, action, subject, before, after, prev, hash) = row?;
        out.push(AuditRecord {
            id,
            at,
            actor,
            action,
            subject,
            before: parse_json(before)?,
            after: parse_json(after)?,
            prev_hash: hex(&prev),
            hash: hex(&hash),
        });
    }
    Ok(out)
}

/// Number of entries.
pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?)
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
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Problem::Missing => "entry missing",
            Problem::BrokenLink => "prev_hash does not link to the previous entry",
            Problem::HashMismatch => "content does not match its hash",
            Problem::BadHeadSignature => "signed head has an invalid signature",
            Problem::HeadMismatch => "signed head does not match the chain",
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

/// Recompute the whole chain and check every signed head against `public_key`.
///
/// Reads in one transaction, so a concurrent append cannot make a consistent chain look broken.
pub fn verify(conn: &Connection, public_key: &[u8; 32]) -> Result<Verdict, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let mut heads = std::collections::BTreeMap::new();
    {
        let mut stmt = tx.prepare("SELECT entry_id, hash, signature FROM audit_heads")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?),
            ))
        })?;
        for row in rows {
            let (id, head) = row?;
            heads.insert(id, head);
        }
    }
    let broken = |id: i64, problem| {
        Ok(Verdict::Broken {
            entry: AuditId(id),
            problem,
        })
    };
    let mut stmt = tx.prepare(
        "SELECT id, at, actor, action, subject, before_json, after_json, prev_hash, hash
         FROM audit ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS.to_vec();
    let mut expected_id = 1_i64;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        if id != expected_id {
            return broken(expected_id, Problem::Missing);
        }
        let stored_prev: Vec<u8> = r.get(7)?;
        let stored_hash: Vec<u8> = r.get(8)?;
        if stored_prev != prev {
            return broken(id, Problem::BrokenLink);
        }
        let (at, actor, action, subject): (String, String, String, String) =
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let (before, after): (Option<String>, Option<String>) = (r.get(5)?, r.get(6)?);
        let computed = entry_hash(
            &prev,
            id,
            &Fields {
                at: &at,
                actor: &actor,
                action: &action,
                subject: &subject,
                before: before.as_deref(),
                after: after.as_deref(),
            },
        );
        if computed[..] != stored_hash[..] {
            return broken(id, Problem::HashMismatch);
        }
        if let Some((head_hash, signature)) = heads.get(&id) {
            if !verify_signature(public_key, &head_message(id, head_hash), signature) {
                return broken(id, Problem::BadHeadSignature);
            }
            if head_hash[..] != computed[..] {
                return broken(id, Problem::HeadMismatch);
            }
        }
        prev = stored_hash;
        expected_id += 1;
    }
    // A signed head beyond the last entry means the tail was cut off.
    if heads.range(expected_id..).next().is_some() {
        return broken(expected_id, Problem::Missing);
    }
    Ok(Verdict::Intact {
        entries: expected_id - 1,
        signed_through: heads.keys().next_back().copied().map(AuditId),
    })
}

impl Store {
    /// Entries after `after` (auditors only).
    pub async fn audit_after(
        &self,
        _cap: &AuditorCap,
        after: AuditId,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = limit.min(PAGE_MAX);
        self.read(move |c| list_after(c, after, limit)).await
    }

    /// Sign the chain head now (no-op if already signed).
    pub async fn sign_audit_head(
        &self,
        key: Arc<ServerKey>,
        at: Timestamp,
    ) -> Result<Option<AuditId>, StoreError> {
        self.write(move |c| sign_head(c, &key, at)).await
    }

    /// Verify the whole chain.
    pub async fn verify_audit(&self, public_key: [u8; 32]) -> Result<Verdict, StoreError> {
        self.read(move |c| verify(c, &public_key)).await
    }

    /// Number of audit entries.
    pub async fn audit_count(&self) -> Result<i64, StoreError> {
        self.read(count).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::migrations::migrate;

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

    fn chain(n: i64) -> (Connection, ServerKey, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::generate(&dir.path().join("k")).unwrap();
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for i in 1..=n {
            assert_eq!(append(&conn, &entry(i)).unwrap(), AuditId(i));
        }
        (conn, key, dir)
    }

    /// Run `sql` with the append-only triggers removed, as an attacker with file access would.
    fn tamper(conn: &Connection, sql: &str) {
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = OFF; DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
             DROP TRIGGER audit_heads_no_update; DROP TRIGGER audit_heads_no_delete; {sql}"
        ))
        .unwrap();
    }

    #[test]
    fn the_hash_layout_is_frozen() {
        // Known answer for the documented layout; changing the layout breaks every stored chain.
        let fields = Fields {
            at: "2025-01-01T00:00:00Z",
            actor: "a",
            action: "x",
            subject: "s",
            before: None,
            after: Some("{}"),
        };
        let mut manual = Vec::new();
        manual.extend_from_slice(b"custos-audit-entry-v1");
        manual.extend_from_slice(&[0; 32]);
        manual.extend_from_slice(&1_i64.to_be_bytes());
        for s in ["2025-01-01T00:00:00Z", "a", "x", "s"] {
            manual.extend_from_slice(&(s.len() as u32).to_be_bytes());
            manual.extend_from_slice(s.as_bytes());
        }
        manual.extend_from_slice(&[0, 1, 0, 0, 0, 2, b'{', b'}']);
        let expected = ring::digest::digest(&SHA256, &manual);
        assert_eq!(entry_hash(&GENESIS, 1, &fields)[..], *expected.as_ref());
        // Moving a byte between adjacent fields changes the hash (length prefixes).
        let shifted = Fields {
            actor: "ax",
            action: "",
            ..fields
        };
        assert_ne!(
            entry_hash(&GENESIS, 1, &shifted),
            entry_hash(&GENESIS, 1, &fields)
        );
    }

    #[test]
    fn entries_link_to_their_predecessor() {
        let (conn, key, _dir) = chain(3);
        let rows = list_after(&conn, AuditId(0), 10).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].prev_hash, hex(&GENESIS));
        assert_eq!(rows[1].prev_hash, rows[0].hash);
        assert_eq!(rows[2].prev_hash, rows[1].hash);
        assert_eq!(rows[2].after, Some(json!({"id": "z3", "level": "S"})));
        assert_eq!(list_after(&conn, AuditId(2), 10).unwrap().len(), 1);
        assert_eq!(
            verify(&conn, &key.public_key()).unwrap(),
            Verdict::Intact {
                entries: 3,
                signed_through: None
            }
        );
    }

    #[test]
    fn heads_are_signed_once_per_new_entry() {
        let (conn, key, _dir) = chain(2);
        assert_eq!(sign_head(&conn, &key, t(1)).unwrap(), Some(AuditId(2)));
        assert_eq!(sign_head(&conn, &key, t(2)).unwrap(), None);
        append(&conn, &entry(3)).unwrap();
        assert_eq!(sign_head(&conn, &key, t(3)).unwrap(), Some(AuditId(3)));
        assert_eq!(
            verify(&conn, &key.public_key()).unwrap(),
            Verdict::Intact {
                entries: 3,
                signed_through: Some(AuditId(3))
            }
        );
        let mut empty = Connection::open_in_memory().unwrap();
        migrate(&mut empty).unwrap();
        assert_eq!(sign_head(&empty, &key, t(1)).unwrap(), None);
    }

    #[test]
    fn an_edited_entry_is_reported_at_its_own_id() {
        for column in [
            "actor = 'mallory'",
            "after_json = '{}'",
            "before_json = '{}'",
            "at = '2020-01-01T00:00:00Z'",
        ] {
            let (conn, key, _dir) = chain(5);
            tamper(&conn, &format!("UPDATE audit SET {column} WHERE id = 3"));
            assert_eq!(
                verify(&conn, &key.public_key()).unwrap(),
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
        let (conn, key, _dir) = chain(5);
        tamper(&conn, "DELETE FROM audit WHERE id = 2");
        assert_eq!(
            verify(&conn, &key.public_key()).unwrap(),
            Verdict::Broken {
                entry: AuditId(2),
                problem: Problem::Missing
            }
        );
    }

    #[test]
    fn a_rehashed_entry_breaks_the_next_link() {
        let (conn, key, _dir) = chain(4);
        // Rewrite entry 2 and recompute its own hash consistently: entry 3 no longer links.
        let prev: Vec<u8> = conn
            .query_row("SELECT hash FROM audit WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        let forged = entry_hash(
            &prev,
            2,
            &Fields {
                at: &t(1_700_000_002).to_string(),
                actor: "mallory",
                action: "zone.create",
                subject: "zone:z2",
                before: None,
                after: Some(r#"{"id":"z2","level":"S"}"#),
            },
        );
        conn.execute_batch("DROP TRIGGER audit_no_update").unwrap();
        conn.execute(
            "UPDATE audit SET actor = 'mallory', hash = ?1 WHERE id = 2",
            [&forged[..]],
        )
        .unwrap();
        assert_eq!(
            verify(&conn, &key.public_key()).unwrap(),
            Verdict::Broken {
                entry: AuditId(3),
                problem: Problem::BrokenLink
            }
        );
    }

    #[test]
    fn a_cut_off_tail_is_caught_by_the_signed_head() {
        let (conn, key, _dir) = chain(4);
        sign_head(&conn, &key, t(1)).unwrap();
        tamper(&conn, "DELETE FROM audit WHERE id = 4");
        assert_eq!(
            verify(&conn, &key.public_key()).unwrap(),
            Verdict::Broken {
                entry: AuditId(4),
                problem: Problem::Missing
            }
        );
    }

    #[test]
    fn a_forged_head_signature_or_foreign_key_is_refused() {
        let (conn, key, dir) = chain(2);
        sign_head(&conn, &key, t(1)).unwrap();
        let other = ServerKey::generate(&dir.path().join("other")).unwrap();
        assert_eq!(
            verify(&conn, &other.public_key()).unwrap(),
            Verdict::Broken {
                entry: AuditId(2),
                problem: Problem::BadHeadSignature
            }
        );
        tamper(&conn, "UPDATE audit_heads SET signature = zeroblob(64)");
        assert_eq!(
            verify(&conn, &key.public_key()).unwrap(),
            Verdict::Broken {
                entry: AuditId(2),
                problem: Problem::BadHeadSignature
            }
        );
    }
}
