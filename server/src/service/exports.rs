//! Data out: the movement record as EPCIS 2.0 and the registers as CSV files.
//!
//! Each export reads in one read transaction (a consistent snapshot, never on the writer
//! thread: a large export must not delay a gate's verdict), then appends one audit entry
//! (`export.KIND`, with the row count) in a small write transaction of its own. Who exported
//! what, and when, is on the trail; the data itself is not.
//!
//! What goes into each file is fixed here as columns over the same views the API lists
//! return ([`column`] picks a field, with `a.b` for nested ones; lists are joined with `; `),
//! so a file shows exactly what its reader's role may see in the API. EPCIS never holds a
//! title ([`crate::domain::epcis`]); the register CSV does, for the custodians and security
//! officers who may see titles.
//!
//! # Times in the CSV files
//! The date-time columns ([`CsvExport::instant_columns`]) are for people: written like the
//! pages write them ([`crate::domain::datetime::format`], `2026-03-01 16:05:09`) in the
//! site's time zone (`time_zone`), which a spreadsheet reads as a date-time and sorts. No
//! importer reads them back (the carrier and people imports ignore them). The columns an
//! importer does read back stay machine-readable: ids, codes, and the plain dates of the
//! people register (`training_valid_until`, `commitment_signed_on`,
//! `decommissioning_ends_on`, `YYYY-MM-DD`). The audit file's `before`/`after` cells are the
//! stored JSON, with its UTC times; the chain's hashes cover the stored entries, so the chain
//! is verified with `custos-server audit verify`, not from this file.

use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::Value;

use super::{Problem, ServiceError};
use crate::AppState;
use crate::audit::{NewEntry, PAGE_MAX};
use crate::auth::capability::{
    AlertReaderCap, AuditorCap, CustodyReader, EventExportCap, PeopleReaderCap,
};
use crate::domain::csv;
use crate::domain::datetime::{self, Style};
use crate::domain::epcis::{self, Fact, Movement};
use crate::domain::ids::AuditId;
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::alerts::AlertFilter;
use crate::store::carriers::CarrierFilter;
use crate::store::exports::MovementRow;

/// The most movements one EPCIS document holds; a wider range is refused (narrow `from`/`to`).
pub const EPCIS_MAX_EVENTS: u32 = 50_000;

/// The registers that export as CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvExport {
    /// The carrier register (台账), with titles.
    Carriers,
    /// The register of people.
    People,
    /// Sign-outs.
    Signouts,
    /// Alerts.
    Alerts,
    /// The audit trail.
    Audit,
}

impl CsvExport {
    /// The name in paths and audit actions.
    pub fn name(self) -> &'static str {
        match self {
            CsvExport::Carriers => "carriers",
            CsvExport::People => "people",
            CsvExport::Signouts => "signouts",
            CsvExport::Alerts => "alerts",
            CsvExport::Audit => "audit",
        }
    }

    /// The columns: header text and the field path in the row's JSON view.
    pub fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            CsvExport::Carriers => &[
                ("id", "id"),
                ("control_no", "control_no"),
                ("kind", "kind"),
                ("level", "level"),
                ("title", "title"),
                ("copy_no", "copy_no"),
                ("copies", "copies"),
                ("owner_unit", "owner_unit"),
                ("home_device", "home_device"),
                ("state", "state"),
                ("holder", "holder.name"),
                ("missing_since", "missing_since"),
                ("last_seen_device", "last_seen.device_id"),
                ("last_seen_at", "last_seen.at"),
                ("tags", "tags.tag"),
                ("created_at", "created_at"),
            ],
            CsvExport::People => &[
                ("id", "id"),
                ("name", "name"),
                ("department", "department"),
                ("category", "category"),
                ("badge_tag", "badge_tag"),
                ("training_valid_until", "training_valid_until"),
                ("commitment_signed_on", "commitment_signed_on"),
                ("status", "status"),
                ("leaving_since", "leaving_since"),
                ("decommissioning_ends_on", "decommissioning_ends_on"),
                ("created_at", "created_at"),
            ],
            CsvExport::Signouts => &[
                ("id", "id"),
                ("state", "state"),
                ("requester", "requester.username"),
                ("borrower", "borrower.name"),
                ("purpose", "purpose"),
                ("due_at", "due_at"),
                ("may_leave", "may_leave"),
                ("created_at", "created_at"),
                ("issued_at", "issued_at"),
                ("closed_at", "closed_at"),
                ("carriers", "carriers.control_no"),
                ("approvers", "approvals.approver.username"),
            ],
            CsvExport::Alerts => &[
                ("id", "id"),
                ("kind", "kind"),
                ("severity", "severity"),
                ("state", "state"),
                ("raised_at", "raised_at"),
                ("last_seen_at", "last_seen_at"),
                ("occurrences", "occurrences"),
                ("carrier_id", "carrier_id"),
                ("carrier_control_no", "carrier_control_no"),
                ("carrier_level", "carrier_level"),
                ("device_id", "device_id"),
                ("person_id", "person_id"),
                ("acknowledged_by", "acknowledged_by"),
                ("resolved_by", "resolved_by"),
                ("resolution_note", "resolution_note"),
            ],
            CsvExport::Audit => &[
                ("id", "id"),
                ("at", "at"),
                ("actor", "actor"),
                ("action", "action"),
                ("subject", "subject"),
                ("before", "before"),
                ("after", "after"),
                ("prev_hash", "prev_hash"),
                ("hash", "hash"),
            ],
        }
    }
}

