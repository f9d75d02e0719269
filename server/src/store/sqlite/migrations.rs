//! Schema migrations: an append-only list keyed by `PRAGMA user_version`.
//!
//! `user_version` counts the migrations applied. At open, every missing one is applied in one
//! EXCLUSIVE transaction together with the new `user_version`, so a crash leaves the old schema
//! or the new one, never half. A file whose `user_version` is beyond this list was written by a
//! newer server and is refused (no downgrades). A released migration is never edited: a change
//! is a new entry at the end. The tests pin the SHA-256 of every released migration's text, so
//! editing one fails them; a new migration adds its hash there.
//!
//! SQLite cannot change a table's CHECK constraint in place, so such a migration rebuilds the
//! table (create the new one, copy, drop the old, rename: the procedure of SQLite's
//! "ALTER TABLE" documentation). Migrations therefore run with foreign-key enforcement off
//! (dropping a parent table would otherwise cascade into its children), and
//! `PRAGMA foreign_key_check` must find nothing before the transaction commits.
//!
//! # Why the daemon's outbox has its own runner
//! The daemon's outbox (`custos-daemon`, `outbox.rs`) applies its migrations by the same
//! convention, and its loop is the same dozen lines. It is deliberately not shared: neither
//! crate may depend on the other, `custos-protocol` may not use rusqlite, and a workspace crate
//! for a dozen lines would be a new layer in the architecture. What each runner does around the
//! loop differs, too: this one turns foreign-key enforcement off around its transaction and
//! checks the keys before committing (the outbox has no foreign keys); the outbox bumps its boot
//! epoch in the same transaction as its migrations (a daemon start must never reuse an epoch)
//! and reports a locked file as "in use". A shared runner would need hooks for both, more code
//! than it saves. If a third SQLite file appears, or the loop grows (say, checksums stored in
//! the database), that is the time to give it a crate of its own.

use rusqlite::{Connection, TransactionBehavior};

use crate::store::StoreError;

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
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'leaving', 'departed')),
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
    // 2: carriers and their tags, sign-outs, device ingest (epochs, events, status), alerts.
    // Times that rules compare are INTEGER Unix milliseconds (`*_ms`); times only shown are
    // RFC 3339 TEXT as in migration 1. Carrier titles live only in `carriers.title`: never in
    // audit, events, alerts or logs.
    r#"
ALTER TABLE people ADD COLUMN leaving_since TEXT;
ALTER TABLE people ADD COLUMN decommissioning_ends_on TEXT;

CREATE TABLE carriers (
    id INTEGER PRIMARY KEY,
    control_no TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('paper', 'magnetic_disk', 'optical_disc', 'flash',
                                       'hard_disk', 'laptop', 'device')),
    level TEXT NOT NULL CHECK (level IN ('C', 'S', 'TS')),
    title TEXT NOT NULL,
    copy_no INTEGER,
    copies INTEGER,
    owner_unit TEXT NOT NULL,
    home_device TEXT REFERENCES devices (id),
    state TEXT NOT NULL DEFAULT 'in_storage'
        CHECK (state IN ('in_storage', 'out', 'missing', 'archived', 'destroyed')),
    holder INTEGER REFERENCES people (id),
    missing_since_ms INTEGER,
    last_seen_device TEXT REFERENCES devices (id),
    last_seen_at_ms INTEGER,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX carriers_missing ON carriers (missing_since_ms) WHERE state = 'missing';

-- One row per tag on a carrier; `tag` is the normalised form 'epc:HEX' (upper case),
-- 'barcode:TEXT' or 'em:HEX' (upper case, 10 digits). A tag belongs to one carrier.
CREATE TABLE carrier_tags (
    tag TEXT PRIMARY KEY,
    carrier_id INTEGER NOT NULL REFERENCES carriers (id)
) STRICT;
CREATE INDEX carrier_tags_by_carrier ON carrier_tags (carrier_id);

