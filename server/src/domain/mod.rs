//! The pure core: plain types and rules as plain functions.
//!
//! Nothing in here touches SQL, HTTP or the clock. Time is always an argument, so every rule is
//! a fast, deterministic unit test. The edges (`store`, `api`) translate to and from these
//! types; they never re-implement a rule.

pub mod alert;
pub mod approval;
pub mod audit;
pub mod cabinet;
pub mod carrier;
pub mod copy;
pub mod csv;
pub mod datetime;
pub mod destruction;
pub mod device;
pub mod epcis;
pub mod gate;
pub mod ids;
pub mod ingest;
pub mod level;
pub mod lifecycle;
pub mod liveness;
pub mod moves;
pub mod notify;
pub mod page;
pub mod person;
pub mod reclassification;
pub mod repair;
pub mod role;
pub mod secrecy;
pub mod signout;
pub mod sweep;
pub mod time;
pub mod user;
