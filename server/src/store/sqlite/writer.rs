//! The single writer thread and its group commit.
//!
//! Loop: block for one job, drain up to `batch_max - 1` more without waiting, `BEGIN
//! IMMEDIATE`, run each job inside `SAVEPOINT job` (released on success, rolled back on
//! failure or panic), `COMMIT`, then answer every job. If the transaction itself cannot begin or
//! commit, every job of the group gets [`StoreError::CommitFailed`] and nothing is kept.
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
    answer: Box<dyn FnOnce(Result<(), String>) + Send>,
    poisoned: bool,
}

trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Ran;
    fn abort(self: Box<Self>, reason: String);
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
            let reason = e.to_string();
            return Ran {
                answer: Box::new(move |_| {
                    let _ = reply.send(Err(StoreError::CommitFailed(reason).into()));
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
                let _ = reply.send(match commit {
                    Ok(()) => result,
                    Err(reason) => Err(StoreError::CommitFailed(reason).into()),
                });
            }),
            poisoned: end.is_err(),
        }
    }

    fn abort(self: Box<Self>, reason: String) {
        let _ = self
            .reply
            .send(Err(StoreError::CommitFailed(reason).into()));
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
        for job in batch.drain(..) {
            job.abort(e.to_string());
        }
        return;
    }
    let size = batch.len();
    let ran: Vec<Ran> = batch.drain(..).map(|job| job.run(conn)).collect();
    let outcome = if ran.iter().any(|r| r.poisoned) {
        Err("a savepoint could not be closed".to_owned())
    } else {
        conn.execute_batch("COMMIT").map_err(|e| e.to_string())
    };
    if let Err(reason) = &outcome {
        tracing::error!(%reason, size, "write transaction rolled back");
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rollback failed");
        }
    } else {
        tracing::trace!(size, "group committed");
    }
    for r in ran {
        (r.answer)(outcome.clone());
    }
}
