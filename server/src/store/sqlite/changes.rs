//! [`ChangeRows`] over SQLite.

use rusqlite::{OptionalExtension, params};

use super::{SqliteTx, constraint, level_column};
use crate::domain::carrier::CarrierState;
use crate::domain::destruction::Witness;
use crate::domain::ids::{CarrierId, PersonId};
use crate::domain::level::Level;
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::changes::{CarrierFacts, ChangeRows, Lineage, LineageCarrier};

/// The chain upwards from ?1 (itself first), with the depth.
const ANCESTORS: &str = "WITH RECURSIVE up(id, original_id, depth) AS (
        SELECT id, original_id, 0 FROM carriers WHERE id = ?1
        UNION ALL
        SELECT c.id, c.original_id, up.depth + 1 FROM carriers c JOIN up ON c.id = up.original_id
        WHERE up.depth < 1000
     )";

fn lineage_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LineageCarrier> {
    Ok(LineageCarrier {
        id: r.get(0)?,
        control_no: r.get(1)?,
        copy_no: r.get(2)?,
        level: level_column(r, 3)?,
        state: r.get(4)?,
    })
}

const LINEAGE_COLUMNS: &str = "id, control_no, copy_no, level, state";

impl SqliteTx<'_> {
    fn lineage_carrier(&self, id: CarrierId) -> Result<Option<LineageCarrier>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {LINEAGE_COLUMNS} FROM carriers WHERE id = ?1"
            ))?
            .query_row([id], lineage_row)
            .optional()?)
    }
}

impl ChangeRows for SqliteTx<'_> {
    fn carrier_facts(&mut self, ids: &[CarrierId]) -> Result<Vec<CarrierFacts>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, control_no, kind, level, state, copy_no, original_id
             FROM carriers WHERE id = ?1",
        )?;
        ids.iter()
            .map(|id| {
                stmt.query_row([id], |r| {
                    Ok(CarrierFacts {
                        id: r.get(0)?,
                        control_no: r.get(1)?,
                        kind: r.get(2)?,
                        level: level_column(r, 3)?,
                        state: r.get(4)?,
                        copy_no: r.get(5)?,
                        original_id: r.get(6)?,
                    })
                })
                .optional()?
                .ok_or(StoreError::UnknownReference { what: "carrier" })
            })
            .collect()
    }

    fn lineage_root(&mut self, id: CarrierId) -> Result<CarrierId, StoreError> {
        self.conn()
            .prepare_cached(&format!(
                "{ANCESTORS} SELECT id FROM up ORDER BY depth DESC LIMIT 1"
            ))?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::UnknownReference { what: "carrier" })
    }

    fn series_copy_nos(&mut self, root: CarrierId) -> Result<Vec<Option<u32>>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "WITH RECURSIVE down(id, depth) AS (
                SELECT id, 0 FROM carriers WHERE id = ?1
                UNION ALL
                SELECT c.id, down.depth + 1 FROM carriers c JOIN down ON c.original_id = down.id
                WHERE down.depth < 1000
             )
             SELECT c.copy_no FROM down JOIN carriers c ON c.id = down.id",
        )?;
        let rows = stmt.query_map([root], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_copy(
        &mut self,
        original: CarrierId,
        copy_no: u32,
        control_no: &str,
        at: Timestamp,
    ) -> Result<CarrierId, StoreError> {
        let conn = self.conn();
        let n = conn
            .prepare_cached(
                "INSERT INTO carriers (control_no, kind, level, title, copy_no, owner_unit,
                                       home_device, state, created_at, original_id,
                                       secrecy_years)
                 SELECT ?2, kind, level, title, ?3, owner_unit, home_device, 'in_storage', ?4,
                        id, secrecy_years
                 FROM carriers WHERE id = ?1",
            )?
            .execute(params![original, control_no, copy_no, at])
            .map_err(|e| constraint(e, "control_no", "carrier"))?;
        if n == 0 {
            return Err(StoreError::UnknownReference { what: "carrier" });
        }
        Ok(CarrierId(conn.last_insert_rowid()))
    }

    fn set_level_and_state(
        &mut self,
        id: CarrierId,
        level: Level,
        state: CarrierState,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE carriers SET level = ?2, state = ?3 WHERE id = ?1")?
            .execute(params![id, level.code(), state])?;
        Ok(())
    }

    fn retire_tags(&mut self, id: CarrierId, at: Timestamp) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE carrier_tags SET retired_at_ms = ?2
                 WHERE carrier_id = ?1 AND retired_at_ms IS NULL",
            )?
            .execute(params![id, at.unix_ms()])?;
        Ok(())
    }

    fn witness(&mut self, person: PersonId) -> Result<Witness, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT p.id, EXISTS (SELECT 1 FROM users u WHERE u.person_id = p.id
                                        AND u.disabled = 0
                                        AND (',' || u.roles || ',') LIKE '%,security_officer,%')
                 FROM people p WHERE p.id = ?1",
            )?
            .query_row([person], |r| {
                Ok(Witness {
                    person: r.get(0)?,
                    is_officer: r.get(1)?,
                })
            })
            .optional()?
            .ok_or(StoreError::UnknownReference { what: "witness" })
    }

    fn lineage(&mut self, id: CarrierId) -> Result<Lineage, StoreError> {
        let Some(me) = self.lineage_carrier(id)? else {
            return Err(StoreError::NotFound);
        };
        let original_id: Option<CarrierId> = self
            .conn()
            .prepare_cached("SELECT original_id FROM carriers WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        let original = match original_id {
            Some(o) => self.lineage_carrier(o)?,
            None => None,
        };
        let root_id = self.lineage_root(id)?;
        let root = if root_id == id {
            me
        } else {
            self.lineage_carrier(root_id)?
                .ok_or_else(|| StoreError::Corrupt(format!("carrier {root_id} vanished")))?
        };
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {LINEAGE_COLUMNS} FROM carriers INDEXED BY carriers_by_original
             WHERE original_id = ?1 ORDER BY copy_no, id"
        ))?;
        let copies = stmt
            .query_map([id], lineage_row)?
            .collect::<Result<_, _>>()?;
        Ok(Lineage {
            original,
            root,
            copies,
        })
    }
}
