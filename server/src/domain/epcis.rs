//! GS1 EPCIS 2.0 for the carrier movements the server knows: an `EPCISDocument` (JSON-LD) of
//! `ObjectEvent`s, so that another system (an archive, a regulator's tool) can take the
//! register's movements in the standard's own shape.
//!
//! What each movement becomes (bizStep / disposition from the CBV 2.0 vocabulary):
//!
//! | movement | bizStep | disposition | readPoint | bizLocation |
//! |---|---|---|---|---|
//! | gate passage out | `entering_exiting` | `in_transit` | the gate | its outside zone |
//! | gate passage in | `entering_exiting` | `in_progress` | the gate | its inside zone |
//! | turned back at a gate | `entering_exiting` | `in_progress` | the gate | its inside zone |
//! | put into a cabinet | `storing` | `available` | the cabinet | its zone |
//! | taken from a cabinet | `picking` | `unavailable` | the cabinet | its zone |
//! | scanned at a desk | `inspecting` | – | the desk | its zone |
//! | issued on a sign-out | `dispensing` | `dispensed` | – | – |
//! | returned from a sign-out | `receiving` | `returned` | the cabinet, if one saw it | – |
//! | handed over on a transfer, sent on a dispatch | `shipping` | `in_transit` | – | – |
//! | received on a transfer, delivered on a dispatch | `receiving` | `in_progress` | – | – |
//! | destroyed (the destruction record) | `destroying` | `destroyed` | – | – |
//!
//! Every event is an `OBSERVE` but the destruction, which is a `DELETE`: the CBV pairs the
//! `destroying` step with the end of the object's life, after which its EPCs name nothing
//! (its tags are retired here too). Transfers and dispatches use the CBV's shipping/receiving
//! pair: the carrier leaves one custody (`in_transit`) and enters the next (`in_progress`).
//!
//! Carriers are named by the EPC of their tags (`urn:epc:id:giai:…` from the 96-bit tag
//! value); one without an EPC tag (barcode only) by `urn:custos:carrier:ID`. Devices and zones
//! are `urn:custos:device:ID` and `urn:custos:zone:ID` (this site has no GLNs). Each event's
//! `eventID` is `urn:custos:event:KEY`, stable across exports of the same range.
//!
//! Never a title: a [`Fact`] has no field that could hold one (titles can be classified).

use custos_protocol::epc::{Epc, tds};
use serde_json::{Value, json};

use crate::domain::time::Timestamp;

/// The JSON-LD context of EPCIS 2.0.
pub const CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

/// What happened to the carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// Crossed a gate leaving the secure area.
    PassageOut,
    /// Crossed a gate entering the secure area.
    PassageIn,
    /// Reached a gate's far side and went back.
    TurnedBack,
    /// Appeared in a cabinet.
    CabinetIn,
    /// Left a cabinet.
    CabinetOut,
    /// Scanned at a desk or handheld.
    Scan,
    /// Handed to its borrower on a sign-out.
    Issued,
    /// Came back from a sign-out.
    Returned,
    /// Handed over on a transfer, or sent on a dispatch.
    Shipped,
    /// Received on a transfer, or delivered on a dispatch.
    Received,
    /// Destroyed, by a witnessed destruction record.
    Destroyed,
}

