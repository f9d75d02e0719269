//! custosd: the reader daemon that runs beside the readers of a gate, cabinet or desk.
//!
//! Data flow: `readers` (one async driver per protocol) → `smoothing` (appear/disappear,
//! passages with direction, cabinet snapshots; pure, time passed in) → `outbox` (SQLite,
//! synchronous=FULL: on disk before anything else) → `uplink` (Ed25519-signed batches, ack
//! deletes) and `gate` (the verdict for an exit, with the signed policy of `policy` as
//! fail-secure fallback) → `actuators` (alarm coils on the gate I/O module over Modbus). `app`
//! wires them together: `custosd run` and `custosd check` as library functions.

pub mod actuators;
pub mod app;
pub mod backoff;
pub mod config;
pub mod gate;
pub mod keys;
pub mod model;
pub mod outbox;
pub mod policy;
pub mod readers;
pub mod smoothing;
pub mod uplink;
pub mod witness;
