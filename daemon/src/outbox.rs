//! The outbox: every event is on disk before it is reported anywhere, and stays there until the
//! server acknowledges it.
//!
//! One SQLite file, `outbox.db` in the data directory, in WAL mode with `synchronous=FULL`: when
//! [`Store::append`] returns, the event's transaction has been fsync'ed, so a power cut after an
//! alarm never loses the passage that caused it. `locking_mode=EXCLUSIVE` makes a second daemon
//! on the same data directory fail at open ([`OutboxError::InUse`]) instead of interleaving
//! epochs.
//!
//! # Numbering
//!
//! Events are numbered `(epoch, seq)` (see `custos_protocol::uplink`, "Sequencing"). [`Store::open`]
//! increments the persisted boot epoch in the same exclusive transaction that applies the
//! migrations, so every start gets a number no earlier start had, even if the process dies right
//! after. `seq` starts at 1 in every epoch; because the epoch is new at every start, the next seq
//! lives in memory and is advanced only when a transaction commits.
//!
//! # Schema
//!
//! `MIGRATIONS` is an append-only list keyed by `PRAGMA user_version`, applied in the exclusive
//! transaction of [`Store::open`]; a file from a newer daemon is refused
//! ([`OutboxError::TooNew`]). A released migration is never edited; the tests pin the SHA-256
//! of each one's text, so a new migration adds its hash there.
//!
//! The server's store follows the same convention with its own runner
//! (`custos-server`, `store/migrations.rs`), and the two are deliberately not one function:
//! neither crate may depend on the other, `custos-protocol` may not use rusqlite, and a new
//! workspace crate for a dozen lines would be a new layer in the architecture. What surrounds
//! the loop also differs: here the migrations share their transaction with the boot epoch bump
//! and a locked file is [`OutboxError::InUse`]; the server turns foreign keys off around its
//! migrations and checks them before committing. The server's module docs give the full
//! reasoning.
//!
//! # Upload order and acknowledgement
//!
//! [`Store::pending`] returns the oldest unacknowledged events of the oldest epoch that still
//! has any, so a backlog from before a restart goes first and every batch is single-epoch.
//! [`Store::ack`] deletes exactly the events of that epoch up to `acked_through`.
//!
//! # Local verdicts
//!
//! A passage is stored (provisionally, `local_verdict: null`) before the gate decides it, so
//! that the alarm cannot cut the power before the evidence is on disk. When the gate decides
//! it with its cached policy, [`Store::record_local_verdict`] writes that decision into the
//! stored passage, so the server learns what the gate did (and does not order the alarm again
//! for it). The passage may already have reached the server without it (an upload whose
//! answer came too late): its re-delivery then differs only by the local verdict, which the
//! server accepts and records (any other difference is a replay).
//!
//! That re-delivery must happen even when the late answer is an ack: a passage handed out for
//! upload, decided by the policy at its deadline while that upload was still in flight, and
//! then acknowledged, would otherwise be deleted with the server holding `null` for a passage
//! the gate decided (the server's verdict is then only a late one). So [`Store::pending`]
//! remembers the newest event it handed out, a verdict recorded in an event handed out before
//! marks it *stale* (the copy on its way lacks the verdict), and [`Store::ack`] keeps a stale
//! passage although the server acknowledged it; the next batch carries it alone (the events
//! after it are gone, so the batch stops at the gap), the server records the added verdict as
//! a re-delivery, and its ack deletes it. Only that passage is sent again: re-sending
//! acknowledged passages the server decided would bring their `SoundAlarm` orders back. A
//! passage the server decided in time gets no local verdict and is never kept. A verdict
//! recorded after the ack deleted the passage finds nothing (`false`): the gate processes a
//! server answer before a deadline due at the same time, so that needs the ack to reach the
//! outbox between the gate's decision and its recording, a window of one outbox job.
//!
//! # Implausible times
//!
//! An event recorded while the wall clock was wrong (an RTC that restarted at 1970, a clock
//! stepped years ahead) carries a time the server refuses (`clock_skew`, by the shared rule
//! `custos_protocol::uplink::event_time_plausible`), and it would block every event behind it.
//! Before a batch is signed the shipper checks its events with the same rule against the
//! clock now; [`Store::restamp`] gives each implausible event the time now (its seq and body
//! stay, so nothing is lost or doubled) and appends a `DeviceFault` (`clock_step`) event
//! naming the seqs and the recorded times, so the server raises a fault and the original
//! times stay on record. If the server still refuses (its clock and the daemon's disagree),
//! the batch is retried with backoff like any refusal: the events wait for the clocks to
//! agree, with the server's `reader_fault` alert open meanwhile, rather than being dropped.
//!
//! # Full outbox
//!
//! At `max_events` stored, [`Store::append`] refuses with [`OutboxError::Full`] and stores
//! nothing; what is already stored is never dropped to make room (it may be the evidence of a
//! removal). The caller raises a local fault and keeps the alarm path working without the
//! outbox.
//!
//! # Threads
//!
//! [`Store`] is the synchronous owner of the `Connection` (used directly by tests and tools).
//! [`Outbox`] is the async handle the daemon uses: it owns a dedicated thread
//! (`custosd-outbox`) that owns the `Store` and runs one job at a time from a channel, so no
//! SQLite call (and no fsync) ever runs on the async executor and no two transactions race. The
//! thread ends when the last handle is dropped; dropping the connection checkpoints the WAL.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use custos_protocol::uplink::{Batch, Event, EventBody, LocalVerdict};
use rusqlite::{Connection, ErrorCode, OptionalExtension as _, TransactionBehavior, params};
use tokio::sync::{Notify, oneshot, watch};

