//! Alerts: the lists and views the consoles read, and the lifecycle a guard or security
//! officer moves an alert through (acknowledge, resolve with a note).
//!
//! A transition checks [`AlertState::transition_to`], changes the row and appends the audit
//! entry in one transaction, so the change and its record commit together; a refused one
//! changes nothing. After commit the live consoles hear of the change through the alert hub.

use serde_json::json;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{Problem, ServiceError};
use crate::AppState;
use crate::alert_hub::{Coalescer, Frame, PublisherGuard, REPEAT_INTERVAL};
use crate::audit::NewEntry;
use crate::auth::capability::{AlertHandlerCap, AlertReaderCap};
use crate::domain::alert::{AlertState, NewAlert};
use crate::domain::lifecycle::RemovalOutcome;
use crate::domain::lifecycle::{self, NoteError};
use crate::domain::page::{Page, PageRequest, Sort, SortKey, SortValue, decode_cursor, finish};
use crate::domain::time::Timestamp;
use crate::service::lists::ListParams;
use crate::store::alerts::{AlertCounts, AlertFilter, AlertView, Raised};
use crate::store::{StoreError, Tx};

/// Raise (or repeat) `alert` in `tx` on behalf of `actor`: a new alert is audited
/// (`alert.raise`, with its kind, severity, cause and the ids it names, never a title) in the
/// same transaction, a repeat only counts. Every path that raises an alert outside ingest
/// goes through here, so the audit entry of a raised alert reads the same wherever it came from.
pub fn raise_in(
    tx: &mut dyn Tx,
    at: Timestamp,
    actor: &str,
    alert: &NewAlert,
) -> Result<Raised, ServiceError> {
    let raised = tx.raise_alert(alert)?;
    if let Raised::New(id) = raised {
        tx.append_audit(&NewEntry {
            at,
            actor: actor.to_owned(),
            action: "alert.raise",
            subject: format!("alert:{id}"),
            before: None,
            after: Some(json!({
                "kind": alert.kind,
                "severity": alert.severity,
                "cause": alert.cause,
                "carrier_id": alert.carrier_id.map(|c| c.to_string()),
                "device_id": alert.device_id,
                "person_id": alert.person_id.map(|p| p.to_string()),
            })),
        })?;
    }
    Ok(raised)
}

/// The longest resolution note, in characters.
pub use crate::domain::lifecycle::NOTE_MAX_CHARS;

/// The note, trimmed, if acceptable ([`lifecycle::note`]: not blank, at most
/// [`NOTE_MAX_CHARS`], no control characters other than line breaks and tabs).
pub fn check_note(note: &str) -> Result<String, ServiceError> {
    let (code, message) = match lifecycle::note(note) {
        Ok(note) => return Ok(note),
        Err(NoteError::Empty) => ("empty", "note is required"),
        Err(NoteError::TooLong) => ("too_long", "note must be at most 2000 characters"),
        Err(NoteError::Control) => ("invalid", "note must not contain control characters"),
    };
    Err(ServiceError::Invalid(vec![Problem {
        field: "note",
        code,
        message,
    }]))
}

/// The alerts matching `filter`, newest first.
pub async fn list(
    app: &AppState,
    _cap: &AlertReaderCap,
    filter: AlertFilter,
) -> Result<Vec<AlertView>, ServiceError> {
    app.store().query(move |tx| Ok(tx.alerts(&filter)?)).await
}

/// Alerts are listed newest first, by id, unless asked oldest first ([`ALERT_OLDEST_FIRST`]).
pub const ALERT_SORT: Sort = Sort {
    key: SortKey::int("id"),
    descending: true,
};

/// Alerts oldest first, by id (`sort=id`).
pub const ALERT_OLDEST_FIRST: Sort = Sort {
    key: SortKey::int("id"),
    descending: false,
};

/// The one key alerts sort by (`id` or `-id`).
pub const ALERT_SORT_KEYS: &[SortKey] = &[SortKey::int("id")];

