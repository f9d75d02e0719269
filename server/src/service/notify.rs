//! Notifications of alerts: routing alert changes into deliveries, recording what each try of
//! a delivery came to, reporting deliveries that are stuck, and the delivery list the security
//! officer reads.
//!
//! The sending itself (SMTP, HTTP) is the notifier's (`crate::notify`); these use cases are
//! its transactions. Routing marks a change routed in the transaction that creates its
//! deliveries, so a crash between the two repeats the routing and `add_delivery` ignores the
//! deliveries that exist (their ids are derived from the change and the target).

use std::collections::BTreeMap;

use serde_json::json;

use super::ServiceError;
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::Actor;
use crate::auth::capability::SecurityOfficerCap;
use crate::domain::alert::{AlertKind, NewAlert, cause};
use crate::domain::notify::{self, HookRoute, PlannedChannel, Route};
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::notify::{
    Channel, DeliveryState, DeliveryView, DueDelivery, NewDelivery, Outcome,
};

/// The most changes one routing transaction takes.
const ROUTE_BATCH: usize = 500;

/// Who gets what: taken from the `[smtp]` and `[[webhooks]]` configuration.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// E-mail routes.
    pub mail_routes: Vec<Route>,
    /// `(role, address)` pairs.
    pub role_addresses: Vec<(String, String)>,
    /// Hour (UTC) of the daily digest.
    pub digest_hour: u32,
    /// Webhooks.
    pub hooks: Vec<HookRoute>,
    /// Whether e-mail is configured at all (no host: no e-mail deliveries).
    pub mail: bool,
}

impl Routing {
    /// The routing of the application's settings.
    pub fn of(app: &AppState) -> Routing {
        let settings = app.settings();
        let smtp = &settings.smtp;
        Routing {
            mail_routes: smtp
                .routes
                .iter()
                .map(|r| Route {
                    kinds: r.kinds.clone(),
                    to: r.to.clone(),
                })
                .collect(),
            role_addresses: smtp
                .roles
                .iter()
                .flat_map(|(role, addresses)| {
                    addresses.iter().map(move |a| (role.clone(), a.clone()))
                })
                .collect(),
            digest_hour: smtp.digest_hour_utc,
            hooks: settings
                .webhooks
                .iter()
                .map(|h| HookRoute {
                    name: h.name.clone(),
                    kinds: h.kinds.clone(),
                })
                .collect(),
            mail: !smtp.host.is_empty(),
        }
    }
}

/// Route the alert changes not yet routed into deliveries; answers how many changes it took.
pub async fn route(app: &AppState, routing: &Routing) -> Result<usize, ServiceError> {
    let routing = routing.clone();
    let now_ms = app.now().unix_ms();
    app.store()
        .transact(move |tx| route_in(tx, &routing, now_ms))
        .await
}

/// [`route`]'s transaction: at most [`ROUTE_BATCH`] changes, each planned by
/// [`notify::plan`], its deliveries created and the change marked routed.
fn route_in(tx: &mut dyn Tx, routing: &Routing, now_ms: i64) -> Result<usize, ServiceError> {
    let changes = tx.unrouted_changes(ROUTE_BATCH)?;
    let routes: &[Route] = if routing.mail {
        &routing.mail_routes
    } else {
        &[]
    };
    for change in &changes {
        let planned = notify::plan(
            &change.notice,
            now_ms,
            routes,
            &routing.role_addresses,
            routing.digest_hour,
            &routing.hooks,
        );
        for p in planned {
            let channel = match p.channel {
                PlannedChannel::Email => Channel::Email,
                PlannedChannel::Digest => Channel::Digest,
                PlannedChannel::Webhook => Channel::Webhook,
            };
            tx.add_delivery(&NewDelivery {
                delivery_id: format!("{}-{}-{}", change.id, channel.as_str(), p.target),
                change_id: change.id,
                channel,
                target: p.target,
                created_at_ms: now_ms,
                due_at_ms: p.due_at_ms,
            })?;
        }
        tx.mark_change_routed(change.id)?;
    }
    Ok(changes.len())
}

