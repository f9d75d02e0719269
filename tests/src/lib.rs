//! Shared fixtures of the end-to-end tests in `tests/tests/`: they run the real binaries
//! (`custos-server`, `custosd`, `custos-sim`) over real pseudo-terminals and real TCP sockets.
//!
//! - [`bins`]: where the binaries are, and building them once per test process.
//! - [`proc`]: child processes with their output collected as lines, and deadline-bound waits on
//!   those lines (readiness lines, log entries, coil changes).
//! - [`http`]: a small HTTP client and a reader of the alert stream (Server-Sent Events).
//! - [`rig`]: one reader daemon with its simulated reader (and gate I/O): control ops, walks
//!   through the gate, waits on the daemon's log and on coil changes.
//! - [`site`]: a whole site — server, accounts, zones, devices, people, carriers, simulated
//!   readers and gate I/O, daemons — and the helpers the scenarios use (walking tags through
//!   the gate, sign-outs, alerts, killing and restarting processes).
//!
//! See `tests/README.md` for what each test checks and how to run it.

pub mod bins;
pub mod http;
pub mod proc;
pub mod rig;
pub mod site;

pub use proc::{STEP, poll_some, poll_until, poll_within};
pub use rig::*;
pub use site::*;