/// The database file name inside the data directory.
pub const FILE_NAME: &str = "outbox.db";

/// The schema, one entry per `user_version`; append only, never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // 1: the boot epoch counter and the event queue.
    "CREATE TABLE boot (
         id    INTEGER PRIMARY KEY CHECK (id = 1),
         epoch INTEGER NOT NULL
     );
     INSERT INTO boot (id, epoch) VALUES (1, 0);
     CREATE TABLE events (
         epoch INTEGER NOT NULL,
         seq   INTEGER NOT NULL,
         at_ms INTEGER NOT NULL,
         body  TEXT NOT NULL,
         PRIMARY KEY (epoch, seq)
     ) WITHOUT ROWID;",
];

/// An outbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The outbox holds `max` events; nothing was stored.
    #[error("outbox full ({max} events unsent)")]
    Full {
        /// The configured maximum.
        max: u64,
    },
    /// Another process holds the database (a second daemon on the same data directory).
    #[error("{}: in use by another process", path.display())]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written by a newer daemon; refusing to downgrade it.
    #[error("{}: schema version {found} is newer than this daemon's {supported}", path.display())]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The data directory could not be created.
    #[error("{}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// SQLite failed (disk full, I/O error, corruption).
    #[error("outbox database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored event no longer parses (written by an incompatible build, or damaged).
    #[error("stored event (epoch {epoch}, seq {seq}) is unreadable: {source}")]
    Corrupt {
        /// Its epoch.
        epoch: u64,
        /// Its seq.
        seq: u64,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// An event body breaks the uplink rules; the server would refuse every batch holding it,
    /// so it is never stored.
    #[error("event refused: {0}")]
    Invalid(#[source] custos_protocol::uplink::UplinkError),
    /// An event body could not be serialised.
    #[error("event body does not serialise: {0}")]
    Encode(serde_json::Error),
    /// The outbox thread has stopped (it panicked or the daemon is shutting down).
    #[error("outbox thread stopped")]
    Closed,
    /// The outbox thread could not be started.
    #[error("cannot start the outbox thread: {0}")]
    Thread(std::io::Error),
}

/// Where an appended event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    /// The boot epoch.
    pub epoch: u64,
    /// The seq within the epoch.
    pub seq: u64,
}

/// The oldest unacknowledged events: all of one epoch, consecutive seqs, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Their epoch.
    pub epoch: u64,
    /// The events (at least one).
    pub events: Vec<Event>,
}

impl Pending {
    /// The batch that uploads these events for `device_id`.
    pub fn into_batch(self, device_id: &str) -> Batch {
        Batch {
            device_id: device_id.to_owned(),
            epoch: self.epoch,
            events: self.events,
        }
    }
}

/// The synchronous owner of the outbox database. See the module doc for the guarantees.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    epoch: u64,
    next_seq: u64,
    depth: u64,
    max_events: u64,
    /// The newest event [`Store::pending`] has handed out for upload in this process (events
    /// are handed out oldest first, so every older one was too).
    handed_out: Option<EventId>,
    /// Passages whose local verdict was recorded after they were handed out, and not handed
    /// out since: the copy the server may have lacks it (see "Local verdicts").
    stale: BTreeSet<EventId>,
}

/// The data directory (0700) and the outbox database (0600; SQLite gives its `-wal` and `-shm`
/// the database's mode) are the daemon's user's alone: they hold the events of classified
/// carriers (issue #9). Created so, and narrowed if an older version left them more open.
fn private_files(data_dir: &Path, db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let narrow = |path: &Path, mode: u32| match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    narrow(data_dir, 0o700)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        narrow(Path::new(&name), 0o600)?;
    }
    Ok(())
}

