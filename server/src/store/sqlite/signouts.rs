//! [`SignoutRows`] over SQLite.

use rusqlite::{OptionalExtension, params};

use super::{LIVE_CLAIMS, SqliteTx, level_column, ms_column, required_ms_column};
use crate::domain::ids::{CarrierId, PersonId, SignoutId, UserId};
use crate::domain::level::Level;
use crate::domain::signout::{Borrower, CarrierStanding, Party, SignoutState};
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::signouts::{
    Approval, NewSignout, OutstandingOn, PersonRef, Signout, SignoutCarrier, SignoutHead,
    SignoutRows, UserRef,
};

const SIGNOUT_SELECT: &str = "SELECT so.id, so.state, so.requester, u.username, so.borrower,
        p.name, so.purpose, so.due_at_ms, so.may_leave, so.created_at, so.issued_at_ms,
        so.closed_at_ms, so.rejection_reason, so.override_note
     FROM signouts so
     JOIN users u ON u.id = so.requester
     JOIN people p ON p.id = so.borrower";

fn signout_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Signout> {
    Ok(Signout {
        id: r.get(0)?,
        state: r.get(1)?,
        requester: UserRef {
            id: r.get(2)?,
            username: r.get(3)?,
        },
        borrower: PersonRef {
            id: r.get(4)?,
            name: r.get(5)?,
        },
        purpose: r.get(6)?,
        due_at: required_ms_column(r, 7)?,
        may_leave: r.get(8)?,
        created_at: r.get(9)?,
        issued_at: ms_column(r, 10)?,
        closed_at: ms_column(r, 11)?,
        carriers: Vec::new(),
        approvals: Vec::new(),
        approvals_needed: 0,
        override_note: r.get(13)?,
        rejection_reason: r.get(12)?,
        would_refuse: None,
    })
}

fn party_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Party> {
    Ok(Party {
        user: r.get(0)?,
        person: r.get(1)?,
    })
}

impl SqliteTx<'_> {
    fn ids(&self, sql: &str, id: SignoutId) -> Result<Vec<CarrierId>, StoreError> {
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Fill in a shown sign-out's carriers and approvals.
    fn with_parts(&self, mut s: Signout) -> Result<Signout, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT c.id, c.control_no, c.kind, c.level, c.state, sc.returned_at_ms,
                    sc.returned_by
             FROM signout_carriers sc JOIN carriers c ON c.id = sc.carrier_id
             WHERE sc.signout_id = ?1 ORDER BY c.id",
        )?;
        let rows = stmt.query_map([s.id], |r| {
            Ok(SignoutCarrier {
                id: r.get(0)?,
                control_no: r.get(1)?,
                kind: r.get(2)?,
                level: level_column(r, 3)?,
                state: r.get(4)?,
                returned_at: ms_column(r, 5)?,
                returned_by: r.get(6)?,
            })
        })?;
        s.carriers = rows.collect::<Result<_, _>>()?;
        let mut stmt = conn.prepare_cached(
            "SELECT u.id, u.username, a.at, a.override_reason
             FROM signout_approvals a JOIN users u ON u.id = a.approver
             WHERE a.signout_id = ?1 ORDER BY a.at, u.id",
        )?;
        let rows = stmt.query_map([s.id], |r| {
            Ok(Approval {
                approver: UserRef {
                    id: r.get(0)?,
                    username: r.get(1)?,
                },
                at: r.get(2)?,
                override_reason: r.get(3)?,
            })
        })?;
        s.approvals = rows.collect::<Result<_, _>>()?;
        Ok(s)
    }
}