CREATE TABLE signouts (
    id INTEGER PRIMARY KEY,
    requester INTEGER NOT NULL REFERENCES users (id),
    borrower INTEGER NOT NULL REFERENCES people (id),
    purpose TEXT NOT NULL,
    due_at_ms INTEGER NOT NULL,
    may_leave INTEGER NOT NULL CHECK (may_leave IN (0, 1)),
    state TEXT NOT NULL DEFAULT 'requested'
        CHECK (state IN ('requested', 'approved', 'out', 'returned', 'cancelled')),
    created_at TEXT NOT NULL,
    issued_at_ms INTEGER,
    issued_by INTEGER REFERENCES users (id),
    closed_at_ms INTEGER,
    -- The overdue sweep: when the last overdue alert or reminder was raised.
    overdue_notified_at_ms INTEGER
) STRICT;
CREATE INDEX signouts_out_by_due ON signouts (due_at_ms) WHERE state = 'out';
CREATE INDEX signouts_by_state ON signouts (state);

CREATE TABLE signout_carriers (
    signout_id INTEGER NOT NULL REFERENCES signouts (id),
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    returned_at_ms INTEGER,
    -- 'user:NAME' for a custodian's return, 'device:ID' for a return seen by a cabinet.
    returned_by TEXT,
    PRIMARY KEY (signout_id, carrier_id)
) STRICT;
CREATE INDEX signout_carriers_by_carrier ON signout_carriers (carrier_id);

CREATE TABLE signout_approvals (
    signout_id INTEGER NOT NULL REFERENCES signouts (id),
    approver INTEGER NOT NULL REFERENCES users (id),
    at TEXT NOT NULL,
    PRIMARY KEY (signout_id, approver)
) STRICT;

-- Per device and boot epoch: the highest contiguous sequence stored, and the heartbeat
-- counter (a replayed heartbeat must not mask a silenced gate).
CREATE TABLE device_epochs (
    device_id TEXT NOT NULL REFERENCES devices (id),
    epoch INTEGER NOT NULL,
    acked_through INTEGER NOT NULL DEFAULT 0,
    hb_seq INTEGER NOT NULL DEFAULT 0,
    first_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, epoch)
) STRICT;

-- Liveness and health, one row per device (the silence sweep reads it).
CREATE TABLE device_status (
    device_id TEXT PRIMARY KEY REFERENCES devices (id),
    last_heartbeat_ms INTEGER,
    health_json TEXT,
    policy_version INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX device_status_by_heartbeat ON device_status (last_heartbeat_ms);

-- Every event a device delivered, exactly once, with the verdict answered for it so a
-- re-delivered batch gets the same answer.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL
        CHECK (kind IN ('passage', 'cabinet_snapshot', 'scan', 'reader_health', 'device_fault')),
    body_json TEXT NOT NULL,
    verdict_json TEXT,
    UNIQUE (device_id, epoch, seq)
) STRICT;

-- The carrier history index: which events concern which carrier.
CREATE TABLE carrier_events (
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    event_id INTEGER NOT NULL REFERENCES events (id),
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('passage', 'cabinet', 'scan')),
    device_id TEXT NOT NULL,
    direction TEXT CHECK (direction IN ('in', 'out')),
    PRIMARY KEY (carrier_id, event_id)
) STRICT;
CREATE INDEX carrier_events_by_time ON carrier_events (carrier_id, at_ms);

-- Where each tag was last seen (clone detection compares with the next sighting).
CREATE TABLE tag_sightings (
    tag TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL
) STRICT;

-- What each cabinet last reported present; removals wait out a grace period here before
-- they become `cabinet_removal` alerts.
CREATE TABLE cabinet_contents (
    device_id TEXT NOT NULL REFERENCES devices (id),
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, carrier_id)
) STRICT;
CREATE TABLE pending_removals (
    device_id TEXT NOT NULL REFERENCES devices (id),
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    removed_at_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, carrier_id)
) STRICT;
CREATE INDEX pending_removals_by_time ON pending_removals (removed_at_ms);

-- Alerts. `cause` is the deduplication key (e.g. 'unauthorized_removal:carrier:12:device:g1'):
-- at most one live (open or acknowledged) alert per cause; a repeat bumps `occurrences`.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    cause TEXT NOT NULL,
    raised_at_ms INTEGER NOT NULL,
    last_seen_at_ms INTEGER NOT NULL,
    occurrences INTEGER NOT NULL DEFAULT 1,
    carrier_id INTEGER REFERENCES carriers (id),
    device_id TEXT REFERENCES devices (id),
    person_id INTEGER REFERENCES people (id),
    detail_json TEXT NOT NULL DEFAULT '{}',
    acknowledged_by TEXT,
    acknowledged_at_ms INTEGER,
    resolved_by TEXT,
    resolved_at_ms INTEGER,
    resolution_note TEXT
) STRICT;
CREATE UNIQUE INDEX alerts_one_live_per_cause ON alerts (cause) WHERE state != 'resolved';
CREATE INDEX alerts_by_state ON alerts (state, id);
CREATE INDEX alerts_by_carrier ON alerts (carrier_id) WHERE carrier_id IS NOT NULL;
"#,
    // 3: the sweeps ask "when was this cause last alerted?" for resolved alerts too
    // (one `reader_silent` per silence episode, one `leak_deadline` per missing episode);
    // `alerts_one_live_per_cause` only covers live rows.
    r#"