impl CsvExport {
    /// The columns holding an instant (RFC 3339 in the JSON view), written for people in the
    /// site's zone (see the module doc). Everything else is written as the API shows it.
    pub fn instant_columns(self) -> &'static [&'static str] {
        match self {
            CsvExport::Carriers => &["missing_since", "last_seen_at", "created_at"],
            CsvExport::People => &["leaving_since", "created_at"],
            CsvExport::Signouts => &["due_at", "created_at", "issued_at", "closed_at"],
            CsvExport::Alerts => &["raised_at", "last_seen_at"],
            CsvExport::Audit => &["at"],
        }
    }
}

/// One cell: the value at `path` (`a.b.c`) in `row`, as text. Strings as they are, numbers
/// and booleans as JSON writes them, null or absent as empty, objects as compact JSON; a list
/// on the way maps the rest of the path over its items, joined with `; `.
pub fn column(row: &Value, path: &str) -> String {
    let (head, rest) = path
        .split_once('.')
        .map_or((path, None), |(h, r)| (h, Some(r)));
    let Some(value) = row.get(head) else {
        return String::new();
    };
    match (value, rest) {
        (Value::Array(items), rest) => items
            .iter()
            .map(|item| rest.map_or_else(|| scalar(item), |r| column(item, r)))
            .collect::<Vec<_>>()
            .join("; "),
        (value, Some(rest)) => column(value, rest),
        (value, None) => scalar(value),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An instant cell in the site's format and `zone`; a cell that is not an RFC 3339 time
/// (empty, or unexpected) stays as it is.
fn local_time(cell: String, zone: &TimeZone) -> String {
    match cell.parse::<Timestamp>() {
        Ok(at) => datetime::format(Style::Numeric, zone, at),
        Err(_) => cell,
    }
}

/// A CSV document of `rows` (any serialisable views) with `export`'s columns, its instants
/// written in `zone` (the site's).
pub fn to_csv<T: Serialize>(
    export: CsvExport,
    rows: &[T],
    zone: &TimeZone,
) -> Result<String, ServiceError> {
    let columns = export.columns();
    let instants = export.instant_columns();
    let header: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let mut cells = Vec::with_capacity(rows.len());
    for row in rows {
        let value = serde_json::to_value(row).map_err(|e| ServiceError::Store(e.into()))?;
        cells.push(
            columns
                .iter()
                .map(|(head, path)| {
                    let cell = column(&value, path);
                    if instants.contains(head) {
                        local_time(cell, zone)
                    } else {
                        cell
                    }
                })
                .collect::<Vec<_>>(),
        );
    }
    Ok(csv::document(&header, &cells))
}

/// Append the `export.KIND` audit entry.
async fn audit_export(
    app: &AppState,
    actor: &str,
    what: &'static str,
    rows: usize,
    range: Option<Value>,
) -> Result<(), ServiceError> {
    let actor = actor.to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| {
            let action = match what {
                "carriers" => "export.carriers",
                "people" => "export.people",
                "signouts" => "export.signouts",
                "alerts" => "export.alerts",
                "audit" => "export.audit",
                _ => "export.epcis",
            };
            tx.append_audit(&NewEntry {
                at,
                actor,
                action,
                subject: format!("export:{what}"),
                before: None,
                after: Some(serde_json::json!({ "rows": rows, "range": range })),
            })?;
            Ok::<_, ServiceError>(())
        })
        .await
}

/// The carrier register as CSV (custodians, security officers).
pub async fn carriers_csv(app: &AppState, cap: &CustodyReader) -> Result<String, ServiceError> {
    let rows = super::carriers::list(app, cap, CarrierFilter::default()).await?;
    let text = to_csv(CsvExport::Carriers, &rows, &app.settings().time_zone)?;
    audit_export(app, cap.actor().name(), "carriers", rows.len(), None).await?;
    Ok(text)
}

/// The register of people as CSV.
pub async fn people_csv(app: &AppState, cap: &PeopleReaderCap) -> Result<String, ServiceError> {
    let rows = super::people::list(app, cap).await?;
    let text = to_csv(CsvExport::People, &rows, &app.settings().time_zone)?;
    audit_export(app, cap.actor().name(), "people", rows.len(), None).await?;
    Ok(text)
}

/// Every sign-out as CSV.
pub async fn signouts_csv(app: &AppState, cap: &CustodyReader) -> Result<String, ServiceError> {
    let rows = super::signouts::list(app, cap, None).await?;
    let text = to_csv(CsvExport::Signouts, &rows, &app.settings().time_zone)?;
    audit_export(app, cap.actor().name(), "signouts", rows.len(), None).await?;
    Ok(text)
}

/// Every alert as CSV, newest first.
pub async fn alerts_csv(app: &AppState, cap: &AlertReaderCap) -> Result<String, ServiceError> {
    let rows = super::alerts::list(app, cap, AlertFilter::default()).await?;
    let text = to_csv(CsvExport::Alerts, &rows, &app.settings().time_zone)?;
    audit_export(app, cap.actor().name(), "alerts", rows.len(), None).await?;
    Ok(text)
}

/// The whole audit trail as CSV, oldest first, read in one snapshot.
pub async fn audit_csv(app: &AppState, cap: &AuditorCap) -> Result<String, ServiceError> {
    let rows = app
        .store()
        .query(|tx| {
            let mut all = Vec::new();
            let mut after = AuditId(0);
            loop {
                let page = tx.audit_after(after, PAGE_MAX)?;
                let Some(last) = page.last() else { break };
                after = last.id;
                all.extend(page);
            }
            Ok::<_, ServiceError>(all)
        })
        .await?;
    let text = to_csv(CsvExport::Audit, &rows, &app.settings().time_zone)?;
    audit_export(app, cap.actor().name(), "audit", rows.len(), None).await?;
    Ok(text)
}

/// The facts of the store's movement rows: each with its carrier's EPCs and the zone where it
/// happened (a gate's outside zone for an exit, else the device's inside or own zone).
fn facts(tx: &mut dyn Tx, rows: Vec<MovementRow>) -> Result<Vec<Fact>, ServiceError> {
    let mut epcs: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let kind = row.kind.as_str();
        let Some(movement) = Movement::from_step(kind)
            .or_else(|| Movement::from_history(kind, row.direction.as_deref()))
        else {
            continue;
        };
        let carrier_epcs = match epcs.get(&row.carrier_id) {
            Some(found) => found.clone(),
            None => {
                let found = tx.carrier_epcs(row.carrier_id)?;
                epcs.insert(row.carrier_id, found.clone());
                found
            }
        };
        let zone_id = if movement == Movement::PassageOut {
            row.outside_zone
        } else {
            row.inside_zone
        };
        out.push(Fact {
            key: row.key,
            at: Timestamp::from_unix_ms_saturating(row.at_ms),
            movement,
            carrier_id: row.carrier_id,
            epcs: carrier_epcs,
            device_id: row.device_id,
            zone_id,
        });
    }
    Ok(out)
}

