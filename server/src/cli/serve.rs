//! `custos-server serve`: open the data directory, bind, announce, serve until a signal.

use std::io::Write;

use tokio::net::TcpListener;

use crate::audit::anchor::AnchorFile;
use crate::config::Config;
use crate::keys::{KEY_FILE, KeyError, ServerKey};
use crate::store::{DB_FILE, Store, StoreError, StoreOptions};
use crate::tls::TlsListener;
use crate::{AppState, LaunchError, Listeners, Public, Settings, launch_with};

/// Why `serve` failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `init` has not been run on the data directory.
    #[error("{0} is not initialised: run `custos-server init` first")]
    NotInitialised(std::path::PathBuf),
    /// The signing key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Binding or announcing failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Serving failed.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The anchor file (`[audit] anchor_file`) cannot be opened.
    #[error("audit anchor file: {0}")]
    Anchor(#[from] crate::audit::anchor::AnchorError),
}

pub(super) async fn run(config: Config) -> Result<(), ServeError> {
    let db = config.data_dir.join(DB_FILE);
    let key_path = config.data_dir.join(KEY_FILE);
    if !db.exists() || !key_path.exists() {
        return Err(ServeError::NotInitialised(config.data_dir.clone()));
    }
    let key = ServerKey::load(&key_path)?;
    // Opened before anything listens: a configured anchor that cannot be written stops the
    // server rather than leave the trail unanchored unnoticed.
    let anchor = config
        .audit
        .anchor_file
        .as_deref()
        .map(AnchorFile::open)
        .transpose()?;
    let store = Store::open(
        &db,
        StoreOptions {
            create: false,
            write_batch_max: config.write_batch_max,
            read_connections: config.read_connections,
        },
    )
    .await?;
    let tls = match &config.tls {
        Some(tls) => Some(crate::tls::server_config(&tls.cert_file, &tls.key_file)?),
        None => None,
    };
    let listen = |source| ServeError::Listen {
        addr: config.listen,
        source,
    };
    let listener = TcpListener::bind(config.listen).await.map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    let metrics = match config.metrics_listen {
        Some(metrics_addr) => {
            let metrics_listen = |source| ServeError::Listen {
                addr: metrics_addr,
                source,
            };
            let metrics = TcpListener::bind(metrics_addr)
                .await
                .map_err(metrics_listen)?;
            let bound = metrics.local_addr().map_err(metrics_listen)?;
            tracing::info!(addr = %bound, "serving /metrics and /healthz");
            Some(metrics)
        }
        None => None,
    };
    let (public, scheme) = match tls {
        Some(tls) => (
            Public::Tls(TlsListener::new(listener, tls).map_err(listen)?),
            "https",
        ),
        None => (Public::Plain(listener), "http"),
    };
    // SIGTERM is caught from before the listening line: a script (or systemd) that stops the
    // server as soon as it announced itself must get the clean shutdown (audit head signed),
    // not the default action.
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    // The socket is bound and listening: connections queue from here on, so scripts may start.
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {scheme}://{addr}").map_err(listen)?;
    out.flush().map_err(listen)?;
    drop(out);
    tracing::info!(%addr, scheme, data_dir = %config.data_dir.display(), "serving");
    let state = AppState::new(store, key, Settings::from(&config));
    if let Some(anchor) = anchor {
        state.set_anchor(anchor);
    }
    launch_with(
        Listeners { public, metrics },
        state,
        shutdown_signal(terminate),
    )
    .await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (`terminate`: the handler, installed early).
async fn shutdown_signal(terminate: std::io::Result<tokio::signal::unix::Signal>) {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match terminate {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
