//! The single writer thread and its group commit.
//!
//! Loop: block for one job, drain up to `batch_max - 1` more without waiting, `BEGIN
//! IMMEDIATE`, run each job inside `SAVEPOINT job` (released on success, rolled back on
//! failure or panic), `COMMIT`, then answer every job. If the transaction itself cannot begin or
//! commit, every job of the group gets [`StoreError::CommitFailed`] and nothing is kept (or
//! its own error, if it failed by itself, and [`StoreError::StorageFull`] when the disk is
//! full). SQLite may roll a failed transaction back by itself (a full disk, an I/O error): the
//! writer issues `ROLLBACK` only while a transaction is still open, so a full disk is one log
//! line, not a second "cannot rollback" error.
//! The thread ends when the last [`Writer`] handle is dropped.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;

/// Jobs that can wait in the queue before callers are made to wait for room.
const QUEUE_DEPTH: usize = 1024;

/// What a job leaves behind after running: how to answer its caller once the group's fate is
/// known, and whether it left the transaction in an unknown state.
struct Ran {
    answer: Box<dyn FnOnce(Result<(), Failure>) + Send>,
    poisoned: bool,
}

/// Why a group did not commit.
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    /// The disk (or the size limit) is full.
    full: bool,
}

impl Failure {
    fn of(e: &rusqlite::Error) -> Failure {
        Failure {
            reason: e.to_string(),
            full: e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
        }
    }

    fn into_error(self) -> StoreError {
        if self.full {
            StoreError::StorageFull
        } else {
            StoreError::CommitFailed(self.reason)
        }
    }
}

trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Ran;
    fn abort(self: Box<Self>, failure: Failure);
}

struct Pending<F, T, E> {
    job: F,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for Pending<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Ran {
        let Pending { job, reply } = *self;
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            let failure = Failure::of(&e);
            return Ran {
                answer: Box::new(move |_| {
                    let _ = reply.send(Err(failure.into_error().into()));
                }),
                poisoned: true,
            };
        }
        let result = catch_unwind(AssertUnwindSafe(|| job(conn)))
            .unwrap_or_else(|_| Err(StoreError::Task("write job panicked".to_owned()).into()));
        let end = if result.is_ok() {
            conn.execute_batch("RELEASE job")
        } else {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")
        };
        Ran {
            answer: Box::new(move |commit| {
                let _ = reply.send(match (commit, result) {
                    (Ok(()), result) => result,
                    // The job's own error says more than the group's (e.g. its write is the
                    // one that found the disk full).
                    (Err(_), Err(own)) => Err(own),
                    (Err(failure), Ok(_)) => Err(failure.into_error().into()),
                });
            }),
            poisoned: end.is_err(),
        }
    }

    fn abort(self: Box<Self>, failure: Failure) {
        let _ = self.reply.send(Err(failure.into_error().into()));
    }
}

/// Handle to the writer thread.
#[derive(Clone)]
pub(in crate::store) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    pub(in crate::store) fn spawn(
        conn: Connection,
        batch_max: usize,
    ) -> Result<Writer, StoreError> {
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("custos-store-writer".to_owned())
            .spawn(move || run(conn, rx, batch_max))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(Writer { jobs })
    }

    /// Queue `job`; resolves with its result once its group has committed (or with the
    /// job's own error, its changes rolled back). A job's error of any type `E` rolls back
    /// that job only.
    pub(in crate::store) async fn submit<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(Pending { job, reply }))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>, batch_max: usize) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(batch_max);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_group(&conn, &mut batch);
    }
    tracing::debug!("store writer stopped");
}

fn commit_group(conn: &Connection, batch: &mut Vec<Box<dyn Job>>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "cannot begin write transaction");
        let failure = Failure::of(&e);
        for job in batch.drain(..) {
            job.abort(failure.clone());
        }
        return;
    }
    let size = batch.len();
    let ran: Vec<Ran> = batch.drain(..).map(|job| job.run(conn)).collect();
    let outcome = if ran.iter().any(|r| r.poisoned) {
        Err(Failure {
            reason: "a savepoint could not be closed".to_owned(),
            full: false,
        })
    } else {
        conn.execute_batch("COMMIT").map_err(|e| Failure::of(&e))
    };
    if let Err(failure) = &outcome {
        // SQLite ended the transaction itself (a full disk, an I/O error) when a job's
        // statement failed: that job's own error reports it (api::error logs a `storage full`
        // refusal once per request), so this is no second error line.
        let by_engine = conn.is_autocommit();
        if failure.full || by_engine {
            tracing::debug!(reason = %failure.reason, size, "write transaction rolled back");
        } else {
            tracing::error!(reason = %failure.reason, size, "write transaction rolled back");
        }
        // SQLite rolls back by itself after some errors (a full disk): only an open
        // transaction needs the ROLLBACK.
        if !by_engine && let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rollback failed");
        }
    } else {
        tracing::trace!(size, "group committed");
    }
    for r in ran {
        (r.answer)(outcome.clone());
    }
}
