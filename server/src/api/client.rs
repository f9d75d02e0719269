//! The client's address on every request: the TCP peer, or the client a trusted proxy names
//! ([`crate::auth::source`]), put in the request's extensions as [`ClientAddr`] for the
//! handlers that throttle per source (sign-in, device endpoints).

use std::net::SocketAddr;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;

use crate::AppState;
use crate::auth::source::ClientAddr;

/// The TCP peer of a connection (axum's connect info for the plain and the TLS listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// Middleware: resolve the client's address once and store it as [`ClientAddr`].
pub async fn resolve(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0.0.ip());
    let trusted = &state.settings().trusted_proxies;
    let client = match &trusted.header {
        Some(name) => {
            let values: Vec<&str> = request
                .headers()
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            trusted.client(peer, &values)
        }
        None => peer,
    };
    request.extensions_mut().insert(ClientAddr(client));
    next.run(request).await
}
