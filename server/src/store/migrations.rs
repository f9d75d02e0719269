//! Schema migrations: an append-only list keyed by `PRAGMA user_version`.
//!
//! `user_version` counts the migrations applied. At open, every missing one is applied in one
//! EXCLUSIVE transaction together with the new `user_version`, so a crash leaves the old schema
//! or the new one, never half. A file whose `user_version` is beyond this list was written by a
//! newer server and is refused (no downgrades). A released migration is never edited: a change
//! is a new entry at the end.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The migrations, in order. Index `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: people, users, sessions, zones, devices, and the append-only audit trail.
    r#"
CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    department TEXT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('core', 'important', 'general')),
    badge_tag TEXT UNIQUE,
    training_valid_until TEXT,
    commitment_signed_on TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'departed')),
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    person_id INTEGER REFERENCES people (id),
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;

-- token_hash is SHA-256 of the bearer token; the token itself is never stored.
-- expires_at is Unix seconds so that expiry compares numerically.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id INTEGER NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE zones (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('public', 'C', 'S', 'TS')),
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('gate', 'cabinet', 'desk')),
    public_key BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32),
    inside_zone TEXT REFERENCES zones (id),
    outside_zone TEXT REFERENCES zones (id),
    zone TEXT REFERENCES zones (id),
    created_at TEXT NOT NULL
) STRICT;

-- The hash chain: see audit/mod.rs for the exact bytes hashed. Ids are dense (1, 2, 3, ...).
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

-- Chain heads signed with the server's Ed25519 key.
CREATE TABLE audit_heads (
    entry_id INTEGER PRIMARY KEY REFERENCES audit (id),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    signature BLOB NOT NULL CHECK (length(signature) = 64),
    at TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_heads_no_update BEFORE UPDATE ON audit_heads
BEGIN SELECT RAISE(ABORT, 'signed audit heads are append-only'); END;
CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads
BEGIN SELECT RAISE(ABORT, 'signed audit heads are append-only'); END;
"#,
];

/// Bring the schema up to date, or refuse a file from a newer server.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_with(conn, MIGRATIONS)
}

fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = migrations.len();
    let applied = usize::try_from(found)
        .ok()
        .filter(|n| *n <= known)
        .ok_or(StoreError::Downgrade { found, known })?;
    if applied == known {
        return Ok(());
    }
    for (i, sql) in migrations.iter().enumerate().skip(applied) {
        tracing::info!(version = i + 1, "applying schema migration");
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", known)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_fresh_database_gets_every_migration() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
        assert_eq!(
            tables(&conn),
            [
                "audit",
                "audit_heads",
                "devices",
                "people",
                "sessions",
                "users",
                "zones"
            ]
        );
    }

    #[test]
    fn reopening_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        migrate(&mut Connection::open(&path).unwrap()).unwrap();
        let mut conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO zones (id, name, level, created_at) VALUES ('z', 'Z', 'S', 'now')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM zones", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "data survives a second open");
    }

    #[test]
    fn only_missing_migrations_run_and_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        let first = ["CREATE TABLE a (x)"];
        migrate_with(&mut conn, &first).unwrap();
        let both = [
            "CREATE TABLE a (x)",
            "CREATE TABLE b (y); INSERT INTO a VALUES (1)",
        ];
        migrate_with(&mut conn, &both).unwrap();
        assert_eq!(version(&conn), 2);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_failing_migration_leaves_the_old_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_with(&mut conn, &["CREATE TABLE a (x)"]).unwrap();
        let bad = ["CREATE TABLE a (x)", "CREATE TABLE b (y); THIS IS NOT SQL"];
        assert!(migrate_with(&mut conn, &bad).is_err());
        assert_eq!(version(&conn), 1);
        assert_eq!(
            tables(&conn),
            ["a"],
            "the half-applied migration was rolled back"
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", MIGRATIONS.len() + 1)
            .unwrap();
        match migrate(&mut conn) {
            Err(StoreError::Downgrade { found, known }) => {
                assert_eq!(found, MIGRATIONS.len() as i64 + 1);
                assert_eq!(known, MIGRATIONS.len());
            }
            other => panic!("expected a downgrade refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_audit_trail_refuses_update_and_delete() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO audit (id, at, actor, action, subject, prev_hash, hash)
             VALUES (1, 't', 'a', 'x', 's', zeroblob(32), zeroblob(32))",
            [],
        )
        .unwrap();
        for sql in ["UPDATE audit SET actor = 'b'", "DELETE FROM audit"] {
            let err = conn.execute(sql, []).unwrap_err().to_string();
            assert!(err.contains("append-only"), "{sql}: {err}");
        }
    }
}
