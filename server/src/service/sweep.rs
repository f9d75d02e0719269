//! The sweep: overdue sign-outs, cabinet removals after their grace period, leak deadlines of
//! missing carriers, silent readers and readers that speak again.
//!
//! A sweep is ONE transaction ([`run_in`]): it commits whole or not at all, and it holds the
//! writer only for indexed reads of the few rows that are due (see [`crate::store::sweeps`]).
//! Once it has committed, the ids of the alerts it raised or changed go to the alert hub, so
//! live consoles hear of them. The rules themselves are pure functions in
//! [`crate::domain::sweep`]; `jobs` runs [`sweep`] on its timer, tests call it with a clock
//! they move.
//!
//! # Records
//! Each new alert gets an `alert.raise` audit entry, a carrier marked missing gets
//! `carrier.missing`, a silent reader speaking again gets `alert.reader_resumed`, all by
//! `@sweep`. Repeats of a live alert only bump its occurrence count.

use serde_json::{Value, json};

use super::ServiceError;
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::Actor;
use crate::domain::alert::{AlertKind, NewAlert, cause};
use crate::domain::sweep::{
    CarrierStanding, RemovalOutcome, SHORTEST_LEAK_DEADLINE_MS, SweepPolicy, episode_alerted,
    leak_deadline_ms, leak_deadline_passed, overdue_notice_due, removal_grace_over,
    removal_outcome, resumed_at, silence_deadline, silent_since,
};
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::alerts::Raised;
use crate::store::sweeps::PendingRemoval;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Alerts raised, repeated or updated, each once, in order: notify these after commit.
    pub changed: Vec<i64>,
    /// How many of them are new alerts.
    pub raised: usize,
    /// Carriers this sweep marked missing.
    pub marked_missing: usize,
}

/// Sweep now, with the configured policy, as the system actor `@sweep`; after commit, tell
/// the consoles about every alert the sweep changed.
pub async fn sweep(app: &AppState) -> Result<SweepOutcome, ServiceError> {
    let at = app.now();
    let policy = app.settings().sweep;
    let loans = app.settings().loans;
    let people_settings = app.settings().people;
    let commitment_months = people_settings.commitment_valid_months;
    let outcome = app
        .store()
        .transact(move |tx| {
            let mut outcome = run_in(tx, at, policy)?;
            // Overdue loans past their level's escalation time: carriers missing.
            let escalated = super::lifecycle::escalate_in(tx, at, &loans)?;
            outcome.marked_missing += escalated.len();
            outcome.changed.extend(escalated);
            // People whose training or commitment ran out while they hold carriers.
            let people = super::people::expired_holders_in(tx, at, commitment_months)?;
            outcome.changed.extend(people);
            // Reminders (training, commitment, decommissioning) through the notifications.
            let reminded =
                super::people::reminders_in(tx, at, &people_settings.windows(), commitment_months)?;
            outcome.changed.extend(reminded);
            Ok::<_, ServiceError>(outcome)
        })
        .await?;
    app.alerts().notify(outcome.changed.iter().copied());
    Ok(outcome)
}

/// When the next device goes silent unless it is heard from: the earliest
/// [`silence_deadline`] among the devices heard within the supervision interval (`None` when
/// none is). A read; the silence watch (`jobs`) sleeps until then.
pub async fn next_silence_at(app: &AppState) -> Result<Option<i64>, ServiceError> {
    let now_ms = app.now().unix_ms();
    let sup = app.settings().sweep.supervision_ms;
    let heard = app
        .store()
        .query(move |tx| {
            Ok::<_, ServiceError>(tx.earliest_heartbeat_since(now_ms.saturating_sub(sup))?)
        })
        .await?;
    Ok(heard.map(|heard_ms| silence_deadline(heard_ms, sup)))
}

/// The sweep's silence rules alone (silent readers, readers heard again), in one transaction:
/// what the silence watch runs at a device's deadline. After commit, the consoles hear of
/// every alert it changed.
pub async fn silent_readers(app: &AppState) -> Result<SweepOutcome, ServiceError> {
    let at = app.now();
    let policy = app.settings().sweep;
    let outcome = app
        .store()
        .transact(move |tx| {
            let mut sweep = Sweep {
                tx,
                at,
                now_ms: at.unix_ms(),
                policy,
                actor: Actor::system("sweep"),
                out: SweepOutcome::default(),
            };
            sweep.silent_readers()?;
            sweep.resumed_readers()?;
            let mut seen = std::collections::HashSet::new();
            sweep.out.changed.retain(|id| seen.insert(*id));
            Ok::<_, ServiceError>(sweep.out)
        })
        .await?;
    app.alerts().notify(outcome.changed.iter().copied());
    Ok(outcome)
}

