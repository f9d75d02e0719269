//! A pseudo-terminal that stands in for a reader's serial port.
//!
//! The simulator owns the master side; the host (custosd, a test) opens the slave side by path,
//! exactly as it would open `/dev/ttyUSB0`, and sets baud rate and framing on it (a pty ignores
//! them). `--link PATH` is a symlink to the slave (`/dev/pts/N`), so configurations can name a
//! stable path.
//!
//! Why not `tokio_serial::SerialStream::pair()`: it hands out exactly one async master and keeps
//! no way to duplicate it, but the Modbus RTU server of tokio-modbus takes ownership of the stream
//! while the simulator must still write injected garbage, and must restart the server on a fresh
//! handle after a fatal decode error. So the pair is made with `serialport::TTYPort::pair()`
//! (which sets the slave raw) and every async handle is a `dup` of the master
//! ([`PtyLink::open_stream`]).
//!
//! The slave is kept open by the simulator for its whole life:
//! - otherwise the master reads `EIO` whenever no host has the port open (between reconnects);
//! - the termios settings (raw: no echo, no CR/LF translation, no signals) stay put.
//!
//! Keeping it open has one side effect that real hardware does not have: a host that opened the
//! port in exclusive mode (`TIOCEXCL`, the default of serialport/tokio-serial) leaves that flag on
//! the tty after closing, because the tty is never released, and every unprivileged re-open then
//! fails with `EBUSY`. A small task therefore clears the flag (`TIOCNXCL`) every
//! [`EXCLUSIVE_RESET_PERIOD`]; hosts still exclude one another through their `flock`, which is
//! per open file and released on close.
//!
//! All of this is safe code: the pty comes from serialport, the held slave fd and the ioctls from
//! rustix.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use serialport::SerialPort as _;
use tokio::task::JoinHandle;

use crate::SimError;

/// How often the exclusive-open flag left by a host is cleared (see the module docs).
pub const EXCLUSIVE_RESET_PERIOD: Duration = Duration::from_millis(50);

/// A pseudo-terminal pair: the master for the simulator, the slave (and optionally a symlink to
/// it) for the host. Dropping it closes the pty and removes the symlink.
#[derive(Debug)]
pub struct PtyLink {
    master: serialport::TTYPort,
    slave_path: PathBuf,
    link: Option<PathBuf>,
    exclusive_reset: JoinHandle<()>,
}

impl PtyLink {
    /// Opens a pty and points the symlink `link` at its slave. A symlink already at `link` (left
    /// by a previous run) is replaced; any other file there is refused. Must be called inside a
    /// tokio runtime.
    ///
    /// # Errors
    /// [`SimError::Pty`], [`SimError::LinkOccupied`], [`SimError::Link`].
    pub fn open(link: impl AsRef<Path>) -> Result<PtyLink, SimError> {
        let link = link.as_ref().to_path_buf();
        let mut pty = PtyLink::unlinked()?;
        let link_err = |source| SimError::Link {
            path: link.clone(),
            source,
        };
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if meta.file_type().is_symlink() => {
                tracing::info!(link = %link.display(), "replacing existing symlink");
                std::fs::remove_file(&link).map_err(link_err)?;
            }
            Ok(_) => return Err(SimError::LinkOccupied(link)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(link_err(e)),
        }
        std::os::unix::fs::symlink(&pty.slave_path, &link).map_err(link_err)?;
        tracing::info!(link = %link.display(), slave = %pty.slave_path.display(), "pty ready");
        pty.link = Some(link);
        Ok(pty)
    }

    /// Opens a pty without a symlink; the host opens [`PtyLink::slave_path`]. Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// [`SimError::Pty`].
    pub fn unlinked() -> Result<PtyLink, SimError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| SimError::Pty(io::Error::other(e)))?;
        let pty_err = |e: serialport::Error| SimError::Pty(e.into());
        let (master, pair_slave) = serialport::TTYPort::pair().map_err(pty_err)?;
        let slave_path = PathBuf::from(
            pair_slave
                .name()
                .ok_or_else(|| SimError::Pty(io::Error::other("pty slave has no name")))?,
        );
        // Our own descriptor of the slave, held until drop; serialport's is closed only after it
        // is open so the slave is never without an opener.
        let slave = rustix::fs::open(
            &slave_path,
            OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SimError::Pty(e.into()))?;
        drop(pair_slave);
        make_raw(&slave).map_err(SimError::Pty)?;
        let slave = Arc::new(slave);
        let exclusive_reset = runtime.spawn(reset_exclusive(Arc::clone(&slave)));
        Ok(PtyLink {
            master,
            slave_path,
            link: None,
            exclusive_reset,
        })
    }

    /// The slave device, e.g. `/dev/pts/3`.
    #[must_use]
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// The symlink, if [`PtyLink::open`] made one.
    #[must_use]
    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// The path a host should open: the symlink if there is one, else the slave.
    #[must_use]
    pub fn host_path(&self) -> &Path {
        self.link_path().unwrap_or(&self.slave_path)
    }

    /// A new async handle on the master (a `dup`: handles share the pty). Must be called inside
    /// a tokio runtime.
    ///
    /// # Errors
    /// [`SimError::Pty`] when the descriptor cannot be duplicated or registered.
    pub fn open_stream(&self) -> Result<tokio_serial::SerialStream, SimError> {
        let pty_err = |e: serialport::Error| SimError::Pty(e.into());
        let dup = self.master.try_clone_native().map_err(pty_err)?;
        tokio_serial::SerialStream::try_from(dup).map_err(pty_err)
    }
}

impl Drop for PtyLink {
    fn drop(&mut self) {
        self.exclusive_reset.abort();
        let Some(link) = &self.link else { return };
        // Remove the link only if it is still ours; another simulator may have replaced it.
        match std::fs::read_link(link) {
            Ok(target) if target == self.slave_path => {
                if let Err(e) = std::fs::remove_file(link) {
                    tracing::warn!(link = %link.display(), "cannot remove symlink: {e}");
                }
            }
            _ => tracing::debug!(link = %link.display(), "symlink no longer ours; left alone"),
        }
    }
}

fn make_raw(slave: &OwnedFd) -> io::Result<()> {
    use rustix::termios::{OptionalActions, tcgetattr, tcsetattr};
    let mut termios = tcgetattr(slave)?;
    termios.make_raw();
    tcsetattr(slave, OptionalActions::Now, &termios)?;
    Ok(())
}

async fn reset_exclusive(slave: Arc<OwnedFd>) {
    let mut tick = tokio::time::interval(EXCLUSIVE_RESET_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if let Err(e) = rustix::termios::ioctl_tiocnxcl(&*slave) {
            tracing::warn!("cannot clear exclusive mode on pty: {e}");
            return;
        }
    }
}