/// Checks `body` against the uplink rules and serialises it.
fn encode(body: &EventBody) -> Result<String, OutboxError> {
    body.validate().map_err(OutboxError::Invalid)?;
    serde_json::to_string(body).map_err(OutboxError::Encode)
}

impl Store {
    /// Opens (creating if needed) the outbox in `data_dir` and starts a new boot epoch.
    pub fn open(data_dir: &Path, max_events: u64) -> Result<Store, OutboxError> {
        let path = data_dir.join(FILE_NAME);
        private_files(data_dir, &path).map_err(|source| OutboxError::Dir {
            path: data_dir.to_owned(),
            source,
        })?;
        let in_use = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                OutboxError::InUse { path: path.clone() }
            }
            _ => OutboxError::Sqlite(e),
        };
        let mut conn = Connection::open(&path)?;
        // Fail at once if another process holds the lock (rusqlite's default waits 5 s).
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(in_use)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(in_use)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "outbox database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "FULL")?;

        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(in_use)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(OutboxError::TooNew {
                path,
                found: version,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        let epoch: u64 = tx.query_row(
            "UPDATE boot SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch",
            [],
            |row| row.get(0),
        )?;
        let depth: u64 = tx.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))?;
        tx.commit()?;
        tracing::debug!(epoch, depth, path = %path.display(), "outbox open");
        Ok(Store {
            conn,
            epoch,
            next_seq: 1,
            depth,
            max_events,
            handed_out: None,
            stale: BTreeSet::new(),
        })
    }

    /// This start's boot epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Events stored and not yet acknowledged (all epochs).
    pub fn depth(&self) -> u64 {
        self.depth
    }

    /// Stores one event; on return it is on disk.
    pub fn append(&mut self, at_ms: i64, body: &EventBody) -> Result<EventId, OutboxError> {
        let json = encode(body)?;
        let ids = self.append_encoded(&[(at_ms, json)])?;
        Ok(ids[0])
    }

    /// Stores several events in one transaction (one fsync): all or none.
    pub fn append_many(
        &mut self,
        events: &[(i64, EventBody)],
    ) -> Result<Vec<EventId>, OutboxError> {
        let encoded = events
            .iter()
            .map(|(at_ms, body)| Ok((*at_ms, encode(body)?)))
            .collect::<Result<Vec<_>, OutboxError>>()?;
        self.append_encoded(&encoded)
    }

    fn append_encoded(&mut self, events: &[(i64, String)]) -> Result<Vec<EventId>, OutboxError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let n = events.len() as u64;
        if self.depth.saturating_add(n) > self.max_events {
            return Err(OutboxError::Full {
                max: self.max_events,
            });
        }
        let tx = self.conn.transaction()?;
        let mut ids = Vec::with_capacity(events.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (epoch, seq, at_ms, body) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (seq, (at_ms, body)) in (self.next_seq..).zip(events) {
                insert.execute(params![self.epoch, seq, at_ms, body])?;
                ids.push(EventId {
                    epoch: self.epoch,
                    seq,
                });
            }
        }
        tx.commit()?;
        self.next_seq += n;
        self.depth += n;
        Ok(ids)
    }

    /// Up to `limit` (at least 1) of the oldest unacknowledged events, all of the oldest epoch
    /// that has any; `None` when everything is acknowledged.
    pub fn pending(&mut self, limit: usize) -> Result<Option<Pending>, OutboxError> {
        let Some(epoch) = self
            .conn
            .prepare_cached("SELECT epoch FROM events ORDER BY epoch, seq LIMIT 1")?
            .query_row([], |row| row.get::<_, u64>(0))
            .optional()?
        else {
            return Ok(None);
        };
        let mut select = self.conn.prepare_cached(
            "SELECT seq, at_ms, body FROM events WHERE epoch = ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = select.query_map(params![epoch, limit.max(1)], |row| {
            Ok((
                row.get::<_, u64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut events: Vec<Event> = Vec::new();
        for row in rows {
            let (seq, at_ms, json) = row?;
            // Acks delete prefixes, so seqs are consecutive; stop at a gap rather than send a
            // batch the server would refuse.
            if let Some(last) = events.last().filter(|e| e.seq + 1 != seq) {
                let before = EventId {
                    epoch,
                    seq: last.seq,
                };
                if self.stale.contains(&before) {
                    // A passage kept past its ack for its local verdict: it goes alone.
                    tracing::debug!(epoch, seq = last.seq, "re-delivering a local verdict");
                } else {
                    tracing::error!(epoch, seq, "gap in the outbox; sending up to it");
                }
                break;
            }
            let body = serde_json::from_str(&json).map_err(|source| OutboxError::Corrupt {
                epoch,
                seq,
                source,
            })?;
            events.push(Event { seq, at_ms, body });
        }
        if let Some(last) = events.last() {
            let last = EventId {
                epoch,
                seq: last.seq,
            };
            self.handed_out = self.handed_out.max(Some(last));
        }
        for e in &events {
            self.stale.remove(&EventId { epoch, seq: e.seq });
        }
        Ok(Some(Pending { epoch, events }))
    }

    /// Gives the events `bad` (`(seq, recorded at_ms)` of `epoch`) the time `now_ms` and
    /// records the fact in a `DeviceFault` (`clock_step`) event (see "Implausible times").
    /// The restamp is durable before the next batch is built, so a re-sent batch carries the
    /// same bytes. A full outbox skips the fault event (logged); the restamp is kept.
    pub fn restamp(
        &mut self,
        epoch: u64,
        bad: &[(u64, i64)],
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        if bad.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut update =
                tx.prepare_cached("UPDATE events SET at_ms = ?3 WHERE epoch = ?1 AND seq = ?2")?;
            for (seq, _) in bad {
                update.execute(params![epoch, seq, now_ms])?;
            }
        }
        tx.commit()?;
        let listed: Vec<String> = bad
            .iter()
            .take(8)
            .map(|(seq, at)| format!("{seq}@{at}"))
            .collect();
        let detail = format!(
            "{} event(s) of epoch {epoch} recorded at implausible times restamped to {now_ms}: {}",
            bad.len(),
            listed.join(", ")
        );
        tracing::warn!(epoch, count = bad.len(), %detail, "events restamped");
        let fault = EventBody::DeviceFault {
            kind: custos_protocol::uplink::DeviceFaultKind::ClockStep,
            detail,
        };
        if let Err(e) = self.append(now_ms, &fault) {
            tracing::warn!(error = %e, "recording the restamp failed; the restamp stands");
        }
        Ok(())
    }

    /// Records the gate's own decision in the passage event `id` (see "Local verdicts"); true
    /// if recorded, false if the event is gone (acknowledged) or is not a passage.
    pub fn record_local_verdict(
        &mut self,
        id: EventId,
        verdict: LocalVerdict,
    ) -> Result<bool, OutboxError> {
        let json: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM events WHERE epoch = ?1 AND seq = ?2")?
            .query_row(params![id.epoch, id.seq], |row| row.get(0))
            .optional()?;
        let Some(json) = json else {
            return Ok(false);
        };
        let mut body: EventBody =
            serde_json::from_str(&json).map_err(|source| OutboxError::Corrupt {
                epoch: id.epoch,
                seq: id.seq,
                source,
            })?;
        let EventBody::Passage { local_verdict, .. } = &mut body else {
            return Ok(false);
        };
        *local_verdict = Some(verdict);
        let json = encode(&body)?;
        self.conn
            .prepare_cached("UPDATE events SET body = ?3 WHERE epoch = ?1 AND seq = ?2")?
            .execute(params![id.epoch, id.seq, json])?;
        if self.handed_out >= Some(id) {
            self.stale.insert(id);
        }
        Ok(true)
    }

    /// Deletes the events of `epoch` with `seq <= acked_through` (the server stores them),
    /// except stale passages (see "Local verdicts"), which stay to be sent again; returns how
    /// many were deleted.
    pub fn ack(&mut self, epoch: u64, acked_through: u64) -> Result<u64, OutboxError> {
        let keep: Vec<u64> = self
            .stale
            .range(
                EventId { epoch, seq: 0 }..=EventId {
                    epoch,
                    seq: acked_through,
                },
            )
            .map(|id| id.seq)
            .collect();
        let tx = self.conn.transaction()?;
        let mut deleted = 0;
        {
            let mut delete = tx.prepare_cached(
                "DELETE FROM events WHERE epoch = ?1 AND seq >= ?2 AND seq <= ?3",
            )?;
            let mut from = 0;
            for kept in keep
                .iter()
                .copied()
                .chain([acked_through.saturating_add(1)])
            {
                if kept > from {
                    deleted += delete.execute(params![epoch, from, kept - 1])? as u64;
                }
                from = kept.saturating_add(1);
            }
        }
        tx.commit()?;
        if !keep.is_empty() {
            tracing::info!(
                epoch,
                acked_through,
                kept = ?keep,
                "acknowledged passages kept to deliver their local verdict"
            );
        }
        self.depth = self.depth.saturating_sub(deleted);
        Ok(deleted)
    }

    /// Copies the WAL into the main file and truncates it (at shutdown; durability does not
    /// depend on it).
    pub fn checkpoint(&mut self) -> Result<(), OutboxError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// The async handle to the outbox: cheap to clone, every call runs on the outbox thread.
///
/// Each successful append wakes the one task waiting on [`Outbox::new_events`] (the uplink
/// shipper), so an event is on its way to the server as soon as it is on disk.
#[derive(Debug, Clone)]
pub struct Outbox {
    jobs: mpsc::Sender<Job>,
    epoch: u64,
    new_events: Arc<Notify>,
    /// Becomes `true` when the thread has closed the database.
    closed: watch::Receiver<bool>,
}

impl Outbox {
    /// Opens the outbox in `data_dir` on a new dedicated thread and starts a new boot epoch.
    pub async fn open(data_dir: PathBuf, max_events: u64) -> Result<Outbox, OutboxError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened, open_result) = oneshot::channel();
        let (done, closed) = watch::channel(false);
        std::thread::Builder::new()
            .name("custosd-outbox".into())
            .spawn(move || {
                let mut store = match Store::open(&data_dir, max_events) {
                    Ok(store) => {
                        let _ = opened.send(Ok(store.epoch()));
                        store
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = queue.recv() {
                    job(&mut store);
                }
                if let Err(e) = store.checkpoint() {
                    tracing::warn!(error = %e, "outbox checkpoint at close failed");
                }
                drop(store);
                let _ = done.send(true);
            })
            .map_err(OutboxError::Thread)?;
        let epoch = open_result.await.map_err(|_| OutboxError::Closed)??;
        Ok(Outbox {
            jobs,
            epoch,
            new_events: Arc::new(Notify::new()),
            closed,
        })
    }

    /// Runs `f` on the outbox thread and returns its result.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let (reply, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move |store| {
                let _ = reply.send(f(store));
            }))
            .map_err(|_| OutboxError::Closed)?;
        result.await.map_err(|_| OutboxError::Closed)?
    }

    /// This start's boot epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The notifier woken (`notify_one`) after every successful append; for a single consumer.
    pub fn new_events(&self) -> Arc<Notify> {
        self.new_events.clone()
    }

    /// Stores one event; when this returns `Ok` it is on disk. See [`Store::append`].
    pub async fn append(&self, at_ms: i64, body: &EventBody) -> Result<EventId, OutboxError> {
        let json = encode(body)?;
        let ids = self
            .call(move |s| s.append_encoded(&[(at_ms, json)]))
            .await?;
        self.new_events.notify_one();
        Ok(ids[0])
    }

    /// Stores several events in one transaction. See [`Store::append_many`].
    pub async fn append_many(
        &self,
        events: &[(i64, EventBody)],
    ) -> Result<Vec<EventId>, OutboxError> {
        let encoded = events
            .iter()
            .map(|(at_ms, body)| Ok((*at_ms, encode(body)?)))
            .collect::<Result<Vec<_>, OutboxError>>()?;
        let ids = self.call(move |s| s.append_encoded(&encoded)).await?;
        if !ids.is_empty() {
            self.new_events.notify_one();
        }
        Ok(ids)
    }

    /// See [`Store::pending`].
    pub async fn pending(&self, limit: usize) -> Result<Option<Pending>, OutboxError> {
        self.call(move |s| s.pending(limit)).await
    }

    /// See [`Store::restamp`].
    pub async fn restamp(
        &self,
        epoch: u64,
        bad: Vec<(u64, i64)>,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        self.call(move |s| s.restamp(epoch, &bad, now_ms)).await
    }

    /// See [`Store::record_local_verdict`].
    pub async fn record_local_verdict(
        &self,
        id: EventId,
        verdict: LocalVerdict,
    ) -> Result<bool, OutboxError> {
        self.call(move |s| s.record_local_verdict(id, verdict))
            .await
    }

    /// See [`Store::ack`].
    pub async fn ack(&self, epoch: u64, acked_through: u64) -> Result<u64, OutboxError> {
        self.call(move |s| s.ack(epoch, acked_through)).await
    }

    /// See [`Store::depth`].
    pub async fn depth(&self) -> Result<u64, OutboxError> {
        self.call(|s| Ok(s.depth())).await
    }

    /// See [`Store::checkpoint`].
    pub async fn checkpoint(&self) -> Result<(), OutboxError> {
        self.call(Store::checkpoint).await
    }

    /// Drops this handle and waits until the thread has checkpointed and closed the database,
    /// which happens once every clone is gone (for a graceful shutdown: stop the tasks holding
    /// clones first).
    pub async fn close(self) {
        let Outbox {
            jobs, mut closed, ..
        } = self;
        drop(jobs);
        // An error means the thread is gone already.
        let _ = closed.wait_for(|done| *done).await;
    }
}

