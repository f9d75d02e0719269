//! [`ExportRows`] over SQLite.

use rusqlite::{Row, params};

use super::SqliteTx;
use crate::store::StoreError;
use crate::store::exports::{ExportRows, MovementRow};

fn movement_row(r: &Row<'_>) -> rusqlite::Result<MovementRow> {
    Ok(MovementRow {
        key: r.get(0)?,
        at_ms: r.get(1)?,
        kind: r.get(2)?,
        direction: r.get(3)?,
        carrier_id: r.get(4)?,
        device_id: r.get(5)?,
        inside_zone: r.get(6)?,
        outside_zone: r.get(7)?,
    })
}

impl ExportRows for SqliteTx<'_> {
    fn movements(
        &mut self,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<MovementRow>, StoreError> {
        // Five sources in one time order: device history rows, issues and returns, transfer
        // and dispatch steps, destructions. A return a cabinet saw names the cabinet
        // (`returned_by = 'device:ID'`). Request steps and destruction records keep their
        // times as RFC 3339 text (whole seconds), converted here; a destruction happened at
        // its record's `at`, not when it was entered.
        let mut stmt = self.conn().prepare_cached(
            "SELECT m.key, m.at_ms, m.kind, m.direction, m.carrier_id, m.device_id,
                    coalesce(d.inside_zone, d.zone), d.outside_zone
             FROM (
                 SELECT 'ev-' || event_id || '-' || carrier_id AS key, at_ms, kind, direction,
                        carrier_id, device_id
                 FROM carrier_events WHERE at_ms >= ?1 AND at_ms < ?2
                 UNION ALL
                 SELECT 'so-' || so.id || '-issue-' || sc.carrier_id, so.issued_at_ms,
                        'issued', NULL, sc.carrier_id, NULL
                 FROM signout_carriers sc JOIN signouts so ON so.id = sc.signout_id
                 WHERE so.issued_at_ms >= ?1 AND so.issued_at_ms < ?2
                 UNION ALL
                 SELECT 'so-' || sc.signout_id || '-return-' || sc.carrier_id,
                        sc.returned_at_ms, 'returned', NULL, sc.carrier_id,
                        CASE WHEN sc.returned_by LIKE 'device:%'
                             THEN substr(sc.returned_by, 8) END
                 FROM signout_carriers sc
                 WHERE sc.returned_at_ms >= ?1 AND sc.returned_at_ms < ?2
                 UNION ALL
                 SELECT key, at_ms, kind, NULL, carrier_id, NULL FROM (
                     SELECT 'rq-' || s.request_id || '-' || s.step || '-' || rc.carrier_id AS key,
                            CAST(strftime('%s', s.at) AS INTEGER) * 1000 AS at_ms,
                            CASE WHEN s.step IN ('handed_over', 'sent') THEN 'shipped'
                                 ELSE 'received' END AS kind,
                            rc.carrier_id AS carrier_id
                     FROM request_steps s
                     JOIN request_carriers rc ON rc.request_id = s.request_id
                     UNION ALL
                     SELECT 'rq-' || r.id || '-destroyed-' || rc.carrier_id,
                            coalesce(CAST(strftime('%s', json_extract(r.result_json, '$.at'))
                                          AS INTEGER) * 1000, r.done_at_ms),
                            'destroyed', rc.carrier_id
                     FROM requests r JOIN request_carriers rc ON rc.request_id = r.id
                     WHERE r.kind = 'destruction' AND r.state = 'done'
                 ) WHERE at_ms >= ?1 AND at_ms < ?2
             ) m LEFT JOIN devices d ON d.id = m.device_id
             ORDER BY m.at_ms, m.key
             LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from_ms, to_ms, limit], movement_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn carrier_epcs(&mut self, carrier_id: i64) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT substr(tag, 5) FROM carrier_tags
             WHERE carrier_id = ?1 AND tag LIKE 'epc:%' ORDER BY tag",
        )?;
        let rows = stmt.query_map(params![carrier_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
