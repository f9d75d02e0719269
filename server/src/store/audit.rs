//! The audit trail's rows: what a use case appends in its own transaction, and what the
//! chain's reader, signer and verifier ([`crate::audit`]) read.
//!
//! Appending links the chain: the new entry's id follows the last one and its hash covers the
//! last one's ([`crate::domain::audit::entry_hash`]). That is [`AuditLog::append_audit`]'s
//! provided body, over two small methods a backend implements. Head signatures and
//! verification are [`crate::audit`]'s; a backend only stores and returns rows.

use std::ops::ControlFlow;

use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use crate::domain::audit::{EntryFields, GENESIS, entry_hash};
use crate::domain::ids::AuditId;
use crate::domain::time::{Date, Timestamp};

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

/// One entry exactly as stored: what the hash covers, and the hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Position in the chain.
    pub id: i64,
    /// `at`, RFC 3339 as stored.
    pub at: String,
    /// The actor.
    pub actor: String,
    /// The action.
    pub action: String,
    /// The subject.
    pub subject: String,
    /// `before_json` as stored.
    pub before_json: Option<String>,
    /// `after_json` as stored.
    pub after_json: Option<String>,
    /// The previous entry's hash as stored.
    pub prev_hash: Vec<u8>,
    /// This entry's hash as stored.
    pub hash: Vec<u8>,
}

impl StoredEntry {
    /// The fields the hash covers.
    pub fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            at: &self.at,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            before: self.before_json.as_deref(),
            after: self.after_json.as_deref(),
        }
    }
}

/// A signed chain head as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    /// The entry signed.
    pub entry_id: i64,
    /// Its hash as signed.
    pub hash: Vec<u8>,
    /// The Ed25519 signature.
    pub signature: Vec<u8>,
    /// When it was signed (RFC 3339 as stored).
    pub at: String,
}

/// Which audit entries to show. Text filters match a prefix of the column (`device:` finds
/// every device entry); `actor` matches exactly. Dates are UTC days, both ends included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exact actor.
    pub actor: Option<String>,
    /// Action prefix, e.g. `user.`.
    pub action: Option<String>,
    /// Subject prefix, e.g. `device:gate-1`.
    pub subject: Option<String>,
    /// First day.
    pub from: Option<Date>,
    /// Last day.
    pub to: Option<Date>,
    /// Only entries with an id below this (the next page back).
    pub before: Option<i64>,
}

/// Reading and appending the hash-chained audit trail.
pub trait AuditLog {
    /// Append `entry` after the current head, in this transaction: it commits or rolls back
    /// with the change it describes. The id follows the last entry's, the hash links to it.
    fn append_audit(&mut self, entry: &NewEntry) -> Result<AuditId, StoreError> {
        let (id, prev) = match self.last_audit_entry()? {
            Some((id, hash)) => (id.0 + 1, hash),
            None => (1, GENESIS.to_vec()),
        };
        let stored = StoredEntry {
            id,
            at: entry.at.to_string(),
            actor: entry.actor.clone(),
            action: entry.action.to_owned(),
            subject: entry.subject.clone(),
            before_json: entry.before.as_ref().map(Value::to_string),
            after_json: entry.after.as_ref().map(Value::to_string),
            hash: Vec::new(),
            prev_hash: prev,
        };
        let hash = entry_hash(&stored.prev_hash, id, &stored.fields());
        self.insert_audit_entry(&StoredEntry {
            hash: hash.to_vec(),
            ..stored
        })?;
        Ok(AuditId(id))
    }
    /// The last entry's id and hash, if there is one.
    fn last_audit_entry(&mut self) -> Result<Option<(AuditId, Vec<u8>)>, StoreError>;
    /// Write an entry row as given (its id and hashes computed by [`AuditLog::append_audit`]).
    fn insert_audit_entry(&mut self, entry: &StoredEntry) -> Result<(), StoreError>;
    /// The id of the latest signed head, if any.
    fn last_signed_head(&mut self) -> Result<Option<AuditId>, StoreError>;
    /// Write a signed head.
    fn insert_audit_head(
        &mut self,
        entry_id: AuditId,
        hash: &[u8],
        signature: &[u8],
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Entries with id greater than `after`, oldest first, at most `limit`.
    fn audit_after(&mut self, after: AuditId, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
    /// Entries with id greater than `after` whose actor, action or subject holds every one
    /// of `words` (any case), oldest first, at most `limit`.
    fn audit_search(
        &mut self,
        after: AuditId,
        words: &[String],
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Entries matching `filter`, newest first, at most `limit`.
    fn audit_filtered(
        &mut self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError>;
    /// Number of entries.
    fn audit_count(&mut self) -> Result<i64, StoreError>;
    /// What an entry's subject (`KIND:ID`) is called today, for the auditor's page: a
    /// carrier's control number, a user's name, a device with its zone's name, a zone's or a
    /// person's name; `None` for other kinds or unknown ids. Never a carrier title.
    fn audit_subject_label(&mut self, kind: &str, id: &str) -> Result<Option<String>, StoreError>;
    /// Signed heads, newest first, at most `limit` (`None`: all).
    fn audit_heads(&mut self, limit: Option<u32>) -> Result<Vec<SignedHead>, StoreError>;
    /// Every entry, oldest first, handed to `visit` until it breaks.
    fn scan_audit(
        &mut self,
        visit: &mut dyn FnMut(StoredEntry) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;
}
