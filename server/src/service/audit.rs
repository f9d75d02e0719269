//! The audit trail's use cases: reading it (auditors), signing its head (the server, on a
//! timer and at shutdown), verifying it (the auditor's page and `custos-server audit verify`).
//!
//! The chain's logic is [`crate::audit`]'s; these run it in one transaction of the store.

use custos_protocol::uplink::AuditHead;

use super::ServiceError;
use super::lists::{Q_MAX, WORDS_MAX};
use crate::AppState;
use crate::audit::{self, AuditRecord, PAGE_MAX, Verdict};
use crate::auth::capability::AuditorCap;
use crate::domain::audit::hex;
use crate::domain::ids::AuditId;
use crate::domain::page::{
    Cursor, Page, PageRequest, Sort, SortKey, SortValue, decode_cursor, encode_cursor, finish,
    search_words,
};
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

/// The audit trail is read oldest first, by position in the chain.
pub const AUDIT_SORT: Sort = Sort {
    key: SortKey::int("id"),
    descending: false,
};

/// The auditor's page reads the trail newest first, by position in the chain. The chain has
/// one order (its sequence, which the hashes link), so that list pages but does not sort.
pub const AUDIT_NEWEST_FIRST: Sort = Sort {
    key: SortKey::int("id"),
    descending: true,
};

/// The cursor of a newest-first page of the trail whose last entry is `id`: the same opaque
/// cursor as the API's ([`crate::domain::page::encode_cursor`]), in the newest-first order.
pub fn newest_first_cursor(id: i64) -> String {
    encode_cursor(
        &AUDIT_NEWEST_FIRST,
        &Cursor {
            value: SortValue::Int(id),
            id,
        },
    )
}

/// The entry a newest-first page's cursor ends at (the next page holds the entries before
/// it); [`ServiceError::Invalid`] naming `cursor` for anything that is not such a cursor.
pub fn newest_first_position(cursor: &str) -> Result<AuditId, ServiceError> {
    decode_cursor(cursor.trim(), &AUDIT_NEWEST_FIRST)
        .map(|c| AuditId(c.id))
        .ok_or_else(|| {
            ServiceError::invalid("cursor", "invalid", "cursor is not a cursor of this list")
        })
}

/// One page of the trail: entries after `after` and after `cursor` (from a previous page's
/// `Link`), oldest first, at most `limit` (capped at [`PAGE_MAX`]); the next page's cursor
/// while more remain; with `q`, only entries whose actor, action or subject holds each of its
/// words. A cursor that is not one of this list, or a `q` over 200 characters, is
/// [`ServiceError::Invalid`].
pub async fn page(
    app: &AppState,
    _cap: &AuditorCap,
    after: AuditId,
    limit: u32,
    cursor: Option<&str>,
    q: Option<&str>,
) -> Result<Page<AuditRecord>, ServiceError> {
    let q = q.map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > Q_MAX) {
        return Err(ServiceError::invalid(
            "q",
            "too_long",
            "q is longer than 200 characters",
        ));
    }
    let words = search_words(q.unwrap_or(""), WORDS_MAX);
    let from_cursor = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => Some(decode_cursor(text, &AUDIT_SORT).ok_or_else(|| {
            ServiceError::invalid("cursor", "invalid", "cursor is not a cursor of this list")
        })?),
    };
    let after = AuditId(after.0.max(from_cursor.map_or(0, |c| c.id)));
    // Not `PageRequest::first`: audit pages keep their own maximum (`PAGE_MAX`).
    let request = PageRequest {
        limit: limit.min(PAGE_MAX),
        sort: AUDIT_SORT,
        after: None,
    };
    let read = request.limit.saturating_add(1);
    let rows: Vec<AuditRecord> = app
        .store()
        .query(move |tx| Ok::<_, ServiceError>(tx.audit_search(after, &words, read)?))
        .await?;
    let keyed = rows
        .into_iter()
        .map(|r| {
            let id = r.id.0;
            (r, SortValue::Int(id), id)
        })
        .collect();
    Ok(finish(keyed, &request))
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

/// What the subjects (`KIND:ID`) are called today: control numbers, usernames, device and
/// zone names, people's names (never carrier titles). Subjects without a name are left out.
pub async fn subject_labels(
    app: &AppState,
    _cap: &AuditorCap,
    subjects: Vec<String>,
) -> Result<std::collections::HashMap<String, String>, ServiceError> {
    app.store()
        .query(move |tx| {
            let mut labels = std::collections::HashMap::new();
            for subject in subjects {
                let Some((kind, id)) = subject.split_once(':') else {
                    continue;
                };
                if let Some(label) = tx.audit_subject_label(kind, id)? {
                    labels.insert(subject.clone(), label);
                }
            }
            Ok(labels)
        })
        .await
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
///
/// After the commit the latest head is what devices get in their acks from now on, and it is
/// appended to the anchor file if one is configured (fsynced; a failure is logged and retried
/// at the next signing, the head is in the database either way).
pub async fn sign_head(app: &AppState) -> Result<Option<AuditId>, ServiceError> {
    let key = app.server_key_arc();
    let at = app.now();
    let (signed, latest) = app
        .store()
        .transact(move |tx| -> Result<_, ServiceError> {
            let signed = audit::sign_head(tx, &key, at)?;
            Ok((signed, audit::latest_head(tx)?))
        })
        .await?;
    if let Some(entry) = signed {
        tracing::debug!(%entry, "signed audit head");
    }
    if let Some(head) = latest {
        app.set_latest_audit_head(head);
        let anchor = app.anchor();
        let appended = tokio::task::spawn_blocking(move || {
            let mut anchor = anchor
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            anchor.as_mut().map(|file| file.append(&head)).transpose()
        })
        .await;
        match appended {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "appending the audit head to the anchor file failed")
            }
            Err(e) => tracing::error!(error = %e, "the anchor file task failed"),
        }
    }
    Ok(signed)
}

/// Verify the whole chain against the server's own key, for an auditor. The latest head this
/// process signed counts as an external head too: a trail cut back while the server runs
/// shows.
pub async fn verify(app: &AppState, _cap: &AuditorCap) -> Result<Verdict, ServiceError> {
    let external: Vec<AuditHead> = app.latest_audit_head().into_iter().collect();
    verify_chain_with(app.store(), app.server_key().public_key(), external).await
}

/// Verify the whole chain against `public_key`, in one read transaction, with no external
/// heads (see [`verify_chain_with`]).
pub async fn verify_chain(store: &Store, public_key: [u8; 32]) -> Result<Verdict, ServiceError> {
    verify_chain_with(store, public_key, Vec::new()).await
}

/// Verify the whole chain against `public_key` and the signed heads kept outside the database
/// (`external`: anchor file, device witnesses; signatures already checked), in one read
/// transaction: what `custos-server audit verify` runs with the data directory's files (no
/// session: file access is the authority there).
pub async fn verify_chain_with(
    store: &Store,
    public_key: [u8; 32],
    external: Vec<AuditHead>,
) -> Result<Verdict, ServiceError> {
    store
        .query(move |tx| Ok(audit::verify(tx, &public_key, &external)?))
        .await
}
