//! The fan-out of alert changes to live consoles (SSE).
//!
//! Writers call [`AlertHub::notify`] with the ids of alerts they raised or changed, after their
//! transaction committed. Subscribers get the ids through a `tokio::sync::broadcast` channel.
//! A broadcast channel drops the oldest messages for a receiver that falls behind
//! (`RecvError::Lagged`): a subscriber that sees `Lagged` must NOT carry on as if nothing
//! happened — it tells its client to resynchronise (re-read the alert list), so no alert is
//! ever silently missed. The alert rows in the database stay the source of truth.

use tokio::sync::broadcast;

/// How many alert changes a slow subscriber may fall behind before it must resynchronise.
pub const HUB_CAPACITY: usize = 1024;

/// The alert-change fan-out. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlertHub {
    tx: broadcast::Sender<i64>,
}

impl Default for AlertHub {
    fn default() -> Self {
        AlertHub::new()
    }
}

impl AlertHub {
    /// A hub with [`HUB_CAPACITY`].
    pub fn new() -> AlertHub {
        let (tx, _) = broadcast::channel(HUB_CAPACITY);
        AlertHub { tx }
    }

    /// Tell subscribers that these alerts were raised or changed (after commit).
    pub fn notify(&self, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            // An error only means nobody is listening right now; the rows are in the database.
            let _ = self.tx.send(id);
        }
    }

    /// A new subscription; it sees changes notified from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::RecvError;

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_so() {
        let hub = AlertHub::new();
        let mut rx = hub.subscribe();
        hub.notify(0..(HUB_CAPACITY as i64 + 10));
        assert!(matches!(rx.recv().await, Err(RecvError::Lagged(10))));
        assert_eq!(rx.recv().await.unwrap(), 10);
    }
}