CREATE INDEX alerts_by_cause ON alerts (cause, last_seen_at_ms);
"#,
    // 4: the SHA-256 of the gate policy contents last issued under
    // `device_status.policy_version`, so the version grows exactly when the contents change
    // (see store/policy.rs).
    r#"
ALTER TABLE device_status ADD COLUMN policy_hash BLOB;
"#,
    // 5: the guard console lists recent passages by event; without this it scans
    // carrier_events.
    r#"
CREATE INDEX carrier_events_by_event ON carrier_events (event_id);
"#,
    // 6: gates look badges up by `upper(badge_tag)` (badges are stored as typed, bare
    // or `epc:`-prefixed, in either case); without this index every badge read at a gate
    // scanned the whole register of people. `policy_checked_ms`: when the gate policy version
    // was last checked for the device (batch acks reuse a recent check, see store/policy.rs).
    r#"
CREATE INDEX people_by_badge ON people (upper(badge_tag)) WHERE badge_tag IS NOT NULL;
ALTER TABLE device_status ADD COLUMN policy_checked_ms INTEGER;
"#,
    // 7: `turned_back` events (carriers of a provisional passage that went back where they
    // came from) and their carrier history entries: both kind CHECKs widen, so both tables
    // are rebuilt with the same columns, rows and indexes.
    r#"
CREATE TABLE events_v7 (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL
        CHECK (kind IN ('passage', 'cabinet_snapshot', 'scan', 'reader_health', 'device_fault',
                        'turned_back')),
    body_json TEXT NOT NULL,
    verdict_json TEXT,
    UNIQUE (device_id, epoch, seq)
) STRICT;
INSERT INTO events_v7 (id, device_id, epoch, seq, at_ms, received_at_ms, kind, body_json,
                       verdict_json)
    SELECT id, device_id, epoch, seq, at_ms, received_at_ms, kind, body_json, verdict_json
    FROM events;
DROP TABLE events;
ALTER TABLE events_v7 RENAME TO events;

CREATE TABLE carrier_events_v7 (
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    event_id INTEGER NOT NULL REFERENCES events (id),
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('passage', 'cabinet', 'scan', 'turned_back')),
    device_id TEXT NOT NULL,
    direction TEXT CHECK (direction IN ('in', 'out')),
    PRIMARY KEY (carrier_id, event_id)
) STRICT;
INSERT INTO carrier_events_v7 (carrier_id, event_id, at_ms, kind, device_id, direction)
    SELECT carrier_id, event_id, at_ms, kind, device_id, direction FROM carrier_events;
DROP TABLE carrier_events;
ALTER TABLE carrier_events_v7 RENAME TO carrier_events;
CREATE INDEX carrier_events_by_time ON carrier_events (carrier_id, at_ms);
CREATE INDEX carrier_events_by_event ON carrier_events (event_id);
"#,
    // 8 (accounts): an account
    // that must set its own password before anything else (created by an administrator, or
    // its password reset), and sessions found by account (list and revoke them).
    r#"
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0
    CHECK (must_change_password IN (0, 1));
CREATE INDEX sessions_by_user ON sessions (user_id);
"#,
    // 9 (notify): the notification
    // outbox. `alert_changes` gets one row per raised, acknowledged or resolved alert, in the
    // transaction that changed it; the notifier routes each into `deliveries` (one e-mail, one
    // digest line or one webhook POST each) and marks it routed. `reported`: a
    // `notification_failed` alert has been raised for the delivery.
    r#"
