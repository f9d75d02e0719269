//! [`MoveRows`] over SQLite.

use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteTx, constraint, level_column};
use crate::domain::carrier::{CarrierKind, CarrierState};
use crate::domain::ids::{
    CarrierId, CollectionId, DeviceId, PersonId, RepairId, RequestId, StocktakeId, UserId,
};
use crate::domain::moves::{CountedScan, Outcome, ScopeKind};
use crate::domain::time::{Date, Timestamp};
use crate::store::StoreError;
use crate::store::moves::{
    CarrierLine, CollectionHead, CollectionItem, Loan, MoveRows, NewRepair, NewStocktake,
    RepairRow, ResolutionRow, RetentionLine, StepRow, StocktakeHead,
};
use crate::store::policy::AllowedRow;
use custos_protocol::epc::Epc;
use custos_protocol::uplink::AllowedCarrier;

const STOCKTAKE_COLUMNS: &str = "SELECT id, scope_kind, scope_ref, desk_device, opened_by, \
     opened_at, closed_by, closed_at FROM stocktakes";

fn stocktake_row(r: &Row<'_>) -> rusqlite::Result<StocktakeHead> {
    Ok(StocktakeHead {
        id: r.get(0)?,
        scope_kind: r.get(1)?,
        scope_ref: r.get(2)?,
        desk_device: r.get(3)?,
        opened_by: r.get(4)?,
        opened_at: r.get(5)?,
        closed_by: r.get(6)?,
        closed_at: r.get(7)?,
    })
}

/// `c.id, c.control_no, c.level, c.state, c.owner_unit` from columns `at..at+5`.
fn line_at(r: &Row<'_>, at: usize) -> rusqlite::Result<CarrierLine> {
    Ok(CarrierLine {
        id: r.get(at)?,
        control_no: r.get(at + 1)?,
        level: level_column(r, at + 2)?,
        state: r.get(at + 3)?,
        owner_unit: r.get(at + 4)?,
    })
}

fn retention_row(r: &Row<'_>) -> rusqlite::Result<RetentionLine> {
    Ok(RetentionLine {
        carrier: line_at(r, 0)?,
        retention_until: r.get(5)?,
        distribution_scope: r.get(6)?,
    })
}

const RETENTION_COLUMNS: &str = "SELECT c.id, c.control_no, c.level, c.state, c.owner_unit, \
     c.retention_until, c.distribution_scope FROM carriers c";