/// Deliveries due now, at most `max`.
pub async fn due(app: &AppState, max: usize) -> Result<Vec<DueDelivery>, ServiceError> {
    let now_ms = app.now().unix_ms();
    app.store()
        .query(move |tx| Ok(tx.due_deliveries(now_ms, max)?))
        .await
}

/// When the next pending delivery is due (Unix ms), if any.
pub async fn next_due(app: &AppState) -> Result<Option<i64>, ServiceError> {
    app.store().query(|tx| Ok(tx.next_delivery_due()?)).await
}

/// What a try of `delivery` at `at_ms` came to: sent, or (with `error`) retry by the backoff,
/// or give up once `give_up_after_ms` has passed since it was created.
pub fn outcome(
    app: &AppState,
    delivery: &DueDelivery,
    at_ms: i64,
    error: Option<String>,
) -> Outcome {
    let timing = &app.settings().notifications;
    let Some(error) = error else {
        return Outcome::Sent;
    };
    let give_up_ms = ms(timing.give_up_after_secs.saturating_mul(1000));
    if at_ms.saturating_sub(delivery.created_at_ms) >= give_up_ms {
        return Outcome::GiveUp { error };
    }
    let wait = notify::backoff_ms(
        delivery.attempts.saturating_add(1),
        ms(timing.retry_initial_ms),
        ms(timing.retry_max_ms),
    );
    Outcome::Retry {
        next_due_ms: at_ms.saturating_add(wait),
        error,
    }
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Record the tries of deliveries at `at_ms` in one transaction. A delivery given up is
/// audited (a state change of the outbox that nobody asked for).
pub async fn record(
    app: &AppState,
    at_ms: i64,
    tries: Vec<(i64, Outcome)>,
) -> Result<(), ServiceError> {
    let at = app.now();
    app.store()
        .transact(move |tx| {
            for (id, outcome) in &tries {
                tx.record_attempt(*id, at_ms, outcome)?;
                if let Outcome::GiveUp { error } = outcome {
                    tx.append_audit(&NewEntry {
                        at,
                        actor: Actor::system("notify").name().to_owned(),
                        action: "delivery.give_up",
                        subject: format!("delivery:{id}"),
                        before: Some(json!({"state": "pending"})),
                        after: Some(json!({"state": "failed", "error": error})),
                    })?;
                }
            }
            Ok(())
        })
        .await
}

/// Raise `notification_failed` (one live alert per channel and target) for deliveries not done
/// `failed_alert_after_secs` after they were created; answers the alerts raised or repeated,
/// which the caller passes to the consoles.
pub async fn report_stuck(app: &AppState) -> Result<Vec<i64>, ServiceError> {
    let after_ms = ms(app
        .settings()
        .notifications
        .failed_alert_after_secs
        .saturating_mul(1000));
    let at = app.now();
    let changed = app
        .store()
        .transact(move |tx| report_stuck_in(tx, at, after_ms))
        .await?;
    app.alerts().notify(changed.iter().copied());
    Ok(changed)
}

/// [`report_stuck`]'s transaction at `at`: one `notification_failed` per channel and target
/// (e-mail and digest count as one channel), audited when new; the deliveries are marked
/// reported so that they are reported once.
fn report_stuck_in(
    tx: &mut dyn Tx,
    at: Timestamp,
    after_ms: i64,
) -> Result<Vec<i64>, ServiceError> {
    let now_ms = at.unix_ms();
    let stuck = tx.stuck_deliveries(now_ms.saturating_sub(after_ms))?;
    let mut per_target: BTreeMap<(&'static str, String), Vec<i64>> = BTreeMap::new();
    for d in &stuck {
        let channel = match d.channel {
            Channel::Digest | Channel::Email => Channel::Email.as_str(),
            Channel::Webhook => Channel::Webhook.as_str(),
        };
        per_target
            .entry((channel, d.target.clone()))
            .or_default()
            .push(d.id);
    }
    let mut changed = Vec::new();
    for ((channel, target), ids) in per_target {
        let kind = AlertKind::NotificationFailed;
        let mut alert = NewAlert::new(
            kind,
            cause(kind, &[("channel", channel), ("target", &target)]),
            now_ms,
        );
        alert.detail = json!({
            "channel": channel,
            "target": target,
            "deliveries": ids.len(),
        });
        let raised = super::alerts::raise_in(tx, at, Actor::system("notify").name(), &alert)?;
        tx.mark_reported(&ids)?;
        changed.push(raised.id());
    }
    Ok(changed)
}

/// The deliveries, newest first (security officer): what was sent, what is retrying, what
/// failed.
pub async fn list(
    app: &AppState,
    _cap: &SecurityOfficerCap,
    state: Option<DeliveryState>,
    limit: u32,
) -> Result<Vec<DeliveryView>, ServiceError> {
    let limit = limit.clamp(1, 1000);
    app.store()
        .query(move |tx| Ok(tx.deliveries(state, limit)?))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{MemoryDb, T0, t};
    use crate::store::{AlertRows, AuditLog, NotifyRows};

    fn routing() -> Routing {
        Routing {
            mail_routes: vec![Route {
                kinds: vec![AlertKind::ReaderSilent],
                to: vec!["role:guard".into()],
            }],
            role_addresses: vec![("guard".into(), "g@x.test".into())],
            digest_hour: 7,
            hooks: vec![HookRoute {
                name: "soc".into(),
                kinds: vec![],
            }],
            mail: true,
        }
    }

    fn silent(db: &MemoryDb, device: &str) -> i64 {
        let kind = AlertKind::ReaderSilent;
        db.tx()
            .raise_alert(&NewAlert::new(
                kind,
                cause(kind, &[("d", device)]),
                T0 * 1000,
            ))
            .unwrap()
            .id()
    }

    #[test]
    fn routing_creates_each_delivery_once_and_marks_the_change() {
        let db = MemoryDb::new();
        silent(&db, "g1");
        let now = T0 * 1000;
        assert_eq!(route_in(&mut db.tx(), &routing(), now).unwrap(), 1);
        assert_eq!(route_in(&mut db.tx(), &routing(), now).unwrap(), 0);
        let list = db.tx().deliveries(None, 10).unwrap();
        let mut targets: Vec<_> = list
            .iter()
            .map(|d| (d.channel, d.target.as_str()))
            .collect();
        targets.sort();
        assert_eq!(
            targets,
            [(Channel::Email, "g@x.test"), (Channel::Webhook, "soc")]
        );
        // Without e-mail configured only the webhook is planned.
        silent(&db, "g2");
        let no_mail = Routing {
            mail: false,
            ..routing()
        };
        route_in(&mut db.tx(), &no_mail, now).unwrap();
        assert_eq!(db.tx().deliveries(None, 10).unwrap().len(), 3);
    }

    #[test]
    fn stuck_deliveries_raise_one_audited_alert_per_target_once() {
        let db = MemoryDb::new();
        silent(&db, "g1");
        silent(&db, "g2");
        route_in(&mut db.tx(), &routing(), T0 * 1000).unwrap();
        // Not yet stuck.
        assert!(
            report_stuck_in(&mut db.tx(), t(T0), 60_000)
                .unwrap()
                .is_empty()
        );
        let later = t(T0 + 61);
        let audit_before = db.tx().audit_count().unwrap();
        let raised = report_stuck_in(&mut db.tx(), later, 60_000).unwrap();
        assert_eq!(raised.len(), 2, "one for the address, one for the webhook");
        assert_eq!(db.tx().audit_count().unwrap(), audit_before + 2);
        let alert = db.tx().alert(raised[0]).unwrap().unwrap();
        assert_eq!(alert.kind, AlertKind::NotificationFailed);
        assert_eq!(alert.detail["deliveries"], 2);
        assert!(
            report_stuck_in(&mut db.tx(), later, 60_000)
                .unwrap()
                .is_empty()
        );
    }
}