CREATE TABLE alert_changes (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    change TEXT NOT NULL CHECK (change IN ('raised', 'acknowledged', 'resolved')),
    at_ms INTEGER NOT NULL,
    routed INTEGER NOT NULL DEFAULT 0 CHECK (routed IN (0, 1))
) STRICT;
CREATE INDEX alert_changes_unrouted ON alert_changes (id) WHERE routed = 0;

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL UNIQUE,
    change_id INTEGER NOT NULL REFERENCES alert_changes (id),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'digest', 'webhook')),
    target TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    due_at_ms INTEGER NOT NULL,
    last_attempt_at_ms INTEGER,
    sent_at_ms INTEGER,
    last_error TEXT,
    reported INTEGER NOT NULL DEFAULT 0 CHECK (reported IN (0, 1))
) STRICT;
CREATE INDEX deliveries_due ON deliveries (due_at_ms) WHERE state = 'pending';
"#,
    // 10 (device lifecycle): a revoked device is refused at every device endpoint
    // (`revoked_at_ms`), and a rotated key records when it was last replaced.
    r#"
ALTER TABLE devices ADD COLUMN revoked_at_ms INTEGER;
ALTER TABLE devices ADD COLUMN key_rotated_at_ms INTEGER;
"#,
    // 11 (approvals): one approval model for every request kind (`requests`,
    // `request_carriers`, `request_approvals`); sign-outs can be rejected with a reason;
    // carriers gain the states of their later life (in_transfer, dispatched, declassified;
    // destroyed and archived existed), their copy lineage (`original_id`), and tags are
    // retired (kept, so a destroyed carrier's tag seen again is recognised) rather than deleted.
    // carriers and signouts are rebuilt because their state CHECKs widen.
    r#"
CREATE TABLE carriers_v11 (
    id INTEGER PRIMARY KEY,
    control_no TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('paper', 'magnetic_disk', 'optical_disc', 'flash',
                                       'hard_disk', 'laptop', 'device')),
    level TEXT NOT NULL CHECK (level IN ('C', 'S', 'TS')),
    title TEXT NOT NULL,
    copy_no INTEGER,
    copies INTEGER,
    owner_unit TEXT NOT NULL,
    home_device TEXT REFERENCES devices (id),
    state TEXT NOT NULL DEFAULT 'in_storage'
        CHECK (state IN ('in_storage', 'out', 'missing', 'archived', 'destroyed',
                         'in_transfer', 'dispatched', 'declassified')),
    holder INTEGER REFERENCES people (id),
    missing_since_ms INTEGER,
    last_seen_device TEXT REFERENCES devices (id),
    last_seen_at_ms INTEGER,
    created_at TEXT NOT NULL,
    original_id INTEGER REFERENCES carriers_v11 (id)
) STRICT;
INSERT INTO carriers_v11 (id, control_no, kind, level, title, copy_no, copies, owner_unit,
                          home_device, state, holder, missing_since_ms, last_seen_device,
                          last_seen_at_ms, created_at)
    SELECT id, control_no, kind, level, title, copy_no, copies, owner_unit, home_device, state,
           holder, missing_since_ms, last_seen_device, last_seen_at_ms, created_at
    FROM carriers;
DROP TABLE carriers;
ALTER TABLE carriers_v11 RENAME TO carriers;
CREATE INDEX carriers_missing ON carriers (missing_since_ms) WHERE state = 'missing';
CREATE INDEX carriers_by_original ON carriers (original_id) WHERE original_id IS NOT NULL;

ALTER TABLE carrier_tags ADD COLUMN retired_at_ms INTEGER;

CREATE TABLE signouts_v11 (
    id INTEGER PRIMARY KEY,
    requester INTEGER NOT NULL REFERENCES users (id),
    borrower INTEGER NOT NULL REFERENCES people (id),
    purpose TEXT NOT NULL,
    due_at_ms INTEGER NOT NULL,
    may_leave INTEGER NOT NULL CHECK (may_leave IN (0, 1)),
    state TEXT NOT NULL DEFAULT 'requested'
        CHECK (state IN ('requested', 'approved', 'out', 'returned', 'cancelled', 'rejected')),
    created_at TEXT NOT NULL,
    issued_at_ms INTEGER,
    issued_by INTEGER REFERENCES users (id),
    closed_at_ms INTEGER,
    overdue_notified_at_ms INTEGER,
    rejected_by INTEGER REFERENCES users (id),
    rejection_reason TEXT
) STRICT;
INSERT INTO signouts_v11 (id, requester, borrower, purpose, due_at_ms, may_leave, state,
                          created_at, issued_at_ms, issued_by, closed_at_ms,
                          overdue_notified_at_ms)
    SELECT id, requester, borrower, purpose, due_at_ms, may_leave, state, created_at,
           issued_at_ms, issued_by, closed_at_ms, overdue_notified_at_ms
    FROM signouts;
