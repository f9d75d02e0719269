//! The pure core: plain types and rules as plain functions.
//!
//! Nothing in here touches SQL, HTTP or the clock. Time is always an argument, so every rule is
//! a fast, deterministic unit test. The edges (`store`, `api`) translate to and from these
//! types; they never re-implement a rule.

pub mod alert;
pub mod audit;
pub mod cabinet;
pub mod carrier;
pub mod device;
pub mod gate;
pub mod ids;
pub mod ingest;
pub mod level;
pub mod liveness;
pub mod notify;
pub mod page;
pub mod person;
pub mod role;
pub mod signout;
pub mod sweep;
pub mod time;
pub mod user;
