//! What the exports read that no other area's rows offer: the carrier movements of a time
//! range (device history, sign-outs, transfer and dispatch steps, destructions), as plain rows the EPCIS mapping ([`crate::domain::epcis`]) turns into events.
//!
//! Plain types and one trait, [`ExportRows`]; the SQLite implementation is in
//! [`super::sqlite`].

use super::StoreError;

/// One movement of one carrier: a history row (gate, cabinet, desk) or a sign-out step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementRow {
    /// Unique per movement and carrier: `ev-EVENT-CARRIER`, `so-SIGNOUT-issue-CARRIER`,
    /// `so-SIGNOUT-return-CARRIER`, `rq-REQUEST-STEP-CARRIER` (a transfer's or dispatch's
    /// step), `rq-REQUEST-destroyed-CARRIER`.
    pub key: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// `passage`, `turned_back`, `cabinet`, `scan`, `issued`, `returned`, `shipped` (handed
    /// over, sent), `received` (received, delivered) or `destroyed`.
    pub kind: String,
    /// `in` or `out` for passages and cabinets.
    pub direction: Option<String>,
    /// The carrier.
    pub carrier_id: i64,
    /// The device that saw it.
    pub device_id: Option<String>,
    /// The device's inside zone (gates) or zone (cabinets, desks).
    pub inside_zone: Option<String>,
    /// A gate's outside zone.
    pub outside_zone: Option<String>,
}

/// Reading for exports.
pub trait ExportRows {
    /// Movements with `from_ms <= at_ms < to_ms`, by time, at most `limit`.
    fn movements(
        &mut self,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<MovementRow>, StoreError>;
    /// A carrier's EPC tags as upper-case hex (without the `epc:` prefix).
    fn carrier_epcs(&mut self, carrier_id: i64) -> Result<Vec<String>, StoreError>;
}