impl Movement {
    /// The CBV business step.
    pub fn biz_step(self) -> &'static str {
        match self {
            Movement::PassageOut | Movement::PassageIn | Movement::TurnedBack => "entering_exiting",
            Movement::CabinetIn => "storing",
            Movement::CabinetOut => "picking",
            Movement::Scan => "inspecting",
            Movement::Issued => "dispensing",
            Movement::Returned | Movement::Received => "receiving",
            Movement::Shipped => "shipping",
            Movement::Destroyed => "destroying",
        }
    }

    /// The CBV disposition, where one says something.
    pub fn disposition(self) -> Option<&'static str> {
        match self {
            Movement::PassageOut => Some("in_transit"),
            Movement::PassageIn | Movement::TurnedBack => Some("in_progress"),
            Movement::CabinetIn => Some("available"),
            Movement::CabinetOut => Some("unavailable"),
            Movement::Scan => None,
            Movement::Issued => Some("dispensed"),
            Movement::Returned => Some("returned"),
            Movement::Shipped => Some("in_transit"),
            Movement::Received => Some("in_progress"),
            Movement::Destroyed => Some("destroyed"),
        }
    }

    /// The EPCIS action: `DELETE` for the end of the carrier's life, `OBSERVE` otherwise.
    pub fn action(self) -> &'static str {
        match self {
            Movement::Destroyed => "DELETE",
            _ => "OBSERVE",
        }
    }

    /// The movement of a row the store made from a request (`shipped`, `received`,
    /// `destroyed`), or of a sign-out step (`issued`, `returned`).
    pub fn from_step(kind: &str) -> Option<Movement> {
        match kind {
            "issued" => Some(Movement::Issued),
            "returned" => Some(Movement::Returned),
            "shipped" => Some(Movement::Shipped),
            "received" => Some(Movement::Received),
            "destroyed" => Some(Movement::Destroyed),
            _ => None,
        }
    }

    /// The movement of a carrier history row (`kind`, `direction`), if it is one.
    pub fn from_history(kind: &str, direction: Option<&str>) -> Option<Movement> {
        match (kind, direction) {
            ("passage", Some("out")) => Some(Movement::PassageOut),
            ("passage", _) => Some(Movement::PassageIn),
            ("turned_back", _) => Some(Movement::TurnedBack),
            ("cabinet", Some("out")) => Some(Movement::CabinetOut),
            ("cabinet", _) => Some(Movement::CabinetIn),
            ("scan", _) => Some(Movement::Scan),
            _ => None,
        }
    }
}

/// One movement of one carrier, as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// A key unique to this movement of this carrier (e.g. `ev-12-3`).
    pub key: String,
    /// When.
    pub at: Timestamp,
    /// What.
    pub movement: Movement,
    /// The carrier's id.
    pub carrier_id: i64,
    /// Its EPC tags, upper-case hex (the `epc:` prefix removed).
    pub epcs: Vec<String>,
    /// The device that saw it, if any.
    pub device_id: Option<String>,
    /// The zone where it happened, if known.
    pub zone_id: Option<String>,
}

/// Percent-encode everything but RFC 3986's unreserved characters, so that any id is a
/// valid URI segment.
fn uri_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URI naming one EPC: its pure identity (`urn:epc:id:giai:…`) when the tag value
/// decodes, else the raw form `urn:epc:raw:BITS.xHEX` of the Tag Data Standard.
pub fn epc_uri(hex: &str) -> Option<String> {
    let epc = Epc::from_hex(hex).ok()?;
    tds::pure_identity_uri(&epc).or_else(|| {
        Some(format!(
            "urn:epc:raw:{}.x{}",
            epc.len() * 8,
            hex.to_ascii_uppercase()
        ))
    })
}

/// The `epcList` of a fact: its EPCs, or the carrier's own URN when it has none.
fn epc_list(fact: &Fact) -> Vec<String> {
    let mut list: Vec<String> = fact.epcs.iter().filter_map(|h| epc_uri(h)).collect();
    list.sort();
    list.dedup();
    if list.is_empty() {
        list.push(format!("urn:custos:carrier:{}", fact.carrier_id));
    }
    list
}

/// One `ObjectEvent`.
pub fn object_event(fact: &Fact) -> Value {
    let mut event = json!({
        "type": "ObjectEvent",
        "eventID": format!("urn:custos:event:{}", uri_segment(&fact.key)),
        "eventTime": fact.at.to_string(),
        "eventTimeZoneOffset": "+00:00",
        "action": fact.movement.action(),
        "epcList": epc_list(fact),
        "bizStep": fact.movement.biz_step(),
    });
    if let Some(d) = fact.movement.disposition() {
        event["disposition"] = json!(d);
    }
    if let Some(device) = &fact.device_id {
        event["readPoint"] = json!({ "id": format!("urn:custos:device:{}", uri_segment(device)) });
    }
    if let Some(zone) = &fact.zone_id {
        event["bizLocation"] = json!({ "id": format!("urn:custos:zone:{}", uri_segment(zone)) });
    }
    event
}

