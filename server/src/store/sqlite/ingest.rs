//! [`IngestRows`] over SQLite.

use custos_protocol::epc::Epc;
use rusqlite::{OptionalExtension, params};

use super::SqliteTx;
use crate::domain::cabinet::SinceIssue;
use crate::domain::gate::{ActiveSignout, BadgeHolder};
use crate::domain::ids::DeviceId;
use crate::domain::ingest::{EpochRecord, badge_epc, badge_forms};
use crate::domain::level::ZoneLevel;
use crate::domain::person::{self, Category, Certificates, PersonStatus, level_of_code};
use crate::store::StoreError;
use crate::store::ingest::{
    CarrierEvent, DeviceAuth, IngestRows, NewEvent, Sighting, StoredEvent, TagCarrier,
};
use crate::store::sqlite::level_column;

/// The person with a badge in one stored form (see `person_by_badge`).
const PERSON_BY_BADGE: &str = "SELECT id, name, category, clearance, status
     FROM people INDEXED BY people_by_badge
     WHERE badge_tag IS NOT NULL AND upper(badge_tag) = ?1
     ORDER BY id LIMIT 1";

/// The live sign-outs of a carrier (see `active_signouts`).
const ACTIVE_SIGNOUTS: &str = "SELECT s.id, s.may_leave, s.due_at_ms, s.borrower, p.badge_tag,
            p.training_valid_until, p.commitment_signed_on
     FROM signout_carriers sc INDEXED BY signout_carriers_by_carrier
     JOIN signouts s ON s.id = sc.signout_id
     JOIN people p ON p.id = s.borrower
     WHERE sc.carrier_id = ?1 AND sc.returned_at_ms IS NULL AND s.state = 'out'";

fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} beyond i64")))
}

fn to_u64(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

fn zone_level(code: &str) -> Result<ZoneLevel, StoreError> {
    ZoneLevel::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("zone level {code:?}")))
}

fn tag_carrier(r: &rusqlite::Row<'_>) -> rusqlite::Result<TagCarrier> {
    Ok(TagCarrier {
        id: r.get(0)?,
        control_no: r.get(1)?,
        level: level_column(r, 2)?,
        state: r.get(3)?,
        home_device: r.get(4)?,
    })
}

fn sighting(device: Option<String>, at_ms: Option<i64>) -> Option<Sighting> {
    match (device, at_ms) {
        (Some(device), Some(at_ms)) => Some(Sighting { device, at_ms }),
        _ => None,
    }
}

