//! A small pool of read-only connections used from tokio's blocking threads.
//!
//! A semaphore admits at most as many queries as there are connections, so a permit holder
//! always finds a free connection. The connection goes back to the pool on drop, even if the
//! query panicked.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::BUSY_TIMEOUT_MS;
use crate::store::StoreError;

pub(in crate::store) struct ReadPool {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

struct Lease {
    pool: Arc<Mutex<Vec<Connection>>>,
    conn: Option<Connection>,
}

impl Lease {
    fn connection(&self) -> &Connection {
        // `conn` is `Some` from construction until `drop` takes it.
        self.conn
            .as_ref()
            .expect("lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(conn);
        }
    }
}

impl ReadPool {
    pub(in crate::store) fn open(path: &Path, size: usize) -> Result<ReadPool, StoreError> {
        let mut conns = Vec::with_capacity(size);
        for _ in 0..size {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )?;
            conn.busy_timeout(std::time::Duration::from_millis(u64::from(BUSY_TIMEOUT_MS)))?;
            conn.execute_batch("PRAGMA query_only = ON;")?;
            conns.push(conn);
        }
        Ok(ReadPool {
            idle: Arc::new(Mutex::new(conns)),
            permits: Arc::new(Semaphore::new(size)),
        })
    }

    pub(in crate::store) async fn run<T, E, F>(&self, query: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Task("read pool closed".to_owned()))?;
        let idle = Arc::clone(&self.idle);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // The semaphore has as many permits as the pool has connections, and a lease always
            // returns its connection, so a permit holder always finds one.
            let conn = idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop()
                .ok_or_else(|| E::from(StoreError::Task("read pool empty".to_owned())))?;
            let lease = Lease {
                pool: idle,
                conn: Some(conn),
            };
            query(lease.connection())
        })
        .await
        .map_err(|e| E::from(StoreError::Task(e.to_string())))?
    }
}