/// The movements from `from` (default: the beginning) until `to` (default: now) as an EPCIS
/// 2.0 `EPCISDocument` (auditors, security officers); `to` before `from` is an empty range.
pub async fn epcis(
    app: &AppState,
    cap: &EventExportCap,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Result<Value, ServiceError> {
    let now = app.now();
    let from_ms = from.map_or(0, Timestamp::unix_ms);
    // A range that ends before it begins (or a `from` after now) holds no movements: an
    // empty document, like any range with nothing in it (the document allows any two times).
    let to_ms = to.unwrap_or(now).unix_ms().max(from_ms);
    let facts = app
        .store()
        .query(move |tx| {
            let rows = tx.movements(from_ms, to_ms, EPCIS_MAX_EVENTS + 1)?;
            facts(tx, rows)
        })
        .await?;
    if facts.len() > EPCIS_MAX_EVENTS as usize {
        return Err(ServiceError::Invalid(vec![Problem {
            field: "from",
            code: "too_many",
            message: "the range holds more than 50000 movements: narrow from and to",
        }]));
    }
    let range = serde_json::json!({ "from": from.map(|t| t.to_string()), "to": to.unwrap_or(now).to_string() });
    audit_export(app, cap.actor().name(), "epcis", facts.len(), Some(range)).await?;
    Ok(epcis::document(facts, now))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_pick_nested_fields_and_join_lists() {
        let row = json!({
            "id": "3", "holder": {"name": "张三"}, "copies": 2, "home": null,
            "tags": [{"tag": "epc:AB"}, {"tag": "barcode:CU1"}],
            "after": {"x": 1}
        });
        assert_eq!(column(&row, "id"), "3");
        assert_eq!(column(&row, "holder.name"), "张三");
        assert_eq!(column(&row, "copies"), "2");
        assert_eq!(column(&row, "home"), "");
        assert_eq!(column(&row, "missing"), "");
        assert_eq!(column(&row, "tags.tag"), "epc:AB; barcode:CU1");
        assert_eq!(column(&row, "after"), "{\"x\":1}");
    }

    #[test]
    fn instants_are_written_in_the_sites_zone_and_dates_stay_as_they_are() {
        let zone = TimeZone::get("Asia/Shanghai").unwrap();
        let rows = vec![json!({
            "id": "1", "name": "张三", "created_at": "2026-03-01T20:05:09Z",
            "leaving_since": null, "training_valid_until": "2027-06-30"
        })];
        let text = to_csv(CsvExport::People, &rows, &zone).unwrap();
        let parsed = csv::parse(&text).unwrap();
        let header = &parsed[0].fields;
        let cell = |name: &str| {
            let i = header.iter().position(|h| h == name).unwrap();
            parsed[1].fields[i].clone()
        };
        assert_eq!(cell("created_at"), "2026-03-02 04:05:09", "Beijing time");
        assert_eq!(cell("leaving_since"), "");
        assert_eq!(
            cell("training_valid_until"),
            "2027-06-30",
            "a date the people import reads back stays a plain date"
        );
        for export in [
            CsvExport::Carriers,
            CsvExport::People,
            CsvExport::Signouts,
            CsvExport::Alerts,
            CsvExport::Audit,
        ] {
            for name in export.instant_columns() {
                assert!(
                    export.columns().iter().any(|(h, _)| h == name),
                    "{name} is a column of {}",
                    export.name()
                );
            }
        }
    }

    #[test]
    fn a_csv_export_has_its_header_and_neutralised_cells() {
        let rows = vec![json!({"id": "1", "name": "=cmd|' /C calc'!A0", "department": "一处"})];
        let text = to_csv(CsvExport::People, &rows, &TimeZone::UTC).unwrap();
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("\u{feff}id,name,department")
        );
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("1,'=cmd|' /C calc'!A0,一处")
        );
    }
}
