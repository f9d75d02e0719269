//! [`ApprovalRows`] over SQLite.

use rusqlite::{OptionalExtension, params};

use super::{SqliteTx, ms_column, required_ms_column};
use crate::domain::approval::{Party, RequestKind, RequestState};
use crate::domain::ids::{CarrierId, RequestId, UserId};
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::approvals::{ApprovalRows, NewRequest, Rejection, Request, RequestHead};
use crate::store::signouts::{Approval, PersonRef, UserRef};

const REQUEST_SELECT: &str = "SELECT r.id, r.kind, r.state, r.requester, u.username,
        r.beneficiary, p.name, r.top_secret, r.body_json, r.created_at_ms, r.rejected_by,
        ru.username, r.rejection_reason, r.decided_at_ms, r.done_at_ms, r.result_json
     FROM requests r
     JOIN users u ON u.id = r.requester
     LEFT JOIN people p ON p.id = r.beneficiary
     LEFT JOIN users ru ON ru.id = r.rejected_by";

fn json_column(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = r.get(idx)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
        })
    })
    .transpose()
}

fn request_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Request> {
    let beneficiary = match (r.get(5)?, r.get::<_, Option<String>>(6)?) {
        (Some(id), Some(name)) => Some(PersonRef { id, name }),
        _ => None,
    };
    let rejection = match (
        r.get::<_, Option<UserId>>(10)?,
        r.get::<_, Option<String>>(11)?,
        r.get::<_, Option<String>>(12)?,
        ms_column(r, 13)?,
    ) {
        (Some(id), Some(username), Some(reason), Some(at)) => Some(Rejection {
            by: UserRef { id, username },
            reason,
            at,
        }),
        _ => None,
    };
    Ok(Request {
        id: r.get(0)?,
        kind: r.get(1)?,
        state: r.get(2)?,
        requester: UserRef {
            id: r.get(3)?,
            username: r.get(4)?,
        },
        beneficiary,
        top_secret: r.get(7)?,
        carrier_ids: Vec::new(),
        body: json_column(r, 8)?.unwrap_or(serde_json::Value::Null),
        created_at: required_ms_column(r, 9)?,
        approvals: Vec::new(),
        approvals_needed: 0,
        rejection,
        done_at: ms_column(r, 14)?,
        result: json_column(r, 15)?,
    })
}

impl SqliteTx<'_> {
    /// Fill in a shown request's carriers and approvals.
    fn request_parts(&mut self, mut req: Request) -> Result<Request, StoreError> {
        req.carrier_ids = self.request_carriers(req.id)?;
        let mut stmt = self.conn().prepare_cached(
            "SELECT u.id, u.username, a.at_ms
             FROM request_approvals a JOIN users u ON u.id = a.approver
             WHERE a.request_id = ?1 ORDER BY a.at_ms, u.id",
        )?;
        let rows = stmt.query_map([req.id], |r| {
            Ok(Approval {
                approver: UserRef {
                    id: r.get(0)?,
                    username: r.get(1)?,
                },
                at: required_ms_column(r, 2)?,
                override_reason: None,
            })
        })?;
        req.approvals = rows.collect::<Result<_, _>>()?;
        Ok(req)
    }
}

