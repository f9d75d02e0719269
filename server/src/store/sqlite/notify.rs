//! [`NotifyRows`] over SQLite, and [`record_change`], which the alert rows call on every
//! insert and lifecycle update (in the same transaction).

use rusqlite::{Connection, Row, params};

use super::SqliteTx;
use crate::domain::alert::{AlertKind, AlertState, Severity};
use crate::domain::notify::{Change, Notice};
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::notify::{
    Channel, DeliveryState, DeliveryView, DueDelivery, NewDelivery, NotifyRows, Outcome,
    PendingChange, StuckDelivery,
};

/// Record that alert `alert_id` underwent `change` at `at_ms`: the notification outbox's
/// entry, written by the transaction that changed the alert.
pub(super) fn record_change(
    conn: &Connection,
    alert_id: i64,
    change: Change,
    at_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO alert_changes (alert_id, change, at_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![alert_id, change.as_str(), at_ms])?;
    Ok(())
}

/// The notice columns of a change `ch` joined with its alert `a` (no title is selected).
const NOTICE: &str = "ch.alert_id, a.kind, a.severity, a.state, ch.change, ch.at_ms, a.occurrences,
        a.carrier_id, c.control_no, c.level, a.device_id, z.name, a.person_id";
const NOTICE_JOIN: &str = "JOIN alerts a ON a.id = ch.alert_id
        LEFT JOIN carriers c ON c.id = a.carrier_id
        LEFT JOIN devices d ON d.id = a.device_id
        LEFT JOIN zones z ON z.id = coalesce(d.zone, d.inside_zone)";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("alert change: {what}"))
}

