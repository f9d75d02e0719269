//! [`ConsoleRows`] over SQLite.

use super::SqliteTx;
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::console::{ConsoleRows, DeviceHealth, Passage, PassageCarrier};

/// A device's place by zone names (`devices d` joined to its zones `zi`, `zo`, `z`): a gate
/// as "inside ⇄ outside", a cabinet or desk as its zone.
const PLACE: &str = "CASE WHEN zi.name IS NOT NULL OR zo.name IS NOT NULL \
                     THEN coalesce(zi.name, '?') || ' ⇄ ' || coalesce(zo.name, '?') \
                     ELSE z.name END";

impl ConsoleRows for SqliteTx<'_> {
    fn device_health(&mut self) -> Result<Vec<DeviceHealth>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT d.id, d.kind, s.last_heartbeat_ms, s.health_json, ({PLACE})
             FROM devices d LEFT JOIN device_status s ON s.device_id = d.id
             LEFT JOIN zones zi ON zi.id = d.inside_zone
             LEFT JOIN zones zo ON zo.id = d.outside_zone
             LEFT JOIN zones z ON z.id = d.zone
             ORDER BY CASE d.kind WHEN 'gate' THEN 0 WHEN 'cabinet' THEN 1 ELSE 2 END, d.id"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok(DeviceHealth {
                device_id: r.get(0)?,
                kind: r.get(1)?,
                last_heartbeat_ms: r.get(2)?,
                health_json: r.get(3)?,
                place: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn recent_passages(&mut self, limit: u32) -> Result<Vec<Passage>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT e.id, e.device_id, e.at_ms, json_extract(e.body_json, '$.direction'),
                    coalesce(json_array_length(e.body_json, '$.badges'), 0), ({PLACE})
             FROM events e
             LEFT JOIN devices d ON d.id = e.device_id
             LEFT JOIN zones zi ON zi.id = d.inside_zone
             LEFT JOIN zones zo ON zo.id = d.outside_zone
             LEFT JOIN zones z ON z.id = d.zone
             WHERE e.kind = 'passage' ORDER BY e.id DESC LIMIT ?1"
        ))?;
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
                    badge_holders: Vec::new(),
                    place: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut carriers = conn.prepare_cached(
            "SELECT c.control_no, c.level FROM carrier_events ce
             JOIN carriers c ON c.id = ce.carrier_id
             WHERE ce.event_id = ?1 ORDER BY c.control_no",
        )?;
        // Badges are stored as the tags read (`{"epc": HEX, ...}`); people by their badge tag.
        let mut holders = conn.prepare_cached(
            "SELECT p.name FROM events e, json_each(e.body_json, '$.badges') b
             JOIN people p ON p.badge_tag IS NOT NULL
                  AND upper(p.badge_tag) = upper(json_extract(b.value, '$.epc'))
             WHERE e.id = ?1 ORDER BY p.name",
        )?;
        for p in &mut passages {
            p.badge_holders = holders
                .query_map([p.event_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
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
