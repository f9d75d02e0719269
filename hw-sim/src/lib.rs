//! custos-sim: simulated reader hardware for Custos, on real pseudo-terminals and real sockets.
//!
//! The daemon cannot tell a simulated device from a real one: serial devices sit behind a pty
//! whose slave (`/dev/pts/N`, reached through a `--link` symlink) the daemon opens like
//! `/dev/ttyUSB0`, and the gate I/O module is a real Modbus TCP server. Tests and the demo steer
//! each device through a control socket.
//!
//! # Layout
//! - Every device is a pure state machine: requests, bytes, control ops and (for timed devices)
//!   the current time go in through `handle_*` calls; answers, bytes and events come out of
//!   `poll_*` calls. No clock, socket or task inside, so tests run them on a virtual clock.
//!   - serial devices implement [`serial::SerialDevice`] ([`barcode::BarcodeScanner`]);
//!   - Modbus devices answer `tokio_modbus` requests ([`gate_io::GateIo`],
//!     [`flat_reader::FlatReader`]); tokio-modbus does the framing.
//! - Thin tokio drivers run them: [`serial::run_serial_device`], [`gate_io::run_gate_io`],
//!   [`flat_reader::run_modbus_reader`]. Each takes its already opened endpoint (a
//!   [`pty::PtyLink`] or a bound `TcpListener`), an optional [`control::ControlSocket`] and a
//!   shutdown future, so a caller knows the real path or port before the device runs.
//! - `main.rs` is a thin clap CLI over these.
//!
//! Adding a serial device (e.g. a UHF reader) = a type implementing [`serial::SerialDevice`],
//! tested with [`serial::VirtualSerial`], plus a subcommand in `main.rs` that builds it and calls
//! `serve_serial` there. `silence` and `garbage` come for free from [`serial::WithFaults`].
//!
//! # Ready line and stdout
//! Once a device accepts connections it prints exactly one line on stdout:
//! `ready <device> <PATH or HOST:PORT>`, e.g. `ready barcode /tmp/x/scanner` or
//! `ready gate-io 127.0.0.1:40123` (the real port when port 0 was asked). gate-io then prints every
//! coil change as a JSON line `{"coil":0,"value":true}`. Logs go to stderr (`RUST_LOG`, default
//! `custos_sim=info`).
//!
//! # Control socket
//! `--control SOCK` is a Unix socket taking JSON lines; each line is one op and is answered with
//! one line, `{"ok":true}` or `{"ok":false,"error":"..."}`. A malformed line, an unknown op, an
//! unknown field or a bad value is answered with an error and changes nothing. Several clients may
//! be connected; their ops are applied one at a time. Blank lines are ignored.
//!
//! | op | fields | devices | effect |
//! |---|---|---|---|
//! | `field` | `antenna` (1-based), `tags` (hex EPCs) | uhf-reader | replaces that antenna's field |
//! | `clear` | – | uhf-reader, em4100, modbus-reader | empties the field / removes the card |
//! | `disconnect` | `antenna` | uhf-reader | unplugs an antenna |
//! | `connect` | `antenna` | uhf-reader | plugs it back in |
//! | `silence` | `on` (bool) | every serial device | stops (`true`) / resumes all answers and reports; input is ignored meanwhile |
//! | `garbage` | `hex` (1 to 4096 bytes) | every serial device | writes these raw bytes to the host once, even while silent |
//! | `scan` | `text` | barcode | sends `[AIM prefix] text terminator`; control characters other than GS (0x1D) are refused |
//! | `card` | `hex` (UID) | em4100 (5 bytes), modbus-reader (1 to 8 bytes) | presents a card |
//! | `input` | `n` (0-based), `value` (bool) | gate-io | sets a discrete input |
//! | `input` | `n` (1-based GPI port), `value` (bool) | llrp-reader | sets a GPI; a GPIEvent goes to the client |
//!
//! `llrp-reader` (a TCP listener, [`llrp_reader`]) also takes `field`, `clear`, `disconnect`,
//! `connect`, `silence` and `garbage`, and prints every GPO change as `{"gpo":1,"value":true}`.
//!
//! Examples:
//! ```text
//! {"op":"field","antenna":1,"tags":["3474257BF40000000000162E"]}
//! {"op":"silence","on":true}
//! {"op":"garbage","hex":"00FF"}
//! {"op":"scan","text":"CU-000123"}
//! {"op":"card","hex":"1A00B54E12"}
//! {"op":"input","n":0,"value":false}
//! ```
//! A device answers ops it does not do with `{"ok":false,"error":"gate-io does not support op
//! \"scan\""}`.

pub mod barcode;
pub mod bench;
pub mod control;
pub mod demo;
pub mod em4100;
pub mod flat_reader;
pub mod gate_io;
pub mod llrp_reader;
pub mod modbus;
pub mod pty;
pub mod reader;
pub mod serial;
pub mod site;
pub mod smtp_sink;
pub mod time;
pub mod uhf_reader;

use std::io;
use std::path::PathBuf;

pub use control::{ControlError, ControlOp, ControlReply, ControlSocket};
pub use pty::PtyLink;
pub use serial::{SerialDevice, VirtualSerial, WithFaults, run_serial_device};
pub use time::Millis;

/// Why a simulated device could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The pseudo-terminal could not be created or used.
    #[error("pseudo-terminal: {0}")]
    Pty(#[source] io::Error),
    /// The `--link` symlink could not be made.
    #[error("link {}: {source}", path.display())]
    Link {
        /// The symlink's path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// Something other than a symlink is at the `--link` path.
    #[error("link {}: exists and is not a symlink; refusing to replace it", .0.display())]
    LinkOccupied(PathBuf),
    /// The control socket could not be bound or stopped accepting.
    #[error("control socket {}: {source}", path.display())]
    Control {
        /// The socket's path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A simulator is already serving the control socket path.
    #[error("control socket {}: in use by a running simulator", .0.display())]
    ControlInUse(PathBuf),
    /// Something other than a socket is at the control socket path.
    #[error("control socket {}: exists and is not a socket; refusing to replace it", .0.display())]
    ControlOccupied(PathBuf),
    /// Reading or writing the pty failed.
    #[error("serial link: {0}")]
    Serial(#[source] io::Error),
    /// The TCP listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address as given.
        addr: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The Modbus TCP server stopped accepting.
    #[error("modbus server: {0}")]
    Modbus(#[source] io::Error),
}

/// The ready line a device prints on stdout (without newline): `ready <device> <where>`.
#[must_use]
pub fn ready_line(device: &str, at: impl std::fmt::Display) -> String {
    format!("ready {device} {at}")
}