DROP TABLE signouts;
ALTER TABLE signouts_v11 RENAME TO signouts;
CREATE INDEX signouts_out_by_due ON signouts (due_at_ms) WHERE state = 'out';
CREATE INDEX signouts_by_state ON signouts (state);

-- Every request but a sign-out (those keep their own tables). `body_json`: the kind's
-- payload as asked; `result_json`: what carrying it out produced (new carrier ids, the
-- destruction record). Carrier titles are never in either.
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('copy', 'destruction', 'transfer', 'dispatch',
                                       'reclassification', 'travel')),
    state TEXT NOT NULL DEFAULT 'requested'
        CHECK (state IN ('requested', 'approved', 'rejected', 'done')),
    requester INTEGER NOT NULL REFERENCES users (id),
    beneficiary INTEGER REFERENCES people (id),
    top_secret INTEGER NOT NULL CHECK (top_secret IN (0, 1)),
    body_json TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    rejected_by INTEGER REFERENCES users (id),
    rejection_reason TEXT,
    decided_at_ms INTEGER,
    done_by INTEGER REFERENCES users (id),
    done_at_ms INTEGER,
    result_json TEXT
) STRICT;
CREATE INDEX requests_by_kind_state ON requests (kind, state, id);

CREATE TABLE request_carriers (
    request_id INTEGER NOT NULL REFERENCES requests (id),
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    PRIMARY KEY (request_id, carrier_id)
) STRICT;
CREATE INDEX request_carriers_by_carrier ON request_carriers (carrier_id);

CREATE TABLE request_approvals (
    request_id INTEGER NOT NULL REFERENCES requests (id),
    approver INTEGER NOT NULL REFERENCES users (id),
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver)
) STRICT;
"#,
    // 12 (lifecycle): corrections of the register with their before/after (the old and new
    // title stay in the database like the title itself, never in the audit trail), and one
    // incident record per missing episode: what happened, who was told and when, how it ended.
    // An overdue loan escalates a carrier to missing once per loan (the partial unique index).
    r#"
CREATE TABLE carrier_corrections (
    id INTEGER PRIMARY KEY,
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json TEXT NOT NULL
) STRICT;
CREATE INDEX carrier_corrections_by_carrier ON carrier_corrections (carrier_id, id);

CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    cause TEXT NOT NULL
        CHECK (cause IN ('manual', 'cabinet_removal', 'overdue', 'unauthorized_removal')),
    missing_since_ms INTEGER NOT NULL,
    reported_by TEXT NOT NULL,
    reported_at_ms INTEGER NOT NULL,
    what_happened TEXT NOT NULL,
    signout_id INTEGER REFERENCES signouts (id),
    alert_id INTEGER REFERENCES alerts (id),
    told TEXT,
    told_at_ms INTEGER,
    told_recorded_by TEXT,
    found_at_ms INTEGER,
    found_by TEXT,
    found_note TEXT
) STRICT;
CREATE INDEX incidents_by_carrier ON incidents (carrier_id, id);
CREATE UNIQUE INDEX incidents_overdue_once ON incidents (carrier_id, signout_id)
    WHERE cause = 'overdue';
"#,
    // 13 (people): records kept current (clearance, vetting 资格审查 and assessment 考核
    // with dates and outcomes) with a history of every edit and its reason; the departure
    // sequence (清退 certified at `cleared_at`, then the departure with its period in months
    // or lifelong). Travel abroad (出境审批) uses the approval model's `requests`.
    r#"
ALTER TABLE people ADD COLUMN clearance TEXT CHECK (clearance IN ('C', 'S', 'TS'));
ALTER TABLE people ADD COLUMN vetted_on TEXT;
ALTER TABLE people ADD COLUMN vetting_outcome TEXT;
ALTER TABLE people ADD COLUMN assessed_on TEXT;
ALTER TABLE people ADD COLUMN assessment_outcome TEXT;
ALTER TABLE people ADD COLUMN cleared_at TEXT;
ALTER TABLE people ADD COLUMN departed_on TEXT;
ALTER TABLE people ADD COLUMN decommissioning_months INTEGER;
ALTER TABLE people ADD COLUMN decommissioning_lifelong INTEGER NOT NULL DEFAULT 0
    CHECK (decommissioning_lifelong IN (0, 1));