/// Run every rule once at `at`, in `tx`.
pub fn run_in(
    tx: &mut dyn Tx,
    at: Timestamp,
    policy: SweepPolicy,
) -> Result<SweepOutcome, ServiceError> {
    let mut sweep = Sweep {
        tx,
        at,
        now_ms: at.unix_ms(),
        policy,
        actor: Actor::system("sweep"),
        out: SweepOutcome::default(),
    };
    sweep.overdue()?;
    sweep.cabinet_removals()?;
    sweep.leak_deadlines()?;
    sweep.silent_readers()?;
    sweep.resumed_readers()?;
    let mut seen = std::collections::HashSet::new();
    sweep.out.changed.retain(|id| seen.insert(*id));
    Ok(sweep.out)
}

struct Sweep<'t> {
    tx: &'t mut dyn Tx,
    at: Timestamp,
    now_ms: i64,
    policy: SweepPolicy,
    actor: Actor,
    out: SweepOutcome,
}

/// RFC 3339 text of a rule time, or null if it is out of range.
fn rfc3339(ms: i64) -> Value {
    Timestamp::from_unix_ms(ms).map_or(Value::Null, |t| Value::String(t.to_string()))
}

impl Sweep<'_> {
    fn audit(
        &mut self,
        action: &'static str,
        subject: String,
        before: Option<Value>,
        after: Value,
    ) -> Result<(), ServiceError> {
        self.tx.append_audit(&NewEntry {
            at: self.at,
            actor: self.actor.name().to_owned(),
            action,
            subject,
            before,
            after: Some(after),
        })?;
        Ok(())
    }

    /// Raise (or repeat) `alert`; a new one is audited.
    fn raise(&mut self, alert: &NewAlert) -> Result<Raised, ServiceError> {
        let raised = super::alerts::raise_in(&mut *self.tx, self.at, self.actor.name(), alert)?;
        if let Raised::New(_) = raised {
            self.out.raised += 1;
        }
        self.out.changed.push(raised.id());
        Ok(raised)
    }

    fn overdue(&mut self) -> Result<(), ServiceError> {
        for due in self.tx.overdue_signouts(self.now_ms)? {
            if !overdue_notice_due(
                due.due_at_ms,
                due.notified_at_ms,
                self.now_ms,
                self.policy.overdue_reminder_ms,
            ) {
                continue;
            }
            let carriers = self.tx.outstanding_carriers(due.id)?;
            let signout_text = due.id.to_string();
            let mut alert = NewAlert::new(
                AlertKind::Overdue,
                cause(AlertKind::Overdue, &[("signout", &signout_text)]),
                self.now_ms,
            );
            alert.person_id = Some(due.borrower.0);
            if let [only] = carriers[..] {
                alert.carrier_id = Some(only.0);
            }
            alert.detail = json!({
                "signout_id": signout_text,
                "due_at": rfc3339(due.due_at_ms),
                "carrier_ids": carriers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
            self.raise(&alert)?;
            self.tx.set_overdue_notified(due.id, self.now_ms)?;
        }
        Ok(())
    }

    fn cabinet_removals(&mut self) -> Result<(), ServiceError> {
        let grace = self.policy.cabinet_removal_grace_ms;
        for removal in self.tx.removals_before(self.now_ms.saturating_sub(grace))? {
            if !removal_grace_over(removal.removed_at_ms, self.now_ms, grace) {
                continue;
            }
            let state = self.tx.carrier_state(removal.carrier)?;
            let standing = if self.tx.open_repair(removal.carrier)?.is_some() {
                CarrierStanding::Moving
            } else {
                CarrierStanding::from_state(state.as_str()).ok_or_else(|| {
                    crate::store::StoreError::Corrupt(format!("carrier {}: state", removal.carrier))
                })?
            };
            let on_signout = self.tx.on_open_signout(removal.carrier)?;
            if let RemovalOutcome::Unaccounted { mark_missing } =
                removal_outcome(on_signout, standing)
            {
                self.unaccounted_removal(&removal, state.as_str(), mark_missing)?;
            }
            self.tx
                .drop_pending_removal(&removal.device, removal.carrier)?;
        }
        Ok(())
    }

    fn unaccounted_removal(
        &mut self,
        removal: &PendingRemoval,
        state: &str,
        mark_missing: bool,
    ) -> Result<(), ServiceError> {
        let (device, carrier, removed_at_ms) =
            (&removal.device, removal.carrier, removal.removed_at_ms);
        let carrier_text = carrier.to_string();
        let mut alert = NewAlert::new(
            AlertKind::CabinetRemoval,
            cause(
                AlertKind::CabinetRemoval,
                &[("carrier", &carrier_text), ("device", device.as_str())],
            ),
            self.now_ms,
        );
        alert.carrier_id = Some(carrier.0);
        alert.device_id = Some(device.to_string());
        alert.detail = json!({ "removed_at": rfc3339(removed_at_ms) });
        self.raise(&alert)?;
        if !mark_missing {
            return Ok(());
        }
        self.tx.mark_missing(carrier, removed_at_ms)?;
        self.audit(
            "carrier.missing",
            format!("carrier:{carrier}"),
            Some(json!({ "state": state })),
            json!({
                "state": "missing",
                "missing_since": rfc3339(removed_at_ms),
                "reason": "cabinet_removal",
                "device_id": device,
            }),
        )?;
        self.out.marked_missing += 1;
        let mut missing = NewAlert::new(
            AlertKind::Missing,
            cause(AlertKind::Missing, &[("carrier", &carrier_text)]),
            self.now_ms,
        );
        missing.carrier_id = Some(carrier.0);
        missing.device_id = Some(device.to_string());
        missing.detail = json!({
            "missing_since": rfc3339(removed_at_ms),
            "last_seen_in": device,
        });
        self.raise(&missing)?;
        Ok(())
    }

    fn leak_deadlines(&mut self) -> Result<(), ServiceError> {
        let since = self.now_ms.saturating_sub(SHORTEST_LEAK_DEADLINE_MS);
        for missing in self.tx.missing_since(since)? {
            if !leak_deadline_passed(missing.level, missing.since_ms, self.now_ms) {
                continue;
            }
            let carrier_text = missing.id.to_string();
            let key = cause(AlertKind::LeakDeadline, &[("carrier", &carrier_text)]);
            if episode_alerted(self.tx.alert_last_seen(&key)?, missing.since_ms) {
                continue;
            }
            let mut alert = NewAlert::new(AlertKind::LeakDeadline, key, self.now_ms);
            alert.carrier_id = Some(missing.id.0);
            alert.detail = json!({
                "level": missing.level,
                "missing_since": rfc3339(missing.since_ms),
                "deadline_at": rfc3339(
                    missing.since_ms.saturating_add(leak_deadline_ms(missing.level))
                ),
            });
            self.raise(&alert)?;
        }
        Ok(())
    }

    fn silent_readers(&mut self) -> Result<(), ServiceError> {
        let sup = self.policy.supervision_ms;
        for candidate in self
            .tx
            .devices_unheard_since(self.now_ms.saturating_sub(sup))?
        {
            let last = candidate.last_heartbeat_ms;
            let Some(since) = silent_since(last, candidate.registered_ms, self.now_ms, sup) else {
                continue;
            };
            let key = cause(
                AlertKind::ReaderSilent,
                &[("device", candidate.device.as_str())],
            );
            if episode_alerted(self.tx.alert_last_seen(&key)?, since) {
                continue;
            }
            let mut alert = NewAlert::new(AlertKind::ReaderSilent, key, self.now_ms);
            alert.device_id = Some(candidate.device.to_string());
            alert.detail = json!({
                "silent_since": rfc3339(since),
                "silent_since_ms": since,
                "never_reported": last.is_none(),
            });
            if let Raised::Repeated(id) = self.raise(&alert)? {
                // A new silence while the alert is still live: the detail describes this one
                // (and drops the previous `resumed_at`).
                self.tx.set_alert_detail(id, &alert.detail)?;
            }
        }
        Ok(())
    }

    fn resumed_readers(&mut self) -> Result<(), ServiceError> {
        let since = self.now_ms.saturating_sub(self.policy.supervision_ms);
        for heard in self.tx.silent_alerts_heard_since(since)? {
            let mut detail = heard.detail;
            if detail.get("resumed_at").is_some() {
                continue;
            }
            let Some(since) = detail.get("silent_since_ms").and_then(Value::as_i64) else {
                continue;
            };
            let Some(resumed) = resumed_at(since, Some(heard.last_heartbeat_ms)) else {
                continue;
            };
            let Some(fields) = detail.as_object_mut() else {
                continue;
            };
            fields.insert("resumed_at".to_owned(), rfc3339(resumed));
            fields.insert("resumed_at_ms".to_owned(), Value::from(resumed));
            self.tx.set_alert_detail(heard.alert, &detail)?;
            self.audit(
                "alert.reader_resumed",
                format!("alert:{}", heard.alert),
                None,
                json!({ "resumed_at": rfc3339(resumed) }),
            )?;
            self.out.changed.push(heard.alert);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::AlertState;
    use crate::domain::sweep::DAY_MS;
    use crate::store::alerts::{AlertFilter, AlertRows, AlertView};
    use crate::store::test_support::{MemoryDb, T0};

    const T0_MS: i64 = T0 * 1000;
    const POLICY: SweepPolicy = SweepPolicy {
        overdue_reminder_ms: DAY_MS,
        cabinet_removal_grace_ms: 60_000,
        supervision_ms: 30_000,
    };

    fn at_ms(ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(ms).unwrap()
    }

    fn sweep_at(db: &MemoryDb, ms: i64) -> SweepOutcome {
        run_in(&mut db.tx(), at_ms(ms), POLICY).unwrap()
    }

    fn alerts_of(db: &MemoryDb, kind: AlertKind) -> Vec<AlertView> {
        let filter = AlertFilter {
            kind: Some(kind),
            limit: 100,
            ..AlertFilter::default()
        };
        db.tx().alerts(&filter).unwrap()
    }

    fn id_of(view: &AlertView) -> i64 {
        view.id.parse().unwrap()
    }

    fn actions(db: &MemoryDb, action: &str) -> usize {
        db.audit()
            .iter()
            .filter(|e| e.action == action && e.actor == "@sweep")
            .count()
    }

    #[test]
    fn an_overdue_sign_out_is_alerted_once_per_reminder_interval() {
        let db = MemoryDb::custody(at_ms(T0_MS));
        let signout = db.signed_out(1, T0_MS - 1_000, false);
        let first = sweep_at(&db, T0_MS);
        let [alert] = &alerts_of(&db, AlertKind::Overdue)[..] else {
            panic!("one overdue alert");
        };
        assert_eq!(alert.person_id.as_deref(), Some("1"));
        assert_eq!(alert.carrier_id.as_deref(), Some("1"));
        assert_eq!(alert.detail["signout_id"], signout.to_string());
        assert_eq!(alert.detail["carrier_ids"], serde_json::json!(["1"]));
        assert!(first.changed.contains(&id_of(alert)));
        assert_eq!(actions(&db, "alert.raise"), first.raised);

        // Within the reminder interval nothing is repeated; after it, the alert occurs again.
        let soon = sweep_at(&db, T0_MS + 60_000);
        assert!(!soon.changed.contains(&id_of(alert)));
        let later = sweep_at(&db, T0_MS + DAY_MS + 1);
        assert!(later.changed.contains(&id_of(alert)));
        assert_eq!(db.tx().alert(id_of(alert)).unwrap().unwrap().occurrences, 2);
        assert_eq!(alerts_of(&db, AlertKind::Overdue).len(), 1);
    }

    #[test]
    fn an_unaccounted_cabinet_removal_marks_the_carrier_missing() {
        let db = MemoryDb::custody(at_ms(T0_MS));
        let removed = T0_MS - 120_000;
        db.pending_removal("cab-1", 1, removed);
        // Carrier 2 left on a sign-out: the removal was the hand-over.
        db.signed_out(2, T0_MS + DAY_MS, false);
        db.pending_removal("cab-1", 2, removed);
        // Within the grace period: not judged yet.
        db.pending_removal("cab-2", 1, T0_MS - 1_000);

        let out = sweep_at(&db, T0_MS);
        assert_eq!(out.marked_missing, 1);
        assert_eq!(db.carrier_row(1), ("missing".into(), None, Some(removed)));
        assert_eq!(db.carrier_row(2), ("out".into(), Some(1), None));
        let [removal] = &alerts_of(&db, AlertKind::CabinetRemoval)[..] else {
            panic!("one cabinet removal");
        };
        assert_eq!(
            (removal.carrier_id.as_deref(), removal.device_id.as_deref()),
            (Some("1"), Some("cab-1"))
        );
        let [missing] = &alerts_of(&db, AlertKind::Missing)[..] else {
            panic!("one missing alert");
        };
        assert_eq!(missing.detail["last_seen_in"], "cab-1");
        assert_eq!(actions(&db, "carrier.missing"), 1);
        assert_eq!(db.pending_removals(), [("cab-2".to_owned(), 1)]);

        // Judged once: the next sweep finds nothing more to do for them.
        let again = sweep_at(&db, T0_MS + 1_000);
        assert_eq!(again.marked_missing, 0);
        assert!(!again.changed.contains(&id_of(removal)));
    }

    #[test]
    fn a_carrier_taken_from_its_cabinet_for_repair_is_not_a_removal() {
        let db = MemoryDb::custody(at_ms(T0_MS));
        db.in_repair(1);
        db.pending_removal("cab-1", 1, T0_MS - 120_000);
        let out = sweep_at(&db, T0_MS);
        assert_eq!(out.marked_missing, 0);
        assert_eq!(db.carrier_row(1), ("in_storage".into(), None, None));
        assert!(alerts_of(&db, AlertKind::CabinetRemoval).is_empty());
        assert!(db.pending_removals().is_empty(), "judged once and dropped");
    }

    #[test]
    fn a_silent_reader_is_alerted_once_and_its_return_recorded() {
        let db = MemoryDb::custody(at_ms(T0_MS));
        db.heartbeat("cab-1", T0_MS - 10_000);
        sweep_at(&db, T0_MS);
        let silent = alerts_of(&db, AlertKind::ReaderSilent);
        let [never] = &silent[..] else {
            panic!("only cab-2 is silent: {silent:?}");
        };
        assert_eq!(never.device_id.as_deref(), Some("cab-2"));
        assert_eq!(never.detail["never_reported"], true);

        // cab-1 falls silent; cab-2's silence already has its alert.
        let out = sweep_at(&db, T0_MS + 60_000);
        let silent = alerts_of(&db, AlertKind::ReaderSilent);
        assert_eq!(silent.len(), 2);
        let cab1 = silent
            .iter()
            .find(|a| a.device_id.as_deref() == Some("cab-1"))
            .unwrap();
        assert_eq!(cab1.detail["silent_since_ms"], T0_MS - 10_000);
        assert_eq!(out.changed, [id_of(cab1)]);

        // It speaks again: the alert stays live (a person resolves it) and says when.
        db.heartbeat("cab-1", T0_MS + 61_000);
        let out = sweep_at(&db, T0_MS + 62_000);
        assert_eq!(out.changed, [id_of(cab1)]);
        let view = db.tx().alert(id_of(cab1)).unwrap().unwrap();
        assert_eq!(view.state, AlertState::Open);
        assert_eq!(view.detail["resumed_at_ms"], T0_MS + 61_000);
        assert_eq!(actions(&db, "alert.reader_resumed"), 1);
        assert!(sweep_at(&db, T0_MS + 63_000).changed.is_empty());
    }

    #[test]
    fn a_revoked_device_is_not_a_silent_reader() {
        // Revoked on purpose and refused at every device endpoint: its silence is expected,
        // and a `reader_silent` alarm for it would only teach guards to ignore that kind.
        let db = MemoryDb::custody(at_ms(T0_MS));
        db.heartbeat("cab-1", T0_MS - 10_000);
        for id in ["cab-1", "cab-2"] {
            let id = crate::domain::ids::DeviceId::new(id).unwrap();
            crate::store::devices::DeviceRows::revoke_device(&mut db.tx(), &id, T0_MS - 5_000)
                .unwrap();
        }
        sweep_at(&db, T0_MS + 60_000);
        let silent = alerts_of(&db, AlertKind::ReaderSilent);
        assert!(silent.is_empty(), "{silent:?}");
    }

    #[test]
    fn a_missing_carrier_past_its_deadline_is_alerted_once() {
        let db = MemoryDb::custody(at_ms(T0_MS));
        db.set_missing(1, T0_MS - 61 * DAY_MS);
        db.set_missing(2, T0_MS - 59 * DAY_MS);
        sweep_at(&db, T0_MS);
        let [leak] = &alerts_of(&db, AlertKind::LeakDeadline)[..] else {
            panic!("one leak deadline (carrier 1, S: 60 days)");
        };
        assert_eq!(leak.carrier_id.as_deref(), Some("1"));
        assert_eq!(leak.detail["level"], "S");
        let again = sweep_at(&db, T0_MS + 1_000);
        assert!(!again.changed.contains(&id_of(leak)));
        assert_eq!(alerts_of(&db, AlertKind::LeakDeadline).len(), 1);
    }
}
