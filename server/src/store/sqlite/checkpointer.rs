//! The checkpointer: a thread with its own connection that runs
//! `PRAGMA wal_checkpoint(PASSIVE)` every interval, so that copying the WAL back into the
//! database file happens beside the writer instead of inside its COMMITs.
//!
//! PASSIVE never waits for the writer or for readers; it copies what it can and the next round
//! continues. If it fails (a busy database, a full disk), the failure is logged and the writer's
//! own automatic checkpoint, at a higher threshold, still bounds the WAL. The thread ends when
//! [`Checkpointer`] is dropped (with the last [`crate::store::Store`] clone).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::BUSY_TIMEOUT_MS;
use crate::store::StoreError;

/// Owns the checkpointer thread; dropping it stops the thread.
pub(in crate::store) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Start checkpointing the database at `path` every `interval`.
    pub(in crate::store) fn spawn(
        path: &Path,
        interval: Duration,
    ) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::from_millis(u64::from(BUSY_TIMEOUT_MS)))?;
        // A checkpoint fsyncs the database file before the WAL may be reused.
        conn.execute_batch("PRAGMA synchronous = FULL;")?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("custos-store-checkpoint".to_owned())
            .spawn(move || run(&conn, &stopped, interval))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>, interval: Duration) {
    // Nothing is ever sent: the channel disconnects when the owner drops its sender.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match result {
            Ok((_, log, copied)) => tracing::trace!(log, copied, "checkpoint"),
            Err(e) => tracing::warn!(error = %e, "checkpoint failed; the writer's own will run"),
        }
    }
    tracing::debug!("checkpointer stopped");
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::temp_store;
    use crate::store::{CHECKPOINT_INTERVAL, DB_FILE};

    /// Committed frames reach the database file without the writer checkpointing: 1 MiB
    /// written is far below the writer's own threshold, yet the file grows to hold it.
    #[tokio::test]
    async fn committed_frames_reach_the_database_file() {
        let (store, dir) = temp_store().await;
        let file = dir.path().join(DB_FILE);
        store
            .write(|c| {
                c.execute_batch(
                    "CREATE TABLE t (x BLOB); INSERT INTO t VALUES (zeroblob(1048576));",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let mut size = 0;
        for _ in 0..100 {
            tokio::time::sleep(CHECKPOINT_INTERVAL).await;
            size = std::fs::metadata(&file).unwrap().len();
            if size >= 1 << 20 {
                break;
            }
        }
        assert!(size >= 1 << 20, "database file is {size} bytes");
    }
}
