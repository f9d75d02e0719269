//! The audit trail's use cases: reading it (auditors), signing its head (the server, on a
//! timer and at shutdown), verifying it (the auditor's page and `custos-server audit verify`).
//!
//! The chain's logic is [`crate::audit`]'s; these run it in one transaction of the store.

use super::ServiceError;
use crate::AppState;
use crate::audit::{self, AuditRecord, PAGE_MAX, Verdict};
use crate::auth::capability::AuditorCap;
use crate::domain::audit::hex;
use crate::domain::ids::AuditId;
use crate::store::Store;
use crate::store::audit::AuditFilter;

/// Entries with id greater than `after`, oldest first, at most `limit` (capped at
/// [`PAGE_MAX`]).
pub async fn entries(
    app: &AppState,
    _cap: &AuditorCap,
    after: AuditId,
    limit: u32,
) -> Result<Vec<AuditRecord>, ServiceError> {
    let limit = limit.min(PAGE_MAX);
    app.store()
        .query(move |tx| Ok(tx.audit_after(after, limit)?))
        .await
}

/// One audit entry as the auditor's page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain.
    pub id: i64,
    /// When, as stored (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub subject: String,
    /// State before, JSON text.
    pub before: Option<String>,
    /// State after, JSON text.
    pub after: Option<String>,
    /// The previous entry's hash, hex.
    pub prev_hash: String,
    /// This entry's hash, hex.
    pub hash: String,
}

/// Entries matching `filter`, newest first, at most `limit`.
pub async fn filtered(
    app: &AppState,
    _cap: &AuditorCap,
    filter: AuditFilter,
    limit: u32,
) -> Result<Vec<AuditRow>, ServiceError> {
    let found = app
        .store()
        .query(move |tx| tx.audit_filtered(&filter, limit))
        .await?;
    Ok(found
        .into_iter()
        .map(|e| AuditRow {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            before: e.before_json,
            after: e.after_json,
            prev_hash: hex(&e.prev_hash),
            hash: hex(&e.hash),
        })
        .collect())
}

/// A signed chain head as the auditor's page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadView {
    /// The entry signed.
    pub entry_id: i64,
    /// Its hash, hex.
    pub hash: String,
    /// The Ed25519 signature, hex.
    pub signature: String,
    /// When it was signed (RFC 3339).
    pub at: String,
}

/// The latest signed heads, newest first, at most `limit`.
pub async fn heads(
    app: &AppState,
    _cap: &AuditorCap,
    limit: u32,
) -> Result<Vec<HeadView>, ServiceError> {
    let found = app
        .store()
        .query(move |tx| tx.audit_heads(Some(limit)))
        .await?;
    Ok(found
        .into_iter()
        .map(|h| HeadView {
            entry_id: h.entry_id,
            hash: hex(&h.hash),
            signature: hex(&h.signature),
            at: h.at,
        })
        .collect())
}

/// Sign the chain head now with the server's key (nothing if it is signed already); the
/// signed entry.
pub async fn sign_head(app: &AppState) -> Result<Option<AuditId>, ServiceError> {
    let key = app.server_key_arc();
    let at = app.now();
    let signed = app
        .store()
        .transact(move |tx| -> Result<_, ServiceError> { Ok(audit::sign_head(tx, &key, at)?) })
        .await?;
    if let Some(entry) = signed {
        tracing::debug!(%entry, "signed audit head");
    }
    Ok(signed)
}

/// Verify the whole chain against the server's own key, for an auditor.
pub async fn verify(app: &AppState, _cap: &AuditorCap) -> Result<Verdict, ServiceError> {
    verify_chain(app.store(), app.server_key().public_key()).await
}

/// Verify the whole chain against `public_key`, in one read transaction: what `custos-server
/// audit verify` runs with the data directory's files (no session: file access is the
/// authority there).
pub async fn verify_chain(store: &Store, public_key: [u8; 32]) -> Result<Verdict, ServiceError> {
    store
        .query(move |tx| Ok(audit::verify(tx, &public_key)?))
        .await
}