CREATE TABLE person_changes (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people (id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json TEXT NOT NULL
) STRICT;
CREATE INDEX person_changes_by_person ON person_changes (person_id, id);
"#,
    // 14 (moves): stocktakes (清点) with what they expected and what they scanned, year-end
    // collections (年底收缴) with every carrier they called in, and each carrier's retention
    // date (保管期限) and distribution scope (发放范围).
    r#"
ALTER TABLE carriers ADD COLUMN retention_until TEXT;
ALTER TABLE carriers ADD COLUMN distribution_scope TEXT;
-- A dispatched carrier may pass gates until then (Unix ms).
ALTER TABLE carriers ADD COLUMN dispatch_until_ms INTEGER;

-- The steps of carrying out a transfer (handed over, received) or a dispatch (sent,
-- delivered), each by a different hand.
CREATE TABLE request_steps (
    request_id INTEGER NOT NULL REFERENCES requests (id),
    step TEXT NOT NULL CHECK (step IN ('handed_over', 'received', 'sent', 'delivered')),
    by_user INTEGER NOT NULL REFERENCES users (id),
    at TEXT NOT NULL,
    note TEXT,
    PRIMARY KEY (request_id, step)
) STRICT;

CREATE TABLE stocktakes (
    id INTEGER PRIMARY KEY,
    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('device', 'zone', 'custodian')),
    scope_ref TEXT NOT NULL,
    desk_device TEXT REFERENCES devices (id),
    opened_by TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closed_by TEXT,
    closed_at TEXT
) STRICT;

-- The carriers a stocktake expected, fixed when it opened.
CREATE TABLE stocktake_expected (
    stocktake_id INTEGER NOT NULL REFERENCES stocktakes (id),
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    PRIMARY KEY (stocktake_id, carrier_id)
) STRICT;

-- What a stocktake scanned: tags as read or typed, with the carrier each names.
CREATE TABLE stocktake_scans (
    stocktake_id INTEGER NOT NULL REFERENCES stocktakes (id),
    tag TEXT NOT NULL,
    carrier_id INTEGER REFERENCES carriers (id),
    scanned_by TEXT NOT NULL,
    scanned_at TEXT NOT NULL,
    PRIMARY KEY (stocktake_id, tag)
) STRICT;

-- How each missing carrier of a closed stocktake was settled.
CREATE TABLE stocktake_resolutions (
    stocktake_id INTEGER NOT NULL REFERENCES stocktakes (id),
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    resolution TEXT NOT NULL CHECK (resolution IN ('missing', 'correction')),
    note TEXT NOT NULL,
    resolved_by TEXT NOT NULL,
    resolved_at TEXT NOT NULL,
    PRIMARY KEY (stocktake_id, carrier_id)
) STRICT;

CREATE TABLE collections (
    id INTEGER PRIMARY KEY,
    year INTEGER NOT NULL UNIQUE,
    opened_by TEXT NOT NULL,
    opened_at TEXT NOT NULL
) STRICT;

-- Every carrier a collection called in: the loan, its holder and their department as they
-- were when it opened, and how the carrier was closed.
CREATE TABLE collection_items (
    collection_id INTEGER NOT NULL REFERENCES collections (id),
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    signout_id INTEGER REFERENCES signouts (id),
    holder INTEGER REFERENCES people (id),
    department TEXT NOT NULL,
    outcome TEXT CHECK (outcome IN ('kept', 'archived', 'destroyed')),
    closed_by TEXT,
    closed_at TEXT,
    PRIMARY KEY (collection_id, carrier_id)
) STRICT;
"#,
    // 15 (guard): a sign-out the rules would refuse may be sent as "needs override" with the
    // custodian's note; each officer approving it writes an override reason on the approval.
    r#"
ALTER TABLE signouts ADD COLUMN override_note TEXT;
ALTER TABLE signout_approvals ADD COLUMN override_reason TEXT;
"#,
    // 16 (moves, repairs): repairs (维修) of laptops, devices and hard disks: to whom, how, what became
    // of the storage media, and when each came back.
    r#"
