//! custos-server: the Custos system of record.
//!
//! `main.rs` is a thin shell over this library so that tests (and the simulator's demo) can run
//! the server in-process: build an [`AppState`] from an opened [`store::Store`] and the
//! [`keys::ServerKey`], then [`launch`] it on any `TcpListener` (port 0 in tests).
//!
//! Layers, from the inside out: [`domain`] (pure rules), [`store`] and [`audit`] (SQLite,
//! never on the async executor), [`auth`] (passwords, sessions, capability types), [`api`]
//! (thin axum handlers), [`web`] (server-rendered pages), [`cli`] (the subcommands).

pub mod alert_hub;
pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod notify;
pub mod replay;
pub mod service;
pub mod state;
pub mod store;
pub mod tls;
pub mod web;

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use axum::Router;
use tokio::net::TcpListener;

use crate::api::client::PeerAddr;
use crate::tls::TlsListener;

pub use crate::alert_hub::AlertHub;
pub use crate::state::{AppState, Clock, Settings};

/// The HTTP application.
pub fn app(state: AppState) -> Router {
    // The API keeps the fallback (JSON 404); the pages add routes only, so the merge is legal.
    api::router(state.clone())
        .merge(
            web::router()
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    web::datetime::scope,
                ))
                .with_state(state.clone()),
        )
        .layer(axum::middleware::from_fn_with_state(
            state,
            api::client::resolve,
        ))
}

/// Where [`launch_with`] serves: the public port (plain or TLS) and, optionally, the separate
/// metrics port.
#[derive(Debug)]
pub struct Listeners {
    /// The public port.
    pub public: Public,
    /// `metrics_listen`: `/metrics` and `/healthz` only, unauthenticated.
    pub metrics: Option<TcpListener>,
}

/// The public listener.
#[derive(Debug)]
pub enum Public {
    /// Plain HTTP.
    Plain(TcpListener),
    /// HTTPS.
    Tls(TlsListener),
}

type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why [`launch`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(#[from] std::io::Error),
    /// The SMTP settings could not be used.
    #[error("{0}")]
    Mailer(#[from] notify::MailerError),
    /// The final audit head could not be signed.
    #[error("signing the audit head at shutdown failed: {0}")]
    SignHead(#[from] service::ServiceError),
}

/// Serve `state` on `listener` until `shutdown` resolves, then finish in-flight requests and
/// sign the audit chain head. While running, the head is also signed every
/// `audit_head_interval`, and the sweeps run every `sweep_interval` ([`jobs`]).
pub async fn launch(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    launch_with(
        Listeners {
            public: Public::Plain(listener),
            metrics: None,
        },
        state,
        shutdown,
    )
    .await
}

/// [`launch`] on the given listeners: HTTPS when the public one is TLS, and the metrics port
/// when there is one (it stops with the server).
pub async fn launch_with(
    listeners: Listeners,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    let signer = tokio::spawn(sign_heads_periodically(state.clone()));
    let sweeper = tokio::spawn(jobs::sweep_periodically(state.clone()));
    let silence_watch = state
        .settings()
        .silence_watch
        .then(|| tokio::spawn(jobs::watch_silence(state.clone())));
    let notifier = notify::Notifier::new(&state)?;
    let notifier = tokio::spawn(notify::run(state.clone(), notifier));
    let stopping = state.clone();
    let shutdown: Shutdown = Box::pin(async move {
        shutdown.await;
        stopping.stop();
    });
    let metrics = listeners.metrics.map(|listener| {
        let mut stopping = state.stopping();
        let serve = axum::serve(listener, api::metrics_router(state.clone()))
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|s| *s).await;
            });
        tokio::spawn(serve.into_future())
    });
    let service = app(state.clone()).into_make_service_with_connect_info::<PeerAddr>();
    let served = match listeners.public {
        Public::Plain(listener) => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Public::Tls(listener) => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    if let Some(metrics) = metrics {
        match metrics.await {
            Ok(Err(e)) => tracing::error!(error = %e, "serving metrics failed"),
            Err(e) => tracing::error!(error = %e, "the metrics server was lost"),
            Ok(Ok(())) => {}
        }
    }
    sweeper.abort();
    if let Some(watch) = silence_watch {
        watch.abort();
    }
    notifier.abort();
    signer.abort();
    let signed = service::audit::sign_head(&state).await;
    served?;
    signed?;
    tracing::info!("server stopped");
    Ok(())
}

async fn sign_heads_periodically(state: AppState) {
    let mut ticks = tokio::time::interval(state.settings().audit_head_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = service::audit::sign_head(&state).await {
            tracing::error!(error = %e, "signing the audit head failed");
        }
    }
}