impl IngestRows for SqliteTx<'_> {
    fn device_auth(&mut self, id: &DeviceId) -> Result<Option<DeviceAuth>, StoreError> {
        let row: Option<(crate::domain::device::DeviceKind, Vec<u8>, Option<i64>)> = self
            .conn()
            .prepare_cached("SELECT kind, public_key, revoked_at_ms FROM devices WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(kind, key, revoked)| {
            let public_key = <[u8; 32]>::try_from(key)
                .map_err(|_| StoreError::Corrupt(format!("public key of device {id}")))?;
            Ok(DeviceAuth {
                id: id.clone(),
                kind,
                public_key,
                revoked: revoked.is_some(),
            })
        })
        .transpose()
    }

    fn gate_sides(&mut self, device: &str) -> Result<Option<(ZoneLevel, ZoneLevel)>, StoreError> {
        let row: Option<(String, String)> = self
            .conn()
            .prepare_cached(
                "SELECT zi.level, zo.level FROM devices d
                 JOIN zones zi ON zi.id = d.inside_zone JOIN zones zo ON zo.id = d.outside_zone
                 WHERE d.id = ?1",
            )?
            .query_row([device], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(i, o)| Ok((zone_level(&i)?, zone_level(&o)?)))
            .transpose()
    }

    fn epoch_record(
        &mut self,
        device: &str,
        epoch: u64,
    ) -> Result<Option<EpochRecord>, StoreError> {
        let row: Option<(i64, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT acked_through, hb_seq FROM device_epochs
                 WHERE device_id = ?1 AND epoch = ?2",
            )?
            .query_row(params![device, to_i64(epoch, "epoch")?], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(acked, hb)| {
            Ok(EpochRecord {
                epoch,
                acked_through: to_u64(acked, "acked_through")?,
                hb_seq: to_u64(hb, "hb_seq")?,
            })
        })
        .transpose()
    }

    fn newest_epoch(&mut self, device: &str) -> Result<Option<EpochRecord>, StoreError> {
        let epoch: Option<i64> = self
            .conn()
            .prepare_cached("SELECT max(epoch) FROM device_epochs WHERE device_id = ?1")?
            .query_row([device], |r| r.get(0))?;
        match epoch {
            Some(e) => self.epoch_record(device, to_u64(e, "epoch")?),
            None => Ok(None),
        }
    }

    fn newest_epoch_with_events(&mut self, device: &str) -> Result<Option<u64>, StoreError> {
        let epoch: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT max(epoch) FROM device_epochs WHERE device_id = ?1 AND acked_through > 0",
            )?
            .query_row([device], |r| r.get(0))?;
        epoch.map(|e| to_u64(e, "epoch")).transpose()
    }

    fn set_acked_through(
        &mut self,
        device: &str,
        epoch: u64,
        acked_through: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO device_epochs (device_id, epoch, acked_through, first_seen_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device_id, epoch) DO UPDATE SET acked_through = excluded.acked_through",
            )?
            .execute(params![
                device,
                to_i64(epoch, "epoch")?,
                to_i64(acked_through, "seq")?,
                now_ms
            ])?;
        Ok(())
    }

    fn set_hb_seq(
        &mut self,
        device: &str,
        epoch: u64,
        hb_seq: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO device_epochs (device_id, epoch, hb_seq, first_seen_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device_id, epoch) DO UPDATE SET hb_seq = excluded.hb_seq",
            )?
            .execute(params![
                device,
                to_i64(epoch, "epoch")?,
                to_i64(hb_seq, "hb_seq")?,
                now_ms
            ])?;
        Ok(())
    }

    fn set_event_body(
        &mut self,
        device: &str,
        epoch: u64,
        seq: u64,
        body_json: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE events SET body_json = ?4
                 WHERE device_id = ?1 AND epoch = ?2 AND seq = ?3",
            )?
            .execute(params![
                device,
                to_i64(epoch, "epoch")?,
                to_i64(seq, "seq")?,
                body_json
            ])?;
        Ok(())
    }

    fn stored_event(
        &mut self,
        device: &str,
        epoch: u64,
        seq: u64,
    ) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT at_ms, body_json, verdict_json FROM events
                 WHERE device_id = ?1 AND epoch = ?2 AND seq = ?3",
            )?
            .query_row(
                params![device, to_i64(epoch, "epoch")?, to_i64(seq, "seq")?],
                |r| {
                    Ok(StoredEvent {
                        at_ms: r.get(0)?,
                        body_json: r.get(1)?,
                        verdict_json: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn insert_event(&mut self, e: &NewEvent<'_>) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO events (device_id, epoch, seq, at_ms, received_at_ms, kind, body_json,
                                 verdict_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            e.device,
            to_i64(e.epoch, "epoch")?,
            to_i64(e.seq, "seq")?,
            e.at_ms,
            e.received_at_ms,
            e.kind,
            e.body_json,
            e.verdict_json,
        ])?;
        Ok(conn.last_insert_rowid())
    }

    fn passage_event(
        &mut self,
        device: &str,
        epoch: u64,
        seq: u64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT id FROM events
                 WHERE device_id = ?1 AND epoch = ?2 AND seq = ?3 AND kind = 'passage'",
            )?
            .query_row(
                params![device, to_i64(epoch, "epoch")?, to_i64(seq, "seq")?],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn insert_carrier_event(&mut self, line: &CarrierEvent<'_>) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT OR IGNORE INTO carrier_events
                     (carrier_id, event_id, at_ms, kind, device_id, direction)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                line.carrier,
                line.event,
                line.at_ms,
                line.kind,
                line.device,
                line.direction
            ])?;
        Ok(())
    }

    fn passage_direction(
        &mut self,
        carrier: i64,
        event: i64,
    ) -> Result<Option<Option<String>>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT direction FROM carrier_events
                 WHERE carrier_id = ?1 AND event_id = ?2 AND kind = 'passage'",
            )?
            .query_row(params![carrier, event], |r| r.get(0))
            .optional()?)
    }

    fn gate_carrier_by_tag(
        &mut self,
        tag: &str,
    ) -> Result<Option<(TagCarrier, Option<Sighting>)>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT c.id, c.control_no, c.level, c.state, c.home_device, s.device_id, s.at_ms
                 FROM carrier_tags t JOIN carriers c ON c.id = t.carrier_id
                      LEFT JOIN tag_sightings s ON s.tag = t.tag
                 WHERE t.tag = ?1",
            )?
            .query_row([tag], |r| {
                Ok((tag_carrier(r)?, sighting(r.get(5)?, r.get(6)?)))
            })
            .optional()?)
    }

    fn carrier_by_tag(&mut self, tag: &str) -> Result<Option<TagCarrier>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT c.id, c.control_no, c.level, c.state, c.home_device
                 FROM carrier_tags t JOIN carriers c ON c.id = t.carrier_id WHERE t.tag = ?1",
            )?
            .query_row([tag], tag_carrier)
            .optional()?)
    }

    fn carrier_by_id(&mut self, id: i64) -> Result<TagCarrier, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT id, control_no, level, state, home_device FROM carriers WHERE id = ?1",
            )?
            .query_row([id], tag_carrier)?)
    }

    /// Through `people_by_badge` (an index on `upper(badge_tag)`; without it every badge
    /// read scans the register): one equality probe per stored form, the lower id winning.
    /// (`IN (?1, ?2)` would build an ephemeral table for the two values at every read.)
    fn person_by_badge(&mut self, epc: &Epc) -> Result<Option<BadgeHolder>, StoreError> {
        let mut stmt = self.conn().prepare_cached(PERSON_BY_BADGE)?;
        let mut found: Option<BadgeHolder> = None;
        for form in badge_forms(epc) {
            let holder = stmt
                .query_row([form], |r| {
                    let category: Category = r.get(2)?;
                    let clearance: Option<String> = r.get(3)?;
                    let status: PersonStatus = r.get(4)?;
                    Ok(BadgeHolder {
                        person_id: r.get(0)?,
                        name: r.get(1)?,
                        clearance: person::effective_clearance(
                            status,
                            category,
                            clearance.as_deref().and_then(level_of_code),
                        ),
                    })
                })
                .optional()?;
            if let Some(h) = holder {
                if found.as_ref().is_none_or(|f| h.person_id < f.person_id) {
                    found = Some(h);
                }
            }
        }
        Ok(found)
    }

    /// `INDEXED BY`: without statistics the planner would rather walk every `out` sign-out
    /// (`signouts_by_state`) and probe each for the carrier, a cost that grows with the
    /// sign-outs open on the site; through the carrier's index it reads only that carrier's
    /// few rows. They are put in sign-out order here rather than by `ORDER BY`, which would
    /// open a sorter for every carrier read at a gate.
    fn active_signouts(
        &mut self,
        carrier: i64,
        commitment_valid_months: u32,
    ) -> Result<Vec<ActiveSignout>, StoreError> {
        let mut stmt = self.conn().prepare_cached(ACTIVE_SIGNOUTS)?;
        let rows = stmt.query_map([carrier], |r| {
            let certificates = Certificates {
                training_valid_until: r.get(5)?,
                commitment_signed_on: r.get(6)?,
            };
            Ok(ActiveSignout {
                signout_id: r.get(0)?,
                may_leave: r.get::<_, i64>(1)? == 1,
                due_at_ms: r.get(2)?,
                borrower_id: r.get(3)?,
                borrower_badge: r
                    .get::<_, Option<String>>(4)?
                    .as_deref()
                    .and_then(badge_epc),
                borrower_valid_through: certificates.valid_through(commitment_valid_months),
            })
        })?;
        let mut signouts: Vec<ActiveSignout> = rows.collect::<Result<_, _>>()?;
        signouts.sort_unstable_by_key(|s| s.signout_id);
        Ok(signouts)
    }

    fn mark_seen(&mut self, carrier: i64, device: &str, at_ms: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE carriers SET last_seen_device = ?2, last_seen_at_ms = ?3
                 WHERE id = ?1 AND (last_seen_at_ms IS NULL OR last_seen_at_ms <= ?3)",
            )?
            .execute(params![carrier, device, at_ms])?;
        Ok(())
    }

    fn last_sighting(&mut self, tag: &str) -> Result<Option<Sighting>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT device_id, at_ms FROM tag_sightings WHERE tag = ?1")?
            .query_row([tag], |r| {
                Ok(Sighting {
                    device: r.get(0)?,
                    at_ms: r.get(1)?,
                })
            })
            .optional()?)
    }

    fn record_sighting(&mut self, tag: &str, device: &str, at_ms: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO tag_sightings (tag, device_id, at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tag) DO UPDATE SET device_id = excluded.device_id, at_ms = excluded.at_ms
                 WHERE excluded.at_ms >= tag_sightings.at_ms",
            )?
            .execute(params![tag, device, at_ms])?;
        Ok(())
    }

    fn in_other_cabinet(&mut self, carrier: i64, device: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM cabinet_contents
                                WHERE carrier_id = ?1 AND device_id != ?2)",
            )?
            .query_row(params![carrier, device], |r| r.get(0))?)
    }

    fn since_issue(
        &mut self,
        carrier: i64,
        device: &str,
    ) -> Result<Option<SinceIssue>, StoreError> {
        let conn = self.conn();
        let issued: Option<Option<i64>> = conn
            .prepare_cached(
                "SELECT max(so.issued_at_ms) FROM signout_carriers sc
                 JOIN signouts so ON so.id = sc.signout_id
                 WHERE sc.carrier_id = ?1 AND sc.returned_at_ms IS NULL AND so.state = 'out'
                 GROUP BY sc.carrier_id",
            )?
            .query_row([carrier], |r| r.get(0))
            .optional()?;
        let Some(issued) = issued else {
            return Ok(None);
        };
        let (removal, arrival): (Option<i64>, Option<i64>) = conn
            .prepare_cached(
                "SELECT max(at_ms) FILTER (WHERE direction = 'out'),
                        max(at_ms) FILTER (WHERE direction = 'in')
                 FROM carrier_events
                 WHERE carrier_id = ?1 AND device_id = ?2 AND kind = 'cabinet'",
            )?
            .query_row(params![carrier, device], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let pending: Option<i64> = conn
            .prepare_cached(
                "SELECT removed_at_ms FROM pending_removals
                 WHERE device_id = ?1 AND carrier_id = ?2",
            )?
            .query_row(params![device, carrier], |r| r.get(0))
            .optional()?;
        let (seen_at, seen_ms): (Option<String>, Option<i64>) = conn
            .prepare_cached("SELECT last_seen_device, last_seen_at_ms FROM carriers WHERE id = ?1")?
            .query_row([carrier], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(Some(SinceIssue {
            issued_at_ms: issued.unwrap_or(i64::MIN),
            last_removal_here_ms: removal.max(pending),
            last_arrival_here_ms: arrival,
            last_seen: match (seen_at, seen_ms) {
                (Some(device), Some(at)) => Some((device, at)),
                _ => None,
            },
        }))
    }

    fn cabinet_contents(&mut self, device: &str) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT carrier_id FROM cabinet_contents WHERE device_id = ?1 ORDER BY carrier_id",
        )?;
        let rows = stmt.query_map([device], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn pending_removals_at(&mut self, device: &str) -> Result<Vec<(i64, bool)>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT pr.carrier_id, c.state = 'out' FROM pending_removals pr
             JOIN carriers c ON c.id = pr.carrier_id WHERE pr.device_id = ?1",
        )?;
        let rows = stmt.query_map([device], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn add_to_cabinet(
        &mut self,
        device: &str,
        carrier: i64,
        since_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT OR IGNORE INTO cabinet_contents (device_id, carrier_id, since_ms)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![device, carrier, since_ms])?;
        Ok(())
    }

    fn remove_from_cabinet(&mut self, device: &str, carrier: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "DELETE FROM cabinet_contents WHERE device_id = ?1 AND carrier_id = ?2",
            )?
            .execute(params![device, carrier])?;
        Ok(())
    }

    fn add_pending_removal(
        &mut self,
        device: &str,
        carrier: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT OR IGNORE INTO pending_removals (device_id, carrier_id, removed_at_ms)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![device, carrier, at_ms])?;
        Ok(())
    }

    fn clear_pending_removals(&mut self, carrier: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("DELETE FROM pending_removals WHERE carrier_id = ?1")?
            .execute([carrier])?;
        Ok(())
    }

    fn mark_found(&mut self, carrier: i64) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE carriers SET state = 'in_storage', missing_since_ms = NULL
                 WHERE id = ?1 AND state = 'missing'",
            )?
            .execute([carrier])?;
        Ok(changed == 1)
    }

    fn health_json(&mut self, device: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT health_json FROM device_status WHERE device_id = ?1")?
            .query_row([device], |r| r.get(0))
            .optional()?
            .flatten())
    }

    fn set_health(&mut self, device: &str, health_json: &str) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO device_status (device_id, health_json) VALUES (?1, ?2)
                 ON CONFLICT (device_id) DO UPDATE SET health_json = excluded.health_json",
            )?
            .execute(params![device, health_json])?;
        Ok(())
    }

    fn set_heartbeat(
        &mut self,
        device: &str,
        at_ms: i64,
        health_json: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO device_status (device_id, last_heartbeat_ms, health_json)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (device_id) DO UPDATE
                 SET last_heartbeat_ms = excluded.last_heartbeat_ms,
                     health_json = excluded.health_json",
            )?
            .execute(params![device, at_ms, health_json])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::MemoryDb;

    /// The lookups made for every tag and badge read at a gate run as plain index probes: no
    /// temporary table, sorter or automatic index per read. (An `IN (?1, ?2)` built an
    /// ephemeral table at every badge read, an `ORDER BY` a sorter for every carrier out.)
    #[test]
    fn the_lookups_of_a_passage_open_no_temporary_structures() {
        let db = MemoryDb::new();
        for sql in [PERSON_BY_BADGE, ACTIVE_SIGNOUTS] {
            let ops = db.opcodes(sql);
            let temporary: Vec<_> = ops
                .iter()
                .filter(|op| {
                    ["Ephemeral", "Sorter", "Autoindex"]
                        .iter()
                        .any(|t| op.contains(t))
                })
                .collect();
            assert!(temporary.is_empty(), "{temporary:?} in {sql}");
        }
    }
}