impl SqliteTx<'_> {
    fn carrier_ids(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<CarrierId>, StoreError> {
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map(p, |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn exists(&self, sql: &str, value: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(sql)?
            .query_row([value], |r| r.get(0))?)
    }
}

impl MoveRows for SqliteTx<'_> {
    fn stocktake_scope(
        &mut self,
        kind: ScopeKind,
        scope_ref: &str,
    ) -> Result<Vec<CarrierId>, StoreError> {
        let (check, what, list) = match kind {
            ScopeKind::Device => (
                "SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1 AND kind = 'cabinet')",
                "cabinet",
                "SELECT id FROM carriers WHERE home_device = ?1 AND state = 'in_storage'
                 AND id NOT IN (SELECT carrier_id FROM repairs WHERE returned_at IS NULL)
                 ORDER BY id",
            ),
            ScopeKind::Zone => (
                "SELECT EXISTS (SELECT 1 FROM zones WHERE id = ?1)",
                "zone",
                "SELECT c.id FROM carriers c JOIN devices d ON d.id = c.home_device
                 WHERE d.zone = ?1 AND c.state = 'in_storage'
                 AND c.id NOT IN (SELECT carrier_id FROM repairs WHERE returned_at IS NULL)
                 ORDER BY c.id",
            ),
            ScopeKind::Custodian => (
                "SELECT EXISTS (SELECT 1 FROM people WHERE CAST(id AS TEXT) = ?1)",
                "person",
                "SELECT id FROM carriers WHERE CAST(holder AS TEXT) = ?1 AND state = 'out' ORDER BY id",
            ),
        };
        if !self.exists(check, scope_ref)? {
            return Err(StoreError::UnknownReference { what });
        }
        self.carrier_ids(list, [scope_ref])
    }

    fn insert_stocktake(
        &mut self,
        new: &NewStocktake,
        expected: &[CarrierId],
        by: &str,
        at: Timestamp,
    ) -> Result<StocktakeId, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO stocktakes (scope_kind, scope_ref, desk_device, opened_by, opened_at,
                                     opened_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            new.scope_kind,
            new.scope_ref,
            new.desk_device,
            by,
            at,
            at.unix_ms()
        ])
        .map_err(|e| constraint(e, "stocktake", "desk"))?;
        let id = StocktakeId(conn.last_insert_rowid());
        let mut stmt = conn.prepare_cached(
            "INSERT INTO stocktake_expected (stocktake_id, carrier_id) VALUES (?1, ?2)",
        )?;
        for carrier in expected {
            stmt.execute(params![id, carrier])?;
        }
        Ok(id)
    }

    fn stocktake_head(&mut self, id: StocktakeId) -> Result<StocktakeHead, StoreError> {
        self.conn()
            .prepare_cached(&format!("{STOCKTAKE_COLUMNS} WHERE id = ?1"))?
            .query_row([id], stocktake_row)
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn stocktakes(&mut self) -> Result<Vec<StocktakeHead>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("{STOCKTAKE_COLUMNS} ORDER BY id DESC LIMIT 200"))?;
        let rows = stmt.query_map([], stocktake_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn stocktake_expected(&mut self, id: StocktakeId) -> Result<Vec<CarrierLine>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT c.id, c.control_no, c.level, c.state, c.owner_unit
             FROM stocktake_expected e JOIN carriers c ON c.id = e.carrier_id
             WHERE e.stocktake_id = ?1 ORDER BY c.id",
        )?;
        let rows = stmt.query_map([id], |r| line_at(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_stocktake_scan(
        &mut self,
        id: StocktakeId,
        scan: &CountedScan,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT OR IGNORE INTO stocktake_scans
                     (stocktake_id, tag, carrier_id, scanned_by, scanned_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, scan.tag, scan.carrier, by, at])?;
        Ok(())
    }

    fn stocktake_scans(&mut self, id: StocktakeId) -> Result<Vec<CountedScan>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT tag, carrier_id FROM stocktake_scans WHERE stocktake_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(CountedScan {
                tag: r.get(0)?,
                carrier: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn desk_scans(
        &mut self,
        device: &DeviceId,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CountedScan>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT coalesce((SELECT min(t.tag) FROM carrier_tags t WHERE t.carrier_id = ce.carrier_id),
                             'control_no:' || c.control_no),
                    ce.carrier_id
             FROM carrier_events ce JOIN carriers c ON c.id = ce.carrier_id
             WHERE ce.kind = 'scan' AND ce.device_id = ?1 AND ce.at_ms BETWEEN ?2 AND ?3
             GROUP BY ce.carrier_id ORDER BY min(ce.at_ms)",
        )?;
        let rows = stmt.query_map(params![device, since.unix_ms(), until.unix_ms()], |r| {
            Ok(CountedScan {
                tag: r.get(0)?,
                carrier: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn close_stocktake(
        &mut self,
        id: StocktakeId,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE stocktakes SET closed_by = ?2, closed_at = ?3
                 WHERE id = ?1 AND closed_at IS NULL",
            )?
            .execute(params![id, by, at])?;
        Ok(())
    }

    fn stocktake_resolutions(&mut self, id: StocktakeId) -> Result<Vec<ResolutionRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT carrier_id, resolution, note, resolved_by, resolved_at
             FROM stocktake_resolutions WHERE stocktake_id = ?1 ORDER BY carrier_id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(ResolutionRow {
                carrier_id: r.get(0)?,
                resolution: r.get(1)?,
                note: r.get(2)?,
                resolved_by: r.get(3)?,
                resolved_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_stocktake_resolution(
        &mut self,
        id: StocktakeId,
        row: &ResolutionRow,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO stocktake_resolutions
                     (stocktake_id, carrier_id, resolution, note, resolved_by, resolved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                id,
                row.carrier_id,
                row.resolution,
                row.note,
                row.resolved_by,
                row.resolved_at
            ])
            .map_err(|e| constraint(e, "resolution", "carrier"))?;
        Ok(())
    }

    fn carrier_line(&mut self, id: CarrierId) -> Result<CarrierLine, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT id, control_no, level, state, owner_unit FROM carriers WHERE id = ?1",
            )?
            .query_row([id], |r| line_at(r, 0))
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn set_carrier_state(&mut self, id: CarrierId, state: CarrierState) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE carriers SET state = ?2 WHERE id = ?1")?
            .execute(params![id, state])?;
        Ok(())
    }

    fn loans(&mut self) -> Result<Vec<Loan>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT c.id,
                    (SELECT sc.signout_id FROM signout_carriers sc
                         JOIN signouts so ON so.id = sc.signout_id
                     WHERE sc.carrier_id = c.id AND so.state = 'out' AND sc.returned_at_ms IS NULL
                     ORDER BY sc.signout_id DESC LIMIT 1),
                    c.holder, coalesce(p.department, c.owner_unit)
             FROM carriers c LEFT JOIN people p ON p.id = c.holder
             WHERE c.state = 'out' ORDER BY c.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Loan {
                carrier_id: r.get(0)?,
                signout_id: r.get(1)?,
                holder: r.get::<_, Option<PersonId>>(2)?,
                department: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_collection(
        &mut self,
        year: i64,
        loans: &[Loan],
        by: &str,
        at: Timestamp,
    ) -> Result<CollectionId, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO collections (year, opened_by, opened_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![year, by, at])
        .map_err(|e| constraint(e, "collection year", "collection"))?;
        let id = CollectionId(conn.last_insert_rowid());
        let mut stmt = conn.prepare_cached(
            "INSERT INTO collection_items (collection_id, carrier_id, signout_id, holder, department)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for loan in loans {
            stmt.execute(params![
                id,
                loan.carrier_id,
                loan.signout_id,
                loan.holder,
                loan.department
            ])?;
        }
        Ok(id)
    }

    fn collection_head(&mut self, id: CollectionId) -> Result<CollectionHead, StoreError> {
        self.conn()
            .prepare_cached("SELECT id, year, opened_by, opened_at FROM collections WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(CollectionHead {
                    id: r.get(0)?,
                    year: r.get(1)?,
                    opened_by: r.get(2)?,
                    opened_at: r.get(3)?,
                })
            })
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn collections(&mut self) -> Result<Vec<CollectionHead>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, year, opened_by, opened_at FROM collections ORDER BY year DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(CollectionHead {
                id: r.get(0)?,
                year: r.get(1)?,
                opened_by: r.get(2)?,
                opened_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn collection_items(&mut self, id: CollectionId) -> Result<Vec<CollectionItem>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT c.id, c.control_no, c.level, c.state, c.owner_unit,
                    i.signout_id, i.holder, p.name, i.department, i.outcome, i.closed_by,
                    i.closed_at
             FROM collection_items i JOIN carriers c ON c.id = i.carrier_id
                  LEFT JOIN people p ON p.id = i.holder
             WHERE i.collection_id = ?1 ORDER BY i.department, c.control_no",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(CollectionItem {
                carrier: line_at(r, 0)?,
                signout_id: r.get(5)?,
                holder_id: r.get(6)?,
                holder_name: r.get(7)?,
                department: r.get(8)?,
                outcome: r.get::<_, Option<Outcome>>(9)?,
                closed_by: r.get(10)?,
                closed_at: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn close_collection_item(
        &mut self,
        id: CollectionId,
        carrier: CarrierId,
        outcome: Outcome,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE collection_items SET outcome = ?3, closed_by = ?4, closed_at = ?5
                 WHERE collection_id = ?1 AND carrier_id = ?2 AND outcome IS NULL",
            )?
            .execute(params![id, carrier, outcome, by, at])?;
        Ok(())
    }

    fn retention(&mut self, id: CarrierId) -> Result<RetentionLine, StoreError> {
        self.conn()
            .prepare_cached(&format!("{RETENTION_COLUMNS} WHERE c.id = ?1"))?
            .query_row([id], retention_row)
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn set_retention(
        &mut self,
        id: CarrierId,
        until: Option<Date>,
        scope: Option<&str>,
    ) -> Result<(), StoreError> {
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE carriers SET retention_until = ?2, distribution_scope = ?3 WHERE id = ?1",
            )?
            .execute(params![id, until, scope])?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn retention_due(&mut self, today: Date) -> Result<Vec<RetentionLine>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "{RETENTION_COLUMNS} WHERE c.retention_until < ?1
               AND c.state NOT IN ('archived', 'destroyed')
             ORDER BY c.retention_until, c.id"
        ))?;
        let rows = stmt.query_map([today], retention_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn request_steps(&mut self, id: RequestId) -> Result<Vec<StepRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT s.step, s.by_user, u.username, u.person_id, s.at, s.note
             FROM request_steps s JOIN users u ON u.id = s.by_user
             WHERE s.request_id = ?1 ORDER BY s.rowid",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(StepRow {
                step: r.get(0)?,
                by_user: r.get(1)?,
                by_username: r.get(2)?,
                by_person: r.get(3)?,
                at: r.get(4)?,
                note: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_request_step(
        &mut self,
        id: RequestId,
        step: &str,
        by: UserId,
        note: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO request_steps (request_id, step, by_user, at, note)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, step, by, at, note])
            .map_err(|e| constraint(e, "step", "request"))?;
        Ok(())
    }

    fn unit_carriers(&mut self, unit: &str) -> Result<Vec<CarrierLine>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, control_no, level, state, owner_unit FROM carriers
             WHERE owner_unit = ?1 AND state NOT IN ('archived', 'destroyed', 'declassified')
             ORDER BY id",
        )?;
        let rows = stmt.query_map([unit], |r| line_at(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_moving(
        &mut self,
        id: CarrierId,
        state: CarrierState,
        dispatch_until_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE carriers SET state = ?2, dispatch_until_ms = ?3 WHERE id = ?1")?
            .execute(params![id, state, dispatch_until_ms])?;
        Ok(())
    }

    fn set_custody(
        &mut self,
        id: CarrierId,
        state: CarrierState,
        owner_unit: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE carriers SET state = ?2, owner_unit = ?3, dispatch_until_ms = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id, state, owner_unit])?;
        Ok(())
    }

    fn dispatch_window(&mut self, id: CarrierId) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT dispatch_until_ms FROM carriers WHERE id = ?1 AND state = 'dispatched'",
            )?
            .query_row([id], |r| r.get(0))
            .optional()?
            .flatten())
    }

    fn dispatch_allowed(&mut self, now_ms: i64) -> Result<Vec<AllowedRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT ct.tag, c.dispatch_until_ms, c.level
             FROM carriers c JOIN carrier_tags ct ON ct.carrier_id = c.id
             WHERE c.state = 'dispatched' AND c.dispatch_until_ms > ?1
               AND substr(ct.tag, 1, 4) = 'epc:'
             ORDER BY ct.tag",
        )?;
        let mut rows = stmt.query([now_ms])?;
        let mut allowed = Vec::new();
        while let Some(row) = rows.next()? {
            let tag: String = row.get(0)?;
            let Ok(epc) = Epc::from_hex(&tag[4..]) else {
                continue;
            };
            allowed.push(AllowedRow {
                entry: AllowedCarrier {
                    epc,
                    until_ms: row.get(1)?,
                    borrower_badges: Vec::new(),
                    badge_required: false,
                },
                level: level_column(row, 2)?,
            });
        }
        Ok(allowed)
    }

    fn carrier_kind(&mut self, id: CarrierId) -> Result<CarrierKind, StoreError> {
        self.conn()
            .prepare_cached("SELECT kind FROM carriers WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn open_repair(&mut self, id: CarrierId) -> Result<Option<RepairId>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT id FROM repairs WHERE carrier_id = ?1 AND returned_at IS NULL")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    fn insert_repair(
        &mut self,
        new: &NewRepair,
        by: &str,
        at: Timestamp,
    ) -> Result<RepairId, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO repairs (carrier_id, repairer, qualification_no, qualified_until, mode,
                 escort, media, media_note, reason, sent_by, sent_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            new.carrier_id,
            new.repairer,
            new.qualification_no,
            new.qualified_until,
            new.mode,
            new.escort,
            new.media,
            new.media_note,
            new.reason,
            by,
            at
        ])
        .map_err(|e| constraint(e, "open repair", "repair"))?;
        Ok(RepairId(conn.last_insert_rowid()))
    }

    fn repair(&mut self, id: RepairId) -> Result<RepairRow, StoreError> {
        self.conn()
            .prepare_cached(&format!("{REPAIR_COLUMNS} WHERE r.id = ?1"))?
            .query_row([id], repair_row)
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn repairs(&mut self) -> Result<Vec<RepairRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "{REPAIR_COLUMNS} ORDER BY r.returned_at IS NOT NULL, r.id DESC"
        ))?;
        let rows = stmt.query_map([], repair_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn close_repair(
        &mut self,
        id: RepairId,
        note: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE repairs SET returned_by = ?2, returned_at = ?3, return_note = ?4
                 WHERE id = ?1 AND returned_at IS NULL",
            )?
            .execute(params![id, by, at, note])?;
        Ok(())
    }
}

const REPAIR_COLUMNS: &str = "SELECT c.id, c.control_no, c.level, c.state, c.owner_unit, \
     r.id, r.repairer, r.qualification_no, r.qualified_until, r.mode, r.escort, r.media, \
     r.media_note, r.reason, r.sent_by, r.sent_at, r.returned_by, r.returned_at, r.return_note \
     FROM repairs r JOIN carriers c ON c.id = r.carrier_id";

fn repair_row(r: &Row<'_>) -> rusqlite::Result<RepairRow> {
    Ok(RepairRow {
        carrier: line_at(r, 0)?,
        id: r.get(5)?,
        repairer: r.get(6)?,
        qualification_no: r.get(7)?,
        qualified_until: r.get(8)?,
        mode: r.get(9)?,
        escort: r.get(10)?,
        media: r.get(11)?,
        media_note: r.get(12)?,
        reason: r.get(13)?,
        sent_by: r.get(14)?,
        sent_at: r.get(15)?,
        returned_by: r.get(16)?,
        returned_at: r.get(17)?,
        return_note: r.get(18)?,
    })
}
