//! Test databases: a temporary store, and an in-memory database with a custody fixture for
//! the use cases' tests (their SQL stays here, in the store).

use custos_protocol::epc::Epc;
use rusqlite::Connection;

use super::AuditLog;
use super::audit::AuditRecord;
use super::sqlite::SqliteTx;
use super::{CarrierRows, DB_FILE, Store, StoreOptions};
use crate::domain::carrier::{CarrierFields, CarrierKind, NewCarrier};
use crate::domain::ids::{AuditId, DeviceId};
use crate::domain::level::Level;
use crate::domain::time::Timestamp;

/// The instant the use cases' tests start at (2025-06-15T15:06:40Z).
pub const T0: i64 = 1_750_000_000;

/// `unix` seconds as a timestamp.
pub fn t(unix: i64) -> Timestamp {
    Timestamp::from_unix(unix).unwrap()
}

/// A store in a fresh temporary directory (kept alive by the returned guard).
pub async fn temp_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join(DB_FILE),
        StoreOptions {
            create: true,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    (store, dir)
}

/// The EPC on carrier `n`'s tag in [`MemoryDb::gate_site`].
pub fn carrier_epc(n: i64) -> Epc {
    Epc::from_hex(&format!("3074257BF7{n:014X}")).unwrap()
}

/// The EPC of person `n`'s badge in [`MemoryDb::gate_site`].
pub fn badge_epc(n: i64) -> Epc {
    Epc::from_hex(&format!("E2000000{n:016X}")).unwrap()
}

/// An in-memory database, migrated, with foreign keys on.
pub struct MemoryDb {
    conn: Connection,
}

impl MemoryDb {
    /// An empty database.
    pub fn new() -> MemoryDb {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        super::migrations::migrate(&mut conn).unwrap();
        MemoryDb { conn }
    }

    /// Zone `z` (S), cabinets `cab-1` and `cab-2`, person 1 (core, trained, committed), users
    /// `cust` (custodian), `so1` and `so2` (security officers), and carriers 1 and 2 (S paper
    /// titled "secret title", home `cab-1`).
    pub fn custody(t0: Timestamp) -> MemoryDb {
        let db = MemoryDb::new();
        db.conn
            .execute_batch(
                "INSERT INTO zones VALUES ('z', 'Z', 'S', 't');
                 INSERT INTO devices (id, kind, public_key, zone, created_at)
                     VALUES ('cab-1', 'cabinet', randomblob(32), 'z', '2025-01-01T00:00:00Z'),
                            ('cab-2', 'cabinet', randomblob(32), 'z', '2025-01-01T00:00:00Z');
                 INSERT INTO people (name, department, category, training_valid_until,
                                     commitment_signed_on, created_at)
                     VALUES ('Li', 'D', 'core', '2099-01-01', '2020-01-01', '2025-01-01T00:00:00Z');
                 INSERT INTO users (username, password_hash, roles, created_at)
                     VALUES ('cust', 'x', 'custodian', '2025-01-01T00:00:00Z'),
                            ('so1', 'x', 'security_officer', '2025-01-01T00:00:00Z'),
                            ('so2', 'x', 'security_officer', '2025-01-01T00:00:00Z');",
            )
            .unwrap();
        for control_no in ["A1", "A2"] {
            let tags: [String; 0] = [];
            let carrier = NewCarrier::new(CarrierFields {
                control_no,
                kind: CarrierKind::Paper,
                level: Level::Secret,
                title: "secret title",
                copy_no: None,
                copies: None,
                owner_unit: "U",
                home_device: Some(DeviceId::new("cab-1").unwrap()),
                tags: &tags,
                secrecy_years: None,
            })
            .unwrap();
            db.tx().insert_carrier(&carrier, t0).unwrap();
        }
        db
    }

    /// Register gate `id` (between zone `z` and the outside).
    pub fn add_gate(&self, id: &str) {
        self.conn
            .execute(
                "INSERT INTO devices (id, kind, public_key, inside_zone, created_at)
                 VALUES (?1, 'gate', randomblob(32), 'z', 't')",
                [id],
            )
            .unwrap();
    }

