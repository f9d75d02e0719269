//! [`SessionRows`] over SQLite. Expiry times are stored as Unix seconds.

use rusqlite::{OptionalExtension, params};

use super::SqliteTx;
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::sessions::{NewSession, SessionRecord, SessionRows};

impl SessionRows for SqliteTx<'_> {
    fn session(
        &mut self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT u.id, u.username, u.roles, s.csrf
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
            )?
            .query_row(params![&token_hash[..], now.unix()], |r| {
                Ok(SessionRecord {
                    user_id: r.get(0)?,
                    username: r.get(1)?,
                    roles: r.get(2)?,
                    csrf: r.get(3)?,
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
}