impl SignoutRows for SqliteTx<'_> {
    fn party_by_username(&mut self, username: &str) -> Result<Party, StoreError> {
        self.conn()
            .prepare_cached("SELECT id, person_id FROM users WHERE username = ?1")?
            .query_row([username], party_row)
            .optional()?
            .ok_or_else(|| StoreError::Corrupt(format!("no account for actor {username:?}")))
    }

    fn party_of(&mut self, user: UserId) -> Result<Party, StoreError> {
        self.conn()
            .prepare_cached("SELECT id, person_id FROM users WHERE id = ?1")?
            .query_row([user], party_row)
            .optional()?
            .ok_or_else(|| StoreError::Corrupt(format!("no account {user}")))
    }

    fn signout_head(&mut self, id: SignoutId) -> Result<SignoutHead, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT state, requester, borrower, override_note IS NOT NULL
                 FROM signouts WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(SignoutHead {
                    state: r.get(0)?,
                    requester: r.get(1)?,
                    borrower: r.get(2)?,
                    needs_override: r.get(3)?,
                })
            })
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn carrier_standings(
        &mut self,
        ids: &[CarrierId],
        except: Option<SignoutId>,
    ) -> Result<Vec<CarrierStanding>, StoreError> {
        let sql = format!(
            "SELECT c.id, c.level, c.state,
                    (SELECT max(l.signout_id) FROM ({LIVE_CLAIMS}) l
                     WHERE l.carrier_id = c.id AND l.signout_id IS NOT ?2)
             FROM carriers c WHERE c.id = ?1"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        ids.iter()
            .map(|id| {
                stmt.query_row(params![id, except], |r| {
                    Ok(CarrierStanding {
                        id: r.get(0)?,
                        level: level_column(r, 1)?,
                        state: r.get(2)?,
                        live_signout: r.get(3)?,
                    })
                })
                .optional()?
                .ok_or(StoreError::UnknownReference { what: "carrier" })
            })
            .collect()
    }

    fn signout_carriers(&mut self, id: SignoutId) -> Result<Vec<CarrierId>, StoreError> {
        self.ids(
            "SELECT carrier_id FROM signout_carriers WHERE signout_id = ?1 ORDER BY carrier_id",
            id,
        )
    }

    fn outstanding_carriers(&mut self, id: SignoutId) -> Result<Vec<CarrierId>, StoreError> {
        self.ids(
            "SELECT carrier_id FROM signout_carriers
             WHERE signout_id = ?1 AND returned_at_ms IS NULL ORDER BY carrier_id",
            id,
        )
    }

    fn borrower(&mut self, person: PersonId) -> Result<Borrower, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT status, category, training_valid_until, commitment_signed_on
                 FROM people WHERE id = ?1",
            )?
            .query_row([person], |r| {
                Ok(Borrower {
                    status: r.get(0)?,
                    category: r.get(1)?,
                    training_valid_until: r.get(2)?,
                    commitment_signed_on: r.get(3)?,
                })
            })
            .optional()?
            .ok_or(StoreError::UnknownReference { what: "borrower" })
    }

    fn signout_levels(&mut self, id: SignoutId) -> Result<Vec<Level>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT c.level FROM signout_carriers sc JOIN carriers c ON c.id = sc.carrier_id
             WHERE sc.signout_id = ?1",
        )?;
        let rows = stmt.query_map([id], |r| level_column(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn approvers(&mut self, id: SignoutId) -> Result<Vec<Party>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT u.id, u.person_id FROM signout_approvals a JOIN users u ON u.id = a.approver
             WHERE a.signout_id = ?1",
        )?;
        let rows = stmt.query_map([id], party_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_signout(
        &mut self,
        requester: UserId,
        new: &NewSignout,
        at: Timestamp,
    ) -> Result<SignoutId, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO signouts (requester, borrower, purpose, due_at_ms, may_leave, state,
                                   created_at, override_note)
             VALUES (?1, ?2, ?3, ?4, ?5, 'requested', ?6, ?7)",
        )?
        .execute(params![
            requester,
            new.borrower,
            new.purpose,
            new.due_at.unix_ms(),
            new.may_leave,
            at,
            new.override_note
        ])?;
        let id = SignoutId(conn.last_insert_rowid());
        let mut stmt = conn.prepare_cached(
            "INSERT INTO signout_carriers (signout_id, carrier_id) VALUES (?1, ?2)",
        )?;
        for carrier in &new.carrier_ids {
            stmt.execute(params![id, carrier])?;
        }
        Ok(id)
    }

    fn insert_approval(
        &mut self,
        id: SignoutId,
        approver: UserId,
        override_reason: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO signout_approvals (signout_id, approver, at, override_reason)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, approver, at, override_reason])?;
        Ok(())
    }

    fn set_signout_state(
        &mut self,
        id: SignoutId,
        state: SignoutState,
        closed_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE signouts SET state = ?2, closed_at_ms = coalesce(?3, closed_at_ms)
                 WHERE id = ?1",
            )?
            .execute(params![id, state, closed_at.map(Timestamp::unix_ms)])?;
        Ok(())
    }

    fn reject_signout(
        &mut self,
        id: SignoutId,
        by: UserId,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE signouts SET state = 'rejected', closed_at_ms = ?4, rejected_by = ?2,
                        rejection_reason = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, by, reason, at.unix_ms()])?;
        Ok(())
    }

    fn mark_issued(
        &mut self,
        id: SignoutId,
        borrower: PersonId,
        carriers: &[CarrierId],
        issuer: UserId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "UPDATE carriers SET state = 'out', holder = ?2, missing_since_ms = NULL
             WHERE id = ?1",
        )?;
        for carrier in carriers {
            stmt.execute(params![carrier, borrower])?;
        }
        conn.prepare_cached(
            "UPDATE signouts SET state = 'out', issued_at_ms = ?2, issued_by = ?3 WHERE id = ?1",
        )?
        .execute(params![id, at.unix_ms(), issuer])?;
        Ok(())
    }

    fn mark_returned(
        &mut self,
        id: SignoutId,
        carrier: CarrierId,
        at: Timestamp,
        by: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "UPDATE signout_carriers SET returned_at_ms = ?3, returned_by = ?4
             WHERE signout_id = ?1 AND carrier_id = ?2",
        )?
        .execute(params![id, carrier, at.unix_ms(), by])?;
        conn.prepare_cached(
            "UPDATE carriers SET state = 'in_storage', holder = NULL, missing_since_ms = NULL
             WHERE id = ?1",
        )?
        .execute([carrier])?;
        Ok(())
    }

    fn outstanding_on(&mut self, carrier: CarrierId) -> Result<Option<OutstandingOn>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT so.id, c.home_device
                 FROM signout_carriers sc
                 JOIN signouts so ON so.id = sc.signout_id
                 JOIN carriers c ON c.id = sc.carrier_id
                 WHERE sc.carrier_id = ?1 AND sc.returned_at_ms IS NULL AND so.state = 'out'",
            )?
            .query_row([carrier], |r| {
                Ok(OutstandingOn {
                    signout: r.get(0)?,
                    home_device: r.get(1)?,
                })
            })
            .optional()?)
    }

    fn signout(&mut self, id: SignoutId) -> Result<Signout, StoreError> {
        let s = self
            .conn()
            .prepare_cached(&format!("{SIGNOUT_SELECT} WHERE so.id = ?1"))?
            .query_row([id], signout_row)
            .optional()?
            .ok_or(StoreError::NotFound)?;
        self.with_parts(s)
    }

    fn signouts(&mut self, state: Option<SignoutState>) -> Result<Vec<Signout>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "{SIGNOUT_SELECT} WHERE ?1 IS NULL OR so.state = ?1 ORDER BY so.id"
        ))?;
        let rows = stmt.query_map([state], signout_row)?;
        let found = rows.collect::<Result<Vec<_>, _>>()?;
        found.into_iter().map(|s| self.with_parts(s)).collect()
    }
}