/// Read the [`NOTICE`] columns starting at column `at`.
fn notice(r: &Row<'_>, at: usize) -> Result<Notice, StoreError> {
    let text = |i: usize| -> Result<String, StoreError> { Ok(r.get::<_, String>(at + i)?) };
    let kind = text(1)?;
    let severity = text(2)?;
    let state = text(3)?;
    let change = text(4)?;
    Ok(Notice {
        alert_id: r.get(at)?,
        kind: AlertKind::from_name(&kind).ok_or_else(|| corrupt("kind"))?,
        severity: Severity::from_name(&severity).ok_or_else(|| corrupt("severity"))?,
        state: AlertState::from_name(&state).ok_or_else(|| corrupt("state"))?,
        change: Change::from_name(&change).ok_or_else(|| corrupt("change"))?,
        at: Timestamp::from_unix_ms(r.get(at + 5)?).ok_or_else(|| corrupt("time"))?,
        occurrences: r.get(at + 6)?,
        carrier_id: r.get(at + 7)?,
        control_no: r.get(at + 8)?,
        level: r.get(at + 9)?,
        device_id: r.get(at + 10)?,
        zone: r.get(at + 11)?,
        person_id: r.get(at + 12)?,
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn opt_time(ms: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    ms.map(|ms| Timestamp::from_unix_ms(ms).ok_or_else(|| corrupt("time")))
        .transpose()
}

impl NotifyRows for SqliteTx<'_> {
    fn unrouted_changes(&mut self, max: usize) -> Result<Vec<PendingChange>, StoreError> {
        let sql = format!(
            "SELECT ch.id, {NOTICE} FROM alert_changes ch {NOTICE_JOIN}
             WHERE ch.routed = 0 ORDER BY ch.id LIMIT ?1"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt.query([limit(max)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(PendingChange {
                id: r.get(0)?,
                notice: notice(r, 1)?,
            });
        }
        Ok(out)
    }

    fn add_delivery(&mut self, d: &NewDelivery) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT OR IGNORE INTO deliveries (delivery_id, change_id, channel, target,
                     created_at_ms, due_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                d.delivery_id,
                d.change_id,
                d.channel.as_str(),
                d.target,
                d.created_at_ms,
                d.due_at_ms
            ])?;
        Ok(())
    }

    fn mark_change_routed(&mut self, change_id: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE alert_changes SET routed = 1 WHERE id = ?1")?
            .execute([change_id])?;
        Ok(())
    }

    fn due_deliveries(&mut self, now_ms: i64, max: usize) -> Result<Vec<DueDelivery>, StoreError> {
        let sql = format!(
            "SELECT dl.id, dl.delivery_id, dl.channel, dl.target, dl.attempts, dl.created_at_ms,
                    {NOTICE}
             FROM deliveries dl INDEXED BY deliveries_due
             JOIN alert_changes ch ON ch.id = dl.change_id {NOTICE_JOIN}
             WHERE dl.state = 'pending' AND dl.due_at_ms <= ?1
             ORDER BY dl.due_at_ms, dl.id LIMIT ?2"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt.query(params![now_ms, limit(max)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let channel: String = r.get(2)?;
            out.push(DueDelivery {
                id: r.get(0)?,
                delivery_id: r.get(1)?,
                channel: Channel::from_name(&channel).ok_or_else(|| corrupt("channel"))?,
                target: r.get(3)?,
                attempts: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                created_at_ms: r.get(5)?,
                notice: notice(r, 6)?,
            });
        }
        Ok(out)
    }

    fn next_delivery_due(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT min(due_at_ms) FROM deliveries WHERE state = 'pending'")?
            .query_row([], |r| r.get(0))?)
    }

    fn record_attempt(&mut self, id: i64, at_ms: i64, outcome: &Outcome) -> Result<(), StoreError> {
        let conn = self.conn();
        match outcome {
            Outcome::Sent => conn
                .prepare_cached(
                    "UPDATE deliveries SET state = 'sent', attempts = attempts + 1,
                         last_attempt_at_ms = ?2, sent_at_ms = ?2 WHERE id = ?1",
                )?
                .execute(params![id, at_ms])?,
            Outcome::Retry { next_due_ms, error } => conn
                .prepare_cached(
                    "UPDATE deliveries SET attempts = attempts + 1, last_attempt_at_ms = ?2,
                         due_at_ms = ?3, last_error = ?4 WHERE id = ?1",
                )?
                .execute(params![id, at_ms, next_due_ms, error])?,
            Outcome::GiveUp { error } => conn
                .prepare_cached(
                    "UPDATE deliveries SET state = 'failed', attempts = attempts + 1,
                         last_attempt_at_ms = ?2, last_error = ?3 WHERE id = ?1",
                )?
                .execute(params![id, at_ms, error])?,
        };
        Ok(())
    }

    fn stuck_deliveries(&mut self, created_by_ms: i64) -> Result<Vec<StuckDelivery>, StoreError> {
        // Digests wait for their hour by design: only a failed try makes one stuck.
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, channel, target FROM deliveries
             WHERE state IN ('pending', 'failed') AND reported = 0 AND created_at_ms <= ?1
               AND (channel != 'digest' OR attempts > 0)
             ORDER BY id",
        )?;
        let mut rows = stmt.query([created_by_ms])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let channel: String = r.get(1)?;
            out.push(StuckDelivery {
                id: r.get(0)?,
                channel: Channel::from_name(&channel).ok_or_else(|| corrupt("channel"))?,
                target: r.get(2)?,
            });
        }
        Ok(out)
    }

    fn mark_reported(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("UPDATE deliveries SET reported = 1 WHERE id = ?1")?;
        for id in ids {
            stmt.execute([id])?;
        }
        Ok(())
    }

    fn deliveries(
        &mut self,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, StoreError> {
        let filter = match state {
            None => "",
            Some(DeliveryState::Pending) => "WHERE dl.state = 'pending' AND dl.attempts = 0",
            Some(DeliveryState::Retrying) => "WHERE dl.state = 'pending' AND dl.attempts > 0",
            Some(DeliveryState::Sent) => "WHERE dl.state = 'sent'",
            Some(DeliveryState::Failed) => "WHERE dl.state = 'failed'",
        };
        let sql = format!(
            "SELECT dl.id, dl.delivery_id, ch.alert_id, ch.change, dl.channel, dl.target,
                    dl.state, dl.attempts, dl.created_at_ms, dl.due_at_ms,
                    dl.last_attempt_at_ms, dl.sent_at_ms, dl.last_error
             FROM deliveries dl JOIN alert_changes ch ON ch.id = dl.change_id
             {filter} ORDER BY dl.id DESC LIMIT ?1"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt.query([i64::from(limit)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let channel: String = r.get(4)?;
            let stored: String = r.get(6)?;
            let attempts: i64 = r.get(7)?;
            let state = match stored.as_str() {
                "pending" if attempts > 0 => DeliveryState::Retrying,
                "pending" => DeliveryState::Pending,
                "sent" => DeliveryState::Sent,
                "failed" => DeliveryState::Failed,
                _ => return Err(corrupt("delivery state")),
            };
            let due: i64 = r.get(9)?;
            out.push(DeliveryView {
                id: r.get::<_, i64>(0)?.to_string(),
                delivery_id: r.get(1)?,
                alert_id: r.get::<_, i64>(2)?.to_string(),
                change: r.get(3)?,
                channel: Channel::from_name(&channel).ok_or_else(|| corrupt("channel"))?,
                target: r.get(5)?,
                state,
                attempts,
                created_at: opt_time(Some(r.get(8)?))?.ok_or_else(|| corrupt("time"))?,
                next_attempt_at: if stored == "pending" {
                    opt_time(Some(due))?
                } else {
                    None
                },
                last_attempt_at: opt_time(r.get(10)?)?,
                sent_at: opt_time(r.get(11)?)?,
                last_error: r.get(12)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{NewAlert, cause};
    use crate::store::AlertRows;
    use crate::store::test_support::MemoryDb;

    #[test]
    fn every_alert_change_is_recorded_in_its_transaction() {
        let db = MemoryDb::new();
        let tx = &mut db.tx();
        let key = cause(AlertKind::ReaderSilent, &[("device", "g1")]);
        let raised = tx
            .raise_alert(&NewAlert::new(AlertKind::ReaderSilent, key.clone(), 1_000))
            .unwrap();
        // A repeat is not a change anyone is told about again.
        tx.raise_alert(&NewAlert::new(AlertKind::ReaderSilent, key, 2_000))
            .unwrap();
        let at = Timestamp::from_unix(3).unwrap();
        tx.set_alert_acknowledged(raised.id(), "g", at).unwrap();
        tx.set_alert_resolved(raised.id(), "g", "ok", at).unwrap();
        let changes = tx.unrouted_changes(10).unwrap();
        let seen: Vec<_> = changes.iter().map(|c| c.notice.change).collect();
        assert_eq!(
            seen,
            [Change::Raised, Change::Acknowledged, Change::Resolved]
        );
        assert!(changes.iter().all(|c| c.notice.alert_id == raised.id()));
        assert_eq!(changes[0].notice.at.unix_ms(), 1_000);
        tx.mark_change_routed(changes[0].id).unwrap();
        assert_eq!(tx.unrouted_changes(10).unwrap().len(), 2);
    }

    #[test]
    fn a_delivery_goes_pending_retrying_sent_and_is_created_once() {
        let db = MemoryDb::new();
        let tx = &mut db.tx();
        let key = cause(AlertKind::ReaderFault, &[("device", "g1")]);
        tx.raise_alert(&NewAlert::new(AlertKind::ReaderFault, key, 1_000))
            .unwrap();
        let change = tx.unrouted_changes(1).unwrap().remove(0);
        let new = NewDelivery {
            delivery_id: "d1".into(),
            change_id: change.id,
            channel: Channel::Webhook,
            target: "soc".into(),
            created_at_ms: 1_000,
            due_at_ms: 1_000,
        };
        tx.add_delivery(&new).unwrap();
        tx.add_delivery(&new).unwrap();
        assert_eq!(tx.deliveries(None, 10).unwrap().len(), 1);
        assert!(tx.due_deliveries(999, 10).unwrap().is_empty());
        let due = tx.due_deliveries(1_000, 10).unwrap();
        assert_eq!(due.len(), 1);
        let id = due[0].id;
        let retry = Outcome::Retry {
            next_due_ms: 5_000,
            error: "refused".into(),
        };
        tx.record_attempt(id, 1_000, &retry).unwrap();
        assert!(tx.due_deliveries(4_999, 10).unwrap().is_empty());
        assert_eq!(tx.next_delivery_due().unwrap(), Some(5_000));
        let view = &tx.deliveries(Some(DeliveryState::Retrying), 10).unwrap()[0];
        assert_eq!(view.last_error.as_deref(), Some("refused"));
        assert_eq!(tx.stuck_deliveries(1_000).unwrap().len(), 1);
        tx.mark_reported(&[id]).unwrap();
        assert!(tx.stuck_deliveries(1_000).unwrap().is_empty());
        tx.record_attempt(id, 5_000, &Outcome::Sent).unwrap();
        let view = &tx.deliveries(Some(DeliveryState::Sent), 10).unwrap()[0];
        assert_eq!(view.attempts, 2);
        assert_eq!(tx.next_delivery_due().unwrap(), None);
    }
}