#[cfg(test)]
mod tests {
    use custos_protocol::uplink::{DeviceFaultKind, ScannedCode};

    use super::*;

    fn scan(n: u32) -> EventBody {
        EventBody::Scan {
            reader: "desk".into(),
            code: ScannedCode::Barcode {
                text: format!("CUS-{n:06}"),
            },
        }
    }

    fn seqs(p: &Pending) -> Vec<u64> {
        p.events.iter().map(|e| e.seq).collect()
    }

    fn provisional_passage() -> EventBody {
        EventBody::Passage {
            reader: "uhf-main".into(),
            direction: custos_protocol::uplink::Direction::Out,
            tags: vec![],
            badges: vec![],
            local_verdict: None,
        }
    }

    /// A passage decided by the gate carries the local verdict in its next upload, whether or
    /// not it was sent before; an acknowledged one is gone; other events are left alone.
    #[test]
    fn a_local_verdict_is_recorded_in_the_stored_passage() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100).unwrap();
        let verdict = LocalVerdict {
            alarm: true,
            policy_version: 7,
            reason: Some(custos_protocol::uplink::AlarmReason::UnauthorizedRemoval),
        };
        let first = s.append(1, &provisional_passage()).unwrap();
        let scan_id = s.append(2, &scan(1)).unwrap();
        // Sent once without an answer, then decided.
        s.pending(10).unwrap().unwrap();
        assert!(s.record_local_verdict(first, verdict).unwrap());
        assert!(!s.record_local_verdict(scan_id, verdict).unwrap());
        let p = s.pending(10).unwrap().unwrap();
        assert_eq!(seqs(&p), vec![1, 2]);
        match &p.events[0].body {
            EventBody::Passage { local_verdict, .. } => {
                assert_eq!(local_verdict.as_ref(), Some(&verdict));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.events[1].body, scan(1));
        s.ack(p.epoch, 2).unwrap();
        assert!(!s.record_local_verdict(first, verdict).unwrap());
    }

    /// A passage decided while the batch holding it was on its way (the verdict came after
    /// the deadline) is kept past that batch's ack and sent again, alone, with its local
    /// verdict; a passage decided before it was handed out, and every other event, goes with
    /// the ack as before (issue 9, finding 8).
    #[test]
    fn a_passage_decided_while_its_batch_was_in_flight_outlives_the_ack() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100).unwrap();
        let verdict = LocalVerdict {
            alarm: false,
            policy_version: 3,
            reason: None,
        };
        let early = s.append(1, &provisional_passage()).unwrap();
        assert!(s.record_local_verdict(early, verdict).unwrap());
        let late = s.append(2, &provisional_passage()).unwrap();
        s.append(3, &scan(1)).unwrap();
        // The batch goes out with both passages; the gate decides the second at its deadline.
        let sent = s.pending(10).unwrap().unwrap();
        assert_eq!(seqs(&sent), vec![1, 2, 3]);
        assert!(s.record_local_verdict(late, verdict).unwrap());
        s.append(4, &scan(2)).unwrap();
        // The server stored the batch as it was sent (`null`) and acknowledges it.
        assert_eq!(s.ack(sent.epoch, 3).unwrap(), 2);
        assert_eq!(s.depth(), 2);
        // The decided passage goes again, alone (the events after it were acknowledged).
        let again = s.pending(10).unwrap().unwrap();
        assert_eq!(seqs(&again), vec![2]);
        match &again.events[0].body {
            EventBody::Passage { local_verdict, .. } => {
                assert_eq!(local_verdict.as_ref(), Some(&verdict));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.ack(again.epoch, 2).unwrap(), 1);
        let rest = s.pending(10).unwrap().unwrap();
        assert_eq!(seqs(&rest), vec![4]);
        assert_eq!(s.ack(rest.epoch, 4).unwrap(), 1);
        assert_eq!(s.pending(10).unwrap(), None);
        assert_eq!(s.depth(), 0);
    }

    /// A verdict recorded before the batch went out travels with it: nothing is kept.
    #[test]
    fn a_passage_decided_before_its_upload_goes_with_its_ack() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100).unwrap();
        let verdict = LocalVerdict {
            alarm: false,
            policy_version: 3,
            reason: None,
        };
        // Handed out once (failed upload), decided, then handed out again with the verdict.
        let id = s.append(1, &provisional_passage()).unwrap();
        s.pending(10).unwrap().unwrap();
        assert!(s.record_local_verdict(id, verdict).unwrap());
        let sent = s.pending(10).unwrap().unwrap();
        assert_eq!(s.ack(sent.epoch, 1).unwrap(), 1);
        assert_eq!(s.pending(10).unwrap(), None);
    }

    /// An implausible time is replaced by now under the same seq and body, the fact is
    /// appended as a `clock_step` fault, and the next batch is one the server accepts.
    #[test]
    fn restamped_events_keep_seq_and_body_and_the_fault_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100).unwrap();
        let now = 1_767_225_600_000;
        s.append(now - 10, &scan(1)).unwrap();
        s.append(0, &scan(2)).unwrap(); // recorded at 1970
        s.append(now - 5, &scan(3)).unwrap();
        let p = s.pending(10).unwrap().unwrap();
        let bad: Vec<(u64, i64)> = p
            .events
            .iter()
            .filter(|e| !custos_protocol::uplink::event_time_plausible(e.at_ms, now))
            .map(|e| (e.seq, e.at_ms))
            .collect();
        assert_eq!(bad, vec![(2, 0)]);
        s.restamp(p.epoch, &bad, now).unwrap();
        let p = s.pending(10).unwrap().unwrap();
        assert_eq!(seqs(&p), vec![1, 2, 3, 4]);
        assert_eq!(p.events[1].at_ms, now);
        assert_eq!(p.events[1].body, scan(2));
        assert!(
            p.events
                .iter()
                .all(|e| custos_protocol::uplink::event_time_plausible(e.at_ms, now))
        );
        match &p.events[3].body {
            EventBody::DeviceFault { kind, detail } => {
                assert_eq!(*kind, DeviceFaultKind::ClockStep);
                assert!(detail.contains("2@0"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn epoch_increments_across_reopen_and_seqs_are_consecutive() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100).unwrap();
        assert_eq!(s.epoch(), 1);
        for n in 1..=3 {
            assert_eq!(
                s.append(1000 + i64::from(n), &scan(n)).unwrap(),
                EventId {
                    epoch: 1,
                    seq: u64::from(n)
                }
            );
        }
        let ids = s.append_many(&[(2000, scan(4)), (2001, scan(5))]).unwrap();
        assert_eq!(ids.iter().map(|i| i.seq).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(s.depth(), 5);
        drop(s);
        let mut s = Store::open(dir.path(), 100).unwrap();
        assert_eq!(s.epoch(), 2);
        assert_eq!(s.depth(), 5, "unacked events survive a restart");
        assert_eq!(
            s.append(3000, &scan(6)).unwrap(),
            EventId { epoch: 2, seq: 1 }
        );
        drop(s);
        assert_eq!(Store::open(dir.path(), 100).unwrap().epoch(), 3);
    }

    #[test]
    fn pending_is_oldest_epoch_first_and_single_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100).unwrap();
        s.append(1, &scan(1)).unwrap();
        s.append(2, &scan(2)).unwrap();
        drop(s);
        let mut s = Store::open(dir.path(), 100).unwrap();
        s.append(3, &scan(3)).unwrap();
        let p = s.pending(10).unwrap().unwrap();
        assert_eq!((p.epoch, seqs(&p)), (1, vec![1, 2]));
        assert_eq!(p.events[1].at_ms, 2);
        assert_eq!(p.events[1].body, scan(2), "body round-trips through JSON");
        let p1 = s.pending(1).unwrap().unwrap();
        assert_eq!(seqs(&p1), [1]);
        assert_eq!(s.ack(1, 2).unwrap(), 2);
        let p = s.pending(10).unwrap().unwrap();
        assert_eq!((p.epoch, seqs(&p)), (2, vec![1]));
        let batch = p.into_batch("gate-1");
        assert_eq!((batch.epoch, batch.validate()), (2, Ok(())));
        s.ack(2, 1).unwrap();
        assert_eq!(s.pending(10).unwrap(), None);
        assert_eq!(s.depth(), 0);
    }

    #[test]
    fn ack_deletes_exactly_through_acked_and_only_that_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100).unwrap();
        for n in 1..=5 {
            s.append(0, &scan(n)).unwrap();
        }
        assert_eq!(
            s.ack(2, 5).unwrap(),
            0,
            "another epoch's ack deletes nothing"
        );
        assert_eq!(s.ack(1, 3).unwrap(), 3);
        assert_eq!(seqs(&s.pending(10).unwrap().unwrap()), [4, 5]);
        assert_eq!(s.ack(1, 3).unwrap(), 0, "a repeated ack is harmless");
        assert_eq!(s.depth(), 2);
    }

    #[test]
    fn full_outbox_refuses_new_events_and_keeps_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 3).unwrap();
        s.append(0, &scan(1)).unwrap();
        assert!(matches!(
            s.append_many(&[(0, scan(2)), (0, scan(3)), (0, scan(4))]),
            Err(OutboxError::Full { max: 3 })
        ));
        s.append_many(&[(0, scan(2)), (0, scan(3))]).unwrap();
        let fault = EventBody::DeviceFault {
            kind: DeviceFaultKind::OutboxFull,
            detail: String::new(),
        };
        assert!(matches!(s.append(0, &fault), Err(OutboxError::Full { .. })));
        let invalid = EventBody::Scan {
            reader: String::new(),
            code: ScannedCode::EmCard { id: "1A".into() },
        };
        assert!(matches!(
            s.append(0, &invalid),
            Err(OutboxError::Invalid(_))
        ));
        assert_eq!(s.depth(), 3);
        assert_eq!(seqs(&s.pending(10).unwrap().unwrap()), [1, 2, 3]);
        // The refused events took no seq: the next stored one follows on.
        s.ack(1, 1).unwrap();
        assert_eq!(s.append(0, &fault).unwrap().seq, 4);
        drop(s);
        let mut s = Store::open(dir.path(), 3).unwrap();
        assert_eq!(s.depth(), 3, "nothing dropped across a reopen");
        assert_eq!(seqs(&s.pending(10).unwrap().unwrap()), [2, 3, 4]);
    }

    #[test]
    fn the_data_directory_and_the_outbox_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let mut s = Store::open(&dir, 10).unwrap();
        s.append(1, &scan(1)).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        assert_eq!(mode(&dir.join("outbox.db-wal")), 0o600);
        // (No -shm: the exclusive locking mode keeps the WAL index in memory.)
        let shm = dir.join("outbox.db-shm");
        assert!(!shm.exists() || mode(&shm) == 0o600);
        drop(s);
        // Files an older version left readable are narrowed at the next start.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join(FILE_NAME), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        drop(Store::open(&dir, 10).unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
    }

    #[test]
    fn second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 10).unwrap();
        let err = Store::open(dir.path(), 10).unwrap_err();
        assert!(matches!(err, OutboxError::InUse { .. }), "{err}");
        drop(s);
        assert_eq!(Store::open(dir.path(), 10).unwrap().epoch(), 2);
    }

    /// SHA-256 (hex) of every released migration's exact text, in order.
    ///
    /// An outbox on some gate may already be at any of these versions, and `user_version` only
    /// says how many migrations it has, not which text ran; so a released migration is never
    /// edited (not even its whitespace): the change goes in a new migration at the end, and its
    /// hash is appended here.
    const RELEASED: &[&str] = &[
        // 1
        "652f5ffaff479c954806745462eff0fb2f33a63f932e2784c1cc8b7620030246",
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
                "outbox migration {} was edited: released migrations are append-only; \
                 restore its text and put the change in a new migration at the end",
                i + 1
            );
        }
        assert!(
            actual.len() >= RELEASED.len(),
            "a released outbox migration was removed: migrations are append-only"
        );
        assert_eq!(
            &actual[..],
            RELEASED,
            "a new outbox migration: append its SHA-256 to RELEASED (migrations are \
             append-only; once released, its text is frozen)"
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), 10).unwrap());
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(dir.path(), 10).unwrap_err();
        assert!(
            matches!(
                err,
                OutboxError::TooNew {
                    found: 99,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn pragmas_are_wal_and_full() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 10).unwrap();
        let mode: String = s
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let sync: i64 = s
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2));
    }

    #[tokio::test]
    async fn async_handle_runs_on_its_thread_and_notifies() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().to_owned(), 10).await.unwrap();
        assert_eq!(outbox.epoch(), 1);
        let notify = outbox.new_events();
        let woken = notify.notified();
        let id = outbox.append(5, &scan(1)).await.unwrap();
        woken.await; // returns only because append notified
        assert_eq!(id, EventId { epoch: 1, seq: 1 });
        outbox.append_many(&[(6, scan(2))]).await.unwrap();
        assert_eq!(outbox.depth().await.unwrap(), 2);
        let p = outbox.pending(10).await.unwrap().unwrap();
        assert_eq!(seqs(&p), [1, 2]);
        assert_eq!(outbox.ack(1, 2).await.unwrap(), 2);
        outbox.checkpoint().await.unwrap();
        let other = outbox.clone();
        let closing = tokio::spawn(outbox.close());
        tokio::task::yield_now().await;
        assert!(!closing.is_finished(), "a clone keeps the database open");
        assert!(matches!(
            Outbox::open(dir.path().to_owned(), 10).await,
            Err(OutboxError::InUse { .. })
        ));
        drop(other);
        closing.await.unwrap();
        let reopened = Outbox::open(dir.path().to_owned(), 10).await.unwrap();
        assert_eq!(reopened.epoch(), 2);
        assert_eq!(reopened.depth().await.unwrap(), 0);
    }
}
