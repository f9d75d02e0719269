//! The client side of the simulated devices' control sockets (one JSON op per line): how the
//! site steers its readers and gate I/O modules. Separate from the devices that use it.

use std::num::NonZeroU8;
use std::path::{Path, PathBuf};

use custos_protocol::epc::Epc;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::SiteError;
use crate::control::{ControlOp, ControlReply, HexBytes};

/// A control-socket client: one op per line, one answer per op.
#[derive(Debug)]
pub struct ControlClient {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl ControlClient {
    /// Connects to the control socket at `path`.
    ///
    /// # Errors
    /// The connect error.
    pub async fn connect(path: &Path) -> std::io::Result<ControlClient> {
        let (read, write) = UnixStream::connect(path).await?.into_split();
        Ok(ControlClient {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    /// Sends one op; `Ok(Err(reason))` when the device refused it.
    ///
    /// # Errors
    /// The socket failed or closed.
    pub async fn send(&mut self, op: &ControlOp) -> std::io::Result<Result<(), String>> {
        let mut line = serde_json::to_string(op).map_err(std::io::Error::other)?;
        line.push('\n');
        self.write.write_all(line.as_bytes()).await?;
        let answer = self
            .lines
            .next_line()
            .await?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        let reply: ControlReply = serde_json::from_str(&answer).map_err(std::io::Error::other)?;
        Ok(if reply.ok {
            Ok(())
        } else {
            Err(reply.error.unwrap_or_default())
        })
    }
}

/// A control socket with a lazily connected, reused client.
#[derive(Debug)]
pub(super) struct Endpoint {
    path: PathBuf,
    client: tokio::sync::Mutex<Option<ControlClient>>,
}

impl Endpoint {
    pub(super) fn new(path: PathBuf) -> Endpoint {
        Endpoint {
            path,
            client: tokio::sync::Mutex::new(None),
        }
    }

    pub(super) async fn op(&self, op: &ControlOp) -> Result<(), SiteError> {
        let mut client = self.client.lock().await;
        let io_err = |source| SiteError::Control {
            path: self.path.clone(),
            source,
        };
        // One reconnect: the device may have restarted its socket.
        let mut failures = 0;
        loop {
            let connected = match client.as_mut() {
                Some(c) => c,
                None => client.insert(ControlClient::connect(&self.path).await.map_err(io_err)?),
            };
            match connected.send(op).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => {
                    return Err(SiteError::ControlRefused {
                        path: self.path.clone(),
                        error,
                    });
                }
                Err(e) => {
                    *client = None;
                    failures += 1;
                    if failures == 2 {
                        return Err(io_err(e));
                    }
                }
            }
        }
    }
}

/// The field op for one antenna.
pub(super) fn field(antenna: u8, tags: &[Epc]) -> ControlOp {
    ControlOp::Field {
        // Antennas are 1..=ANTENNAS here.
        antenna: NonZeroU8::new(antenna).unwrap_or(NonZeroU8::MIN),
        tags: tags
            .iter()
            .map(|t| HexBytes(t.as_bytes().to_vec()))
            .collect(),
    }
}