impl ApprovalRows for SqliteTx<'_> {
    fn insert_request(&mut self, new: &NewRequest, at: Timestamp) -> Result<RequestId, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO requests (kind, requester, beneficiary, top_secret, body_json,
                                   created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            new.kind,
            new.requester,
            new.beneficiary,
            new.top_secret,
            new.body.to_string(),
            at.unix_ms()
        ])?;
        let id = RequestId(conn.last_insert_rowid());
        let mut stmt = conn.prepare_cached(
            "INSERT INTO request_carriers (request_id, carrier_id) VALUES (?1, ?2)",
        )?;
        for carrier in &new.carriers {
            stmt.execute(params![id, carrier])?;
        }
        Ok(id)
    }

    fn request_head(
        &mut self,
        kind: RequestKind,
        id: RequestId,
    ) -> Result<RequestHead, StoreError> {
        self.conn()
            .prepare_cached(
                "SELECT state, requester, beneficiary, top_secret FROM requests
                 WHERE id = ?1 AND kind = ?2",
            )?
            .query_row(params![id, kind], |r| {
                Ok(RequestHead {
                    state: r.get(0)?,
                    requester: r.get(1)?,
                    beneficiary: r.get(2)?,
                    top_secret: r.get(3)?,
                })
            })
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn request_approvers(&mut self, id: RequestId) -> Result<Vec<Party>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT u.id, u.person_id FROM request_approvals a JOIN users u ON u.id = a.approver
             WHERE a.request_id = ?1 ORDER BY a.at_ms, u.id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(Party {
                user: r.get(0)?,
                person: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_request_approval(
        &mut self,
        id: RequestId,
        approver: UserId,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO request_approvals (request_id, approver, at_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, approver, at.unix_ms()])?;
        Ok(())
    }

    fn set_request_state(
        &mut self,
        id: RequestId,
        state: RequestState,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE requests SET state = ?2, decided_at_ms = ?3 WHERE id = ?1")?
            .execute(params![id, state, at.unix_ms()])?;
        Ok(())
    }

    fn reject_request(
        &mut self,
        id: RequestId,
        by: UserId,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE requests SET state = 'rejected', rejected_by = ?2, rejection_reason = ?3,
                        decided_at_ms = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, by, reason, at.unix_ms()])?;
        Ok(())
    }

    fn complete_request(
        &mut self,
        id: RequestId,
        by: UserId,
        result: &serde_json::Value,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE requests SET state = 'done', done_by = ?2, result_json = ?3,
                        done_at_ms = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, by, result.to_string(), at.unix_ms()])?;
        Ok(())
    }

    fn request_carriers(&mut self, id: RequestId) -> Result<Vec<CarrierId>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT carrier_id FROM request_carriers WHERE request_id = ?1 ORDER BY carrier_id",
        )?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn request_body(&mut self, id: RequestId) -> Result<serde_json::Value, StoreError> {
        let text: String = self
            .conn()
            .prepare_cached("SELECT body_json FROM requests WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("request body: {e}")))
    }

    fn request(&mut self, kind: RequestKind, id: RequestId) -> Result<Request, StoreError> {
        let req = self
            .conn()
            .prepare_cached(&format!("{REQUEST_SELECT} WHERE r.id = ?1 AND r.kind = ?2"))?
            .query_row(params![id, kind], request_row)
            .optional()?
            .ok_or(StoreError::NotFound)?;
        self.request_parts(req)
    }

    fn requests(
        &mut self,
        kind: Option<RequestKind>,
        state: Option<RequestState>,
        limit: u32,
    ) -> Result<Vec<Request>, StoreError> {
        let rows: Vec<Request> = {
            let mut stmt = self.conn().prepare_cached(&format!(
                "{REQUEST_SELECT} WHERE (?1 IS NULL OR r.kind = ?1)
                    AND (?2 IS NULL OR r.state = ?2)
                 ORDER BY r.id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![kind, state, limit], request_row)?;
            rows.collect::<Result<_, _>>()?
        };
        rows.into_iter().map(|r| self.request_parts(r)).collect()
    }

    fn requests_for_carrier(&mut self, carrier: CarrierId) -> Result<Vec<Request>, StoreError> {
        let rows: Vec<Request> = {
            let mut stmt = self.conn().prepare_cached(&format!(
                "{REQUEST_SELECT} WHERE r.id IN
                    (SELECT request_id FROM request_carriers INDEXED BY request_carriers_by_carrier
                     WHERE carrier_id = ?1)
                 ORDER BY r.id DESC"
            ))?;
            let rows = stmt.query_map([carrier], request_row)?;
            rows.collect::<Result<_, _>>()?
        };
        rows.into_iter().map(|r| self.request_parts(r)).collect()
    }

    fn open_request_for(
        &mut self,
        kind: RequestKind,
        carrier: CarrierId,
    ) -> Result<Option<RequestId>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT r.id FROM request_carriers rc JOIN requests r ON r.id = rc.request_id
                 WHERE rc.carrier_id = ?1 AND r.kind = ?2
                   AND r.state IN ('requested', 'approved')
                 LIMIT 1",
            )?
            .query_row(params![carrier, kind], |r| r.get(0))
            .optional()?)
    }
}
