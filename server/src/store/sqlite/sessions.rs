//! [`SessionRows`] over SQLite. Expiry times are stored as Unix seconds.

use rusqlite::{OptionalExtension, params};

use super::SqliteTx;
use crate::domain::ids::UserId;
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::sessions::{NewSession, SessionInfo, SessionRecord, SessionRows};

impl SessionRows for SqliteTx<'_> {
    fn session(
        &mut self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT u.id, u.username, u.roles, s.csrf, s.expires_at, u.must_change_password
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
            )?
            .query_row(params![&token_hash[..], now.unix()], |r| {
                Ok(SessionRecord {
                    user_id: r.get(0)?,
                    username: r.get(1)?,
                    roles: r.get(2)?,
                    csrf: r.get(3)?,
                    expires_at: unix(r.get(4)?, 4)?,
                    must_change_password: r.get(5)?,
                })
            })
            .optional()?)
    }

    fn delete_expired_sessions(&mut self, now: Timestamp) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
            .execute([now.unix()])?;
        Ok(())
    }

    fn insert_session(&mut self, session: &NewSession) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                &session.token_hash[..],
                session.user_id,
                session.csrf,
                session.created_at,
                session.expires_at.unix()
            ])?;
        Ok(())
    }

    fn delete_session(&mut self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        let deleted = self
            .conn()
            .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
            .execute([&token_hash[..]])?;
        Ok(deleted > 0)
    }

    fn sessions_of(
        &mut self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT token_hash, created_at, expires_at FROM sessions
             WHERE user_id = ?1 AND expires_at > ?2 ORDER BY created_at, token_hash",
        )?;
        let rows = stmt.query_map(params![user, now.unix()], |r| {
            let hash: Vec<u8> = r.get(0)?;
            Ok(SessionInfo {
                id: hash.iter().take(8).map(|b| format!("{b:02x}")).collect(),
                created_at: r.get(1)?,
                expires_at: unix(r.get(2)?, 2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_sessions_of(
        &mut self,
        user: UserId,
        keep: Option<&[u8; 32]>,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        let keep: &[u8] = keep.map_or(&[], |k| &k[..]);
        let mut stmt = self.conn().prepare_cached(
            "DELETE FROM sessions WHERE user_id = ?1 AND token_hash != ?2 RETURNING token_hash",
        )?;
        let rows = stmt.query_map(params![user, keep], |r| {
            let hash: Vec<u8> = r.get(0)?;
            // The column's CHECK keeps every hash at 32 bytes.
            Ok(<[u8; 32]>::try_from(hash.as_slice()).unwrap_or([0; 32]))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A stored Unix-seconds expiry as a [`Timestamp`] (column `index`, for the error).
fn unix(secs: i64, index: usize) -> rusqlite::Result<Timestamp> {
    Timestamp::from_unix(secs).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Integer,
            "session expiry out of range".into(),
        )
    })
}