/// One page of the alerts matching `filter`, newest first (oldest first with
/// `filter.oldest_first`), at most `filter.limit`, past `cursor` (from a previous page's
/// `Link`) as well as `filter.before`/`filter.after`; the next page's cursor while more
/// remain. A cursor that is not one of this list and order is [`ServiceError::Invalid`].
pub async fn page(
    app: &AppState,
    _cap: &AlertReaderCap,
    mut filter: AlertFilter,
    cursor: Option<&str>,
) -> Result<Page<AlertView>, ServiceError> {
    let sort = if filter.oldest_first {
        ALERT_OLDEST_FIRST
    } else {
        ALERT_SORT
    };
    if let Some(text) = cursor.filter(|c| !c.is_empty()) {
        let c = decode_cursor(text, &sort).ok_or_else(|| {
            ServiceError::invalid("cursor", "invalid", "cursor is not a cursor of this list")
        })?;
        past(&mut filter, c.id);
    }
    // Not `PageRequest::first`: alert pages keep their own maximum (`LIST_MAX`).
    let request = PageRequest {
        limit: filter.limit,
        sort,
        after: None,
    };
    app.store()
        .query(move |tx| {
            let mut rows = tx.alerts(&filter)?;
            // The store reads at most LIST_MAX; one more row, if any, is read on its own.
            if let Some(last) = rows.last().filter(|_| rows.len() >= request.limit as usize) {
                let mut beyond = AlertFilter {
                    limit: 1,
                    ..filter.clone()
                };
                past(&mut beyond, last.id.parse().unwrap_or(0));
                rows.extend(tx.alerts(&beyond)?);
            }
            let keyed = rows
                .into_iter()
                .map(|a| {
                    let id = a.id.parse().unwrap_or(0);
                    (a, SortValue::Int(id), id)
                })
                .collect();
            Ok(finish(keyed, &request))
        })
        .await
}

/// Narrow `filter` to the alerts that come after alert `id` in its order.
fn past(filter: &mut AlertFilter, id: i64) {
    if filter.oldest_first {
        filter.after = Some(filter.after.map_or(id, |a| a.max(id)));
    } else {
        filter.before = Some(filter.before.map_or(id, |b| b.min(id)));
    }
}

/// One page of the alerts matching `filter` with the paging parameters of every list
/// (`limit`, `cursor`, `sort` of [`ALERT_SORT_KEYS`], `q`: [`ListParams::check`], so the page
/// and the API refuse alike), newest first unless `sort=id`.
pub async fn search_page(
    app: &AppState,
    cap: &AlertReaderCap,
    mut filter: AlertFilter,
    params: &ListParams,
) -> Result<Page<AlertView>, ServiceError> {
    let checked = params.check(ALERT_SORT_KEYS, ALERT_SORT)?;
    filter.limit = checked.page.limit;
    filter.q = checked.q;
    filter.oldest_first = !checked.page.sort.descending;
    if let Some(c) = checked.page.after {
        past(&mut filter, c.id);
    }
    page(app, cap, filter, None).await
}

/// One alert.
pub async fn one(
    app: &AppState,
    _cap: &AlertReaderCap,
    id: i64,
) -> Result<AlertView, ServiceError> {
    app.store()
        .query(move |tx| tx.alert(id)?.ok_or(ServiceError::NotFound))
        .await
}

/// The highest alert id (0 if none): where a live stream starts.
pub async fn max_id(app: &AppState, _cap: &AlertReaderCap) -> Result<i64, ServiceError> {
    app.store().query(|tx| Ok(tx.max_alert_id()?)).await
}

/// Subscribe to the live alert frames (see [`crate::alert_hub`]), starting the publisher if
/// none runs. Every subscriber gets the same frames: the stream's callers all hold a
/// capability that may read every alert.
pub fn subscribe(app: &AppState, _cap: &AlertReaderCap) -> broadcast::Receiver<Frame> {
    let frames = app.alerts().frames();
    if let Some(guard) = app.alerts().claim_publisher() {
        tokio::spawn(publish(app.clone(), guard));
    }
    frames
}