CREATE TABLE repairs (
    id INTEGER PRIMARY KEY,
    carrier_id INTEGER NOT NULL REFERENCES carriers (id),
    repairer TEXT NOT NULL,
    qualification_no TEXT NOT NULL,
    qualified_until TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('on_site', 'dispatch')),
    escort TEXT,
    media TEXT NOT NULL CHECK (media IN ('removed_and_kept', 'repaired_on_site')),
    media_note TEXT,
    reason TEXT NOT NULL,
    sent_by TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    returned_by TEXT,
    returned_at TEXT,
    return_note TEXT
) STRICT;
-- At most one open repair per carrier.
CREATE UNIQUE INDEX repairs_open ON repairs (carrier_id) WHERE returned_at IS NULL;
"#,
    // 17 (guard2): each carrier's own secrecy period (保密期限) in whole years, set at
    // registration or by a correction; NULL means the level's default (TS 30, S 20, C 10).
    // Added, never rebuilt: another change adds carriers columns in parallel.
    r#"
ALTER TABLE carriers ADD COLUMN secrecy_years INTEGER CHECK (secrecy_years BETWEEN 1 AND 30);
"#,
];

/// Bring the schema up to date, or refuse a file from a newer server.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_with(conn, MIGRATIONS)
}

fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    // `foreign_keys` cannot change inside a transaction: set it around it.
    let enforced: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = apply(conn, migrations);
    conn.pragma_update(None, "foreign_keys", enforced)?;
    result
}

