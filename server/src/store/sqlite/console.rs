//! [`ConsoleRows`] over SQLite.

use super::SqliteTx;
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::console::{ConsoleRows, DeviceHealth, Passage, PassageCarrier};

impl ConsoleRows for SqliteTx<'_> {
    fn device_health(&mut self) -> Result<Vec<DeviceHealth>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT d.id, d.kind, s.last_heartbeat_ms, s.health_json
             FROM devices d LEFT JOIN device_status s ON s.device_id = d.id
             ORDER BY CASE d.kind WHEN 'gate' THEN 0 WHEN 'cabinet' THEN 1 ELSE 2 END, d.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DeviceHealth {
                device_id: r.get(0)?,
                kind: r.get(1)?,
                last_heartbeat_ms: r.get(2)?,
                health_json: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn recent_passages(&mut self, limit: u32) -> Result<Vec<Passage>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, device_id, at_ms, json_extract(body_json, '$.direction'),
                    coalesce(json_array_length(body_json, '$.badges'), 0)
             FROM events WHERE kind = 'passage' ORDER BY id DESC LIMIT ?1",
        )?;
        let mut passages = stmt
            .query_map([limit], |r| {
                let at_ms: i64 = r.get(2)?;
                Ok(Passage {
                    event_id: r.get(0)?,
                    device_id: r.get(1)?,
                    at: Timestamp::from_unix_ms(at_ms),
                    direction: r.get(3)?,
                    carriers: Vec::new(),
                    badges: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut carriers = conn.prepare_cached(
            "SELECT c.control_no, c.level FROM carrier_events ce
             JOIN carriers c ON c.id = ce.carrier_id
             WHERE ce.event_id = ?1 ORDER BY c.control_no",
        )?;
        for p in &mut passages {
            p.carriers = carriers
                .query_map([p.event_id], |r| {
                    Ok(PassageCarrier {
                        control_no: r.get(0)?,
                        level: r.get(1)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
        }
        Ok(passages)
    }
}
