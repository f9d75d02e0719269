//! [`PolicyRows`] over SQLite.

use custos_protocol::epc::Epc;
use custos_protocol::uplink::AllowedCarrier;
use rusqlite::{OptionalExtension, params};

use super::{SqliteTx, level_column};
use crate::domain::ingest::badge_epc;
use crate::domain::person::Certificates;
use crate::store::StoreError;
use crate::store::policy::{AllowedRow, LoanRow, PolicyCheck, PolicyRows};

impl PolicyRows for SqliteTx<'_> {
    fn allowed_carriers(&mut self, now_ms: i64) -> Result<Vec<LoanRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT ct.tag, s.due_at_ms, p.badge_tag, c.level, p.training_valid_until,
                    p.commitment_signed_on
             FROM signouts s
             JOIN signout_carriers sc ON sc.signout_id = s.id AND sc.returned_at_ms IS NULL
             JOIN carriers c ON c.id = sc.carrier_id AND c.state = 'out'
             JOIN carrier_tags ct ON ct.carrier_id = c.id
             JOIN people p ON p.id = s.borrower
             WHERE s.state = 'out' AND s.may_leave = 1 AND s.due_at_ms > ?1
               AND substr(ct.tag, 1, 4) = 'epc:'
             ORDER BY ct.tag, s.due_at_ms, s.id",
        )?;
        let mut rows = stmt.query([now_ms])?;
        let mut allowed = Vec::new();
        while let Some(row) = rows.next()? {
            let tag: String = row.get(0)?;
            let Ok(epc) = Epc::from_hex(&tag[4..]) else {
                tracing::warn!(%tag, "carrier tag is not a valid EPC; left out of the gate policy");
                continue;
            };
            let badge: Option<String> = row.get(2)?;
            allowed.push(LoanRow {
                row: AllowedRow {
                    entry: AllowedCarrier {
                        epc,
                        until_ms: row.get(1)?,
                        borrower_badges: badge.as_deref().and_then(badge_epc).into_iter().collect(),
                        badge_required: false,
                    },
                    level: level_column(row, 3)?,
                },
                borrower: Certificates {
                    training_valid_until: row.get(4)?,
                    commitment_signed_on: row.get(5)?,
                },
            });
        }
        Ok(allowed)
    }

    fn staff_badges(&mut self) -> Result<Vec<Epc>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            // A departed person's badge leaves every gate policy with the departure.
            "SELECT badge_tag FROM people WHERE badge_tag IS NOT NULL AND status != 'departed'",
        )?;
        let mut rows = stmt.query([])?;
        let mut badges = Vec::new();
        while let Some(row) = rows.next()? {
            let tag: String = row.get(0)?;
            badges.extend(badge_epc(&tag));
        }
        Ok(badges)
    }

    fn policy_check(&mut self, device: &str) -> Result<Option<PolicyCheck>, StoreError> {
        let row: Option<(i64, Option<Vec<u8>>, Option<i64>)> = self
            .conn()
            .prepare_cached(
                "SELECT policy_version, policy_hash, policy_checked_ms FROM device_status
                 WHERE device_id = ?1",
            )?
            .query_row([device], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(version, hash, checked_ms)| {
            Ok(PolicyCheck {
                version: u64::try_from(version).map_err(|_| {
                    StoreError::Corrupt(format!("negative policy_version for {device}"))
                })?,
                hash,
                checked_ms,
            })
        })
        .transpose()
    }

    fn set_policy_check(
        &mut self,
        device: &str,
        version: u64,
        hash: &[u8],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let version = i64::try_from(version)
            .map_err(|_| StoreError::Corrupt("policy_version overflow".to_owned()))?;
        self.conn()
            .prepare_cached(
                "INSERT INTO device_status (device_id, policy_version, policy_hash,
                                            policy_checked_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device_id) DO UPDATE
                 SET policy_version = excluded.policy_version,
                     policy_hash = excluded.policy_hash,
                     policy_checked_ms = excluded.policy_checked_ms",
            )?
            .execute(params![device, version, hash, now_ms])?;
        Ok(())
    }
}
