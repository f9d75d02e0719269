//! Native HTTPS: the `[tls]` certificate and key loaded into a rustls server configuration
//! (ring provider, TLS 1.2 and 1.3; no OpenSSL), and [`TlsListener`], an axum listener whose
//! connections are TLS streams.
//!
//! Handshakes run on their own tasks, never in the accept loop: a client that opens a
//! connection and sends nothing must not stall everybody else's. At most [`MAX_HANDSHAKES`]
//! run at once (further connections are closed at once) and each has [`HANDSHAKE_TIMEOUT`].

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::api::client::PeerAddr;

/// TLS handshakes in progress at once.
pub const MAX_HANDSHAKES: usize = 256;
/// The longest a handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no PEM certificate.
    #[error("tls cert_file {path}: {reason}")]
    Cert {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key file is unreadable or holds no PEM private key.
    #[error("tls key_file {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("tls certificate and key: {0}")]
    Config(#[from] rustls::Error),
}

/// The server configuration for `cert_file` and `key_file` (PEM), answering ALPN `http/1.1`.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert = |reason: String| TlsError::Cert {
        path: cert_file.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| cert(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert("no certificate in the file".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::Key {
        path: key_file.to_owned(),
        reason: e.to_string(),
    })?;
    // The ring provider: pure Rust and assembly, no C toolchain for aws-lc and no OpenSSL.
    // rustls marks it deprecated only for lacking post-quantum key exchange; the classical
    // suites it offers (X25519, P-256, P-384 with AES-GCM and ChaCha20-Poly1305) are what the
    // site's browsers use today.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose accepted connections have completed a TLS handshake.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    /// Accept on `tcp` and hand out connections once their handshake with `config` is done.
    /// Must be called within a tokio runtime.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener {
            ready,
            local,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: give the system a moment (as axum's
                // own listener does) instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
            tracing::warn!("too many TLS handshakes in progress; connection closed");
            continue;
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop ended (it does not, short of a panic): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}
