//! The use cases: one function per thing a user, a device or a timer can do.
//!
//! Each takes the application ([`AppState`]: store, clock, alert fan-out), a capability from
//! [`crate::auth::capability`] (proof of the caller's role, and the audit actor) and typed
//! input. It validates the input once, then runs one transaction through the store's
//! persistence interface ([`crate::store::Tx`]): loads the facts, asks the pure rules in
//! [`crate::domain`], writes the effects and their audit entry. `api/` (JSON) and `web/`
//! (pages) call the same function and only translate: HTTP or a form to typed input, the
//! result or [`ServiceError`] to JSON or HTML.
//!
//! A use case's body is a plain function over `&mut dyn Tx`, so its tests need no HTTP and
//! no particular database: see each module's tests.
//!
//! [`AppState`]: crate::AppState

pub mod accounts;
pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod cabinets;
pub mod carriers;
pub mod console;
pub mod copies;
pub mod destructions;
pub mod devices;
mod error;
pub mod exports;
pub mod imports;
pub mod ingest;
pub mod lifecycle;
pub mod lists;
pub mod moves;
pub mod notify;
pub mod people;
pub mod policy;
pub mod reclassifications;
pub mod signouts;
pub mod sweep;
pub mod transfers;
pub mod travel;
pub mod zones;

pub use error::{Problem, ServiceError};