/// The publisher: takes the notified ids, coalesces repeated changes of one alert
/// ([`Coalescer`]), reads every due alert in one query and broadcasts each as one shared
/// frame. Runs until the server stops.
async fn publish(app: AppState, guard: PublisherGuard) {
    let hub = app.alerts().clone();
    let mut coalescer = Coalescer::new(REPEAT_INTERVAL);
    let mut stopping = app.stopping();
    loop {
        let now = Instant::now();
        coalescer.push(hub.take_pending(), now);
        let due = coalescer.due(now);
        if !due.is_empty() {
            for frame in frames(&app, due).await {
                hub.send(frame);
            }
            continue;
        }
        let next = coalescer.next_due();
        tokio::select! {
            () = hub.woken() => {}
            () = sleep_until_or_never(next) => {}
            _ = stopping.wait_for(|stopping| *stopping) => break,
        }
    }
    drop(guard);
}

async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The frames of `ids`, read in one query; an alert that cannot be read or encoded becomes a
/// resync (never a silent gap).
async fn frames(app: &AppState, ids: Vec<i64>) -> Vec<Frame> {
    let loaded = app
        .store()
        .query(move |tx| {
            ids.iter()
                .map(|id| Ok::<_, StoreError>((*id, tx.alert(*id)?)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
    let rows = match loaded {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot load changed alerts; asking consoles to resync");
            return vec![Frame::Resync];
        }
    };
    rows.into_iter()
        .map(|(id, view)| {
            let Some(view) = view else {
                tracing::error!(alert = id, "changed alert not found; asking consoles to resync");
                return Frame::Resync;
            };
            match serde_json::to_string(&view) {
                Ok(json) => Frame::Alert {
                    id,
                    json: json.into(),
                },
                Err(e) => {
                    tracing::error!(alert = id, error = %e, "cannot encode alert; asking consoles to resync");
                    Frame::Resync
                }
            }
        })
        .collect()
}

/// Alerts per kind. Counts only (no ids, kinds or names beyond the kind), so `/metrics` may
/// serve them without a session.
pub async fn counts(app: &AppState) -> Result<AlertCounts, ServiceError> {
    app.store().query(|tx| Ok(tx.alert_counts()?)).await
}

/// open → acknowledged, audited; the consoles are told after commit.
pub async fn acknowledge(
    app: &AppState,
    cap: &AlertHandlerCap,
    id: i64,
) -> Result<AlertView, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let view = app
        .store()
        .transact(move |tx| transition_in(tx, id, AlertState::Acknowledged, &actor, None, at))
        .await?;
    app.alerts().notify([id]);
    Ok(view)
}

/// open or acknowledged → resolved with `note` (checked by [`check_note`]), audited; the
/// consoles are told after commit.
pub async fn resolve(
    app: &AppState,
    cap: &AlertHandlerCap,
    id: i64,
    note: &str,
) -> Result<AlertView, ServiceError> {
    resolve_with_outcome(app, cap, id, note, None).await
}

/// [`resolve`], saying how an `unauthorized_removal` ended: any `outcome` but
/// `stopped_at_gate` marks its carrier missing in the same transaction
/// ([`super::lifecycle::removal_resolved_in`]); an outcome on another kind of alert is
/// refused (400).
pub async fn resolve_with_outcome(
    app: &AppState,
    cap: &AlertHandlerCap,
    id: i64,
    note: &str,
    outcome: Option<RemovalOutcome>,
) -> Result<AlertView, ServiceError> {
    let note = check_note(note)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let (view, raised) = app
        .store()
        .transact(move |tx| {
            let view = transition_in(tx, id, AlertState::Resolved, &actor, Some(&note), at)?;
            let raised =
                super::lifecycle::removal_resolved_in(tx, &actor, &view, outcome, &note, at)?;
            Ok::<_, ServiceError>((view, raised))
        })
        .await?;
    app.alerts().notify(std::iter::once(id).chain(raised));
    Ok(view)
}

/// Move alert `id` to `to` as `actor`, with the audit entry; `note` is for resolving.
fn transition_in(
    tx: &mut dyn Tx,
    id: i64,
    to: AlertState,
    actor: &str,
    note: Option<&str>,
    at: Timestamp,
) -> Result<AlertView, ServiceError> {
    let from = tx.alert_state(id)?.ok_or(ServiceError::NotFound)?;
    let (action, after) = match (from.transition_to(to)?, note) {
        (AlertState::Acknowledged, _) => {
            tx.set_alert_acknowledged(id, actor, at)?;
            ("alert.acknowledge", json!({ "state": to }))
        }
        (AlertState::Resolved, Some(note)) => {
            tx.set_alert_resolved(id, actor, note, at)?;
            ("alert.resolve", json!({ "state": to, "note": note }))
        }
        // Nothing leads back to open, and resolving always has a note.
        (AlertState::Open | AlertState::Resolved, _) => {
            return Err(ServiceError::invalid("note", "empty", "note is required"));
        }
    };
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action,
        subject: format!("alert:{id}"),
        before: Some(json!({ "state": from })),
        after: Some(after),
    })?;
    tx.alert(id)?.ok_or(ServiceError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{AlertKind, IllegalTransition, NewAlert, cause};
    use crate::store::alerts::AlertRows;
    use crate::store::test_support::MemoryDb;

    fn at(unix: i64) -> Timestamp {
        Timestamp::from_unix(unix).unwrap()
    }

    fn raised(db: &MemoryDb) -> i64 {
        let key = cause(AlertKind::UnknownTag, &[("n", "1")]);
        db.tx()
            .raise_alert(&NewAlert::new(AlertKind::UnknownTag, key, 1_000))
            .unwrap()
            .id()
    }

    #[test]
    fn transitions_follow_the_lifecycle_and_are_audited() {
        let db = MemoryDb::new();
        let id = raised(&db);
        let tx = &mut db.tx();
        let view = transition_in(tx, id, AlertState::Acknowledged, "g", None, at(10)).unwrap();
        assert_eq!(view.state, AlertState::Acknowledged);
        assert_eq!(view.acknowledged_by.as_deref(), Some("g"));
        assert_eq!(view.acknowledged_at, Some(at(10)));
        assert!(matches!(
            transition_in(tx, id, AlertState::Acknowledged, "g", None, at(11)),
            Err(ServiceError::AlertTransition(IllegalTransition {
                from: AlertState::Acknowledged,
                to: AlertState::Acknowledged
            }))
        ));
        let view =
            transition_in(tx, id, AlertState::Resolved, "s", Some("found it"), at(12)).unwrap();
        assert_eq!(view.state, AlertState::Resolved);
        assert_eq!(view.note.as_deref(), Some("found it"));
        assert!(matches!(
            transition_in(tx, id, AlertState::Resolved, "s", Some("x"), at(13)),
            Err(ServiceError::AlertTransition(IllegalTransition {
                from: AlertState::Resolved,
                to: AlertState::Resolved
            }))
        ));
        assert!(matches!(
            transition_in(tx, 999, AlertState::Resolved, "s", Some("x"), at(13)),
            Err(ServiceError::NotFound)
        ));
        let entries = db.audit();
        let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["alert.acknowledge", "alert.resolve"],
            "one per change"
        );
        assert_eq!(entries[1].after.as_ref().unwrap()["note"], "found it");
    }

    #[test]
    fn notes_must_be_present_bounded_and_printable() {
        assert_eq!(
            check_note("  found in safe 3 \n").unwrap(),
            "found in safe 3"
        );
        assert!(check_note("line one\nline two\ttab").is_ok());
        for bad in ["", "   \n ", "bell\u{7}"] {
            assert!(check_note(bad).is_err(), "{bad:?}");
        }
        assert!(check_note(&"字".repeat(NOTE_MAX_CHARS)).is_ok());
        assert!(check_note(&"字".repeat(NOTE_MAX_CHARS + 1)).is_err());
    }
}
