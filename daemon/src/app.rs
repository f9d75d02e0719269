//! The daemon's top level: what `custosd run` and `custosd check` do, as library functions the
//! binary (and in-process tests) call.
//!
//! [`run`] opens the outbox, starts the uplink tasks, and on shutdown stops them and closes the
//! outbox. Readers, smoothing and the gate are wired in here as they land; each gets the same
//! shutdown signal and is awaited before the outbox closes, so nothing is written after it.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::config::{Config, ConfigError};
use crate::keys::DeviceKey;
use crate::outbox::{Outbox, OutboxError};
use crate::uplink::{
    HeartbeatState, Heartbeats, ServerAnswer, Shipper, ShipperConfig, Uplink, UplinkError,
};

/// Capacity of the channel that carries server answers to the gate logic.
const ANSWER_CHANNEL: usize = 64;

/// The daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The outbox did not open.
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    /// The uplink client could not be built.
    #[error("uplink: {0}")]
    Uplink(#[from] UplinkError),
}

/// `custosd check` beyond the file itself: every reader can be reached. For now: every serial
/// device named in the configuration exists. Opening each reader once (and asking its version)
/// is added with the reader drivers.
pub async fn check_readers(config: &Config) -> Result<(), ConfigError> {
    config.check_ports()
}

/// Runs the daemon until `shutdown` completes, then stops every task and closes the outbox.
pub async fn run(
    config: Config,
    key: DeviceKey,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    for missing in config.missing_ports() {
        // Not fatal: the reader reports serial_lost until the device appears, so the server
        // learns which reader is missing instead of hearing nothing from the whole device.
        tracing::error!(key = %missing.key, "{}", missing.reason);
    }
    let outbox = Outbox::open(config.data_dir.clone(), config.outbox.max_events).await?;
    let epoch = outbox.epoch();
    let uplink = Arc::new(
        Uplink::new(
            &config.server,
            &config.device_id,
            key,
            config.server_public_key,
        )?
        .with_request_timeout(config.uplink.request_timeout()),
    );
    if !uplink.is_pinned() {
        tracing::warn!(
            "no server_public_key: server verdicts, directives and policies cannot be trusted"
        );
    }

    let (stop, stopped) = watch::channel(false);
    let stop_signal = move || {
        let mut stopped = stopped.clone();
        async move {
            // An error means the sender is gone: stop as well.
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let (answers, mut answer_rx) = mpsc::channel::<ServerAnswer>(ANSWER_CHANNEL);
    let (_heartbeat_state, heartbeat_rx) = watch::channel(HeartbeatState::default());

    let shipper = Shipper::new(
        outbox.clone(),
        uplink.clone(),
        ShipperConfig::from(&config.uplink),
        answers.clone(),
    );
    let shipper = tokio::spawn(shipper.run(stop_signal()));
    let heartbeats = Heartbeats::new(
        uplink.clone(),
        outbox.clone(),
        config.uplink.heartbeat_interval(),
        heartbeat_rx,
        answers,
    );
    let heartbeats = tokio::spawn(heartbeats.run(stop_signal()));
    // Until the gate logic consumes them, answers are only logged.
    let answer_log = tokio::spawn(async move {
        while let Some(answer) = answer_rx.recv().await {
            tracing::debug!(?answer, "server answer");
        }
    });

    tracing::info!(
        "custosd running device={} epoch={} role={:?} readers={}",
        config.device_id,
        epoch,
        config.role(),
        config.readers.len()
    );
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    for (name, task) in [("shipper", shipper), ("heartbeats", heartbeats)] {
        if let Err(e) = task.await {
            tracing::error!(task = name, error = %e, "task failed");
        }
    }
    // Both senders are gone with their tasks, so the log task ends.
    let _ = answer_log.await;
    drop(uplink);
    outbox.close().await;
    tracing::info!(epoch, "stopped");
    Ok(())
}
