//! [`AuditLog`] over SQLite. The tables are append-only (triggers abort every `UPDATE` and
//! `DELETE`, see `store::migrations`).

use std::ops::ControlFlow;

use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;

use super::SqliteTx;
use crate::domain::audit::hex;
use crate::domain::ids::AuditId;
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::audit::{AuditFilter, AuditLog, AuditRecord, SignedHead, StoredEntry};

const ENTRY_COLUMNS: &str =
    "id, at, actor, action, subject, before_json, after_json, prev_hash, hash";

fn stored_row(r: &Row<'_>) -> rusqlite::Result<StoredEntry> {
    Ok(StoredEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        subject: r.get(4)?,
        before_json: r.get(5)?,
        after_json: r.get(6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

fn parse_json(text: Option<String>) -> Result<Option<Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(StoreError::from)
}

/// `text` as a `LIKE` prefix pattern (with `\` as the escape character).
fn prefix_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The query naming one kind of audit subject (`?1` its id), if the kind has a name.
fn subject_label_sql(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "carrier" => "SELECT control_no FROM carriers WHERE id = ?1",
        "user" => "SELECT username FROM users WHERE id = ?1",
        "person" => "SELECT name FROM people WHERE id = ?1",
        "zone" => "SELECT name FROM zones WHERE id = ?1",
        "device" => {
            "SELECT d.id || coalesce(' (' || z.name || ')', '') FROM devices d \
             LEFT JOIN zones z ON z.id = coalesce(d.inside_zone, d.zone) WHERE d.id = ?1"
        }
        _ => return None,
    })
}

impl AuditLog for SqliteTx<'_> {
    fn audit_subject_label(&mut self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        let Some(sql) = subject_label_sql(kind) else {
            return Ok(None);
        };
        Ok(self
            .conn()
            .prepare_cached(sql)?
            .query_row([id], |r| r.get::<_, String>(0))
            .optional()?)
    }

    fn last_audit_entry(&mut self) -> Result<Option<(AuditId, Vec<u8>)>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn insert_audit_entry(&mut self, e: &StoredEntry) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO audit (id, at, actor, action, subject, before_json, after_json,
                                    prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                e.id,
                e.at,
                e.actor,
                e.action,
                e.subject,
                e.before_json,
                e.after_json,
                e.prev_hash,
                e.hash
            ])?;
        Ok(())
    }

    fn last_signed_head(&mut self) -> Result<Option<AuditId>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT max(entry_id) FROM audit_heads")?
            .query_row([], |r| r.get(0))?)
    }

    fn insert_audit_head(
        &mut self,
        entry_id: AuditId,
        hash: &[u8],
        signature: &[u8],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO audit_heads (entry_id, hash, signature, at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![entry_id, hash, signature, at])?;
        Ok(())
    }

    fn audit_after(&mut self, after: AuditId, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit_search(after, &[], limit)
    }

    fn audit_search(
        &mut self,
        after: AuditId,
        words: &[String],
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut values = vec![SqlValue::Integer(after.0), SqlValue::Integer(limit.into())];
        let mut condition = String::new();
        for word in words {
            values.push(SqlValue::Text(word.clone()));
            let n = values.len();
            let contains = |column: &str| format!("instr(lower({column}), lower(?{n})) > 0");
            condition.push_str(&format!(
                " AND ({} OR {} OR {})",
                contains("actor"),
                contains("action"),
                contains("subject"),
            ));
        }
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM audit WHERE id > ?1{condition} ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params_from_iter(values), stored_row)?;
        let mut out = Vec::new();
        for row in rows {
            let e = row?;
            out.push(AuditRecord {
                id: AuditId(e.id),
                at: e.at,
                actor: e.actor,
                action: e.action,
                subject: e.subject,
                before: parse_json(e.before_json)?,
                after: parse_json(e.after_json)?,
                prev_hash: hex(&e.prev_hash),
                hash: hex(&e.hash),
            });
        }
        Ok(out)
    }

    fn audit_filtered(
        &mut self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS}
             FROM audit
             WHERE (?1 IS NULL OR actor = ?1)
               AND (?2 IS NULL OR action LIKE ?2 ESCAPE '\\')
               AND (?3 IS NULL OR subject LIKE ?3 ESCAPE '\\')
               AND (?4 IS NULL OR substr(at, 1, 10) >= ?4)
               AND (?5 IS NULL OR substr(at, 1, 10) <= ?5)
               AND (?6 IS NULL OR id < ?6)
             ORDER BY id DESC LIMIT ?7"
        ))?;
        let rows = stmt.query_map(
            params![
                filter.actor,
                filter.action.as_deref().map(prefix_pattern),
                filter.subject.as_deref().map(prefix_pattern),
                filter.from.map(|d| d.to_string()),
                filter.to.map(|d| d.to_string()),
                filter.before,
                limit
            ],
            stored_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn audit_count(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?)
    }

    fn audit_heads(&mut self, limit: Option<u32>) -> Result<Vec<SignedHead>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT entry_id, hash, signature, at FROM audit_heads
             ORDER BY entry_id DESC LIMIT ?1",
        )?;
        let limit = limit.map_or(-1, i64::from);
        let rows = stmt.query_map([limit], |r| {
            Ok(SignedHead {
                entry_id: r.get(0)?,
                hash: r.get(1)?,
                signature: r.get(2)?,
                at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn scan_audit(
        &mut self,
        visit: &mut dyn FnMut(StoredEntry) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {ENTRY_COLUMNS} FROM audit ORDER BY id"))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if visit(stored_row(r)?).is_break() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_patterns_escape_wildcards() {
        assert_eq!(prefix_pattern("user."), "user.%");
        assert_eq!(prefix_pattern("a%b_c\\"), "a\\%b\\_c\\\\%");
    }
}