/// The whole document, events in time order (then by key), created at `now`.
pub fn document(mut facts: Vec<Fact>, now: Timestamp) -> Value {
    facts.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.key.cmp(&b.key)));
    let events: Vec<Value> = facts.iter().map(object_event).collect();
    json!({
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": now.to_string(),
        "epcisBody": { "eventList": events },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix(1_765_000_000 + secs).unwrap()
    }

    fn fact(key: &str, secs: i64, movement: Movement, epcs: &[&str]) -> Fact {
        Fact {
            key: key.to_owned(),
            at: at(secs),
            movement,
            carrier_id: 7,
            epcs: epcs.iter().map(|s| (*s).to_owned()).collect(),
            device_id: Some("gate east".to_owned()),
            zone_id: Some("public".to_owned()),
        }
    }

    #[test]
    fn a_giai_tag_becomes_its_pure_identity_uri() {
        let uri = epc_uri("3414257BF400000000002710").unwrap();
        assert!(uri.starts_with("urn:epc:id:giai:"), "{uri}");
        assert_eq!(
            epc_uri("E2801160600002040000ABCD").unwrap(),
            "urn:epc:raw:96.xE2801160600002040000ABCD"
        );
        assert_eq!(epc_uri("not hex"), None);
    }

    #[test]
    fn an_event_carries_the_cbv_words_and_uris_and_no_title() {
        let e = object_event(&fact(
            "ev-1-7",
            0,
            Movement::PassageOut,
            &["3414257BF400000000002710"],
        ));
        assert_eq!(e["bizStep"], "entering_exiting");
        assert_eq!(e["disposition"], "in_transit");
        assert_eq!(e["readPoint"]["id"], "urn:custos:device:gate%20east");
        assert_eq!(e["bizLocation"]["id"], "urn:custos:zone:public");
        assert_eq!(e["eventID"], "urn:custos:event:ev-1-7");
        assert!(e.get("title").is_none());
        let bare = object_event(&fact("so-1-issue-7", 0, Movement::Issued, &[]));
        assert_eq!(bare["epcList"], json!(["urn:custos:carrier:7"]));
    }

    #[test]
    fn the_document_orders_events_by_time() {
        let doc = document(
            vec![
                fact("b", 10, Movement::CabinetIn, &[]),
                fact("a", 5, Movement::Scan, &[]),
            ],
            at(20),
        );
        assert_eq!(doc["type"], "EPCISDocument");
        let list = doc["epcisBody"]["eventList"].as_array().unwrap();
        assert_eq!(list[0]["eventID"], "urn:custos:event:a");
        assert!(
            list[0].get("disposition").is_none(),
            "a scan says nothing of it"
        );
        assert_eq!(list[1]["bizStep"], "storing");
    }

    #[test]
    fn history_rows_map_to_movements() {
        assert_eq!(
            Movement::from_history("passage", Some("out")),
            Some(Movement::PassageOut)
        );
        assert_eq!(
            Movement::from_history("cabinet", Some("out")),
            Some(Movement::CabinetOut)
        );
        assert_eq!(Movement::from_history("alert", None), None);
    }

    #[test]
    fn a_destruction_is_a_delete_with_the_cbv_destroying_words() {
        let e = object_event(&fact(
            "rq-4-destroyed-7",
            0,
            Movement::Destroyed,
            &["3414257BF400000000002710"],
        ));
        assert_eq!(e["action"], "DELETE");
        assert_eq!(e["bizStep"], "destroying");
        assert_eq!(e["disposition"], "destroyed");
        assert_eq!(Movement::from_step("destroyed"), Some(Movement::Destroyed));
        let shipped = object_event(&fact("rq-5-sent-7", 0, Movement::Shipped, &[]));
        assert_eq!(
            (
                &shipped["action"],
                &shipped["bizStep"],
                &shipped["disposition"]
            ),
            (&json!("OBSERVE"), &json!("shipping"), &json!("in_transit"))
        );
        assert_eq!(Movement::from_step("received"), Some(Movement::Received));
        assert_eq!(Movement::Received.disposition(), Some("in_progress"));
        assert_eq!(Movement::from_step("passage"), None);
    }
}