    /// [`MemoryDb::custody`], plus zone `street` (public), gate `gate-1` (inside `z`, outside
    /// `street`), tags [`carrier_epc`] 1 and 2 on carriers 1 and 2, and person 1's badge
    /// [`badge_epc`] 1.
    pub fn gate_site(t0: Timestamp) -> MemoryDb {
        let db = MemoryDb::custody(t0);
        db.conn
            .execute_batch(
                "INSERT INTO zones VALUES ('street', 'Street', 'public', 't');
                 INSERT INTO devices (id, kind, public_key, inside_zone, outside_zone, created_at)
                     VALUES ('gate-1', 'gate', randomblob(32), 'z', 'street',
                             '2025-01-01T00:00:00Z');",
            )
            .unwrap();
        for carrier in [1, 2] {
            db.conn
                .execute(
                    "INSERT INTO carrier_tags (tag, carrier_id) VALUES (?1, ?2)",
                    rusqlite::params![format!("epc:{}", carrier_epc(carrier)), carrier],
                )
                .unwrap();
        }
        db.set_badge(1, &format!("epc:{}", badge_epc(1)));
        db
    }

    /// Person `person`'s badge tag, as typed by an officer.
    pub fn set_badge(&self, person: i64, badge_tag: &str) {
        self.conn
            .execute(
                "UPDATE people SET badge_tag = ?2 WHERE id = ?1",
                rusqlite::params![person, badge_tag],
            )
            .unwrap();
    }

    /// Person `person`'s training certificate lasts through `valid_until` (`YYYY-MM-DD`).
    pub fn set_training(&self, person: i64, valid_until: &str) {
        self.conn
            .execute(
                "UPDATE people SET training_valid_until = ?2 WHERE id = ?1",
                rusqlite::params![person, valid_until],
            )
            .unwrap();
    }

    /// A new person (core, trained) with badge tag `badge_tag`; their id.
    pub fn person_with_badge(&self, name: &str, badge_tag: &str) -> i64 {
        self.conn
            .execute(
                "INSERT INTO people (name, department, category, badge_tag, created_at)
                 VALUES (?1, 'D', 'core', ?2, 't')",
                [name, badge_tag],
            )
            .unwrap();
        self.conn.last_insert_rowid()
    }

    /// Every carrier is back from every sign-out (the sign-outs' rows stay as they are).
    pub fn unlend_all(&self) {
        self.conn
            .execute("DELETE FROM signout_carriers", [])
            .unwrap();
    }