fn apply(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
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
    let dangling: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if dangling > 0 {
        return Err(StoreError::Corrupt(format!(
            "{dangling} rows break a foreign key after migrating"
        )));
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

    /// SHA-256 (hex) of every released migration's exact text, in order.
    ///
    /// A database somewhere may already be at any of these versions, and `user_version` only
    /// says how many migrations it has, not which text ran; so a released migration is never
    /// edited (not even its whitespace or comments): the change goes in a new migration at the
    /// end, and its hash is appended here.
    const RELEASED: &[&str] = &[
        // 1
        "8a21005344e1a9a95edc25bed4d8459ec09b1a352dc40410a92f752e0820e836",
        // 2
        "d5181d0339580e0a5752762e3daf24d814f0a8bd873900b0d74e50c37d389c42",
        // 3
        "82f28dcf003e2a1ddb5d7d3f69711bb57a6bbb5f5b95d3a69da0f2ab7dfe1383",
        // 4
        "729e2cf3a7caf16bb0caefeaeaa04d3eba3df06c5d89bafec0a3cdefe35d134c",
        // 5
        "abdddd78af053ef07b5ed3499d446c8f0f76713d8eb6655443995fe26e5077c1",
        // 6
        "adae7ff4e880ff1422475d516bf4b7b1f25327221daf0f9643cb20423a78e406",
        // 7
        "4c80608cb451a7ad1504f13de2a0bd175ba7636982704647ad87dd4c11808471",
        // 8 (accounts)
        "b3ae0413e755556a6fe29eaedce2b1a2469f6821b82be10b7d9ec90974895f59",
        // 9 (notify)
        "7459d7ca4efb74e24eddfcea4b2fb393c1fd493938073a1e124e8750d8a5e341",
        // 10 (device lifecycle)
        "cbd8d1135d49bd76778eb75277533b0b5585a88d95e81394cfcd468ad62dbfc6",
        // 11 (approvals)
        "2b0a6a4e3fe01da430e9fe6fab376d9d3b905d13461773075d4a501551f0318a",
        // 12 (lifecycle)
        "d9780c9936d6ec0c92d0702a686e3807ebc44b8094e779b597c95fae054cddd6",
        // 13 (people)
        "c0ce2696eb123225adbcb23130c9a1e9fdf4c07e98413d1ed60229d154d5a5be",
        // 14 (moves)
        "c64eb6e45d0d306ac87b0e8582a0cf6f29ee0b4bb2978ab19ef4d2d981c4be61",
        // 15 (guard)
        "b12cf41fcde361223c367443a343dbbc6d1cdb95590e2386e70ce5d7dd63a44a",
        // 16 (moves, repairs)
        "07d38a87edbb859f1311924075f835fc2e2c6ef577069992e31717511fe91b69",
        // 17 (guard2)
        "278059dd3c17d5d5e4f68f924807bb2dfb059f3c837fef4bd552574efea5d814",
    ];

    fn sha256_hex(text: &str) -> String {
        ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn released_migrations_are_never_edited() {
        let actual: Vec<String> = MIGRATIONS.iter().map(|sql| sha256_hex(sql)).collect();
        for (i, (pinned, now)) in RELEASED.iter().zip(&actual).enumerate() {
            assert_eq!(
                pinned,
                now,
                "migration {} was edited: released migrations are append-only; \
                 restore its text and put the change in a new migration at the end",
                i + 1
            );
        }
        assert!(
            actual.len() >= RELEASED.len(),
            "a released migration was removed: migrations are append-only"
        );
        assert_eq!(
            &actual[..],
            RELEASED,
            "a new migration: append its SHA-256 to RELEASED (migrations are append-only; \
             once released, its text is frozen)"
        );
    }

    #[test]
    fn a_fresh_database_gets_every_migration() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
        assert_eq!(
            tables(&conn),
            [
                "alert_changes",
                "alerts",
                "audit",
                "audit_heads",
                "cabinet_contents",
                "carrier_corrections",
                "carrier_events",
                "carrier_tags",
                "carriers",
                "collection_items",
                "collections",
                "deliveries",
                "device_epochs",
                "device_status",
                "devices",
                "events",
                "incidents",
                "pending_removals",
                "people",
                "person_changes",
                "repairs",
                "request_approvals",
                "request_carriers",
                "request_steps",
                "requests",
                "sessions",
                "signout_approvals",
                "signout_carriers",
                "signouts",
                "stocktake_expected",
                "stocktake_resolutions",
                "stocktake_scans",
                "stocktakes",
                "tag_sightings",
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

    /// Migration 7 rebuilds `events` and `carrier_events`: rows, indexes and foreign keys
    /// survive, the new kinds are taken, and enforcement is back on afterwards.
    #[test]
    fn rebuilding_a_table_keeps_its_rows_indexes_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..6]).unwrap();
        conn.execute_batch(
            "INSERT INTO zones (id, name, level, created_at) VALUES ('z', 'Z', 'S', 't');
             INSERT INTO devices (id, kind, public_key, zone, created_at)
                 VALUES ('d', 'cabinet', zeroblob(32), 'z', 't');
             INSERT INTO carriers (id, control_no, kind, level, title, owner_unit, created_at)
                 VALUES (1, 'C-1', 'paper', 'S', 'T', 'U', 't');
             INSERT INTO events (id, device_id, epoch, seq, at_ms, received_at_ms, kind, body_json)
                 VALUES (7, 'd', 1, 1, 5, 6, 'scan', '{}');
             INSERT INTO carrier_events (carrier_id, event_id, at_ms, kind, device_id)
                 VALUES (1, 7, 5, 'scan', 'd');",
        )
        .unwrap();
        assert!(
            conn.execute(
                "INSERT INTO events (device_id, epoch, seq, at_ms, received_at_ms, kind, body_json)
                 VALUES ('d', 1, 2, 5, 6, 'turned_back', '{}')",
                [],
            )
            .is_err(),
            "version 6 refuses the new kind"
        );
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.len() as i64);
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1, "enforcement restored");
        let row: (i64, String, i64) = conn
            .query_row(
                "SELECT e.id, ce.kind, ce.carrier_id FROM events e
                 JOIN carrier_events ce ON ce.event_id = e.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, (7, "scan".to_owned(), 1));
        conn.execute_batch(
            "INSERT INTO events (id, device_id, epoch, seq, at_ms, received_at_ms, kind, body_json)
                 VALUES (8, 'd', 1, 2, 5, 6, 'turned_back', '{}');
             INSERT INTO carrier_events (carrier_id, event_id, at_ms, kind, device_id, direction)
                 VALUES (1, 8, 5, 'turned_back', 'd', 'out');",
        )
        .unwrap();
        // Still unique per (device, epoch, seq), and still checked against its parents.
        assert!(
            conn.execute(
                "INSERT INTO events (device_id, epoch, seq, at_ms, received_at_ms, kind, body_json)
                 VALUES ('d', 1, 2, 5, 6, 'scan', '{}')",
                [],
            )
            .is_err()
        );
        assert!(
            conn.execute(
                "INSERT INTO carrier_events (carrier_id, event_id, at_ms, kind, device_id)
                 VALUES (1, 99, 5, 'scan', 'd')",
                [],
            )
            .is_err(),
            "no such event"
        );
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'carrier_events'
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            indexes,
            ["carrier_events_by_event", "carrier_events_by_time"]
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