    /// The stored events, as `(kind, seq, verdict_json)`, in order.
    pub fn events(&self) -> Vec<(String, i64, Option<String>)> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, seq, verdict_json FROM events ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A carrier's history, as `(kind, direction)`, in order.
    pub fn history(&self, carrier: i64) -> Vec<(String, Option<String>)> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT kind, direction FROM carrier_events WHERE carrier_id = ?1
                 ORDER BY event_id, kind",
            )
            .unwrap();
        stmt.query_map([carrier], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The carriers cabinet `device` holds, by id.
    pub fn cabinet_contents(&self, device: &str) -> Vec<i64> {
        let mut stmt = self
            .conn
            .prepare("SELECT carrier_id FROM cabinet_contents WHERE device_id = ?1 ORDER BY 1")
            .unwrap();
        stmt.query_map([device], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A transaction's view of the database.
    pub fn tx(&self) -> SqliteTx<'_> {
        SqliteTx::new(&self.conn)
    }

    /// A carrier's `(state, holder, missing_since_ms)`.
    pub fn carrier_row(&self, id: i64) -> (String, Option<i64>, Option<i64>) {
        self.conn
            .query_row(
                "SELECT state, holder, missing_since_ms FROM carriers WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    /// Mark a carrier missing since `since_ms`.
    pub fn set_missing(&self, id: i64, since_ms: i64) {
        self.conn
            .execute(
                "UPDATE carriers SET state = 'missing', missing_since_ms = ?2 WHERE id = ?1",
                [id, since_ms],
            )
            .unwrap();
    }

    /// Make person `person` the holder of carrier `id` (out).
    pub fn set_holder(&self, id: i64, person: i64) {
        self.conn
            .execute(
                "UPDATE carriers SET state = 'out', holder = ?2 WHERE id = ?1",
                [id, person],
            )
            .unwrap();
    }

    /// The plan SQLite chooses for `sql` (its parameters unbound), one line per step.
    pub fn query_plan(&self, sql: &str) -> Vec<String> {
        let mut stmt = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let mut rows = stmt.raw_query();
        let mut plan = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            plan.push(row.get(3).unwrap());
        }
        plan
    }

    /// Carrier `carrier` out to person 1 on a new sign-out (requested by `cust`) due at
    /// `due_ms`, allowed to leave the secure area or not; the sign-out's id.
    pub fn signed_out(&self, carrier: i64, due_ms: i64, may_leave: bool) -> i64 {
        self.conn
            .execute(
                "INSERT INTO signouts (requester, borrower, purpose, due_at_ms, may_leave, state,
                                       created_at, issued_at_ms)
                 VALUES (1, 1, 'work', ?1, ?2, 'out', 't', ?1 - 86400000)",
                rusqlite::params![due_ms, may_leave],
            )
            .unwrap();
        let id = self.conn.last_insert_rowid();
        self.conn
            .execute(
                "INSERT INTO signout_carriers (signout_id, carrier_id) VALUES (?1, ?2)",
                [id, carrier],
            )
            .unwrap();
        self.conn
            .execute(
                "UPDATE carriers SET state = 'out', holder = 1 WHERE id = ?1",
                [carrier],
            )
            .unwrap();
        id
    }

    /// `carrier` is out for repair (an open repair).
    pub fn in_repair(&self, carrier: i64) {
        self.conn
            .execute(
                "INSERT INTO repairs (carrier_id, repairer, qualification_no, qualified_until,
                                      mode, escort, media, reason, sent_by, sent_at)
                 VALUES (?1, 'Repairer', 'Q-1', '2099-12-31', 'on_site', 'Escort',
                         'removed_and_kept', 'broken', 'custodian', '2026-01-01T00:00:00Z')",
                [carrier],
            )
            .unwrap();
    }

    /// Cabinet `device` saw `carrier` go at `at_ms`, not yet accounted for.
    pub fn pending_removal(&self, device: &str, carrier: i64, at_ms: i64) {
        self.conn
            .execute(
                "INSERT INTO pending_removals (device_id, carrier_id, removed_at_ms)
                 VALUES (?1, ?2, ?3)",
                rusqlite::params![device, carrier, at_ms],
            )
            .unwrap();
    }

    /// The pending removals, as `(device, carrier)`.
    pub fn pending_removals(&self) -> Vec<(String, i64)> {
        let mut stmt = self
            .conn
            .prepare("SELECT device_id, carrier_id FROM pending_removals ORDER BY carrier_id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Device `device`'s last accepted heartbeat was at `at_ms`.
    pub fn heartbeat(&self, device: &str, at_ms: i64) {
        self.conn
            .execute(
                "INSERT INTO device_status (device_id, last_heartbeat_ms) VALUES (?1, ?2)
                 ON CONFLICT (device_id) DO UPDATE SET last_heartbeat_ms = excluded.last_heartbeat_ms",
                rusqlite::params![device, at_ms],
            )
            .unwrap();
    }

    /// The opcodes of the program SQLite compiles `sql` to, in order.
    pub fn opcodes(&self, sql: &str) -> Vec<String> {
        let mut stmt = self.conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut ops = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            ops.push(row.get(1).unwrap());
        }
        ops
    }

    /// Every audit entry.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.tx().audit_after(AuditId(0), u32::MAX).unwrap()
    }

    /// Run `sql` with the audit trail's append-only triggers removed, as an attacker with file
    /// access would.
    pub fn tamper(&self, sql: &str) {
        self.conn
            .execute_batch(&format!(
                "PRAGMA foreign_keys = OFF; DROP TRIGGER audit_no_update;
                 DROP TRIGGER audit_no_delete; DROP TRIGGER audit_heads_no_update;
                 DROP TRIGGER audit_heads_no_delete; {sql}"
            ))
            .unwrap();
    }
}
